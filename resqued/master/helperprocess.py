"""What the master's loop knows of a helper process: anything it starts
besides its workers (the spawner, the new spawner of a rolling restart, the
recovery runs, the metrics exporter, the scheduler), each behind one small
interface, so that a new kind of helper is one class, not an edit to each
step of the arbiter's loop.

Like uvicorn's Process or Supervisor's subprocess: the loop asks each helper
what it waits on and when it must be woken, tells it what became readable,
and hands it its exit once reaped (hand_exit). Deciding what to do (restart it, retry a
batch) stays in the helper.
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class HelperProcess(Protocol):
    def waitables(self) -> list:
        """What the master's wait watches for reading on our behalf
        (objects with ``fileno()``); empty when nothing."""

    def on_readable(self, waitable) -> None:
        """One of our waitables is readable."""

    def deadline(self) -> float | None:
        """When (time.monotonic) the loop must wake for us, or None."""

    def owns(self, pid: int) -> bool:
        """Is ``pid`` (just reaped by the master) ours?"""

    def on_exit(self, pid: int, code: int, how: str) -> None:
        """The master reaped our ``pid``: ``code`` as waitstatus_to_exitcode
        gives it (negative: a signal), ``how`` the same for a log line."""


def hand_exit(helpers, pid: int, code: int, how: str) -> bool:
    """Hand the exit of ``pid`` (``code`` as waitstatus_to_exitcode gives
    it, ``how`` in words) to the helper that owns it; False when none does
    (an orphan the master adopted as a subreaper: reaped, no more; those
    still running when it stops are ended: adopted.py)."""
    for helper in helpers:
        if helper.owns(pid):
            helper.on_exit(pid, code, how)
            return True
    return False
