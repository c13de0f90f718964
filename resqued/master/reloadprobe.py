"""The reload under way: its new config, whose job modules a child of the
running spawner imports (spawner/probe.forked) while the master's loop goes
on. The spawner forks every worker after the reload, so its child is both
the cheaper check (no interpreter to start, redis-py already loaded) and
the truer one. Its verdict comes on a pipe, which the loop watches: as a
HelperProcess (helperprocess.py), ``ReloadProbe`` is that pipe.

Decide, then act: ``begin`` reads the file and starts the check (or, with
the spawner down, has a fresh interpreter check it at once: codeprobe.py),
``finish`` takes the verdict once it has come; each returns the outcome,
which the arbiter applies (``Arbiter._reloaded``): PROBING (not yet), the
error, or an ``Applied`` config. A reload asked for while one is checked is
one more after it (the file may have changed since it was read; HUPs in a
storm are one more reload, not one each). The probe child is the spawner's,
which reaps it: the master never sees its exit.
"""

import logging
import os
import signal
import time
from typing import NamedTuple

from resqued.config.model import ConfigError
from resqued.master.codeprobe import probe, probe_settings
from resqued.master.spawnerlink import SpawnerError
from resqued.protocols.spawnersocket import ProbeVerdict
from resqued.supervise.states import PoolSupervision

log = logging.getLogger("resqued.master")

PROBING = "probing"   # the outcome while the new config's code is being checked
TIMEOUT = 60.0        # a job module whose import hangs must not hold every later reload


class Applied(NamedTuple):
    config: object            # the new Config: valid, and its code imports
    resumed: bool             # the reload ended a WINCH
    hup: bool                 # a HUP asked for it (on_hup: restart restarts the workers then)


class Finished(NamedTuple):
    outcome: object           # Applied, or the error
    again: bool               # one more reload was asked for meanwhile
    again_hup: bool           # ... by a HUP


def reconfigured(records: dict, pools, resumed: bool) -> dict:
    """The pools' supervision records under a reloaded config's ``pools``:
    fresh, keeping the recycles; a reload resets TTIN/TTOU to the file's
    counts, except the one that ends a WINCH (TTIN/TTOU while stopped set
    the counts workers return to)."""
    old = {p.name: records.get(p.name, PoolSupervision()) for p in pools}
    return {p.name: PoolSupervision(recycles=old[p.name].recycles,
                         adjust=max(-p.count, old[p.name].adjust) if resumed else 0) for p in pools}


class ReloadProbe:
    def __init__(self):
        self._clear()

    def _clear(self) -> None:
        self.config = None
        self.started = 0.0
        self.pid = None
        self.fd = None
        self.answer = b""
        self.verdict = None
        self.resumed = self.hup = self.again = self.again_hup = False

    @property
    def active(self) -> bool:
        return self.config is not None

    def begin(self, loader, spawner, resumed: bool, hup: bool, check: bool = True):
        """A reload: ``loader()`` re-reads the file; ``spawner`` checks its
        code (None: a fresh interpreter does, now), if ``check``. The
        outcome (see above)."""
        if self.active:
            self.again = True
            self.resumed = self.resumed or resumed
            self.again_hup = self.again_hup or hup
            return PROBING
        try:
            config = loader()
        except ConfigError as exc:
            return str(exc)
        if not check:
            return Applied(config, resumed, hup)
        try:
            if spawner is None:
                raise SpawnerError("it is being replaced by a restart's")
            self.pid, self.fd = spawner.probe_code(probe_settings(config))
        except SpawnerError as exc:
            # Down, failing, or not the one to fork the next workers: a fresh
            # interpreter checks it, as at the start.
            log.info("reload: the spawner cannot check the new code (%s): a new interpreter does", exc)
            error = probe(config)
            return f"{config.path}: {error}" if error else Applied(config, resumed, hup)
        os.set_blocking(self.fd, False)
        self.config, self.resumed, self.hup, self.started = config, resumed, hup, time.monotonic()
        log.debug("reload: job modules of %s checked by %d, a child of the spawner", config.path, self.pid)
        return PROBING

    def finish(self, now: float) -> Finished | None:
        """The reload whose verdict has come (or whose check took too long),
        now no longer under way; or None."""
        if self.active and self.verdict is None and now >= self.started + TIMEOUT:
            try:
                os.kill(self.pid, signal.SIGKILL)   # the spawner's child: it reaps it
            except ProcessLookupError:
                pass
            os.close(self.fd)
            self.fd = None
            self.verdict = ProbeVerdict(f"jobs: the job modules did not import within {TIMEOUT:g}s")
        if self.verdict is None:
            return None
        config, verdict = self.config, self.verdict
        # Its probe ended unanswered (the spawner under it was replaced): check it afresh.
        error = verdict.problem if verdict.answered else probe(config)
        done = Finished(f"{config.path}: {error}" if error else Applied(config, self.resumed, self.hup),
                        self.again, self.again_hup)
        self._clear()
        return done

    def abandon(self) -> None:
        """The master stops: the probe's pipe closes (it ends on its next write)."""
        if self.fd is not None:
            os.close(self.fd)
        self._clear()

    def fileno(self) -> int:
        return self.fd

    # -- as a HelperProcess (helperprocess.py) --------------------------
    def waitables(self) -> list:
        return [self] if self.fd is not None else []

    def on_readable(self, waitable) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.answer += chunk
            return
        os.close(self.fd)
        self.fd = None
        self.verdict = ProbeVerdict.decode(self.answer)

    def deadline(self):
        return self.started + TIMEOUT if self.fd is not None else None

    def owns(self, pid: int) -> bool:
        return False  # the spawner's child: the spawner reaps it

    def on_exit(self, pid: int, code: int, how: str) -> None:
        pass
