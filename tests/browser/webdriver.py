"""A headless Chromium driven through chromedriver's W3C WebDriver API
(JSON over HTTP): the few commands the browser test and the screenshots need
(open, find, click, read, screenshot), with the standard library only.

Needs Debian's ``chromium`` and ``chromium-driver`` (/usr/bin/chromium,
/usr/bin/chromedriver), or CHROMIUM and CHROMEDRIVER naming them."""

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"   # the W3C name of an element reference


def binaries() -> tuple[str | None, str | None]:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return chromium, driver


def missing() -> str | None:
    """What is missing to run a browser, in one sentence, or None."""
    chromium, driver = binaries()
    if chromium and driver:
        return None
    lacking = " and ".join(name for name, found in (("chromium", chromium), ("chromedriver", driver)) if not found)
    return (f"the browser test needs {lacking}: apt-get install chromium chromium-driver "
            "(or set CHROMIUM and CHROMEDRIVER to their paths)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    def __init__(self, workdir: str, width: int = 1280, height: int = 900):
        chromium, driver = binaries()
        self.port = _free_port()
        self.log = open(os.path.join(workdir, "chromedriver.log"), "wb")
        self.driver = subprocess.Popen([driver, f"--port={self.port}"], stdout=self.log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline or self.driver.poll() is not None:
                self.close()
                raise RuntimeError(f"chromedriver did not start (see {self.log.name})")
            time.sleep(0.05)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", f"--user-data-dir={os.path.join(workdir, 'chromium')}"]
        try:
            session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
                "browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": args}}}})
        except Exception:
            self.close()
            raise
        self.session = f"/session/{session['sessionId']}"

    def _call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            value = json.loads(exc.read() or b"{}").get("value", {})
            raise RuntimeError(f"webdriver {method} {path}: {value.get('error')}: {value.get('message')}") from None

    def command(self, method: str, path: str, body=None):
        return self._call(method, self.session + path, body)

    def open(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self.command("GET", "/url")

    @property
    def title(self) -> str:
        return self.command("GET", "/title")

    def source(self) -> str:
        return self.command("GET", "/source")

    def find(self, css: str) -> str:
        return self.command("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css: str) -> list[str]:
        return [e[ELEMENT] for e in self.command("POST", "/elements", {"using": "css selector", "value": css})]

    def click(self, element: str) -> None:
        self.command("POST", f"/element/{element}/click")

    def text(self, element: str) -> str:
        return self.command("GET", f"/element/{element}/text")

    def selected(self, element: str) -> bool:
        return self.command("GET", f"/element/{element}/selected")

    def run(self, script: str, *args):
        return self.command("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.command("GET", "/screenshot")))

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", self.session)
        except Exception:   # the browser may be gone already; the driver is stopped below anyway
            pass
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
        self.log.close()
