"""How resquectl answers, for every command alike: text for people, or with
``--json`` one JSON document on stdout; times in JSON as UTC ISO 8601
strings, counts and sizes as numbers. An error is one line on stderr
(``resquectl: ...``) and the exit status says which kind; with ``--json``
it is also a JSON object on stdout: ``{"ok": false, "error": ..., "exit": N}``.

Exit codes (SPEC): 0 ok, 1 runtime failure, 2 usage, 78 invalid configuration.
"""

import json
import sys
from urllib.parse import parse_qs, urlsplit

from resqued.exits import EXIT_FAILURE, EXIT_USAGE
from resqued.process.logs import printable


class CtlError(Exception):
    """A failure to report in one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILURE):
        super().__init__(message)
        self.code = code


class UsageError(CtlError):
    def __init__(self, message: str):
        super().__init__(message, EXIT_USAGE)


def print_json(data, compact: bool = False) -> None:
    # A stream (job --watch) is one compact document per line.
    print(json.dumps(data) if compact else json.dumps(data, indent=2))


def emit(args, data, render) -> None:
    """One JSON document with ``--json``, else ``render(data)`` for people."""
    if args.json:
        print_json(data)
    else:
        heading(args)
        print(render(data))


def heading(args) -> None:
    """The line human output of a command that reports what Redis holds
    starts with: which Redis (password masked) and namespace it read, and
    where that came from (``--redis``, ``REDIS_URL``, pool.yml, default)."""
    if not args.json and getattr(args, "heading", None):
        print(args.heading)


def fail(message: str, code: int, as_json: bool = False, compact: bool = False) -> int:
    """Report an error (see the module's docstring); returns ``code``."""
    print(f"resquectl: {printable(message)}", file=sys.stderr)   # it may quote a job id or a payload
    if as_json:
        print_json({"ok": False, "error": message, "exit": code}, compact=compact)
    return code


def scrub(text: str, url: str) -> str:
    """Redis client errors may quote what they were given; keep passwords out."""
    parts = urlsplit(url)
    secrets = [parts.password, *(value for name, values in parse_qs(parts.query).items()
                                 if name.lower().endswith("password") for value in values)]
    for secret in filter(None, secrets):
        text = text.replace(secret, "***")
    return text
