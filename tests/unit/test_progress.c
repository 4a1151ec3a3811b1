/* The progress and error tables' statements (progress.h), as exact strings:
 * one DDL, one lock key, the fenced and plain writes, for servers with and
 * without ON CONFLICT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobspec.h"
#include "progress.h"

static void test_writes(void **state)
{
	static const struct {
		bool fenced, on_conflict;
		size_t which;
		const char *sql;
	} table[] = {
		{ false, false, 0,
		  "UPDATE \"m\"\"s\".streamserver_progress AS t SET next_offset = u.o, updated_at = now() FROM unnest($3::int[], $4::bigint[]) AS u(p, o) WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p" },
		{ false, false, 1,
		  "INSERT INTO \"m\"\"s\".streamserver_progress (job_name, topic, partition, next_offset) SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o) WHERE NOT EXISTS (SELECT 1 FROM \"m\"\"s\".streamserver_progress AS t WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p)" },
		{ false, true, 0,
		  "INSERT INTO \"m\"\"s\".streamserver_progress (job_name, topic, partition, next_offset) SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o) ON CONFLICT (job_name, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()" },
		{ true, false, 0,
		  "UPDATE \"m\"\"s\".streamserver_progress AS t SET next_offset = u.o, updated_at = now() FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS u(p, o, e) WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p AND t.next_offset = u.e RETURNING t.partition" },
		{ true, false, 1,
		  "INSERT INTO \"m\"\"s\".streamserver_progress (job_name, topic, partition, next_offset) SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o) RETURNING partition" },
		{ true, true, 0,
		  "UPDATE \"m\"\"s\".streamserver_progress AS t SET next_offset = u.o, updated_at = now() FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS u(p, o, e) WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p AND t.next_offset = u.e RETURNING t.partition" },
		{ true, true, 1,
		  "INSERT INTO \"m\"\"s\".streamserver_progress (job_name, topic, partition, next_offset) SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o) ON CONFLICT DO NOTHING RETURNING partition" },
	};
	size_t i;

	(void)state;
	assert_int_equal(progress_nwrite(false, true), 1);
	assert_int_equal(progress_nwrite(false, false), 2);
	assert_int_equal(progress_nwrite(true, true), 2);
	assert_int_equal(progress_nwrite(true, false), 2);
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *sql = progress_sql_write("m\"s", table[i].fenced, table[i].on_conflict, table[i].which);
		assert_non_null(sql);
		assert_string_equal(sql, table[i].sql);
		free(sql);
	}
}

static void test_execute(void **state)
{
	const char *lit[5] = { "'job'", "'to''pic'", "'{0,3}'", "'{10,20}'", "'{5,7}'" };
	char *sql;

	(void)state;
	sql = progress_sql_execute("ss_progress_0", lit, 5);
	assert_string_equal(sql, "EXECUTE ss_progress_0('job', 'to''pic', '{0,3}', '{10,20}', '{5,7}')");
	free(sql);
	sql = progress_sql_execute("ss_progress_1", lit, 4);
	assert_string_equal(sql, "EXECUTE ss_progress_1('job', 'to''pic', '{0,3}', '{10,20}')");
	free(sql);
}

static void test_create(void **state)
{
	char *sql;

	(void)state;
	sql = progress_sql_create("m\"s", PROGRESS_TABLE);
	assert_non_null(sql);
	assert_string_equal(sql, "SELECT pg_advisory_xact_lock(7411953); CREATE TABLE IF NOT EXISTS \"m\"\"s\".streamserver_progress (job_name text, topic text, partition int, next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job_name, topic, partition))");
	free(sql);
	sql = progress_sql_create("m", PROGRESS_ERRORS_TABLE);
	assert_non_null(sql);
	assert_string_equal(sql, "SELECT pg_advisory_xact_lock(7411953); CREATE TABLE IF NOT EXISTS \"m\".streamserver_errors (id bigserial PRIMARY KEY, job_name text NOT NULL, topic text NOT NULL, partition int NOT NULL, \"offset\" bigint NOT NULL, key bytea, value bytea, error text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())");
	free(sql);
	assert_null(progress_sql_create("m", "other"));
}

static void test_schema(void **state)
{
	struct jobspec spec;

	(void)state;
	memset(&spec, 0, sizeof(spec));
	assert_string_equal(progress_schema(&spec), "public");
	spec.schema = "sales";
	assert_string_equal(progress_schema(&spec), "sales");
	spec.metadata_schema = "meta";
	assert_string_equal(progress_schema(&spec), "meta");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes),
		cmocka_unit_test(test_execute),
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_schema),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
