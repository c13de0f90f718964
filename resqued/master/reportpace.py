"""How often the master reads its workers' report pipes
(protocols/reportpipe.py) while nothing waits on what they say.

Each job makes its worker write two reports (busy, then idle with the job's
outcome), and each one read at once was a turn of the master's loop: with 64
workers on one-second jobs, 128 turns a second, each walking every worker
(3.4 % of a core, against 0.1 % with one worker). What the reports feed is
a status, the metrics and the process title, none of which needs a state
younger than PACE; so while the master is settled every pipe is read once
a PACE, all that came meanwhile at once, without polling them first. A worker
never waits on this: it writes without blocking and keeps the outcome
records the pipe did not take for its next line (worker/reports.py); but a
state line that finds the pipe full is dropped, and a worker killed then
is judged on an older state. So each pipe is enlarged (reportpipesize.py:
256 KiB to 1 MiB), and while any worker writes FLOODED bytes or more within
a pace (a few hundred tiny jobs a second: a line is ~220-300 bytes), every
pipe is read every FLOOD_PACE instead, until a whole pace has passed below
that: a pipe then holds what a worker writes in 50 ms and a turn (45-60 KB
at 4,000 jobs a second), within an enlarged pipe; at the kernel's default
64 KiB (the user's pipe budget spent) a worker that fast may see a state
line dropped, as it may while the master is busy. Read at once (a turn of
the loop per few lines), a flood cost the master 63 us of CPU per job, a
third of what a fork: false job costs all its processes; in turns of 50 ms,
the lines' decoding is what is left. Left: the first pace of a sudden
flood, which a worker faster than the pipe's size a second still fills.

Read at once, as before, whenever something waits on a worker's state:
start-up until READY=1, a request waiting for its condition (pause --wait,
a reload to apply), a rolling restart, a reload probe, a stop. A request
arriving reads every pipe before it is answered, so that a status shows
the latest states; a worker that exits is read to its end when reaped.
"""

import time

PACE = 1.0        # seconds a report may wait while the master is settled: the loop's own idle tick
FLOOD_PACE = 0.05   # seconds between reads while a worker floods its pipe
FLOODED = 49152   # bytes from one worker within a pace: three quarters of the kernel's default pipe


class ReportPace:
    def __init__(self, pace: float = PACE, flood_pace: float = FLOOD_PACE):
        self.pace = pace
        self.flood_pace = flood_pace
        self.read_at = 0.0   # time.monotonic() of the last paced read, or of the last turn that polled the pipes
        self.resume_at = None   # while the pipes are not polled: when they are read again
        self.flooded_until = 0.0   # a worker wrote a lot: every pipe read every flood_pace until then
        self.window_from = 0.0     # time.monotonic() when the current pace's byte counts began
        self.written = {}          # id(child): bytes read from its pipe since window_from

    def read_due(self, children, now: float) -> None:
        """Once the pace (FLOOD_PACE while flooded) has passed, read every
        pipe, at once: early in the loop's turn, so that what the turn shows
        (the process title, systemd's STATUS=) is at most a pace old. Not
        polled first: by then nearly every busy worker's pipe holds a line,
        and polling them cost a poll(2) over every descriptor and a second
        turn of the loop right after the one the pace woke (80 us and a walk
        over every worker, a second, at 64 workers)."""
        if now >= self.read_at + self._pace(now):
            self.read_at = now
            self.read(children, (), asked=True, now=now)

    def watched(self, children, urgent: bool, now: float) -> list:
        """The workers whose pipes this turn's wait polls: all of them while
        something waits on their states (read as lines come), else none
        (read_due reads them once a pace)."""
        if urgent:
            self.read_at, self.resume_at = now, None
            return list(children)
        self.resume_at = self.read_at + self._pace(now)   # (after read_due: a flood it found shortens it)
        return []

    def _pace(self, now: float) -> float:
        return self.flood_pace if now < self.flooded_until else self.pace

    def deadline(self) -> float | None:
        """When this turn's wait must end for the pipes to be read again."""
        return self.resume_at

    def read(self, children, ready, asked: bool, now: float | None = None) -> None:
        """Take in the reports of the workers whose pipes are ``ready``; of
        every worker when a request is ``asked`` (its answer reads them).
        A worker's bytes are counted over the pace, not per read: while
        flooded each read is small, and only the sum says the flood goes on."""
        now = time.monotonic() if now is None else now
        if now >= self.window_from + self.pace:
            self.window_from, self.written = now, {}
        for child in children:
            # A command worker reads none (commandworkers.py: None).
            if asked or child in ready:
                written = self.written.get(id(child), 0) + (child.read_reports() or 0)
                self.written[id(child)] = written
                if written >= FLOODED:
                    # Through the next pace too: its count is only complete at its end.
                    self.flooded_until = self.window_from + 2 * self.pace
