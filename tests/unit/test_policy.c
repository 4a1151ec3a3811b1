/* The restart policy (controller/policy.h): what the supervisor does when a
 * worker ends, for every exit code of common/exitcodes.h, signals, the crash
 * loop, SCHEDULE.MAX_RETRIES and RETRY_INTERVAL, and the backoff cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "exitcodes.h"
#include "policy.h"

#define WHY "database unreachable"

/* A worker that ran 1 s without a batch, with the default SCHEDULE (5 s,
 * retry forever) and no history. */
static struct policy_input exit_with(int code)
{
	struct policy_input in;

	memset(&in, 0, sizeof(in));
	in.code = code;
	in.uptime_ms = 1000;
	in.retry_interval_ms = 5000;
	in.max_retries = 0;
	in.why = WHY;
	return in;
}

static struct policy_input killed_by(int sig)
{
	struct policy_input in = exit_with(-1);

	in.signaled = true;
	in.sig = sig;
	return in;
}

/* n exits of the same kind in a row, each restarted, the history carried
 * from one to the next as the supervisor does; returns the last decision. */
static struct policy_decision restarted_times(struct policy_input *in, int n)
{
	struct policy_decision d;

	memset(&d, 0, sizeof(d));
	for (int i = 0; i < n; i++) {
		d = policy_decide(in);
		assert_int_equal(d.action, POLICY_RESTART);
		in->retries = d.retries;
		in->crashes = d.crashes;
	}
	return d;
}

/* Stopped on request: exit 0 or any signal (ours, or the SIGKILL after the
 * deadline) is a clean stop with nothing to say. */
static void test_requested_stop_is_stopped(void **state)
{
	struct policy_input ins[] = { exit_with(WORKER_EXIT_STOPPED), killed_by(SIGTERM),
				      killed_by(SIGKILL) };

	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		struct policy_decision d;

		ins[i].stop_requested = true;
		ins[i].retries = 3;
		ins[i].crashes = 4;
		d = policy_decide(&ins[i]);
		assert_int_equal(d.action, POLICY_STOP);
		assert_string_equal(d.message, "");
	}
}

/* Exit 2 and 3 fail at once, with the worker's message, whether or not we
 * were stopping it and whatever the history. */
static void test_config_and_data_errors_fail_at_once(void **state)
{
	int codes[] = { WORKER_EXIT_CONFIG, WORKER_EXIT_DATA };

	for (size_t i = 0; i < 2; i++) {
		for (int requested = 0; requested < 2; requested++) {
			struct policy_input in = exit_with(codes[i]);
			struct policy_decision d;

			in.stop_requested = requested;
			in.batch_seen = true;
			in.uptime_ms = 3600 * 1000;
			d = policy_decide(&in);
			assert_int_equal(d.action, POLICY_FAIL);
			assert_string_equal(d.message, WHY);
		}
	}
}

/* Asked to stop, but it failed on the way out (exit 1, or a code outside the
 * contract): stopped all the same, the message kept. */
static void test_requested_stop_with_failure_is_stopped_with_message(void **state)
{
	int codes[] = { WORKER_EXIT_RETRY, 4, 127, 255 };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct policy_input in = exit_with(codes[i]);
		struct policy_decision d;

		in.stop_requested = true;
		d = policy_decide(&in);
		assert_int_equal(d.action, POLICY_STOP);
		assert_string_equal(d.message, WHY);
	}
}

/* Exit 1: an outage, restarted after RETRY_INTERVAL, the same every time. */
static void test_retry_uses_retry_interval(void **state)
{
	struct policy_input in = exit_with(WORKER_EXIT_RETRY);
	struct policy_decision d;

	in.retry_interval_ms = 7000;
	d = restarted_times(&in, 1);
	assert_int_equal(d.delay_ms, 7000);
	assert_string_equal(d.message, WHY);
	d = restarted_times(&in, 49);
	assert_int_equal(d.delay_ms, 7000);
	assert_int_equal(d.retries, 50);
	assert_int_equal(d.crashes, 0);
}

/* RETRY_INTERVAL below 1 s waits 1 s, for outages and crashes alike. */
static void test_retry_interval_at_least_one_second(void **state)
{
	int64_t intervals[] = { 0, 1, 500, 999 };

	for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		struct policy_input in = exit_with(WORKER_EXIT_RETRY);
		struct policy_input crash = killed_by(SIGSEGV);

		in.retry_interval_ms = intervals[i];
		crash.retry_interval_ms = intervals[i];
		assert_int_equal(policy_decide(&in).delay_ms, POLICY_MIN_DELAY_MS);
		assert_int_equal(policy_decide(&crash).delay_ms, POLICY_MIN_DELAY_MS);
	}
}

/* MAX_RETRIES = 3: the 4th exit 1 in a row without a batch fails. */
static void test_max_retries_gives_up(void **state)
{
	struct policy_input in = exit_with(WORKER_EXIT_RETRY);
	struct policy_decision d;

	in.max_retries = 3;
	restarted_times(&in, 3);
	d = policy_decide(&in);
	assert_int_equal(d.action, POLICY_FAIL);
	assert_string_equal(d.message,
			    "gave up after 3 retries (SCHEDULE.MAX_RETRIES): " WHY);
}

/* MAX_RETRIES = 0 retries forever. */
static void test_max_retries_zero_is_forever(void **state)
{
	struct policy_input in = exit_with(WORKER_EXIT_RETRY);

	in.retries = 1000000;
	assert_int_equal(policy_decide(&in).action, POLICY_RESTART);
}

/* A batch between outages starts the count again; a long run without one
 * does not. */
static void test_batch_resets_retries(void **state)
{
	struct policy_input in = exit_with(WORKER_EXIT_RETRY);
	struct policy_decision d;

	in.max_retries = 3;
	in.retries = 3;
	in.uptime_ms = 10 * 60 * 1000;
	assert_int_equal(policy_decide(&in).action, POLICY_FAIL);
	in.batch_seen = true;
	d = policy_decide(&in);
	assert_int_equal(d.action, POLICY_RESTART);
	assert_int_equal(d.retries, 1);
}

/* Exit 0 nobody asked for, a code outside the contract, a signal we did not
 * send: crashes. */
static void test_crashes(void **state)
{
	struct policy_input ins[] = { exit_with(WORKER_EXIT_STOPPED), exit_with(4), exit_with(127),
				      exit_with(255), killed_by(SIGSEGV), killed_by(SIGKILL),
				      killed_by(SIGTERM), killed_by(SIGABRT) };

	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		struct policy_decision d = policy_decide(&ins[i]);

		assert_int_equal(d.action, POLICY_RESTART);
		assert_int_equal(d.crashes, 1);
		assert_int_equal(d.retries, 0);
		assert_int_equal(d.delay_ms, 5000);
		assert_string_equal(d.message, WHY);
	}
}

/* The backoff doubles per crash in a row from RETRY_INTERVAL, capped at
 * 5 min. */
static void test_backoff_doubles_up_to_the_cap(void **state)
{
	struct policy_input in = killed_by(SIGSEGV);
	int64_t want[] = { 5000, 10000, 20000, 40000, 80000, 160000, 300000, 300000, 300000 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct policy_decision d = policy_decide(&in);

		assert_int_equal(d.action, POLICY_RESTART);
		assert_int_equal(d.delay_ms, want[i]);
		in.crashes = d.crashes;
	}
	assert_int_equal(policy_backoff_ms(1, 10 * 60 * 1000), POLICY_MAX_BACKOFF_MS);
	assert_int_equal(policy_backoff_ms(1000, 1000), POLICY_MAX_BACKOFF_MS);
	assert_int_equal(policy_backoff_ms(1, 0), 1000);
	assert_int_equal(policy_backoff_ms(3, 0), 4000);
}

/* The 10th crash in a row without a healthy run fails "crash loop". */
static void test_crash_loop(void **state)
{
	struct policy_input in = exit_with(4);
	struct policy_decision d;

	d = restarted_times(&in, POLICY_CRASH_LOOP - 1);
	assert_int_equal(d.crashes, POLICY_CRASH_LOOP - 1);
	d = policy_decide(&in);
	assert_int_equal(d.action, POLICY_FAIL);
	assert_string_equal(d.message, "crash loop: 10 crashes in a row; last: " WHY);
}

/* A healthy run (a batch, or 30 s up) starts the crash count and the backoff
 * again; 29.999 s is not healthy. */
static void test_healthy_run_resets_crashes(void **state)
{
	struct policy_input in = killed_by(SIGSEGV);
	struct policy_decision d;

	in.crashes = POLICY_CRASH_LOOP - 1;
	in.uptime_ms = POLICY_HEALTHY_MS - 1;
	assert_int_equal(policy_decide(&in).action, POLICY_FAIL);

	in.uptime_ms = POLICY_HEALTHY_MS;
	d = policy_decide(&in);
	assert_int_equal(d.action, POLICY_RESTART);
	assert_int_equal(d.crashes, 1);
	assert_int_equal(d.delay_ms, 5000);

	in.uptime_ms = 10;
	in.batch_seen = true;
	d = policy_decide(&in);
	assert_int_equal(d.action, POLICY_RESTART);
	assert_int_equal(d.crashes, 1);
}

/* Outages and crashes keep separate counts: an outage neither counts as a
 * crash nor resets the crashes, and the other way round. */
static void test_outages_and_crashes_counted_apart(void **state)
{
	struct policy_input in = exit_with(WORKER_EXIT_RETRY);
	struct policy_decision d;

	in.retries = 2;
	in.crashes = 5;
	d = policy_decide(&in);
	assert_int_equal(d.retries, 3);
	assert_int_equal(d.crashes, 5);

	in = killed_by(SIGBUS);
	in.retries = 2;
	in.crashes = 5;
	d = policy_decide(&in);
	assert_int_equal(d.retries, 2);
	assert_int_equal(d.crashes, 6);
	assert_int_equal(d.delay_ms, 5000 * 32);
}

static void test_describe_exit(void **state)
{
	char buf[96];
	struct {
		int code;
		const char *want;
	} cases[] = {
		{ WORKER_EXIT_STOPPED, "exit code 0 (stopped)" },
		{ WORKER_EXIT_RETRY, "exit code 1 (retriable failure)" },
		{ WORKER_EXIT_CONFIG, "exit code 2 (configuration error)" },
		{ WORKER_EXIT_DATA, "exit code 3 (data error)" },
		{ 4, "exit code 4 (unexpected exit)" },
		{ 127, "exit code 127 (unexpected exit)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		policy_describe_exit(false, cases[i].code, 0, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
	policy_describe_exit(true, -1, SIGKILL, buf, sizeof(buf));
	assert_string_equal(buf, "signal 9 (Killed)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requested_stop_is_stopped),
		cmocka_unit_test(test_config_and_data_errors_fail_at_once),
		cmocka_unit_test(test_requested_stop_with_failure_is_stopped_with_message),
		cmocka_unit_test(test_retry_uses_retry_interval),
		cmocka_unit_test(test_retry_interval_at_least_one_second),
		cmocka_unit_test(test_max_retries_gives_up),
		cmocka_unit_test(test_max_retries_zero_is_forever),
		cmocka_unit_test(test_batch_resets_retries),
		cmocka_unit_test(test_crashes),
		cmocka_unit_test(test_backoff_doubles_up_to_the_cap),
		cmocka_unit_test(test_crash_loop),
		cmocka_unit_test(test_healthy_run_resets_crashes),
		cmocka_unit_test(test_outages_and_crashes_counted_apart),
		cmocka_unit_test(test_describe_exit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
