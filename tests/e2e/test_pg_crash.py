"""Issue 14, speed cost no safety: the PostgreSQL server crashes (SIGKILL of
the postmaster, then of what is left of the server) three times while an
EXACTLY and an ATLEAST job load a topic that is still being produced to; each
time it is started again on the same data directory and port and recovers
from its WAL.  At the end the EXACTLY table holds every produced key exactly
once and the ATLEAST table every produced key at least once.

The server is this test's own, started by `tests/harness/pg.sh --durable`
(fsync, synchronous_commit and full_page_writes on, as a stock install): on
the session's fast server (fsync off) a crash could lose what it had
acknowledged, which no job can make up for."""
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from helpers import (PG, TABLE5, create_job, create_service, create_source, delimited_messages,
                     delivery_job_dict, harness, job_status, key_census, pid_alive,
                     professional_job, start_job, to_yaml, unique, wait_for, wait_state)

CRASHES = 3
CHUNK = 1000          # messages per produce call
PAUSE = 0.1           # seconds between produce calls: a few thousand messages/s
PG_START_TIMEOUT = 120


class DurablePG:
    """A PostgreSQL of this test only (pg.sh start DIR --durable) that it
    crashes: .pg (helpers.PG), crash() then start()."""

    def __init__(self, base):
        self.dir = base / "pg"
        self.env = self._start()
        self.pg = PG.from_env(self.env)
        assert self.env.get("PG_DURABLE") == "on", self.env
        settings = {n: self.pg.scalar(f"SHOW {n}")
                    for n in ("fsync", "synchronous_commit", "full_page_writes")}
        assert settings == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}, \
            f"pg.sh --durable started a server without its durability: {settings}"

    def _start(self):
        # A small shared_buffers: durability is the point here, not speed.
        old = os.environ.get("PG_SHARED_BUFFERS")
        os.environ["PG_SHARED_BUFFERS"] = "128MB"
        try:
            return harness("pg.sh", "start", self.dir, PG_START_TIMEOUT, "--durable")
        finally:
            if old is None:
                del os.environ["PG_SHARED_BUFFERS"]
            else:
                os.environ["PG_SHARED_BUFFERS"] = old

    def postmaster_pid(self):
        data = Path(os.path.realpath(self.dir / "cluster")) / "data"
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])

    def crash(self):
        """SIGKILL to the postmaster, then to its children still alive (a
        server that dies as a whole, as under the OOM killer); returns once
        every one of them is gone."""
        pm = self.postmaster_pid()
        children = [p for p in _pids() if _ppid(p) == pm]
        os.kill(pm, signal.SIGKILL)
        for p in children:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Gone from /proc, not only dead: until its parent reaps it, a zombie
        # postmaster still answers kill(pid, 0), and pg_ctl would take the
        # server for running.
        wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in [pm] + children), 30, 0.05,
                 f"the postmaster {pm} and its {len(children)} children to die and be reaped")
        self.pg.close()
        return pm, len(children)

    def start(self, crashed_pid):
        """The same data directory (crash recovery from the WAL) and port."""
        env = self._start()
        assert env["PGPORT"] == self.env["PGPORT"], \
            f"the server came back on port {env['PGPORT']}, not {self.env['PGPORT']}"
        pm = self.postmaster_pid()
        assert pm != crashed_pid and pid_alive(pm), \
            f"no new postmaster after the crash of {crashed_pid}: {self.log_tail()}"

    def log_tail(self, lines=15):
        try:
            log = Path(os.path.realpath(self.dir / "cluster")) / "postgres.log"
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    def destroy(self):
        self.pg.close()
        harness("pg.sh", "destroy", self.dir, timeout=120)


def _pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture
def durable_pg():
    import shutil
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="streamserver-e2e-crash-"))
    os.chmod(base, 0o755)  # pg.sh's unprivileged user must reach it
    p = None
    try:
        p = DurablePG(base)
        yield p
    finally:
        if p is not None:
            try:
                p.destroy()
            except Exception as e:
                print(f"warning: durable pg: {e}", file=sys.stderr)
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)


class Endless:
    """Produces delimited_messages(0, ...) in chunks from a thread until
    stop(); .sent is how many were delivered (all of them, or it fails)."""

    def __init__(self, kafka, topic):
        self.sent, self.error = 0, None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(kafka, topic), daemon=True)
        self._t.start()

    def _run(self, kafka, topic):
        try:
            while not self._stop.is_set():
                kafka.produce(topic, delimited_messages(self.sent, self.sent + CHUNK), partitions=4)
                self.sent += CHUNK
                time.sleep(PAUSE)
        except Exception as e:  # reported by stop()
            self.error = e

    def running(self):
        return self._t.is_alive()

    def stop(self, timeout=60):
        self._stop.set()
        self._t.join(timeout)
        assert not self._t.is_alive(), f"the producer still runs {timeout}s after stop"
        assert self.error is None, f"producing failed: {self.error!r}"
        return self.sent


def _count(pg, table):
    try:
        return pg.count(table)
    except psycopg2.Error:
        pg.close()
        return None


def test_pg_crashes_lose_nothing(server, durable_pg, kafka):
    t0 = time.monotonic()
    pg = durable_pg.pg
    rng = random.Random(int(os.environ.get("E2E_SEED", "0")) or None)
    topic = kafka.create_topic(unique("pgcrash"), partitions=4)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    jobs = {}
    for consistency in ("EXACTLY", "ATLEAST"):
        table = pg.create_table(unique(f"t_crash_{consistency.lower()}"), TABLE5)
        conf = delivery_job_dict(pg, kafka, topic, table, consistency=consistency, max_row=2000,
                                 interval=200, retry_interval="1s")
        job = create_job(server, professional_job(src["id"], to_yaml(conf)))
        start_job(server, job["id"])
        jobs[consistency] = (job["id"], table)
    for jid, _ in jobs.values():
        wait_state(server, jid, "running")

    producer = Endless(kafka, topic)
    crashes = []
    try:
        for i in range(CRASHES + 1):
            # Both jobs write (again): the crash lands in the middle of the load.
            before = {c: _count(pg, t) or 0 for c, (_, t) in jobs.items()}
            now = {}

            def both_write():
                now.update({c: _count(pg, t) for c, (_, t) in jobs.items()})
                return all((now[c] or 0) > before[c] for c in jobs)
            try:
                wait_for(both_write, 120, 0.05, f"both jobs to write rows after crash {i}")
            except AssertionError as e:
                raise AssertionError(
                    f"{e}: rows before {before}, now {now}, produced {producer.sent} (producer "
                    f"{'running' if producer.running() else 'stopped'}, error {producer.error!r}), "
                    f"jobs {[job_status(server, j) for j, _ in jobs.values()]}, crashes {crashes}, "
                    f"server log: {durable_pg.log_tail()}") from None
            if i == CRASHES:
                break
            time.sleep(rng.uniform(0, 0.5))
            assert producer.running(), f"the producer stopped before crash {i + 1}: {producer.error!r}"
            rows = {c: _count(pg, t) for c, (_, t) in jobs.items()}
            pm, children = durable_pg.crash()
            t_down = time.monotonic()
            durable_pg.start(pm)
            crashes.append(f"crash {i + 1}: postmaster {pm} + {children} children killed at "
                           f"{producer.sent} produced, rows {rows}, back in "
                           f"{time.monotonic() - t_down:.1f}s")
    finally:
        n = producer.stop()
    print("\n".join(crashes))

    results = {}
    for consistency, (jid, table) in jobs.items():
        def complete():
            c = key_census(pg, table, n)
            return c if c["distinct"] == n else None
        try:
            wait_for(complete, 180, 0.5, f"{consistency}: every one of {n} keys in {table}")
            if consistency == "EXACTLY":
                # Keys all there: the row count settles at n (a duplicate would show).
                wait_for(lambda: pg.count(table) == n, 10, 0.2, f"{consistency}: {n} rows")
        except AssertionError:
            pass  # judged below, on the census
        c = key_census(pg, table, n)
        st = job_status(server, jid)
        results[consistency] = (c, st)
        print(f"{consistency}: produced {n}, rows {c['rows']}, distinct {c['distinct']}, "
              f"duplicates {c['duplicates']} (e.g. {c['dup_sample']}), lost {c['lost']} "
              f"(e.g. {c['lost_sample']}), extra {c['extra']}, state {st['state']}, restarts "
              f"{st['restarts']}, last_error {st.get('last_error')!r}")
    print(f"{CRASHES} crashes, {n} messages, {time.monotonic() - t0:.1f}s")

    ce, ste = results["EXACTLY"]
    ca, sta = results["ATLEAST"]
    assert len(crashes) == CRASHES, crashes
    assert ce["lost"] == 0 and ce["extra"] == 0, f"EXACTLY lost rows: {ce}"
    assert ce["duplicates"] == 0 and ce["rows"] == n, f"EXACTLY wrote rows twice: {ce}"
    assert ca["lost"] == 0 and ca["extra"] == 0 and ca["distinct"] == n, f"ATLEAST lost rows: {ca}"
    assert ste["state"] == "running" and sta["state"] == "running", (ste, sta)
