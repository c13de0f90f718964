"""The master's one decision, as a pure function: given the pools the config
wants and the workers that are alive, which workers to start and which to stop.

A worker belongs to its pool by the pool's queue list (its name). A worker whose
pool no longer exists, or whose pool settings changed since it was started, is
retired and replaced; a stopping worker no longer counts, so its replacement
starts at once while it finishes its job. Surplus workers are retired oldest
first (resque-pool's rule): the oldest has the most memory to give back.
"""

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Alive:
    pid: int
    pool: object          # the PoolConfig the worker was started with
    started: float
    stopping: bool = False


@dataclass(frozen=True)
class Plan:
    spawn: tuple          # PoolConfigs, one per worker to start
    retire: tuple         # (pid, reason) pairs

    @property
    def empty(self) -> bool:
        return not self.spawn and not self.retire


def same_settings(a, b) -> bool:
    """Do two PoolConfigs run workers the same way? The count is not a
    worker's setting: changing it adds or retires workers, it replaces none.
    Asked of every worker on every turn of the master's loop (a turn per
    job's report): no copies of the configs (dataclasses.replace made two a
    worker a turn, most of a busy master's CPU), and the same object, as
    every worker's is until a reload, answers at once."""
    if a is b:
        return True
    return type(a) is type(b) and all(getattr(a, f.name) == getattr(b, f.name) for f in fields(a) if f.name != "count")


def plan(pools, counts: dict, alive, blocked=frozenset()) -> Plan:
    """``pools``: the configured PoolConfigs; ``counts``: pool name -> desired
    worker count (config count adjusted by TTIN/TTOU); ``alive``: Alive
    records, or anything with their four attributes (the master passes its
    Child records as they are: copying 64 of them a turn was a quarter of
    this function's cost);
    ``blocked``: pool names that may not spawn now (backing off, or failed)."""
    by_name = {pool.name: pool for pool in pools}
    retire, spawn = [], []
    current: dict[str, list] = {name: [] for name in by_name}
    for worker in alive:
        if worker.stopping:
            continue
        pool = by_name.get(worker.pool.name)
        if pool is None:
            retire.append((worker.pid, "its pool was removed from the config"))
        elif not same_settings(worker.pool, pool):
            retire.append((worker.pid, "its pool settings changed"))
        else:
            current[pool.name].append(worker)
    for name, pool in by_name.items():
        workers = sorted(current[name], key=lambda w: (w.started, w.pid))
        want = max(0, counts.get(name, pool.count))
        surplus = len(workers) - want
        for worker in workers[:max(0, surplus)]:
            retire.append((worker.pid, f"pool {name} has {len(workers)} workers for a count of {want}"))
        if surplus < 0 and name not in blocked:
            spawn.extend([pool] * -surplus)
    return Plan(tuple(spawn), tuple(retire))
