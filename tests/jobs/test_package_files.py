"""A job file that sits in a package (``jobs: [myapp/jobs.py]``, its directory
has an ``__init__.py``), run by a real worker: it is imported as its package's
module, so its relative imports work; the hints when it cannot be."""

import itertools
import os

import pytest

from conftest import log_text, stop, wait_until
from helpers import failures, log_entries, wait_log, wait_registered

_counter = itertools.count()

JOBS = '''\
from .mail import outbox_line


class SendMail:
    def perform(self):
        outbox_line(self.args["to"])
'''

MAIL = '''\
import os

import redis


def outbox_line(to):
    redis.Redis.from_url(os.environ["REDIS_BACKEND"]).rpush("test:log", f"mail:{to}:{__name__}")
'''


def write_package(root, name):
    package = root / name / "sub"
    package.mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "mail.py").write_text(MAIL)
    (package / "jobs.py").write_text(JOBS)
    return package / "jobs.py"


@pytest.fixture
def package_name():
    return f"rq_app_{os.getpid()}_{next(_counter)}"   # importable from nowhere else


def test_a_file_in_a_package_runs_with_its_relative_imports(procs, redis_url, r, resque, tmp_path, package_name):
    path = write_package(tmp_path, package_name)
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": str(path)})
    wait_registered(r, proc)
    # Named as Python knows it, as a user guesses it (the file's stem), or bare.
    for name, to in ((f"{package_name}.sub.jobs.SendMail", "a"), ("jobs.SendMail", "b"), ("SendMail", "c")):
        resque.enqueue("default", name, {"to": to})
    wait_log(r, "mail:", 3)
    assert log_entries(r) == [f"mail:{to}:{package_name}.sub.mail" for to in "abc"]
    assert failures(r) == []
    resque.enqueue("default", "NoSuchJob")
    wait_until(lambda: r.llen("resque:failed") == 1, message="a failure")
    assert failures(r)[0]["error"].endswith(f"defined in the job modules ({path})")
    stop(proc)


def test_a_package_named_as_a_module_but_not_importable_hints_at_its_file(procs, redis_url, tmp_path, package_name):
    write_package(tmp_path, package_name)
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{package_name}.sub.jobs"})
    assert proc.wait(15) == 78, log_text(proc)
    out = log_text(proc).strip()
    assert f"is it installed, or the directory that holds {package_name}/ on PYTHONPATH?" in out
    assert out.endswith(f"Or name the file: jobs: [path/to/{package_name}/sub/jobs.py]")


def test_a_package_whose_name_is_taken_says_how_to_name_it(procs, redis_url, tmp_path, package_name):
    # Another copy of the package comes first on PYTHONPATH (an installed one):
    # the file named cannot be imported as that package's module.
    installed = tmp_path / "site"
    write_package(installed, package_name)
    here = tmp_path / "app"
    path = write_package(here, package_name)
    env = {"APP_INCLUDE": str(path), "PYTHONPATH": f"{installed}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = procs.resqued(redis_url, extra_env=env)
    assert proc.wait(15) == 78, log_text(proc)
    out = log_text(proc).strip()
    assert "attempted relative import with no known parent package" in out and "\n" not in out
    assert (f"it is in package {package_name}, but {package_name} imports {installed / package_name / '__init__.py'}: "
            f"rename the package, or name it as a module, jobs: [{package_name}.sub.jobs], with {here} first on "
            f"PYTHONPATH") in out


def test_a_package_with_a_standard_library_name_is_a_lone_file(procs, redis_url, tmp_path):
    path = tmp_path / "email" / "jobs.py"
    path.parent.mkdir()
    (path.parent / "__init__.py").write_text("")
    path.write_text(JOBS)
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": str(path)})
    assert proc.wait(15) == 78, log_text(proc)
    assert log_text(proc).strip().endswith("it is in package email, but email imports a module of the standard "
                                           "library: rename the package")
