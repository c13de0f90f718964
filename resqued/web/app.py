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
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode

import jinja2
import redis

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
        if self.method == "POST":
            try:
                length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_FORM_BYTES)
            except ValueError:
                length = 0
            body = environ["wsgi.input"].read(length).decode("utf-8", errors="replace") if length else ""
            self.form_lists = parse_qs(body, keep_blank_values=True)
            self.form = {k: v[-1] for k, v in self.form_lists.items()}


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
                 base_path: str = "", refresh: int = 5, redis_label: str = ""):
        self.reads = reads
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
            extra.append(("Set-Cookie", self._cookie(CSRF_COOKIE, nonce)))
        request.csrf = self.guard.csrf_token(nonce)
        try:
            response = self.handle(request)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("cannot reach Redis: %s", exc)
            response = self.page("error.html", request, status=503, title="Redis unreachable",
                                 message=f"cannot reach Redis ({self.redis_label}): {exc}")
        except redis.RedisError as exc:
            log.warning("Redis error: %s", exc)
            response = self.page("error.html", request, status=500, title="Redis error", message=str(exc))
        status = f"{response.status} {HTTPStatus(response.status).phrase}"
        start_response(status, response.headers + SECURITY_HEADERS + extra)
        return [response.body]

    def _cookie(self, name: str, value: str) -> str:
        return f"{name}={value}; Path={self.base_path or '/'}; HttpOnly; SameSite=Strict"

    def handle(self, request: Request) -> Response:
        if not self.guard.host_allowed(request.environ):
            return Response("this dashboard answers only to loopback names (see --allow-host)\n", 403,
                            "text/plain; charset=utf-8")
        if request.path.startswith("/static/"):
            return self.static(request.path[len("/static/"):])
        if request.path == "/login" and self.guard.token:
            return self.login(request)
        if not self.guard.authenticated(request.environ, request.cookies):
            if self.guard.auth and not self.guard.token:
                return Response("authentication required\n", 401, "text/plain; charset=utf-8",
                                [("WWW-Authenticate", 'Basic realm="resqued", charset="UTF-8"')])
            if request.method == "GET":
                query = request.environ.get("QUERY_STRING")
                back = request.path + ("?" + query if query else "")
                return Response(status=303, headers=[("Location", self.url("/login", next=back))])
            return Response("authentication required: log in, or send Authorization\n", 401,
                            "text/plain; charset=utf-8",
                            [("WWW-Authenticate", 'Basic realm="resqued", charset="UTF-8"')] if self.guard.auth else [])
        if request.method == "POST":
            if self.read_only and request.path != "/logout":
                return self.page("error.html", request, status=403, title="Read-only",
                                 message="this dashboard runs with --read-only: it changes nothing")
            problem = self.guard.csrf_problem(request.environ, request.cookies, request.form.get("csrf", ""))
            if problem:
                return self.page("error.html", request, status=403, title="Refused", message=problem)
            if request.path == "/logout":
                return Response(status=303, headers=[("Location", self.url("/login")),
                                                     ("Set-Cookie", self._cookie(SESSION_COOKIE, "") + "; Max-Age=0")])
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

    def page(self, template: str, request: Request, status: int = 200, **context) -> Response:
        context.setdefault("refresh", 0)
        body = self.templates.get_template(template).render(
            request=request, csrf=request.csrf, actions=not self.read_only, read_only=self.read_only,
            logged_in=bool(self.guard.token) and self.guard.authenticated(request.environ, request.cookies),
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
        target = request.query.get("next") or request.form.get("next") or "/"
        # Only a path of this site: "//host" and "/\\host" would leave it.
        target = target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"
        if request.method == "POST":
            # The login form is the only POST without a session: its CSRF
            # check still binds it to this browser.
            problem = self.guard.csrf_problem(request.environ, request.cookies, request.form.get("csrf", ""))
            if problem is None and self.guard.token_matches(request.form.get("token", "")):
                return Response(status=303, headers=[("Location", self.url(target)),
                                                     ("Set-Cookie", self._cookie(SESSION_COOKIE,
                                                                                 self.guard.session_value()))])
            return self.page("login.html", request, status=403, next=target,
                             error=problem or "wrong token", title="Log in")
        return self.page("login.html", request, next=target, error=None, title="Log in")
