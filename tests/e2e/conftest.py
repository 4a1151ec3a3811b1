"""Fixtures of the end-to-end tests.

  pg      (session)  a private PostgreSQL started by tests/harness/pg.sh
  kafka   (session)  a private single-node Kafka broker (tests/harness/kafka.sh)
  server  (test)     build/controller/streamserver on a free port with a fresh
                     data directory; server.restart() / server.restart(kill=True)
  secure_kafka (module)  a broker of the module's own with a SASL_SSL listener
                     (kafka.sh start DIR --secure): SecureKafka
  lan     (session)  a private bridge (tests/harness/netns.sh) with a Kafka and
                     a PostgreSQL of its own that listen on its address too
                     (hosts.Lan); only started when a test asks for it
  hosts   (test)     simulated hosts on the lan: hosts.add(n), hosts[i]
                     .start_controller(), .cut(), .restore(), .kill()
                     (hosts.Hosts); every namespace removed at the end
  registry (session) a schema registry with Confluent's API
                     (tests/harness/registry.sh: our own stand-in, see its
                     header); only started when a test asks for it
  make_registry (test)  make_registry(auth=False, prefix=None): a registry of
                     the test's own, which it may stop and start

pg and kafka start concurrently, once per session.  Set E2E_PGURI or
E2E_KAFKA_BOOTSTRAP to use ones already running instead.  STREAMSERVER_BUILD_DIR
selects the build tree (default: <repo>/build).  E2E_KEEP_TMP=1 keeps the
session's temporary directory (database and broker files) after the run.

A missing binary or dependency fails the tests: nothing is skipped.
"""
import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import (API, HARNESS, PG, REPO, Kafka, free_port, harness, parse_env,  # noqa: E402
                     pid_alive, register_secret, secrets_in)

BUILD = Path(os.environ.get("STREAMSERVER_BUILD_DIR") or REPO / "build").resolve()
CONTROLLER = BUILD / "controller" / "streamserver"
WORKER = BUILD / "worker" / "streamworker"

PG_START_TIMEOUT = 120
KAFKA_START_TIMEOUT = 900  # the first run fetches the broker's jars with Maven


# ------------------------------------------------------------ pg and kafka

class _Backends:
    def __init__(self):
        self.base = None
        self.pg = None
        self.kafka = None
        self.pg_dir = None
        self.kafka_dir = None


def _start_backends():
    b = _Backends()
    b.base = Path(tempfile.mkdtemp(prefix="streamserver-e2e-"))
    # pg.sh runs PostgreSQL as an unprivileged user, who must reach its directory.
    os.chmod(b.base, 0o755)
    procs = {}
    try:
        if os.environ.get("E2E_PGURI"):
            b.pg = PG.from_uri(os.environ["E2E_PGURI"])
            register_secret(b.pg.password)
        else:
            b.pg_dir = b.base / "pg"
            procs["pg.sh"] = (subprocess.Popen(
                [str(HARNESS / "pg.sh"), "start", str(b.pg_dir)], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True), PG_START_TIMEOUT)
        if os.environ.get("E2E_KAFKA_BOOTSTRAP"):
            b.kafka = Kafka(os.environ["E2E_KAFKA_BOOTSTRAP"])
        else:
            b.kafka_dir = b.base / "kafka"
            procs["kafka.sh"] = (subprocess.Popen(
                [str(HARNESS / "kafka.sh"), "start", str(b.kafka_dir)], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True), KAFKA_START_TIMEOUT)
        failures = []
        for name, (p, timeout) in procs.items():
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                failures.append(f"{name} start: no answer after {timeout}s\n{err}")
                continue
            if p.returncode != 0:
                failures.append(f"{name} start failed ({p.returncode}):\n{err}")
            elif name == "pg.sh":
                b.pg = PG.from_env(parse_env(out))
                register_secret(b.pg.password)
            else:
                b.kafka = Kafka(parse_env(out)["BOOTSTRAP"])
        if failures:
            raise RuntimeError("\n".join(failures))
    except BaseException:
        _stop_backends(b)
        raise
    return b


def _stop_backends(b):
    if b.pg is not None:
        b.pg.close()
    if b.kafka is not None:
        b.kafka.close()
        gc.collect()
    for script, d, verb in (("kafka.sh", b.kafka_dir, "stop"), ("pg.sh", b.pg_dir, "destroy")):
        if d is not None and d.exists():
            try:
                harness(script, verb, d, timeout=120)
            except Exception as e:  # keep stopping the rest
                print(f"warning: {script} {verb}: {e}", file=sys.stderr)
    if b.base is not None and not os.environ.get("E2E_KEEP_TMP"):
        shutil.rmtree(b.base, ignore_errors=True)


@pytest.fixture(scope="session")
def _backends():
    b, error = None, None
    try:
        b = _start_backends()
    except Exception as e:
        error = str(e)
    if error is not None:
        pytest.fail(f"cannot start the test PostgreSQL / Kafka: {error}", pytrace=False)
    yield b
    _stop_backends(b)


@pytest.fixture(scope="session")
def pg(_backends):
    """helpers.PG: uri, host, port, user, password, dbname; query/scalar/count."""
    register_secret(_backends.pg.password)
    return _backends.pg


@pytest.fixture(scope="session")
def kafka(_backends):
    """helpers.Kafka: bootstrap; create_topic, produce."""
    return _backends.kafka


@pytest.fixture(params=["on_conflict", "legacy"])
def upsert_path(request, monkeypatch):
    """Which MERGE statements the workers use: INSERT ... ON CONFLICT, or the
    UPDATE + INSERT ... WHERE NOT EXISTS of servers without it (Greenplum 6),
    forced with STREAMWORKER_LEGACY_UPSERT=1 (worker/sink_pg.h).  Requested
    before `server`, so the controller and its workers inherit it."""
    if request.param == "legacy":
        monkeypatch.setenv("STREAMWORKER_LEGACY_UPSERT", "1")
    else:
        monkeypatch.delenv("STREAMWORKER_LEGACY_UPSERT", raising=False)
    return request.param


# ------------------------------------------------------------ the controller

class Server:
    """One streamserver process: its URL, data directory and log."""

    def __init__(self, tmp, args=(), env=None, api_token=None, scheme="http", verify=None,
                 client_cert=None, host="127.0.0.1", wrap=()):
        """args: extra streamserver options; env: extra environment; api_token:
        sent as "Authorization: Bearer" on every request of self.http;
        scheme "https" with verify (a CA file) for TLS; client_cert
        (certificate, key) for a server that asks for one (mutual TLS);
        host: the address it listens on; wrap: a command prefix that it runs
        under and that execs it (ip netns exec NS, see hosts.py)."""
        self.port = free_port()
        self.host = host
        self.wrap = list(wrap)
        self.base = f"{scheme}://{host}:{self.port}"
        self.data_dir = tmp / "data"
        self.log_path = tmp / "streamserver.log"
        self.mark = uuid.uuid4().hex  # marks the processes this test started
        self.args = list(args)
        self.extra_env = dict(env or {})
        # The programs it runs: the build tree's, unless a test points these
        # at an installed copy (worker_args [] leaves the worker to the
        # controller's own search).
        self.controller = CONTROLLER
        self.worker_args = ["--worker", str(WORKER)]
        self.proc = None
        self.worker_pids = set()
        self.leaks = []  # answers that carried a registered secret
        self.http = self._session()
        if api_token is not None:
            self.http.headers["Authorization"] = f"Bearer {api_token}"
        if verify is not None:
            # REQUESTS_CA_BUNDLE in the environment would override verify.
            self.http.trust_env = False
            self.http.verify = str(verify)
        if client_cert is not None:
            self.http.cert = tuple(str(f) for f in client_cert)

    def _session(self):
        http = requests.Session()
        http.hooks["response"].append(self._sweep)
        return http

    def _sweep(self, resp, *args, **kwargs):
        found = secrets_in(resp.content)
        if found:
            self.leaks.append(f"{resp.request.method} {resp.url} -> {resp.status_code}: {found}")

    def process_leaks(self):
        """Where a registered secret shows in the command lines and
        environments of this server's processes still running."""
        where = []
        procs = [(pid, ("cmdline", "environ")) for pid in self.leftover_processes()]
        if self.proc is not None:
            # The controller's environment is where a user may give it a
            # token (STREAMSERVER_TOKEN); its arguments are not.
            procs.append((self.proc.pid, ("cmdline",)))
        for pid, parts in procs:
            for part in parts:
                try:
                    found = secrets_in(Path(f"/proc/{pid}/{part}").read_bytes())
                except OSError:
                    continue
                if found:
                    where.append(f"/proc/{pid}/{part}: {found}")
        return where

    def secret_leaks(self):
        """Where a registered secret showed in the answers so far and the log."""
        where = list(self.leaks)
        found = secrets_in(self.log_text())
        if found:
            where.append(f"log {self.log_path}: {found}")
        return where

    # process ---------------------------------------------------------------
    def start(self, timeout=30.0):
        for b in (CONTROLLER, WORKER):
            if not os.access(b, os.X_OK):
                pytest.fail(f"{b} is not built: meson setup {BUILD} && ninja -C {BUILD} "
                            "(or set STREAMSERVER_BUILD_DIR)", pytrace=False)
        env = dict(os.environ, STREAMSERVER_E2E_MARK=self.mark, **self.extra_env)
        # After a restart the old socket may linger a moment: retry the bind.
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            with open(self.log_path, "ab") as log:
                log.write(f"\n=== e2e: start #{attempt} at {time.strftime('%H:%M:%S')} ===\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    self.wrap + [str(self.controller), "--listen", f"{self.host}:{self.port}",
                                 "--data-dir", str(self.data_dir)] + self.worker_args + self.args,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.http.get(self.base + "/healthz", timeout=2).status_code == 200:
                        return self
                except requests.RequestException:
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"streamserver did not answer GET /healthz within {timeout}s"
                                     f"\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"streamserver exited with {self.proc.returncode} at start"
                                     f"\n{self.log_tail()}")
            time.sleep(0.5)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Sends sig and waits for the exit (SIGKILL after timeout s); returns
        the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"streamserver still ran {timeout}s after {sig.name}: killed")

    def restart(self, kill=False):
        """Stops the controller (SIGTERM, or SIGKILL with kill=True) and
        starts it again on the same port with the same data directory."""
        rc = self.stop(signal.SIGKILL if kill else signal.SIGTERM)
        self.http.close()
        old = self.http
        self.http = self._session()
        self.http.headers.update(old.headers)
        self.http.verify, self.http.cert, self.http.trust_env = old.verify, old.cert, old.trust_env
        self.start()
        return rc

    def leftover_processes(self):
        """Pids of live processes started under this server (by the mark in
        their environment) or seen as its workers, other than the controller."""
        pids = set()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if f"STREAMSERVER_E2E_MARK={self.mark}".encode() in (d / "environ").read_bytes():
                    pids.add(int(d.name))
            except OSError:
                pass
        for pid in self.worker_pids:
            try:
                if Path(f"/proc/{pid}/exe").resolve() == WORKER.resolve():
                    pids.add(pid)
            except OSError:
                pass
        if self.proc is not None:
            pids.discard(self.proc.pid)
        return {p for p in pids if pid_alive(p)}

    def log_tail(self, lines=80):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text[-lines:])

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # HTTP ------------------------------------------------------------------
    def url(self, path):
        if path.startswith(("/api/", "/healthz", "/metrics", "/ui/")) or path == "/":
            return self.base + path
        return self.base + API + path

    def request(self, method, path, json_body=None, data=None, headers=None, timeout=15):
        """Raw request: path relative to /api/v1 unless it starts with /api/,
        /healthz, /metrics, /ui/ or is /."""
        kw = {"timeout": timeout, "headers": headers or {}}
        if data is not None:
            kw["data"] = data
            kw["headers"].setdefault("Content-Type", "application/json")
        elif json_body is not None:
            kw["json"] = json_body
        return self.http.request(method, self.url(path), **kw)

    def call(self, method, path, json_body=None, expect=200):
        """A request whose status must be expect; returns the decoded body."""
        resp = self.request(method, path, json_body)
        assert resp.status_code == expect, (
            f"{method} {path}: HTTP {resp.status_code}, expected {expect}: {resp.text[:2000]}")
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise AssertionError(f"{method} {path}: body is not JSON: {resp.text[:500]!r}") from None


def _kill_leftovers(srv):
    left = srv.leftover_processes()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


@pytest.fixture
def server(request, tmp_path):
    """A running streamserver with a fresh data directory (see Server)."""
    yield from _serve(request, Server(tmp_path))


@pytest.fixture
def make_server(request, tmp_path):
    """make_server(args=[...], env={...}, api_token=..., scheme=..., verify=...,
    start=True): a streamserver with options of the test's own, stopped and
    checked like `server` at the end of the test."""
    gens = []

    def make(start=True, **kw):
        srv = Server(tmp_path / f"server{len(gens)}", **kw)
        (tmp_path / f"server{len(gens)}").mkdir()
        if not start:
            return srv
        gen = _serve(request, srv)
        gens.append(gen)
        return next(gen)

    yield make
    for gen in reversed(gens):
        for _ in gen:
            pass


def _serve(request, srv):
    request.node._ss_servers = getattr(request.node, "_ss_servers", []) + [srv]
    started = False
    try:
        srv.start()
        started = True
        yield srv
    finally:
        died = srv.proc is not None and srv.proc.poll() is not None
        rc = None
        leaks = srv.process_leaks() if started else []
        try:
            rc = srv.stop(signal.SIGTERM, timeout=40)
        finally:
            srv.http.close()
            left = _kill_leftovers(srv)
            if left:
                print(f"warning: processes still ran after streamserver stopped: {sorted(left)}"
                      " (killed)", file=sys.stderr)
    # A controller that crashed during the test, or did not exit cleanly on
    # SIGTERM, is a bug even when the test's own checks passed.
    if started and died:
        pytest.fail(f"streamserver died during the test: {_exit_text(rc)}", pytrace=False)
    if started and rc not in (None, 0):
        pytest.fail(f"streamserver {_exit_text(rc)} on SIGTERM (expected 0)", pytrace=False)
    if started:
        leaks += srv.secret_leaks()  # after the stop: the whole log
    if leaks:
        pytest.fail("a secret showed where it must not: " + "; ".join(leaks), pytrace=False)


def _exit_text(rc):
    if rc is not None and rc < 0:
        return f"killed by {signal.Signals(-rc).name}"
    return f"exited with status {rc}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_ss_servers", []):
            if srv.log_path.exists():
                rep.sections.append((f"streamserver log, last lines ({srv.log_path})", srv.log_tail()))


# ------------------------------------------- private backends (outage tests)
#
# The outage tests restart their database or broker; the session's pg and
# kafka are shared by every test, so those tests get their own.

class PrivatePG:
    """A PostgreSQL cluster of one test (tests/harness/pg.sh in its own
    directory): .pg (helpers.PG), restart_fast() (pg_ctl restart -m fast)."""

    def __init__(self, base):
        self.dir = base / "pg"
        self.pg = PG.from_env(harness("pg.sh", "start", self.dir, PG_START_TIMEOUT))

    def restart_fast(self):
        from helpers import pg_restart_fast
        self.pg.close()
        pg_restart_fast(self.dir)

    def destroy(self):
        self.pg.close()
        harness("pg.sh", "destroy", self.dir, timeout=120)


class PrivateKafka:
    """A broker of one test (tests/harness/kafka.sh in its own directory):
    .kafka (helpers.Kafka), stop(), start() (same directory, same port)."""

    def __init__(self, base):
        self.dir = base / "kafka"
        self.kafka = Kafka(harness("kafka.sh", "start", self.dir, KAFKA_START_TIMEOUT)["BOOTSTRAP"])

    def stop(self):
        harness("kafka.sh", "stop", self.dir, timeout=120)

    def start(self):
        bootstrap = harness("kafka.sh", "start", self.dir, KAFKA_START_TIMEOUT)["BOOTSTRAP"]
        assert bootstrap == self.kafka.bootstrap, \
            f"the broker came back on {bootstrap}, not {self.kafka.bootstrap}"

    def destroy(self):
        self.kafka.close()
        gc.collect()
        harness("kafka.sh", "stop", self.dir, timeout=120)


def _private_base():
    base = Path(tempfile.mkdtemp(prefix="streamserver-e2e-priv-"))
    os.chmod(base, 0o755)  # pg.sh's unprivileged user must reach it
    return base


@pytest.fixture
def private_pg():
    """A PostgreSQL of this test only, which it may restart (PrivatePG)."""
    base = _private_base()
    p = None
    try:
        p = PrivatePG(base)
        yield p
    finally:
        if p is not None:
            try:
                p.destroy()
            except Exception as e:
                print(f"warning: private pg: {e}", file=sys.stderr)
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def private_kafka():
    """A Kafka broker of this test only, which it may stop and start
    (PrivateKafka)."""
    base = _private_base()
    k = None
    try:
        k = PrivateKafka(base)
        yield k
    finally:
        if k is not None:
            try:
                k.destroy()
            except Exception as e:
                print(f"warning: private kafka: {e}", file=sys.stderr)
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------- a SASL_SSL broker (issue 10)

class SecureKafka:
    """A broker started with `kafka.sh start DIR --secure`: .kafka
    (helpers.Kafka on its PLAINTEXT listener, for topics and producing) and
    its SASL_SSL listener's .bootstrap, .ca (the harness's CA file), .user,
    .password (SCRAM-SHA-512); stop() and start() (same ports, same
    password)."""

    # A second JVM beside the session's broker: a small heap will do.
    ENV = {"KAFKA_HEAP_OPTS": "-Xms64m -Xmx256m"}

    def __init__(self, base):
        self.dir = base / "kafka"
        out = self._harness("start", "--secure")
        for key in ("BOOTSTRAP", "SECURE_BOOTSTRAP", "KAFKA_CA", "KAFKA_USER", "KAFKA_PASSWORD"):
            assert out.get(key), f"kafka.sh start --secure printed no {key}= line"
        self.lines = out
        self.kafka = Kafka(out["BOOTSTRAP"])
        self.bootstrap = out["SECURE_BOOTSTRAP"]
        self.ca = out["KAFKA_CA"]
        self.user = out["KAFKA_USER"]
        self.password = register_secret(out["KAFKA_PASSWORD"])

    def _harness(self, verb, *extra, timeout=KAFKA_START_TIMEOUT):
        p = subprocess.run([str(HARNESS / "kafka.sh"), verb, str(self.dir), *extra],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout,
                           env=dict(os.environ, **self.ENV))
        if p.returncode != 0:
            raise RuntimeError(f"kafka.sh {verb} {self.dir} {' '.join(extra)} failed "
                               f"({p.returncode}):\n{p.stderr}")
        return parse_env(p.stdout)

    def properties(self, **override):
        """The librdkafka settings of a client of the SASL_SSL listener."""
        props = {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
                 "sasl.username": self.user, "sasl.password": self.password,
                 "ssl.ca.location": self.ca}
        props.update(override)
        return props

    def status(self):
        return self._harness("status", timeout=30)

    def stop(self):
        self._harness("stop", timeout=120)

    def start(self):
        """Starts it again (the DIR remembers --secure): same addresses and
        password, or it fails."""
        out = self._harness("start")
        for key in ("BOOTSTRAP", "SECURE_BOOTSTRAP", "KAFKA_CA", "KAFKA_USER", "KAFKA_PASSWORD"):
            assert out.get(key) == self.lines[key], f"the restarted broker changed its {key}"

    def destroy(self):
        self.kafka.close()
        gc.collect()
        self.stop()


@pytest.fixture(scope="module")
def secure_kafka():
    """A SASL_SSL-capable broker of this module (SecureKafka).  A separate
    JVM, not the session's broker: that one stays as every other test knows
    it (or E2E_KAFKA_BOOTSTRAP's)."""
    base = _private_base()
    k, error = None, None
    try:
        k = SecureKafka(base)
    except Exception as e:
        error = str(e)
    try:
        if error is not None:
            pytest.fail(f"cannot start the SASL_SSL broker: {error}", pytrace=False)
        yield k
    finally:
        if k is not None:
            try:
                k.destroy()
            except Exception as e:
                print(f"warning: secure kafka: {e}", file=sys.stderr)
        else:
            subprocess.run([str(HARNESS / "kafka.sh"), "stop", str(base / "kafka")], timeout=120,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------ simulated hosts (issue 13)

@pytest.fixture(scope="session")
def lan():
    """A bridge with a Kafka and a PostgreSQL of its own listening on its
    address too (hosts.Lan), for the hosts of every test that asks."""
    from hosts import Lan
    net, error = None, None
    try:
        net = Lan()
    except Exception as e:
        error = str(e)
    if error is not None:
        pytest.fail(f"cannot make the bridge and its Kafka / PostgreSQL: {error}", pytrace=False)
    yield net
    net.close()


@pytest.fixture
def hosts(request, lan, tmp_path):
    """Simulated hosts of this test on the lan (hosts.Hosts): add(n), [i].
    At the end every controller is stopped and every namespace removed, also
    when the test failed; a controller that died without Host.kill() or did
    not exit 0 on SIGTERM fails the test, as for `server`."""
    from hosts import Hosts

    def on_server(srv):
        request.node._ss_servers = getattr(request.node, "_ss_servers", []) + [srv]

    hs = Hosts(lan, tmp_path / "hosts", Server, on_server)
    try:
        yield hs
    finally:
        problems = hs.close()
    if problems:
        pytest.fail("hosts: " + "; ".join(problems), pytrace=False)


# ------------------------------------------------ schema registry (issue 15)

class Registry:
    """A schema registry started with tests/harness/registry.sh (our own
    stand-in for Confluent's, see its header): .url (the base URL of the
    API), .user and .password with auth, client() (confluent-kafka's
    SchemaRegistryClient), fetches(path), stop() and start() (same port,
    same schemas)."""

    def __init__(self, base, auth=False, prefix=None):
        self.dir = base / "registry"
        opts = (["--auth"] if auth else []) + (["--prefix", prefix] if prefix else [])
        self.lines = harness("registry.sh", "start", self.dir, 60, *opts)
        self.url = self.lines["REGISTRY"]
        self.user = self.lines.get("REGISTRY_USER")
        self.password = register_secret(self.lines.get("REGISTRY_PASSWORD"))
        self.path = "/" + self.url.split("/", 3)[3] if self.url.count("/") > 2 else ""

    def client(self):
        from confluent_kafka.schema_registry import SchemaRegistryClient
        conf = {"url": self.url}
        if self.user:
            conf["basic.auth.user.info"] = f"{self.user}:{self.password}"
        return SchemaRegistryClient(conf)

    def requests(self):
        """The registry's request log: (method, path under the base URL,
        status) per request so far."""
        out = []
        try:
            lines = (self.dir / "requests.log").read_text().splitlines()
        except OSError:
            return out
        for line in lines:
            method, path, status = line.split(" ")
            if path.startswith(self.path):
                path = path[len(self.path):]
            out.append((method, path, int(status)))
        return out

    def fetches(self, path):
        """How many GET requests for path (e.g. "/schemas/ids/3") it answered."""
        return sum(1 for m, p, _ in self.requests() if m == "GET" and p == path)

    def stop(self):
        harness("registry.sh", "stop", self.dir, 60)

    def start(self):
        url = harness("registry.sh", "start", self.dir, 60)["REGISTRY"]
        assert url == self.url, f"the registry came back at {url}, not {self.url}"


@pytest.fixture(scope="session")
def registry():
    """The session's schema registry (Registry), started when a test asks."""
    base = _private_base()
    r, error = None, None
    try:
        r = Registry(base)
    except Exception as e:
        error = str(e)
    try:
        if error is not None:
            pytest.fail(f"cannot start the schema registry: {error}", pytrace=False)
        yield r
    finally:
        subprocess.run([str(HARNESS / "registry.sh"), "stop", str(base / "registry")],
                       timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_registry():
    """make_registry(auth=False, prefix=None): a registry of this test only
    (Registry), which it may stop and start; stopped at the end."""
    made = []

    def make(**kw):
        base = _private_base()
        made.append(base)
        return Registry(base, **kw)

    yield make
    for base in made:
        subprocess.run([str(HARNESS / "registry.sh"), "stop", str(base / "registry")],
                       timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)
