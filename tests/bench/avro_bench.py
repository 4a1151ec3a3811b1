"""The Avro figure of the benchmark (issue 15): the INSERT data set as Avro
records framed for a schema registry, drained by a Streaming Server INSERT
job with FORMAT avro, beside the delimited INSERT figure.

The registry is tests/harness/registry.sh (our own stand-in with Confluent's
REST API); the schema is registered with confluent-kafka's client and the
bodies written by Apache Avro's Python library (python3-avro), framed as
Confluent's wire format says (a zero byte, the schema id as 4 bytes
big-endian).  The worker fetches the schema once; the figure measures the
decoding and the load, not the registry.

The peer: Confluent's AvroConverter (io.confluent:kafka-connect-avro-converter)
is not on Maven Central, so the peer's figure beside this one is its JSON
one (JsonConverter with schemas, figure 5a).
"""
import io
import json
import struct
from decimal import Decimal

from helpers import cols, job_dict, to_yaml

# The seed's five columns as an Avro record; column_3 (numeric, i.25) as a
# decimal of scale 2.
SCHEMA = json.dumps({"type": "record", "name": "Row", "namespace": "bench", "fields": [
    {"name": "column_1", "type": "string"},
    {"name": "column_2", "type": "long"},
    {"name": "column_3", "type": {"type": "bytes", "logicalType": "decimal", "precision": 20,
                                  "scale": 2}},
    {"name": "column_4", "type": "string"},
    {"name": "column_5", "type": "string"}]})


def register(registry_url, subject):
    """Registers SCHEMA under subject; returns its id."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    return SchemaRegistryClient({"url": registry_url}).register_schema(subject,
                                                                       Schema(SCHEMA, "AVRO"))


def encoder(schema_id):
    """make(i) for bench.produce: the INSERT set's row i (key-i, i, i.25,
    customer-(i%1000), region-(i%7)) as a framed Avro message."""
    import avro.io
    import avro.schema
    writer = avro.io.DatumWriter(avro.schema.parse(SCHEMA))
    head = b"\0" + struct.pack(">I", schema_id)

    def make(i):
        buf = io.BytesIO()
        buf.write(head)
        writer.write({"column_1": f"key-{i}", "column_2": i, "column_3": Decimal(f"{i}.25"),
                      "column_4": f"customer-{i % 1000}", "column_5": f"region-{i % 7}"},
                     avro.io.BinaryEncoder(buf))
        return buf.getvalue()
    return make


def drain(bench, ctl, source_id, topic, n, registry_url, columns):
    """rows/s of an INSERT job with FORMAT avro on the Avro topic: the
    delimited drain (Bench.server_drain, same probes and checks) with the
    job's VALUE block swapped for the Avro one."""
    def job_config(topic_, table, mode="INSERT", **_kw):
        commit = {"MINIMAL_INTERVAL": bench.args.interval}
        if bench.args.max_row:
            commit["MAX_ROW"] = bench.args.max_row
        return to_yaml(job_dict(bench.pg, bench.s.kafka, topic_, table, mode=mode, commit=commit,
                                value={"COLUMNS": cols(*columns), "FORMAT": "avro",
                                       "AVRO_OPTION": {"SCHEMA_REGISTRY_ADDR": registry_url}}))
    bench.job_config = job_config  # this instance only, for this drain
    try:
        return bench.server_drain(ctl, source_id, topic, n, "INSERT")
    finally:
        del bench.job_config
