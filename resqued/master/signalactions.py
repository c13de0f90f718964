"""Which action each signal asks of the master, decided from plain values
(decide, then act, as reconcile.plan): the arbiter's loop drains the
signals its handlers recorded (process/signals.SignalQueue), and applies
what ``decide`` returns for each as it applies a request's
(``Arbiter._apply``): the actions of requestdecisions.py, and these.

Signals: HUP reload; QUIT graceful stop (no limit); TERM/INT graceful stop
bounded by shutdown_timeout, then kill (``--term immediate``: kill at once;
a second one while stopping gracefully: kill now); USR2/CONT pause/resume;
USR1 relay (kill running jobs); TTIN/TTOU one more / one fewer worker in
every pool (never past the bound on workers: ``adjust``); WINCH stop every
worker until the next HUP (resque-pool's meaning; ignored while the master
has a controlling terminal, where resizing the window sends it); CHLD only
wakes the loop, which reaps.
"""

import signal
from dataclasses import dataclass

from resqued.master.requestdecisions import Pause, Reload, Resume, StopMaster

SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGCONT, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH, signal.SIGCHLD)


@dataclass(frozen=True)
class RelayToWorkers:
    signum: int


@dataclass(frozen=True)
class AdjustCounts:
    step: int                 # +1 (TTIN) or -1 (TTOU) in every pool


@dataclass(frozen=True)
class StopUntilHup:
    """WINCH: the arbiter ignores it while the master has a controlling terminal."""


def decide(signum: int, term_mode: str, stopping) -> object | None:
    """The action ``signum`` asks for, or None; ``stopping``: the stop in
    progress (supervise/states.Stop), or None."""
    if signum == signal.SIGHUP:
        return Reload(hup=True)
    if signum == signal.SIGQUIT:
        return StopMaster("graceful", bounded=False)
    if signum in (signal.SIGTERM, signal.SIGINT):
        now = term_mode == "immediate" or bool(stopping and stopping.graceful)
        return StopMaster("immediate" if now else "graceful")
    if signum == signal.SIGUSR2:
        return Pause()
    if signum == signal.SIGCONT:
        return Resume()
    if signum == signal.SIGUSR1:
        return RelayToWorkers(signal.SIGUSR1)
    if signum in (signal.SIGTTIN, signal.SIGTTOU):
        return AdjustCounts(1 if signum == signal.SIGTTIN else -1)
    if signum == signal.SIGWINCH:
        return StopUntilHup()
    return None   # CHLD: the loop reaps next


def adjust(step: int, pools, bound: tuple[int, str]) -> dict | str:
    """TTIN/TTOU: each pool's new adjustment, from ``pools`` as (name,
    count in the config, adjustment now) and the bound on workers (the
    most, why); or why not, as a warning. A pool never goes below zero."""
    if step > 0 and sum(max(0, count + now) for _, count, now in pools) + len(pools) > bound[0]:
        return f"TTIN ignored: one more worker in every pool would pass {bound[0]} ({bound[1]})"
    return {name: max(-count, now + step) for name, count, now in pools}
