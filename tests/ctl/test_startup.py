"""What resquectl loads before it knows its command: the commands that drive
a master (reload, status, pause ...) talk to its control socket, and must
not pay at every call for redis-py, which (with the asyncio it imports) was
a third of resquectl's start-up."""

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_the_command_line_loads_no_redis_client_until_a_command_needs_one():
    code = ("import json, sys; import resqued.ctl.cli; "
            "print(json.dumps(sorted(m for m in ('redis', 'asyncio', 'hiredis') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True, timeout=30)
    assert json.loads(out.stdout) == []
