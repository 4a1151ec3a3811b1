"""Issue 10, section 2: PostgreSQL over TLS.  A PostgreSQL of this module
with ssl = on and a CA made by the harness (tests/harness/pg.sh start DIR
--ssl): verify-full with that CA drains a topic; a server certificate for
another name fails the job at once with an error naming the job, the host and
the sslmode, without retrying; require without a CA works; the client key (a
secret) is masked in every answer and never reaches a worker's argv or
environment, and the worker's private copy of it is gone once it has
connected."""
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import (COLUMNS5, register_secret, PG, TABLE5, create_job, create_service, create_source,
                     delimited_messages, delivery_job_dict, error_of, harness, job_status,
                     professional_job, start_job, stop_job, to_yaml, unique, wait_rows,
                     wait_state, wizard_job, yaml_line)

PG_START_TIMEOUT = 120


class TlsPG:
    def __init__(self, base):
        self.dir = base / "pg"
        env = harness("pg.sh", "start", self.dir, PG_START_TIMEOUT, "--ssl")
        self.pg = PG.from_env(env)
        self.tls = Path(env["PG_TLS_DIR"])
        self.ca = Path(env["PG_CA"]).read_text()
        self.client_cert = (self.tls / "client.crt").read_text()
        self.client_key = register_secret((self.tls / "client.key").read_text())
        assert "BEGIN CERTIFICATE" in self.ca and "PRIVATE KEY" in self.client_key

    def serve_certificate(self, stem):
        """Makes the server present TLS_DIR/STEM.crt from now on (reload)."""
        if stem == "server":
            self.pg.execute("ALTER SYSTEM RESET ssl_cert_file")
            self.pg.execute("ALTER SYSTEM RESET ssl_key_file")
        else:
            self.pg.execute(f"ALTER SYSTEM SET ssl_cert_file = '{self.tls / (stem + '.crt')}'")
            self.pg.execute(f"ALTER SYSTEM SET ssl_key_file = '{self.tls / (stem + '.key')}'")
        self.pg.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)  # the postmaster reloads asynchronously

    def ssl_of(self, appname):
        """(ssl, client_dn) of the sessions of an application_name."""
        return self.pg.query("SELECT s.ssl, s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a"
                             " USING (pid) WHERE a.application_name = %s", (appname,))


@pytest.fixture(scope="module")
def tls_pg():
    base = Path(tempfile.mkdtemp(prefix="streamserver-e2e-pgtls-"))
    os.chmod(base, 0o755)  # pg.sh's unprivileged user must reach it
    p = None
    try:
        p = TlsPG(base)
        yield p
    finally:
        if p is not None:
            p.pg.close()
        try:
            harness("pg.sh", "destroy", base / "pg", 120)
        except Exception as e:
            print(f"warning: tls pg: {e}", file=sys.stderr)
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)


def _key_marker(key_pem):
    """A line of the key's base64: what would show if any of it leaked."""
    lines = [ln for ln in key_pem.splitlines() if ln and not ln.startswith("-----")]
    return max(lines, key=len)


def _tls_dirs(tmpdir):
    return sorted(p.name for p in Path(tmpdir).glob("streamworker-pgtls-*"))


def test_verify_full_with_the_service_ca_drains(server, tls_pg, kafka):
    """The service says verify-full with the test CA; the job says nothing
    about TLS and inherits it.  Rows arrive over a verified TLS session, and
    the effective YAML shows the inherited settings."""
    pg = tls_pg.pg
    topic = kafka.create_topic(unique("tlsvf"))
    table = pg.create_table(unique("t_tlsvf"), TABLE5)
    svc = create_service(server, pg, database_host="localhost", database_sslmode="verify-full",
                         database_sslrootcert=tls_pg.ca)
    assert svc["database_sslmode"] == "verify-full" and svc["database_sslrootcert"] == tls_pg.ca, svc
    assert svc["database_sslkey"] is None and svc["database_sslcert"] is None, svc
    src = create_source(server, svc["id"], kafka, topic)
    conf = delivery_job_dict(pg, kafka, topic, table, consistency="ATLEAST")
    del conf["HOST"]  # from the service: localhost, the name in the certificate
    job = create_job(server, professional_job(src["id"], to_yaml(conf)))
    config = server.request("GET", f"/jobs/{job['id']}/config").text
    assert "SSLMODE: verify-full" in config and "BEGIN CERTIFICATE" in config, config

    start_job(server, job["id"])
    wait_state(server, job["id"], "running")
    kafka.produce(topic, delimited_messages(0, 300))
    assert wait_rows(pg, table, 300, server, job["id"]) == 300
    assert tls_pg.ssl_of(f"streamserver-{job['name']}") == [(True, None)]
    stop_job(server, job["id"])
    wait_state(server, job["id"], "stopped")


def test_certificate_for_another_name_fails_once(server, tls_pg, kafka):
    """The server presents a certificate for other.example, signed by the
    trusted CA: verify-full refuses it.  The job goes failed at once (exit 2,
    no restart) with an error naming the job, the host and the sslmode;
    validate says the same."""
    pg = tls_pg.pg
    topic = kafka.create_topic(unique("tlsname"))
    table = pg.create_table(unique("t_tlsname"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    conf = delivery_job_dict(pg, kafka, topic, table, consistency="ATLEAST", retry_interval="1s")
    conf["SSLMODE"] = "verify-full"
    conf["SSLROOTCERT"] = tls_pg.ca
    body = professional_job(src["id"], to_yaml(conf))
    tls_pg.serve_certificate("other")
    try:
        job = create_job(server, body)
        start_job(server, job["id"])
        st = wait_state(server, job["id"], "failed")
        err = st["last_error"] or ""
        assert 'server certificate for "other.example"' in err, err
        assert 'does not match host name "127.0.0.1"' in err, err
        assert f"job {job['name']}" in err and "sslmode verify-full" in err and "127.0.0.1" in err, err
        assert "streamworker-pgtls" not in err, f"the error names a temporary file: {err}"
        time.sleep(3)  # three retry intervals: no retry storm
        st = job_status(server, job["id"])
        assert st["state"] == "failed" and st["restarts"] == 0, st
        assert "2" in (st.get("last_exit") or ""), st

        ans = server.call("POST", "/jobs/validate", professional_job(src["id"], to_yaml(conf)))
        assert ans["valid"] is False, ans
        assert any(e["field"] == "HOST" and "does not match host name" in e["message"] and
                   "sslmode verify-full" in e["message"] for e in ans["errors"]), ans
    finally:
        tls_pg.serve_certificate("server")


def test_require_without_a_ca(server, tls_pg, kafka):
    """SSLMODE require with no root CA: encrypted, not verified; rows arrive.
    disable on the same server: a plain session."""
    pg = tls_pg.pg
    topic = kafka.create_topic(unique("tlsreq"))
    table = pg.create_table(unique("t_tlsreq"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    conf = delivery_job_dict(pg, kafka, topic, table, consistency="ATLEAST")
    conf["SSLMODE"] = "require"
    job = create_job(server, professional_job(src["id"], to_yaml(conf)))
    start_job(server, job["id"])
    wait_state(server, job["id"], "running")
    kafka.produce(topic, delimited_messages(0, 200))
    assert wait_rows(pg, table, 200, server, job["id"]) == 200
    assert tls_pg.ssl_of(f"streamserver-{job['name']}") == [(True, None)]
    stop_job(server, job["id"])
    wait_state(server, job["id"], "stopped")

    server.call("PATCH", f"/jobs/{job['id']}",
                {"config": to_yaml(dict(conf, SSLMODE="disable"))})
    start_job(server, job["id"])
    wait_state(server, job["id"], "running")
    assert tls_pg.ssl_of(f"streamserver-{job['name']}") == [(False, None)]
    stop_job(server, job["id"])
    wait_state(server, job["id"], "stopped")


def test_require_against_a_server_without_ssl_fails_once(server, pg, kafka):
    """The session's PostgreSQL has ssl off: SSLMODE require cannot work, and
    that is a configuration error (failed, no retries), not an outage."""
    topic = kafka.create_topic(unique("tlsnossl"))
    table = pg.create_table(unique("t_tlsnossl"), TABLE5)
    svc = create_service(server, pg, database_sslmode="require")
    src = create_source(server, svc["id"], kafka, topic)
    conf = delivery_job_dict(pg, kafka, topic, table, consistency="ATLEAST", retry_interval="1s")
    job = create_job(server, professional_job(src["id"], to_yaml(conf)))
    start_job(server, job["id"])
    st = wait_state(server, job["id"], "failed")
    err = st["last_error"] or ""
    assert "server does not support SSL, but SSL was required" in err, err
    assert f"job {job['name']}" in err and "sslmode require" in err, err
    time.sleep(2)
    st = job_status(server, job["id"])
    assert st["state"] == "failed" and st["restarts"] == 0, st


def test_client_key_is_a_secret(make_server, tls_pg, kafka, tmp_path):
    """A wizard job with a client certificate and key (verify-full): the
    server sees the client certificate; the key is "****" in every answer,
    "****" sent back keeps it, and it is in no worker's argv or environment,
    nor in the log; the worker's private files are gone once it has
    connected and after it has stopped.  PGSSLMODE=disable in the
    controller's environment changes nothing."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    # libpq's variables in the controller's environment must not reach a
    # worker: the job alone says how it connects
    srv = make_server(env={"TMPDIR": str(tmpdir), "PGSSLMODE": "disable",
                           "PGSSLROOTCERT": "/nonexistent/root.crt"})
    pg = tls_pg.pg
    marker = _key_marker(tls_pg.client_key)
    topic = kafka.create_topic(unique("tlskey"))
    table = pg.create_table(unique("t_tlskey"), TABLE5)
    svc = create_service(srv, pg, database_host="localhost")
    src = create_source(srv, svc["id"], kafka, topic)
    tls = {"sslmode": "verify-full", "sslrootcert": tls_pg.ca, "sslcert": tls_pg.client_cert,
           "sslkey": tls_pg.client_key}
    body = wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5], **tls)

    check = {k: v for k, v in body.items() if k != "name"}
    answers = [srv.request("POST", "/jobs/validate", check),
               srv.request("POST", "/jobs?dry_run=true", body)]
    for resp in answers:
        assert resp.status_code == 200 and resp.json()["valid"] is True, resp.text
    job = create_job(srv, body)
    assert job["sslkey"] == "****" and job["sslcert"] == tls_pg.client_cert, job
    # "****" sent back keeps the key
    srv.call("PATCH", f"/jobs/{job['id']}", {"sslkey": "****", "description": "kept"})
    start_job(srv, job["id"])
    st = wait_state(srv, job["id"], "running")
    kafka.produce(topic, delimited_messages(0, 100))
    assert wait_rows(pg, table, 100, srv, job["id"]) == 100
    assert tls_pg.ssl_of(f"streamserver-{job['name']}") == [(True, f"/CN={pg.user}")]

    pid = st["pid"]
    for name in ("cmdline", "environ"):
        data = Path(f"/proc/{pid}/{name}").read_bytes()
        assert marker.encode() not in data, f"client key in worker {name}"
        assert b"BEGIN CERTIFICATE" not in data, f"a certificate in worker {name}"
    assert b"PGSSL" not in Path(f"/proc/{pid}/environ").read_bytes(), "PGSSL* reached the worker"
    assert _tls_dirs(tmpdir) == [], "the worker's TLS files outlive its connect"

    # a service's key is masked as well, and "****" keeps it
    svc2 = srv.call("POST", "/services", {"name": unique("svc"), "database_host": "localhost",
                                          "database_port": pg.port, "database_sslcert": tls_pg.client_cert,
                                          "database_sslkey": tls_pg.client_key}, expect=201)
    assert svc2["database_sslkey"] == "****", svc2
    srv.call("PATCH", f"/services/{svc2['id']}", {"database_sslkey": "****", "description": "x"})
    for path in (f"/jobs/{job['id']}", "/jobs", f"/jobs/{job['id']}/config", f"/jobs/{job['id']}/status",
                 "/jobs/status", "/services", f"/services/{svc2['id']}", "/metrics", "/"):
        resp = srv.request("GET", path)
        assert resp.status_code == 200, (path, resp.text[:300])
        assert marker not in resp.text, f"client key in GET {path}"
    for resp in answers:
        assert marker not in resp.text, "client key in a validate / dry-run answer"
    assert srv.call("GET", f"/services/{svc2['id']}")["database_sslkey"] == "****"

    stop_job(srv, job["id"])
    wait_state(srv, job["id"], "stopped")
    assert _tls_dirs(tmpdir) == []
    assert marker not in srv.log_text(), "client key in the log"


def test_tls_settings_are_checked(server, tls_pg, kafka):
    """Bad values are refused, naming the field; nothing quotes a key."""
    pg = tls_pg.pg
    resp = server.request("POST", "/services", {"name": unique("svc"), "database_sslmode": "strict"})
    err = error_of(resp, 422, "invalid", "database_sslmode")
    assert "verify-full" in err["message"], err
    resp = server.request("POST", "/services", {"name": unique("svc"), "database_sslrootcert": "/etc/ca.pem"})
    error_of(resp, 422, "invalid", "database_sslrootcert")
    resp = server.request("POST", "/services", {"name": unique("svc"),
                                                "database_sslkey": tls_pg.client_cert})
    err = error_of(resp, 422, "invalid", "database_sslkey")
    assert _key_marker(tls_pg.client_cert) not in err["message"], err

    topic = kafka.create_topic(unique("tlsbad"))
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    conf = delivery_job_dict(pg, kafka, topic, "t", consistency="ATLEAST")
    conf["SSLMODE"] = "verify-ful"
    conf["SSLKEY"] = "not a key " + _key_marker(tls_pg.client_key)
    config = to_yaml(conf)
    resp = server.request("POST", "/jobs", professional_job(src["id"], config))
    err = error_of(resp, 422, "invalid")
    lines = {e.get("field"): e.get("line") for e in err.get("details") or []}
    assert lines.get("SSLMODE") == yaml_line(config, "SSLMODE:"), err
    assert lines.get("SSLKEY") == yaml_line(config, "SSLKEY:"), err
    assert _key_marker(tls_pg.client_key) not in resp.text, "the key is quoted in an error"

    wiz = wizard_job(src["id"], pg, "t", ["a"], sslmode="VERIFY-FULL")
    resp = server.request("POST", "/jobs", wiz)
    error_of(resp, 422, "invalid", "sslmode")


def _silent_listener():
    """A TCP port that accepts connections and never answers: a worker's
    connect waits there (up to its 10 s connect_timeout) with its TLS files
    written."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def _check_input(port, ca, key, cert):
    conf = {"DATABASE": "db", "USER": "u", "HOST": "127.0.0.1", "PORT": port,
            "SSLMODE": "verify-full", "SSLROOTCERT": ca, "SSLCERT": cert, "SSLKEY": key,
            "VERSION": 2,
            "KAFKA": {"INPUT": {"SOURCE": {"BROKERS": "127.0.0.1:9", "TOPIC": "t"},
                                "VALUE": {"COLUMNS": [{"NAME": "a", "TYPE": "text"}],
                                          "FORMAT": "delimited",
                                          "DELIMITED_OPTION": {"DELIMITER": "|"}}},
                      "OUTPUT": {"TABLE": "t"}}}
    import json
    return json.dumps({"job_id": 1, "job_name": "tlsfiles", "config": to_yaml(conf)}).encode()


def _wait_dirs(tmpdir, present, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bool(_tls_dirs(tmpdir)) == present:
            return
        time.sleep(0.05)
    raise AssertionError(f"TLS directories in {tmpdir}: {_tls_dirs(tmpdir)}, expected "
                         f"{'some' if present else 'none'}")


def test_tls_files_gone_on_sigterm_and_after_sigkill(tls_pg, tmp_path):
    """While a worker connects its TLS files exist, in a 0700 directory with
    0600 files.  A SIGTERM then (the one-shot modes die of it) removes them;
    a SIGKILL cannot, and the next worker removes what the dead one left."""
    import signal
    import stat
    import subprocess
    from conftest import WORKER

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir))
    lst = _silent_listener()
    try:
        data = _check_input(lst.getsockname()[1], tls_pg.ca, tls_pg.client_key, tls_pg.client_cert)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            p = subprocess.Popen([str(WORKER), "--check"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env)
            p.stdin.write(data)
            p.stdin.close()
            _wait_dirs(tmpdir, True)
            d = tmpdir / _tls_dirs(tmpdir)[0]
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, oct(d.stat().st_mode)
            files = sorted(f.name for f in d.iterdir())
            assert files == ["client.crt", "client.key", "root.crt"], files
            for f in d.iterdir():
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
            assert (d / "client.key").read_text() == tls_pg.client_key
            assert d.name.startswith(f"streamworker-pgtls-{p.pid}-"), d.name
            p.send_signal(sig)
            p.wait(10)
            p.stdout.close()
            p.stderr.close()
            assert p.returncode == -sig, p.returncode
            if sig == signal.SIGTERM:
                assert _tls_dirs(tmpdir) == [], "SIGTERM left the TLS files"
            else:
                assert _tls_dirs(tmpdir) == [d.name], "SIGKILL cannot clean up"
        # the next worker removes the dead one's directory before writing its own
        p = subprocess.Popen([str(WORKER), "--check"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        p.stdin.write(data)
        p.stdin.close()
        _wait_dirs(tmpdir, True)
        time.sleep(0.2)
        assert len(_tls_dirs(tmpdir)) == 1 and _tls_dirs(tmpdir) != [d.name], _tls_dirs(tmpdir)
        lst.close()  # the connect fails now: the files go with it
        p.wait(20)
        p.stdout.close()
        p.stderr.close()
        assert _tls_dirs(tmpdir) == []
    finally:
        lst.close()
