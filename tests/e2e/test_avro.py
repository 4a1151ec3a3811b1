"""FORMAT avro with a local schema (unframed messages): AVRO_OPTION.SCHEMA_FILE
and SCHEMA, fields into typed columns and the whole record into one jsonb
column, logical types as PostgreSQL reads them, BYTES_TO_BASE64, and a bad
message in the error table with its offset.

Messages are written by Apache Avro's Python library (python3-avro), never by
our own encoder.  Registry-framed Avro is tested with the registry harness
(tests/harness/registry.sh) in its own files.
"""
import datetime
import io
import json
import uuid
from decimal import Decimal

import pytest

from helpers import (cols, create_service, create_source, job_status, job_yaml, produce_records,
                     professional_job, run_job, stop_job, unique, wait_consumed, wait_query,
                     wait_state)

try:
    import avro.io
    import avro.schema
except ImportError as e:  # pragma: no cover - install-deps installs it
    raise ImportError(f"{e}: install python3-avro (scripts/install-deps.sh)") from e

UTC = datetime.timezone.utc

SCHEMA = {
    "type": "record", "name": "Order", "namespace": "shop.v1",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal",
                                   "precision": 12, "scale": 3}},
        {"name": "created", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "updated", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "status", "type": {"type": "enum", "name": "Status",
                                    "symbols": ["NEW", "PAID", "SHIPPED"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "qty", "type": ["null", "int"], "default": None},
        {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "city", "type": "string"},
            {"name": "zip", "type": ["null", "string"], "default": None}]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "double"}},
        {"name": "blob", "type": "bytes"},
        {"name": "ratio", "type": "float"},
        {"name": "flag", "type": "boolean"},
    ],
}

COLUMNS = [("id", "bigint"), ("customer", "text"), ("price", "numeric(12,3)"),
           ("created", "timestamptz"), ("updated", "timestamptz"), ("day", "date"),
           ("at", "time"), ("uid", "uuid"), ("status", "text"), ("note", "text"),
           ("qty", "integer"), ("address", "jsonb"), ("tags", "jsonb"), ("attrs", "jsonb"),
           ("blob", "bytea"), ("ratio", "real"), ("flag", "boolean")]


def _record(i):
    return {
        "id": i if i % 7 else -(2**62) - i,
        "customer": f"c{i} caf\u00e9 \"q\" \\ \U0001F600",
        "price": Decimal(f"{'-' if i % 3 == 0 else ''}{i * 1000 + 123}.{i % 1000:03d}"),
        "created": datetime.datetime(2024, 1, 31, 13, 45, 0, (i % 1000) * 1000, tzinfo=UTC)
        + datetime.timedelta(days=i),
        "updated": datetime.datetime(1969, 12, 31, 23, 59, 59, 999999 - i, tzinfo=UTC),
        "day": datetime.date(2024, 2, 29) + datetime.timedelta(days=i),
        "at": datetime.time(i % 24, 5, 6, (i % 1000) * 1000),
        "uid": str(uuid.UUID(int=i * 7919 + 1)),
        "status": ["NEW", "PAID", "SHIPPED"][i % 3],
        "note": None if i % 4 == 0 else f"note {i}\nline 2",
        "qty": None if i % 5 == 0 else i,
        "address": {"city": f"city{i}", "zip": None if i % 2 else f"{10000 + i}"},
        "tags": [f"t{i}", "x"] if i % 6 else [],
        "attrs": {"w": i + 0.5, "h": -1.25},
        "blob": bytes([i % 256, 0, 255]),
        "ratio": 0.5 + i,
        "flag": i % 2 == 0,
    }


def _encode(schema, record):
    out = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(out))
    return out.getvalue()


def _setup(server, pg, kafka, prefix, table_sql):
    topic = kafka.create_topic(unique(prefix), partitions=1)
    table = pg.create_table(unique(f"t_{prefix}"), table_sql)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    return topic, table, src["id"]


@pytest.mark.parametrize("given", ["SCHEMA_FILE", "SCHEMA"])
def test_avro_local_schema_into_typed_columns(server, pg, kafka, tmp_path, given):
    """Each column takes the record's field of its name: decimals exactly,
    timestamp-millis/micros as timestamptz (before the epoch too), date,
    time-millis, uuid, an enum's symbol, a union's branch (its null as NULL),
    a nested record, an array and a map as JSON, bytes as bytea.  One message
    that is not Avro of this schema goes to the error table with its offset
    and every other message loads."""
    n = 40
    bad_at = 17
    topic, table, src = _setup(server, pg, kafka, "avro",
                               ", ".join(f"{c} {t}" for c, t in COLUMNS))
    schema_text = json.dumps(SCHEMA)
    schema = avro.schema.parse(schema_text)
    records = [_record(i) for i in range(n)]
    values = [_encode(schema, r) for r in records]
    # Cut short: the decoder must say truncated, not read past the end.
    values.insert(bad_at, values[bad_at][:-3])
    acks = produce_records(kafka, topic, [{"value": v} for v in values])

    option = {}
    if given == "SCHEMA_FILE":
        path = tmp_path / "order.avsc"
        path.write_text(json.dumps(SCHEMA, indent=2))
        option["SCHEMA_FILE"] = str(path)
    else:
        option["SCHEMA"] = schema_text
    config = job_yaml(pg, kafka, topic, table, error_limit=5, value={
        "COLUMNS": cols(*COLUMNS), "FORMAT": "avro", "AVRO_OPTION": option})
    job_id = run_job(server, professional_job(src, config))

    expected = [(r["id"], r["customer"], r["price"], r["created"], r["updated"], r["day"],
                 r["at"], r["uid"], r["status"], r["note"], r["qty"],
                 r["address"], r["tags"], r["attrs"], r["blob"], r["ratio"], r["flag"])
                for r in records]
    expected.sort(key=lambda row: row[0])
    sql = (f'SELECT {", ".join(c for c, _ in COLUMNS)} FROM "{table}" ORDER BY id')

    def normalize(rows):
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]

    wait_query(pg, f'SELECT count(*) FROM "{table}"', [(n,)], server, job_id)
    wait_consumed(server, job_id, n + 1)
    assert normalize(pg.query(sql)) == expected
    errors = pg.query('SELECT "offset", error FROM public.streamserver_errors '
                      'WHERE topic = %s ORDER BY "offset"', (topic,))
    assert len(errors) == 1, errors
    assert errors[0][0] == acks[bad_at][1]
    assert "truncated Avro data" in errors[0][1], errors[0][1]


def test_avro_whole_record_into_jsonb_base64(server, pg, kafka):
    """One jsonb column takes the whole record: numbers stay numbers (a
    decimal exactly), logical types as PostgreSQL's own JSON writes them,
    unions as their branch's value, bytes as base64 with BYTES_TO_BASE64."""
    n = 25
    topic, table, src = _setup(server, pg, kafka, "avrow", "doc jsonb")
    schema_text = json.dumps(SCHEMA)
    schema = avro.schema.parse(schema_text)
    records = [_record(i) for i in range(n)]
    produce_records(kafka, topic, [{"value": _encode(schema, r)} for r in records])
    config = job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(("doc", "jsonb")), "FORMAT": "avro",
        "AVRO_OPTION": {"SCHEMA": schema_text, "BYTES_TO_BASE64": True}})
    job_id = run_job(server, professional_job(src, config))
    wait_query(pg, f'SELECT count(*) FROM "{table}"', [(n,)], server, job_id)
    wait_consumed(server, job_id, n)

    # What PostgreSQL says each value is, against the record as written.
    rows = pg.query(
        f"""SELECT (doc->>'id')::bigint, doc->>'customer', (doc->'price')::numeric,
                   (doc->>'created')::timestamptz, (doc->>'updated')::timestamptz,
                   (doc->>'day')::date, (doc->>'at')::time, (doc->>'uid')::uuid, doc->>'status',
                   doc->>'note', (doc->>'qty')::int, doc->'address', doc->'tags', doc->'attrs',
                   decode(doc->>'blob', 'base64'), (doc->>'ratio')::real, (doc->>'flag')::boolean,
                   jsonb_typeof(doc->'price'), doc->'note' = 'null'::jsonb OR doc->>'note' IS NOT NULL
            FROM "{table}" ORDER BY (doc->>'id')::bigint""")
    expected = sorted(
        [(r["id"], r["customer"], r["price"], r["created"], r["updated"], r["day"], r["at"],
          r["uid"], r["status"], r["note"], r["qty"], r["address"], r["tags"],
          r["attrs"], r["blob"], r["ratio"], r["flag"], "number", True) for r in records],
        key=lambda row: row[0])
    got = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]
    assert got == expected


REGISTRY_PASSWORD = "reg-pass-" + "6b1f0e9d8c7a5e3d"


def test_source_registry_inherited_secret_and_outage(server, pg, kafka):
    """A source names avro and a schema registry with basic-auth credentials:
    the password is shown as "****" and "****" sent back keeps it; a YAML job
    that leaves AVRO_OPTION out inherits the registry.  The registry cannot be
    reached (nothing listens on its port): the job is retrying, not failed,
    with the reason in last_error, no row is written and no message goes to
    the error table; the password appears in no API answer, log line, or the
    worker's command line or environment."""
    topic = kafka.create_topic(unique("avreg"), partitions=1)
    table = pg.create_table(unique("t_avreg"), "id bigint, name text")
    svc = create_service(server, pg)

    # Bad addresses are refused with the field named.
    for bad, why in (("ftp://reg:8081", "must start with http:// or https://"),
                     ("http://alice:pw@reg:8081", "must not hold user:password")):
        resp = server.request("POST", "/sources", {
            "service_id": svc["id"], "name": unique("src"), "brokers": kafka.bootstrap,
            "topic": topic, "format": "avro", "schema_registry": bad})
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["field"] == "schema_registry" and why in resp.text, resp.text
    resp = server.request("POST", "/sources", {
        "service_id": svc["id"], "name": unique("src"), "brokers": kafka.bootstrap, "topic": topic,
        "format": "avro", "schema_registry": "http://127.0.0.1:1", "schema_registry_user": "bob"})
    assert resp.status_code == 422 and "go together" in resp.text, resp.text

    src = create_source(server, svc["id"], kafka, topic, format="avro", delimiter=None,
                        schema_registry="http://127.0.0.1:1", schema_registry_user="bob",
                        schema_registry_password=REGISTRY_PASSWORD)
    assert src["schema_registry_password"] == "****", src
    assert (src["format"], src["delimiter"], src["schema_registry"], src["schema_registry_user"]) == \
        ("avro", None, "http://127.0.0.1:1", "bob")
    server.call("PATCH", f"/sources/{src['id']}",
                {"schema_registry_password": "****", "description": "kept"})

    config = job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(("id", "bigint"), ("name", "text")), "FORMAT": "avro"})
    # validate asks the registry for the topic's subject: it cannot answer.
    resp = server.request("POST", "/jobs/validate", professional_job(src["id"], config), timeout=60)
    assert "unreachable" in resp.text and "no schema registry answered for subject" in resp.text, \
        resp.text
    assert f"{topic}-value" in resp.text and REGISTRY_PASSWORD not in resp.text, resp.text
    job_id = run_job(server, professional_job(src["id"], config))
    shown = server.request("GET", f"/jobs/{job_id}/config").text
    assert "SCHEMA_REGISTRY_ADDR: http://127.0.0.1:1" in shown, shown
    assert "SCHEMA_REGISTRY_USER: bob" in shown, shown
    assert "SCHEMA_REGISTRY_PASSWORD: '****'" in shown, shown

    # A framed message (schema id 1) the worker must look up.
    produce_records(kafka, topic, [{"value": b"\x00\x00\x00\x00\x01\x02\x02x"}])
    st = wait_state(server, job_id, "retrying",
                    pred=lambda s: "no schema registry answered for schema id 1" in
                    (s.get("last_error") or ""))
    assert pg.query(f'SELECT count(*) FROM "{table}"') == [(0,)]
    assert pg.query("SELECT count(*) FROM public.streamserver_errors WHERE topic = %s",
                    (topic,)) == [(0,)]

    pid = job_status(server, job_id)["pid"]
    if pid:
        for part in ("cmdline", "environ"):
            try:
                data = open(f"/proc/{pid}/{part}", "rb").read()
            except OSError:
                continue  # the worker has just exited to retry
            assert REGISTRY_PASSWORD.encode() not in data, part
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/status", f"/jobs/{job_id}/config",
                 f"/sources/{src['id']}", "/sources"):
        assert REGISTRY_PASSWORD not in server.request("GET", path).text, path
    assert REGISTRY_PASSWORD not in json.dumps(st)
    stop_job(server, job_id)
    wait_state(server, job_id, "stopped")
    assert REGISTRY_PASSWORD not in server.log_text()
