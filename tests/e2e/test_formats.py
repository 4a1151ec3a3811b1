"""Every VALUE format end to end (delimited, csv, json whole and by field,
protobuf), KEY + VALUE + META together, and MAPPING with SQL expressions.

Each test writes a professional-mode job (tests/e2e/helpers.py: job_yaml),
produces a few messages, and compares the whole table with what the messages
say.  Message counts are small: the tests check decoding, not throughput.
"""
import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from helpers import (b64, cols, create_service, create_source, job_yaml, produce_records,
                     professional_job, protobuf_class, protoc_descriptor_set, run_job, unique,
                     wait_consumed, wait_query)


def _setup(server, pg, kafka, prefix, table_sql, partitions=1):
    """A topic, a table, a service and a source; returns (topic, table, source_id)."""
    topic = kafka.create_topic(unique(prefix), partitions=partitions)
    table = pg.create_table(unique(f"t_{prefix}"), table_sql)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    return topic, table, src["id"]


def _settled(server, pg, job_id, n, sql, expected):
    """The rows equal expected, every message is consumed, and the rows still
    equal expected afterwards (nothing extra or late)."""
    wait_query(pg, sql, expected, server, job_id)
    wait_consumed(server, job_id, n)
    assert pg.query(sql) == expected


# ------------------------------------------------------------------ delimited

def test_delimited_multichar_delimiter_quote_escape(server, pg, kafka):
    """DELIMITER "||" (two characters), QUOTE and ESCAPE: a quoted field may
    hold the delimiter, the escape character takes the next one literally
    (a delimiter, the quote, itself), a single "|" is just text, and an empty
    field is NULL."""
    n = 20
    topic, table, src = _setup(server, pg, kafka, "dlm",
                               "id varchar(16), a text, b text, c text, d text, n bigint")
    msgs, expected = [], []
    for i in range(n):
        a_raw, a = (f"plain {i}", f"plain {i}") if i % 5 else ("", None)
        msgs.append(f'k{i}||{a_raw}||"quoted || and \\"esc\\" {i}"||esc\\|\\|aped \\\\ {i}'
                    f'||one|pipe {i}||{i}')
        expected.append((f"k{i}", a, f'quoted || and "esc" {i}', f"esc||aped \\ {i}",
                         f"one|pipe {i}", i))
    kafka.produce(topic, msgs)
    config = job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(("id", "varchar(16)"), ("a", "text"), ("b", "text"), ("c", "text"),
                        ("d", "text"), ("n", "bigint")),
        "FORMAT": "delimited",
        "DELIMITED_OPTION": {"DELIMITER": "||", "QUOTE": '"', "ESCAPE": "\\"}})
    job_id = run_job(server, professional_job(src, config))
    _settled(server, pg, job_id, n, f'SELECT id, a, b, c, d, n FROM "{table}" ORDER BY n',
             expected)


# ------------------------------------------------------------------------ csv

def test_csv_quoted_delimiters_newlines_null_string(server, pg, kafka):
    """CSV_OPTION with NULL_STRING: quoted fields hold the delimiter, doubled
    quotes and newlines; the unquoted NULL_STRING and an unquoted empty field
    are NULL, the quoted NULL_STRING is the text itself, "" is the empty
    string."""
    n = 18
    topic, table, src = _setup(server, pg, kafka, "csv",
                               "id varchar(16), multi text, quoted text, maybe text, n bigint")
    msgs, expected = [], []
    for i in range(n):
        maybe_raw, maybe = [('"NA"', "NA"), ("NA", None), (f"x{i}", f"x{i}"), ("", None),
                            ('""', "")][i % 5]
        msgs.append(f'k{i},"line one\nline two, {i}","a, ""b"", c {i}",{maybe_raw},{i}')
        expected.append((f"k{i}", f"line one\nline two, {i}", f'a, "b", c {i}', maybe, i))
    kafka.produce(topic, msgs)
    config = job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(("id", "varchar(16)"), ("multi", "text"), ("quoted", "text"),
                        ("maybe", "text"), ("n", "bigint")),
        "FORMAT": "csv",
        "CSV_OPTION": {"DELIMITER": ",", "QUOTE": '"', "NULL_STRING": "NA"}})
    job_id = run_job(server, professional_job(src, config))
    _settled(server, pg, job_id, n,
             f'SELECT id, multi, quoted, maybe, n FROM "{table}" ORDER BY n', expected)


# ----------------------------------------------------------------------- json

def test_json_whole_value_into_jsonb(server, pg, kafka):
    """FORMAT json with a single jsonb column: the column gets the whole
    value (nesting, unicode, escapes and a 30-digit number intact)."""
    n = 15
    topic, table, src = _setup(server, pg, kafka, "jsw", "doc jsonb")
    docs = [{"id": i, "name": f"n{i}", "nested": {"a": [1, 2, {"b": None}], "t": i % 2 == 0},
             "uni": "\u00e9\u20ac\U0001F600", "esc": f'tab\tquote"back\\slash{i}',
             "big": 123456789012345678901234567890 + i}
            for i in range(n)]
    kafka.produce(topic, [json.dumps(d) for d in docs])
    config = job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(("doc", "jsonb")), "FORMAT": "json"})
    job_id = run_job(server, professional_job(src, config))
    _settled(server, pg, job_id, n,
             f"SELECT doc FROM \"{table}\" ORDER BY (doc->>'id')::int", [(d,) for d in docs])


JSON_FIELD_COLUMNS = [("id", "bigint"), ("name", "text"), ("price", "numeric"), ("qty", "integer"),
                      ("big", "bigint"), ("huge", "numeric"), ("active", "boolean"),
                      ("tags", "jsonb"), ("attrs", "jsonb"), ("note", "text")]


def test_json_fields_into_typed_columns(server, pg, kafka):
    """FORMAT json with several columns: each gets the top-level field of its
    name; objects and arrays as JSON, null and absent fields as NULL, other
    fields ignored; a bigint near 2^63 and a 30-digit numeric arrive exactly
    (no trip through a double).  MAPPING in the NAME/EXPRESSION list form,
    with an expression over two source columns."""
    n = 15
    topic, table, src = _setup(
        server, pg, kafka, "jsf",
        ", ".join(f"{c} {t}" for c, t in JSON_FIELD_COLUMNS) + ", total numeric")
    msgs, expected = [], []
    for i in range(n):
        d = {"id": i, "name": f'n\u00e9 "q" \\ {i}', "price": float(f"{i}.5"), "qty": i + 1,
             "big": 9223372036854775807 - i, "huge": 123456789012345678901234567890 + i,
             "active": i % 2 == 0, "tags": ["a", i], "attrs": {"k": {"deep": i}},
             "ignored": {"x": 1}}
        if i % 3 == 0:
            d["note"] = f"x{i}"
        elif i % 3 == 1:
            d["note"] = None
        # i % 3 == 2: no note at all
        msgs.append(json.dumps(d))
        expected.append((i, f'n\u00e9 "q" \\ {i}', Decimal(f"{i}.5"), i + 1,
                         9223372036854775807 - i, Decimal(123456789012345678901234567890 + i),
                         i % 2 == 0, ["a", i], {"k": {"deep": i}},
                         f"x{i}" if i % 3 == 0 else None, Decimal(f"{i}.5") * (i + 1)))
    kafka.produce(topic, msgs)
    mapping = [{"NAME": c, "EXPRESSION": c} for c, _ in JSON_FIELD_COLUMNS]
    mapping.append({"NAME": "total", "EXPRESSION": "price * qty"})
    config = job_yaml(pg, kafka, topic, table,
                      value={"COLUMNS": cols(*JSON_FIELD_COLUMNS), "FORMAT": "json"},
                      output={"MAPPING": mapping})
    job_id = run_job(server, professional_job(src, config))
    names = ", ".join(c for c, _ in JSON_FIELD_COLUMNS)
    _settled(server, pg, job_id, n, f'SELECT {names}, total FROM "{table}" ORDER BY id', expected)


def test_mapping_sql_expressions_over_json(server, pg, kafka):
    """The whole JSON value in one jsonb source column, and MAPPING in the
    `target: expression` form computing the table's columns with SQL."""
    n = 12
    topic, table, src = _setup(server, pg, kafka, "jsm",
                               "name text, cents numeric, currency text, raw jsonb")
    docs, expected = [], []
    for i in range(n):
        d = {"name": f"item {i}", "amount": f"{i}.37"}
        if i % 2:
            d["currency"] = "USD"
        docs.append(d)
        expected.append((f"ITEM {i}", Decimal(f"{i}.37") * 100, "USD" if i % 2 else "EUR", d))
    kafka.produce(topic, [json.dumps(d) for d in docs])
    config = job_yaml(pg, kafka, topic, table,
                      value={"COLUMNS": cols(("value", "jsonb")), "FORMAT": "json"},
                      output={"MAPPING": {
                          "name": "upper(value->>'name')",
                          "cents": "(value->>'amount')::numeric * 100",
                          "currency": "coalesce(value->>'currency', 'EUR')",
                          "raw": "value"}})
    job_id = run_job(server, professional_job(src, config))
    _settled(server, pg, job_id, n,
             f"SELECT name, cents, currency, raw FROM \"{table}\" ORDER BY (raw->>'amount')::numeric",
             expected)


# ------------------------------------------------------------------- protobuf

PROTO_COLUMNS = [("id", "bigint"), ("customer", "text"), ("amount", "double precision"),
                 ("paid", "boolean"), ("address", "jsonb"), ("tags", "jsonb"), ("items", "jsonb"),
                 ("big", "numeric")]


@pytest.mark.parametrize("given", ["DESCRIPTOR_FILE", "DESCRIPTOR"])
def test_protobuf_descriptor_set_from_protoc(server, pg, kafka, tmp_path, given):
    """FORMAT protobuf: a FileDescriptorSet built here by protoc
    (--include_imports: order.proto imports address.proto), given as a file
    path or inline as base64; messages encoded with google.protobuf.  Scalars
    go to typed columns (a uint64 near 2^64 exactly), a nested message and
    repeated fields to jsonb columns."""
    n = 12
    topic, table, src = _setup(server, pg, kafka, "pb",
                               ", ".join(f"{c} {t}" for c, t in PROTO_COLUMNS))
    desc_path = tmp_path / "order.pb"
    fds = protoc_descriptor_set(desc_path, "order.proto")
    Order = protobuf_class(fds, "shop.v1.Order")
    msgs = []
    for i in range(1, n + 1):
        m = Order(id=i, customer=f"c{i} \u00e9", amount=i + 0.25, paid=True,
                  tags=[f"t{i}", "x"], big=2**64 - 1 - i)
        m.address.city = f"city{i}"
        m.address.zip = f"{10000 + i}"
        it = m.items.add()
        it.sku, it.qty = f"s{i}", i + 1
        it = m.items.add()
        it.sku, it.qty = "extra", 1
        msgs.append(m.SerializeToString())
    # Only the id set: proto3 scalars without presence read as their default
    # (0, "", false, [] for repeated fields), a message field as NULL
    # (worker/decode_pb.h).
    msgs.append(Order(id=n + 1).SerializeToString())
    kafka.produce(topic, msgs)

    option = {"MESSAGE": "shop.v1.Order"}
    option[given] = str(desc_path) if given == "DESCRIPTOR_FILE" else b64(fds)
    config = job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(*PROTO_COLUMNS), "FORMAT": "protobuf", "PROTOBUF_OPTION": option})
    job_id = run_job(server, professional_job(src, config))
    expected = [(i, f"c{i} \u00e9", i + 0.25, True, f"city{i}", f"{10000 + i}", [f"t{i}", "x"],
                 2, f"s{i}", i + 1, "extra", Decimal(2**64 - 1 - i)) for i in range(1, n + 1)]
    expected.append((n + 1, "", 0.0, False, None, None, [], 0, None, None, None, Decimal(0)))
    _settled(server, pg, job_id, n + 1,
             f"""SELECT id, customer, amount, paid, address->>'city', address->>'zip', tags,
                        jsonb_array_length(items), items->0->>'sku', (items->0->>'qty')::int,
                        items->1->>'sku', big
                 FROM "{table}" ORDER BY id""", expected)


def _pb_timestamp(at):
    """A UTC datetime as protobuf's JSON writes a Timestamp: 0, 3, 6 or 9
    fractional digits."""
    frac = "" if at.microsecond == 0 else f".{at.microsecond // 1000:03d}" \
        if at.microsecond % 1000 == 0 else f".{at.microsecond:06d}"
    return at.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


EVENT_COLUMNS = [("id", "bigint"), ("at", "timestamptz"), ("took", "interval"), ("count", "bigint"),
                 ("note", "text"), ("score", "double precision"), ("flag", "boolean"),
                 ("attrs", "jsonb"), ("extra", "jsonb"), ("detail", "jsonb")]


def test_protobuf_well_known_types(server, pg, kafka, tmp_path):
    """google.protobuf's well-known types, encoded by python3-protobuf with
    protoc's descriptors: a Timestamp lands in a timestamptz column, a
    Duration in an interval column, the wrappers as their scalar (NULL when
    absent), a Struct as JSON, an Any as JSON with its @type (the fields of
    a type the set has, else the bytes in base64), and inside a message
    column the same values as JSON."""
    n = 6
    topic, table, src = _setup(server, pg, kafka, "pbwkt",
                               ", ".join(f"{c} {t}" for c, t in EVENT_COLUMNS))
    fds = protoc_descriptor_set(tmp_path / "event.pb", "event.proto")
    Event = protobuf_class(fds, "shop.v1.Event")
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    msgs, expected = [], []
    for i in range(1, n + 1):
        at = t0 + timedelta(days=i, microseconds=1500 * i)
        m = Event(id=i)
        m.at.FromDatetime(at)
        m.took.FromTimedelta(timedelta(seconds=-90 * i, milliseconds=250))
        m.count.value = -(2**62) + i
        m.note.value = f"n\u00e9{i}"
        m.score.value = i / 8
        m.flag.value = i % 2 == 0
        m.attrs.update({"k": i, "list": ["a", None, True], "obj": {"x": "y"}})
        d = m.detail
        d.seen.FromDatetime(at)
        d.level.value = i
        d.tags.extend(["t", i])
        if i % 2 == 0:
            m.extra.Pack(d)
            extra = {"@type": "type.googleapis.com/shop.v1.Detail",
                     "seen": _pb_timestamp(at), "level": i, "tags": ["t", i]}
        else:
            m.extra.type_url = "type.example.com/other.v1.Thing"
            m.extra.value = bytes([8, i])
            extra = {"@type": "type.example.com/other.v1.Thing", "value": b64(bytes([8, i]))}
        msgs.append(m.SerializeToString())
        expected.append((i, at, timedelta(seconds=-90 * i, milliseconds=250), -(2**62) + i,
                         f"n\u00e9{i}", i / 8, i % 2 == 0, {"k": i, "list": ["a", None, True],
                                                          "obj": {"x": "y"}},
                         extra, {"seen": _pb_timestamp(at), "level": i,
                                 "tags": ["t", i]}))
    # Only the id: every well-known type absent, every column NULL.
    msgs.append(Event(id=n + 1).SerializeToString())
    expected.append((n + 1,) + (None,) * 9)
    kafka.produce(topic, msgs)
    config = job_yaml(pg, kafka, topic, table, value={
        "COLUMNS": cols(*EVENT_COLUMNS), "FORMAT": "protobuf",
        "PROTOBUF_OPTION": {"MESSAGE": "shop.v1.Event", "DESCRIPTOR": b64(fds)}})
    job_id = run_job(server, professional_job(src, config))
    _settled(server, pg, job_id, n + 1,
             f"""SELECT {", ".join(c for c, _ in EVENT_COLUMNS)} FROM "{table}" ORDER BY id""",
             expected)


# ---------------------------------------------------------- KEY + VALUE + META

def test_key_value_meta_together(server, pg, kafka):
    """KEY (delimited, two columns), VALUE (csv) and META (one jsonb column)
    in one job; META holds the topic, partition, offset, timestamp (ms) and
    key of each message, checked against what the broker acknowledged.
    MAPPING uses an expression over META."""
    n = 16
    topic, table, src = _setup(
        server, pg, kafka, "kvm",
        "region text, acct text, amount numeric, note text, meta jsonb, off bigint", partitions=2)
    # Explicit CreateTime timestamps, in the recent past (retention keeps them).
    ts0 = (int(time.time()) - 3600) * 1000
    records = [{"key": f"r{i % 3}|a{i}", "value": f'{i}.5,"note, {i}"', "partition": i % 2,
                "timestamp": ts0 + i * 1000} for i in range(n)]
    acks = produce_records(kafka, topic, records)
    config = job_yaml(
        pg, kafka, topic, table,
        key={"COLUMNS": cols(("region", "text"), ("acct", "text")), "FORMAT": "delimited",
             "DELIMITED_OPTION": {"DELIMITER": "|"}},
        value={"COLUMNS": cols(("amount", "numeric"), ("note", "text")), "FORMAT": "csv",
               "CSV_OPTION": {"DELIMITER": ","}},
        meta={"COLUMNS": cols(("meta", "jsonb")), "FORMAT": "json"},
        output={"MAPPING": {"region": "region", "acct": "acct", "amount": "amount",
                            "note": "note", "meta": "meta",
                            "off": "(meta->>'offset')::bigint"}})
    job_id = run_job(server, professional_job(src, config))
    expected = []
    for i, (part, offset, ts) in enumerate(acks):
        assert ts == ts0 + i * 1000, f"the broker changed the timestamp of message {i}: {ts}"
        expected.append((f"r{i % 3}", f"a{i}", Decimal(f"{i}.5"), f"note, {i}", topic, part,
                         offset, ts, f"r{i % 3}|a{i}", offset))
    expected.sort(key=lambda r: int(r[1][1:]))
    _settled(server, pg, job_id, n,
             f"""SELECT region, acct, amount, note, meta->>'topic', (meta->>'partition')::int,
                        (meta->>'offset')::bigint, (meta->>'timestamp')::bigint, meta->>'key', off
                 FROM "{table}" ORDER BY substr(acct, 2)::int""", expected)
    keys = {k for (k,) in pg.query(f'SELECT DISTINCT jsonb_object_keys(meta) FROM "{table}"')}
    assert {"topic", "partition", "offset", "timestamp", "key"} <= keys, keys
    # Numbers are JSON numbers, the key and topic JSON strings.
    types = pg.query(f"""SELECT DISTINCT jsonb_typeof(meta->'partition'), jsonb_typeof(meta->'offset'),
                                jsonb_typeof(meta->'timestamp'), jsonb_typeof(meta->'key'),
                                jsonb_typeof(meta->'topic') FROM "{table}" """)
    assert types == [("number", "number", "number", "string", "string")], types
