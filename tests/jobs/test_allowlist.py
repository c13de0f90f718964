"""The job allow-list (resqued.jobs.allowlist) and performing a job in-process
(resqued.jobs.job)."""

import builtins
import importlib
import importlib.util
import itertools
import os
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resqued.jobs import events
from resqued.jobs import job as jobmod
from resqued.resque import wire
from resqued.jobs.job import Job, backtrace, exception_name, perform
from resqued.jobs.allowlist import JobRegistry, RegistryError, UnknownJob

JOBS_SOURCE = textwrap.dedent('''\
    """A job module as an application would write it."""
    import os
    import subprocess
    from os import system
    from os.path import join as path_join

    from resqued.jobs.events import DontPerform

    LOG = []
    LIMIT = 5


    class MailJob:
        """php-resque style: perform(self) reads self.args."""

        def setUp(self):
            LOG.append(("setUp", self.args))

        def perform(self):
            LOG.append(("perform", self.args, self.queue, self.job.id))

        def tearDown(self):
            LOG.append(("tearDown",))


    class JobError(Exception):
        pass


    class FailingJob:
        def setUp(self):
            LOG.append("setUp")

        def perform(self):
            LOG.append("perform")
            _helper()

        def tearDown(self):
            LOG.append("tearDown")


    class SkippedInSetUp:
        def setUp(self):
            LOG.append("setUp")
            raise DontPerform()

        def perform(self):
            LOG.append("perform")

        def tearDown(self):
            LOG.append("tearDown")


    class RubyJob:
        """Ruby style: the payload's args, positionally."""

        def perform(self, a, b):
            LOG.append(("ruby", a, b))


    class StaticJob:
        @staticmethod
        def perform(a, b="default"):
            LOG.append(("static", a, b))


    class ClassJob:
        @classmethod
        def perform(cls, *args):
            LOG.append(("classmethod", cls.__name__, args))


    def plain_job(x, y):
        LOG.append(("plain", x, y))


    def _helper():
        raise JobError("helper failed")


    class NotAJob:
        perform = "not callable"


    class Outer:
        class Inner:
            def perform(self):
                pass


    instance = MailJob()
    ''')

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _forget_imported_job_modules():
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.fixture
def job_file(tmp_path):
    """Write the job module under a name unique to this test; return its path."""
    def write(source=JOBS_SOURCE, directory=None):
        path = (directory or tmp_path) / f"rq_jobs_{os.getpid()}_{next(_counter)}.py"
        path.write_text(source)
        return path
    return write


def module_of(registry):
    (name,) = registry.modules
    return sys.modules[name]


JOB_NAMES = {"MailJob", "FailingJob", "SkippedInSetUp", "RubyJob", "StaticJob", "ClassJob", "plain_job"}


# -- building the registry ---------------------------------------------------------

class TestBuild:
    def test_from_a_file(self, job_file):
        path = job_file()
        registry = JobRegistry.build([str(path)])
        module = module_of(registry)
        assert module.__file__ == str(path)
        assert set(registry.names()) == (JOB_NAMES | {f"{module.__name__}.{n}" for n in JOB_NAMES}
                                         | {f"{path.stem}.{n}" for n in JOB_NAMES})
        assert registry.resolve("MailJob") is module.MailJob
        assert registry.resolve(f"{module.__name__}.MailJob") is module.MailJob
        assert registry.resolve("plain_job") is module.plain_job

    def test_by_dotted_module_name(self, job_file, tmp_path, monkeypatch):
        monkeypatch.syspath_prepend(str(tmp_path))
        stem = job_file().stem
        registry = JobRegistry.build([stem])
        assert registry.modules == [stem]
        module = sys.modules[stem]
        assert registry.resolve(f"{stem}.RubyJob") is registry.resolve("RubyJob") is module.RubyJob

    def test_package_module(self, job_file, tmp_path, monkeypatch):
        package = tmp_path / f"rq_pkg_{next(_counter)}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        stem = job_file(directory=package).stem
        monkeypatch.syspath_prepend(str(tmp_path))
        registry = JobRegistry.build([f"{package.name}.{stem}"])
        assert registry.resolve(f"{package.name}.{stem}.MailJob").__name__ == "MailJob"

    @pytest.mark.parametrize("name", ["os", "subprocess", "system", "path_join", "DontPerform", "_helper",
                                      "NotAJob", "Outer", "Inner", "Outer.Inner", "JobError", "LOG",
                                      "LIMIT", "instance"])
    def test_what_is_not_a_job(self, job_file, name):
        registry = JobRegistry.build([str(job_file())])
        module = module_of(registry).__name__
        for candidate in (name, f"{module}.{name}"):
            assert candidate not in registry.names()
            with pytest.raises(UnknownJob):
                registry.resolve(candidate)

    def test_the_first_module_wins_a_bare_name(self, job_file):
        first = job_file()
        second = job_file("class MailJob:\n    def perform(self):\n        pass\n")
        registry = JobRegistry.build([str(first), str(second)])
        one, two = (sys.modules[m] for m in registry.modules)
        assert registry.resolve("MailJob") is one.MailJob
        assert registry.resolve(f"{two.__name__}.MailJob") is two.MailJob
        assert registry.resolve(f"{one.__name__}.MailJob") is one.MailJob

    def test_building_twice_reuses_the_module(self, job_file):
        path = str(job_file())
        first = JobRegistry.build([path])
        second = JobRegistry.build([path])
        assert first.resolve("MailJob") is second.resolve("MailJob")

    def test_empty_registry(self):
        registry = JobRegistry.build([])
        assert registry.names() == []
        with pytest.raises(UnknownJob, match="none listed"):
            registry.resolve("MailJob")


class TestBuildErrors:
    def test_missing_file(self, tmp_path):
        with pytest.raises(RegistryError, match="does not exist") as info:
            JobRegistry.build([str(tmp_path / "nope.py")])
        assert "nope.py" in str(info.value)

    def test_a_directory_is_not_a_job_file(self, tmp_path):
        with pytest.raises(RegistryError, match="does not exist"):
            JobRegistry.build([str(tmp_path) + os.sep])

    def test_syntax_error(self, job_file):
        path = job_file("class Broken(:\n    pass\n")
        with pytest.raises(RegistryError, match="failed to import: SyntaxError") as info:
            JobRegistry.build([str(path)])
        assert path.name in str(info.value)

    def test_error_while_importing(self, job_file):
        path = job_file("import os\nraise RuntimeError('database is down')\n")
        before = set(sys.modules)
        with pytest.raises(RegistryError, match="RuntimeError: database is down"):
            JobRegistry.build([str(path)])
        assert set(sys.modules) == before  # the half-imported module is not left behind

    def test_an_import_error_says_where_in_the_application(self, job_file):
        path = job_file("def connect():\n    raise RuntimeError('db not configured')\n\n\nconnect()\n")
        with pytest.raises(RegistryError) as info:
            JobRegistry.build([str(path)])
        assert str(info.value).endswith(f"RuntimeError: db not configured (at {path}:2)")

    def test_missing_module(self):
        with pytest.raises(RegistryError, match="'no_such_module_rq' failed to import: ModuleNotFoundError") as info:
            JobRegistry.build(["no_such_module_rq"])
        assert "on PYTHONPATH" in str(info.value) and "jobs: [path/to/no_such_module_rq.py]" in str(info.value)

    def test_a_file_modules_jobs_answer_to_the_name_a_user_guesses(self, job_file):
        path = job_file("class Hello:\n    def perform(self):\n        pass\n")
        registry = JobRegistry.build([str(path)])
        stem = path.stem
        assert registry.resolve(f"{stem}.Hello") is registry.resolve("Hello")

    def test_a_file_in_a_package_is_its_module_and_sys_path_is_left_alone(self, tmp_path):
        package = tmp_path / f"rq_pkg_{os.getpid()}_{next(_counter)}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "helpers.py").write_text("def greet():\n    return 'hi'\n")
        (package / "jobs.py").write_text("from .helpers import greet\n\n\nclass Hello:\n"
                                         "    def perform(self):\n        return greet()\n")
        path_before = list(sys.path)
        registry = JobRegistry.build([str(package / "jobs.py")])
        assert sys.path == path_before
        assert registry.modules == [f"{package.name}.jobs"] and registry.entries == [str(package / "jobs.py")]
        assert registry.resolve(f"{package.name}.jobs.Hello") is registry.resolve("jobs.Hello") \
            is registry.resolve("Hello") is sys.modules[f"{package.name}.jobs"].Hello
        assert JobRegistry.build([str(package / "jobs.py")]).resolve("Hello") is registry.resolve("Hello")

    def test_a_package_file_that_fails_to_import_leaves_no_module_behind(self, tmp_path):
        package = tmp_path / f"rq_pkg_{os.getpid()}_{next(_counter)}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "jobs.py").write_text("from .missing import nothing\n")
        before = set(sys.modules)
        with pytest.raises(RegistryError, match=rf"failed to import \(as module {package.name}\.jobs\): "
                                                rf"ModuleNotFoundError: No module named '{package.name}\.missing'"):
            JobRegistry.build([str(package / "jobs.py")])
        assert set(sys.modules) == before


# -- aliases -----------------------------------------------------------------------

@pytest.fixture
def importable(job_file, tmp_path, monkeypatch):
    """The job module, importable by its name; returns the name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return job_file().stem


class TestAliases:
    def test_foreign_names(self, importable):
        registry = JobRegistry.build([importable], aliases={
            "Common\\Job\\MailJob": f"{importable}.MailJob",
            "Mailer::Deliver": f"{importable}.plain_job",
        })
        module = sys.modules[importable]
        assert registry.resolve("Common\\Job\\MailJob") is module.MailJob
        assert registry.resolve("Mailer::Deliver") is module.plain_job
        assert "Common\\Job\\MailJob" in registry.names()
        with pytest.raises(UnknownJob):
            registry.resolve("Common\\Job\\Other")

    def test_alias_without_listing_the_module(self, importable):
        registry = JobRegistry.build([], aliases={"Foreign": f"{importable}.RubyJob"})
        assert registry.resolve("Foreign").__name__ == "RubyJob"
        with pytest.raises(UnknownJob):
            registry.resolve("RubyJob")  # only the alias was allowed

    def test_an_alias_wins_over_a_bare_name(self, importable):
        registry = JobRegistry.build([importable], aliases={"MailJob": f"{importable}.RubyJob"})
        assert registry.resolve("MailJob").__name__ == "RubyJob"

    @pytest.mark.parametrize("target, message", [
        ("NoDots", "not a dotted"),
        ("no_such_module_rq.Job", "failed to import"),
        ("{m}.Missing", "not a job"),
        ("{m}._helper", "not a job"),
        ("{m}.system", "not a job"),
        ("{m}.subprocess", "not a job"),
        ("{m}.NotAJob", "not a job"),
        ("{m}.JobError", "not a job"),
        ("{m}.LOG", "not a job"),
        ("{m}.Outer.Inner", "failed to import"),
        ("os.system", "not a job"),
        ("builtins.eval", "not a job"),
    ])
    def test_bad_targets(self, importable, target, message):
        with pytest.raises(RegistryError, match=message) as info:
            JobRegistry.build([importable], aliases={"Foreign\\Job": target.format(m=importable)})
        assert "Foreign" in str(info.value)


# -- resolving hostile names -------------------------------------------------------

def resolve_watching_imports(registry, name):
    """resolve(name) with every import path watched; returns (exception, imports)."""
    imports = []
    real_import, real_import_module = builtins.__import__, importlib.import_module
    real_spec = importlib.util.spec_from_file_location

    def watch(real):
        def watcher(*args, **kwargs):
            imports.append(args[0])
            return real(*args, **kwargs)
        return watcher

    modules = set(sys.modules)
    builtins.__import__ = watch(real_import)
    importlib.import_module = watch(real_import_module)
    importlib.util.spec_from_file_location = watch(real_spec)
    try:
        registry.resolve(name)
    except Exception as exc:  # noqa: BLE001 - returned for the test to check
        outcome = exc
    else:
        outcome = None
    finally:
        builtins.__import__, importlib.import_module = real_import, real_import_module
        importlib.util.spec_from_file_location = real_spec
    return outcome, imports + sorted(set(sys.modules) - modules)


HOSTILE = [
    "os.system", "subprocess.Popen", "builtins.eval", "builtins.exec", "builtins.__import__",
    "__import__", "eval", "..relative", ".MailJob", "MailJob.", "system", "subprocess", "os",
    "__class__", "__builtins__", "__dict__", "MailJob.perform", "MailJob.__init__", "MailJob.__class__",
    "resqued.jobs.allowlist.JobRegistry", "resqued.jobs.events.DontPerform", "importlib.import_module",
    "A" * 100_000, "MailJob" * 10_000, "MailJob\x00", "\x00", "Mail\x00Job", " MailJob", "MailJob ",
    "", "/etc/passwd", "../../etc/passwd.py",
]


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n[:40]))
def test_hostile_names_are_unknown_and_import_nothing(job_file, name):
    registry = JobRegistry.build([str(job_file())])
    module = module_of(registry).__name__
    for candidate in (name, f"{module}.{name}", f"{module}.__dict__", f"{module}.__builtins__"):
        outcome, imports = resolve_watching_imports(registry, candidate)
        assert isinstance(outcome, UnknownJob), (candidate[:80], outcome)
        assert imports == []
    assert "not allowed" in str(outcome)


# -- performing a job in-process ---------------------------------------------------

@pytest.fixture
def jobs(job_file):
    """The job module, registered; LOG emptied."""
    registry = JobRegistry.build([str(job_file())])
    module = module_of(registry)
    module.LOG.clear()
    module.registry = registry
    return module


def make_job(job_class, args, queue="q"):
    return Job(queue, wire.payload(job_class, args, "a" * 32), raw=b"raw", worker_id="vm:1:q")


class TestPerform:
    def test_php_style(self, jobs):
        job = make_job("MailJob", [{"to": "x@example.com"}], queue="mail")
        assert perform(job, jobs.registry.resolve("MailJob")) is True
        assert jobs.LOG == [("setUp", {"to": "x@example.com"}),
                            ("perform", {"to": "x@example.com"}, "mail", "a" * 32),
                            ("tearDown",)]

    @pytest.mark.parametrize("args, php_args", [([None], None), ([[]], []), ([], {}), ([1, 2], 1)])
    def test_php_args_is_the_first_argument(self, jobs, args, php_args):
        assert perform(make_job("MailJob", args), jobs.MailJob) is True
        assert jobs.LOG[0] == ("setUp", php_args)

    def test_tear_down_runs_when_perform_raises(self, jobs):
        after = []
        events.listen("afterPerform", after.append)
        with pytest.raises(jobs.JobError, match="helper failed"):
            perform(make_job("FailingJob", [{}]), jobs.FailingJob)
        assert jobs.LOG == ["setUp", "perform", "tearDown"]
        assert after == []

    def test_dont_perform_in_set_up_skips_the_job(self, jobs):
        assert perform(make_job("SkippedInSetUp", [{}]), jobs.SkippedInSetUp) is False
        assert jobs.LOG == ["setUp"]  # as php-resque: no perform, no tearDown

    def test_ruby_style(self, jobs):
        assert perform(make_job("RubyJob", [1, {"two": 2}]), jobs.RubyJob) is True
        assert jobs.LOG == [("ruby", 1, {"two": 2})]

    def test_ruby_style_with_wrong_arity_raises(self, jobs):
        with pytest.raises(TypeError):
            perform(make_job("RubyJob", [1]), jobs.RubyJob)

    def test_staticmethod(self, jobs):
        perform(make_job("StaticJob", [1]), jobs.StaticJob)
        perform(make_job("StaticJob", [1, 2]), jobs.StaticJob)
        assert jobs.LOG == [("static", 1, "default"), ("static", 1, 2)]

    def test_classmethod(self, jobs):
        perform(make_job("ClassJob", [1, "b", None]), jobs.ClassJob)
        assert jobs.LOG == [("classmethod", "ClassJob", (1, "b", None))]

    def test_function(self, jobs):
        assert perform(make_job("plain_job", ["x", [1]]), jobs.plain_job) is True
        assert jobs.LOG == [("plain", "x", [1])]

    def test_before_perform_dont_perform(self, jobs):
        seen, after = [], []

        def veto(job):
            seen.append(job)
            raise events.DontPerform()

        events.listen("beforePerform", veto)
        events.listen("afterPerform", after.append)
        job = make_job("MailJob", [{}])
        assert perform(job, jobs.MailJob) is False
        assert seen == [job]
        assert jobs.LOG == [] and after == []

    def test_events_in_order(self, jobs):
        events.listen("before_perform", lambda job: jobs.LOG.append(("before", job.job_class)))
        events.listen("afterPerform", lambda job: jobs.LOG.append(("after", job.job_class)))
        perform(make_job("RubyJob", [1, 2]), jobs.RubyJob)
        assert jobs.LOG == [("before", "RubyJob"), ("ruby", 1, 2), ("after", "RubyJob")]

    def test_job_properties(self):
        job = make_job("MailJob", [{"a": 1}], queue="mail")
        assert (job.id, job.job_class, job.args, job.php_args, job.queue) == (
            "a" * 32, "MailJob", [{"a": 1}], {"a": 1}, "mail")
        assert repr(job) == f"<Job MailJob id={'a' * 32} queue=mail>"
        ruby = Job("q", {"class": "GoodJob", "args": [1]})
        assert ruby.id is None and ruby.php_args == 1
        assert Job("q", {"class": "J"}).args == []


class TestFailureDetails:
    def test_exception_name(self, jobs):
        assert exception_name(ValueError("x")) == "ValueError"
        assert exception_name(KeyboardInterrupt()) == "KeyboardInterrupt"
        assert exception_name(jobs.JobError("x")) == f"{jobs.__name__}.JobError"
        assert exception_name(UnknownJob("x")) == "resqued.jobs.allowlist.UnknownJob"

        class Local(Exception):
            pass

        assert exception_name(Local()).endswith("TestFailureDetails.test_exception_name.<locals>.Local")

    def test_backtrace_keeps_the_job_frames_only(self, jobs):
        with pytest.raises(jobs.JobError) as info:
            perform(make_job("FailingJob", [{}]), jobs.FailingJob)
        lines = backtrace(info.value)
        own_dir = os.path.dirname(os.path.abspath(jobmod.__file__))
        assert not any(line.startswith(own_dir + os.sep) for line in lines)
        assert all(line.count(":in `") == 1 and line.endswith("'") for line in lines)
        source = open(jobs.__file__).read().splitlines()
        perform_line = source.index("        _helper()") + 1
        raise_line = source.index('    raise JobError("helper failed")') + 1
        assert lines[-2:] == [f"{jobs.__file__}:{perform_line}:in `perform'",
                              f"{jobs.__file__}:{raise_line}:in `_helper'"]
        # Everything before that is this test (where the error was caught),
        # never resqued's perform()/_perform_class().
        assert all(line.startswith(__file__) for line in lines[:-2])

    def test_backtrace_of_an_unraised_exception(self):
        assert backtrace(ValueError("never raised")) == []


# -- property: nothing but the registered names resolves ---------------------------

@pytest.fixture(scope="module")
def property_registry(tmp_path_factory):
    directory = tmp_path_factory.mktemp("property_jobs")
    path = directory / "rq_property_jobs.py"
    path.write_text(JOBS_SOURCE)
    before = set(sys.modules)
    registry = JobRegistry.build([str(path)], aliases={"Common\\Job\\MailJob": "resqued_app_rq_property_jobs.MailJob"})
    yield registry
    for name in set(sys.modules) - before:
        del sys.modules[name]


NAME_PARTS = sorted(JOB_NAMES) + ["Common\\Job\\MailJob", "resqued_app_rq_property_jobs", "os", "system",
                                  "builtins", "eval", "__import__", "__class__", "_helper", "LOG", ".", "\\",
                                  "\x00", "::"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(
    st.text(),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200),
    st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=4).map(".".join),
    st.builds(lambda a, b, c: a + b + c, st.text(max_size=3), st.sampled_from(NAME_PARTS), st.text(max_size=3)),
    st.sampled_from(NAME_PARTS),
))
def test_only_registered_names_resolve(property_registry, name):
    registered = set(property_registry.names())
    try:
        target = property_registry.resolve(name)
    except UnknownJob:
        assert name not in registered
    else:
        assert name in registered
        assert callable(target)
