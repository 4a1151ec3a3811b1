"""Issue 4, outages in the middle of a load: PostgreSQL restarted with
`pg_ctl restart -m fast`, the Kafka broker stopped and started again.  Each
test has its own database or broker (private_pg, private_kafka), since the
session's are shared.  Nothing may be lost (EXACTLY: nor duplicated), and the
job must come back to `running` by itself."""
import threading
import time

from helpers import (TABLE5, create_job, create_service, create_source, delimited_messages,
                     delivery_job_dict, job_status, key_census, professional_job, start_job,
                     to_yaml, unique, wait_for, wait_rows, wait_state)

N = 60_000


class StateLog:
    """Polls the job's status in the background and keeps the states seen."""

    def __init__(self, server, jid):
        self.server, self.jid = server, jid
        self.seen = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                st = job_status(self.server, self.jid)
                if not self.seen or self.seen[-1][0] != st["state"]:
                    self.seen.append((st["state"], st.get("last_error")))
            except Exception:
                pass
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self.seen


class Paced:
    """Produces delimited_messages(0, N) in chunks from a thread."""

    def __init__(self, kafka, topic, chunk=3000, pause=0.3):
        self.sent, self.error = 0, None
        self._t = threading.Thread(target=self._run, args=(kafka, topic, chunk, pause),
                                   daemon=True)
        self._t.start()

    def _run(self, kafka, topic, chunk, pause):
        try:
            for i in range(0, N, chunk):
                kafka.produce(topic, delimited_messages(i, min(N, i + chunk)), partitions=4)
                self.sent = min(N, i + chunk)
                time.sleep(pause)
        except Exception as e:  # reported by join()
            self.error = e

    def join(self, timeout=180):
        self._t.join(timeout)
        assert not self._t.is_alive(), f"the producer still runs after {timeout}s"
        assert self.error is None, f"producing failed: {self.error!r}"


def _setup(server, pg, kafka, prefix):
    topic = kafka.create_topic(unique(prefix), partitions=4)
    table = pg.create_table(unique("t_" + prefix), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    conf = delivery_job_dict(pg, kafka, topic, table, consistency="EXACTLY", max_row=2000,
                             interval=200, retry_interval="1s")
    job = create_job(server, professional_job(src["id"], to_yaml(conf)))
    start_job(server, job["id"])
    wait_state(server, job["id"], "running")
    return topic, table, job["id"]


def _finish(server, pg, table, jid, seen, what, t0):
    wait_state(server, jid, "running", timeout=120)
    try:
        wait_rows(pg, table, N, server, jid, timeout=240)
    finally:
        c = key_census(pg, table, N)
        st = job_status(server, jid)
        figures = (f"{what}: produced {N}, rows {c['rows']}, distinct {c['distinct']}, "
                   f"duplicates {c['duplicates']}, lost {c['lost']} (e.g. {c['lost_sample']}), "
                   f"states seen {seen}, restarts {st['restarts']}, last_exit "
                   f"{st.get('last_exit')!r}, {time.monotonic() - t0:.1f}s")
        print(figures)
    assert c["lost"] == 0 and c["extra"] == 0, figures
    assert c["duplicates"] == 0, figures
    assert st["state"] == "running", figures
    return figures


def test_postgres_restart_fast_mid_load(server, private_pg, kafka):
    t0 = time.monotonic()
    pg = private_pg.pg
    topic, table, jid = _setup(server, pg, kafka, "pgrestart")
    log = StateLog(server, jid)
    try:
        kafka.produce(topic, delimited_messages(0, N // 2), partitions=4)
        wait_for(lambda: pg.count(table) > 0, 60, 0.02, "first rows")
        rows_before = pg.count(table)
        private_pg.restart_fast()
        kafka.produce(topic, delimited_messages(N // 2, N), partitions=4)
        print(f"pg restarted with {rows_before} rows loaded")
        _finish(server, pg, table, jid, log.seen, "pg_ctl restart -m fast", t0)
    finally:
        log.stop()


def test_kafka_broker_restart_mid_load(server, pg, private_kafka):
    t0 = time.monotonic()
    kafka = private_kafka.kafka
    topic, table, jid = _setup(server, pg, kafka, "kfrestart")
    log = StateLog(server, jid)
    try:
        # Produced in paced chunks from a thread, so that the broker goes away
        # in the middle of the stream (the producer buffers while it is down).
        producer = Paced(kafka, topic)
        wait_for(lambda: pg.count(table) > 0, 60, 0.02, "first rows")
        rows_before, produced_before = pg.count(table), producer.sent
        private_kafka.stop()
        time.sleep(3)  # the worker meets a dead broker
        rows_down = pg.count(table)
        private_kafka.start()
        producer.join()
        print(f"broker stopped with {rows_before} rows loaded of {produced_before} produced, "
              f"{rows_down} when it came back")
        _finish(server, pg, table, jid, log.seen, "kafka stop/start", t0)
    finally:
        log.stop()
