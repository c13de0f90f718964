"""Which signal leads the master to which action, decided without a process
(master/signalactions.py; the real-process side is test_master.py,
test_master_winch.py and test_max_workers.py)."""

import signal

import pytest

from resqued.master.requestdecisions import Pause, Reload, Resume, StopMaster
from resqued.master.signalactions import AdjustCounts, RelayToWorkers, StopUntilHup, adjust, decide
from resqued.supervise.states import Stop


@pytest.mark.parametrize("signum, action", [
    (signal.SIGHUP, Reload(hup=True)),
    (signal.SIGQUIT, StopMaster("graceful", bounded=False)),
    (signal.SIGTERM, StopMaster("graceful", bounded=True)),
    (signal.SIGINT, StopMaster("graceful", bounded=True)),
    (signal.SIGUSR2, Pause()),
    (signal.SIGCONT, Resume()),
    (signal.SIGUSR1, RelayToWorkers(signal.SIGUSR1)),
    (signal.SIGTTIN, AdjustCounts(1)),
    (signal.SIGTTOU, AdjustCounts(-1)),
    (signal.SIGWINCH, StopUntilHup()),
    (signal.SIGCHLD, None),
])
def test_each_signal_and_its_action(signum, action):
    assert decide(signum, "graceful", None) == action


def test_term_kills_at_once_under_term_immediate_or_when_a_graceful_stop_is_under_way():
    for signum in (signal.SIGTERM, signal.SIGINT):
        assert decide(signum, "immediate", None) == StopMaster("immediate")
        assert decide(signum, "graceful", Stop("graceful")) == StopMaster("immediate")
    # QUIT stays graceful whatever is under way (the stop itself refuses to weaken).
    assert decide(signal.SIGQUIT, "immediate", Stop("graceful")) == StopMaster("graceful", bounded=False)


def test_ttin_and_ttou_adjust_every_pool_never_below_zero_nor_past_the_bound():
    pools = [("mail", 2, 0), ("default", 1, -1)]
    assert adjust(1, pools, (10, "max_workers")) == {"mail": 1, "default": 0}
    assert adjust(-1, pools, (10, "max_workers")) == {"mail": -1, "default": -1}   # default is at 0 already
    # 2 + 0 workers now, one more in each of 2 pools: 4 > 3.
    refused = adjust(1, pools, (3, "max_workers"))
    assert refused == "TTIN ignored: one more worker in every pool would pass 3 (max_workers)"
    assert adjust(-1, pools, (0, "max_workers")) == {"mail": -1, "default": -1}    # fewer is always allowed
