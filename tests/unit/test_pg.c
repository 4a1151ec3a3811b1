/* pg.h without a server: the one SQLSTATE classifier (the sink, check mode
 * and the tool modes all use it), its hints, one-line messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pg.h"
#include "wtypes.h"

static void test_classify(void **state)
{
	static const struct {
		const char *sqlstate;
		int cls;
	} table[] = {
		/* no SQLSTATE, or a malformed one: may go away */
		{ NULL, WERR_RETRY },
		{ "", WERR_RETRY },
		{ "2200", WERR_RETRY },
		{ "220011", WERR_RETRY },
		/* 08 connection exception */
		{ "08000", WERR_RETRY },
		{ "08006", WERR_RETRY },
		{ "08001", WERR_RETRY },
		/* 22 data exception, 23 integrity constraint violation: the rows */
		{ "22001", WERR_DATA },
		{ "22003", WERR_DATA },
		{ "22P02", WERR_DATA },
		{ "23502", WERR_DATA },
		{ "23505", WERR_DATA },
		{ "23514", WERR_DATA },
		/* 54 program limit exceeded: the same input fails again */
		{ "54000", WERR_DATA },
		{ "54001", WERR_DATA },
		{ "54011", WERR_DATA },
		/* credentials, missing database or schema, the statement, privileges,
		 * features: fix the job */
		{ "28000", WERR_FATAL },
		{ "28P01", WERR_FATAL },
		{ "3D000", WERR_FATAL },
		{ "3F000", WERR_FATAL },
		{ "42501", WERR_FATAL },
		{ "42601", WERR_FATAL },
		{ "42703", WERR_FATAL },
		{ "42P01", WERR_FATAL },
		{ "42P10", WERR_FATAL },
		{ "0A000", WERR_FATAL },
		/* resources, shutdown, serialization, locks, internal: retried */
		{ "53100", WERR_RETRY },
		{ "53300", WERR_RETRY },
		{ "57P01", WERR_RETRY },
		{ "57P03", WERR_RETRY },
		{ "40001", WERR_RETRY },
		{ "40P01", WERR_RETRY },
		{ "55P03", WERR_RETRY },
		{ "25P02", WERR_RETRY },
		{ "XX000", WERR_RETRY },
		{ "21000", WERR_RETRY },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		int got = pg_classify(table[i].sqlstate);
		if (got != table[i].cls)
			fail_msg("SQLSTATE %s: class %d, expected %d", table[i].sqlstate ? table[i].sqlstate : "NULL",
				 got, table[i].cls);
	}
}

/* Deadlocks and serialization failures: the batch again, never the rows. */
static void test_retry_batch(void **state)
{
	static const char *const again[] = { "40P01", "40001" };
	static const char *const not_again[] = { NULL, "", "40000", "40002", "40003", "55P03", "08006", "23505",
						 "22001", "40P0", "40P011" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(again) / sizeof(again[0]); i++) {
		assert_true(pg_retry_batch(again[i]));
		assert_int_equal(pg_classify(again[i]), WERR_RETRY);
	}
	for (i = 0; i < sizeof(not_again) / sizeof(not_again[0]); i++)
		if (pg_retry_batch(not_again[i]))
			fail_msg("SQLSTATE %s: retried in place", not_again[i] ? not_again[i] : "NULL");
}

static void test_hint(void **state)
{
	(void)state;
	assert_string_equal(pg_hint("28P01"), "check USER and PASSWORD");
	assert_non_null(strstr(pg_hint("42P10"), "MATCH_COLUMNS"));
	assert_null(pg_hint("22001"));
	assert_null(pg_hint(NULL));
}

static void test_oneline(void **state)
{
	char buf[32];

	(void)state;
	pg_oneline(buf, sizeof(buf), "  ERROR:\n\tcolumn \"x\"\r\n  does not exist  \n");
	assert_string_equal(buf, "ERROR: column \"x\" does not exis");
	pg_oneline(buf, sizeof(buf), "a\n\nb");
	assert_string_equal(buf, "a b");
	pg_oneline(buf, sizeof(buf), NULL);
	assert_string_equal(buf, "");
	pg_oneline(buf, 1, "abc");
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_retry_batch),
		cmocka_unit_test(test_hint),
		cmocka_unit_test(test_oneline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
