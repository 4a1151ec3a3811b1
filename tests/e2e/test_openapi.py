"""The OpenAPI document (api/openapi.yaml) against the server's routes.

- the document is well-formed OpenAPI 3: every path has operations, every
  operation responses, every $ref resolves, path parameters are declared;
- Redocly's CLI (from npm, installed by scripts/install-deps.sh) lints it
  clean with its recommended-strict rules (api/redocly.yaml);
- it names every route doc/API.md names;
- the server serves it unchanged at /api/v1/openapi.yaml as application/yaml;
- for every documented path (ids of real objects) and each of GET, POST, PUT,
  PATCH and DELETE: a documented method never gets the router's "no route"
  404 nor a 405; an undocumented one gets a 405 whose Allow header lists
  exactly the documented methods;
- the server has no route the document lacks: every word that is a string
  literal in api/*.c is tried as a path, under each collection and under each
  object, and must get the router's "no route" 404;
- with a token, the documented security holds: open routes answer without
  it, the others are a 401, and a read token is a 403 on every other method.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import (REPO, TABLE5, create_job, create_service, create_source, stop_job, unique,
                     wait_state, wizard_job)

DOC_FILE = REPO / "api" / "openapi.yaml"
REDOCLY_CONFIG = REPO / "api" / "redocly.yaml"
# where scripts/install-deps.sh puts it; REDOCLY_CLI names another
REDOCLY = Path(os.environ.get("REDOCLY_CLI") or
               Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
               / "streamserver" / "npm" / "node_modules" / ".bin" / "redocly")
API_MD = REPO / "doc" / "API.md"
API_SOURCES = sorted((REPO / "api").glob("*.c"))
PROBE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
OPERATION_KEYS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PATH_ITEM_KEYS = set(OPERATION_KEYS) | {"parameters", "summary", "description", "servers", "$ref"}
COLUMNS = ["column_1", "column_2", "column_3", "column_4", "column_5"]


def load_doc():
    with open(DOC_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def resolve(doc, node):
    """node with a local $ref followed (chains too); fails on a dangling one."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are used here, not {ref}"
        target = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict) and part in target, f"$ref {ref} does not resolve"
            target = target[part]
        node = target
        seen += 1
        assert seen < 20, f"$ref loop at {ref}"
    return node


def all_refs(node, where="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield where, v
            else:
                yield from all_refs(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_refs(v, f"{where}/{i}")


def operations(doc):
    """(path, METHOD, operation, path item) for every documented operation."""
    for path, item in doc["paths"].items():
        for m in OPERATION_KEYS:
            if m in item:
                yield path, m.upper(), item[m], item


def documented_methods(doc):
    return {path: {m.upper() for m in OPERATION_KEYS if m in item}
            for path, item in doc["paths"].items()}


def op_parameters(doc, op, item):
    return [resolve(doc, p) for p in item.get("parameters", []) + op.get("parameters", [])]


def path_regex(doc, path):
    """The documented path as a regex: integer parameters match digits only,
    so that /api/v1/jobs/{id} does not swallow /api/v1/jobs/<word>."""
    item = doc["paths"][path]
    types = {}
    for m in OPERATION_KEYS:
        if m in item:
            for p in op_parameters(doc, item[m], item):
                if p["in"] == "path":
                    types[p["name"]] = resolve(doc, p["schema"]).get("type")
    out = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            out += r"[1-9][0-9]*" if types.get(part[1:-1]) == "integer" else r"[^/]+"
        else:
            out += re.escape(part)
    return re.compile(out + r"\Z")


def is_no_route(resp):
    """The router's answer for a path it does not know (api/api.c)."""
    if resp.status_code != 404:
        return False
    try:
        msg = resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return msg.startswith("no route")


def raw(srv, method, path, **kw):
    """A request to exactly this path (Server.request would put a path that
    does not look like a known route under /api/v1)."""
    kw.setdefault("timeout", 60)
    return srv.http.request(method, srv.base + path, **kw)


def describe(resp):
    return f"HTTP {resp.status_code} Allow={resp.headers.get('Allow')!r} {resp.text[:300]!r}"


# ----------------------------------------------------------------- the document

def test_document_lints_clean_with_redocly():
    """A real OpenAPI validator: every problem of Redocly's recommended-strict
    rules is an error, and there must be none."""
    assert os.access(REDOCLY, os.X_OK), (
        f"{REDOCLY} is missing: run scripts/install-deps.sh (or set REDOCLY_CLI)")
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true",
               NO_COLOR="1")
    r = subprocess.run([str(REDOCLY), "lint", str(DOC_FILE), "--config", str(REDOCLY_CONFIG),
                        "--format", "stylish"], capture_output=True, text=True, timeout=300,
                       env=env, cwd=REPO)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"redocly lint failed ({r.returncode}):\n{out[-4000:]}"
    problems = re.findall(r"^\s*\d+:\d+\s+(?:error|warning)\s.*$", out, re.M)
    assert not problems, "\n".join(problems)
    assert "valid" in out, out[-4000:]


def test_document_is_openapi3():
    doc = load_doc()
    assert isinstance(doc, dict)
    assert re.fullmatch(r"3\.\d+\.\d+", str(doc.get("openapi"))), doc.get("openapi")
    assert doc["info"]["title"]
    version = re.search(r"version\s*:\s*'([^']+)'", (REPO / "meson.build").read_text()).group(1)
    assert doc["info"]["version"] == version, "info.version must be the project's version"
    assert doc["paths"], "no paths"

    for where, ref in all_refs(doc):
        resolve(doc, {"$ref": ref})

    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    op_ids = set()
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        assert set(item) <= PATH_ITEM_KEYS, f"{path}: unknown keys {set(item) - PATH_ITEM_KEYS}"
        assert any(m in item for m in OPERATION_KEYS), f"{path} has no operation"
        for m in OPERATION_KEYS:
            if m not in item:
                continue
            op = item[m]
            what = f"{m.upper()} {path}"
            assert op.get("operationId") and op["operationId"] not in op_ids, \
                f"{what}: operationId missing or not unique"
            op_ids.add(op["operationId"])
            assert op.get("responses"), f"{what} has no responses"
            for code, r in op["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]|default", str(code)), f"{what}: {code}"
                assert resolve(doc, r).get("description"), f"{what} {code}: no description"
            # path parameters declared exactly
            params = op_parameters(doc, op, item)
            declared = {p["name"] for p in params if p["in"] == "path"}
            assert declared == set(re.findall(r"\{([^}]+)\}", path)), f"{what}: path parameters"
            for p in params:
                assert p["in"] in ("path", "query", "header", "cookie"), f"{what}: {p}"
                assert "schema" in p, f"{what}: parameter {p['name']} has no schema"
                if p["in"] == "path":
                    assert p.get("required") is True, f"{what}: {p['name']} must be required"
            if "requestBody" in op:
                assert resolve(doc, op["requestBody"]).get("content"), f"{what}: requestBody"
            for req in op.get("security", doc.get("security", [])):
                assert set(req) <= set(schemes), f"{what}: unknown security scheme {req}"


def test_document_states_errors_and_security():
    """Each secured operation documents its 401, each one that changes
    something its 403, each one that takes a body its 413; the error schema
    names every code of doc/API.md's table."""
    doc = load_doc()
    codes = set(resolve(doc, doc["components"]["schemas"]["Error"])
                ["properties"]["error"]["properties"]["code"]["enum"])
    md_codes = set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", API_MD.read_text(), re.M))
    assert md_codes, "doc/API.md has no error table"
    assert md_codes | {"unauthorized", "forbidden"} <= codes, md_codes - codes

    assert doc["security"] == [{"bearerAuth": []}]
    open_paths = {"/healthz", "/", "/ui/{name}"}
    for path, method, op, _ in operations(doc):
        what = f"{method} {path}"
        secured = op.get("security", doc["security"]) != []
        assert secured == (path not in open_paths), f"{what}: security {op.get('security')}"
        responses = op["responses"]
        if secured:
            assert "401" in responses, f"{what} does not document 401"
        if secured and method not in ("GET", "HEAD"):
            assert "403" in responses, f"{what} does not document 403 (read token)"
        if "requestBody" in op:
            assert "413" in responses, f"{what} takes a body but does not document 413"
        if "{id}" in path:
            assert "404" in responses, f"{what} does not document 404"


def test_document_names_every_route_of_api_md():
    doc = load_doc()
    methods = documented_methods(doc)
    text = API_MD.read_text()
    found = set()
    for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)", text):
        alt = re.search(r"\{([a-z]+(?:\|[a-z]+)+)\}", path)
        for p in ([path.replace(alt.group(0), a) for a in alt.group(1).split("|")] if alt
                  else [path]):
            found.add((method, p))
    assert len(found) >= 15, f"doc/API.md routes not recognised: {sorted(found)}"

    def shape(p):
        # a parameter, in the document or in prose (/ui/..., /ui/NAME, /ui/*)
        return re.sub(r"/(\{[^}]+\}|\.\.\.|\*|[A-Z][A-Z_]*)(?=/|$)", "/{}", p)
    shaped = {}
    for p, ms in methods.items():
        shaped.setdefault(shape(p), set()).update(ms)
    missing = sorted(f"{m} {p}" for m, p in found if m not in shaped.get(shape(p), set()))
    assert not missing, f"routes of doc/API.md missing from api/openapi.yaml: {missing}"


def test_served_document_is_the_file(server):
    resp = raw(server, "GET", "/api/v1/openapi.yaml")
    assert resp.status_code == 200, describe(resp)
    assert resp.headers["Content-Type"].split(";")[0].strip() == "application/yaml"
    assert resp.content == DOC_FILE.read_bytes(), \
        "the served document differs from api/openapi.yaml: rebuild (it is embedded at build time)"
    assert yaml.safe_load(resp.text)["paths"] == load_doc()["paths"]


# ------------------------------------------------------------ routes both ways

def make_objects(srv, pg, kafka):
    """A service, a source and a wizard job that exist: the ids the probes use."""
    topic = unique("oa")
    table = unique("oa")
    kafka.create_topic(topic)
    pg.create_table(table, TABLE5)
    svc = create_service(srv, pg)
    src = create_source(srv, svc["id"], kafka, topic)
    job = create_job(srv, wizard_job(src["id"], pg, table, COLUMNS))
    return {"services": svc["id"], "sources": src["id"], "jobs": job["id"]}


def fill(path, ids):
    """The documented path with real ids (and a real asset name)."""
    m = re.match(r"/api/v1/([a-z]+)/\{id\}", path)
    if m:
        path = path.replace("{id}", str(ids[m.group(1)]))
    path = path.replace("{name}", "app.js")
    assert "{" not in path, f"no value for a parameter of {path}"
    return path


def test_routes_agree_with_document(server, pg, kafka):
    doc = load_doc()
    ids = make_objects(server, pg, kafka)
    methods = documented_methods(doc)
    problems = []
    deletes = []
    for path, documented in methods.items():
        url = fill(path, ids)
        for method in PROBE_METHODS:
            if method == "DELETE" and method in documented:
                deletes.append((path, url))  # after everything else
                continue
            resp = raw(server, method, url)
            if method in documented:
                if is_no_route(resp) or resp.status_code == 405:
                    problems.append(f"{method} {url} is documented but answers {describe(resp)}")
            else:
                allow = {a.strip() for a in resp.headers.get("Allow", "").split(",") if a.strip()}
                allow.discard("HEAD")  # HEAD goes with GET; the probes do not send it
                if resp.status_code != 405 or allow != documented:
                    problems.append(f"{method} {url} is not documented: expected 405 with "
                                    f"Allow {sorted(documented)}, got {describe(resp)}")
                elif resp.json()["error"]["code"] != "method_not_allowed":
                    problems.append(f"{method} {url}: 405 without code method_not_allowed")
    assert not problems, "\n".join(problems)

    # The probes started the job: stop it, then delete job, source, service.
    stop_job(server, ids["jobs"])
    wait_state(server, ids["jobs"], "stopped")
    order = ["/api/v1/jobs/{id}", "/api/v1/sources/{id}", "/api/v1/services/{id}"]
    deletes.sort(key=lambda d: order.index(d[0]) if d[0] in order else len(order))
    assert [d[0] for d in deletes] == ["/api/v1/jobs/{id}", "/api/v1/sources/{id}",
                                       "/api/v1/services/{id}"], deletes
    for path, url in deletes:
        resp = raw(server, "DELETE", url)
        assert resp.status_code == 204, f"DELETE {url}: {describe(resp)}"


def literal_words():
    """Every string literal of api/*.c that could be a path segment."""
    words = set()
    for f in API_SOURCES:
        for lit in re.findall(r'"((?:[^"\\\n]|\\.)*)"', f.read_text()):
            w = lit.strip("/")
            # "." and ".." are dot segments (RFC 3986 5.2.4), removed before routing
            if re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", w) and ".." not in w \
                    and "." not in w.split("/") and len(w) <= 64:
                words.add(w)
    return words


def test_server_has_no_undocumented_route(server, pg, kafka):
    doc = load_doc()
    regexes = [path_regex(doc, p) for p in doc["paths"]]
    ids = make_objects(server, pg, kafka)
    words = literal_words()
    # the literals the router itself is made of: if these are not seen, the
    # parsing of the sources is broken and the probes prove nothing
    assert {"services", "sources", "jobs", "status", "validate", "start", "stop", "config",
            "errors", "offsets", "offsets/reset", "healthz", "metrics"} <= words, sorted(words)
    candidates = set()
    for w in words:
        candidates.add("/" + w)
        candidates.add("/api/v1/" + w)
        for coll, oid in ids.items():
            candidates.add(f"/api/v1/{coll}/{w}")
            candidates.add(f"/api/v1/{coll}/{oid}/{w}")
    probes = sorted(c for c in candidates if not any(r.match(c) for r in regexes))
    # the documented routes are reached by the same construction
    assert len(candidates) - len(probes) >= 10
    undocumented = []
    for url in probes:
        for method in ("GET", "PUT"):
            resp = raw(server, method, url)
            if not is_no_route(resp):
                undocumented.append(f"{method} {url}: {describe(resp)}")
                break
    assert not undocumented, ("routes the server has but api/openapi.yaml lacks:\n"
                              + "\n".join(undocumented))


# ------------------------------------------------------------------- security

def test_documented_security_holds(make_server, tmp_path, pg, kafka):
    token, read_token = "t" * 8 + unique("full"), "r" * 8 + unique("read")
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "read-token").write_text(read_token + "\n")
    srv = make_server(args=["--token-file", str(tmp_path / "token"),
                            "--read-token-file", str(tmp_path / "read-token")],
                      api_token=token)
    doc = load_doc()
    ids = make_objects(srv, pg, kafka)
    problems = []
    for path, method, op, _ in operations(doc):
        url = fill(path, ids)
        secured = op.get("security", doc["security"]) != []
        # None drops the session's header for this request
        anon = raw(srv, method, url, headers={"Authorization": None})
        assert "Authorization" not in anon.request.headers
        if secured:
            if anon.status_code != 401 or anon.json()["error"]["code"] != "unauthorized" \
                    or not anon.headers.get("WWW-Authenticate", "").startswith("Bearer"):
                problems.append(f"{method} {path} without a token: {describe(anon)}")
            if method not in ("GET", "HEAD"):
                ro = raw(srv, method, url, headers={"Authorization": f"Bearer {read_token}"})
                if ro.status_code != 403 or ro.json()["error"]["code"] != "forbidden":
                    problems.append(f"{method} {path} with the read token: {describe(ro)}")
        elif anon.status_code != 200:
            problems.append(f"{method} {path} is open but without a token: {describe(anon)}")
    assert not problems, "\n".join(problems)
