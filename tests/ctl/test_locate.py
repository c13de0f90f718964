"""resquectl -c pool.yml reaches the running master when pool.yml no longer
loads, not even as YAML: from the file's pidfile keys read line by line, or
their defaults, or the running master whose own config is this file."""

import json


def test_a_pool_yml_that_is_not_yaml_still_reaches_its_master(master_factory, tmp_path):
    m = master_factory(["queues: [default]\ncount: 1"])
    m.wait_workers(1)
    m.config.write_text(m.config.read_text() + "pools: [\n")      # half-typed, after the start
    line = m.config.read_text().count("\n") + 1
    socket_path = tmp_path / "var/run/resqued.sock"
    problem = (f"{m.config}:{line}: invalid YAML: expected the node content, but found '<stream end>' "
               "(while parsing a flow node)")

    result = m.ctl("status", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["master"]["pid"] == m.pid
    assert result.stderr == f"resquectl: warning: {problem}: using the running master at {socket_path}\n"
    for command, message in (("pause", "1 worker paused\n"), ("resume", "1 worker resumed\n")):
        result = m.ctl(command)
        assert (result.returncode, result.stdout) == (0, message), result.stderr
    # What needs the file's content fails, in one line, exit 78.
    for command in (("queues",), ("reload",)):
        result = m.ctl(*command)
        assert result.returncode == 78 and result.stdout == "", result.stderr
        assert result.stderr.startswith(f"resquectl: {problem}") and result.stderr.count("\n") == 1

    # Another file whose paths lead to this master is not taken for its own.
    other = tmp_path / "other.yml"
    other.write_text("pools: [\n")
    result = m.ctl_file(other, "stop")
    assert result.returncode == 78 and result.stdout == ""
    assert f"(the master at {socket_path} runs {m.config})" in result.stderr
    assert m.proc.poll() is None

    result = m.ctl("stop")
    assert result.returncode == 0 and result.stdout == f"master {m.pid} stopped\n", result.stderr
    assert m.proc.wait(15) == 0


def test_a_master_whose_paths_cannot_be_read_is_found_by_its_own_record(master_factory, tmp_path):
    """Its pidfile key is gone from the file: the running master that says it
    runs this file is found anyway (by its title and its control socket)."""
    m = master_factory(["queues: [default]\ncount: 1"], pidfile="elsewhere/custom.pid")
    m.wait_workers(1)
    m.config.write_text("pools: [\n")
    result = m.ctl("status")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"master {m.pid} running  config {m.config}")
    assert result.stderr.endswith(f": using the running master at {tmp_path / 'elsewhere/custom.sock'}\n")
    result = m.ctl("stop")
    assert result.returncode == 0, result.stderr
    assert m.proc.wait(15) == 0


def test_probing_a_master_for_its_config_does_not_ask_for_the_workers_memory(tmp_path):
    """locate and top ask every master of this user which pool.yml it runs:
    a status with each worker's memory costs a master a /proc read per worker
    process (about a second of its CPU with 32 busy workers, under load)."""
    import socket
    import threading

    from resqued.ctl import locate, top

    path = str(tmp_path / "probe.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    asked = []

    def answer_twice():
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    data += conn.recv(4096)
                asked.append(json.loads(data))
                conn.sendall(b'{"ok": true, "master": {"pid": 1, "config": "/nonexistent/pool.yml"}}\n')

    thread = threading.Thread(target=answer_twice, daemon=True)
    thread.start()
    try:
        assert locate._config_of(path) == "/nonexistent/pool.yml"
        assert top._serves(path, None) is False   # its pool.yml does not load
        thread.join(5)
    finally:
        server.close()
    assert [(a["command"], a.get("memory"), a.get("workers")) for a in asked] == [("status", False, False)] * 2
