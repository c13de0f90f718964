"""Retries with backoff, as a job class or its pool asks for them: the
policy, its delays, and whether a failed attempt is retried. Pure (no
process or Redis code): the registry and the config check policies with
it, the worker (worker/retrying.py) acts on what it decides.

A policy is a mapping (``retry = {"attempts": 5, "backoff": "exponential",
"base": 2, "max": 3600, "jitter": 0.1}``) or a whole number (the attempts,
the rest defaulted). ``attempts`` counts every run, the first included:
resque-retry's ``@retry_limit`` is ``attempts - 1``. The delay before retry
n (n = 1 after the first failure) is ``base`` (fixed), ``base * n``
(linear), ``base ** n`` (exponential), or the n-th of a list of delays (its
last one again past its end); then at most ``max``, spread by +/- ``jitter``
of itself so that a burst of failures does not come back as one burst.
"""

import inspect
import math

BACKOFFS = ("exponential", "linear", "fixed")
DEFAULTS = {"backoff": "exponential", "base": 2.0, "max": 3600.0, "jitter": 0.1,
            "dirty_exit": True, "timeout": True}
KEYS = ("attempts", *DEFAULTS)
# The names the worker gives failures it detects itself (resque/outcome.py
# has them too; jobs/ stays below resque/, so they are repeated here).
DIRTY_EXIT = "Resque::DirtyExit"
JOB_TIMEOUT = "resqued.JobTimeout"
_UNSET = object()
OWN = "job_retry"     # ours: wins over PLAIN, refused when invalid
PLAIN = "retry"       # the common name: ignored when not a policy


def class_name(cls) -> str:
    """An exception class's name as a failed entry gives it (jobs/job.exception_name)."""
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


class DontRetry(Exception):
    """Raised by a job to fail at once, whatever attempts its policy has left."""


# Named as users import it (resqued.DontRetry), as a failed entry names it.
DontRetry.__module__ = "resqued"
DONT_RETRY = class_name(DontRetry)


class PolicyError(ValueError):
    """A bad retry policy; ``key`` names the part at fault (None: the whole)."""

    def __init__(self, key, problem):
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key, self.problem = key, problem


def _number(key, value, minimum, above=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(key, f"expected a number of seconds, got {_shown(value)}")
    if value < minimum or (above and value == minimum):
        raise PolicyError(key, f"must be {'greater than' if above else 'at least'} {minimum:g}, got {value:g}")
    return float(value)


def normalize(value) -> dict | None:
    """The policy as a plain dict with every key (JSON: it crosses to the
    worker in its spec), None for no retries; PolicyError if it is bad."""
    if value is None or value is False:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"attempts": value}
    if not isinstance(value, dict):
        raise PolicyError(None, f"expected a number of attempts or a mapping, got {_shown(value)}")
    unknown = [key for key in value if key not in KEYS]
    if unknown:
        raise PolicyError(unknown[0], f"unknown retry setting; known: {', '.join(KEYS)}")
    policy = {**DEFAULTS, **value}
    backoff = policy["backoff"]
    if isinstance(backoff, (list, tuple)):
        if not backoff:
            raise PolicyError("backoff", "an empty list of delays")
        policy["backoff"] = [_number("backoff", delay, 0.0) for delay in backoff]
        policy.setdefault("attempts", len(backoff) + 1)
    elif backoff not in BACKOFFS:
        raise PolicyError("backoff", f"expected {', '.join(BACKOFFS)} or a list of delays, got {_shown(backoff)}")
    attempts = policy.get("attempts", _UNSET)
    if attempts is _UNSET:
        raise PolicyError("attempts", "missing: how many runs in all, the first included")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise PolicyError("attempts", f"expected a whole number >= 1, got {_shown(attempts)}")
    policy["base"] = _number("base", policy["base"], 0.0)
    policy["max"] = _number("max", policy["max"], 0.0, above=True)
    policy["jitter"] = _number("jitter", policy["jitter"], 0.0)
    if policy["jitter"] > 1:
        raise PolicyError("jitter", f"a fraction of the delay, at most 1, got {policy['jitter']:g}")
    for key in ("dirty_exit", "timeout"):
        if not isinstance(policy[key], bool):
            raise PolicyError(key, f"expected true or false, got {_shown(policy[key])}")
    return policy if policy["attempts"] > 1 else None


def delay(policy: dict, retry: int, fraction: float = 0.5) -> float:
    """Seconds before retry number ``retry`` (1: after the first failure);
    ``fraction`` in [0, 1) draws the jitter (0.5: none)."""
    backoff, base = policy["backoff"], policy["base"]
    if isinstance(backoff, list):
        seconds = backoff[min(retry, len(backoff)) - 1]
    elif backoff == "fixed":
        seconds = base
    elif backoff == "linear":
        seconds = base * retry
    else:
        try:
            seconds = base ** retry
        except OverflowError:
            seconds = math.inf
    seconds = min(seconds, policy["max"])
    seconds *= 1 + policy["jitter"] * (2 * fraction - 1)
    return max(0.0, min(seconds, policy["max"]))


def exception_names(value, attribute: str) -> tuple[str, ...]:
    """``retry_on`` / ``give_up_on`` as names: an exception class, a name
    as a failed entry shows it (``myapp.errors.Busy``, ``ValueError``), or
    a list or tuple of them; ValueError naming what is wrong."""
    items = value if isinstance(value, (list, tuple)) else [value]
    names = []
    for item in items:
        if inspect.isclass(item) and issubclass(item, BaseException):
            names.append(class_name(item))
        elif isinstance(item, str) and item.strip():
            names.append(item.strip())
        else:
            raise ValueError(f"{attribute} must be exception classes or their names, not {_shown(item)}")
    return tuple(names)


class ClassRetries:
    """What a job class (or function) says about retries, validated once."""

    # ``job_retry`` is ours: it wins and a bad one is refused (PolicyError).
    # A plain ``retry`` (the name users ask for) may be some library's
    # method or setting: not a valid policy, it is ignored (``ignored``
    # says why, the registry warns at load).
    def __init__(self, target):
        self.ignored = None
        own = getattr(target, OWN, _UNSET)
        if own is not _UNSET:
            self.has_own, self.policy = True, normalize(own)
        else:
            plain = getattr(target, PLAIN, _UNSET)
            try:
                self.policy = None if plain is _UNSET else normalize(plain)
                self.has_own = plain is not _UNSET
            except PolicyError as exc:
                self.has_own, self.policy = False, None
                self.ignored = f"{PLAIN} is not a retry policy ({exc}): ignored (set {OWN} for the job's own)"
        on = getattr(target, "retry_on", None)
        self.retry_on = None if on is None else exception_names(on, "retry_on")
        self.give_up_on = exception_names(getattr(target, "give_up_on", None) or (), "give_up_on")

    def policy_in(self, pool_policy: dict | None) -> dict | None:
        """The class's own policy (``retry = None``: none) beats the pool's ``retry``."""
        return self.policy if self.has_own else pool_policy


def retry_ignored(target) -> str | None:
    """Why a class's plain ``retry`` is not taken as its policy, if it is not."""
    try:
        return ClassRetries(target).ignored
    except ValueError:      # refused instead: retry_problem says why
        return None


def retry_problem(target) -> str | None:
    """What is wrong with a job's ``job_retry``, ``retry_on`` or ``give_up_on``, if anything."""
    try:
        ClassRetries(target)
    except PolicyError as exc:
        return f"{OWN}: {exc}" if exc.key else f"{OWN}: {exc.problem}"
    except ValueError as exc:
        return str(exc)
    return None


def retry_delay(policy: dict | None, retries: ClassRetries, chain, attempt: int,
                fraction: float = 0.5) -> float | None:
    """Seconds before the next attempt of a job whose attempt number
    ``attempt`` failed with ``chain`` (its exception's name, then its base
    classes' names); None: it is not retried (its policy is spent, or none,
    or the exception says so)."""
    if policy is None or attempt >= policy["attempts"]:
        return None
    names = set(chain)
    if DONT_RETRY in names or names & set(retries.give_up_on):
        return None
    if chain[0] == DIRTY_EXIT:
        wanted = policy["dirty_exit"]
    elif chain[0] == JOB_TIMEOUT:
        wanted = policy["timeout"]
    else:
        # retry_on names what the job raises; a dirty exit and a timeout
        # have their own switches above (the job raised nothing).
        wanted = retries.retry_on is None or bool(names & set(retries.retry_on))
    return delay(policy, attempt, fraction) if wanted else None


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
