/* A job's state from its tasks' states: a pure function (no store, no
 * process, no clock), unit-tested in tests/unit/test_tasks.c.
 *
 * The supervisor (sup.c) runs one worker per task of a running job and
 * records one state for the job, the summary:
 *   failed    a task failed by the restart policy (the others are stopped)
 *   stopping  no task runs, starts or waits to restart; some are stopping
 *   stopped   no task at all
 *   running   every task is ready
 *   degraded  some are ready, others are starting or waiting to restart
 *   retrying  none is ready, some wait to restart
 *   starting  none is ready, none waits to restart
 * Tasks that are leaving (their index is at or past the job's tasks after a
 * PATCH lowered them, or the job is stopping or failed) do not count while
 * others stay; a task that stays but is stopping is being restarted (its
 * share of PARTITIONS changed) and counts as starting.
 */
#ifndef SS_TASKS_H
#define SS_TASKS_H

#include <stdbool.h>
#include <stddef.h>

enum task_phase {
	TASK_STARTING, /* a worker, not ready yet */
	TASK_RUNNING,  /* a worker that said ready */
	TASK_RETRYING, /* no worker; restarts after a delay */
	TASK_STOPPING, /* a worker we sent SIGTERM */
	TASK_STOPPED,  /* no worker, none wanted */
	TASK_FAILED,   /* no worker; failed by the restart policy */
};

struct task_brief {
	enum task_phase phase;
	bool leaving; /* being stopped for good (not to be restarted) */
};

/* The job's state for its tasks t[0..n): one of the words above (static). */
const char *tasks_job_state(const struct task_brief *t, size_t n);

/* The word for one task's phase: "starting", "running", "retrying",
 * "stopping", "stopped", "failed" (static). */
const char *tasks_phase_name(enum task_phase phase);

#endif
