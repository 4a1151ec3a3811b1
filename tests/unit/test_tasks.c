/* A job's state from its tasks' (controller/tasks.h): what a user reads as
 * the job's state while some tasks run, start, wait, stop or fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tasks.h"

#define S TASK_STARTING
#define R TASK_RUNNING
#define W TASK_RETRYING
#define X TASK_STOPPING
#define F TASK_FAILED

static const char *state_of(const enum task_phase *phases, const bool *leaving, size_t n)
{
	struct task_brief t[8];

	for (size_t i = 0; i < n; i++)
		t[i] = (struct task_brief){ phases[i], leaving != NULL && leaving[i] };
	return tasks_job_state(t, n);
}

static void test_one_task_is_the_job(void **state)
{
	static const struct {
		enum task_phase phase;
		const char *job;
	} cases[] = { { S, "starting" }, { R, "running" }, { W, "retrying" },
		      { X, "stopping" }, { TASK_STOPPED, "stopped" }, { F, "failed" } };

	const bool leaving = true; /* a stop: the task is not restarted */

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(state_of(&cases[i].phase, &leaving, 1), cases[i].job);
		assert_string_equal(tasks_phase_name(cases[i].phase), cases[i].job);
	}
	assert_string_equal(tasks_job_state(NULL, 0), "stopped");
}

static void test_several_tasks(void **state)
{
	const enum task_phase all_ready[] = { R, R, R };
	const enum task_phase one_waits[] = { R, W, R };
	const enum task_phase one_starts[] = { R, R, S };
	const enum task_phase none_ready[] = { S, W, S };
	const enum task_phase all_start[] = { S, S, S };
	const enum task_phase one_failed[] = { R, F, X };
	const enum task_phase stopping[] = { X, TASK_STOPPED, X };
	const bool all_leave[] = { true, true, true };

	assert_string_equal(state_of(all_ready, NULL, 3), "running");
	assert_string_equal(state_of(one_waits, NULL, 3), "degraded");
	assert_string_equal(state_of(one_starts, NULL, 3), "degraded");
	assert_string_equal(state_of(none_ready, NULL, 3), "retrying");
	assert_string_equal(state_of(all_start, NULL, 3), "starting");
	assert_string_equal(state_of(one_failed, NULL, 3), "failed");
	assert_string_equal(state_of(stopping, all_leave, 3), "stopping");
}

/* Tasks restarted because their share of PARTITIONS changed: they stop
 * without leaving, and the job reads starting (or degraded), not stopping. */
static void test_restarting_tasks(void **state)
{
	const enum task_phase all_restart[] = { X, X, X };
	const enum task_phase one_restarts[] = { R, X, R };

	assert_string_equal(state_of(all_restart, NULL, 3), "starting");
	assert_string_equal(state_of(one_restarts, NULL, 3), "degraded");
}

/* Tasks lowered from 3 to 1: the two that leave do not make the job
 * stopping; when all leave (tasks lowered, then a stop), they count. */
static void test_leaving_tasks(void **state)
{
	const enum task_phase lowered[] = { R, X, X };
	const bool leaving[] = { false, true, true };
	const enum task_phase restarting[] = { S, X, X };
	const enum task_phase stopped_all[] = { X, X, TASK_STOPPED };
	const bool all_leave[] = { true, true, true };

	assert_string_equal(state_of(lowered, leaving, 3), "running");
	assert_string_equal(state_of(restarting, leaving, 3), "starting");
	assert_string_equal(state_of(stopped_all, all_leave, 3), "stopping");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_task_is_the_job),
		cmocka_unit_test(test_several_tasks),
		cmocka_unit_test(test_leaving_tasks),
		cmocka_unit_test(test_restarting_tasks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
