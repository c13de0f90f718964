"""logfile.capture: no moment at which this process's own lines go into
the job's pipes (an inline worker's capture thread, which reads those
pipes, would write into one and block once it is full)."""

import os

from resqued.process import logfile


def test_own_lines_never_go_to_the_pipes_while_capture_switches_them(monkeypatch):
    real_dup2 = os.dup2
    (out_r, err_r), (out_w, err_w) = os.pipe(), os.pipe()
    pipe_inodes = {os.fstat(fd).st_ino for fd in (out_w, err_w)}
    seen = []

    def dup2_then_look(fd, target, *args, **kwargs):
        # What a thread logging just after this dup2 would write to.
        result = real_dup2(fd, target, *args, **kwargs)
        if target in (1, 2):
            seen.append(os.fstat(logfile.real_stderr()).st_ino)
        return result

    saved = (os.dup(1), os.dup(2))
    try:
        monkeypatch.setattr(os, "dup2", dup2_then_look)
        logfile.capture(out_w, err_w)
        logfile.release()
    finally:
        monkeypatch.undo()
        logfile.release()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (out_r, err_r, out_w, err_w, *saved):
            os.close(fd)
    assert seen and not pipe_inodes & set(seen)
