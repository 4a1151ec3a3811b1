/* A job's tasks set in its stored definition (api/api_job_tasks.c): the
 * user's YAML keeps its text where a TASKS line does it, and reads back with
 * the new TASKS either way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api_job_tasks.h"
#include "jobspec.h"

static const char job[] =
	"# orders, from the shop's topic\n"
	"DATABASE: shop\n"
	"USER: loader\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    VALUE:\n"
	"      COLUMNS:\n"
	"        - NAME: id\n"
	"  OUTPUT:\n"
	"    TABLE: orders\n";

static int tasks_of(const char *yaml)
{
	struct js_errors errs;
	struct jobspec *spec = NULL;
	int n;

	assert_int_equal(jobspec_parse_yaml(yaml, strlen(yaml), &spec, &errs), 0);
	n = spec->tasks;
	jobspec_free(spec);
	return n;
}

static void test_added_then_replaced(void **state)
{
	char *three = api_config_set_tasks(job, 3), *one;

	assert_non_null(three);
	assert_int_equal(tasks_of(three), 3);
	/* The user's text stays, comment included. */
	assert_non_null(strstr(three, "# orders, from the shop's topic\n"));
	assert_non_null(strstr(three, job));
	one = api_config_set_tasks(three, 1);
	assert_int_equal(tasks_of(one), 1);
	assert_non_null(strstr(one, "TASKS: 1\n"));
	assert_null(strstr(one, "TASKS: 3"));
	free(three);
	free(one);
}

static void test_document_marker_and_spelling(void **state)
{
	char text[sizeof(job) + 64];
	char *out;

	snprintf(text, sizeof(text), "---\n%s", job);
	out = api_config_set_tasks(text, 4);
	assert_int_equal(strncmp(out, "---\nTASKS: 4\n", 13), 0);
	assert_int_equal(tasks_of(out), 4);
	free(out);
	snprintf(text, sizeof(text), "%stasks   : 7\n", job);
	out = api_config_set_tasks(text, 2);
	assert_int_equal(tasks_of(out), 2);
	assert_null(strstr(out, "7"));
	free(out);
}

/* A flow-style job has no line to edit: it is written anew. */
static void test_flow_style_written_anew(void **state)
{
	static const char flow[] = "{DATABASE: shop, USER: loader, KAFKA: {OUTPUT: {TABLE: orders}}}";
	char *out = api_config_set_tasks(flow, 5);

	assert_non_null(out);
	assert_int_equal(tasks_of(out), 5);
	assert_non_null(strstr(out, "TABLE: orders"));
	free(out);
	assert_null(api_config_set_tasks("KAFKA: [", 2));
}

static void test_wizard_fields(void **state)
{
	char *out = api_definition_set_tasks("wizard", "{\"database\":\"d\",\"tasks\":2}", 6);

	assert_string_equal(out, "{\"database\":\"d\",\"tasks\":6}");
	free(out);
	assert_null(api_definition_set_tasks("wizard", "[1]", 2));
	out = api_definition_set_tasks("professional", job, 2);
	assert_int_equal(tasks_of(out), 2);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_added_then_replaced),
		cmocka_unit_test(test_document_marker_and_spelling),
		cmocka_unit_test(test_flow_style_written_anew),
		cmocka_unit_test(test_wizard_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
