/* What --store takes: the kinds of URI, schema=, and a password never shown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "store_uri.h"
#include "workerenv.h"

static void test_sqlite_forms(void **state)
{
	struct store_uri u;
	char err[256];

	(void)state;
	assert_int_equal(store_uri_parse(NULL, &u, err, sizeof(err)), 0);
	assert_int_equal(u.kind, STORE_URI_SQLITE);
	assert_null(u.path);
	store_uri_free(&u);
	assert_int_equal(store_uri_parse("sqlite:/var/lib/ss/catalog.db", &u, err, sizeof(err)), 0);
	assert_int_equal(u.kind, STORE_URI_SQLITE);
	assert_string_equal(u.path, "/var/lib/ss/catalog.db");
	store_uri_free(&u);
	assert_int_equal(store_uri_parse("./catalog.db", &u, err, sizeof(err)), 0);
	assert_string_equal(u.path, "./catalog.db");
	store_uri_free(&u);
	assert_int_equal(store_uri_parse("sqlite:", &u, err, sizeof(err)), -1);
	assert_int_equal(store_uri_parse("mysql://u:pw@h/db", &u, err, sizeof(err)), -1);
	assert_null(strstr(err, "pw"));
}

static void test_pg_schema_parameter(void **state)
{
	struct store_uri u;
	char err[256];

	(void)state;
	assert_int_equal(store_uri_parse("postgresql://app@db:5432/cat", &u, err, sizeof(err)), 0);
	assert_int_equal(u.kind, STORE_URI_PG);
	assert_string_equal(u.schema, "streamserver");
	assert_string_equal(u.conninfo, "postgresql://app@db:5432/cat");
	store_uri_free(&u);
	assert_int_equal(store_uri_parse("postgres://app@db/cat?sslmode=require&schema=ss%2Dprod"
					 "&connect_timeout=5",
					 &u, err, sizeof(err)),
			 0);
	assert_string_equal(u.schema, "ss-prod");
	assert_string_equal(u.conninfo, "postgres://app@db/cat?sslmode=require&connect_timeout=5");
	store_uri_free(&u);
	assert_int_equal(store_uri_parse("postgresql://db/cat?schema=", &u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "schema="));
	assert_int_equal(store_uri_parse("postgresql://db/cat?schema=%zz", &u, err, sizeof(err)), -1);
	/* libpq's own check: a parameter it does not know. */
	assert_int_equal(store_uri_parse("postgresql://u:hunter2@db/cat?nosuch=1", &u, err,
					 sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "nosuch"));
	assert_null(strstr(err, "hunter2"));
}

static void test_password_found_and_hidden(void **state)
{
	char buf[256];

	(void)state;
	assert_true(store_uri_has_password("postgresql://app:hunter2@db/cat"));
	assert_true(store_uri_has_password("postgresql://app@db/cat?password=hunter2"));
	assert_true(store_uri_has_password("postgres://app@db/cat?sslmode=require&password=x"));
	assert_false(store_uri_has_password("postgresql://app@db:5432/cat"));
	assert_false(store_uri_has_password("postgresql://db:5432/cat?user=app"));
	assert_false(store_uri_has_password("sqlite:/a:b@c"));

	store_uri_redact("postgresql://app:hunter2@db:5432/cat?schema=s", buf, sizeof(buf));
	assert_string_equal(buf, "postgresql://app@db:5432/cat?schema=s");
	store_uri_redact("postgresql://app@db/cat?password=hunter2&sslmode=require", buf,
			 sizeof(buf));
	assert_string_equal(buf, "postgresql://app@db/cat?sslmode=require");
	store_uri_redact("postgresql://app:hunter2@db/cat", buf, 12);
	assert_null(strstr(buf, "hunter2"));
	store_uri_redact("sqlite:/x/y.db", buf, sizeof(buf));
	assert_string_equal(buf, "sqlite:/x/y.db");
}

/* The catalog's URI may hold its password: no worker inherits it. */
static void test_workers_never_get_the_store(void **state)
{
	(void)state;
	assert_true(worker_env_is_secret("STREAMSERVER_STORE=postgresql://a:b@h/d"));
	assert_true(worker_env_is_secret("STREAMSERVER_STORE"));
	assert_false(worker_env_is_secret("STREAMSERVER_STORE_X=1"));
	assert_false(worker_env_is_secret("STREAMSERVER_LOG_FORMAT=json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlite_forms),
		cmocka_unit_test(test_pg_schema_parameter),
		cmocka_unit_test(test_password_found_and_hidden),
		cmocka_unit_test(test_workers_never_get_the_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
