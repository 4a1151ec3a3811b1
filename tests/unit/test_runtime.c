/* The controller's in-memory job figures: rates over the 10 s window, the
 * batch-duration histogram, the last lag report, and threads reading while
 * the supervisor writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static int64_t fake_now_ms;

static int64_t fake_clock(void)
{
	return fake_now_ms;
}

static int setup(void **state)
{
	fake_now_ms = 1000000;
	runtime_set_clock(fake_clock);
	*state = calloc(1, sizeof(struct runtime_view));
	return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	runtime_reset();
	runtime_set_clock(NULL);
	free(*state);
	return 0;
}

static void test_unknown_job_is_empty(void **state)
{
	struct runtime_view *rv = *state;

	runtime_job_get(42, rv);
	assert_true(rv->rows_per_second == 0);
	assert_true(rv->messages_per_second == 0);
	assert_string_equal(rv->last_batch_at, "");
	assert_false(rv->lag_known);
	assert_int_equal(rv->nlag, 0);
	assert_int_equal(rv->duration_count, 0);
}

/* Rows per second over the last 10 s; over the worker's time when it has been
 * up for less; 0 once the batches are older than the window or the worker
 * ended. */
static void test_rates_over_the_window(void **state)
{
	struct runtime_view *rv = *state;

	runtime_task_started(1, 0, 100);
	fake_now_ms += 1000;
	runtime_task_batch(1, 0, 110, 100, 20);
	fake_now_ms += 1000; /* up 2 s */
	runtime_job_get(1, rv);
	assert_true(rv->rows_per_second == 50.0);
	assert_true(rv->messages_per_second == 55.0);
	assert_true(rv->last_batch_at[0] != '\0');

	fake_now_ms += 3000; /* up 5 s */
	runtime_task_batch(1, 0, 400, 400, 20);
	runtime_job_get(1, rv);
	assert_true(rv->rows_per_second == 100.0);

	fake_now_ms += 5500; /* up 10.5 s: the window is 10 s, the first batch still in it */
	runtime_job_get(1, rv);
	assert_true(rv->rows_per_second == 50.0);

	fake_now_ms += 1000; /* the first batch (at 1 s) left the window */
	runtime_job_get(1, rv);
	assert_true(rv->rows_per_second == 40.0);

	fake_now_ms += 10000; /* idle */
	runtime_job_get(1, rv);
	assert_true(rv->rows_per_second == 0);
	assert_true(rv->messages_per_second == 0);

	runtime_task_batch(1, 0, 10, 10, 20);
	runtime_task_ended(1, 0);
	runtime_job_get(1, rv);
	assert_true(rv->rows_per_second == 0);
	assert_int_equal(rv->duration_count, 3);
}

/* A new worker starts a new window: what the last one did is not counted. */
static void test_restart_starts_a_new_window(void **state)
{
	struct runtime_view *rv = *state;

	runtime_task_started(1, 0, 100);
	runtime_task_batch(1, 0, 1000, 1000, 5);
	fake_now_ms += 2000;
	runtime_task_ended(1, 0);
	runtime_task_started(1, 0, 100);
	fake_now_ms += 1000;
	runtime_task_batch(1, 0, 30, 30, 5);
	runtime_job_get(1, rv);
	assert_true(rv->rows_per_second == 30.0);
}

/* Buckets hold the batches of at most their bound; the last one those above
 * 10 s.  Sum in seconds. */
static void test_histogram_buckets(void **state)
{
	struct runtime_view *rv = *state;
	const int64_t durations_ms[] = { 0, 5, 6, 10, 100, 999, 1000, 10000, 10001, 60000 };

	runtime_task_started(3, 0, 100);
	for (size_t i = 0; i < sizeof(durations_ms) / sizeof(durations_ms[0]); i++)
		runtime_task_batch(3, 0, 1, 1, durations_ms[i]);
	runtime_job_get(3, rv);
	assert_int_equal(rv->duration_count, 10);
	assert_true(rv->duration_sum_s > 82.120 && rv->duration_sum_s < 82.122);
	assert_int_equal(rv->buckets[0], 2);  /* <= 0.005: 0, 5 ms */
	assert_int_equal(rv->buckets[1], 2);  /* <= 0.01: 6, 10 ms */
	assert_int_equal(rv->buckets[2], 0);  /* <= 0.025 */
	assert_int_equal(rv->buckets[4], 1);  /* <= 0.1: 100 ms */
	assert_int_equal(rv->buckets[7], 2);  /* <= 1: 999, 1000 ms */
	assert_int_equal(rv->buckets[10], 1); /* <= 10: 10 s */
	assert_int_equal(rv->buckets[11], 2); /* above: 10.001 s, 60 s */
	/* Other jobs are separate. */
	runtime_job_get(4, rv);
	assert_int_equal(rv->duration_count, 0);
}

/* Tombstone figures add up per job, from every task's batches. */
static void test_tombstone_counts(void **state)
{
	struct runtime_view *rv = *state;

	runtime_job_get(7, rv);
	assert_int_equal(rv->rows_deleted, 0);
	assert_int_equal(rv->tombstones_skipped, 0);
	runtime_task_started(7, 0, 100);
	runtime_task_started(7, 1, 101);
	runtime_job_tombstones(7, 3, 0);
	runtime_job_tombstones(7, 2, 4);
	runtime_job_tombstones(8, 9, 9);
	runtime_job_get(7, rv);
	assert_int_equal(rv->rows_deleted, 5);
	assert_int_equal(rv->tombstones_skipped, 4);
}

/* The last report replaces the one before and is kept after the worker
 * ends; -1 stays "not known". */
static void test_lag_is_the_last_report(void **state)
{
	struct runtime_view *rv = *state;
	struct proto_lag first[] = { { 0, 10 }, { 1, 20 }, { 2, -1 }, { 3, 5 } };
	struct proto_lag second[] = { { 0, 0 }, { 1, 3 } };

	runtime_task_started(5, 0, 100);
	runtime_task_lag(5, 0, 35, first, 4);
	runtime_job_get(5, rv);
	assert_true(rv->lag_known);
	assert_int_equal(rv->lag_total, 35);
	assert_int_equal(rv->nlag, 4);
	assert_int_equal(rv->lag[1].partition, 1);
	assert_int_equal(rv->lag[1].lag, 20);
	assert_int_equal(rv->lag[2].lag, -1);
	assert_true(rv->lag_updated_at[0] != '\0');
	assert_string_equal(rv->last_batch_at, "");

	runtime_task_lag(5, 0, 3, second, 2);
	runtime_task_ended(5, 0);
	runtime_job_get(5, rv);
	assert_int_equal(rv->lag_total, 3);
	assert_int_equal(rv->nlag, 2);
	assert_int_equal(rv->lag[1].lag, 3);
}

static void test_lag_list_is_capped(void **state)
{
	struct runtime_view *rv = *state;
	struct proto_lag *many = calloc(PROTO_LAG_MAX + 10, sizeof(*many));

	assert_non_null(many);
	for (size_t i = 0; i < PROTO_LAG_MAX + 10; i++)
		many[i] = (struct proto_lag){ (int32_t)i, 1 };
	runtime_task_lag(6, 0, PROTO_LAG_MAX + 10, many, PROTO_LAG_MAX + 10);
	runtime_job_get(6, rv);
	assert_int_equal(rv->nlag, PROTO_LAG_MAX);
	assert_int_equal(rv->lag[PROTO_LAG_MAX - 1].partition, PROTO_LAG_MAX - 1);
	free(many);
}

/* Figures of deleted jobs go; the others stay. */
static void test_retain_drops_deleted_jobs(void **state)
{
	struct runtime_view *rv = *state;
	const int64_t ids[] = { 2, 9 };

	for (int64_t id = 1; id <= 10; id++)
		runtime_task_batch(id, 0, 1, 1, 1);
	runtime_retain(ids, 2);
	runtime_job_get(1, rv);
	assert_int_equal(rv->duration_count, 0);
	runtime_job_get(2, rv);
	assert_int_equal(rv->duration_count, 1);
	runtime_job_get(9, rv);
	assert_int_equal(rv->duration_count, 1);
	runtime_job_get(10, rv);
	assert_int_equal(rv->duration_count, 0);
	runtime_retain(NULL, 0);
	runtime_job_get(2, rv);
	assert_int_equal(rv->duration_count, 0);
}

/* A job of three tasks: rates add up, lag lists merge by partition (each
 * partition once, the newest report's), a task's view has its own figures. */
static void test_tasks_add_up(void **state)
{
	struct runtime_view *rv = *state;
	struct runtime_task_view *tv = calloc(4, sizeof(*tv));
	struct proto_lag l0[] = { { 4, 7 }, { 0, 10 } };
	struct proto_lag l1[] = { { 1, 20 }, { 4, 1 } };
	const int32_t a0[] = { 0, 3 };

	assert_non_null(tv);
	for (int t = 0; t < 3; t++)
		runtime_task_started(20, t, 500 + t);
	fake_now_ms += 10000;
	runtime_task_batch(20, 0, 100, 100, 5);
	runtime_task_batch(20, 1, 300, 200, 5);
	runtime_task_lag(20, 0, 17, l0, 2);
	runtime_task_lag(20, 1, 21, l1, 2);
	runtime_job_get(20, rv);
	assert_true(rv->rows_per_second > 29.9 && rv->rows_per_second < 30.1);
	assert_int_equal(rv->duration_count, 2);
	assert_int_equal(rv->lag_total, 38);
	assert_int_equal(rv->nlag, 3);
	assert_int_equal(rv->lag[0].partition, 0);
	assert_int_equal(rv->lag[1].partition, 1);
	assert_int_equal(rv->lag[2].partition, 4);
	assert_int_equal(rv->lag[2].lag, 1); /* task 1's report came last */

	/* Task 0 is assigned 0 and 3: partition 4 is no longer its lag. */
	runtime_task_set_state(20, 0, "running", 2, "");
	runtime_task_assign(20, 0, a0, 2);
	runtime_task_set_state(20, 2, "running", 0, NULL);
	runtime_task_assign(20, 2, NULL, 0);
	assert_int_equal(runtime_job_tasks(20, tv, 4), 3);
	assert_int_equal(tv[0].task, 0);
	assert_int_equal(tv[0].pid, 500);
	assert_string_equal(tv[0].state, "running");
	assert_int_equal(tv[0].restarts, 2);
	assert_true(tv[0].assign_known);
	assert_int_equal(tv[0].nparts, 2);
	assert_int_equal(tv[0].parts[1], 3);
	assert_int_equal(tv[0].lag_total, 10);
	assert_true(tv[0].rows_per_second > 9.9 && tv[0].rows_per_second < 10.1);
	assert_string_equal(tv[1].state, "starting");
	assert_false(tv[1].assign_known);
	assert_string_equal(tv[2].state, "standby"); /* running, owns nothing */
	assert_false(tv[2].lag_known);

	/* The job is lowered to one task: the others' figures go. */
	runtime_task_ended(20, 1);
	runtime_task_ended(20, 2);
	runtime_job_tasks_keep(20, 1);
	assert_int_equal(runtime_job_tasks(20, tv, 4), 1);
	runtime_job_get(20, rv);
	assert_int_equal(rv->lag_total, 10);
	assert_int_equal(rv->nlag, 1);
	assert_true(rv->rows_per_second > 9.9 && rv->rows_per_second < 10.1);
	free(tv);
}

/* Tasks another controller runs show its figures until nobody publishes
 * them (their job stopped): then stopped, still with that controller, as
 * that controller shows them; a task run here is not touched. */
static void test_remote_task_gone_shows_stopped(void **state)
{
	struct runtime_task_view *tv = calloc(2, sizeof(*tv));
	const int32_t parts[] = { 1, 4 };
	struct runtime_remote rr = { .controller = "b", .pid = 77, .state = "running", .restarts = 1,
				     .last_error = "", .assign_known = true, .parts = parts, .nparts = 2,
				     .rows_per_second = 50, .lag = 9 };

	(void)state;
	assert_non_null(tv);
	runtime_set_self("a", true);
	runtime_task_started(30, 0, 600);
	runtime_task_remote(30, 1, &rr);
	assert_int_equal(runtime_job_tasks(30, tv, 2), 2);
	assert_string_equal(tv[1].controller, "b");
	assert_string_equal(tv[1].state, "running");
	assert_int_equal(tv[1].nparts, 2);
	assert_true(tv[1].lag_known);

	runtime_task_remote_gone(30, 1);
	runtime_task_remote_gone(30, 0); /* ours: ignored */
	assert_int_equal(runtime_job_tasks(30, tv, 2), 2);
	assert_string_equal(tv[1].controller, "b");
	assert_string_equal(tv[1].state, "stopped");
	assert_int_equal(tv[1].pid, 0);
	assert_int_equal(tv[1].nparts, 0);
	assert_false(tv[1].lag_known);
	assert_true(tv[1].rows_per_second == 0);
	assert_string_equal(tv[0].controller, "a");
	assert_int_equal(tv[0].pid, 600);
	assert_string_equal(tv[0].state, "starting");
	runtime_set_self("", false);
	free(tv);
}

#define WRITES 20000

static void *writer(void *arg)
{
	int64_t id = *(int64_t *)arg;
	struct proto_lag parts[] = { { 0, 1 }, { 1, 2 } };

	for (int i = 0; i < WRITES; i++) {
		runtime_task_batch(id, 0, 2, 1, 3);
		if (i % 100 == 0)
			runtime_task_lag(id, 0, 3, parts, 2);
	}
	return NULL;
}

/* Readers and writers at once (the API's threads and the supervisor): every
 * batch is counted and a reader never sees a torn lag report. */
static void test_concurrent_readers_and_writers(void **state)
{
	pthread_t w[4];
	int64_t ids[4] = { 11, 12, 11, 12 };
	struct runtime_view *rv = *state;

	runtime_set_clock(NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&w[i], NULL, writer, &ids[i]), 0);
	for (int i = 0; i < 2000; i++) {
		runtime_job_get(11 + (i % 2), rv);
		if (rv->lag_known) {
			assert_int_equal(rv->nlag, 2);
			assert_int_equal(rv->lag_total, 3);
		}
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(w[i], NULL), 0);
	runtime_job_get(11, rv);
	assert_int_equal(rv->duration_count, 2 * WRITES);
	runtime_job_get(12, rv);
	assert_int_equal(rv->duration_count, 2 * WRITES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tasks_add_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remote_task_gone_shows_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_job_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tombstone_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rates_over_the_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_starts_a_new_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lag_is_the_last_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lag_list_is_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retain_drops_deleted_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_readers_and_writers, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
