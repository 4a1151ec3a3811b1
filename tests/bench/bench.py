#!/usr/bin/python3
"""The Streaming Server benchmark: every figure of issue 6 side by side, in one
run, on the same machine and data.

    tests/bench/run.sh [--messages 2000000] [--runs 3] [--latency-seconds 60] ...

Starts PostgreSQL, Kafka (tests/harness/pg.sh, kafka.sh) and a Kafka Connect
standalone worker with Debezium's JDBC sink (tests/harness/connect.sh), produces
the messages once, then measures (each figure the median of --runs runs):

  1 limit INSERT      psql \\copy of the same rows from a file into an identical table
  2 INSERT            a Streaming Server INSERT job on the full backlog
  2b INSERT, Avro     the same rows as Avro through a schema registry (tests/bench/avro_bench.py)
  3 limit MERGE       psql: COPY into a temp table + INSERT ... ON CONFLICT DO UPDATE
  4 MERGE             a Streaming Server MERGE job on the same data
  5 peer              Kafka Connect + Debezium JDBC sink, insert and upsert modes
  6 latency           p50 / p99 from Kafka timestamp to commit, paced producer
  7 memory            worker peak RSS (INSERT drain); controller RSS, 100 jobs / 10 running
  8 tasks (--tasks)   INSERT and MERGE with 1, 2, 4 tasks on 8 partitions beside the peer at
                      tasks.max 1, 2, 4, with the CPU seconds per million rows of the workers
                      and of their PostgreSQL backends (off unless asked for)

See tests/bench/README.md for the method of each figure.  Prints one table and
writes the same as JSON (--out).  Every process it starts is stopped at the
end, on error and on Ctrl-C too.
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
TASKS_PARTITIONS = 8  # the tasks matrix (figure 8)
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
        self.pg = None
        self.kafka = None
        self.connect_url = None
        self.connect_pid = None
        self.controllers = []

    def harness(self, script, verb, d, env=None, timeout=900):
        p = subprocess.run([str(HARNESS / script), verb, str(d)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
        if p.returncode != 0:
            raise RuntimeError(f"{script} {verb} failed ({p.returncode}):\n{p.stderr}")
        return parse_env(p.stdout)

    def start_backends(self):
        # Kafka (slow: a JVM) and PostgreSQL at once.
        kp = subprocess.Popen([str(HARNESS / "kafka.sh"), "start", str(self.work / "kafka")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
        try:
            env = self.harness("pg.sh", "start", self.work / "pg")
            self.pg = PG.from_env(env)
            # Commit timestamps give the exact commit time of each row for the
            # latency figure; the setting needs a restart.
            self.pg.execute("ALTER SYSTEM SET track_commit_timestamp = on")
            self.pg.close()
            self.harness("pg.sh", "stop", self.work / "pg")
            self.pg = PG.from_env(self.harness("pg.sh", "start", self.work / "pg"))
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
        if self.pg is not None:
            self.pg.close()
        if self.kafka is not None:
            self.kafka.close()
        for script, d, verb in (("registry.sh", "registry", "stop"), ("connect.sh", "connect", "stop"),
                                ("kafka.sh", "kafka", "stop"), ("pg.sh", "pg", "destroy")):
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
    def __init__(self, args, stack):
        self.args = args
        self.s = stack
        self.pg = stack.pg
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
                   tasks=1, consistency=None):
        """A professional-mode job; defaults=True leaves COMMIT out (the
        product's MAX_ROW and MINIMAL_INTERVAL) instead of --max-row / --interval."""
        value = {"COLUMNS": cols(*COLUMNS), "FORMAT": "delimited",
                 "DELIMITED_OPTION": {"DELIMITER": "|"}}
        output = {}
        if mode == "MERGE":
            output = {"MATCH_COLUMNS": ["column_1"],
                      "UPDATE_COLUMNS": [c for c, _ in COLUMNS[1:]]}
        if mapping:
            output["MAPPING"] = mapping
        commit = {"MINIMAL_INTERVAL": self.args.interval}
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
    def latency(self, ctl, source_id, topic):
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
        jid = self.new_job(ctl, source_id, self.job_config(topic, table, meta=True, mapping=mapping),
                           "ss_latency")
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


def build_table(r, args, raw):
    """The rows of the report: figure, value (the median of the runs), unit,
    ratio to the limit and to the peer (medians of the per-run ratios),
    target, pass (judged on those ratios)."""
    rows = []

    def add(key, figure, value, unit, limit=None, peer=None, target=None, ok=None):
        rows.append({"key": key, "figure": figure, "value": value, "unit": unit,
                     "ratio_to_limit": paired_ratio(raw, key, limit) if limit else None,
                     "ratio_to_peer": paired_ratio(raw, key, peer) if peer else None,
                     "target": target, "pass": ok})

    si, sm = r.get("ss_insert"), r.get("ss_merge")

    def judged(key, limit, peer):
        x, y = paired_ratio(raw, key, limit), paired_ratio(raw, key, peer)
        return None if x is None or y is None else (x >= 0.7 and y >= 5)
    add("limit_insert", "1 limit INSERT (psql COPY)", r.get("limit_insert"), "rows/s",
        "limit_insert", "peer_insert")
    add("ss_insert", "2 Streaming Server INSERT", si, "rows/s", "limit_insert", "peer_insert",
        ">= 0.7 limit, >= 5x peer", judged("ss_insert", "limit_insert", "peer_insert"))
    add("ss_avro_insert", "2b Streaming Server INSERT, Avro via registry", r.get("ss_avro_insert"),
        "rows/s", "limit_insert", "peer_insert")
    add("limit_merge", "3 limit MERGE (COPY + ON CONFLICT)", r.get("limit_merge"), "rows/s",
        "limit_merge", "peer_upsert")
    add("ss_merge", "4 Streaming Server MERGE", sm, "rows/s", "limit_merge", "peer_upsert",
        ">= 0.7 limit, >= 5x peer", judged("ss_merge", "limit_merge", "peer_upsert"))
    add("peer_insert", "5a peer: Connect + Debezium JDBC, insert", r.get("peer_insert"), "rows/s",
        "limit_insert", "peer_insert")
    add("peer_upsert", "5b peer: Connect + Debezium JDBC, upsert", r.get("peer_upsert"), "rows/s",
        "limit_merge", "peer_upsert")
    bound = args.interval + 250
    p50, p99 = r.get("latency_p50_ms"), r.get("latency_p99_ms")
    add("latency_p50_ms", f"6 latency p50 at {args.latency_rate}/s (Kafka ts -> commit)", p50, "ms")
    add("latency_p99_ms", f"6 latency p99 at {args.latency_rate}/s (Kafka ts -> commit)", p99, "ms",
        target=f"<= {bound} ms (MINIMAL_INTERVAL + 250)", ok=None if p99 is None else p99 <= bound)
    w = r.get("worker_peak_rss_mb")
    add("worker_peak_rss_mb", "7 worker peak RSS (VmHWM), INSERT drain above", w, "MB",
        target="<= 100 MB", ok=None if w is None else w <= 100)
    w = r.get("worker_default_peak_rss_mb")
    add("worker_default_peak_rss_mb", "7 worker peak RSS, INSERT drain, default COMMIT", w, "MB",
        target="<= 100 MB", ok=None if w is None else w <= 100)
    c = r.get("controller_rss_mb")
    add("controller_rss_mb", "7 controller RSS, 100 jobs / 10 running", c, "MB",
        target="<= 30 MB", ok=None if c is None else c <= 30)
    return rows


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v >= 1000:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def print_table(rows, out=sys.stdout):
    head = ("figure", "value", "unit", "x limit", "x peer", "target", "pass")
    cells = [(r["figure"], fmt(r["value"]), r["unit"], fmt(r["ratio_to_limit"]) if r["ratio_to_limit"] is not None else "-",
              fmt(r["ratio_to_peer"]) if r["ratio_to_peer"] is not None else "-", r["target"] or "",
              "" if r["pass"] is None and not r["target"] else
              ("-" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL"))) for r in rows]
    # Ratios print with 2 decimals.
    cells = [(a, b, c, f"{r['ratio_to_limit']:.2f}" if r["ratio_to_limit"] is not None else "-",
              f"{r['ratio_to_peer']:.2f}" if r["ratio_to_peer"] is not None else "-", f, g)
             for r, (a, b, c, d, e, f, g) in zip(rows, cells)]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *cells)]
    line = " | ".join(h.ljust(w) for h, w in zip(head, widths))
    print(line, file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for c in cells:
        print(" | ".join(str(x).ljust(w) if i in (0, 2, 5) else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(c, widths))), file=out)


def print_tasks(rows, args, mach, out=sys.stdout):
    """The tasks matrix (figure 8), then a model of rows/s against tasks and
    cores from the measured CPU per row: a task is a pipeline of a worker and
    its backend working in turn, so one task goes at most 1 / (w + b) rows/s
    (w, b: CPU seconds per row of the worker and of the backend), T tasks at
    most T / (w + b), and C cores at most C / (w + b); the broker, WAL and
    checkpoints are left out, so the model is a ceiling."""
    print(f"\n8 tasks matrix: {args.tasks_messages:,} messages on {TASKS_PARTITIONS} partitions, "
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

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2_000_000, help="rows per data set (default 2000000)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    ap.add_argument("--max-row", type=int, default=10000,
                    help="COMMIT.MAX_ROW of the jobs, and batch.size / max.poll.records of the peer "
                         "(default 10000; 0 = the jobs' default, 500)")
    ap.add_argument("--interval", type=int, default=1000, help="COMMIT.MINIMAL_INTERVAL, ms (default 1000)")
    ap.add_argument("--latency-seconds", type=float, default=60)
    ap.add_argument("--latency-rate", type=int, default=20000, help="messages/s (default 20000)")
    ap.add_argument("--connect-tasks", type=int, default=1,
                    help="tasks.max of the peer connector (default 1: one process, one connection, "
                         "like one job's worker)")
    ap.add_argument("--peer-warmup", type=int, default=200000,
                    help="rows of the peer's warm-up insert and upsert before run 1, not counted "
                         "(default 200000, at most --messages; 0 = none)")
    ap.add_argument("--tasks", default=os.environ.get("STREAMSERVER_BENCH_TASKS", ""),
                    help="task counts of the tasks matrix, e.g. 1,2,4: INSERT and MERGE on "
                         f"{TASKS_PARTITIONS} partitions beside the peer at the same tasks.max "
                         "(default: none, or $STREAMSERVER_BENCH_TASKS)")
    ap.add_argument("--tasks-messages", type=int, default=0,
                    help="rows per data set of the tasks matrix (default: --messages)")
    ap.add_argument("--tasks-runs", type=int, default=1,
                    help="runs of the tasks matrix; every run is printed (default 1)")
    ap.add_argument("--skip", default="", help="comma-separated figures to leave out: "
                    "limit,insert,avro,merge,peer,latency,memory")
    ap.add_argument("--out", default="bench-results.json")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    a = ap.parse_args()
    if a.messages < 2 or a.messages % 2:
        ap.error("--messages must be an even number >= 2")
    if a.peer_warmup % 2:
        ap.error("--peer-warmup must be even")
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    a.skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    try:
        a.tasks = [int(x) for x in a.tasks.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--tasks: a comma-separated list of task counts, not {a.tasks!r}")
    if any(t < 1 or t > 64 for t in a.tasks):
        ap.error("--tasks: every count must be 1..64")
    a.tasks_messages = a.tasks_messages or a.messages
    if a.tasks_messages < 2 or a.tasks_messages % 2:
        ap.error("--tasks-messages must be an even number >= 2")
    return a


def on_sigterm(_sig, _frame):
    raise KeyboardInterrupt


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
    raw = {"limit_insert": [], "ss_insert": [], "ss_avro_insert": [], "limit_merge": [], "ss_merge": [],
           "peer_insert": [], "peer_upsert": [], "latency": [], "worker_hwm_kb": [],
           "insert_default_rate": [], "worker_default_hwm_kb": [],
           "controller_rss_kb": [], "controller_hwm_kb": [], "tasks": []}
    result = {}
    ok = False
    try:
        log(f"starting PostgreSQL and Kafka in {work}")
        stack.start_backends()
        if "peer" not in args.skip:
            log("starting Kafka Connect")
            stack.start_connect()
        bench = Bench(args, stack)
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
        svc = ctl.call("POST", "/services", {"name": "bench", "spec_cu": 16,
                                             "database_host": stack.pg.host,
                                             "database_port": stack.pg.port})["id"]

        def source(topic):
            return ctl.call("POST", "/sources", {"service_id": svc, "name": topic,
                                                 "brokers": kafka.bootstrap, "topic": topic,
                                                 "format": "delimited", "delimiter": "|"})["id"]
        s_ins, s_merge = source(t_ins), source(t_merge)
        s_avro = source(t_avro) if "avro" not in args.skip else None
        msources = {m: source(mtopics[m]) for m in ("INSERT", "MERGE") if m in mtopics}

        for run in range(1, args.runs + 1):
            log(f"--- run {run} of {args.runs}")
            if "limit" not in args.skip:
                raw["limit_insert"].append(bench.limit_insert(ins_file, n))
                log(f"limit INSERT {raw['limit_insert'][-1]:,.0f} rows/s")
                raw["limit_merge"].append(bench.limit_merge(merge_files, n))
                log(f"limit MERGE {raw['limit_merge'][-1]:,.0f} rows/s")
            if "insert" not in args.skip:
                rate, hwm = bench.server_drain(ctl, s_ins, t_ins, n, "INSERT")
                raw["ss_insert"].append(rate)
                raw["worker_hwm_kb"].append(hwm)
                log(f"Streaming Server INSERT {rate:,.0f} rows/s, worker VmHWM {hwm / 1024:.1f} MB")
            if "avro" not in args.skip:
                rate, _ = avro_bench.drain(bench, ctl, s_avro, t_avro, n, registry_url, COLUMNS)
                raw["ss_avro_insert"].append(rate)
                log(f"Streaming Server INSERT, Avro via registry {rate:,.0f} rows/s")
            if "merge" not in args.skip:
                rate, _ = bench.server_drain(ctl, s_merge, t_merge, n, "MERGE")
                raw["ss_merge"].append(rate)
                log(f"Streaming Server MERGE {rate:,.0f} rows/s")
            if "peer" not in args.skip:
                raw["peer_insert"].append(bench.peer(t_cins, n, "insert"))
                log(f"peer insert {raw['peer_insert'][-1]:,.0f} rows/s")
                raw["peer_upsert"].append(bench.peer(t_cmerge, n, "upsert"))
                log(f"peer upsert {raw['peer_upsert'][-1]:,.0f} rows/s")
            if "latency" not in args.skip:
                t_lat = kafka.create_topic(bench.name("bench_latency"), PARTITIONS)
                lat = bench.latency(ctl, source(t_lat), t_lat)
                raw["latency"].append(lat)
                log(f"latency p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms "
                    f"(written p99 {lat['written_p99']:.0f} ms) at {lat['rate']:,.0f} msg/s")
            if "memory" not in args.skip:
                rate, hwm = bench.server_drain(ctl, s_ins, t_ins, n, "INSERT", defaults=True)
                raw["insert_default_rate"].append(rate)
                raw["worker_default_hwm_kb"].append(hwm)
                log(f"INSERT with default COMMIT settings {rate:,.0f} rows/s, worker VmHWM {hwm / 1024:.1f} MB")
                rss, hwm = bench.controller_rss(run)
                raw["controller_rss_kb"].append(rss)
                raw["controller_hwm_kb"].append(hwm)
                log(f"controller VmRSS {rss / 1024:.1f} MB (VmHWM {hwm / 1024:.1f} MB)")

        for run in range(1, (args.tasks_runs if args.tasks else 0) + 1):
            log(f"--- tasks matrix, run {run} of {args.tasks_runs}: tasks {args.tasks}")
            raw["tasks"] += bench.tasks_matrix(ctl, msources, mtopics, tm, args.tasks)

        for k in ("limit_insert", "ss_insert", "ss_avro_insert", "limit_merge", "ss_merge", "peer_insert", "peer_upsert"):
            result[k] = median(raw[k])
        if raw["latency"]:
            result["latency_p50_ms"] = median([x["p50"] for x in raw["latency"]])
            result["latency_p99_ms"] = median([x["p99"] for x in raw["latency"]])
            result["latency_written_p99_ms"] = median([x["written_p99"] for x in raw["latency"]])
            result["latency_rate_achieved"] = median([x["rate"] for x in raw["latency"]])
        if raw["worker_hwm_kb"]:
            result["worker_peak_rss_mb"] = round(median(raw["worker_hwm_kb"]) / 1024, 1)
        if raw["worker_default_hwm_kb"]:
            result["worker_default_peak_rss_mb"] = round(median(raw["worker_default_hwm_kb"]) / 1024, 1)
            result["insert_default_rate"] = median(raw["insert_default_rate"])
        if raw["controller_rss_kb"]:
            result["controller_rss_mb"] = round(median(raw["controller_rss_kb"]) / 1024, 1)
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

    rows = build_table(result, args, raw)
    mach = machine()
    settings = {"messages": n, "partitions": PARTITIONS, "runs": args.runs,
                "max_row": args.max_row or "default", "minimal_interval_ms": args.interval,
                "latency_rate": args.latency_rate, "latency_seconds": args.latency_seconds,
                "connect_tasks": args.connect_tasks, "peer_warmup": min(n, args.peer_warmup),
                "skipped": sorted(args.skip), "tasks": args.tasks,
                "tasks_messages": args.tasks_messages if args.tasks else None,
                "tasks_partitions": TASKS_PARTITIONS if args.tasks else None}
    print()
    print(f"Streaming Server benchmark: {n:,} messages, {PARTITIONS} partitions, median of "
          f"{args.runs} run(s), MAX_ROW {settings['max_row']}, MINIMAL_INTERVAL {args.interval} ms")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in mach.items()))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()))
    print()
    print_table(rows)
    if result.get("insert_default_rate"):
        print(f"\nthe worker peak RSS with default COMMIT settings comes from an INSERT drain of "
              f"its own, at {result['insert_default_rate']:,.0f} rows/s")
    if "latency_written_p99_ms" in result:
        print(f"\nlatency: p99 to the row's write (clock_timestamp(), before commit) "
              f"{result['latency_written_p99_ms']:.0f} ms; producer rate achieved "
              f"{result['latency_rate_achieved']:,.0f} msg/s")
    if raw["tasks"]:
        print_tasks(raw["tasks"], args, mach)
    doc = {"settings": settings, "machine": mach, "versions": ver, "figures": rows,
           "runs": {k: v for k, v in raw.items() if v}}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
