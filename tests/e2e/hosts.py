"""Simulated hosts for the multi-host tests (issue 13): network namespaces
made by tests/harness/netns.sh on a private bridge, a controller in each.

  Lan    a bridge (netns.sh up NAME 0) with a Kafka broker and a PostgreSQL
         of its own that listen on the bridge address too (kafka.sh / pg.sh
         --listen).  .pg and .kafka are the test's clients (127.0.0.1, as
         everywhere else); .host_pg and .host_kafka carry the bridge address,
         for what runs in a host (services, sources, job YAML).
  Hosts  the hosts of one test: add(n) makes namespaces NAME-I on the Lan's
         bridge; close() kills what runs in them and removes them.
  Host   one of them: .ns, .addr; start_controller() runs streamserver in it
         (a conftest Server on addr:port, with an API token, since it does not
         listen on loopback); cut()/restore() its link; kill() = SIGKILL to
         every process in it (the controller and all its workers); pids().

conftest.py's `lan` (session) and `hosts` (test) fixtures build these.  Needs
root (ip netns); a test that cannot make namespaces fails, it is not skipped.

    def test_x(hosts, lan):
        h1, h2, h3 = hosts.add(3)
        ctls = [h.start_controller() for h in (h1, h2, h3)]  # conftest Servers
        svc = create_service(ctls[0], lan.host_pg)          # the bridge address
        src = create_source(ctls[0], svc["id"], lan.host_kafka, topic)
        lan.kafka.produce(topic, ...)                       # the test: 127.0.0.1
        h2.cut(); ...; h2.restore()
        h3.kill()                                           # controller + workers
        h3.start_controller()                               # reboot, same data dir

Every controller of a test gets the same API token (Hosts.token, registered
with the secret sweep).  The sweep also reads the command lines of the
controllers and the environments of their workers: pass a catalog URI with a
password through the controller's environment (env=), and keep it out of
what the workers inherit.
"""
import gc
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from helpers import HARNESS, PG, Kafka, parse_env, pid_alive, register_secret

NETNS = HARNESS / "netns.sh"
KAFKA_START_TIMEOUT = 900  # the first run fetches the broker's jars with Maven
PG_START_TIMEOUT = 120
LAN_PREFIX = "streamserver-e2e-lan-"
# A third JVM beside the session's broker (and a secure one): a small heap.
KAFKA_ENV = {"KAFKA_HEAP_OPTS": "-Xms64m -Xmx256m"}


def netns(*args, timeout=60, check=True):
    """Runs tests/harness/netns.sh ARGS; returns its KEY=VALUE lines."""
    p = subprocess.run([str(NETNS), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError(f"netns.sh {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return parse_env(p.stdout)


def new_name(prefix="ss"):
    """A netns.sh NAME no parallel run uses (at most 9 characters)."""
    return prefix + uuid.uuid4().hex[:6]


def namespaces():
    """The names of the network namespaces that exist (ip netns list)."""
    out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def links():
    """The names of the interfaces of the root namespace."""
    out = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line}


def ours(name):
    """What is left of netns.sh NAME: namespaces NAME-I and interfaces NAME-*
    (sorted), empty when it is all gone."""
    return sorted(n for n in namespaces() | links() if n.startswith(name + "-"))


def _start_time(pid):
    """pid's start time (field 22 of /proc/PID/stat), or None if it is gone:
    with the pid, it names a process even when pids are reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _reap_lans():
    """Stops the Kafka and PostgreSQL of the Lans whose test run was killed
    before its teardown (their bridges go with netns.sh reap)."""
    for base in Path(tempfile.gettempdir()).glob(LAN_PREFIX + "*"):
        try:
            pid, start = (base / "owner").read_text().split()
        except (OSError, ValueError):
            continue
        if _start_time(int(pid)) == start:
            continue
        print(f"note: removing {base}, left by the killed test run {pid}", file=sys.stderr)
        for script, verb, d in (("kafka.sh", "stop", base / "kafka"), ("pg.sh", "destroy", base / "pg")):
            if d.exists():
                subprocess.run([str(HARNESS / script), verb, str(d)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=120, stdin=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


def ns_of_pid(pid):
    """The inode of pid's network namespace (compare with Host.ns_inode())."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino


class Lan:
    """A bridge and the Kafka and PostgreSQL that hosts on it reach."""

    def __init__(self):
        self.name = new_name()
        self.pg = self.kafka = self.host_pg = self.host_kafka = None
        self.up = False
        # What runs killed before their teardown left goes first; ours is
        # reaped the same way if this process is killed.
        netns("reap", timeout=120)
        _reap_lans()
        self.base = Path(tempfile.mkdtemp(prefix=LAN_PREFIX))
        os.chmod(self.base, 0o755)  # pg.sh's unprivileged user must reach it
        (self.base / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
        try:
            out = netns("up", self.name, 0, "--owner", os.getpid())
            self.up = True
            self.bridge, self.bridge_addr, self.subnet = out["BRIDGE"], out["BRIDGE_ADDR"], out["SUBNET"]
            self._start_backends()
        except BaseException:
            self.close()
            raise

    def _start_backends(self):
        procs = {
            "pg.sh": subprocess.Popen(
                [str(HARNESS / "pg.sh"), "start", str(self.base / "pg"), "--listen", f"{self.bridge_addr}/24"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True),
            "kafka.sh": subprocess.Popen(
                [str(HARNESS / "kafka.sh"), "start", str(self.base / "kafka"), "--listen", self.bridge_addr],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                env=dict(os.environ, **KAFKA_ENV)),
        }
        outs, failures = {}, []
        for name, p in procs.items():
            timeout = PG_START_TIMEOUT if name == "pg.sh" else KAFKA_START_TIMEOUT
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                failures.append(f"{name} start --listen {self.bridge_addr}: no answer after {timeout}s\n{err}")
                continue
            if p.returncode != 0:
                failures.append(f"{name} start --listen {self.bridge_addr} failed ({p.returncode}):\n{err}")
            outs[name] = parse_env(out)
        if "pg.sh" in outs:
            env = outs["pg.sh"]
            self.pg = PG.from_env(env)
            register_secret(self.pg.password)
            self.host_pg = PG.from_uri(env["LISTEN_PGURI"])
        if "kafka.sh" in outs:
            env = outs["kafka.sh"]
            self.kafka = Kafka(env["BOOTSTRAP"])
            self.host_kafka = Kafka(env["LISTEN_BOOTSTRAP"])
        if failures:
            raise RuntimeError("\n".join(failures))

    def close(self):
        """Stops the backends and removes the bridge (and any host left)."""
        errors = []
        for c in (self.pg, self.host_pg):
            if c is not None:
                c.close()
        for k in (self.kafka, self.host_kafka):
            if k is not None:
                k.close()
        gc.collect()
        for script, verb, d in (("kafka.sh", "stop", self.base / "kafka"), ("pg.sh", "destroy", self.base / "pg")):
            if d.exists():
                p = subprocess.run([str(HARNESS / script), verb, str(d)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, timeout=120, stdin=subprocess.DEVNULL)
                if p.returncode != 0:
                    errors.append(f"{script} {verb}: {p.stderr}")
        if self.up:
            try:
                netns("down", self.name, timeout=120)
            except Exception as e:
                errors.append(str(e))
        if os.environ.get("E2E_KEEP_TMP"):
            (self.base / "owner").unlink(missing_ok=True)  # kept, not for _reap_lans
        else:
            shutil.rmtree(self.base, ignore_errors=True)
        for e in errors:
            print(f"warning: lan {self.name}: {e}", file=sys.stderr)
        return errors


class Host:
    """Host I of a Hosts: namespace .ns with address .addr."""

    def __init__(self, hosts, index, ns, addr):
        self.hosts, self.index, self.ns, self.addr = hosts, index, ns, addr
        self.dir = hosts.tmp / f"host{index}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.controller = None  # the conftest Server running in it, if any
        self.servers = []  # every one started here (kill() and restarts)
        self.killed = set()  # the Servers that kill() ended on purpose
        self.is_cut = False

    def __repr__(self):
        return f"Host({self.index}, {self.ns}, {self.addr})"

    # processes ------------------------------------------------------------
    def command(self, *cmd):
        """cmd prefixed to run in this host."""
        return ["ip", "netns", "exec", self.ns, *map(str, cmd)]

    def run(self, *cmd, timeout=60, **kw):
        """subprocess.run of cmd in this host (stdout and stderr captured)."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.command(*cmd), text=True, timeout=timeout, **kw)

    def pids(self):
        """The live processes in this host's namespace."""
        p = subprocess.run([str(NETNS), "pids", self.hosts.name, str(self.index)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError(f"netns.sh pids {self.hosts.name} {self.index}: {p.stderr}")
        return {int(x) for x in p.stdout.split() if pid_alive(int(x))}

    def ns_inode(self):
        return os.stat(f"/run/netns/{self.ns}").st_ino

    def start_controller(self, args=(), env=None, timeout=60.0):
        """streamserver in this host on addr:PORT with the Hosts' API token,
        its data directory in the host's own directory (the same one again
        after a kill: a host that reboots).  Returns the conftest Server."""
        srv = self.hosts.server_cls(
            self.dir, args=["--token-file", str(self.hosts.token_file), *args], env=env,
            api_token=self.hosts.token, host=self.addr, wrap=self.command())
        srv.http.trust_env = False  # no proxy from the environment for 10.213.x.y
        self.hosts.on_server(srv)
        self.servers.append(srv)
        self.controller = srv
        srv.start(timeout=timeout)
        return srv

    # faults ----------------------------------------------------------------
    def cut(self):
        """Link down at the bridge: the host and everything in it is cut off."""
        netns("cut", self.hosts.name, self.index)
        self.is_cut = True

    def restore(self):
        netns("restore", self.hosts.name, self.index)
        self.is_cut = False

    def kill(self):
        """SIGKILL to the controller and every worker in this host (every
        process in its namespace), as when the machine dies; returns the pids
        that ran.  The namespace stays: start_controller() again to reboot."""
        before = self.pids()
        for srv in self.servers:
            if srv.proc is not None and srv.proc.poll() is None:
                self.killed.add(srv)
        netns("kill", self.hosts.name, self.index, timeout=60)
        for srv in self.servers:
            if srv.proc is not None:
                srv.proc.wait(timeout=30)  # reap it: no zombie left behind
        return before


class Hosts:
    """The hosts of one test on a Lan.  server_cls is conftest's Server
    (with host= and wrap=); on_server(srv) is told of each controller started."""

    def __init__(self, lan, tmp, server_cls, on_server=lambda srv: None):
        self.lan, self.tmp, self.server_cls, self.on_server = lan, Path(tmp), server_cls, on_server
        self.name = lan.name  # the hosts are NAME-I on the Lan's bridge
        self.hosts = []
        self.token = register_secret(secrets.token_hex(16))
        self.token_file = self.tmp / "api-token"
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")

    def add(self, n=1):
        """n more hosts; returns them."""
        made = []
        for _ in range(n):
            i = (self.hosts[-1].index if self.hosts else 0) + 1
            # Indexes stay unique on the shared bridge: another test's hosts
            # were removed, but a number is taken while its namespace lives.
            while f"{self.name}-{i}" in namespaces():
                i += 1
            out = netns("add", self.name, i)
            h = Host(self, i, out[f"HOST{i}_NS"], out[f"HOST{i}_ADDR"])
            self.hosts.append(h)
            made.append(h)
        return made

    def __getitem__(self, i):
        """The i-th host of this test, from 1."""
        return self.hosts[i - 1]

    def __len__(self):
        return len(self.hosts)

    def __iter__(self):
        return iter(self.hosts)

    def close(self):
        """Stops every controller (SIGTERM, links restored first so that it
        can stop its workers), kills what is left, removes the namespaces.
        Returns the problems a test should fail on: a controller that died
        without kill(), or did not exit 0 on SIGTERM, or a secret that leaked."""
        problems = []
        for h in self.hosts:
            if h.is_cut:
                try:
                    h.restore()
                except Exception as e:
                    problems.append(f"{h}: restore: {e}")
        for h in self.hosts:
            for srv in h.servers:
                if srv.proc is None:
                    continue
                died = srv.proc.poll() is not None and srv not in h.killed
                try:
                    leaks = srv.process_leaks() if srv.proc.poll() is None else []
                    rc = srv.stop(signal.SIGTERM, timeout=40)
                except Exception as e:
                    problems.append(f"{h}: stopping streamserver: {e}")
                    continue
                finally:
                    srv.http.close()
                if died:
                    problems.append(f"{h}: streamserver died during the test ({_exit_text(rc)})")
                elif srv not in h.killed and rc not in (None, 0):
                    problems.append(f"{h}: streamserver {_exit_text(rc)} on SIGTERM (expected 0)")
                leaks += srv.secret_leaks()
                if leaks:
                    problems.append(f"{h}: a secret showed where it must not: {'; '.join(leaks)}")
        for h in self.hosts:
            try:
                netns("del", self.name, h.index, timeout=60)
            except Exception as e:
                problems.append(f"{h}: {e}")
        left = [h.ns for h in self.hosts if h.ns in namespaces()]
        if left:
            problems.append(f"namespaces left after the hosts were removed: {left}")
        return problems


def _exit_text(rc):
    if rc is not None and rc < 0:
        return f"killed by {signal.Signals(-rc).name}"
    return f"exited with status {rc}"


def wait_unreachable(srv, timeout=30.0):
    """Polls srv's /healthz until a request fails to connect or times out
    (what a client sees of a cut host); returns that exception."""
    import requests
    deadline = time.monotonic() + timeout
    while True:
        try:
            srv.http.get(srv.base + "/healthz", timeout=2)
        except requests.RequestException as e:
            return e
        if time.monotonic() >= deadline:
            raise AssertionError(f"{srv.base} still answers {timeout:g}s after its host was cut")
        time.sleep(0.2)
