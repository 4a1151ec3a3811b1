"""Messages framed for a schema registry (issue 15): Avro, Protobuf and JSON
Schema through a registry with Confluent's REST API, end to end.

The registry is tests/harness/registry.sh, OUR OWN stand-in for Confluent's
Schema Registry (no real one can be had from the package registries this
project may use; see tests/harness/registry_server.py).  Everything else is
other projects' code: schemas are registered with confluent-kafka's
SchemaRegistryClient; Avro bodies are written by Apache Avro's Python library
(python3-avro; confluent-kafka's AvroSerializer needs fastavro, which Debian
does not ship), Protobuf bodies by google.protobuf from classes protoc
compiled, JSON by confluent-kafka's JSONSerializer (framing included).  Where
the test frames a body itself it follows Confluent's documented wire format
(a zero byte, the schema id as 4 bytes big-endian, for Protobuf the message
indexes as zigzag varints), the only bytes written here.

The first two tests check the harness itself; they need no worker.
"""
import base64
import io
import json
import random
import struct
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from helpers import (cols, create_service, create_source, job_status, job_yaml, produce_records,
                     professional_job, protobuf_class, protoc_descriptor_set, run_job, unique,
                     wait_consumed, wait_for, wait_query)

try:
    import avro.io
    import avro.schema
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError
except ImportError as e:  # a missing dependency fails, never skips
    raise ImportError(f"{e}: scripts/install-deps.sh installs python3-avro and "
                      "python3-confluent-kafka") from e


# ------------------------------------------------------------------ framing

def confluent_frame(schema_id, body, indexes=None):
    """Confluent's wire format: magic byte 0, the schema id (4 bytes,
    big-endian), for Protobuf the message indexes, then the body."""
    head = b"\0" + struct.pack(">I", schema_id)
    if indexes is not None:
        head += _pb_indexes(indexes)
    return head + body


def _zigzag_varint(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_indexes(path):
    """The message indexes of a message type at path (its index among the
    file's messages, then among each enclosing message's nested ones):
    [0] is the single byte 0, else the count and each index."""
    if path == [0]:
        return b"\0"
    return _zigzag_varint(len(path)) + b"".join(_zigzag_varint(i) for i in path)


class AvroWriter:
    """Apache Avro's DatumWriter for one registered schema, framed."""

    def __init__(self, schema_text, schema_id):
        self.schema = avro.schema.parse(schema_text)
        self.writer = avro.io.DatumWriter(self.schema)
        self.id = schema_id

    def body(self, datum):
        buf = io.BytesIO()
        self.writer.write(datum, avro.io.BinaryEncoder(buf))
        return buf.getvalue()

    def __call__(self, datum):
        return confluent_frame(self.id, self.body(datum))


def _register(client, subject, text, schema_type="AVRO"):
    return client.register_schema(subject, Schema(text, schema_type))


def _setup(server, pg, kafka, prefix, table_sql, partitions=1):
    topic = kafka.create_topic(unique(prefix), partitions=partitions)
    table = pg.create_table(unique(f"t_{prefix}"), table_sql)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    return topic, table, svc["id"], src["id"]


def _errors(server, jid):
    items, page = [], 1
    while True:
        body = server.call("GET", f"/jobs/{jid}/errors?page={page}&page_size=100")
        items += body["items"]
        if len(items) >= body["total"] or not body["items"]:
            return items
        page += 1


# ----------------------------------------------------------- the harness

def test_harness_registry_speaks_confluents_api(registry):
    """registry.sh serves what confluent-kafka's client uses: register
    (the same schema keeps its id, a new version gets a new one), fetch by
    id, latest version, lookup, compatibility (an incompatible Avro schema is
    refused with 409), 40403 for an unknown id, 40401 for an unknown subject;
    schemaType left out for AVRO and given for the others."""
    c = registry.client()
    subject = unique("harness") + "-value"
    v1 = json.dumps({"type": "record", "name": "H", "namespace": subject.replace("-", "_"),
                     "fields": [{"name": "a", "type": "long"}]})
    v2 = json.dumps({"type": "record", "name": "H", "namespace": subject.replace("-", "_"),
                     "fields": [{"name": "a", "type": "long"},
                                {"name": "b", "type": ["null", "string"], "default": None}]})
    bad = json.dumps({"type": "record", "name": "H", "namespace": subject.replace("-", "_"),
                      "fields": [{"name": "a", "type": "string"}]})
    id1 = _register(c, subject, v1)
    id2 = _register(c, subject, v2)
    assert id1 != id2 and _register(c, subject, v1) == id1
    fresh = registry.client()  # no cache: every answer from the server
    assert json.loads(fresh.get_schema(id1).schema_str) == json.loads(v1)
    assert fresh.get_schema(id1).schema_type == "AVRO"
    latest = fresh.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, id2)
    assert fresh.lookup_schema(subject, Schema(v1, "AVRO")).version == 1
    assert fresh.test_compatibility(subject, Schema(bad, "AVRO")) is False
    with pytest.raises(SchemaRegistryError) as e:
        fresh.register_schema(subject, Schema(bad, "AVRO"))
    assert e.value.http_status_code == 409
    with pytest.raises(SchemaRegistryError) as e:
        fresh.get_schema(10**6)
    assert (e.value.http_status_code, e.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as e:
        fresh.get_latest_version(unique("nosuch"))
    assert (e.value.http_status_code, e.value.error_code) == (404, 40401)
    # The raw answers, as a worker reads them.
    r = requests.get(f"{registry.url}/schemas/ids/{id1}", timeout=10)
    assert r.status_code == 200 and "schemaType" not in r.json(), r.text
    assert r.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    pid = _register(c, unique("harness_pb") + "-value",
                    'syntax = "proto3";\npackage h.v1;\nmessage M { int64 a = 1; }\n', "PROTOBUF")
    r = requests.get(f"{registry.url}/schemas/ids/{pid}", timeout=10).json()
    assert r["schemaType"] == "PROTOBUF" and "message M" in r["schema"], r
    from google.protobuf import descriptor_pb2
    ser = requests.get(f"{registry.url}/schemas/ids/{pid}?format=serialized", timeout=10).json()
    fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(ser["schema"]))
    assert fdp.package == "h.v1" and [m.name for m in fdp.message_type] == ["M"], fdp
    assert registry.fetches(f"/schemas/ids/{id1}") >= 2


def test_harness_registry_auth_and_restart(make_registry):
    """--auth: 401 without the password, answers with it (through
    confluent-kafka's client, basic.auth.user.info); the password is in
    neither the server's command line nor its environment.  A restart keeps
    the port, the password and the schemas; under --prefix only that path is
    served."""
    reg = make_registry(auth=True, prefix="/apis/ccompat/v7")
    assert reg.url.endswith("/apis/ccompat/v7") and reg.user and len(reg.password) >= 16
    r = requests.get(f"{reg.url}/subjects", timeout=10)
    assert r.status_code == 401 and r.json()["error_code"] == 401, r.text
    r = requests.get(f"{reg.url}/subjects", auth=(reg.user, "wrong-" + reg.password), timeout=10)
    assert r.status_code == 401
    sid = _register(reg.client(), "a-value", '"string"')
    root = reg.url.rsplit("/apis/", 1)[0]
    assert requests.get(f"{root}/subjects", auth=(reg.user, reg.password),
                        timeout=10).status_code == 404
    pid = int((reg.dir / "registry.pid").read_text())
    for part in ("cmdline", "environ"):
        assert reg.password.encode() not in Path(f"/proc/{pid}/{part}").read_bytes(), part
    reg.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{reg.url}/subjects", timeout=5)
    reg.start()
    got = requests.get(f"{reg.url}/schemas/ids/{sid}", auth=(reg.user, reg.password), timeout=10)
    assert got.status_code == 200 and got.json()["schema"] == '"string"', got.text


# ------------------------------------------------------------- Avro data

def _order_schema(ns, evolved=False):
    decimal_12_3 = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 3}
    fields = [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "price", "type": decimal_12_3},
        {"name": "created", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "shipped", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
         "default": None},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "status", "type": {"type": "enum", "name": "Status",
                                    "symbols": ["NEW", "PAID", "SHIPPED", "CANCELLED"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "street", "type": "string"},
            {"name": "city", "type": "string"},
            {"name": "zip", "type": ["null", "string"], "default": None},
            {"name": "geo", "type": {"type": "record", "name": "Geo", "fields": [
                {"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}]}}]}},
        {"name": "items", "type": {"type": "array", "items": {
            "type": "record", "name": "Item", "fields": [
                {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
        {"name": "note", "type": ["null", "string", "long"], "default": None},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "blob", "type": "bytes"},
        {"name": "paid", "type": "boolean"},
    ]
    if evolved:  # a new optional field: BACKWARD compatible
        fields.append({"name": "channel", "type": ["null", "string"], "default": None})
    return json.dumps({"type": "record", "name": "Order", "namespace": ns, "fields": fields})


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _order(i, rng, evolved):
    """Message i: every kind of value, edge cases included (negative
    decimals, dates before 1970, empty arrays and maps, NUL bytes, text with
    quotes, backslashes and non-ASCII)."""
    ms = rng.randrange(-10**12, 4 * 10**12)
    created = EPOCH + timedelta(milliseconds=ms)
    shipped = None if i % 3 == 0 else created + timedelta(microseconds=rng.randrange(1, 10**12))
    d = {
        "id": i,
        "customer": f"c{i} \u00e9\u4e2d \"q\" \\ {rng.randrange(10**6)}",
        "price": Decimal(rng.randrange(-10**12 + 1, 10**12)).scaleb(-3),
        "created": created,
        "shipped": shipped,
        "day": date(1970, 1, 1) + timedelta(days=rng.randrange(-30000, 30000)),
        "status": ["NEW", "PAID", "SHIPPED", "CANCELLED"][i % 4],
        "tags": [f"t{j}" for j in range(i % 4)],
        "address": {"street": f"{i} Main St", "city": rng.choice(["Oslo", "Z\u00fcrich", "Lagos"]),
                    "zip": None if i % 5 == 0 else f"{10000 + i % 90000}",
                    "geo": {"lat": rng.randrange(-90 * 10**6, 90 * 10**6) / 10**6,
                            "lon": rng.randrange(-180 * 10**6, 180 * 10**6) / 10**6}},
        "items": [{"sku": f"s{i}-{j}", "qty": rng.randrange(-5, 1000)} for j in range(i % 3)],
        "note": [None, f"note {i}", rng.randrange(-2**62, 2**62)][i % 3],
        "attrs": {f"k{j}": rng.randrange(-2**40, 2**40) for j in range(i % 3)},
        "ref": str(uuid.UUID(int=rng.getrandbits(128))),
        "blob": bytes(rng.randrange(256) for _ in range(i % 7)) + b"\0",
        "paid": bool(i % 2),
    }
    if evolved:
        d["channel"] = None if i % 4 == 0 else f"web{i % 3}"
    return d


AVRO_COLUMNS = [("id", "bigint"), ("customer", "text"), ("price", "numeric(12,3)"),
                ("created", "timestamptz"), ("shipped", "timestamptz"), ("day", "date"),
                ("status", "text"), ("tags", "jsonb"), ("address", "jsonb"), ("items", "jsonb"),
                ("note", "text"), ("attrs", "jsonb"), ("ref", "uuid"), ("blob", "bytea"),
                ("paid", "boolean"), ("channel", "text")]


def _expected_columns(d):
    note = d["note"]
    return (d["id"], d["customer"], d["price"], d["created"], d["shipped"], d["day"],
            d["status"], d["tags"], d["address"], d["items"],
            None if note is None else str(note), d["attrs"], d["ref"], d["blob"].hex(),
            d["paid"], d.get("channel"))


COLUMNS_SQL = """SELECT id, customer, price, created, shipped, day, status, tags, address, items,
                        note, attrs, ref::text, encode(blob, 'hex'), paid, channel
                 FROM "{table}" ORDER BY id"""

# The whole record in one jsonb column: each field read back with the cast
# PostgreSQL would use, unions as their branch (no {"type": value} wrapper),
# bytes as base64 (BYTES_TO_BASE64).
WHOLE_SQL = """SELECT (v->>'id')::bigint, v->>'customer', (v->>'price')::numeric,
                      (v->>'created')::timestamptz, (v->>'shipped')::timestamptz,
                      (v->>'day')::date, v->>'status', v->'tags', v->'address', v->'items',
                      v->'note', v->'attrs', v->>'ref', v->>'blob', v->'paid', v->>'channel',
                      v ? 'channel'
               FROM "{table}" ORDER BY (v->>'id')::bigint"""


def _expected_whole(d):
    return (d["id"], d["customer"], d["price"], d["created"], d["shipped"], d["day"],
            d["status"], d["tags"], d["address"], d["items"], d["note"], d["attrs"], d["ref"],
            base64.b64encode(d["blob"]).decode(), d["paid"], d.get("channel"), "channel" in d)


def test_avro_registry_10000_messages_columns_and_jsonb_with_evolution(server, pg, kafka,
                                                                       registry):
    """10,000 Avro messages on two partitions, framed for the registry: the
    first 5,000 with schema version 1, the rest with version 2 (a new
    optional field, a second schema id mid-stream on both partitions).  One
    job loads top-level fields into typed columns, a second the whole record
    into one jsonb column; every value lands as the producer wrote it.  Each
    schema is fetched from the registry a handful of times, not per message
    or per batch."""
    n, half = 10000, 5000
    topic, table, svc, src = _setup(server, pg, kafka, "avro",
                                    ", ".join(f"{c} {t}" for c, t in AVRO_COLUMNS), partitions=2)
    whole = pg.create_table(unique("t_avro_whole"), "v jsonb")
    client = registry.client()
    ns = topic.replace("-", "_")  # schemas of this test only: ids no other test shares
    s1, s2 = _order_schema(ns), _order_schema(ns, evolved=True)
    id1 = _register(client, f"{topic}-value", s1)
    id2 = _register(client, f"{topic}-value", s2)
    assert id1 != id2
    w1, w2 = AvroWriter(s1, id1), AvroWriter(s2, id2)
    rng = random.Random(15)
    docs = [_order(i, rng, i >= half) for i in range(n)]
    kafka.produce(topic, [(w2 if i >= half else w1)(d) for i, d in enumerate(docs)], partitions=2)

    opt = {"SCHEMA_REGISTRY_ADDR": registry.url}
    jid = run_job(server, professional_job(src, job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(*AVRO_COLUMNS), "FORMAT": "avro", "AVRO_OPTION": opt})))
    jid2 = run_job(server, professional_job(src, job_yaml(pg, kafka, topic, whole, value={
        "COLUMNS": cols(("v", "jsonb")), "FORMAT": "avro",
        "AVRO_OPTION": dict(opt, BYTES_TO_BASE64=True)})))

    expected = [_expected_columns(d) for d in docs]
    wait_query(pg, COLUMNS_SQL.format(table=table), expected, server, jid, timeout=300)
    wait_consumed(server, jid, n)
    assert pg.query(COLUMNS_SQL.format(table=table)) == expected
    expected = [_expected_whole(d) for d in docs]
    wait_query(pg, WHOLE_SQL.format(table=whole), expected, server, jid2, timeout=300)
    wait_consumed(server, jid2, n)
    assert pg.query(WHOLE_SQL.format(table=whole)) == expected
    # The record's own fields only, nested records as objects.
    keys = pg.query(f'SELECT DISTINCT jsonb_object_keys(v) FROM "{whole}"')
    assert {k for (k,) in keys} == {f["name"] for f in json.loads(s2)["fields"]}, keys
    for jobid in (jid, jid2):
        st = job_status(server, jobid)
        assert st["rows_rejected"] == 0 and st["state"] == "running", st
        assert _errors(server, jobid) == []
    fetched = {sid: registry.fetches(f"/schemas/ids/{sid}") for sid in (id1, id2)}
    print(f"avro registry: schema fetches by id {fetched} for {n} messages, two jobs")
    # Cached per worker: one fetch per id and worker; the allowance covers a
    # restarted worker, not a fetch per batch (10 batches of 1,000 a job).
    assert all(1 <= f <= 4 for f in fetched.values()), fetched


# -------------------------------------------------------------- Protobuf

SHIP_PROTO = """syntax = "proto3";
package ship.v1;

message Envelope {
  string trace = 1;
}

message Order {
  message Line {
    string sku = 1;
    int32 qty = 2;
  }
  int64 id = 1;
  repeated Line lines = 2;
}

message Shipment {
  message Parcel {
    message Label {
      string carrier = 1;
      string code = 2;
      int64 weight_g = 3;
      repeated string notes = 4;
      Order.Line line = 5;
    }
  }
}
"""


def test_protobuf_registry_nested_message_indexes(server, pg, kafka, registry, tmp_path):
    """Protobuf framed for the registry with message indexes: the messages
    are ship.v1.Shipment.Parcel.Label, a type nested two deep in the third
    message of its file (indexes [2, 0, 0]), and ship.v1.Order.Line on a
    second topic ([1, 0]); the index path is the one confluent-kafka's
    Protobuf serializer computes for that type.  The schema is registered as
    .proto text; the worker finds the type from the indexes alone."""
    from confluent_kafka.schema_registry.protobuf import _create_msg_index
    n = 300
    topic, table, svc, src = _setup(server, pg, kafka, "pbreg",
                                    "carrier text, code text, weight_g bigint, notes jsonb, "
                                    "line jsonb")
    topic2 = kafka.create_topic(unique("pbreg_line"))
    table2 = pg.create_table(unique("t_pbreg_line"), "sku text, qty int")
    src2 = create_source(server, svc, kafka, topic2)["id"]
    sid = _register(registry.client(), f"{topic}-value", SHIP_PROTO, "PROTOBUF")
    (tmp_path / "ship.proto").write_text(SHIP_PROTO)
    fds = protoc_descriptor_set(tmp_path / "ship.pb", "ship.proto", include_dir=tmp_path)
    Label = protobuf_class(fds, "ship.v1.Shipment.Parcel.Label")
    Line = protobuf_class(fds, "ship.v1.Order.Line")

    def path_of(cls):  # confluent's list is [count, i...] or [0]
        idx = _create_msg_index(cls.DESCRIPTOR)
        return idx if idx == [0] else idx[1:]

    assert path_of(Label) == [2, 0, 0] and path_of(Line) == [1, 0]
    msgs, expected = [], []
    for i in range(n):
        m = Label(carrier=f"car\u00e9 {i % 7}", code=f"Z{i:06d}", weight_g=i * 1000003 - 5,
                  notes=[f"n{j}" for j in range(i % 3)])
        if i % 2:
            m.line.sku, m.line.qty = f"s{i}", -i
        msgs.append(confluent_frame(sid, m.SerializeToString(), path_of(Label)))
        expected.append((f"car\u00e9 {i % 7}", f"Z{i:06d}", i * 1000003 - 5,
                         [f"n{j}" for j in range(i % 3)],
                         f"s{i}" if i % 2 else None, -i if i % 2 else None))
    kafka.produce(topic, msgs)
    kafka.produce(topic2, [confluent_frame(sid, Line(sku=f"l{i}", qty=i).SerializeToString(),
                                           path_of(Line)) for i in range(1, 51)])
    opt = {"SCHEMA_REGISTRY_ADDR": registry.url}
    jid = run_job(server, professional_job(src, job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(("carrier", "text"), ("code", "text"), ("weight_g", "bigint"),
                        ("notes", "jsonb"), ("line", "jsonb")),
        "FORMAT": "protobuf", "PROTOBUF_OPTION": opt})))
    jid2 = run_job(server, professional_job(src2, job_yaml(pg, kafka, topic2, table2, value={
        "COLUMNS": cols(("sku", "text"), ("qty", "int")),
        "FORMAT": "protobuf", "PROTOBUF_OPTION": opt})))
    sql = (f"""SELECT carrier, code, weight_g, notes, line->>'sku', (line->>'qty')::int
               FROM "{table}" ORDER BY code""")
    wait_query(pg, sql, expected, server, jid)
    wait_consumed(server, jid, n)
    sql2 = f'SELECT sku, qty FROM "{table2}" ORDER BY qty'
    wait_query(pg, sql2, [(f"l{i}", i) for i in range(1, 51)], server, jid2)
    assert pg.query(sql) == expected
    assert job_status(server, jid)["rows_rejected"] == 0


# ----------------------------------------------------------- JSON Schema

def test_json_schema_framing(server, pg, kafka, registry):
    """FORMAT json with a registry: messages written by confluent-kafka's
    JSONSerializer (schema registered by it, the framing its own) load by
    field and whole into jsonb."""
    from confluent_kafka.schema_registry.json_schema import JSONSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    n = 400
    topic, table, svc, src = _setup(server, pg, kafka, "jsreg",
                                    "id bigint, name text, amount numeric, tags jsonb, raw jsonb")
    schema = json.dumps({
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "Payment",
        "type": "object", "required": ["id", "name"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                       "amount": {"type": "number"},
                       "tags": {"type": "array", "items": {"type": "string"}}}})
    ser = JSONSerializer(schema, registry.client())
    ctx = SerializationContext(topic, MessageField.VALUE)
    docs = [{"id": i, "name": f"p\u00e9 \"{i}\"", "amount": i + 0.5, "tags": ["a"] * (i % 3)}
            for i in range(n)]
    msgs = [ser(d, ctx) for d in docs]
    assert all(m[:1] == b"\0" and m[5:6] == b"{" for m in msgs), msgs[0][:8]
    sid = struct.unpack(">I", msgs[0][1:5])[0]
    assert registry.client().get_schema(sid).schema_type == "JSON"
    kafka.produce(topic, msgs)
    opt = {"SCHEMA_REGISTRY_ADDR": registry.url}
    jid = run_job(server, professional_job(src, job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(("id", "bigint"), ("name", "text"), ("amount", "numeric"),
                        ("tags", "jsonb")),
        "FORMAT": "json", "JSON_OPTION": opt})))
    whole = pg.create_table(unique("t_jsreg_whole"), "raw jsonb")
    jid2 = run_job(server, professional_job(src, job_yaml(pg, kafka, topic, whole, value={
        "COLUMNS": cols(("raw", "jsonb")), "FORMAT": "json", "JSON_OPTION": opt})))
    expected = [(d["id"], d["name"], Decimal(str(d["amount"])), d["tags"]) for d in docs]
    wait_query(pg, f'SELECT id, name, amount, tags FROM "{table}" ORDER BY id', expected,
               server, jid)
    wait_query(pg, f"""SELECT raw FROM "{whole}" ORDER BY (raw->>'id')::bigint""",
               [(d,) for d in docs], server, jid2)
    wait_consumed(server, jid, n)
    assert job_status(server, jid)["rows_rejected"] == 0


# ------------------------------------------------------ registry outages

SMALL = {"type": "record", "name": "Tick", "fields": [
    {"name": "id", "type": "long"},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                "precision": 10, "scale": 2}}]}


def test_registry_down_10s_mid_load_then_unknown_id_to_error_table(server, pg, kafka,
                                                                   make_registry):
    """The registry stops while the job still needs a schema it has not
    fetched (a second version, first used after the stop): the job waits and
    retries, sends nothing to the error table for the outage, and after 10
    s, when the registry is back, loads every message exactly once.  A
    message whose schema id the registry does not know (404, 40403) is a bad
    message: it goes to the error table with its offset, and the job goes
    on."""
    reg = make_registry()
    topic, table, svc, src = _setup(server, pg, kafka, "regdown", "id bigint, amount numeric, "
                                    "src text")
    client = reg.client()
    s1 = json.dumps(SMALL)
    s2 = json.dumps(dict(SMALL, fields=SMALL["fields"] + [
        {"name": "src", "type": ["null", "string"], "default": None}]))
    id1, id2 = _register(client, f"{topic}-value", s1), _register(client, f"{topic}-value", s2)
    w1, w2 = AvroWriter(s1, id1), AvroWriter(s2, id2)
    unknown = max(id1, id2) + 1000

    def tick(i):
        return {"id": i, "amount": Decimal(i * 7 - 5000).scaleb(-2)}

    records = [{"value": w1(tick(i))} for i in range(2000)]
    jid = run_job(server, professional_job(src, job_yaml(
        pg, kafka, topic, table, error_limit=10,
        value={"COLUMNS": cols(("id", "bigint"), ("amount", "numeric"), ("src", "text")),
               "FORMAT": "avro", "AVRO_OPTION": {"SCHEMA_REGISTRY_ADDR": reg.url}})))
    produce_records(kafka, topic, records)
    sql = f'SELECT count(*), count(DISTINCT id) FROM "{table}"'
    wait_query(pg, sql, [(2000, 2000)], server, jid)

    reg.stop()
    later = [{"value": w2(dict(tick(i), src=f"v2 {i}"))} for i in range(2000, 4000)]
    bad_body = w1.body(tick(-1))
    later.append({"value": confluent_frame(unknown, bad_body)})
    later += [{"value": w1(tick(i))} for i in range(4000, 5000)]
    acks = produce_records(kafka, topic, later)
    bad_offset = acks[2000][1]
    time.sleep(10)  # the outage: how long the registry stays away
    st = job_status(server, jid)
    assert st["state"] in ("running", "retrying"), f"an outage is no reason to fail: {st}"
    assert _errors(server, jid) == [], "an unreachable registry is not a bad message"
    assert pg.query(sql)[0][1] <= 2000, "rows of an unfetched schema landed"
    reg.start()

    expected = [(i, Decimal(i * 7 - 5000).scaleb(-2), f"v2 {i}" if 2000 <= i < 4000 else None)
                for i in range(5000)]
    wait_query(pg, f'SELECT id, amount, src FROM "{table}" ORDER BY id', expected, server, jid,
               timeout=240)
    items = wait_for(lambda: _errors(server, jid), 60, 0.5, "the unknown id in the error table")
    assert [(it["topic"], it["partition"], it["offset"]) for it in items] == \
        [(topic, 0, bad_offset)], items
    assert str(unknown) in items[0]["error"], items[0]
    assert items[0]["value_base64"] == base64.b64encode(confluent_frame(unknown, bad_body)).decode()
    st = job_status(server, jid)
    assert st["state"] == "running" and st["rows_rejected"] == 1, st
    # Still exact once the error is recorded: nothing was written twice.
    assert pg.query(f'SELECT id, amount, src FROM "{table}" ORDER BY id') == expected


# ------------------------------------------------------------ basic auth

def test_registry_basic_auth_password_stays_secret(server, pg, kafka, make_registry):
    """A registry behind basic auth, under a path prefix: the job loads with
    SCHEMA_REGISTRY_USER / SCHEMA_REGISTRY_PASSWORD, and the password shows
    nowhere: not in the API's answers (the job, its config, its status), the
    log, the workers' argv or environment (the `server` fixture's sweep, the
    password being a registered secret).  A wrong password makes the job say
    the registry refused it, without the password."""
    reg = make_registry(auth=True, prefix="/apis/ccompat/v7")
    topic, table, svc, src = _setup(server, pg, kafka, "regauth", "id bigint, amount numeric")
    s1 = json.dumps(SMALL)
    sid = _register(reg.client(), f"{topic}-value", s1)
    w = AvroWriter(s1, sid)
    n = 200
    kafka.produce(topic, [w({"id": i, "amount": Decimal(i).scaleb(-2)}) for i in range(n)])
    opt = {"SCHEMA_REGISTRY_ADDR": reg.url, "SCHEMA_REGISTRY_USER": reg.user,
           "SCHEMA_REGISTRY_PASSWORD": reg.password}
    jid = run_job(server, professional_job(src, job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(("id", "bigint"), ("amount", "numeric")), "FORMAT": "avro",
        "AVRO_OPTION": opt})))
    wait_query(pg, f'SELECT id, amount FROM "{table}" ORDER BY id',
               [(i, Decimal(i).scaleb(-2)) for i in range(n)], server, jid)
    conf = server.request("GET", f"/jobs/{jid}/config")
    assert conf.status_code == 200 and reg.user in conf.text, conf.text
    server.call("GET", f"/jobs/{jid}")
    server.call("GET", f"/jobs/{jid}/status")
    # Where the password must not be (the fixture's sweep checks every
    # registered secret again at the end).
    st = job_status(server, jid)
    for part in ("cmdline", "environ"):
        assert reg.password.encode() not in Path(f"/proc/{st['pid']}/{part}").read_bytes(), part
    assert reg.password not in server.log_text()
    assert reg.password not in conf.text and "****" in conf.text, conf.text
    # The worker did authenticate: the registry answered its fetch.
    assert (("GET", f"/schemas/ids/{sid}", 200) in reg.requests()), reg.requests()[-5:]

    # The README's shape: the whole record in one jsonb column, MAPPING
    # over it, a first registry address where nothing answers.
    from helpers import free_port
    table4 = pg.create_table(unique("t_regauth_map"), "id bigint, amount numeric, doc jsonb")
    jid4 = run_job(server, professional_job(src, job_yaml(
        pg, kafka, topic, table4,
        value={"COLUMNS": cols(("doc", "jsonb")), "FORMAT": "avro",
               "AVRO_OPTION": dict(opt, SCHEMA_REGISTRY_ADDR=f"http://127.0.0.1:{free_port()},"
                                   + reg.url)},
        output={"MAPPING": {"id": "(doc->>'id')::bigint", "amount": "(doc->>'amount')::numeric",
                            "doc": "doc"}})))
    wait_query(pg, f'SELECT id, amount, doc FROM "{table4}" ORDER BY id',
               [(i, Decimal(i).scaleb(-2), {"id": i, "amount": float(Decimal(i).scaleb(-2))})
                for i in range(n)], server, jid4)

    # The same registry as the source's (schema_registry and its
    # credentials): a job that leaves AVRO_OPTION out inherits it.
    src2 = server.call("POST", "/sources", {
        "service_id": svc, "name": unique("src"), "type": "kafka", "brokers": kafka.bootstrap,
        "topic": topic, "format": "avro", "schema_registry": reg.url,
        "schema_registry_user": reg.user, "schema_registry_password": reg.password}, expect=201)
    assert src2["schema_registry_password"] == "****", src2
    table3 = pg.create_table(unique("t_regauth_src"), "id bigint, amount numeric")
    jid3 = run_job(server, professional_job(src2["id"], job_yaml(pg, kafka, topic, table3, value={
        "COLUMNS": cols(("id", "bigint"), ("amount", "numeric")), "FORMAT": "avro"})))
    wait_query(pg, f'SELECT id, amount FROM "{table3}" ORDER BY id',
               [(i, Decimal(i).scaleb(-2)) for i in range(n)], server, jid3)

    # The wrong password: 401 from the registry, said without the password.
    wrong = "wrong-" + reg.password[::-1]
    from helpers import register_secret
    register_secret(wrong)
    table2 = pg.create_table(unique("t_regauth_bad"), "id bigint, amount numeric")
    jid2 = run_job(server, professional_job(src, job_yaml(pg, kafka, topic, table2, value={
        "COLUMNS": cols(("id", "bigint"), ("amount", "numeric")), "FORMAT": "avro",
        "AVRO_OPTION": dict(opt, SCHEMA_REGISTRY_PASSWORD=wrong)})))

    def said():
        st = job_status(server, jid2)
        err = st.get("last_error") or ""
        return st if "401" in err or "nauthori" in err else None

    st = wait_for(said, 90, 0.5, "the job to report the registry's 401")
    assert pg.count(table2) == 0 and _errors(server, jid2) == [], \
        "a refused registry login is no bad message"
    assert wrong not in (st.get("last_error") or "")


# ------------------------------------------------------- validate / dry run

def test_validate_reports_unreachable_registry_and_missing_field(server, pg, kafka, registry):
    """validate (and dry run) ask the registry for the topic's latest value
    schema (TopicNameStrategy): an address where nothing listens is reported
    as unreachable, naming the address; a COLUMNS name the schema does not
    have is reported naming the column; a job whose columns are all in the
    schema is valid."""
    topic, table, svc, src = _setup(server, pg, kafka, "regval",
                                    "id bigint, amount numeric, nosuch text")
    _register(registry.client(), f"{topic}-value", json.dumps(SMALL))
    from helpers import free_port
    dead = f"http://127.0.0.1:{free_port()}"

    def body(url, columns):
        return professional_job(src, job_yaml(pg, kafka, topic, table, value={
            "COLUMNS": cols(*columns), "FORMAT": "avro",
            "AVRO_OPTION": {"SCHEMA_REGISTRY_ADDR": url}}))

    good = [("id", "bigint"), ("amount", "numeric")]
    ans = server.call("POST", "/jobs/validate", body(registry.url, good))
    assert ans["valid"] is True and ans["errors"] == [], ans

    ans = server.call("POST", "/jobs/validate", body(dead, good))
    assert ans["valid"] is False, ans
    assert any(dead in e["message"] for e in ans["errors"]), ans["errors"]

    b = body(registry.url, good + [("nosuch", "text")])
    for how in ("validate", "dry_run"):
        if how == "validate":
            ans = server.call("POST", "/jobs/validate", b)
        else:
            ans = server.call("POST", "/jobs?dry_run=true", b)
        assert ans["valid"] is False, (how, ans)
        hits = [e for e in ans["errors"] if "nosuch" in e["message"]]
        assert hits, (how, ans["errors"])
        # Only the third column is wrong, and the error says where it is.
        assert all("COLUMNS[2]" in (e.get("field") or "") for e in ans["errors"]), ans["errors"]
        assert all(e.get("line") for e in ans["errors"]), ans["errors"]
    assert server.call("GET", "/jobs")["total"] == 0, "validate or dry run stored a job"
