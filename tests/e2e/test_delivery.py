"""Issue 4, delivery guarantees: worker kills under EXACTLY and ATLEAST, a
stale second worker, the controller killed, bad data and ERROR_LIMIT,
offsets and their reset, the retry policy.  The outages of PostgreSQL and
Kafka are in test_outages.py.

Every test prints its figures (messages, kills, restarts, rows, duplicates,
losses); run with -s to see them, failures carry them in their message.
"""
import json
import os
import random
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import WORKER
from helpers import (COLUMNS5, TABLE5, create_job, create_service, create_source,
                     delimited_messages, delivery_job_dict, error_of, free_port, job_status,
                     key_census, PacedProducer, pid_alive, produce_records, professional_job, start_job,
                     stop_job, to_yaml, unique, wait_for, wait_rows, wait_state)

N_KILL = 200_000


def _job(server, pg, kafka, prefix, partitions=4, table_sql=TABLE5, start=True, **kw):
    """Topic, table, service, source and a professional job; returns
    (topic, table, job_id, config_dict)."""
    topic = kafka.create_topic(unique(prefix), partitions=partitions)
    table = pg.create_table(unique("t_" + prefix), table_sql)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    conf = delivery_job_dict(pg, kafka, topic, table, **kw)
    job = create_job(server, professional_job(src["id"], to_yaml(conf)))
    if start:
        start_job(server, job["id"])
    return topic, table, job["id"], conf


def _census_text(c):
    return (f"rows {c['rows']}, distinct {c['distinct']}, duplicates {c['duplicates']} "
            f"(e.g. {c['dup_sample']}), lost {c['lost']} (e.g. {c['lost_sample']}), "
            f"unknown keys {c['extra']}")


def _wait_all_keys(pg, table, n, server, jid, timeout=300):
    def done():
        st = job_status(server, jid)
        if st["state"] == "failed":
            raise AssertionError(f"job {jid} failed: {st}")
        return pg.count_distinct(table) >= n

    try:
        wait_for(done, timeout, 0.2, f"{n} keys in {table}")
        wait_rows(pg, table, n, server, jid, timeout=timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}\n  census: {_census_text(key_census(pg, table, n))}") from None
    return key_census(pg, table, n)


def _kill_loop(server, pg, kafka, consistency, kills_wanted, prefix, pause):
    """Produces N_KILL messages in paced chunks (the worker loads far faster
    than a kill cycle takes) and meanwhile kills the worker with SIGKILL
    kills_wanted times at random moments: each new worker a random 0..500 ms
    after its first committed batch (a healthy run, so the crash backoff starts
    from RETRY_INTERVAL again).  Returns the figures."""
    t0 = time.monotonic()
    topic, table, jid, _ = _job(server, pg, kafka, prefix, consistency=consistency,
                                max_row=2000, interval=200, retry_interval="1s")
    st = wait_state(server, jid, "running")
    rng = random.Random(int(os.environ.get("E2E_SEED", "0")) or None)
    kills, victims, rows_at_kill = 0, [], []
    # About 200 chunks: production spans ~2x the time the kills need.
    producer = PacedProducer(kafka, topic, N_KILL, chunk=1000, pause=pause)
    while kills < kills_wanted and not producer.done():
        # The worker of this round: running, with a pid we have not killed.
        st = wait_state(server, jid, "running", timeout=120,
                        pred=lambda s: s["pid"] and s["pid"] not in victims)
        pid = st["pid"]
        before = pg.count(table)
        wait_for(lambda: pg.count(table) > before or producer.done() or
                 job_status(server, jid)["pid"] != pid, 60, 0.005, "the worker to write rows")
        time.sleep(rng.uniform(0, 0.5))
        if producer.done() or not pid_alive(pid) or job_status(server, jid)["pid"] != pid:
            continue
        os.kill(pid, signal.SIGKILL)
        kills += 1
        victims.append(pid)
        rows_at_kill.append(pg.count(table))
    producer.join()
    st = wait_state(server, jid, "running", timeout=120,
                    pred=lambda s: s["pid"] and s["pid"] not in victims)
    census = _wait_all_keys(pg, table, N_KILL, server, jid)
    st = job_status(server, jid)
    figures = (f"{consistency}: produced {N_KILL}, kills {kills}, restarts {st['restarts']}, "
               f"{_census_text(census)}, rows at each kill {rows_at_kill}, "
               f"last_exit {st.get('last_exit')!r}, {time.monotonic() - t0:.1f}s")
    print(figures)
    return census, st, kills, figures


def test_exactly_survives_20_worker_kills(server, pg, kafka):
    census, st, kills, figures = _kill_loop(server, pg, kafka, "EXACTLY", 20, "kill20", 0.3)
    assert kills == 20, f"only {kills} kills landed during the load: {figures}"
    assert census["lost"] == 0 and census["extra"] == 0, figures
    assert census["duplicates"] == 0, figures
    assert census["rows"] == census["distinct"] == N_KILL, figures
    assert st["restarts"] >= kills, f"restarts {st['restarts']} < kills {kills}: {figures}"
    assert st.get("last_exit") and "9" in st["last_exit"], \
        f"last_exit should name signal 9: {st.get('last_exit')!r}"


def test_atleast_survives_10_worker_kills(server, pg, kafka):
    census, st, kills, figures = _kill_loop(server, pg, kafka, "ATLEAST", 10, "kill10", 0.15)
    assert kills == 10, f"only {kills} kills landed during the load: {figures}"
    assert census["lost"] == 0 and census["extra"] == 0, figures
    assert census["distinct"] == N_KILL, figures
    assert st["restarts"] >= kills, figures


# --------------------------------------------------------------- stale worker

def test_stale_second_worker_writes_nothing_twice(server, pg, kafka, tmp_path):
    n = 60_000
    topic, table, jid, conf = _job(server, pg, kafka, "stale", consistency="EXACTLY",
                                   max_row=1000, interval=200)
    st = wait_state(server, jid, "running")
    producer = PacedProducer(kafka, topic, n, chunk=2000, pause=0.1)
    wait_for(lambda: pg.count(table) > 0, 60, 0.02, "first rows")
    rows_at_start = pg.count(table)
    # A second worker by hand with the controller's input (password included).
    job_input = {"job_id": jid, "job_name": server.call("GET", f"/jobs/{jid}")["name"],
                 "config": to_yaml(conf)}
    log = open(tmp_path / "stale-worker.log", "wb")
    extra = subprocess.Popen([str(WORKER)], stdin=subprocess.PIPE, stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        extra.stdin.write(json.dumps(job_input).encode())
        extra.stdin.close()
        producer.join()
        census = _wait_all_keys(pg, table, n, server, jid, timeout=180)
        try:
            rc = extra.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
        st = job_status(server, jid)
        log.flush()
        tail = (tmp_path / "stale-worker.log").read_text(errors="replace")[-1500:]
        figures = (f"stale worker: produced {n}, extra worker started at {rows_at_start} rows, "
                   f"{_census_text(census)}, extra worker "
                   f"exit {rc} ({(tail.strip().splitlines() or [''])[-1][-200:]}), job state "
                   f"{st['state']} restarts {st['restarts']}")
        print(figures)
        # What the issue requires: nothing written twice, nothing lost.
        assert census["duplicates"] == 0 and census["lost"] == 0, figures
        # And one of the two stopped: a second worker of the same task joins
        # the group with the same group.instance.id, and Kafka fences out the
        # older member (which exits and is restarted by the controller, then
        # fences out the extra one); a batch either wrote meanwhile lost the
        # progress table's compare-and-set and was rolled back.  So either
        # the extra worker exited fenced, or the job's own worker was fenced
        # out and restarted by the controller.
        fenced = ("advanced by another task" in tail
                  or "joined group" in tail and "as this task" in tail)
        if rc is not None:
            assert rc == 1 and fenced, \
                f"the extra worker exited {rc} without the fence message: {figures}\n  its log: {tail}"
            assert st["state"] == "running", f"the controller's job is {st}"
        else:
            assert st["restarts"] >= 1 and "exit code 1" in (st.get("last_exit") or ""), \
                f"neither worker was fenced out: {figures} status {st}"
    finally:
        if extra.poll() is None:
            extra.kill()
            extra.wait()
        log.close()


# ------------------------------------------------------ the controller killed

def test_controller_killed_no_loss_never_two_workers(server, pg, kafka):
    n = 100_000
    topic, table, jid, _ = _job(server, pg, kafka, "ctlkill", consistency="EXACTLY",
                                max_row=2000, interval=200)
    wait_state(server, jid, "running")
    producer = PacedProducer(kafka, topic, n, chunk=2000, pause=0.1)
    wait_for(lambda: pg.count(table) > 0, 60, 0.02, "first rows")
    old = job_status(server, jid)["pid"]
    rows_at_kill = pg.count(table)
    assert old

    worker_exe = str(WORKER.resolve())
    most = [0, set()]
    stop = threading.Event()

    def workers():
        pids = set()
        for p in server.leftover_processes():
            try:
                if os.path.realpath(f"/proc/{p}/exe") == worker_exe:
                    pids.add(p)
            except OSError:
                pass
        return pids

    def watch():
        while not stop.is_set():
            w = workers()
            if len(w) > most[0]:
                most[0], most[1] = len(w), w
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        server.restart(kill=True)
        st = wait_state(server, jid, "running", timeout=90,
                        pred=lambda s: s["pid"] and s["pid"] != old)
        producer.join()
        census = _wait_all_keys(pg, table, n, server, jid, timeout=180)
    finally:
        stop.set()
        watcher.join(5)
    figures = (f"controller kill at {rows_at_kill} rows: produced {n}, {_census_text(census)}, "
               f"most workers at once "
               f"{most[0]} {sorted(most[1])}, old worker {old} alive {pid_alive(old)}, "
               f"new {st['pid']}")
    print(figures)
    assert not pid_alive(old), f"the old worker outlived its controller: {figures}"
    assert most[0] <= 1, f"two workers ran the job at once: {figures}"
    assert census["duplicates"] == 0 and census["lost"] == 0, figures


# ------------------------------------------------------------------ bad data

POISON_TABLE = ("column_1 varchar(32), column_2 bigint, column_3 numeric, "
                "column_4 varchar(32), column_5 varchar(32) NOT NULL")


def _errors(server, jid, page_size=100):
    items, page = [], 1
    while True:
        body = server.call("GET", f"/jobs/{jid}/errors?page={page}&page_size={page_size}")
        items += body["items"]
        if len(items) >= body["total"] or not body["items"]:
            return items, body["total"]
        page += 1


def test_poison_messages_go_to_the_error_table(server, pg, kafka):
    n_good = 5000
    topic, table, jid, conf = _job(server, pg, kafka, "poison", partitions=1,
                                   table_sql=POISON_TABLE, consistency="EXACTLY",
                                   max_row=500, interval=200, error_limit=1000, start=False)
    good = delimited_messages(0, n_good)
    poison = {
        "undecodable": "kbad0|1|1.5",                      # 3 fields for 5
        "bigint": "kbad1|notanumber|1.5|a|b",              # column_2 bigint
        "too long": f"kbad2|2|2.5|{'x' * 40}|b",           # column_4 varchar(32)
        "not null": "kbad3|3|3.5|a|",                       # column_5 NOT NULL, empty = NULL
    }
    records, bad_at = [], {}
    rng = random.Random(4)
    slots = sorted(rng.sample(range(n_good), 12))  # each kind 3 times, spread out
    kinds = list(poison) * 3
    j = 0
    for i, v in enumerate(good):
        while j < len(slots) and slots[j] == i:
            bad_at[len(records)] = kinds[j]
            records.append({"value": poison[kinds[j]], "partition": 0})
            j += 1
        records.append({"value": v, "partition": 0})
    assigned = produce_records(kafka, topic, records)
    bad_offsets = {assigned[i][1]: kind for i, kind in bad_at.items()}
    start_job(server, jid)
    census = _wait_all_keys(pg, table, n_good, server, jid, timeout=180)
    items = wait_for(lambda: (lambda r: r if r[1] >= len(bad_offsets) else None)(
        _errors(server, jid)), 60, 0.5, "the errors of the job")[0]
    st = job_status(server, jid)
    got = {it["offset"]: it for it in items}
    figures = (f"poison: good {n_good}, bad {len(bad_offsets)}, {_census_text(census)}, "
               f"errors listed {len(items)}, rows_rejected {st['rows_rejected']}, state {st['state']}")
    print(figures)
    assert census["duplicates"] == 0 and census["lost"] == 0 and census["extra"] == 0, figures
    assert set(got) == set(bad_offsets), \
        f"error offsets {sorted(got)} != bad offsets {sorted(bad_offsets)}: {figures}"
    for off, kind in bad_offsets.items():
        it = got[off]
        assert it["topic"] == topic and it["partition"] == 0, it
        value = records[[i for i in bad_at if assigned[i][1] == off][0]]["value"]
        assert it["value"] == value, f"{kind}: value {it['value']!r}, expected {value!r}"
        assert it["error"], f"{kind}: no error message: {it}"
    # The same rows in the table itself.
    rows = pg.query('SELECT "offset", convert_from(value, \'UTF8\'), error, topic, partition '
                    'FROM public.streamserver_errors WHERE job_name = %s',
                    (server.call("GET", f"/jobs/{jid}")["name"],))
    assert {r[0] for r in rows} == set(bad_offsets), rows
    assert st["state"] == "running", f"bad data under ERROR_LIMIT stopped the job: {st}"


def test_error_limit_fails_the_job(server, pg, kafka):
    topic, table, jid, conf = _job(server, pg, kafka, "errlim", partitions=1,
                                   consistency="EXACTLY", max_row=100, interval=200,
                                   error_limit=3, start=False)
    msgs = delimited_messages(0, 200)
    for i in (20, 60, 100, 140, 180):
        msgs[i] = f"kbad{i}|x|y"  # undecodable
    kafka.produce(topic, msgs)
    start_job(server, jid)
    st = wait_state(server, jid, "failed", timeout=90)
    err = st.get("last_error") or ""
    print(f"error limit: state {st['state']}, last_error {err!r}, rows {pg.count(table)}")
    assert "streamserver_errors" in err, f"the message should name the error table: {err!r}"
    assert any(c in err for c in ("3", "4", "5")), f"the message should give the count: {err!r}"
    assert st["desired_state"] in ("running", "stopped"), st
    # It stays failed: no automatic restart.
    time.sleep(3)
    st2 = job_status(server, jid)
    assert st2["state"] == "failed" and st2["pid"] is None, st2


# ------------------------------------------------------------------- offsets

def _iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_offsets_show_and_reset(server, pg, kafka):
    per_wave = 2000
    topic, table, jid, conf = _job(server, pg, kafka, "offs", partitions=2,
                                   consistency="EXACTLY", max_row=500, interval=200)
    now = int(time.time() * 1000)
    t1, t2 = now - 600_000, now - 300_000  # two waves five minutes apart
    wave1 = [{"value": m, "partition": i % 2, "timestamp": t1 + i}
             for i, m in enumerate(delimited_messages(0, per_wave))]
    wave2 = [{"value": m, "partition": i % 2, "timestamp": t2 + i}
             for i, m in enumerate(delimited_messages(per_wave, 2 * per_wave))]
    a1 = produce_records(kafka, topic, wave1)
    a2 = produce_records(kafka, topic, wave2)
    wait_rows(pg, table, 2 * per_wave, server, jid)
    end = {p: 1 + max(o for (q, o, _) in a1 + a2 if q == p) for p in (0, 1)}
    wave2_start = {p: min(o for (q, o, _) in a2 if q == p) for p in (0, 1)}

    off = wait_for(lambda: (lambda b: b if all(x["stored_offset"] == end[x["partition"]]
                                               for x in b["partitions"]) else None)(
        server.call("GET", f"/jobs/{jid}/offsets")), 30, 0.5, "stored offsets at the end")
    print(f"offsets after the load: {off}")
    assert sorted(x["partition"] for x in off["partitions"]) == [0, 1], off
    for x in off["partitions"]:
        assert x["high_watermark"] == end[x["partition"]] and x["lag"] == 0, off
        assert x["low_watermark"] == 0, off
    assert off["total_lag"] == 0, off

    # Not while running.
    error_of(server.request("POST", f"/jobs/{jid}/offsets/reset", {"to": "earliest"}),
             409, "conflict")
    stop_job(server, jid)
    wait_state(server, jid, "stopped")
    error_of(server.request("POST", f"/jobs/{jid}/offsets/reset", {"to": "sideways"}),
             422, "invalid")

    # To the second wave's time: exactly the second wave again.
    r = server.call("POST", f"/jobs/{jid}/offsets/reset", {"to": "timestamp", "timestamp": _iso(t2)})
    assert {x["partition"]: x["offset"] for x in r["partitions"]} == wave2_start, r
    off = server.call("GET", f"/jobs/{jid}/offsets")
    for x in off["partitions"]:
        p = x["partition"]
        assert x["stored_offset"] == wave2_start[p] and x["lag"] == end[p] - wave2_start[p], off
    assert off["total_lag"] == per_wave, off
    pg.execute(f'TRUNCATE "{table}"')
    start_job(server, jid)
    wait_rows(pg, table, per_wave, server, jid)
    keys = {k for (k,) in pg.query(f'SELECT column_1 FROM "{table}"')}
    assert pg.count(table) == per_wave and keys == {f"k{i}" for i in range(per_wave, 2 * per_wave)}, \
        f"the replay is not exactly the second wave: {pg.count(table)} rows"
    print(f"timestamp reset {_iso(t2)}: replayed {per_wave} rows, exactly the second wave")

    # Explicit offsets, then earliest (ms timestamps are accepted too: checked above as ISO).
    stop_job(server, jid)
    wait_state(server, jid, "stopped")
    r = server.call("POST", f"/jobs/{jid}/offsets/reset",
                    {"to": "offsets", "offsets": [{"partition": 0, "offset": 10},
                                                  {"partition": 1, "offset": 20}]})
    assert {x["partition"]: x["offset"] for x in r["partitions"]} == {0: 10, 1: 20}, r
    off = server.call("GET", f"/jobs/{jid}/offsets")
    assert {x["partition"]: x["stored_offset"] for x in off["partitions"]} == {0: 10, 1: 20}, off
    assert off["total_lag"] == end[0] - 10 + end[1] - 20, off
    r = server.call("POST", f"/jobs/{jid}/offsets/reset", {"to": "earliest"})
    assert {x["partition"]: x["offset"] for x in r["partitions"]} == {0: 0, 1: 0}, r
    r = server.call("POST", f"/jobs/{jid}/offsets/reset", {"to": "latest"})
    assert {x["partition"]: x["offset"] for x in r["partitions"]} == end, r

    # start with a reset: earliest replays everything.
    pg.execute(f'TRUNCATE "{table}"')
    st = server.call("POST", f"/jobs/{jid}/start", {"reset": {"to": "earliest"}}, expect=202)
    assert st["desired_state"] == "running", st
    wait_rows(pg, table, 2 * per_wave, server, jid)
    assert pg.count(table) == 2 * per_wave


# -------------------------------------------------------------- retry policy

def test_unreachable_database_retries_then_gives_up(server, pg, kafka):
    topic = kafka.create_topic(unique("retry"), partitions=1)
    closed = free_port()
    svc = create_service(server, pg, database_port=closed)
    src = create_source(server, svc["id"], kafka, topic)
    conf = delivery_job_dict(pg, kafka, topic, "t_nowhere", retry_interval="1s", max_retries=2)
    del conf["HOST"], conf["PORT"]  # from the service: a closed port
    job = create_job(server, professional_job(src["id"], to_yaml(conf)))
    jid = job["id"]
    t0 = time.monotonic()
    start_job(server, jid)
    seen = []

    def state():
        st = job_status(server, jid)
        if not seen or seen[-1][0] != st["state"]:
            seen.append((st["state"], st.get("last_error"), st.get("last_exit")))
        return st if st["state"] == "failed" else None

    st = wait_for(state, 90, 0.05, "the job to give up")
    took = time.monotonic() - t0
    print(f"retry policy: states {seen}, final {st}, {took:.1f}s")
    retrying = [s for s in seen if s[0] == "retrying"]
    assert retrying, f"the job never showed retrying: {seen}"
    assert any(s[1] for s in retrying), f"retrying without a reason in last_error: {seen}"
    assert "gave up" in (st.get("last_error") or "").lower(), st
    assert "last_exit" in st and st["last_exit"], f"no last_exit in {st}"
    assert st["restarts"] >= 2 or "2" in st["last_error"], st


# ------------------------------------------------ CONSISTENCY none and at-most

@pytest.mark.parametrize("consistency", ["none", "at-most"])
def test_stop_and_start_resume_where_they_left(server, pg, kafka, consistency):
    """none keeps no progress table and resumes from the Kafka group's
    committed offsets; at-most stores the progress before the rows.  A clean
    stop and start loses and repeats nothing in either."""
    n1, n2 = 3000, 2000
    topic, table, jid, _ = _job(server, pg, kafka, "resume", consistency=consistency, max_row=500)
    kafka.produce(topic, delimited_messages(0, n1), partitions=4)
    census = _wait_all_keys(pg, table, n1, server, jid)
    assert census["rows"] == n1 and census["duplicates"] == 0, _census_text(census)
    stop_job(server, jid)
    wait_state(server, jid, "stopped")
    kafka.produce(topic, delimited_messages(n1, n1 + n2), partitions=4)
    start_job(server, jid)
    census = _wait_all_keys(pg, table, n1 + n2, server, jid)
    figures = f"{consistency}: produced {n1 + n2}, {_census_text(census)}"
    print(figures)
    assert census["rows"] == census["distinct"] == n1 + n2, figures
    assert census["lost"] == 0 and census["duplicates"] == 0, figures
    name = server.call("GET", f"/jobs/{jid}")["name"]
    exists = pg.query("SELECT to_regclass('public.streamserver_progress') IS NOT NULL")[0][0]
    progress = pg.query("SELECT count(*) FROM public.streamserver_progress WHERE job_name = %s",
                        (name,))[0][0] if exists else 0
    assert (progress == 0) == (consistency == "none"), \
        f"{consistency}: {progress} progress rows"
