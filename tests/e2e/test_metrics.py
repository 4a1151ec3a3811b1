"""Runtime figures of jobs: the status object (rows_updated, batches, rates,
last_batch_at, per-partition lag), GET /api/v1/jobs/status, and GET /metrics
in the Prometheus text format, checked with a strict parser of our own."""
import datetime
import math
import re
import shutil
import subprocess
import time

from conftest import CONTROLLER
from helpers import (PacedProducer, TABLE5, cols, create_job, create_service, create_source,
                     delimited_messages, delivery_job_dict, job_status, job_yaml, proc_cpu_seconds,
                     professional_job, run_job, start_job, stop_job, to_yaml, unique, wait_rows,
                     wait_state, wizard_job)

STATES = ("stopped", "starting", "running", "degraded", "stopping", "retrying", "failed")
PARTITIONS = 4
STATUS_FIELDS = {"id", "name", "state", "desired_state", "pid", "started_at", "restarts",
                 "messages_consumed", "rows_written", "rows_updated", "rows_rejected", "batches",
                 "rows_per_second", "messages_per_second", "last_batch_at", "lag", "last_error",
                 "last_exit", "partitions", "tasks", "rows_deleted", "tombstones_skipped"}


# ------------------------------------------------------- Prometheus text parser

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)?\}})? (\S+)$")
_LABEL_ONE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _unescape(v):
    return re.sub(r'\\([\\"n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def _value(text, line):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    assert re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text), \
        f"not a sample value: {text!r} in {line!r}"
    return float(text)


def parse_prometheus(text):
    """Parses the text exposition format 0.0.4 strictly: every line is a
    HELP, a TYPE or a sample `name{labels} value`; every sample belongs to a
    family declared by a TYPE line before it, families are contiguous and
    declared once, label values use only the \\\\ \\" \\n escapes, no series
    repeats, histograms have cumulative buckets ending in +Inf = _count.
    Returns {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    assert text.endswith("\n"), "the exposition must end with a line feed"
    families, seen, current = {}, set(), None
    for line in text[:-1].split("\n"):
        assert line, "empty line in the exposition"
        if line.startswith("#"):
            m = re.fullmatch(rf"# (HELP|TYPE) ({_NAME}) (.*)", line)
            assert m, f"bad comment line: {line!r}"
            kind, name, rest = m.groups()
            fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if kind == "TYPE":
                assert rest in _TYPES, f"unknown type in {line!r}"
                assert fam["type"] is None, f"second TYPE line for {name}"
                assert not fam["samples"], f"TYPE of {name} after its samples"
                fam["type"] = rest
            else:
                assert fam["help"] is None, f"second HELP line for {name}"
                fam["help"] = rest
            assert current is None or current == name or name not in seen, \
                f"family {name} is split"
            current = name
            seen.add(name)
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line (name{{labels}} value): {line!r}"
        name, labeltext, value = m.group(1), m.group(2) or "", _value(m.group(3), line)
        labels = {}
        for lm in _LABEL_ONE.finditer(labeltext):
            assert lm.group(1) not in labels, f"label {lm.group(1)} twice in {line!r}"
            labels[lm.group(1)] = _unescape(lm.group(2))
        fam_name = current
        fam = families.get(fam_name)
        assert fam is not None and fam["type"] is not None, \
            f"sample {name} without a TYPE line before it"
        allowed = {fam_name}
        if fam["type"] == "histogram":
            allowed = {fam_name + "_bucket", fam_name + "_sum", fam_name + "_count"}
        assert name in allowed, f"sample {name} inside family {fam_name} ({fam['type']})"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"series repeated: {line!r}"
        seen.add(key)
        fam["samples"].append((name, labels, value))
    for fam_name, fam in families.items():
        assert fam["type"] is not None, f"family {fam_name} has no TYPE"
        if fam["type"] == "histogram":
            _check_histogram(fam_name, fam["samples"])
    return families


def _check_histogram(fam_name, samples):
    series = {}
    for name, labels, value in samples:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            assert "le" in labels, f"{fam_name} bucket without le: {labels}"
            s["buckets"].append((_value(labels["le"], labels["le"]), value))
        elif name.endswith("_sum"):
            s["sum"] = value
        else:
            s["count"] = value
    for base, s in series.items():
        les = [le for le, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        assert les == sorted(les) and les and les[-1] == math.inf, \
            f"{fam_name}{dict(base)}: buckets not ordered up to +Inf: {les}"
        assert counts == sorted(counts), f"{fam_name}{dict(base)}: buckets not cumulative: {counts}"
        assert s["count"] is not None and s["sum"] is not None, f"{fam_name}{dict(base)}: no _sum/_count"
        assert counts[-1] == s["count"], f"{fam_name}{dict(base)}: +Inf bucket {counts[-1]} != count {s['count']}"


def scrape(srv):
    resp = srv.request("GET", "/metrics")
    assert resp.status_code == 200, f"GET /metrics: HTTP {resp.status_code}: {resp.text[:500]}"
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.replace(" ", "") == "text/plain;version=0.0.4;charset=utf-8", ctype
    return parse_prometheus(resp.text)


def job_samples(fams, family, job_id, name=None):
    """{extra labels (without job_name and job_id) as a tuple: value} of one job."""
    out = {}
    for sname, labels, value in fams[family]["samples"]:
        if labels.get("job_id") != str(job_id):
            continue
        if name is not None:
            assert labels.get("job_name") == name, \
                f"{family}: job_name label {labels.get('job_name')!r}"
        assert "job" not in labels, f"{family}: a job label clashes with Prometheus' own"
        if sname != family and not sname.endswith("_bucket"):
            key = (sname[len(family) + 1:],)
        else:
            key = tuple(sorted((k, v) for k, v in labels.items() if k not in ("job_name", "job_id")))
        out[key] = value
    return out


def one(fams, family, job_id):
    vals = job_samples(fams, family, job_id)
    assert list(vals) == [()], f"{family} of job {job_id}: {vals}"
    return vals[()]


# ------------------------------------------------------------------ the tests

def _lag_map(st):
    return {p["partition"]: p["lag"] for p in st["lag"]["partitions"]}


def _setup(server, pg, kafka, prefix, table_sql, partitions=1):
    topic = kafka.create_topic(unique(prefix), partitions=partitions)
    table = pg.create_table(unique(f"t_{prefix}"), table_sql)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    return topic, table, src["id"]


def test_running_job_figures_status_and_metrics(server, pg, kafka):
    """A 4-partition load: rows and batches grow, rows/s > 0 while it loads and
    0 once idle, lag per partition reaches 0 after the drain, is kept after a
    stop, and shows what was produced meanwhile once a worker runs again.
    /metrics agrees with the status; lifetime counters survive a controller
    restart."""
    topic, table, src = _setup(server, pg, kafka, "met", TABLE5, PARTITIONS)
    # Batches flush at exactly MAX_ROW rows; the interval is long, so a
    # partial batch stays open (and its messages count as lag) until MAX_ROW.
    config = to_yaml(delivery_job_dict(pg, kafka, topic, table, max_row=1000, interval=120000))
    job = create_job(server, professional_job(src, config, name=unique('we"ird\\job')))
    job_id = job["id"]

    st = job_status(server, job_id)
    assert set(st) == STATUS_FIELDS, f"status fields: {sorted(st)}"
    assert (st["rows_updated"], st["batches"], st["rows_per_second"],
            st["messages_per_second"], st["last_batch_at"]) == (0, 0, 0, 0, None), st
    assert st["lag"] == {"total": None, "partitions": [], "updated_at": None}, st

    n = 8000
    producer = PacedProducer(kafka, topic, n, chunk=2000, pause=0.5, partitions=PARTITIONS)
    start_job(server, job_id)
    loading = wait_state(server, job_id, "running",
                         pred=lambda s: s["rows_written"] > 0 and s["rows_per_second"] > 0)
    assert loading["messages_per_second"] > 0 and loading["batches"] > 0, loading
    assert loading["last_batch_at"] is not None, loading
    # The worker's own resources, read by the controller from /proc/<pid>.
    fams = scrape(server)
    _check_worker_usage(fams, job_id, {0: loading["pid"]})
    producer.join()
    wait_rows(pg, table, n, server, job_id)
    drained = wait_state(server, job_id, "running", pred=lambda s: (
        s["rows_written"] == n and s["lag"]["total"] == 0
        and _lag_map(s) == {p: 0 for p in range(PARTITIONS)}))
    assert (drained["messages_consumed"], drained["rows_updated"], drained["rows_rejected"],
            drained["batches"]) == (n, 0, 0, n // 1000), drained
    assert drained["lag"]["updated_at"] is not None, drained
    idle = wait_state(server, job_id, "running",
                      pred=lambda s: s["rows_per_second"] == 0 and s["messages_per_second"] == 0)
    assert idle["rows_written"] == n, idle

    # /metrics while the job idles: the same figures.
    fams = scrape(server)
    _check_metrics_match(fams, [job_status(server, job_id)])

    # Stopped: no rate, the last lag report kept as it was.
    stop_job(server, job_id)
    stopped = wait_state(server, job_id, "stopped")
    fams = scrape(server)
    assert job_samples(fams, WORKER_MEM, job_id) == {} and \
        job_samples(fams, WORKER_CPU, job_id) == {}, "no worker, no worker figures"
    assert abs(one(fams, LAST_BATCH, job_id) - iso_seconds(stopped["last_batch_at"])) < 0.001
    assert stopped["rows_per_second"] == 0 and stopped["lag"]["total"] == 0, stopped
    time.sleep(2.5)  # longer than the worker's report interval: nothing may refresh it
    assert job_status(server, job_id)["lag"] == stopped["lag"]

    # Produced while stopped: the next worker holds them in an open batch
    # (MAX_ROW not reached) and reports them as lag, 100 per partition.
    kafka.produce(topic, delimited_messages(n, n + 400), partitions=PARTITIONS)
    start_job(server, job_id)
    lagging = wait_state(server, job_id, "running", pred=lambda s: (
        _lag_map(s) == {p: 100 for p in range(PARTITIONS)}))
    assert lagging["lag"]["total"] == 400 and lagging["rows_written"] == n, lagging
    assert lagging["lag"]["updated_at"] > stopped["lag"]["updated_at"], lagging
    fams = scrape(server)
    assert job_samples(fams, "streamserver_job_lag_messages", job_id) == {
        (("partition", str(p)), ("task", "0")): 100 for p in range(PARTITIONS)}
    # 600 more fill the batch: it commits and the lag goes back to 0.
    kafka.produce(topic, delimited_messages(n + 400, n + 1000), partitions=PARTITIONS)
    wait_rows(pg, table, n + 1000, server, job_id)
    final = wait_state(server, job_id, "running", pred=lambda s: (
        s["rows_written"] == n + 1000 and _lag_map(s) == {p: 0 for p in range(PARTITIONS)}))
    assert final["batches"] == n // 1000 + 1, final
    fams = scrape(server)
    _check_metrics_match(fams, [job_status(server, job_id)])
    hist = job_samples(fams, "streamserver_job_batch_duration_seconds", job_id)
    assert hist[("count",)] == final["batches"], hist  # the controller ran them all

    # A controller restart: lifetime counters come back from the store and
    # agree with /metrics; the histogram counts since the controller started.
    server.restart()
    # Figures in memory start empty; wait for the new worker's first lag
    # report so that the status and the scrape see the same one.
    again = wait_state(server, job_id, "running",
                       pred=lambda s: _lag_map(s) == {p: 0 for p in range(PARTITIONS)})
    for k in ("messages_consumed", "rows_written", "rows_updated", "rows_rejected", "batches"):
        assert again[k] == final[k], f"{k}: {again[k]} after the restart, {final[k]} before"
    fams = scrape(server)
    _check_metrics_match(fams, [job_status(server, job_id)], since_start=False)
    assert job_samples(fams, "streamserver_job_batch_duration_seconds", job_id)[("count",)] == 0
    # No batch since this controller started: no time of the last one.
    assert job_samples(fams, LAST_BATCH, job_id) == {}


LAST_BATCH = "streamserver_job_last_batch_timestamp_seconds"
WORKER_MEM = "streamserver_worker_resident_memory_bytes"
WORKER_CPU = "streamserver_worker_cpu_seconds_total"


def iso_seconds(text):
    """The status's "2026-11-24T07:30:00.123Z" in seconds since the epoch."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def proc_peak_rss(pid):
    """The most resident memory pid ever had (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def _check_worker_usage(fams, job_id, pids):
    """The worker figures of the job: one series per running task (pids:
    {task: pid}), the memory within what the process ever held, the CPU
    seconds no more than the process has used by now."""
    assert fams[WORKER_MEM]["type"] == "gauge" and fams[WORKER_CPU]["type"] == "counter"
    mem = job_samples(fams, WORKER_MEM, job_id)
    cpu = job_samples(fams, WORKER_CPU, job_id)
    tasks = {(("task", str(t)),) for t in pids}
    assert set(mem) == tasks and set(cpu) == tasks, (mem, cpu, pids)
    for t, pid in pids.items():
        rss, secs = mem[(("task", str(t)),)], cpu[(("task", str(t)),)]
        assert 1024 * 1024 < rss <= proc_peak_rss(pid), (t, rss)
        now = proc_cpu_seconds(pid)
        assert now is not None and 0 <= secs <= now, (t, secs, now)


def _check_metrics_match(fams, statuses, since_start=True):
    """Every per-job family agrees with the status objects (read while the
    jobs are idle); the process figures are there."""
    for family, field in (("streamserver_job_messages_consumed_total", "messages_consumed"),
                          ("streamserver_job_rows_written_total", "rows_written"),
                          ("streamserver_job_rows_updated_total", "rows_updated"),
                          ("streamserver_job_rows_rejected_total", "rows_rejected"),
                          ("streamserver_job_batches_total", "batches"),
                          ("streamserver_job_rows_deleted_total", "rows_deleted"),
                          ("streamserver_job_tombstones_skipped_total", "tombstones_skipped"),
                          ("streamserver_job_restarts_total", "restarts")):
        assert fams[family]["type"] == "counter", family
        for st in statuses:
            assert one(fams, family, st["id"]) == st[field], \
                f"{family}: {one(fams, family, st['id'])}, status {field}: {st[field]}"
            job_samples(fams, family, st["id"], name=st["name"])  # label escaping round trip
    assert fams["streamserver_job_batch_duration_seconds"]["type"] == "histogram"
    assert fams["streamserver_job_lag_messages"]["type"] == "gauge"
    assert fams["streamserver_job_state"]["type"] == "gauge"
    for st in statuses:
        hist = job_samples(fams, "streamserver_job_batch_duration_seconds", st["id"])
        les = sorted(float(dict(k)["le"]) for k in hist if k and k[0][0] == "le")
        assert les == [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.inf], les
        if since_start:
            assert hist[("count",)] == st["batches"], (hist, st)
            assert hist[("sum",)] >= 0
        lag = job_samples(fams, "streamserver_job_lag_messages", st["id"])
        # One task: every partition's lag is task 0's.
        assert lag == {(("partition", str(p["partition"])), ("task", "0")): p["lag"]
                       for p in st["lag"]["partitions"] if p["lag"] is not None}, (lag, st["lag"])
        if st["last_batch_at"] is not None and since_start:
            assert abs(one(fams, LAST_BATCH, st["id"]) - iso_seconds(st["last_batch_at"])) < 0.001, st
        state = job_samples(fams, "streamserver_job_state", st["id"])
        assert state == {(("state", s),): (1 if s == st["state"] else 0) for s in STATES}, state
    jobs = {lb["state"]: v for _, lb, v in fams["streamserver_jobs"]["samples"]}
    assert set(jobs) == set(STATES), jobs
    assert sum(jobs.values()) >= len(statuses)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                 "process_start_time_seconds"):
        assert name in fams and len(fams[name]["samples"]) == 1, name
    assert fams["process_resident_memory_bytes"]["samples"][0][2] > 0
    assert fams["process_virtual_memory_bytes"]["samples"][0][2] >= \
        fams["process_resident_memory_bytes"]["samples"][0][2]
    assert 0 < fams["process_open_fds"]["samples"][0][2] <= fams["process_max_fds"]["samples"][0][2]
    start = fams["process_start_time_seconds"]["samples"][0][2]
    assert time.time() - 3600 < start <= time.time() + 1, start
    [(name, labels, value)] = fams["streamserver_build_info"]["samples"]
    assert (name, labels["version"], value) == ("streamserver_build_info", "0.1.0", 1.0), labels
    # the commit, as --version shows it
    version = subprocess.run([str(CONTROLLER), "--version"], capture_output=True,
                             text=True).stdout
    assert set(labels) == {"version", "revision"}, labels
    assert version == (f"streamserver 0.1.0 (git {labels['revision']})\n" if labels["revision"]
                       else "streamserver 0.1.0\n"), (version, labels)


MERGE_COLUMNS = [("id", "integer"), ("version", "integer"), ("val", "text"), ("note", "text")]


def test_merge_counts_rows_updated(server, pg, kafka):
    """MERGE: rows_updated counts the keys that already existed (in the table
    before, or written by an earlier batch); rows_written counts all."""
    topic, table, src = _setup(server, pg, kafka, "mrgm",
                               "id integer PRIMARY KEY, version integer, val text, note text")
    pg.execute(f'INSERT INTO "{table}" SELECT g, 0, \'old\', \'n\' FROM generate_series(1, 10) g')
    config = job_yaml(pg, kafka, topic, table, mode="MERGE",
                      output={"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["version", "val"]},
                      value={"COLUMNS": cols(*MERGE_COLUMNS), "FORMAT": "delimited",
                             "DELIMITED_OPTION": {"DELIMITER": "|"}},
                      commit={"MAX_ROW": 1000, "MINIMAL_INTERVAL": 300})
    # Keys 1..30: 1..10 exist already.
    kafka.produce(topic, [f"{i}|1|v{i}|m" for i in range(1, 31)])
    job_id = run_job(server, professional_job(src, config))
    first = wait_state(server, job_id, "running", pred=lambda s: s["messages_consumed"] == 30)
    assert (first["rows_written"], first["rows_updated"]) == (30, 10), first
    # Keys 21..45 again: 21..30 repeat keys the job wrote, 31..45 are new.
    kafka.produce(topic, [f"{i}|2|w{i}|m" for i in range(21, 46)])
    second = wait_state(server, job_id, "running", pred=lambda s: s["messages_consumed"] == 55)
    assert (second["rows_written"], second["rows_updated"]) == (55, 20), second
    assert pg.scalar(f'SELECT count(*) FROM "{table}"') == 45
    assert pg.scalar(f'SELECT count(*) FROM "{table}" WHERE version = 2') == 25
    assert second["batches"] >= 2, second
    fams = scrape(server)
    assert one(fams, "streamserver_job_rows_updated_total", job_id) == 20
    assert one(fams, "streamserver_job_rows_written_total", job_id) == 55


def test_status_of_every_job(server, pg, kafka):
    """GET /api/v1/jobs/status: every job's status object, ordered by id, the
    same as each job's own status; only GET."""
    topic = kafka.create_topic(unique("all"))
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)["id"]
    ids = [create_job(server, wizard_job(src, pg, unique("t"), ["column_1"]))["id"]
           for _ in range(3)]
    body = server.call("GET", "/jobs/status")
    assert body["total"] == 3 and [s["id"] for s in body["items"]] == sorted(ids), body
    for item in body["items"]:
        assert set(item) == STATUS_FIELDS, sorted(item)
        assert item == job_status(server, item["id"])
        assert item["state"] == "stopped" and item["lag"]["total"] is None, item
    server.call("DELETE", f"/jobs/{ids[1]}", expect=204)
    body = server.call("GET", "/jobs/status")
    assert [s["id"] for s in body["items"]] == [ids[0], ids[2]] and body["total"] == 2, body
    resp = server.request("POST", "/jobs/status", json_body={})
    assert resp.status_code == 405, resp.text
    fams = scrape(server)
    assert {lb["job_id"] for _, lb, _ in fams["streamserver_job_state"]["samples"]} == \
        {str(ids[0]), str(ids[2])}
    jobs = {lb["state"]: v for _, lb, v in fams["streamserver_jobs"]["samples"]}
    assert jobs == {s: (2 if s == "stopped" else 0) for s in STATES}, jobs


def promtool():
    path = shutil.which("promtool")
    assert path, "promtool is missing: scripts/install-deps.sh installs Debian's prometheus package"
    return path


def running_job_metrics(server, pg, kafka, prefix, tasks=2):
    """The /metrics text while a job of `tasks` tasks runs, after its first
    rows: every family has samples (worker figures of each task, the time
    of the last batch, lag per partition)."""
    topic, table, src = _setup(server, pg, kafka, prefix, TABLE5, partitions=tasks)
    config = f"TASKS: {tasks}\n" + to_yaml(delivery_job_dict(pg, kafka, topic, table, max_row=100,
                                                              interval=200))
    kafka.produce(topic, delimited_messages(0, 500), partitions=tasks)
    job_id = run_job(server, professional_job(src, config))
    wait_rows(pg, table, 500, server, job_id)
    # Every task runs and every partition's lag is reported (after the
    # group's rebalance, each task reports the partitions it owns).
    st = wait_state(server, job_id, "running", pred=lambda s: (
        len([t for t in s["tasks"] if t["pid"]]) == tasks and s["lag"]["total"] == 0
        and _lag_map(s) == {p: 0 for p in range(tasks)}))
    resp = server.request("GET", "/metrics")
    assert resp.status_code == 200, resp.text
    fams = parse_prometheus(resp.text)
    _check_worker_usage(fams, job_id, {t["task"]: t["pid"] for t in st["tasks"]})
    return job_id, resp.text


def test_promtool_accepts_live_metrics(server, pg, kafka):
    """`promtool check metrics` (Prometheus' own linter: names, units,
    suffixes, HELP and TYPE) finds nothing in a live exposition with a
    running two-task job."""
    job_id, text = running_job_metrics(server, pg, kafka, "prom")
    for family in (LAST_BATCH, WORKER_MEM, WORKER_CPU, "streamserver_job_lag_messages",
                   "streamserver_job_batch_duration_seconds"):
        assert re.search(rf"^{family}(_bucket)?{{job_name=", text, re.M), family
    p = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        f"promtool check metrics ({p.returncode}):\n{p.stdout}{p.stderr}"


def test_metrics_parser_is_strict():
    """The parser refuses what Prometheus would: a sample before its TYPE, a
    bad escape, a split family, a non-cumulative histogram."""
    good = ('# HELP a_total x\n# TYPE a_total counter\na_total{job="q\\"\\\\\\n"} 1\n'
            '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n')
    fams = parse_prometheus(good)
    assert fams["a_total"]["samples"] == [("a_total", {"job": 'q"\\\n'}, 1.0)]
    bad = ['a 1\n',
           '# TYPE a gauge\na{job="x\\q"} 1\n',
           '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n',
           '# TYPE a gauge\na 1\na 2\n',
           '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n',
           '# TYPE a gauge\na one\n',
           '# TYPE a gauge\na 1']
    for text in bad:
        try:
            parse_prometheus(text)
        except AssertionError:
            continue
        raise AssertionError(f"the parser accepted {text!r}")
