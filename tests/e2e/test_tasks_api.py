"""A job's tasks as the controller shows them: the `tasks` field and TASKS
key in both modes, their 422s, spec_cu counting tasks, GET /jobs/ID/status
with one entry per task, a PATCH of tasks on a running job, the `task`
label of /metrics, streamctl's tasks table and the status page's task list.

The jobs here consume nothing (no message is produced): what is checked is
the supervisor's processes and what the API, /metrics, streamctl and the
page say about them.
"""
import os
import signal

from helpers import (COLUMNS5, TABLE5, create_job, create_service, create_source, error_of,
                     job_status, job_yaml, pid_alive, professional_job, start_job, stop_job,
                     unique, wait_for, wait_state, wizard_job, yaml_value)
from test_cli import ctl, ok, table_rows
from test_metrics import _check_worker_usage, scrape
from test_web import browser, wait_page  # noqa: F401  (browser is a fixture)

VALUE5 = {"COLUMNS": [{"NAME": c, "TYPE": t} for c, t in COLUMNS5], "FORMAT": "delimited",
          "DELIMITED_OPTION": {"DELIMITER": "|"}}
COLUMN_NAMES = [c for c, _ in COLUMNS5]


def setup_source(server, pg, kafka, partitions=3, **service):
    topic = kafka.create_topic(unique("tasks"), partitions=partitions)
    table = pg.create_table(unique("t_tasks"), TABLE5)
    svc = create_service(server, pg, **service)
    src = create_source(server, svc["id"], kafka, topic)
    return topic, table, svc, src


def pro_config(pg, kafka, topic, table, tasks=None, partitions=None):
    text = job_yaml(pg, kafka, topic, table, value=VALUE5, partitions=partitions)
    return text if tasks is None else f"TASKS: {tasks}\n{text}"


def task_pids(st):
    return {t["task"]: t["pid"] for t in st["tasks"]}


def wait_tasks(server, job_id, n, what):
    """The status once the job runs with exactly n tasks, each running with a
    live pid of its own."""
    def check():
        st = job_status(server, job_id)
        tasks = st["tasks"]
        if st["state"] != "running" or len(tasks) != n:
            return None
        if any(t["state"] != "running" or not t["pid"] or not pid_alive(t["pid"]) for t in tasks):
            return None
        return st
    return wait_for(check, 60, 0.2, what)


def test_tasks_round_trip_in_both_modes(server, pg, kafka):
    topic, table, _, src = setup_source(server, pg, kafka)

    wiz = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES, tasks=3))
    assert wiz["tasks"] == 3, wiz
    assert server.call("GET", f"/jobs/{wiz['id']}")["tasks"] == 3
    assert server.call("PATCH", f"/jobs/{wiz['id']}", {"tasks": 2})["tasks"] == 2
    # null goes back to the default.
    assert server.call("PATCH", f"/jobs/{wiz['id']}", {"tasks": None})["tasks"] == 1
    plain = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES))
    assert plain["tasks"] == 1, plain

    # Professional: TASKS in the YAML is the job's tasks, and shows in config.
    pro = create_job(server, professional_job(src["id"], pro_config(pg, kafka, topic, table, 4)))
    assert pro["tasks"] == 4 and yaml_value(pro["config"], "TASKS") == "4", pro
    # A body's tasks sets TASKS in the stored config.
    got = server.call("PATCH", f"/jobs/{pro['id']}", {"tasks": 2})
    assert got["tasks"] == 2 and yaml_value(got["config"], "TASKS") == "2", got
    again = server.call("GET", f"/jobs/{pro['id']}")
    assert again["tasks"] == 2 and again["config"].count("TASKS:") == 1, again["config"]
    made = create_job(server, professional_job(src["id"], pro_config(pg, kafka, topic, table),
                                               tasks=5))
    assert made["tasks"] == 5 and yaml_value(made["config"], "TASKS") == "5", made
    # One task: the effective YAML is as it always was, without TASKS.
    one = create_job(server, professional_job(src["id"], pro_config(pg, kafka, topic, table)))
    assert one["tasks"] == 1 and yaml_value(one["config"], "TASKS") is None, one["config"]


def test_tasks_422(server, pg, kafka):
    topic, table, _, src = setup_source(server, pg, kafka)

    for bad in (0, 65, 2.5, "3"):
        err = error_of(server.request("POST", "/jobs",
                                      wizard_job(src["id"], pg, table, COLUMN_NAMES, tasks=bad)),
                       422, "invalid", "tasks")
        assert "between 1 and 64" in err["message"], err
    err = error_of(server.request("POST", "/jobs", professional_job(
        src["id"], pro_config(pg, kafka, topic, table, 65))), 422, "invalid", "TASKS")
    assert "between 1 and 64" in err["message"], err
    assert err["details"][0]["line"] == 1, err
    err = error_of(server.request("POST", "/jobs", professional_job(
        src["id"], pro_config(pg, kafka, topic, table), tasks=100)), 422, "invalid", "tasks")
    assert "between 1 and 64" in err["message"], err

    # The same partition twice: two tasks would own it.
    err = error_of(server.request("POST", "/jobs", professional_job(
        src["id"], pro_config(pg, kafka, topic, table, 2, partitions="(0,1,1)"))),
        422, "invalid", "KAFKA.INPUT.SOURCE.PARTITIONS")
    assert "partition 1 is listed twice" in err["message"], err

    # A stopped job is refused the same way on a PATCH.
    job = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES))
    error_of(server.request("PATCH", f"/jobs/{job['id']}", {"tasks": 0}), 422, "invalid", "tasks")
    assert server.call("GET", f"/jobs/{job['id']}")["tasks"] == 1


def test_spec_cu_counts_tasks(server, pg, kafka):
    topic, table, svc, src = setup_source(server, pg, kafka, spec_cu=4)
    three = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES, tasks=3))
    two = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES, tasks=2))
    one = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES))
    start_job(server, three["id"])
    err = error_of(server.request("POST", f"/jobs/{two['id']}/start"), 409, "conflict")
    assert f"service {svc['name']} runs 3 of 4 tasks (spec_cu 4)" in err["message"], err
    assert "needs 2" in err["message"], err
    assert job_status(server, two["id"])["desired_state"] == "stopped"
    start_job(server, one["id"])
    # Raising the running job's tasks past what is left is refused too.
    err = error_of(server.request("PATCH", f"/jobs/{three['id']}", {"tasks": 4}), 409, "conflict")
    assert "runs 1 of 4 tasks" in err["message"], err
    assert server.call("GET", f"/jobs/{three['id']}")["tasks"] == 3


def test_three_tasks_then_one(server, pg, kafka, tmp_path):
    topic, table, _, src = setup_source(server, pg, kafka)
    job = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES, tasks=3))
    jid = job["id"]
    start_job(server, jid)
    st = wait_tasks(server, jid, 3, "three running tasks")
    pids = task_pids(st)
    assert sorted(pids) == [0, 1, 2] and len(set(pids.values())) == 3, st
    assert st["pid"] == pids[0], st
    # The group settles with one of the topic's three partitions per task.
    def settled():
        s = job_status(server, jid)
        owned = [p for t in s["tasks"] for p in t["partitions"]]
        return s if sorted(owned) == [0, 1, 2] and all(len(t["partitions"]) == 1 for t in s["tasks"]) \
            else None
    st = wait_for(settled, 60, 0.2, "each task to own one of the three partitions")
    assert task_pids(st) == pids, st
    for t in st["tasks"]:
        assert t["state"] == "running" and t["restarts"] == 0 and t["last_error"] is None, t
        assert isinstance(t["rows_per_second"], (int, float)), t
    assert sorted(st["partitions"]) == [0, 1, 2], st

    # /metrics: one series per task, with a task label.
    fams = scrape(server)
    up = {s[1]["task"]: s[2] for s in fams["streamserver_task_up"]["samples"]
          if s[1]["job_id"] == str(jid)}
    assert up == {"0": 1, "1": 1, "2": 1}, up
    # each task's worker: its memory and CPU, from its own /proc/<pid>
    _check_worker_usage(fams, jid, pids)

    # streamctl: the tasks table, one row per task with its pid.
    out = ok(ctl(server.base, "jobs", "status", jid)).stdout
    lines = out.splitlines()
    head = lines.index("tasks")
    rows = table_rows("\n".join(lines[head + 1:]))
    assert rows[0] == ["task", "pid", "state", "restarts", "partitions", "rows/s", "lag"], out
    assert {r[0]: int(r[1]) for r in rows[1:]} == {str(k): v for k, v in pids.items()}, out
    assert all(r[2] == "running" for r in rows[1:]), out

    # PATCH tasks 3 -> 1 while it runs: tasks 1 and 2 stop, task 0 goes on.
    got = server.call("PATCH", f"/jobs/{jid}", {"tasks": 1})
    assert got["tasks"] == 1, got
    wait_for(lambda: not pid_alive(pids[1]) and not pid_alive(pids[2]), 30, 0.2,
             "the workers of tasks 1 and 2 to exit")
    st = wait_tasks(server, jid, 1, "one running task")
    assert task_pids(st) == {0: pids[0]}, st
    assert pid_alive(pids[0]) and st["pid"] == pids[0], st
    fams = scrape(server)
    up = {s[1]["task"]: s[2] for s in fams["streamserver_task_up"]["samples"]
          if s[1]["job_id"] == str(jid)}
    assert up == {"0": 1}, up
    _check_worker_usage(fams, jid, {0: pids[0]})

    # Other fields still need the job stopped.
    err = error_of(server.request("PATCH", f"/jobs/{jid}", {"tasks": 2, "description": "x"}),
                   409, "conflict")
    assert "stop it first" in err["message"], err

    # And back up: task 0 keeps its worker, two new ones join.
    server.call("PATCH", f"/jobs/{jid}", {"tasks": 3})
    st = wait_tasks(server, jid, 3, "three running tasks again")
    assert task_pids(st)[0] == pids[0], st
    stop_job(server, jid)
    st = wait_state(server, jid, "stopped", timeout=30)
    assert [t["state"] for t in st["tasks"]] == ["stopped"] * 3, st
    assert all(t["pid"] is None for t in st["tasks"]), st


def test_one_task_killed_degrades_the_job(server, pg, kafka):
    topic, table, _, src = setup_source(server, pg, kafka)
    job = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES, tasks=3))
    start_job(server, job["id"])
    pids = task_pids(wait_tasks(server, job["id"], 3, "three running tasks"))
    os.kill(pids[1], signal.SIGKILL)
    # A crash waits RETRY_INTERVAL (5 s) before its restart: the others run on.
    st = wait_state(server, job["id"], "degraded", timeout=10)
    by_task = {t["task"]: t for t in st["tasks"]}
    assert by_task[1]["state"] == "retrying" and by_task[1]["pid"] is None, st
    assert by_task[1]["restarts"] == 1 and "signal 9" in (by_task[1]["last_error"] or ""), st
    assert by_task[0]["pid"] == pids[0] and by_task[2]["pid"] == pids[2], st
    st = wait_tasks(server, job["id"], 3, "task 1 back")
    after = task_pids(st)
    assert after[0] == pids[0] and after[2] == pids[2] and after[1] != pids[1], (pids, after)
    assert st["restarts"] == 1, st


def test_a_failed_task_fails_the_job(server, pg, kafka):
    # No such table: each worker exits with a configuration error, which the
    # restart policy does not retry.
    topic, _, _, src = setup_source(server, pg, kafka)
    job = create_job(server, wizard_job(src["id"], pg, unique("t_missing"), COLUMN_NAMES, tasks=3))
    start_job(server, job["id"])
    st = wait_state(server, job["id"], "failed", timeout=30)
    assert "does not exist" in (st["last_error"] or ""), st
    wait_for(lambda: (lambda s: s if all(t["pid"] is None for t in s["tasks"]) else None)(
        job_status(server, job["id"])), 30, 0.2, "no task left with a worker")
    st = job_status(server, job["id"])
    assert st["state"] == "failed" and st["pid"] is None, st
    assert "failed" in [t["state"] for t in st["tasks"]], st
    assert st["restarts"] == 0, st


def test_controller_killed_brings_every_task_back(server, pg, kafka):
    topic, table, _, src = setup_source(server, pg, kafka)
    job = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES, tasks=3))
    start_job(server, job["id"])
    old = task_pids(wait_tasks(server, job["id"], 3, "three running tasks"))
    server.restart(kill=True)
    st = wait_tasks(server, job["id"], 3, "three running tasks after the controller's restart")
    new = task_pids(st)
    # The new controller waited for the old workers before starting its own.
    assert not any(pid_alive(p) for p in old.values()), (old, new)
    assert not set(new.values()) & set(old.values()), (old, new)
    assert st["restarts"] == 0 and st["state"] == "running", st


def test_partitions_division_restarts_every_task(server, pg, kafka):
    topic, table, _, src = setup_source(server, pg, kafka, partitions=4)
    job = create_job(server, professional_job(
        src["id"], pro_config(pg, kafka, topic, table, 2, partitions="(0,1,2,3)")))
    start_job(server, job["id"])
    pids = task_pids(wait_tasks(server, job["id"], 2, "two running tasks"))
    server.call("PATCH", f"/jobs/{job['id']}", {"tasks": 3})
    # Each task's share of PARTITIONS changes: every worker is a new one.
    st = wait_for(lambda: (lambda s: s if len(s["tasks"]) == 3 and s["state"] == "running"
                           and all(t["pid"] and t["pid"] not in pids.values() for t in s["tasks"])
                           else None)(job_status(server, job["id"])),
                  60, 0.2, "three new workers")
    assert not pid_alive(pids[0]) and not pid_alive(pids[1]), (pids, st)


def test_status_page_shows_tasks(server, pg, kafka, browser):  # noqa: F811
    topic, table, _, src = setup_source(server, pg, kafka)
    job = create_job(server, wizard_job(src["id"], pg, table, COLUMN_NAMES, tasks=3))
    start_job(server, job["id"])
    wait_tasks(server, job["id"], 3, "three running tasks")
    browser.get(server.base + "/")
    read = """
    const tr = document.querySelector('tr[data-job-id="' + arguments[0] + '"]');
    if (!tr) return null;
    return Array.from(tr.querySelectorAll('[data-field="tasks"] li')).map(
        li => [li.dataset.task, li.dataset.state, li.textContent]);
    """
    shown = wait_page(browser, lambda d: (lambda r: r if r and len(r) == 3 else None)(
        d.execute_script(read, job["id"])), "the job's three tasks on the page")
    assert [s[0] for s in shown] == ["0", "1", "2"], shown
    assert all(s[1] == "running" and "partitions" in s[2] for s in shown), shown

