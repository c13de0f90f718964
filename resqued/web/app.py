"""The dashboard's WSGI application: requests, the checks every request
passes (security.py), routing by hand, and rendering with Jinja2, whose
autoescaping escapes every value from Redis (a job's class, args, queue,
error or worker name is text, never markup).

Names from Redis travel in query strings (``/queue?name=...``), never in
the path: a queue may be called ``a/b`` or ``%2F``, which a path would mangle.
"""

import json
import logging
import os
import re
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
import redis

from resqued.ctl.output import scrub
from resqued.resque import wire
from resqued.web import actions, pages
from resqued.web.reads import failure_ref
from resqued.web.security import CSRF_COOKIE, SESSION_COOKIE, Guard

log = logging.getLogger("resqued.web")

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
MAX_FORM_BYTES = 1 << 20
# Even if a value slipped through unescaped, no inline script or foreign
# resource would run: scripts and styles come from this server only.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]


class Request:
    def __init__(self, environ, base_path: str):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO") or "/"
        if base_path and (path == base_path or path.startswith(base_path + "/")):
            path = path[len(base_path):] or "/"
        self.path = path
        self.query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        cookies = SimpleCookie()
        try:
            cookies.load(environ.get("HTTP_COOKIE", ""))
        except Exception:   # a malformed Cookie header is no cookie, not an error page
            pass
        self.cookies = {name: morsel.value for name, morsel in cookies.items()}
        self.form, self.form_lists = {}, {}

    def body_problem(self):
        """Why the body will not be read (a Response), or None. Checked
        before anything is read: a length below zero would read to the end
        of the connection, one too large is refused unread."""
        text = (self.environ.get("CONTENT_LENGTH") or "0").strip()
        if not re.fullmatch(r"[0-9]{1,19}", text):
            return Response(f"Content-Length is not a number of bytes: {text[:40]!r}\n", 400,
                            "text/plain; charset=utf-8")
        if int(text) > MAX_FORM_BYTES:
            return Response(f"a form is at most {MAX_FORM_BYTES} bytes\n", 413, "text/plain; charset=utf-8")
        return None

    def read_form(self) -> None:
        """Read and parse the form (after body_problem said it may be)."""
        length = int((self.environ.get("CONTENT_LENGTH") or "0").strip())
        body = self.environ["wsgi.input"].read(length).decode("utf-8", errors="replace") if length else ""
        self.form_lists = parse_qs(body, keep_blank_values=True)
        self.form = {k: v[-1] for k, v in self.form_lists.items()}


def local_target(text) -> str:
    """``text`` if it is a path of this site, else the overview's. Browsers
    drop tabs and newlines from a URL (``/\t/evil.example`` is
    ``//evil.example``, another site) and a CR/LF would split the Location
    header: nothing with a control character or a space goes back."""
    if not text or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return "/"
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not text.startswith("/") or text.startswith(("//", "/\\")):
        return "/"
    return text


def header_problem(headers) -> str | None:
    """A header value that would split the response (CR or LF), named; wsgiref does not refuse them."""
    for name, value in headers:
        if "\r" in value or "\n" in value:
            return f"header {name} holds a line break"
    return None


class Response:
    def __init__(self, body: str | bytes = b"", status: int = 200, content_type: str = "text/html; charset=utf-8",
                 headers=None):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.headers = [("Content-Type", content_type), *(headers or [])]


def ago(seconds) -> str:
    """A duration as people read it: 42s, 3m 10s, 5h 2m, 4d 3h."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    for size, unit, smaller, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "m"), (60, "m", 1, "s")):
        if seconds >= size:
            rest = (seconds % size) // smaller
            return f"{seconds // size}{unit}" + (f" {rest}{small_unit}" if rest else "")
    return f"{seconds}s"


def since(iso) -> str:
    ts = wire.parse_time(iso) if isinstance(iso, str) else iso
    return ago(time.time() - ts) + " ago" if isinstance(ts, (int, float)) else "-"


def compact(value, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


class Dashboard:
    def __init__(self, reads, guard: Guard, read_only: bool = False, master_socket: str | None = None,
                 base_path: str = "", refresh: int = 5, redis_label: str = "", redis_url: str = ""):
        self.reads = reads
        self.redis_url = redis_url
        self.guard = guard
        self.read_only = read_only
        self.master_socket = master_socket
        self.base_path = base_path.rstrip("/")
        self.refresh = refresh
        self.redis_label = redis_label
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("resqued.web", "templates"),
            autoescape=True, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters.update(ago=ago, since=since, compact=compact,
                                      pretty=lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str),
                                      when=lambda ts: wire.utc_iso(ts) if isinstance(ts, (int, float)) else (ts or "-"),
                                      rate=lambda r: "-" if r is None else f"{r:.2f}/s")
        self.templates.globals.update(url=self.url, ref_of=failure_ref)

    def url(self, path: str, **query) -> str:
        query = {k: v for k, v in query.items() if v is not None}
        return self.base_path + path + ("?" + urlencode(query) if query else "")

    # -- WSGI ---------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ, self.base_path)
        extra = []
        nonce = request.cookies.get(CSRF_COOKIE)
        if not nonce:
            nonce = self.guard.new_nonce()
            extra.append(("Set-Cookie", self._cookie(request, CSRF_COOKIE, nonce)))
        request.csrf = self.guard.csrf_token(nonce)
        request.authenticated = self.guard.authenticated(environ, request.cookies)
        try:
            response = self.handle(request)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            error = scrub(str(exc), self.redis_url)
            log.warning("cannot reach Redis: %s", error)
            response = self.page("error.html", request, status=503, title="Redis unreachable",
                                 message=f"cannot reach Redis ({self.redis_label}): {error}")
        except redis.RedisError as exc:
            error = scrub(str(exc), self.redis_url)
            log.warning("Redis error: %s", error)
            response = self.page("error.html", request, status=500, title="Redis error", message=error)
        headers = response.headers + SECURITY_HEADERS + extra
        problem = header_problem(headers)
        if problem:
            log.error("refused to answer %s: %s", request.path, problem)
            response = Response("internal error: an unsafe response header\n", 500, "text/plain; charset=utf-8")
            headers = response.headers + SECURITY_HEADERS
        status = f"{response.status} {HTTPStatus(response.status).phrase}"
        start_response(status, headers)
        return [response.body]

    def _cookie(self, request, name: str, value: str, max_age: int | None = None) -> str:
        return (f"{name}={value}; Path={self.base_path or '/'}; HttpOnly; SameSite=Strict"
                + ("" if max_age is None else f"; Max-Age={max_age}")
                + ("; Secure" if self.guard.https(request.environ) else ""))

    def handle(self, request: Request) -> Response:
        if not self.guard.host_allowed(request.environ):
            return Response("this dashboard answers only to loopback names (see --allow-host)\n", 403,
                            "text/plain; charset=utf-8")
        if request.path.startswith("/static/"):
            return self.static(request.path[len("/static/"):])
        if request.method == "POST":
            # Refused before a byte of the body is read (the login's too).
            refused = request.body_problem()
            if refused is not None:
                return refused
            if self.read_only and request.path not in ("/logout", "/login"):
                return self.page("error.html", request, status=403, title="Read-only",
                                 message="this dashboard runs with --read-only: it changes nothing")
        if request.path == "/login" and self.guard.token:
            return self.login(request)
        # Pages need a credential when one is configured; actions always do.
        if not request.authenticated and (self.guard.configured or request.method == "POST"):
            return self.unauthenticated(request)
        if request.method == "POST":
            request.read_form()
            problem = self.guard.csrf_problem(request.environ, request.cookies, request.form.get("csrf", ""))
            if problem:
                return self.page("error.html", request, status=403, title="Refused", message=problem)
            if request.path == "/logout":
                self.guard.sessions.drop(request.cookies.get(SESSION_COOKIE, ""))
                return Response(status=303, headers=[("Location", self.url("/login" if self.guard.token else "/")),
                                                     ("Set-Cookie", self._cookie(request, SESSION_COOKIE, "", 0))])
            handler = actions.ROUTES.get(request.path)
            if handler is None:
                return self.page("error.html", request, status=404, title="Not found", message="no such action")
            log.info("%s %s from %s", request.path, {k: v for k, v in request.form.items() if k != "csrf"},
                     request.environ.get("REMOTE_ADDR"))
            return handler(self, request)
        if request.method not in ("GET", "HEAD"):
            return Response("method not allowed\n", 405, "text/plain; charset=utf-8", [("Allow", "GET, POST")])
        handler = pages.ROUTES.get(request.path)
        if handler is None:
            return self.page("error.html", request, status=404, title="Not found", message="no such page")
        return handler(self, request)

    def unauthenticated(self, request: Request) -> Response:
        basic = [("WWW-Authenticate", 'Basic realm="resqued", charset="UTF-8"')] if self.guard.auth else []
        if self.guard.auth and not self.guard.token:
            return Response("authentication required\n", 401, "text/plain; charset=utf-8", basic)
        if request.method == "GET":
            query = request.environ.get("QUERY_STRING")
            back = request.path + ("?" + query if query else "")
            return Response(status=303, headers=[("Location", self.url("/login", next=back))])
        if self.guard.generated:
            return Response("log in to act: open the login URL resqued web printed when it started\n", 401,
                            "text/plain; charset=utf-8")
        return Response("authentication required: log in, or send Authorization\n", 401,
                        "text/plain; charset=utf-8", basic)

    def page(self, template: str, request: Request, status: int = 200, **context) -> Response:
        context.setdefault("refresh", 0)
        logged_in = bool(self.guard.token) and request.authenticated
        body = self.templates.get_template(template).render(
            request=request, csrf=request.csrf, actions=not self.read_only, read_only=self.read_only,
            logged_in=logged_in, login_to_act=self.guard.generated and not logged_in and not self.read_only,
            redis_label=self.redis_label, **context)
        return Response(body, status)

    def static(self, name: str) -> Response:
        _, ext = os.path.splitext(name)
        if "/" in name or name.startswith(".") or ext not in STATIC_TYPES:
            return Response("not found\n", 404, "text/plain; charset=utf-8")
        try:
            with open(os.path.join(STATIC, name), "rb") as f:
                return Response(f.read(), 200, STATIC_TYPES[ext])
        except OSError:
            return Response("not found\n", 404, "text/plain; charset=utf-8")

    def login(self, request: Request) -> Response:
        """The login form, its POST, and ``/login?token=...`` (the URL the
        server prints at start): each right token makes a new session."""
        if request.method == "POST":
            request.read_form()
        given = request.form.get("token") if request.method == "POST" else request.query.get("token")
        target = local_target(request.query.get("next") or request.form.get("next"))
        if given is None:
            return self.page("login.html", request, next=target, error=None, title="Log in")
        address = request.environ.get("REMOTE_ADDR", "")
        wait = self.guard.throttle.wait(address)
        if wait:
            log.warning("login refused: too many wrong tokens from %s", address)
            return Response(f"too many wrong tokens: try again in {int(wait) + 1} s\n", 429,
                            "text/plain; charset=utf-8", [("Retry-After", str(int(wait) + 1))])
        # The login form is the only POST without a session: its CSRF check
        # still binds it to this browser.
        problem = (self.guard.csrf_problem(request.environ, request.cookies, request.form.get("csrf", ""))
                   if request.method == "POST" else None)
        if problem is None and self.guard.token_matches(given):
            session = self._cookie(request, SESSION_COOKIE, self.guard.sessions.create(),
                                   int(self.guard.sessions.ttl))
            return Response(status=303, headers=[("Location", self.url(target)), ("Set-Cookie", session)])
        if problem is None:
            self.guard.throttle.failed(address)
            log.warning("login with a wrong token from %s", address)
        return self.page("login.html", request, status=403, next=target,
                         error=problem or "wrong token", title="Log in")
