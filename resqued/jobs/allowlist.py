"""The allow-list: which payload ``class`` names may run, and what they run.

A payload is data from the network. Its ``class`` is looked up in a table
built once, at worker start, from the modules the operator listed (``jobs``,
APP_INCLUDE, ``--app``) and from ``aliases``. It is never imported, never
passed to getattr, never evaluated: a name that is not in the table — such as
``os.system`` or ``builtins.eval`` — fails the job and runs nothing.
"""

import importlib
import importlib.util
import inspect
import logging
import os
import re
import sys
import traceback

from resqued.jobs.retries import retry_ignored, retry_problem
from resqued.jobs.timeouts import timeout_ignored, timeout_problem

log = logging.getLogger("resqued.jobs")


_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep   # the resqued package


class UnknownJob(LookupError):
    """The payload names no job of the allow-list."""


class RegistryError(ValueError):
    """The operator's job modules or aliases cannot be loaded."""


def is_job(obj, module_name: str) -> bool:
    """A job is a public class with a callable ``perform``, or a public
    function, *defined* in the module (imported helpers don't count)."""
    if getattr(obj, "__module__", None) != module_name:
        return False
    if inspect.isclass(obj):
        return callable(getattr(obj, "perform", None))
    return inspect.isfunction(obj)


def import_module_or_file(spec: str):
    """Import ``spec``: a dotted module name, or a path to a ``.py`` file."""
    if spec.endswith(".py") or os.sep in spec:
        path = os.path.abspath(spec)
        if not os.path.isfile(path):
            raise RegistryError(f"job file {spec!r} does not exist")
        package = package_of(path)
        clash = package and _clash(*package)
        if package and not clash:
            return _import_package_file(spec, path, *package)
        return _import_lone_file(spec, path, package, clash)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and (spec == exc.name or spec.startswith(exc.name + ".")):
            where = (f"the directory that holds {spec.split('.')[0]}/" if "." in spec else "its directory")
            raise RegistryError(
                f"job module {spec!r} failed to import: {_why(exc)}: is it installed, or {where} on "
                f"PYTHONPATH? Or name the file: jobs: [path/to/{spec.replace('.', '/')}.py]"
            ) from exc
        raise RegistryError(f"job module {spec!r} failed to import: {_why(exc)}") from exc
    except Exception as exc:
        raise RegistryError(f"job module {spec!r} failed to import: {_why(exc)}") from exc


def package_of(path: str) -> tuple[str, str] | None:
    """For a file in a package (its directory has an ``__init__.py``): its
    dotted module name and the directory that holds the top package, the one
    PYTHONPATH would need (``myapp.jobs``, ``/srv/app`` for
    ``/srv/app/myapp/jobs.py``). None for a lone file."""
    directory, stem = os.path.split(os.path.splitext(path)[0])
    parts = [] if stem == "__init__" else [stem]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, name = os.path.split(directory)
        parts.insert(0, name)
    if not parts or parts == [stem] or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts), directory


def _clash(module_name: str, root: str) -> str | None:
    """What else the file's top package name imports, if anything: an
    installed copy, a standard library module. Importing the file's package
    under that name would replace it for the whole worker, so it is not done."""
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names:
        # Even when the file's package comes first on sys.path (the directory
        # resqued started in): the worker itself needs the standard one.
        return "a module of the standard library"
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return "a module that cannot be looked at"
    if spec is None:
        return None
    here = os.path.realpath(os.path.join(root, top))
    if any(os.path.realpath(location) == here for location in spec.submodule_search_locations or ()):
        return None
    return spec.origin or ", ".join(spec.submodule_search_locations or ()) or "a built-in module"


def _import_package_file(spec: str, path: str, module_name: str, root: str):
    """Import a file of a package as that package's module, as Python would
    with ``root`` on PYTHONPATH, so its relative imports work: ``myapp/jobs.py``
    is ``myapp.jobs``. sys.path is left alone (the root's other files must not
    shadow installed modules): the top package is loaded from its file, and
    its submodules are found through its ``__path__``."""
    top = module_name.split(".")[0]
    loaded = top in sys.modules
    try:
        if not loaded:
            init = os.path.join(root, top, "__init__.py")
            package_spec = importlib.util.spec_from_file_location(
                top, init, submodule_search_locations=[os.path.dirname(init)])
            package = importlib.util.module_from_spec(package_spec)
            sys.modules[top] = package
            package_spec.loader.exec_module(package)
        module = importlib.import_module(module_name)
        if os.path.realpath(getattr(module, "__file__", None) or "") != os.path.realpath(path):
            raise ImportError(f"module {module_name} is already imported from {module.__file__}")
    except Exception as exc:
        if not loaded:
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                del sys.modules[name]
        raise RegistryError(f"job file {spec!r} failed to import (as module {module_name}): {_why(exc)}") from exc
    # Its jobs are also named as a user would guess: jobs.Hello for myapp/jobs.py.
    module.__resqued_name__ = module_name.rsplit(".", 1)[-1]
    return module


def _import_lone_file(spec: str, path: str, package: tuple[str, str] | None, clash: str | None):
    """Import a file under a name of its own (``resqued_app_<stem>``): a lone
    file, or one whose package name is taken (``clash``)."""
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    name = f"resqued_app_{stem}"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == path:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    # Its jobs are also named as a user would guess: myjobs.Hello for myjobs.py.
    module.__resqued_name__ = os.path.splitext(os.path.basename(path))[0]
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        hint = ""
        if package and isinstance(exc, ImportError):
            top = package[0].split(".")[0]
            hint = f": it is in package {top}, but {top} imports {clash}: rename the package"
            if top not in sys.stdlib_module_names:
                hint += f", or name it as a module, jobs: [{package[0]}], with {package[1]} first on PYTHONPATH"
        raise RegistryError(f"job file {spec!r} failed to import: {_why(exc)}{hint}") from exc
    return module


def _why(exc: BaseException) -> str:
    """The exception, and where in the application's code it was raised (the
    innermost frame outside importlib), so a failing import says where."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename
              and not f.filename.startswith(("<frozen", _OWN_DIR))]
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class JobRegistry:
    def __init__(self):
        self._dotted: dict[str, object] = {}
        self._bare: dict[str, object] = {}
        self._aliases: dict[str, object] = {}
        self.modules: list[str] = []   # module names
        self.entries: list[str] = []   # as jobs: names them (a module, or a file's path), for messages

    @classmethod
    def build(cls, modules=(), aliases=None, warn: bool = True) -> "JobRegistry":
        """``warn``: log the class attributes ignored (false where another
        build in the same check said it already)."""
        registry = cls()
        for spec in modules:
            registry.add_module(import_module_or_file(spec))
            registry.entries.append(spec)
        for name, target in (aliases or {}).items():
            registry.add_alias(name, target)
        for target in registry.targets():
            problem = timeout_problem(target) or retry_problem(target)
            where = getattr(sys.modules.get(target.__module__), "__file__", None) or target.__module__
            if problem:
                raise RegistryError(f"job {target.__qualname__} ({where}): {problem}")
            ignored = [why for why in (timeout_ignored(target), retry_ignored(target)) if why] if warn else []
            if ignored:
                log.warning("job %s (%s): %s", target.__qualname__, where, "; ".join(ignored))
        return registry

    def add_module(self, module) -> None:
        self.modules.append(module.__name__)
        guessed = getattr(module, "__resqued_name__", None)
        for name, obj in vars(module).items():
            if name.startswith("_") or not is_job(obj, module.__name__):
                continue
            self._dotted[f"{module.__name__}.{name}"] = obj
            if guessed:
                self._dotted.setdefault(f"{guessed}.{name}", obj)
            # The first module listed wins a bare name: the list is a priority order.
            self._bare.setdefault(name, obj)

    def add_alias(self, name: str, target: str) -> None:
        # A job already allowed can be named as payloads name it (bare or dotted).
        known = self._dotted.get(target) or self._bare.get(target)
        if known is not None:
            self._aliases[name] = known
            return
        module_name, _, attr = target.rpartition(".")
        if not module_name:
            raise RegistryError(f"alias {name!r}: target {target!r} is not a dotted module.Name")
        try:
            module = import_module_or_file(module_name)
        except RegistryError as exc:
            # Say which alias it was: the module error alone does not point at the config entry.
            raise RegistryError(f"alias {name!r}: {exc}") from exc
        obj = vars(module).get(attr)
        if obj is None or attr.startswith("_") or not is_job(obj, module.__name__):
            raise RegistryError(f"alias {name!r}: {target!r} is not a job class or function")
        self._aliases[name] = obj

    def resolve(self, name: str):
        for table in (self._aliases, self._dotted, self._bare):
            obj = table.get(name)
            if obj is not None:
                return obj
        raise UnknownJob(f"job class {_shown(name)} is not allowed: it is neither an alias nor a job "
                         f"defined in the job modules ({', '.join(self.entries) or 'none listed'})")

    def targets(self) -> list:
        """Every job class or function the table can resolve to."""
        unique = {id(obj): obj for table in (self._aliases, self._dotted, self._bare) for obj in table.values()}
        return list(unique.values())

    def names(self) -> list[str]:
        return sorted(set(self._aliases) | set(self._bare) | set(self._dotted))


def _shown(name: str, limit: int = 200) -> str:
    """The name as an error message shows it: quoted, and cut short, since a
    payload can name a class of any length (the failure entry keeps it whole).
    A PHP name keeps its single backslashes, which repr would double; only
    characters that cannot be printed, such as a newline that would forge a
    log line, are escaped."""
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in name[:limit])
    return f"'{shown}'" if len(name) <= limit else f"'{shown}'… ({len(name)} characters)"
