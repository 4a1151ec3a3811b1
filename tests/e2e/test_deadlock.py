"""Several jobs upserting one table (hand-split PARTITIONS, as GPSS users do)
do not deadlock each other: MERGE writes a batch's rows in MATCH_COLUMNS order
(worker/sqlgen.c), so concurrent transactions lock the keys in one global
order; a deadlock or serialization failure that happens anyway is retried,
never sent to the error table (worker/sink_pg.c, pg.c)."""
import random
import time

from helpers import (cols, create_service, create_source, job_status, job_yaml,
                     professional_job, run_job, unique, wait_for, wait_query)

PARTS = 3
KEYS = 200      # = MAX_ROW: see below
ROUNDS = 50     # per partition: 3 x 50 x 200 = 30,000 messages
MAX_ROW = KEYS
FINAL_SEQ = 10 ** 6


def _deadlocks(pg):
    return pg.scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")


def _progress(pg, topic):
    return pg.scalar("SELECT coalesce(sum(next_offset), 0) FROM public.streamserver_progress "
                     "WHERE topic = %s", (topic,))


def test_merge_three_jobs_random_keys_no_deadlock(upsert_path, server, pg, kafka):
    """3 jobs, PARTITIONS [0], [1], [2], each its own group, MERGE into one
    table on the key.  The worst case for lock order: every partition holds
    rounds of a random permutation of all KEYS keys, and MAX_ROW = KEYS, so
    each batch (all produced before the start: batches are full) is one whole
    permutation, with no key twice (the upsert without DISTINCT ON) and every
    key shared with the other two jobs' batches in another random order.
    Then, once that is all written, one last message per key, each key in one
    partition: its value must be the final row.  No new deadlock in
    pg_stat_database, nothing in the error table.  Both statement paths: the
    ordered upsert, and UPDATE ... FROM with its locking sub-select."""
    rng = random.Random(12)
    topic = kafka.create_topic(unique("dl"), partitions=PARTS)
    table = pg.create_table(unique("t_dl"), "k integer PRIMARY KEY, val text, seq integer")
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)

    # Message j of partition p: key|value|seq, seq increasing per key.
    contended = []
    for r in range(ROUNDS):
        for p in range(PARTS):
            keys = list(range(KEYS))
            rng.shuffle(keys)
            contended.append((p, [f"{k}|r{r}p{p}|{r * PARTS + p}" for k in keys]))
    # produce() routes value i to partition i % partitions: interleave.
    per_part = [[m for q, msgs in contended if q == p for m in msgs] for p in range(PARTS)]
    n = KEYS * ROUNDS
    kafka.produce(topic, [per_part[i % PARTS][i // PARTS] for i in range(n * PARTS)], partitions=PARTS)

    before = _deadlocks(pg)
    value = {"COLUMNS": cols(("k", "integer"), ("val", "text"), ("seq", "integer")),
             "FORMAT": "delimited", "DELIMITED_OPTION": {"DELIMITER": "|"}}
    output = {"MATCH_COLUMNS": ["k"], "UPDATE_COLUMNS": ["val", "seq"]}
    jobs = []
    t0 = time.monotonic()
    for p in range(PARTS):
        body = job_yaml(pg, kafka, topic, table, mode="MERGE", output=output, value=value,
                        partitions=[p], commit={"MAX_ROW": MAX_ROW, "MINIMAL_INTERVAL": 5000})
        jobs.append(run_job(server, professional_job(src["id"], body)))

    def written(total):
        for jid in jobs:
            st = job_status(server, jid)
            assert st["state"] != "failed", f"job {jid} failed: {st.get('last_error')!r}"
        return _progress(pg, topic) >= total

    wait_for(lambda: written(n * PARTS), 60, 0.25, "the contended messages to be written")
    contended_s = time.monotonic() - t0

    # The last word on each key, from one partition only.
    final = [f"{k}|final{k}|{FINAL_SEQ}" for k in range(KEYS)]
    kafka.produce(topic, final, partitions=PARTS)  # key k -> partition k % 3
    expected = [(k, f"final{k}", FINAL_SEQ) for k in range(KEYS)]
    wait_query(pg, f'SELECT k, val, seq FROM "{table}" ORDER BY k', expected, server, jobs[0],
               timeout=30)
    wait_for(lambda: written(n * PARTS + KEYS), 30, 0.25, "the final messages' progress")

    # A backend hands its counters to the statistics at most once a second.
    time.sleep(2)
    pg.query("SELECT pg_stat_clear_snapshot()")
    new_deadlocks = _deadlocks(pg) - before
    retried = server.log_text().count("deadlock detected")
    errors = pg.scalar("SELECT count(*) FROM public.streamserver_errors WHERE topic = %s", (topic,))
    print(f"\n{n * PARTS} contended messages written in {contended_s:.1f} s; "
          f"new deadlocks {new_deadlocks}; deadlock retries in the log {retried}; "
          f"error rows {errors}")
    for jid in jobs:
        st = job_status(server, jid)
        assert st["state"] == "running", f"job {jid}: {st}"
        assert st.get("restarts", 0) == 0, f"job {jid} was restarted: {st}"
    assert errors == 0, f"{errors} messages went to the error table"
    assert new_deadlocks == 0, f"{new_deadlocks} deadlocks between the jobs ({retried} retried in place)"


def test_deadlock_is_retried_in_place(server, pg, kafka):
    """A deadlock with another application's transaction (it holds key 2 and
    then wants key 1, which the batch holds) aborts the batch with 40P01: the
    worker writes it again in place, without a restart, and nothing goes to
    the error table; the batch, committed last, has the final word."""
    topic = kafka.create_topic(unique("dlr"), partitions=1)
    table = pg.create_table(unique("t_dlr"), "k integer PRIMARY KEY, val text, seq integer")
    pg.execute(f"""INSERT INTO "{table}" VALUES (1, 'old', 0), (2, 'old', 0)""")
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    before = _deadlocks(pg)

    other = pg.connect()
    other.autocommit = False
    cur = other.cursor()
    try:
        # The worker's backend, first to wait, is the one the deadlock check
        # aborts; a longer timeout here makes sure of it (superuser only).
        cur.execute("SAVEPOINT s")
        try:
            cur.execute("SET LOCAL deadlock_timeout = '10s'")
        except Exception:
            cur.execute("ROLLBACK TO SAVEPOINT s")
        cur.execute(f'UPDATE "{table}" SET val = %s WHERE k = 2', ("other",))
        kafka.produce(topic, ["1|job|1", "2|job|1"])
        value = {"COLUMNS": cols(("k", "integer"), ("val", "text"), ("seq", "integer")),
                 "FORMAT": "delimited", "DELIMITED_OPTION": {"DELIMITER": "|"}}
        body = job_yaml(pg, kafka, topic, table, mode="MERGE", value=value,
                        output={"MATCH_COLUMNS": ["k"], "UPDATE_COLUMNS": ["val", "seq"]},
                        commit={"MAX_ROW": 1000, "MINIMAL_INTERVAL": 300})
        job_id = run_job(server, professional_job(src["id"], body))
        # The batch has locked key 1 and waits for key 2.
        mine = other.get_backend_pid()
        wait_for(lambda: pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND wait_event_type = 'Lock' AND pid <> %s",
                                   (mine,)) == 1, 30, 0.1, "the batch to wait for key 2")
        cur.execute(f'UPDATE "{table}" SET val = %s WHERE k = 1', ("other",))
        other.commit()
    finally:
        other.close()
    wait_query(pg, f'SELECT k, val, seq FROM "{table}" ORDER BY k', [(1, "job", 1), (2, "job", 1)],
               server, job_id, timeout=30)
    st = job_status(server, job_id)
    assert st["state"] == "running" and st.get("restarts", 0) == 0, st
    assert "writing the batch again" in server.log_text(), "no in-place retry in the log"
    errors = pg.scalar("SELECT count(*) FROM public.streamserver_errors WHERE topic = %s", (topic,))
    assert errors == 0, f"{errors} messages went to the error table"
    time.sleep(1.5)
    assert _deadlocks(pg) - before >= 1, "the test did not provoke a deadlock"
