"""The shape of the package, read from its source: no import cycles (imports
inside functions included), the layers each process role may not reach, no
import inside a function without a comment that says why it is there, and
loggers named after their package."""

import ast
import io
import os
import re
import sys
import tokenize

from conftest import ROOT

PACKAGE = "resqued"

# Function-level imports that need no comment of their own: (file, imported
# module) -> why. Keep it short; a comment beside the import reads better.
ALLOWED_LATE_IMPORTS: dict[tuple[str, str], str] = {}


def source_modules() -> dict[str, str]:
    """Every module of the package: dotted name -> path (a package is its __init__)."""
    modules = {}
    top = os.path.join(ROOT, PACKAGE)
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if os.path.exists(os.path.join(folder, d, "__init__.py")))
        parts = os.path.relpath(folder, ROOT).split(os.sep)
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            stem = name[:-3]
            dotted = ".".join(parts if stem == "__init__" else [*parts, stem])
            modules[dotted] = os.path.join(folder, name)
    return modules


MODULES = source_modules()


def parse(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def imported_names(node, module: str) -> list[str]:
    """The dotted names an import statement (or ``importlib.import_module``
    with a literal name) brings in, ``from a import b`` as ``a.b`` when that
    is a module of ours, else ``a``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the package of ``module``
            package = module if MODULES.get(module, "").endswith("__init__.py") else module.rpartition(".")[0]
            anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    if is_import_module_call(node):
        return [node.args[0].value]
    return []


def is_import_module_call(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module" and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "importlib" and len(node.args) >= 1
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def is_import(node) -> bool:
    return isinstance(node, (ast.Import, ast.ImportFrom)) or is_import_module_call(node)


def import_graph(externals: bool = False) -> dict[str, set[str]]:
    """module -> the modules of ours it imports, anywhere in its source
    (``externals``: and the other modules it imports, by their full name)."""
    graph = {}
    for module, path in MODULES.items():
        targets = set()
        for node in ast.walk(parse(path)):
            for name in imported_names(node, module):
                if (name in MODULES or externals) and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle inside ``component``, as the chain of imports: [a, b, ..., a]."""
    start, inside = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & inside):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"{component} is no cycle")


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # the spawner imports the worker's code once it has its title, inside a function
    assert "resqued.spawner.entrypoints" in graph["resqued.spawner.main"]
    assert "resqued.resque.client" in graph["resqued"]  # the lazy Resque
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(toy) == [["a", "b", "c"]]
    assert cycle_through(toy, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    found = [cycle_through(graph, component) for component in cycles(graph)]
    assert not found, "import cycles (each module imports the next):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found)


# What each process role must never load, even through a function-level
# import or a module of ours in between: (modules, forbidden, why). A name
# is forbidden with everything under it (resqued.worker: resqued.worker.*).
# A module's package __init__ runs on import too; resqued's own imports its
# client lazily (PEP 562), and tests/master/test_spawner.py imports every
# module of the master in a fresh interpreter to see that nothing does.
LAYERS = [
    ("resqued.master", ("redis", "hiredis", "resqued.worker", "resqued.redisio", "prometheus_client"),
     "the master process supervises: redis-py and the worker's code live in the spawner (resqued.spawner), "
     "Prometheus's client in the exporter (resqued.exporter)"),
    ("resqued.exporter", ("resqued.master", "resqued.worker", "resqued.spawner"),
     "the metrics exporter reads Redis and asks the master over its control socket: it runs no master or "
     "worker code"),
    ("resqued.worker", ("prometheus_client",),
     "a worker reports finished jobs to its master (protocols/reportpipe.py), which counts them"),
    ("resqued.config", ("redis", "hiredis"),
     "the master, resquectl and env mode read configs; URL helpers are config/redisurl.py"),
    ("resqued.ctl", ("resqued.worker",),
     "resquectl talks to Redis and to the master, and runs no worker code"),
    ("resqued.spawner", ("resqued.master",),
     "the spawner and what it forks run no master code: master/ is what runs in the master"),
    ("resqued.worker", ("resqued.master", "resqued.spawner"),
     "a worker is started by the spawner and reports to the master through protocols/"),
    ("resqued.web", ("resqued.master", "resqued.worker", "resqued.spawner"),
     "the dashboard reads Redis as resquectl does and asks a master only through its control socket"),
    ("resqued.scheduler", ("resqued.master", "resqued.worker", "resqued.spawner"),
     "the scheduler is a process of its own that talks to Redis; the master only starts it"),
    ("resqued.fleet", ("resqued.master", "resqued.worker", "resqued.spawner"),
     "the fleet advertiser writes its master's record to Redis and asks the master only over its control "
     "socket; resquectl, the dashboard and workers read the fleet's keys"),
]


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden_reach(graph: dict[str, set[str]], start: str, forbidden) -> list[str] | None:
    """The chain of imports from ``start`` to the first forbidden module it
    reaches (breadth first: a shortest one), or None."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w in paths:
                continue
            paths[w] = paths[v] + [w]
            if under(w, forbidden):
                return paths[w]
            queue.append(w)
    return None


def test_the_reach_check_follows_our_modules():
    toy = {"m.a": {"m.b"}, "m.b": {"x.c"}, "x.c": {"redis.client"}, "m.d": {"redisx"}}
    assert forbidden_reach(toy, "m.a", ("redis",)) == ["m.a", "m.b", "x.c", "redis.client"]
    assert forbidden_reach(toy, "m.d", ("redis",)) is None


def test_each_process_role_reaches_only_its_layers():
    graph = import_graph(externals=True)
    found = []
    for package, forbidden, why in LAYERS:
        modules = [m for m in MODULES if under(m, (package,))]
        assert modules, f"no module under {package}"
        for module in modules:
            chain = forbidden_reach(graph, module, forbidden)
            if chain:
                found.append(f"{' -> '.join(chain)}  ({why})")
    assert not found, "a module reaches what its process must not load:\n" + "\n".join(found)


def comment_lines(source: str) -> dict[int, str]:
    """line number -> the text of the comment on it."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    return comments


def says_why(text: str) -> bool:
    """A comment that explains, not a linter's pragma."""
    words = [w for w in text.split() if not w.startswith(("noqa", "type:", "pragma"))]
    return len(words) >= 3


def late_imports():
    """(file, line, imported names, the comment that explains it or None) for
    every import inside a function or method."""
    for module, path in MODULES.items():
        with open(path, encoding="utf-8") as f:
            source = f.read()
        lines = source.splitlines()
        comments = comment_lines(source)
        seen = set()
        for func in ast.walk(ast.parse(source, path)):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            for node in ast.walk(func):
                if not is_import(node) or node.lineno in seen:
                    continue
                seen.add(node.lineno)
                yield (os.path.relpath(path, ROOT), node.lineno, imported_names(node, module),
                       why_comment(node, lines, comments))


def why_comment(node, lines, comments):
    """The comment on the import's line(s), or just above it or above the run
    of imports it belongs to."""
    for n in range(node.lineno, node.end_lineno + 1):
        if n in comments and says_why(comments[n]):
            return comments[n]
    n = node.lineno - 1
    while n >= 1 and _is_import_line(lines[n - 1]) and n not in comments:
        n -= 1
    block = []
    while n >= 1 and lines[n - 1].lstrip().startswith("#"):
        block.insert(0, comments.get(n, ""))
        n -= 1
    text = " ".join(block)
    return text if says_why(text) else None


def _is_import_line(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith(("import ", "from ")) or "importlib.import_module(" in stripped


def test_imports_inside_functions_say_why():
    found = list(late_imports())
    assert found, "the scan finds no import inside a function: it is broken"
    unexplained = [f"{path}:{line}: {', '.join(dict.fromkeys(names))}" for path, line, names, why in found
                   if why is None and not all((path, name) in ALLOWED_LATE_IMPORTS for name in names)]
    imported = {(path, name) for path, _, names, _ in found for name in names}
    assert set(ALLOWED_LATE_IMPORTS) <= imported, "ALLOWED_LATE_IMPORTS names an import that is gone"
    assert not unexplained, (
        "imports inside functions without a comment saying why (move them to the top, or say why "
        "they must wait, e.g. '# keeps redis-py out of the master'):\n" + "\n".join(unexplained))


def module_loggers():
    """(module, file, line, name) for each module-level ``x = logging.getLogger("...")``:
    the logger a module writes through (not one it configures, as logs.setup does)."""
    for module, path in MODULES.items():
        for node in parse(path).body:
            value = node.value if isinstance(node, ast.Assign) else None
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                    and value.func.attr == "getLogger" and value.args and isinstance(value.args[0], ast.Constant)):
                yield module, os.path.relpath(path, ROOT), node.lineno, value.args[0].value


# Packages whose log lines come from the master's side of resqued: the
# spawner and what it forks write as resqued.master, as they did before they
# had a package of their own (the JSON logs' "logger" field is read by tools).
LOGGER_OF = {"resqued.spawner": "resqued.master"}


def package_of(module: str) -> str:
    """resqued for resqued's own top-level modules, else resqued.<its first folder>."""
    parts = module.split(".")
    in_a_folder = len(parts) > 2 or MODULES[module].endswith("__init__.py")
    return ".".join(parts[:2]) if in_a_folder else parts[0]


def test_loggers_are_named_after_their_package():
    """A log line's logger (the "logger" field of JSON logs) says which part
    of resqued wrote it: resqued.master, resqued.worker (its execution/ too),
    resqued.resque, ...; plain resqued for the command line."""
    found = list(module_loggers())
    assert any(path.endswith("arbiter.py") for _, path, _, _ in found), "the scan finds no logger"
    expected = {module: LOGGER_OF.get(package_of(module), package_of(module)) for module, _, _, _ in found}
    wrong = [f"{path}:{line}: {name!r}, not {expected[module]!r}"
             for module, path, line, name in found if name != expected[module]]
    assert not wrong, "loggers not named after their package:\n" + "\n".join(wrong)


# Configuration sits below the process roles: every role reads it, it reads none of them.
ROLES = ("resqued.worker", "resqued.master", "resqued.spawner", "resqued.envmode", "resqued.ctl")


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_config_reaches_no_process_role():
    graph = import_graph()
    wrong = [f"{module} imports {target}" for module in graph if in_package(module, "resqued.config")
             for target in sorted(graph[module]) if any(in_package(target, role) for role in ROLES)]
    assert not wrong, "config/ must not import a process role's package:\n" + "\n".join(wrong)


def test_the_worker_spec_is_pure():
    """config/workerspec.py is built by the master, which loads no redis-py:
    it imports nothing of ours outside config/, and nothing that connects."""
    path = MODULES["resqued.config.workerspec"]
    names = {name for node in ast.walk(parse(path)) for name in imported_names(node, "resqued.config.workerspec")}
    ours = sorted(n for n in names if in_package(n, PACKAGE) and not in_package(n, "resqued.config"))
    assert not ours, f"resqued.config.workerspec imports {ours}"
    assert not {n for n in names if in_package(n, "redis") or in_package(n, "resqued.redisio")}


def test_a_worker_is_built_from_its_spec_alone():
    """The one spec crosses to the worker (config/workerspec.py): neither
    the worker's package nor the module that starts a worker process
    (``def worker_main``) rebuilds a Config or a PoolConfig."""
    starters = [m for m, path in MODULES.items()
                if any(isinstance(n, ast.FunctionDef) and n.name == "worker_main" for n in parse(path).body)]
    assert starters, "no module defines worker_main: the scan is broken"
    graph = import_graph()
    wrong = [m for m in graph if (in_package(m, "resqued.worker") or m in starters)
             and "resqued.config.model" in graph[m]]
    assert not wrong, f"these rebuild the config instead of reading the worker's spec: {wrong}"


# -- protocols -----------------------------------------------------------------

# Each protocol between processes, and the modules at its two ends: both
# import it, so that a message has one definition (resqued/protocols/).
PROTOCOL_ENDS = {
    "resqued.protocols.reportpipe": ["resqued.worker.reports", "resqued.master.workerprocess"],
    "resqued.protocols.controlsocket": ["resqued.master.control", "resqued.master.requests",
                                        "resqued.ctl.masterclient", "resqued.ctl.mastercommands",
                                        "resqued.exporter.masterside", "resqued.fleet.advertiser"],
    "resqued.protocols.forkersocket": ["resqued.worker.execution.jobforker", "resqued.worker.execution.standbys",
                                       "resqued.worker.execution.forkerlink"],
    "resqued.protocols.spawnersocket": ["resqued.master.spawnerlink", "resqued.spawner.main"],
}


def all_imports(module: str) -> set[str]:
    """Every dotted name ``module`` imports, ours or not, anywhere in its source."""
    return {name for node in ast.walk(parse(MODULES[module])) for name in imported_names(node, module)}


def test_a_protocol_module_imports_only_the_standard_library():
    """Both ends import it: it must load in any of resqued's processes (the
    master never loads redis-py) and pull in neither end's code."""
    protocols = [m for m in MODULES if m.startswith("resqued.protocols")]
    assert set(PROTOCOL_ENDS) <= set(protocols)
    found = [f"{module} imports {name}" for module in protocols for name in sorted(all_imports(module))
             if not name.startswith("resqued.protocols") and name.split(".")[0] not in sys.stdlib_module_names]
    assert not found, "\n".join(found)


def test_both_ends_of_each_protocol_import_it():
    graph = import_graph()
    missing = [f"{end} does not import {protocol}" for protocol, ends in PROTOCOL_ENDS.items()
               for end in ends if protocol not in graph[end]]
    assert not missing, "\n".join(missing)


def test_resquectl_reaches_a_master_only_through_the_control_socket():
    """resquectl's code imports none of the master's: what they share is the
    protocol (protocols/controlsocket.py)."""
    graph = import_graph()
    found = [f"{module} imports {name}" for module in graph if module.startswith("resqued.ctl")
             for name in sorted(graph[module]) if name.startswith("resqued.master")]
    assert not found, "\n".join(found)


# -- decide, then act ----------------------------------------------------------

# Pure decisions (as master/reconcile.py): plain values in, what to do out;
# they import no process, signal, clock or Redis code, so that a test runs
# them without processes.
PURE_DECISIONS = ("resqued.master.reconcile", "resqued.master.requestdecisions", "resqued.master.workerexits",
                  "resqued.worker.execution.jobbounds")
PURE_OURS = ("resqued.protocols", "resqued.process.logs", "resqued.exits", "resqued.supervise.states")
IMPURE = ("os", "time", "signal", "socket", "select", "psutil", "redis", "subprocess")


def test_decisions_are_pure():
    found = []
    for module in PURE_DECISIONS:
        for name in sorted(all_imports(module)):
            if name.split(".")[0] in IMPURE or name.startswith("resqued.redisio"):
                found.append(f"{module} imports {name}")
            elif in_package(name, PACKAGE) and not any(in_package(name, pure) for pure in PURE_OURS):
                found.append(f"{module} imports {name}")
    assert not found, "\n".join(found)


# Modules and the object whose fields they must not write, ``<name>.x = ...``
# anywhere in them: a helper returns what to do (or calls its owner's
# commands) rather than set its owner's state, and the owner asks its
# helper rather than set the helper's.
HELPERS = [("resqued.master.requests", "master"), ("resqued.worker.execution.childwatch", "worker"),
           ("resqued.master.arbiter", "requests"), ("resqued.master.restart", "master"),
           ("resqued.master.arbiter", "restart")]


def writes_to(target, owner: str) -> bool:
    """Is ``target`` (an assignment's) a field of ``owner`` or of something
    it holds: ``owner.x``, ``self.owner.x``, ``owner.pools[k].failed``?"""
    if not isinstance(target, ast.Attribute):
        return False
    base = target.value
    while isinstance(base, (ast.Attribute, ast.Subscript)):
        if isinstance(base, ast.Attribute) and base.attr == owner:
            return True
        base = base.value
    return isinstance(base, ast.Name) and base.id == owner


def test_no_helper_writes_its_owners_fields():
    assert writes_to(ast.parse("self.master.pools['x'].failed = 1").body[0].targets[0], "master")
    found = []
    for module, owner in HELPERS:
        for node in ast.walk(parse(MODULES[module])):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            found += [f"{module}:{node.lineno} writes {ast.unparse(target)}" for target in targets
                      for target in ast.walk(target) if writes_to(target, owner)]
    assert not found, "\n".join(found)


# Modules and the objects whose fields they must not even read: the owner
# hands them a frozen view of what they need (requests.MasterView).
READS_NOTHING_OF = [("resqued.master.requests", ("master", "arbiter"))]


def test_no_helper_reads_its_owner():
    found = []
    for module, owners in READS_NOTHING_OF:
        for node in ast.walk(parse(MODULES[module])):
            if isinstance(node, ast.Attribute) and node.attr in owners and \
                    isinstance(node.value, ast.Name) and node.value.id == "self":
                found.append(f"{module}:{node.lineno} reads self.{node.attr}")
            elif isinstance(node, ast.Name) and node.id in owners:
                found.append(f"{module}:{node.lineno} reads {node.id}")
    assert not found, "\n".join(found)


def test_a_jobs_watch_is_given_what_it_needs_not_the_worker():
    """childwatch.py is handed its bounds and WorkerHooks (forking.py builds them)."""
    names = {n.id for n in ast.walk(parse(MODULES["resqued.worker.execution.childwatch"])) if isinstance(n, ast.Name)}
    attrs = {n.attr for n in ast.walk(parse(MODULES["resqued.worker.execution.childwatch"]))
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"}
    assert "worker" not in attrs and "spec" not in attrs, "ChildWatch keeps the worker or its spec"
    assert "WorkerHooks" in names


# -- forks ---------------------------------------------------------------------

MAX_FORK_SITES = 3
FORK_HELPER = os.path.join(PACKAGE, "process", "fork.py")


def fork_sites() -> list[str]:
    """Where ``os.fork(`` is written in the package (comments and strings
    included: a fork written anywhere is one more place to keep right)."""
    sites = []
    for path in MODULES.values():
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if "os.fork(" in line:
                    sites.append(f"{os.path.relpath(path, ROOT)}:{number}")
    return sites


def test_fork_sites():
    """Every fork goes through process/fork.py (fork_child: the child never
    returns into its parent's code), so ``os.fork(`` is written in at most
    three places."""
    sites = fork_sites()
    assert sites, "the check finds no fork at all: it no longer reads the source"
    assert len(sites) <= MAX_FORK_SITES, f"more than {MAX_FORK_SITES} forks:\n" + "\n".join(sites)
    outside = [site for site in sites if not site.startswith(FORK_HELPER + ":")]
    assert not outside, "os.fork( outside process/fork.py:\n" + "\n".join(outside)
    # Nor a fork under another name, nor the daemon's fork (its child goes on in
    # the caller's code) used for anything but daemonizing.
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name == "fork" for a in node.names):
                found.append(f"{module} imports fork from os")
            if (isinstance(node, ast.Name) and node.id == "fork_continuing"
                    and module not in ("resqued.process.fork", "resqued.process.daemon")):
                found.append(f"{module} uses fork_continuing")
    assert not found, "\n".join(found)


REDIS_CLIENT_MAKERS = re.compile(r"\bRedis\(|\bfrom_url\(|\bSentinel\(|\.make_connection\(")


def test_only_redisio_makes_redis_connections():
    """Every process makes its clients and connections in redisio/connection.py,
    so that a Sentinel URL (and any other way to reach Redis) works everywhere
    and each connection follows a failover. A grep of the source: a redis.Redis(
    or from_url( or Sentinel( or make_connection( outside redisio/ is one more
    place that would connect to a fixed address."""
    outside = []
    for module, path in MODULES.items():
        if in_package(module, "resqued.redisio"):
            continue
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if REDIS_CLIENT_MAKERS.search(line.split("#")[0]):
                    outside.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    assert MODULES, "the check reads no source"
    assert not outside, "Redis clients made outside resqued/redisio/:\n" + "\n".join(outside)
