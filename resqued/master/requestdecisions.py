"""What resquectl's requests need done, as pure functions of the master's
state: decide, then act (as reconcile.plan). The arbiter applies the
actions (Pause, Resume, StopMaster, Reload, Restart), requests.py replies
and keeps the requests that wait for a condition (Wait); the answers'
shapes are protocols/controlsocket.py's.

``MasterState`` is what the decisions read of the master: plain values,
so that a test builds one without a process (tests/master/test_requestdecisions.py).
"""

from dataclasses import dataclass
from typing import NamedTuple

from resqued.process.logs import counted
from resqued.protocols.controlsocket import Command, Refusal, Request

REQUEST_TIMEOUT = 60.0     # a pause/reload request waits at most this long
RESTART_TIMEOUT = 600.0    # a restart replaces workers one by one, each after its job


# -- what the decisions read ---------------------------------------------------

class WorkerView(NamedTuple):   # a tuple: one per worker at each turn while a request waits
    pid: int
    pool: str                 # its pool's name
    stopping: bool = False
    ready: bool = True        # it has reported
    paused: bool = False
    busy: bool = False
    current: bool = True      # started with its pool's and the config's present settings


@dataclass(frozen=True)
class PoolView:
    name: str
    count: int                # desired (config count adjusted by TTIN/TTOU)
    failed: bool = False


@dataclass(frozen=True)
class MasterState:
    workers: tuple = ()       # WorkerViews
    pools: tuple = ()         # PoolViews, in config order
    stopping: bool = False
    winched: bool = False
    env_mode: bool = False    # no pool.yml: settings are the variables it started with
    restart_active: bool = False
    restart_error: str | None = None
    reload_probing: bool = False      # a reload's new code is being checked
    reload_error: str | None = None   # why the last reload was refused
    on_hup: str = "reload"            # the config's

    @property
    def live(self) -> list:
        return [w for w in self.workers if not w.stopping]


# -- what to do ----------------------------------------------------------------

@dataclass(frozen=True)
class ReplyStatus:
    """Answer now, with the master's status (as it is once the action is done)."""
    message: str | None = None
    with_pid: bool = False    # stop: the master's pid, to wait for its end


@dataclass(frozen=True)
class Wait:
    """Answer once ``until`` holds (see holds), or refuse after ``within`` seconds."""
    until: str                # paused, finished, resumed, probed, applied, restarted
    within: float


@dataclass(frozen=True)
class Pause:
    then: Wait | None = None          # None: a signal's (USR2), nobody waits


@dataclass(frozen=True)
class Resume:
    then: Wait | None = None


@dataclass(frozen=True)
class StopMaster:
    mode: str                 # graceful or immediate
    bounded: bool = True      # graceful: killed after shutdown_timeout (not QUIT's)
    then: ReplyStatus = ReplyStatus("stopping", with_pid=True)


@dataclass(frozen=True)
class Reload:
    """Re-read the config; then after_reload says what follows. A HUP's
    (``hup``) reopens the log first, and restarts under on_hup: restart."""
    hup: bool = False


@dataclass(frozen=True)
class Restart:
    pools: tuple | None       # None: every pool; then after_restart says what follows


ACTIONS = (Pause, Resume, StopMaster, Reload, Restart)   # what the arbiter applies (signals have more)


def decide(request: Request, state: MasterState):
    """What a request needs: a Reply, a Wait, or an action to apply first."""
    command = request.command
    if command == Command.STATUS:
        return ReplyStatus()
    if state.stopping and command != Command.STOP:
        return Refusal("the master is stopping")
    if command == Command.PAUSE:
        wait = request.wait   # --wait: also until running jobs finish, this long at most
        return Pause(Wait("finished" if wait else "paused", wait or REQUEST_TIMEOUT))
    if command == Command.RESUME:
        return Resume(Wait("resumed", REQUEST_TIMEOUT))
    if command == Command.RELOAD and state.env_mode and not state.winched:
        # Its settings are the variables it started with (a reload after
        # WINCH still does what it says: it starts the workers again).
        return Refusal("environment mode has no pool.yml to re-read: its settings are the variables "
                       "it started with (start resqued again to change them; restart loads new code)",
                       unsupported=True)
    if command == Command.RELOAD:
        return Reload()
    if command == Command.RESTART:
        return Restart(tuple(request.pools) or None)
    return StopMaster("immediate" if request.now else "graceful")


def after_reload(error: str | None, on_hup: str):
    """As HUP: with on_hup: restart, every worker is restarted too (what
    systemctl reload's ExecReload then does)."""
    if error:
        return Refusal(error, config_error=True)
    if on_hup == "restart":
        return Restart(None)
    return Wait("applied", REQUEST_TIMEOUT)


def after_restart(error: str | None):
    if error:
        # Code that does not import is a configuration error (exit 78).
        return Refusal(error, config_error=error.startswith("restart refused"))
    return Wait("restarted", RESTART_TIMEOUT)


# -- when a waiting request is answered ------------------------------------------

def holds(until: str, state: MasterState) -> bool:
    live = state.live
    if until == "paused":
        return all(w.paused for w in live)
    if until == "finished":
        return all(w.paused and not w.busy for w in live)
    if until == "resumed":
        return all(w.ready and not w.paused for w in live)
    if until == "restarted":
        return not state.restart_active
    if until == "probed":
        return not state.reload_probing
    return applied(state)


def applied(state: MasterState) -> bool:
    """Every pool has its count of ready workers of the current config
    (none while WINCH keeps them stopped)."""
    if state.winched:
        return True
    live = state.live
    return all(pool.failed or sum(1 for w in live if w.pool == pool.name and w.ready and w.current) >= pool.count
               for pool in state.pools)


def settle(wait: Wait, deadline: float, state: MasterState, now: float):
    """A waiting request's answer now (a Reply, or what follows a reload
    once its code is checked), or None: it waits on."""
    if wait.until == "probed" and not state.reload_probing:
        if state.stopping:
            return Refusal(state.reload_error or "the master is stopping")
        return after_reload(state.reload_error, state.on_hup)
    if wait.until == "restarted" and holds(wait.until, state) and state.restart_error:
        return Refusal(state.restart_error)
    if holds(wait.until, state):
        return ReplyStatus("paused" if wait.until == "finished" else wait.until)
    if now > deadline:
        return Refusal(late(wait.until, state))
    return None


def late(until: str, state: MasterState) -> str:
    if until != "finished":
        return f"not {until} in time; see resquectl status"
    busy = sum(1 for w in state.live if w.busy)
    return (f"paused, but {counted(busy, 'worker')} still running a job (see resquectl status); "
            "they take no new job")


def ready_due(state: MasterState, ready_sent: bool) -> bool:
    """systemd is told READY=1 once the config (each reload's) is applied."""
    return not ready_sent and not state.stopping and applied(state)
