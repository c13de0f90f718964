"""A command pool's keys in pool.yml (docs/command-pools.md): checked, each
error one line at its key; the settings that make no sense for a foreign
worker refused in the pool, left to Python pools under defaults:."""

import pytest

from resqued.config.loader import load_config
from resqued.config.model import ConfigError
from resqued.config.describe import describe
from resqued.master.commandworkers import command_env, php_backend


def load(tmp_path, pool, top=""):
    path = tmp_path / "pool.yml"
    path.write_text(f"{top}pools:\n  - queues: [php]\n    count: 2\n" + "".join(f"    {line}\n" for line in pool))
    return load_config(path, environ={})


def error(tmp_path, pool, top=""):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, pool, top)
    return str(caught.value)


def test_a_command_pool_resolves_its_command_env_and_directory(tmp_path):
    config = load(tmp_path, ["command: [php, bin/resque, 3]", "env: {APP_INCLUDE: app.php, VERBOSE: 1}",
                             "directory: app"], top="defaults: {job_timeout: 5, max_jobs: 9}\n")
    [pool] = config.pools
    assert pool.kind == "command" and pool.command == ("php", "bin/resque", "3")
    assert pool.env == {"APP_INCLUDE": "app.php", "VERBOSE": "1"} and pool.directory == str(tmp_path / "app")
    # defaults: reach it, but for the settings of Python pools only
    assert pool.job_timeout is None and pool.max_jobs == 9
    assert load(tmp_path, []).pools[0].kind == "python"


@pytest.mark.parametrize("lines, expected", [
    (["command: php bin/resque"], "pool.yml:4: pools[0].command: expected a list of strings (the program and its "
                                  "arguments, no shell), e.g. [php, bin/resque], got the string 'php bin/resque'"),
    (["command: []"], "pool.yml:4: pools[0].command: empty: name the program to run, e.g. [php, bin/resque]"),
    (["command: [php, {a: 1}]"], "pool.yml:4: pools[0].command[1]: expected a string, got a mapping"),
    (["command: [php]", "env: [A]"], "pool.yml:5: pools[0].env: expected a mapping, got a list"),
    (["command: [php]", "env: {A: {b: 1}}"], "pool.yml:5: pools[0].env.A: expected a string, got a mapping"),
    (["command: [php]", "env: {COUNT: 5}"], "pool.yml:5: pools[0].env: COUNT=5: a command pool runs one worker "
                                            "per process (php-resque's COUNT > 1 forks them and exits): set the "
                                            "pool's count instead"),
    (["command: [php]", 'env: {A: "x\\0y"}'], "pool.yml:5: pools[0].env.A: the value of A contains a NUL character"),
    (["command: [php]", "env: {BACKGROUND: 'yes'}"], "pool.yml:5: pools[0].env: BACKGROUND: the master runs the "
                                                   "worker: Ruby's rake resque:work would daemonize"),
    (["command: [php]", "env: {PIDFILE: /run/w.pid}"], "pool.yml:5: pools[0].env: PIDFILE: the master writes "
                                                       "each worker's pidfile"),
    (["env: {A: b}"], "pool.yml:4: pools[0].env: env is only for a command pool: add command: [program, args...]"),
    (["command: [php]", "job_timeout: 3"], "pool.yml:5: pools[0].job_timeout: not for a command pool: resqued "
                                           "cannot stop a job inside another program's worker"),
    (["command: [php]", "fork: false"], "pool.yml:5: pools[0].fork: not for a command pool:"),
    (["command: [php]", "max_memory_hard: 1GB"], "pool.yml:5: pools[0].max_memory_hard: not for a command pool:"),
])
def test_a_bad_command_pool_is_refused_in_one_line_at_its_key(tmp_path, lines, expected):
    text = error(tmp_path, lines)
    assert text.startswith(str(tmp_path / expected)) and "\n" not in text


def test_command_is_a_pool_key_not_a_default(tmp_path):
    assert "defaults.command: unknown key" in error(tmp_path, [], top="defaults: {command: [php]}\n")


def test_the_command_runs_with_resques_variables_which_env_overrides(tmp_path):
    config = load(tmp_path, ["command: [php]", "interval: 0.5", "env: {PREFIX: myapp, APP_INCLUDE: a.php}"],
                  top="redis: redis://db:6379/2\n")
    # BACKGROUND and PIDFILE from the master's environment would take the worker out of its sight
    env = command_env(config, config.pools[0], environ={"PATH": "/bin", "QUEUE": "not-this", "BACKGROUND": "yes",
                                                        "PIDFILE": "/run/x.pid"})
    # REDIS_BACKEND as php-resque 1.2 splits it (host:port), the database apart as later versions read it
    assert env == {"PATH": "/bin", "QUEUE": "php", "COUNT": "1", "INTERVAL": "0.5", "PREFIX": "myapp",
                   "REDIS_BACKEND": "db:6379", "REDIS_BACKEND_DB": "2", "REDIS_URL": "redis://db:6379/2",
                   "APP_INCLUDE": "a.php"}


@pytest.mark.parametrize("url, backend", [
    ("redis://127.0.0.1:6380/0", {"REDIS_BACKEND": "127.0.0.1:6380"}),
    ("redis://[::1]/0", {"REDIS_BACKEND": "[::1]:6379"}),
    ("redis://:pw@db:6379/0", {"REDIS_BACKEND": "redis://:pw@db:6379/0"}),   # only a DSN carries a password
    ("unix:///run/redis.sock", {"REDIS_BACKEND": "unix:///run/redis.sock"}),
])
def test_redis_backend_is_given_in_the_form_php_resque_reads(url, backend):
    assert php_backend(url) == backend


def test_env_values_are_passed_as_written_not_as_yaml_reads_them(tmp_path):
    config = load(tmp_path, ["command: [php]", "env: {VERSION: 1.10, UMASK: 0022, N: 7, S: 'quoted'}"])
    assert config.pools[0].env == {"VERSION": "1.10", "UMASK": "0022", "N": "7", "S": "quoted"}


def test_check_shows_the_command_and_the_names_of_its_variables(tmp_path):
    config = load(tmp_path, ["command: [php, bin/resque]", "env: {APP_INCLUDE: app.php, SECRET: s3cret}"])
    line = describe(config).splitlines()[-1]
    assert line == "  php: count 2; max_memory none; interval 5s; command php bin/resque; env APP_INCLUDE, SECRET"
