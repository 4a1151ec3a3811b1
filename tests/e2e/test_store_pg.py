"""The catalog in PostgreSQL (streamserver --store postgresql://...).

  * the store's unit tests (build/tests/unit/test_store), every one of them,
    pass against the suite's real PostgreSQL, not only against SQLite;
  * a controller keeps services, sources and jobs there: create, start (rows
    arrive), stop, restart the controller (the state is kept), through each
    of the three ways to give the password (STREAMSERVER_STORE, --store-file,
    PGPASSFILE), and the catalog's password never shows in the log, the
    controller's argv or environment, or a worker's argv or environment;
  * --store with a password on the command line is refused;
  * a restart of the catalog's PostgreSQL goes unnoticed by the API.
"""
import os
import re
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import BUILD, CONTROLLER, WORKER
from helpers import (COLUMNS5, TABLE5, check_delimited_table, create_job, create_service,
                     create_source, delimited_messages, free_port, job_status, register_secret,
                     start_job, stop_job, unique, wait_rows, wait_state, wizard_job)

TEST_STORE = BUILD / "tests" / "unit" / "test_store"

_TAP_PLAN = re.compile(r"^\s*1\.\.(\d+)\s*$")
_TAP_RESULT = re.compile(r"^\s*(not ok|ok)\s+(\d+)\s*-?\s*(.*)$")


def parse_tap(text):
    """(planned count, [(ok, number, name, directive)]) of cmocka's TAP."""
    planned, results = None, []
    for line in text.splitlines():
        m = _TAP_PLAN.match(line)
        if m and planned is None:
            planned = int(m.group(1))
            continue
        m = _TAP_RESULT.match(line)
        if m:
            name, _, directive = m.group(3).partition("#")
            results.append((m.group(1) == "ok", int(m.group(2)), name.strip(),
                            directive.strip()))
    return planned, results


def test_store_unit_tests_pass_on_postgresql(pg):
    """Every store test runs against PostgreSQL and passes; a skipped one
    counts as failed."""
    assert os.access(TEST_STORE, os.X_OK), f"{TEST_STORE} is not built"
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP", STREAMSERVER_TEST_STORE=pg.uri)
    p = subprocess.run([str(TEST_STORE)], env=env, capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    planned, results = parse_tap(p.stdout)
    assert planned is not None, f"no TAP plan in the output:\n{out[-4000:]}"
    assert len(results) == planned, f"{planned} planned, {len(results)} reported:\n{out[-4000:]}"
    bad = [r for r in results if not r[0] or re.match(r"(?i)(skip|todo)", r[3])]
    assert not bad, f"failed or skipped: {bad}\n{out[-4000:]}"
    names = {r[2] for r in results}
    # The tests that run on both backends, and PostgreSQL's own.
    for must in ("test_service_crud", "test_start_and_stop", "test_spec_cu_counts_tasks",
                 "test_pg_schema", "test_pg_two_controllers_one_catalog",
                 "test_pg_concurrent_controllers"):
        assert must in names, f"{must} did not run: {sorted(names)}"
    assert p.returncode == 0, f"test_store exited with {p.returncode}:\n{out[-4000:]}"
    assert pg.password not in out


class Catalog:
    """A role of its own (with a password of its own) and a schema for one
    test's catalog, dropped at the end."""

    def __init__(self, pg):
        self.pg = pg
        self.role = unique("ss_cat")
        self.password = register_secret("cat-" + uuid.uuid4().hex)
        self.schema = unique("catalog")
        pg.execute(f'CREATE ROLE "{self.role}" LOGIN PASSWORD %s', (self.password,))
        pg.execute(f'GRANT CREATE ON DATABASE "{pg.dbname}" TO "{self.role}"')

    def uri(self, password=True):
        auth = f"{self.role}:{quote(self.password, safe='')}" if password else self.role
        return (f"postgresql://{auth}@{self.pg.host}:{self.pg.port}/{self.pg.dbname}"
                f"?schema={self.schema}")

    def drop(self):
        self.pg.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.pg.execute(f'DROP OWNED BY "{self.role}"')
        self.pg.execute(f'DROP ROLE IF EXISTS "{self.role}"')


@pytest.fixture
def catalog(pg):
    """A Catalog, dropped after the controllers of the test stopped (ask
    for it before make_server)."""
    cat = Catalog(pg)
    yield cat
    cat.drop()


def _all_tasks_run(st):
    return len(st.get("tasks", [])) == 2 and all(t.get("pid") for t in st["tasks"])


def _proc_bytes(pid, part):
    try:
        return Path(f"/proc/{pid}/{part}").read_bytes()
    except OSError:
        return b""


def _check_no_password(srv, cat, worker_pids):
    secret = cat.password.encode()
    assert secret not in srv.log_path.read_bytes(), "the catalog's password is in the log"
    assert secret not in _proc_bytes(srv.proc.pid, "cmdline"), "in the controller's argv"
    # Given through STREAMSERVER_STORE, it is wiped from the controller's own
    # environment once read.
    assert secret not in _proc_bytes(srv.proc.pid, "environ"), "in the controller's environ"
    checked = 0
    for pid in worker_pids:
        env = _proc_bytes(pid, "environ")
        if not env:
            continue  # restarted since (a task's share of partitions changed)
        checked += 1
        assert secret not in env, f"in worker {pid}'s environ"
        assert b"STREAMSERVER_STORE" not in env, f"worker {pid} inherited STREAMSERVER_STORE"
        assert secret not in _proc_bytes(pid, "cmdline"), f"in worker {pid}'s argv"
    assert checked > 0, f"no worker left to check of {worker_pids}"


def test_controller_keeps_its_catalog_in_postgresql(catalog, make_server, pg, kafka, tmp_path):
    cat = catalog
    srv = make_server(env={"STREAMSERVER_STORE": cat.uri()})
    log = srv.log_text()
    assert f"store: postgresql://{cat.role}@" in log, log[-2000:]

    topic = kafka.create_topic(unique("cat"), partitions=2)
    table = pg.create_table(unique("t_cat"), TABLE5)
    svc = create_service(srv, pg)
    src = create_source(srv, svc["id"], kafka, topic)
    job = create_job(srv, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                     tasks=2, consistency="EXACTLY"))
    jid = job["id"]
    # The rows are in the schema named by schema=, with the ids the API gave.
    assert pg.scalar(f'SELECT name FROM "{cat.schema}".jobs WHERE id = %s', (jid,)) == \
        job["name"]
    # Schema 6: the cluster's tables; 7: a source's schema registry.
    assert pg.scalar(f'SELECT max(version) FROM "{cat.schema}".schema_version') == 7

    start_job(srv, jid)
    wait_state(srv, jid, "running", pred=_all_tasks_run)
    kafka.produce(topic, delimited_messages(0, 2_000), partitions=2)
    assert wait_rows(pg, table, 2_000, srv, jid) == 2_000
    pids = [t["pid"] for t in job_status(srv, jid)["tasks"] if t.get("pid")]
    srv.worker_pids.update(pids)
    _check_no_password(srv, cat, pids)
    assert pg.scalar(f'SELECT desired_state FROM "{cat.schema}".jobs WHERE id = %s',
                     (jid,)) == "running"

    stop_job(srv, jid)
    wait_state(srv, jid, "stopped", timeout=30)
    before = job_status(srv, jid)
    assert before["messages_consumed"] == 2_000, before

    # Restart with the URI in a file: the same catalog, the state kept.
    store_file = tmp_path / "store.uri"
    store_file.write_text(cat.uri() + "\n")
    store_file.chmod(0o600)
    srv.extra_env.pop("STREAMSERVER_STORE")
    srv.args = ["--store-file", str(store_file)]
    srv.restart()
    after = job_status(srv, jid)
    assert after["state"] == "stopped" and after["desired_state"] == "stopped", after
    assert after["messages_consumed"] == 2_000 and after["rows_written"] == 2_000, after
    assert srv.call("GET", f"/services/{svc['id']}")["name"] == svc["name"]
    assert srv.call("GET", f"/sources/{src['id']}")["name"] == src["name"]

    # Restart with the password in a .pgpass file and none in the URI;
    # the job wanted running across the restart comes back by itself.
    start_job(srv, jid)
    wait_state(srv, jid, "running")
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{pg.host}:{pg.port}:{pg.dbname}:{cat.role}:{cat.password}\n")
    passfile.chmod(0o600)
    srv.args = ["--store", cat.uri(password=False)]
    srv.extra_env["PGPASSFILE"] = str(passfile)
    srv.restart()
    wait_state(srv, jid, "running", pred=_all_tasks_run)
    kafka.produce(topic, delimited_messages(2_000, 3_000), partitions=2)
    assert wait_rows(pg, table, 3_000, srv, jid) == 3_000
    check_delimited_table(pg, table, 0, 3_000)
    pids = [t["pid"] for t in job_status(srv, jid)["tasks"] if t.get("pid")]
    srv.worker_pids.update(pids)
    _check_no_password(srv, cat, pids)
    for pid in pids:
        assert b"PGPASSFILE" not in _proc_bytes(pid, "environ"), pid
    stop_job(srv, jid)
    wait_state(srv, jid, "stopped", timeout=30)
    # The fixture checks the whole log and every answer for the
    # password (registered) once the controller stopped.


def test_store_option_refuses_a_password(catalog, pg, tmp_path):
    cat = catalog
    p = subprocess.run([str(CONTROLLER), "--listen", f"127.0.0.1:{free_port()}",
                        "--data-dir", str(tmp_path / "data"), "--worker", str(WORKER),
                        "--store", cat.uri()],
                       capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    assert "STREAMSERVER_STORE" in out and "--store-file" in out and ".pgpass" in out, out
    assert cat.password not in out
    # A catalog that cannot be reached is named without its password.
    p = subprocess.run([str(CONTROLLER), "--listen", f"127.0.0.1:{free_port()}",
                        "--data-dir", str(tmp_path / "data"), "--worker", str(WORKER)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, STREAMSERVER_STORE=cat.uri().replace(
                           f":{pg.port}/", f":{free_port()}/")))
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "cannot connect to the catalog" in out, out
    assert cat.password not in out and f"postgresql://{cat.role}@" in out, out


def test_catalog_survives_a_postgresql_restart(private_pg, make_server):
    """The catalog's server restarts under an idle controller: the next call
    finds the connection gone before it sends anything, connects again and
    answers; nothing fails."""
    register_secret(private_pg.pg.password)
    srv = make_server(env={"STREAMSERVER_STORE": private_pg.pg.uri + "?schema=ss_restart"})
    svc = create_service(srv, private_pg.pg)
    private_pg.restart_fast()
    assert srv.call("GET", f"/services/{svc['id']}")["name"] == svc["name"]
    again = create_service(srv, private_pg.pg)
    assert srv.call("GET", "/services")["total"] == 2, again
    assert "connecting again" in srv.log_text()
