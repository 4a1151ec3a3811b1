"""Crashes during a load: a worker killed with SIGKILL, the controller
restarted (SIGTERM) or killed (SIGKILL).  Every message must end up in the
table, once: the progress table is written in the same transaction as the rows."""
import os
import signal

import pytest

from helpers import (COLUMNS5, TABLE5, check_delimited_table, create_job, create_service,
                     create_source, delimited_messages, job_status, pid_alive, start_job, unique,
                     wait_for, wait_rows, wait_state, wizard_job)

N = 100_000
HALF = N // 2


def _running_job(server, pg, kafka, prefix):
    topic = kafka.create_topic(unique(prefix), partitions=4)
    table = pg.create_table(unique("t_" + prefix), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    job = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5]))
    start_job(server, job["id"])
    st = wait_state(server, job["id"], "running")
    return topic, table, job["id"], st


def _assert_all_rows_once(pg, table, server, jid):
    wait_rows(pg, table, N, server, jid, timeout=180)
    # check_delimited_table asserts count(DISTINCT column_1) = N, then count(*) = N
    # with the number of duplicates in its message.
    check_delimited_table(pg, table, 0, N)


def test_worker_killed_is_restarted_without_loss(server, pg, kafka):
    topic, table, jid, st = _running_job(server, pg, kafka, "kill")
    kafka.produce(topic, delimited_messages(0, HALF), partitions=4)
    # Kill it in the middle of the load, as soon as rows arrive.
    wait_for(lambda: pg.count(table) > 0, 60, 0.02, f"first rows in {table}")
    victim = job_status(server, jid)["pid"]
    assert victim, "a running job has no worker pid"
    os.kill(victim, signal.SIGKILL)
    loaded_at_kill = pg.count(table)

    st = wait_state(server, jid, "running", timeout=90,
                    pred=lambda s: s["restarts"] >= 1 and s["pid"] and s["pid"] != victim)
    assert st["desired_state"] == "running", st
    assert not pid_alive(victim)

    kafka.produce(topic, delimited_messages(HALF, N), partitions=4)
    _assert_all_rows_once(pg, table, server, jid)
    st = job_status(server, jid)
    assert st["state"] == "running" and st["restarts"] >= 1, st
    print(f"rows when the worker was killed: {loaded_at_kill}; final status {st}")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_controller_restart_resumes_jobs(server, pg, kafka, how):
    topic, table, jid, st = _running_job(server, pg, kafka, "ctl" + how[3:])
    kafka.produce(topic, delimited_messages(0, HALF), partitions=4)
    wait_for(lambda: pg.count(table) > 0, 60, 0.02, f"first rows in {table}")
    old_worker = job_status(server, jid)["pid"]
    assert old_worker

    rc = server.restart(kill=(how == "sigkill"))
    if how == "sigterm":
        assert rc == 0, f"streamserver exited with {rc} on SIGTERM"
        # It stopped its workers before exiting.
        assert not pid_alive(old_worker), f"worker {old_worker} outlived its controller"
    else:
        # The orphaned worker must go away by itself (it would otherwise load
        # the same job next to its successor).
        wait_for(lambda: not pid_alive(old_worker), 30, 0.1,
                 f"worker {old_worker} of the killed controller to exit")

    # The job comes back by itself: nobody calls start.
    st = wait_state(server, jid, "running", timeout=90,
                    pred=lambda s: s["pid"] and s["pid"] != old_worker)
    assert st["desired_state"] == "running", st

    kafka.produce(topic, delimited_messages(HALF, N), partitions=4)
    _assert_all_rows_once(pg, table, server, jid)
    assert job_status(server, jid)["state"] == "running"
