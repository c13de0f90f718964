"""One reserved job, and how it is performed inside the job child.

Three job shapes run unchanged:

* php-resque style: a class whose ``perform(self)`` takes no arguments and
  reads ``self.args`` (the payload's first argument, a dict for jobs enqueued
  by PHP), with optional ``setUp`` / ``tearDown``;
* Ruby style: a class whose ``perform`` takes the payload's args positionally
  (an instance method, ``@staticmethod`` or ``@classmethod``);
* a plain function, called with the payload's args.
"""

import inspect
import os
import traceback

from resqued.jobs import events

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY,
               inspect.Parameter.POSITIONAL_OR_KEYWORD,
               inspect.Parameter.VAR_POSITIONAL)
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the resqued package


class Job:
    """What the worker reserved: the queue, the decoded payload, the raw item."""

    def __init__(self, queue: str, payload: dict, raw: bytes = b"", worker_id: str = ""):
        self.queue = queue
        self.payload = payload
        self.raw = raw
        self.worker_id = worker_id

    @property
    def id(self):
        return self.payload.get("id")

    @property
    def label(self) -> str:
        """The id for a log line: Ruby's Resque.enqueue writes none."""
        return self.id or "(no id)"

    @property
    def job_class(self) -> str:
        return self.payload.get("class")

    @property
    def args(self) -> list:
        return self.payload.get("args", [])

    @property
    def php_args(self):
        """php-resque's ``$this->args``: the first payload argument."""
        args = self.args
        return args[0] if args else {}

    def __repr__(self):
        return f"<Job {self.job_class} id={self.id} queue={self.queue}>"


# Per function (and whether bound): inspecting a signature costs more than a
# no-op job, and a worker runs the same few classes thousands of times.
_positional: dict = {}
_static_perform: dict = {}


def _takes_positional(func) -> bool:
    key = (getattr(func, "__func__", func), hasattr(func, "__self__"))
    known = _positional.get(key)
    if known is None:
        try:
            params = inspect.signature(func).parameters.values()
            known = any(p.kind in _POSITIONAL for p in params)
        except (TypeError, ValueError):
            known = True
        _positional[key] = known
    return known


def warm(target) -> None:
    """Fill the caches above for ``target`` without running it. A worker
    does this once (standbys.py), so that its job children do not each
    inspect the same signature again."""
    try:
        if inspect.isclass(target):
            if _is_static(target):
                _takes_positional(target.perform)
            elif inspect.isfunction(target.perform):
                # What _perform_class will ask about: that function, bound to
                # an instance (its first parameter taken).
                func = target.perform
                params = list(inspect.signature(func).parameters.values())[1:]
                _positional[(func, True)] = any(p.kind in _POSITIONAL for p in params)
        else:
            _takes_positional(target)
    except Exception:
        pass  # a job class that cannot be looked at ahead is looked at when it runs


def perform(job: Job, target) -> bool:
    """Run ``target`` for ``job`` in this process.

    Returns False when a beforePerform listener or ``setUp`` raised
    DontPerform (the job is skipped, not failed); raises what the job raises.
    """
    try:
        events.trigger("beforePerform", job)
        if inspect.isclass(target):
            _perform_class(job, target)
        else:
            _call(target, job.args)
    except events.DontPerform:
        return False
    events.trigger("afterPerform", job)
    return True


def _perform_class(job: Job, cls) -> None:
    if _is_static(cls):
        instance, perform_method = None, cls.perform
    else:
        instance = cls()
        # php-resque's job instance properties.
        instance.args = job.php_args
        instance.queue = job.queue
        instance.job = job
        perform_method = instance.perform
    call_args = job.args if _takes_positional(perform_method) else ()
    set_up = getattr(instance, "setUp", None)
    tear_down = getattr(instance, "tearDown", None)
    if set_up is not None:
        set_up()
    try:
        _call(perform_method, call_args)
    finally:
        if tear_down is not None:
            tear_down()


def _call(func, args) -> None:
    try:
        func(*args)
    except TypeError as exc:
        if exc.__traceback__.tb_next is None:
            # Raised by the call itself (the arguments do not fit the
            # signature): no frame of the job's code is in the traceback, so
            # backtrace() names where the function is defined, as Ruby's
            # ArgumentError names the method.
            exc.__resqued_callee__ = func
        raise


def _is_static(cls) -> bool:
    static = _static_perform.get(cls)
    if static is None:
        static = _static_perform[cls] = isinstance(inspect.getattr_static(cls, "perform"),
                                                   (staticmethod, classmethod))
    return static


def exception_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def exception_lineage(exc: BaseException) -> list[str]:
    """The names of the exception's class and of its exception bases, as
    exception_name gives them: the worker matches retry_on against these,
    as the job child may have imported a class the worker never did."""
    return [cls.__qualname__ if cls.__module__ in ("builtins", "__main__") else f"{cls.__module__}.{cls.__qualname__}"
            for cls in type(exc).__mro__ if issubclass(cls, BaseException)]


def backtrace(exc: BaseException) -> list[str]:
    """The frames of the job's own code, innermost last, in Resque's
    ``file:line:in `name'`` form (resqued's frames are left out, as Resque
    leaves out its own). An exception with none of them (perform called with
    the wrong arguments) keeps its innermost frame, the call, and where the
    function called is defined, rather than an empty backtrace."""
    frames = traceback.extract_tb(exc.__traceback__)
    lines = [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in frames
             if not os.path.abspath(f.filename).startswith(_OWN_DIR + os.sep)]
    if lines or not frames:
        return lines
    lines = [f"{frames[-1].filename}:{frames[-1].lineno}:in `{frames[-1].name}'"]
    callee = getattr(exc, "__resqued_callee__", None)
    code = getattr(getattr(callee, "__func__", callee), "__code__", None)   # a bound method's function
    if code is not None:
        lines.append(f"{code.co_filename}:{code.co_firstlineno}:in `{code.co_name}'")
    return lines
