"""pool.yml parsing and validation: pure, no Redis and no processes."""

import os
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resqued.envmode import variables
from resqued.config.describe import describe
from resqued.config.loader import load_config
from resqued.config.model import Config, ConfigError, PoolConfig
from resqued.exits import EX_CONFIG
from resqued.config.sizes import format_size, human_size, parse_size

SPEC_EXAMPLE = r"""
redis: redis://127.0.0.1:6379/0   # REDIS_URL overrides; redis:// rediss:// unix://
namespace: resque                 # key prefix; php-resque's PREFIX
jobs: [myapp.jobs]                # modules whose job classes may run (the allow-list)
aliases:                          # foreign class names (PHP/Ruby) -> Python job
  'Common\Job\MailJob': myapp.jobs.MailJob
pidfile: var/run/resqued.pid      # master; one pidfile per worker under pid_dir
pid_dir: var/run/workers
interval: 5                       # seconds between polls when a worker cannot block
shutdown_timeout: 30              # seconds a graceful stop waits before killing
log: {level: info, format: text}  # format: text | json
defaults:                         # apply to every pool unless it overrides them
  max_memory: 300MB               # recycle a worker whose memory (PSS of worker, forker, standby, job child) passes this
  max_jobs: 1000                  # recycle a worker after this many jobs
pools:
  - queues: [high, default]       # priority order; "*" = every queue, alphabetical
    count: 4
  - queues: [mail]
    count: 2
    max_memory: 200MB
"""

ONE_POOL = "pools:\n  - queues: [a]\n    count: 1\n"


def write(tmp_path, text, name="pool.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def load(tmp_path, text, environment=None, environ=None):
    return load_config(write(tmp_path, text), environment, environ={} if environ is None else environ)


def error(tmp_path, text, environment=None, environ=None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, environment, environ)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    return message


# -- native format ------------------------------------------------------------------

def test_spec_example(tmp_path):
    config = load(tmp_path, SPEC_EXAMPLE)
    run = str(tmp_path / "var" / "run")
    assert config == Config(
        path=str(tmp_path / "pool.yml"),
        redis_url="redis://127.0.0.1:6379/0",
        namespace="resque",
        jobs=("myapp.jobs",),
        aliases={"Common\\Job\\MailJob": "myapp.jobs.MailJob"},
        pidfile=f"{run}/resqued.pid",
        pid_dir=f"{run}/workers",
        control_socket=f"{run}/resqued.sock",
        interval=5.0,
        shutdown_timeout=30.0,
        heartbeat_interval=60.0,
        term_timeout=4.0,
        log_level="info",
        log_format="text",
        pools=(
            PoolConfig(("high", "default"), 4, max_memory=300_000_000, max_jobs=1000, max_jobs_jitter=100),
            PoolConfig(("mail",), 2, max_memory=200_000_000, max_jobs=1000, max_jobs_jitter=100),
        ),
    )
    assert [pool.name for pool in config.pools] == ["high,default", "mail"]


def test_minimal_file_gets_every_default(tmp_path):
    config = load(tmp_path, ONE_POOL)
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert (config.namespace, config.jobs, config.aliases) == ("resque", (), {})
    assert (config.interval, config.shutdown_timeout, config.heartbeat_interval, config.term_timeout) == (5, 30, 60, 4)
    assert (config.log_level, config.log_format) == ("info", "text")
    assert config.pools == (PoolConfig(("a",), 1, None, None, None, 0, 5.0),)


def test_every_top_level_setting(tmp_path):
    config = load(tmp_path, """
        redis: 10.0.0.5:6380
        namespace: myapp
        jobs: myapp.jobs
        pidfile: /run/resqued/master.pid
        pid_dir: /run/resqued/workers
        control_socket: /run/resqued/ctl
        interval: 0.5
        shutdown_timeout: 12
        heartbeat_interval: 30
        term_timeout: 0
        log: {level: DEBUG, format: json}
        pools: [{queues: "high, low ,*", count: 0}]
    """)
    assert config.redis_url == "redis://10.0.0.5:6380"
    assert config.namespace == "myapp" and config.jobs == ("myapp.jobs",)
    assert (config.pidfile, config.pid_dir, config.control_socket) == (
        "/run/resqued/master.pid", "/run/resqued/workers", "/run/resqued/ctl")
    assert (config.interval, config.shutdown_timeout, config.heartbeat_interval, config.term_timeout) == (
        0.5, 12.0, 30.0, 0.0)
    assert (config.log_level, config.log_format) == ("debug", "json")
    assert config.pools == (PoolConfig(("high", "low", "*"), 0, interval=0.5),)


def test_job_forker_is_on_unless_a_pool_or_the_defaults_say_false(tmp_path):
    config = load(tmp_path, """
        defaults:
          job_forker: false
        pools:
          - queues: [plain]
            count: 1
          - queues: [forked]
            count: 1
            job_forker: true
    """)
    assert [p.job_forker for p in config.pools] == [False, True]
    assert load(tmp_path, ONE_POOL).pools[0].job_forker is True


def test_defaults_are_inherited_and_overridden(tmp_path):
    config = load(tmp_path, """
        interval: 2
        defaults:
          max_memory: 300MB
          max_memory_hard: 1GiB
          max_jobs: 1000
          interval: 1
        pools:
          - queues: [inherits]
            count: 1
          - queues: [overrides]
            count: 2
            max_memory: 512M
            max_memory_hard: null
            max_jobs: 50
            interval: 0
          - queues: [jitter]
            count: 3
            max_jobs_jitter: 7
          - queues: [unlimited]
            count: 1
            max_memory: ~
            max_jobs: ~
            max_jobs_jitter: 9
    """)
    inherits, overrides, jitter, unlimited = config.pools
    assert inherits == PoolConfig(("inherits",), 1, 300_000_000, 1 << 30, 1000, 100, 1.0)
    # The jitter default follows the pool's own max_jobs.
    assert overrides == PoolConfig(("overrides",), 2, 512 << 20, None, 50, 5, 0.0)
    assert jitter == PoolConfig(("jitter",), 3, 300_000_000, 1 << 30, 1000, 7, 1.0)
    assert unlimited == PoolConfig(("unlimited",), 1, None, 1 << 30, None, 0, 1.0)


def test_top_level_interval_is_the_pools_default(tmp_path):
    config = load(tmp_path, "interval: 0.25\n" + ONE_POOL)
    assert config.pools[0].interval == 0.25


def test_explicit_jitter_in_defaults_is_inherited(tmp_path):
    config = load(tmp_path, """
        defaults: {max_jobs: 100, max_jobs_jitter: 0}
        pools: [{queues: [a], count: 1, max_jobs: 500}]
    """)
    assert config.pools[0].max_jobs_jitter == 0


def test_relative_paths_resolve_against_the_config_directory(tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    write(tmp_path / "etc", textwrap.dedent("""
        jobs: [app/jobs.py, ../common/more.py, /abs/jobs.py, myapp.jobs]
        pidfile: ../run/master
        pid_dir: workers
    """) + ONE_POOL)
    monkeypatch.chdir(tmp_path)
    config = load_config("etc/pool.yml", environ={})
    etc = tmp_path / "etc"
    assert config.path == str(etc / "pool.yml")
    assert config.jobs == (str(etc / "app" / "jobs.py"), str(tmp_path / "common" / "more.py"),
                           "/abs/jobs.py", "myapp.jobs")
    assert config.pidfile == str(tmp_path / "run" / "master")
    assert config.pid_dir == str(etc / "workers")
    assert config.control_socket == str(tmp_path / "run" / "master.sock")


def test_default_paths_sit_next_to_the_config(tmp_path):
    config = load(tmp_path, ONE_POOL)
    assert config.pidfile == str(tmp_path / "var/run/resqued.pid")
    assert config.pid_dir == str(tmp_path / "var/run/workers")
    assert config.control_socket == str(tmp_path / "var/run/resqued.sock")


def test_redis_url_from_the_environment_wins(tmp_path):
    text = "redis: redis://file-host:6379/0\n" + ONE_POOL
    assert load(tmp_path, text, environ={"REDIS_URL": "redis://env-host:6390/2"}).redis_url == \
        "redis://env-host:6390/2"
    assert load(tmp_path, text, environ={"REDIS_URL": ""}).redis_url == "redis://file-host:6379/0"
    assert load(tmp_path, ONE_POOL, environ={"REDIS_URL": "unix:///tmp/r.sock"}).redis_url == "unix:///tmp/r.sock"


def test_bad_redis_url_in_the_environment(tmp_path):
    path = write(tmp_path, ONE_POOL)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"REDIS_URL": "http://:hunter2@host"})
    assert str(info.value) == f"{path}: REDIS_URL (environment): redis URL 'http://:***@host': " \
                              "scheme must be redis, rediss, unix or redis+sentinel"


def test_queue_names_that_yaml_reads_as_numbers_stay_names(tmp_path):
    config = load(tmp_path, "pools: [{queues: [2024, high], count: 1}]\n")
    assert config.pools[0].queues == ("2024", "high")


def test_merge_keys_work_and_the_mappings_own_keys_win(tmp_path):
    config = load(tmp_path, """
        pools:
          - &base {queues: [a], count: 2, max_jobs: 10}
          - <<: *base
            queues: [b]
    """)
    assert config.pools[1] == PoolConfig(("b",), 2, max_jobs=10, max_jobs_jitter=1)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
    assert EX_CONFIG == 78
    exc = ConfigError("bad\nthing", file="p.yml", line=3, path="pools[0]")
    assert (str(exc), exc.file, exc.line, exc.path) == ("p.yml:3: pools[0]: bad thing", "p.yml", 3, "pools[0]")


# -- resque-pool's format -----------------------------------------------------------

RESQUE_POOL = """
foo: 2
"bar, baz": 1
production:
  foo: 5
  qux: 1
staging:
  "bar,baz": 3
"""


def _counts(config):
    return [(pool.name, pool.count) for pool in config.pools]


def test_resque_pool_file_without_sections(tmp_path):
    config = load(tmp_path, 'foo: 2\n"bar,baz": 1\n"*": 0\n')
    assert _counts(config) == [("foo", 2), ("bar,baz", 1), ("*", 0)]
    assert config.pools[0] == PoolConfig(("foo",), 2)
    assert config.pidfile == str(tmp_path / "var/run/resqued.pid") and config.jobs == ()


def test_resque_pool_top_level_when_no_environment(tmp_path):
    assert _counts(load(tmp_path, RESQUE_POOL)) == [("foo", 2), ("bar,baz", 1)]


def test_resque_pool_environment_argument(tmp_path):
    # Section entries replace top-level ones in place; new ones come last (Ruby's Hash#merge).
    assert _counts(load(tmp_path, RESQUE_POOL, "production")) == [("foo", 5), ("bar,baz", 1), ("qux", 1)]
    assert _counts(load(tmp_path, RESQUE_POOL, "staging")) == [("foo", 2), ("bar,baz", 3)]


def test_resque_pool_environment_variables(tmp_path):
    assert _counts(load(tmp_path, RESQUE_POOL, environ={"RAILS_ENV": "production"}))[0] == ("foo", 5)
    assert _counts(load(tmp_path, RESQUE_POOL, environ={"RESQUE_ENV": "staging"}))[1] == ("bar,baz", 3)
    # resque-pool reads RACK_ENV || RAILS_ENV || RESQUE_ENV.
    both = {"RACK_ENV": "staging", "RAILS_ENV": "production"}
    assert _counts(load(tmp_path, RESQUE_POOL, environ=both)) == [("foo", 2), ("bar,baz", 3)]
    # The argument beats the variables.
    assert _counts(load(tmp_path, RESQUE_POOL, "production", environ=both))[0] == ("foo", 5)
    # As in resque-pool, an environment without a section runs the top level.
    assert _counts(load(tmp_path, RESQUE_POOL, environ={"RAILS_ENV": "development"})) == [("foo", 2), ("bar,baz", 1)]


def test_resque_pool_named_environment_must_exist(tmp_path):
    path = write(tmp_path, RESQUE_POOL)
    with pytest.raises(ConfigError) as info:
        load_config(path, "prod", environ={})
    assert str(info.value) == f"{path}:1: environment 'prod' has no section in this file (sections: production, staging)"


def test_resque_pool_only_sections_and_no_environment(tmp_path):
    message = error(tmp_path, "production:\n  foo: 1\n")
    assert message.endswith(":1: no pools: the top level has only environment sections (production) and no "
                            "environment is chosen (--environment, RACK_ENV, RAILS_ENV or RESQUE_ENV)")
    assert _counts(load(tmp_path, "production:\n  foo: 1\n", "production")) == [("foo", 1)]


# -- rejected input: every message is "file:line: key path: problem" ----------------------

BAD = [
    # unknown keys, with a suggestion
    (ONE_POOL + "  - queues: [b]\n    count: 1\n    max_mem: 300MB\n", 6, "pools[1].max_mem",
     "unknown key; did you mean 'max_memory'?"),
    ("pool:\n  - queues: [a]\n", 1, "pool", "unknown key; did you mean 'pools'?"),
    ("namepsace: myapp\nfoo: 2\n", 1, "namepsace", "unknown key; did you mean 'namespace'?"),
    ("pools: 2\nfoo: 2\n", 1, "pools", "expected a list of pools, got an integer (2)"),
    ("log: {levle: info}\n" + ONE_POOL, 1, "log.levle", "did you mean 'level'?"),
    ("defaults:\n  max_job: 3\n" + ONE_POOL, 2, "defaults.max_job", "did you mean 'max_jobs'?"),
    ("redis: redis://h\nzzz: [1]\n" + ONE_POOL, 2, "zzz", "unknown key; known keys: redis, namespace"),
    ("redis: redis://h\nfoo: 2\n" + ONE_POOL, 2, "foo", "cannot be mixed with resqued settings"),
    # wrong types; a boolean is not a number
    ("pools:\n  - queues: [a]\n    count: true\n", 3, "pools[0].count", "expected a whole number, got a boolean (true)"),
    ("pools:\n  - queues: [a]\n    count: 1.5\n", 3, "pools[0].count", "expected a whole number, got a number (1.5)"),
    ("pools:\n  - queues: [a]\n    count: '2'\n", 3, "pools[0].count", "expected a whole number, got a string ('2')"),
    ("pools:\n  - queues: [a]\n    count: -1\n", 3, "pools[0].count", "must be at least 0, got -1"),
    ("pools:\n  - queues: [a]\n    count:\n", 3, "pools[0].count", "got nothing (null)"),
    ("pools:\n  - queues: [a]\n", 2, "pools[0]", "missing 'count'"),
    ("pools:\n  - count: 1\n", 2, "pools[0]", "missing 'queues'"),
    ("pools:\n  - [a]\n", 2, "pools[0]", "expected a mapping, got a list"),
    ("pools: {queues: [a], count: 1}\n", 1, "pools", "expected a list of pools, got a mapping"),
    ("interval: yes\n" + ONE_POOL, 1, "interval", "expected a number of seconds, got a boolean (yes)"),
    (ONE_POOL + "    job_forker: 1\n", 4, "pools[0].job_forker", "expected true or false, got '1'"),
    ("interval: -1\n" + ONE_POOL, 1, "interval", "must be at least 0, got -1"),
    ("interval: .nan\n" + ONE_POOL, 1, "interval", "expected a finite number of seconds"),
    ("shutdown_timeout: 0\n" + ONE_POOL, 1, "shutdown_timeout", "must be greater than 0, got 0"),
    ("heartbeat_interval: 0\n" + ONE_POOL, 1, "heartbeat_interval", "must be at least 1, got 0"),
    # Workers beating every microsecond prune each other as they start.
    ("heartbeat_interval: 0.000001\n" + ONE_POOL, 1, "heartbeat_interval", "must be at least 1, got 1e-06"),
    ("heartbeat_interval: 301\n" + ONE_POOL, 1, "heartbeat_interval", "must be at most 150, got 301"),
    ("term_timeout: '4'\n" + ONE_POOL, 1, "term_timeout", "expected a number of seconds, got a string ('4')"),
    ("jobs: {a: 1}\n" + ONE_POOL, 1, "jobs", "expected a module, a .py file or a list of them, got a mapping"),
    ("jobs: [myapp.jobs, 'my app']\n" + ONE_POOL, 1, "jobs[1]", "neither a Python module name"),
    ("aliases: [a]\n" + ONE_POOL, 1, "aliases", "expected a mapping, got a list"),
    ("aliases:\n  Foo: 'os system'\n" + ONE_POOL, 2, "aliases.Foo", "is not a Python name"),
    ("pidfile: ''\n" + ONE_POOL, 1, "pidfile", "expected a path, got an empty string"),
    ("control_socket: /" + "s" * 120 + "\n" + ONE_POOL, 1, "control_socket", "longer than 107 bytes"),
    ("log: info\n" + ONE_POOL, 1, "log", "expected a mapping, got a string ('info')"),
    ("log: {level: loud}\n" + ONE_POOL, 1, "log.level", "'loud' is not one of debug, info, warning, error"),
    ("log: {format: xml}\n" + ONE_POOL, 1, "log.format", "'xml' is not one of text, json"),
    ("namespace: ''\n" + ONE_POOL, 1, "namespace", "got an empty string"),
    ("namespace: 'my app'\n" + ONE_POOL, 1, "namespace", "'my app' contains whitespace"),
    ("namespace: [a]\n" + ONE_POOL, 1, "namespace", "got a list"),
    # sizes
    ("pools:\n  - queues: [a]\n    count: 1\n    max_memory: 300MBB\n", 4, "pools[0].max_memory",
     "invalid size '300MBB': unknown unit 'MBB'"),
    ("defaults:\n  max_memory: -5MB\n" + ONE_POOL, 2, "defaults.max_memory", "must be positive"),
    ("defaults:\n  max_memory: 0\n" + ONE_POOL, 2, "defaults.max_memory", "must be at least 1 byte"),
    ("defaults:\n  max_memory: true\n" + ONE_POOL, 2, "defaults.max_memory", "got a boolean (true)"),
    ("defaults:\n  max_memory: 1.5\n" + ONE_POOL, 2, "defaults.max_memory", "got a number (1.5)"),
    ("defaults:\n  max_memory: lots\n" + ONE_POOL, 2, "defaults.max_memory", "invalid size 'lots'"),
    ("defaults:\n  max_memory_hard: 100MB\npools:\n  - queues: [a]\n    count: 1\n    max_memory: 200MB\n",
     6, "pools[0].max_memory", "max_memory_hard (100MB, line 2) must be greater than max_memory (200MB, line 6)"),
    ("pools:\n  - queues: [a]\n    count: 1\n    max_memory: 1G\n    max_memory_hard: 1GiB\n", 5,
     "pools[0].max_memory_hard", "max_memory_hard (1GiB, line 5) must be greater than max_memory (1GiB, line 4)"),
    ("pools:\n  - queues: [a]\n    count: 1\n    max_jobs: 0\n", 4, "pools[0].max_jobs", "must be at least 1"),
    ("defaults:\n  max_jobs_jitter: 5\n" + ONE_POOL, 2, "defaults.max_jobs_jitter", "no effect without max_jobs"),
    # queues
    ("pools:\n  - queues: []\n    count: 1\n", 2, "pools[0].queues", "empty queue list"),
    ("pools:\n  - queues:\n    count: 1\n", 2, "pools[0].queues", "empty queue list"),
    ("pools:\n  - queues: ''\n    count: 1\n", 2, "pools[0].queues", "got an empty string"),
    ("pools:\n  - queues: 'a,,b'\n    count: 1\n", 2, "pools[0].queues", "invalid queue name ''"),
    ("pools:\n  - queues: [a, '']\n    count: 1\n", 2, "pools[0].queues[1]", "invalid queue name ''"),
    ("pools:\n  - queues: ['a,b']\n    count: 1\n", 2, "pools[0].queues[0]", "invalid queue name 'a,b'"),
    ("pools:\n  - queues: ['a b']\n    count: 1\n", 2, "pools[0].queues[0]", "invalid queue name 'a b'"),
    ("pools:\n  - queues: [a, true]\n    count: 1\n", 2, "pools[0].queues[1]", "expected a name, got a boolean"),
    ("pools:\n  - queues:\n      - '*'\n      - a\n    count: 1\n", 3, "pools[0].queues[0]",
     "'*' (every queue) must be the last queue"),
    ("pools:\n  - queues: [a, b, a]\n    count: 1\n", 2, "pools[0].queues[2]", "queue 'a' is listed twice"),
    ("pools:\n  - queues: {a: 1}\n    count: 1\n", 2, "pools[0].queues", "got a mapping"),
    # pools
    (ONE_POOL + "  - queues: a\n    count: 2\n", 4, "pools[1]", "duplicate pool 'a' (first at line 2)"),
    ("pools: []\n", 1, "pools", "empty: define at least one pool"),
    ("pools:\n", 1, "pools", "empty: define at least one pool"),
    ("redis: redis://h\n", 1, "pools", "missing: define at least one pool"),
    # redis
    ("redis: http://h\n" + ONE_POOL, 1, "redis", "scheme must be redis, rediss, unix or redis+sentinel"),
    ("redis: 'redis://:pw@h:port/0'\n" + ONE_POOL, 1, "redis", "redis URL 'redis://:***@h:port/0': the port is not a number"),
    ("redis: redis://h/zero\n" + ONE_POOL, 1, "redis", "expected redis://[user:password@]host[:port][/db]"),
    # A raw '#' ends urlsplit's netloc inside the password: none of it is shown.
    ("redis: 'redis://u:pa#ss@h/0'\n" + ONE_POOL, 1, "redis", "redis URL 'redis://u:***@h/0': the port is not"),
    ("redis: 'redis://[::1/0'\n" + ONE_POOL, 1, "redis", "redis URL 'redis://[::1/0': an unclosed '['"),
    ("redis: 6379\n" + ONE_POOL, 1, "redis", "expected a Redis URL (redis://host:6379/0), got an integer (6379)"),
    # YAML itself
    ("pools:\n  - queues: [a\n    count: 1\n", 3, None, "invalid YAML: expected ',' or ']'"),
    ("pools: [\n", 2, None, "invalid YAML"),
    ("a: 1\n---\nb: 2\n", 2, None, "invalid YAML: but found another document"),
    ("pools: 'a\n", 2, None, "invalid YAML: found unexpected end of stream"),
    ("\tpools: []\n", 1, None, "invalid YAML: found character '\\t' that cannot start any token"),
    ("pools: *nowhere\n", 1, None, "invalid YAML: found undefined alias 'nowhere'"),
    ("pools: []\npools: []\n", 2, "pools", "duplicate key (first at line 1)"),
    ("- a\n- b\n", 1, None, "the top level must be a mapping of settings, got a list"),
    ("just text\n", 1, None, "the top level must be a mapping of settings, got a string ('just text')"),
    ("", 1, None, "no settings: the file is empty or has only comments"),
    ("# nothing yet\n", 1, None, "no settings: the file is empty or has only comments"),
    ("pools:\n  - queues: [a]\n    count: <%= ENV['N'] %>\n", 3, None, "ERB templates ('<%') are not supported"),
    ("pools: [{queues: [a], count: 1}]\nx: \x07\n", 2, None, "character U+0007 is not allowed"),
    # tags: the safe loader's, never Python's
    ("pools: !!python/object/apply:os.system ['true']\n", 1, "pools",
     "got a list tagged 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("pools:\n  - queues: [a]\n    count: !!python/name:os.system ''\n", 3, "pools[0].count",
     "could not determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'"),
    ("!!python/object:os.system {}\n", 1, None, "the top level must be a mapping of settings, got a mapping tagged"),
    ("pools:\n  - queues: [a]\n    count: !!int nine\n", 3, "pools[0].count", "cannot read 'nine' as int"),
    ("pools:\n  - queues: [a]\n    count: !!bool maybe\n", 3, "pools[0].count", "cannot read 'maybe' as bool"),
    ("pools:\n  - queues: [a]\n    count: 2024-13-45\n", 3, "pools[0].count", "cannot read '2024-13-45' as timestamp"),
    ("pools:\n  - queues: [a]\n    count: !custom 1\n", 3, "pools[0].count", "could not determine a constructor"),
    ("? [a]\n: 1\n", 1, None, "expected a name, got a list"),
    # resque-pool format
    ("foo: two\n", 1, "foo", "expected a whole number, got a string ('two')"),
    ("foo: -1\n", 1, "foo", "must be at least 0, got -1"),
    ("foo: true\n", 1, "foo", "expected a whole number, got a boolean (true)"),
    ("foo:\n", 1, "foo", "expected a worker count (an integer) or an environment section (a mapping)"),
    ("foo: 1\nproduction:\n  bar:\n    baz: 1\n", 4, "production.bar", "environment sections cannot be nested"),
    ("foo: 1\nstaging:\n  bar: 1.5\n", 3, "staging.bar", "expected a whole number"),
    ("'a b': 1\n", 1, "'a b'", "invalid queue name 'a b'"),
    ("'a,': 1\n", 1, "'a,'", "invalid queue name ''"),
    ("'*,a': 1\n", 1, "'*,a'", "'*' (every queue) must be the last queue"),
    ("'a,b': 1\n'a, b': 2\n", 2, "'a, b'", "duplicate pool 'a,b'"),
    ("foo: 1\nfoo: 2\n", 2, "foo", "duplicate key (first at line 1)"),
    ("yes: 1\n", 1, None, "expected a name, got a boolean (yes)"),
]


@pytest.mark.parametrize("text, line, key_path, problem", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_config_is_one_line_naming_file_line_and_key(tmp_path, text, line, key_path, problem):
    path = write(tmp_path, "placeholder")
    with open(path, "w") as stream:  # exactly as written, no dedent
        stream.write(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    prefix = f"{path}:{line}: " + (f"{key_path}: " if key_path else "")
    assert message.startswith(prefix), message
    assert problem in message, message
    assert (info.value.file, info.value.line, info.value.path) == (path, line, key_path)


def test_unreadable_files(tmp_path):
    missing = str(tmp_path / "missing.yml")
    with pytest.raises(ConfigError) as info:
        load_config(missing, environ={})
    assert str(info.value) == f"{missing}: cannot read: No such file or directory"
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path), environ={})
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_file_without_permission(tmp_path):
    path = write(tmp_path, ONE_POOL)
    os.chmod(path, 0)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{path}: cannot read: Permission denied"


def test_not_utf8_and_too_large(tmp_path):
    path = tmp_path / "pool.yml"
    path.write_bytes(b"pools:\n  - queues: [caf\xe9]\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), environ={})
    assert str(info.value) == f"{path}:2: not UTF-8 text (byte 0xe9)"
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than"):
        load_config(str(path), environ={})


def test_a_bom_is_fine(tmp_path):
    path = tmp_path / "pool.yml"
    path.write_bytes(b"\xef\xbb\xbf" + ONE_POOL.encode())
    assert load_config(str(path), environ={}).pools[0].queues == ("a",)


def test_deeply_nested_yaml_is_a_config_error(tmp_path):
    message = error(tmp_path, "pools: " + "[" * 5000)
    assert "invalid YAML" in message


def test_self_referencing_yaml(tmp_path):
    assert error(tmp_path, "pools: &p\n  - *p\n").endswith(":1: pools[0]: expected a mapping, got a list")
    # A mapping merged into itself adds nothing.
    assert load(tmp_path, "defaults: &d\n  <<: *d\n" + ONE_POOL).pools[0].max_jobs is None


# -- sizes --------------------------------------------------------------------------

@pytest.mark.parametrize("text, size", [
    ("300MB", 300_000_000), ("300mb", 300_000_000), ("300 MB", 300_000_000), (" 1GB ", 10**9),
    ("1.5GiB", 3 << 29), ("512KiB", 512 << 10), ("2TiB", 2 << 40), ("1kb", 1000), ("3TB", 3 * 10**12),
    ("2G", 2 << 30), ("512M", 512 << 20), ("64K", 64 << 10), ("64k", 64 << 10), ("1T", 1 << 40),
    ("1Gi", 1 << 30), ("256Mi", 256 << 20), ("1.5K", 1536), ("0.5KB", 500),
    ("1048576", 1 << 20), ("100B", 100), ("100b", 100), (1048576, 1 << 20), (1, 1),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("value, problem", [
    ("-1MB", "must be positive"), (-5, "must be positive"), ("0", "at least 1 byte"), (0, "at least 1 byte"),
    ("0MB", "at least 1 byte"), ("0.0001KB", "at least 1 byte"), ("300MBB", "unknown unit 'MBB'"),
    ("1 PB", "unknown unit 'PB'"), ("MB", "invalid size"), ("", "invalid size"), ("lots", "invalid size"),
    ("1.5", "must be whole"), ("1.5B", "must be whole"), ("1,5MB", "invalid size"), ("1e6", "invalid size"),
    ("1 M B", "invalid size"), ("٣MB", "invalid size"), ("9" * 25, "invalid size"),
    ("9999999999T", "too large"), (1 << 70, "too large"),
    (True, "got bool"), (1.5, "got float"), (None, "got NoneType"), ([1], "got list"),
])
def test_parse_size_rejects(value, problem):
    with pytest.raises(ValueError) as info:
        parse_size(value)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("size, text", [
    (300_000_000, "300MB"), (3 << 29, "1.5GiB"), (1 << 30, "1GiB"), (10**9, "1GB"), (1536, "1.5KiB"),
    (1000, "1KB"), (100, "100B"), (1, "1B"), (512 << 20, "512MiB"), (1234567, "1234567B"),
])
def test_format_size(size, text):
    assert format_size(size) == text


def test_human_size_adds_an_approximation_to_raw_bytes():
    assert human_size(123_456_789) == "123456789B (~117.7MiB)"
    assert human_size(300_000_000) == "300MB"
    assert human_size(100) == "100B"


@given(st.integers(min_value=1, max_value=(1 << 63) - 1))
def test_format_size_reads_back(size):
    assert parse_size(format_size(size)) == size


# -- describe -----------------------------------------------------------------------

def test_describe_shows_pools_and_hides_the_password(tmp_path):
    config = load(tmp_path, SPEC_EXAMPLE.replace("redis://127.0.0.1", "redis://:s3cr3t-pw@127.0.0.1") + """
  - queues: [slow, '*']
    count: 0
    max_memory: 123456789
    max_memory_hard: 2GiB
    max_jobs: ~
""")
    text = describe(config)
    assert "s3cr3t-pw" not in text
    assert "redis://:***@127.0.0.1:6379/0" in text
    assert "high,default: count 4; max_memory 300MB; max_jobs 1000 (+0..100); interval 5s" in text
    assert "mail: count 2; max_memory 200MB; max_jobs 1000 (+0..100); interval 5s" in text
    assert ("slow,*: count 0; max_memory 123456789B (~117.7MiB), max_memory_hard 2GiB; max_jobs none; "
            "interval 5s") in text
    assert "3 (6 workers)" in text
    for value in (config.pidfile, config.pid_dir, config.control_socket, config.path):
        assert value in text
    assert "Common\\Job\\MailJob -> myapp.jobs.MailJob" in text


def test_describe_hides_a_password_from_redis_url_env(tmp_path):
    config = load(tmp_path, ONE_POOL, environ={"REDIS_URL": "redis://user:hunter2@h:6379/0?password=hunter2"})
    assert "hunter2" not in describe(config)


# -- robustness: anything in the file gives a Config or a ConfigError ----------------------

KNOWN_KEYS = ["redis", "namespace", "jobs", "aliases", "pidfile", "pid_dir", "control_socket", "interval",
              "shutdown_timeout", "heartbeat_interval", "term_timeout", "log", "defaults", "pools", "queues",
              "count", "max_memory", "max_memory_hard", "max_jobs", "max_jobs_jitter", "level", "format",
              "production", "a,b", "*", "high"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=True),
                    st.sampled_from(["300MB", "1.5GiB", "-1", "a,b", "*", "redis://h/0", "debug", "json", "",
                                     "x y", "<%", "1G"]),
                    st.text(max_size=12))
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8), st.integers(-3, 3))
trees = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)), max_leaves=25)
ROBUST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _only_config_errors(path):
    try:
        config = load_config(path, environ={})
    except ConfigError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
    else:
        assert config.pools and all(isinstance(pool, PoolConfig) for pool in config.pools)


@ROBUST
@given(tree=trees)
def test_random_documents_give_config_or_config_error(tmp_path, tree):
    path = tmp_path / "pool.yml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True))
    _only_config_errors(str(path))


@ROBUST
@given(pools=st.lists(st.dictionaries(keys, trees, max_size=6), max_size=3),
       top=st.dictionaries(st.sampled_from(KNOWN_KEYS[:13]), trees, max_size=4))
def test_random_native_configs_give_config_or_config_error(tmp_path, pools, top):
    path = tmp_path / "pool.yml"
    path.write_text(yaml.safe_dump({**top, "pools": pools}, allow_unicode=True))
    _only_config_errors(str(path))


SETTING_VALUES = st.one_of(st.sampled_from([None, True, 0, 1, 3, -1, 2.5, "", "a", "a,b", "*", "300MB", "1G",
                                              "2GiB", "0", "junk", [], ["a"], ["*", "a"], {}]), scalars)
LIMITS = {key: SETTING_VALUES for key in ("max_memory", "max_memory_hard", "max_jobs", "max_jobs_jitter",
                                          "interval")}
PLAUSIBLE_POOL = st.fixed_dictionaries(
    {"queues": st.sampled_from([["a"], "b,c", ["d", "*"], ["a"], [], "x y"]), "count": st.sampled_from([0, 2, -1, True])},
    optional=LIMITS)


@ROBUST
@given(pools=st.lists(PLAUSIBLE_POOL, max_size=4), defaults=st.fixed_dictionaries({}, optional=LIMITS))
def test_plausible_configs_give_config_or_config_error(tmp_path, pools, defaults):
    path = tmp_path / "pool.yml"
    path.write_text(yaml.safe_dump({"defaults": defaults, "pools": pools}))
    _only_config_errors(str(path))


YAML_TOKENS = list("ab:,-[]{}&*!<>%|'\"#?@`\\ \n\t\r\x00\x85\ufeff2.5~=") + [
    "pools", "queues", "count", "!!python/object:os.system ", "<<", "---", "\n  - ", ": ", "&x ", "*x"]
YAMLISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join)


@ROBUST
@given(text=st.one_of(st.text(max_size=60), YAMLISH))
def test_random_text_gives_config_or_config_error(tmp_path, text):
    path = tmp_path / "pool.yml"
    path.write_text(text, errors="surrogatepass")
    _only_config_errors(str(path))


# -- env mode: the same settings, checks and Config --------------------------------

def env_config(environ, *flags):
    from resqued.cli import build_parser
    return variables.load(build_parser().parse_args(list(flags)), environ)


def test_env_mode_resolves_to_a_one_pool_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = env_config({"QUEUE": "high, low", "APP_INCLUDE": "jobs.py,myapp.jobs", "PIDFILE": "run/w.pid"})
    assert config == Config(
        path="env", redis_url="redis://127.0.0.1:6379/0", namespace="resque",
        jobs=(str(tmp_path / "jobs.py"), "myapp.jobs"), aliases={}, pidfile=str(tmp_path / "run" / "w.pid"),
        pid_dir=None, control_socket=str(tmp_path / "run" / "w.sock"), interval=5.0, shutdown_timeout=30.0,
        heartbeat_interval=60.0, term_timeout=4.0, log_level="warning", log_format="text",
        pools=(PoolConfig(("high", "low"), 1),))
    assert variables.supervised(config)     # PIDFILE: resquectl --pidfile answers through the master
    assert not variables.supervised(env_config({"QUEUE": "a"}))
    assert env_config({"QUEUE": "*"}).pools[0].queues == ("*",)   # text, not a YAML alias
    assert variables.supervised(env_config({"QUEUE": "a", "COUNT": "2"}))
    assert variables.supervised(env_config({"QUEUE": "a", "MAX_JOBS": "100"}))


def test_env_mode_flags_beat_variables_and_switches_turn_off():
    config = env_config({"QUEUE": "a", "COUNT": "3", "INTERVAL": "2", "FORK_PER_JOB": "false", "PREFIX": "p",
                         "MAX_MEMORY": "200MB", "REDIS_BACKEND": "cache:6380", "VERBOSE": "1"},
                        "--queue", "b,c", "--count", "2", "--no-job-forker", "--redis", "redis://r:1/4")
    [pool] = config.pools
    assert (pool.queues, pool.count, pool.interval, pool.fork, pool.job_forker, pool.max_memory) == (
        ("b", "c"), 2, 2.0, False, False, 200_000_000)
    assert (config.namespace, config.redis_url, config.log_level) == ("p", "redis://r:1/4", "info")
    assert env_config({"QUEUE": "a", "REDIS_BACKEND": "cache:6380", "REDIS_BACKEND_DB": "2"}).redis_url == \
        "redis://cache:6380/2"
    assert env_config({"QUEUE": "a", "FORK_PER_JOB": "yes"}).pools[0].fork is True


@pytest.mark.parametrize("environ, message", [
    ({}, "no queues: set QUEUE (e.g. QUEUE=high,default or QUEUE=*) or pass --queue"),
    ({"QUEUE": "a b"}, "QUEUE: invalid queue name 'a b': a non-empty name without commas or whitespace"),
    ({"QUEUE": "*,a"}, "QUEUE: '*' (every queue) must be the last queue"),
    ({"QUEUE": "a", "COUNT": "zero"}, "COUNT: expected a whole number, got a string ('zero')"),
    ({"QUEUE": "a", "COUNT": "0"}, "COUNT: must be at least 1, got 0"),
    ({"QUEUE": "a", "INTERVAL": "-1"}, "INTERVAL: must be at least 0, got -1"),
    ({"QUEUE": "a", "RESQUED_HEARTBEAT_INTERVAL": "301"}, "RESQUED_HEARTBEAT_INTERVAL: must be at most 150, got 301"),
    ({"QUEUE": "a", "RESQUED_HEARTBEAT_INTERVAL": "0.5"}, "RESQUED_HEARTBEAT_INTERVAL: must be at least 1, got 0.5"),
    ({"QUEUE": "a", "MAX_JOBS": "0"}, "MAX_JOBS: must be at least 1, got 0"),
    ({"QUEUE": "a", "APP_INCLUDE": "not a module"}, "APP_INCLUDE: 'not a module' is neither a Python module name"),
])
def test_env_mode_errors_name_the_variable_as_pool_yml_names_the_key(environ, message):
    with pytest.raises(ConfigError) as caught:
        env_config(environ)
    assert str(caught.value).startswith(message)
