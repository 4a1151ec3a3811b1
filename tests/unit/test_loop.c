/* How long one poll of the worker's consumer waits: KAFKA.POLL.TIMEOUT,
 * within what the loop must do on time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loop.h"

/* Idle (no batch open, none in flight): POLL.TIMEOUT below the loop's
 * 100 ms step is the wait; above it the step is (a stop and the lag
 * reports are not held up for the seed's default 5000). */
static void test_idle(void **state)
{
	assert_int_equal(loop_poll_wait_ms(5000, false, false, 0), 100);
	assert_int_equal(loop_poll_wait_ms(100, false, false, 0), 100);
	assert_int_equal(loop_poll_wait_ms(40, false, false, 0), 40);
	assert_int_equal(loop_poll_wait_ms(1, false, false, 0), 1);
	assert_int_equal(loop_poll_wait_ms(0, false, false, 0), 0);
}

/* A batch open: never past its MINIMAL_INTERVAL; POLL.TIMEOUT still caps. */
static void test_batch_open(void **state)
{
	assert_int_equal(loop_poll_wait_ms(5000, false, true, 30), 30);
	assert_int_equal(loop_poll_wait_ms(5000, false, true, 900), 100);
	assert_int_equal(loop_poll_wait_ms(10, false, true, 30), 10);
	assert_int_equal(loop_poll_wait_ms(5000, false, true, 0), 0);
	assert_int_equal(loop_poll_wait_ms(5000, false, true, -3), 0);
	/* the batch's time is what matters only while rows are open */
	assert_int_equal(loop_poll_wait_ms(5000, false, false, 30), 100);
}

/* A batch being written: 5 ms steps, so its commit is reported soon. */
static void test_in_flight(void **state)
{
	assert_int_equal(loop_poll_wait_ms(5000, true, false, 0), 5);
	assert_int_equal(loop_poll_wait_ms(5000, true, true, 2), 2);
	assert_int_equal(loop_poll_wait_ms(3, true, true, 50), 3);
	assert_int_equal(loop_poll_wait_ms(0, true, false, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_batch_open),
		cmocka_unit_test(test_in_flight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
