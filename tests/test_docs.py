"""The docs run as printed, and their links lead somewhere.

A fenced block in README.md or docs/*.md is marked by the words after its
language (docs/development.md, "Runnable examples"):

    ```sh runnable                  bash, stopping at the first failing command: exit 0
    ```sh runnable exit=78          ... the block must exit 78
    ```python runnable              this venv's python
    ```python runnable jobs-succeed ... and every job it enqueued then runs without failing
    ```yaml file=pool.yml           not run: written to pool.yml for the blocks after it
    ```text output                  what the runnable block just before it printed

The marked blocks of one file run in order, in one fresh directory (the
reader's project), against one flushed test Redis, which they find in
REDIS_URL as a reader's shell would have it, with this venv's bin first on
PATH. Nothing else is added: no PYTHONPATH, no config. An ``output`` block's
lines must each appear in a line of the output, where ``...`` stands for any
text (a path, a pid, a time) and a run of spaces for any run of spaces.

Whatever a file's blocks started (a daemonized master) is killed at the end:
we are the child subreaper (conftest), so daemons are our children.
"""

import os
import re
import signal
import subprocess
import sys

import psutil
import pytest
import redis

from conftest import ROOT, reap, wait_until

DOCS = [*(name for name in ("README.md", "CHANGELOG.md") if os.path.exists(os.path.join(ROOT, name))),
        *sorted(os.path.join("docs", name) for name in os.listdir(os.path.join(ROOT, "docs"))
                if name.endswith(".md"))]
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,})(?P<info>[^`]*)$")
BLOCK_TIMEOUT = 120
KNOWN_WORDS = {"runnable", "jobs-succeed", "output"}


class Block:
    def __init__(self, path, line, language, words, text):
        self.path, self.line, self.language, self.text = path, line, language, text
        self.options = dict(word.split("=", 1) for word in words if "=" in word)
        self.flags = {word for word in words if "=" not in word}

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def runnable(self) -> bool:
        return "runnable" in self.flags


def read(path) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def blocks(path):
    """The fenced blocks of a markdown file, in order."""
    lines = read(path).split("\n")
    found, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        words = match["info"].split()
        body, index = [], index + 1
        start = index
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        assert index < len(lines), f"{path}:{start}: unclosed code block"
        found.append(Block(path, start, words[0] if words else "", words[1:], "\n".join(body) + "\n"))
        index += 1
    return found


def marked(path):
    return [b for b in blocks(path) if b.runnable or "file" in b.options or "output" in b.flags]


# -- what the marks may say --------------------------------------------------------

@pytest.mark.parametrize("path", DOCS)
def test_marks_are_well_formed(path):
    previous = None
    for block in blocks(path):
        assert block.language, f"{block.where}: a code block without a language"
        unknown = block.flags - KNOWN_WORDS
        assert not unknown, f"{block.where}: unknown words {sorted(unknown)} after {block.language}"
        assert set(block.options) <= {"exit", "file"}, f"{block.where}: unknown option in {block.options}"
        if block.runnable:
            assert block.language in ("sh", "python"), f"{block.where}: only sh and python blocks run"
        if "output" in block.flags:
            assert previous is not None and previous.runnable, \
                f"{block.where}: an output block must follow a runnable block"
        previous = block


# -- links ---------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*\s*$")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link's text only
    text = text.lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def prose(path) -> list:
    """(line number, line) outside code blocks."""
    out, in_code = [], None
    for number, line in enumerate(read(path).splitlines(), 1):
        match = FENCE.match(line)
        if match and (in_code is None or line.strip() == in_code):
            in_code = None if in_code else match["fence"]
            continue
        if in_code is None:
            out.append((number, line))
    return out


def anchors(path) -> set:
    found, seen = set(), {}
    for _, line in prose(path):
        match = HEADING.match(line)
        if match:
            base = slug(match["text"])
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(re.findall(r'<a (?:id|name)="([^"]+)"', line))
    return found


@pytest.mark.parametrize("path", DOCS)
def test_links_and_anchors_lead_somewhere(path):
    broken = []
    for number, line in prose(path):
        for match in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            target = match["target"]
            if re.match(r"[a-z]+:", target):
                continue   # http:, https:, mailto:
            file, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
            if not os.path.exists(os.path.join(ROOT, resolved)):
                broken.append(f"{path}:{number}: {target}: no file {resolved}")
            elif anchor and (not resolved.endswith(".md") or anchor not in anchors(resolved)):
                broken.append(f"{path}:{number}: {target}: no heading #{anchor} in {resolved}")
    assert not broken, "\n".join(broken)


# -- running them ----------------------------------------------------------------------

def output_matches(expected: str, actual: str) -> list:
    """The expected lines missing from ``actual`` (``...`` is any text; a
    run of spaces matches any run, as columns are aligned to their content)."""
    lines = [" ".join(line.split()) for line in actual.splitlines()]
    missing = []
    for want in filter(None, (" ".join(line.split()) for line in expected.splitlines())):
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")))
        if not any(pattern.search(line) for line in lines):
            missing.append(want)
    return missing


def settled(r, namespace="resque") -> bool:
    """Every queue empty and no worker working on a job."""
    queues = [q.decode() for q in r.smembers(f"{namespace}:queues")]
    if any(r.llen(f"{namespace}:queue:{q}") for q in queues):
        return False
    workers = [w.decode() for w in r.smembers(f"{namespace}:workers")]
    return not any(r.exists(f"{namespace}:worker:{w}") for w in workers)


class Session:
    """One file's blocks: its directory, environment and Redis."""

    def __init__(self, directory, redis_url):
        self.directory = directory
        self.redis = redis.Redis.from_url(redis_url)
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("REDIS_", "RESQUE", "QUEUE", "COUNT", "APP_INCLUDE", "PREFIX"))}
        self.env.update(REDIS_URL=redis_url, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
        self.last_output = None

    def run(self, block) -> None:
        if "file" in block.options:
            target = os.path.join(self.directory, block.options["file"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as f:
                f.write(block.text)
            return
        if "output" in block.flags:
            missing = output_matches(block.text, self.last_output)
            assert not missing, (f"{block.where}: not in the output of the block before it: {missing}\n"
                                 f"--- output ---\n{self.last_output}")
            return
        failed_before = int(self.redis.get("resque:stat:failed") or 0)
        if block.language == "sh":
            args = ["bash", "-e", "-o", "pipefail", "-c", block.text]
        else:
            args = [sys.executable, "-c", block.text]
        # Output to a file, not a pipe: a daemon the block starts must not hold our read open.
        log_path = os.path.join(self.directory, f".block-{block.line}.out")
        with open(log_path, "wb") as log:
            proc = subprocess.run(args, cwd=self.directory, env=self.env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT, timeout=BLOCK_TIMEOUT)
        with open(log_path, encoding="utf-8", errors="replace") as f:
            self.last_output = f.read()
        os.unlink(log_path)
        expected = int(block.options.get("exit", 0))
        assert proc.returncode == expected, (f"{block.where}: exit {proc.returncode}, expected {expected}\n"
                                             f"--- block ---\n{block.text}--- output ---\n{self.last_output}")
        if "jobs-succeed" in block.flags:
            wait_until(lambda: settled(self.redis), timeout=60, message=f"the jobs of {block.where} to run")
            failed = int(self.redis.get("resque:stat:failed") or 0) - failed_before
            assert failed == 0, f"{block.where}: {failed} of its jobs failed: {self.redis.lrange('resque:failed', 0, -1)}"


def leftovers(before) -> list:
    """Processes started since ``before`` (pids) that are still running."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.pid not in before and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.parametrize("path", [path for path in DOCS if any(b.runnable for b in blocks(path))])
def test_examples_run_as_printed(path, tmp_path, redis_url):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    session = Session(str(tmp_path), redis_url)
    try:
        for block in marked(path):
            session.run(block)
        left = leftovers(before)
        assert not left, f"{path}: its examples leave processes running: " + \
            ", ".join(f"{p.pid} {' '.join(p.cmdline())}" for p in left)
    finally:
        session.redis.close()
        for proc in leftovers(before):
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(leftovers(before), timeout=10)
        reap([])
