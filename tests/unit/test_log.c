/* Log lines as a user reads them: text with time, level, tag and job, or
 * one JSON object per line that a log shipper can parse. */
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

#include <cjson/cJSON.h>

#include "log.h"

static char line[16384];

/* The line as JSON; asserts it is one object with ts, level, component, msg. */
static cJSON *json_line(void)
{
	cJSON *obj = cJSON_Parse(line);
	const cJSON *ts;

	assert_non_null(obj);
	assert_true(cJSON_IsObject(obj));
	ts = cJSON_GetObjectItemCaseSensitive(obj, "ts");
	assert_true(cJSON_IsString(ts));
	/* 2026-11-24T07:30:00.123Z */
	assert_int_equal(strlen(ts->valuestring), 24);
	assert_int_equal(ts->valuestring[10], 'T');
	assert_int_equal(ts->valuestring[23], 'Z');
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "level")));
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "component")));
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "msg")));
	assert_null(strchr(line, '\n'));
	return obj;
}

static const char *field(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

/* Runs first: main() set STREAMSERVER_LOG_FORMAT=json, as the controller
 * does for its workers, and nothing has set the format yet. */
static void test_env_selects_json(void **state)
{
	cJSON *obj;

	log_format_line(line, sizeof(line), LOG_INFO, 0, "starting");
	obj = json_line();
	assert_string_equal(field(obj, "level"), "INFO");
	assert_string_equal(field(obj, "component"), "worker");
	assert_string_equal(field(obj, "msg"), "starting");
	assert_null(cJSON_GetObjectItemCaseSensitive(obj, "job_id"));
	cJSON_Delete(obj);
}

static void test_text_line(void **state)
{
	log_set_format(LOG_TEXT);
	log_set_tag("controller");
	log_format_line(line, sizeof(line), LOG_WARN, 0, "disk almost full");
	/* 2026-11-24T07:30:00.123Z WARN [controller] disk almost full */
	assert_true(strlen(line) > 25);
	assert_int_equal(line[10], 'T');
	assert_int_equal(line[23], 'Z');
	assert_string_equal(line + 24, " WARN [controller] disk almost full");
}

static void test_text_job_line(void **state)
{
	log_set_format(LOG_TEXT);
	log_set_tag("controller");
	log_format_line(line, sizeof(line), LOG_INFO, 7, "worker 123 started");
	assert_string_equal(line + 24, " INFO [controller] job=7 worker 123 started");
}

/* A message with line breaks stays one line. */
static void test_text_one_line(void **state)
{
	log_set_format(LOG_TEXT);
	log_set_tag("controller");
	log_format_line(line, sizeof(line), LOG_ERROR, 0, "first\nsecond\r\n\x01third");
	assert_string_equal(line + 24, " ERROR [controller] first second  ?third");
}

static void test_json_job_line(void **state)
{
	cJSON *obj;
	const cJSON *id;

	log_set_format(LOG_JSON);
	log_set_component("controller");
	log_format_line(line, sizeof(line), LOG_ERROR, 42, "job orders: failed: \"boom\"\\");
	obj = json_line();
	assert_string_equal(field(obj, "level"), "ERROR");
	assert_string_equal(field(obj, "component"), "controller");
	assert_string_equal(field(obj, "msg"), "job orders: failed: \"boom\"\\");
	id = cJSON_GetObjectItemCaseSensitive(obj, "job_id");
	assert_true(cJSON_IsNumber(id));
	assert_int_equal(id->valueint, 42);
	cJSON_Delete(obj);
}

/* Control characters and bytes that are not UTF-8 (a Kafka message quoted
 * in an error) still give a line that parses. */
static void test_json_escapes(void **state)
{
	cJSON *obj;

	log_set_format(LOG_JSON);
	log_format_line(line, sizeof(line), LOG_WARN, 0, "a\tb\nc\x01 \xff\xfe caf\xc3\xa9 \xe2\x82");
	obj = json_line();
	assert_string_equal(field(obj, "msg"), "a\tb\nc\x01 \xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 "
					      "\xef\xbf\xbd\xef\xbf\xbd");
	cJSON_Delete(obj);
}

/* A line cut at the buffer's end is still a JSON object. */
static void test_json_truncated(void **state)
{
	char msg[3000];
	char small[300];
	cJSON *obj;

	memset(msg, '"', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	log_set_format(LOG_JSON);
	log_format_line(small, sizeof(small), LOG_INFO, 5, msg);
	assert_true(strlen(small) < sizeof(small));
	obj = cJSON_Parse(small);
	assert_non_null(obj);
	assert_true(strlen(field(obj, "msg")) > 50);
	cJSON_Delete(obj);
}

/* A worker works for one job: every line names it. */
static void test_process_job(void **state)
{
	cJSON *obj;

	log_set_component("worker");
	log_set_job(9);
	log_set_format(LOG_TEXT);
	log_format_line(line, sizeof(line), LOG_INFO, 0, "batch of 100 rows");
	assert_string_equal(line + 24, " INFO [job 9] batch of 100 rows");
	log_set_format(LOG_JSON);
	log_format_line(line, sizeof(line), LOG_INFO, 0, "batch of 100 rows");
	obj = json_line();
	assert_string_equal(field(obj, "component"), "worker");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(obj, "job_id")->valueint, 9);
	cJSON_Delete(obj);
	log_set_job(0);
}

static void test_format_parse(void **state)
{
	enum log_format f = LOG_TEXT;

	assert_true(log_format_parse("json", &f));
	assert_int_equal(f, LOG_JSON);
	assert_true(log_format_parse("text", &f));
	assert_int_equal(f, LOG_TEXT);
	assert_false(log_format_parse("JSON ", &f));
	assert_false(log_format_parse("", &f));
	assert_false(log_format_parse(NULL, &f));
}

/* log_msg writes the line and a newline to standard error. */
static void test_writes_stderr(void **state)
{
	char path[] = "/tmp/test_log_XXXXXX";
	char buf[512];
	int fd = mkstemp(path), saved = dup(2);
	FILE *f;
	size_t n;

	assert_true(fd >= 0 && saved >= 0);
	log_set_format(LOG_TEXT);
	log_set_tag("controller");
	fflush(stderr);
	assert_true(dup2(fd, 2) >= 0);
	log_job(LOG_INFO, 3, "stopping worker %d", 77);
	log_debug("not shown at level INFO");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	assert_non_null(f);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	assert_string_equal(buf + 24, " INFO [controller] job=3 stopping worker 77\n");
}

/* JOURNAL_STREAM names the stream fd 2 is: "DEVICE:INODE" of that very
 * file, nothing else. */
static void test_journal_stream_match(void **state)
{
	char path[] = "/tmp/test_log_XXXXXX";
	char value[64];
	int fd = mkstemp(path);
	struct stat st;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	assert_true(log_journal_stream_is(value, fd));
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	assert_false(log_journal_stream_is(value, fd));
	snprintf(value, sizeof(value), "%llu:%llu ", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	assert_false(log_journal_stream_is(value, fd));
	assert_false(log_journal_stream_is("", fd));
	assert_false(log_journal_stream_is(":", fd));
	assert_false(log_journal_stream_is("-1:-1", fd));
	assert_false(log_journal_stream_is(NULL, fd));
	close(fd);
	unlink(path);
}

/* With the journal: each line starts with its syslog priority, in both
 * formats; the rest of the line is unchanged. */
static void test_journal_priorities(void **state)
{
	static const struct {
		enum log_level level;
		const char *prefix;
	} cases[] = { { LOG_ERROR, "<3>" }, { LOG_WARN, "<4>" }, { LOG_INFO, "<6>" },
		      { LOG_DEBUG, "<7>" } };
	cJSON *obj;

	log_set_journal(true);
	log_set_format(LOG_TEXT);
	log_set_tag("controller");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		log_format_line(line, sizeof(line), cases[i].level, 0, "x");
		assert_memory_equal(line, cases[i].prefix, 3);
		assert_int_equal(line[3 + 4], '-'); /* the date follows: 2026-... */
	}
	log_format_line(line, sizeof(line), LOG_ERROR, 4, "cannot connect");
	assert_string_equal(line + 3 + 24, " ERROR [controller] job=4 cannot connect");
	log_set_format(LOG_JSON);
	log_format_line(line, sizeof(line), LOG_WARN, 0, "slow");
	assert_memory_equal(line, "<4>{", 4);
	memmove(line, line + 3, strlen(line + 3) + 1);
	obj = json_line();
	assert_string_equal(field(obj, "level"), "WARN");
	cJSON_Delete(obj);
	log_set_journal(false);
	log_set_format(LOG_TEXT);
	log_format_line(line, sizeof(line), LOG_ERROR, 0, "x");
	assert_int_equal(line[0], '2');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_selects_json), cmocka_unit_test(test_text_line),
		cmocka_unit_test(test_text_job_line),	 cmocka_unit_test(test_text_one_line),
		cmocka_unit_test(test_json_job_line),	 cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_truncated),	 cmocka_unit_test(test_process_job),
		cmocka_unit_test(test_format_parse),	 cmocka_unit_test(test_writes_stderr),
		cmocka_unit_test(test_journal_stream_match), cmocka_unit_test(test_journal_priorities),
	};

	setenv("STREAMSERVER_LOG_FORMAT", "json", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
