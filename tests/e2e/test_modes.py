"""Write modes (INSERT / UPDATE / MERGE), duplicate keys in one batch,
MATCH_COLUMNS checked at creation, PARTITIONS, FALLBACK_OFFSET, and the seed's
flattened professional-mode example."""
import re
import time
from decimal import Decimal

import pytest

from helpers import (COLUMNS5, Raw, TABLE5, cols, create_job, create_service, create_source,
                     delimited_messages, error_of, job_status, job_yaml, professional_job,
                     run_job, start_job, stop_job, unique, wait_consumed, wait_query, wait_state)

# id|version|val|note
MODE_COLUMNS = [("id", "integer"), ("version", "integer"), ("val", "text"), ("note", "text")]
MODE_TABLE = "id integer PRIMARY KEY, version integer, val text, note text"


def _mode_job(pg, kafka, topic, table, mode, output, max_row=1000, interval=2000):
    return job_yaml(pg, kafka, topic, table, mode=mode, output=output,
                    value={"COLUMNS": cols(*MODE_COLUMNS), "FORMAT": "delimited",
                           "DELIMITED_OPTION": {"DELIMITER": "|"}},
                    commit={"MAX_ROW": max_row, "MINIMAL_INTERVAL": interval})


def _setup(server, pg, kafka, prefix, table_sql, partitions=1):
    topic = kafka.create_topic(unique(prefix), partitions=partitions)
    table = pg.create_table(unique(f"t_{prefix}"), table_sql)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    return topic, table, src["id"]


def _rows(table):
    return f'SELECT id, version, val, note FROM "{table}" ORDER BY id'


# Several messages per key, all in one batch: a single partition, everything
# produced before the job starts, MAX_ROW far above the count and a
# MINIMAL_INTERVAL long enough for one fetch to bring them all.
DUPLICATES = ["1|3|a|n1a",
              "1|5|b|n1b",   # largest version of key 1, not its last message
              "1|4|c|n1c",
              "3|2|x|n3x",   # largest version of key 3 (a new key), its first message
              "3|1|y|n3y",
              "4|1|z|n4z",
              "1|2|d|n1d"]   # the latest message of key 1


@pytest.mark.parametrize("order", [True, False], ids=["order_columns", "latest_wins"])
def test_merge_duplicate_keys_in_one_batch(upsert_path, server, pg, kafka, order):
    """MERGE: with ORDER_COLUMNS the row with the largest value wins even when
    it is not the last message; without, the latest message wins.  Existing
    keys change only in UPDATE_COLUMNS; new keys are inserted whole; other
    rows are left alone.  Both statement paths."""
    topic, table, src = _setup(server, pg, kafka, "mrg", MODE_TABLE)
    pg.execute(f"""INSERT INTO "{table}" VALUES (1, 0, 'old', 'keep1'), (2, 0, 'untouched', 'keep2')""")
    kafka.produce(topic, DUPLICATES)
    output = {"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["version", "val"]}
    if order:
        output["ORDER_COLUMNS"] = ["version"]
    job_id = run_job(server, professional_job(src, _mode_job(pg, kafka, topic, table, "MERGE",
                                                             output)))
    if order:
        expected = [(1, 5, "b", "keep1"), (2, 0, "untouched", "keep2"), (3, 2, "x", "n3x"),
                    (4, 1, "z", "n4z")]
    else:
        expected = [(1, 2, "d", "keep1"), (2, 0, "untouched", "keep2"), (3, 1, "y", "n3y"),
                    (4, 1, "z", "n4z")]
    wait_consumed(server, job_id, len(DUPLICATES))
    wait_query(pg, _rows(table), expected, server, job_id)
    time.sleep(1)
    assert pg.query(_rows(table)) == expected
    # One batch, one row per key: 1 updated, 3 and 4 inserted (MERGE counts
    # updated + inserted rows).  More would mean the duplicates were split.
    st = job_status(server, job_id)
    assert (st["messages_consumed"], st["rows_written"]) == (len(DUPLICATES), 3), \
        f"expected 7 messages written as 3 rows in one batch: {st}"


def test_merge_backlog_in_segments_latest_wins(upsert_path, server, pg, kafka):
    """MERGE on a backlog under EXACTLY with MAX_ROW 500 (issue 14): the
    worker writes it in one query string per transaction, several segments
    of at most 500 rows each; keys repeat within a segment (the upsert
    without DISTINCT ON fails and the batch is written again with it) and
    across segments.  Every key ends with its latest message, the other
    rows stay as they were, the stored offset is the end.  The first message
    goes alone first (a partition's first batch stores its offset the slow
    way); the job is stopped while the backlog is produced, so the restarted
    worker meets all of it at once."""
    topic, table, src = _setup(server, pg, kafka, "mseg", MODE_TABLE)
    pg.execute(f"""INSERT INTO "{table}" VALUES (2, 0, 'untouched', 'keep2')""")
    conf = job_yaml(pg, kafka, topic, table, mode="MERGE",
                    output={"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["version", "val"]},
                    value={"COLUMNS": cols(*MODE_COLUMNS), "FORMAT": "delimited",
                           "DELIMITED_OPTION": {"DELIMITER": "|"}},
                    commit={"MAX_ROW": 500, "MINIMAL_INTERVAL": 200, "CONSISTENCY": "EXACTLY"})
    kafka.produce(topic, ["1000|0|first|n1000"])
    job_id = run_job(server, professional_job(src, conf))
    wait_query(pg, _rows(table), [(2, 0, "untouched", "keep2"), (1000, 0, "first", "n1000")], server, job_id)
    stop_job(server, job_id)
    wait_state(server, job_id, "stopped")
    n, keys = 3000, 300
    # message i: key 10 + i % 300, version i; each key 10 times, once or
    # twice per 500.  note (not an UPDATE_COLUMN) is the key's own: the row
    # inserted keeps it whichever message of the first segment inserted it.
    kafka.produce(topic, [f"{10 + i % keys}|{i}|v{i}|n{i % keys}" for i in range(n)])
    start_job(server, job_id)
    expected = sorted([(2, 0, "untouched", "keep2"), (1000, 0, "first", "n1000")] +
                      [(10 + k, n - keys + k, f"v{n - keys + k}", f"n{k}") for k in range(keys)])
    wait_consumed(server, job_id, n + 1)
    wait_query(pg, _rows(table), expected, server, job_id)
    name = server.call("GET", f"/jobs/{job_id}")["name"]
    stored = pg.query("SELECT next_offset FROM public.streamserver_progress WHERE job_name = %s", (name,))
    assert stored == [(n + 1,)], f"stored offsets {stored}, expected [({n + 1},)]"
    st = job_status(server, job_id)
    assert st["rows_rejected"] == 0, st


def test_update_only_touches_existing_keys(server, pg, kafka):
    """UPDATE: messages whose key is in the table update its UPDATE_COLUMNS
    (and nothing else); messages with keys that do not exist insert
    nothing."""
    topic, table, src = _setup(server, pg, kafka, "upd", MODE_TABLE)
    pg.execute(f"""INSERT INTO "{table}" VALUES (1, 0, 'v1', 'n1'), (2, 0, 'v2', 'n2'),
                                               (3, 0, 'v3', 'n3')""")
    msgs = ["1|7|u1|x1", "70|7|u70|x70", "2|7|u2|x2", "80|7|u80|x80", "90|7|u90|x90"]
    kafka.produce(topic, msgs)
    job_id = run_job(server, professional_job(src, _mode_job(
        pg, kafka, topic, table, "UPDATE", {"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["val"]},
        interval=500)))
    expected = [(1, 0, "u1", "n1"), (2, 0, "u2", "n2"), (3, 0, "v3", "n3")]
    wait_consumed(server, job_id, len(msgs))
    wait_query(pg, _rows(table), expected, server, job_id)
    time.sleep(1)
    assert pg.query(_rows(table)) == expected, "UPDATE inserted or changed rows it should not"
    st = job_status(server, job_id)
    assert st["state"] == "running" and st["last_error"] in (None, ""), st
    assert (st["messages_consumed"], st["rows_written"]) == (len(msgs), 2), \
        f"UPDATE counts the rows it updated (2): {st}"


def _match_error(resp):
    """The 422 names KAFKA.OUTPUT.MATCH_COLUMNS and says what is needed."""
    err = error_of(resp, 422, "invalid")
    hits = [d for d in (err.get("details") or [err])
            if (d.get("field") or "") == "KAFKA.OUTPUT.MATCH_COLUMNS"
            or (d.get("field") or "").startswith("KAFKA.OUTPUT.MATCH_COLUMNS[")]
    assert hits, f"the 422 does not name KAFKA.OUTPUT.MATCH_COLUMNS: {err}"
    assert any(w in (d.get("message") or "").lower() for d in hits
               for w in ("primary key", "unique")), \
        f"the message should say a primary key or unique index is needed: {hits}"
    return err


def test_match_columns_must_be_unique_at_creation(server, pg, kafka):
    """UPDATE / MERGE need MATCH_COLUMNS that are the table's primary key or
    a unique index: otherwise creating (or changing) the job is a 422 naming
    KAFKA.OUTPUT.MATCH_COLUMNS, and nothing is stored."""
    topic, _, src = _setup(server, pg, kafka, "muq", "id integer")
    no_key = pg.create_table(unique("t_nokey"), "id integer, version integer, val text, note text")
    with_pk = pg.create_table(unique("t_pk"), MODE_TABLE)
    uniq = pg.create_table(unique("t_uq"), "id integer, version integer, val text, note text")
    pg.execute(f'CREATE UNIQUE INDEX ON "{uniq}" (version, id)')

    for table, mode, match in ((no_key, "MERGE", ["id"]), (with_pk, "UPDATE", ["val"]),
                               (with_pk, "MERGE", ["id", "val"]), (uniq, "MERGE", ["id"])):
        config = _mode_job(pg, kafka, topic, table, mode,
                           {"MATCH_COLUMNS": match, "UPDATE_COLUMNS": ["note"]})
        _match_error(server.request("POST", "/jobs", professional_job(src, config)))
    # Wizard jobs are the same job model: roles "match" on a column that is not unique.
    wiz = {"source_id": src, "name": unique("job"), "mode": "wizard", "group_name": unique("grp"),
           "database": pg.dbname, "schema": "public", "table": no_key, "account": pg.user,
           "password": pg.password, "write_mode": "UPDATE",
           "fields": [{"source": "id", "dest": "id", "role": "match"},
                      {"source": "version", "dest": "version", "role": "update"},
                      {"source": "val", "dest": "val", "role": "none"},
                      {"source": "note", "dest": "note", "role": "none"}]}
    error_of(server.request("POST", "/jobs", wiz), 422, "invalid")
    assert server.call("GET", "/jobs")["total"] == 0

    # A primary key and a unique index (in any column order) are accepted.
    ok = [create_job(server, professional_job(src, _mode_job(
        pg, kafka, topic, table, "MERGE", {"MATCH_COLUMNS": match, "UPDATE_COLUMNS": ["note"]})))
        for table, match in ((with_pk, ["id"]), (uniq, ["version", "id"]), (uniq, ["id", "version"]))]
    # Changing an accepted job to non-unique MATCH_COLUMNS is refused the same way.
    bad = _mode_job(pg, kafka, topic, with_pk, "MERGE",
                    {"MATCH_COLUMNS": ["note"], "UPDATE_COLUMNS": ["val"]})
    _match_error(server.request("PATCH", f"/jobs/{ok[0]['id']}", {"config": bad}))
    assert server.call("GET", "/jobs")["total"] == 3


def test_partitions_subset(server, pg, kafka):
    """PARTITIONS in the seed's form `(0,2)` and as a YAML list: each job
    reads only those partitions."""
    n = 40
    topic = kafka.create_topic(unique("parts"), partitions=4)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    value = {"COLUMNS": cols(*COLUMNS5), "FORMAT": "delimited",
             "DELIMITED_OPTION": {"DELIMITER": "|"}}
    kafka.produce(topic, delimited_messages(0, n), partitions=4)  # message i -> partition i % 4
    jobs = []
    for parts, want in ((Raw("(0,2)"), {0, 2}), ([1, 3], {1, 3})):
        table = pg.create_table(unique("t_parts"), TABLE5)
        jid = run_job(server, professional_job(src["id"], job_yaml(pg, kafka, topic, table,
                                                                   value=value, partitions=parts)))
        jobs.append((jid, table, want))
    for jid, table, want in jobs:
        expected = [(i,) for i in range(n) if i % 4 in want]
        sql = f'SELECT column_2 FROM "{table}" ORDER BY column_2'
        wait_query(pg, sql, expected, server, jid)
        wait_consumed(server, jid, len(expected))
        time.sleep(1.5)
        assert pg.query(sql) == expected, f"partitions {sorted(want)}: rows from other partitions"
        st = job_status(server, jid)
        assert st["messages_consumed"] == len(expected), \
            f"a job on partitions {sorted(want)} consumed other partitions' messages: {st}"


def test_fallback_offset_earliest_versus_latest(server, pg, kafka):
    """Messages produced before the start: loaded by an `earliest` job, not by
    a `latest` one; messages produced after the start: loaded by both."""
    topic = kafka.create_topic(unique("fb"), partitions=1)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    value = {"COLUMNS": cols(*COLUMNS5), "FORMAT": "delimited",
             "DELIMITED_OPTION": {"DELIMITER": "|"}}
    before = 10
    kafka.produce(topic, delimited_messages(0, before))
    jobs = {}
    for fb in ("earliest", "latest"):
        table = pg.create_table(unique(f"t_{fb}"), TABLE5)
        job = create_job(server, professional_job(src["id"], job_yaml(pg, kafka, topic, table,
                                                                      value=value, fallback=fb)))
        jobs[fb] = (job["id"], table)
    for jid, _ in jobs.values():
        start_job(server, jid)
    for jid, _ in jobs.values():
        wait_state(server, jid, "running")

    # "latest" is the end of the partition when the worker looks it up, some
    # time after `running`: produce rounds of 5 until the latest job has rows.
    latest_id, latest_table = jobs["latest"]
    after, start, deadline = [], 100, time.monotonic() + 90
    while True:
        msgs = delimited_messages(start, start + 5)
        kafka.produce(topic, msgs)
        after += list(range(start, start + 5))
        start += 5
        t_end = min(time.monotonic() + 10, deadline)
        while time.monotonic() < t_end and not pg.count(latest_table):
            assert job_status(server, latest_id)["state"] != "failed", job_status(server, latest_id)
            time.sleep(0.25)
        if pg.count(latest_table) or time.monotonic() >= deadline:
            break
    assert pg.count(latest_table), f"the latest job loaded nothing: {job_status(server, latest_id)}"

    earliest_id, earliest_table = jobs["earliest"]
    wait_query(pg, f'SELECT column_2 FROM "{earliest_table}" ORDER BY 1',
               [(i,) for i in list(range(before)) + after], server, earliest_id)
    # The latest job has a suffix of the messages produced after the start:
    # none of the earlier ones, every one after the point where it looked.
    wait_query(pg, f'SELECT max(column_2) FROM "{latest_table}"', [(after[-1],)],
               server, latest_id)
    wait_consumed(server, latest_id, 1)
    time.sleep(1)
    got = [v for (v,) in pg.query(f'SELECT column_2 FROM "{latest_table}" ORDER BY 1')]
    assert not set(got) & set(range(before)), f"latest loaded messages from before its start: {got}"
    assert got == after[len(after) - len(got):], \
        f"latest must load every message after its starting point: {got} of {after}"


# The seed's "Professional mode" example, exactly as the seed prints it: one
# line (the page flattened its YAML).  Hosts, ports, credentials and names are
# replaced with the test's; MODE MERGE as written.
SEED_FLAT = (
    'DATABASE: liss_test USER: liss_test PASSWORD: lissTest**** HOST: '
    'gp-2ze517f9l7****-master.gpdb.rds-aliyun-pre.rds.aliyuncs.com PORT: 5432 KAFKA: INPUT: '
    'SOURCE: BROKERS: alikafka-post-cn-wwo3hflbo002-1-vpc.alikafka.aliyuncs.com:9092,'
    'alikafka-post-cn-wwo3hflbo002-2-vpc.alikafka.aliyuncs.com:9092,'
    'alikafka-post-cn-wwo3hflbo002-3-vpc.alikafka.aliyuncs.com:9092 TOPIC: test_topic '
    'FALLBACK_OFFSET: EARLIEST VALUE: COLUMNS: - NAME: column_1 TYPE: varchar(32) - NAME: '
    'column_2 TYPE: bigint - NAME: column_3 TYPE: numeric - NAME: column_4 TYPE: varchar(32) '
    '- NAME: column_5 TYPE: varchar(32) FORMAT: delimited DELIMITED_OPTION: DELIMITER: "|" '
    'ERROR_LIMIT: 20 OUTPUT: SCHEMA: liss_test TABLE: liss_test_plaintext MODE: MERGE '
    'MATCH_COLUMNS: - column_1 - column_2 UPDATE_COLUMNS: - column_3 - column_4 - column_5 '
    'MAPPING: - NAME: column_1 EXPRESSION: column_1 - NAME: column_2 EXPRESSION: column_2 - '
    'NAME: column_3 EXPRESSION: column_3 - NAME: column_4 EXPRESSION: column_4 - NAME: column_5 '
    'EXPRESSION: column_5 COMMIT: MAX_ROW: 1000 MINIMAL_INTERVAL: 1000 CONSISTENCY: ATLEAST '
    'POLL: BATCHSIZE: 1000 TIMEOUT: 1000 PROPERTIES: group.id: test_consumer_group')


def seed_flat(pg, kafka, topic, schema, table, group):
    subs = [("DATABASE: liss_test ", f"DATABASE: {pg.dbname} "),
            ("USER: liss_test ", f"USER: {pg.user} "),
            ("PASSWORD: lissTest**** ", f"PASSWORD: {pg.password} "),
            (re.compile(r"HOST: \S+ "), f"HOST: {pg.host} "),
            ("PORT: 5432 ", f"PORT: {pg.port} "),
            (re.compile(r"BROKERS: \S+ "), f"BROKERS: {kafka.bootstrap} "),
            ("TOPIC: test_topic ", f"TOPIC: {topic} "),
            ("SCHEMA: liss_test ", f"SCHEMA: {schema} "),
            ("TABLE: liss_test_plaintext ", f"TABLE: {table} "),
            ("group.id: test_consumer_group", f"group.id: {group}")]
    text = SEED_FLAT
    for old, new in subs:
        if isinstance(old, str):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        else:
            text, k = old.subn(new, text)
            assert k == 1, old.pattern
    assert "\n" not in text and "liss" not in text and "alikafka" not in text, text
    return text


def test_seed_flattened_example_merge(server, pg, kafka):
    """The seed's one-line professional-mode example is accepted by POST /jobs
    as it is and loads: MERGE on the primary key (column_1, column_2), later
    messages of a key update column_3..column_5."""
    n, m = 30, 10
    schema = unique("seed")
    pg.execute(f'CREATE SCHEMA "{schema}"')
    table = pg.create_table(unique("t_seedflat"),
                            TABLE5 + ", PRIMARY KEY (column_1, column_2)", schema=schema)
    topic = kafka.create_topic(unique("seedflat"), partitions=1)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    kafka.produce(topic, delimited_messages(0, n) +
                  [f"k{i}|{i}|{i}.75|upd{i}|u{i}" for i in range(m)])
    config = seed_flat(pg, kafka, topic, schema, table, unique("grp"))
    job = create_job(server, professional_job(src["id"], config))
    assert job["mode"] == "professional", job
    assert pg.password not in str(job), "the password is shown in the created job"
    start_job(server, job["id"])
    expected = [(f"k{i}", i, Decimal(f"{i}.75") if i < m else Decimal(f"{i}.5"),
                 f"upd{i}" if i < m else f"a{i}", f"u{i}" if i < m else f"b{i}")
                for i in range(n)]
    sql = (f'SELECT column_1, column_2, column_3, column_4, column_5 FROM "{schema}"."{table}" '
           f'ORDER BY column_2')
    wait_query(pg, sql, expected, server, job["id"])
    wait_consumed(server, job["id"], n + m)
    assert pg.query(sql) == expected
