#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/TARGET/) from the
unit tests' data and the README's examples.  Run from the repository root;
needs protoc and python3-protobuf (scripts/install-deps.sh installs both).
The output is committed; rerun after the unit tests' data change."""
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fuzz" / "corpus"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def c_strings(text):
    """The C string literals of a source file, adjacent literals joined."""
    out = []
    for m in re.finditer(r'((?:"(?:[^"\\\n]|\\.)*"\s*)+)', text):
        parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(1))
        s = "".join(parts)
        try:
            out.append(bytes(s, "latin-1").decode("unicode_escape").encode("latin-1"))
        except (UnicodeDecodeError, UnicodeEncodeError):
            out.append(s.encode("utf-8", "surrogateescape"))
    return out


def main():
    unit = ROOT / "tests" / "unit"
    # status lines
    for s in c_strings((unit / "test_proto.c").read_text()):
        if s.startswith(b"{"):
            put("proto", s)
    for line in ('{"type":"batch","messages":10,"rows":9,"rejected":1,"updated":2,"duration_ms":40}',
                 '{"type":"lag","total":5,"partitions":[[0,2],[1,3]]}',
                 '{"type":"error","class":"retriable","message":"connection lost"}',
                 '{"type":"ready"}'):
        put("proto", line)
    # job YAML: the README's examples and the unit tests' texts
    readme = (ROOT / "README.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", readme, re.S):
        put("yaml", block)
    for s in c_strings((unit / "test_jobspec.c").read_text()):
        if b"DATABASE" in s or b"KAFKA" in s:
            put("yaml", s)
    # delimited / CSV: option byte, column count byte, message
    for opt, ncol, msg in ((0x00, 1, b"1,2,3,4"), (0x02, 3, b"a|b|c|d"), (0x01, 3, b'"a,b",c,"d""e",f'),
                           (0x41, 2, b'x,,"",\\N'), (0x81, 3, b"1,NULL,3,4"), (0x31, 3, b"'a\\'b',c,d,e"),
                           (0x06, 2, b"1||2||3||4"), (0x04, 1, b"a\tb\tc\td")):
        put("text", bytes([opt, ncol]) + msg)
    # JSON: flag byte (1 = whole value), message
    for s in c_strings((unit / "test_decode_json.c").read_text()):
        if s.startswith((b"{", b"[")):
            put("json", b"\x01" + s)
            put("json", b"\x00" + s)
    put("json", b'\x00{"id":1,"name":"x","tags":["a",{"b":null}],"\xc3\xa9t\xc3\xa9":"v","n":1e400}')
    # Avro: records of fuzz_avro.c's schema written by python3-avro; flag byte
    # (bit 0: whole record, bit 1: BYTES_TO_BASE64), message
    import datetime
    import decimal
    import io
    import avro.io
    import avro.schema
    fuzz_src = (ROOT / "tests" / "fuzz" / "fuzz_avro.c").read_text()
    text = next(x for x in c_strings(fuzz_src) if x.startswith(b'{"type":"record"'))
    schema = avro.schema.parse(text.decode())
    utc = datetime.timezone.utc
    for i, rec in enumerate([
            {"l": -(1 << 62), "s": "h\u00e9", "d": decimal.Decimal("-12345678901234567890.123456789"),
             "t": datetime.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=utc), "day": datetime.date(1, 1, 1),
             "tm": datetime.time(23, 59, 59, 999000),
             "a": [None, 1.5, {"l": 1, "s": None, "d": decimal.Decimal(0), "t": datetime.datetime(2024, 1, 1, tzinfo=utc),
                               "day": datetime.date(2024, 2, 29), "tm": datetime.time(0, 0), "a": [], "m": {},
                               "fx": b"\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00", "b": b"",
                               "fl": float("nan"), "ok": False,
                               "ts": datetime.datetime(2024, 1, 1, tzinfo=utc), "fd": decimal.Decimal("-0.01")}],
             "m": {"k": "Y", "": "X"}, "fx": bytes(12), "b": b"\x00\xff", "fl": float("inf"), "ok": True,
             "ts": datetime.datetime(2038, 1, 19, 3, 14, 8, 123000, tzinfo=utc), "fd": decimal.Decimal("9999999.99")},
            {"l": 0, "s": None, "d": decimal.Decimal("0.000000001"), "t": datetime.datetime(1970, 1, 1, tzinfo=utc),
             "day": datetime.date(9999, 12, 31), "tm": datetime.time(0, 0, 0, 1000), "a": [], "m": {},
             "fx": bytes(range(12)), "b": b"x" * 40, "fl": -0.0, "ok": False,
             "ts": datetime.datetime(1900, 1, 1, tzinfo=utc), "fd": decimal.Decimal("0")}]):
        out = io.BytesIO()
        avro.io.DatumWriter(schema).write(rec, avro.io.BinaryEncoder(out))
        for flag in range(4):
            put("avro", bytes([flag]) + out.getvalue())
    # protobuf: the unit tests' descriptor set and messages made with protoc
    inc = (unit / "data" / "test_pb_desc.inc").read_text()
    desc = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", inc))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["protoc", f"-I{unit / 'data'}", f"--python_out={tmp}", "test_pb.proto",
                        "test_pb2.proto"], check=True)
        sys.path.insert(0, tmp)
        import test_pb_pb2 as pb  # noqa: E402
        msgs = []
        a = pb.All(d=1.5, f=-2.25, i64=-(1 << 62), u64=(1 << 64) - 1, i32=-7, fx64=9, fx32=3, b=True,
                   s="h\u00e9llo", by=b"\x00\xff", u32=4000000000, sfx32=-3, sfx64=-4, si32=-5, si64=-6,
                   packed_i32=[1, -2, 3], unpacked_i32=[4, 5], tags=["x", "y"], ds=[0.5, float("inf")],
                   camel_case_name=12, opt_i32=0, opt_s="")
        a.items.add(name="in", big=1 << 40, nums=[1, 2], raw=b"r", opt=1)
        a.counts["k"] = 3
        a.by_id[7].name = "seven"
        a.colors.extend([0, 1, 2, 99])
        msgs.append(a.SerializeToString())
        msgs.append(pb.All().SerializeToString())
        msgs.append(pb.Inner(name="n", big=-1).SerializeToString())
        n = pb.Node(v=1)
        try:
            n.next.v = 2
        except AttributeError:
            pass
        msgs.append(n.SerializeToString())
    for i, m in enumerate(msgs):
        for sel in range(0, 8):
            put("pb_wire", bytes([sel | (0x80 if i % 2 else 0)]) + m)
    for m in msgs:
        put("pb_desc", len(desc).to_bytes(2, "big") + desc + m)
    for target in sorted(p.name for p in OUT.iterdir()):
        print(target, len(list((OUT / target).iterdir())))


if __name__ == "__main__":
    main()
