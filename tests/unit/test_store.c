/* The controller's store: what the API and the supervisor rely on.
 *
 * Runs against SQLite (a fresh data directory per test) by default, against
 * PostgreSQL when STREAMSERVER_TEST_STORE holds a postgresql:// URI: each
 * test then gets a schema of its own (schema=...), dropped after it.  The
 * tests of the SQLite file itself (its mode, its old versions) run only on
 * SQLite, those of the PostgreSQL schema only there; every other test runs
 * on both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>

#include "jobspec.h"
#include "store.h"

#define SECRET "s3cr3t-Pa55"

struct fixture {
	char dir[256];
	char *uri;        /* NULL: SQLite in dir */
	char schema[64];  /* PostgreSQL: this test's own */
	struct store *st;
};

/* The PostgreSQL URI to test against, NULL for SQLite. */
static const char *pg_base;

static void pg_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Runs sql on the test database (not in a test's schema); 0 on success. */
static int pg_run(const char *sql, char *out, size_t outlen)
{
	PGconn *pg = PQconnectdb(pg_base);
	PGresult *res = NULL;
	int rc = -1;

	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(pg));
		goto out;
	}
	PQsetNoticeProcessor(pg, pg_quiet, NULL); /* DROP SCHEMA ... CASCADE lists the tables */
	res = PQexec(pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(res));
		goto out;
	}
	if (out != NULL)
		snprintf(out, outlen, "%s",
			 PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	rc = 0;
out:
	PQclear(res);
	PQfinish(pg);
	return rc;
}

static int open_store(struct fixture *fx, struct store **st, char *err, size_t errlen)
{
	return store_open_uri(fx->dir, fx->uri, st, err, errlen);
}

static void remove_dir(const char *dir)
{
	static const char *const files[] = { "streamserver.db", "streamserver.db-wal",
					     "streamserver.db-shm", "streamserver.db-journal",
					     "streamserver.lock" };
	char path[512];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char tmpl[] = "/tmp/test_store.XXXXXX";
	char err[512];

	if (fx == NULL || mkdtemp(tmpl) == NULL)
		return -1;
	/* A directory that does not exist yet: store_open creates it. */
	snprintf(fx->dir, sizeof(fx->dir), "%s/data", tmpl);
	if (pg_base != NULL) {
		static int seq;
		size_t len = strlen(pg_base) + 128;

		snprintf(fx->schema, sizeof(fx->schema), "test_store_%ld_%d", (long)getpid(), ++seq);
		fx->uri = malloc(len);
		if (fx->uri == NULL)
			return -1;
		snprintf(fx->uri, len, "%s%cschema=%s", pg_base, strchr(pg_base, '?') ? '&' : '?',
			 fx->schema);
	}
	if (open_store(fx, &fx->st, err, sizeof(err)) != 0) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char *slash;

	store_close(fx->st);
	if (fx->uri != NULL) {
		char sql[128];

		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", fx->schema);
		pg_run(sql, NULL, 0);
		free(fx->uri);
	}
	remove_dir(fx->dir);
	slash = strrchr(fx->dir, '/');
	*slash = '\0';
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* ---- helpers ---- */

static int64_t make_service(struct store *st, const char *name, int spec_cu)
{
	cJSON *in = cJSON_CreateObject();
	char err[512];
	int64_t id = 0;

	cJSON_AddStringToObject(in, "name", name);
	cJSON_AddNumberToObject(in, "spec_cu", spec_cu);
	cJSON_AddStringToObject(in, "database_host", "db.example");
	cJSON_AddNumberToObject(in, "database_port", 6432);
	assert_int_equal(store_row_create(st, STORE_SERVICE, in, &id, err, sizeof(err)), 0);
	cJSON_Delete(in);
	assert_true(id > 0);
	return id;
}

static int64_t make_source(struct store *st, const char *name, int64_t service_id)
{
	cJSON *in = cJSON_CreateObject();
	cJSON *props;
	char err[512];
	int64_t id = 0;

	cJSON_AddNumberToObject(in, "service_id", (double)service_id);
	cJSON_AddStringToObject(in, "name", name);
	cJSON_AddStringToObject(in, "brokers", "k1:9092,k2:9092");
	cJSON_AddStringToObject(in, "topic", "orders");
	cJSON_AddStringToObject(in, "format", "csv");
	props = cJSON_AddObjectToObject(in, "properties");
	cJSON_AddStringToObject(props, "fetch.min.bytes", "1024");
	assert_int_equal(store_row_create(st, STORE_SOURCE, in, &id, err, sizeof(err)), 0);
	cJSON_Delete(in);
	assert_true(id > 0);
	return id;
}

static const char wizard_def[] =
	"{\"database\":\"shop\",\"table\":\"orders\",\"account\":\"loader\","
	"\"password\":\"" SECRET "\",\"group_name\":\"g1\","
	"\"fields\":[{\"source\":\"id\",\"dest\":\"id\",\"role\":\"none\"},"
	"{\"source\":\"amount\",\"dest\":\"amount\",\"role\":\"none\"}]}";

static const char professional_def[] =
	"DATABASE: shop\n"
	"USER: loader\n"
	"PASSWORD: " SECRET "\n"
	"VERSION: 2\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    SOURCE:\n"
	"      FALLBACK_OFFSET: earliest\n"
	"    VALUE:\n"
	"      COLUMNS:\n"
	"        - NAME: id\n"
	"          TYPE: bigint\n"
	"        - NAME: amount\n"
	"          TYPE: numeric\n"
	"  OUTPUT:\n"
	"    SCHEMA: public\n"
	"    TABLE: orders\n"
	"  PROPERTIES:\n"
	"    group.id: g2\n"
	"SCHEDULE:\n"
	"  RETRY_INTERVAL: 2s\n"
	"  MAX_RETRIES: 3\n";

static int64_t make_job(struct store *st, const char *name, int64_t source_id, const char *mode,
			const char *def)
{
	cJSON *in = cJSON_CreateObject();
	char err[512];
	int64_t id = 0;

	cJSON_AddNumberToObject(in, "source_id", (double)source_id);
	cJSON_AddStringToObject(in, "name", name);
	cJSON_AddStringToObject(in, "mode", mode);
	cJSON_AddStringToObject(in, "definition", def);
	assert_int_equal(store_row_create(st, STORE_JOB, in, &id, err, sizeof(err)), 0);
	cJSON_Delete(in);
	assert_true(id > 0);
	return id;
}

static cJSON *get_job(struct store *st, int64_t id)
{
	cJSON *row = NULL;
	char err[512];

	assert_int_equal(store_row_get(st, STORE_JOB, id, &row, err, sizeof(err)), 0);
	return row;
}

static const char *row_str(const cJSON *row, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, key));
}

static int64_t row_int(const cJSON *row, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);

	assert_true(cJSON_IsNumber(v));
	return (int64_t)v->valuedouble;
}

static bool row_is_null(const cJSON *row, const char *key)
{
	return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, key));
}

/* ---- tests ---- */

static void test_open_creates_private_file(void **state)
{
	struct fixture *fx = *state;
	char path[512];
	struct stat sb;
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;

	assert_int_equal(stat(fx->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/streamserver.db", fx->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/streamserver.db-wal", fx->dir);
	if (stat(path, &sb) == 0)
		assert_int_equal(sb.st_mode & 0777, 0600);

	snprintf(path, sizeof(path), "%s/streamserver.db", fx->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 7);
	sqlite3_finalize(stmt);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

static void test_open_fixes_mode_of_existing_file(void **state)
{
	struct fixture *fx = *state;
	char path[512], err[512];
	struct stat sb;

	store_close(fx->st);
	fx->st = NULL;
	snprintf(path, sizeof(path), "%s/streamserver.db", fx->dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(open_store(fx, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

/* One data directory, one controller: a second open is refused with the
 * holder's pid while the first is open, and succeeds once it is closed. */
static void test_open_refuses_a_used_data_dir(void **state)
{
	struct fixture *fx = *state;
	struct store *second = NULL;
	char err[512], want[64];

	assert_int_equal(open_store(fx, &second, err, sizeof(err)), STORE_BUSY);
	assert_null(second);
	snprintf(want, sizeof(want), "(pid %ld,", (long)getpid());
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, fx->dir));
	assert_non_null(strstr(err, "--data-dir"));
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(open_store(fx, &second, err, sizeof(err)), 0);
	fx->st = second;
}

static void test_reopen_keeps_data(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "keep-me", 4);
	int64_t src = make_source(fx->st, "src", sv);
	int64_t job = make_job(fx->st, "job", src, "wizard", wizard_def);
	char err[512];
	cJSON *row = NULL;

	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(open_store(fx, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(store_row_get(fx->st, STORE_SERVICE, sv, &row, err, sizeof(err)), 0);
	assert_string_equal(row_str(row, "name"), "keep-me");
	assert_int_equal(row_int(row, "spec_cu"), 4);
	cJSON_Delete(row);
	row = get_job(fx->st, job);
	assert_string_equal(row_str(row, "definition"), wizard_def);
	cJSON_Delete(row);
}

static void test_service_crud(void **state)
{
	struct fixture *fx = *state;
	cJSON *in, *row = NULL, *items = NULL;
	char err[512];
	int64_t id = 0, total = 0;

	in = cJSON_CreateObject();
	cJSON_AddStringToObject(in, "name", "s1");
	assert_int_equal(store_row_create(fx->st, STORE_SERVICE, in, &id, err, sizeof(err)), 0);
	cJSON_Delete(in);

	/* The schema's defaults. */
	assert_int_equal(store_row_get(fx->st, STORE_SERVICE, id, &row, err, sizeof(err)), 0);
	assert_string_equal(row_str(row, "name"), "s1");
	assert_string_equal(row_str(row, "description"), "");
	assert_int_equal(row_int(row, "spec_cu"), 8);
	assert_string_equal(row_str(row, "database_host"), "127.0.0.1");
	assert_int_equal(row_int(row, "database_port"), 5432);
	assert_string_equal(row_str(row, "status"), "running");
	assert_int_equal(strlen(row_str(row, "created_at")), strlen("2026-11-24T04:30:00Z"));
	assert_int_equal(row_str(row, "created_at")[19], 'Z');
	cJSON_Delete(row);

	in = cJSON_CreateObject();
	cJSON_AddNumberToObject(in, "spec_cu", 16);
	cJSON_AddStringToObject(in, "description", "main");
	assert_int_equal(store_row_update(fx->st, STORE_SERVICE, id, in, err, sizeof(err)), 0);
	assert_int_equal(store_row_update(fx->st, STORE_SERVICE, id + 100, in, err, sizeof(err)),
			 STORE_NOT_FOUND);
	cJSON_Delete(in);
	assert_int_equal(store_row_get(fx->st, STORE_SERVICE, id, &row, err, sizeof(err)), 0);
	assert_int_equal(row_int(row, "spec_cu"), 16);
	assert_string_equal(row_str(row, "description"), "main");
	assert_string_equal(row_str(row, "name"), "s1");
	cJSON_Delete(row);

	make_service(fx->st, "s2", 2);
	make_service(fx->st, "s3", 2);
	assert_int_equal(
		store_row_list(fx->st, STORE_SERVICE, 1, 1, &items, &total, err, sizeof(err)), 0);
	assert_int_equal(total, 3);
	assert_int_equal(cJSON_GetArraySize(items), 1);
	assert_string_equal(row_str(cJSON_GetArrayItem(items, 0), "name"), "s2");
	cJSON_Delete(items);

	assert_int_equal(store_row_delete(fx->st, STORE_SERVICE, id, err, sizeof(err)), 0);
	assert_int_equal(store_row_get(fx->st, STORE_SERVICE, id, &row, err, sizeof(err)),
			 STORE_NOT_FOUND);
	assert_int_equal(store_row_delete(fx->st, STORE_SERVICE, id, err, sizeof(err)),
			 STORE_NOT_FOUND);
	/* Ids are not reused. */
	assert_true(make_service(fx->st, "s4", 2) > id + 2);
}

static void test_unique_names(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "dup", 8);
	int64_t other = make_service(fx->st, "other", 8);
	int64_t src = make_source(fx->st, "src", sv);
	cJSON *in = cJSON_CreateObject();
	char err[512];
	int64_t id = 0;

	cJSON_AddStringToObject(in, "name", "dup");
	assert_int_equal(store_row_create(fx->st, STORE_SERVICE, in, &id, err, sizeof(err)),
			 STORE_CONFLICT);
	assert_non_null(strstr(err, "dup"));
	/* Renaming onto an existing name is a conflict too. */
	assert_int_equal(store_row_update(fx->st, STORE_SERVICE, other, in, err, sizeof(err)),
			 STORE_CONFLICT);
	cJSON_Delete(in);

	in = cJSON_CreateObject();
	cJSON_AddNumberToObject(in, "service_id", (double)sv);
	cJSON_AddStringToObject(in, "name", "src");
	cJSON_AddStringToObject(in, "brokers", "k:9092");
	cJSON_AddStringToObject(in, "topic", "t");
	assert_int_equal(store_row_create(fx->st, STORE_SOURCE, in, &id, err, sizeof(err)),
			 STORE_CONFLICT);
	cJSON_Delete(in);

	make_job(fx->st, "j", src, "wizard", wizard_def);
	in = cJSON_CreateObject();
	cJSON_AddNumberToObject(in, "source_id", (double)src);
	cJSON_AddStringToObject(in, "name", "j");
	cJSON_AddStringToObject(in, "mode", "wizard");
	cJSON_AddStringToObject(in, "definition", wizard_def);
	assert_int_equal(store_row_create(fx->st, STORE_JOB, in, &id, err, sizeof(err)),
			 STORE_CONFLICT);
	cJSON_Delete(in);
}

static void test_references_must_exist(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "s", 8);
	int64_t src = make_source(fx->st, "src", sv);
	cJSON *in = cJSON_CreateObject();
	char err[512];
	int64_t id = 0;

	cJSON_AddNumberToObject(in, "service_id", 999);
	cJSON_AddStringToObject(in, "name", "orphan");
	cJSON_AddStringToObject(in, "brokers", "k:9092");
	cJSON_AddStringToObject(in, "topic", "t");
	assert_int_equal(store_row_create(fx->st, STORE_SOURCE, in, &id, err, sizeof(err)),
			 STORE_INVALID);
	assert_non_null(strstr(err, "service_id"));
	cJSON_Delete(in);

	in = cJSON_CreateObject();
	cJSON_AddNumberToObject(in, "service_id", 999);
	assert_int_equal(store_row_update(fx->st, STORE_SOURCE, src, in, err, sizeof(err)),
			 STORE_INVALID);
	cJSON_Delete(in);

	in = cJSON_CreateObject();
	cJSON_AddNumberToObject(in, "source_id", 999);
	cJSON_AddStringToObject(in, "name", "orphan");
	cJSON_AddStringToObject(in, "mode", "wizard");
	cJSON_AddStringToObject(in, "definition", wizard_def);
	assert_int_equal(store_row_create(fx->st, STORE_JOB, in, &id, err, sizeof(err)),
			 STORE_INVALID);
	assert_non_null(strstr(err, "source_id"));
	cJSON_Delete(in);
}

static void test_source_row(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "s", 8);
	int64_t src = make_source(fx->st, "src", sv);
	cJSON *row = NULL, *in;
	char err[512];

	assert_int_equal(store_row_get(fx->st, STORE_SOURCE, src, &row, err, sizeof(err)), 0);
	assert_string_equal(row_str(row, "type"), "kafka");
	assert_string_equal(row_str(row, "format"), "csv");
	assert_true(row_is_null(row, "delimiter"));
	assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(row, "properties")));
	assert_string_equal(
		row_str(cJSON_GetObjectItemCaseSensitive(row, "properties"), "fetch.min.bytes"),
		"1024");
	cJSON_Delete(row);

	in = cJSON_CreateObject();
	cJSON_AddStringToObject(in, "delimiter", ";");
	assert_int_equal(store_row_update(fx->st, STORE_SOURCE, src, in, err, sizeof(err)), 0);
	cJSON_Delete(in);
	assert_int_equal(store_row_get(fx->st, STORE_SOURCE, src, &row, err, sizeof(err)), 0);
	assert_string_equal(row_str(row, "delimiter"), ";");
	assert_string_equal(row_str(row, "topic"), "orders");
	cJSON_Delete(row);
}

static void test_delete_refused_while_referenced(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "svc", 8);
	int64_t src = make_source(fx->st, "orders-src", sv);
	int64_t job = make_job(fx->st, "orders-job", src, "wizard", wizard_def);
	char err[512];

	assert_int_equal(store_row_delete(fx->st, STORE_SERVICE, sv, err, sizeof(err)),
			 STORE_CONFLICT);
	assert_non_null(strstr(err, "orders-src"));
	assert_int_equal(store_row_delete(fx->st, STORE_SOURCE, src, err, sizeof(err)),
			 STORE_CONFLICT);
	assert_non_null(strstr(err, "orders-job"));

	/* A job wanted running cannot be deleted or changed. */
	assert_int_equal(store_job_start(fx->st, job, err, sizeof(err)), 0);
	assert_int_equal(store_row_delete(fx->st, STORE_JOB, job, err, sizeof(err)),
			 STORE_CONFLICT);
	assert_non_null(strstr(err, "stop"));
	{
		cJSON *in = cJSON_CreateObject();

		cJSON_AddStringToObject(in, "description", "x");
		assert_int_equal(store_row_update(fx->st, STORE_JOB, job, in, err, sizeof(err)),
				 STORE_CONFLICT);
		cJSON_Delete(in);
	}
	assert_int_equal(store_job_stop(fx->st, job, err, sizeof(err)), 0);

	assert_int_equal(store_row_delete(fx->st, STORE_JOB, job, err, sizeof(err)), 0);
	assert_int_equal(store_row_delete(fx->st, STORE_SOURCE, src, err, sizeof(err)), 0);
	assert_int_equal(store_row_delete(fx->st, STORE_SERVICE, sv, err, sizeof(err)), 0);
}

static void test_counters_add_up(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "s", 8);
	int64_t job = make_job(fx->st, "j", make_source(fx->st, "src", sv), "wizard", wizard_def);
	cJSON *row;
	int pid = -1;

	assert_int_equal(store_job_add_counters(fx->st, job, 100, 98, 30, 2), 0);
	assert_int_equal(store_job_add_counters(fx->st, job, 50, 50, 0, 0), 0);
	assert_int_equal(store_job_inc_restarts(fx->st, job), 0);
	assert_int_equal(store_job_inc_restarts(fx->st, job), 0);
	assert_int_equal(store_job_add_counters(fx->st, job + 1, 1, 1, 1, 1), STORE_NOT_FOUND);
	row = get_job(fx->st, job);
	assert_int_equal(row_int(row, "messages_consumed"), 150);
	assert_int_equal(row_int(row, "rows_written"), 148);
	assert_int_equal(row_int(row, "rows_rejected"), 2);
	assert_int_equal(row_int(row, "rows_updated"), 30);
	assert_int_equal(row_int(row, "batches"), 2);
	assert_int_equal(row_int(row, "restarts"), 2);
	cJSON_Delete(row);

	assert_int_equal(store_job_set_state(fx->st, job, "running", 4242, "boom"), 0);
	assert_int_equal(store_job_get_pid(fx->st, job, &pid), 0);
	assert_int_equal(pid, 4242);
	row = get_job(fx->st, job);
	assert_string_equal(row_str(row, "state"), "running");
	assert_string_equal(row_str(row, "last_error"), "boom");
	assert_true(row_is_null(row, "started_at"));
	cJSON_Delete(row);

	/* NULL keeps the error, "" clears it; "starting" stamps started_at. */
	assert_int_equal(store_job_set_state(fx->st, job, "starting", 0, NULL), 0);
	row = get_job(fx->st, job);
	assert_string_equal(row_str(row, "last_error"), "boom");
	assert_non_null(row_str(row, "started_at"));
	assert_int_equal(row_int(row, "pid"), 0);
	cJSON_Delete(row);
	assert_int_equal(store_job_set_state(fx->st, job, "running", 1, ""), 0);
	row = get_job(fx->st, job);
	assert_true(row_is_null(row, "last_error"));
	cJSON_Delete(row);
}

static void test_start_and_stop(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "small", 2);
	int64_t src = make_source(fx->st, "src", sv);
	int64_t a = make_job(fx->st, "a", src, "wizard", wizard_def);
	int64_t b = make_job(fx->st, "b", src, "wizard", wizard_def);
	int64_t c = make_job(fx->st, "c", src, "wizard", wizard_def);
	char err[512];
	cJSON *row;

	row = get_job(fx->st, a);
	assert_string_equal(row_str(row, "desired_state"), "stopped");
	assert_string_equal(row_str(row, "state"), "stopped");
	cJSON_Delete(row);

	assert_int_equal(store_job_start(fx->st, a, err, sizeof(err)), 0);
	assert_int_equal(store_job_start(fx->st, b, err, sizeof(err)), 0);
	assert_int_equal(store_job_start(fx->st, c, err, sizeof(err)), STORE_CONFLICT);
	assert_string_equal(err, "service small runs 2 of 2 tasks (spec_cu 2); this job needs 1 more; stop a job, "
				 "lower its tasks or raise spec_cu");
	/* Starting again is a no-op, not a conflict. */
	assert_int_equal(store_job_start(fx->st, a, err, sizeof(err)), 0);
	assert_int_equal(store_job_start(fx->st, 999, err, sizeof(err)), STORE_NOT_FOUND);

	row = get_job(fx->st, a);
	assert_string_equal(row_str(row, "desired_state"), "running");
	assert_string_equal(row_str(row, "state"), "starting");
	cJSON_Delete(row);

	/* A failed job holds no worker: it frees its place. */
	assert_int_equal(store_job_set_state(fx->st, b, "failed", 0, "bad table"), 0);
	assert_int_equal(store_job_start(fx->st, c, err, sizeof(err)), 0);
	/* ... and starting it again counts it, clears its error and restarts. */
	assert_int_equal(store_job_inc_restarts(fx->st, b), 0);
	assert_int_equal(store_job_start(fx->st, b, err, sizeof(err)), STORE_CONFLICT);

	/* Stop with a live worker: stopping; without one: stopped at once. */
	assert_int_equal(store_job_set_state(fx->st, a, "running", 12345, ""), 0);
	assert_int_equal(store_job_stop(fx->st, a, err, sizeof(err)), 0);
	row = get_job(fx->st, a);
	assert_string_equal(row_str(row, "desired_state"), "stopped");
	assert_string_equal(row_str(row, "state"), "stopping");
	cJSON_Delete(row);
	assert_int_equal(store_job_stop(fx->st, c, err, sizeof(err)), 0);
	row = get_job(fx->st, c);
	assert_string_equal(row_str(row, "state"), "stopped");
	cJSON_Delete(row);

	assert_int_equal(store_job_start(fx->st, b, err, sizeof(err)), 0);
	row = get_job(fx->st, b);
	assert_string_equal(row_str(row, "state"), "starting");
	assert_int_equal(row_int(row, "restarts"), 0);
	assert_true(row_is_null(row, "last_error"));
	cJSON_Delete(row);
	assert_int_equal(store_job_stop(fx->st, 999, err, sizeof(err)), STORE_NOT_FOUND);
}

static void test_brief_lists_desired_states(void **state)
{
	struct fixture *fx = *state;
	int64_t src = make_source(fx->st, "src", make_service(fx->st, "s", 8));
	int64_t a = make_job(fx->st, "wiz", src, "wizard", wizard_def);
	int64_t b = make_job(fx->st, "pro", src, "professional", professional_def);
	struct store_job_brief *rows = NULL;
	size_t n = 0;
	char err[512];

	assert_int_equal(store_job_start(fx->st, b, err, sizeof(err)), 0);
	assert_int_equal(store_jobs_brief(fx->st, &rows, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].id, a);
	assert_string_equal(rows[0].name, "wiz");
	assert_string_equal(rows[0].desired, "stopped");
	assert_string_equal(rows[0].state, "stopped");
	assert_int_equal(rows[1].id, b);
	assert_string_equal(rows[1].desired, "running");
	assert_string_equal(rows[1].state, "starting");
	free(rows);
}

static int64_t input_int(struct store *st, int64_t job, const char *key)
{
	char err[1024];
	char *input = store_job_worker_input(st, job, 0, NULL, err, sizeof(err));
	cJSON *msg, *v;
	int64_t value;

	assert_non_null(input);
	msg = cJSON_Parse(input);
	v = cJSON_GetObjectItemCaseSensitive(msg, key);
	assert_true(cJSON_IsNumber(v));
	value = (int64_t)v->valuedouble;
	cJSON_Delete(msg);
	explicit_bzero(input, strlen(input));
	free(input);
	return value;
}

static int64_t make_job_tasks(struct store *st, const char *name, int64_t source_id, int tasks)
{
	char def[sizeof(professional_def) + 32];
	cJSON *in = cJSON_CreateObject();
	int64_t id;
	char err[512];

	snprintf(def, sizeof(def), "TASKS: %d\n%s", tasks, professional_def);
	id = make_job(st, name, source_id, "professional", def);
	cJSON_AddNumberToObject(in, "tasks", tasks);
	assert_int_equal(store_row_update(st, STORE_JOB, id, in, err, sizeof(err)), 0);
	cJSON_Delete(in);
	return id;
}

/* spec_cu bounds the tasks, not the jobs: a job of 3 tasks uses 3, and the
 * 409 says how many are in use and how many the job needs. */
static void test_spec_cu_counts_tasks(void **state)
{
	struct fixture *fx = *state;
	int64_t src = make_source(fx->st, "src", make_service(fx->st, "cu", 4));
	int64_t a = make_job_tasks(fx->st, "a", src, 3);
	int64_t b = make_job_tasks(fx->st, "b", src, 2);
	int64_t c = make_job(fx->st, "c", src, "wizard", wizard_def);
	struct store_job_brief *rows = NULL;
	size_t n = 0;
	char err[512];
	cJSON *row;

	row = get_job(fx->st, a);
	assert_int_equal(row_int(row, "tasks"), 3);
	cJSON_Delete(row);
	assert_int_equal(store_job_start(fx->st, a, err, sizeof(err)), 0);
	assert_int_equal(store_job_start(fx->st, b, err, sizeof(err)), STORE_CONFLICT);
	assert_string_equal(err, "service cu runs 3 of 4 tasks (spec_cu 4); this job needs 2 more; stop a job, "
				 "lower its tasks or raise spec_cu");
	assert_int_equal(store_job_start(fx->st, c, err, sizeof(err)), 0);
	assert_int_equal(store_jobs_brief(fx->st, &rows, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].tasks, 3);
	assert_int_equal(rows[1].tasks, 2);
	assert_int_equal(rows[2].tasks, 1);
	free(rows);

	/* Changing the tasks of a running job is checked the same way. */
	assert_int_equal(store_job_set_tasks(fx->st, a, professional_def, 4, err, sizeof(err)), STORE_CONFLICT);
	assert_string_equal(err, "service cu runs 1 of 4 tasks (spec_cu 4); this job needs 4 more; stop a job, "
				 "lower its tasks or raise spec_cu");
	assert_int_equal(store_job_set_tasks(fx->st, a, professional_def, 1, err, sizeof(err)), 0);
	row = get_job(fx->st, a);
	assert_int_equal(row_int(row, "tasks"), 1);
	assert_string_equal(row_str(row, "state"), "starting");
	cJSON_Delete(row);
	assert_int_equal(store_job_start(fx->st, b, err, sizeof(err)), 0);
	/* A stopped job is not counted, whatever its tasks. */
	assert_int_equal(store_job_set_tasks(fx->st, 999, professional_def, 1, err, sizeof(err)), STORE_NOT_FOUND);
}

/* A restarted controller waits for every task's worker: the pids survive. */
static void test_task_pids(void **state)
{
	struct fixture *fx = *state;
	int64_t src = make_source(fx->st, "src", make_service(fx->st, "s", 8));
	int64_t a = make_job_tasks(fx->st, "a", src, 3);
	const int pids[] = { 0, 4242, 4343 };
	int got[8];
	size_t n = 0;

	assert_int_equal(store_job_get_pids(fx->st, a, got, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_job_set_state(fx->st, a, "running", 4141, ""), 0);
	assert_int_equal(store_job_set_task_pids(fx->st, a, pids, 3), 0);
	assert_int_equal(store_job_get_pids(fx->st, a, got, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(got[0], 4141);
	assert_int_equal(got[1], 4242);
	assert_int_equal(got[2], 4343);
	/* The job's pid is among the tasks': listed once. */
	assert_int_equal(store_job_set_state(fx->st, a, "running", 4242, ""), 0);
	assert_int_equal(store_job_get_pids(fx->st, a, got, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_job_get_pids(fx->st, a, got, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_job_get_pids(fx->st, 999, got, 8, &n), STORE_NOT_FOUND);
}

/* The worker learns which task it is and how many there are. */
static void test_worker_input_task(void **state)
{
	struct fixture *fx = *state;
	int64_t src = make_source(fx->st, "src", make_service(fx->st, "s", 8));
	int64_t a = make_job_tasks(fx->st, "a", src, 3);
	int64_t w = make_job(fx->st, "w", src, "wizard", wizard_def);
	char err[1024];
	char *input = store_job_worker_input(fx->st, a, 2, NULL, err, sizeof(err));
	cJSON *msg;

	assert_non_null(input);
	msg = cJSON_Parse(input);
	assert_int_equal(row_int(msg, "task"), 2);
	assert_int_equal(row_int(msg, "tasks"), 3);
	assert_non_null(strstr(row_str(msg, "config"), "TASKS: 3"));
	cJSON_Delete(msg);
	explicit_bzero(input, strlen(input));
	free(input);
	assert_int_equal(input_int(fx->st, w, "task"), 0);
	assert_int_equal(input_int(fx->st, w, "tasks"), 1);
}

static void test_schedule_comes_from_the_job(void **state)
{
	struct fixture *fx = *state;
	int64_t src = make_source(fx->st, "src", make_service(fx->st, "s", 8));
	int64_t a = make_job(fx->st, "wiz", src, "wizard", wizard_def);
	int64_t b = make_job(fx->st, "pro", src, "professional", professional_def);
	int64_t retry = -1, max = -1;

	store_job_schedule(fx->st, a, &retry, &max);
	assert_int_equal(retry, 5000);
	assert_int_equal(max, 0);
	/* From the job's SCHEDULE. */
	store_job_schedule(fx->st, b, &retry, &max);
	assert_int_equal(retry, 2000);
	assert_int_equal(max, 3);
	/* An unknown job: the defaults. */
	store_job_schedule(fx->st, 999, &retry, &max);
	assert_int_equal(retry, 5000);
	assert_int_equal(max, 0);
}

static void check_worker_input(struct store *st, int64_t job, const char *name)
{
	struct jobspec *spec = NULL;
	struct js_errors errs;
	char err[1024];
	char *input, *masked;
	cJSON *msg;
	const char *config;

	input = store_job_worker_input(st, job, 0, NULL, err, sizeof(err));
	if (input == NULL)
		fail_msg("worker input: %s", err);
	msg = cJSON_Parse(input);
	assert_non_null(msg);
	assert_int_equal(row_int(msg, "job_id"), job);
	assert_string_equal(row_str(msg, "job_name"), name);
	config = row_str(msg, "config");
	assert_non_null(config);
	/* The worker gets everything, the password and the source's settings. */
	assert_non_null(strstr(config, SECRET));
	assert_non_null(strstr(config, "k1:9092,k2:9092"));
	assert_non_null(strstr(config, "orders"));
	assert_non_null(strstr(config, "db.example"));

	/* What the API shows is the same job with the password masked. */
	memset(&errs, 0, sizeof(errs));
	assert_int_equal(store_job_resolve(st, job, &spec, &errs, err, sizeof(err)), 0);
	masked = jobspec_to_yaml(spec, true);
	assert_non_null(masked);
	assert_null(strstr(masked, SECRET));
	assert_non_null(strstr(masked, "****"));
	assert_non_null(strstr(masked, "k1:9092,k2:9092"));
	free(masked);
	jobspec_free(spec);
	cJSON_Delete(msg);
	free(input);
}

static void test_worker_input_holds_the_password(void **state)
{
	struct fixture *fx = *state;
	int64_t src = make_source(fx->st, "src", make_service(fx->st, "s", 8));

	check_worker_input(fx->st, make_job(fx->st, "wiz", src, "wizard", wizard_def), "wiz");
	check_worker_input(fx->st, make_job(fx->st, "pro", src, "professional", professional_def),
			   "pro");
}

static void test_worker_input_of_invalid_job(void **state)
{
	struct fixture *fx = *state;
	int64_t src = make_source(fx->st, "src", make_service(fx->st, "s", 8));
	int64_t job = make_job(fx->st, "bad", src, "wizard", "{\"database\":\"shop\"}");
	struct jobspec *spec = NULL;
	struct js_errors errs;
	char err[1024];

	assert_null(store_job_worker_input(fx->st, job, 0, NULL, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	memset(&errs, 0, sizeof(errs));
	assert_int_equal(store_job_resolve(fx->st, job, &spec, &errs, err, sizeof(err)),
			 STORE_INVALID);
	assert_null(spec);
	assert_true(errs.count > 0);
	assert_null(store_job_worker_input(fx->st, 999, 0, NULL, err, sizeof(err)));
}


/* ERROR_LIMIT counts from the user's start across restarts: the worker is
 * told what the job consumed and rejected since then. */
static void test_counters_since_start(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "s", 8);
	int64_t job = make_job(fx->st, "j", make_source(fx->st, "src", sv), "wizard", wizard_def);
	char err[512];

	/* Counts from an earlier run. */
	assert_int_equal(store_job_add_counters(fx->st, job, 100, 90, 0, 10), 0);
	assert_int_equal(store_job_start(fx->st, job, err, sizeof(err)), 0);
	assert_int_equal(input_int(fx->st, job, "messages_before"), 0);
	assert_int_equal(input_int(fx->st, job, "rejected_before"), 0);

	/* A worker commits, then crashes; the next one is told. */
	assert_int_equal(store_job_add_counters(fx->st, job, 40, 37, 0, 3), 0);
	assert_int_equal(store_job_set_state(fx->st, job, "retrying", 0, "boom"), 0);
	assert_int_equal(input_int(fx->st, job, "messages_before"), 40);
	assert_int_equal(input_int(fx->st, job, "rejected_before"), 3);

	/* Starting a job that is on its way changes nothing. */
	assert_int_equal(store_job_start(fx->st, job, err, sizeof(err)), 0);
	assert_int_equal(input_int(fx->st, job, "messages_before"), 40);

	/* It fails; the user starts it again: counted from there. */
	assert_int_equal(store_job_set_state(fx->st, job, "failed", 0, "too many errors"), 0);
	assert_int_equal(store_job_start(fx->st, job, err, sizeof(err)), 0);
	assert_int_equal(input_int(fx->st, job, "messages_before"), 0);
	assert_int_equal(input_int(fx->st, job, "rejected_before"), 0);
	assert_int_equal(store_job_add_counters(fx->st, job, 5, 4, 0, 1), 0);
	assert_int_equal(input_int(fx->st, job, "messages_before"), 5);
	assert_int_equal(input_int(fx->st, job, "rejected_before"), 1);
}

static void test_last_exit(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "s", 8);
	int64_t job = make_job(fx->st, "j", make_source(fx->st, "src", sv), "wizard", wizard_def);
	cJSON *row;

	row = get_job(fx->st, job);
	assert_true(row_is_null(row, "last_exit"));
	cJSON_Delete(row);
	assert_int_equal(store_job_set_exit(fx->st, job, "signal 9 (Killed)"), 0);
	row = get_job(fx->st, job);
	assert_string_equal(row_str(row, "last_exit"), "signal 9 (Killed)");
	cJSON_Delete(row);
	assert_int_equal(store_job_set_exit(fx->st, job + 1, "exit code 1"), STORE_NOT_FOUND);
}

/* A database written by the first version of the store (user_version 1)
 * opens with its rows kept and the new columns added. */
static void test_migration_from_v1(void **state)
{
	struct fixture *fx = *state;
	char path[512], err[512];
	sqlite3 *db;
	sqlite3_stmt *stmt;
	cJSON *row;

	store_close(fx->st);
	fx->st = NULL;
	remove_dir(fx->dir);
	assert_int_equal(mkdir(fx->dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/streamserver.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "CREATE TABLE services (id INTEGER PRIMARY KEY AUTOINCREMENT,"
			     " name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',"
			     " spec_cu INTEGER NOT NULL DEFAULT 8,"
			     " database_host TEXT NOT NULL DEFAULT '127.0.0.1',"
			     " database_port INTEGER NOT NULL DEFAULT 5432,"
			     " status TEXT NOT NULL DEFAULT 'running', created_at TEXT NOT NULL,"
			     " updated_at TEXT NOT NULL);"
			     "CREATE TABLE sources (id INTEGER PRIMARY KEY AUTOINCREMENT,"
			     " service_id INTEGER NOT NULL REFERENCES services(id),"
			     " name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',"
			     " type TEXT NOT NULL DEFAULT 'kafka', brokers TEXT NOT NULL,"
			     " topic TEXT NOT NULL, format TEXT NOT NULL DEFAULT 'delimited',"
			     " delimiter TEXT, properties TEXT NOT NULL DEFAULT '{}',"
			     " status TEXT NOT NULL DEFAULT 'running', created_at TEXT NOT NULL,"
			     " updated_at TEXT NOT NULL);"
			     "CREATE INDEX sources_service_id ON sources(service_id);"
			     "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT,"
			     " source_id INTEGER NOT NULL REFERENCES sources(id),"
			     " name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',"
			     " mode TEXT NOT NULL, definition TEXT NOT NULL,"
			     " desired_state TEXT NOT NULL DEFAULT 'stopped',"
			     " state TEXT NOT NULL DEFAULT 'stopped', pid INTEGER NOT NULL DEFAULT 0,"
			     " started_at TEXT, restarts INTEGER NOT NULL DEFAULT 0,"
			     " messages_consumed INTEGER NOT NULL DEFAULT 0,"
			     " rows_written INTEGER NOT NULL DEFAULT 0,"
			     " rows_rejected INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
			     " created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
			     "CREATE INDEX jobs_source_id ON jobs(source_id);"
			     "INSERT INTO services (name, created_at, updated_at)"
			     " VALUES ('old', 'x', 'x');"
			     "INSERT INTO sources (service_id, name, brokers, topic, format,"
			     " created_at, updated_at)"
			     " VALUES (1, 'src', 'k:9092', 'orders', 'csv', 'x', 'x');"
			     "PRAGMA user_version = 1;",
			     NULL, NULL, NULL),
		SQLITE_OK);
	stmt = NULL;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO jobs (source_id, name, mode, definition,"
					    " desired_state, state, messages_consumed, rows_rejected,"
					    " created_at, updated_at) VALUES (1, 'kept', 'wizard', ?,"
					    " 'running', 'running', 70, 7, 'x', 'x')",
					    -1, &stmt, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(stmt, 1, wizard_def, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);

	assert_int_equal(open_store(fx, &fx->st, err, sizeof(err)), 0);
	row = get_job(fx->st, 1);
	assert_string_equal(row_str(row, "name"), "kept");
	assert_int_equal(row_int(row, "messages_consumed"), 70);
	assert_int_equal(row_int(row, "rows_updated"), 0);
	assert_int_equal(row_int(row, "batches"), 0);
	assert_true(row_is_null(row, "last_exit"));
	cJSON_Delete(row);
	/* Running when upgraded: counted from zero, as nothing recorded the start. */
	assert_int_equal(input_int(fx->st, 1, "messages_before"), 70);
	assert_int_equal(store_job_set_exit(fx->st, 1, "exit code 1 (retriable failure)"), 0);
	store_close(fx->st);
	fx->st = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 7);
	sqlite3_finalize(stmt);
	sqlite3_close(db);

	/* Opening again is a no-op. */
	assert_int_equal(open_store(fx, &fx->st, err, sizeof(err)), 0);
	row = get_job(fx->st, 1);
	assert_string_equal(row_str(row, "last_exit"), "exit code 1 (retriable failure)");
	cJSON_Delete(row);
}

/* A database of version 2 (before rows_updated and batches) opens with its
 * counters kept, the new ones from 0, and counts on from there. */
static void test_migration_from_v2(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "s", 8);
	int64_t job = make_job(fx->st, "j", make_source(fx->st, "src", sv), "wizard", wizard_def);
	char path[512], err[512];
	sqlite3 *db;
	sqlite3_stmt *stmt;
	cJSON *row;

	assert_int_equal(store_job_add_counters(fx->st, job, 120, 110, 5, 10), 0);
	assert_int_equal(store_job_set_exit(fx->st, job, "exit code 0 (stopped)"), 0);
	store_close(fx->st);
	fx->st = NULL;
	/* Back to what version 2 wrote. */
	snprintf(path, sizeof(path), "%s/streamserver.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "ALTER TABLE sources DROP COLUMN schema_registry;"
				      "ALTER TABLE sources DROP COLUMN schema_registry_user;"
				      "ALTER TABLE sources DROP COLUMN schema_registry_password;"
				      "DROP TABLE controllers;"
				      "DROP TABLE task_status;"
				      "ALTER TABLE jobs DROP COLUMN tasks;"
				      "ALTER TABLE jobs DROP COLUMN task_pids;"
				      "ALTER TABLE jobs DROP COLUMN rows_updated;"
				      "ALTER TABLE jobs DROP COLUMN batches;"
				      "ALTER TABLE services DROP COLUMN database_sslmode;"
				      "ALTER TABLE services DROP COLUMN database_sslrootcert;"
				      "ALTER TABLE services DROP COLUMN database_sslcert;"
				      "ALTER TABLE services DROP COLUMN database_sslkey;"
				      "PRAGMA user_version = 2;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(open_store(fx, &fx->st, err, sizeof(err)), 0);
	row = get_job(fx->st, job);
	assert_string_equal(row_str(row, "name"), "j");
	assert_int_equal(row_int(row, "messages_consumed"), 120);
	assert_int_equal(row_int(row, "rows_written"), 110);
	assert_int_equal(row_int(row, "rows_rejected"), 10);
	assert_string_equal(row_str(row, "last_exit"), "exit code 0 (stopped)");
	assert_int_equal(row_int(row, "rows_updated"), 0);
	assert_int_equal(row_int(row, "tasks"), 1); /* version 5: one task, as before */
	assert_int_equal(row_int(row, "batches"), 0);
	cJSON_Delete(row);
	assert_int_equal(store_job_add_counters(fx->st, job, 10, 10, 4, 0), 0);
	row = get_job(fx->st, job);
	assert_int_equal(row_int(row, "messages_consumed"), 130);
	assert_int_equal(row_int(row, "rows_updated"), 4);
	assert_int_equal(row_int(row, "batches"), 1);
	cJSON_Delete(row);
	store_close(fx->st);
	fx->st = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 7);
	sqlite3_finalize(stmt);
	sqlite3_close(db);

	/* Opening again is a no-op: the counters stay. */
	assert_int_equal(open_store(fx, &fx->st, err, sizeof(err)), 0);
	row = get_job(fx->st, job);
	assert_int_equal(row_int(row, "rows_updated"), 4);
	assert_int_equal(row_int(row, "batches"), 1);
	cJSON_Delete(row);
}

/* A database of version 3 (before the services' TLS settings) opens with
 * its services kept and the new settings unset. */
static void test_migration_from_v3(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "s", 8);
	char path[512], err[512];
	sqlite3 *db;
	sqlite3_stmt *stmt;
	cJSON *row = NULL, *in;

	store_close(fx->st);
	fx->st = NULL;
	snprintf(path, sizeof(path), "%s/streamserver.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "ALTER TABLE services DROP COLUMN database_sslmode;"
				      "ALTER TABLE services DROP COLUMN database_sslrootcert;"
				      "ALTER TABLE services DROP COLUMN database_sslcert;"
				      "ALTER TABLE services DROP COLUMN database_sslkey;"
				      "ALTER TABLE sources DROP COLUMN schema_registry;"
				      "ALTER TABLE sources DROP COLUMN schema_registry_user;"
				      "ALTER TABLE sources DROP COLUMN schema_registry_password;"
				      "DROP TABLE controllers;"
				      "DROP TABLE task_status;"
				      "ALTER TABLE jobs DROP COLUMN tasks;"
				      "ALTER TABLE jobs DROP COLUMN task_pids;"
				      "PRAGMA user_version = 3;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(open_store(fx, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(store_row_get(fx->st, STORE_SERVICE, sv, &row, err, sizeof(err)), 0);
	assert_string_equal(row_str(row, "database_host"), "db.example");
	assert_true(row_is_null(row, "database_sslmode"));
	assert_true(row_is_null(row, "database_sslkey"));
	cJSON_Delete(row);
	in = cJSON_CreateObject();
	cJSON_AddStringToObject(in, "database_sslmode", "require");
	assert_int_equal(store_row_update(fx->st, STORE_SERVICE, sv, in, err, sizeof(err)), 0);
	cJSON_Delete(in);
	store_close(fx->st);
	fx->st = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 7);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	assert_int_equal(open_store(fx, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(store_row_get(fx->st, STORE_SERVICE, sv, &row, err, sizeof(err)), 0);
	assert_string_equal(row_str(row, "database_sslmode"), "require");
	cJSON_Delete(row);
}

#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIBkzCCATmgAwIBAgIUBKexJRmiwwHq\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBdTCCARugAwIBAgIUclient0000\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49keykeykey\n-----END PRIVATE KEY-----\n"

/* The service's TLS settings are its jobs' defaults, each on its own; a job
 * overrides what it sets; the worker's input holds the key in clear. */
static void test_service_tls_defaults_and_job_override(void **state)
{
	struct fixture *fx = *state;
	int64_t sv = make_service(fx->st, "s", 8);
	int64_t src = make_source(fx->st, "src", sv);
	cJSON *in = cJSON_CreateObject();
	struct jobspec *spec = NULL;
	struct js_errors errs;
	char err[1024], *def, *input;
	int64_t plain, own;
	size_t len = sizeof(professional_def) + 256;

	cJSON_AddStringToObject(in, "database_sslmode", "verify-full");
	cJSON_AddStringToObject(in, "database_sslrootcert", CA_PEM);
	cJSON_AddStringToObject(in, "database_sslcert", CERT_PEM);
	cJSON_AddStringToObject(in, "database_sslkey", KEY_PEM);
	assert_int_equal(store_row_update(fx->st, STORE_SERVICE, sv, in, err, sizeof(err)), 0);
	cJSON_Delete(in);

	plain = make_job(fx->st, "plain", src, "professional", professional_def);
	memset(&errs, 0, sizeof(errs));
	assert_int_equal(store_job_resolve(fx->st, plain, &spec, &errs, err, sizeof(err)), 0);
	assert_string_equal(spec->sslmode, "verify-full");
	assert_string_equal(spec->sslrootcert, CA_PEM);
	assert_string_equal(spec->sslcert, CERT_PEM);
	assert_string_equal(spec->sslkey, KEY_PEM);
	jobspec_free(spec);
	spec = NULL;
	input = store_job_worker_input(fx->st, plain, 0, NULL, err, sizeof(err));
	assert_non_null(input);
	assert_non_null(strstr(input, "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49keykeykey"));
	explicit_bzero(input, strlen(input));
	free(input);

	def = malloc(len);
	assert_non_null(def);
	snprintf(def, len, "SSLMODE: require\n%s", professional_def);
	own = make_job(fx->st, "own", src, "professional", def);
	free(def);
	memset(&errs, 0, sizeof(errs));
	assert_int_equal(store_job_resolve(fx->st, own, &spec, &errs, err, sizeof(err)), 0);
	assert_string_equal(spec->sslmode, "require");
	assert_string_equal(spec->sslrootcert, CA_PEM); /* not set by the job: the service's */
	jobspec_free(spec);
}

static void set_source_format(struct store *st, int64_t src, const char *format)
{
	cJSON *in = cJSON_CreateObject();
	char err[512];

	cJSON_AddStringToObject(in, "format", format);
	assert_int_equal(store_row_update(st, STORE_SOURCE, src, in, err, sizeof(err)), 0);
	cJSON_Delete(in);
}

/* The wizard's fields are the columns of a delimited line: a json source
 * cannot feed a wizard job, and that comes first in what is wrong.  What the
 * job would run can still be shown; a definition that no longer parses
 * cannot. */
static void test_wizard_needs_a_delimited_source(void **state)
{
	struct fixture *fx = *state;
	int64_t src = make_source(fx->st, "src", make_service(fx->st, "s", 8));
	int64_t wiz = make_job(fx->st, "wiz", src, "wizard", wizard_def);
	int64_t pro = make_job(fx->st, "pro", src, "professional", professional_def);
	int64_t bad = make_job(fx->st, "bad", src, "professional", "KAFKA: [unclosed\n");
	struct jobspec *spec = NULL;
	struct js_errors *errs = calloc(1, sizeof(*errs));
	char err[1024];

	assert_non_null(errs);
	assert_int_equal(store_job_resolve(fx->st, wiz, &spec, errs, err, sizeof(err)), 0);
	jobspec_free(spec);
	set_source_format(fx->st, src, "json");
	assert_int_equal(store_job_resolve(fx->st, wiz, &spec, errs, err, sizeof(err)),
			 STORE_INVALID);
	assert_null(spec);
	assert_true(errs->count >= 1);
	assert_string_equal(errs->items[0].path, "mode");
	assert_non_null(strstr(errs->items[0].message, "wizard mode supports csv and delimited"));
	assert_null(store_job_worker_input(fx->st, wiz, 0, NULL, err, sizeof(err)));

	assert_int_equal(store_job_effective(fx->st, wiz, &spec, errs, err, sizeof(err)), 0);
	assert_non_null(spec);
	assert_int_equal(spec->value.format, JS_FORMAT_JSON);
	assert_null(spec->value.delimiter); /* json has none, whatever the source row holds */
	jobspec_free(spec);
	spec = NULL;
	assert_int_equal(store_job_effective(fx->st, pro, &spec, errs, err, sizeof(err)), 0);
	assert_non_null(spec);
	assert_int_equal(spec->value.format, JS_FORMAT_JSON);
	assert_null(spec->value.delimiter);
	jobspec_free(spec);
	spec = NULL;
	assert_int_equal(store_job_effective(fx->st, bad, &spec, errs, err, sizeof(err)),
			 STORE_INVALID);
	assert_null(spec);
	assert_true(errs->count > 0);

	/* An avro source: only with a schema registry, whose address and
	 * credentials the wizard job then takes (fields name the record's). */
	set_source_format(fx->st, src, "avro");
	assert_int_equal(store_job_resolve(fx->st, wiz, &spec, errs, err, sizeof(err)), STORE_INVALID);
	assert_non_null(strstr(errs->items[0].message, "avro sources with a schema_registry"));
	{
		cJSON *in = cJSON_CreateObject();

		cJSON_AddStringToObject(in, "schema_registry", "https://reg:8081");
		cJSON_AddStringToObject(in, "schema_registry_user", "bob");
		cJSON_AddStringToObject(in, "schema_registry_password", "pw-of-bob");
		assert_int_equal(store_row_update(fx->st, STORE_SOURCE, src, in, err, sizeof(err)), 0);
		cJSON_Delete(in);
	}
	if (store_job_resolve(fx->st, wiz, &spec, errs, err, sizeof(err)) != 0) {
		for (size_t i = 0; i < errs->count; i++)
			print_message("%s: %s\n", errs->items[i].path, errs->items[i].message);
		fail_msg("the wizard job on an avro source with a registry must resolve: %s", err);
	}
	assert_int_equal(spec->value.format, JS_FORMAT_AVRO);
	assert_string_equal(spec->value.registry_addr, "https://reg:8081");
	assert_string_equal(spec->value.registry_user, "bob");
	assert_string_equal(spec->value.registry_password, "pw-of-bob");
	jobspec_free(spec);
	free(errs);
}

/* ---- PostgreSQL only ---- */

/* The catalog lives in the schema named by schema=, at version 5; ids come
 * from the database and are never given again. */
static void test_pg_schema(void **state)
{
	struct fixture *fx = *state;
	char sql[256], out[64], err[512];
	int64_t first, second;
	cJSON *row = NULL;

	snprintf(sql, sizeof(sql), "SELECT version FROM \"%s\".schema_version", fx->schema);
	assert_int_equal(pg_run(sql, out, sizeof(out)), 0);
	assert_string_equal(out, "7");
	snprintf(sql, sizeof(sql), "SELECT to_regclass('\"%s\".jobs')::text", fx->schema);
	assert_int_equal(pg_run(sql, out, sizeof(out)), 0);
	assert_string_not_equal(out, "");
	first = make_service(fx->st, "one", 8);
	assert_int_equal(store_row_delete(fx->st, STORE_SERVICE, first, err, sizeof(err)), 0);
	second = make_service(fx->st, "two", 8);
	assert_true(second > first);
	assert_int_equal(store_row_get(fx->st, STORE_SERVICE, second, &row, err, sizeof(err)), 0);
	/* The same text as SQLite's: 2026-12-07T12:00:00Z */
	assert_int_equal(strlen(row_str(row, "created_at")), 20);
	assert_int_equal(row_str(row, "created_at")[10], 'T');
	assert_int_equal(row_str(row, "created_at")[19], 'Z');
	cJSON_Delete(row);
}

/* A second controller (its own data directory) on the same catalog sees
 * every change of the first at once, and the other way round; spec_cu holds
 * across both. */
static void test_pg_two_controllers_one_catalog(void **state)
{
	struct fixture *fx = *state;
	struct fixture other = *fx;
	struct store *st2 = NULL;
	int64_t sv, src, a, b;
	char err[512];
	cJSON *row = NULL, *in;

	snprintf(other.dir, sizeof(other.dir), "%.250s-2", fx->dir);
	assert_int_equal(open_store(&other, &st2, err, sizeof(err)), 0);
	sv = make_service(fx->st, "shared", 1);
	assert_int_equal(store_row_get(st2, STORE_SERVICE, sv, &row, err, sizeof(err)), 0);
	assert_string_equal(row_str(row, "name"), "shared");
	cJSON_Delete(row);
	in = cJSON_CreateObject();
	cJSON_AddStringToObject(in, "description", "changed by the second");
	assert_int_equal(store_row_update(st2, STORE_SERVICE, sv, in, err, sizeof(err)), 0);
	cJSON_Delete(in);
	assert_int_equal(store_row_get(fx->st, STORE_SERVICE, sv, &row, err, sizeof(err)), 0);
	assert_string_equal(row_str(row, "description"), "changed by the second");
	cJSON_Delete(row);

	src = make_source(st2, "src", sv);
	a = make_job(fx->st, "a", src, "wizard", wizard_def);
	b = make_job(st2, "b", src, "wizard", wizard_def);
	assert_int_equal(store_job_start(fx->st, a, err, sizeof(err)), 0);
	assert_int_equal(store_job_start(st2, b, err, sizeof(err)), STORE_CONFLICT);
	assert_non_null(strstr(err, "runs 1 of 1"));
	row = get_job(st2, a);
	assert_string_equal(row_str(row, "desired_state"), "running");
	cJSON_Delete(row);
	/* A name taken through the other. */
	in = cJSON_CreateObject();
	cJSON_AddNumberToObject(in, "service_id", (double)sv);
	cJSON_AddStringToObject(in, "name", "src");
	cJSON_AddStringToObject(in, "brokers", "k:9092");
	cJSON_AddStringToObject(in, "topic", "t");
	assert_int_equal(store_row_create(fx->st, STORE_SOURCE, in, &a, err, sizeof(err)),
			 STORE_CONFLICT);
	cJSON_Delete(in);
	store_close(st2);
	remove_dir(other.dir);
}

struct opener {
	struct fixture fx;
	struct store *st;
	int64_t job;
	int rc;
	char err[512];
	pthread_barrier_t *go;
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;

	pthread_barrier_wait(o->go);
	o->rc = open_store(&o->fx, &o->st, o->err, sizeof(o->err));
	return NULL;
}

static void *start_thread(void *arg)
{
	struct opener *o = arg;

	pthread_barrier_wait(o->go);
	o->rc = store_job_start(o->st, o->job, o->err, sizeof(o->err));
	return NULL;
}

#define OPENERS 4

/* Controllers starting together on an empty catalog: each one opens, the
 * schema is made once (the advisory lock), and then jobs started at the
 * same instant through each of them still respect spec_cu (serializable
 * transactions, run again when they lose). */
static void test_pg_concurrent_controllers(void **state)
{
	struct fixture *fx = *state;
	struct opener o[OPENERS];
	pthread_t th[OPENERS];
	pthread_barrier_t go;
	char sql[128], out[64];
	int64_t sv, src;
	int started = 0;

	store_close(fx->st);
	fx->st = NULL;
	snprintf(sql, sizeof(sql), "DROP SCHEMA \"%s\" CASCADE", fx->schema);
	assert_int_equal(pg_run(sql, NULL, 0), 0);
	pthread_barrier_init(&go, NULL, OPENERS);
	for (int i = 0; i < OPENERS; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].fx = *fx;
		snprintf(o[i].fx.dir, sizeof(o[i].fx.dir), "%.250s-%d", fx->dir, i % 10);
		o[i].go = &go;
		assert_int_equal(pthread_create(&th[i], NULL, open_thread, &o[i]), 0);
	}
	for (int i = 0; i < OPENERS; i++) {
		pthread_join(th[i], NULL);
		if (o[i].rc != 0)
			fprintf(stderr, "open %d: %s\n", i, o[i].err);
		assert_int_equal(o[i].rc, 0);
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\".schema_version", fx->schema);
	assert_int_equal(pg_run(sql, out, sizeof(out)), 0);
	assert_string_equal(out, "1");

	sv = make_service(o[0].st, "two-cu", 2);
	src = make_source(o[0].st, "src", sv);
	for (int i = 0; i < OPENERS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "job%d", i);
		o[i].job = make_job(o[0].st, name, src, "wizard", wizard_def);
	}
	for (int i = 0; i < OPENERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, start_thread, &o[i]), 0);
	for (int i = 0; i < OPENERS; i++) {
		pthread_join(th[i], NULL);
		if (o[i].rc == 0)
			started++;
		else if (o[i].rc != STORE_CONFLICT)
			fprintf(stderr, "start %d: %s\n", i, o[i].err);
		assert_true(o[i].rc == 0 || o[i].rc == STORE_CONFLICT);
	}
	assert_int_equal(started, 2);
	pthread_barrier_destroy(&go);
	fx->st = o[0].st;
	for (int i = 1; i < OPENERS; i++) {
		store_close(o[i].st);
		remove_dir(o[i].fx.dir);
	}
	/* the fixture's directory is o[0]'s sibling: keep teardown's path */
	remove_dir(o[0].fx.dir);
}

/* The cluster's tables: controllers renew their rows, one can be drained,
 * and what each says of its tasks replaces what it said before. */
static void test_cluster_members_and_task_status(void **state)
{
	struct fixture *fx = *state;
	struct store_member *m = NULL;
	struct store_task_status rows[2], *got = NULL;
	size_t n = 0;
	char err[512];

	assert_int_equal(store_member_beat(fx->st, "ctl-b", "http://10.0.0.2:8080", true, err, sizeof(err)), 0);
	assert_int_equal(store_member_beat(fx->st, "ctl-a", "http://10.0.0.1:8080", true, err, sizeof(err)), 0);
	assert_int_equal(store_member_beat(fx->st, "ctl-a", "http://10.0.0.1:8081", false, err, sizeof(err)), 0);
	assert_int_equal(store_members(fx->st, &m, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(m[0].name, "ctl-a");
	assert_string_equal(m[0].api_url, "http://10.0.0.1:8081");
	assert_true(m[0].age_ms >= -1000 && m[0].age_ms < 5000);
	assert_false(m[0].draining);
	free(m);

	assert_int_equal(store_member_set_draining(fx->st, "ctl-b", true, err, sizeof(err)), 0);
	assert_int_equal(store_member_set_draining(fx->st, "nobody", true, err, sizeof(err)), STORE_NOT_FOUND);
	assert_int_equal(store_member_beat(fx->st, "ctl-b", "http://10.0.0.2:8080", false, err, sizeof(err)), 0);
	assert_int_equal(store_members(fx->st, &m, &n, err, sizeof(err)), 0);
	assert_true(n == 2 && m[1].draining);
	free(m);
	/* A controller that starts again is no longer draining. */
	assert_int_equal(store_member_beat(fx->st, "ctl-b", "http://10.0.0.2:8080", true, err, sizeof(err)), 0);
	assert_int_equal(store_members(fx->st, &m, &n, err, sizeof(err)), 0);
	assert_true(n == 2 && !m[1].draining);
	free(m);

	memset(rows, 0, sizeof(rows));
	rows[0].job_id = 7;
	rows[0].task = 1;
	rows[0].pid = 123;
	snprintf(rows[0].state, sizeof(rows[0].state), "running");
	snprintf(rows[0].partitions, sizeof(rows[0].partitions), "[1,4]");
	rows[0].rows_per_second = 12.5;
	rows[0].lag = 40;
	rows[1] = rows[0];
	rows[1].task = 2;
	rows[1].lag = -1;
	snprintf(rows[1].last_error, sizeof(rows[1].last_error), "broker down");
	if (store_task_status_publish(fx->st, "ctl-a", rows, 2, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	rows[0].job_id = 8;
	assert_int_equal(store_task_status_publish(fx->st, "ctl-b", rows, 1, err, sizeof(err)), 0);
	assert_int_equal(store_task_status_list(fx->st, 7, &got, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(got[0].controller, "ctl-a");
	assert_int_equal(got[0].task, 1);
	assert_string_equal(got[0].partitions, "[1,4]");
	assert_true(got[0].rows_per_second > 12.4 && got[0].rows_per_second < 12.6);
	assert_int_equal(got[0].lag, 40);
	assert_int_equal(got[1].lag, -1);
	assert_string_equal(got[1].last_error, "broker down");
	free(got);
	/* Publishing again replaces the controller's rows. */
	assert_int_equal(store_task_status_publish(fx->st, "ctl-a", rows + 1, 1, err, sizeof(err)), 0);
	assert_int_equal(store_task_status_list(fx->st, 0, &got, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	free(got);
	/* A controller that leaves takes its rows along. */
	assert_int_equal(store_member_leave(fx->st, "ctl-a", 0, err, sizeof(err)), 0);
	assert_int_equal(store_task_status_list(fx->st, 0, &got, &n, err, sizeof(err)), 0);
	assert_true(n == 1 && got[0].job_id == 8);
	free(got);
	assert_int_equal(store_members(fx->st, &m, &n, err, sizeof(err)), 0);
	assert_true(n == 1 && strcmp(m[0].name, "ctl-b") == 0);
	free(m);
	/* Gone for longer than an hour: none here. */
	assert_int_equal(store_member_leave(fx->st, NULL, 3600 * 1000, err, sizeof(err)), 0);
	assert_int_equal(store_members(fx->st, &m, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	free(m);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	/* Every backend. */
	static const struct CMUnitTest common[] = {
		TEST(test_open_refuses_a_used_data_dir),
		TEST(test_reopen_keeps_data),
		TEST(test_service_crud),
		TEST(test_unique_names),
		TEST(test_references_must_exist),
		TEST(test_source_row),
		TEST(test_delete_refused_while_referenced),
		TEST(test_counters_add_up),
		TEST(test_start_and_stop),
		TEST(test_counters_since_start),
		TEST(test_last_exit),
		TEST(test_service_tls_defaults_and_job_override),
		TEST(test_schedule_comes_from_the_job),
		TEST(test_cluster_members_and_task_status),
		TEST(test_spec_cu_counts_tasks),
		TEST(test_task_pids),
		TEST(test_worker_input_task),
		TEST(test_brief_lists_desired_states),
		TEST(test_worker_input_holds_the_password),
		TEST(test_worker_input_of_invalid_job),
		TEST(test_wizard_needs_a_delimited_source),
	};
	/* The SQLite file. */
	static const struct CMUnitTest sqlite_only[] = {
		TEST(test_open_creates_private_file),
		TEST(test_open_fixes_mode_of_existing_file),
		TEST(test_migration_from_v1),
		TEST(test_migration_from_v2),
		TEST(test_migration_from_v3),
	};
	/* The PostgreSQL schema. */
	static const struct CMUnitTest pg_only[] = {
		TEST(test_pg_schema),
		TEST(test_pg_two_controllers_one_catalog),
		TEST(test_pg_concurrent_controllers),
	};
	struct CMUnitTest tests[sizeof(common) / sizeof(common[0]) + 8];
	const struct CMUnitTest *extra;
	size_t n = 0, nextra;
	const char *uri = getenv("STREAMSERVER_TEST_STORE");

	if (uri != NULL && *uri != '\0' && strncmp(uri, "sqlite:", 7) != 0) {
		pg_base = uri;
		extra = pg_only;
		nextra = sizeof(pg_only) / sizeof(pg_only[0]);
	} else {
		extra = sqlite_only;
		nextra = sizeof(sqlite_only) / sizeof(sqlite_only[0]);
	}
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		tests[n++] = common[i];
	for (size_t i = 0; i < nextra; i++)
		tests[n++] = extra[i];
	return _cmocka_run_group_tests(pg_base != NULL ? "store (postgresql)" : "store (sqlite)",
				       tests, n, NULL, NULL);
}
