"""The README's quick start and first job, as a new user runs them:
deploy/demo.sh started as the README says (its own PostgreSQL, Kafka and
streamserver), then every shell block of "Your first job" marked
```sh first-job, in order, in one bash reading them line by line as typed
into a second shell.  The only change to the text: the demo's directory is
the test's (DEMO_DIR) instead of /tmp/streamserver-demo, and the port a free
one (DEMO_PORT; the env file carries it, so no README line names it).

Checked as the user would: the rows in the table, the rejected messages in
the error table, jobs load's summary; then that Ctrl-C (SIGINT) stops the
demo and removes everything it made, the PostgreSQL cluster included; that a
busy port stops it before it starts anything, naming the way out; and that a
controller that dies makes the demo stop with the reason from its log."""
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import requests

from conftest import BUILD
from helpers import REPO, free_port, wait_for

DEMO = REPO / "deploy" / "demo.sh"
README_DIR = "/tmp/streamserver-demo"
DEMO_START_TIMEOUT = 900  # install-deps, the first Maven fetch of Kafka's jars, a busy machine


def first_job_blocks():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"^```sh first-job\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) >= 8, f"the README's first-job blocks are gone: found {len(blocks)}"
    return blocks


class Demo:
    """deploy/demo.sh in the background, its output in a file."""

    def __init__(self, tmp_path, port=None, messages=200, out_name="demo.out"):
        self.dir = tmp_path / "demo"
        self.port = port or free_port()
        self.out_path = tmp_path / out_name
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMCTL_", "PG", "DEMO_"))}
        env.update(DEMO_DIR=str(self.dir), DEMO_PORT=str(self.port), DEMO_MESSAGES=str(messages),
                   STREAMSERVER_BUILD_DIR=str(BUILD), TMPDIR=str(tmp_path))
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen(["bash", str(DEMO)], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT)

    def text(self):
        return self.out_path.read_text(errors="replace")

    def wait_ready(self):
        def ready():
            assert self.proc.poll() is None, f"the demo exited ({self.proc.returncode}):\n{self.text()}"
            try:  # this demo's: a killed one's may still be there
                return (self.dir / "ready").read_text().strip() == str(self.proc.pid)
            except OSError:
                return False
        wait_for(ready, timeout=DEMO_START_TIMEOUT, interval=0.5, what="the demo to be ready")

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=180)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.out.close()
        return self.proc.returncode


def _pg_cluster(demo):
    """Where the demo's PostgreSQL keeps its files (a /tmp/streamserver-pg-*
    directory when the postgres user cannot reach DEMO_DIR)."""
    link = demo.dir / "pg" / "cluster"
    return Path(os.path.realpath(link))


def _listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _assert_all_gone(demo, cluster, ports):
    assert not demo.dir.exists(), f"the demo left {demo.dir}: {list(demo.dir.rglob('*'))[:20]}"
    assert not cluster.exists(), f"the demo left its PostgreSQL cluster {cluster}"
    for port in ports:
        assert not _listening(port), f"something still listens on the demo's port {port}"


def _alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _force_cleanup(demo_dir):
    """What a demo killed by the test left, whatever the test's outcome."""
    pidfile = demo_dir / "streamserver.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        if _alive(pid) and str(demo_dir) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            os.kill(pid, signal.SIGKILL)
    for tool, verb, sub in (("kafka.sh", "stop", "kafka"), ("pg.sh", "destroy", "pg")):
        if (demo_dir / sub).exists():
            subprocess.run(["bash", str(REPO / "tests" / "harness" / tool), verb, str(demo_dir / sub)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def _env_of(demo):
    env = {}
    for line in (demo.dir / "env").read_text().splitlines():
        m = re.match(r"export (.*)", line)
        if m and "PATH=" not in line:
            for k, v in re.findall(r"(\w+)=(\S+)", m.group(1)):
                env[k] = v
    return env


def test_readme_first_job_against_the_demo(tmp_path):
    demo = Demo(tmp_path)
    try:
        demo.wait_ready()
        out = demo.text()
        for what in (f"http://127.0.0.1:{demo.port}/", "postgresql://", "streamserver.log",
                     str(BUILD / "cli" / "streamctl"), f". {demo.dir}/env"):
            assert what in out, f"the demo does not print {what!r}:\n{out}"
        assert re.search(r"is running: 200 rows written, 0 rejected", out), out
        assert re.search(r"lag: 0 messages behind the end of the topic", out), out
        env = _env_of(demo)
        cluster = _pg_cluster(demo)
        ports = [demo.port, int(env["PGPORT"]), int(env["KAFKA"].split(":")[1])]

        script = "set -euo pipefail\n" + "\n".join(first_job_blocks()).replace(README_DIR, str(demo.dir))
        work = tmp_path / "user"
        work.mkdir()
        user_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("STREAMCTL_", "PG", "KAFKA", "DEMO_"))}
        p = subprocess.run(["bash"], input=script, cwd=work, env=user_env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        assert p.returncode == 0, f"the README's first job failed (exit {p.returncode}):\n{p.stdout}"
        assert "loaded 4 rows, 2 rejected" in p.stdout, p.stdout
        assert "2 partitions, the job reads 2" in p.stdout, p.stdout

        import psycopg2
        conn = psycopg2.connect(host=env["PGHOST"], port=env["PGPORT"], user=env["PGUSER"],
                                password=env["PGPASSWORD"], dbname=env["PGDATABASE"])
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id, customer, amount::text FROM orders ORDER BY id")
                assert cur.fetchall() == [(1, "alice", "19.90"), (2, "bob", "5.00"),
                                          (3, "carol", "120.50"), (6, "frank", "42.00"),
                                          (7, "grace", "8.50"), (8, "heidi", "13.00")]
                cur.execute("SELECT convert_from(value, 'UTF8'), error FROM streamserver_errors "
                            "WHERE job_name = 'orders' ORDER BY 1")
                errors = cur.fetchall()
        finally:
            conn.close()
        assert [v for v, _ in errors] == ["5|erin|not-a-number", "four|dave|7.25"], errors
        assert "amount" in dict(errors)["5|erin|not-a-number"], errors
        assert "bigint" in dict(errors)["four|dave|7.25"], errors
        # the last block stopped and deleted the job; the demo's own is left
        jobs = requests.get(f"http://127.0.0.1:{demo.port}/api/v1/jobs", timeout=15).json()["items"]
        assert [j["name"] for j in jobs] == ["demo_job"], jobs
    finally:
        demo.stop(signal.SIGINT)
    _assert_all_gone(demo, cluster, ports)


def test_demo_refuses_a_busy_port_before_starting_anything(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        demo = Demo(tmp_path, port=port)
        rc = demo.proc.wait(timeout=60)
        demo.out.close()
    out = demo.text()
    assert rc == 1, out
    assert f"port {port} is already in use" in out, out
    assert re.search(r"DEMO_PORT=\d+ deploy/demo\.sh", out), out
    assert "installing" not in out, f"the demo started work before checking its port:\n{out}"
    assert not demo.dir.exists()


def test_demo_stops_with_the_reason_when_the_controller_dies(tmp_path):
    demo = Demo(tmp_path, messages=10)
    try:
        demo.wait_ready()
        env = _env_of(demo)
        cluster = _pg_cluster(demo)
        ports = [demo.port, int(env["PGPORT"]), int(env["KAFKA"].split(":")[1])]
        pid = int((demo.dir / "streamserver.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        demo.proc.wait(timeout=120)
    finally:
        rc = demo.stop()
    out = demo.text()
    assert rc == 1, out
    assert "streamserver exited" in out and "the last lines of the controller log" in out, out
    kept = tmp_path / "streamserver-demo-failed.log"  # ${TMPDIR:-/tmp}/streamserver-demo-failed.log
    assert f"the whole log: {kept}" in out, out
    assert "streamserver" in kept.read_text(), "the kept log is empty"
    _assert_all_gone(demo, cluster, ports)


def _anchor(heading):
    h = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return h.replace(" ", "-")


def _headings(path):
    out, fence = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        m = re.match(r"^#+ (.*)", line)
        if m and not fence:
            out.add(_anchor(m.group(1)))
    return out


def test_the_manual_links_resolve():
    """Every relative link of README.md and doc/*.md names a file that exists
    and, with #anchor, a heading of that file (the manual moved to doc/)."""
    pages = [REPO / "README.md", *sorted((REPO / "doc").glob("*.md"))]
    bad = []
    checked = 0
    for page in pages:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, frag = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            checked += 1
            if not dest.exists():
                bad.append(f"{page.relative_to(REPO)}: {target}: no such file")
            elif frag and dest.suffix == ".md" and frag not in _headings(dest):
                bad.append(f"{page.relative_to(REPO)}: {target}: no such heading")
    assert checked > 30, f"only {checked} links found: the pattern no longer matches"
    assert not bad, "\n".join(bad)


def test_the_next_demo_removes_what_a_killed_one_left(tmp_path):
    """kill -9 of the demo leaves its controller, PostgreSQL and Kafka
    running (README, Troubleshooting): the next demo in the same directory
    and on the same port stops and removes them, then starts afresh."""
    first = Demo(tmp_path, messages=10)
    second = None
    try:
        first.wait_ready()
        old_cluster = _pg_cluster(first)
        old_env = _env_of(first)
        old_server = int((first.dir / "streamserver.pid").read_text())
        first.proc.kill()  # the demo's shell only: what it started lives on
        first.proc.wait(timeout=30)
        assert _listening(first.port), "the killed demo's controller should outlive it"
        first.out.close()
        second = Demo(tmp_path, port=first.port, messages=10, out_name="demo2.out")
        second.wait_ready()
        assert "removing what an earlier demo left" in second.text(), second.text()
        assert not _alive(old_server), "the old controller still runs"
        new_cluster = _pg_cluster(second)
        new_env = _env_of(second)
        for what in ("PGPORT", "KAFKA"):
            old_port, new_port = (int(e[what].rsplit(":", 1)[-1]) for e in (old_env, new_env))
            if old_port != new_port:
                assert not _listening(old_port), f"the old demo's {what} still answers"
        ports = [second.port, int(new_env["PGPORT"]), int(new_env["KAFKA"].split(":")[1])]
        second.stop(signal.SIGINT)
    finally:
        if not first.out.closed:
            first.out.close()
        if second is not None and second.proc.poll() is None:
            second.stop(signal.SIGINT)
        _force_cleanup(first.dir)
    _assert_all_gone(second, new_cluster, ports)
    assert not old_cluster.exists() or old_cluster == new_cluster, old_cluster
