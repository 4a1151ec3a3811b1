"""streamctl, the command-line client: run as a user would (subprocess,
STREAMCTL_URL in the environment) against a real controller, PostgreSQL and
Kafka.  Checks what the user sees: the tables, the --json answers, the exit
codes, the rows in the table after `jobs load`, and that the token shows
nowhere."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import BUILD
from helpers import (register_secret, COLUMNS5, TABLE5, check_delimited_table, cols, create_service,
                     create_source, delimited_messages, free_port, job_dict, job_status,
                     to_yaml, unique, wait_equal, wait_for, wait_state, yaml_line)

# STREAMCTL_BIN: another build of streamctl (e.g. with sanitizers) against this controller
STREAMCTL = Path(os.environ.get("STREAMCTL_BIN") or BUILD / "cli" / "streamctl")
LOAD_TIMEOUT = 300  # 20k rows on a shared 2-core machine, with generous slack

VALUE5 = {"COLUMNS": cols(*COLUMNS5), "FORMAT": "delimited",
          "DELIMITED_OPTION": {"DELIMITER": "|"}}


def ctl(url, *args, env=None, timeout=120, token=None):
    """Runs streamctl; returns the CompletedProcess (text)."""
    assert os.access(STREAMCTL, os.X_OK), f"{STREAMCTL} is not built"
    e = {k: v for k, v in os.environ.items() if not k.startswith("STREAMCTL_")}
    if url is not None:
        e["STREAMCTL_URL"] = url
    if token is not None:
        e["STREAMCTL_TOKEN"] = token
    e.update(env or {})
    return subprocess.run([str(STREAMCTL), *map(str, args)], env=e, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def code(p, expected):
    assert p.returncode == expected, \
        f"exit {p.returncode}, expected {expected}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def table_rows(text):
    """A table's lines split into cells (header first)."""
    return [line.split() for line in text.splitlines() if line.strip()]


def row_named(text, name):
    rows = [r for r in table_rows(text) if name in r]
    assert len(rows) == 1, f"{name!r} is not on exactly one row of:\n{text}"
    return rows[0]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------- CRUD

def test_crud_round_trip_services_sources_jobs(server, pg, kafka, tmp_path):
    url = server.base
    topic = kafka.create_topic(unique("cli"))
    table = pg.create_table(unique("t_cli"), TABLE5)
    svc_name, src_name, job_name = unique("svc"), unique("src"), unique("job")

    # services
    f = write(tmp_path, "svc.json", json.dumps({"name": svc_name, "database_host": pg.host,
                                                 "database_port": pg.port}))
    p = ok(ctl(url, "services", "create", "-f", f))
    assert svc_name in p.stdout
    svc = json.loads(ok(ctl(url, "--json", "services", "get", svc_name)).stdout)
    assert (svc["name"], svc["database_host"], svc["database_port"]) == (svc_name, pg.host, pg.port)
    row = row_named(ok(ctl(url, "services", "list")).stdout, svc_name)
    assert row[0] == str(svc["id"]) and str(pg.port) in row, row
    listed = json.loads(ok(ctl(url, "services", "list", "--json")).stdout)
    assert [s["name"] for s in listed["items"]] == [svc_name] and listed["total"] == 1
    code(ctl(url, "services", "create", "-f", f), 1)  # 409: the name exists
    f2 = write(tmp_path, "svc2.json", json.dumps({"description": "changed by streamctl"}))
    ok(ctl(url, "services", "update", svc_name, "-f", f2))
    assert server.call("GET", f"/services/{svc['id']}")["description"] == "changed by streamctl"

    # sources (--source names the service of a source)
    f = write(tmp_path, "src.json", json.dumps({"name": src_name, "brokers": kafka.bootstrap,
                                                 "topic": topic, "format": "delimited",
                                                 "delimiter": "|"}))
    ok(ctl(url, "sources", "create", "-f", f, "--source", svc_name))
    src = json.loads(ok(ctl(url, "--json", "sources", "get", src_name)).stdout)
    assert (src["service_id"], src["topic"], src["brokers"]) == (svc["id"], topic, kafka.bootstrap)
    row = row_named(ok(ctl(url, "sources", "list")).stdout, src_name)
    assert topic in row and kafka.bootstrap in row, row

    # jobs: a YAML file becomes a professional-mode job
    config = to_yaml(job_dict(pg, kafka, topic, table, value=VALUE5))
    f = write(tmp_path, "myjob.yaml", config)
    p = ok(ctl(url, "jobs", "create", "-f", f, "--source", src_name, "--name", job_name))
    assert job_name in p.stdout
    job = json.loads(ok(ctl(url, "--json", "jobs", "get", job_name)).stdout)
    assert (job["mode"], job["source_id"], job["state"]) == ("professional", src["id"], "stopped")
    assert pg.password not in json.dumps(job)
    row = row_named(ok(ctl(url, "jobs", "list")).stdout, job_name)
    assert row[0] == str(job["id"]) and "stopped" in row and "professional" in row, row
    p = ok(ctl(url, "jobs", "config", job_name))
    assert f"TABLE: {table}" in p.stdout and "'****'" in p.stdout and pg.password not in p.stdout
    p = ok(ctl(url, "jobs", "status", str(job["id"])))
    assert "state" in p.stdout and "stopped" in p.stdout and "rows_written" in p.stdout
    st = json.loads(ok(ctl(url, "--json", "jobs", "status", job_name)).stdout)
    assert st["id"] == job["id"] and st["state"] == "stopped"
    # without --name the file's name is the job's
    ok(ctl(url, "jobs", "create", "-f", f, "--source", str(src["id"])))
    assert json.loads(ok(ctl(url, "--json", "jobs", "get", "myjob")).stdout)["mode"] == "professional"

    # conflicts and absentees: exit 1 with the server's message
    p = code(ctl(url, "sources", "delete", src_name), 1)
    assert "409" in p.stderr and "conflict" in p.stderr
    p = code(ctl(url, "jobs", "get", "999999"), 1)
    assert "404" in p.stderr
    code(ctl(url, "jobs", "get", "no_such_job"), 1)

    # delete, innermost first
    for kind, name in (("jobs", job_name), ("jobs", "myjob"), ("sources", src_name),
                       ("services", svc_name)):
        ok(ctl(url, kind, "delete", name))
        code(ctl(url, kind, "get", name), 1)
    for kind in ("services", "sources", "jobs"):
        assert server.call("GET", f"/{kind}")["total"] == 0


def test_start_stop_wait_and_offsets(server, pg, kafka, tmp_path):
    url = server.base
    topic = kafka.create_topic(unique("cliss"))
    table = pg.create_table(unique("t_cliss"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    f = write(tmp_path, "j.yaml", to_yaml(job_dict(pg, kafka, topic, table, value=VALUE5)))
    ok(ctl(url, "jobs", "create", "-f", f, "--source", src["name"]))
    kafka.produce(topic, delimited_messages(0, 100))
    p = ok(ctl(url, "jobs", "start", "j", "--wait", timeout=180))
    assert "running" in p.stdout
    code(ctl(url, "jobs", "delete", "j"), 1)  # 409 while running
    job_id = server.call("GET", "/jobs")["items"][0]["id"]
    st = wait_state(server, job_id, "running", pred=lambda s: s["rows_written"] == 100)
    p = ok(ctl(url, "jobs", "stop", "j", "--wait", timeout=180))
    assert "stopped" in p.stdout
    assert job_status(server, st["id"])["state"] == "stopped"
    off = json.loads(ok(ctl(url, "--json", "jobs", "offsets", "j")).stdout)
    assert off["total_lag"] == 0, off
    p = ok(ctl(url, "jobs", "offsets", "j"))
    assert "total lag: 0" in p.stdout
    assert row_named(p.stdout, "100")[:2] == ["0", "100"]  # partition 0, stored offset 100
    p = ok(ctl(url, "jobs", "errors", "j"))
    assert "0 rejected messages" in p.stdout


# ---------------------------------------------------------- exit codes

def test_usage_errors_exit_2(server, tmp_path):
    url = server.base
    for args in ([], ["bogus"], ["jobs"], ["jobs", "fly"], ["jobs", "get"],
                 ["services", "create"], ["jobs", "list", "extra"], ["--frobnicate", "health"],
                 ["--token", "s3cr3t-s3cr3t-s3cr3t", "health"], ["--page", "zero", "jobs", "list"],
                 ["services", "create", "-f", tmp_path / "missing.json"],
                 ["jobs", "status", "x", "--quit-at-eof"]):
        p = code(ctl(url, *args), 2)
        assert p.stderr.strip(), args
    p = code(ctl("ftp://127.0.0.1:1", "health"), 2)
    assert "http://" in p.stderr
    p = ok(ctl(url, "--help"))
    assert "EXIT STATUS" in p.stdout and "jobs load" in p.stdout


def test_nothing_listening_exits_3():
    port = free_port()  # bound and released: nothing listens there now
    p = code(ctl(f"http://127.0.0.1:{port}", "jobs", "list"), 3)
    assert str(port) in p.stderr
    p = code(ctl(None, "--url", f"http://127.0.0.1:{port}", "health"), 3)


# ---------------------------------------------------------- the token

TOKEN = register_secret("tok-" + "7f3a9c1e5b" * 3)
READ_TOKEN = register_secret("read-" + "2d8e4f6a0c" * 3)


def test_token_required_exit_4_and_never_shown(make_server, pg, tmp_path):
    tf = write(tmp_path, "api.token", TOKEN + "\n")
    rf = write(tmp_path, "read.token", READ_TOKEN + "\n")
    os.chmod(tf, 0o600)
    srv = make_server(args=["--token-file", str(tf), "--read-token-file", str(rf)],
                      api_token=TOKEN)
    url = srv.base
    svc_file = write(tmp_path, "svc.json", json.dumps({"name": "tsvc", "database_host": pg.host,
                                                        "database_port": pg.port}))

    p = code(ctl(url, "services", "list"), 4)
    assert "401" in p.stderr and "--token-file" in p.stderr
    code(ctl(url, "services", "list", token="wrong-token-wrong-token"), 4)
    code(ctl(url, "services", "create", "-f", svc_file, token=READ_TOKEN), 4)  # 403
    assert srv.call("GET", "/services")["total"] == 0

    outputs = []
    p = ok(ctl(url, "services", "create", "-f", svc_file, token=TOKEN))
    outputs.append(p)
    outputs.append(ok(ctl(url, "--token-file", tf, "services", "list")))
    assert row_named(outputs[-1].stdout, "tsvc")
    outputs.append(ok(ctl(url, "services", "list", env={"STREAMCTL_TOKEN_FILE": str(tf)})))
    outputs.append(ok(ctl(url, "services", "list", token=READ_TOKEN)))
    outputs.append(code(ctl(url, "services", "get", "nope", token=TOKEN), 1))
    for p in outputs:
        assert TOKEN not in p.stdout + p.stderr and READ_TOKEN not in p.stdout + p.stderr

    # While a request is under way, the process's arguments hold no token:
    # a listener that accepts and never answers keeps streamctl waiting.
    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        port = lsock.getsockname()[1]
        for extra, env in (([], {"STREAMCTL_TOKEN": TOKEN}), (["--token-file", str(tf)], {})):
            e = {k: v for k, v in os.environ.items() if not k.startswith("STREAMCTL_")}
            e.update(env)
            proc = subprocess.Popen([str(STREAMCTL), "--url", f"http://127.0.0.1:{port}", *extra,
                                     "services", "list"], env=e, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                conn, _ = lsock.accept()
                with conn:
                    conn.settimeout(10)
                    request = b""
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
                    assert proc.poll() is None
                    assert TOKEN.encode() not in cmdline, cmdline
                    # ... and the token went where it belongs
                    assert f"Authorization: Bearer {TOKEN}\r\n".encode() in request, request
            finally:
                proc.kill()
                proc.wait()


# ------------------------------------------------------------ validate

def test_validate_and_create_show_the_line_of_a_bad_yaml(server, pg, kafka, tmp_path):
    url = server.base
    topic = kafka.create_topic(unique("clival"))
    table = pg.create_table(unique("t_clival"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    d = job_dict(pg, kafka, topic, table, value=VALUE5,
                 commit={"MAX_ROW": "lots", "MINIMAL_INTERVAL": 500})
    config = to_yaml(d)
    lines = {str(yaml_line(config, "MAX_ROW:")), str(yaml_line(config, "COMMIT:"))}
    f = write(tmp_path, "bad.yaml", config)

    for extra in (["--source", src["name"]], []):  # without: the source of its topic
        p = code(ctl(url, "jobs", "validate", "-f", f, *extra), 1)
        hits = [ln for ln in p.stdout.splitlines() if "KAFKA.COMMIT.MAX_ROW" in ln]
        assert hits, p.stdout
        assert any(f"line {n}:" in hits[0] for n in lines), hits
    ans = json.loads(code(ctl(url, "--json", "jobs", "validate", "-f", f, "--source",
                              src["name"]), 1).stdout)
    assert ans["valid"] is False and any(e["field"] == "KAFKA.COMMIT.MAX_ROW" for e in ans["errors"])

    p = code(ctl(url, "jobs", "create", "-f", f, "--source", src["name"]), 1)
    assert "422" in p.stderr
    hits = [ln for ln in p.stderr.splitlines() if "KAFKA.COMMIT.MAX_ROW" in ln and "line" in ln]
    assert hits and any(f"line {n}:" in hits[0] for n in lines), p.stderr
    assert server.call("GET", "/jobs")["total"] == 0

    good = write(tmp_path, "good.yaml", to_yaml(job_dict(pg, kafka, topic, table, value=VALUE5)))
    p = ok(ctl(url, "jobs", "validate", "-f", good, "--source", src["name"]))
    assert p.stdout.startswith("valid") and "INSERT INTO" in p.stdout
    assert server.call("GET", "/jobs")["total"] == 0


def test_validate_names_the_topic_and_what_the_brokers_lack(server, pg, kafka, tmp_path):
    """jobs validate says how many partitions the topic has; a topic the
    brokers do not have is invalid (exit 1) with the field and what to do."""
    url = server.base
    topic = kafka.create_topic(unique("clikaf"), partitions=2)
    table = pg.create_table(unique("t_clikaf"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    good = write(tmp_path, "good.yaml", to_yaml(job_dict(pg, kafka, topic, table, value=VALUE5)))
    p = ok(ctl(url, "jobs", "validate", "-f", good, "--source", src["name"]))
    assert f"topic {topic} on {kafka.bootstrap}: 2 partitions, the job reads 2" in p.stdout, p.stdout

    missing = unique("clinotopic")
    bad = write(tmp_path, "bad.yaml", to_yaml(job_dict(pg, kafka, missing, table, value=VALUE5)))
    p = code(ctl(url, "jobs", "validate", "-f", bad, "--source", src["name"]), 1)
    hits = [ln for ln in p.stdout.splitlines() if "KAFKA.INPUT.SOURCE.TOPIC" in ln]
    assert hits and missing in hits[0] and "[no_topic]" in hits[0], p.stdout


# ---------------------------------------------------------------- load

def _load(url, job_file, *extra):
    return ctl(url, "jobs", "load", job_file, "--quit-at-eof", *extra, timeout=LOAD_TIMEOUT)


def _check_summary(p, n):
    summary = [ln for ln in p.stdout.splitlines() if ln.startswith("loaded ")]
    assert summary, p.stdout
    assert summary[-1].startswith(f"loaded {n} rows, 0 rejected, in "), summary
    assert "rows/s" in summary[-1] and "stopped" in summary[-1], summary


def test_load_quit_at_eof_20k(server, pg, kafka, tmp_path):
    n = 20_000
    topic = kafka.create_topic(unique("cliload"), partitions=2)
    table = pg.create_table(unique("t_cliload"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    kafka.produce(topic, delimited_messages(0, n), partitions=2)
    job_name = unique("load")
    f = write(tmp_path, "load.yaml", to_yaml(job_dict(pg, kafka, topic, table, value=VALUE5)))

    p = code(_load(server.base, f, "--source", src["name"], "--name", job_name), 0)
    check_delimited_table(pg, table, 0, n)
    _check_summary(p, n)
    assert "topic drained" in p.stdout
    job = server.call("GET", "/jobs")["items"][0]
    assert job["name"] == job_name
    st = job_status(server, job["id"])
    assert (st["state"], st["desired_state"], st["rows_written"]) == ("stopped", "stopped", n), st
    # the same source was used: nothing else was made
    assert server.call("GET", "/sources")["total"] == 1
    assert server.call("GET", "/services")["total"] == 1


def test_load_without_source_makes_service_and_source(server, pg, kafka, tmp_path):
    n = 20_000
    topic = kafka.create_topic(unique("cliauto"))
    table = pg.create_table(unique("t_cliauto"), TABLE5)
    kafka.produce(topic, delimited_messages(0, n))
    f = write(tmp_path, "auto.yaml", to_yaml(job_dict(pg, kafka, topic, table, value=VALUE5)))

    p = code(_load(server.base, f), 0)
    check_delimited_table(pg, table, 0, n)
    _check_summary(p, n)
    assert "created service auto" in p.stdout and "created source auto" in p.stdout, p.stdout
    svc = server.call("GET", "/services")["items"]
    src = server.call("GET", "/sources")["items"]
    assert [(s["name"], s["database_host"], s["database_port"]) for s in svc] == \
        [("auto", pg.host, pg.port)]
    assert [(s["name"], s["service_id"], s["brokers"], s["topic"], s["format"], s["delimiter"])
            for s in src] == [("auto", svc[0]["id"], kafka.bootstrap, topic, "delimited", "|")]
    job = server.call("GET", "/jobs")["items"]
    assert [(j["name"], j["source_id"], j["state"]) for j in job] == [("auto", src[0]["id"], "stopped")]

    # Loading again: the job is updated (stopped, same name), the source is
    # found; the topic is already drained, so nothing more is written.
    kafka.produce(topic, delimited_messages(n, n + 500))
    p = code(_load(server.base, f), 0)
    assert "using source auto" in p.stdout and "updated job auto" in p.stdout, p.stdout
    assert "created" not in p.stdout, p.stdout
    check_delimited_table(pg, table, 0, n + 500)
    _check_summary(p, 500)
    assert len(server.call("GET", "/sources")["items"]) == 1


def test_load_of_a_failing_job_exits_5(server, pg, kafka, tmp_path):
    topic = kafka.create_topic(unique("clifail"))
    kafka.produce(topic, delimited_messages(0, 10))
    # the table does not exist: the worker stops with a configuration error
    f = write(tmp_path, "fail.yaml", to_yaml(job_dict(pg, kafka, topic, unique("t_none"),
                                                      value=VALUE5)))
    p = code(_load(server.base, f), 5)
    assert "failed" in p.stderr
    # said before the start, by the check jobs load asks for
    assert "may not run as it is" in p.stderr and "[no_table]" in p.stderr, p.stderr
    job = server.call("GET", "/jobs")["items"][0]
    assert job_status(server, job["id"])["state"] == "failed"


def test_load_until_ctrl_c_stops_the_job(server, pg, kafka, tmp_path):
    n = 2000
    topic = kafka.create_topic(unique("cliint"))
    table = pg.create_table(unique("t_cliint"), TABLE5)
    kafka.produce(topic, delimited_messages(0, n))
    f = write(tmp_path, "intr.yaml", to_yaml(job_dict(pg, kafka, topic, table, value=VALUE5)))
    e = {k: v for k, v in os.environ.items() if not k.startswith("STREAMCTL_")}
    e["STREAMCTL_URL"] = server.base
    proc = subprocess.Popen([str(STREAMCTL), "jobs", "load", str(f)], env=e,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_equal(lambda: pg.count(table), n, timeout=120, what=f"{n} rows in {table}")
        job_id = server.call("GET", "/jobs")["items"][0]["id"]
        assert job_status(server, job_id)["state"] == "running"  # no --quit-at-eof: still on
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    assert "interrupted; stopping job intr" in out, out
    assert f"loaded {n} rows, 0 rejected" in out, out
    assert job_status(server, job_id)["state"] == "stopped"
    check_delimited_table(pg, table, 0, n)


def test_load_says_why_a_job_retries(server, pg, kafka, tmp_path):
    """A job whose database refuses connections retries: the progress line
    of jobs load says why, not just \"retrying\"."""
    topic = kafka.create_topic(unique("cliretry"))
    kafka.produce(topic, delimited_messages(0, 10))
    d = job_dict(pg, kafka, topic, unique("t_retry"), value=VALUE5)
    dead = free_port()  # nothing listens there
    d["PORT"] = dead
    d["SCHEDULE"] = {"RETRY_INTERVAL": "60s", "MAX_RETRIES": 5}
    f = write(tmp_path, "retry.yaml", to_yaml(d))
    e = {k: v for k, v in os.environ.items() if not k.startswith("STREAMCTL_")}
    e["STREAMCTL_URL"] = server.base
    proc = subprocess.Popen([str(STREAMCTL), "jobs", "load", str(f)], env=e,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        # progress lines come every 5 s off a terminal; one in that state
        wait_for(lambda: any(", retrying: " in ln for ln in list(seen)), timeout=120,
                 what="a progress line of the retrying job")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        reader.join(timeout=30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(seen)
    lines = [ln for ln in out.splitlines() if ", retrying: " in ln]
    assert lines, f"no progress line with the reason:\n{out}\n{err}"
    assert "may not run as it is" in err and "[unreachable]" in err, err
    assert str(dead) in lines[-1], lines


def test_load_409_on_a_name_clash_names_the_option(server, pg, kafka, tmp_path):
    """A service of the job's name exists for another database: jobs load
    cannot make its own; the error says --name picks another name."""
    topic = kafka.create_topic(unique("cliclash"))
    table = pg.create_table(unique("t_clash"), TABLE5)
    server.call("POST", "/services", {"name": "clash", "database_host": "10.255.0.1",
                                      "database_port": 5432}, expect=201)
    f = write(tmp_path, "clash.yaml", to_yaml(job_dict(pg, kafka, topic, table, value=VALUE5)))
    p = code(_load(server.base, f), 1)
    assert "409" in p.stderr and "--name" in p.stderr, p.stderr
    assert server.call("GET", "/jobs")["total"] == 0


# ---------------------------------------------------------------- TLS

def _certs(d):
    """A CA and a certificate for 127.0.0.1 signed by it (openssl CLI)."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=streamctl test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "srv.pem", d / "srv.key"


def test_https_verifies_the_server_with_cacert(make_server, pg, tmp_path, monkeypatch):
    ca, cert, key = _certs(tmp_path)
    # requests lets these variables override the fixture's verify=ca
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    srv = make_server(args=["--tls-cert", str(cert), "--tls-key", str(key)], scheme="https",
                      verify=ca)
    assert srv.base.startswith("https://")
    svc = write(tmp_path, "svc.json", json.dumps({"name": "tls_svc", "database_host": pg.host,
                                                   "database_port": pg.port}))
    ok(ctl(srv.base, "--cacert", ca, "services", "create", "-f", svc))
    assert row_named(ok(ctl(srv.base, "services", "list", env={"STREAMCTL_CACERT": str(ca)})).stdout,
                     "tls_svc")
    # without the CA the certificate cannot be verified: nothing is sent
    p = code(ctl(srv.base, "services", "list"), 3)
    assert "SSL" in p.stderr or "certificate" in p.stderr, p.stderr
    # plain HTTP to the TLS port gets no answer it can read
    code(ctl(srv.base.replace("https://", "http://"), "services", "list"), 3)
