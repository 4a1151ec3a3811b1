"""Deployment files (deploy/) exercised on this machine, which has no Docker
engine and no systemd as init:

- docker-compose.yml: Debian's docker-compose validates it (`config`) and the
  parsed stack has what `docker compose up` needs (KRaft Kafka, PostgreSQL,
  streamserver with its volume, health checks, ordering, the token secret,
  the example pipeline; every file it mounts exists);
- Dockerfile: its build stage's deploy/build.sh line runs here as written
  (paths under a temporary root), the runtime stage's packages cover every
  library the installed binaries link, and its entrypoint runs the installed
  streamserver as an unprivileged user with a token file (nobody stands in
  for the image's user streamserver), answering /healthz and an
  authenticated API call; the HEALTHCHECK command passes against it;
- the compose example pipeline's scripts (compose/init.sh through the
  installed streamctl, compose/produce.sh's lines, compose/orders.sql) load
  orders into PostgreSQL through that server;
- streamserver.service (as meson configured and installed it):
  `systemd-analyze verify` accepts it (ExecStart pointed at the installed
  binary), and its ExecStart with its environment and the sample
  configuration runs the server.
"""
import fnmatch
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
import requests
import yaml

from helpers import REPO, free_port, unique, wait_for

DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
# The unit as `meson install` configures it for --prefix=/usr (build.sh).
UNIT_INSTALLED = "/usr/lib/systemd/system/streamserver.service"
ENV_FILE = DEPLOY / "streamserver.env"
NOBODY = 65534
BUILD_TIMEOUT = 1800  # a release build on 2 shared cores


# ------------------------------------------------------------------ Dockerfile

def dockerfile_stages():
    """[{"from": str, "name": str|None, "steps": [(INSTRUCTION, args)]}] with
    continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text()
    lines, cur = [], ""
    for line in text.splitlines():
        if not cur and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        if cur and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        cur += line
        if cur.strip():
            lines.append(cur.strip())
        cur = ""
    stages = []
    for line in lines:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        args = args.strip()
        if instr == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            stages.append({"from": m.group(1), "name": m.group(2), "steps": []})
        else:
            assert stages, f"{instr} before FROM"
            stages[-1]["steps"].append((instr, args))
    return stages


def apt_packages(stage):
    pkgs = []
    for instr, args in stage["steps"]:
        if instr == "RUN" and "apt-get install" in args:
            part = args.split("apt-get install", 1)[1].split("&&")[0]
            pkgs += [w for w in part.split() if not w.startswith("-")]
    return pkgs


def exec_form(args):
    assert args.startswith("["), f"use the exec form: {args}"
    return yaml.safe_load(args)


def test_dockerfile_shape():
    stages = dockerfile_stages()
    assert len(stages) == 2, "a build stage and a runtime stage"
    build, run = stages
    codename = re.search(r"VERSION_CODENAME=(\w+)", Path("/etc/os-release").read_text()).group(1)
    for s in stages:
        assert re.fullmatch(r"debian:bookworm(-slim)?", s["from"]), s["from"]
    # the packages are checked against this machine's: it must be the same release
    assert codename == "bookworm", codename
    assert build["name"] and any(i == "COPY" and f"--from={build['name']}" in a
                                 for i, a in run["steps"]), "runtime copies from the build stage"
    steps = dict((i, a) for i, a in run["steps"])
    assert steps["USER"] == "streamserver"
    assert "/var/lib/streamserver" in steps["VOLUME"]
    assert steps["EXPOSE"] == "8080"
    assert "HEALTHCHECK" in steps and "ENTRYPOINT" in steps
    assert any(i == "RUN" and "useradd" in a and "streamserver" in a for i, a in run["steps"])
    # build tools stay in the build stage
    assert not {"build-essential", "meson", "ninja-build"} & set(apt_packages(run))
    # OpenSSL for civetweb comes from the installed api/tlscompat libraries,
    # not from links made by hand or from libssl-dev
    assert not any(i == "RUN" and re.search(r"\bln\b|libssl\.so|libcrypto\.so", a)
                   for i, a in run["steps"]), "the runtime stage makes library links"
    assert "libssl-dev" not in apt_packages(run)
    assert {"libssl3", "libcurl4"} <= set(apt_packages(run))


def test_dockerfile_packages_are_debian_packages():
    """Every package the Dockerfile installs exists in bookworm: this machine
    runs bookworm and has them installed (scripts/install-deps.sh)."""
    for stage in dockerfile_stages():
        pkgs = apt_packages(stage)
        assert pkgs, f"stage {stage['from']} installs nothing"
        out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n"] + pkgs,
                             capture_output=True, text=True)
        installed = {l.split()[0] for l in out.stdout.splitlines() if l.endswith("install ok installed")}
        assert set(pkgs) <= installed, f"not Debian packages installed here: {set(pkgs) - installed}"


class Installed:
    """deploy/build.sh run as the Dockerfile's build stage runs it, and the
    runtime stage's files laid out under the same temporary root."""

    def __init__(self, base):
        self.base = base
        self.root = base / "root"  # stands for / of the build and runtime images
        self.log = base / "build.log"
        stages = dockerfile_stages()
        build, run = stages
        workdir = None
        ran = []
        for instr, args in build["steps"]:
            if instr == "WORKDIR":
                workdir = self.path(args)
                workdir.mkdir(parents=True, exist_ok=True)
            elif instr == "COPY":
                assert args == ". .", f"the test copies the context for COPY . . only: {args}"
                self.copy_context(workdir)
            elif instr == "RUN" and "deploy/" in args:
                argv = [str(self.path(a)) if a.startswith("/") else a for a in shlex.split(args)]
                with open(self.log, "ab") as log:
                    log.write(f"$ {' '.join(argv)}  (in {workdir})\n".encode())
                    log.flush()
                    p = subprocess.run(["nice"] + argv, cwd=workdir, stdout=log,
                                       stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT)
                assert p.returncode == 0, \
                    f"{args} failed ({p.returncode}):\n{self.log.read_text()[-4000:]}"
                ran.append(args)
        assert ran, "the build stage runs no deploy/ script"
        self.run_stage = run
        self.env = {}
        for instr, args in run["steps"]:
            if instr == "COPY" and args.startswith("--from="):
                src, dst = shlex.split(args)[1:]
                shutil.copytree(self.path(src), self.path(dst), symlinks=True, dirs_exist_ok=True)
            elif instr == "COPY":
                src, dst = shlex.split(args)
                self.path(dst).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / src, self.path(dst))
            elif instr == "ENV":
                for item in shlex.split(args):
                    k, _, v = item.partition("=")
                    self.env[k] = v
            elif instr == "RUN" and "install -d" in args:
                # the data directory, owned by the image's user
                d = self.path("/var/lib/streamserver")
                d.mkdir(parents=True, exist_ok=True)
                d.chmod(0o700)
                if os.geteuid() == 0:
                    os.chown(d, NOBODY, NOBODY)
        self.bin = self.path("/usr/bin")
        self.libexec = self.path("/usr/libexec")
        self.entrypoint = self.path(exec_form(dict(run["steps"])["ENTRYPOINT"])[0])

    def path(self, p):
        return self.root / str(p).lstrip("/")

    def tlscompat(self):
        """The folder of the libssl.so and libcrypto.so civetweb loads."""
        found = sorted(self.root.glob("usr/lib/**/streamserver/libssl.so"))
        assert len(found) == 1, f"api/tlscompat's libssl.so installed {len(found)} times: {found}"
        return found[0].parent

    def copy_context(self, dest):
        """The build context: the repository's files (tracked, or new and not
        ignored), less deploy/Dockerfile.dockerignore's patterns."""
        ignore = [l.strip() for l in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                  if l.strip() and not l.startswith("#")]
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                               capture_output=True, check=True).stdout.decode().split("\0")
        for f in files:
            if not f or not (REPO / f).is_file():
                continue
            if any(fnmatch.fnmatch(f, pat) or fnmatch.fnmatch(f.split("/")[0], pat)
                   or (pat.startswith("**/") and any(fnmatch.fnmatch(part, pat[3:])
                                                     for part in f.split("/")))
                   for pat in ignore):
                continue
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dest / f)


@pytest.fixture(scope="module")
def installed():
    base = Path(tempfile.mkdtemp(prefix="streamserver-deploy-"))
    os.chmod(base, 0o755)  # the unprivileged user runs the installed binaries
    try:
        yield Installed(base)
    finally:
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)


def test_build_installs_the_three_binaries(installed):
    for b in ("streamserver", "streamctl"):
        assert os.access(installed.bin / b, os.X_OK), b
    # not a command: in libexecdir, where streamserver looks for it
    assert os.access(installed.libexec / "streamworker", os.X_OK)
    assert not (installed.bin / "streamworker").exists()
    out = subprocess.run([installed.bin / "streamserver", "--version"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("streamserver "), out


def test_installed_tls_libraries(installed):
    """api/tlscompat's libraries: the SONAMEs civetweb opens, each needing
    OpenSSL 3's real library, and libssl.so with the name civetweb 1.15
    asks for that OpenSSL 3 no longer exports."""
    d = installed.tlscompat()
    for name, real in (("libssl.so", "libssl.so.3"), ("libcrypto.so", "libcrypto.so.3")):
        dyn = subprocess.run(["readelf", "-d", d / name], capture_output=True, text=True,
                             check=True).stdout
        assert f"Library soname: [{name}]" in dyn, dyn
        assert f"Shared library: [{real}]" in dyn, dyn
    syms = subprocess.run(["nm", "-D", "--defined-only", d / "libssl.so"], capture_output=True,
                          text=True, check=True).stdout
    assert re.search(r"\bSSL_get_peer_certificate\b", syms), syms


def test_runtime_packages_cover_the_linked_libraries(installed):
    """Each library the installed binaries need (DT_NEEDED) comes from a
    package the runtime stage installs (or libc6, in every Debian image)."""
    runtime = set(apt_packages(installed.run_stage)) | {"libc6"}
    paths = {}
    for line in subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout.splitlines():
        m = re.match(r"\s*(\S+) \(libc6,x86-64[^)]*\) => (\S+)", line)
        if m:
            paths.setdefault(m.group(1), m.group(2))
    missing = []
    tlscompat = installed.tlscompat()
    for b in ("streamserver", installed.libexec / "streamworker", "streamctl",
              tlscompat / "libssl.so", tlscompat / "libcrypto.so"):
        dyn = subprocess.run(["readelf", "-d", installed.bin / b], capture_output=True, text=True,
                             check=True).stdout
        for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn):
            if soname.startswith("ld-linux"):
                continue
            assert soname in paths, f"{b} needs {soname}, not in ldconfig's cache"
            real = os.path.realpath(paths[soname])
            owner = subprocess.run(["dpkg", "-S", real], capture_output=True, text=True)
            if owner.returncode != 0:  # /lib -> /usr/lib merged paths
                owner = subprocess.run(["dpkg", "-S", real.replace("/usr/lib/", "/lib/", 1)],
                                       capture_output=True, text=True)
            pkg = owner.stdout.split(":")[0]
            if pkg not in runtime:
                missing.append(f"{b}: {soname} ({pkg or 'no package'})")
    assert not missing, f"the runtime stage lacks packages: {missing}"


# ------------------------------------------------------- running the installed server

def as_unprivileged():
    """The prefix that runs a command as nobody when we are root (the image
    runs as its own unprivileged user; nobody stands in for it here)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


@pytest.fixture
def open_tmp():
    """A temporary directory the unprivileged user can reach (pytest's
    tmp_path is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix="streamserver-deploy-run-"))
    d.chmod(0o755)
    yield d
    if not os.environ.get("E2E_KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


def write_secret(path, text):
    path.write_text(text)
    path.chmod(0o400)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)


class Running:
    """A process tree this test started (marked by an env var), stopped with
    SIGTERM and waited for."""

    def __init__(self, argv, env, log):
        self.mark = unique("deploy")
        self.log = log
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(argv, env=dict(env, STREAMSERVER_E2E_MARK=self.mark),
                                         stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT)

    def log_text(self):
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # workers of ours that outlived the controller: a bug, but clean up
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if f"STREAMSERVER_E2E_MARK={self.mark}".encode() in (d / "environ").read_bytes():
                        os.kill(int(d.name), signal.SIGKILL)
                except OSError:
                    pass
        return self.proc.returncode


def wait_healthy(base, running):
    def up():
        if running.proc.poll() is not None:
            raise AssertionError(f"exited with {running.proc.returncode}:\n{running.log_text()}")
        try:
            return requests.get(base + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False
    wait_for(up, timeout=60, what=f"{base}/healthz")


def container_env(installed, tmp, extra=None):
    """The image's environment (its ENV lines) on this machine: the
    installed binaries first on PATH, the listen address on a free loopback
    port (the tests do not listen beyond loopback)."""
    port = free_port()
    env = {"PATH": f"{installed.bin}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    env.update(installed.env)
    env["STREAMSERVER_LISTEN"] = f"127.0.0.1:{port}"
    env["STREAMSERVER_DATA_DIR"] = str(installed.path(installed.env["STREAMSERVER_DATA_DIR"]))
    env.update(extra or {})
    return env, f"http://127.0.0.1:{port}"


def test_entrypoint_refuses_without_a_token(installed, tmp_path):
    env, _ = container_env(installed, tmp_path,
                           {"STREAMSERVER_TOKEN_FILE": str(tmp_path / "missing")})
    p = subprocess.run(as_unprivileged() + [str(installed.entrypoint)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p
    assert "no API token" in p.stderr and str(tmp_path / "missing") in p.stderr, p.stderr


@pytest.fixture
def container(installed, tmp_path, open_tmp):
    """The image's entrypoint running the installed streamserver, as an
    unprivileged user, with a token from a secret file."""
    secrets = open_tmp / "secrets"
    secrets.mkdir()
    secrets.chmod(0o755)
    token = unique("token-for-the-deploy-test")
    write_secret(secrets / "streamserver_token", token + "\n")
    env, base = container_env(installed, tmp_path,
                              {"STREAMSERVER_TOKEN_FILE": str(secrets / "streamserver_token")})
    run = Running(as_unprivileged() + [str(installed.entrypoint)], env, tmp_path / "server.log")
    try:
        wait_healthy(base, run)
        yield {"base": base, "token": token, "token_file": secrets / "streamserver_token",
               "run": run, "env": env}
    finally:
        rc = run.stop()
    assert rc == 0, f"streamserver exited {rc} on SIGTERM:\n{run.log_text()}"


def test_entrypoint_runs_the_installed_server(container, installed):
    base, token = container["base"], container["token"]
    pid = container["run"].proc.pid
    # the entrypoint execs the server: the process we started is streamserver
    exe = os.readlink(f"/proc/{pid}/exe")
    assert exe == str(installed.bin / "streamserver"), exe
    if os.geteuid() == 0:
        uids = re.search(r"^Uid:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1)
        assert int(uids) == NOBODY, f"streamserver runs as uid {uids}"
    # the token is not on the command line
    assert token.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    r = requests.get(base + "/api/v1/services", timeout=10)
    assert r.status_code == 401, r.text
    r = requests.get(base + "/api/v1/services", headers={"Authorization": f"Bearer {token}"},
                     timeout=10)
    assert r.status_code == 200 and r.json()["total"] == 0, r.text
    r = requests.post(base + "/api/v1/services", json={"name": "deploy-check"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 201, r.text
    # the store is in the image's data directory
    assert any(installed.path("/var/lib/streamserver").iterdir())


def test_healthcheck_command_passes(container, installed):
    hc = dict(installed.run_stage["steps"])["HEALTHCHECK"]
    cmd = exec_form(hc.split("CMD", 1)[1].strip())
    # the image's port is 8080; here the server listens on a free port
    cmd = [a.replace("http://127.0.0.1:8080", container["base"]) for a in cmd]
    assert container["base"] in cmd, f"the health check does not name the API's URL: {hc}"
    p = subprocess.run(as_unprivileged() + cmd, env=container["env"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p


def test_installed_server_serves_https(installed, tmp_path, open_tmp):
    """The installed streamserver finds the installed api/tlscompat libraries
    (beside it, as the image has them) and serves HTTPS through them."""
    cert, key = open_tmp / "cert.pem", open_tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=120)
    cert.chmod(0o644)
    write_secret(key, key.read_text())
    env, base = container_env(installed, tmp_path)
    base = base.replace("http://", "https://")
    run = Running(as_unprivileged() + [str(installed.bin / "streamserver"), "--tls-cert", str(cert),
                                       "--tls-key", str(key)], env, tmp_path / "tls.log")
    try:
        def up():
            if run.proc.poll() is not None:
                raise AssertionError(f"exited with {run.proc.returncode}:\n{run.log_text()}")
            p = subprocess.run(["curl", "-sS", "--cacert", str(cert), "-o", "/dev/null", "-w",
                                "%{http_code}", base + "/api/v1/services"],
                               capture_output=True, text=True, timeout=30)
            return p.stdout == "200"
        wait_for(up, timeout=60, what=f"{base}/api/v1/services over HTTPS")
        maps = Path(f"/proc/{run.proc.pid}/maps").read_text()
        assert str(installed.tlscompat() / "libssl.so") in maps, "not the installed libssl.so"
        assert str(REPO) not in maps, "the installed server uses the build tree's libraries"
    finally:
        rc = run.stop()
    assert rc == 0, f"streamserver exited {rc} on SIGTERM:\n{run.log_text()}"


def test_compose_example_pipeline_loads_orders(container, installed, pg, kafka, open_tmp):
    """compose/init.sh (through the installed streamctl) makes the example
    service, source and job against the running server; the lines of
    compose/produce.sh arrive in compose/orders.sql's table."""
    db = unique("shop")
    conn = psycopg2.connect(pg.uri)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    conn.close()

    def connect():
        return psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password,
                                dbname=db)
    conn = connect()
    with conn, conn.cursor() as cur:
        cur.execute((DEPLOY / "compose" / "orders.sql").read_text())
    conn.close()
    topic = unique("orders")
    kafka.create_topic(topic, partitions=3)
    pw = open_tmp / "pg_password"
    write_secret(pw, pg.password + "\n")
    env = dict(container["env"], STREAMCTL_URL=container["base"],
               STREAMCTL_TOKEN_FILE=str(container["token_file"]), KAFKA_BROKERS=kafka.bootstrap,
               TOPIC=topic, PG_HOST=pg.host, PG_PORT=str(pg.port), PG_DATABASE=db,
               PG_USER=pg.user, PG_PASSWORD_FILE=str(pw))
    init = [str(DEPLOY / "compose" / "init.sh")]
    p = subprocess.run(as_unprivileged() + ["/bin/sh"] + init, env=env, capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, f"init.sh: {p.stdout}\n{p.stderr}"
    assert pg.password not in p.stdout + p.stderr
    # again: keeps what exists and (re)starts the job
    p = subprocess.run(as_unprivileged() + ["/bin/sh"] + init, env=env, capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0 and "job orders exists" in p.stdout, f"{p.stdout}\n{p.stderr}"

    n = 300
    lines = subprocess.run(["/bin/sh", str(DEPLOY / "compose" / "produce.sh"), "print", str(n)],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(lines) == n
    kafka.produce(topic, lines)

    def loaded():
        c = connect()
        try:
            with c.cursor() as cur:
                cur.execute("SELECT count(*), count(DISTINCT order_id), sum(order_id) FROM orders")
                return cur.fetchone()
        finally:
            c.close()
    got = wait_for(lambda: (lambda r: r if r[0] >= n else None)(loaded()), timeout=120,
                   what=f"{n} orders in {db}.public.orders")
    assert got == (n, n, n * (n + 1) // 2), got
    c = connect()
    with c.cursor() as cur:
        cur.execute("SELECT customer, amount::text, status FROM orders WHERE order_id = 7")
        assert cur.fetchone() == ("dave", "8.07", "new")
    c.close()
    r = requests.get(container["base"] + "/api/v1/jobs/status",
                     headers={"Authorization": f"Bearer {container['token']}"}, timeout=10)
    job = [j for j in r.json()["items"] if j["name"] == "orders"][0]
    assert job["state"] == "running" and job["rows_written"] >= n, job
    r = requests.post(container["base"] + f"/api/v1/jobs/{job['id']}/stop",
                      headers={"Authorization": f"Bearer {container['token']}"}, timeout=10)
    assert r.status_code == 202, r.text


# ------------------------------------------------------------------- compose

def compose_config():
    p = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, COMPOSE_PROJECT_NAME="ss"))
    assert p.returncode == 0, f"docker-compose config failed:\n{p.stderr}"
    return yaml.safe_load(p.stdout)


def test_compose_file_validates():
    cfg = compose_config()
    svcs = cfg["services"]
    assert {"kafka", "kafka-setup", "postgres", "streamserver", "init", "producer"} <= set(svcs)

    kafka = svcs["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, "KRaft"
    assert not any("zookeeper" in s for s in svcs), "KRaft needs no ZooKeeper"
    assert env["CLUSTER_ID"] and "1@kafka:9093" in env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert svcs["postgres"]["image"] == "postgres:15"

    ss = svcs["streamserver"]
    assert ss["build"]["context"] == str(REPO)
    assert Path(ss["build"]["context"], ss["build"]["dockerfile"]) == DOCKERFILE
    vols = {v.split(":")[0]: v.split(":")[1] for v in ss["volumes"]}
    assert vols.get("streamserver-data") == "/var/lib/streamserver"
    assert "streamserver-data" in cfg["volumes"]
    assert [s["source"] for s in ss["secrets"]] == ["streamserver_token"]
    assert ss["environment"]["STREAMSERVER_TOKEN_FILE"] == "/run/secrets/streamserver_token"
    for port in ss["ports"]:
        assert str(port).startswith("127.0.0.1:"), f"published beyond loopback: {port}"

    for name in ("kafka", "postgres", "streamserver"):
        assert svcs[name]["healthcheck"]["test"], f"{name} has no health check"
    dep = {n: {k: v["condition"] for k, v in s.get("depends_on", {}).items()} for n, s in svcs.items()}
    assert dep["streamserver"] == {"kafka": "service_healthy", "postgres": "service_healthy"}
    assert dep["kafka-setup"] == {"kafka": "service_healthy"}
    assert dep["init"] == {"streamserver": "service_healthy", "postgres": "service_healthy",
                           "kafka-setup": "service_completed_successfully"}
    assert dep["producer"] == {"kafka-setup": "service_completed_successfully"}

    # the example's pieces agree with each other
    init_env = svcs["init"]["environment"]
    topic_cmd = svcs["kafka-setup"]["command"]
    assert topic_cmd[topic_cmd.index("--topic") + 1] == init_env["TOPIC"] \
        == svcs["producer"]["environment"]["TOPIC"]
    assert init_env["PG_DATABASE"] == svcs["postgres"]["environment"]["POSTGRES_DB"]
    assert init_env["PG_USER"] == svcs["postgres"]["environment"]["POSTGRES_USER"]
    assert init_env["STREAMCTL_URL"] == "http://streamserver:8080"
    assert svcs["init"]["image"] == ss["image"], "init runs streamctl from the streamserver image"

    # every file the stack mounts or reads exists
    for name, s in svcs.items():
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("/"):
                assert Path(src).exists(), f"{name} mounts {src}, which does not exist"
    for sname, sec in cfg["secrets"].items():
        text = Path(sec["file"]).read_text().strip()
        assert len(text) >= 16 or sname != "streamserver_token", "the token is too short"
    # the scripts the example services run are mounted where they look
    for name in ("init", "producer"):
        script = svcs[name]["entrypoint"][-1]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svcs[name]["volumes"]}
        d = str(Path(script).parent)
        assert d in mounts and (Path(mounts[d]) / Path(script).name).is_file(), \
            f"{name} runs {script}, which no mount provides"
    for script in ("init.sh", "produce.sh"):
        p = subprocess.run(["sh", "-n", str(DEPLOY / "compose" / script)], capture_output=True,
                           text=True)
        assert p.returncode == 0, f"{script}: {p.stderr}"


def test_compose_secret_files_can_be_replaced(tmp_path):
    tok = tmp_path / "token"
    tok.write_text("x" * 32)
    p = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True,
                       text=True, timeout=120,
                       env=dict(os.environ, STREAMSERVER_TOKEN_SECRET=str(tok)))
    assert p.returncode == 0, p.stderr
    assert yaml.safe_load(p.stdout)["secrets"]["streamserver_token"]["file"] == str(tok)


def test_compose_cluster_file_validates():
    """compose-cluster.yml: two controllers on one catalog in PostgreSQL."""
    p = subprocess.run(["docker-compose", "-f", str(DEPLOY / "compose-cluster.yml"), "config"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, COMPOSE_PROJECT_NAME="ssc"))
    assert p.returncode == 0, f"docker-compose config failed:\n{p.stderr}"
    cfg = yaml.safe_load(p.stdout)
    svcs = cfg["services"]
    ctls = {n: s for n, s in svcs.items() if n.startswith("streamserver")}
    assert set(ctls) == {"streamserver1", "streamserver2"}
    names = set()
    for n, s in ctls.items():
        env = s["environment"]
        names.add(env["STREAMSERVER_NAME"])
        assert env["STREAMSERVER_ADVERTISE"] == f"http://{n}:8080"
        # The catalog's URI (with its password) comes from a secret file,
        # never the command line or the environment.
        assert s["command"] == ["--store-file", "/run/secrets/streamserver_store"]
        assert not any("postgres" in str(v) for v in env.values())
        assert {x["source"] for x in s["secrets"]} == {"streamserver_token", "streamserver_store"}
        assert s["image"] == "streamserver:local" and s["healthcheck"]["test"]
        assert all(str(port).startswith("127.0.0.1:") for port in s["ports"])
        assert {k: v["condition"] for k, v in s["depends_on"].items()}["postgres"] == "service_healthy"
    assert len(names) == 2, "each controller needs a name of its own"
    vols = [v.split(":")[0] for s in ctls.values() for v in s["volumes"]]
    assert len(set(vols)) == 2, f"each controller needs a data directory of its own: {vols}"
    assert ctls["streamserver1"]["build"]["context"] == str(REPO)

    uri = Path(cfg["secrets"]["streamserver_store"]["file"]).read_text().strip()
    password = Path(cfg["secrets"]["pg_password"]["file"]).read_text().strip()
    pg_env = svcs["postgres"]["environment"]
    assert uri == (f"postgresql://{pg_env['POSTGRES_USER']}:{password}@postgres:5432/"
                   f"{pg_env['POSTGRES_DB']}?schema=streamserver"), uri
    init_env = svcs["init"]["environment"]
    assert init_env["STREAMCTL_URL"] in {f"http://{n}:8080" for n in ctls}
    assert int(init_env["DEMO_TASKS"]) == 2
    topic_cmd = svcs["kafka-setup"]["command"]
    assert int(topic_cmd[topic_cmd.index("--partitions") + 1]) >= 2


# ------------------------------------------------------------------- systemd

def unit_sections(text):
    sections, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            cur = sections.setdefault(line.strip("[]"), [])
            continue
        k, _, v = line.partition("=")
        cur.append((k, v))
    return sections


def test_systemd_unit_verifies(installed, tmp_path):
    text = installed.path(UNIT_INSTALLED).read_text()
    svc = dict(unit_sections(text)["Service"])
    exe = shlex.split(svc["ExecStart"])[0]
    assert exe == "/usr/bin/streamserver", "the unit runs the packaged binary (meson --prefix=/usr)"
    # the binary is where build.sh installs it under its root; verify the
    # unit with that path, the rest unchanged
    unit = tmp_path / "streamserver.service"
    unit.write_text(text.replace(f"ExecStart={exe}", f"ExecStart={installed.bin / 'streamserver'}"))
    # Documentation=man:streamserver(8): systemd-analyze runs man for it,
    # which finds the installed page through MANPATH.
    env = dict(os.environ, MANPATH=f"{installed.path('/usr/share/man')}:")
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       timeout=120, env=env)
    ours = [l for l in (p.stdout + p.stderr).splitlines() if "streamserver" in l]
    assert p.returncode == 0 and not ours, f"systemd-analyze verify: {p.stdout}{p.stderr}"
    for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                 ("StateDirectory", "streamserver"),
                 ("EnvironmentFile", "/etc/streamserver/streamserver.env")):
        assert svc.get(k) == v, f"{k}={svc.get(k)}"
    assert svc.get("DynamicUser") == "yes" or svc.get("User") == "streamserver"
    assert svc["LoadCredential"].startswith("token:")
    assert "%d/token" in svc["ExecStart"], "the token comes from the credential"


def test_sample_configuration_names_real_settings(installed):
    """Every variable of streamserver.env (set or commented out) is one
    streamserver --help names."""
    names = set(re.findall(r"^#?(STREAMSERVER_[A-Z_]+)=", ENV_FILE.read_text(), re.M))
    assert {"STREAMSERVER_LISTEN", "STREAMSERVER_LOG_FORMAT", "STREAMSERVER_TLS_CERT"} <= names
    helptext = subprocess.run([installed.bin / "streamserver", "--help"], capture_output=True,
                              text=True, timeout=30).stdout
    unknown = sorted(n for n in names if n not in helptext)
    assert not unknown, f"streamserver --help does not know {unknown}"


def test_systemd_exec_start_runs(installed, tmp_path, open_tmp):
    """The unit's ExecStart with its Environment=, the sample
    EnvironmentFile and a credentials directory, as systemd would run it
    (listening on a free loopback port rather than 8080)."""
    svc = unit_sections(installed.path(UNIT_INSTALLED).read_text())["Service"]
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for line in ENV_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k] = v
    env["STREAMSERVER_LISTEN"] = f"127.0.0.1:{port}"
    state = open_tmp / "state"
    state.mkdir()
    creds = open_tmp / "credentials"
    creds.mkdir()
    creds.chmod(0o755)
    token = unique("systemd-credential-token")
    write_secret(creds / "token", token)
    if os.geteuid() == 0:
        os.chown(state, NOBODY, NOBODY)
    for k, v in svc:
        if k == "Environment":
            name, _, val = v.partition("=")
            env[name] = str(state) if name == "STREAMSERVER_DATA_DIR" else val
    exec_start = dict(svc)["ExecStart"].replace("%d", str(creds))
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a) for a in shlex.split(exec_start)]
    argv[0] = str(installed.bin / "streamserver")
    run = Running(as_unprivileged() + argv, env, tmp_path / "server.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, run)
        assert requests.get(base + "/api/v1/jobs", timeout=10).status_code == 401
        r = requests.get(base + "/api/v1/jobs", headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
        assert r.status_code == 200, r.text
    finally:
        rc = run.stop()
    assert rc == 0, run.log_text()
    assert any(state.iterdir()), "the store is in the state directory"
