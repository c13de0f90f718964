"""A command pool's checks (docs/command-pools.md): a pool with ``command:``
runs a non-Python Resque worker (php-resque's ``bin/resque``, Ruby's
``rake resque:work``) COUNT times. The settings that shape how resqued's own
workers run jobs mean nothing to such a worker: set in the pool itself they
are refused, each with a one-line reason; set under ``defaults:`` they are
left to the Python pools.
"""

from resqued.config.settings import COMMAND

# Setting -> why a command pool refuses it.
REFUSED = {
    "fork": "the command's worker decides how it runs its jobs (php-resque and Ruby Resque fork one per job)",
    "job_forker": "the command's worker forks its own jobs",
    "job_timeout": "resqued cannot stop a job inside another program's worker",
    "retry": "the command's worker records its jobs' failures itself (use its own retry plugin)",
    "max_memory_hard": "resqued cannot tell the command's job child from the rest of its tree "
                       "(max_memory recycles it between jobs)",
}
# Variables the pool's settings give: COUNT is one worker per process, always.
SINGLE_PROCESS = "a command pool runs one worker per process (php-resque's COUNT > 1 forks them and exits): " \
                 "set the pool's count instead"

# Variables the master must own, never given to a command worker: with them
# it would leave the master's sight.
MASTER_OWNED = {
    "BACKGROUND": "the master runs the worker: Ruby's rake resque:work would daemonize out of its process group",
    "PIDFILE": "the master writes each worker's pidfile (pid_dir): php-resque would overwrite one file per pool",
}


def check(r, merged: dict) -> dict:
    """``merged``: a pool's {key: (value, node, path)}, defaults: included.
    Raise at the first key a command pool refuses (or a command key
    without ``command``); return the values with the refused settings that
    came from defaults: set back to their defaults."""
    value = {key: located[0] for key, located in merged.items()}
    if "command" not in merged:
        for key in COMMAND:
            if key in merged:
                _, node, path = merged[key]
                raise r.fail(node, path, f"{key} is only for a command pool: add command: [program, args...]")
        return value
    for key, why in REFUSED.items():
        if key in merged and _own(merged[key]):
            _, node, path = merged[key]
            raise r.fail(node, path, f"not for a command pool: {why}")
        value.pop(key, None)
    env = value.get("env") or {}
    if env.get("COUNT", "1").strip() != "1":
        _, node, path = merged["env"]
        raise r.fail(node, path, f"COUNT={env['COUNT']}: {SINGLE_PROCESS}")
    for name in env.keys() & MASTER_OWNED:
        _, node, path = merged["env"]
        raise r.fail(node, path, f"{name}: {MASTER_OWNED[name]}")
    return value


def _own(located) -> bool:
    """Set in the pool itself, not inherited from defaults:."""
    return located[2].startswith("pools")


