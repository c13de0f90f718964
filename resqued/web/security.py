"""Who may use the dashboard, and which requests are the user's own.

- Exposure: listening beyond loopback needs a credential (a token or basic
  auth), checked once at start (``exposure_problem``).
- Credential: when one is set, every page needs it (payloads may hold
  personal data), given as ``Authorization: Bearer``/``Basic``, or as the
  session cookie the login form sets (an HMAC of the token: the token itself
  never sits in a cookie).
- CSRF: every POST carries a form token bound to the browser's own random
  cookie (HMAC with a per-process secret), and its Origin or Referer, when
  sent, must be this host.
- DNS rebinding: without a credential, only requests whose Host is a
  loopback name (or one given with ``--allow-host``) are served, so that a
  page of another site that resolves its name to 127.0.0.1 reads nothing.
"""

import base64
import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

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
    def __init__(self, token: str | None = None, auth: str | None = None, allowed_hosts=()):
        self.token = token or None
        self.auth = auth or None
        self.allowed_hosts = {split_host(h) for h in allowed_hosts}
        self._secret = secrets.token_bytes(32)

    @property
    def has_credential(self) -> bool:
        return bool(self.token or self.auth)

    # -- which Host is served -------------------------------------------------
    def host_allowed(self, environ) -> bool:
        if self.has_credential:
            return True
        host = split_host(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        return is_loopback(host) or host in self.allowed_hosts

    # -- credential -------------------------------------------------------------
    def session_value(self) -> str:
        """The session cookie's value: not the token, a digest only this process makes."""
        return hmac.new(self._secret, b"session:" + (self.token or "").encode(), hashlib.sha256).hexdigest()

    def authenticated(self, environ, cookies: dict) -> bool:
        if not self.has_credential:
            return True
        header = environ.get("HTTP_AUTHORIZATION", "")
        kind, _, value = header.partition(" ")
        if self.token:
            if kind.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode()):
                return True
            cookie = cookies.get(SESSION_COOKIE, "")
            if cookie and hmac.compare_digest(cookie.encode(), self.session_value().encode()):
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
