"""The dashboard under test: ``resqued web`` started as a real process on a
free port (it prints where it listens), a small HTTP client that keeps
cookies and the last page's CSRF token, and Redis filled as php-resque and
Ruby Resque fill it (tests/golden)."""

import html
import http.client
import json
import os
import re
import sys
import time
from urllib.parse import urlencode, urlsplit

from conftest import GOLDEN, log_text, wait_until

PHP = os.path.join(GOLDEN, "php-resque")
RUBY = os.path.join(GOLDEN, "ruby-resque", "snapshots")
PHP_WORKER = "vm:14608:golden"
RUBY_WORKER = "vm:4077:golden"
PHP_FAILED_JOB = "60e4ce5a355205aa23bc5458df8d991b"

# base URL -> the login URL its server printed (without --token or --auth,
# it makes a token of its own and prints where to log in with it).
LOGIN_URLS = {}

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def load_snapshot(r, path: str) -> None:
    """Write a golden keyspace snapshot's keys into Redis (lists appended)."""
    with open(path) as f:
        keys = json.load(f)["keys"]
    for key, item in keys.items():
        kind, value = item["type"], item["value"]
        if kind == "list":
            r.rpush(key, *value)
        elif kind == "set":
            r.sadd(key, *value)
        elif kind == "hash":
            r.hset(key, mapping=value)
        else:
            r.set(key, value)


def load_foreign_fleet(r) -> None:
    """A php-resque worker busy with a job, a Ruby worker busy with one, and
    each one's failure, as they wrote them. The Ruby worker's heartbeat is
    made current, so that a resqued worker's pruner leaves it registered."""
    load_snapshot(r, os.path.join(PHP, "05_after_failure.json"))
    load_snapshot(r, os.path.join(PHP, "03_while_running.json"))
    load_snapshot(r, os.path.join(RUBY, "04_after_failure.json"))
    load_snapshot(r, os.path.join(RUBY, "03_during_job.json"))
    r.hset("resque:workers:heartbeat", RUBY_WORKER, time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
    r.delete("resque:pruning_dead_workers_in_progress")


def start_web(procs, redis_url, *args, env=None, name="web", python=(sys.executable,)):
    """``resqued web`` on a free loopback port; returns (process, base URL)."""
    proc = procs.spawn([*python, "-m", "resqued", "web", "--listen", "127.0.0.1:0",
                        "--redis", redis_url, *args], env=env, name=name)

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"resqued web exited {proc.returncode}:\n{log_text(proc)}")
        match = re.search(r"resqued web: (http://\S+?)/? on Redis.*\n", log_text(proc))
        return match and match[1].rstrip("/")
    base = wait_until(listening, timeout=15, message="resqued web to listen")
    login = re.search(r"resqued web: to act, log in at (http://\S+)\n", log_text(proc))
    if login:
        LOGIN_URLS[base] = login[1]
    return proc, base


class Client:
    """HTTP through http.client: cookies kept, redirects not followed (a
    test looks at them), the last page's CSRF token remembered."""

    def __init__(self, base: str):
        self.base = base
        parts = urlsplit(base)
        self.host, self.port, self.prefix = parts.hostname, parts.port, parts.path
        self.cookies = {}
        self.csrf = None

    def request(self, method: str, path: str, fields=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        body = urlencode(fields or {}, doseq=True) if fields is not None else None
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(headers or {})
        try:
            conn.request(method, self.prefix + path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode("utf-8", errors="replace")
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";")[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', text)
        if found:
            self.csrf = found[1]
        response.text = text
        return response

    def log_in(self):
        """Log in with the URL the server printed (its own token); returns self."""
        parts = urlsplit(LOGIN_URLS[self.base])
        response = self.get(parts.path[len(self.prefix):] + "?" + parts.query)
        assert response.status == 303, f"login: {response.status}\n{response.text[:2000]}"
        return self

    def get(self, path: str, headers=None):
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict, headers=None, csrf=True):
        fields = dict(fields)
        if csrf and "csrf" not in fields:
            fields["csrf"] = self.csrf
        return self.request("POST", path, fields, headers)

    def page(self, path: str) -> str:
        """The body of a page that must answer 200."""
        response = self.get(path)
        assert response.status == 200, f"GET {path}: {response.status}\n{response.text[:2000]}"
        return response.text


def text_of(page: str) -> str:
    """What a page says, its markup gone and its entities read."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
