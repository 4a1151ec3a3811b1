"""The API against hostile clients (issue 10, sections 7 and 8): slow
connections, cross-site and wrong-type requests, strings that are not UTF-8
or hold NUL, malformed requests sent over raw sockets, and the headers every
answer carries.  Everything stays on 127.0.0.1."""
import json
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from slow_clients import SlowClients, probe  # noqa: E402

JSON = {"Content-Type": "application/json"}


def raw(server, data, timeout=15):
    """Sends data (bytes) as it is and returns (status, headers, body) of the
    answer, read until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
    text = b"".join(chunks)
    head, _, body = text.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1."), f"not an HTTP answer: {text[:300]!r}"
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body, lines[0]


def request_bytes(server, method, path, body=b"", headers=()):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
    lines += list(headers)
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_error(status, headers, body, want_status, code=None):
    assert status == want_status, (status, body[:500])
    assert headers.get("content-type", "").startswith("application/json"), headers
    err = json.loads(body)["error"]
    if code is not None:
        assert err["code"] == code, err
    return err


def assert_hygiene(resp_headers, page=False):
    h = {k.lower(): v for k, v in resp_headers.items()}
    assert h.get("x-content-type-options") == "nosniff", h
    assert h.get("cache-control") == "no-store", h
    if page:
        csp = h.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
        assert "unsafe-inline" not in csp, csp


# ------------------------------------------------------------ slow clients

def test_slow_clients_do_not_starve_the_api(server):
    """200 connections that trickle their headers, held for 20 s (the full
    200 x 60 s measurement is tests/bench/slow_clients.py): every probe in the
    meantime gets its answer."""
    url = server.url("/services")
    attack = SlowClients(server.port, 200, interval=2.0).start()
    results = []
    try:
        deadline = time.monotonic() + 30
        while attack.held() < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert attack.held() == 200, f"only {attack.held()} slow connections open"
        end = time.monotonic() + 20
        while time.monotonic() < end:
            results.append(probe(url, timeout=10))
            time.sleep(0.5)
        still_held = attack.held()
    finally:
        attack.stop()
    lat = sorted(r[0] for r in results)
    print(f"probes under 200 slow connections: {len(results)}, latency ms "
          f"p50 {lat[len(lat) // 2] * 1000:.1f} max {lat[-1] * 1000:.1f}; "
          f"{attack.opened} slow connections opened, {attack.closed_by_server} closed by the server")
    bad = [r for r in results if r[1] != 200 or not r[2]]
    assert not bad, f"{len(bad)} of {len(results)} probes failed: {bad[:5]}"
    assert still_held >= 150, still_held
    # the header deadline let go of the trickling connections (5 s each)
    assert attack.closed_by_server >= 200, attack.closed_by_server
    # and the server is whole afterwards
    assert server.call("GET", "/services")["total"] == 0


def test_header_deadline_answers_json(server):
    """A header that never completes is cut off after 5 s with the API's
    error, not after civetweb's default 30 s."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        t0 = time.monotonic()
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
        took = time.monotonic() - t0
    assert took < 15, took
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"nosniff" in head
    assert json.loads(body)["error"]["code"] == "malformed"


def test_body_deadline(server):
    """A body that trickles in (one byte a second) is cut off after 10 s with
    a 408, and nothing is created."""
    body = b'{"name": "slow", "description": "' + b"x" * 40 + b'"}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(request_bytes(server, "POST", "/api/v1/services", b"",
                                ["Content-Type: application/json",
                                 f"Content-Length: {len(body)}"]))
        t0 = time.monotonic()
        data = b""
        s.settimeout(1.0)
        for i in range(len(body)):
            try:
                s.sendall(body[i:i + 1])
            except OSError:
                break
            try:
                b = s.recv(65536)
                if not b:
                    break
                data += b
                break
            except socket.timeout:
                pass
        s.settimeout(20)
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not b:
                break
            data += b
        took = time.monotonic() - t0
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), (head, took)
    assert json.loads(rest)["error"]["code"] == "request_timeout"
    assert took < 25, took
    assert server.call("GET", "/services")["total"] == 0


# ------------------------------------------------------------ cross-site

def test_body_must_be_json(server):
    body = json.dumps({"name": "svc"})
    r = server.request("POST", "/services", data=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert_hygiene(r.headers)
    r = server.request("POST", "/services", data=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415, r.text
    # no type at all with a body
    st, h, b, _ = raw(server, request_bytes(server, "POST", "/api/v1/services", body.encode()))
    json_error(st, h, b, 415, "unsupported_media_type")
    r = server.request("POST", "/services", data=body,
                       headers={"Content-Type": "application/json; charset=iso-8859-1"})
    assert r.status_code == 415, r.text
    assert server.call("GET", "/services")["total"] == 0
    # what streamctl, the page and the README send
    r = server.request("POST", "/services", data=body,
                       headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text
    r = server.request("PATCH", f"/services/{r.json()['id']}", data='{"description": "x"}',
                       headers={"Content-Type": "Application/JSON"})
    assert r.status_code == 200, r.text


def test_bodiless_stop_needs_no_type_but_a_form_is_refused(server):
    job = server.request("POST", "/jobs/1/stop")  # requests sends Content-Length: 0, no type
    assert job.status_code == 404, job.text  # no such job: but not 415
    r = server.request("POST", "/jobs/1/stop", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text


def test_foreign_origin_refused(server):
    r = server.request("POST", "/services", data=json.dumps({"name": "evil"}),
                       headers={"Origin": "http://evil.example"})
    err = r.json()["error"]
    assert r.status_code == 403 and err["code"] == "forbidden", r.text
    assert "--allow-origin" in err["message"]
    assert_hygiene(r.headers)
    r = server.request("GET", "/services", headers={"Origin": "null"})
    assert r.status_code == 403, r.text
    r = server.request("POST", "/jobs/1/stop", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403, r.text
    # civetweb's default answered every preflight with "Allow-Origin: *"
    r = server.request("OPTIONS", "/services", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 403, r.text
    assert "Access-Control-Allow-Origin" not in r.headers, r.headers
    # the page's own origin is fine
    r = server.request("POST", "/services", data=json.dumps({"name": "mine"}),
                       headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert r.status_code == 201, r.text
    assert server.call("GET", "/services")["total"] == 1


def test_allow_origin(make_server):
    srv = make_server(args=["--allow-origin", "https://console.example:8443",
                            "--allow-origin", "http://a.example,http://b.example"])
    for origin in ("https://console.example:8443", "http://b.example"):
        r = srv.request("GET", "/services", headers={"Origin": origin})
        assert r.status_code == 200, r.text
        assert r.headers.get("Access-Control-Allow-Origin") == origin, r.headers
    r = srv.request("OPTIONS", "/services", headers={
        "Origin": "http://a.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 204, r.text
    assert "POST" in r.headers.get("Access-Control-Allow-Methods", ""), r.headers
    assert "Content-Type" in r.headers.get("Access-Control-Allow-Headers", ""), r.headers
    r = srv.request("GET", "/services", headers={"Origin": "http://c.example"})
    assert r.status_code == 403, r.text
    srv2 = make_server(env={"STREAMSERVER_ALLOW_ORIGIN": "http://env.example"})
    assert srv2.request("GET", "/services", headers={"Origin": "http://env.example"}).status_code == 200


def test_host_checked_without_token(server, make_server):
    """DNS rebinding: a foreign name that resolves to 127.0.0.1 is refused."""
    for host in ("evil.example", f"evil.example:{server.port}", f"127.0.0.1:{server.port + 1}"):
        st, h, b, _ = raw(server, f"GET /api/v1/services HTTP/1.1\r\nHost: {host}\r\n"
                                  "Connection: close\r\n\r\n".encode())
        json_error(st, h, b, 421, "misdirected")
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}",
                 f"LOCALHOST:{server.port}"):
        st, h, b, _ = raw(server, f"GET /api/v1/services HTTP/1.1\r\nHost: {host}\r\n"
                                  "Connection: close\r\n\r\n".encode())
        assert st == 200, (host, b)
    srv = make_server(args=["--allow-host", "streams.internal"])
    st, h, b, _ = raw(srv, b"GET /api/v1/services HTTP/1.1\r\nHost: streams.internal:8080\r\n"
                           b"Connection: close\r\n\r\n")
    assert st == 200, b
    # with a token the name does not matter (the token is the guard)
    tok = "t" * 32
    srv = make_server(env={"STREAMSERVER_TOKEN": tok}, api_token=tok)
    st, h, b, _ = raw(srv, ("GET /api/v1/services HTTP/1.1\r\nHost: any.example\r\n"
                            f"Authorization: Bearer {tok}\r\nConnection: close\r\n\r\n").encode())
    assert st == 200, b


# ------------------------------------------------------------ strings

@pytest.mark.parametrize("raw_value,what", [
    (b'"a\xffb"', "UTF-8"),
    (b'"a\xc0\xafb"', "UTF-8"),            # overlong "/"
    (b'"\xe0\x80\xaf"', "UTF-8"),          # overlong, three bytes
    (b'"\xed\xa0\x80"', "UTF-8"),          # a UTF-16 surrogate
    (b'"\xf4\x90\x80\x80"', "UTF-8"),      # above U+10FFFF
    (b'"a\\u0000b"', "NUL"),
    (b'"a\xc0\x80b"', "NUL"),              # the overlong NUL
])
def test_strings_must_be_utf8_without_nul(server, raw_value, what):
    body = b'{"name": "svc", "description": ' + raw_value + b"}"
    st, h, b, line = raw(server, request_bytes(server, "POST", "/api/v1/services", body,
                                               ["Content-Type: application/json"]))
    err = json_error(st, h, b, 422, "invalid")
    assert line == "HTTP/1.1 422 Unprocessable Entity", line
    assert err["field"] == "description", err
    assert what in err["message"], err
    assert server.call("GET", "/services")["total"] == 0
    # the name, too: "a\u0000b" is not stored as "a"
    body = b'{"name": ' + raw_value + b"}"
    st, h, b, _ = raw(server, request_bytes(server, "POST", "/api/v1/services", body,
                                            ["Content-Type: application/json"]))
    assert json_error(st, h, b, 422)["field"] == "name"


def test_nested_strings_and_keys_checked(server):
    r = server.request("POST", "/jobs", data=b'{"name": "j", "fields": [{"name": "ok"}, '
                                             b'{"name": "x\\u0000"}]}')
    err = r.json()["error"]
    assert r.status_code == 422 and err["field"] == "fields[1].name", r.text
    r = server.request("POST", "/services", data=b'{"na\xffme": "x"}')
    assert r.status_code == 422, r.text
    # a raw NUL byte, which cJSON would take and cut the string at
    r = server.request("POST", "/services", data=b'{"name": "a\x00b"}')
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"], r.text
    # escaped backslash before u0000 is text, not a NUL
    r = server.request("POST", "/services", data=b'{"name": "ok", "description": "a\\\\u0000"}')
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "a\\u0000"
    listed = server.http.get(server.url("/services"))
    listed.content.decode("utf-8")  # strict clients can still read the list


# ------------------------------------------------------------ smaller cases

@pytest.mark.parametrize("method", ["get", "FOO", "PROPFIND", "TRACE"])
def test_unknown_methods_get_json(server, method):
    st, h, b, _ = raw(server, request_bytes(server, method, "/api/v1/jobs"))
    assert st in (400, 501), (st, b)
    err = json.loads(b)["error"]
    assert method in err["message"], err
    assert h.get("x-content-type-options") == "nosniff", h


def test_malformed_requests_get_json(server):
    for data in (b"GET /api/v1/jobs HTTP/9.9\r\n\r\n", b"GET\r\n\r\n",
                 b"GET /api/v1/jobs HTTP/1.1\r\nBad Header Line\r\n\r\n"):
        st, h, b, _ = raw(server, data)
        assert 400 <= st < 600, (data, st)
        assert json.loads(b)["error"]["code"], b
        assert h.get("x-content-type-options") == "nosniff", h
        assert h.get("cache-control") == "no-store", h


def test_bad_content_length_gets_json(server):
    for cl in ("-5", "abc", "5 5"):
        st, h, b, _ = raw(server, (f"POST /api/v1/services HTTP/1.1\r\n"
                                   f"Host: 127.0.0.1:{server.port}\r\n"
                                   f"Content-Type: application/json\r\nContent-Length: {cl}\r\n"
                                   "Connection: close\r\n\r\n{}").encode())
        assert st in (400, 411), (cl, st, b)
        assert json.loads(b)["error"]["code"] == "malformed", (cl, b)
    assert server.call("GET", "/services")["total"] == 0


def test_huge_header_gets_json(server):
    st, h, b, _ = raw(server, request_bytes(server, "GET", "/api/v1/services",
                                            headers=["X-Big: " + "a" * 20000]))
    err = json_error(st, h, b, 400, "malformed")  # civetweb cannot tell it from garbage
    assert "16 KiB" in err["message"], err


def test_nul_in_path_does_not_truncate_it(server):
    server.call("POST", "/services", {"name": "s"}, expect=201)
    for path in ("/api/v1/jobs/%00", "/api/v1/services%00", "/api/v1/services/%001"):
        st, h, b, _ = raw(server, request_bytes(server, "GET", path))
        assert st in (400, 404), (path, st, b)
        assert "items" not in json.loads(b), b
    # percent-encoding still works where it means something
    st, h, b, _ = raw(server, request_bytes(server, "GET", "/api/v1/%73ervices"))
    assert st == 200 and json.loads(b)["total"] == 1, b


def test_two_content_lengths_refused(server):
    body = b'{"name": "cl"}'
    data = (f"POST /api/v1/services HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 14\r\nContent-Length: 2\r\n"
            "Connection: close\r\n\r\n").encode() + body
    st, h, b, _ = raw(server, data)
    err = json_error(st, h, b, 400, "malformed")
    assert "Content-Length" in err["message"], err
    data = (f"POST /api/v1/services HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 14\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode() + body
    st, h, b, _ = raw(server, data)
    json_error(st, h, b, 400, "malformed")
    assert server.call("GET", "/services")["total"] == 0
    # two Host headers: which one was checked?
    st, h, b, _ = raw(server, (f"GET /api/v1/services HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                               "Host: evil.example\r\nConnection: close\r\n\r\n").encode())
    json_error(st, h, b, 400, "malformed")


@pytest.mark.parametrize("value", ["1e999999", "3", "-1e999999", "2.5", "1e308"])
def test_spec_cu_answered_with_its_rule(server, value):
    r = server.request("POST", "/services", data='{"name": "s", "spec_cu": ' + value + "}")
    err = r.json()["error"]
    assert r.status_code == 422 and err["field"] == "spec_cu", r.text
    assert "2, 4, 8 or 16" in err["message"], err


# ------------------------------------------------------------ section 8 headers

def test_headers_on_every_answer(server):
    for method, path, kw, want in [
        ("GET", "/healthz", {}, 200),
        ("GET", "/services", {}, 200),
        ("GET", "/services/99", {}, 404),
        ("POST", "/services", {"data": "{"}, 400),
        ("DELETE", "/healthz", {}, 405),
        ("GET", "/metrics", {}, 200),
        ("GET", "/api/v1/openapi.yaml", {}, 200),
        ("HEAD", "/services", {}, 200),
    ]:
        r = server.request(method, path, **kw)
        assert r.status_code == want, (method, path, r.status_code, r.text[:300])
        assert_hygiene(r.headers)
    r = server.request("GET", "/")
    assert r.status_code == 200
    assert_hygiene(r.headers, page=True)
    assert "<script>" not in r.text and " style=" not in r.text  # nothing inline for the CSP
    for asset in ("/ui/app.js", "/ui/style.css"):
        r = server.request("GET", asset)
        assert r.status_code == 200, asset
        assert_hygiene(r.headers, page=True)
    r = server.request("GET", "/ui/nothing.js")
    assert r.status_code == 404
    assert_hygiene(r.headers, page=True)
    # civetweb's own answers too
    st, h, b, _ = raw(server, b"get / HTTP/1.1\r\n\r\n")
    assert h.get("x-content-type-options") == "nosniff" and h.get("cache-control") == "no-store"
