"""Helpers for the end-to-end tests: PostgreSQL and Kafka clients, the REST
calls of doc/API.md, and polling.

Run with Debian's /usr/bin/python3 (python3-pytest, python3-psycopg2,
python3-confluent-kafka, python3-requests; scripts/install-deps.sh).
"""
import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

try:
    import psycopg2
    import requests
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:  # a missing dependency is a failure, never a skip
    raise ImportError(
        f"{e}: run the end-to-end tests with /usr/bin/python3 after scripts/install-deps.sh "
        "(python3-psycopg2, python3-confluent-kafka, python3-requests)") from e

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "harness"
API = "/api/v1"

# Generous limits: the machine has 2 cores and runs a broker, a database, the
# controller, its workers and the test at once.  Polls are fast, so a passing
# test does not wait for them.
ROWS_TIMEOUT = 120.0
STATE_TIMEOUT = 60.0

# The destination table of the seed's example.
TABLE5 = ("column_1 varchar(32), column_2 bigint, column_3 numeric, "
          "column_4 varchar(32), column_5 varchar(32)")
COLUMNS5 = [("column_1", "varchar(32)"), ("column_2", "bigint"), ("column_3", "numeric"),
            ("column_4", "varchar(32)"), ("column_5", "varchar(32)")]


# Every secret the suite uses (the database password, API tokens, SASL
# passwords, a client key...): each fixture or module that makes one
# registers it, and conftest's Server checks every answer it gets, its log
# and its workers' argv and environment against all of them (the suite-wide
# sweep; test_security.py checks more places for its own).
SECRETS = set()


def register_secret(value):
    """Adds a secret to the sweep; for a PEM text, each line of its base64
    (whatever leaked of it would show one)."""
    if not value:
        return value
    if "-----BEGIN" in value:
        for line in value.splitlines():
            if len(line) >= 16 and not line.startswith("-----"):
                SECRETS.add(line)
    elif len(value) >= 8:  # shorter could turn up by chance
        SECRETS.add(value)
    return value


def secrets_in(data):
    """The registered secrets found in data (bytes or str), abbreviated:
    never print a secret whole."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    return [s[:3] + "..." for s in SECRETS if s.encode() in data]


def unique(prefix):
    """A name no other test (nor an earlier run against the same database)
    uses: valid as a topic, a table, a job, a group."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout=STATE_TIMEOUT, interval=0.1, what=None,
             retry_on=(requests.ConnectionError, requests.Timeout, psycopg2.OperationalError)):
    """Polls fn() until it returns something truthy and returns that.  Fails
    with the last value seen (and the last transient error) after timeout s."""
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except retry_on as e:
            last_exc = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g}s waiting for {what or getattr(fn, '__name__', fn)}"
            msg += f"; last value: {last!r}"
            if last_exc is not None:
                msg += f"; last error: {last_exc!r}"
            raise AssertionError(msg)
        time.sleep(interval)


def wait_equal(fn, expected, timeout=STATE_TIMEOUT, interval=0.1, what=None):
    """Polls fn() until it equals expected; fails showing the last value."""
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = fn()
            last_exc = None
            if last == expected:
                return last
        except (requests.ConnectionError, requests.Timeout, psycopg2.OperationalError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            msg = (f"timed out after {timeout:g}s waiting for {what or getattr(fn, '__name__', fn)}"
                   f"\n  expected: {expected!r}\n  last:     {last!r}")
            if last_exc is not None:
                msg += f"\n  last error: {last_exc!r}"
            raise AssertionError(msg)
        time.sleep(interval)


def pid_alive(pid):
    """True if pid runs (a zombie counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --------------------------------------------------------------------- harness

def harness(script, verb, directory, timeout, *options):
    """Runs tests/harness/SCRIPT VERB DIR [OPTIONS]; returns its KEY=VALUE lines as a dict."""
    p = subprocess.run([str(HARNESS / script), verb, str(directory), *options], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"{script} {verb} {directory} failed ({p.returncode}):\n{p.stderr}")
    return parse_env(p.stdout)


def parse_env(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


# ------------------------------------------------------------------ PostgreSQL

class PG:
    """The test database: connection values and a few queries."""

    def __init__(self, uri, host, port, user, password, dbname):
        self.uri, self.host, self.port = uri, host, int(port)
        self.user, self.password, self.dbname = user, password, dbname
        self._conn = None

    @classmethod
    def from_env(cls, env):
        return cls(env["PGURI"], env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGPASSWORD"],
                   env["PGDATABASE"])

    @classmethod
    def from_uri(cls, uri):
        from urllib.parse import unquote, urlparse
        u = urlparse(uri)
        return cls(uri, u.hostname, u.port or 5432, unquote(u.username or ""),
                   unquote(u.password or ""), u.path.lstrip("/"))

    def connect(self):
        conn = psycopg2.connect(self.uri, connect_timeout=10)
        conn.autocommit = True
        return conn

    def _cursor(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn.cursor()

    def query(self, sql, args=None):
        try:
            with self._cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        except psycopg2.OperationalError:
            self.close()
            raise

    def scalar(self, sql, args=None):
        rows = self.query(sql, args)
        return rows[0][0] if rows else None

    def execute(self, sql, args=None):
        self.query(sql, args)

    def create_table(self, name, columns_sql, schema="public"):
        self.execute(f'CREATE TABLE "{schema}"."{name}" ({columns_sql})')
        return name

    def count(self, table, schema="public"):
        return self.scalar(f'SELECT count(*) FROM "{schema}"."{table}"')

    def count_distinct(self, table, column="column_1", schema="public"):
        return self.scalar(f'SELECT count(DISTINCT "{column}") FROM "{schema}"."{table}"')

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None


# ----------------------------------------------------------------------- Kafka

class Kafka:
    """The test broker: topics and a fast producer."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def close(self):
        self.admin = None  # librdkafka handles go with their last reference

    def create_topic(self, name, partitions=1):
        futures = self.admin.create_topics([NewTopic(name, num_partitions=partitions,
                                                     replication_factor=1)])
        futures[name].result(timeout=30)

        def ready():
            md = self.admin.list_topics(topic=name, timeout=5)
            t = md.topics.get(name)
            return (t is not None and t.error is None and len(t.partitions) == partitions
                    and all(p.leader >= 0 for p in t.partitions.values()))

        wait_for(ready, 30, 0.1, f"topic {name} with {partitions} partitions to have leaders",
                 retry_on=(KafkaException,))
        return name

    def produce(self, topic, values, partitions=None):
        """Sends every value (str or bytes); value i goes to partition
        i % partitions when partitions is given.  Returns how many were
        delivered; fails unless all were."""
        errors = []
        delivered = [0]

        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)
            else:
                delivered[0] += 1

        p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20, "acks": "all",
                      "queue.buffering.max.messages": 500000,
                      "queue.buffering.max.kbytes": 262144,
                      "batch.num.messages": 10000, "enable.idempotence": True,
                      "log_level": 3})
        n = 0
        for i, v in enumerate(values):
            if isinstance(v, str):
                v = v.encode()
            kw = {"partition": i % partitions} if partitions else {}
            while True:
                try:
                    p.produce(topic, v, on_delivery=on_delivery, **kw)
                    break
                except BufferError:
                    p.poll(0.05)
            n += 1
            if n % 10000 == 0:
                p.poll(0)
        left = p.flush(60)
        assert left == 0, f"{left} of {n} messages to {topic} not delivered after 60 s"
        assert not errors, f"{len(errors)} of {n} messages to {topic} failed: {errors[:3]}"
        assert delivered[0] == n, f"{delivered[0]} of {n} messages to {topic} delivered"
        return n


def delimited_messages(start, stop, delimiter="|"):
    """The seed's five columns: k{i}|{i}|{i}.5|a{i}|b{i}."""
    d = delimiter
    return [f"k{i}{d}{i}{d}{i}.5{d}a{i}{d}b{i}" for i in range(start, stop)]


def expected_row(i):
    return (f"k{i}", i, Decimal(f"{i}.5"), f"a{i}", f"b{i}")


def check_delimited_table(pg, table, start, stop, schema="public"):
    """Asserts the table holds exactly the rows of delimited_messages(start, stop)."""
    n = stop - start
    qt = f'"{schema}"."{table}"'
    total, distinct, s2, s3, lo, hi = pg.query(
        f'SELECT count(*), count(DISTINCT column_1), sum(column_2), sum(column_3), '
        f'min(column_2), max(column_2) FROM {qt}')[0]
    dups = total - distinct
    assert distinct == n, f"{table}: {distinct} distinct keys, expected {n} (rows {total})"
    assert total == n, f"{table}: {total} rows for {n} messages: {dups} duplicates"
    assert (lo, hi) == (start, stop - 1), f"{table}: column_2 spans {lo}..{hi}"
    expect2 = sum(range(start, stop))
    assert s2 == expect2, f"{table}: sum(column_2) = {s2}, expected {expect2}"
    assert s3 == Decimal(expect2) + Decimal(n) / 2, f"{table}: sum(column_3) = {s3}"
    bad = pg.query(
        f"SELECT column_1, column_2, column_3, column_4, column_5 FROM {qt} "
        f"WHERE column_1 IS DISTINCT FROM 'k' || column_2 "
        f"OR column_3 IS DISTINCT FROM column_2 + 0.5 "
        f"OR column_4 IS DISTINCT FROM 'a' || column_2 "
        f"OR column_5 IS DISTINCT FROM 'b' || column_2 LIMIT 5")
    assert not bad, f"{table}: rows whose columns do not match their message: {bad}"
    for i in (start, (start + stop) // 2, stop - 1):
        rows = pg.query(f'SELECT column_1, column_2, column_3, column_4, column_5 '
                        f'FROM {qt} WHERE column_1 = %s', (f"k{i}",))
        assert rows == [expected_row(i)], f"{table}: row k{i} is {rows}"


# ------------------------------------------------------------------------ REST

def error_of(resp, status, code, field=None):
    """Asserts resp is the API's error body with that status, code (and
    field); returns the error object."""
    assert resp.status_code == status, (
        f"{resp.request.method} {resp.request.path_url}: HTTP {resp.status_code}, "
        f"expected {status}: {resp.text[:1000]}")
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.text[:500]!r}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"no error object in {body!r}"
    err = body["error"]
    assert err.get("code") == code, f"error code {err.get('code')!r}, expected {code!r}: {err}"
    assert isinstance(err.get("message"), str) and err["message"], f"no message: {err}"
    if field is not None:
        assert err.get("field") == field, f"error field {err.get('field')!r}, expected {field!r}: {err}"
    return err


def create_service(srv, pg, name=None, **fields):
    body = {"name": name or unique("svc"), "description": "e2e",
            "database_host": pg.host, "database_port": pg.port}
    body.update(fields)
    return srv.call("POST", "/services", body, expect=201)


def create_source(srv, service_id, kafka, topic, name=None, **fields):
    body = {"service_id": service_id, "name": name or unique("src"), "type": "kafka",
            "brokers": kafka.bootstrap, "topic": topic, "format": "delimited", "delimiter": "|"}
    body.update(fields)
    return srv.call("POST", "/sources", body, expect=201)


def wizard_job(source_id, pg, table, columns, name=None, **fields):
    """The body of a wizard-mode job: one field per message column, same name
    in the table, role none."""
    body = {"source_id": source_id, "name": name or unique("job"), "mode": "wizard",
            "description": "e2e wizard job", "group_name": unique("grp"),
            "fallback_offset": "earliest", "consistency": "ATLEAST",
            "database": pg.dbname, "schema": "public", "table": table,
            "account": pg.user, "password": pg.password, "write_mode": "INSERT", "error_limit": 0,
            "fields": [{"source": c, "dest": c, "role": "none"} for c in columns]}
    body.update(fields)
    return body


def professional_job(source_id, config, name=None, **fields):
    body = {"source_id": source_id, "name": name or unique("job"), "mode": "professional",
            "description": "e2e professional job", "config": config}
    body.update(fields)
    return body


def create_job(srv, body):
    job = srv.call("POST", "/jobs", body, expect=201)
    assert job["name"] == body["name"] and job["source_id"] == body["source_id"], job
    assert job["state"] == "stopped" and job["desired_state"] == "stopped", \
        f"a new job must be created stopped: {job}"
    return job


def start_job(srv, job_id):
    st = srv.call("POST", f"/jobs/{job_id}/start", None, expect=202)
    assert st["id"] == job_id and st["desired_state"] == "running", st
    return st


def stop_job(srv, job_id):
    st = srv.call("POST", f"/jobs/{job_id}/stop", None, expect=202)
    assert st["id"] == job_id and st["desired_state"] == "stopped", st
    return st


def job_status(srv, job_id):
    st = srv.call("GET", f"/jobs/{job_id}/status", expect=200)
    if st.get("pid"):
        srv.worker_pids.add(st["pid"])
    return st


STATUS_KEYS = {"id", "name", "state", "desired_state", "pid", "started_at", "restarts",
               "messages_consumed", "rows_written", "rows_rejected", "last_error"}


def wait_state(srv, job_id, state, timeout=STATE_TIMEOUT, pred=None):
    """Waits until the job's status has that state (and pred(status) holds);
    fails at once if the job fails when another state was awaited."""
    seen = []

    def check():
        st = job_status(srv, job_id)
        if not seen or seen[-1] != st["state"]:
            seen.append(st["state"])
        if st["state"] == "failed" and state != "failed":
            raise AssertionError(f"job {job_id} failed while waiting for {state!r}: "
                                 f"last_error={st.get('last_error')!r}; status {st}")
        return st if st["state"] == state and (pred is None or pred(st)) else None

    try:
        return wait_for(check, timeout, 0.1, f"job {job_id} to be {state}")
    except AssertionError as e:
        raise AssertionError(f"{e}\n  states seen: {seen}") from None


def wait_rows(pg, table, n, srv=None, job_id=None, timeout=ROWS_TIMEOUT, column="column_1",
              schema="public"):
    """Waits until the table has n distinct keys, then checks that no extra
    rows arrive; on timeout the message carries the job's status."""
    box = {}

    def check():
        box["distinct"] = pg.count_distinct(table, column, schema)
        return box["distinct"] >= n

    try:
        wait_for(check, timeout, 0.2, f"{n} rows in {table}")
    except AssertionError as e:
        extra = ""
        if srv is not None and job_id is not None:
            try:
                extra = f"\n  job status: {job_status(srv, job_id)}"
            except Exception as se:  # the controller itself may be the problem
                extra = f"\n  job status unavailable: {se!r}"
        raise AssertionError(f"{e}\n  rows: {pg.count(table, schema)}, distinct keys: "
                             f"{box.get('distinct')}{extra}") from None
    time.sleep(0.5)  # a duplicate written late would show now
    return pg.count(table, schema)


def signal_name(sig):
    return signal.Signals(sig).name


# ------------------------------------------------------- YAML of the job tests
#
# The job tests (test_formats.py, test_modes.py, test_validate.py) write their
# professional-mode YAML from Python dicts.  PyYAML is not among the tests'
# dependencies, so a small block-style emitter does it; keys keep the order
# they are written in.


class Raw(str):
    """A YAML scalar written as it is (e.g. the seed's `PARTITIONS: (0,2)`)."""


_PLAIN = re.compile(r"[A-Za-z0-9_./()$+-](?:[A-Za-z0-9_ ./(),:$+*=%-]*[A-Za-z0-9_./()$+*%-])?")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_scalar(v):
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and ": " not in s and s.lower() not in _YAML_WORDS:
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Block-style YAML of nested dicts, lists and scalars (None values are
    left out)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if v is None:
                continue
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 2)}")
            else:
                out.append(f"{pad}{k}: {yaml_scalar(v)}\n")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                inner = to_yaml(item, indent + 2)
                out.append(f"{pad}- {inner[indent + 2:]}")
            else:
                out.append(f"{pad}- {yaml_scalar(item)}\n")
    else:
        out.append(f"{pad}{yaml_scalar(obj)}\n")
    return "".join(out)


def cols(*pairs):
    """COLUMNS from ("name", "type") pairs."""
    return [{"NAME": n, "TYPE": t} for n, t in pairs]


def job_dict(pg, kafka, topic, table, *, value=None, key=None, meta=None, schema="public",
             mode="INSERT", output=None, fallback="earliest", partitions=None, error_limit=0,
             commit=None, poll=None, group=None, properties=None, metadata=None):
    """A professional-mode job as a dict in the order of the seed's appendix.
    value/key/meta are the INPUT blocks; output adds keys to KAFKA.OUTPUT."""
    source = {"BROKERS": kafka.bootstrap, "TOPIC": topic}
    if partitions is not None:
        source["PARTITIONS"] = partitions
    source["FALLBACK_OFFSET"] = fallback
    inp = {"SOURCE": source}
    if key is not None:
        inp["KEY"] = key
    if value is not None:
        inp["VALUE"] = value
    if meta is not None:
        inp["META"] = meta
    inp["ERROR_LIMIT"] = error_limit
    out = {"SCHEMA": schema, "TABLE": table, "MODE": mode}
    out.update(output or {})
    kafka_block = {"INPUT": inp, "OUTPUT": out}
    if metadata is not None:
        kafka_block["METADATA"] = {"SCHEMA": metadata}
    kafka_block["COMMIT"] = commit or {"MAX_ROW": 1000, "MINIMAL_INTERVAL": 500}
    if poll is not None:
        kafka_block["POLL"] = poll
    props = {"group.id": group or unique("grp")}
    props.update(properties or {})
    kafka_block["PROPERTIES"] = props
    return {"DATABASE": pg.dbname, "USER": pg.user, "PASSWORD": pg.password, "HOST": pg.host,
            "PORT": pg.port, "VERSION": 2, "KAFKA": kafka_block}


def job_yaml(*args, **kw):
    """to_yaml(job_dict(...))."""
    return to_yaml(job_dict(*args, **kw))


def yaml_line(text, needle, after=0):
    """1-based number of the first line after line `after` whose text, without
    its indentation and a leading "- ", starts with needle."""
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("- "):
            s = s[2:].lstrip()
        if i > after and s.startswith(needle):
            return i
    raise AssertionError(f"{needle!r} not in the YAML (after line {after}):\n{text}")


def yaml_value(text, key):
    """The value written after `key:` on the first line that has it, or None
    (a quick look at an emitted YAML without a YAML library)."""
    m = re.search(rf"^\s*(?:- )?{re.escape(key)}:[ \t]*(.*?)[ \t]*$", text, re.M)
    return m.group(1) if m else None


def yaml_items(text, key):
    """The scalar items of the block list under the first `key:` line,
    unquoted (e.g. MATCH_COLUMNS)."""
    lines = text.splitlines()
    start = yaml_line(text, f"{key}:")
    indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
    items = []
    for line in lines[start:]:
        s = line.strip()
        ind = len(line) - len(line.lstrip())
        if not s.startswith("- ") or ind < indent:
            break
        items.append(yaml_unquote(s[2:].strip()))
    return items


def yaml_unquote(s):
    if s is not None and len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


# ------------------------------------------------------------ job, end to end

def run_job(srv, body):
    """Creates the job and starts it; returns its id."""
    job = create_job(srv, body)
    start_job(srv, job["id"])
    return job["id"]


def wait_query(pg, sql, expected, srv=None, job_id=None, timeout=ROWS_TIMEOUT, args=None):
    """Polls a query until its rows equal expected.  Fails at once when the
    job fails, and on timeout shows the last rows and the job's status."""
    box = {}

    def check():
        if srv is not None and job_id is not None:
            st = job_status(srv, job_id)
            box["status"] = st
            if st["state"] == "failed":
                raise AssertionError(f"job {job_id} failed: last_error={st.get('last_error')!r}"
                                     f"\n  rows so far: {pg.query(sql, args)!r}\n  status: {st}")
        box["rows"] = pg.query(sql, args)
        return box["rows"] == expected

    try:
        wait_for(check, timeout, 0.25, "the query's rows")
    except AssertionError as e:
        if "failed: last_error" in str(e):
            raise
        raise AssertionError(f"timed out after {timeout:g}s waiting for the rows of\n  {sql}\n"
                             f"  expected: {expected!r}\n  last:     {box.get('rows')!r}\n"
                             f"  job status: {box.get('status')}") from None
    return box["rows"]


def wait_consumed(srv, job_id, n, timeout=ROWS_TIMEOUT):
    """Waits until the job has consumed n messages; fails early if it fails."""
    return wait_state(srv, job_id, "running", timeout,
                      pred=lambda st: st["messages_consumed"] >= n)


# ----------------------------------------------------------------- Kafka extras

def produce_records(kafka, topic, records):
    """Produces records (dicts: value, and optional key, partition, timestamp
    in ms) in order, waiting for each partition's order to hold (idempotent
    producer).  Returns, per record, the (partition, offset, timestamp_ms) the
    broker assigned."""
    p = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 5, "acks": "all",
                  "enable.idempotence": True, "log_level": 3})
    result = [None] * len(records)
    errors = []

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                result[i] = (msg.partition(), msg.offset(), msg.timestamp()[1])
        return cb

    for i, r in enumerate(records):
        kw = {}
        for k in ("key", "partition", "timestamp", "headers"):
            if r.get(k) is not None:
                kw[k] = r[k]
        value = r.get("value")
        p.produce(topic, value.encode() if isinstance(value, str) else value,
                  on_delivery=on_delivery(i), **kw)
        p.poll(0)
    left = p.flush(60)
    assert left == 0 and not errors, f"{left} undelivered, errors {errors[:3]}"
    assert all(r is not None for r in result), result
    return result


# --------------------------------------------------------------------- protobuf

DATA = Path(__file__).resolve().parent / "data"


def protoc_descriptor_set(out_path, proto, include_dir=DATA):
    """Runs `protoc --include_imports --descriptor_set_out=out_path` on a
    .proto of tests/e2e/data; returns the FileDescriptorSet's bytes."""
    # /usr/include: google/protobuf/*.proto, the well-known types (libprotobuf-dev)
    p = subprocess.run(["protoc", f"--proto_path={include_dir}", "--proto_path=/usr/include",
                        "--include_imports",
                        f"--descriptor_set_out={out_path}", str(Path(include_dir) / proto)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, f"protoc failed ({p.returncode}): {p.stderr}"
    return Path(out_path).read_bytes()


def protobuf_class(descriptor_set, full_name):
    """The Python message class of full_name, built from a serialized
    FileDescriptorSet with google.protobuf's descriptor pool."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError as e:
        raise ImportError(f"{e}: install python3-protobuf (scripts/install-deps.sh)") from e
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:  # --include_imports lists dependencies first
        pool.Add(f)
    desc = pool.FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def b64(data):
    return base64.b64encode(data).decode("ascii")


# ------------------------------------------------------- delivery (issue 4)

def pg_bindir():
    """PostgreSQL's server binaries, found as tests/harness/pg.sh finds them."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    import glob
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", d)])
    for d in reversed(dirs):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return Path(d)
    out = subprocess.run(["pg_config", "--bindir"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout.strip()
    return Path(out)


def pg_restart_fast(pg_dir, timeout=90):
    """`pg_ctl restart -m fast` on the cluster that tests/harness/pg.sh made
    in pg_dir (as the cluster's owner when we are root).  The port is kept
    (postmaster.opts)."""
    import pwd
    home = Path(os.path.realpath(Path(pg_dir) / "cluster"))
    data = home / "data"
    cmd = [str(pg_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60",
           "-l", str(home / "postgres.log"), "restart"]
    owner = pwd.getpwuid(os.stat(data).st_uid).pw_name
    if os.getuid() == 0 and owner != "root":
        cmd = ["runuser", "-u", owner, "--"] + cmd
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"pg_ctl restart -m fast failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")


def key_census(pg, table, n, schema="public"):
    """Checks the table key by key against the keys k0..k{n-1} of
    delimited_messages(0, n).  Returns a dict: rows, distinct, duplicates
    (rows beyond the first of a key), lost (keys missing), extra (keys that
    were never produced), lost_sample."""
    rows = pg.query(f'SELECT column_1, count(*) FROM "{schema}"."{table}" GROUP BY column_1')
    seen = {k: c for k, c in rows}
    expected = {f"k{i}" for i in range(n)}
    lost = expected - seen.keys()
    extra = seen.keys() - expected
    return {"rows": sum(seen.values()), "distinct": len(seen),
            "duplicates": sum(c - 1 for c in seen.values()), "lost": len(lost),
            "extra": len(extra), "lost_sample": sorted(lost)[:5],
            "dup_sample": sorted(k for k, c in seen.items() if c > 1)[:5]}


def delivery_job_dict(pg, kafka, topic, table, consistency="EXACTLY", max_row=2000,
                      interval=500, error_limit=0, retry_interval="1s", max_retries=None,
                      columns=None, group=None):
    """A professional job on the seed's five delimited columns with
    COMMIT.CONSISTENCY and a SCHEDULE block (as a dict, see to_yaml)."""
    d = job_dict(pg, kafka, topic, table,
                 value={"COLUMNS": cols(*(columns or COLUMNS5)), "FORMAT": "delimited",
                        "DELIMITED_OPTION": {"DELIMITER": "|"}},
                 error_limit=error_limit, group=group,
                 commit={"MAX_ROW": max_row, "MINIMAL_INTERVAL": interval,
                         "CONSISTENCY": consistency})
    sched = {"RETRY_INTERVAL": retry_interval}
    if max_retries is not None:
        sched["MAX_RETRIES"] = max_retries
    d["SCHEDULE"] = sched
    return d


def worker_processes(worker_binary):
    """Pids of the live processes whose executable is worker_binary."""
    target = Path(worker_binary).resolve()
    pids = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if Path(f"/proc/{d.name}/exe").resolve() == target and pid_alive(int(d.name)):
                pids.add(int(d.name))
        except OSError:
            pass
    return pids


def proc_parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class PacedProducer:
    """Produces delimited_messages(0, n) to a topic's partitions in chunks
    from a thread, pausing between chunks, so that a load lasts long enough
    for faults to be injected in its middle.  .sent, .done(), .join()."""

    def __init__(self, kafka, topic, n, chunk=2000, pause=0.3, partitions=4):
        import threading
        self.n, self.sent, self.error = n, 0, None
        self._t = threading.Thread(target=self._run,
                                   args=(kafka, topic, chunk, pause, partitions), daemon=True)
        self._t.start()

    def _run(self, kafka, topic, chunk, pause, partitions):
        try:
            for i in range(0, self.n, chunk):
                kafka.produce(topic, delimited_messages(i, min(self.n, i + chunk)),
                              partitions=partitions)
                self.sent = min(self.n, i + chunk)
                time.sleep(pause)
        except Exception as e:  # reported by join()
            self.error = e

    def done(self):
        return not self._t.is_alive()

    def join(self, timeout=300):
        self._t.join(timeout)
        assert not self._t.is_alive(), f"the producer still runs after {timeout}s"
        assert self.error is None, f"producing failed: {self.error!r}"


# --------------------------------------------------- tasks (issue 12)

def proc_cpu_seconds(pid):
    """user + system CPU seconds of a live process (/proc/PID/stat), or None
    when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tcp_client_ports(pid, remote_port):
    """The local ports of pid's TCP connections to remote_port (on any
    address): a worker's connection to PostgreSQL, to find its backend in
    pg_stat_activity by client_port."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or f[9] not in inodes:
                continue
            local, remote = f[1], f[2]
            if int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def pg_backends_of(pg, pids):
    """{worker pid: [backend pid, ...]} for the workers' connections to pg
    (pg_stat_activity.client_port)."""
    out = {}
    for pid in pids:
        ports = tcp_client_ports(pid, pg.port)
        if not ports:
            out[pid] = []
            continue
        out[pid] = [r[0] for r in pg.query(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", (list(ports),))]
    return out
