"""Who may use the dashboard, and which requests are the user's own.

- Exposure: listening beyond loopback needs a credential (a token or basic
  auth), checked once at start (``exposure_problem``).
- Credential: when one is configured, every page needs it (payloads may
  hold personal data), given as ``Authorization: Bearer``/``Basic``, or as
  the session cookie a login sets. Without one, the pages are open on
  loopback but the actions are not: every local user could otherwise
  retry, remove and clear. A token is then made at start and its login
  URL printed, for whoever started the server (Jupyter's way).
- Sessions: a random id per login, kept by this process (sessions.py):
  it expires, logging out forgets it, and the token never sits in a cookie.
  Wrong tokens are counted per client address and lock it out a while.
- CSRF: every POST carries a form token bound to the browser's own random
  cookie (HMAC with a per-process secret), and its Origin or Referer, when
  sent, must be this host.
- DNS rebinding: without a configured credential, only requests whose Host
  is a loopback name (or one given with ``--allow-host``) are served, so
  that a page of another site that resolves its name to 127.0.0.1 reads
  nothing.
"""

import base64
import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from resqued.web.sessions import LoginThrottle, Sessions

CSRF_COOKIE = "resqued_csrf"
SESSION_COOKIE = "resqued_session"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """Is ``host`` (a name or an address, IPv6 with or without brackets) this machine only?"""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_problem(host: str, token: str | None, auth: str | None) -> str | None:
    """Why listening on ``host`` is refused, or None: beyond loopback, the
    actions would be anyone's without a token or basic auth."""
    if is_loopback(host) or token or auth:
        return None
    return (f"refusing to listen on {host} without --token (or RESQUED_WEB_TOKEN) or --auth user:password: "
            "anyone who reaches it could retry, remove and clear; listen on 127.0.0.1, or set one")


def split_host(value: str) -> str:
    """The host of a ``host:port`` Host header or netloc (``[::1]:5640`` too)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    def __init__(self, token: str | None = None, auth: str | None = None, allowed_hosts=(),
                 generate_token: bool = True, trust_forwarded_proto: bool = False):
        self.configured = bool(token or auth)
        # Nothing configured: a token of our own, so that actions need a login.
        self.token = token or (secrets.token_urlsafe(24) if generate_token and not auth else None)
        self.generated = bool(self.token) and not token
        self.auth = auth or None
        self.allowed_hosts = {split_host(h) for h in allowed_hosts}
        self.trust_forwarded_proto = trust_forwarded_proto
        self.sessions = Sessions()
        self.throttle = LoginThrottle()
        self._secret = secrets.token_bytes(32)

    # -- which Host is served -------------------------------------------------
    def host_allowed(self, environ) -> bool:
        if self.configured:
            return True
        host = split_host(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        return is_loopback(host) or host in self.allowed_hosts

    def https(self, environ) -> bool:
        """Did the browser use https? Behind a proxy that ends TLS, only its
        X-Forwarded-Proto says so, and only a trusted proxy's counts
        (``--trust-forwarded-proto``): anyone else could send the header."""
        if environ.get("wsgi.url_scheme") == "https":
            return True
        forwarded = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
        return self.trust_forwarded_proto and forwarded == "https"

    # -- credential -------------------------------------------------------------
    def authenticated(self, environ, cookies: dict) -> bool:
        """Does the request carry a credential (a session of a login, the
        token, basic auth)? With nothing configured, only a login counts."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        kind, _, value = header.partition(" ")
        if self.token:
            if kind.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode()):
                return True
            if self.sessions.valid(cookies.get(SESSION_COOKIE, "")):
                return True
        if self.auth and kind.lower() == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                return False
            return hmac.compare_digest(given, self.auth.encode())
        return False

    def token_matches(self, given: str) -> bool:
        return bool(self.token) and hmac.compare_digest(given.encode(), self.token.encode())

    # -- CSRF ---------------------------------------------------------------------
    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, nonce: str) -> str:
        return hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_problem(self, environ, cookies: dict, form_token: str) -> str | None:
        """Why a POST is not the user's own, or None."""
        nonce = cookies.get(CSRF_COOKIE, "")
        if not nonce or not form_token or not hmac.compare_digest(form_token.encode(),
                                                                 self.csrf_token(nonce).encode()):
            return "the form's CSRF token is missing or wrong (reload the page and try again)"
        source = environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER")
        if source and source != "null":
            origin = urlsplit(source).netloc.lower()
            host = (environ.get("HTTP_HOST") or "").lower()
            if origin != host and split_host(origin) not in self.allowed_hosts:
                return f"the request comes from another site ({origin}, not {host})"
        elif source == "null":
            return "the request comes from an opaque origin"
        return None
