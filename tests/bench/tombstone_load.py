#!/usr/bin/python3
"""What deleting on tombstones costs a MERGE job: messages/s on one backlog of
keyed messages (a share of them tombstones), written by a MERGE job that
skips the tombstones and by one with OUTPUT.DELETE_ON_TOMBSTONE, each into a
table of its own, one after the other, --runs rounds of the two (medians).

    tests/bench/tombstone_load.py [--messages 500000] [--keys 100000] [--tombstones 0.1]
                                  [--partitions 4] [--max-row 10000] [--runs 3]

Starts PostgreSQL and Kafka with tests/harness, produces the backlog first,
then runs each job from its start call until every message is consumed, and
checks the deleting job's table against the latest message of every key.
Prints the figures, and the same as JSON on the last line.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

import psycopg2
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("STREAMSERVER_BUILD_DIR", os.path.join(ROOT, "build"))


def harness(script, verb, d):
    out = subprocess.run([os.path.join(ROOT, "tests/harness", script), verb, d],
                         check=True, capture_output=True, text=True).stdout
    return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_yaml(uri, table, delete, max_row):
    return "\n".join([
        f"DATABASE: {uri.path.lstrip('/')}",
        f"USER: {urllib.parse.unquote(uri.username)}",
        f"PASSWORD: '{urllib.parse.unquote(uri.password)}'",
        "KAFKA:", "  INPUT:", "    SOURCE:", "      FALLBACK_OFFSET: earliest",
        "    KEY:", "      FORMAT: delimited", "      DELIMITED_OPTION:", "        DELIMITER: '|'",
        "      COLUMNS:", "        - NAME: id", "          TYPE: bigint",
        "    VALUE:", "      FORMAT: delimited", "      DELIMITED_OPTION:", "        DELIMITER: '|'",
        "      COLUMNS:", "        - NAME: seq", "          TYPE: bigint",
        "        - NAME: note", "          TYPE: text",
        "  OUTPUT:", f"    TABLE: {table}", "    MODE: MERGE", "    MATCH_COLUMNS: [id]",
        "    UPDATE_COLUMNS: [seq, note]", f"    DELETE_ON_TOMBSTONE: {'true' if delete else 'false'}",
        "  COMMIT:", f"    MAX_ROW: {max_row}", "    MINIMAL_INTERVAL: 1000",
        "  PROPERTIES:", f"    group.id: bench-{table}", ""])


def run_job(api, src, uri, table, delete, args):
    job = requests.post(f"{api}/jobs", json={"source_id": src, "name": table, "mode": "professional",
                                             "config": job_yaml(uri, table, delete, args.max_row)})
    job.raise_for_status()
    jid = job.json()["id"]
    t0 = time.time()
    requests.post(f"{api}/jobs/{jid}/start").raise_for_status()
    while True:
        st = requests.get(f"{api}/jobs/{jid}/status").json()
        if st["messages_consumed"] >= args.messages:
            break
        if st["state"] == "failed" or time.time() - t0 > 1800:
            sys.exit(f"job {table} did not finish: {st}")
        time.sleep(0.05)
    elapsed = time.time() - t0
    requests.post(f"{api}/jobs/{jid}/stop").raise_for_status()
    return elapsed, st


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=500_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--tombstones", type=float, default=0.1)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--max-row", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3,
                    help="rounds of the two jobs (skip, delete, skip, ...); medians are shown")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="ss-bench-")
    server = None
    try:
        pg = harness("pg.sh", "start", os.path.join(work, "pg"))
        kafka = harness("kafka.sh", "start", os.path.join(work, "kafka"))
        uri = urllib.parse.urlparse(pg["PGURI"])
        bootstrap = kafka["BOOTSTRAP"]
        conn = psycopg2.connect(pg["PGURI"])
        conn.autocommit = True
        for r in range(args.runs):
            for t in ("skip", "del"):
                conn.cursor().execute(f"CREATE TABLE {t}{r} (id bigint PRIMARY KEY, seq bigint, note text)")

        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("bench", num_partitions=args.partitions,
                                      replication_factor=1)])["bench"].result()
        rng = random.Random(15)
        latest = {}
        t0 = time.time()
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10000,
                      "queue.buffering.max.messages": 1000000, "compression.type": "lz4",
                      "enable.idempotence": True})
        for i in range(args.messages):
            k = rng.randrange(args.keys)
            if rng.random() < args.tombstones:
                p.produce("bench", None, key=str(k).encode())
                latest[k] = None
            else:
                p.produce("bench", f"{i}|note {i}".encode(), key=str(k).encode())
                latest[k] = i
            if i % 50000 == 0:
                p.poll(0)
        p.flush()
        produce_s = time.time() - t0
        del p, admin  # before the broker stops, or their threads complain

        port = free_port()
        server = subprocess.Popen(
            [os.path.join(BUILD, "controller/streamserver"), "--listen", f"127.0.0.1:{port}",
             "--data-dir", os.path.join(work, "data")], stderr=open(os.path.join(work, "server.log"), "w"))
        api = f"http://127.0.0.1:{port}/api/v1"
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz").ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        svc = requests.post(f"{api}/services", json={"name": "bench", "database_host": uri.hostname,
                                                     "database_port": uri.port}).json()
        src = requests.post(f"{api}/sources", json={"service_id": svc["id"], "name": "bench",
                                                    "brokers": bootstrap, "topic": "bench",
                                                    "format": "delimited", "delimiter": "|"}).json()
        skips, dels = [], []
        want = sorted((k, v) for k, v in latest.items() if v is not None)
        for r in range(args.runs):
            skip_s, skip_st = run_job(api, src["id"], uri, f"skip{r}", False, args)
            del_s, del_st = run_job(api, src["id"], uri, f"del{r}", True, args)
            skips.append(skip_s)
            dels.append(del_s)
            cur = conn.cursor()
            cur.execute(f"SELECT id, seq FROM del{r} ORDER BY id")
            got = cur.fetchall()
            if got != want:
                sys.exit(f"the deleting job's table differs from the latest messages: {len(got)} rows, "
                         f"{len(want)} expected")
            print(f"round {r + 1}: skip {skip_s:.2f} s, delete {del_s:.2f} s", flush=True)
        skip_s = sorted(skips)[len(skips) // 2]
        del_s = sorted(dels)[len(dels) // 2]
        result = {"messages": args.messages, "keys": args.keys, "tombstones": args.tombstones,
                  "partitions": args.partitions, "max_row": args.max_row, "runs": args.runs,
                  "produce_seconds": round(produce_s, 2),
                  "skip_seconds": round(skip_s, 2),
                  "skip_messages_per_second": round(args.messages / skip_s),
                  "skip_tombstones_skipped": skip_st["tombstones_skipped"],
                  "delete_seconds": round(del_s, 2),
                  "delete_messages_per_second": round(args.messages / del_s),
                  "delete_rows_deleted": del_st["rows_deleted"], "delete_rows_in_table": len(got)}
        print(f"messages produced        {args.messages} over {args.keys} keys, "
              f"{args.tombstones:.0%} tombstones ({args.partitions} partitions, {produce_s:.1f} s)")
        print(f"MERGE, tombstones skipped {args.messages / skip_s:,.0f} messages/s (median {skip_s:.2f} s)")
        print(f"MERGE, DELETE_ON_TOMBSTONE {args.messages / del_s:,.0f} messages/s (median {del_s:.2f} s), "
              f"{del_st['rows_deleted']} rows deleted, table = latest messages ({len(got)} rows)")
        print(json.dumps(result))
    finally:
        if server:
            server.terminate()
            server.wait(30)
        for script in ("kafka.sh", "pg.sh"):
            d = os.path.join(work, script.split(".")[0])
            if os.path.isdir(d):
                subprocess.run([os.path.join(ROOT, "tests/harness", script), "stop", d],
                               capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
