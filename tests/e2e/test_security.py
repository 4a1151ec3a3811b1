"""Security (doc/operations.md "Security", doc/API.md "Authentication") and logs (doc/operations.md
"Logs"): bearer tokens, the read-only token, TLS, the body limit, the refusal
to listen beyond loopback without a token, secrets kept out of logs, API
responses and workers, and JSON log lines."""
import json
import os
import re
import subprocess
import time

import pytest
import requests

import sqlite3

from conftest import CONTROLLER, WORKER, Server
from helpers import (register_secret, COLUMNS5, TABLE5, cols, create_job, create_service, create_source,
                     delimited_messages, error_of, free_port, job_status, job_yaml, pid_alive,
                     professional_job, start_job, stop_job, unique, wait_for, wait_rows,
                     wait_state, wizard_job, yaml_unquote, yaml_value)

TOKEN = register_secret("tok-" + "9f3c1a7e5b2d4c6a8e0f1b3d5c7a9e2f")
READ_TOKEN = register_secret("read-" + "4b6d8f0a2c4e6a8c0e2a4c6e8a0c2e4a")
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# Secrets in librdkafka PROPERTIES (doc/operations.md "Security"): long and distinct, so
# that none turns up by chance.  The plain broker ignores SASL and SSL
# settings while security.protocol is plaintext, so a job with the source's
# still runs.
SRC_SASL_PASSWORD = register_secret("src-sasl-" + "7d1e5f3a9c2b4e6f")
SRC_KEY_PASSWORD = register_secret("src-key-" + "2a4c6e8f0b1d3f5a")
JOB_SASL_PASSWORD = register_secret("job-sasl-" + "9e8d7c6b5a4f3e2d")
JOB_KEY_PASSWORD = register_secret("job-key-" + "1f2e3d4c5b6a7988")
KINIT_PASSWORD = register_secret("kinit-" + "5c4b3a2918f7e6d5")
SOURCE_PROPERTIES = {"sasl.username": "alice", "sasl.password": SRC_SASL_PASSWORD,
                     "ssl.key.password": SRC_KEY_PASSWORD}
PROPERTY_SECRETS = (SRC_SASL_PASSWORD, SRC_KEY_PASSWORD, JOB_SASL_PASSWORD, JOB_KEY_PASSWORD,
                    KINIT_PASSWORD)
VALUE5 = {"COLUMNS": cols(*COLUMNS5), "FORMAT": "delimited", "DELIMITED_OPTION": {"DELIMITER": "|"}}


def bare(srv, method, path, headers=None, **kw):
    """A request without the session's Authorization header."""
    return requests.request(method, srv.url(path), headers=headers or {}, timeout=15,
                            verify=srv.http.verify, **kw)


def assert_unauthorized(resp):
    err = error_of(resp, 401, "unauthorized")
    assert resp.headers.get("WWW-Authenticate") == 'Bearer realm="streamserver"', resp.headers
    assert TOKEN not in resp.text and READ_TOKEN not in resp.text
    return err


# ------------------------------------------------------------------ tokens

def test_token_guards_api_and_metrics(make_server):
    srv = make_server(env={"STREAMSERVER_TOKEN": TOKEN}, api_token=TOKEN)

    # No token: 401 with the header and the JSON error, on the API and /metrics.
    for path in ("/jobs", "/services", "/jobs/status", "/api/v1/openapi.yaml", "/metrics"):
        err = assert_unauthorized(bare(srv, "GET", path))
        assert "Authorization: Bearer" in err["message"], err
    assert_unauthorized(bare(srv, "POST", "/services", json={"name": "x"}))
    # A wrong token, another scheme, a token with one character changed.
    assert_unauthorized(bare(srv, "GET", "/jobs", {"Authorization": "Bearer wrong-token-0123456789"}))
    assert_unauthorized(bare(srv, "GET", "/jobs", {"Authorization": f"Basic {TOKEN}"}))
    assert_unauthorized(bare(srv, "GET", "/jobs", {"Authorization": f"Bearer {TOKEN[:-1]}x"}))
    assert_unauthorized(bare(srv, "GET", "/jobs", {"Authorization": f"Bearer {TOKEN}x"}))
    assert_unauthorized(bare(srv, "GET", "/jobs", {"Authorization": f"Bearer {TOKEN[:-1]}"}))

    # The right token.
    body = srv.call("GET", "/jobs")
    assert body["items"] == [] and body["total"] == 0, body
    svc = srv.call("POST", "/services", {"name": unique("svc"), "database_host": "127.0.0.1",
                                         "database_port": 5432}, expect=201)
    metrics = srv.request("GET", "/metrics")
    assert metrics.status_code == 200 and "streamserver_build_info" in metrics.text, \
        metrics.text[:300]

    # Open without a token: the health check, the page shell and its assets;
    # the shell carries none of the store's contents.
    health = bare(srv, "GET", "/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    page = bare(srv, "GET", "/")
    assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:300]
    assert svc["name"] not in page.text
    assert bare(srv, "GET", "/ui/app.js").status_code == 200
    assert bare(srv, "GET", "/", headers=AUTH).status_code == 200

    # The token never reaches the log.
    assert TOKEN not in srv.log_text()


def test_read_token_allows_reading_only(make_server):
    srv = make_server(env={"STREAMSERVER_TOKEN": TOKEN, "STREAMSERVER_READ_TOKEN": READ_TOKEN},
                      api_token=TOKEN)
    svc = srv.call("POST", "/services", {"name": unique("svc"), "database_host": "127.0.0.1",
                                         "database_port": 5432}, expect=201)
    read = {"Authorization": f"Bearer {READ_TOKEN}"}

    listed = bare(srv, "GET", "/services", read)
    assert listed.status_code == 200 and listed.json()["total"] == 1, listed.text
    assert bare(srv, "GET", f"/services/{svc['id']}", read).json()["name"] == svc["name"]
    # HEAD is answered wherever GET is: same status and length, no body.
    head = bare(srv, "HEAD", "/services", read)
    assert head.status_code == 200 and head.content == b"", head
    assert int(head.headers["Content-Length"]) == len(listed.content)
    head = bare(srv, "HEAD", f"/services/{svc['id']}", read)
    assert head.status_code == 200 and head.content == b""
    assert bare(srv, "GET", "/metrics", read).status_code == 200

    err = error_of(bare(srv, "POST", "/services", read,
                        json={"name": unique("svc"), "database_host": "h"}), 403, "forbidden")
    assert "read-only" in err["message"], err
    error_of(bare(srv, "PATCH", f"/services/{svc['id']}", read, json={"description": "x"}),
             403, "forbidden")
    error_of(bare(srv, "DELETE", f"/services/{svc['id']}", read), 403, "forbidden")
    # Nothing changed; the full token still may.
    assert srv.call("GET", f"/services/{svc['id']}")["description"] == svc["description"]
    srv.call("DELETE", f"/services/{svc['id']}", expect=204)
    assert READ_TOKEN not in srv.log_text() and TOKEN not in srv.log_text()


def test_token_file_and_precedence(make_server, tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")  # the newline is not part of the token
    path.chmod(0o600)
    env_token = "env-" + "0" * 30
    # --token-file wins over STREAMSERVER_TOKEN.
    srv = make_server(args=["--token-file", str(path)], env={"STREAMSERVER_TOKEN": env_token},
                      api_token=TOKEN)
    assert srv.call("GET", "/jobs")["total"] == 0
    assert_unauthorized(bare(srv, "GET", "/jobs", {"Authorization": f"Bearer {env_token}"}))
    assert "can be read by its group or others" not in srv.log_text()

    # STREAMSERVER_TOKEN_FILE; a file others can read gets a warning that
    # names the file, never the token.
    shared = tmp_path / "shared-token"
    shared.write_text(TOKEN)
    shared.chmod(0o644)
    srv2 = make_server(env={"STREAMSERVER_TOKEN_FILE": str(shared)}, api_token=TOKEN)
    assert srv2.call("GET", "/jobs")["total"] == 0
    assert_unauthorized(bare(srv2, "GET", "/jobs"))
    log = srv2.log_text()
    assert "can be read by its group or others" in log and str(shared) in log, log[-2000:]
    assert TOKEN not in log


def run_controller(tmp_path, args, env=None):
    """streamserver that must exit at once: (exit code, output)."""
    data = tmp_path / f"data-{unique('d')}"
    proc = subprocess.run([str(CONTROLLER), "--data-dir", str(data), "--worker", str(WORKER)]
                          + args, env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def test_bad_tokens_refused(tmp_path):
    short = tmp_path / "short"
    short.write_text("abc\n")
    short.chmod(0o600)
    rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}",
                                        "--token-file", str(short)])
    assert rc == 2 and "16" in out and "abc" not in out, (rc, out)
    rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}",
                                        "--token-file", str(tmp_path / "missing")])
    assert rc == 2 and "missing" in out, (rc, out)
    spaced = "has a space in the middle 12345"
    rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}"],
                             {"STREAMSERVER_TOKEN": spaced})
    assert rc == 2 and "STREAMSERVER_TOKEN" in out and spaced not in out, (rc, out)
    # A read token alone would leave nobody able to change anything.
    rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}"],
                             {"STREAMSERVER_READ_TOKEN": READ_TOKEN})
    assert rc == 2 and "--token-file" in out and READ_TOKEN not in out, (rc, out)


# --------------------------------------------------------- listen address

def test_non_loopback_listen_needs_token(tmp_path):
    for listen in (f"0.0.0.0:{free_port()}", f"*:{free_port()}", f":{free_port()}"):
        rc, out = run_controller(tmp_path, ["--listen", listen])
        assert rc == 2, (listen, rc, out)
        assert "without an API token" in out and "--token-file" in out, out
    # Loopback needs no token; with a token every interface is fine.
    for name, kw in (("loopback", {}),
                     ("any", {"env": {"STREAMSERVER_TOKEN": TOKEN}, "api_token": TOKEN})):
        (tmp_path / name).mkdir()
        srv = Server(tmp_path / name, **kw)
        host = "localhost" if name == "loopback" else "0.0.0.0"
        srv.args += ["--listen", f"{host}:{srv.port}"]
        srv.start()
        try:
            assert srv.call("GET", "/jobs")["total"] == 0
            if kw:
                assert_unauthorized(bare(srv, "GET", "/jobs"))
            assert f"{host}:{srv.port}" in srv.log_text()
        finally:
            assert srv.stop() == 0
            srv.http.close()


# --------------------------------------------------------------------- TLS

@pytest.fixture
def cert(tmp_path):
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem, both.pem)."""
    c, k = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(k),
                    "-out", str(c), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=120)
    k.chmod(0o600)
    both = tmp_path / "both.pem"
    both.write_text(k.read_text() + c.read_text())
    both.chmod(0o600)
    return c, k, both


def test_tls(make_server, cert, monkeypatch):
    c, k, both = cert
    # requests prefers these to a Session's own verify= (requests issue 3829).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    srv = make_server(args=["--tls-cert", str(c), "--tls-key", str(k)],
                      env={"STREAMSERVER_TOKEN": TOKEN}, api_token=TOKEN, scheme="https",
                      verify=c)
    assert srv.base.startswith("https://")
    for _ in range(3):  # more than one connection: each is its own handshake
        assert srv.call("GET", "/jobs")["total"] == 0
    assert_unauthorized(bare(srv, "GET", "/jobs"))
    assert bare(srv, "GET", "/healthz").json() == {"status": "ok"}
    # Plain HTTP to the TLS port gets no answer.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{srv.port}/healthz", timeout=10)
    # A client that does not trust the certificate refuses it.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{srv.port}/healthz", timeout=10)
    assert srv.call("GET", "/healthz") == {"status": "ok"}
    # The key is not copied to the data directory.
    key_text = k.read_text().strip().splitlines()[1]
    for f in srv.data_dir.rglob("*"):
        if f.is_file():
            assert key_text.encode() not in f.read_bytes(), f

    # Key and certificate in one file (--tls-cert alone), from the environment.
    srv2 = make_server(env={"STREAMSERVER_TLS_CERT": str(both)}, scheme="https", verify=c)
    assert srv2.call("GET", "/jobs")["total"] == 0


def test_tls_bad_files(tmp_path, cert):
    c, k, _ = cert
    rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}",
                                        "--tls-cert", str(c)])
    assert rc != 0 and "private key" in out and str(c) in out, (rc, out)
    rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}",
                                        "--tls-key", str(k)])
    assert rc == 2 and "--tls-cert" in out, (rc, out)
    rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}",
                                        "--tls-cert", str(c), "--tls-key",
                                        str(tmp_path / "nokey.pem")])
    assert rc == 2 and "nokey.pem" in out and "cannot read it" in out, (rc, out)
    rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}",
                                        "--tls-cert", str(tmp_path / "nocert.pem")])
    assert rc == 2 and "--tls-cert" in out and "nocert.pem" in out, (rc, out)


# -------------------------------------------------------------- body limit

def test_body_limit(make_server):
    srv = make_server(args=["--max-body", "2048"])
    big = {"name": unique("svc"), "database_host": "127.0.0.1", "description": "x" * 4000}
    err = error_of(srv.request("POST", "/services", big), 413, "too_large")
    assert "2048" in err["message"], err
    # Without a Content-Length (chunked) the limit holds too.
    chunks = (part.encode() for part in [json.dumps(big)[:1500], json.dumps(big)[1500:]])
    resp = srv.http.post(srv.url("/services"), data=chunks,
                         headers={"Content-Type": "application/json"}, timeout=15)
    err = error_of(resp, 413, "too_large")
    assert "2048" in err["message"], err
    small = dict(big, description="x" * 1000)
    assert srv.call("POST", "/services", small, expect=201)["description"] == "x" * 1000
    assert srv.call("GET", "/services")["total"] == 1

    # The default is 1 MiB.
    srv2 = make_server()
    huge = dict(big, description="x" * (1024 * 1024 + 10))
    err = error_of(srv2.request("POST", "/services", huge), 413, "too_large")
    assert "1048576" in err["message"], err


def test_bad_options(tmp_path):
    for args, needle in ((["--max-body", "lots"], "--max-body"),
                         (["--max-body", "10"], "--max-body"),
                         (["--log-format", "xml"], "--log-format")):
        rc, out = run_controller(tmp_path, ["--listen", f"127.0.0.1:{free_port()}"] + args)
        assert rc == 2 and needle in out, (args, rc, out)


# ------------------------------------------- secrets around a running job

def json_lines(text):
    """The log's lines other than the fixture's start markers, parsed."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("=== e2e:"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"log line is not JSON: {line!r}") from None
        assert isinstance(obj, dict), line
        for key in ("ts", "level", "component", "msg"):
            assert key in obj, f"{key} missing in {line!r}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["ts"]), line
        assert obj["level"] in ("DEBUG", "INFO", "WARN", "ERROR"), line
        assert obj["component"] in ("controller", "worker"), line
        out.append(obj)
    return out


def proc_bytes(pid, name):
    with open(f"/proc/{pid}/{name}", "rb") as f:
        return f.read()


@pytest.fixture
def running_job(make_server, pg, kafka):
    """A controller with a token and JSON logs, and a wizard job that has
    loaded 200 rows and still runs: (srv, job id, table)."""
    srv = make_server(args=["--log-format", "json"], env={"STREAMSERVER_TOKEN": TOKEN},
                      api_token=TOKEN)
    topic = kafka.create_topic(unique("sec"))
    table = pg.create_table(unique("t_sec"), TABLE5)
    svc = create_service(srv, pg)
    src = create_source(srv, svc["id"], kafka, topic, properties=SOURCE_PROPERTIES)
    job = create_job(srv, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5]))
    start_job(srv, job["id"])
    wait_state(srv, job["id"], "running")
    kafka.produce(topic, delimited_messages(0, 200))
    assert wait_rows(pg, table, 200, srv, job["id"]) == 200
    return srv, job["id"], table


def assert_no_secret(text, secrets, where):
    for secret in secrets:
        assert secret not in text, f"secret {secret[:6]}... in {where}"


def assert_worker_clean(pid, secrets):
    """Nothing secret in a worker's command line or environment (it gets its
    job on standard input)."""
    for name in ("cmdline", "environ"):
        try:
            data = proc_bytes(pid, name).decode(errors="replace")
        except OSError:
            return  # it has already exited
        assert_no_secret(data, secrets, f"worker {pid} {name}")


def test_secrets_stay_out(running_job, pg, kafka):
    srv, jid, table = running_job
    password = pg.password
    assert len(password) >= 8  # a value that cannot turn up by chance
    secrets = (password, TOKEN) + PROPERTY_SECRETS

    st = job_status(srv, jid)
    assert st["state"] == "running" and st["pid"], st
    pid = st["pid"]
    # The worker's command line and environment.
    assert_worker_clean(pid, secrets)
    assert b"STREAMSERVER_TOKEN" not in proc_bytes(pid, "environ")
    # ... nor the controller's command line.
    assert TOKEN.encode() not in proc_bytes(srv.proc.pid, "cmdline")

    # A job with secrets of its own that cannot connect: SASL against the
    # plain listener, and a Kerberos refresh command, which librdkafka quotes
    # in its log line when the command fails.
    src_id = srv.call("GET", f"/jobs/{jid}")["source_id"]
    topic = srv.call("GET", f"/sources/{src_id}")["topic"]
    props = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "GSSAPI",
             "sasl.password": JOB_SASL_PASSWORD, "ssl.key.password": JOB_KEY_PASSWORD,
             "sasl.kerberos.kinit.cmd": f"echo {KINIT_PASSWORD} >/dev/null; exit 1"}
    config = job_yaml(pg, kafka, topic, table, value=VALUE5, properties=props)
    bad = create_job(srv, professional_job(src_id, config))["id"]
    start_job(srv, bad)
    wait_for(lambda: "Kerberos ticket refresh failed" in srv.log_text(), what="librdkafka's kinit line")
    bad_pid = job_status(srv, bad)["pid"]
    if bad_pid:
        assert_worker_clean(bad_pid, secrets)

    # API responses, the status page and /metrics.
    for path in (f"/jobs/{jid}", f"/jobs/{bad}", "/jobs", f"/jobs/{jid}/status",
                 f"/jobs/{bad}/status", "/jobs/status", f"/jobs/{jid}/config",
                 f"/jobs/{bad}/config", "/services", "/sources", f"/sources/{src_id}",
                 f"/jobs/{jid}/errors", f"/jobs/{jid}/offsets", "/metrics", "/"):
        resp = srv.request("GET", path)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
        assert_no_secret(resp.text, secrets, f"GET {path}")
    # The Kafka tool of a job that cannot authenticate fails; its error too
    # is clean.
    resp = srv.request("GET", f"/jobs/{bad}/offsets", timeout=60)
    assert resp.status_code >= 400, resp.text[:300]
    assert_no_secret(resp.text, secrets, f"GET /jobs/{bad}/offsets")
    # The checks of a definition with every secret in it.
    for path in ("/jobs/validate", "/jobs?dry_run=true"):
        resp = srv.request("POST", path, professional_job(src_id, config), timeout=60)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
        assert_no_secret(resp.text, secrets, f"POST {path}")
    for which in (jid, bad):
        yaml = srv.request("GET", f"/jobs/{which}/config").text
        assert yaml_unquote(yaml_value(yaml, "sasl.password")) == "****", yaml
        assert yaml_unquote(yaml_value(yaml, "ssl.key.password")) == "****", yaml
        assert yaml_unquote(yaml_value(yaml, "sasl.username")) == "alice", yaml
    shown = srv.call("GET", f"/sources/{src_id}")["properties"]
    assert shown == dict(SOURCE_PROPERTIES, **{"sasl.password": "****",
                                               "ssl.key.password": "****"}), shown

    stop_job(srv, jid)
    stop_job(srv, bad)
    wait_state(srv, jid, "stopped")
    wait_state(srv, bad, "stopped")
    st = job_status(srv, bad)
    assert_no_secret(json.dumps(st), secrets, "the failed job's status")
    log = srv.log_text()
    assert_no_secret(log, secrets, "the log")
    # Not vacuous: the line that quoted the command is there, masked.
    assert "Kerberos ticket refresh failed: ****" in log, log[-3000:]


def test_json_log_lines(running_job):
    srv, jid, _ = running_job
    stop_job(srv, jid)
    wait_state(srv, jid, "stopped")
    lines = json_lines(srv.log_text())
    controller = [o for o in lines if o["component"] == "controller"]
    assert any("listening on" in o["msg"] for o in controller), controller[:5]
    # The API's lines about the job carry its id.
    about = [o for o in controller if o.get("job_id") == jid]
    assert any(f"/jobs/{jid}/start" in o["msg"] for o in about), controller
    assert all(isinstance(o.get("job_id", 0), int) for o in lines)


def test_worker_log_lines_carry_job_id(running_job):
    """Workers inherit --log-format json; each of their lines names the job."""
    srv, jid, _ = running_job
    stop_job(srv, jid)
    wait_state(srv, jid, "stopped")
    worker = [o for o in json_lines(srv.log_text()) if o["component"] == "worker"]
    assert worker, "no worker lines in the log"
    missing = [o for o in worker if o.get("job_id") != jid]
    assert not missing, f"worker lines without job_id {jid}: {missing[:3]}"


def test_text_log_lines(make_server):
    srv = make_server(env={"STREAMSERVER_TOKEN": TOKEN}, api_token=TOKEN)
    srv.call("POST", "/jobs/99/start", expect=404)
    deadline = time.monotonic() + 10
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO \[controller\] job=99 "
                         r"POST /api/v1/jobs/99/start 404$", re.M)
    while not pattern.search(srv.log_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pattern.search(srv.log_text()), srv.log_tail()


def stored_value(srv, sql, *args):
    """One value from the controller's store, read-only."""
    db = sqlite3.connect(f"file:{srv.data_dir / 'streamserver.db'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, args).fetchone()[0]
    finally:
        db.close()


def test_masked_secrets_sent_back_are_kept(make_server, pg, kafka):
    """"****" is what the API shows for a secret property, and "****" sent
    back keeps the stored value: a PATCH of a source, and a job's effective
    YAML sent back as its config."""
    srv = make_server()  # no token: the status page shows its summary too
    topic = kafka.create_topic(unique("sec"))
    table = pg.create_table(unique("t_sec"), TABLE5)
    svc = create_service(srv, pg)
    secrets = (pg.password,) + PROPERTY_SECRETS

    # "****" with nothing stored to keep is refused, not stored as a password.
    err = error_of(srv.request("POST", "/sources", {
        "service_id": svc["id"], "name": unique("src"), "brokers": kafka.bootstrap,
        "topic": topic, "properties": {"sasl.password": "****"}}), 422, "invalid",
        "properties.sasl.password")
    assert "****" in err["message"], err

    src = create_source(srv, svc["id"], kafka, topic, properties=SOURCE_PROPERTIES)
    assert src["properties"]["sasl.password"] == "****", src
    assert_no_secret(json.dumps(src), secrets, "POST /sources")
    # Sent back as shown, with one setting changed: the secrets stay.
    shown = dict(src["properties"], **{"sasl.username": "bob"})
    patched = srv.call("PATCH", f"/sources/{src['id']}", {"properties": shown})
    assert patched["properties"] == dict(shown), patched
    stored = json.loads(stored_value(srv, "SELECT properties FROM sources WHERE id = ?",
                                     src["id"]))
    assert stored == dict(SOURCE_PROPERTIES, **{"sasl.username": "bob"}), "secrets not kept"

    # A job that overrides one secret of the source's and adds its own.
    props = {"sasl.password": JOB_SASL_PASSWORD,
             "sasl.kerberos.kinit.cmd": f"echo {KINIT_PASSWORD}"}
    job = create_job(srv, professional_job(src["id"], job_yaml(pg, kafka, topic, table,
                                                                value=VALUE5, properties=props)))
    assert_no_secret(json.dumps(job), secrets, "POST /jobs")
    config = srv.request("GET", f"/jobs/{job['id']}/config").text
    assert_no_secret(config, secrets, "GET config")
    for key in ("PASSWORD", "sasl.password", "ssl.key.password", "sasl.kerberos.kinit.cmd"):
        assert yaml_unquote(yaml_value(config, key)) == "****", (key, config)
    # The effective YAML sent back: the job's secrets are its own again; the
    # source's, which the job did not store, stay the source's.
    srv.call("PATCH", f"/jobs/{job['id']}", {"config": config.replace("bob", "carol")})
    definition = stored_value(srv, "SELECT definition FROM jobs WHERE id = ?", job["id"])
    for secret in (pg.password, JOB_SASL_PASSWORD, KINIT_PASSWORD):
        assert secret in definition, f"{secret[:6]}... lost by the PATCH"
    assert "****" not in definition and SRC_KEY_PASSWORD not in definition, definition
    assert "carol" in definition, definition
    again = srv.request("GET", f"/jobs/{job['id']}/config").text
    assert again == config.replace("bob", "carol"), (again, config)

    # A wizard job turned professional with its effective YAML keeps its
    # password; the source's secrets stay the source's.
    wiz = create_job(srv, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5]))
    config = srv.request("GET", f"/jobs/{wiz['id']}/config").text
    assert yaml_unquote(yaml_value(config, "sasl.password")) == "****", config
    srv.call("PATCH", f"/jobs/{wiz['id']}", {"mode": "professional", "config": config})
    definition = stored_value(srv, "SELECT definition FROM jobs WHERE id = ?", wiz["id"])
    assert pg.password in definition and "****" not in definition, definition
    assert srv.request("GET", f"/jobs/{wiz['id']}/config").text == config
    # ...and back to wizard mode with the password as shown: still the real
    # one (it was stored as "****" before a review found it).
    fields = wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5])
    fields.pop("source_id", None)
    fields.pop("name", None)
    srv.call("PATCH", f"/jobs/{wiz['id']}", dict(fields, password="****"))
    definition = json.loads(stored_value(srv, "SELECT definition FROM jobs WHERE id = ?", wiz["id"]))
    assert definition["password"] == pg.password, "the password became the mask"
    # "****" with no password stored anywhere is refused, in both modes.
    error_of(srv.request("POST", "/jobs", dict(wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5]),
                                               name=unique("wiz"), password="****")),
             422, "invalid", "password")
    masked = re.sub(r"(?m)^PASSWORD:.*$", "PASSWORD: '****'", job_yaml(pg, kafka, topic, table,
                                                                     value=VALUE5))
    assert "PASSWORD: '****'" in masked, masked
    error_of(srv.request("POST", "/jobs", professional_job(src["id"], masked)), 422, "invalid", "config")

    # The status page and the lists.
    for path in ("/", "/jobs", "/sources", f"/jobs/{job['id']}"):
        resp = srv.request("GET", path)
        assert resp.status_code == 200, (path, resp.text[:300])
        assert_no_secret(resp.text, secrets, f"GET {path}")
    assert job["name"] in srv.request("GET", "/").text  # the summary is there
    assert_no_secret(srv.log_text(), secrets, "the log")
