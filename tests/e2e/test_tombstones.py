"""Tombstones (messages without a value) and headers, against the real broker
and database: OUTPUT.DELETE_ON_TOMBSTONE deleting rows in MERGE and UPDATE
(the latest message of a key wins, within a batch and across batches, on both
upsert paths), a worker killed with SIGKILL during a mixed insert/delete load
under CONSISTENCY EXACTLY, tombstones skipped and counted without the option,
the option's validation, and message headers in META used by MAPPING."""
import json
import os
import random
import re
import signal

import pytest

from helpers import (cols, create_service, create_source, error_of, job_dict, job_status,
                     job_yaml, produce_records, professional_job, run_job, to_yaml, unique,
                     wait_consumed, wait_for, wait_query, wait_state, wizard_job)

TABLE = "id integer PRIMARY KEY, version integer, val text"
ROWS = "SELECT id, version, val FROM \"{}\" ORDER BY id"
KEY = {"COLUMNS": cols(("id", "integer")), "FORMAT": "delimited",
       "DELIMITED_OPTION": {"DELIMITER": "|"}}
VALUE = {"COLUMNS": cols(("version", "integer"), ("val", "text")), "FORMAT": "json"}


def _setup(server, pg, kafka, prefix, partitions=1):
    topic = kafka.create_topic(unique(prefix), partitions=partitions)
    table = pg.create_table(unique(f"t_{prefix}"), TABLE)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    return topic, table, src["id"]


def _job(pg, kafka, topic, table, mode, output, max_row=1000, interval=2000, consistency=None,
         **kw):
    commit = {"MAX_ROW": max_row, "MINIMAL_INTERVAL": interval}
    if consistency:
        commit["CONSISTENCY"] = consistency
    return job_yaml(pg, kafka, topic, table, mode=mode, output=output, key=KEY, value=VALUE,
                    commit=commit, **kw)


def _rec(key, version=None, val=None):
    """A record of key (None: no key); without val a tombstone."""
    value = None if val is None else json.dumps({"version": version, "val": val})
    return {"key": None if key is None else str(key), "value": value, "partition": 0}


# Produced before the job starts, in this order, into one partition.
HISTORY = [
    _rec(1),                 # an existing row deleted
    _rec(2, 1, "a"),
    _rec(4, 1, "x"),         # inserted, ...
    _rec(3),                 # an existing row deleted, ...
    _rec(2),                 # an update, then deleted
    _rec(None),              # no key: names no row, skipped and counted
    _rec(4),                 # ... deleted, ...
    _rec(3, 1, "b"),         # ... and inserted again
    _rec(4, 3, "y"),         # ... inserted again (largest version), ...
    _rec(5),                 # a key without a row: nothing to delete
    _rec(6, 1, "p"),
    _rec(4, 2, "z"),         # ... and updated: the latest message of key 4
]
BEFORE = [(1, 0, "old1"), (2, 0, "old2"), (3, 0, "old3"), (9, 0, "keep")]


@pytest.mark.parametrize("case", ["one_batch", "order_columns", "batch_per_message"])
def test_merge_deletes_on_tombstones(upsert_path, server, pg, kafka, case):
    """MERGE with DELETE_ON_TOMBSTONE: a key deleted, re-inserted and updated
    within one batch and across batches ends as its latest message says (with
    ORDER_COLUMNS the largest version after the key's latest tombstone); a
    delete after an insert removes it; a tombstone without a key is skipped
    and counted; rows of other keys are left alone."""
    topic, table, src = _setup(server, pg, kafka, "tmb")
    pg.execute(f'INSERT INTO "{table}" VALUES ' +
               ", ".join(f"({i}, {v}, '{s}')" for i, v, s in BEFORE))
    produce_records(kafka, topic, HISTORY)
    output = {"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["version", "val"],
              "DELETE_ON_TOMBSTONE": True}
    if case == "order_columns":
        output["ORDER_COLUMNS"] = ["version"]
    max_row = 1 if case == "batch_per_message" else 1000
    job_id = run_job(server, professional_job(src, _job(pg, kafka, topic, table, "MERGE", output,
                                                        max_row=max_row)))
    key4 = (4, 3, "y") if case == "order_columns" else (4, 2, "z")
    expected = [(3, 1, "b"), key4, (6, 1, "p"), (9, 0, "keep")]
    wait_consumed(server, job_id, len(HISTORY))
    wait_query(pg, ROWS.format(table), expected, server, job_id)
    st = job_status(server, job_id)
    assert st["tombstones_skipped"] == 1, st
    # rows 1, 2 and 3 existed and were deleted (3 re-inserted); one batch
    # per message also deletes key 4's first row
    assert st["rows_deleted"] >= 2, st
    assert st["rows_rejected"] == 0, st
    assert pg.scalar("SELECT count(*) FROM streamserver_errors WHERE job_name = %s",
                     (st["name"],)) == 0


def test_update_deletes_on_tombstones(server, pg, kafka):
    """UPDATE with DELETE_ON_TOMBSTONE: existing keys are updated or deleted
    by their latest message; new keys are not inserted."""
    topic, table, src = _setup(server, pg, kafka, "tmbu")
    pg.execute(f'INSERT INTO "{table}" VALUES ' +
               ", ".join(f"({i}, {v}, '{s}')" for i, v, s in BEFORE))
    produce_records(kafka, topic, HISTORY)
    output = {"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["version", "val"],
              "DELETE_ON_TOMBSTONE": True}
    job_id = run_job(server, professional_job(src, _job(pg, kafka, topic, table, "UPDATE",
                                                        output)))
    wait_consumed(server, job_id, len(HISTORY))
    wait_query(pg, ROWS.format(table), [(3, 1, "b"), (9, 0, "keep")], server, job_id)
    assert job_status(server, job_id)["tombstones_skipped"] == 1


@pytest.mark.parametrize("mode", ["INSERT", "MERGE"])
def test_tombstones_skipped_without_the_option(server, pg, kafka, mode):
    """Without DELETE_ON_TOMBSTONE (and always in INSERT) a tombstone is no
    bad message: it writes nothing, is counted as tombstones_skipped (status
    and /metrics), and the job goes on; nothing reaches the error table."""
    topic, table, src = _setup(server, pg, kafka, "tmbs")
    records = [_rec(1, 1, "a"), _rec(1), _rec(2, 1, "b"), _rec(None), _rec(3), _rec(3, 1, "c")]
    produce_records(kafka, topic, records)
    output = {"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["version", "val"]} \
        if mode == "MERGE" else {}
    job_id = run_job(server, professional_job(src, _job(pg, kafka, topic, table, mode, output)))
    wait_consumed(server, job_id, len(records))
    wait_query(pg, ROWS.format(table), [(1, 1, "a"), (2, 1, "b"), (3, 1, "c")], server, job_id)
    st = wait_state(server, job_id, "running", pred=lambda s: s["tombstones_skipped"] == 3)
    assert (st["rows_rejected"], st["rows_deleted"], st["last_error"]) == (0, 0, None), st
    assert pg.scalar("SELECT count(*) FROM streamserver_errors WHERE job_name = %s",
                     (st["name"],)) == 0
    text = server.request("GET", "/metrics").text
    line = re.search(r'^streamserver_job_tombstones_skipped_total\{[^}]*job_id="%d"[^}]*\} (\d+)$'
                     % job_id, text, re.M)
    assert line and line.group(1) == "3", [x for x in text.splitlines() if "tombstones" in x]


def test_delete_on_tombstone_validation(server, pg, kafka):
    """DELETE_ON_TOMBSTONE in INSERT mode, without KEY, or with MATCH_COLUMNS
    that a tombstone does not carry: 422 naming the key and the fix."""
    topic, table, src = _setup(server, pg, kafka, "tmbv")
    cases = [
        (job_yaml(pg, kafka, topic, table, mode="INSERT", key=KEY, value=VALUE,
                  output={"DELETE_ON_TOMBSTONE": True}),
         "KAFKA.OUTPUT.DELETE_ON_TOMBSTONE", "MODE UPDATE or MERGE"),
        (job_yaml(pg, kafka, topic, table, mode="MERGE",
                  value={"COLUMNS": cols(("id", "integer"), ("version", "integer"), ("val", "text")),
                         "FORMAT": "json"},
                  output={"MATCH_COLUMNS": ["id"], "DELETE_ON_TOMBSTONE": True}),
         "KAFKA.OUTPUT.DELETE_ON_TOMBSTONE", "KAFKA.INPUT.KEY"),
        (job_yaml(pg, kafka, topic, table, mode="MERGE",
                  key={"COLUMNS": cols(("k", "text")), "FORMAT": "delimited",
                       "DELIMITED_OPTION": {"DELIMITER": "|"}},
                  value={"COLUMNS": cols(("id", "integer"), ("version", "integer"), ("val", "text")),
                         "FORMAT": "json"},
                  output={"MATCH_COLUMNS": ["id"], "DELETE_ON_TOMBSTONE": True,
                          "MAPPING": [{"NAME": "id", "EXPRESSION": "id"},
                                      {"NAME": "version", "EXPRESSION": "version"}]}),
         "KAFKA.OUTPUT.MATCH_COLUMNS[0]", "VALUE column"),
        (job_yaml(pg, kafka, topic, table, mode="MERGE", key=KEY, value=VALUE,
                  output={"MATCH_COLUMNS": ["id"], "DELETE_ON_TOMBSTONE": "sometimes"}),
         "KAFKA.OUTPUT.DELETE_ON_TOMBSTONE", "true or false"),
    ]
    for config, field, words in cases:
        err = error_of(server.request("POST", "/jobs", professional_job(src, config)), 422, "invalid")
        hits = [x for x in err.get("details") or [err] if x.get("field") == field]
        assert hits and words in hits[0]["message"], (field, words, err)


def test_validate_delete_on_tombstone(server, pg, kafka):
    """validate: the statements a MERGE deleting on tombstones runs end with
    the DELETE; an account that may insert and update but not delete is told
    so on DELETE_ON_TOMBSTONE (code privilege)."""
    topic, table, src = _setup(server, pg, kafka, "tmbc")
    output = {"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["version", "val"],
              "DELETE_ON_TOMBSTONE": True}
    d = job_dict(pg, kafka, topic, table, mode="MERGE", output=output, key=KEY, value=VALUE)
    ans = server.call("POST", "/jobs/validate", professional_job(src, to_yaml(d)))
    assert ans["valid"] is True and ans["database_checked"] is True, ans
    writes = [x for x in ans["statements"] if f'"public"."{table}"' in x]
    assert [x.split(" ")[0] for x in writes] == ["WITH", "DELETE"], writes
    assert "WHERE NOT d.streamserver_tombstone" in writes[0], writes
    role, password = unique("nodel"), "Nd" + unique("pw")
    pg.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    try:
        pg.execute(f'GRANT CONNECT, TEMP ON DATABASE "{pg.dbname}" TO "{role}"')
        pg.execute(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"')
        pg.execute(f'GRANT SELECT, INSERT, UPDATE ON "{table}" TO "{role}"')
        d["USER"], d["PASSWORD"] = role, password
        ans = server.call("POST", "/jobs/validate", professional_job(src, to_yaml(d)))
        assert ans["valid"] is False and ans["database_checked"] is True, ans
        hits = [e for e in ans["errors"] if e["field"] == "KAFKA.OUTPUT.DELETE_ON_TOMBSTONE"]
        assert hits and hits[0]["code"] == "privilege" and "DELETE" in hits[0]["message"], ans
    finally:
        pg.execute(f'DROP OWNED BY "{role}"')
        pg.execute(f'DROP ROLE "{role}"')


def test_wizard_delete_on_tombstone(server, pg, kafka):
    """The wizard's delete_on_tombstone: the match field is read from the
    message key (in the source's delimited format), the value keeps all its
    fields; a tombstone deletes the row; INSERT refuses the option."""
    topic, table, src = _setup(server, pg, kafka, "tmbw")
    pg.execute(f'INSERT INTO "{table}" VALUES (1, 0, \'old1\'), (2, 0, \'old2\')')
    records = [{"key": "1", "value": "1|1|a"}, {"key": "3", "value": "3|1|c"}, {"key": "2"},
               {"key": "3", "value": "3|2|d"}, {"key": "1"}, {"key": "4", "value": "4|1|e"}]
    produce_records(kafka, topic, [dict(r, value=r.get("value"), partition=0) for r in records])
    fields = [{"source": "id", "dest": "id", "role": "match"},
              {"source": "version", "dest": "version", "role": "update"},
              {"source": "val", "dest": "val", "role": "update"}]
    body = wizard_job(src, pg, table, [], write_mode="MERGE", fields=fields,
                      delete_on_tombstone=True)
    job_id = run_job(server, body)
    wait_consumed(server, job_id, len(records))
    wait_query(pg, ROWS.format(table), [(3, 2, "d"), (4, 1, "e")], server, job_id)
    assert server.call("GET", f"/jobs/{job_id}")["delete_on_tombstone"] is True
    err = error_of(server.request("POST", "/jobs", wizard_job(src, pg, table, ["id"],
                                                              delete_on_tombstone=True)),
                   422, "invalid")
    hits = [x for x in err.get("details") or [err] if x.get("field") == "delete_on_tombstone"]
    assert hits and "UPDATE or MERGE" in hits[0]["message"], err


def test_exactly_kill9_mixed_inserts_and_deletes(server, pg, kafka):
    """CONSISTENCY EXACTLY, MERGE with DELETE_ON_TOMBSTONE, 4 partitions (a
    key always in one): a worker killed with SIGKILL while it loads 30,000
    upserts and tombstones of 600 keys.  The final table is exactly what the
    latest message of every key says."""
    topic, table, src = _setup(server, pg, kafka, "tmbk", partitions=4)
    rng = random.Random(15)
    records, last = [], {}
    for i in range(30_000):
        k = rng.randrange(600)
        if rng.random() < 0.3:
            records.append({"key": str(k), "value": None})
            last[k] = None
        else:
            records.append({"key": str(k), "value": json.dumps({"version": i, "val": f"v{i}"})})
            last[k] = (k, i, f"v{i}")
    expected = sorted(v for v in last.values() if v is not None)
    output = {"MATCH_COLUMNS": ["id"], "UPDATE_COLUMNS": ["version", "val"],
              "DELETE_ON_TOMBSTONE": True}
    job_id = run_job(server, professional_job(src, _job(pg, kafka, topic, table, "MERGE", output,
                                                        max_row=500, interval=200,
                                                        consistency="EXACTLY")))
    wait_state(server, job_id, "running")
    produce_records(kafka, topic, records[:15_000])
    wait_for(lambda: pg.scalar(f'SELECT count(*) FROM "{table}"') > 0, 60, 0.02, "first rows")
    victim = job_status(server, job_id)["pid"]
    assert victim, "a running job has no worker pid"
    os.kill(victim, signal.SIGKILL)
    produce_records(kafka, topic, records[15_000:])
    wait_state(server, job_id, "running", timeout=90,
               pred=lambda s: s["restarts"] >= 1 and s["pid"] and s["pid"] != victim)
    wait_query(pg, ROWS.format(table), expected, server, job_id, timeout=180)
    # every offset stored: the whole topic is in the table
    stored = pg.scalar("SELECT sum(next_offset) FROM streamserver_progress WHERE job_name = %s",
                       (job_status(server, job_id)["name"],))
    assert stored == len(records), stored


def test_headers_in_meta_and_mapping(server, pg, kafka):
    """META's headers object lands in a jsonb column: text values, a value
    that is not UTF-8 as {"base64"}, a null value, a repeated name as an
    array; MAPPING takes one header into its own column."""
    topic = kafka.create_topic(unique("hdr"), partitions=1)
    table = pg.create_table(unique("t_hdr"), "id integer, trace text, hdrs jsonb")
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)["id"]
    records = [
        {"value": "1", "partition": 0,
         "headers": [("trace", b"t-1"), ("bin", b"\x00\xff"), ("tag", b"x"), ("tag", b"y"),
                     ("nothing", None), ("caf\u00e9", "cr\u00e8me".encode())]},
        {"value": "2", "partition": 0},
    ]
    produce_records(kafka, topic, records)
    config = job_yaml(pg, kafka, topic, table,
                      value={"COLUMNS": cols(("id", "integer")), "FORMAT": "delimited",
                             "DELIMITED_OPTION": {"DELIMITER": "|"}},
                      meta={"COLUMNS": cols(("meta", "jsonb")), "FORMAT": "json"},
                      output={"MAPPING": [{"NAME": "id", "EXPRESSION": "id"},
                                          {"NAME": "trace", "EXPRESSION": "meta->'headers'->>'trace'"},
                                          {"NAME": "hdrs", "EXPRESSION": "meta->'headers'"}]})
    job_id = run_job(server, professional_job(src, config))
    rows = wait_query(pg, f'SELECT id, trace, hdrs FROM "{table}" ORDER BY id',
                      [(1, "t-1", {"trace": "t-1", "bin": {"base64": "AP8="}, "tag": ["x", "y"],
                                   "nothing": None, "caf\u00e9": "cr\u00e8me"}),
                       (2, None, {})], server, job_id)
    assert rows[1][2] == {}
