"""The checks of pool.yml's values, each ``check(reader, node, path) -> value``
(a config/yamlnodes.NodeReader, a YAML node, its key path): one per kind of
setting, used for pool.yml and, on the same nodes, for env mode's variables
(settings.py declares which check each setting has)."""

import yaml

from resqued.config import sentinelurl
from resqued.config.redisurl import BadRedisURL, normalize_url, redact, split_url
from resqued.resque.keys import check_queue_name
from resqued.config.sizes import parse_size
from resqued.jobs.retries import KEYS as RETRY_KEYS, PolicyError, normalize as retry_normalize
from resqued.numbers import is_whole_number

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


def seconds(minimum=0.0, *, above=False, maximum=None):
    def check(r, node, path):
        return r.number(node, path, minimum, above=above, maximum=maximum)
    return check


def seconds_or_none(minimum=0.0, *, above=False):
    def check(r, node, path):
        return None if r.is_null(node) else r.number(node, path, minimum, above=above)
    return check


def size_or_none(r, node, path):
    if r.is_null(node):
        return None
    value = r.scalar(node, path)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise r.fail(node, path, f"expected a size such as 300MB, 1.5GiB or 512M, got {r.kind(node, path)}")
    try:
        return parse_size(value)
    except ValueError as exc:
        raise r.fail(node, path, str(exc)) from None


def integer(minimum, nullable=False):
    def check(r, node, path):
        return None if nullable and r.is_null(node) else r.integer(node, path, minimum)
    return check


def boolean(r, node, path):
    value = r.scalar(node, path)
    if not isinstance(value, bool):
        raise r.fail(node, path, f"expected true or false, got {node.value!r}")
    return value


def file_path(r, node, path):
    return r.resolve(r.string(node, path, "a path"))


def namespace(r, node, path):
    namespace = r.string(node, path, "a key prefix such as 'resque'")
    if any(char.isspace() for char in namespace):
        raise r.fail(node, path, f"{namespace!r} contains whitespace")
    return namespace


def redis_url(r, node, path):
    try:
        return check_redis_url(r.string(node, path, "a Redis URL (redis://host:6379/0)"))
    except BadRedisURL as exc:
        raise r.fail(node, path, str(exc)) from None


def listen_address(r, node, path):
    """HOST:PORT (an IPv6 host in brackets), or null: off."""
    if r.is_null(node):
        return None
    value = r.string(node, path, "an address such as 127.0.0.1:9640")
    try:
        return check_listen_address(value)
    except ValueError as exc:
        raise r.fail(node, path, str(exc)) from None


def check_listen_address(value: str) -> str:
    host, _, port = value.strip().rpartition(":")
    if not host or not is_whole_number(port) or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise ValueError(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:9640 or [::1]:9640")
    return f"{host}:{int(port)}"


def split_listen_address(value: str) -> tuple[str, int]:
    """check_listen_address's value as (host, port), brackets off an IPv6 host."""
    host, _, port = value.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def check_redis_url(url: str | None) -> str:
    """The normalized URL, or BadRedisURL for a URL redis-py would misread.
    Its query options are checked by redis-py itself, in master/codeprobe.probe():
    the master process does not import redis-py."""
    url = normalize_url(url)
    if sentinelurl.is_sentinel(url):
        return url   # normalize_url checked it whole
    parts = split_url(url)
    database = parts.path.strip("/")
    if parts.scheme != "unix" and (not parts.hostname or (database and not is_whole_number(database))):
        raise BadRedisURL(f"redis URL {redact(url)!r}: expected redis://[user:password@]host[:port][/db]")
    return url


def job_modules(r, node, path):
    items = [(node, path)] if r.is_string(node) else r.items(node, path, "a module, a .py file or a list of them")
    return tuple(job_module(r, item, item_path) for item, item_path in items)


def job_module(r, node, path):
    job = r.string(node, path, "a module (myapp.jobs) or a .py file")
    if job.endswith(".py"):
        return r.resolve(job)
    if not all(part.isidentifier() for part in job.split(".")):
        raise r.fail(node, path, f"{job!r} is neither a Python module name (myapp.jobs) nor a .py file")
    return job


def aliases(r, node, path):
    aliases = {}
    for name, (_, value, value_path) in r.mapping(node, path).items():
        target = r.string(value, value_path, "a Python job name (myapp.jobs.MailJob)")
        if not all(part.isidentifier() for part in target.split(".")):
            raise r.fail(value, value_path, f"{target!r} is not a Python name (myapp.jobs.MailJob)")
        aliases[name] = target
    return aliases


def choice(choices):
    def check(r, node, path):
        value = r.string(node, path, " or ".join(choices)).lower()
        if value not in choices:
            raise r.fail(node, path, f"{value!r} is not one of {', '.join(choices)}")
        return value
    return check


def mapping_of(r, node, path, table):
    """{key: (value, node, path)} for a mapping whose keys must all be in ``table``."""
    found = {}
    for key, (key_node, value, value_path) in r.mapping(node, path).items():
        if key not in table:
            raise r.unknown(key_node, value_path, key, table)
        found[key] = (table[key](r, value, value_path), value, value_path)
    return found


def queue_list(r, node, path):
    if r.is_string(node):
        text = r.string(node, path, "queue names")
        located = [(name.strip(), node, path) for name in text.split(",")]
    else:
        located = [(r.name(item, item_path), item, item_path)
                   for item, item_path in r.items(node, path, "a list of queue names or 'a,b'")]
    if not located:
        raise r.fail(node, path, "empty queue list")
    return check_queues(r, located)


def check_queues(r, located):
    seen = set()
    for index, (queue, node, path) in enumerate(located):
        if queue == "*" and index != len(located) - 1:
            raise r.fail(node, path, "'*' (every queue) must be the last queue")
        try:
            check_queue_name(queue)
        except ValueError as exc:
            raise r.fail(node, path, str(exc)) from None
        if queue in seen:
            raise r.fail(node, path, f"queue {queue!r} is listed twice")
        seen.add(queue)
    return tuple(queue for queue, _, _ in located)



def command_argv(r, node, path):
    """A command pool's ``command``: its argv, a non-empty list of strings
    (no shell: a string would have to be split, and quoting guessed)."""
    if r.is_string(node):
        raise r.fail(node, path, "expected a list of strings (the program and its arguments, no shell), "
                                 f"e.g. [php, bin/resque], got the string {node.value!r}")
    items = r.items(node, path, "a list of strings (the program and its arguments)")
    if not items:
        raise r.fail(node, path, "empty: name the program to run, e.g. [php, bin/resque]")
    argv = []
    for item, item_path in items:
        value = r.scalar(item, item_path) if r.is_string(item) or r.is_integer(item) else None
        if value is None or isinstance(value, bool):
            raise r.fail(item, item_path, f"expected a string, got {r.kind(item, item_path)}")
        argv.append(str(value))
    if "\0" in "".join(argv):
        raise r.fail(node, path, "an argument contains a NUL character")
    return tuple(argv)


def environment(r, node, path):
    """A command pool's ``env``: variable name -> text."""
    found = {}
    for name, (_, value, value_path) in r.mapping(node, path).items():
        if not name or "=" in name or "\0" in name:
            raise r.fail(value, value_path, f"{name!r} is not an environment variable name")
        text = r.scalar(value, value_path) if isinstance(value, yaml.ScalarNode) and not r.is_null(value) else None
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise r.fail(value, value_path, f"expected a string, got {r.kind(value, value_path)}")
        if "\0" in value.value:   # exec would refuse the whole environment
            raise r.fail(value, value_path, f"the value of {name} contains a NUL character")
        found[name] = value.value   # as written: YAML would read 1.10 as 1.1, 0022 as 18
    return found


def directory(r, node, path):
    return None if r.is_null(node) else file_path(r, node, path)


def retry_policy(r, node, path):
    """A pool's ``retry``: a number of attempts or a mapping, checked by
    jobs/retries.py, each fault said at the line of the key at fault."""
    if r.is_null(node):
        return None
    value, located = None, {}
    if r.is_integer(node):
        value = r.scalar(node, path)
    else:
        value = {}
        for key, (key_node, value_node, value_path) in r.mapping(node, path, allow_null=False).items():
            if key not in RETRY_KEYS:
                raise r.unknown(key_node, value_path, key, RETRY_KEYS)
            located[key] = (value_node, value_path)
            if key == "backoff" and not r.is_string(value_node):     # a list of delays
                value[key] = [r.scalar(item, item_path) for item, item_path in
                              r.items(value_node, value_path, "exponential, linear, fixed or a list of delays")]
            else:
                value[key] = r.scalar(value_node, value_path)
    try:
        return retry_normalize(value)
    except PolicyError as exc:
        if exc.key in located:
            raise r.fail(*located[exc.key], exc.problem) from None
        raise r.fail(node, path, str(exc)) from None
