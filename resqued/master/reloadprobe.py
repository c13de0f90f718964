"""The reload under way: its new config, whose job modules a child of the
running spawner imports (spawner/probe.forked) while the master's loop goes
on. The spawner forks every worker after the reload, so its child is both
the cheaper check (no interpreter to start, redis-py already loaded) and
the truer one. Its verdict comes on a pipe, which the loop watches: as a
HelperProcess (helperprocess.py), ``ReloadProbe`` is that pipe.

The arbiter starts one (``start``), asks for one more while it runs
(``ask_again``: the file may have changed since it was read; HUPs in a
storm are one more reload, not one each), and applies or refuses the
config once ``verdict`` is set (``take``). The probe child is the
spawner's, which reaps it: the master never sees its exit.
"""

import logging
import os
from typing import NamedTuple

from resqued.master.codeprobe import probe_settings
from resqued.protocols.spawnersocket import ProbeVerdict

log = logging.getLogger("resqued.master")


class FinishedProbe(NamedTuple):
    config: object            # the new Config
    verdict: ProbeVerdict
    resumed: bool             # the reload ended a WINCH
    hup: bool                 # a HUP asked for it (on_hup: restart restarts the workers then)
    again: bool               # one more reload was asked for meanwhile
    again_hup: bool           # ... by a HUP


class ReloadProbe:
    def __init__(self):
        self._clear()

    def _clear(self) -> None:
        self.config = None
        self.pid = None
        self.fd = None
        self.answer = b""
        self.verdict = None
        self.resumed = self.hup = self.again = self.again_hup = False

    @property
    def active(self) -> bool:
        return self.config is not None

    def start(self, config, spawner, resumed: bool, hup: bool) -> None:
        """Have ``spawner`` check ``config``'s code; raises SpawnerError
        when it cannot (down, or failed: the caller checks it otherwise)."""
        self.pid, self.fd = spawner.probe_code(probe_settings(config))
        os.set_blocking(self.fd, False)
        self.config, self.resumed, self.hup = config, resumed, hup
        log.debug("reload: job modules of %s checked by %d, a child of the spawner", config.path, self.pid)

    def ask_again(self, resumed: bool, hup: bool) -> None:
        self.again = True
        self.resumed = self.resumed or resumed
        self.again_hup = self.again_hup or hup

    def take(self) -> FinishedProbe | None:
        """The reload whose verdict has come, now no longer under way; or None."""
        if self.verdict is None:
            return None
        done = FinishedProbe(self.config, self.verdict, self.resumed, self.hup, self.again, self.again_hup)
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
        return None   # its answer, or its end, wakes the loop

    def owns(self, pid: int) -> bool:
        return False  # the spawner's child: the spawner reaps it

    def on_exit(self, pid: int, code: int, how: str) -> None:
        pass
