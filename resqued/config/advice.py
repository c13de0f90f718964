"""Warnings about a config that loads but will not do what it seems to ask
(said by ``resqued --check`` and at the master's start, not refused).

A pool's ``retry:`` without the scheduler enabled is one: its retries are
delayed jobs, which wait until a scheduler moves them. It does not enable
the scheduler by itself: one may run elsewhere (another host's master,
``python -m resqued.scheduler`` on its own), and which processes a master
starts is said in pool.yml, in one place, not inferred from a pool's key.
"""


def warnings(config) -> list[str]:
    retrying = [pool.name for pool in config.pools if pool.retry is not None]
    if retrying and not config.scheduler_enabled:
        return [f"retries wait for a scheduler: set scheduler: true (pools with retry: {', '.join(retrying)}), "
                "or run one elsewhere"]
    return []
