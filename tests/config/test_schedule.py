"""pool.yml's schedule: section (config/schedule.py): pure, no Redis."""

import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pytest

from conftest import ROOT
from resqued.config.loader import load_config
from resqued.config.model import ConfigError
from resqued.config.schedule import ScheduleEntry, parse_every, split_cron
from resqued.exits import EX_CONFIG

POOLS = "pools:\n  - queues: [a]\n    count: 1\n"


def load(tmp_path, schedule: str):
    path = tmp_path / "pool.yml"
    path.write_text(POOLS + "schedule:\n" + textwrap.indent(textwrap.dedent(schedule), "  "))
    return load_config(path, environ={})


def error(tmp_path, schedule: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, schedule)
    return str(caught.value).replace(str(tmp_path) + "/", "")


def utc(*args) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def test_entries_in_resque_schedulers_format(tmp_path):
    cron, tick, report = load(tmp_path, """
        clear_leaderboards:
          cron: "30 6 * * 1"
          class: ClearLeaderboards
          queue: scoring
          args: moderators
          description: "resets the weekly leaderboard"
        tick:
          every: 30s
          queue: default
        Report:
          every: 1h30m
          queue: reports
          args: [{to: ada}, 2]
    """).schedule
    assert (cron.name, cron.job_class, cron.queue, cron.args, cron.cron) == \
        ("clear_leaderboards", "ClearLeaderboards", "scoring", ["moderators"], "30 6 * * 1")
    assert cron.description == "resets the weekly leaderboard"
    assert (tick.job_class, tick.every, tick.args) == ("tick", 30, [])    # class defaults to the name
    assert (report.every, report.args) == (5400, [{"to": "ada"}, 2])
    assert load(tmp_path, "{}").schedule == ()


@pytest.mark.parametrize("entry, expected", [
    ('x: {cron: "61 * * * *", queue: q}', "pool.yml:5: schedule.x.cron: '61 * * * *' is not a valid cron expression"),
    ('x: {cron: "* * *", queue: q}', "pool.yml:5: schedule.x.cron: '* * *': expected 5 fields"),
    ('x: {cron: "0 0 31 2 *", queue: q}', "pool.yml:5: schedule.x.cron: '0 0 31 2 *' never occurs"),
    ('x: {cron: "0 5 * * * * Mars/Olympus", queue: q}', "pool.yml:5: schedule.x.cron: 'Mars/Olympus' is not a timezone"),
    ("x: {every: 1x, queue: q}", "pool.yml:5: schedule.x.every: expected a duration such as 30s"),
    ("x: {every: 0s, queue: q}", "pool.yml:5: schedule.x.every: '0s': must be between 1 second"),
    ('x: {every: ["1s", {first_in: 2s}], queue: q}', "pool.yml:5: schedule.x.every: expected a duration"),
    ("x: {queue: q}", "pool.yml:5: schedule.x: set one of cron or every"),
    ('x: {every: 1s, cron: "* * * * *", queue: q}', "pool.yml:5: schedule.x: set cron or every, not both"),
    ("x: {every: 1s}", "pool.yml:5: schedule.x: missing 'queue'"),
    ("x: {every: 1s, queue: 'a b'}", "pool.yml:5: schedule.x.queue:"),
    ("x: {every: 1s, queue: q, clas: X}", "pool.yml:5: schedule.x.clas: unknown key; did you mean 'class'?"),
    ("x: {every: 1s, queue: q, rails_env: production}", "pool.yml:5: schedule.x.rails_env: unknown key"),
    ("x: {every: 1s, queue: q, args: [.nan]}", "pool.yml:5: schedule.x.args[0]: '.nan' is not a JSON number"),
    ("x: 5", "pool.yml:5: schedule.x: expected a mapping"),
])
def test_bad_entries_are_one_line_with_file_and_line(tmp_path, entry, expected):
    assert error(tmp_path, entry).startswith(expected)


def test_a_bad_cron_on_its_own_line(tmp_path):
    message = error(tmp_path, """
        ok:
          every: 5m
          queue: q
        nightly:
          queue: q
          cron: "0 25 * * *"
    """)
    assert message.startswith("pool.yml:11: schedule.nightly.cron: '0 25 * * *' is not a valid cron expression")


def test_resqued_check_refuses_a_bad_schedule_with_exit_78(tmp_path):
    path = tmp_path / "pool.yml"
    path.write_text(POOLS + 'schedule:\n  nightly:\n    cron: "0 0 32 * *"\n    queue: q\n')
    done = subprocess.run([sys.executable, "-m", "resqued", "-c", str(path), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == EX_CONFIG
    assert f"{path}:6: schedule.nightly.cron: '0 0 32 * *' is not a valid cron expression" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_cron_forms():
    assert split_cron("*/5 * * * *")[1] is None
    fields, zone = split_cron("0 5 * * * Europe/Stockholm")
    assert (fields, zone.key) == (["0", "5", "*", "*", "*"], "Europe/Stockholm")
    assert split_cron("*/10 * * * * *") == (["*/10", "*", "*", "*", "*", "*"], None)   # rufus: seconds first
    assert split_cron("0 9 * * MON-FRI")[1] is None


def test_cron_occurrences_in_utc_and_in_a_timezone_across_dst():
    entry = ScheduleEntry("n", "C", "q", [], cron="30 6 * * *")      # no timezone: UTC
    assert entry.next_after(utc(2026, 3, 28, 6, 30)) == utc(2026, 3, 29, 6, 30)
    local = ScheduleEntry("n", "C", "q", [], cron="0 5 * * * Europe/Stockholm")
    # Stockholm moves to summer time on 2026-03-29: 05:00 is 04:00 UTC, then 03:00 UTC.
    assert local.occurrences(utc(2026, 3, 28), utc(2026, 3, 31)) == \
        [utc(2026, 3, 28, 4), utc(2026, 3, 29, 3), utc(2026, 3, 30, 3)]
    seconds = ScheduleEntry("n", "C", "q", [], cron="*/20 * * * * *")
    assert seconds.occurrences(utc(2026, 1, 1), utc(2026, 1, 1, 0, 1)) == \
        [utc(2026, 1, 1, 0, 0, s) for s in (20, 40)] + [utc(2026, 1, 1, 0, 1)]


def test_every_falls_on_multiples_of_its_interval_since_the_epoch():
    assert [parse_every(text) for text in ("30s", "1m", "2h", "1d", "1w", "1h30m", 45)] == \
        [30, 60, 7200, 86400, 604800, 5400, 45]
    entry = ScheduleEntry("n", "C", "q", [], every=300, every_text="5m")
    assert entry.next_after(utc(2026, 1, 1, 10, 2, 7)) == utc(2026, 1, 1, 10, 5)
    assert entry.occurrences(100, 1000, limit=2) == [300, 600]
    for bad in ("1.5s", "1M", "", True, 0):
        with pytest.raises(ValueError):
            parse_every(bad)


def test_resqued_check_refuses_a_cron_that_never_occurs(tmp_path):
    path = tmp_path / "pool.yml"
    path.write_text(POOLS + 'schedule:\n  leap:\n    cron: "0 0 31 2 *"\n    queue: q\n')
    done = subprocess.run([sys.executable, "-m", "resqued", "-c", str(path), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == EX_CONFIG
    assert f"{path}:6: schedule.leap.cron: '0 0 31 2 *' never occurs" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("cron, expected", [
    # A fixed time once when the clocks go back, as Vixie cron runs it...
    ("30 1 * * * America/New_York", ["2025-11-02 05:30", "2025-11-03 06:30"]),
    ("0 30 1 * * * America/New_York", ["2025-11-02 05:30", "2025-11-03 06:30"]),
    # ...while a step runs through both hours.
    ("0 */1 * * * America/New_York", ["2025-11-02 03:00", "2025-11-02 04:00", "2025-11-02 05:00",
                                      "2025-11-02 06:00", "2025-11-02 07:00"]),
])
def test_a_fixed_time_runs_once_when_the_clocks_go_back(cron, expected):
    from datetime import datetime, timezone
    start = datetime(2025, 11, 2, 2, 30, tzinfo=timezone.utc).timestamp()
    found = ScheduleEntry("x", "X", "q", [], cron=cron).occurrences(start, start + 2 * 86400)
    shown = [datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M") for t in found]
    assert shown[:len(expected)] == expected
