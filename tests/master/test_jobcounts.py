"""The master's side of a command pool's job counts (master/jobcounts.py):
what it takes from the counting child's pipe, read to its end."""

import json
import os

from resqued.master.jobcounts import JobCounts


def answer(counts: JobCounts, data: bytes) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, data)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    counts.fd = read_fd
    counts.on_readable(counts)
    assert counts.fd is None and counts.waitables() == []   # read to EOF, closed


def test_counts_are_taken_and_kept_while_redis_is_away():
    counts = JobCounts()
    answer(counts, json.dumps({"counts": {"123": 7, "456": 0}}).encode())
    assert counts.counts == {123: 7, 456: 0} and not counts.down
    answer(counts, json.dumps({"error": "Connection refused"}).encode())
    assert counts.counts == {123: 7, 456: 0} and counts.down
    answer(counts, b"")   # the child died before it answered
    assert counts.counts == {123: 7, 456: 0}
