#!/usr/bin/python3
"""Throughput of an INSERT job on a backlog: rows/s from the start call until
the last row is committed.

    tests/bench/insert_load.py [--messages 1000000] [--partitions 4] [--max-row 10000]

Starts PostgreSQL and Kafka with tests/harness, produces the messages first
(rows shaped like the seed's table), then starts one job on the full backlog
and prints the figures (and the same as JSON on the last line).
"""
import argparse
import json
import os
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--max-row", type=int, default=10000)
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
        conn.cursor().execute(
            "CREATE TABLE bench (column_1 varchar(32), column_2 bigint, column_3 numeric,"
            " column_4 varchar(32), column_5 varchar(32))")

        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("bench", num_partitions=args.partitions,
                                      replication_factor=1)])["bench"].result()
        t0 = time.time()
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10000,
                      "queue.buffering.max.messages": 1000000, "compression.type": "lz4"})
        for i in range(args.messages):
            p.produce("bench", f"key-{i}|{i}|{i}.25|customer-{i % 1000}|region-{i % 7}".encode())
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
        cols = [("column_1", "varchar(32)"), ("column_2", "bigint"), ("column_3", "numeric"),
                ("column_4", "varchar(32)"), ("column_5", "varchar(32)")]
        yaml = "\n".join([
            f"DATABASE: {uri.path.lstrip('/')}",
            f"USER: {urllib.parse.unquote(uri.username)}",
            f"PASSWORD: '{urllib.parse.unquote(uri.password)}'",
            "KAFKA:", "  INPUT:", "    SOURCE:", "      FALLBACK_OFFSET: earliest",
            "    VALUE:", "      FORMAT: delimited", "      DELIMITED_OPTION:", "        DELIMITER: '|'",
            "      COLUMNS:"] + [f"        - NAME: {n}\n          TYPE: {t}" for n, t in cols] + [
            "  OUTPUT:", "    TABLE: bench", "    MODE: INSERT",
            "  COMMIT:", f"    MAX_ROW: {args.max_row}", "    MINIMAL_INTERVAL: 1000", ""])
        job = requests.post(f"{api}/jobs", json={"source_id": src["id"], "name": "bench",
                                                 "mode": "professional", "config": yaml})
        job.raise_for_status()
        jid = job.json()["id"]

        t0 = time.time()
        requests.post(f"{api}/jobs/{jid}/start").raise_for_status()
        peak_rss = 0
        while True:
            st = requests.get(f"{api}/jobs/{jid}/status").json()
            if st.get("pid"):
                try:
                    with open(f"/proc/{st['pid']}/status") as f:
                        for line in f:
                            if line.startswith("VmRSS:"):
                                peak_rss = max(peak_rss, int(line.split()[1]))
                except OSError:
                    pass
            if st["rows_written"] >= args.messages:
                break
            if st["state"] == "failed" or time.time() - t0 > 1800:
                sys.exit(f"job did not finish: {st}")
            time.sleep(0.05)
        elapsed = time.time() - t0
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM bench")
        rows = cur.fetchone()[0]
        result = {"messages": args.messages, "partitions": args.partitions, "max_row": args.max_row,
                  "rows_in_table": rows, "produce_seconds": round(produce_s, 2),
                  "load_seconds": round(elapsed, 2), "rows_per_second": round(rows / elapsed),
                  "worker_peak_rss_mb": round(peak_rss / 1024, 1)}
        print(f"messages produced       {args.messages} ({args.partitions} partitions, {produce_s:.1f} s)")
        print(f"rows in table           {rows}")
        print(f"load time (start->last) {elapsed:.2f} s")
        print(f"INSERT throughput       {rows / elapsed:,.0f} rows/s")
        print(f"worker peak RSS         {peak_rss / 1024:.1f} MB")
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
