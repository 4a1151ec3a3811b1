/* controller/placement.c: the same facts give the same answer, balanced to
 * within one task, draining controllers emptied, little movement when a
 * controller comes or goes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "placement.h"

#define MAXT 64

static size_t make_tasks(struct placement_task *t, int jobs, int per_job)
{
	size_t n = 0;

	for (int j = 1; j <= jobs; j++)
		for (int k = 0; k < per_job; k++) {
			t[n].job_id = j * 7;
			t[n].task = k;
			t[n].owner = -2;
			n++;
		}
	return n;
}

static void loads(const struct placement_task *t, size_t n, size_t nm, size_t *load)
{
	memset(load, 0, nm * sizeof(*load));
	for (size_t i = 0; i < n; i++) {
		assert_true(t[i].owner >= 0 && (size_t)t[i].owner < nm);
		load[t[i].owner]++;
	}
}

static void test_balanced_within_one(void **state)
{
	struct placement_member m[] = { { "ctl-a", false }, { "ctl-b", false }, { "ctl-c", false } };
	struct placement_task t[MAXT];
	size_t load[3];

	(void)state;
	for (int per = 1; per <= 5; per++) {
		for (int jobs = 1; jobs <= 6; jobs++) {
			size_t n = make_tasks(t, jobs, per), lo = SIZE_MAX, hi = 0;

			assert_int_equal(placement_compute(m, 3, t, n), 0);
			loads(t, n, 3, load);
			for (int i = 0; i < 3; i++) {
				lo = load[i] < lo ? load[i] : lo;
				hi = load[i] > hi ? load[i] : hi;
			}
			assert_true(hi - lo <= 1);
		}
	}
}

static void test_same_facts_same_answer(void **state)
{
	struct placement_member m1[] = { { "x1", false }, { "x2", false }, { "x3", false } };
	struct placement_member m2[] = { { "x3", false }, { "x1", false }, { "x2", false } };
	struct placement_task a[MAXT], b[MAXT];
	size_t n = make_tasks(a, 4, 3);

	(void)state;
	make_tasks(b, 4, 3);
	/* the second list of tasks in another order */
	for (size_t i = 0; i < n / 2; i++) {
		struct placement_task tmp = b[i];
		b[i] = b[n - 1 - i];
		b[n - 1 - i] = tmp;
	}
	assert_int_equal(placement_compute(m1, 3, a, n), 0);
	assert_int_equal(placement_compute(m2, 3, b, n), 0);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (a[i].job_id == b[j].job_id && a[i].task == b[j].task)
				assert_string_equal(m1[a[i].owner].name, m2[b[j].owner].name);
}

static void test_draining_emptied(void **state)
{
	struct placement_member m[] = { { "a", false }, { "b", true }, { "c", false } };
	struct placement_task t[MAXT];
	size_t n = make_tasks(t, 3, 3), load[3];

	(void)state;
	assert_int_equal(placement_compute(m, 3, t, n), 0);
	loads(t, n, 3, load);
	assert_int_equal(load[1], 0);
	assert_true(load[0] + load[2] == n);
}

static void test_all_draining_keeps_running(void **state)
{
	struct placement_member m[] = { { "a", true }, { "b", true } };
	struct placement_task t[MAXT];
	size_t n = make_tasks(t, 2, 2), load[2];

	(void)state;
	assert_int_equal(placement_compute(m, 2, t, n), 0);
	loads(t, n, 2, load);
	assert_int_equal(load[0] + load[1], n);
}

static void test_no_members_no_owner(void **state)
{
	struct placement_task t[MAXT];
	size_t n = make_tasks(t, 1, 3);

	(void)state;
	assert_int_equal(placement_compute(NULL, 0, t, n), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(t[i].owner, -1);
}

/* A fourth controller joins: it takes about a quarter, and the tasks that
 * move all move to it. */
static void test_join_moves_little(void **state)
{
	struct placement_member m3[] = { { "h1", false }, { "h2", false }, { "h3", false } };
	struct placement_member m4[] = { { "h1", false }, { "h2", false }, { "h3", false }, { "h4", false } };
	struct placement_task a[MAXT], b[MAXT];
	size_t n = make_tasks(a, 12, 4), moved = 0, to_new = 0;

	(void)state;
	make_tasks(b, 12, 4);
	assert_int_equal(placement_compute(m3, 3, a, n), 0);
	assert_int_equal(placement_compute(m4, 4, b, n), 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(m3[a[i].owner].name, m4[b[i].owner].name) != 0) {
			moved++;
			to_new += b[i].owner == 3;
		}
	}
	assert_int_equal(to_new, n / 4);
	/* the cap may move a few more, never most */
	assert_true(moved <= n / 2);
}

/* A controller leaves: its tasks spread over the others, theirs stay. */
static void test_leave_keeps_others(void **state)
{
	struct placement_member m3[] = { { "h1", false }, { "h2", false }, { "h3", false } };
	struct placement_member m2[] = { { "h1", false }, { "h3", false } };
	struct placement_task a[MAXT], b[MAXT];
	size_t n = make_tasks(a, 10, 3), kept = 0, stayed = 0;

	(void)state;
	make_tasks(b, 10, 3);
	assert_int_equal(placement_compute(m3, 3, a, n), 0);
	assert_int_equal(placement_compute(m2, 2, b, n), 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(m3[a[i].owner].name, "h2") == 0)
			continue;
		kept++;
		stayed += strcmp(m3[a[i].owner].name, m2[b[i].owner].name) == 0;
	}
	assert_true(stayed * 10 >= kept * 7);
}

static void test_score_spreads(void **state)
{
	(void)state;
	assert_true(placement_score("a", 1, 0) != placement_score("a", 1, 1));
	assert_true(placement_score("a", 1, 0) != placement_score("b", 1, 0));
	assert_true(placement_score("a", 1, 0) == placement_score("a", 1, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_balanced_within_one),   cmocka_unit_test(test_same_facts_same_answer),
		cmocka_unit_test(test_draining_emptied),      cmocka_unit_test(test_all_draining_keeps_running),
		cmocka_unit_test(test_no_members_no_owner),   cmocka_unit_test(test_join_moves_little),
		cmocka_unit_test(test_leave_keeps_others),    cmocka_unit_test(test_score_spreads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
