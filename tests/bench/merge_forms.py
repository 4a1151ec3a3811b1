#!/usr/bin/python3
"""Times forms of the MERGE upsert on one connection, the way the worker
writes a batch (COPY into the session's temp staging table, the write, the
progress row, COMMIT), to choose the fastest exact one (issue 14):

    tests/bench/merge_forms.py --dir /tmp/ss-perf [--batch 500] [--batches 400] [--rounds 3]

Uses the PostgreSQL that perf_batch.py left running in --dir.  Each batch
holds --batch distinct keys, half of them new and half already in the table
(the benchmark's MERGE data: every key inserted once, then updated once).
The forms run interleaved (batch b of each, then b + 1), each on its own
table, rounds times; prints
milliseconds per batch (median over rounds) per form.
"""
import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from helpers import PG, parse_env  # noqa: E402

COLS = "column_1 varchar(32), column_2 bigint, column_3 numeric, column_4 varchar(32), column_5 varchar(32)"
VALS = "CAST((column_1) AS pg_catalog.varchar) AS column_1, column_2, column_3, column_4, column_5"
SETS = ", ".join(f"column_{i} = EXCLUDED.column_{i}" for i in range(2, 6))
USETS = ", ".join(f"column_{i} = d.column_{i}" for i in range(2, 6))
NAMES = "column_1, column_2, column_3, column_4, column_5"
DNAMES = ", ".join(f"d.column_{i}" for i in range(1, 6))

FORMS = {
    # what the worker ran before issue 14 (the fast form, no DISTINCT ON)
    "on_conflict_counted": f"WITH w AS (INSERT INTO {{t}} ({NAMES}) SELECT {DNAMES} FROM (SELECT {VALS} FROM "
                           f"pg_temp.stage) AS d ORDER BY d.column_1 ON CONFLICT (column_1) DO UPDATE SET {SETS} "
                           f"RETURNING xmax <> 0 AS updated) SELECT count(*), count(*) FILTER (WHERE updated) FROM w",
    "on_conflict_plain": f"INSERT INTO {{t}} ({NAMES}) SELECT {DNAMES} FROM (SELECT {VALS} FROM pg_temp.stage) AS d "
                         f"ORDER BY d.column_1 ON CONFLICT (column_1) DO UPDATE SET {SETS}",
    "merge15": f"MERGE INTO {{t}} AS t USING (SELECT {VALS} FROM pg_temp.stage ORDER BY 1) AS d ON t.column_1 = "
               f"d.column_1 WHEN MATCHED THEN UPDATE SET {USETS} WHEN NOT MATCHED THEN INSERT ({NAMES}) VALUES "
               f"({DNAMES})",
    "update_then_insert": f"UPDATE {{t}} AS t SET {USETS} FROM (SELECT {VALS} FROM pg_temp.stage) AS d WHERE "
                          f"t.column_1 = d.column_1; INSERT INTO {{t}} ({NAMES}) SELECT {DNAMES} FROM (SELECT {VALS} "
                          f"FROM pg_temp.stage) AS d WHERE NOT EXISTS (SELECT 1 FROM {{t}} AS t WHERE t.column_1 = "
                          f"d.column_1) ORDER BY d.column_1",
}


def batch_text(keys, gen):
    return "".join(f"key-{k}\t{k + gen}\t{k}.25\tcustomer-{k % 1000}\tregion-{k % 7}\n" for k in keys)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/ss-perf")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    env = parse_env(subprocess.run([str(ROOT / "tests/harness/pg.sh"), "status", f"{args.dir}/pg"],
                                   capture_output=True, text=True, check=True).stdout)
    pg = PG.from_env(env)
    conn = pg.connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f"CREATE TEMP TABLE stage ({COLS}) ON COMMIT DELETE ROWS")
    cur.execute("CREATE TABLE IF NOT EXISTS mf_progress (k int PRIMARY KEY, v bigint)")
    cur.execute("INSERT INTO mf_progress VALUES (0, 0) ON CONFLICT DO NOTHING")
    n = args.batch * args.batches
    # Interleaved: batch b of every form, then batch b + 1, so that load
    # from outside weighs on every form alike.
    res = {f: [] for f in FORMS}
    pgss = pg.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
    if pgss:
        cur.execute("SELECT pg_stat_statements_reset()")
    for rnd in range(args.rounds):
        spent = {f: 0.0 for f in FORMS}
        for form in FORMS:
            t = f"mf_{form}"
            cur.execute(f"DROP TABLE IF EXISTS {t}")
            cur.execute(f"CREATE TABLE {t} ({COLS.replace('varchar(32),', 'varchar(32) PRIMARY KEY,', 1)})")
            # half of the keys exist already: every batch updates half and inserts half
            cur.execute(f"INSERT INTO {t} SELECT 'key-' || g, g, g + 0.25, 'c', 'r' "
                        f"FROM generate_series(0, {n} - 1, 2) g")
            cur.execute(f"VACUUM ANALYZE {t}")
        for b in range(args.batches):
            text = batch_text(range(b * args.batch, (b + 1) * args.batch), n)
            for form, sql in FORMS.items():
                t0 = time.monotonic()
                cur.execute("BEGIN")
                cur.copy_expert("COPY pg_temp.stage FROM STDIN", io.StringIO(text))
                cur.execute(sql.format(t=f"mf_{form}"))
                cur.execute("UPDATE mf_progress SET v = v + 1 WHERE k = 0")
                cur.execute("COMMIT")
                spent[form] += time.monotonic() - t0
        for form in FORMS:
            t = f"mf_{form}"
            got = pg.scalar(f"SELECT count(*) FILTER (WHERE column_2 >= {n}) FROM {t}")
            assert got == n, (form, got)
            cur.execute(f"DROP TABLE {t}")
            res[form].append(spent[form] * 1000 / args.batches)
            print(f"round {rnd + 1}: {form:<22} {res[form][-1]:6.2f} ms/batch", file=sys.stderr, flush=True)
    for form, v in res.items():
        server = ""
        if pgss:  # the write statement(s) alone, as the server timed them
            ms = pg.scalar("SELECT sum(total_exec_time) / %s FROM pg_stat_statements WHERE query LIKE %s "
                           "AND query NOT LIKE 'DROP%%' AND query NOT LIKE 'CREATE%%' AND query NOT LIKE "
                           "'SELECT count(*) FILTER%%' AND query NOT LIKE 'VACUUM%%' AND query NOT LIKE '%%generate_series%%'",
                           (args.batches * args.rounds, f"%mf_{form} %"))
            server = f", server {ms:.2f} ms in the write"
        print(f"{form:<22} {statistics.median(v):6.2f} ms per {args.batch}-row batch{server}  (runs: "
              f"{' '.join(f'{x:.2f}' for x in v)})")


if __name__ == "__main__":
    main()
