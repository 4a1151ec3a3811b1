/* The SQL text of every mode (sqlgen.h), as exact strings: what the sink
 * prepares and what check mode shows a user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "sqlbuf.h"
#include "sqlgen.h"

#define STAGE " FROM pg_temp.streamserver_stage"

static char *quoted(const char *name)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_ident(&sb, name);
	return sqlbuf_take(&sb);
}

static void assert_sql(char *got, const char *want)
{
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* ---- INSERT ---- */

static const struct sqlgen_column insert_stage[] = { { "id", "bigint" }, { "Name", "text" } };
static const struct sqlgen_value insert_values[] = {
	{ "id", NULL, 0, "\"pg_catalog\".\"int8\"", false },
	{ "Name", NULL, 1, "\"pg_catalog\".\"text\"", false },
};

static struct sqlgen_job insert_job(void)
{
	struct sqlgen_job job = { .schema = "public", .table = "orders", .mode = JS_MODE_INSERT, .on_conflict = true };

	job.stage = insert_stage;
	job.nstage = 2;
	job.values = insert_values;
	job.nvalues = 2;
	return job;
}

static void test_insert(void **state)
{
	struct sqlgen_job job = insert_job();
	struct sqlgen_writes w;

	(void)state;
	assert_sql(sqlgen_stage(&job),
		   "CREATE TEMP TABLE streamserver_stage (\"id\" bigint, \"Name\" text) ON COMMIT DELETE ROWS");
	assert_sql(sqlgen_copy(&job), "COPY pg_temp.streamserver_stage (\"id\", \"Name\") FROM STDIN");
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 1);
	assert_null(w.fast);
	assert_string_equal(w.write[0], "INSERT INTO \"public\".\"orders\" (\"id\", \"Name\") SELECT \"id\", \"Name\"" STAGE);
	assert_false(sqlgen_write_counts(&job, 0));
	assert_false(sqlgen_write_updates(&job, 0, w.nwrite));
	assert_string_equal(sqlgen_write_what(&job, 0, w.nwrite), "inserting the batch into the target table");
	sqlgen_writes_free(&w);
	sqlgen_writes_free(&w); /* twice: harmless */
}

static void test_insert_direct_copy(void **state)
{
	struct sqlgen_job job = insert_job();

	(void)state;
	assert_sql(sqlgen_copy_direct(&job), "COPY \"public\".\"orders\" (\"id\", \"Name\") FROM STDIN");
}

static void test_insert_mapping(void **state)
{
	static const struct sqlgen_column stage[] = { { "payload", "jsonb" } };
	static const struct sqlgen_value values[] = {
		{ "id", "(payload->>'id')::bigint", -1, "\"pg_catalog\".\"int8\"", false },
		{ "total", "payload->>'total'", -1, "\"pg_catalog\".\"numeric\"", false },
		{ "note", "NULL", -1, NULL, false },
	};
	struct sqlgen_job job = { .schema = "sales", .table = "orders", .mode = JS_MODE_INSERT, .on_conflict = true };
	struct sqlgen_writes w;

	(void)state;
	job.stage = stage;
	job.nstage = 1;
	job.values = values;
	job.nvalues = 3;
	assert_sql(sqlgen_stage(&job), "CREATE TEMP TABLE streamserver_stage (\"payload\" jsonb) ON COMMIT DELETE ROWS");
	assert_sql(sqlgen_copy(&job), "COPY pg_temp.streamserver_stage (\"payload\") FROM STDIN");
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 1);
	assert_string_equal(w.write[0], "INSERT INTO \"sales\".\"orders\" (\"id\", \"total\", \"note\") SELECT "
					"(payload->>'id')::bigint, payload->>'total', NULL" STAGE);
	sqlgen_writes_free(&w);
	/* INSERT converts by assignment: a value is probed as its own INSERT */
	assert_sql(sqlgen_probe_value(&job, 0),
		   "INSERT INTO \"sales\".\"orders\" (\"id\") SELECT (payload->>'id')::bigint" STAGE);
	/* a column the target lacks (check mode reports it): the value alone */
	assert_sql(sqlgen_probe_value(&job, 2), "SELECT NULL" STAGE);
	assert_sql(sqlgen_probe_type("numeric(10,2)"), "SELECT CAST(NULL AS numeric(10,2))");
}

/* ---- UPDATE and MERGE over id (key), amount, ts ---- */

static const struct sqlgen_column keyed_stage[] = {
	{ "id", "bigint" }, { "amount", "numeric" }, { "ts", "timestamptz" } };
static const int keyed_match[] = { 0 };
static const int keyed_update[] = { 1, 2 };
static const int keyed_order[] = { 2 };

/* values[] is the caller's: ORDER_COLUMNS makes ts a key. */
static struct sqlgen_job keyed_job(enum js_mode mode, bool on_conflict, bool order, struct sqlgen_value *values)
{
	struct sqlgen_job job = { .schema = "public", .table = "accounts", .mode = mode, .on_conflict = on_conflict };
	const struct sqlgen_value v[3] = {
		{ "id", NULL, 0, "\"pg_catalog\".\"int8\"", true },
		{ "amount", NULL, 1, "\"pg_catalog\".\"numeric\"", false },
		{ "ts", NULL, 2, "\"pg_catalog\".\"timestamptz\"", order },
	};

	memcpy(values, v, sizeof(v));
	job.stage = keyed_stage;
	job.nstage = 3;
	job.values = values;
	job.nvalues = 3;
	job.match = keyed_match;
	job.nmatch = 1;
	job.update = keyed_update;
	job.nupdate = 2;
	job.order = keyed_order;
	job.norder = order ? 1 : 0;
	return job;
}

#define DEDUP                                                                                              \
	"SELECT DISTINCT ON (\"id\") \"id\", \"amount\", \"ts\" FROM (SELECT CAST((\"id\") AS "             \
	"\"pg_catalog\".\"int8\") AS \"id\", \"amount\" AS \"amount\", \"ts\" AS \"ts\", streamserver_seq" \
	STAGE ") AS s ORDER BY \"id\", streamserver_seq DESC"
#define DEDUP_ORDERED                                                                                      \
	"SELECT DISTINCT ON (\"id\") \"id\", \"amount\", \"ts\" FROM (SELECT CAST((\"id\") AS "             \
	"\"pg_catalog\".\"int8\") AS \"id\", \"amount\" AS \"amount\", CAST((\"ts\") AS "                   \
	"\"pg_catalog\".\"timestamptz\") AS \"ts\", streamserver_seq" STAGE                                 \
	") AS s ORDER BY \"id\", \"ts\" DESC NULLS LAST, streamserver_seq DESC"
#define UPDATE_HEAD "UPDATE \"public\".\"accounts\" AS t SET \"amount\" = d.\"amount\", \"ts\" = d.\"ts\" FROM ("
#define UPDATE_TAIL ") AS d WHERE t.\"id\" = d.\"id\""
#define UPSERT_HEAD                                                                                        \
	"WITH w AS (INSERT INTO \"public\".\"accounts\" (\"id\", \"amount\", \"ts\") SELECT d.\"id\", "    \
	"d.\"amount\", d.\"ts\" FROM ("
#define UPSERT_TAIL                                                                                        \
	") AS d ORDER BY d.\"id\" ON CONFLICT (\"id\") DO UPDATE SET \"amount\" = EXCLUDED.\"amount\", \"ts\" = "            \
	"EXCLUDED.\"ts\" RETURNING xmax <> 0 AS updated) SELECT count(*), count(*) FILTER (WHERE updated) "  \
	"FROM w"

static void test_update(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_UPDATE, true, false, values);
	struct sqlgen_writes w;

	(void)state;
	assert_sql(sqlgen_stage(&job), "CREATE TEMP TABLE streamserver_stage (\"id\" bigint, \"amount\" numeric, "
				       "\"ts\" timestamptz, streamserver_seq bigserial) ON COMMIT DELETE ROWS");
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 1);
	assert_null(w.fast);
	assert_string_equal(w.write[0], UPDATE_HEAD DEDUP UPDATE_TAIL);
	assert_false(sqlgen_write_counts(&job, 0));
	assert_true(sqlgen_write_updates(&job, 0, w.nwrite));
	assert_string_equal(sqlgen_write_what(&job, 0, w.nwrite), "updating the target table from the batch");
	sqlgen_writes_free(&w);
	/* a key is probed as it is compared, the others through the subquery */
	assert_sql(sqlgen_probe_value(&job, 0), "SELECT CAST((\"id\") AS \"pg_catalog\".\"int8\")" STAGE);
	assert_sql(sqlgen_probe_value(&job, 1),
		   "INSERT INTO \"public\".\"accounts\" (\"amount\") SELECT v FROM (SELECT \"amount\" AS v" STAGE
		   ") AS s");
}

/* On PostgreSQL tables: the rows locked first, in key order, by the source. */
static void test_update_lock_rows(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_UPDATE, true, false, values);
	struct sqlgen_writes w;

	(void)state;
	job.lock_rows = true;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_string_equal(w.write[0], UPDATE_HEAD "SELECT d.\"id\", d.\"amount\", d.\"ts\" FROM (" DEDUP
					") AS d JOIN \"public\".\"accounts\" AS k ON k.\"id\" = d.\"id\" "
					"ORDER BY d.\"id\" FOR UPDATE OF k" UPDATE_TAIL);
	sqlgen_writes_free(&w);
	/* MERGE before 9.5 on a 9.5 server (tests of that path): the same UPDATE */
	job = keyed_job(JS_MODE_MERGE, false, false, values);
	job.lock_rows = true;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 2);
	assert_non_null(strstr(w.write[0], "ORDER BY d.\"id\" FOR UPDATE OF k) AS d WHERE"));
	assert_non_null(strstr(w.write[1], "WHERE NOT EXISTS"));
	assert_null(strstr(w.write[1], "FOR UPDATE"));
	sqlgen_writes_free(&w);
	/* the upsert locks by inserting, in its ORDER BY: no sub-select */
	job = keyed_job(JS_MODE_MERGE, true, false, values);
	job.lock_rows = true;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_string_equal(w.write[0], UPSERT_HEAD DEDUP UPSERT_TAIL);
	sqlgen_writes_free(&w);
}

static void test_update_order_columns(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_UPDATE, true, true, values);
	struct sqlgen_writes w;

	(void)state;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_string_equal(w.write[0], UPDATE_HEAD DEDUP_ORDERED UPDATE_TAIL);
	sqlgen_writes_free(&w);
	assert_sql(sqlgen_probe_order(&job, 0),
		   "SELECT CAST((\"ts\") AS \"pg_catalog\".\"timestamptz\")" STAGE " ORDER BY 1 DESC");
}

static void test_update_nothing_to_update(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_UPDATE, true, false, values);
	struct sqlgen_writes w;

	(void)state;
	job.nupdate = 0;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 0);
	sqlgen_writes_free(&w);
}

static void test_merge(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_MERGE, true, false, values);
	struct sqlgen_writes w;

	(void)state;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 1);
	/* with dedup: one row per key */
	assert_string_equal(w.write[0], UPSERT_HEAD DEDUP UPSERT_TAIL);
	/* without: the same values, keys converted the same way */
	assert_non_null(w.fast);
	assert_string_equal(w.fast, UPSERT_HEAD "SELECT CAST((\"id\") AS \"pg_catalog\".\"int8\") AS \"id\", "
						"\"amount\" AS \"amount\", \"ts\" AS \"ts\"" STAGE UPSERT_TAIL);
	assert_true(sqlgen_write_counts(&job, 0));
	assert_string_equal(sqlgen_write_what(&job, 0, w.nwrite), "merging the batch into the target table");
	sqlgen_writes_free(&w);
}

static void test_merge_order_columns(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_MERGE, true, true, values);
	struct sqlgen_writes w;

	(void)state;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_string_equal(w.write[0], UPSERT_HEAD DEDUP_ORDERED UPSERT_TAIL);
	assert_string_equal(w.fast, UPSERT_HEAD "SELECT CAST((\"id\") AS \"pg_catalog\".\"int8\") AS \"id\", "
						"\"amount\" AS \"amount\", CAST((\"ts\") AS "
						"\"pg_catalog\".\"timestamptz\") AS \"ts\"" STAGE UPSERT_TAIL);
	sqlgen_writes_free(&w);
}

static void test_merge_do_nothing(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_MERGE, true, false, values);
	struct sqlgen_writes w;

	(void)state;
	job.nupdate = 0;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 1);
	/* DO NOTHING never fails on a repeated key: no statement without dedup */
	assert_null(w.fast);
	assert_string_equal(w.write[0], UPSERT_HEAD DEDUP ") AS d ORDER BY d.\"id\" ON CONFLICT (\"id\") DO NOTHING RETURNING xmax <> 0 "
						       "AS updated) SELECT count(*), count(*) FILTER (WHERE updated) "
						       "FROM w");
	sqlgen_writes_free(&w);
}

/* Before 9.5 (Greenplum 6): no ON CONFLICT; UPDATE, then INSERT ... WHERE NOT EXISTS. */
static void test_merge_pre95(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_MERGE, false, true, values);
	struct sqlgen_writes w;

	(void)state;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 2);
	assert_null(w.fast);
	assert_string_equal(w.write[0], UPDATE_HEAD DEDUP_ORDERED UPDATE_TAIL);
	assert_string_equal(w.write[1], "INSERT INTO \"public\".\"accounts\" (\"id\", \"amount\", \"ts\") SELECT d.\"id\", "
					"d.\"amount\", d.\"ts\" FROM (" DEDUP_ORDERED
					") AS d WHERE NOT EXISTS (SELECT 1 FROM \"public\".\"accounts\" AS t WHERE "
					"t.\"id\" = d.\"id\") ORDER BY d.\"id\"");
	assert_false(sqlgen_write_counts(&job, 0));
	assert_true(sqlgen_write_updates(&job, 0, w.nwrite));
	assert_false(sqlgen_write_updates(&job, 1, w.nwrite));
	assert_string_equal(sqlgen_write_what(&job, 0, w.nwrite), "updating the target table from the batch");
	assert_string_equal(sqlgen_write_what(&job, 1, w.nwrite), "merging the batch into the target table");
	sqlgen_writes_free(&w);

	/* nothing to update: the INSERT alone */
	job.nupdate = 0;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 1);
	assert_non_null(strstr(w.write[0], "WHERE NOT EXISTS"));
	sqlgen_writes_free(&w);
}

/* ---- DELETE_ON_TOMBSTONE ---- */

#define TDEDUP                                                                                             \
	"SELECT DISTINCT ON (\"id\") \"id\", \"amount\", \"ts\", streamserver_tombstone FROM (SELECT "     \
	"CAST((\"id\") AS \"pg_catalog\".\"int8\") AS \"id\", \"amount\" AS \"amount\", \"ts\" AS \"ts\", " \
	"streamserver_tombstone, streamserver_seq" STAGE ") AS s ORDER BY \"id\", streamserver_seq DESC"

/* The latest message per key wins, a row or a tombstone: rows go to the
 * upsert, tombstones to the DELETE that follows; no statement without dedup. */
static void test_merge_tombstones(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_MERGE, true, false, values);
	struct sqlgen_writes w;

	(void)state;
	job.tombstones = true;
	assert_sql(sqlgen_stage(&job), "CREATE TEMP TABLE streamserver_stage (\"id\" bigint, \"amount\" numeric, "
				       "\"ts\" timestamptz, streamserver_tombstone boolean NOT NULL, "
				       "streamserver_seq bigserial) ON COMMIT DELETE ROWS");
	assert_sql(sqlgen_copy(&job),
		   "COPY pg_temp.streamserver_stage (\"id\", \"amount\", \"ts\", streamserver_tombstone) FROM STDIN");
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 2);
	assert_null(w.fast);
	assert_string_equal(w.write[0], UPSERT_HEAD TDEDUP ") AS d WHERE NOT d.streamserver_tombstone ORDER BY "
					"d.\"id\" ON CONFLICT (\"id\") DO UPDATE SET \"amount\" = EXCLUDED.\"amount\", "
					"\"ts\" = EXCLUDED.\"ts\" RETURNING xmax <> 0 AS updated) SELECT count(*), "
					"count(*) FILTER (WHERE updated) FROM w");
	assert_string_equal(w.write[1], "DELETE FROM \"public\".\"accounts\" AS t USING (" TDEDUP
					") AS d WHERE t.\"id\" = d.\"id\" AND d.streamserver_tombstone");
	assert_true(sqlgen_write_counts(&job, 0));
	assert_false(sqlgen_write_counts(&job, 1));
	assert_false(sqlgen_write_deletes(&job, 0, w.nwrite));
	assert_true(sqlgen_write_deletes(&job, 1, w.nwrite));
	assert_false(sqlgen_write_updates(&job, 1, w.nwrite));
	assert_string_equal(sqlgen_write_what(&job, 0, w.nwrite), "merging the batch into the target table");
	assert_non_null(strstr(sqlgen_write_what(&job, 1, w.nwrite), "deleting"));
	sqlgen_writes_free(&w);

	/* Without ON CONFLICT: UPDATE, INSERT ... WHERE NOT EXISTS, DELETE. */
	job.on_conflict = false;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 3);
	assert_string_equal(w.write[0], UPDATE_HEAD TDEDUP UPDATE_TAIL " AND NOT d.streamserver_tombstone");
	assert_non_null(strstr(w.write[1], ") AS d WHERE NOT d.streamserver_tombstone AND NOT EXISTS (SELECT 1"));
	assert_true(sqlgen_write_updates(&job, 0, w.nwrite));
	assert_false(sqlgen_write_updates(&job, 1, w.nwrite));
	assert_true(sqlgen_write_deletes(&job, 2, w.nwrite));
	assert_string_equal(sqlgen_write_what(&job, 0, w.nwrite), "updating the target table from the batch");
	assert_string_equal(sqlgen_write_what(&job, 1, w.nwrite), "merging the batch into the target table");
	sqlgen_writes_free(&w);
}

/* With ORDER_COLUMNS a tombstone (its ORDER_COLUMNS NULL) would always lose:
 * the rows before a key's latest tombstone are cut off, and among the rest a
 * row comes before the tombstone. */
static void test_merge_tombstones_ordered(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_MERGE, true, true, values);
	struct sqlgen_writes w;

	(void)state;
	job.tombstones = true;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 2);
	assert_string_equal(w.write[1],
			    "DELETE FROM \"public\".\"accounts\" AS t USING (SELECT DISTINCT ON (\"id\") \"id\", "
			    "\"amount\", \"ts\", streamserver_tombstone FROM (SELECT s.*, max(CASE WHEN "
			    "s.streamserver_tombstone THEN s.streamserver_seq END) OVER (PARTITION BY \"id\") AS "
			    "streamserver_cut FROM (SELECT CAST((\"id\") AS \"pg_catalog\".\"int8\") AS \"id\", "
			    "\"amount\" AS \"amount\", CAST((\"ts\") AS \"pg_catalog\".\"timestamptz\") AS \"ts\", "
			    "streamserver_tombstone, streamserver_seq" STAGE ") AS s) AS s WHERE s.streamserver_cut "
			    "IS NULL OR s.streamserver_seq >= s.streamserver_cut ORDER BY \"id\", "
			    "streamserver_tombstone, \"ts\" DESC NULLS LAST, streamserver_seq DESC) AS d WHERE "
			    "t.\"id\" = d.\"id\" AND d.streamserver_tombstone");
	sqlgen_writes_free(&w);
}

/* UPDATE with lock_rows: the DELETE locks its rows in key order too. */
static void test_update_tombstones(void **state)
{
	struct sqlgen_value values[3];
	struct sqlgen_job job = keyed_job(JS_MODE_UPDATE, true, false, values);
	struct sqlgen_writes w;

	(void)state;
	job.tombstones = true;
	job.lock_rows = true;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 2);
	assert_string_equal(w.write[1], "DELETE FROM \"public\".\"accounts\" AS t USING (SELECT d.\"id\", "
					"d.\"amount\", d.\"ts\", d.streamserver_tombstone FROM (" TDEDUP
					") AS d JOIN \"public\".\"accounts\" AS k ON k.\"id\" = d.\"id\" ORDER BY d.\"id\" "
					"FOR UPDATE OF k) AS d WHERE t.\"id\" = d.\"id\" AND d.streamserver_tombstone");
	assert_true(sqlgen_write_updates(&job, 0, w.nwrite));
	assert_false(sqlgen_write_updates(&job, 1, w.nwrite));
	assert_true(sqlgen_write_deletes(&job, 1, w.nwrite));
	sqlgen_writes_free(&w);

	/* nothing to update: the DELETE alone */
	job.nupdate = 0;
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_int_equal(w.nwrite, 1);
	assert_true(sqlgen_write_deletes(&job, 0, w.nwrite));
	sqlgen_writes_free(&w);
}

/* ---- identifiers ---- */

static void test_odd_names(void **state)
{
	static const struct sqlgen_column stage[] = { { "We\"ird", "text" }, { "UPPER", "int" }, { "名前", "text" } };
	static const struct sqlgen_value values[] = {
		{ "We\"ird", NULL, 0, "\"pg_catalog\".\"text\"", true },
		{ "UPPER", NULL, 1, "\"pg_catalog\".\"int4\"", false },
		{ "名前", NULL, 2, "\"pg_catalog\".\"text\"", false },
	};
	static const int match[] = { 0 }, update[] = { 1, 2 };
	struct sqlgen_job job = { .schema = "My\"Schema", .table = "Ördersätze", .mode = JS_MODE_UPDATE };
	struct sqlgen_writes w;

	(void)state;
	job.stage = stage;
	job.nstage = 3;
	job.values = values;
	job.nvalues = 3;
	job.match = match;
	job.nmatch = 1;
	job.update = update;
	job.nupdate = 2;
	assert_sql(sqlgen_copy(&job), "COPY pg_temp.streamserver_stage (\"We\"\"ird\", \"UPPER\", \"名前\") FROM STDIN");
	assert_sql(sqlgen_copy_direct(&job),
		   "COPY \"My\"\"Schema\".\"Ördersätze\" (\"We\"\"ird\", \"UPPER\", \"名前\") FROM STDIN");
	assert_int_equal(sqlgen_writes_build(&job, &w), 0);
	assert_string_equal(w.write[0],
			    "UPDATE \"My\"\"Schema\".\"Ördersätze\" AS t SET \"UPPER\" = d.\"UPPER\", \"名前\" = d.\"名前\" "
			    "FROM (SELECT DISTINCT ON (\"We\"\"ird\") \"We\"\"ird\", \"UPPER\", \"名前\" FROM (SELECT "
			    "CAST((\"We\"\"ird\") AS \"pg_catalog\".\"text\") AS \"We\"\"ird\", \"UPPER\" AS \"UPPER\", "
			    "\"名前\" AS \"名前\", streamserver_seq" STAGE ") AS s ORDER BY \"We\"\"ird\", "
			    "streamserver_seq DESC) AS d WHERE t.\"We\"\"ird\" = d.\"We\"\"ird\"");
	sqlgen_writes_free(&w);
}

/* The conn-free quoting is what libpq's PQescapeIdentifier produces for names
 * in valid UTF-8 (a connection that never opened is enough for libpq: it
 * quotes without the server). */
static void test_quote_as_libpq(void **state)
{
	static const char *const names[] = {
		"orders", "Orders", "UPPER", "a b", "we\"ird", "\"", "\"\"x\"", "", "back\\slash", "it's",
		"Ördersätze", "名前", "emoji😀", "tab\tname", "semi;colon", "a.b",
	};
	PGconn *pg = PQconnectdb("host=/nonexistent/streamserver-test port=1 connect_timeout=1");
	size_t i;

	(void)state;
	assert_non_null(pg);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *ours = quoted(names[i]);
		char *theirs = PQescapeIdentifier(pg, names[i], strlen(names[i]));

		assert_non_null(ours);
		assert_non_null(theirs);
		assert_string_equal(ours, theirs);
		free(ours);
		PQfreemem(theirs);
	}
	PQfinish(pg);
}

static void test_sqlbuf_cap(void **state)
{
	struct sqlbuf sb = { 0 };
	char *chunk = malloc(SQLBUF_MAX / 4 + 1);

	(void)state;
	assert_non_null(chunk);
	memset(chunk, 'x', SQLBUF_MAX / 4);
	chunk[SQLBUF_MAX / 4] = '\0';
	sqlbuf_add(&sb, chunk);
	sqlbuf_add(&sb, chunk);
	sqlbuf_add(&sb, chunk);
	assert_false(sb.failed);
	sqlbuf_add(&sb, chunk); /* the fourth reaches the cap with its NUL */
	sqlbuf_add(&sb, "more"); /* the failure sticks */
	assert_null(sqlbuf_take(&sb));
	assert_null(sb.s);
	free(chunk);
}

/* One batch as one query string: the rows first, then the progress, COMMIT
 * last unless left out; asynchronous commit only when asked for. */
static void test_batch(void **state)
{
	const char *writes[2] = { "ss_write_0", "ss_write_1" };
	char *sql;

	(void)state;
	sql = sqlgen_batch("COPY t FROM STDIN", "EXECUTE ss_progress_0('j', 't', '{0}', '{5}', '{3}')", true, NULL,
			   0, 1, NULL, false);
	assert_string_equal(sql, "BEGIN; SET LOCAL synchronous_commit = off; SAVEPOINT ss_part; COPY t FROM STDIN; "
				 "EXECUTE ss_progress_0('j', 't', '{0}', '{5}', '{3}')");
	free(sql);
	sql = sqlgen_batch("COPY pg_temp.s FROM STDIN", "", false, writes, 2, 1, "DELETE FROM pg_temp.s", true);
	assert_string_equal(sql, "BEGIN; SAVEPOINT ss_part; COPY pg_temp.s FROM STDIN; EXECUTE ss_write_0; "
				 "EXECUTE ss_write_1; COMMIT");
	free(sql);
	sql = sqlgen_batch("COPY pg_temp.s FROM STDIN", NULL, false, writes, 1, 1, NULL, true);
	assert_string_equal(sql, "BEGIN; SAVEPOINT ss_part; COPY pg_temp.s FROM STDIN; EXECUTE ss_write_0; COMMIT");
	free(sql);
	/* Three segments of one transaction: the staging table emptied between
	 * them, every write after its own COPY, the progress once at the end. */
	sql = sqlgen_batch("COPY pg_temp.s FROM STDIN", "EXECUTE p", true, writes, 1, 3, "DELETE FROM pg_temp.s",
			   true);
	assert_string_equal(sql, "BEGIN; SET LOCAL synchronous_commit = off; SAVEPOINT ss_part; "
				 "COPY pg_temp.s FROM STDIN; EXECUTE ss_write_0; "
				 "DELETE FROM pg_temp.s; COPY pg_temp.s FROM STDIN; EXECUTE ss_write_0; "
				 "DELETE FROM pg_temp.s; COPY pg_temp.s FROM STDIN; EXECUTE ss_write_0; EXECUTE p; COMMIT");
	free(sql);
	/* COPY straight into the target: nothing between. */
	sql = sqlgen_batch("COPY t FROM STDIN", NULL, false, NULL, 0, 2, NULL, true);
	assert_string_equal(sql, "BEGIN; SAVEPOINT ss_part; COPY t FROM STDIN; COPY t FROM STDIN; COMMIT");
	free(sql);
}

static void test_segments(void **state)
{
	size_t lo, hi;

	(void)state;
	assert_int_equal(sqlgen_segments(500, 500), 1);
	assert_int_equal(sqlgen_segments(300, 500), 1);
	assert_int_equal(sqlgen_segments(10, 0), 1);
	sqlgen_segment(300, 500, 0, &lo, &hi);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 300);
	assert_int_equal(sqlgen_segments(10000, 500), 20);
	assert_int_equal(sqlgen_segments(1201, 500), 3);
	sqlgen_segment(1201, 500, 1, &lo, &hi);
	assert_int_equal(lo, 500);
	assert_int_equal(hi, 1000);
	sqlgen_segment(1201, 500, 2, &lo, &hi);
	assert_int_equal(lo, 1000);
	assert_int_equal(hi, 1201);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert),
		cmocka_unit_test(test_insert_direct_copy),
		cmocka_unit_test(test_insert_mapping),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_update_lock_rows),
		cmocka_unit_test(test_update_order_columns),
		cmocka_unit_test(test_update_nothing_to_update),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_merge_order_columns),
		cmocka_unit_test(test_merge_do_nothing),
		cmocka_unit_test(test_merge_pre95),
		cmocka_unit_test(test_merge_tombstones),
		cmocka_unit_test(test_merge_tombstones_ordered),
		cmocka_unit_test(test_update_tombstones),
		cmocka_unit_test(test_odd_names),
		cmocka_unit_test(test_quote_as_libpq),
		cmocka_unit_test(test_sqlbuf_cap),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_segments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
