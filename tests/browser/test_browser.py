"""The dashboard in a real browser (headless Chromium through chromedriver):
every page loads with its stylesheet and script, a failure retried by
clicking its button (after the printed login) is queued, the auto-refresh reloads and its toggle stops
it, and markup from Redis runs nothing.

Run by ``make test-browser`` (RESQUED_BROWSER=1), which fails, saying what
is missing, when Chromium or chromedriver is not installed. ``make test``
skips this module, and says so."""

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "web"))

from conftest import wait_until  # noqa: E402
from webclient import LOGIN_URLS, PHP_FAILED_JOB, load_foreign_fleet, start_web  # noqa: E402
from webdriver import Browser, missing  # noqa: E402

if os.environ.get("RESQUED_BROWSER") != "1":
    pytest.skip("the browser test runs with `make test-browser` (RESQUED_BROWSER=1)", allow_module_level=True)
if missing():
    pytest.fail(missing(), pytrace=False)

PAGES = {"/": "Overview", "/queues": "Queues", "/queue?name=golden": "Queue golden", "/workers": "Workers",
         "/failed": "Failed", "/failure?index=0": "Failure", f"/job?id={PHP_FAILED_JOB}": f"Job {PHP_FAILED_JOB}",
         "/stats": "Stats", "/failed/clear": "Clear failures", "/queue/clear?name=golden": "Clear queue golden"}


@pytest.fixture
def browser(tmp_path):
    b = Browser(str(tmp_path))
    yield b
    b.close()


def test_every_page_loads_and_a_retry_click_queues_the_job(procs, redis_url, r, browser):
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url)
    for path, title in PAGES.items():
        browser.open(base + path)
        assert browser.title == f"{title} · resqued", path
        # The stylesheet applied (the header's dark background), so the assets are served.
        color = browser.run("return getComputedStyle(document.querySelector('header')).backgroundColor")
        assert color == "rgb(36, 41, 47)", path

    # The pages were open; an action needs the login the server printed.
    browser.open(base + "/failed")
    assert browser.text(browser.find("header a.login")) == "log in to act"
    browser.open(LOGIN_URLS[base])
    browser.open(base + "/failed")
    browser.click(browser.find(f'a[href="/failure?index=0&id={PHP_FAILED_JOB}"]'))
    assert browser.title == "Failure · resqued"
    [retry, *_] = browser.find_all(".actions button")
    assert browser.text(retry) == "Retry"
    browser.click(retry)
    wait_until(lambda: "retried failure 0" in browser.source(), message="the retry's answer")
    assert [json.loads(raw)["id"] for raw in r.lrange("resque:queue:golden", 0, -1)] == [PHP_FAILED_JOB]


def test_auto_refresh_reloads_until_turned_off(procs, redis_url, browser):
    _, base = start_web(procs, redis_url, "--refresh", "1")
    browser.open(base + "/")
    toggle = browser.find("#refresh-toggle")
    assert browser.selected(toggle)
    browser.run("window.marker = 1")
    wait_until(lambda: browser.run("return window.marker === undefined"), timeout=10, message="a reload")
    browser.click(browser.find("#refresh-toggle"))
    browser.run("window.marker = 2")
    browser.open(base + "/")   # the choice is remembered
    assert not browser.selected(browser.find("#refresh-toggle"))
    browser.run("window.marker = 3")
    # Three periods without a reload (the reload would have dropped the marker).
    deadline_passed = browser.run("return new Promise(done => setTimeout(() => done(window.marker), 3000))")
    assert deadline_passed == 3


def test_markup_from_redis_runs_nothing(procs, redis_url, r, browser):
    script = "<script>window.pwned=1</script>"
    img = '"><img src=x onerror="window.pwned=2">'
    payload = {"class": img, "args": [script], "id": script, "queue_time": 1}
    r.sadd("resque:queues", script)
    r.rpush(f"resque:queue:{script}", json.dumps(payload))
    r.rpush("resque:failed", json.dumps({"payload": payload, "exception": img, "error": script,
                                         "backtrace": [img], "worker": img, "queue": script}))
    worker = f"h{img}:1:{script}"
    r.sadd("resque:workers", worker)
    r.set(f"resque:worker:{worker}", json.dumps({"queue": script, "run_at": img, "payload": payload}))
    _, base = start_web(procs, redis_url)
    for path in ("/", "/queues", "/workers", "/failed", "/failure?index=0"):
        browser.open(base + path)
        assert browser.run("return window.pwned === undefined"), path
        assert "window.pwned" in browser.run("return document.body.innerText"), path   # shown as text
