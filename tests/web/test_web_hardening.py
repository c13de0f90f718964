"""What a hostile client or a local user can no longer do: steer the login
elsewhere or split its headers, make the server read an endless body before
it asks who is there, tie up every thread with connections that send
nothing, act without logging in (the pages stay open on loopback), reuse a
session after logout, or guess the token at full speed; and an error page
shows no Redis password."""

import re
import socket
import sys
import time

from conftest import log_text, wait_until
from resqued.web.app import header_problem, local_target
from webclient import LOGIN_URLS, Client, start_web, text_of

# A server whose file descriptors run out at 256, as a small host's would:
# without a cap on connections, a few hundred idle ones starve it.
FEW_FILES = (sys.executable, "-c", "import resource, runpy, sys; "
             "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
             "sys.argv = ['resqued', *sys.argv[3:]]; runpy.run_module('resqued', run_name='__main__')")


def raw_request(base: str, head: str, timeout: float = 5.0) -> str:
    """Send ``head`` (no body follows) and read the answer; the connection stays open for writing."""
    host, port = re.match(r"http://([^:/]+):(\d+)", base).groups()
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(head.encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer.decode(errors="replace")


def test_the_login_goes_back_only_to_a_path_of_this_site(procs, redis_url):
    assert local_target("/failure?index=0") == "/failure?index=0"
    for elsewhere in ("/\t/evil.example", "/x\r\nSet-Cookie: evil=1", " /x", "/\\evil.example", "//evil.example",
                      "https://evil.example/", "evil.example", "/\x00x", "", None):
        assert local_target(elsewhere) == "/", repr(elsewhere)
    assert header_problem([("Location", "/a\r\nSet-Cookie: evil=1")]) and not header_problem([("Location", "/a")])

    _, base = start_web(procs, redis_url, "--token", "s3cret-token")
    client = Client(base)
    for elsewhere in ("/\t/evil.example", "/x\r\nSet-Cookie: evil=1", "/\n/evil.example"):
        client.page("/login")
        back = client.post("/login", {"token": "s3cret-token", "next": elsewhere})
        assert back.status == 303 and back.headers["Location"] == "/", repr(elsewhere)
        assert "evil" not in str(back.headers)
    # The URL a browser is sent to: %09 is a tab, which browsers drop.
    back = client.get("/login?token=s3cret-token&next=/%09/evil.example")
    assert back.status == 303 and back.headers["Location"] == "/"


def test_a_body_is_read_only_when_its_length_is_sane_and_after_the_credential(procs, redis_url):
    _, base = start_web(procs, redis_url, "--token", "s3cret-token")
    # Each would have the server wait for a body that never comes (or read one without end).
    for length, status in (("-1", "400"), ("abc", "400"), ("5000000", "413")):
        answer = raw_request(base, f"POST /failed/retry HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   f"Content-Length: {length}\r\n\r\n")
        assert answer.startswith(f"HTTP/1.0 {status}"), (length, answer[:200])
    # Unauthenticated: refused before the body is read.
    answer = raw_request(base, "POST /failed/retry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
    assert answer.startswith("HTTP/1.0 401"), answer[:200]


def test_idle_connections_do_not_stop_a_request_from_being_answered(procs, redis_url):
    proc, base = start_web(procs, redis_url, "--client-timeout", "2", python=FEW_FILES)
    host, port = re.match(r"http://([^:/]+):(\d+)", base).groups()
    idle = []
    try:
        for _ in range(300):
            conn = socket.create_connection((host, int(port)), timeout=5)
            conn.sendall(b"GET / HTTP/1.1\r\n")   # and then nothing
            idle.append(conn)

        def answered():
            try:
                return Client(base).get("/").status == 200
            except OSError:
                return False
        wait_until(answered, timeout=20, interval=0.2, message="a page while 300 connections idle")
    finally:
        for conn in idle:
            conn.close()
    assert proc.poll() is None


def test_without_a_credential_pages_are_open_and_actions_need_the_printed_login(procs, redis_url, r):
    proc, base = start_web(procs, redis_url)
    login_url = LOGIN_URLS[base]
    assert re.fullmatch(re.escape(base) + r"/login\?token=[A-Za-z0-9_-]{20,}", login_url)
    token = login_url.rsplit("=", 1)[1]
    client = Client(base)
    assert "log in to act" in text_of(client.page("/"))
    refused = client.post("/pause", {})
    assert refused.status == 401 and "log in" in refused.text and r.get("resque:pause-all-workers") is None

    assert client.get("/login?token=wrong").status == 403
    client.log_in()
    session = client.cookies["resqued_session"]
    assert token not in session and client.post("/pause", {}).status == 200
    assert r.get("resque:pause-all-workers") == b"true"
    # Each login its own session.
    other = Client(base).log_in()
    assert other.cookies["resqued_session"] != session

    # Logging out forgets the session in the server: the old cookie acts no more.
    client.page("/")
    assert client.post("/logout", {}).status == 303
    thief = Client(base)
    thief.page("/")
    thief.cookies["resqued_session"] = session
    assert thief.post("/resume", {}).status == 401 and r.get("resque:pause-all-workers") == b"true"
    assert other.page("/") and other.post("/resume", {}).status == 200   # the other login still acts
    assert token not in log_text(proc).split("log in at", 1)[1].split("\n", 1)[1]   # printed once only


def test_the_session_cookie_is_secure_behind_a_trusted_https_proxy_only(procs, redis_url):
    https = {"X-Forwarded-Proto": "https"}
    _, base = start_web(procs, redis_url)
    cookie = Client(base).request("GET", LOGIN_URLS[base].split(base, 1)[1], headers=https).headers["Set-Cookie"]
    assert "Secure" not in cookie and "Max-Age=" in cookie
    _, base = start_web(procs, redis_url, "--trust-forwarded-proto", name="web2")
    response = Client(base).request("GET", LOGIN_URLS[base].split(base, 1)[1], headers=https)
    assert all("; Secure" in c for c in response.headers.get_all("Set-Cookie"))


def test_wrong_tokens_lock_an_address_out_for_a_while(procs, redis_url):
    _, base = start_web(procs, redis_url, "--token", "s3cret-token")
    client = Client(base)
    for _ in range(5):
        client.page("/login")
        assert client.post("/login", {"token": "guess"}).status == 403
    started = time.monotonic()
    locked = client.get("/login?token=s3cret-token")
    assert locked.status == 429 and 0 < int(locked.headers["Retry-After"]) <= 61
    assert time.monotonic() - started < 5   # refused at once, not slowed


def test_an_error_page_shows_no_redis_password(procs, tmp_path):
    # redis-py quotes the socket's path in its error; here the path holds the password.
    secret = "pw-hunter2"
    (tmp_path / secret).mkdir()
    _, base = start_web(procs, f"unix://{tmp_path}/{secret}/no-redis.sock?password={secret}")
    response = Client(base).get("/")
    assert response.status == 503 and "cannot reach Redis" in text_of(response.text)
    error = text_of(response.text).split("namespace resque):", 1)[1]   # what redis-py said
    assert secret not in error and "/***/no-redis.sock" in error
