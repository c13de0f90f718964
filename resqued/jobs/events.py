"""Lifecycle events, as php-resque's Resque_Event: listeners registered by
name, called in registration order.

=================  ==========================  ===============================
event              called with                 where
=================  ==========================  ===============================
beforeFirstFork    worker                      worker, once, before its first job
childReady         (nothing)                   each job child as it starts, before its job is known
beforeFork         job                         worker, before forking the job child
afterFork          job                         job child, right after the fork
beforePerform      job                         job child; raise DontPerform to skip
afterPerform       job                         job child, after a successful perform
onFailure          exception, job              child (exception) or worker (dirty exit, timeout)
beforeEnqueue      class, args, queue, id      enqueuing process; raise DontCreate to cancel
afterEnqueue       class, args, queue, id      enqueuing process
=================  ==========================  ===============================

Python spellings (``before_perform``) are accepted for every name.
``listen(name)`` without a callback is a decorator.
"""

import re

EVENTS = ("beforeFirstFork", "childReady", "beforeFork", "afterFork", "beforePerform",
          "afterPerform", "onFailure", "beforeEnqueue", "afterEnqueue")
_BY_SNAKE = {re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower(): name for name in EVENTS}

_listeners: dict[str, list] = {name: [] for name in EVENTS}


class DontPerform(Exception):
    """Raised by a beforePerform listener (or a job's setUp) to skip the job."""


class DontCreate(Exception):
    """Raised by a beforeEnqueue listener to cancel the enqueue."""


def _canonical(event: str) -> str:
    if event in _listeners:
        return event
    if event in _BY_SNAKE:
        return _BY_SNAKE[event]
    raise ValueError(f"unknown event {event!r}; events are: {', '.join(EVENTS)}")


def listen(event: str, callback=None):
    """Call ``callback`` on ``event``; without one, a decorator that
    registers the function it decorates (and returns it unchanged)."""
    callbacks = _listeners[_canonical(event)]
    if callback is None:
        def register(func):
            callbacks.append(func)
            return func
        return register
    callbacks.append(callback)
    return None


def stop_listening(event: str, callback) -> bool:
    callbacks = _listeners[_canonical(event)]
    if callback in callbacks:
        callbacks.remove(callback)
        return True
    return False


def clear_listeners() -> None:
    for callbacks in _listeners.values():
        callbacks.clear()


def has_listeners(event: str) -> bool:
    return bool(_listeners[_canonical(event)])


def trigger(event: str, *data) -> None:
    for callback in list(_listeners[_canonical(event)]):
        callback(*data)
