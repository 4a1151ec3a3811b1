"""Stopping and starting a job: nothing lost, nothing loaded twice."""
import time

from helpers import (COLUMNS5, TABLE5, check_delimited_table, create_job, create_service,
                     create_source, delimited_messages, error_of, job_status, start_job, stop_job,
                     unique, wait_rows, wait_state, wizard_job)


def test_stop_produce_start_resumes_exactly(server, pg, kafka):
    topic = kafka.create_topic(unique("life"), partitions=4)
    table = pg.create_table(unique("t_life"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    job = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5]))
    jid = job["id"]

    start_job(server, jid)
    running = wait_state(server, jid, "running")
    # Starting a running job is a no-op 202: same worker.
    again = start_job(server, jid)
    assert again["state"] == "running" and again["pid"] == running["pid"], (running, again)

    kafka.produce(topic, delimited_messages(0, 10_000), partitions=4)
    assert wait_rows(pg, table, 10_000, server, jid) == 10_000

    # A running job can be neither changed nor deleted.
    error_of(server.request("PATCH", f"/jobs/{jid}", {"description": "changed"}), 409, "conflict")
    error_of(server.request("DELETE", f"/jobs/{jid}"), 409, "conflict")

    st = stop_job(server, jid)
    assert st["state"] in ("stopping", "stopped"), st
    st = wait_state(server, jid, "stopped", timeout=30)
    assert st["desired_state"] == "stopped" and not st["pid"], st
    assert stop_job(server, jid)["state"] == "stopped"  # stopping a stopped job: 202

    kafka.produce(topic, delimited_messages(10_000, 15_000), partitions=4)
    time.sleep(3)
    assert pg.count(table) == 10_000, "a stopped job went on loading"
    assert job_status(server, jid)["state"] == "stopped"

    # Stopped: the job may be changed now.
    patched = server.call("PATCH", f"/jobs/{jid}", {"description": "resumed"}, expect=200)
    assert patched["description"] == "resumed" and patched["password"] == "****", patched

    start_job(server, jid)
    wait_state(server, jid, "running")
    assert wait_rows(pg, table, 15_000, server, jid) == 15_000
    check_delimited_table(pg, table, 0, 15_000)
    st = job_status(server, jid)
    assert st["state"] == "running" and st["restarts"] == 0 and st["last_error"] in (None, ""), st

    stop_job(server, jid)
    wait_state(server, jid, "stopped", timeout=30)
    server.call("DELETE", f"/jobs/{jid}", expect=204)
    error_of(server.request("GET", f"/jobs/{jid}"), 404, "not_found")
