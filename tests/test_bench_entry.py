"""The benchmark's entry points that take --help load: ``make bench`` is
not part of ``make test``, so an import a refactor broke (bench/ reaches
into tests/) would otherwise be found only by the next person who runs it.
run.py imports every scenario module; the small scripts that take plain
arguments (floor.py, io_profile.py, enqueue_client.py, report.py) are not
run here."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

ENTRIES = ["run.py", "master_costs.py", "replace_pair.py", "delayed_moves.py", "web_pages.py"]


@pytest.mark.parametrize("entry", ENTRIES)
def test_bench_entry_loads(entry):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", entry), "--help"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower()
