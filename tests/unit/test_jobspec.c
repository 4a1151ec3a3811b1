/* Unit tests of the job model: YAML parsing and emitting, wizard fields,
 * defaults and validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobspec.h"

/* ---- helpers ---- */

static struct jobspec *parse_ok(const char *yaml)
{
	struct js_errors errs;
	struct jobspec *spec = NULL;
	int rc = jobspec_parse_yaml(yaml, strlen(yaml), &spec, &errs);

	if (rc != 0) {
		char buf[4096];

		js_errors_format(&errs, buf, sizeof(buf));
		fail_msg("parse failed: %s\n--- yaml ---\n%s", buf, yaml);
	}
	assert_non_null(spec);
	assert_int_equal(errs.count, 0);
	return spec;
}

static void parse_fail(const char *yaml, struct js_errors *errs)
{
	struct jobspec *spec = (struct jobspec *)1;

	assert_int_equal(jobspec_parse_yaml(yaml, strlen(yaml), &spec, errs), -1);
	assert_null(spec);
	assert_true(errs->count > 0);
}

static const struct js_error *find_err(const struct js_errors *errs, const char *path)
{
	for (size_t i = 0; i < errs->count; i++)
		if (strcmp(errs->items[i].path, path) == 0)
			return &errs->items[i];
	return NULL;
}

static const char *current_case; /* printed when a table-driven case fails */

static void dump_errs(const struct js_errors *errs)
{
	if (current_case != NULL)
		print_message("case:\n%s\n", current_case);
	for (size_t i = 0; i < errs->count; i++)
		print_message("  [%zu] %s (line %d): %s\n", i, errs->items[i].path, errs->items[i].line,
			      errs->items[i].message);
}

static void assert_err(const struct js_errors *errs, const char *path, int line, const char *substr)
{
	const struct js_error *e = find_err(errs, path);

	if (e == NULL) {
		dump_errs(errs);
		fail_msg("no error at path \"%s\"", path);
	}
	if (line >= 0 && e->line != line) {
		dump_errs(errs);
		fail_msg("error at %s: line %d, expected %d", path, e->line, line);
	}
	if (substr != NULL && strstr(e->message, substr) == NULL) {
		dump_errs(errs);
		fail_msg("error at %s: \"%s\" lacks \"%s\"", path, e->message, substr);
	}
}

/* The 1-based line of the first occurrence of needle in text. */
static int line_of(const char *text, const char *needle)
{
	const char *at = strstr(text, needle);
	int line = 1;

	assert_non_null(at);
	for (const char *p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

/* The seed's appendix example, as multi-line YAML, hosts replaced, MODE MERGE. */
static const char seed_yaml[] =
	"DATABASE: liss_test\n"
	"USER: liss_test\n"
	"PASSWORD: lissTest1234\n"
	"HOST: adbpg.example.internal\n"
	"PORT: 5432\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    SOURCE:\n"
	"      BROKERS: kafka-1.example.internal:9092,kafka-2.example.internal:9092,kafka-3.example.internal:9092\n"
	"      TOPIC: test_topic\n"
	"      FALLBACK_OFFSET: EARLIEST\n"
	"    VALUE:\n"
	"      COLUMNS:\n"
	"        - NAME: column_1\n"
	"          TYPE: varchar(32)\n"
	"        - NAME: column_2\n"
	"          TYPE: bigint\n"
	"        - NAME: column_3\n"
	"          TYPE: numeric\n"
	"        - NAME: column_4\n"
	"          TYPE: varchar(32)\n"
	"        - NAME: column_5\n"
	"          TYPE: varchar(32)\n"
	"      FORMAT: delimited\n"
	"      DELIMITED_OPTION:\n"
	"        DELIMITER: \"|\"\n"
	"    ERROR_LIMIT: 20\n"
	"  OUTPUT:\n"
	"    SCHEMA: liss_test\n"
	"    TABLE: liss_test_plaintext\n"
	"    MODE: MERGE\n"
	"    MATCH_COLUMNS:\n"
	"      - column_1\n"
	"      - column_2\n"
	"    UPDATE_COLUMNS:\n"
	"      - column_3\n"
	"      - column_4\n"
	"      - column_5\n"
	"    MAPPING:\n"
	"      - NAME: column_1\n"
	"        EXPRESSION: column_1\n"
	"      - NAME: column_2\n"
	"        EXPRESSION: column_2\n"
	"      - NAME: column_3\n"
	"        EXPRESSION: column_3\n"
	"      - NAME: column_4\n"
	"        EXPRESSION: column_4\n"
	"      - NAME: column_5\n"
	"        EXPRESSION: column_5\n"
	"  COMMIT:\n"
	"    MAX_ROW: 1000\n"
	"    MINIMAL_INTERVAL: 1000\n"
	"    CONSISTENCY: ATLEAST\n"
	"  POLL:\n"
	"    BATCHSIZE: 1000\n"
	"    TIMEOUT: 1000\n"
	"  PROPERTIES:\n"
	"    group.id: test_consumer_group\n";

/* A small job that validates once the defaults are applied. */
static const char minimal_yaml[] =
	"DATABASE: db\n"
	"USER: loader\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    VALUE:\n"
	"      COLUMNS:\n"
	"        - NAME: id\n"
	"          TYPE: bigint\n"
	"        - NAME: note\n"
	"  OUTPUT:\n"
	"    TABLE: orders\n";

static const struct js_defaults std_defaults = {
	.brokers = "localhost:9092",
	.topic = "orders",
	.format = JS_FORMAT_DELIMITED,
	.delimiter = "|",
	.host = "127.0.0.1",
	.port = 5432,
};

static struct jobspec *minimal_valid(void)
{
	struct jobspec *spec = parse_ok(minimal_yaml);

	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	return spec;
}

static void validate_fail(const struct jobspec *spec, struct js_errors *errs)
{
	assert_int_equal(jobspec_validate(spec, errs), -1);
	assert_true(errs->count > 0);
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* ---- the seed example ---- */

static void test_seed_example_every_field(void **state)
{
	struct jobspec *spec = parse_ok(seed_yaml);
	static const char *const types[] = { "varchar(32)", "bigint", "numeric", "varchar(32)", "varchar(32)" };

	assert_string_equal(spec->database, "liss_test");
	assert_string_equal(spec->user, "liss_test");
	assert_string_equal(spec->password, "lissTest1234");
	assert_string_equal(spec->host, "adbpg.example.internal");
	assert_int_equal(spec->port, 5432);
	assert_int_equal(spec->version, 2);
	assert_string_equal(spec->brokers,
			    "kafka-1.example.internal:9092,kafka-2.example.internal:9092,kafka-3.example.internal:9092");
	assert_string_equal(spec->topic, "test_topic");
	assert_null(spec->partitions);
	assert_int_equal(spec->npartitions, 0);
	assert_int_equal(spec->fallback_offset, JS_FALLBACK_EARLIEST);

	assert_false(spec->key.present);
	assert_true(spec->value.present);
	assert_int_equal(spec->value.line, line_of(seed_yaml, "    VALUE:"));
	assert_int_equal(spec->value.line, 12);
	assert_int_equal(spec->value.ncolumns, 5);
	for (size_t i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "column_%zu", i + 1);
		assert_string_equal(spec->value.columns[i].name, name);
		assert_string_equal(spec->value.columns[i].type, types[i]);
	}
	assert_int_equal(spec->value.format, JS_FORMAT_DELIMITED);
	assert_string_equal(spec->value.delimiter, "|");
	assert_null(spec->value.quote);
	assert_null(spec->value.escape);
	assert_null(spec->value.null_string);
	assert_false(spec->meta_present);
	assert_null(spec->meta_column);
	assert_int_equal(spec->error_limit, 20);
	assert_false(spec->error_limit_percent);

	assert_string_equal(spec->schema, "liss_test");
	assert_string_equal(spec->table, "liss_test_plaintext");
	assert_int_equal(spec->mode, JS_MODE_MERGE);
	assert_int_equal(spec->nmatch_columns, 2);
	assert_string_equal(spec->match_columns[0], "column_1");
	assert_string_equal(spec->match_columns[1], "column_2");
	assert_int_equal(spec->norder_columns, 0);
	assert_null(spec->order_columns);
	assert_int_equal(spec->nupdate_columns, 3);
	assert_string_equal(spec->update_columns[0], "column_3");
	assert_string_equal(spec->update_columns[1], "column_4");
	assert_string_equal(spec->update_columns[2], "column_5");
	assert_int_equal(spec->nmapping, 5);
	for (size_t i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "column_%zu", i + 1);
		assert_string_equal(spec->mapping[i].name, name);
		assert_string_equal(spec->mapping[i].expression, name);
	}
	assert_null(spec->metadata_schema);
	assert_int_equal(spec->commit_max_row, 1000);
	assert_int_equal(spec->commit_minimal_interval_ms, 1000);
	assert_int_equal(spec->consistency, JS_CONSISTENCY_ATLEAST);
	assert_int_equal(spec->poll_batchsize, 1000);
	assert_int_equal(spec->poll_timeout_ms, 1000);
	assert_int_equal(spec->nproperties, 1);
	assert_string_equal(spec->properties[0].key, "group.id");
	assert_string_equal(spec->properties[0].value, "test_consumer_group");
	assert_string_equal(jobspec_property(spec, "group.id"), "test_consumer_group");
	assert_int_equal(spec->retry_interval_ms, 5000);
	assert_int_equal(spec->max_retries, 0);
	jobspec_free(spec);
}

static void test_seed_example_validates(void **state)
{
	struct jobspec *spec = parse_ok(seed_yaml);
	struct js_errors errs;

	/* MERGE is supported now. */
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	assert_int_equal(errs.count, 0);

	/* The same job in INSERT mode keeps its MATCH/UPDATE_COLUMNS, ignored. */
	spec->mode = JS_MODE_INSERT;
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	assert_int_equal(errs.count, 0);
	jobspec_free(spec);
}

/* ---- every key with a right value ---- */

static const char all_keys_yaml[] =
	"database: sales\n"
	"User: 'loader'\n"
	"PASSWORD: \"s3cret: #1\"\n"
	"HOST: db1\n"
	"PORT: 6543\n"
	"VERSION: 2\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    SOURCE:\n"
	"      BROKERS: k1:9092\n"
	"      TOPIC: events\n"
	"      PARTITIONS: (0,2,5)\n"
	"      FALLBACK_OFFSET: Latest\n"
	"    KEY:\n"
	"      COLUMNS:\n"
	"        - NAME: k\n"
	"          TYPE: text\n"
	"      FORMAT: csv\n"
	"      CSV_OPTION:\n"
	"        DELIMITER: ';'\n"
	"        QUOTE: \"'\"\n"
	"        NULL_STRING: NULL\n"
	"        ESCAPE: '\\'\n"
	"    VALUE:\n"
	"      COLUMNS:\n"
	"        - NAME: a\n"
	"          TYPE: int\n"
	"        - name: b\n"
	"      format: DELIMITED\n"
	"      delimited_option:\n"
	"        DELIMITER: '||'\n"
	"        QUOTE: '\"'\n"
	"        ESCAPE: '!'\n"
	"    META:\n"
	"      COLUMNS:\n"
	"        - NAME: meta\n"
	"          TYPE: JSONB\n"
	"      FORMAT: json\n"
	"    ERROR_LIMIT: 5%\n"
	"  OUTPUT:\n"
	"    SCHEMA: s1\n"
	"    TABLE: t1\n"
	"    MODE: update\n"
	"    MATCH_COLUMNS: [a]\n"
	"    ORDER_COLUMNS: [b]\n"
	"    UPDATE_COLUMNS:\n"
	"      - b\n"
	"    MAPPING:\n"
	"      a: a\n"
	"      b: upper(b)\n"
	"  METADATA:\n"
	"    schema: aux\n"
	"  COMMIT:\n"
	"    MAX_ROW: 1\n"
	"    MINIMAL_INTERVAL: 0\n"
	"    CONSISTENCY: strong\n"
	"  POLL:\n"
	"    BATCHSIZE: 1\n"
	"    TIMEOUT: 0\n"
	"  PROPERTIES:\n"
	"    group.id: g1\n"
	"    fetch.min.bytes: 1024\n"
	"    check.crcs: true\n"
	"SCHEDULE:\n"
	"  RETRY_INTERVAL: 2m\n"
	"  MAX_RETRIES: 7\n";

static void test_every_key_right_value(void **state)
{
	struct jobspec *spec = parse_ok(all_keys_yaml);

	assert_string_equal(spec->database, "sales");
	assert_string_equal(spec->user, "loader");
	assert_string_equal(spec->password, "s3cret: #1");
	assert_string_equal(spec->host, "db1");
	assert_int_equal(spec->port, 6543);
	assert_int_equal(spec->version, 2);
	assert_string_equal(spec->brokers, "k1:9092");
	assert_string_equal(spec->topic, "events");
	assert_int_equal(spec->npartitions, 3);
	assert_int_equal(spec->partitions[0], 0);
	assert_int_equal(spec->partitions[1], 2);
	assert_int_equal(spec->partitions[2], 5);
	assert_int_equal(spec->fallback_offset, JS_FALLBACK_LATEST);

	assert_true(spec->key.present);
	assert_int_equal(spec->key.line, line_of(all_keys_yaml, "    KEY:"));
	assert_int_equal(spec->key.ncolumns, 1);
	assert_string_equal(spec->key.columns[0].name, "k");
	assert_string_equal(spec->key.columns[0].type, "text");
	assert_int_equal(spec->key.format, JS_FORMAT_CSV);
	assert_string_equal(spec->key.delimiter, ";");
	assert_string_equal(spec->key.quote, "'");
	assert_string_equal(spec->key.null_string, "NULL"); /* text here, though YAML's null word */
	assert_string_equal(spec->key.escape, "\\");

	assert_true(spec->value.present);
	assert_int_equal(spec->value.line, line_of(all_keys_yaml, "    VALUE:"));
	assert_int_equal(spec->value.ncolumns, 2);
	assert_string_equal(spec->value.columns[0].name, "a");
	assert_string_equal(spec->value.columns[0].type, "int");
	assert_string_equal(spec->value.columns[1].name, "b");
	assert_null(spec->value.columns[1].type);
	assert_int_equal(spec->value.format, JS_FORMAT_DELIMITED);
	assert_string_equal(spec->value.delimiter, "||");
	assert_string_equal(spec->value.quote, "\"");
	assert_string_equal(spec->value.escape, "!");
	assert_null(spec->value.null_string);

	assert_true(spec->meta_present);
	assert_string_equal(spec->meta_column, "meta");
	assert_string_equal(spec->meta_type, "jsonb");
	assert_int_equal(spec->error_limit, 5);
	assert_true(spec->error_limit_percent);

	assert_string_equal(spec->schema, "s1");
	assert_string_equal(spec->table, "t1");
	assert_int_equal(spec->mode, JS_MODE_UPDATE);
	assert_int_equal(spec->nmatch_columns, 1);
	assert_string_equal(spec->match_columns[0], "a");
	assert_int_equal(spec->norder_columns, 1);
	assert_string_equal(spec->order_columns[0], "b");
	assert_int_equal(spec->nupdate_columns, 1);
	assert_string_equal(spec->update_columns[0], "b");
	assert_int_equal(spec->nmapping, 2);
	assert_string_equal(spec->mapping[0].name, "a");
	assert_string_equal(spec->mapping[0].expression, "a");
	assert_string_equal(spec->mapping[1].name, "b");
	assert_string_equal(spec->mapping[1].expression, "upper(b)");
	assert_string_equal(spec->metadata_schema, "aux");
	assert_int_equal(spec->commit_max_row, 1);
	assert_int_equal(spec->commit_minimal_interval_ms, 0);
	assert_int_equal(spec->consistency, JS_CONSISTENCY_EXACTLY);
	assert_int_equal(spec->poll_batchsize, 1);
	assert_int_equal(spec->poll_timeout_ms, 0);
	assert_int_equal(spec->nproperties, 3);
	assert_string_equal(spec->properties[0].key, "group.id");
	assert_string_equal(spec->properties[1].key, "fetch.min.bytes");
	assert_string_equal(spec->properties[1].value, "1024");
	assert_string_equal(spec->properties[2].key, "check.crcs");
	assert_string_equal(spec->properties[2].value, "true");
	assert_string_equal(jobspec_property(spec, "check.crcs"), "true");
	assert_null(jobspec_property(spec, "CHECK.CRCS"));
	assert_null(jobspec_property(spec, "nope"));
	assert_int_equal(spec->retry_interval_ms, 120000);
	assert_int_equal(spec->max_retries, 7);
	jobspec_free(spec);
}

static void test_enum_spellings(void **state)
{
	static const struct {
		const char *yaml;
		int consistency;
	} cases[] = {
		{ "KAFKA:\n  COMMIT:\n    CONSISTENCY: ATLEAST\n", JS_CONSISTENCY_ATLEAST },
		{ "KAFKA:\n  COMMIT:\n    CONSISTENCY: at-least\n", JS_CONSISTENCY_ATLEAST },
		{ "KAFKA:\n  COMMIT:\n    CONSISTENCY: exactly\n", JS_CONSISTENCY_EXACTLY },
		{ "KAFKA:\n  COMMIT:\n    CONSISTENCY: Strong\n", JS_CONSISTENCY_EXACTLY },
		{ "KAFKA:\n  COMMIT:\n    CONSISTENCY: at-most\n", JS_CONSISTENCY_ATMOST },
		{ "KAFKA:\n  COMMIT:\n    CONSISTENCY: NONE\n", JS_CONSISTENCY_NONE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jobspec *spec = parse_ok(cases[i].yaml);

		assert_int_equal(spec->consistency, cases[i].consistency);
		jobspec_free(spec);
	}
	assert_int_equal(js_mode_parse("merge"), JS_MODE_MERGE);
	assert_int_equal(js_mode_parse("Insert"), JS_MODE_INSERT);
	assert_int_equal(js_mode_parse("upsert"), -1);
	assert_int_equal(js_format_parse("CSV"), JS_FORMAT_CSV);
	assert_int_equal(js_format_parse("Protobuf"), JS_FORMAT_PROTOBUF);
	assert_int_equal(js_format_parse("AVRO"), JS_FORMAT_AVRO);
	assert_int_equal(js_format_parse("xml"), -1);
	assert_int_equal(js_fallback_parse("LATEST"), JS_FALLBACK_LATEST);
	assert_int_equal(js_fallback_parse(""), -1);
	assert_int_equal(js_consistency_parse(NULL), -1);
	assert_string_equal(js_format_name(JS_FORMAT_DELIMITED), "delimited");
	assert_string_equal(js_format_name(JS_FORMAT_JSON), "json");
	assert_string_equal(js_mode_name(JS_MODE_UPDATE), "UPDATE");
	assert_string_equal(js_consistency_name(JS_CONSISTENCY_ATMOST), "at-most");
	assert_string_equal(js_consistency_name(JS_CONSISTENCY_EXACTLY), "EXACTLY");
	assert_string_equal(js_fallback_name(JS_FALLBACK_EARLIEST), "earliest");
	/* Every name reads back as its value. */
	for (int c = JS_CONSISTENCY_ATLEAST; c <= JS_CONSISTENCY_NONE; c++)
		assert_int_equal(js_consistency_parse(js_consistency_name((enum js_consistency)c)), c);
	for (int f = JS_FORMAT_DELIMITED; f <= JS_FORMAT_AVRO; f++)
		assert_int_equal(js_format_parse(js_format_name((enum js_format)f)), f);
}

static void test_version_forms(void **state)
{
	struct jobspec *spec = parse_ok("VERSION: v2\n");
	struct js_errors errs;

	assert_int_equal(spec->version, 2);
	jobspec_free(spec);
	spec = parse_ok("VERSION: '3'\n");
	assert_int_equal(spec->version, 3);
	jobspec_free(spec);
	parse_fail("VERSION: -2\n", &errs);
	assert_err(&errs, "VERSION", 1, "got \"-2\"");
	parse_fail("VERSION: v\n", &errs);
	assert_err(&errs, "VERSION", 1, "positive integer");
}

static void test_defaults_of_new_spec(void **state)
{
	struct jobspec *spec = parse_ok("DATABASE: db\n");

	assert_int_equal(spec->commit_max_row, 500);
	assert_int_equal(spec->commit_minimal_interval_ms, 1000);
	assert_int_equal(spec->consistency, JS_CONSISTENCY_ATLEAST);
	assert_int_equal(spec->poll_batchsize, 64);
	assert_int_equal(spec->poll_timeout_ms, 5000);
	assert_int_equal(spec->retry_interval_ms, 5000);
	assert_int_equal(spec->max_retries, 0);
	assert_int_equal(spec->mode, JS_MODE_INSERT);
	assert_int_equal(spec->fallback_offset, JS_FALLBACK_EARLIEST);
	assert_int_equal(spec->error_limit, 0);
	assert_false(spec->error_limit_percent);
	assert_int_equal(spec->port, 0);
	assert_null(spec->schema);
	assert_null(spec->password);
	assert_false(spec->value.present);
	jobspec_free(spec);
}

static void test_null_values_are_absent(void **state)
{
	struct jobspec *spec = parse_ok("DATABASE: db\nPASSWORD:\nHOST: ~\nUSER: 'null'\nKAFKA:\n"
					"  COMMIT:\n    MAX_ROW: null\n");

	assert_null(spec->password);
	assert_null(spec->host);
	assert_string_equal(spec->user, "null"); /* quoted: the text */
	assert_int_equal(spec->commit_max_row, 500);
	jobspec_free(spec);
}

/* ---- MAPPING forms ---- */

static void test_mapping_list_form(void **state)
{
	struct jobspec *spec = parse_ok("KAFKA:\n  OUTPUT:\n    MAPPING:\n"
					"      - NAME: id\n        EXPRESSION: a::bigint\n"
					"      - name: total\n        expression: \"b * 2\"\n");

	assert_int_equal(spec->nmapping, 2);
	assert_string_equal(spec->mapping[0].name, "id");
	assert_string_equal(spec->mapping[0].expression, "a::bigint");
	assert_string_equal(spec->mapping[1].name, "total");
	assert_string_equal(spec->mapping[1].expression, "b * 2");
	jobspec_free(spec);
}

static void test_mapping_map_form(void **state)
{
	struct jobspec *spec = parse_ok("KAFKA:\n  OUTPUT:\n    MAPPING:\n"
					"      id: a::bigint\n      total: b * 2\n      Name: c\n");

	assert_int_equal(spec->nmapping, 3);
	assert_string_equal(spec->mapping[0].name, "id");
	assert_string_equal(spec->mapping[0].expression, "a::bigint");
	assert_string_equal(spec->mapping[1].name, "total");
	assert_string_equal(spec->mapping[1].expression, "b * 2");
	assert_string_equal(spec->mapping[2].name, "Name"); /* a column name: case kept */
	assert_string_equal(spec->mapping[2].expression, "c");
	jobspec_free(spec);
}

static void test_mapping_errors(void **state)
{
	struct js_errors errs;

	parse_fail("KAFKA:\n  OUTPUT:\n    MAPPING:\n      id: a\n      id: b\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING.id", 5, "mapped twice");

	parse_fail("KAFKA:\n  OUTPUT:\n    MAPPING:\n      - NAME: id\n        EXPRESSION: a\n"
		   "      - NAME: x\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING[1].EXPRESSION", 6, "is required");

	parse_fail("KAFKA:\n  OUTPUT:\n    MAPPING:\n      - NAME: id\n        EXPR: a\n", &errs);
	assert_int_equal(errs.count, 2);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING[0].EXPR", 5, "did you mean EXPRESSION?");
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING[0].EXPRESSION", 4, "is required");

	parse_fail("KAFKA:\n  OUTPUT:\n    MAPPING: id\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING", 3, "NAME/EXPRESSION");

	parse_fail("KAFKA:\n  OUTPUT:\n    MAPPING:\n      id:\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING.id", 4, "needs an expression");

	parse_fail("KAFKA:\n  OUTPUT:\n    MAPPING:\n      - NAME: a\n        EXPRESSION: x\n"
		   "      - NAME: a\n        EXPRESSION: y\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING[1]", 6, "mapped twice");
	/* Found by fuzz_yaml: a null key was dropped, and the emitted YAML did
	 * not parse any more. */
	parse_fail("KAFKA:\n  OUTPUT:\n    MAPPING:\n      ~: x\n      id: a\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING", 4, "got null");
	parse_fail("KAFKA:\n  OUTPUT:\n    MAPPING:\n      null: x\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING", 4, "quote it");
	parse_fail("DATABASE: d KAFKA: OUTPUT: TABLE: t MAPPING: ~: x id: a", &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING", 1, "got null");
}

/* ---- each key: wrong type, out of range, unknown key ---- */

struct bad_case {
	const char *yaml;
	const char *path;
	int line;
	const char *message;
};

static void run_bad_cases(const struct bad_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct js_errors errs;

		current_case = cases[i].yaml;
		parse_fail(cases[i].yaml, &errs);
		if (errs.count != 1) {
			dump_errs(&errs);
			fail_msg("case %zu: %zu errors, expected 1", i, errs.count);
		}
		assert_err(&errs, cases[i].path, cases[i].line, cases[i].message);
	}
	current_case = NULL;
}

static void test_bad_top_level(void **state)
{
	static const struct bad_case cases[] = {
		{ "PORT: abc\n", "PORT", 1, "must be an integer, got \"abc\"" },
		{ "PORT: 70000\n", "PORT", 1, "must be between 1 and 65535, got 70000" },
		{ "DATABASE: db\nPORT: 0\n", "PORT", 2, "between 1 and 65535" },
		{ "PORT: 99999999999999999999999\n", "PORT", 1, "between 1 and 65535" },
		{ "PORT: [5432]\n", "PORT", 1, "must be a single value, got a list" },
		{ "PORT: 54.32\n", "PORT", 1, "must be an integer" },
		{ "DATABASE: {a: b}\n", "DATABASE", 1, "got a map" },
		{ "USER: [u]\n", "USER", 1, "got a list" },
		{ "PASSWORD: [p]\n", "PASSWORD", 1, "got a list" },
		{ "HOST:\n  - h\n", "HOST", 1, "got a list" }, /* the key's line */
		{ "VERSION: two\n", "VERSION", 1, "positive integer" },
		{ "VERSION: 0\n", "VERSION", 1, "positive integer" },
		{ "DATABSE: db\n", "DATABSE", 1, "unknown key \"DATABSE\" (did you mean DATABASE?)" },
		{ "FOO: 1\n", "FOO", 1, "allowed here: DATABASE, USER, PASSWORD, HOST, PORT, SSLMODE, SSLROOTCERT, SSLCERT, SSLKEY, VERSION, TASKS, KAFKA, SCHEDULE" },
		{ "TASKS: 0\n", "TASKS", 1, "must be an integer between 1 and 64 (the job's worker processes), got \"0\"; leave it out for 1" },
		{ "TASKS: 65\n", "TASKS", 1, "between 1 and 64" },
		{ "DATABASE: db\nTASKS: three\n", "TASKS", 2, "between 1 and 64" },
		{ "TASKS: [2]\n", "TASKS", 1, "got a list" },
		{ "DATABASE: a\nUSER: u\ndatabase: b\n", "DATABASE", 3, "duplicate key DATABASE (first at line 1)" },
		{ "TABLE: t\n", "TABLE", 1, "unknown key \"TABLE\" here; it belongs under KAFKA.OUTPUT" },
		{ "schema: s\n", "schema", 1, "it belongs under KAFKA.INPUT.VALUE.AVRO_OPTION or KAFKA.OUTPUT or KAFKA.METADATA" },
		{ "KAFKA: text\n", "KAFKA", 1, "must be a map" },
		{ "KAFKA:\n  - INPUT\n", "KAFKA", 1, "must be a map of KEY: value lines, got a list" }, /* the key's line */
		{ "SCHEDULE: [1]\n", "SCHEDULE", 1, "must be a map" },
		{ "- a\n- b\n", "", 1, "must be a map" },
		{ "just text\n", "", 1, "must be a map" },
		{ "[a]: 1\n", "", 1, "a key must be a word" },
	};

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_bad_kafka_level(void **state)
{
	static const struct bad_case cases[] = {
		{ "KAFKA:\n  INPUTS: {}\n", "KAFKA.INPUTS", 2, "did you mean INPUT?" },
		{ "KAFKA:\n  INPUT: [a]\n", "KAFKA.INPUT", 2, "must be a map" },
		{ "KAFKA:\n  OUTPUT: x\n", "KAFKA.OUTPUT", 2, "must be a map" },
		{ "KAFKA:\n  METADATA:\n    SCHEMA: [a]\n", "KAFKA.METADATA.SCHEMA", 3, "got a list" },
		{ "KAFKA:\n  METADATA:\n    TABLESPACE: x\n", "KAFKA.METADATA.TABLESPACE", 3, "allowed here: SCHEMA" },
		{ "KAFKA:\n  COMMIT: 5\n", "KAFKA.COMMIT", 2, "must be a map" },
		{ "KAFKA:\n  POLL: [1]\n", "KAFKA.POLL", 2, "must be a map" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      TOPIC: t\n  input: {}\n", "KAFKA.INPUT", 5, "duplicate key" },
	};

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_bad_source(void **state)
{
#define SRC "KAFKA:\n  INPUT:\n    SOURCE:\n"
	static const struct bad_case cases[] = {
		{ SRC "      BROKERS: [a, b]\n", "KAFKA.INPUT.SOURCE.BROKERS", 4, "got a list" },
		{ SRC "      TOPIC: {a: 1}\n", "KAFKA.INPUT.SOURCE.TOPIC", 4, "got a map" },
		{ SRC "      FALLBACK_OFFSET: middle\n", "KAFKA.INPUT.SOURCE.FALLBACK_OFFSET", 4,
		  "must be one of earliest, latest, got \"middle\"" },
		{ SRC "      FALLBACK_OFFSET: [earliest]\n", "KAFKA.INPUT.SOURCE.FALLBACK_OFFSET", 4, "got a list" },
		{ SRC "      BROKER: x\n", "KAFKA.INPUT.SOURCE.BROKER", 4, "did you mean BROKERS?" },
		{ SRC "      FALLBACKOFFSET: earliest\n", "KAFKA.INPUT.SOURCE.FALLBACKOFFSET", 4,
		  "did you mean FALLBACK_OFFSET?" },
		{ "KAFKA:\n  INPUT:\n    SOURCE: []\n", "KAFKA.INPUT.SOURCE", 3, "must be a map" },
		{ SRC "      PARTITIONS: {a: 1}\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4, "got a map" },
	};
#undef SRC

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_bad_value(void **state)
{
#define VAL "KAFKA:\n  INPUT:\n    VALUE:\n"
	static const struct bad_case cases[] = {
		{ VAL "      FORMAT: xml\n", "KAFKA.INPUT.VALUE.FORMAT", 4,
		  "must be one of delimited, csv, json, protobuf, avro, got \"xml\"" },
		{ VAL "      FORMAT: [csv]\n", "KAFKA.INPUT.VALUE.FORMAT", 4, "got a list" },
		{ VAL "      COLUMNS: abc\n", "KAFKA.INPUT.VALUE.COLUMNS", 4, "must be a list" },
		{ VAL "      COLUMNS: [abc]\n", "KAFKA.INPUT.VALUE.COLUMNS[0]", 4, "must be a map" },
		{ VAL "      COLUMNS:\n        - TYPE: int\n", "KAFKA.INPUT.VALUE.COLUMNS[0].NAME", 5, "is required" },
		{ VAL "      COLUMNS:\n        - NAME: a\n          TYPO: int\n", "KAFKA.INPUT.VALUE.COLUMNS[0].TYPO", 6,
		  "did you mean TYPE?" },
		{ VAL "      COLUMNS:\n        - NAME: a\n        - NAME: b\n        - NAME: a\n",
		  "KAFKA.INPUT.VALUE.COLUMNS[2]", 7, "defined twice" },
		{ VAL "      COLUMNS:\n        - NAME: ''\n", "KAFKA.INPUT.VALUE.COLUMNS[0].NAME", 5, "must not be empty" },
		{ VAL "      COLUMNS:\n        - NAME: a\n          TYPE: [int]\n", "KAFKA.INPUT.VALUE.COLUMNS[0].TYPE", 6,
		  "got a list" },
		{ VAL "      COLUMNS:\n        -\n", "KAFKA.INPUT.VALUE.COLUMNS[0]", -1, "is empty" },
		{ VAL "      DELIMITED_OPTION:\n        DELIMITER: \"\"\n",
		  "KAFKA.INPUT.VALUE.DELIMITED_OPTION.DELIMITER", 5, "must not be empty" },
		{ VAL "      DELIMITED_OPTION:\n        QUOTE: ab\n", "KAFKA.INPUT.VALUE.DELIMITED_OPTION.QUOTE", 5,
		  "exactly one" },
		{ VAL "      DELIMITED_OPTION:\n        ESCAPE: ''\n", "KAFKA.INPUT.VALUE.DELIMITED_OPTION.ESCAPE", 5,
		  "exactly one" },
		{ VAL "      DELIMITED_OPTION:\n        NULL_STRING: x\n",
		  "KAFKA.INPUT.VALUE.DELIMITED_OPTION.NULL_STRING", 5, "belongs under KAFKA.INPUT.VALUE.CSV_OPTION" },
		{ VAL "      DELIMITED_OPTION: '|'\n", "KAFKA.INPUT.VALUE.DELIMITED_OPTION", 4, "must be a map" },
		{ VAL "      CSV_OPTION:\n        DELIMITER: ab\n", "KAFKA.INPUT.VALUE.CSV_OPTION.DELIMITER", 5,
		  "exactly one (single-byte) character, got \"ab\"" },
		{ VAL "      CSV_OPTION:\n        QUOTE: \"\"\n", "KAFKA.INPUT.VALUE.CSV_OPTION.QUOTE", 5, "exactly one" },
		{ VAL "      CSV_OPTION:\n        NULLSTRING: x\n", "KAFKA.INPUT.VALUE.CSV_OPTION.NULLSTRING", 5,
		  "did you mean NULL_STRING?" },
		{ VAL "      CSV_OPTION:\n        NULL_STRING: [x]\n", "KAFKA.INPUT.VALUE.CSV_OPTION.NULL_STRING", 5,
		  "got a list" },
		{ VAL "      FORMAT: delimited\n      CSV_OPTION:\n        QUOTE: x\n", "KAFKA.INPUT.VALUE.CSV_OPTION", 5,
		  "use DELIMITED_OPTION" },
		{ VAL "      FORMAT: csv\n      DELIMITED_OPTION:\n        DELIMITER: x\n",
		  "KAFKA.INPUT.VALUE.DELIMITED_OPTION", 5, "use CSV_OPTION" },
		{ VAL "      FORMAT: json\n      CSV_OPTION: {}\n", "KAFKA.INPUT.VALUE.CSV_OPTION", 5, "remove it" },
		{ VAL "      DELIMITED_OPTION: {}\n      CSV_OPTION: {}\n", "KAFKA.INPUT.VALUE.CSV_OPTION", 5, "not both" },
		{ VAL "      JSON_OPTION:\n        NEWLINE: x\n", "KAFKA.INPUT.VALUE.JSON_OPTION.NEWLINE", 5, "unknown key" },
		{ VAL "      XML_OPTION: {}\n", "KAFKA.INPUT.VALUE.XML_OPTION", 4, "unknown key" },
		{ "KAFKA:\n  INPUT:\n    KEY: [a]\n", "KAFKA.INPUT.KEY", 3, "must be a map" },
		{ "KAFKA:\n  INPUT:\n    KEY:\n      FORMATS: csv\n", "KAFKA.INPUT.KEY.FORMATS", 4, "did you mean FORMAT?" },
	};
#undef VAL

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_bad_meta_and_error_limit(void **state)
{
#define META "KAFKA:\n  INPUT:\n    META:\n"
	static const struct bad_case cases[] = {
		{ META "      COLUMNS:\n        - NAME: m\n          TYPE: json\n        - NAME: n\n          TYPE: json\n",
		  "KAFKA.INPUT.META.COLUMNS", 5, "exactly one column" },
		{ META "      COLUMNS:\n        - NAME: m\n          TYPE: xml\n", "KAFKA.INPUT.META.COLUMNS[0].TYPE", 6,
		  "must be one of json, jsonb, text" },
		{ META "      COLUMNS:\n        - NAME: m\n", "KAFKA.INPUT.META.COLUMNS[0].TYPE", 5, "is required" },
		{ META "      COLUMNS:\n        - TYPE: json\n", "KAFKA.INPUT.META.COLUMNS[0].NAME", 5, "is required" },
		{ META "      FORMAT: csv\n", "KAFKA.INPUT.META.FORMAT", 4, "must be one of json, text" },
		{ META "      COLUMNS: meta\n", "KAFKA.INPUT.META.COLUMNS", 4, "must be a list" },
		{ META "      TYPE: json\n", "KAFKA.INPUT.META.TYPE", 4, "unknown key" },
		{ "KAFKA:\n  INPUT:\n    ERROR_LIMIT: abc\n", "KAFKA.INPUT.ERROR_LIMIT", 3,
		  "integer >= 0) or a percentage" },
		{ "KAFKA:\n  INPUT:\n    ERROR_LIMIT: -1\n", "KAFKA.INPUT.ERROR_LIMIT", 3, "must be >= 0" },
		{ "KAFKA:\n  INPUT:\n    ERROR_LIMIT: 0%\n", "KAFKA.INPUT.ERROR_LIMIT", 3, "more than 0% and at most 100%" },
		{ "KAFKA:\n  INPUT:\n    ERROR_LIMIT: 101%\n", "KAFKA.INPUT.ERROR_LIMIT", 3, "at most 100%" },
		{ "KAFKA:\n  INPUT:\n    ERROR_LIMIT: x%\n", "KAFKA.INPUT.ERROR_LIMIT", 3, "percentage like" },
		{ "KAFKA:\n  INPUT:\n    ERROR_LIMIT: [1]\n", "KAFKA.INPUT.ERROR_LIMIT", 3, "got a list" },
		{ "KAFKA:\n  INPUT:\n    ERRORLIMIT: 1\n", "KAFKA.INPUT.ERRORLIMIT", 3, "did you mean ERROR_LIMIT?" },
	};
#undef META

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_bad_output(void **state)
{
#define OUT "KAFKA:\n  OUTPUT:\n"
	static const struct bad_case cases[] = {
		{ OUT "    MODE: UPSERT\n", "KAFKA.OUTPUT.MODE", 3, "must be one of INSERT, UPDATE, MERGE" },
		{ OUT "    MODE: [INSERT]\n", "KAFKA.OUTPUT.MODE", 3, "got a list" },
		{ OUT "    TABLE: [t]\n", "KAFKA.OUTPUT.TABLE", 3, "got a list" },
		{ OUT "    SCHEMA: {a: 1}\n", "KAFKA.OUTPUT.SCHEMA", 3, "got a map" },
		{ OUT "    MATCH_COLUMNS: a\n", "KAFKA.OUTPUT.MATCH_COLUMNS", 3, "must be a list" },
		{ OUT "    MATCH_COLUMNS:\n      - a\n      - {b: c}\n", "KAFKA.OUTPUT.MATCH_COLUMNS[1]", 5,
		  "must be a single value, got a map" },
		{ OUT "    MATCHCOLUMNS: [a]\n", "KAFKA.OUTPUT.MATCHCOLUMNS", 3,
		  "unknown key \"MATCHCOLUMNS\" (did you mean MATCH_COLUMNS?)" },
		{ OUT "    UPDATE_COLUMNS: [a, b, a]\n", "KAFKA.OUTPUT.UPDATE_COLUMNS[2]", 3, "listed twice" },
		{ OUT "    ORDER_COLUMNS: ['']\n", "KAFKA.OUTPUT.ORDER_COLUMNS[0]", 3, "must not be empty" },
		{ OUT "    ORDER_COLUMNS: {a: 1}\n", "KAFKA.OUTPUT.ORDER_COLUMNS", 3, "must be a list" },
		{ OUT "    TABLES: t\n", "KAFKA.OUTPUT.TABLES", 3, "did you mean TABLE?" },
		{ OUT "    RETRY_INTERVAL: 5\n", "KAFKA.OUTPUT.RETRY_INTERVAL", 3, "belongs under SCHEDULE" },
		{ OUT "    NAME: x\n", "KAFKA.OUTPUT.NAME", 3,
		  "belongs under KAFKA.INPUT.VALUE.COLUMNS items or KAFKA.OUTPUT.MAPPING items" },
	};
#undef OUT

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_bad_commit_poll_properties_schedule(void **state)
{
	static const struct bad_case cases[] = {
		{ "KAFKA:\n  COMMIT:\n    MAX_ROW: 0\n", "KAFKA.COMMIT.MAX_ROW", 3, "must be >= 1, got 0" },
		{ "KAFKA:\n  COMMIT:\n    MAX_ROW: many\n", "KAFKA.COMMIT.MAX_ROW", 3, "must be an integer, got \"many\"" },
		{ "KAFKA:\n  COMMIT:\n    MINIMAL_INTERVAL: -1\n", "KAFKA.COMMIT.MINIMAL_INTERVAL", 3, "must be >= 0" },
		{ "KAFKA:\n  COMMIT:\n    MINIMAL_INTERVAL: [1]\n", "KAFKA.COMMIT.MINIMAL_INTERVAL", 3, "got a list" },
		{ "KAFKA:\n  COMMIT:\n    CONSISTENCY: maybe\n", "KAFKA.COMMIT.CONSISTENCY", 3,
		  "must be one of ATLEAST (at-least), EXACTLY (strong), at-most, none" },
		{ "KAFKA:\n  COMMIT:\n    MAXROW: 1\n", "KAFKA.COMMIT.MAXROW", 3, "did you mean MAX_ROW?" },
		{ "KAFKA:\n  POLL:\n    BATCHSIZE: 0\n", "KAFKA.POLL.BATCHSIZE", 3, "must be >= 1" },
		{ "KAFKA:\n  POLL:\n    TIMEOUT: -5\n", "KAFKA.POLL.TIMEOUT", 3, "must be >= 0, got -5" },
		{ "KAFKA:\n  POLL:\n    TIMEOUT: 5s\n", "KAFKA.POLL.TIMEOUT", 3, "must be an integer" },
		{ "KAFKA:\n  POLL:\n    BATCH_SIZE: 5\n", "KAFKA.POLL.BATCH_SIZE", 3, "did you mean BATCHSIZE?" },
		{ "KAFKA:\n  PROPERTIES: [a]\n", "KAFKA.PROPERTIES", 2, "must be a map" },
		{ "KAFKA:\n  PROPERTIES:\n    group.id: {a: 1}\n", "KAFKA.PROPERTIES.group.id", 3, "got a map" },
		{ "KAFKA:\n  PROPERTIES:\n    group.id:\n", "KAFKA.PROPERTIES.group.id", 3, "needs a value" },
		{ "KAFKA:\n  PROPERTIES:\n    a: 1\n    a: 2\n", "KAFKA.PROPERTIES.a", 4, "duplicate property" },
		{ "SCHEDULE:\n  RETRY_INTERVAL: 5x\n", "SCHEDULE.RETRY_INTERVAL", 2, "must be a duration" },
		{ "SCHEDULE:\n  RETRY_INTERVAL: [5]\n", "SCHEDULE.RETRY_INTERVAL", 2, "got a list" },
		{ "SCHEDULE:\n  MAX_RETRIES: -1\n", "SCHEDULE.MAX_RETRIES", 2, "must be >= 0" },
		{ "SCHEDULE:\n  MAX_RETRIES: lots\n", "SCHEDULE.MAX_RETRIES", 2, "must be an integer" },
		{ "SCHEDULE:\n  MAX_RETRY: 1\n", "SCHEDULE.MAX_RETRY", 2, "did you mean MAX_RETRIES?" },
	};

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_properties_scalars_become_text(void **state)
{
	struct jobspec *spec = parse_ok("KAFKA:\n  PROPERTIES:\n    a: 10\n    b: false\n    c: 1.5\n"
					"    d: \"quoted text\"\n");

	assert_int_equal(spec->nproperties, 4);
	assert_string_equal(jobspec_property(spec, "a"), "10");
	assert_string_equal(jobspec_property(spec, "b"), "false");
	assert_string_equal(jobspec_property(spec, "c"), "1.5");
	assert_string_equal(jobspec_property(spec, "d"), "quoted text");
	jobspec_free(spec);
}

static void test_case_insensitive_keys(void **state)
{
	struct jobspec *spec = parse_ok("kafka:\n  output:\n    table: t\n    mode: Merge\n    match_columns: [id]\n"
					"  metadata:\n    schema: aux\n  commit:\n    max_row: 9\n"
					"schedule:\n  retry_interval: 1s\n");

	assert_string_equal(spec->table, "t");
	assert_int_equal(spec->mode, JS_MODE_MERGE);
	assert_int_equal(spec->nmatch_columns, 1);
	assert_string_equal(spec->metadata_schema, "aux");
	assert_int_equal(spec->commit_max_row, 9);
	assert_int_equal(spec->retry_interval_ms, 1000);
	jobspec_free(spec);
}

/* ---- several problems at once ---- */

static void test_multiple_errors_at_once(void **state)
{
	static const char yaml[] =
		"DATABASE: db\n"
		"PORT: abc\n"
		"KAFKA:\n"
		"  INPUT:\n"
		"    SOURCE:\n"
		"      FALLBACK_OFFSET: soon\n"
		"  OUTPUT:\n"
		"    MODE: UPSERT\n"
		"    MATCH_COLUMNS:\n"
		"      - id\n"
		"      - [x]\n"
		"    MATCHCOLUMNS: [a]\n"
		"  COMMIT:\n"
		"    MAX_ROW: 0\n"
		"SCHEDULE:\n"
		"  RETRY_INTERVAL: soon\n";
	struct js_errors errs;
	char buf[2048];

	parse_fail(yaml, &errs);
	assert_int_equal(errs.count, 7);
	assert_false(errs.truncated);
	assert_err(&errs, "PORT", 2, "must be an integer, got \"abc\"");
	assert_err(&errs, "KAFKA.INPUT.SOURCE.FALLBACK_OFFSET", 6, "earliest, latest");
	assert_err(&errs, "KAFKA.OUTPUT.MODE", 8, "must be one of INSERT, UPDATE, MERGE");
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS[1]", 11, "got a list");
	assert_err(&errs, "KAFKA.OUTPUT.MATCHCOLUMNS", 12, "did you mean MATCH_COLUMNS?");
	assert_err(&errs, "KAFKA.COMMIT.MAX_ROW", 14, ">= 1");
	assert_err(&errs, "SCHEDULE.RETRY_INTERVAL", 16, "duration");

	js_errors_format(&errs, buf, sizeof(buf));
	assert_non_null(strstr(buf, "PORT (line 2): must be an integer, got \"abc\"; "));
	assert_non_null(strstr(buf, "; SCHEDULE.RETRY_INTERVAL (line 16): "));
}

static void test_error_cap_truncates(void **state)
{
	size_t cap = 100 * 16 + 64;
	char *yaml = malloc(cap);
	size_t off = 0;
	struct js_errors errs;

	assert_non_null(yaml);
	off += (size_t)snprintf(yaml + off, cap - off, "KAFKA:\n  OUTPUT:\n    MATCH_COLUMNS:\n");
	for (int i = 0; i < 100; i++)
		off += (size_t)snprintf(yaml + off, cap - off, "      - [x]\n");
	parse_fail(yaml, &errs);
	assert_int_equal(errs.count, JS_ERRORS_MAX);
	assert_true(errs.truncated);
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS[0]", 4, "got a list");
	free(yaml);
}

static void test_errors_format_forms(void **state)
{
	struct js_errors errs;
	char buf[256];
	char tiny[12];

	memset(&errs, 0, sizeof(errs));
	js_errors_add(&errs, 3, "A.B", "bad %s", "thing");
	js_errors_add(&errs, 0, "C", "no line");
	js_errors_add(&errs, 7, "", "syntax");
	assert_int_equal(errs.count, 3);
	js_errors_format(&errs, buf, sizeof(buf));
	assert_string_equal(buf, "A.B (line 3): bad thing; C: no line; line 7: syntax");
	js_errors_format(&errs, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	assert_memory_equal(tiny, "A.B (line 3", 11);
	js_errors_add(NULL, 1, "x", "ignored");
}

/* ---- syntax, empty, size ---- */

static void test_syntax_error_has_line(void **state)
{
	struct js_errors errs;

	parse_fail("DATABASE: db\nUSER: u\n  HOST: h\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_string_equal(errs.items[0].path, "");
	assert_int_equal(errs.items[0].line, 3);
	assert_non_null(strstr(errs.items[0].message, "YAML syntax error at line 3, column"));

	parse_fail("DATABASE: db\nKAFKA:\n  OUTPUT:\n    MATCH_COLUMNS: [a, b\n    TABLE: t\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_true(errs.items[0].line >= 4);
	assert_non_null(strstr(errs.items[0].message, "YAML syntax error"));
	assert_non_null(strstr(errs.items[0].message, "line 4")); /* where the list began */

	parse_fail("DATABASE: \"unterminated\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.items[0].message, "YAML syntax error"));
}

static void test_tab_indentation_hint(void **state)
{
	struct js_errors errs;

	parse_fail("KAFKA:\n\tINPUT: {}\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_int_equal(errs.items[0].line, 2);
	assert_non_null(strstr(errs.items[0].message, "spaces, not tabs"));
}

/* libyaml is quadratic in flow depth and anchors: both are refused early. */
static void test_deep_nesting_and_anchors_refused(void **state)
{
	size_t n = 400000, len = 2 * n + 16;
	char *text = malloc(len);
	struct js_errors errs;
	struct jobspec *spec = NULL;
	size_t off;

	assert_non_null(text);
	off = (size_t)snprintf(text, len, "DATABASE: ");
	memset(text + off, '[', n);
	memset(text + off + n, ']', n);
	off += 2 * n;
	assert_int_equal(jobspec_parse_yaml(text, off, &spec, &errs), -1);
	assert_null(spec);
	assert_int_equal(errs.count, 1);
	assert_int_equal(errs.items[0].line, 1);
	assert_non_null(strstr(errs.items[0].message, "nested more than 32 levels"));
	free(text);

	len = 300 * 24 + 64;
	text = malloc(len);
	assert_non_null(text);
	off = (size_t)snprintf(text, len, "KAFKA:\n  OUTPUT:\n    MATCH_COLUMNS:\n");
	for (int i = 0; i < 300; i++)
		off += (size_t)snprintf(text + off, len - off, "    - &a%d x%d\n", i, i);
	assert_int_equal(jobspec_parse_yaml(text, off, &spec, &errs), -1);
	assert_int_equal(errs.count, 1);
	assert_int_equal(errs.items[0].line, 4 + 256);
	assert_non_null(strstr(errs.items[0].message, "more than 256 anchors"));
	free(text);

	/* A few anchors and aliases are fine. */
	spec = parse_ok("KAFKA:\n  OUTPUT:\n    MATCH_COLUMNS: &cols [a, b]\n    UPDATE_COLUMNS: *cols\n");
	assert_int_equal(spec->nupdate_columns, 2);
	assert_string_equal(spec->update_columns[1], "b");
	jobspec_free(spec);
}

static void test_invalid_utf8_is_an_error(void **state)
{
	struct js_errors errs;

	parse_fail("DATABASE: db\nUSER: \xff\xfe\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_int_equal(errs.items[0].line, 2);
	assert_non_null(strstr(errs.items[0].message, "UTF-8"));
}

static void test_empty_document(void **state)
{
	struct js_errors errs;
	struct jobspec *spec = NULL;

	parse_fail("", &errs);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.items[0].message, "empty"));
	parse_fail("# only a comment\n\n", &errs);
	assert_non_null(strstr(errs.items[0].message, "empty"));
	assert_int_equal(jobspec_parse_yaml(NULL, 0, &spec, &errs), -1);
	assert_null(spec);
}

static void test_second_document_refused(void **state)
{
	struct js_errors errs;

	parse_fail("DATABASE: a\n---\nDATABASE: b\n", &errs);
	assert_int_equal(errs.count, 1);
	assert_int_equal(errs.items[0].line, 3);
	assert_non_null(strstr(errs.items[0].message, "only one YAML document"));
}

static void test_input_size_cap(void **state)
{
	size_t len = 1024 * 1024 + 1;
	char *big = malloc(len);
	struct js_errors errs;
	struct jobspec *spec = NULL;

	assert_non_null(big);
	memset(big, ' ', len);
	memcpy(big, "DATABASE: db\n", 13);
	assert_int_equal(jobspec_parse_yaml(big, len, &spec, &errs), -1);
	assert_null(spec);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.items[0].message, "at most 1048576"));

	/* Exactly at the cap is read. */
	big[len - 2] = '\n';
	assert_int_equal(jobspec_parse_yaml(big, len - 1, &spec, &errs), 0);
	assert_string_equal(spec->database, "db");
	jobspec_free(spec);
	free(big);
}

static void test_input_not_nul_terminated(void **state)
{
	static const char text[] = "DATABASE: db\nUSER: u\n: [unclosed garbage";
	struct js_errors errs;
	struct jobspec *spec = NULL;
	size_t len = (size_t)(strstr(text, ": [") - text);

	assert_int_equal(jobspec_parse_yaml(text, len, &spec, &errs), 0);
	assert_string_equal(spec->database, "db");
	assert_string_equal(spec->user, "u");
	jobspec_free(spec);

	/* A cut in the middle of a value keeps only what is inside len. */
	assert_int_equal(jobspec_parse_yaml(text, 11, &spec, &errs), 0);
	assert_string_equal(spec->database, "d");
	jobspec_free(spec);
}

static void test_embedded_nul_refused(void **state)
{
	static const char yaml[] = "DATABASE: \"a\\0b\"\n";
	struct js_errors errs;

	parse_fail(yaml, &errs);
	assert_err(&errs, "DATABASE", 1, "NUL");
}

/* ---- durations, partitions, error limit ---- */

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		int64_t ms;
	} ok[] = {
		{ "5000", 5000 }, { "0", 0 },	      { "500ms", 500 },	    { "5s", 5000 },	   { "5S", 5000 },
		{ "1m", 60000 },  { "2h", 7200000 }, { "1d", 86400000 }, { "1m30s", 90000 }, { "'250'", 250 },
	};
	static const char *const bad[] = { "5x", "s", "-5s", "5 s", "1.5s", "ms5", "5sm", "m" };
	char yaml[128];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct jobspec *spec;

		snprintf(yaml, sizeof(yaml), "SCHEDULE:\n  RETRY_INTERVAL: %s\n", ok[i].text);
		spec = parse_ok(yaml);
		assert_int_equal(spec->retry_interval_ms, ok[i].ms);
		jobspec_free(spec);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct js_errors errs;

		snprintf(yaml, sizeof(yaml), "SCHEDULE:\n  RETRY_INTERVAL: %s\n", bad[i]);
		current_case = bad[i];
		parse_fail(yaml, &errs);
		assert_int_equal(errs.count, 1);
		assert_err(&errs, "SCHEDULE.RETRY_INTERVAL", 2, NULL);
	}
	current_case = NULL;
	{
		struct js_errors errs;

		parse_fail("SCHEDULE:\n  RETRY_INTERVAL: -1\n", &errs);
		assert_err(&errs, "SCHEDULE.RETRY_INTERVAL", 2, "must be >= 0");
		parse_fail("SCHEDULE:\n  RETRY_INTERVAL: 999999999999999d\n", &errs);
		assert_err(&errs, "SCHEDULE.RETRY_INTERVAL", 2, "too large");
	}
}

static void test_partitions_forms(void **state)
{
	static const char *const forms[] = {
		"(0,2,5)", "0,2,5", "( 0 , 2, 5 )", "[0, 2, 5]", "\n        - 0\n        - 2\n        - 5", "'0,2,5'",
	};
	char yaml[160];
	struct jobspec *spec;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		snprintf(yaml, sizeof(yaml), "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: %s\n", forms[i]);
		spec = parse_ok(yaml);
		assert_int_equal(spec->npartitions, 3);
		assert_int_equal(spec->partitions[0], 0);
		assert_int_equal(spec->partitions[1], 2);
		assert_int_equal(spec->partitions[2], 5);
		jobspec_free(spec);
	}
	spec = parse_ok("KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: 7\n");
	assert_int_equal(spec->npartitions, 1);
	assert_int_equal(spec->partitions[0], 7);
	jobspec_free(spec);
	spec = parse_ok("KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: (3)\n");
	assert_int_equal(spec->npartitions, 1);
	assert_int_equal(spec->partitions[0], 3);
	jobspec_free(spec);
}

static void test_partitions_errors(void **state)
{
	static const struct bad_case cases[] = {
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: (0,2\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4,
		  "without a closing" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: 0,,2\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4,
		  "empty" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: abc\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4,
		  "\"abc\" is not an integer" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: -1\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4,
		  "out of range" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: 3000000000\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4,
		  "out of range" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: [0, x]\n", "KAFKA.INPUT.SOURCE.PARTITIONS[1]", 4,
		  "not an integer" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS:\n        - 1\n        - [2]\n",
		  "KAFKA.INPUT.SOURCE.PARTITIONS[1]", 6, "got a list" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: 1,2,1\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4,
		  "partition 1 is listed twice" },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: ()\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4, NULL },
		{ "KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: []\n", "KAFKA.INPUT.SOURCE.PARTITIONS", 4,
		  "lists no partition" },
	};

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_error_limit_forms(void **state)
{
	static const struct {
		const char *text;
		int64_t value;
		bool percent;
	} cases[] = {
		{ "0", 0, false }, { "20", 20, false }, { "1%", 1, true }, { "100%", 100, true }, { "'5%'", 5, true },
	};
	char yaml[96];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jobspec *spec;

		snprintf(yaml, sizeof(yaml), "KAFKA:\n  INPUT:\n    ERROR_LIMIT: %s\n", cases[i].text);
		spec = parse_ok(yaml);
		assert_int_equal(spec->error_limit, cases[i].value);
		assert_int_equal(spec->error_limit_percent, cases[i].percent);
		jobspec_free(spec);
	}
}

/* ---- defaults ---- */

static void test_apply_defaults_fills_absent(void **state)
{
	static const struct js_property props[] = {
		{ "group.id", "from-source" },
		{ "security.protocol", "plaintext" },
	};
	struct js_defaults d = std_defaults;
	struct jobspec *spec = parse_ok("DATABASE: db\nUSER: u\nKAFKA:\n  INPUT:\n    VALUE:\n"
					"      COLUMNS: [{NAME: a}]\n  OUTPUT:\n    TABLE: t\n"
					"  PROPERTIES:\n    group.id: mine\n");

	d.properties = props;
	d.nproperties = 2;
	assert_int_equal(jobspec_apply_defaults(spec, &d), 0);
	assert_string_equal(spec->brokers, "localhost:9092");
	assert_string_equal(spec->topic, "orders");
	assert_string_equal(spec->host, "127.0.0.1");
	assert_int_equal(spec->port, 5432);
	assert_string_equal(spec->schema, "public");
	assert_int_equal(spec->value.format, JS_FORMAT_DELIMITED);
	assert_string_equal(spec->value.delimiter, "|");
	assert_int_equal(spec->nproperties, 2);
	assert_string_equal(jobspec_property(spec, "group.id"), "mine"); /* the job's own wins */
	assert_string_equal(jobspec_property(spec, "security.protocol"), "plaintext");
	assert_int_equal(jobspec_validate(spec, NULL), 0);
	jobspec_free(spec);
}

static void test_apply_defaults_keeps_job_values(void **state)
{
	struct jobspec *spec = parse_ok("HOST: dbhost\nPORT: 6000\nKAFKA:\n  INPUT:\n    SOURCE:\n"
					"      BROKERS: mine:9092\n      TOPIC: mine\n    VALUE:\n      FORMAT: csv\n"
					"      CSV_OPTION:\n        DELIMITER: ';'\n  OUTPUT:\n    SCHEMA: s\n");
	struct js_defaults d = std_defaults;

	d.format = JS_FORMAT_CSV;
	d.delimiter = ",";
	assert_int_equal(jobspec_apply_defaults(spec, &d), 0);
	assert_string_equal(spec->brokers, "mine:9092");
	assert_string_equal(spec->topic, "mine");
	assert_string_equal(spec->host, "dbhost");
	assert_int_equal(spec->port, 6000);
	assert_string_equal(spec->schema, "s");
	assert_int_equal(spec->value.format, JS_FORMAT_CSV);
	assert_string_equal(spec->value.delimiter, ";");
	jobspec_free(spec);

	/* A VALUE in another format than the source's keeps it and gets no delimiter. */
	spec = parse_ok("KAFKA:\n  INPUT:\n    VALUE:\n      FORMAT: csv\n");
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	assert_int_equal(spec->value.format, JS_FORMAT_CSV);
	assert_null(spec->value.delimiter);
	jobspec_free(spec);

	/* No VALUE: none is invented; no defaults: only the schema. */
	spec = parse_ok("DATABASE: db\n");
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	assert_false(spec->value.present);
	assert_int_equal(spec->value.format, JS_FORMAT_NONE);
	jobspec_free(spec);
	spec = parse_ok("DATABASE: db\n");
	assert_int_equal(jobspec_apply_defaults(spec, NULL), 0);
	assert_string_equal(spec->schema, "public");
	assert_null(spec->host);
	jobspec_free(spec);
}

/* ---- validate ---- */

static void test_validate_minimal_ok(void **state)
{
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;

	assert_null(spec->password); /* trust authentication */
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	assert_int_equal(errs.count, 0);
	jobspec_free(spec);
}

static void test_validate_required_all_at_once(void **state)
{
	struct jobspec *spec = parse_ok("VERSION: 2\n");
	struct js_errors errs;

	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 8);
	assert_err(&errs, "DATABASE", 0, "is required");
	assert_err(&errs, "USER", 0, "is required");
	assert_err(&errs, "HOST", 0, "is required");
	assert_err(&errs, "PORT", 0, "is required");
	assert_err(&errs, "KAFKA.INPUT.SOURCE.BROKERS", 0, "is required");
	assert_err(&errs, "KAFKA.INPUT.SOURCE.TOPIC", 0, "is required");
	assert_err(&errs, "KAFKA.INPUT", 0, "needs VALUE");
	assert_err(&errs, "KAFKA.OUTPUT.TABLE", 0, "is required");
	jobspec_free(spec);
}

static void test_validate_value_needs_format_and_columns(void **state)
{
	struct jobspec *spec = parse_ok("DATABASE: db\nUSER: u\nHOST: h\nPORT: 1\nKAFKA:\n  INPUT:\n    SOURCE:\n"
					"      BROKERS: b\n      TOPIC: t\n    VALUE: {}\n  OUTPUT:\n    TABLE: t\n");
	struct js_errors errs;

	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 2);
	assert_err(&errs, "KAFKA.INPUT.VALUE.COLUMNS", 10, "at least one column");
	assert_err(&errs, "KAFKA.INPUT.VALUE.FORMAT", 10, "is required");
	jobspec_free(spec);
}

static void test_validate_unique_names(void **state)
{
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;

	free(spec->value.columns[1].name);
	spec->value.columns[1].name = xstrdup("id");
	spec->mapping = calloc(2, sizeof(*spec->mapping));
	assert_non_null(spec->mapping);
	spec->nmapping = 2;
	spec->mapping[0].name = xstrdup("x");
	spec->mapping[0].expression = xstrdup("id");
	spec->mapping[1].name = xstrdup("x");
	spec->mapping[1].expression = xstrdup("note");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 2);
	/* The line of the column's NAME; a MAPPING made after parsing has none:
	 * the line of KAFKA.OUTPUT. */
	assert_err(&errs, "KAFKA.INPUT.VALUE.COLUMNS[1].NAME", line_of(minimal_yaml, "- NAME: note"), "defined twice");
	assert_err(&errs, "KAFKA.OUTPUT.MAPPING[1]", line_of(minimal_yaml, "  OUTPUT:"), "mapped twice");
	jobspec_free(spec);
}

static void test_validate_match_columns_for_update(void **state)
{
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;

	spec->mode = JS_MODE_UPDATE;
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS", line_of(minimal_yaml, "  OUTPUT:"), "is required for MODE UPDATE");
	spec->mode = JS_MODE_MERGE;
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS", -1, "is required for MODE MERGE");
	jobspec_free(spec);
}

static void test_validate_insert_ignores_match_and_update_columns(void **state)
{
	struct jobspec *spec = parse_ok("DATABASE: db\nUSER: u\nKAFKA:\n  INPUT:\n    VALUE:\n"
					"      COLUMNS: [{NAME: id}, {NAME: v}]\n  OUTPUT:\n    TABLE: t\n"
					"    MODE: INSERT\n    MATCH_COLUMNS: [id]\n    UPDATE_COLUMNS: [v]\n");
	struct js_errors errs;

	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	assert_int_equal(spec->nmatch_columns, 1);
	jobspec_free(spec);
}

static void test_validate_property_blacklist(void **state)
{
	static const struct {
		const char *key, *value, *message;
	} refused[] = {
		{ "enable.auto.commit", "true", "delivery guarantee" },
		{ "enable.auto.commit", "1", "delivery guarantee" },
		{ "enable.auto.offset.store", "TRUE", "delivery guarantee" },
		{ "bootstrap.servers", "x:9092", "use KAFKA.INPUT.SOURCE.BROKERS" },
		{ "metadata.broker.list", "x:9092", "use KAFKA.INPUT.SOURCE.BROKERS" },
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct jobspec *spec = minimal_valid();
		struct js_errors errs;
		char path[128];

		spec->properties = calloc(1, sizeof(*spec->properties));
		assert_non_null(spec->properties);
		spec->properties[0].key = xstrdup(refused[i].key);
		spec->properties[0].value = xstrdup(refused[i].value);
		spec->nproperties = 1;
		validate_fail(spec, &errs);
		assert_int_equal(errs.count, 1);
		snprintf(path, sizeof(path), "KAFKA.PROPERTIES.%s", refused[i].key);
		assert_err(&errs, path, line_of(minimal_yaml, "KAFKA:"), refused[i].message);
		jobspec_free(spec);
	}
	/* Turning them off is what the worker does anyway: allowed. */
	{
		struct js_errors errs;
		struct jobspec *spec = parse_ok("DATABASE: db\nUSER: u\nKAFKA:\n  INPUT:\n    VALUE:\n"
						"      COLUMNS: [{NAME: a}]\n  OUTPUT:\n    TABLE: t\n"
						"  PROPERTIES:\n    enable.auto.commit: false\n"
						"    enable.auto.offset.store: 'false'\n");

		assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
		assert_int_equal(jobspec_validate(spec, &errs), 0);
		jobspec_free(spec);
	}
}

static void test_validate_delimiters(void **state)
{
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;

	free(spec->value.delimiter);
	spec->value.delimiter = xstrdup("");
	spec->value.quote = xstrdup("ab");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 2);
	assert_err(&errs, "KAFKA.INPUT.VALUE.DELIMITED_OPTION.DELIMITER", spec->value.line, "is required");
	assert_err(&errs, "KAFKA.INPUT.VALUE.DELIMITED_OPTION.QUOTE", spec->value.line, "exactly one");

	/* A multi-character delimiter is fine for delimited ... */
	free(spec->value.delimiter);
	spec->value.delimiter = xstrdup("||");
	free(spec->value.quote);
	spec->value.quote = NULL;
	assert_int_equal(jobspec_validate(spec, &errs), 0);

	/* ... not for csv, and the quote must differ from the delimiter. */
	spec->value.format = JS_FORMAT_CSV;
	spec->value.escape = xstrdup("");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 2);
	assert_err(&errs, "KAFKA.INPUT.VALUE.CSV_OPTION.DELIMITER", spec->value.line, "exactly one");
	assert_err(&errs, "KAFKA.INPUT.VALUE.CSV_OPTION.ESCAPE", spec->value.line, "exactly one");
	free(spec->value.delimiter);
	spec->value.delimiter = xstrdup(";");
	free(spec->value.escape);
	spec->value.escape = NULL;
	spec->value.quote = xstrdup(";");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.INPUT.VALUE.CSV_OPTION.QUOTE", spec->value.line, "must differ");
	jobspec_free(spec);
}

static void test_validate_job_delimiter_meets_csv_source(void **state)
{
	/* DELIMITED_OPTION without FORMAT, and the source turns out csv. */
	struct jobspec *spec = parse_ok("DATABASE: db\nUSER: u\nKAFKA:\n  INPUT:\n    VALUE:\n"
					"      COLUMNS: [{NAME: a}]\n      DELIMITED_OPTION:\n        DELIMITER: '||'\n"
					"  OUTPUT:\n    TABLE: t\n");
	struct js_defaults d = std_defaults;
	struct js_errors errs;

	d.format = JS_FORMAT_CSV;
	d.delimiter = ",";
	assert_int_equal(jobspec_apply_defaults(spec, &d), 0);
	assert_int_equal(spec->value.format, JS_FORMAT_CSV);
	assert_string_equal(spec->value.delimiter, "||");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.INPUT.VALUE.CSV_OPTION.DELIMITER", 5, "exactly one");
	jobspec_free(spec);
}

static void test_validate_ranges(void **state)
{
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;

	spec->port = 70000;
	spec->commit_max_row = 0;
	spec->poll_batchsize = 0;
	spec->poll_timeout_ms = -1;
	spec->error_limit = 101;
	spec->error_limit_percent = true;
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 5);
	/* Keys the YAML lacks take the line of their nearest enclosing key. */
	assert_err(&errs, "PORT", 0, "between 1 and 65535");
	assert_err(&errs, "KAFKA.COMMIT.MAX_ROW", line_of(minimal_yaml, "KAFKA:"), ">= 1");
	assert_err(&errs, "KAFKA.POLL.BATCHSIZE", line_of(minimal_yaml, "KAFKA:"), ">= 1");
	assert_err(&errs, "KAFKA.POLL.TIMEOUT", line_of(minimal_yaml, "KAFKA:"), ">= 0");
	assert_err(&errs, "KAFKA.INPUT.ERROR_LIMIT", line_of(minimal_yaml, "  INPUT:"), "percentage");
	jobspec_free(spec);
}

static void test_validate_not_supported_yet(void **state)
{
	struct jobspec *spec = parse_ok(all_keys_yaml);
	struct js_errors errs;

	/* KEY, META, MODE UPDATE and ORDER_COLUMNS are supported now. */
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	jobspec_free(spec);

	spec = minimal_valid();
	spec->value.format = JS_FORMAT_JSON;
	free(spec->value.delimiter);
	spec->value.delimiter = NULL;
	assert_int_equal(jobspec_validate(spec, &errs), 0);

	/* at-most and none are supported now. */
	spec->consistency = JS_CONSISTENCY_ATMOST;
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	spec->consistency = JS_CONSISTENCY_NONE;
	assert_int_equal(jobspec_validate(spec, &errs), 0);

	/* EXACTLY is supported. */
	spec->value.format = JS_FORMAT_CSV;
	spec->consistency = JS_CONSISTENCY_EXACTLY;
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	jobspec_free(spec);
}

/* ---- emitting and the round trip ---- */

static void assert_str_eq_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_input_equal(const struct js_input *a, const struct js_input *b)
{
	assert_int_equal(a->present, b->present);
	assert_int_equal(a->ncolumns, b->ncolumns);
	for (size_t i = 0; i < a->ncolumns; i++) {
		assert_str_eq_or_null(a->columns[i].name, b->columns[i].name);
		assert_str_eq_or_null(a->columns[i].type, b->columns[i].type);
	}
	assert_int_equal(a->format, b->format);
	assert_str_eq_or_null(a->delimiter, b->delimiter);
	assert_str_eq_or_null(a->quote, b->quote);
	assert_str_eq_or_null(a->escape, b->escape);
	assert_str_eq_or_null(a->null_string, b->null_string);
	assert_str_eq_or_null(a->protobuf_descriptor_file, b->protobuf_descriptor_file);
	assert_str_eq_or_null(a->protobuf_descriptor, b->protobuf_descriptor);
	assert_str_eq_or_null(a->protobuf_message, b->protobuf_message);
	assert_str_eq_or_null(a->registry_addr, b->registry_addr);
	assert_str_eq_or_null(a->registry_user, b->registry_user);
	assert_str_eq_or_null(a->registry_password, b->registry_password);
	assert_int_equal(a->avro_bytes_to_base64, b->avro_bytes_to_base64);
	assert_str_eq_or_null(a->avro_schema_file, b->avro_schema_file);
	assert_str_eq_or_null(a->avro_schema, b->avro_schema);
}

static void assert_names_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++)
		assert_string_equal(a[i], b[i]);
}

/* Every field but the lines, which depend on the layout. */
static void assert_spec_equal(const struct jobspec *a, const struct jobspec *b)
{
	assert_str_eq_or_null(a->database, b->database);
	assert_str_eq_or_null(a->user, b->user);
	assert_str_eq_or_null(a->password, b->password);
	assert_str_eq_or_null(a->host, b->host);
	assert_int_equal(a->port, b->port);
	assert_str_eq_or_null(a->sslmode, b->sslmode);
	assert_str_eq_or_null(a->sslrootcert, b->sslrootcert);
	assert_str_eq_or_null(a->sslcert, b->sslcert);
	assert_str_eq_or_null(a->sslkey, b->sslkey);
	assert_int_equal(a->version, b->version);
	assert_str_eq_or_null(a->brokers, b->brokers);
	assert_str_eq_or_null(a->topic, b->topic);
	assert_int_equal(a->npartitions, b->npartitions);
	for (size_t i = 0; i < a->npartitions; i++)
		assert_int_equal(a->partitions[i], b->partitions[i]);
	assert_int_equal(a->fallback_offset, b->fallback_offset);
	assert_input_equal(&a->key, &b->key);
	assert_input_equal(&a->value, &b->value);
	assert_int_equal(a->meta_present, b->meta_present);
	assert_str_eq_or_null(a->meta_column, b->meta_column);
	assert_str_eq_or_null(a->meta_type, b->meta_type);
	assert_int_equal(a->error_limit, b->error_limit);
	assert_int_equal(a->error_limit_percent, b->error_limit_percent);
	assert_str_eq_or_null(a->schema, b->schema);
	assert_str_eq_or_null(a->table, b->table);
	assert_int_equal(a->mode, b->mode);
	assert_names_equal(a->match_columns, a->nmatch_columns, b->match_columns, b->nmatch_columns);
	assert_names_equal(a->order_columns, a->norder_columns, b->order_columns, b->norder_columns);
	assert_names_equal(a->update_columns, a->nupdate_columns, b->update_columns, b->nupdate_columns);
	assert_int_equal(a->nmapping, b->nmapping);
	for (size_t i = 0; i < a->nmapping; i++) {
		assert_string_equal(a->mapping[i].name, b->mapping[i].name);
		assert_string_equal(a->mapping[i].expression, b->mapping[i].expression);
	}
	assert_str_eq_or_null(a->metadata_schema, b->metadata_schema);
	assert_int_equal(a->commit_max_row, b->commit_max_row);
	assert_int_equal(a->commit_minimal_interval_ms, b->commit_minimal_interval_ms);
	assert_int_equal(a->consistency, b->consistency);
	assert_int_equal(a->poll_batchsize, b->poll_batchsize);
	assert_int_equal(a->poll_timeout_ms, b->poll_timeout_ms);
	assert_int_equal(a->nproperties, b->nproperties);
	for (size_t i = 0; i < a->nproperties; i++) {
		assert_string_equal(a->properties[i].key, b->properties[i].key);
		assert_string_equal(a->properties[i].value, b->properties[i].value);
	}
	assert_int_equal(a->retry_interval_ms, b->retry_interval_ms);
	assert_int_equal(a->max_retries, b->max_retries);
}

static struct jobspec *round_trip(const struct jobspec *spec)
{
	char *yaml = jobspec_to_yaml(spec, false);
	struct jobspec *back;

	assert_non_null(yaml);
	back = parse_ok(yaml);
	assert_spec_equal(spec, back);
	free(yaml);
	return back;
}

static void test_round_trip_seed(void **state)
{
	struct jobspec *spec = parse_ok(seed_yaml);

	jobspec_free(round_trip(spec));
	jobspec_free(spec);
}

static void test_round_trip_all_keys(void **state)
{
	struct jobspec *spec = parse_ok(all_keys_yaml);
	struct jobspec *back = round_trip(spec);

	/* And the emitted text reads back the same a second time. */
	jobspec_free(round_trip(back));
	jobspec_free(back);
	jobspec_free(spec);
}

static void test_round_trip_tricky_text(void **state)
{
	static const char *const values[] = {
		"",	    "null", "~",	 "true", "no",	   "123",	 "-4.5", "0x1F", "a: b",
		"# hash", "'q'",  "\"dq\"",	 " lead", "trail ", "multi\nline", "tab\there", "ünïcødé ✓",
		"*star", "&amp", "- dash", "[x]",	 "{y}",  "%pct",    "@at",	 "`bt`", "|pipe", ">gt",
		"!bang", "?q",	"\\back",	 "****",
	};
	size_t n = sizeof(values) / sizeof(values[0]);
	struct jobspec *spec = jobspec_new();
	struct jobspec *back;

	assert_non_null(spec);
	spec->properties = calloc(n, sizeof(*spec->properties));
	assert_non_null(spec->properties);
	for (size_t i = 0; i < n; i++) {
		char key[32];

		snprintf(key, sizeof(key), "p%zu", i);
		spec->properties[i].key = xstrdup(key);
		spec->properties[i].value = xstrdup(values[i]);
	}
	spec->nproperties = n;
	spec->password = xstrdup("p@ss: w0rd #!");
	spec->database = xstrdup("123");
	spec->user = xstrdup("yes");
	spec->table = xstrdup("Order Lines");
	spec->value.present = true;
	spec->value.format = JS_FORMAT_CSV;
	spec->value.delimiter = xstrdup(",");
	spec->value.quote = xstrdup("'");
	spec->value.escape = xstrdup("\\");
	spec->value.null_string = xstrdup("");
	spec->value.columns = calloc(1, sizeof(*spec->value.columns));
	assert_non_null(spec->value.columns);
	spec->value.columns[0].name = xstrdup("a b");
	spec->value.columns[0].type = xstrdup("numeric(10,2)");
	spec->value.ncolumns = 1;
	back = round_trip(spec);
	jobspec_free(back);

	/* Other YAML readers keep these as text too. */
	{
		char *yaml = jobspec_to_yaml(spec, false);

		assert_non_null(yaml);
		assert_non_null(strstr(yaml, "DATABASE: '123'\n"));
		assert_non_null(strstr(yaml, "USER: 'yes'\n"));
		assert_non_null(strstr(yaml, "p1: 'null'\n"));
		assert_non_null(strstr(yaml, "p0: ''\n"));
		assert_non_null(strstr(yaml, "p7: '0x1F'\n"));
		free(yaml);
	}
	jobspec_free(spec);
}

static void test_round_trip_formatless_value_and_defaults(void **state)
{
	struct jobspec *spec = jobspec_new();
	struct jobspec *back;
	char *yaml;

	assert_non_null(spec);
	/* What the wizard makes: no FORMAT, columns without TYPE. */
	spec->value.present = true;
	spec->value.columns = calloc(2, sizeof(*spec->value.columns));
	assert_non_null(spec->value.columns);
	spec->value.columns[0].name = xstrdup("a");
	spec->value.columns[1].name = xstrdup("b");
	spec->value.ncolumns = 2;
	spec->key.present = true; /* present but empty */
	spec->meta_present = true;
	spec->meta_column = xstrdup("m");
	spec->meta_type = xstrdup("text");
	spec->error_limit = 40;
	spec->error_limit_percent = true;
	spec->partitions = calloc(2, sizeof(*spec->partitions));
	assert_non_null(spec->partitions);
	spec->partitions[0] = 4;
	spec->partitions[1] = 1;
	spec->npartitions = 2;
	spec->retry_interval_ms = 0;
	spec->max_retries = 3;
	spec->port = 1;
	spec->version = 3;
	back = round_trip(spec);
	jobspec_free(back);

	yaml = jobspec_to_yaml(spec, false);
	assert_non_null(yaml);
	assert_null(strstr(yaml, "TYPE: null"));
	assert_non_null(strstr(yaml, "- NAME: a\n"));
	assert_null(strstr(yaml, "FORMAT: none"));
	assert_non_null(strstr(yaml, "PARTITIONS: (4,1)"));
	assert_non_null(strstr(yaml, "ERROR_LIMIT: 40%"));
	assert_null(strstr(yaml, "PASSWORD"));
	free(yaml);

	/* A delimiter set without a FORMAT goes back as DELIMITED_OPTION. */
	spec->value.delimiter = xstrdup("~~");
	jobspec_free(round_trip(spec));
	jobspec_free(spec);
}

static void test_to_yaml_layout(void **state)
{
	struct jobspec *spec = parse_ok("PORT: 5432\nKAFKA:\n  OUTPUT:\n    TABLE: t\n    MAPPING:\n      x: a + 1\n");
	char *yaml = jobspec_to_yaml(spec, false);

	assert_non_null(yaml);
	assert_true(strncmp(yaml, "PORT: 5432\nVERSION: 2\nKAFKA:\n  INPUT:\n", 37) == 0);
	assert_non_null(strstr(yaml, "  OUTPUT:\n    TABLE: t\n    MODE: INSERT\n    MAPPING:\n"
				     "    - NAME: x\n      EXPRESSION: a + 1\n"));
	assert_non_null(strstr(yaml, "  COMMIT:\n    MAX_ROW: 500\n    MINIMAL_INTERVAL: 1000\n"
				     "    CONSISTENCY: ATLEAST\n"));
	assert_non_null(strstr(yaml, "  POLL:\n    BATCHSIZE: 64\n    TIMEOUT: 5000\n"));
	assert_non_null(strstr(yaml, "SCHEDULE:\n  RETRY_INTERVAL: 5000\n  MAX_RETRIES: 0\n"));
	assert_non_null(strstr(yaml, "FALLBACK_OFFSET: earliest\n"));
	assert_null(strstr(yaml, "DATABASE"));
	assert_null(strstr(yaml, "METADATA"));
	assert_null(strstr(yaml, "PROPERTIES"));
	free(yaml);
	jobspec_free(spec);
}

static void test_password_masking(void **state)
{
	struct jobspec *spec = parse_ok(seed_yaml);
	char *plain = jobspec_to_yaml(spec, false);
	char *masked = jobspec_to_yaml(spec, true);
	struct jobspec *back;

	assert_non_null(plain);
	assert_non_null(masked);
	assert_non_null(strstr(plain, "PASSWORD: lissTest1234\n"));
	assert_null(strstr(masked, "lissTest1234"));
	assert_non_null(strstr(masked, "PASSWORD: '****'\n"));
	back = parse_ok(masked);
	assert_string_equal(back->password, "****");
	assert_string_equal(back->user, "liss_test");
	jobspec_free(back);
	free(plain);
	free(masked);
	jobspec_free(spec);
}

/* ---- wizard ---- */

static cJSON *json(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	assert_non_null(j);
	return j;
}

static struct jobspec *wizard_ok(const char *text)
{
	cJSON *j = json(text);
	struct jobspec *spec = NULL;
	struct js_errors errs;

	if (jobspec_from_wizard(j, &spec, &errs) != 0) {
		char buf[2048];

		js_errors_format(&errs, buf, sizeof(buf));
		fail_msg("wizard failed: %s", buf);
	}
	cJSON_Delete(j);
	assert_non_null(spec);
	return spec;
}

static void wizard_fail(const char *text, struct js_errors *errs)
{
	cJSON *j = json(text);
	struct jobspec *spec = (struct jobspec *)1;

	assert_int_equal(jobspec_from_wizard(j, &spec, errs), -1);
	assert_null(spec);
	assert_true(errs->count > 0);
	cJSON_Delete(j);
}

static const char wizard_full[] =
	"{\"id\": 4, \"name\": \"orders\", \"description\": \"\", \"source_id\": 2, \"mode\": \"wizard\","
	" \"state\": \"stopped\", \"desired_state\": \"stopped\", \"created_at\": \"2026-01-01T00:00:00Z\","
	" \"updated_at\": \"2026-01-01T00:00:00Z\","
	" \"group_name\": \"g1\", \"fallback_offset\": \"latest\", \"consistency\": \"EXACTLY\","
	" \"database\": \"sales\", \"schema\": \"s1\", \"table\": \"orders\", \"account\": \"loader\","
	" \"password\": \"pw\", \"write_mode\": \"merge\", \"error_limit\": 3,"
	" \"fields\": [{\"source\": \"c1\", \"dest\": \"id\", \"role\": \"match\"},"
	"              {\"source\": \"c2\", \"role\": \"update\"},"
	"              {\"source\": \"c3\", \"dest\": \"note\", \"role\": \"none\"},"
	"              {\"source\": \"c4\"}]}";

static void test_wizard_happy_path(void **state)
{
	struct jobspec *spec = wizard_ok(wizard_full);

	assert_int_equal(spec->nproperties, 1);
	assert_string_equal(jobspec_property(spec, "group.id"), "g1");
	assert_int_equal(spec->fallback_offset, JS_FALLBACK_LATEST);
	assert_int_equal(spec->consistency, JS_CONSISTENCY_EXACTLY);
	assert_string_equal(spec->database, "sales");
	assert_string_equal(spec->schema, "s1");
	assert_string_equal(spec->table, "orders");
	assert_string_equal(spec->user, "loader");
	assert_string_equal(spec->password, "pw");
	assert_int_equal(spec->mode, JS_MODE_MERGE);
	assert_int_equal(spec->error_limit, 3);
	assert_false(spec->error_limit_percent);
	assert_true(spec->value.present);
	assert_int_equal(spec->value.format, JS_FORMAT_NONE);
	assert_int_equal(spec->value.ncolumns, 4);
	assert_string_equal(spec->value.columns[0].name, "c1");
	assert_null(spec->value.columns[0].type);
	assert_string_equal(spec->value.columns[3].name, "c4");
	assert_int_equal(spec->nmapping, 4);
	assert_string_equal(spec->mapping[0].name, "id");
	assert_string_equal(spec->mapping[0].expression, "c1");
	assert_string_equal(spec->mapping[1].name, "c2"); /* dest defaults to source */
	assert_string_equal(spec->mapping[1].expression, "c2");
	assert_string_equal(spec->mapping[2].name, "note");
	assert_string_equal(spec->mapping[3].name, "c4");
	assert_int_equal(spec->nmatch_columns, 1);
	assert_string_equal(spec->match_columns[0], "id");
	assert_int_equal(spec->nupdate_columns, 1);
	assert_string_equal(spec->update_columns[0], "c2");
	assert_false(spec->key.present);
	assert_null(spec->host);

	/* It goes to the worker as YAML and comes back equal. */
	jobspec_free(round_trip(spec));
	jobspec_free(spec);
}

static void test_wizard_defaults_and_validate(void **state)
{
	struct jobspec *spec = wizard_ok("{\"database\": \"db\", \"table\": \"t\", \"account\": \"u\","
					 " \"fields\": [{\"source\": \"a\"}, {\"source\": \"b\"}]}");
	struct js_errors errs;

	assert_string_equal(spec->schema, "public");
	assert_int_equal(spec->mode, JS_MODE_INSERT);
	assert_int_equal(spec->fallback_offset, JS_FALLBACK_EARLIEST);
	assert_int_equal(spec->consistency, JS_CONSISTENCY_ATLEAST);
	assert_int_equal(spec->error_limit, 0);
	assert_null(spec->password);
	assert_int_equal(spec->nproperties, 0);
	assert_null(spec->match_columns);
	assert_null(spec->update_columns);
	assert_int_equal(spec->nmatch_columns, 0);

	/* Not valid until the source and service fill in their parts. */
	assert_int_equal(jobspec_validate(spec, &errs), -1);
	assert_err(&errs, "KAFKA.INPUT.VALUE.FORMAT", -1, "is required");
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	assert_int_equal(spec->value.format, JS_FORMAT_DELIMITED);
	assert_string_equal(spec->value.delimiter, "|");
	jobspec_free(spec);
}

static void test_wizard_errors(void **state)
{
	static const struct {
		const char *json;
		const char *path;
		const char *message;
	} cases[] = {
		{ "{\"database\": 5}", "database", "must be a string, got a number" },
		{ "{\"table\": \"\"}", "table", "must not be empty" },
		{ "{\"account\": [\"u\"]}", "account", "got an array" },
		{ "{\"password\": true}", "password", "got a boolean" },
		{ "{\"schema\": {}}", "schema", "got an object" },
		{ "{\"group_name\": 1}", "group_name", "must be a string" },
		{ "{\"group_name\": \"g\", \"fields\": [{\"source\": \"a\", \"role\": 1}]}", "fields[0].role",
		  "must be a string" },
		{ "{\"write_mode\": \"UPSERT\"}", "write_mode", "must be one of INSERT, UPDATE, MERGE" },
		{ "{\"fallback_offset\": \"now\"}", "fallback_offset", "must be one of earliest, latest" },
		{ "{\"consistency\": \"at-most\"}", "consistency", "must be one of ATLEAST, EXACTLY" },
		{ "{\"error_limit\": -1}", "error_limit", "integer >= 0" },
		{ "{\"error_limit\": 1.5}", "error_limit", "integer >= 0" },
		{ "{\"error_limit\": \"5%\"}", "error_limit", "got a string" },
		{ "{\"fields\": []}", "fields", "at least one field" },
		{ "{\"fields\": {}}", "fields", "must be an array" },
		{ "{\"fields\": [\"a\"]}", "fields[0]", "must be an object" },
		{ "{\"fields\": [{\"source\": \"a\"}, {\"source\": \"b\"}, {\"source\": \"c\", \"role\": \"key\"}]}",
		  "fields[2].role", "must be one of match, update, none" },
		{ "{\"fields\": [{\"dest\": \"a\"}]}", "fields[0].source", "is required" },
		{ "{\"fields\": [{\"source\": null}]}", "fields[0].source", "is required" },
		{ "{\"fields\": [{\"source\": 3}]}", "fields[0].source", "must be a string" },
		{ "{\"fields\": [{\"source\": \"a\", \"dest\": 5}]}", "fields[0].dest", "must be a string" },
		{ "{\"fields\": [{\"source\": \"\"}]}", "fields[0].source", "must not be empty" },
		{ "{\"fields\": [{\"source\": \"a\"}, {\"source\": \"a\"}]}", "fields[1].source", "given twice" },
		{ "{\"fields\": [{\"source\": \"a\"}, {\"source\": \"b\", \"dest\": \"a\"}]}", "fields[1].dest",
		  "destination of fields[0] too" },
		{ "{\"fields\": [{\"source\": \"a\", \"type\": \"int\"}]}", "fields[0].type", "unknown field" },
		{ "{\"write_mode\": \"UPDATE\", \"fields\": [{\"source\": \"a\", \"role\": \"update\"}]}", "fields",
		  "role \"match\"" },
		{ "{\"config\": \"DATABASE: x\"}", "config", "unknown field" },
		{ "{\"table\": \"a\", \"table\": \"b\"}", "table", "given twice" },
		{ "{\"database\": \"\xff\xfe\"}", "database", "UTF-8" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		struct js_errors errs;
		const struct js_error *e;

		/* Fill in the required fields the case does not set itself. */
		snprintf(text, sizeof(text), "{%s%s%s",
			 strstr(cases[i].json, "\"database\"") ? "" : "\"database\": \"d\", ",
			 strstr(cases[i].json, "\"table\"") ? "" : "\"table\": \"t\", ",
			 strstr(cases[i].json, "\"account\"") ? "" : "\"account\": \"u\", ");
		if (strstr(cases[i].json, "\"fields\"") == NULL)
			strncat(text, "\"fields\": [{\"source\": \"a\"}], ", sizeof(text) - strlen(text) - 1);
		strncat(text, cases[i].json + 1, sizeof(text) - strlen(text) - 1);
		current_case = text;
		wizard_fail(text, &errs);
		e = find_err(&errs, cases[i].path);
		if (e == NULL || errs.count != 1) {
			dump_errs(&errs);
			fail_msg("case %zu: expected one error at %s", i, cases[i].path);
		}
		assert_int_equal(e->line, 0);
		if (cases[i].message != NULL)
			assert_non_null(strstr(e->message, cases[i].message));
	}
	current_case = NULL;
}

static void test_wizard_required_and_not_object(void **state)
{
	struct js_errors errs;
	cJSON *arr = json("[1]");
	struct jobspec *spec = NULL;

	wizard_fail("{\"name\": \"job\", \"mode\": \"wizard\"}", &errs);
	assert_int_equal(errs.count, 4);
	assert_err(&errs, "database", 0, "is required");
	assert_err(&errs, "table", 0, "is required");
	assert_err(&errs, "account", 0, "is required");
	assert_err(&errs, "fields", 0, "is required");

	assert_int_equal(jobspec_from_wizard(arr, &spec, &errs), -1);
	assert_null(spec);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.items[0].message, "JSON object"));
	assert_int_equal(jobspec_from_wizard(NULL, &spec, &errs), -1);
	cJSON_Delete(arr);
}

static void test_wizard_many_errors_at_once(void **state)
{
	struct js_errors errs;

	wizard_fail("{\"database\": 1, \"table\": \"t\", \"account\": \"u\", \"write_mode\": \"x\", \"bogus\": 1,"
		    " \"fields\": [{\"source\": \"a\", \"role\": \"boss\"}, 7]}", &errs);
	assert_int_equal(errs.count, 5);
	assert_err(&errs, "database", 0, "must be a string");
	assert_err(&errs, "write_mode", 0, "INSERT, UPDATE, MERGE");
	assert_err(&errs, "bogus", 0, "unknown field");
	assert_err(&errs, "fields[0].role", 0, "match, update, none");
	assert_err(&errs, "fields[1]", 0, "must be an object");
}

static void test_wizard_blank_optional_fields(void **state)
{
	struct jobspec *spec = wizard_ok("{\"database\": \"db\", \"table\": \"t\", \"account\": \"u\","
					 " \"password\": \"\", \"schema\": \"\", \"group_name\": \"\","
					 " \"write_mode\": \"UPDATE\", \"fields\": [{\"source\": \"a\", \"dest\": \"\","
					 " \"role\": \"MATCH\"}, {\"source\": \"b\", \"dest\": \"B\", \"role\": \"\"}]}");

	assert_string_equal(spec->password, ""); /* an empty password is a password */
	assert_string_equal(spec->schema, "public");
	assert_int_equal(spec->nproperties, 0);
	assert_string_equal(spec->mapping[0].name, "a");
	assert_string_equal(spec->mapping[1].name, "B");
	assert_string_equal(spec->mapping[1].expression, "b");
	assert_int_equal(spec->nmatch_columns, 1);
	assert_string_equal(spec->match_columns[0], "a");
	assert_int_equal(spec->nupdate_columns, 0);
	assert_int_equal(spec->mode, JS_MODE_UPDATE);
	jobspec_free(spec);
}

static void test_wizard_null_optional_fields(void **state)
{
	struct jobspec *spec = wizard_ok("{\"database\": \"db\", \"table\": \"t\", \"account\": \"u\","
					 " \"password\": null, \"schema\": null, \"group_name\": null,"
					 " \"description\": null, \"fields\": [{\"source\": \"a\", \"dest\": null,"
					 " \"role\": null}]}");

	assert_null(spec->password);
	assert_string_equal(spec->schema, "public");
	assert_string_equal(spec->mapping[0].name, "a");
	assert_int_equal(spec->nmatch_columns, 0);
	jobspec_free(spec);
}

/* ---- the line map ---- */

static const char lines_yaml[] =
	"DATABASE: db\n"		/* 1 */
	"kafka:\n"			/* 2 */
	"  INPUT:\n"			/* 3 */
	"    VALUE:\n"			/* 4 */
	"      COLUMNS:\n"		/* 5 */
	"        - NAME: a\n"		/* 6 */
	"          TYPE: int\n"		/* 7 */
	"        - NAME: b\n"		/* 8 */
	"        -   NAME: c\n"		/* 9 */
	"            type: json\n"	/* 10 */
	"      FORMAT: json\n"		/* 11 */
	"  OUTPUT:\n"			/* 12 */
	"    MATCH_COLUMNS:\n"		/* 13 */
	"      - a\n"			/* 14 */
	"      - b\n"			/* 15 */
	"    MAPPING:\n"		/* 16 */
	"      - NAME: a\n"		/* 17 */
	"        EXPRESSION: a\n"	/* 18 */
	"  PROPERTIES:\n"		/* 19 */
	"    group.id: g\n";		/* 20 */

static void test_line_map(void **state)
{
	struct jobspec *spec = parse_ok(lines_yaml);
	struct jobspec *back;
	char *yaml;

	assert_true(spec->nlines > 0);
	assert_int_equal(jobspec_line(spec, "DATABASE"), 1);
	assert_int_equal(jobspec_line(spec, "KAFKA"), 2); /* written "kafka": the path is canonical */
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE"), 4);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE"), spec->value.line);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.COLUMNS"), 5);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.COLUMNS[0]"), 6);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.COLUMNS[0].TYPE"), 7);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.COLUMNS[2]"), 9);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.COLUMNS[2].NAME"), 9);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.COLUMNS[2].TYPE"), 10);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.FORMAT"), 11);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MATCH_COLUMNS[0]"), 14);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MATCH_COLUMNS[1]"), 15);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MAPPING[0]"), 17);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MAPPING[0].EXPRESSION"), 18);
	assert_int_equal(jobspec_line(spec, "KAFKA.PROPERTIES.group.id"), 20);

	/* What the YAML lacks takes its nearest enclosing key's line. */
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.COLUMNS[1].TYPE"), 8);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.COLUMNS[7].NAME"), 5);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MATCH_COLUMNS[2]"), 13);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.TABLE"), 12);
	assert_int_equal(jobspec_line(spec, "KAFKA.PROPERTIES.client.id"), 19);
	assert_int_equal(jobspec_line(spec, "KAFKA.COMMIT.MAX_ROW"), 2);
	assert_int_equal(jobspec_line(spec, "SCHEDULE.MAX_RETRIES"), 0);
	assert_int_equal(jobspec_line(spec, "USER"), 0);
	assert_int_equal(jobspec_line(spec, ""), 0);
	assert_int_equal(jobspec_line(spec, NULL), 0);
	assert_int_equal(jobspec_line(NULL, "DATABASE"), 0);

	/* Not emitted: the text read back has the lines of the emitted layout. */
	yaml = jobspec_to_yaml(spec, false);
	assert_non_null(yaml);
	assert_null(strstr(yaml, "line"));
	back = parse_ok(yaml);
	assert_int_equal(jobspec_line(back, "KAFKA.OUTPUT.MATCH_COLUMNS[1]"), line_of(yaml, "- b\n"));
	assert_int_equal(jobspec_line(back, "KAFKA.INPUT.VALUE.COLUMNS[2].TYPE"), line_of(yaml, "TYPE: json"));
	free(yaml);
	jobspec_free(back);
	jobspec_free(spec);

	/* The target: expression form names MAPPING entries by position too. */
	spec = parse_ok("KAFKA:\n  OUTPUT:\n    MAPPING:\n      x: a\n      y: b\n");
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MAPPING[0]"), 4);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MAPPING[1]"), 5);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MAPPING[1].EXPRESSION"), 5);
	jobspec_free(spec);

	/* A wizard job has none. */
	spec = wizard_ok("{\"database\": \"db\", \"table\": \"t\", \"account\": \"u\", \"fields\": [{\"source\": \"a\"}]}");
	assert_int_equal(spec->nlines, 0);
	assert_null(spec->lines);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MAPPING[0]"), 0);
	jobspec_free(spec);
}

/* ---- cross-key validation ---- */

static const char cross_yaml[] =
	"DATABASE: db\n"		/* 1 */
	"USER: u\n"			/* 2 */
	"HOST: h\n"			/* 3 */
	"PORT: 5432\n"			/* 4 */
	"KAFKA:\n"			/* 5 */
	"  INPUT:\n"			/* 6 */
	"    SOURCE:\n"			/* 7 */
	"      BROKERS: k:9092\n"	/* 8 */
	"      TOPIC: t\n"		/* 9 */
	"    KEY:\n"			/* 10 */
	"      COLUMNS:\n"		/* 11 */
	"        - NAME: id\n"		/* 12 */
	"          TYPE: bigint\n"	/* 13 */
	"      FORMAT: delimited\n"	/* 14 */
	"      DELIMITED_OPTION:\n"	/* 15 */
	"        DELIMITER: ','\n"	/* 16 */
	"    VALUE:\n"			/* 17 */
	"      COLUMNS:\n"		/* 18 */
	"        - NAME: id\n"		/* 19 */
	"        - NAME: v\n"		/* 20 */
	"      FORMAT: json\n"		/* 21 */
	"    META:\n"			/* 22 */
	"      COLUMNS:\n"		/* 23 */
	"        - NAME: v\n"		/* 24 */
	"          TYPE: jsonb\n"	/* 25 */
	"      FORMAT: json\n"		/* 26 */
	"  OUTPUT:\n"			/* 27 */
	"    TABLE: t\n"		/* 28 */
	"    MODE: UPDATE\n"		/* 29 */
	"    MATCH_COLUMNS:\n"		/* 30 */
	"      - id\n"			/* 31 */
	"      - nope\n"		/* 32 */
	"    UPDATE_COLUMNS:\n"		/* 33 */
	"      - id\n"			/* 34 */
	"      - total\n"		/* 35 */
	"    ORDER_COLUMNS: [ghost]\n"	/* 36 */
	"    MAPPING:\n"		/* 37 */
	"      - NAME: id\n"		/* 38 */
	"        EXPRESSION: id\n"	/* 39 */
	"      - NAME: total\n"		/* 40 */
	"        EXPRESSION: v::numeric\n"; /* 41 */

static void test_validate_cross_keys_all_at_once(void **state)
{
	struct jobspec *spec = parse_ok(cross_yaml);
	struct js_errors *errs = malloc(sizeof(*errs));
	char buf[4096];

	assert_non_null(errs);
	validate_fail(spec, errs);
	assert_int_equal(errs->count, 5);
	assert_err(errs, "KAFKA.INPUT.VALUE.COLUMNS[0].NAME", 19, "also KAFKA.INPUT.KEY.COLUMNS[0]");
	assert_err(errs, "KAFKA.INPUT.VALUE.COLUMNS[0].NAME", 19, "share one staging table");
	assert_err(errs, "KAFKA.INPUT.META.COLUMNS[0].NAME", 24, "also KAFKA.INPUT.VALUE.COLUMNS[1]");
	assert_err(errs, "KAFKA.OUTPUT.MATCH_COLUMNS[1]", 32, "\"nope\" is not a MAPPING NAME");
	assert_err(errs, "KAFKA.OUTPUT.MATCH_COLUMNS[1]", 32, "use one of \"id\", \"total\"");
	assert_err(errs, "KAFKA.OUTPUT.UPDATE_COLUMNS[0]", 34, "also MATCH_COLUMNS[0]");
	assert_err(errs, "KAFKA.OUTPUT.ORDER_COLUMNS[0]", 36, "\"ghost\" is not a MAPPING NAME");
	js_errors_format(errs, buf, sizeof(buf));
	assert_non_null(strstr(buf, "KAFKA.OUTPUT.MATCH_COLUMNS[1] (line 32): "));

	/* An empty EXPRESSION (only a program can make one) is refused at its line. */
	free(spec->mapping[1].expression);
	spec->mapping[1].expression = xstrdup("");
	validate_fail(spec, errs);
	assert_int_equal(errs->count, 6);
	assert_err(errs, "KAFKA.OUTPUT.MAPPING[1].EXPRESSION", 41, "needs EXPRESSION");
	jobspec_free(spec);

	/* Fixed, it validates: names differ, every target list names a MAPPING NAME. */
	spec = parse_ok(cross_yaml);
	free(spec->value.columns[0].name);
	spec->value.columns[0].name = xstrdup("payload_id");
	free(spec->meta_column);
	spec->meta_column = xstrdup("meta");
	free(spec->match_columns[1]);
	spec->match_columns[1] = xstrdup("total");
	free(spec->update_columns[0]);
	spec->update_columns[0] = xstrdup("total");
	free(spec->update_columns[1]);
	spec->update_columns[1] = NULL;
	spec->nupdate_columns = 1;
	free(spec->match_columns[1]);
	spec->match_columns[1] = NULL;
	spec->nmatch_columns = 1;
	free(spec->order_columns[0]);
	spec->order_columns[0] = xstrdup("id");
	if (jobspec_validate(spec, errs) != 0) {
		dump_errs(errs);
		fail_msg("expected valid");
	}
	jobspec_free(spec);
	free(errs);
}

/* Without MAPPING the target columns are the KEY, VALUE and META names. */
static void test_validate_target_columns_without_mapping(void **state)
{
	static const char yaml[] = "DATABASE: db\nUSER: u\nKAFKA:\n  INPUT:\n    VALUE:\n"
				   "      COLUMNS: [{NAME: id}, {NAME: note}]\n    META:\n"
				   "      COLUMNS: [{NAME: m, TYPE: json}]\n  OUTPUT:\n    TABLE: t\n    MODE: MERGE\n"
				   "    MATCH_COLUMNS: [id, ghost]\n    UPDATE_COLUMNS: [m]\n    ORDER_COLUMNS: [note]\n";
	struct jobspec *spec = parse_ok(yaml);
	struct js_errors errs;

	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS[1]", line_of(yaml, "MATCH_COLUMNS"),
		   "\"ghost\" is not a KEY, VALUE or META column");
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS[1]", -1, "use one of \"id\", \"note\", \"m\"");

	/* The same names in INSERT mode: accepted and ignored. */
	spec->mode = JS_MODE_INSERT;
	assert_int_equal(jobspec_validate(spec, &errs), 0);

	/* UPDATE and MERGE need MATCH_COLUMNS; ORDER_COLUMNS go with either. */
	spec->mode = JS_MODE_UPDATE;
	free(spec->match_columns[1]);
	spec->match_columns[1] = NULL;
	spec->nmatch_columns = 1;
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	free(spec->match_columns[0]);
	free(spec->match_columns);
	spec->match_columns = NULL;
	spec->nmatch_columns = 0;
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS", line_of(yaml, "MATCH_COLUMNS"), "is required for MODE UPDATE");
	jobspec_free(spec);
}

/* The list of names in a message is cut to fit, not overflowing. */
static void test_validate_many_target_names_cut(void **state)
{
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;
	const struct js_error *e;

	spec->mapping = calloc(60, sizeof(*spec->mapping));
	assert_non_null(spec->mapping);
	for (size_t i = 0; i < 60; i++) {
		char name[32];

		snprintf(name, sizeof(name), "target_column_%02zu", i);
		spec->mapping[i].name = xstrdup(name);
		spec->mapping[i].expression = xstrdup("id");
	}
	spec->nmapping = 60;
	spec->mode = JS_MODE_MERGE;
	spec->match_columns = calloc(1, sizeof(*spec->match_columns));
	assert_non_null(spec->match_columns);
	spec->match_columns[0] = xstrdup("ghost");
	spec->nmatch_columns = 1;
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	e = find_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS[0]");
	assert_non_null(e);
	assert_non_null(strstr(e->message, "\"target_column_00\", \"target_column_01\""));
	assert_non_null(strstr(e->message, ", ..."));
	assert_null(strstr(e->message, "target_column_59"));
	jobspec_free(spec);
}

static void test_validate_meta_types(void **state)
{
	static const char *const ok[] = { "json", "jsonb", "text", "JSONB" };
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;

	spec->meta_present = true;
	spec->meta_column = xstrdup("meta");
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		free(spec->meta_type);
		spec->meta_type = xstrdup(ok[i]);
		assert_int_equal(jobspec_validate(spec, &errs), 0);
	}
	free(spec->meta_type);
	spec->meta_type = xstrdup("xml");
	validate_fail(spec, &errs);
	assert_err(&errs, "KAFKA.INPUT.META.COLUMNS[0].TYPE", -1, "json, jsonb, text");
	free(spec->meta_type);
	spec->meta_type = NULL;
	validate_fail(spec, &errs);
	assert_err(&errs, "KAFKA.INPUT.META.COLUMNS[0].TYPE", -1, "is required");
	jobspec_free(spec);
}

/* ---- AVRO_OPTION, JSON_OPTION ---- */

static const char avro_yaml[] =
	"DATABASE: db\n"
	"USER: u\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    KEY:\n"
	"      COLUMNS:\n"
	"        - NAME: k\n"
	"      FORMAT: avro\n"
	"      AVRO_OPTION:\n"
	"        SCHEMA: '{\"type\": \"record\", \"name\": \"K\", \"fields\": [{\"name\": \"k\", \"type\": \"long\"}]}'\n"
	"    VALUE:\n"
	"      COLUMNS:\n"
	"        - NAME: id\n"
	"          TYPE: bigint\n"
	"      FORMAT: Avro\n"
	"      avro_option:\n"
	"        SCHEMA_REGISTRY_ADDR:\n"
	"          - https://r1:8081\n"
	"          - http://r2:8081/base/\n"
	"        SCHEMA_REGISTRY_USER: alice\n"
	"        SCHEMA_REGISTRY_PASSWORD: s3cret-registry\n"
	"        BYTES_TO_BASE64: true\n"
	"  OUTPUT:\n"
	"    TABLE: orders\n";

static void test_avro_option_parse_round_trip(void **state)
{
	struct jobspec *spec = parse_ok(avro_yaml);
	struct js_errors errs;
	const char *secrets[8];
	char *yaml;

	assert_int_equal(spec->key.format, JS_FORMAT_AVRO);
	assert_non_null(strstr(spec->key.avro_schema, "\"name\": \"K\""));
	assert_int_equal(spec->value.format, JS_FORMAT_AVRO);
	assert_string_equal(spec->value.registry_addr, "https://r1:8081,http://r2:8081/base/");
	assert_string_equal(spec->value.registry_user, "alice");
	assert_string_equal(spec->value.registry_password, "s3cret-registry");
	assert_true(spec->value.avro_bytes_to_base64);
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.AVRO_OPTION.SCHEMA_REGISTRY_ADDR[1]"),
			 line_of(avro_yaml, "- http://r2"));
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	assert_int_equal(spec->value.format, JS_FORMAT_AVRO);
	assert_null(spec->value.delimiter);
	if (jobspec_validate(spec, &errs) != 0) {
		dump_errs(&errs);
		fail_msg("expected valid");
	}
	/* The registry password is a secret: listed, and masked when shown. */
	assert_int_equal(jobspec_secrets(spec, secrets, 8), 1);
	assert_string_equal(secrets[0], "s3cret-registry");
	yaml = jobspec_to_yaml(spec, true);
	assert_null(strstr(yaml, "s3cret-registry"));
	assert_non_null(strstr(yaml, "        SCHEMA_REGISTRY_PASSWORD: '****'\n"));
	free(yaml);
	jobspec_free(round_trip(spec));
	jobspec_free(spec);
}

static void test_avro_option_source_registry(void **state)
{
	struct js_defaults d = std_defaults;
	struct jobspec *spec = parse_ok("KAFKA:\n  INPUT:\n    KEY:\n      COLUMNS:\n        - NAME: k\n"
					"      FORMAT: avro\n    VALUE:\n      COLUMNS:\n        - NAME: id\n");
	struct jobspec *local;

	(void)state;
	d.format = JS_FORMAT_AVRO;
	d.delimiter = NULL;
	d.registry = "https://reg:8081";
	d.registry_user = "bob";
	d.registry_password = "pw";
	assert_int_equal(jobspec_apply_defaults(spec, &d), 0);
	assert_int_equal(spec->value.format, JS_FORMAT_AVRO);
	assert_string_equal(spec->value.registry_addr, "https://reg:8081");
	assert_string_equal(spec->value.registry_password, "pw");
	assert_string_equal(spec->key.registry_addr, "https://reg:8081");
	assert_string_equal(spec->key.registry_user, "bob");
	jobspec_free(spec);

	/* A job's own schema or registry is kept, credentials not mixed. */
	local = parse_ok("KAFKA:\n  INPUT:\n    VALUE:\n      COLUMNS:\n        - NAME: id\n      FORMAT: avro\n"
			 "      AVRO_OPTION:\n        SCHEMA_FILE: /srv/o.avsc\n    KEY:\n      COLUMNS:\n"
			 "        - NAME: k\n      FORMAT: json\n");
	assert_int_equal(jobspec_apply_defaults(local, &d), 0);
	assert_null(local->value.registry_addr);
	assert_null(local->key.registry_addr); /* a json KEY takes no registry */
	jobspec_free(local);
}

static void test_avro_option_validation(void **state)
{
	static const struct {
		const char *addr, *user, *password, *file, *schema;
		bool base64_on_json;
		const char *path, *text; /* NULL path: valid */
	} cases[] = {
		{ "https://r:8081", NULL, NULL, NULL, NULL, false, NULL, NULL },
		{ NULL, NULL, NULL, "/srv/o.avsc", NULL, false, NULL, NULL },
		{ "http://a:1, http://b:2", "u", "p", NULL, NULL, false, NULL, NULL },
		{ NULL, NULL, NULL, NULL, NULL, false, "KAFKA.INPUT.VALUE.AVRO_OPTION", "is required for FORMAT avro" },
		{ "https://r:8081", NULL, NULL, "/srv/o.avsc", NULL, false, "KAFKA.INPUT.VALUE.AVRO_OPTION",
		  "not several" },
		{ "ftp://r", NULL, NULL, NULL, NULL, false, "KAFKA.INPUT.VALUE.AVRO_OPTION.SCHEMA_REGISTRY_ADDR",
		  "URL 1 \"ftp://r\" must start with http:// or https://" },
		{ "https://ok:1,https://u:pw@r:8081", NULL, NULL, NULL, NULL, false,
		  "KAFKA.INPUT.VALUE.AVRO_OPTION.SCHEMA_REGISTRY_ADDR", "URL 2" },
		{ "https://", NULL, NULL, NULL, NULL, false, "KAFKA.INPUT.VALUE.AVRO_OPTION.SCHEMA_REGISTRY_ADDR",
		  "has no host" },
		{ "https://r:8081", "u", NULL, NULL, NULL, false,
		  "KAFKA.INPUT.VALUE.AVRO_OPTION.SCHEMA_REGISTRY_PASSWORD", "basic authentication takes both" },
		{ "https://r:8081", "a:b", "p", NULL, NULL, false, "KAFKA.INPUT.VALUE.AVRO_OPTION.SCHEMA_REGISTRY_USER",
		  "must not contain ':'" },
		{ NULL, NULL, NULL, "o.avsc", NULL, false, "KAFKA.INPUT.VALUE.AVRO_OPTION.SCHEMA_FILE",
		  "absolute path" },
		{ "https://r:8081", NULL, NULL, NULL, NULL, true, "KAFKA.INPUT.VALUE.AVRO_OPTION",
		  "applies to FORMAT avro only, but FORMAT is json" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jobspec *spec = minimal_valid();
		struct js_errors errs;

		spec->value.format = cases[i].base64_on_json ? JS_FORMAT_JSON : JS_FORMAT_AVRO;
		spec->value.avro_bytes_to_base64 = cases[i].base64_on_json;
		free(spec->value.delimiter);
		spec->value.delimiter = NULL;
		spec->value.registry_addr = cases[i].addr ? xstrdup(cases[i].addr) : NULL;
		spec->value.registry_user = cases[i].user ? xstrdup(cases[i].user) : NULL;
		spec->value.registry_password = cases[i].password ? xstrdup(cases[i].password) : NULL;
		spec->value.avro_schema_file = cases[i].file ? xstrdup(cases[i].file) : NULL;
		spec->value.avro_schema = cases[i].schema ? xstrdup(cases[i].schema) : NULL;
		memset(&errs, 0, sizeof(errs));
		if (cases[i].path == NULL) {
			if (jobspec_validate(spec, &errs) != 0) {
				dump_errs(&errs);
				fail_msg("case %zu: expected valid", i);
			}
		} else {
			validate_fail(spec, &errs);
			assert_err(&errs, cases[i].path, -1, cases[i].text);
		}
		jobspec_free(spec);
	}
}

static void test_json_option_registry(void **state)
{
	struct jobspec *spec = parse_ok("KAFKA:\n  INPUT:\n    VALUE:\n      COLUMNS:\n        - NAME: doc\n"
					"          TYPE: jsonb\n      FORMAT: json\n      JSON_OPTION:\n"
					"        SCHEMA_REGISTRY_ADDR: http://reg:8081\n");
	char *yaml;

	(void)state;
	assert_string_equal(spec->value.registry_addr, "http://reg:8081");
	yaml = jobspec_to_yaml(spec, false);
	assert_non_null(strstr(yaml, "      FORMAT: json\n      JSON_OPTION:\n        SCHEMA_REGISTRY_ADDR: "
				     "http://reg:8081\n"));
	free(yaml);
	jobspec_free(round_trip(spec));
	jobspec_free(spec);
}

/* ---- PROTOBUF_OPTION ---- */

static const char protobuf_yaml[] =
	"DATABASE: db\n"
	"USER: u\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    KEY:\n"
	"      COLUMNS:\n"
	"        - NAME: k\n"
	"      FORMAT: protobuf\n"
	"      PROTOBUF_OPTION:\n"
	"        DESCRIPTOR: |\n"
	"          CghzaG9wLnBy\n"
	"          b3Rv\n"
	"        MESSAGE: shop.v1.OrderKey\n"
	"    VALUE:\n"
	"      COLUMNS:\n"
	"        - NAME: id\n"
	"          TYPE: bigint\n"
	"        - NAME: items\n"
	"          TYPE: jsonb\n"
	"      FORMAT: protobuf\n"
	"      protobuf_option:\n"
	"        DESCRIPTOR_FILE: /etc/streamserver/shop.desc\n"
	"        message: shop.v1.Order\n"
	"  OUTPUT:\n"
	"    TABLE: orders\n";

static void test_protobuf_option_parse_round_trip(void **state)
{
	struct jobspec *spec = parse_ok(protobuf_yaml);
	struct js_errors errs;
	char *yaml;

	assert_int_equal(spec->key.format, JS_FORMAT_PROTOBUF);
	assert_string_equal(spec->key.protobuf_descriptor, "CghzaG9wLnBy\nb3Rv\n");
	assert_null(spec->key.protobuf_descriptor_file);
	assert_string_equal(spec->key.protobuf_message, "shop.v1.OrderKey");
	assert_int_equal(spec->value.format, JS_FORMAT_PROTOBUF);
	assert_string_equal(spec->value.protobuf_descriptor_file, "/etc/streamserver/shop.desc");
	assert_null(spec->value.protobuf_descriptor);
	assert_string_equal(spec->value.protobuf_message, "shop.v1.Order");
	assert_int_equal(jobspec_line(spec, "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE"), line_of(protobuf_yaml, "message:"));

	/* The data source's delimited format does not override protobuf. */
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	assert_int_equal(spec->value.format, JS_FORMAT_PROTOBUF);
	assert_null(spec->value.delimiter);
	if (jobspec_validate(spec, &errs) != 0) {
		dump_errs(&errs);
		fail_msg("expected valid");
	}

	yaml = jobspec_to_yaml(spec, false);
	assert_non_null(yaml);
	assert_non_null(strstr(yaml, "      FORMAT: protobuf\n      PROTOBUF_OPTION:\n"
				     "        DESCRIPTOR_FILE: /etc/streamserver/shop.desc\n"
				     "        MESSAGE: shop.v1.Order\n"));
	free(yaml);
	jobspec_free(round_trip(spec));
	jobspec_free(spec);
}

static void test_protobuf_option_parse_errors(void **state)
{
#define VAL "KAFKA:\n  INPUT:\n    VALUE:\n"
	static const struct bad_case cases[] = {
		{ VAL "      PROTOBUF_OPTION: shop.desc\n", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", 4, "must be a map" },
		{ VAL "      PROTOBUF_OPTION:\n        MESAGE: a.B\n", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESAGE", 5,
		  "did you mean MESSAGE?" },
		{ VAL "      PROTOBUF_OPTION:\n        DESCRIPTOR: [a]\n", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR",
		  5, "got a list" },
		{ VAL "      PROTOBUF_OPTION:\n        MESSAGE: ''\n", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", 5,
		  "must not be empty" },
		{ VAL "      FORMAT: csv\n      PROTOBUF_OPTION:\n        MESSAGE: a.B\n",
		  "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", 5, "applies to FORMAT protobuf, but FORMAT is csv; use CSV_OPTION" },
		{ VAL "      FORMAT: json\n      PROTOBUF_OPTION: {}\n", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", 5,
		  "remove it" },
		{ VAL "      FORMAT: protobuf\n      CSV_OPTION: {}\n", "KAFKA.INPUT.VALUE.CSV_OPTION", 5,
		  "but FORMAT is protobuf; use PROTOBUF_OPTION" },
		{ VAL "      DELIMITED_OPTION: {}\n      PROTOBUF_OPTION: {}\n", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", 5,
		  "not both DELIMITED_OPTION and PROTOBUF_OPTION" },
		{ VAL "      PROTOBUF_OPTION: {}\n      CSV_OPTION: {}\n", "KAFKA.INPUT.VALUE.CSV_OPTION", 5,
		  "not both PROTOBUF_OPTION and CSV_OPTION" },
		{ "MESSAGE: a.B\n", "MESSAGE", 1, "belongs under KAFKA.INPUT.VALUE.PROTOBUF_OPTION" },
	};
#undef VAL

	run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static struct jobspec *protobuf_valid(void)
{
	struct jobspec *spec = minimal_valid();

	spec->value.format = JS_FORMAT_PROTOBUF;
	free(spec->value.delimiter);
	spec->value.delimiter = NULL;
	spec->value.protobuf_descriptor_file = xstrdup("/srv/shop.desc");
	spec->value.protobuf_message = xstrdup("shop.v1.Order");
	return spec;
}

static void test_protobuf_option_validation(void **state)
{
	static const struct {
		const char *file, *descriptor, *message;
		const char *path, *text; /* NULL path: valid */
	} cases[] = {
		{ "/srv/shop.desc", NULL, "shop.v1.Order", NULL, NULL },
		{ NULL, "QUJD", "Order", NULL, NULL },
		{ NULL, "QQ==", "_x.y_2", NULL, NULL },
		{ NULL, "QQ", "a.b.C", NULL, NULL },		 /* padding optional */
		{ NULL, "-_-_", "a.B", NULL, NULL },		 /* URL-safe alphabet */
		{ NULL, " QU\nJD\n", "a.B", NULL, NULL },	 /* folded */
		{ NULL, NULL, NULL, "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", "is required for FORMAT protobuf" },
		{ NULL, NULL, "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", "needs DESCRIPTOR_FILE" },
		{ "/srv/a", "QUJD", "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR", "not both" },
		{ "shop.desc", NULL, "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR_FILE", "absolute path" },
		{ NULL, "not base64!", "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR", "is not base64" },
		{ NULL, "QQ=A", "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR", "is not base64" },
		{ NULL, "QUJDR", "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR", "is not base64" },
		{ NULL, "QQ===", "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR", "is not base64" },
		{ NULL, " \n", "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR", "is empty" },
		{ NULL, "==", "a.B", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.DESCRIPTOR", "is empty" },
		{ "/srv/a", NULL, NULL, "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", "is required" },
		{ "/srv/a", NULL, ".shop.Order", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", "without the leading dot" },
		{ "/srv/a", NULL, "shop..Order", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", "full message name" },
		{ "/srv/a", NULL, "shop.1Order", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", "full message name" },
		{ "/srv/a", NULL, "shop-v1.Order", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", "full message name" },
		{ "/srv/a", NULL, "Order.", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", "full message name" },
		{ "/srv/a", NULL, "shop Order", "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", "full message name" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jobspec *spec = protobuf_valid();
		struct js_errors errs;

		free(spec->value.protobuf_descriptor_file);
		free(spec->value.protobuf_message);
		spec->value.protobuf_descriptor_file = cases[i].file != NULL ? xstrdup(cases[i].file) : NULL;
		spec->value.protobuf_descriptor = cases[i].descriptor != NULL ? xstrdup(cases[i].descriptor) : NULL;
		spec->value.protobuf_message = cases[i].message != NULL ? xstrdup(cases[i].message) : NULL;
		current_case = cases[i].path != NULL ? cases[i].text : "valid";
		if (cases[i].path == NULL) {
			if (jobspec_validate(spec, &errs) != 0) {
				dump_errs(&errs);
				fail_msg("case %zu: expected valid", i);
			}
		} else {
			validate_fail(spec, &errs);
			if (errs.count != 1) {
				dump_errs(&errs);
				fail_msg("case %zu: %zu errors, expected 1", i, errs.count);
			}
			/* No line in the YAML: the line of KAFKA.INPUT.VALUE. */
			assert_err(&errs, cases[i].path, spec->value.line, cases[i].text);
		}
		jobspec_free(spec);
	}
	current_case = NULL;
}

static void test_protobuf_option_only_with_protobuf(void **state)
{
	struct jobspec *spec = protobuf_valid();
	struct js_errors errs;

	spec->value.format = JS_FORMAT_CSV;
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", spec->value.line,
		   "applies to FORMAT protobuf only, but FORMAT is csv");
	spec->value.format = JS_FORMAT_JSON;
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", -1, "but FORMAT is json; remove it");
	jobspec_free(spec);

	/* From YAML, the error has the line of the value at fault. */
	spec = parse_ok(protobuf_yaml);
	free(spec->value.protobuf_message);
	spec->value.protobuf_message = xstrdup("shop-v1");
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.INPUT.VALUE.PROTOBUF_OPTION.MESSAGE", line_of(protobuf_yaml, "message:"),
		   "full message name");
	jobspec_free(spec);
}

/* ---- FORMAT json ---- */

static void test_json_whole_mode(void **state)
{
	static const struct {
		const char *type;
		bool whole;
	} cases[] = {
		{ "json", true },     { "jsonb", true },  { "JSON", true },	  { " JsonB ", true }, { "\tjson\n", true },
		{ "json[]", false }, { "text", false }, { "jsonbb", false }, { "js on", false }, { "", false },
	};
	struct js_column one = { (char *)"doc", NULL }, two[2] = { { (char *)"a", (char *)"json" },
								   { (char *)"b", (char *)"json" } };
	struct js_input in;
	struct jobspec *spec;

	memset(&in, 0, sizeof(in));
	in.present = true;
	in.format = JS_FORMAT_JSON;
	in.columns = &one;
	in.ncolumns = 1;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		one.type = (char *)cases[i].type;
		current_case = cases[i].type;
		assert_int_equal(js_input_json_whole(&in), cases[i].whole);
	}
	current_case = NULL;
	one.type = NULL; /* the wizard's "the column's own type": fields by name */
	assert_false(js_input_json_whole(&in));
	one.type = (char *)"jsonb";
	in.format = JS_FORMAT_DELIMITED;
	assert_false(js_input_json_whole(&in));
	in.format = JS_FORMAT_JSON;
	in.columns = two;
	in.ncolumns = 2;
	assert_false(js_input_json_whole(&in));
	assert_false(js_input_json_whole(NULL));

	spec = parse_ok("KAFKA:\n  INPUT:\n    VALUE:\n      COLUMNS: [{NAME: doc, TYPE: JSONB}]\n      FORMAT: json\n");
	assert_true(js_input_json_whole(&spec->value));
	jobspec_free(spec);
}

static void test_validate_json_format(void **state)
{
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;

	/* Fields by name (no TYPE, or any types) and the whole value both validate. */
	spec->value.format = JS_FORMAT_JSON;
	free(spec->value.delimiter);
	spec->value.delimiter = NULL;
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	assert_false(js_input_json_whole(&spec->value));
	free(spec->value.columns[1].name);
	free(spec->value.columns[1].type);
	spec->value.ncolumns = 1;
	free(spec->value.columns[0].type);
	spec->value.columns[0].type = NULL;
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	assert_false(js_input_json_whole(&spec->value)); /* one column, TYPE absent: a field */
	spec->value.columns[0].type = xstrdup("jsonb");
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	assert_true(js_input_json_whole(&spec->value));

	/* No option block goes with json. */
	spec->value.delimiter = xstrdup("|");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.INPUT.VALUE.FORMAT", spec->value.line, "json takes no DELIMITED_OPTION or CSV_OPTION");
	free(spec->value.delimiter);
	spec->value.delimiter = NULL;
	spec->value.null_string = xstrdup("");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	free(spec->value.null_string);
	spec->value.null_string = NULL;
	spec->value.protobuf_message = xstrdup("a.B");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", -1, "FORMAT is json");
	jobspec_free(spec);

	/* A KEY without FORMAT is told so (no data source gives a KEY one). */
	spec = parse_ok("DATABASE: db\nUSER: u\nKAFKA:\n  INPUT:\n    KEY:\n      COLUMNS: [{NAME: k}]\n"
			"    VALUE:\n      COLUMNS: [{NAME: v}]\n  OUTPUT:\n    TABLE: t\n");
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.INPUT.KEY.FORMAT", 5, "set FORMAT: delimited, csv, json, protobuf or avro");
	assert_null(strstr(errs.items[0].message, "data source"));
	jobspec_free(spec);
}

/* ---- wizard write modes ---- */

static void test_wizard_update_and_merge_validate(void **state)
{
	static const char *const modes[] = { "UPDATE", "merge" };

	for (size_t i = 0; i < 2; i++) {
		char text[512];
		struct jobspec *spec, *back;
		struct js_errors errs;

		snprintf(text, sizeof(text),
			 "{\"database\": \"db\", \"table\": \"t\", \"account\": \"u\", \"write_mode\": \"%s\","
			 " \"fields\": [{\"source\": \"c1\", \"dest\": \"id\", \"role\": \"match\"},"
			 " {\"source\": \"c2\", \"dest\": \"qty\", \"role\": \"update\"},"
			 " {\"source\": \"c3\", \"role\": \"update\"}, {\"source\": \"c4\"}]}", modes[i]);
		spec = wizard_ok(text);
		assert_int_equal(spec->mode, i == 0 ? JS_MODE_UPDATE : JS_MODE_MERGE);
		assert_int_equal(spec->nmatch_columns, 1);
		assert_string_equal(spec->match_columns[0], "id"); /* the destination column */
		assert_int_equal(spec->nupdate_columns, 2);
		assert_string_equal(spec->update_columns[0], "qty");
		assert_string_equal(spec->update_columns[1], "c3");
		assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
		if (jobspec_validate(spec, &errs) != 0) {
			dump_errs(&errs);
			fail_msg("wizard %s job should validate", modes[i]);
		}
		/* Through the worker's YAML it stays valid and equal. */
		back = round_trip(spec);
		assert_int_equal(jobspec_validate(back, &errs), 0);
		jobspec_free(back);
		jobspec_free(spec);
	}
}

/* ---- PostgreSQL over TLS: SSLMODE, SSLROOTCERT, SSLCERT, SSLKEY ---- */

#define T_CA "-----BEGIN CERTIFICATE-----\nMIIBkzCCATmgAwIBAgIUBKexJRmiwwHq\nPoifO4YF0yHFIZ4w==\n-----END CERTIFICATE-----\n"
#define T_CERT "-----BEGIN CERTIFICATE-----\nMIIBdTCCARugAwIBAgIUclientCERT\n-----END CERTIFICATE-----\n"
#define T_KEY_BODY "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETkey"
#define T_KEY "-----BEGIN PRIVATE KEY-----\n" T_KEY_BODY "\n-----END PRIVATE KEY-----\n"

static const char tls_yaml[] =
	"DATABASE: db\n"
	"USER: loader\n"
	"HOST: db.example\n"
	"PORT: 5432\n"
	"SSLMODE: verify-full\n"
	"SSLROOTCERT: |\n"
	"  -----BEGIN CERTIFICATE-----\n"
	"  MIIBkzCCATmgAwIBAgIUBKexJRmiwwHq\n"
	"  PoifO4YF0yHFIZ4w==\n"
	"  -----END CERTIFICATE-----\n"
	"SSLCERT: \"-----BEGIN CERTIFICATE-----\\nMIIBdTCCARugAwIBAgIUclientCERT\\n-----END CERTIFICATE-----\\n\"\n"
	"SSLKEY: |\n"
	"  -----BEGIN PRIVATE KEY-----\n"
	"  " T_KEY_BODY "\n"
	"  -----END PRIVATE KEY-----\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    VALUE:\n"
	"      COLUMNS:\n"
	"        - NAME: id\n"
	"          TYPE: bigint\n"
	"  OUTPUT:\n"
	"    TABLE: orders\n";

/* The four keys next to HOST and PORT: parsed (a literal block or a quoted
 * string), valid, emitted as literal blocks, read back equal; masked, the key
 * is '****' and nothing of it is left. */
static void test_tls_keys_parse_emit_round_trip(void **state)
{
	struct jobspec *spec = parse_ok(tls_yaml), *back;
	struct js_errors errs;
	char *yaml, *masked;

	(void)state;
	assert_string_equal(spec->sslmode, "verify-full");
	assert_string_equal(spec->sslrootcert, T_CA);
	assert_string_equal(spec->sslcert, T_CERT);
	assert_string_equal(spec->sslkey, T_KEY);
	assert_int_equal(jobspec_line(spec, "SSLKEY"), line_of(tls_yaml, "SSLKEY:"));
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	if (jobspec_validate(spec, &errs) != 0) {
		dump_errs(&errs);
		fail_msg("a job with TLS settings should validate");
	}
	back = round_trip(spec);
	jobspec_free(back);

	yaml = jobspec_to_yaml(spec, false);
	assert_non_null(yaml);
	assert_non_null(strstr(yaml, "SSLMODE: verify-full\n"));
	assert_non_null(strstr(yaml, "SSLROOTCERT: |\n  -----BEGIN CERTIFICATE-----\n"));
	assert_non_null(strstr(yaml, T_KEY_BODY));
	assert_true(strstr(yaml, "PORT:") < strstr(yaml, "SSLMODE:"));
	free(yaml);

	masked = jobspec_to_yaml(spec, true);
	assert_non_null(masked);
	assert_null(strstr(masked, T_KEY_BODY));
	assert_null(strstr(masked, "PRIVATE KEY"));
	assert_non_null(strstr(masked, "SSLKEY: '****'\n"));
	assert_non_null(strstr(masked, "MIIBdTCCARugAwIBAgIUclientCERT")); /* certificates are not secret */
	back = parse_ok(masked);
	assert_string_equal(back->sslkey, "****");
	jobspec_free(back);
	free(masked);
	jobspec_free(spec);
}

/* Wrong values: each error names its key (with its line through
 * jobspec_line) and none quotes a key. */
static void test_tls_validation_errors(void **state)
{
	static const char bad[] =
		"DATABASE: db\n"
		"USER: loader\n"
		"SSLMODE: Verify-Full\n"
		"SSLROOTCERT: /etc/ssl/ca.pem\n"
		"SSLCERT: \"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"\n"
		"SSLKEY: \"-----BEGIN CERTIFICATE-----\\n" T_KEY_BODY "\\n-----END CERTIFICATE-----\\n\"\n"
		"KAFKA:\n"
		"  INPUT:\n"
		"    VALUE:\n"
		"      COLUMNS:\n"
		"        - NAME: id\n"
		"  OUTPUT:\n"
		"    TABLE: orders\n";
	struct jobspec *spec = parse_ok(bad);
	struct js_errors errs;

	(void)state;
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	validate_fail(spec, &errs);
	assert_err(&errs, "SSLMODE", -1, "must be one of disable, allow, prefer, require, verify-ca, verify-full");
	assert_err(&errs, "SSLROOTCERT", -1, "is not PEM text");
	assert_err(&errs, "SSLCERT", -1, "holds a private key");
	assert_err(&errs, "SSLKEY", -1, "must be a private key");
	for (size_t i = 0; i < errs.count; i++)
		assert_null(strstr(errs.items[i].message, T_KEY_BODY));
	assert_int_equal(jobspec_line(spec, "SSLMODE"), 3);
	assert_int_equal(jobspec_line(spec, "SSLKEY"), 6);
	jobspec_free(spec);

	/* verify-* needs a root CA; a certificate needs its key and back */
	spec = minimal_valid();
	spec->sslmode = strdup("verify-ca");
	spec->sslcert = strdup(T_CERT);
	validate_fail(spec, &errs);
	assert_err(&errs, "SSLROOTCERT", -1, "is required with SSLMODE verify-ca");
	assert_err(&errs, "SSLKEY", -1, "is required with SSLCERT");
	jobspec_free(spec);
	spec = minimal_valid();
	spec->sslkey = strdup(T_KEY);
	validate_fail(spec, &errs);
	assert_err(&errs, "SSLCERT", -1, "is required with SSLKEY");
	jobspec_free(spec);

	/* a list where text belongs: a parse error with its line */
	parse_fail("DATABASE: db\nUSER: u\nSSLMODE:\n  - require\n", &errs);
	assert_err(&errs, "SSLMODE", 3, "single value");
}

static void test_tls_pem_shapes(void **state)
{
	(void)state;
	assert_null(jobspec_pem_problem(T_CA, false));
	assert_null(jobspec_pem_problem(T_CA T_CERT, false)); /* a bundle */
	assert_null(jobspec_pem_problem("subject=CN = x\n" T_CA "trailing words\n", false));
	assert_null(jobspec_pem_problem(T_KEY, true));
	assert_null(jobspec_pem_problem("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----", true));
	assert_null(jobspec_pem_problem("-----BEGIN RSA PRIVATE KEY-----\r\nMIIE\r\n-----END RSA PRIVATE KEY-----\r\n", true));
	assert_non_null(jobspec_pem_problem("", false));
	assert_non_null(jobspec_pem_problem("/etc/ssl/certs/ca.pem", false));
	assert_non_null(jobspec_pem_problem(T_KEY T_KEY, true));
	assert_non_null(jobspec_pem_problem("-----BEGIN CERTIFICATE-----\nMIIB\n", false));
	assert_non_null(jobspec_pem_problem("-----BEGIN CERTIFICATE-----\nMIIB\n-----END PRIVATE KEY-----\n", false));
	assert_non_null(jobspec_pem_problem("-----BEGIN CERTIFICATE-----\nMI IB%\n-----END CERTIFICATE-----\n", false));
	assert_non_null(jobspec_pem_problem("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n", false));
	assert_non_null(strstr(jobspec_pem_problem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n"
						   "-----END ENCRYPTED PRIVATE KEY-----\n", true), "encrypted"));
	assert_non_null(strstr(jobspec_pem_problem("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
						   "DEK-Info: AES-128-CBC,AA\n\nMIIE\n-----END RSA PRIVATE KEY-----\n",
						   true), "encrypted"));
	assert_true(jobspec_sslmode_valid("prefer") && jobspec_sslmode_valid("verify-full"));
	assert_false(jobspec_sslmode_valid("PREFER") || jobspec_sslmode_valid("") || jobspec_sslmode_valid(NULL));
}

/* Wizard fields sslmode, sslrootcert, sslcert, sslkey: copied, "" counts as
 * absent, problems named by field without quoting the key. */
static void test_tls_wizard_fields(void **state)
{
	static const char base[] = "{\"database\": \"db\", \"table\": \"t\", \"account\": \"u\","
				   " \"fields\": [{\"source\": \"c1\"}]";
	char text[2048];
	struct jobspec *spec;
	struct js_errors errs;

	(void)state;
	snprintf(text, sizeof(text),
		 "%s, \"sslmode\": \"verify-full\", \"sslrootcert\": \"%s\", \"sslcert\": \"%s\","
		 " \"sslkey\": \"%s\"}",
		 base,
		 "-----BEGIN CERTIFICATE-----\\nMIIBkzCCATmgAwIBAgIUBKexJRmiwwHq\\nPoifO4YF0yHFIZ4w==\\n-----END CERTIFICATE-----\\n",
		 "-----BEGIN CERTIFICATE-----\\nMIIBdTCCARugAwIBAgIUclientCERT\\n-----END CERTIFICATE-----\\n",
		 "-----BEGIN PRIVATE KEY-----\\n" T_KEY_BODY "\\n-----END PRIVATE KEY-----\\n");
	spec = wizard_ok(text);
	assert_string_equal(spec->sslmode, "verify-full");
	assert_string_equal(spec->sslrootcert, T_CA);
	assert_string_equal(spec->sslcert, T_CERT);
	assert_string_equal(spec->sslkey, T_KEY);
	assert_int_equal(jobspec_apply_defaults(spec, &std_defaults), 0);
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	jobspec_free(round_trip(spec));
	jobspec_free(spec);

	snprintf(text, sizeof(text), "%s, \"sslmode\": \"\", \"sslkey\": \"\", \"sslrootcert\": null}", base);
	spec = wizard_ok(text);
	assert_null(spec->sslmode);
	assert_null(spec->sslkey);
	assert_null(spec->sslrootcert);
	jobspec_free(spec);

	snprintf(text, sizeof(text),
		 "%s, \"sslmode\": \"on\", \"sslcert\": \"cert.pem\", \"sslkey\": \"%s\"}", base, T_KEY_BODY);
	wizard_fail(text, &errs);
	assert_err(&errs, "sslmode", 0, "must be one of");
	assert_err(&errs, "sslcert", 0, "not PEM text");
	assert_err(&errs, "sslkey", 0, "not PEM text");
	for (size_t i = 0; i < errs.count; i++)
		assert_null(strstr(errs.items[i].message, T_KEY_BODY));
}

/* The service's settings fill what the job leaves out, each on its own. */
static void test_tls_service_defaults_and_job_override(void **state)
{
	struct js_defaults d = std_defaults;
	struct jobspec *spec = parse_ok(minimal_yaml);

	(void)state;
	d.sslmode = "verify-full";
	d.sslrootcert = T_CA;
	d.sslcert = T_CERT;
	d.sslkey = T_KEY;
	assert_int_equal(jobspec_apply_defaults(spec, &d), 0);
	assert_string_equal(spec->sslmode, "verify-full");
	assert_string_equal(spec->sslrootcert, T_CA);
	assert_string_equal(spec->sslcert, T_CERT);
	assert_string_equal(spec->sslkey, T_KEY);
	jobspec_free(spec);

	spec = parse_ok(tls_yaml);
	spec->sslmode[0] = '\0';
	free(spec->sslmode);
	spec->sslmode = strdup("require");
	free(spec->sslcert);
	spec->sslcert = NULL;
	d.sslcert = "-----BEGIN CERTIFICATE-----\nSERVICE\n-----END CERTIFICATE-----\n";
	assert_int_equal(jobspec_apply_defaults(spec, &d), 0);
	assert_string_equal(spec->sslmode, "require"); /* the job's */
	assert_string_equal(spec->sslrootcert, T_CA);
	assert_string_equal(spec->sslcert, d.sslcert); /* the service's */
	assert_string_equal(spec->sslkey, T_KEY);
	jobspec_free(spec);

	/* without either, libpq's default: nothing is set */
	spec = minimal_valid();
	assert_null(spec->sslmode);
	assert_null(spec->sslrootcert);
	jobspec_free(spec);
}

/* ---- the flattened example of the seed's "Professional mode" ---- */

/* Copied verbatim from the seed (hosts as there; replaced below). */
static const char seed_flat[] =
	"DATABASE: liss_test USER: liss_test PASSWORD: lissTest**** HOST: "
	"gp-2ze517f9l7****-master.gpdb.rds-aliyun-pre.rds.aliyuncs.com PORT: 5432 KAFKA: INPUT: SOURCE: "
	"BROKERS: alikafka-post-cn-wwo3hflbo002-1-vpc.alikafka.aliyuncs.com:9092,alikafka-post-cn-wwo3hfl"
	"bo002-2-vpc.alikafka.aliyuncs.com:9092,alikafka-post-cn-wwo3hflbo002-3-vpc.alikafka.aliyuncs.com"
	":9092 TOPIC: test_topic FALLBACK_OFFSET: EARLIEST VALUE: COLUMNS: - NAME: column_1 TYPE: "
	"varchar(32) - NAME: column_2 TYPE: bigint - NAME: column_3 TYPE: numeric - NAME: column_4 TYPE: "
	"varchar(32) - NAME: column_5 TYPE: varchar(32) FORMAT: delimited DELIMITED_OPTION: DELIMITER: "
	"\"|\" ERROR_LIMIT: 20 OUTPUT: SCHEMA: liss_test TABLE: liss_test_plaintext MODE: MERGE "
	"MATCH_COLUMNS: - column_1 - column_2 UPDATE_COLUMNS: - column_3 - column_4 - column_5 MAPPING: "
	"- NAME: column_1 EXPRESSION: column_1 - NAME: column_2 EXPRESSION: column_2 - NAME: column_3 "
	"EXPRESSION: column_3 - NAME: column_4 EXPRESSION: column_4 - NAME: column_5 EXPRESSION: "
	"column_5 COMMIT: MAX_ROW: 1000 MINIMAL_INTERVAL: 1000 CONSISTENCY: ATLEAST POLL: BATCHSIZE: "
	"1000 TIMEOUT: 1000 PROPERTIES: group.id: test_consumer_group";

/* text with every from replaced by to; the caller frees. */
static char *replace_all(const char *text, const char *from, const char *to)
{
	size_t n = 0, fl = strlen(from), tl = strlen(to), off = 0;
	char *out;

	for (const char *p = strstr(text, from); p != NULL; p = strstr(p + fl, from))
		n++;
	out = malloc(strlen(text) + n * (tl > fl ? tl - fl : 0) + 1);
	assert_non_null(out);
	for (const char *p = text;;) {
		const char *at = strstr(p, from);

		if (at == NULL) {
			strcpy(out + off, p);
			break;
		}
		memcpy(out + off, p, (size_t)(at - p));
		off += (size_t)(at - p);
		memcpy(out + off, to, tl);
		off += tl;
		p = at + fl;
	}
	return out;
}

static char *seed_flat_hosts_replaced(void)
{
	char *a = replace_all(seed_flat, "gp-2ze517f9l7****-master.gpdb.rds-aliyun-pre.rds.aliyuncs.com",
			      "adbpg.example.internal");
	char *b = replace_all(a, "alikafka-post-cn-wwo3hflbo002-", "kafka-");
	char *c = replace_all(b, "-vpc.alikafka.aliyuncs.com", ".example.internal");

	free(a);
	free(b);
	return c;
}

static void test_flattened_seed_example(void **state)
{
	static const char *const types[] = { "varchar(32)", "bigint", "numeric", "varchar(32)", "varchar(32)" };
	char *flat = seed_flat_hosts_replaced();
	char *multi = replace_all(seed_yaml, "lissTest1234", "lissTest****");
	struct jobspec *spec, *lines_spec;
	struct js_errors errs;

	assert_null(strchr(seed_flat, '\n')); /* one line, as the seed prints it */
	spec = parse_ok(flat);

	assert_string_equal(spec->database, "liss_test");
	assert_string_equal(spec->user, "liss_test");
	assert_string_equal(spec->password, "lissTest****");
	assert_string_equal(spec->host, "adbpg.example.internal");
	assert_int_equal(spec->port, 5432);
	assert_int_equal(spec->version, 2);
	assert_string_equal(spec->brokers,
			    "kafka-1.example.internal:9092,kafka-2.example.internal:9092,kafka-3.example.internal:9092");
	assert_string_equal(spec->topic, "test_topic");
	assert_int_equal(spec->npartitions, 0);
	assert_int_equal(spec->fallback_offset, JS_FALLBACK_EARLIEST);
	assert_false(spec->key.present);
	assert_true(spec->value.present);
	assert_int_equal(spec->value.line, 1);
	assert_int_equal(spec->value.ncolumns, 5);
	for (size_t i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "column_%zu", i + 1);
		assert_string_equal(spec->value.columns[i].name, name);
		assert_string_equal(spec->value.columns[i].type, types[i]);
	}
	assert_int_equal(spec->value.format, JS_FORMAT_DELIMITED);
	assert_string_equal(spec->value.delimiter, "|");
	assert_null(spec->value.quote);
	assert_null(spec->value.escape);
	assert_false(spec->meta_present);
	assert_int_equal(spec->error_limit, 20);
	assert_false(spec->error_limit_percent);
	assert_string_equal(spec->schema, "liss_test");
	assert_string_equal(spec->table, "liss_test_plaintext");
	assert_int_equal(spec->mode, JS_MODE_MERGE);
	assert_int_equal(spec->nmatch_columns, 2);
	assert_string_equal(spec->match_columns[0], "column_1");
	assert_string_equal(spec->match_columns[1], "column_2");
	assert_int_equal(spec->norder_columns, 0);
	assert_int_equal(spec->nupdate_columns, 3);
	assert_string_equal(spec->update_columns[0], "column_3");
	assert_string_equal(spec->update_columns[1], "column_4");
	assert_string_equal(spec->update_columns[2], "column_5");
	assert_int_equal(spec->nmapping, 5);
	for (size_t i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "column_%zu", i + 1);
		assert_string_equal(spec->mapping[i].name, name);
		assert_string_equal(spec->mapping[i].expression, name);
	}
	assert_null(spec->metadata_schema);
	assert_int_equal(spec->commit_max_row, 1000);
	assert_int_equal(spec->commit_minimal_interval_ms, 1000);
	assert_int_equal(spec->consistency, JS_CONSISTENCY_ATLEAST);
	assert_int_equal(spec->poll_batchsize, 1000);
	assert_int_equal(spec->poll_timeout_ms, 1000);
	assert_int_equal(spec->nproperties, 1);
	assert_string_equal(jobspec_property(spec, "group.id"), "test_consumer_group");
	assert_int_equal(spec->retry_interval_ms, 5000);
	assert_int_equal(spec->max_retries, 0);

	/* Every line is the user's line 1. */
	assert_true(spec->nlines > 40);
	for (size_t i = 0; i < spec->nlines; i++)
		assert_int_equal(spec->lines[i].line, 1);
	assert_int_equal(jobspec_line(spec, "KAFKA.OUTPUT.MATCH_COLUMNS[1]"), 1);

	/* The same job on several lines is the same spec; it validates (MERGE), and round-trips. */
	lines_spec = parse_ok(multi);
	assert_spec_equal(spec, lines_spec);
	assert_int_equal(jobspec_line(lines_spec, "KAFKA.OUTPUT.MATCH_COLUMNS[1]"), line_of(multi, "      - column_2"));
	if (jobspec_validate(spec, &errs) != 0) {
		dump_errs(&errs);
		fail_msg("the seed's flattened example should validate");
	}
	jobspec_free(round_trip(spec));

	/* With its hosts as printed it parses too (they are only names). */
	jobspec_free(lines_spec);
	lines_spec = parse_ok(seed_flat);
	assert_string_equal(lines_spec->host, "gp-2ze517f9l7****-master.gpdb.rds-aliyun-pre.rds.aliyuncs.com");
	jobspec_free(lines_spec);
	jobspec_free(spec);
	free(flat);
	free(multi);
}

static void test_reflow_forms(void **state)
{
	struct jobspec *spec;

	/* Lower-case keys, flow values, quoted values with spaces, MAPPING's
	 * target: expression form with a column named like a key in lower case,
	 * PROPERTIES (quoted names too), PARTITIONS as a list. */
	spec = parse_ok("  database: db password: \"p w: #1\" KAFKA: INPUT: SOURCE: PARTITIONS: - 0 - 2 TOPIC: t "
			"VALUE: COLUMNS: [{NAME: a, TYPE: int}, {NAME: b}] FORMAT: csv CSV_OPTION: DELIMITER: ';' "
			"QUOTE: \"'\" NULL_STRING: 'it''s null' OUTPUT: TABLE: t MODE: merge MATCH_COLUMNS: - user "
			"MAPPING: id: a total: b * 2 user: upper(b) PROPERTIES: group.id: g \"x y\": \"a b\" "
			"client.id: c d SCHEDULE: RETRY_INTERVAL: 1m30s \n");
	assert_string_equal(spec->database, "db");
	assert_string_equal(spec->password, "p w: #1");
	assert_int_equal(spec->npartitions, 2);
	assert_int_equal(spec->partitions[1], 2);
	assert_string_equal(spec->topic, "t");
	assert_int_equal(spec->value.ncolumns, 2);
	assert_string_equal(spec->value.columns[0].type, "int");
	assert_null(spec->value.columns[1].type);
	assert_string_equal(spec->value.delimiter, ";");
	assert_string_equal(spec->value.quote, "'");
	assert_string_equal(spec->value.null_string, "it's null");
	assert_int_equal(spec->mode, JS_MODE_MERGE);
	assert_int_equal(spec->nmatch_columns, 1);
	assert_string_equal(spec->match_columns[0], "user");
	assert_int_equal(spec->nmapping, 3);
	assert_string_equal(spec->mapping[1].name, "total");
	assert_string_equal(spec->mapping[1].expression, "b * 2");
	assert_string_equal(spec->mapping[2].name, "user");
	assert_string_equal(spec->mapping[2].expression, "upper(b)");
	assert_int_equal(spec->nproperties, 3);
	assert_string_equal(jobspec_property(spec, "x y"), "a b");
	assert_string_equal(jobspec_property(spec, "client.id"), "c d");
	assert_int_equal(spec->retry_interval_ms, 90000);
	jobspec_free(spec);

	/* MAPPING's list form with " - " inside an EXPRESSION and a KEY block. */
	spec = parse_ok("DATABASE: db KAFKA: INPUT: KEY: COLUMNS: - NAME: k FORMAT: json VALUE: COLUMNS: - NAME: a "
			"- NAME: b FORMAT: json META: COLUMNS: - NAME: m TYPE: json FORMAT: json OUTPUT: MAPPING: "
			"- NAME: a EXPRESSION: a - b - NAME: k EXPRESSION: k ORDER_COLUMNS: - a");
	assert_true(spec->key.present);
	assert_string_equal(spec->key.columns[0].name, "k");
	assert_int_equal(spec->key.format, JS_FORMAT_JSON);
	assert_int_equal(spec->value.ncolumns, 2);
	assert_true(spec->meta_present);
	assert_string_equal(spec->meta_column, "m");
	assert_int_equal(spec->nmapping, 2);
	assert_string_equal(spec->mapping[0].expression, "a - b");
	assert_string_equal(spec->mapping[1].name, "k");
	assert_int_equal(spec->norder_columns, 1);
	jobspec_free(spec);

	/* A single line that is YAML as a map is read as it is. */
	spec = parse_ok("DATABASE: db # USER: u");
	assert_string_equal(spec->database, "db");
	assert_null(spec->user);
	jobspec_free(spec);
	spec = parse_ok("{DATABASE: db, USER: u}");
	assert_string_equal(spec->user, "u");
	jobspec_free(spec);
}

static void test_reflow_errors(void **state)
{
	struct js_errors errs;
	struct jobspec *spec;

	/* Problems in a re-flowed job: every one at line 1, all at once. */
	parse_fail("DATABASE: db PORT: abc KAFKA: INPUTS: {} COMMIT: MAXROW: 3 FOO: 1 OUTPUT: "
		   "MATCH_COLUMNS: - a - a", &errs);
	assert_int_equal(errs.count, 5);
	assert_err(&errs, "PORT", 1, "must be an integer");
	assert_err(&errs, "KAFKA.COMMIT.MAXROW", 1, "did you mean MAX_ROW?");
	assert_err(&errs, "KAFKA.COMMIT.FOO", 1, "unknown key");
	assert_err(&errs, "KAFKA.INPUTS", 1, "did you mean INPUT?");
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS[1]", 1, "listed twice");

	/* A value that YAML cannot take even on its own line. */
	parse_fail("DATABASE: db KAFKA: OUTPUT: MAPPING: - NAME: a EXPRESSION: b: c", &errs);
	assert_int_equal(errs.count, 1);
	assert_int_equal(errs.items[0].line, 1);
	assert_non_null(strstr(errs.items[0].message, "one-line job"));
	assert_non_null(strstr(errs.items[0].message, "near \"EXPRESSION: b: c\""));
	assert_non_null(strstr(errs.items[0].message, "quote values"));

	/* Not a job, or broken quoting: the YAML's own error, unchanged. */
	parse_fail("just text", &errs);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.items[0].message, "must be a map"));
	parse_fail("DATABASE: \"unterminated USER: u", &errs);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.items[0].message, "YAML syntax error at line 1, column"));
	parse_fail("USERS: a b: c", &errs);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.items[0].message, "YAML syntax error at line 1"));

	/* Validation of a re-flowed job points at line 1 too. */
	spec = parse_ok("DATABASE: db USER: u HOST: h PORT: 1 KAFKA: INPUT: SOURCE: BROKERS: b TOPIC: t VALUE: "
			"COLUMNS: - NAME: a FORMAT: csv OUTPUT: TABLE: t MODE: MERGE UPDATE_COLUMNS: - a");
	validate_fail(spec, &errs);
	assert_int_equal(errs.count, 1);
	assert_err(&errs, "KAFKA.OUTPUT.MATCH_COLUMNS", 1, "is required for MODE MERGE");
	jobspec_free(spec);
}

/* ---- tasks ---- */

/* TASKS is read, survives jobspec_to_yaml, and is written only when not 1,
 * so that a job of one task reads exactly as before. */
static void test_tasks_yaml_round_trip(void **state)
{
	char *text = malloc(sizeof(minimal_yaml) + 16);
	struct jobspec *spec, *back;
	char *yaml;

	assert_non_null(text);
	snprintf(text, sizeof(minimal_yaml) + 16, "TASKS: 4\n%s", minimal_yaml);
	spec = parse_ok(text);
	assert_int_equal(spec->tasks, 4);
	yaml = jobspec_to_yaml(spec, false);
	assert_non_null(strstr(yaml, "\nTASKS: 4\n"));
	back = parse_ok(yaml);
	assert_int_equal(back->tasks, 4);
	free(yaml);
	jobspec_free(back);
	jobspec_free(spec);

	spec = parse_ok(minimal_yaml);
	assert_int_equal(spec->tasks, 1);
	yaml = jobspec_to_yaml(spec, false);
	assert_null(strstr(yaml, "TASKS"));
	free(yaml);
	jobspec_free(spec);

	snprintf(text, sizeof(minimal_yaml) + 16, "tasks: 1\n%s", minimal_yaml);
	spec = parse_ok(text);
	assert_int_equal(spec->tasks, 1);
	yaml = jobspec_to_yaml(spec, false);
	assert_null(strstr(yaml, "TASKS"));
	free(yaml);
	jobspec_free(spec);
	free(text);
}

/* A one-line job (the reflow) knows TASKS as a top-level key. */
static void test_tasks_one_line(void **state)
{
	struct jobspec *spec = parse_ok("DATABASE: db TASKS: 3 USER: u");

	assert_int_equal(spec->tasks, 3);
	assert_string_equal(spec->user, "u");
	jobspec_free(spec);
}

static void test_tasks_wizard(void **state)
{
	struct jobspec *spec = wizard_ok("{\"database\": \"d\", \"table\": \"t\", \"account\": \"a\","
					 " \"tasks\": 3, \"fields\": [{\"source\": \"c1\"}]}");
	struct js_errors errs;
	static const char *const bad[] = { "0", "65", "2.5", "\"3\"", "true" };

	assert_int_equal(spec->tasks, 3);
	jobspec_free(spec);
	spec = wizard_ok("{\"database\": \"d\", \"table\": \"t\", \"account\": \"a\","
			 " \"tasks\": null, \"fields\": [{\"source\": \"c1\"}]}");
	assert_int_equal(spec->tasks, 1);
	jobspec_free(spec);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];

		snprintf(text, sizeof(text), "{\"database\": \"d\", \"table\": \"t\", \"account\": \"a\","
			 " \"tasks\": %s, \"fields\": [{\"source\": \"c1\"}]}", bad[i]);
		current_case = text;
		wizard_fail(text, &errs);
		assert_err(&errs, "tasks", 0, "must be an integer between 1 and 64");
	}
	current_case = NULL;
}

/* A spec built in code (not parsed) is checked too: TASKS in range, every
 * partition listed once, since two tasks must never own one partition. */
static void test_tasks_validate(void **state)
{
	struct jobspec *spec = minimal_valid();
	struct js_errors errs;

	spec->tasks = 64;
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	spec->tasks = 65;
	validate_fail(spec, &errs);
	assert_err(&errs, "TASKS", -1, "must be between 1 and 64");
	spec->tasks = 0;
	validate_fail(spec, &errs);
	assert_err(&errs, "TASKS", -1, "got 0; leave it out for 1");
	spec->tasks = 2;
	spec->partitions = calloc(4, sizeof(int32_t));
	assert_non_null(spec->partitions);
	spec->partitions[0] = 5;
	spec->partitions[1] = 1;
	spec->partitions[2] = 7;
	spec->partitions[3] = 1;
	spec->npartitions = 4;
	validate_fail(spec, &errs);
	assert_err(&errs, "KAFKA.INPUT.SOURCE.PARTITIONS", -1, "partition 1 is listed twice; list it once");
	spec->partitions[3] = 3;
	assert_int_equal(jobspec_validate(spec, &errs), 0);
	jobspec_free(spec);
}

static void test_tasks_duplicate_partition_yaml(void **state)
{
	struct js_errors errs;

	parse_fail("KAFKA:\n  INPUT:\n    SOURCE:\n      PARTITIONS: (0,3,3)\n", &errs);
	assert_err(&errs, "KAFKA.INPUT.SOURCE.PARTITIONS", 4, "partition 3 is listed twice; list it once");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_example_every_field),
		cmocka_unit_test(test_seed_example_validates),
		cmocka_unit_test(test_every_key_right_value),
		cmocka_unit_test(test_enum_spellings),
		cmocka_unit_test(test_version_forms),
		cmocka_unit_test(test_defaults_of_new_spec),
		cmocka_unit_test(test_null_values_are_absent),
		cmocka_unit_test(test_mapping_list_form),
		cmocka_unit_test(test_mapping_map_form),
		cmocka_unit_test(test_mapping_errors),
		cmocka_unit_test(test_bad_top_level),
		cmocka_unit_test(test_tasks_yaml_round_trip),
		cmocka_unit_test(test_tasks_one_line),
		cmocka_unit_test(test_tasks_wizard),
		cmocka_unit_test(test_tasks_validate),
		cmocka_unit_test(test_tasks_duplicate_partition_yaml),
		cmocka_unit_test(test_tls_keys_parse_emit_round_trip),
		cmocka_unit_test(test_tls_validation_errors),
		cmocka_unit_test(test_tls_pem_shapes),
		cmocka_unit_test(test_tls_wizard_fields),
		cmocka_unit_test(test_tls_service_defaults_and_job_override),
		cmocka_unit_test(test_bad_kafka_level),
		cmocka_unit_test(test_bad_source),
		cmocka_unit_test(test_bad_value),
		cmocka_unit_test(test_bad_meta_and_error_limit),
		cmocka_unit_test(test_bad_output),
		cmocka_unit_test(test_bad_commit_poll_properties_schedule),
		cmocka_unit_test(test_properties_scalars_become_text),
		cmocka_unit_test(test_case_insensitive_keys),
		cmocka_unit_test(test_multiple_errors_at_once),
		cmocka_unit_test(test_error_cap_truncates),
		cmocka_unit_test(test_errors_format_forms),
		cmocka_unit_test(test_syntax_error_has_line),
		cmocka_unit_test(test_tab_indentation_hint),
		cmocka_unit_test(test_deep_nesting_and_anchors_refused),
		cmocka_unit_test(test_invalid_utf8_is_an_error),
		cmocka_unit_test(test_empty_document),
		cmocka_unit_test(test_second_document_refused),
		cmocka_unit_test(test_input_size_cap),
		cmocka_unit_test(test_input_not_nul_terminated),
		cmocka_unit_test(test_embedded_nul_refused),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_partitions_forms),
		cmocka_unit_test(test_partitions_errors),
		cmocka_unit_test(test_error_limit_forms),
		cmocka_unit_test(test_apply_defaults_fills_absent),
		cmocka_unit_test(test_apply_defaults_keeps_job_values),
		cmocka_unit_test(test_validate_minimal_ok),
		cmocka_unit_test(test_validate_required_all_at_once),
		cmocka_unit_test(test_validate_value_needs_format_and_columns),
		cmocka_unit_test(test_validate_unique_names),
		cmocka_unit_test(test_validate_match_columns_for_update),
		cmocka_unit_test(test_validate_insert_ignores_match_and_update_columns),
		cmocka_unit_test(test_validate_property_blacklist),
		cmocka_unit_test(test_validate_delimiters),
		cmocka_unit_test(test_validate_job_delimiter_meets_csv_source),
		cmocka_unit_test(test_validate_ranges),
		cmocka_unit_test(test_validate_not_supported_yet),
		cmocka_unit_test(test_round_trip_seed),
		cmocka_unit_test(test_round_trip_all_keys),
		cmocka_unit_test(test_round_trip_tricky_text),
		cmocka_unit_test(test_round_trip_formatless_value_and_defaults),
		cmocka_unit_test(test_to_yaml_layout),
		cmocka_unit_test(test_password_masking),
		cmocka_unit_test(test_wizard_happy_path),
		cmocka_unit_test(test_wizard_defaults_and_validate),
		cmocka_unit_test(test_wizard_errors),
		cmocka_unit_test(test_wizard_required_and_not_object),
		cmocka_unit_test(test_wizard_many_errors_at_once),
		cmocka_unit_test(test_wizard_blank_optional_fields),
		cmocka_unit_test(test_wizard_null_optional_fields),
		cmocka_unit_test(test_line_map),
		cmocka_unit_test(test_validate_cross_keys_all_at_once),
		cmocka_unit_test(test_validate_target_columns_without_mapping),
		cmocka_unit_test(test_validate_many_target_names_cut),
		cmocka_unit_test(test_validate_meta_types),
		cmocka_unit_test(test_avro_option_parse_round_trip),
		cmocka_unit_test(test_avro_option_source_registry),
		cmocka_unit_test(test_avro_option_validation),
		cmocka_unit_test(test_json_option_registry),
		cmocka_unit_test(test_protobuf_option_parse_round_trip),
		cmocka_unit_test(test_protobuf_option_parse_errors),
		cmocka_unit_test(test_protobuf_option_validation),
		cmocka_unit_test(test_protobuf_option_only_with_protobuf),
		cmocka_unit_test(test_json_whole_mode),
		cmocka_unit_test(test_validate_json_format),
		cmocka_unit_test(test_wizard_update_and_merge_validate),
		cmocka_unit_test(test_flattened_seed_example),
		cmocka_unit_test(test_reflow_forms),
		cmocka_unit_test(test_reflow_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
