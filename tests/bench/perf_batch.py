#!/usr/bin/python3
"""A profiling helper for the worker's write path (issue 14), not a figure of
the benchmark: runs streamworker directly (no controller) on a backlog and
times it against psql COPY of the same rows (psql COPY into a plain table for
INSERT; COPY into a temp table + INSERT ... ON CONFLICT for MERGE), measured
right before and right after each drain (the ratio uses their harmonic
mean, so load from outside weighs on both), on a PostgreSQL with the
settings of a stock install (fsync, synchronous_commit and full_page_writes
on; shared_buffers 128MB, the initdb default).

    tests/bench/perf_batch.py [--dir /tmp/ss-perf] [--messages 200000] [--runs 3]
        [--jobs insert:500,insert:10000,merge:500] [--consistency EXACTLY]
        [--builds base=DIR,new=DIR] [--pgss] [--perf] [--verbose] [--fast] [--stop]

The backends (tests/harness/pg.sh, kafka.sh) stay up in --dir between calls
(--stop stops them at the end); the topics are produced once per --messages.
A job is done when its progress rows hold the end of every partition (the
rows are committed with them); each job is checked (row count; MERGE: the
latest message of every key).  --builds runs every job with each build tree
back to back; --pgss prints pg_stat_statements per transaction for each job;
--perf attaches `perf record -g` to the worker (report in DIR/perf-<job>.txt);
--verbose keeps the worker's debug log (batch times) in DIR/worker-<job>.log;
--fast runs the server with fsync and synchronous_commit off instead (the
old harness settings).
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

from bench import (COLUMNS, MERGE_TABLE_SQL, TABLE_SQL, PARTITIONS, insert_row, merge_key,  # noqa: E402
                   merge_row, produce)
from helpers import PG, Kafka, cols, job_dict, parse_env, to_yaml  # noqa: E402

HARNESS = ROOT / "tests" / "harness"
BUILD = Path(os.environ.get("STREAMSERVER_BUILD_DIR") or ROOT / "build").resolve()
WORKER = BUILD / "worker" / "streamworker"


def log(msg):
    print(f"[perf_batch] {msg}", file=sys.stderr, flush=True)


def harness(script, verb, d):
    p = subprocess.run([str(HARNESS / script), verb, str(d)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"{script} {verb}: {p.stderr}")
    return parse_env(p.stdout)


def backends(d, fast):
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    kp = subprocess.Popen([str(HARNESS / "kafka.sh"), "start", str(d / "kafka")], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    pg = PG.from_env(harness("pg.sh", "start", d / "pg"))
    want = {"fsync": "off" if fast else "on", "synchronous_commit": "off" if fast else "on",
            "full_page_writes": "off" if fast else "on", "shared_buffers": "128MB",
            "shared_preload_libraries": "pg_stat_statements"}
    have = {k: pg.scalar("SELECT setting FROM pg_settings WHERE name = %s", (k,)) for k in want}
    if have["shared_buffers"] == "16384":
        have["shared_buffers"] = "128MB"
    if have != want:
        for k, v in want.items():
            pg.execute(f"ALTER SYSTEM SET {k} = '{v}'")
        pg.close()
        harness("pg.sh", "stop", d / "pg")
        pg = PG.from_env(harness("pg.sh", "start", d / "pg"))
    pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    out, err = kp.communicate(timeout=900)
    if kp.returncode != 0:
        raise RuntimeError(f"kafka.sh: {err}")
    return pg, Kafka(parse_env(out)["BOOTSTRAP"])


def topics(d, kafka, n):
    t_ins, t_merge = f"perf_insert_{n}", f"perf_merge_{n}"
    mark = d / f"produced-{n}"
    if not mark.exists():
        kafka.create_topic(t_ins, PARTITIONS)
        kafka.create_topic(t_merge, PARTITIONS)
        produce(kafka.bootstrap, t_ins, n, insert_row, lambda i: i % PARTITIONS)
        produce(kafka.bootstrap, t_merge, n, lambda i: merge_row(i, n), lambda i: merge_key(i, n) % PARTITIONS)
        with open(d / f"insert-{n}.txt", "w") as f:
            for i in range(n):
                f.write(insert_row(i) + "\n")
        for h in (0, 1):
            with open(d / f"merge-{n}-{h}.txt", "w") as f:
                for i in range(h * n // 2, (h + 1) * n // 2):
                    f.write(merge_row(i, n) + "\n")
        mark.touch()
    return t_ins, t_merge


def psql(pg, script):
    env = dict(os.environ, PGHOST=pg.host, PGPORT=str(pg.port), PGUSER=pg.user, PGPASSWORD=pg.password,
               PGDATABASE=pg.dbname)
    t0 = time.monotonic()
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=script, text=True,
                       env=env, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return time.monotonic() - t0


def limit_insert(pg, d, n):
    pg.execute("DROP TABLE IF EXISTS perf_limit")
    pg.execute(f"CREATE TABLE perf_limit ({TABLE_SQL})")
    secs = psql(pg, f"\\copy perf_limit from '{d}/insert-{n}.txt' with (format text, delimiter '|')\n")
    assert pg.count("perf_limit") == n
    pg.execute("DROP TABLE perf_limit")
    return n / secs


def limit_merge(pg, d, n):
    pg.execute("DROP TABLE IF EXISTS perf_limit_m")
    pg.execute(f"CREATE TABLE perf_limit_m ({MERGE_TABLE_SQL})")
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in COLUMNS[1:])
    script = f"CREATE TEMP TABLE stage ({TABLE_SQL});\n"
    for h in (0, 1):
        script += (f"\\copy stage from '{d}/merge-{n}-{h}.txt' with (format text, delimiter '|')\n"
                   f"INSERT INTO perf_limit_m SELECT * FROM stage ON CONFLICT (column_1) DO UPDATE SET {sets};\n"
                   "TRUNCATE stage;\n")
    secs = psql(pg, script)
    pg.execute("DROP TABLE perf_limit_m")
    return n / secs


def pgss(pg, top=12):
    return pg.query("SELECT calls, round(total_exec_time::numeric, 1), rows, left(regexp_replace(query, "
                    "'\\s+', ' ', 'g'), 110) FROM pg_stat_statements WHERE query NOT LIKE '%%pg_stat_statements%%' "
                    "AND query NOT LIKE '%%to_regclass%%' AND query NOT LIKE '%%sum(next_offset)%%' "
                    "ORDER BY calls DESC, total_exec_time DESC LIMIT %s", (top,))


def drain(pg, kafka, d, topic, n, mode, max_row, interval, consistency, args, tag, worker=WORKER):
    table = f"perf_{mode.lower()}_{int(time.time() * 1000)}"
    pg.execute(f"CREATE TABLE {table} ({MERGE_TABLE_SQL if mode == 'MERGE' else TABLE_SQL})")
    value = {"COLUMNS": cols(*COLUMNS), "FORMAT": "delimited", "DELIMITED_OPTION": {"DELIMITER": "|"}}
    output = {}
    if mode == "MERGE":
        output = {"MATCH_COLUMNS": ["column_1"], "UPDATE_COLUMNS": [c for c, _ in COLUMNS[1:]]}
    commit = {"MINIMAL_INTERVAL": interval, "CONSISTENCY": consistency}
    if max_row:
        commit["MAX_ROW"] = max_row
    job = job_dict(pg, kafka, topic, table, value=value, mode=mode, output=output, commit=commit)
    name = table
    stdin = json.dumps({"job_id": 1, "job_name": name, "config": to_yaml(job)})
    if args.pgss:
        pg.execute("SELECT pg_stat_statements_reset()")
    t0 = time.monotonic()
    errf = open(d / f"worker-{tag}.log", "w")
    w = subprocess.Popen([str(worker)] + (["--verbose"] if args.verbose else []), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf, text=True)
    w.stdin.write(stdin)
    w.stdin.close()
    perf = None
    if args.perf:
        perf = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", str(d / f"perf-{tag}.data"), "-p",
                                 str(w.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu0 = None
    while True:
        got = pg.scalar("SELECT coalesce(sum(next_offset), 0) FROM streamserver_progress WHERE job_name = %s",
                        (name,)) if pg.scalar("SELECT to_regclass('streamserver_progress') IS NOT NULL") else 0
        if got >= n:
            elapsed = time.monotonic() - t0
            break
        if w.poll() is not None:
            raise RuntimeError(f"worker exited {w.returncode}; see {d}/worker-{tag}.log")
        if time.monotonic() - t0 > 1800:
            raise RuntimeError("drain timeout")
        time.sleep(0.02)
    with open(f"/proc/{w.pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    hwm = 0
    with open(f"/proc/{w.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    w.send_signal(signal.SIGTERM)
    w.wait(60)
    errf.close()
    batches = None
    with open(d / f"worker-{tag}.log") as f:
        for line in f:
            if "stopped:" in line and "batches" in line:
                batches = int(line.split(" rows in ")[1].split()[0])
    if mode == "MERGE":
        rows, lo = pg.query(f"SELECT count(*), min(column_2) FROM {table}")[0]
        assert rows == n // 2 and lo == n // 2, (rows, lo)
    else:
        assert pg.count(table) == n
    stats = pgss(pg) if args.pgss else []
    pg.execute(f"DROP TABLE {table}")
    pg.execute("DELETE FROM streamserver_progress WHERE job_name = %s", (name,))
    if perf is not None:
        with open(d / f"perf-{tag}.txt", "w") as f:
            subprocess.run(["perf", "report", "-i", str(d / f"perf-{tag}.data"), "--no-children", "--stdio",
                            "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.7"], stdout=f,
                           stderr=subprocess.DEVNULL)
    return n / elapsed, cpu, hwm, batches, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/ss-perf")
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--jobs", default="insert:500,insert:10000,merge:500")
    ap.add_argument("--interval", type=int, default=1000)
    ap.add_argument("--consistency", default="EXACTLY")
    ap.add_argument("--pgss", action="store_true")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--stop", action="store_true")
    ap.add_argument("--builds", default="", help="NAME=BUILDDIR,...: each job with each build, back to back")
    ap.add_argument("--verbose", action="store_true", help="the worker's debug log (batch times) in DIR/worker-*.log")
    args = ap.parse_args()
    d = Path(args.dir).resolve()
    n = args.messages
    pg, kafka = backends(d, args.fast)
    log("server: " + ", ".join(f"{k}={pg.scalar(f'SHOW {k}')}" for k in
                                ("server_version", "fsync", "synchronous_commit", "full_page_writes",
                                 "shared_buffers", "wal_level", "max_wal_size")))
    t_ins, t_merge = topics(d, kafka, n)
    builds = [("", WORKER)]
    if args.builds:
        builds = [(b.split("=", 1)[0] + " ", Path(b.split("=", 1)[1]) / "worker" / "streamworker")
                  for b in args.builds.split(",")]
    res = {}
    for run in range(args.runs):
        for spec in args.jobs.split(","):
            mode, max_row = spec.split(":")
            mode = mode.upper()
            for bname, worker in builds:
                # The limit right before and right after the drain: the machine's
                # load from outside weighs on the reference as on the job.
                lim = limit_merge if mode == "MERGE" else limit_insert
                before = lim(pg, d, n)
                tag = f"{bname.strip()}{mode.lower()}{max_row}-{run}"
                rate, cpu, hwm, batches, stats = drain(pg, kafka, d, t_merge if mode == "MERGE" else t_ins, n,
                                                       mode, int(max_row), args.interval, args.consistency, args,
                                                       tag, worker)
                after = lim(pg, d, n)
                ref = 2 / (1 / before + 1 / after)
                res.setdefault(f"{bname}limit {mode} (around {max_row})", []).append(ref)
                res.setdefault(f"{bname}{mode} {max_row}", []).append(rate)
                res.setdefault(f"{bname}{mode} {max_row} ratio", []).append(rate / ref)
                log(f"run {run + 1}: {bname}{mode} MAX_ROW {max_row}: {rate:,.0f} rows/s = {rate / ref:.2f} x limit "
                    f"({before:,.0f} before, {after:,.0f} after); worker CPU {cpu:.2f} s ({cpu * 1e6 / n:.2f} s/M rows), "
                    f"VmHWM {hwm / 1024:.1f} MB, {batches} transactions")
                for c, t, r, q in stats:
                    per = f"{c / batches:.2f}/tx" if batches else ""
                    log(f"    {c:>7} {per:>11} {t:>9} ms  {q}")
    print(f"{'figure':<40} median     runs")
    for k, v in res.items():
        fmt = (lambda x: f"{x:.2f}") if "ratio" in k else (lambda x: f"{x:,.0f}")
        print(f"{k:<40} {fmt(statistics.median(v)):>9}   {' '.join(fmt(x) for x in v)}")
    pg.close()
    if args.stop:
        harness("kafka.sh", "stop", d / "kafka")
        harness("pg.sh", "stop", d / "pg")


if __name__ == "__main__":
    main()
