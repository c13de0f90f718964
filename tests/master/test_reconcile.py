from dataclasses import dataclass

from resqued.master.reconcile import Alive, plan


@dataclass(frozen=True)
class Pool:
    queues: tuple
    count: int
    max_jobs: int | None = None

    @property
    def name(self):
        return ",".join(self.queues)


HIGH = Pool(("high", "default"), 2)
MAIL = Pool(("mail",), 1)


def counts(*pools):
    return {p.name: p.count for p in pools}


def test_spawns_the_shortfall_of_every_pool():
    result = plan([HIGH, MAIL], counts(HIGH, MAIL), [Alive(10, HIGH, 1.0)])
    assert sorted(p.name for p in result.spawn) == ["high,default", "mail"]
    assert result.retire == ()


def test_nothing_to_do_when_counts_are_met():
    alive = [Alive(10, HIGH, 1.0), Alive(11, HIGH, 2.0), Alive(12, MAIL, 1.0)]
    assert plan([HIGH, MAIL], counts(HIGH, MAIL), alive).empty


def test_surplus_retires_the_oldest_first():
    alive = [Alive(12, HIGH, 3.0), Alive(10, HIGH, 1.0), Alive(11, HIGH, 2.0)]
    result = plan([HIGH], counts(HIGH), alive)
    assert [pid for pid, _ in result.retire] == [10]


def test_stopping_workers_do_not_count_so_replacements_start_at_once():
    alive = [Alive(10, HIGH, 1.0, stopping=True), Alive(11, HIGH, 2.0)]
    assert [p.name for p in plan([HIGH], counts(HIGH), alive).spawn] == ["high,default"]


def test_removed_pool_and_changed_settings_are_retired_and_replaced():
    changed = Pool(("high", "default"), 2, max_jobs=50)
    alive = [Alive(10, HIGH, 1.0), Alive(11, HIGH, 2.0), Alive(12, MAIL, 1.0)]
    result = plan([changed], counts(changed), alive)
    reasons = dict(result.retire)
    assert reasons[10] == reasons[11] == "its pool settings changed"
    assert reasons[12] == "its pool was removed from the config"
    assert list(result.spawn) == [changed, changed]


def test_blocked_pools_do_not_spawn_and_ttin_ttou_counts_apply():
    result = plan([HIGH, MAIL], {HIGH.name: 3, MAIL.name: 0}, [Alive(12, MAIL, 1.0)], blocked={HIGH.name})
    assert result.spawn == ()
    assert [pid for pid, _ in result.retire] == [12]


def test_count_zero_and_negative_adjustments_mean_no_workers():
    assert plan([HIGH], {HIGH.name: -4}, []).empty


def test_a_count_change_adds_or_retires_but_replaces_nobody():
    bigger = Pool(("high", "default"), 3)
    alive = [Alive(10, HIGH, 1.0), Alive(11, HIGH, 2.0)]
    result = plan([bigger], counts(bigger), alive)
    assert result.retire == () and list(result.spawn) == [bigger]
    smaller = Pool(("high", "default"), 1)
    assert [pid for pid, _ in plan([smaller], counts(smaller), alive).retire] == [10]


@dataclass(frozen=True)
class CountedPool(Pool):
    """A pool that counts its copies: each one is made through __init__."""

    made = [0]

    def __post_init__(self):
        self.made[0] += 1


def test_a_steady_turn_copies_no_pool_config():
    # plan() runs on every turn of the master's loop, a turn per job's
    # report: copying each worker's config there cost a busy master most of its CPU.
    pool = CountedPool(("busy",), 64)
    made = pool.made[0]
    alive = [Alive(pid, pool, float(pid)) for pid in range(100, 164)]
    assert plan([pool], counts(pool), alive).empty
    assert pool.made[0] == made


def test_a_reloaded_pool_of_the_same_settings_keeps_its_workers():
    # Equal settings in another object (a reload that changed nothing of this pool, or only its count).
    before = Pool(("high",), 2, max_jobs=5)
    after = Pool(("high",), 3, max_jobs=5)
    result = plan([after], counts(after), [Alive(10, before, 1.0), Alive(11, before, 2.0)])
    assert result.retire == () and len(result.spawn) == 1
    changed = Pool(("high",), 2, max_jobs=6)
    result = plan([changed], counts(changed), [Alive(10, before, 1.0)])
    assert [reason for _, reason in result.retire] == ["its pool settings changed"]
