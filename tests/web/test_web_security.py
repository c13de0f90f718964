"""Who may act through the dashboard: loopback by default; beyond it a
token or basic auth, or it does not start (78); every POST carries the
browser's CSRF token and comes from this site; a page of another site that
resolves its name to 127.0.0.1 is not served."""

import base64
import subprocess
import sys

import pytest

from conftest import ROOT
from resqued.exits import EX_CONFIG
from resqued.web.security import exposure_problem, is_loopback
from webclient import PHP_FAILED_JOB, Client, load_foreign_fleet, start_web

RETRY = {"ref": f"id:{PHP_FAILED_JOB}", "remove": "1"}


def test_the_exposure_policy():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.5")
    assert exposure_problem("127.0.0.1", None, None) is None
    assert exposure_problem("0.0.0.0", "t0ken", None) is None
    assert exposure_problem("0.0.0.0", None, "ops:pw") is None
    assert "--token" in exposure_problem("0.0.0.0", None, None)
    assert exposure_problem("::", None, None)


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "10.1.2.3:5640"])
def test_listening_beyond_loopback_without_a_credential_is_refused(redis_url, listen):
    done = subprocess.run([sys.executable, "-m", "resqued", "web", "--listen", listen, "--redis", redis_url],
                          capture_output=True, text=True, timeout=30, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ROOT})
    assert done.returncode == EX_CONFIG
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("resqued web: refusing to listen on")
    assert done.stdout == ""


def test_beyond_loopback_with_a_token_it_serves_and_asks_for_the_token(procs, redis_url, r):
    load_foreign_fleet(r)
    # The last --listen wins: start_web's loopback one is overridden.
    _, base = start_web(procs, redis_url, "--listen", "0.0.0.0:0", env={"RESQUED_WEB_TOKEN": "s3cret-token"})
    client = Client(base.replace("0.0.0.0", "127.0.0.1"))
    assert client.get("/").status == 303
    assert client.post("/failed/retry", RETRY).status == 401
    assert client.get("/", headers={"Authorization": "Bearer s3cret-token"}).status == 200
    assert r.llen("resque:failed") == 2


def test_a_token_logs_in_and_then_actions_work(procs, redis_url, r):
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url, "--token", "s3cret-token")
    client = Client(base)
    login = client.get("/failed")
    assert login.status == 303 and "/login" in login.headers["Location"]
    client.page("/login")
    refused = client.post("/failed/retry", RETRY)
    assert refused.status == 401 and r.llen("resque:failed") == 2
    wrong = client.post("/login", {"token": "guess", "next": "/failed"})
    assert wrong.status == 403 and "wrong token" in wrong.text
    assert "s3cret-token" not in str(client.cookies)
    ok = client.post("/login", {"token": "s3cret-token", "next": "/failed"})
    assert ok.status == 303 and ok.headers["Location"] == "/failed"
    assert "s3cret-token" not in str(client.cookies)   # the cookie is a digest, not the token
    client.page("/failed")
    done = client.post("/failed/retry", RETRY)
    assert done.status == 200 and r.llen("resque:failed") == 1
    # A script sends the token itself; it still needs the form's CSRF token to act.
    script = Client(base)
    assert script.get("/", headers={"Authorization": "Bearer s3cret-token"}).status == 200
    assert script.post("/pause", {}, headers={"Authorization": "Bearer s3cret-token"}).status == 200
    assert r.get("resque:pause-all-workers") == b"true"
    assert script.get("/", headers={"Authorization": "Bearer wrong"}).status == 303


def test_login_returns_to_the_page_asked_for_and_never_to_another_site(procs, redis_url):
    _, base = start_web(procs, redis_url, "--token", "s3cret-token")
    client = Client(base)
    asked = client.get("/failure?index=0")
    assert asked.headers["Location"] == "/login?next=%2Ffailure%3Findex%3D0"
    client.page("/login")
    back = client.post("/login", {"token": "s3cret-token", "next": "/failure?index=0"})
    assert back.headers["Location"] == "/failure?index=0"
    for elsewhere in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        client.page("/login")
        assert client.post("/login", {"token": "s3cret-token", "next": elsewhere}).headers["Location"] == "/"


def test_basic_auth(procs, redis_url, r):
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url, "--auth", "ops:pa:ss")
    client = Client(base)
    denied = client.get("/")
    assert denied.status == 401 and denied.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/", headers={"Authorization": "Basic " + base64.b64encode(b"ops:nope").decode()}).status == 401
    good = {"Authorization": "Basic " + base64.b64encode(b"ops:pa:ss").decode()}
    assert client.get("/failed", headers=good).status == 200
    assert client.post("/failed/retry", RETRY).status == 401
    assert client.post("/failed/retry", RETRY, headers=good).status == 200
    assert r.llen("resque:failed") == 1


def test_a_post_without_the_browsers_csrf_token_or_from_another_site_is_refused(procs, redis_url, r):
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url)
    client = Client(base).log_in()
    client.page("/failed")
    token = client.csrf
    altered = token[:-1] + ("1" if token[-1] == "0" else "0")
    for fields in ({**RETRY, "csrf": ""}, {**RETRY, "csrf": "0" * 64}, {**RETRY, "csrf": altered}):
        refused = client.post("/failed/retry", fields)
        assert refused.status == 403 and "CSRF" in refused.text
    # Another browser's token is no good with this browser's cookie.
    other = Client(base).log_in()
    other.page("/failed")
    assert client.post("/failed/retry", {**RETRY, "csrf": other.csrf}).status == 403
    # A cross-site form carries the right cookie (it is the user's browser)
    # but not from this site.
    for header in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}, {"Origin": "null"}):
        refused = client.post("/failed/retry", {**RETRY, "csrf": token}, headers=header)
        assert refused.status == 403, header
    assert r.llen("resque:failed") == 2
    same = client.post("/failed/retry", {**RETRY, "csrf": token}, headers={"Origin": base})
    assert same.status == 200 and r.llen("resque:failed") == 1


def test_a_foreign_host_name_is_not_served_without_a_credential(procs, redis_url):
    """DNS rebinding: evil.example resolved to 127.0.0.1 must read nothing."""
    _, base = start_web(procs, redis_url)
    client = Client(base)
    assert client.get("/", headers={"Host": "evil.example"}).status == 403
    assert client.get("/", headers={"Host": "localhost:5640"}).status == 200
    _, base = start_web(procs, redis_url, "--allow-host", "ops.example.com", name="web2")
    assert Client(base).get("/", headers={"Host": "ops.example.com"}).status == 200


def test_pages_forbid_inline_scripts_and_framing(procs, redis_url):
    _, base = start_web(procs, redis_url)
    response = Client(base).get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
