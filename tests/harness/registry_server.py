#!/usr/bin/env python3
"""A stand-in schema registry for the tests: OUR OWN SERVER, not Confluent's.

No schema registry could be had from the package registries this project may
use: Confluent's Schema Registry and Karapace are not on Debian, npm or Maven
Central, and Apicurio Registry's Quarkus application does not build from Maven
Central alone (its schema-util provider and the io.confluent serializers it
depends on are hosted elsewhere; there is no prebuilt runner jar).  So this
file serves the part of Confluent's Schema Registry REST API that producers,
consumers and our worker use, from Python's standard library, and says so.
Everything around it stays real: the tests register schemas with
confluent-kafka's SchemaRegistryClient and encode messages with other
projects' serializers (Apache Avro's Python library, google.protobuf,
confluent-kafka's Protobuf and JSON Schema serializers).

Served under PREFIX (the base URL tests/harness/registry.sh prints):
  GET    /subjects                                  ["a-value", ...]
  POST   /subjects/{s}/versions                     {"id": N}  (register; the
         same schema under the same subject keeps its id and version; the same
         schema text and type anywhere keeps its id)
  POST   /subjects/{s}                              lookup: {"subject", "id",
                                                    "version", "schema"}
  GET    /subjects/{s}/versions                     [1, 2, ...]
  GET    /subjects/{s}/versions/{v|latest}          {"subject", "id", "version",
                                                    "schema"[, "schemaType"]}
  GET    /subjects/{s}/versions/{v}/schema          the schema text itself
  DELETE /subjects/{s}[/versions/{v}]               soft delete (versions)
  GET    /schemas/ids/{id}[?format=serialized]      {"schema"[, "schemaType",
                                                    "references"]}; PROTOBUF
         as registered, or ?format=serialized: the FileDescriptorProto, base64
         (compiled with protoc when registered as .proto text)
  GET    /schemas/ids/{id}/versions                 [{"subject", "version"}]
  GET    /schemas/types                             ["AVRO", "JSON", "PROTOBUF"]
  GET    /config, /config/{s}                       {"compatibilityLevel": L}
  PUT    /config, /config/{s}                       {"compatibility": L}
  POST   /compatibility/subjects/{s}/versions/{v}   {"is_compatible": bool}
Like Confluent's: "schemaType" is left out for AVRO (clients default to it);
errors are {"error_code", "message"} with 40401 subject not found, 40402
version not found, 40403 schema not found, 42201 invalid schema, 42202
invalid version, 409 incompatible schema, 401 unauthorized; the content type
is application/vnd.schemaregistry.v1+json.

Compatibility is checked for AVRO only (the reader/writer resolution rules of
the Avro specification: BACKWARD, FORWARD, FULL, their _TRANSITIVE forms and
NONE; default BACKWARD, as Confluent's).  PROTOBUF and JSON schemas are
accepted as compatible.  Schema references are stored and returned, not
resolved.

Basic auth: when DIR/auth exists (one line "user:password", written by
registry.sh with mode 0600; never on a command line), every request needs it.

State is kept in DIR/state.json (written on every change), so a stopped and
restarted registry answers as before.  Every request is logged to
DIR/requests.log as "METHOD PATH STATUS" (never a header), which lets a test
count how often the worker fetched a schema.

    registry_server.py --dir DIR --port PORT [--prefix /PATH]
"""
import argparse
import base64
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

CT = "application/vnd.schemaregistry.v1+json"
LEVELS = {"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL",
          "FULL_TRANSITIVE"}
MAX_BODY = 8 << 20  # a schema is small; a larger body is refused


class RegistryError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ------------------------------------------------------------ Avro schemas

def _avro_parse(text):
    """The python3-avro schema of text; RegistryError 42201 when invalid."""
    try:
        import avro.schema
    except ImportError:  # without python3-avro: JSON is all that is checked
        try:
            json.loads(text)
        except ValueError as e:
            raise RegistryError(422, 42201, f"Invalid schema: {e}") from None
        return None
    try:
        return avro.schema.parse(text)
    except Exception as e:  # SchemaParseException and JSON errors alike
        raise RegistryError(422, 42201, f"Invalid schema: {e}") from None


PROMOTIONS = {("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"),
              ("long", "double"), ("float", "double"), ("string", "bytes"), ("bytes", "string")}


def _can_read(reader, writer, seen=None):
    """True if data written with writer resolves under reader (the Avro
    specification's schema resolution)."""
    seen = seen if seen is not None else set()
    rt, wt = reader.type, writer.type
    if wt == "union":
        return all(_can_read(reader, w, seen) for w in writer.schemas)
    if rt == "union":
        return any(_can_read(r, writer, seen) for r in reader.schemas)
    if rt != wt:
        return (wt, rt) in PROMOTIONS
    if rt == "record" or rt == "error":
        if reader.fullname != writer.fullname:
            return False
        pair = (reader.fullname, id(reader), id(writer))
        if pair in seen:  # recursive types: assume the rest holds
            return True
        seen.add(pair)
        wfields = {f.name: f for f in writer.fields}
        for f in reader.fields:
            names = [f.name] + list(getattr(f, "aliases", None) or [])
            wf = next((wfields[n] for n in names if n in wfields), None)
            if wf is None:
                if not f.has_default:
                    return False
            elif not _can_read(f.type, wf.type, seen):
                return False
        return True
    if rt == "enum":
        if reader.fullname != writer.fullname:
            return False
        return set(writer.symbols) <= set(reader.symbols) or \
            getattr(reader, "default", None) is not None
    if rt == "fixed":
        return reader.fullname == writer.fullname and reader.size == writer.size
    if rt == "array":
        return _can_read(reader.items, writer.items, seen)
    if rt == "map":
        return _can_read(reader.values, writer.values, seen)
    return True  # the same primitive


def _compatible(level, new_text, old_texts):
    """Whether the AVRO schema new_text may follow old_texts (oldest first)
    under level."""
    if level == "NONE" or not old_texts:
        return True
    new = _avro_parse(new_text)
    if new is None:
        return True
    olds = old_texts if level.endswith("_TRANSITIVE") else old_texts[-1:]
    for text in olds:
        old = _avro_parse(text)
        if level.startswith(("BACKWARD", "FULL")) and not _can_read(new, old):
            return False
        if level.startswith(("FORWARD", "FULL")) and not _can_read(old, new):
            return False
    return True


def _canonical(schema_type, text):
    """The form two registrations are compared in: JSON without layout for
    AVRO and JSON schemas, the stripped text for PROTOBUF."""
    if schema_type in ("AVRO", "JSON"):
        try:
            return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        except ValueError as e:
            raise RegistryError(422, 42201, f"Invalid schema: {e}") from None
    return text.strip()


# ------------------------------------------------------------------- state

class Store:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.schemas = []  # {"id", "schema", "schemaType", "references"}
        self.subjects = {}  # name -> [{"version", "id", "deleted"}]
        self.config = {"": "BACKWARD"}
        if os.path.exists(path):
            with open(path) as f:
                st = json.load(f)
            self.schemas, self.subjects, self.config = st["schemas"], st["subjects"], st["config"]

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"schemas": self.schemas, "subjects": self.subjects,
                       "config": self.config}, f)
        os.replace(tmp, self.path)

    def schema(self, sid):
        if 1 <= sid <= len(self.schemas):
            return self.schemas[sid - 1]
        raise RegistryError(404, 40403, "Schema not found")

    def live(self, subject):
        versions = [v for v in self.subjects.get(subject, []) if not v["deleted"]]
        if not versions:
            raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
        return versions

    def version(self, subject, v):
        versions = self.live(subject)
        if v == "latest" or v == "-1":
            return versions[-1]
        try:
            n = int(v)
        except ValueError:
            raise RegistryError(422, 42202, "The specified version is not a valid version id. "
                                "Allowed values are between [1, 2^31-1] and the string "
                                "\"latest\"") from None
        for e in versions:
            if e["version"] == n:
                return e
        raise RegistryError(404, 40402, f"Version {n} not found.")

    def level(self, subject):
        return self.config.get(subject) or self.config[""]


def _schema_body(body):
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise RegistryError(422, 42201, "Invalid schema: the body needs a \"schema\" string")
    stype = body.get("schemaType") or "AVRO"
    if stype not in ("AVRO", "JSON", "PROTOBUF"):
        raise RegistryError(422, 42201, f"Invalid schema type {stype}")
    refs = body.get("references") or []
    return body["schema"], stype, refs


def _answer(entry, subject, store):
    s = store.schema(entry["id"])
    out = {"subject": subject, "version": entry["version"], "id": entry["id"],
           "schema": s["schema"]}
    if s["schemaType"] != "AVRO":
        out["schemaType"] = s["schemaType"]
    if s["references"]:
        out["references"] = s["references"]
    return out


def _proto_serialized(text):
    """A .proto text compiled by protoc into its FileDescriptorProto, base64
    (what GET /schemas/ids/{id}?format=serialized answers, as Confluent's
    does); a text that is already base64 (older clients register that) as it
    is; None when protoc is missing or refuses it (imports of the registered
    references are not resolved)."""
    if "message" not in text and "syntax" not in text:
        return text.strip()
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "schema.proto"), os.path.join(d, "schema.pb")
        with open(src, "w") as f:
            f.write(text)
        try:
            p = subprocess.run(["protoc", f"--proto_path={d}", f"--descriptor_set_out={out}",
                                src], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=60)
        except OSError:
            return None
        if p.returncode != 0:
            raise RegistryError(422, 42201, "Invalid schema: " + p.stderr.decode(errors="replace")
                                .replace(d + "/", "").strip())
        from google.protobuf import descriptor_pb2
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
        return base64.standard_b64encode(fds.file[0].SerializeToString()).decode()


def register(store, subject, body):
    text, stype, refs = _schema_body(body)
    if stype == "AVRO":
        _avro_parse(text)
    canon = _canonical(stype, text)
    versions = store.subjects.get(subject, [])
    for e in versions:
        s = store.schema(e["id"])
        if not e["deleted"] and s["schemaType"] == stype and \
                _canonical(stype, s["schema"]) == canon:
            return {"id": e["id"]}
    live = [e for e in versions if not e["deleted"]]
    if stype == "AVRO":
        olds = [store.schema(e["id"])["schema"] for e in live
                if store.schema(e["id"])["schemaType"] == "AVRO"]
        if not _compatible(store.level(subject), text, olds):
            raise RegistryError(409, 409, "Schema being registered is incompatible with an "
                                f"earlier schema for subject \"{subject}\"")
    sid = next((s["id"] for s in store.schemas
                if s["schemaType"] == stype and _canonical(stype, s["schema"]) == canon), None)
    if sid is None:
        sid = len(store.schemas) + 1
        entry = {"id": sid, "schema": text, "schemaType": stype, "references": refs}
        if stype == "PROTOBUF":
            entry["serialized"] = _proto_serialized(text)
        store.schemas.append(entry)
    version = max((e["version"] for e in versions), default=0) + 1
    store.subjects.setdefault(subject, []).append({"version": version, "id": sid,
                                                   "deleted": False})
    store.save()
    return {"id": sid}


def lookup(store, subject, body):
    text, stype, _ = _schema_body(body)
    canon = _canonical(stype, text)
    for e in store.live(subject):
        s = store.schema(e["id"])
        if s["schemaType"] == stype and _canonical(stype, s["schema"]) == canon:
            return _answer(e, subject, store)
    raise RegistryError(404, 40403, "Schema not found")


# ------------------------------------------------------------------- HTTP

def route(store, method, parts, body, query):
    """The answer (status, object or text) to METHOD /parts...?query"""
    n = len(parts)
    if parts == ["subjects"] and method == "GET":
        return 200, sorted(s for s in store.subjects
                           if any(not e["deleted"] for e in store.subjects[s]))
    if n >= 2 and parts[0] == "subjects":
        subject = parts[1]
        if n == 2 and method == "POST":
            return 200, lookup(store, subject, body)
        if n == 2 and method == "DELETE":
            versions = store.live(subject)
            for e in versions:
                e["deleted"] = True
            store.save()
            return 200, [e["version"] for e in versions]
        if n >= 3 and parts[2] == "versions":
            if n == 3 and method == "POST":
                return 200, register(store, subject, body)
            if n == 3 and method == "GET":
                return 200, [e["version"] for e in store.live(subject)]
            if n == 4 and method == "GET":
                return 200, _answer(store.version(subject, parts[3]), subject, store)
            if n == 4 and method == "DELETE":
                e = store.version(subject, parts[3])
                e["deleted"] = True
                store.save()
                return 200, e["version"]
            if n == 5 and parts[4] == "schema" and method == "GET":
                return 200, store.schema(store.version(subject, parts[3])["id"])["schema"]
    if n >= 3 and parts[:2] == ["schemas", "ids"] and method == "GET":
        try:
            sid = int(parts[2])
        except ValueError:
            raise RegistryError(404, 40403, "Schema not found") from None
        s = store.schema(sid)
        if n == 3:
            out = {"schema": s["schema"]}
            if query.get("format") == "serialized" and s.get("serialized"):
                out["schema"] = s["serialized"]
            if s["schemaType"] != "AVRO":
                out["schemaType"] = s["schemaType"]
            if s["references"]:
                out["references"] = s["references"]
            return 200, out
        if n == 4 and parts[3] == "versions":
            return 200, [{"subject": name, "version": e["version"]}
                         for name, vs in sorted(store.subjects.items())
                         for e in vs if e["id"] == sid and not e["deleted"]]
    if parts == ["schemas", "types"] and method == "GET":
        return 200, ["AVRO", "JSON", "PROTOBUF"]
    if parts and parts[0] == "config" and n <= 2:
        key = parts[1] if n == 2 else ""
        if method == "GET":
            if key and key not in store.config:
                raise RegistryError(404, 40408, f"Subject '{key}' does not have subject-level "
                                    "compatibility configured")
            return 200, {"compatibilityLevel": store.level(key)}
        if method == "PUT":
            level = (body or {}).get("compatibility") if isinstance(body, dict) else None
            if level not in LEVELS:
                raise RegistryError(422, 42203, f"Invalid compatibility level {level!r}")
            store.config[key] = level
            store.save()
            return 200, {"compatibility": level}
    if n == 5 and parts[0] == "compatibility" and parts[1] == "subjects" and \
            parts[3] == "versions" and method == "POST":
        text, stype, _ = _schema_body(body)
        subject = parts[2]
        if stype != "AVRO":
            return 200, {"is_compatible": True}
        if parts[4] == "latest" and not any(not e["deleted"]
                                            for e in store.subjects.get(subject, [])):
            return 200, {"is_compatible": True}
        level = store.level(subject)
        if level.endswith("_TRANSITIVE"):
            olds = [store.schema(e["id"])["schema"] for e in store.live(subject)]
        else:
            olds = [store.schema(store.version(subject, parts[4])["id"])["schema"]]
        return 200, {"is_compatible": _compatible(level, text, olds)}
    raise RegistryError(404, 404, "HTTP 404 Not Found")


class Handler(BaseHTTPRequestHandler):
    server_version = "streamserver-test-registry"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the request log below replaces it
        pass

    def _send(self, status, payload):
        data = payload.encode() if isinstance(payload, str) and status == 200 and \
            self._raw else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if self._raw and status == 200 else CT)
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="schema-registry"')
        self.end_headers()
        self.wfile.write(data)
        with self.server.log_lock, open(self.server.log_path, "a") as f:
            f.write(f"{self.command} {self.path.split('?')[0]} {status}\n")

    def _authorized(self):
        want = self.server.auth
        if want is None:
            return True
        got = self.headers.get("Authorization", "")
        if not got.startswith("Basic "):
            return False
        try:
            cred = base64.b64decode(got[6:].strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(cred, want)

    def _handle(self):
        self._raw = False
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return self._send(413, {"error_code": 413, "message": "body too large"})
        raw = self.rfile.read(length) if length else b""
        if not self._authorized():
            return self._send(401, {"error_code": 401, "message": "Unauthorized"})
        split = urlsplit(self.path)
        path, query = split.path, dict(parse_qsl(split.query))
        prefix = self.server.prefix
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return self._send(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
        parts = [unquote(p) for p in path[len(prefix):].split("/") if p]
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {"error_code": 400, "message": "the body is not JSON"})
        self._raw = len(parts) == 5 and parts[0] == "subjects" and parts[4] == "schema"
        try:
            with self.server.store.lock:
                status, out = route(self.server.store, self.command, parts, body, query)
        except RegistryError as e:
            return self._send(e.status, {"error_code": e.code, "message": e.message})
        except Exception as e:  # a bug of ours: say so, keep serving
            return self._send(500, {"error_code": 50001, "message": f"internal error: {e!r}"})
        return self._send(status, out)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prefix", default="")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.prefix = a.prefix.rstrip("/")
    srv.store = Store(os.path.join(a.dir, "state.json"))
    srv.log_path = os.path.join(a.dir, "requests.log")
    srv.log_lock = threading.Lock()
    auth_path = os.path.join(a.dir, "auth")
    srv.auth = None
    if os.path.exists(auth_path):
        with open(auth_path, "rb") as f:
            srv.auth = f.read().strip()
    print(f"registry_server: listening on 127.0.0.1:{a.port}{srv.prefix}", file=sys.stderr,
          flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
