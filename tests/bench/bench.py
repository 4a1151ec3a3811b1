#!/usr/bin/python3
"""The Streaming Server benchmark: every figure of issues 6 and 14 side by
side, in one run, on the same machine and data.

    tests/bench/run.sh [--pg durable,fast] [--messages 2000000] [--runs 3] ...
    tests/bench/run.sh --quick          # 100,000 rows, 1 run: for development

Starts Kafka (tests/harness/kafka.sh), PostgreSQL (tests/harness/pg.sh: by
default --durable, a stock install's fsync, synchronous_commit and
full_page_writes on, shared_buffers raised to 1GB; with --pg durable,fast also
the harness's fast server, one column each) and a Kafka Connect standalone
worker with Debezium's JDBC sink (tests/harness/connect.sh), produces the
messages once, then measures (each figure the median of --runs runs):

  1  limit INSERT     psql \\copy of the same rows from a file into an identical table
  2a INSERT           a Streaming Server INSERT job on the full backlog, default COMMIT
                      (MAX_ROW 500, MINIMAL_INTERVAL 1000)
  2b INSERT           the same with MAX_ROW --max-row (10000)
  2c INSERT, Avro     2b's rows as Avro through a schema registry (tests/bench/avro_bench.py)
  3  limit MERGE      psql: COPY into a temp table + INSERT ... ON CONFLICT DO UPDATE
  4a, 4b MERGE        a Streaming Server MERGE job on the same data, as 2a, 2b
  5  peer             Kafka Connect + Debezium JDBC sink, insert and upsert modes
  6  latency          p50 / p99 from Kafka timestamp to commit, paced producer, at
                      MINIMAL_INTERVAL 1000 and 100 (--latency-intervals)
  7  memory           worker peak RSS on a 2,000,000-row backlog on 4 and on 64
                      partitions; controller RSS, 100 jobs / 10 running
  8  CPU              worker CPU seconds (user + system) per million rows of every
                      drain above, beside the Connect JVM's over the peer's runs
  9  tasks (--tasks)  INSERT and MERGE with 1, 2, 4 tasks on 8 partitions beside the peer at
                      tasks.max 1, 2, 4, with the CPU seconds per million rows of the workers
                      and of their PostgreSQL backends (off unless asked for)

See tests/bench/README.md for the method of each figure.  Progress goes to
stderr, one table to stdout, the same as JSON to --out.  Every process it
starts is stopped at the end, on error and on Ctrl-C too.
"""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import psycopg2  # noqa: E402
import requests  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

from helpers import (PG, Kafka, cols, free_port, job_dict, parse_env, pg_backends_of,  # noqa: E402
                     proc_cpu_seconds, to_yaml)

import avro_bench  # noqa: E402

HARNESS = ROOT / "tests" / "harness"
BUILD = Path(os.environ.get("STREAMSERVER_BUILD_DIR") or ROOT / "build").resolve()
CONTROLLER = BUILD / "controller" / "streamserver"
WORKER = BUILD / "worker" / "streamworker"

COLUMNS = [("column_1", "varchar(32)"), ("column_2", "bigint"), ("column_3", "numeric"),
           ("column_4", "varchar(32)"), ("column_5", "varchar(32)")]
TABLE_SQL = ", ".join(f"{n} {t}" for n, t in COLUMNS)
MERGE_TABLE_SQL = TABLE_SQL.replace("column_1 varchar(32)", "column_1 varchar(32) PRIMARY KEY")
PARTITIONS = 4
TASKS_PARTITIONS = 8  # the tasks matrix (figure 9)
DRAIN_TIMEOUT = 3600.0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the data

def insert_row(i):
    """Message i of the INSERT data set, '|'-delimited like the seed's example."""
    return f"key-{i}|{i}|{i}.25|customer-{i % 1000}|region-{i % 7}"


def merge_key(i, n):
    """The MERGE data set repeats every key once: message i has key i mod n/2,
    so the first half inserts n/2 rows and the second half updates each of them
    (the latest message of a key has column_2 = key + n/2)."""
    return i % (n // 2)


def merge_row(i, n):
    k = merge_key(i, n)
    return f"key-{k}|{i}|{i}.25|customer-{i % 1000}|region-{i % 7}"


CONNECT_SCHEMA = json.dumps({
    "type": "struct", "optional": False, "name": "bench.row", "fields": [
        {"field": "column_1", "type": "string", "optional": True},
        {"field": "column_2", "type": "int64", "optional": True},
        {"field": "column_3", "type": "bytes", "optional": True,
         "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
         "parameters": {"scale": "2"}},
        {"field": "column_4", "type": "string", "optional": True},
        {"field": "column_5", "type": "string", "optional": True}]}, separators=(",", ":"))


def as_connect_json(delimited):
    """The same row as JSON with schema (JsonConverter, schemas.enable=true);
    the numeric column is Connect's Decimal, written as a JSON number."""
    c1, c2, c3, c4, c5 = delimited.split("|")
    return ('{"schema":' + CONNECT_SCHEMA + ',"payload":{"column_1":"' + c1 + '","column_2":' + c2
            + ',"column_3":' + c3 + ',"column_4":"' + c4 + '","column_5":"' + c5 + '"}}')


def produce(bootstrap, topic, n, make, partition_of):
    """Produces make(i) for i < n to partition partition_of(i); fails unless
    every message is acknowledged."""
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10000,
                  "queue.buffering.max.messages": 1000000, "queue.buffering.max.kbytes": 1048576,
                  "compression.type": "lz4", "acks": "all", "log_level": 3})

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)
    for i in range(n):
        v = make(i)
        v = v.encode() if isinstance(v, str) else v
        while True:
            try:
                p.produce(topic, v, partition=partition_of(i), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if i % 20000 == 0:
            p.poll(0)
    left = p.flush(300)
    if left or errors:
        raise RuntimeError(f"{topic}: {left} messages not delivered, {len(errors)} failed: {errors[:3]}")


# ------------------------------------------------------------- the processes

class Stack:
    """Everything the benchmark started, stopped in reverse order by close()."""

    def __init__(self, work):
        self.work = work
        self.pg = None      # the first of self.pgs
        self.pgs = {}       # {"durable" | "fast": PG}
        self.kafka = None
        self.connect_url = None
        self.connect_pid = None
        self.controllers = []

    def harness(self, script, verb, d, env=None, timeout=900, options=()):
        p = subprocess.run([str(HARNESS / script), verb, str(d), *options], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
        if p.returncode != 0:
            raise RuntimeError(f"{script} {verb} failed ({p.returncode}):\n{p.stderr}")
        return parse_env(p.stdout)

    def start_backends(self, modes, shared_buffers):
        """Kafka (slow: a JVM) and one PostgreSQL per mode at once: "durable"
        is `pg.sh --durable` (a stock install's fsync, synchronous_commit,
        full_page_writes; shared_buffers raised), "fast" the harness's
        default (all three off)."""
        kp = subprocess.Popen([str(HARNESS / "kafka.sh"), "start", str(self.work / "kafka")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
        try:
            for mode in modes:
                d = self.work / f"pg-{mode}"
                opts = ("--durable",) if mode == "durable" else ()
                env = {"PG_SHARED_BUFFERS": shared_buffers}
                pg = PG.from_env(self.harness("pg.sh", "start", d, env=env, options=opts))
                # Commit timestamps give the exact commit time of each row for
                # the latency figure; the setting needs a restart.
                pg.execute("ALTER SYSTEM SET track_commit_timestamp = on")
                pg.close()
                self.harness("pg.sh", "stop", d)
                self.pgs[mode] = PG.from_env(self.harness("pg.sh", "start", d, env=env, options=opts))
            self.pg = self.pgs[modes[0]]
        finally:
            out, err = kp.communicate(timeout=900)
        if kp.returncode != 0:
            raise RuntimeError(f"kafka.sh start failed:\n{err}")
        self.kafka = Kafka(parse_env(out)["BOOTSTRAP"])

    def start_connect(self):
        env = self.harness("connect.sh", "start", self.work / "connect",
                           env={"CONNECT_BOOTSTRAP": self.kafka.bootstrap})
        self.connect_url, self.connect_pid = env["CONNECT_URL"], int(env["PID"])

    def start_controller(self, name):
        c = Controller(self.work / name)
        self.controllers.append(c)
        c.start()
        return c

    def close(self):
        for c in reversed(self.controllers):
            try:
                c.stop()
            except Exception as e:  # keep stopping the rest
                log(f"warning: stopping streamserver: {e}")
        for pg in self.pgs.values():
            pg.close()
        if self.kafka is not None:
            self.kafka.close()
        for script, d, verb in (("registry.sh", "registry", "stop"), ("connect.sh", "connect", "stop"),
                                ("kafka.sh", "kafka", "stop"),
                                ("pg.sh", "pg-durable", "destroy"), ("pg.sh", "pg-fast", "destroy")):
            if (self.work / d).exists():
                try:
                    self.harness(script, verb, self.work / d, timeout=120)
                except Exception as e:
                    log(f"warning: {script} {verb}: {e}")


class Controller:
    """One streamserver on a free loopback port with its own data directory."""

    def __init__(self, d):
        self.dir = d
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.http = requests.Session()

    def start(self):
        for b in (CONTROLLER, WORKER):
            if not os.access(b, os.X_OK):
                raise RuntimeError(f"{b} is not built: meson setup {BUILD} && ninja -C {BUILD} "
                                   "(or set STREAMSERVER_BUILD_DIR)")
        with open(self.dir / "streamserver.log", "ab") as logf:
            self.proc = subprocess.Popen(
                [str(CONTROLLER), "--listen", f"127.0.0.1:{self.port}", "--data-dir",
                 str(self.dir / "data"), "--worker", str(WORKER)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamserver exited with {self.proc.returncode}: see "
                                   f"{self.dir / 'streamserver.log'}")
            try:
                if self.http.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("streamserver did not answer /healthz within 30 s")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.http.close()

    def call(self, method, path, body=None, expect=(200, 201, 202)):
        r = self.http.request(method, f"{self.base}/api/v1{path}", json=body, timeout=30)
        if r.status_code not in expect:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code}: {r.text[:1000]}")
        return r.json() if r.content else None


def proc_status(pid, key):
    """A kB value of /proc/PID/status (VmRSS, VmHWM), or None when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# -------------------------------------------------------------- the figures

class Bench:
    def __init__(self, args, stack, pg):
        self.args = args
        self.s = stack
        self.pg = pg
        self.seq = 0
        self.last_cpu = None
        self.peer_duplicates = 0

    def name(self, prefix):
        self.seq += 1
        return f"{prefix}_{os.getpid()}_{self.seq}"

    def fresh_table(self, name, sql):
        self.pg.execute(f"DROP TABLE IF EXISTS {name}")
        self.pg.execute(f"CREATE TABLE {name} ({sql})")
        return name

    def psql(self, script):
        """Runs a psql script over TCP (password from the environment, never
        the command line); returns the wall-clock seconds."""
        env = dict(os.environ, PGHOST=self.pg.host, PGPORT=str(self.pg.port), PGUSER=self.pg.user,
                   PGPASSWORD=self.pg.password, PGDATABASE=self.pg.dbname)
        t0 = time.monotonic()
        p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=script,
                           text=True, env=env, capture_output=True)
        elapsed = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError(f"psql failed: {p.stderr}")
        return elapsed

    # 1 and 3 -----------------------------------------------------------
    def limit_insert(self, path, n):
        t = self.fresh_table(self.name("limit_ins"), TABLE_SQL)
        secs = self.psql(f"\\copy {t} from '{path}' with (format text, delimiter '|')\n")
        got = self.pg.count(t)
        if got != n:
            raise RuntimeError(f"limit INSERT: {got} rows in {t}, expected {n}")
        self.pg.execute(f"DROP TABLE {t}")
        return n / secs

    def limit_merge(self, halves, n):
        """The rows in two halves (each key at most once per half, as ON
        CONFLICT needs): per half, COPY into a temp table, then INSERT ... ON
        CONFLICT DO UPDATE; one session, timed from psql's start to its end."""
        t = self.fresh_table(self.name("limit_merge"), MERGE_TABLE_SQL)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in COLUMNS[1:])
        script = f"CREATE TEMP TABLE stage ({TABLE_SQL});\n"
        for h in halves:
            script += (f"\\copy stage from '{h}' with (format text, delimiter '|')\n"
                       f"INSERT INTO {t} SELECT * FROM stage ON CONFLICT (column_1) DO UPDATE SET {sets};\n"
                       "TRUNCATE stage;\n")
        secs = self.psql(script)
        self.check_merged(t, n, "limit MERGE")
        self.pg.execute(f"DROP TABLE {t}")
        return n / secs

    def check_merged(self, table, n, what):
        rows, lo = self.pg.query(f"SELECT count(*), min(column_2) FROM {table}")[0]
        if rows != n // 2 or lo != n // 2:
            raise RuntimeError(f"{what}: {rows} rows, min(column_2) {lo}; expected {n // 2} rows "
                               f"holding the latest message of each key (min {n // 2})")

    # 2 and 4 -----------------------------------------------------------
    def job_config(self, topic, table, mode="INSERT", meta=False, mapping=None, defaults=False,
                   tasks=1, consistency=None, interval=None):
        """A professional-mode job; defaults=True leaves COMMIT out (the
        product's MAX_ROW and MINIMAL_INTERVAL) instead of --max-row / --interval;
        interval replaces --interval."""
        value = {"COLUMNS": cols(*COLUMNS), "FORMAT": "delimited",
                 "DELIMITED_OPTION": {"DELIMITER": "|"}}
        output = {}
        if mode == "MERGE":
            output = {"MATCH_COLUMNS": ["column_1"],
                      "UPDATE_COLUMNS": [c for c, _ in COLUMNS[1:]]}
        if mapping:
            output["MAPPING"] = mapping
        commit = {"MINIMAL_INTERVAL": interval or self.args.interval}
        if self.args.max_row:
            commit["MAX_ROW"] = self.args.max_row
        job = job_dict(self.pg, self.s.kafka, topic, table, value=value, mode=mode,
                       output=output, commit=commit,
                       meta={"COLUMNS": cols(("meta", "jsonb")), "FORMAT": "json"} if meta else None)
        if consistency:
            job["KAFKA"]["COMMIT"]["CONSISTENCY"] = consistency
        if tasks != 1:
            job["TASKS"] = tasks
        if defaults:
            del job["KAFKA"]["COMMIT"]
        return to_yaml(job)

    def new_job(self, ctl, source_id, config, prefix):
        return ctl.call("POST", "/jobs", {"source_id": source_id, "name": self.name(prefix),
                                          "mode": "professional", "config": config})["id"]

    def last_messages(self, n, mode, parts=PARTITIONS):
        """{partition: index of its last message}: once those rows are visible,
        everything before them in their partitions is committed too (one
        consumer per partition, batches commit in order)."""
        last = {}
        for i in range(n - 1, -1, -1):
            p = merge_key(i, n) % parts if mode in ("MERGE", "upsert") else i % parts
            last.setdefault(p, i)
            if len(last) == parts:
                break
        return last

    def arrived(self, table, n, mode, state, full=False, parts=PARTITIONS, writers=None):
        """True once the last message of every partition is visible in the
        table.  MERGE / upsert: a primary-key lookup of those keys holding
        their latest message.  INSERT: a scan of the table's tail only (rows
        are appended; the scan restarts a margin before the end it saw, which
        covers a batch still being written then), so polling stays cheap;
        full=True scans it all (a safety net used once the job has consumed
        everything)."""
        if "want" not in state:
            state["want"] = set(self.last_messages(n, mode, parts).values())
            state["block"] = 0
        if mode in ("MERGE", "upsert"):
            keys = [f"key-{merge_key(i, n)}" for i in state["want"]]
            rows = self.pg.query(f"SELECT column_2 FROM {table} WHERE column_1 = ANY(%s)", (keys,))
            state["want"] -= {r[0] for r in rows}
            return not state["want"]
        blocks = self.pg.scalar("SELECT pg_relation_size(%s::regclass) / 8192", (table,))
        rows = self.pg.query(f"SELECT column_2 FROM {table} WHERE ctid >= %s::tid AND column_2 = ANY(%s)",
                             (f"({0 if full else state['block']},0)", list(state["want"])))
        state["want"] -= {r[0] for r in rows}
        writers = writers or max(1, self.args.connect_tasks)
        margin = max(512, 4 * (self.args.max_row or 500) * writers * 80 // 8192)
        state["block"] = max(0, blocks - margin)
        return not state["want"]

    def server_drain(self, ctl, source_id, topic, n, mode, defaults=False, tasks=1,
                     parts=PARTITIONS, consistency=None):
        """Starts a job on the full backlog; returns (rows/s from the start
        call to the commit of the last message, worker VmHWM kB).  Leaves in
        self.last_cpu the CPU seconds (user + system) of the job's workers
        and of their PostgreSQL backends, read at the end of the drain."""
        sql = MERGE_TABLE_SQL if mode == "MERGE" else TABLE_SQL
        table = self.fresh_table(self.name(f"ss_{mode.lower()}"), sql)
        jid = self.new_job(ctl, source_id, self.job_config(topic, table, mode, defaults=defaults,
                                                           tasks=tasks, consistency=consistency),
                           f"ss_{mode.lower()}")
        probe = {}
        t0 = time.monotonic()
        ctl.call("POST", f"/jobs/{jid}/start")
        last_poll, consumed = 0.0, 0
        while True:
            now = time.monotonic()
            if now - last_poll > 1.0:
                st = ctl.call("GET", f"/jobs/{jid}/status")
                if st["state"] == "failed":
                    raise RuntimeError(f"{mode} job failed: {st.get('last_error')}")
                consumed = st.get("messages_consumed") or 0
                last_poll = now
            if self.arrived(table, n, mode, probe, full=consumed >= n and now - last_poll < 0.06,
                            parts=parts, writers=tasks):
                elapsed = time.monotonic() - t0
                break
            if now - t0 > DRAIN_TIMEOUT:
                raise RuntimeError(f"{mode} job: not every message in {DRAIN_TIMEOUT:.0f} s")
            time.sleep(0.05)
        # VmHWM is the worker's high-water mark: read once the drain is over,
        # while the worker still runs (the job keeps running until stopped).
        st = ctl.call("GET", f"/jobs/{jid}/status")
        if st.get("restarts"):
            raise RuntimeError(f"{mode} job: the worker restarted during the drain: {st}")
        pids = sorted({t["pid"] for t in st.get("tasks") or [] if t.get("pid")} |
                      ({st["pid"]} if st.get("pid") else set()))
        if tasks > 1 and len(pids) != tasks:
            raise RuntimeError(f"{mode} job with {tasks} tasks: {len(pids)} workers: {st}")
        hwm = max((proc_status(p, "VmHWM") or 0 for p in pids), default=0) or None
        if hwm is None:
            raise RuntimeError(f"{mode} job: no running worker to read VmHWM from: {st}")
        self.last_cpu = self.cpu_of(pids)
        ctl.call("POST", f"/jobs/{jid}/stop")
        if mode == "MERGE":
            self.check_merged(table, n, "Streaming Server MERGE")
        else:
            got = self.pg.count(table)
            if got != n:
                raise RuntimeError(f"INSERT job: {got} rows for {n} messages")
        self.wait_stopped(ctl, jid)
        ctl.call("DELETE", f"/jobs/{jid}", expect=(204,))
        self.pg.execute(f"DROP TABLE {table}")
        return n / elapsed, hwm

    def wait_stopped(self, ctl, jid, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ctl.call("GET", f"/jobs/{jid}/status")["state"] in ("stopped", "failed"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"job {jid} did not stop within {timeout} s")

    def backend_cpu(self, pids):
        """{backend pid: CPU s} of the PostgreSQL backends of pids'
        connections (pg_stat_activity by client port)."""
        backends = [b for bs in pg_backends_of(self.pg, pids).values() for b in bs]
        return {b: proc_cpu_seconds(b) or 0 for b in backends}

    def cpu_of(self, pids, since=None):
        """{"worker": CPU s of pids, "backend": CPU s of their PostgreSQL
        backends (less what each had spent at `since`, a backend_cpu() taken
        before: a pool kept from an earlier run), "backends": how many}."""
        now = self.backend_cpu(pids)
        since = since or {}
        return {"worker": sum(proc_cpu_seconds(p) or 0 for p in pids),
                "backend": sum(c - since.get(b, 0) for b, c in now.items()),
                "backends": len(now)}

    # 5 -----------------------------------------------------------------
    def peer(self, topic, n, mode, tasks=None, parts=PARTITIONS):
        """A Debezium JDBC sink connector added to the running Connect worker;
        rows/s from the POST until the table holds the last row (insert: n
        rows; upsert: n/2 rows, each the latest message of its key)."""
        sql = MERGE_TABLE_SQL if mode == "upsert" else TABLE_SQL
        table = self.fresh_table(self.name(f"peer_{mode}"), sql)
        name = self.name(f"peer_{mode}")
        batch = self.args.max_row or 500
        cfg = {
            "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
            "tasks.max": str(tasks or self.args.connect_tasks),
            "topics": topic,
            "connection.url": f"jdbc:postgresql://{self.pg.host}:{self.pg.port}/{self.pg.dbname}",
            "connection.username": self.pg.user,
            "connection.password": self.pg.password,
            "insert.mode": mode,
            "delete.enabled": "false",
            "schema.evolution": "none",
            "table.name.format": table,
            "collection.name.format": table,
            "batch.size": str(batch),
            "consumer.override.max.poll.records": str(batch),
            "consumer.override.auto.offset.reset": "earliest",
        }
        if mode == "upsert":
            cfg.update({"primary.key.mode": "record_value", "primary.key.fields": "column_1"})
        else:
            cfg["primary.key.mode"] = "none"
        url = self.s.connect_url
        jvm0 = proc_cpu_seconds(self.s.connect_pid) or 0
        pool0 = self.backend_cpu([self.s.connect_pid])
        t0 = time.monotonic()
        r = requests.post(f"{url}/connectors", json={"name": name, "config": cfg}, timeout=60)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"Connect refused the connector: HTTP {r.status_code}: {r.text[:1000]}")
        last_check, probe = 0.0, {}
        while True:
            now = time.monotonic()
            if self.arrived(table, n, mode, probe, parts=parts, writers=tasks):
                elapsed = time.monotonic() - t0
                # The JVM's CPU over the run; its backends' while they live.
                cpu = self.cpu_of([self.s.connect_pid], since=pool0)
                cpu["worker"] -= jvm0
                self.last_cpu = cpu
                break
            if now - last_check > 5:
                last_check = now
                st = requests.get(f"{url}/connectors/{name}/status", timeout=30).json()
                states = [st.get("connector", {}).get("state")] + [t.get("state") for t in st.get("tasks", [])]
                if "FAILED" in states:
                    trace = next((t.get("trace", "") for t in st.get("tasks", []) if t.get("trace")), "")
                    raise RuntimeError(f"Connect {mode} connector failed: {trace[:2000]}")
            if now - t0 > DRAIN_TIMEOUT:
                raise RuntimeError(f"Connect {mode}: not every message in {DRAIN_TIMEOUT:.0f} s")
            time.sleep(0.05)
        requests.delete(f"{url}/connectors/{name}", timeout=60)
        self.peer_duplicates = 0
        if mode == "upsert":
            self.check_merged(table, n, "Connect upsert")
        else:
            got = self.pg.count(table)
            if got < n:
                raise RuntimeError(f"Connect insert: {got} rows for {n} messages")
            # At least once: a rebalance among its tasks writes batches again.
            self.peer_duplicates = got - n
            if got > n:
                log(f"Connect insert: {got - n:,} rows written twice (at-least-once; tasks.max "
                    f"{tasks or self.args.connect_tasks})")
        self.pg.execute(f"DROP TABLE {table}")
        return n / elapsed

    # 8 -----------------------------------------------------------------
    def tasks_matrix(self, ctl, sources, topics, n, counts):
        """INSERT and MERGE jobs with each task count on the 8-partition
        topics, each beside the peer at the same tasks.max; CONSISTENCY
        EXACTLY (the rows are counted after every drain: a rebalance at a
        job's start repeats nothing).  Returns one dict per (tasks, figure)."""
        out = []
        for t in counts:
            for mode, peer_mode in (("INSERT", "insert"), ("MERGE", "upsert")):
                rate, _ = self.server_drain(ctl, sources[mode], topics[mode], n, mode, tasks=t,
                                            parts=TASKS_PARTITIONS, consistency="EXACTLY")
                out.append(self.cpu_row("streamserver", mode, t, n, rate))
                if topics.get(peer_mode):
                    rate = self.peer(topics[peer_mode], n, peer_mode, tasks=t,
                                     parts=TASKS_PARTITIONS)
                    out.append(self.cpu_row("peer", peer_mode, t, n, rate))
        return out

    def cpu_row(self, who, mode, tasks, n, rate):
        cpu = self.last_cpu or {}
        row = {"who": who, "mode": mode, "tasks": tasks, "rows_per_s": rate,
               "duplicates": self.peer_duplicates if who == "peer" else 0,
               "worker_cpu_s_per_mrow": cpu.get("worker", 0) * 1e6 / n,
               "backend_cpu_s_per_mrow": cpu.get("backend", 0) * 1e6 / n,
               "backends": cpu.get("backends")}
        log(f"tasks {tasks} {who} {mode}: {rate:,.0f} rows/s, CPU per million rows: worker(s) "
            f"{row['worker_cpu_s_per_mrow']:.1f} s, PostgreSQL backend(s) "
            f"{row['backend_cpu_s_per_mrow']:.1f} s ({row['backends']} backends)")
        return row

    # 6 -----------------------------------------------------------------
    def latency(self, ctl, source_id, topic, interval):
        """A paced producer at --latency-rate messages/s for --latency-seconds
        into a running INSERT job whose rows keep META's Kafka timestamp.  Per
        row: commit time (pg_xact_commit_timestamp of the row's transaction,
        track_commit_timestamp = on) minus the Kafka timestamp (CreateTime, set
        by the producer when it accepts the message), in ms; also the time the
        row was written (clock_timestamp() in MAPPING, evaluated by the INSERT
        inside the batch's transaction, before the commit)."""
        a = self.args
        table = self.fresh_table(self.name("ss_latency"),
                                 TABLE_SQL + ", kafka_ts bigint, written_at timestamptz")
        mapping = {c: c for c, _ in COLUMNS}
        mapping["kafka_ts"] = "(meta->>'timestamp')::bigint"
        mapping["written_at"] = "clock_timestamp()"
        jid = self.new_job(ctl, source_id, self.job_config(topic, table, meta=True, mapping=mapping,
                                                           interval=interval), "ss_latency")
        ctl.call("POST", f"/jobs/{jid}/start")
        p = Producer({"bootstrap.servers": self.s.kafka.bootstrap, "linger.ms": 5, "acks": 1,
                      "queue.buffering.max.messages": 1000000, "log_level": 3})
        # A warm-up message (column_2 = -1), left out of the figures: the job
        # runs and has its partitions once it is in the table.
        p.produce(topic, b"warm|-1|0|w|w", partition=0)
        p.flush(30)
        deadline = time.monotonic() + 120
        while self.pg.count(table) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("latency job: the warm-up message never arrived")
            time.sleep(0.05)
        total = int(a.latency_rate * a.latency_seconds)
        t0 = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - t0) * a.latency_rate))
            while sent < due:
                try:
                    p.produce(topic, insert_row(sent).encode(), partition=sent % PARTITIONS)
                    sent += 1
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
            time.sleep(0.002)
        produce_s = time.monotonic() - t0
        p.flush(60)
        deadline = time.monotonic() + 300
        while self.pg.scalar(f"SELECT count(*) FROM {table} WHERE column_2 >= 0") < total:
            if time.monotonic() > deadline:
                raise RuntimeError("latency job: not every message arrived within 300 s")
            time.sleep(0.1)
        p50, p99, w50, w99, mx = self.pg.query(f"""
            WITH l AS (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000 - kafka_ts AS c,
                              extract(epoch FROM written_at) * 1000 - kafka_ts AS w
                       FROM {table} WHERE column_2 >= 0)
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY c),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY c),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY w),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY w), max(c) FROM l""")[0]
        ctl.call("POST", f"/jobs/{jid}/stop")
        self.wait_stopped(ctl, jid)
        ctl.call("DELETE", f"/jobs/{jid}", expect=(204,))
        self.pg.execute(f"DROP TABLE {table}")
        return {"p50": float(p50), "p99": float(p99), "written_p50": float(w50),
                "written_p99": float(w99), "max": float(mx), "rate": total / produce_s}

    # 7 -----------------------------------------------------------------
    def controller_rss(self, run):
        """A fresh controller with 100 jobs defined and 10 running (on 10 idle
        topics); its VmRSS once all 10 run and a few ticks have passed."""
        ctl = self.s.start_controller(f"ctl-mem-{run}")
        try:
            svc = ctl.call("POST", "/services", {"name": self.name("svc"), "spec_cu": 16,
                                                 "database_host": self.pg.host,
                                                 "database_port": self.pg.port})["id"]
            topics, sources = [], []
            for i in range(10):
                t = self.s.kafka.create_topic(self.name("idle"), partitions=1)
                topics.append(t)
                sources.append(ctl.call("POST", "/sources", {
                    "service_id": svc, "name": self.name("src"), "brokers": self.s.kafka.bootstrap,
                    "topic": t, "format": "delimited", "delimiter": "|"})["id"])
            table = self.fresh_table(self.name("idle"), TABLE_SQL)
            jobs = []
            for i in range(100):
                jobs.append(self.new_job(ctl, sources[i % 10],
                                         self.job_config(topics[i % 10], table), "idle"))
            for jid in jobs[:10]:
                ctl.call("POST", f"/jobs/{jid}/start")
            deadline = time.monotonic() + 120
            while True:
                states = [ctl.call("GET", f"/jobs/{j}/status")["state"] for j in jobs[:10]]
                if all(s == "running" for s in states):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the 10 idle jobs did not all run: {states}")
                time.sleep(0.5)
            time.sleep(5)
            rss = proc_status(ctl.proc.pid, "VmRSS")
            hwm = proc_status(ctl.proc.pid, "VmHWM")
            for jid in jobs[:10]:
                ctl.call("POST", f"/jobs/{jid}/stop")
            for jid in jobs[:10]:
                self.wait_stopped(ctl, jid)
            self.pg.execute(f"DROP TABLE {table}")
            return rss, hwm
        finally:
            ctl.stop()


# ------------------------------------------------------------ the report

def versions(stack):
    v = {}
    v["postgresql"] = stack.pg.scalar("SHOW server_version")
    v["kafka"] = "3.9.1 (tests/harness/pom.xml)"
    try:
        v["kafka_connect"] = requests.get(stack.connect_url + "/", timeout=10).json().get("version")
        plugins = requests.get(stack.connect_url + "/connector-plugins", timeout=10).json()
        v["debezium_jdbc"] = next((p.get("version") for p in plugins
                                   if p.get("class", "").endswith("JdbcSinkConnector")), None)
    except Exception:
        pass
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        v["streamserver_commit"] = head + ("-dirty" if dirty else "")
    except OSError:
        v["streamserver_commit"] = None
    # The binaries carry no commit: say which ones ran and when they were built,
    # so a build tree older than HEAD shows.
    try:
        ver = subprocess.run([str(CONTROLLER), "--version"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(WORKER.stat().st_mtime))
        v["binaries"] = f"{ver} in {BUILD}, worker built {built}"
    except (OSError, subprocess.SubprocessError):
        v["binaries"] = None
    return v


def machine():
    model = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
    except (OSError, StopIteration):
        mem = None
    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "ram_gb": round(mem / 1048576, 1) if mem else None, "cpu": model,
            "kernel": platform.release()}


def median(xs):
    return statistics.median(xs) if xs else None


def paired_ratio(raw, key, ref):
    """The median over the runs of key / ref, each pair measured in the same
    run (back to back, so load from outside weighs on both alike); None when
    either was not measured."""
    a, b = raw.get(key) or [], raw.get(ref) or []
    if not a or len(a) != len(b):
        return None
    return round(statistics.median(x / y for x, y in zip(a, b)), 3)


def build_table(raw, args, modes):
    """The rows of the report: one per figure, with per PostgreSQL mode the
    value (the median of the runs), the ratio to the limit and to the peer
    (medians of the per-run ratios, each pair measured back to back in the
    same run) and pass/fail of the target, judged on those ratios."""
    rows = []
    mr = args.max_row or 500

    def add(key, figure, unit, limit=None, peer=None, target=None, judge=None, scale=1.0):
        row = {"key": key, "figure": figure, "unit": unit, "target": target, "modes": {}}
        for m in modes:
            r = raw.get(m, {})
            vals = r.get(key) or []
            v = median(vals)
            x = paired_ratio(r, key, limit) if limit else None
            y = paired_ratio(r, key, peer) if peer else None
            ok = None
            if judge is not None and v is not None:
                ok = judge(v * scale, x, y)
            row["modes"][m] = {"value": None if v is None else v * scale, "ratio_to_limit": x,
                               "ratio_to_peer": y, "pass": ok, "runs": len(vals)}
        rows.append(row)

    def ge(rx=None, ry=None):
        def j(_v, x, y):
            if (rx is not None and x is None) or (ry is not None and y is None):
                return None
            return (rx is None or x >= rx) and (ry is None or y >= ry)
        return j

    add("limit_insert", "1 limit INSERT (psql COPY)", "rows/s", "limit_insert", "peer_insert")
    add("ss_insert_default", "2a INSERT, default COMMIT (MAX_ROW 500, MINIMAL_INTERVAL 1000)",
        "rows/s", "limit_insert", "peer_insert", ">= 0.5 x COPY", ge(0.5))
    add("ss_insert", f"2b INSERT, MAX_ROW {mr}, MINIMAL_INTERVAL {args.interval}", "rows/s",
        "limit_insert", "peer_insert", ">= 0.8 x COPY", ge(0.8))
    add("ss_avro_insert", f"2c INSERT, Avro via registry, MAX_ROW {mr}", "rows/s",
        "limit_insert", "peer_insert")
    add("limit_merge", "3 limit MERGE (COPY to temp + ON CONFLICT)", "rows/s", "limit_merge",
        "peer_upsert")
    add("ss_merge_default", "4a MERGE, default COMMIT (MAX_ROW 500, MINIMAL_INTERVAL 1000)",
        "rows/s", "limit_merge", "peer_upsert")
    add("ss_merge", f"4b MERGE, MAX_ROW {mr}, MINIMAL_INTERVAL {args.interval}", "rows/s",
        "limit_merge", "peer_upsert", ">= 0.9 x limit, >= 3 x peer", ge(0.9, 3))
    add("peer_insert", f"5a peer: Connect + Debezium JDBC insert, batch {mr}", "rows/s",
        "limit_insert", "peer_insert")
    add("peer_upsert", f"5b peer: Connect + Debezium JDBC upsert, batch {mr}", "rows/s",
        "limit_merge", "peer_upsert")
    for iv in args.latency_intervals:
        bound = iv + 100
        add(f"lat_p50_{iv}", f"6 latency p50, MINIMAL_INTERVAL {iv}, {args.latency_rate}/s", "ms")
        add(f"lat_p99_{iv}", f"6 latency p99, MINIMAL_INTERVAL {iv}, {args.latency_rate}/s", "ms",
            target=f"<= {bound} ms", judge=lambda v, _x, _y, b=bound: v <= b)
    for parts in args.rss_partitions:
        add(f"rss_{parts}", f"7 worker peak RSS, {args.rss_messages:,}-row backlog, {parts} partitions",
            "MB", target="<= 64 MB", judge=lambda v, _x, _y: v <= 64, scale=1 / 1024)
    add("controller_rss_kb", "7 controller RSS, 100 jobs / 10 running", "MB", target="<= 30 MB",
        judge=lambda v, _x, _y: v <= 30, scale=1 / 1024)
    for key, what, peer in (("cpu_insert_default", "INSERT default COMMIT", "cpu_peer_insert"),
                            ("cpu_insert", f"INSERT MAX_ROW {mr}", "cpu_peer_insert"),
                            ("cpu_merge_default", "MERGE default COMMIT", "cpu_peer_upsert"),
                            ("cpu_merge", f"MERGE MAX_ROW {mr}", "cpu_peer_upsert")):
        add(key, f"8 worker CPU per million rows, {what}", "CPU s", peer=peer)
    add("cpu_peer_insert", "8 peer (Connect JVM) CPU per million rows, insert", "CPU s",
        peer="cpu_peer_insert")
    add("cpu_peer_upsert", "8 peer (Connect JVM) CPU per million rows, upsert", "CPU s",
        peer="cpu_peer_upsert")
    # Rows nobody measured (skipped) are left out.
    return [r for r in rows if any(m["value"] is not None for m in r["modes"].values())]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v >= 1000:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def print_table(rows, modes, out=sys.stdout):
    """Per mode: value, x limit (COPY for INSERT, COPY + ON CONFLICT for
    MERGE), x peer, pass; then the target."""
    head = ["figure", "unit"]
    for m in modes:
        head += [m, "x limit", "x peer", "pass"]
    head.append("target")
    cells = []
    for r in rows:
        c = [r["figure"], r["unit"]]
        for m in modes:
            d = r["modes"].get(m, {})
            c += [fmt(d.get("value")),
                  "-" if d.get("ratio_to_limit") is None else f"{d['ratio_to_limit']:.2f}",
                  "-" if d.get("ratio_to_peer") is None else f"{d['ratio_to_peer']:.2f}",
                  "" if not r["target"] else ("-" if d.get("pass") is None else
                                              ("PASS" if d["pass"] else "FAIL"))]
        c.append(r["target"] or "")
        cells.append(c)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *cells)]
    left = {0, 1, len(head) - 1}
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for c in cells:
        print(" | ".join(str(x).ljust(w) if i in left else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(c, widths))), file=out)


def print_tasks(rows, args, mach, out=sys.stdout):
    """The tasks matrix (figure 9), then a model of rows/s against tasks and
    cores from the measured CPU per row: a task is a pipeline of a worker and
    its backend working in turn, so one task goes at most 1 / (w + b) rows/s
    (w, b: CPU seconds per row of the worker and of the backend), T tasks at
    most T / (w + b), and C cores at most C / (w + b); the broker, WAL and
    checkpoints are left out, so the model is a ceiling."""
    print(f"\n9 tasks matrix: {args.tasks_messages:,} messages on {TASKS_PARTITIONS} partitions, "
          f"CONSISTENCY EXACTLY; peer = Connect + Debezium JDBC at tasks.max = tasks; "
          f"CPU = user + system s per million rows (workers summed over tasks; PostgreSQL "
          f"backends of their connections)")
    head = ("who", "mode", "tasks", "rows/s", "worker CPU s/Mrow", "backend CPU s/Mrow", "backends",
            "rows twice")
    cells = [(r["who"], r["mode"], str(r["tasks"]), f"{r['rows_per_s']:,.0f}",
              f"{r['worker_cpu_s_per_mrow']:.1f}", f"{r['backend_cpu_s_per_mrow']:.1f}",
              str(r["backends"]), f"{r.get('duplicates', 0):,}") for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *cells)]
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for c in cells:
        print(" | ".join(x.ljust(w) if i < 2 else x.rjust(w)
                         for i, (x, w) in enumerate(zip(c, widths))), file=out)
    cores = mach.get("usable_cores") or mach.get("cores") or 1
    print(f"\nmodel (streamserver): rows/s <= min(T / max(w, b), C / (w + b)) for T tasks on C "
          f"cores, w and b the median CPU s per row of a worker and of its backend measured here "
          f"({cores} core(s)): a task overlaps reading the next batch with the database writing "
          f"the last one, so one task is bound by the slower of the two, and all of them by the "
          f"cores; broker, WAL and checkpoints left out, so a ceiling", file=out)
    grid = (1, 2, 4, 8, 16)
    for mode in ("INSERT", "MERGE"):
        ours = [r for r in rows if r["who"] == "streamserver" and r["mode"] == mode]
        if not ours:
            continue
        w = statistics.median(r["worker_cpu_s_per_mrow"] for r in ours) / 1e6
        b = statistics.median(r["backend_cpu_s_per_mrow"] for r in ours) / 1e6
        if w + b <= 0:
            continue
        busy = ", ".join(f"{r['tasks']} task(s) "
                         f"{r['rows_per_s'] * (r['worker_cpu_s_per_mrow'] + r['backend_cpu_s_per_mrow']) / 1e6:.2f}"
                         for r in ours)
        print(f"  {mode}: w = {w * 1e6:.2f}, b = {b * 1e6:.2f} CPU s per million rows; cores kept "
              f"busy by workers + backends at the measured rates: {busy}", file=out)
        print("    " + "tasks \\ cores".ljust(14) + "".join(f"{c:>12}" for c in grid), file=out)
        for t in grid:
            print("    " + f"{t}".ljust(14) + "".join(
                f"{min(t / max(w, b), c / (w + b)):>12,.0f}" for c in grid), file=out)


# ------------------------------------------------------------------ main

QUICK = {"messages": 100_000, "runs": 1, "latency_seconds": 10, "rss_messages": 200_000,
         "peer_warmup": 20_000}
DEFAULTS = {"messages": 2_000_000, "runs": 3, "latency_seconds": 60, "rss_messages": 2_000_000,
            "peer_warmup": 200_000}
PG_MODES = ("durable", "fast")
SKIPPABLE = ("limit", "insert", "avro", "merge", "default", "peer", "latency", "memory")


def int_list(ap, name, text, lo, hi):
    try:
        xs = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        ap.error(f"{name}: a comma-separated list of numbers, not {text!r}")
    if any(x < lo or x > hi for x in xs):
        ap.error(f"{name}: every number must be {lo}..{hi}")
    return xs


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a short run for development: --messages 100000 --runs 1 "
                         "--latency-seconds 10 --rss-messages 200000 --peer-warmup 20000 "
                         "(options given explicitly win)")
    ap.add_argument("--pg", default="durable",
                    help="PostgreSQL servers to measure on, one column each: durable (a stock "
                         "install's fsync, synchronous_commit, full_page_writes on), fast (all "
                         "three off); default durable, e.g. --pg durable,fast")
    ap.add_argument("--shared-buffers", default="1GB",
                    help="shared_buffers of the durable server (default 1GB, a typical production "
                         "value; the stock install's is 128MB)")
    ap.add_argument("--messages", type=int, help="rows per data set (default 2000000)")
    ap.add_argument("--runs", type=int, help="runs per figure; the median is reported (default 3)")
    ap.add_argument("--max-row", type=int, default=10000,
                    help="COMMIT.MAX_ROW of the jobs of figures 2b, 4b, 6, 7, and batch.size / "
                         "max.poll.records of the peer (default 10000; 0 = the jobs' default, 500)")
    ap.add_argument("--interval", type=int, default=1000,
                    help="COMMIT.MINIMAL_INTERVAL of the jobs of 2b, 4b, 7, ms (default 1000)")
    ap.add_argument("--latency-intervals", default="1000,100",
                    help="MINIMAL_INTERVAL of each latency figure, ms (default 1000,100)")
    ap.add_argument("--latency-seconds", type=float)
    ap.add_argument("--latency-rate", type=int, default=20000, help="messages/s (default 20000)")
    ap.add_argument("--rss-messages", type=int,
                    help="backlog of the worker RSS figures (default 2000000)")
    ap.add_argument("--rss-partitions", default="4,64",
                    help="partition counts of the worker RSS figures (default 4,64)")
    ap.add_argument("--connect-tasks", type=int, default=1,
                    help="tasks.max of the peer connector (default 1: one process, one connection, "
                         "like one job's worker)")
    ap.add_argument("--peer-warmup", type=int,
                    help="rows of the peer's warm-up insert and upsert before run 1, not counted "
                         "(default 200000, at most --messages; 0 = none)")
    ap.add_argument("--tasks", default=os.environ.get("STREAMSERVER_BENCH_TASKS", ""),
                    help="task counts of the tasks matrix, e.g. 1,2,4: INSERT and MERGE on "
                         f"{TASKS_PARTITIONS} partitions beside the peer at the same tasks.max, "
                         "on the first --pg server (default: none, or $STREAMSERVER_BENCH_TASKS)")
    ap.add_argument("--tasks-messages", type=int, default=0,
                    help="rows per data set of the tasks matrix (default: --messages)")
    ap.add_argument("--tasks-runs", type=int, default=1,
                    help="runs of the tasks matrix; every run is printed (default 1)")
    ap.add_argument("--skip", default="", help="comma-separated figures to leave out: "
                    + ",".join(SKIPPABLE) + " (default: none; default = the default-COMMIT drains 2a, 4a)")
    ap.add_argument("--out", default="bench-results.json")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    a = ap.parse_args()
    for k, v in (QUICK if a.quick else DEFAULTS).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.messages < 2 or a.messages % 2:
        ap.error("--messages must be an even number >= 2")
    if a.peer_warmup % 2:
        ap.error("--peer-warmup must be even")
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    if a.rss_messages < 1:
        ap.error("--rss-messages must be >= 1")
    a.pg = [m.strip() for m in a.pg.split(",") if m.strip()]
    if not a.pg or any(m not in PG_MODES for m in a.pg) or len(set(a.pg)) != len(a.pg):
        ap.error(f"--pg: durable, fast or both (comma-separated), not {','.join(a.pg)!r}")
    a.skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    if a.skip - set(SKIPPABLE):
        ap.error(f"--skip: unknown figure(s) {', '.join(sorted(a.skip - set(SKIPPABLE)))}; "
                 f"known: {', '.join(SKIPPABLE)}")
    a.latency_intervals = int_list(ap, "--latency-intervals", a.latency_intervals, 1, 600000)
    a.rss_partitions = int_list(ap, "--rss-partitions", a.rss_partitions, 1, 256)
    a.tasks = int_list(ap, "--tasks", a.tasks, 1, 64)
    a.tasks_messages = a.tasks_messages or a.messages
    if a.tasks_messages < 2 or a.tasks_messages % 2:
        ap.error("--tasks-messages must be an even number >= 2")
    return a


def on_sigterm(_sig, _frame):
    raise KeyboardInterrupt


def pg_settings(pg):
    names = ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "max_wal_size",
             "checkpoint_timeout", "wal_level", "server_version")
    return {n: pg.scalar(f"SHOW {n}") for n in names}


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    # Also when started in the background, where SIGINT comes in ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for b in (CONTROLLER, WORKER):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is not built: meson setup {BUILD} && ninja -C {BUILD} (or set STREAMSERVER_BUILD_DIR)")
    work = Path(tempfile.mkdtemp(prefix="ss-bench-"))
    os.chmod(work, 0o755)  # pg.sh runs PostgreSQL as an unprivileged user
    stack = Stack(work)
    n = args.messages
    modes = args.pg
    first = modes[0]
    raw = {m: {} for m in modes}
    extra = {"latency": {m: [] for m in modes}, "worker_hwm_kb": {m: [] for m in modes},
             "tasks": []}
    pgset = {}
    load_start = os.getloadavg()
    ok = False

    def put(mode, key, v):
        raw[mode].setdefault(key, []).append(v)
    try:
        log(f"starting PostgreSQL ({', '.join(modes)}) and Kafka in {work}")
        stack.start_backends(modes, args.shared_buffers)
        pgset = {m: pg_settings(stack.pgs[m]) for m in modes}
        for m in modes:
            log(f"PostgreSQL {m}: " + ", ".join(f"{k} {v}" for k, v in pgset[m].items()))
        if "peer" not in args.skip:
            log("starting Kafka Connect")
            stack.start_connect()
        benches = {m: Bench(args, stack, stack.pgs[m]) for m in modes}
        bench = benches[first]
        kafka = stack.kafka

        # The data: files for psql, topics for the jobs and the peer.
        ins_file = work / "insert.txt"
        merge_files = [work / "merge-1.txt", work / "merge-2.txt"]
        with open(ins_file, "w") as f:
            for i in range(n):
                f.write(insert_row(i) + "\n")
        for h, path in enumerate(merge_files):
            with open(path, "w") as f:
                for i in range(h * n // 2, (h + 1) * n // 2):
                    f.write(merge_row(i, n) + "\n")
        t_ins = kafka.create_topic("bench_insert", PARTITIONS)
        t_merge = kafka.create_topic("bench_merge", PARTITIONS)
        log(f"producing {n:,} messages to {t_ins} and {t_merge}")
        t0 = time.monotonic()
        produce(kafka.bootstrap, t_ins, n, insert_row, lambda i: i % PARTITIONS)
        # One key, one partition: its two messages keep their order.
        produce(kafka.bootstrap, t_merge, n, lambda i: merge_row(i, n),
                lambda i: merge_key(i, n) % PARTITIONS)
        if "peer" not in args.skip:
            t_cins = kafka.create_topic("bench_connect_insert", PARTITIONS)
            t_cmerge = kafka.create_topic("bench_connect_merge", PARTITIONS)
            produce(kafka.bootstrap, t_cins, n, lambda i: as_connect_json(insert_row(i)),
                    lambda i: i % PARTITIONS)
            produce(kafka.bootstrap, t_cmerge, n, lambda i: as_connect_json(merge_row(i, n)),
                    lambda i: merge_key(i, n) % PARTITIONS)
        if "avro" not in args.skip:
            # The INSERT set again, as Avro framed for a schema registry.
            registry_url = stack.harness("registry.sh", "start", work / "registry")["REGISTRY"]
            t_avro = kafka.create_topic("bench_avro_insert", PARTITIONS)
            produce(kafka.bootstrap, t_avro, n,
                    avro_bench.encoder(avro_bench.register(registry_url, f"{t_avro}-value")),
                    lambda i: i % PARTITIONS)
        rn = args.rss_messages
        t_rss = {}
        if "memory" not in args.skip:
            for parts in args.rss_partitions:
                t_rss[parts] = kafka.create_topic(f"bench_rss{parts}", parts)
                log(f"producing {rn:,} messages to {t_rss[parts]} ({parts} partitions)")
                produce(kafka.bootstrap, t_rss[parts], rn, insert_row, lambda i, p=parts: i % p)
        log(f"produced in {time.monotonic() - t0:.1f} s")
        if "peer" not in args.skip and args.peer_warmup:
            # Connect is a long-running JVM: warm its JIT up on data sets of
            # their own (same shape) first, or run 1 would measure a cold JVM.
            w = min(n, args.peer_warmup)
            w_ins = kafka.create_topic("bench_connect_warmup_insert", PARTITIONS)
            w_merge = kafka.create_topic("bench_connect_warmup_merge", PARTITIONS)
            produce(kafka.bootstrap, w_ins, w, lambda i: as_connect_json(insert_row(i)),
                    lambda i: i % PARTITIONS)
            produce(kafka.bootstrap, w_merge, w, lambda i: as_connect_json(merge_row(i, w)),
                    lambda i: merge_key(i, w) % PARTITIONS)
            log(f"peer warm-up ({w:,} rows each, not counted): insert "
                f"{bench.peer(w_ins, w, 'insert'):,.0f} rows/s, upsert "
                f"{bench.peer(w_merge, w, 'upsert'):,.0f} rows/s")

        tm = args.tasks_messages
        mtopics = {}
        if args.tasks:
            # The tasks matrix: the same rows on 8 partitions.
            mtopics["INSERT"] = kafka.create_topic("bench_insert8", TASKS_PARTITIONS)
            mtopics["MERGE"] = kafka.create_topic("bench_merge8", TASKS_PARTITIONS)
            log(f"producing {tm:,} messages to each {TASKS_PARTITIONS}-partition topic")
            produce(kafka.bootstrap, mtopics["INSERT"], tm, insert_row, lambda i: i % TASKS_PARTITIONS)
            produce(kafka.bootstrap, mtopics["MERGE"], tm, lambda i: merge_row(i, tm),
                    lambda i: merge_key(i, tm) % TASKS_PARTITIONS)
            if "peer" not in args.skip:
                mtopics["insert"] = kafka.create_topic("bench_connect_insert8", TASKS_PARTITIONS)
                mtopics["upsert"] = kafka.create_topic("bench_connect_merge8", TASKS_PARTITIONS)
                produce(kafka.bootstrap, mtopics["insert"], tm,
                        lambda i: as_connect_json(insert_row(i)), lambda i: i % TASKS_PARTITIONS)
                produce(kafka.bootstrap, mtopics["upsert"], tm,
                        lambda i: as_connect_json(merge_row(i, tm)),
                        lambda i: merge_key(i, tm) % TASKS_PARTITIONS)

        ctl = stack.start_controller("ctl")
        svc = {m: ctl.call("POST", "/services", {"name": f"bench-{m}", "spec_cu": 16,
                                                 "database_host": stack.pgs[m].host,
                                                 "database_port": stack.pgs[m].port})["id"]
               for m in modes}

        def source(mode, topic):
            return ctl.call("POST", "/sources", {"service_id": svc[mode], "name": f"{topic}-{mode}",
                                                 "brokers": kafka.bootstrap, "topic": topic,
                                                 "format": "delimited", "delimiter": "|"})["id"]
        s_ins = {m: source(m, t_ins) for m in modes}
        s_merge = {m: source(m, t_merge) for m in modes}
        s_rss = {p: source(first, t) for p, t in t_rss.items()}
        s_avro = {m: source(m, t_avro) for m in modes} if "avro" not in args.skip else {}
        msources = {k: source(first, mtopics[k]) for k in ("INSERT", "MERGE") if k in mtopics}

        def cpu(b, rows):
            return (b.last_cpu or {}).get("worker", 0) * 1e6 / rows

        for run in range(1, args.runs + 1):
            # Modes inside runs: load from outside weighs on each alike.
            for m in modes:
                b = benches[m]
                log(f"--- run {run} of {args.runs}, PostgreSQL {m}")
                if "limit" not in args.skip:
                    put(m, "limit_insert", b.limit_insert(ins_file, n))
                    log(f"[{m}] limit INSERT {raw[m]['limit_insert'][-1]:,.0f} rows/s")
                    put(m, "limit_merge", b.limit_merge(merge_files, n))
                    log(f"[{m}] limit MERGE {raw[m]['limit_merge'][-1]:,.0f} rows/s")
                for mode, key, skip in (("INSERT", "ss_insert", "insert"),
                                        ("MERGE", "ss_merge", "merge")):
                    if skip in args.skip:
                        continue
                    src, topic = (s_ins[m], t_ins) if mode == "INSERT" else (s_merge[m], t_merge)
                    for defaults in ((False, True) if "default" not in args.skip else (False,)):
                        k = key + ("_default" if defaults else "")
                        rate, hwm = b.server_drain(ctl, src, topic, n, mode, defaults=defaults)
                        put(m, k, rate)
                        put(m, "cpu" + k[2:], cpu(b, n))
                        extra["worker_hwm_kb"][m].append({"figure": k, "kb": hwm})
                        log(f"[{m}] {mode} {'default COMMIT' if defaults else f'MAX_ROW {args.max_row}'}"
                            f" {rate:,.0f} rows/s, worker CPU {raw[m]['cpu' + k[2:]][-1]:.1f} s per "
                            f"million rows, VmHWM {hwm / 1024:.1f} MB")
                if "avro" not in args.skip:
                    rate, _ = avro_bench.drain(b, ctl, s_avro[m], t_avro, n, registry_url, COLUMNS)
                    put(m, "ss_avro_insert", rate)
                    put(m, "cpu_avro_insert", cpu(b, n))
                    log(f"[{m}] INSERT, Avro via registry {rate:,.0f} rows/s, worker CPU "
                        f"{raw[m]['cpu_avro_insert'][-1]:.1f} s per million rows")
                if "peer" not in args.skip:
                    for pm, topic in (("insert", t_cins), ("upsert", t_cmerge)):
                        put(m, f"peer_{pm}", b.peer(topic, n, pm))
                        put(m, f"cpu_peer_{pm}", cpu(b, n))
                        log(f"[{m}] peer {pm} {raw[m][f'peer_{pm}'][-1]:,.0f} rows/s, JVM CPU "
                            f"{raw[m][f'cpu_peer_{pm}'][-1]:.1f} s per million rows")
                if "latency" not in args.skip:
                    for iv in args.latency_intervals:
                        t_lat = kafka.create_topic(b.name("bench_latency"), PARTITIONS)
                        lat = b.latency(ctl, source(m, t_lat), t_lat, iv)
                        lat["interval"] = iv
                        extra["latency"][m].append(lat)
                        put(m, f"lat_p50_{iv}", lat["p50"])
                        put(m, f"lat_p99_{iv}", lat["p99"])
                        log(f"[{m}] latency at MINIMAL_INTERVAL {iv}: p50 {lat['p50']:.0f} ms, p99 "
                            f"{lat['p99']:.0f} ms (written p99 {lat['written_p99']:.0f} ms) at "
                            f"{lat['rate']:,.0f} msg/s")
                if "memory" not in args.skip and m == first:
                    # Memory does not depend on the server's durability: once.
                    for parts, src in s_rss.items():
                        rate, hwm = b.server_drain(ctl, src, t_rss[parts], rn, "INSERT", parts=parts)
                        put(m, f"rss_{parts}", hwm)
                        log(f"[{m}] worker VmHWM {hwm / 1024:.1f} MB on a {rn:,}-row backlog, {parts} "
                            f"partitions ({rate:,.0f} rows/s)")
                    rss, hwm = b.controller_rss(run)
                    put(m, "controller_rss_kb", rss)
                    put(m, "controller_hwm_kb", hwm)
                    log(f"controller VmRSS {rss / 1024:.1f} MB (VmHWM {hwm / 1024:.1f} MB)")

        for run in range(1, (args.tasks_runs if args.tasks else 0) + 1):
            log(f"--- tasks matrix, run {run} of {args.tasks_runs}: tasks {args.tasks}")
            extra["tasks"] += bench.tasks_matrix(ctl, msources, mtopics, tm, args.tasks)
        ok = True
    except KeyboardInterrupt:
        log("interrupted: stopping everything this run started")
    finally:
        try:
            ver = versions(stack) if stack.pg is not None else {}
        except Exception:
            ver = {}
        stack.close()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if not ok:
        sys.exit(1)

    rows = build_table(raw, args, modes)
    mach = machine()
    mach["loadavg_1m_start_end"] = f"{load_start[0]:.1f} / {os.getloadavg()[0]:.1f}"
    settings = {"messages": n, "partitions": PARTITIONS, "runs": args.runs, "pg": modes,
                "max_row": args.max_row or "default", "minimal_interval_ms": args.interval,
                "latency_intervals_ms": args.latency_intervals,
                "latency_rate": args.latency_rate, "latency_seconds": args.latency_seconds,
                "rss_messages": args.rss_messages, "rss_partitions": args.rss_partitions,
                "connect_tasks": args.connect_tasks, "peer_warmup": min(n, args.peer_warmup),
                "skipped": sorted(args.skip), "tasks": args.tasks,
                "tasks_messages": args.tasks_messages if args.tasks else None,
                "tasks_partitions": TASKS_PARTITIONS if args.tasks else None}
    print()
    print(f"Streaming Server benchmark: {n:,} messages, {PARTITIONS} partitions, median of "
          f"{args.runs} run(s); columns: PostgreSQL {' and '.join(modes)}")
    for m in modes:
        s = pgset.get(m, {})
        what = ("a stock install's durability, shared_buffers raised from the stock 128MB"
                if m == "durable" else "the test harness's fast server, durability off")
        print(f"PostgreSQL {m} ({what}): fsync {s.get('fsync')}, synchronous_commit "
              f"{s.get('synchronous_commit')}, full_page_writes {s.get('full_page_writes')}, "
              f"shared_buffers {s.get('shared_buffers')}, max_wal_size {s.get('max_wal_size')}, "
              f"checkpoint_timeout {s.get('checkpoint_timeout')}")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in mach.items()))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()))
    print("x limit: over COPY (INSERT rows) or COPY into a temp table + ON CONFLICT (MERGE rows); "
          "x peer: over Kafka Connect + Debezium JDBC (rates), or worker CPU over the peer JVM's "
          "(CPU rows); both medians of per-run ratios")
    print()
    print_table(rows, modes)
    lat_w = [x for x in extra["latency"][first]]
    for iv in args.latency_intervals:
        ws = [x["written_p99"] for x in lat_w if x["interval"] == iv]
        rs = [x["rate"] for x in lat_w if x["interval"] == iv]
        if ws:
            print(f"\nlatency at MINIMAL_INTERVAL {iv} ({first}): p99 to the row's write "
                  f"(clock_timestamp(), before commit) {median(ws):.0f} ms; producer rate achieved "
                  f"{median(rs):,.0f} msg/s")
    if extra["tasks"]:
        print_tasks(extra["tasks"], args, mach)
    doc = {"settings": settings, "postgresql": pgset, "machine": mach, "versions": ver,
           "figures": rows, "runs": raw, "latency_runs": extra["latency"],
           "worker_hwm_kb": extra["worker_hwm_kb"], "tasks": extra["tasks"]}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
