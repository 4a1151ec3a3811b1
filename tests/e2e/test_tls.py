"""HTTPS end to end (doc/operations.md "Security", "TLS"): the controller serves TLS 1.2
and 1.3 to curl and `openssl s_client` through the OpenSSL libraries of
api/tlscompat/, asks for client certificates with --tls-client-ca (mutual
TLS), and streamctl (libcurl) verifies the server's certificate and host
name, presents a client certificate, and honours proxies from the
environment.  Certificates come from a CA made here with the openssl CLI."""
import os
import shutil
import socket
import subprocess
import threading
import warnings

import pytest

from conftest import BUILD, CONTROLLER, WORKER
from helpers import register_secret, REPO, free_port, unique
from test_cli import code, ctl, ok

TOKEN = register_secret("tls-test-token-" + "k" * 24)

# What the controller said when it patched civetweb's function table at run
# time; none of it may come back.
OLD_TLS_MESSAGES = ("SSL_get_peer_certificate", "function table", "install libssl-dev",
                    "civetweb did not load libssl.so")


class CA:
    """A certificate authority in directory d, made with the openssl CLI."""

    def __init__(self, d, name):
        self.d = d
        self.name = name
        d.mkdir(parents=True, exist_ok=True)
        self.run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name} test CA")
        self.pem = d / f"{name}.pem"

    def run(self, *args):
        subprocess.run(["openssl", *args], cwd=self.d, check=True, capture_output=True,
                       timeout=120)

    def issue(self, stem, cn, san=None, client=False):
        """(cert.pem, key.pem) for cn, signed by this CA."""
        self.run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{stem}.key", "-out",
                 f"{stem}.csr", "-subj", f"/CN={cn}")
        ext = [f"subjectAltName={san}"] if san else []
        ext.append("extendedKeyUsage=" + ("clientAuth" if client else "serverAuth"))
        (self.d / f"{stem}.ext").write_text("\n".join(ext) + "\n")
        self.run("x509", "-req", "-in", f"{stem}.csr", "-CA", f"{self.name}.pem", "-CAkey",
                 f"{self.name}.key", "-CAcreateserial", "-out", f"{stem}.pem", "-days", "2",
                 "-extfile", f"{stem}.ext")
        (self.d / f"{stem}.key").chmod(0o600)
        return self.d / f"{stem}.pem", self.d / f"{stem}.key"


@pytest.fixture
def pki(tmp_path):
    ca = CA(tmp_path / "pki", "server")
    return {
        "ca": ca.pem,
        "server": ca.issue("srv", "127.0.0.1", "IP:127.0.0.1,DNS:localhost"),
        "other": ca.issue("other", "other.example", "DNS:other.example"),
    }


@pytest.fixture
def clients(tmp_path):
    good, bad = CA(tmp_path / "clients", "client"), CA(tmp_path / "rogue", "rogue")
    return {"ca": good.pem, "good": good.issue("alice", "alice", client=True),
            "rogue": bad.issue("mallory", "mallory", client=True)}


@pytest.fixture(autouse=True)
def no_ca_overrides(monkeypatch):
    # requests prefers these to a Session's own verify= (requests issue 3829).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def curl(url, *args):
    """curl(1) with verbose output (the negotiated protocol is in stderr);
    the HTTP status is the last line of stdout."""
    return subprocess.run(["curl", "-sS", "-v", "--noproxy", "*", "-o", "/dev/null", "-w",
                           "%{http_code}", *map(str, args), url],
                          capture_output=True, text=True, timeout=60)


def s_client(port, version, ca):
    return subprocess.run(["openssl", "s_client", version, "-connect", f"127.0.0.1:{port}",
                           "-servername", "localhost", "-CAfile", str(ca), "-verify_return_error"],
                          input="", capture_output=True, text=True, timeout=60)


def assert_clean_tls_log(srv):
    log = srv.log_text()
    for m in OLD_TLS_MESSAGES:
        assert m not in log, f"{m!r} in the controller's log:\n{log}"


# -------------------------------------------------------- TLS 1.2 and 1.3

def test_https_tls12_and_tls13(make_server, pki):
    cert, key = pki["server"]
    srv = make_server(args=["--tls-cert", cert, "--tls-key", key], scheme="https",
                      verify=pki["ca"], env={"STREAMSERVER_TOKEN": TOKEN}, api_token=TOKEN)
    url = srv.base + "/api/v1/services"
    auth = ["-H", f"Authorization: Bearer {TOKEN}", "--cacert", pki["ca"]]
    for flags, proto in ((["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
                         (["--tlsv1.3"], "TLSv1.3")):
        for _ in range(2):  # each connection is its own handshake
            p = curl(url, *auth, *flags)
            assert p.returncode == 0 and p.stdout == "200", (flags, p.stdout, p.stderr)
            assert f"SSL connection using {proto}" in p.stderr, p.stderr
    # by name too: the certificate names localhost
    p = curl(url.replace("127.0.0.1", "localhost"), *auth)
    assert p.returncode == 0 and p.stdout == "200", p.stderr
    # TLS 1.1 and older are refused
    p = curl(url, *auth, "--tlsv1.0", "--tls-max", "1.1")
    assert p.returncode != 0 and p.stdout in ("", "000"), p

    for version, proto in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        p = s_client(srv.port, version, pki["ca"])
        out = p.stdout + p.stderr
        assert p.returncode == 0, out
        assert f"Protocol  : {proto}" in out or f"New, {proto}," in out, out
        assert "Verify return code: 0 (ok)" in out, out

    # the libssl.so civetweb uses is the project's (which needs OpenSSL 3's)
    maps = open(f"/proc/{srv.proc.pid}/maps").read()
    assert str(BUILD / "api" / "tlscompat" / "libssl.so") in maps, maps
    assert "libssl.so.3" in maps
    assert srv.call("GET", "/services")["total"] == 0
    assert_clean_tls_log(srv)


# ------------------------------------------------------------- mutual TLS

def test_mutual_tls(make_server, pki, clients, tmp_path):
    cert, key = pki["server"]
    srv = make_server(args=["--tls-cert", cert, "--tls-key", key],
                      env={"STREAMSERVER_TLS_CLIENT_CA": str(clients["ca"])}, scheme="https",
                      verify=pki["ca"], client_cert=clients["good"])
    url = srv.base + "/api/v1/services"
    ca = ["--cacert", pki["ca"]]
    good = ["--cert", clients["good"][0], "--key", clients["good"][1]]
    rogue = ["--cert", clients["rogue"][0], "--key", clients["rogue"][1]]
    for tls in (["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]):
        p = curl(url, *ca, *tls)
        assert p.returncode != 0 and p.stdout in ("", "000"), ("no client certificate", tls, p)
        p = curl(url, *ca, *tls, *good)
        assert p.returncode == 0 and p.stdout == "200", (tls, p.stderr)
        p = curl(url, *ca, *tls, *rogue)
        assert p.returncode != 0 and p.stdout in ("", "000"), ("another CA's client", tls, p)
    # requests through the fixture's session (with the good certificate)
    assert srv.call("GET", "/services")["total"] == 0

    # streamctl presents its certificate with --cert/--key (or STREAMCTL_CERT/KEY)
    name = unique("mtls")
    body = tmp_path / "svc.json"
    body.write_text(f'{{"name": "{name}", "database_host": "127.0.0.1"}}')
    ok(ctl(srv.base, "--cacert", pki["ca"], "--cert", clients["good"][0], "--key",
           clients["good"][1], "services", "create", "-f", body))
    p = ok(ctl(srv.base, "services", "list",
               env={"STREAMCTL_CACERT": str(pki["ca"]), "STREAMCTL_CERT": str(clients["good"][0]),
                    "STREAMCTL_KEY": str(clients["good"][1])}))
    assert name in p.stdout, p.stdout
    # without one, or with another CA's, the server refuses it
    code(ctl(srv.base, "--cacert", pki["ca"], "services", "list"), 3)
    code(ctl(srv.base, "--cacert", pki["ca"], "--cert", clients["rogue"][0], "--key",
             clients["rogue"][1], "services", "list"), 3)
    # a key without its certificate is a usage error
    code(ctl(srv.base, "--cacert", pki["ca"], "--key", clients["good"][1], "health"), 2)
    assert_clean_tls_log(srv)


# -------------------------------------------------- streamctl and host names

def test_streamctl_verifies_the_host_name(make_server, pki):
    cert, key = pki["server"]
    srv = make_server(args=["--tls-cert", cert, "--tls-key", key], scheme="https",
                      verify=pki["ca"], env={"STREAMSERVER_TOKEN": TOKEN}, api_token=TOKEN)
    for base in (srv.base, srv.base.replace("127.0.0.1", "localhost")):
        p = ok(ctl(base, "--cacert", pki["ca"], "services", "list", token=TOKEN))
        assert "NAME" in p.stdout, p.stdout
        ok(ctl(base, "--cacert", pki["ca"], "--connect-timeout", "5", "--timeout", "20",
               "health"))

    # a certificate signed by the trusted CA, but for another name only
    cert, key = pki["other"]
    other = make_server(args=["--tls-cert", cert, "--tls-key", key], scheme="https",
                        env={"STREAMSERVER_TOKEN": TOKEN}, api_token=TOKEN, start=False)
    other.http.trust_env = False
    other.http.verify = False  # the fixture's own check only: is it up?
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other.start()
        p = code(ctl(other.base, "--cacert", pki["ca"], "services", "list", token=TOKEN), 3)
        assert 'the server\'s certificate is not for host "127.0.0.1"' in p.stderr, p.stderr
        assert "match" in p.stderr, p.stderr
        assert TOKEN not in p.stderr + p.stdout
        assert "GET /api/v1/services" not in other.log_text(), "the request was sent"
    finally:
        assert other.stop() == 0, other.log_tail()
        other.http.close()
    # an untrusted certificate is a different message
    p = code(ctl(srv.base, "services", "list", token=TOKEN), 3)
    assert "cannot be verified" in p.stderr and "--cacert" in p.stderr, p.stderr
    assert TOKEN not in p.stderr + p.stdout


# ---------------------------------------------------------- streamctl proxies

class FakeProxy:
    """A listener that records the first request line it gets and answers
    like /healthz, as an HTTP proxy would pass it on."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.lines = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.lines.append(data.split(b"\r\n", 1)[0].decode())
                body = b'{"status":"ok"}'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                             % (len(body), body))

    def close(self):
        self.sock.close()


def test_streamctl_uses_the_proxy_from_the_environment(server):
    proxy = FakeProxy()
    try:
        env = {"http_proxy": f"http://127.0.0.1:{proxy.port}", "no_proxy": ""}
        ok(ctl(server.base, "health", env=env))
        assert proxy.lines == [f"GET {server.base}/healthz HTTP/1.1"], proxy.lines
        # no_proxy names the server: straight to it
        ok(ctl(server.base, "health", env=dict(env, no_proxy="127.0.0.1")))
        assert len(proxy.lines) == 1, proxy.lines
    finally:
        proxy.close()


# ------------------------------------------------------------- start errors

def run_controller(tmp_path, args, binary=CONTROLLER, env=None):
    proc = subprocess.run([str(binary), "--data-dir", str(tmp_path / unique("data")), "--worker",
                           str(WORKER), "--listen", f"127.0.0.1:{free_port()}", *map(str, args)],
                          env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def test_tls_start_errors(tmp_path, pki, clients):
    cert, key = pki["server"]
    rc, out = run_controller(tmp_path, ["--tls-client-ca", clients["ca"]])
    assert rc == 2 and "--tls-client-ca needs --tls-cert" in out, (rc, out)
    rc, out = run_controller(tmp_path, ["--tls-cert", cert, "--tls-key", key, "--tls-client-ca",
                                        tmp_path / "nope.pem"])
    assert rc == 2 and "nope.pem" in out and "cannot read it" in out, (rc, out)
    # a streamserver without its OpenSSL libraries beside it says so at start
    alone = tmp_path / "alone" / "bin"
    alone.mkdir(parents=True)
    shutil.copy2(CONTROLLER, alone / "streamserver")
    rc, out = run_controller(tmp_path, ["--tls-cert", cert, "--tls-key", key],
                             binary=alone / "streamserver")
    assert rc == 2 and "cannot find libssl.so for civetweb" in out, (rc, out)
    # plain HTTP does not need them
    rc, out = run_controller(tmp_path, ["--version"], binary=alone / "streamserver")
    assert rc == 0, out


def test_no_run_time_fixup_left():
    """No code writes into civetweb's memory any more: the name of the old
    fix-up is gone from the sources, and the Dockerfile makes no links."""
    name = "api_tls_" + "fixup"
    p = subprocess.run(["grep", "-rIl", "--exclude-dir=.git", "--exclude-dir=build*", name,
                        str(REPO)], capture_output=True, text=True)
    assert p.stdout == "", f"{name} still in: {p.stdout}"
    assert "ln -s" not in (REPO / "deploy" / "Dockerfile").read_text()
