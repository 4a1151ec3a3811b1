/* Unit tests of FORMAT json (worker/decode_json.c): whole mode and fields
 * mode, escapes, numbers, nesting, errors with their byte offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"
#include "decode_json.h"

#define S(lit) (lit), (sizeof(lit) - 1)
#define NCOLS_MAX 8

struct jt_input {
	struct js_input in;
	struct js_column cols[NCOLS_MAX];
	char names[NCOLS_MAX][64];
};

/* columns: "a,b:jsonb,c" */
static void jt_input_init(struct jt_input *ji, const char *columns)
{
	const char *p = columns;
	size_t n = 0;

	memset(ji, 0, sizeof(*ji));
	ji->in.present = true;
	ji->in.format = JS_FORMAT_JSON;
	while (*p != '\0' && n < NCOLS_MAX) {
		size_t len = strcspn(p, ",");
		char *colon;

		snprintf(ji->names[n], sizeof(ji->names[n]), "%.*s", (int)len, p);
		colon = strchr(ji->names[n], ':');
		ji->cols[n].name = ji->names[n];
		if (colon != NULL) {
			*colon = '\0';
			ji->cols[n].type = colon + 1;
		}
		n++;
		p += len;
		if (*p == ',')
			p++;
	}
	ji->in.columns = ji->cols;
	ji->in.ncolumns = n;
}

static struct decoder *jt_decoder(const char *columns)
{
	struct jt_input ji;
	char err[512] = "";
	struct decoder *dec;

	jt_input_init(&ji, columns);
	dec = decoder_new(&ji.in, err, sizeof(err));
	if (dec == NULL)
		fail_msg("decoder_new(%s): %s", columns, err);
	return dec;
}

/* Decodes a copy of buf in a buffer of exactly len bytes (no NUL after it,
 * so reading past the end shows under ASan/valgrind) and compares columns;
 * want[i] NULL means SQL NULL. */
static void jt_expect(struct decoder *dec, const char *buf, size_t len, const char *const *want, size_t n)
{
	char *copy = malloc(len ? len : 1);
	struct decode_row row;
	char err[512] = "";
	size_t i;

	memcpy(copy, buf, len);
	if (decoder_decode(dec, copy, len, &row, err, sizeof(err)) != 0)
		fail_msg("decoding \"%.*s\" failed: %s", (int)len, buf, err);
	assert_int_equal(row.nfields, n);
	for (i = 0; i < n; i++) {
		const struct decode_field *f = &row.fields[i];

		if (want[i] == NULL) {
			if (!f->is_null)
				fail_msg("column %zu: want NULL, got \"%.*s\"", i, (int)f->len, f->ptr);
			continue;
		}
		if (f->is_null)
			fail_msg("column %zu: want \"%s\", got NULL", i, want[i]);
		if (f->len != strlen(want[i]) || memcmp(f->ptr, want[i], f->len) != 0)
			fail_msg("column %zu: want \"%s\", got \"%.*s\"", i, want[i], (int)f->len, f->ptr);
	}
	free(copy);
}

static const char *jt_err(struct decoder *dec, const char *buf, size_t len)
{
	static char err[512];
	char *copy = malloc(len ? len : 1);
	struct decode_row row;
	int rc;

	memcpy(copy, buf, len);
	err[0] = '\0';
	rc = decoder_decode(dec, copy, len, &row, err, sizeof(err));
	free(copy);
	if (rc == 0)
		fail_msg("decoding \"%.*s\" succeeded, an error was expected", (int)len, buf);
	return err;
}

static void jt_contains(const char *s, const char *part)
{
	if (strstr(s, part) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

static void test_json_whole_valid(void **state)
{
	struct decoder *dec = jt_decoder("doc:jsonb");
	static const char *const docs[] = {
		"{\"a\": [1, 2.5e3, \"x\"], \"b\": null, \"c\": {}}\n",
		"  42 ",
		"\"just a string \\u00e9\"",
		"true",
		"null",
		"[]",
		"-0.5E-7",
		"{\"big\": 123456789012345678901234567890}",
	};
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		const char *want[] = { docs[i] };
		jt_expect(dec, docs[i], strlen(docs[i]), want, 1); /* unchanged, whitespace included */
	}
	decoder_free(dec);
}

static void test_json_whole_invalid(void **state)
{
	struct decoder *dec = jt_decoder("doc:json");

	jt_contains(jt_err(dec, S("")), "empty");
	jt_contains(jt_err(dec, S("   ")), "empty");
	jt_contains(jt_err(dec, S("{")), "ends early at byte 1");
	jt_contains(jt_err(dec, S("[1,]")), "unexpected character ']' at byte 3");
	jt_contains(jt_err(dec, S("{\"a\" 1}")), "expected ':'");
	jt_contains(jt_err(dec, S("{a: 1}")), "member name");
	jt_contains(jt_err(dec, S("01")), "trailing data at byte 1");
	jt_contains(jt_err(dec, S("1.")), "decimal point");
	jt_contains(jt_err(dec, S("1e")), "exponent");
	jt_contains(jt_err(dec, S("-")), "digit must follow '-'");
	jt_contains(jt_err(dec, S("+1")), "unexpected character '+' at byte 0");
	jt_contains(jt_err(dec, S("tru")), "at byte 0");
	jt_contains(jt_err(dec, S("nan")), "at byte 0");
	jt_contains(jt_err(dec, S("'a'")), "unexpected character");
	jt_contains(jt_err(dec, S("{} {}")), "trailing data at byte 3");
	jt_contains(jt_err(dec, S("\"a\tb\"")), "control character 0x09 at byte 2");
	jt_contains(jt_err(dec, S("\"\\x\"")), "invalid escape \\x at byte 1");
	jt_contains(jt_err(dec, S("\"\\u12G4\"")), "invalid \\u escape at byte 1");
	jt_contains(jt_err(dec, S("\"\\ud800\"")), "unpaired surrogate \\ud800 at byte 1");
	jt_contains(jt_err(dec, S("\xef\xbb\xbf{}")), "at byte 0"); /* a byte order mark */
	jt_contains(jt_err(dec, S("[1, 2")), "ends early at byte 5");
	decoder_free(dec);
}

static void test_json_fields_strings(void **state)
{
	struct decoder *dec = jt_decoder("a,b,c");
	const char *want[] = { "x\"y\\z/\b\f\n\r\t", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "plain" };

	jt_expect(dec, S("{\"a\":\"x\\\"y\\\\z\\/\\b\\f\\n\\r\\t\", \"b\": \"\\u00e9\\u20AC\\ud83d\\ude00\", \"c\":\"plain\"}"),
		  want, 3);
	decoder_free(dec);
}

static void test_json_fields_surrogate_errors(void **state)
{
	struct decoder *dec = jt_decoder("a");

	jt_contains(jt_err(dec, S("{\"a\": \"\\ud800\"}")), "unpaired surrogate \\ud800 at byte 7");
	jt_contains(jt_err(dec, S("{\"a\": \"\\ud800\\u0041\"}")), "not a low surrogate");
	jt_contains(jt_err(dec, S("{\"a\": \"\\udc00x\"}")), "a low surrogate without a high one");
	/* members no column takes are validated too */
	jt_contains(jt_err(dec, S("{\"other\": \"\\udfff\", \"a\": 1}")), "unpaired surrogate");
	/* \u0000 cannot become PostgreSQL text */
	jt_contains(jt_err(dec, S("{\"a\": \"x\\u0000\"}")), "\\u0000 at byte 8");
	decoder_free(dec);
}

static void test_json_fields_numbers(void **state)
{
	struct decoder *dec = jt_decoder("big,f,z,neg");
	const char *want[] = { "123456789012345678901234567890", "-1.5e-300", "0", "-9223372036854775809" };

	jt_expect(dec, S("{\"big\": 123456789012345678901234567890, \"f\": -1.5e-300, \"z\": 0, "
			 "\"neg\": -9223372036854775809}"),
		  want, 4);
	decoder_free(dec);
}

static void test_json_fields_bools_null_absent(void **state)
{
	struct decoder *dec = jt_decoder("t,f,n,missing");
	const char *want[] = { "true", "false", NULL, NULL };
	const char *want_empty[] = { NULL, NULL, NULL, NULL };

	jt_expect(dec, S("{\"t\": true, \"f\": false, \"n\": null}"), want, 4);
	/* nothing of the previous message leaks into the next */
	jt_expect(dec, S("{}"), want_empty, 4);
	jt_expect(dec, S(" { } \n"), want_empty, 4);
	decoder_free(dec);
}

static void test_json_fields_many_columns(void **state)
{
	struct decoder *dec = jt_decoder("c1,c2,c3,c4,c5,c6,c7,c8");
	const char *want[] = { "1", NULL, "3", NULL, NULL, NULL, NULL, "8" };

	/* members no column takes, around those that are taken */
	jt_expect(dec, S("{\"x\": 0, \"c1\": 1, \"c9\": 9, \"c3\": 3, \"\": [], \"c8\": 8, \"C2\": 2}"), want, 8);
	decoder_free(dec);
}

static void test_json_fields_nested_raw(void **state)
{
	struct decoder *dec = jt_decoder("o,arr,s");
	const char *want[] = { "{\"x\": [1, {\"y\": \"\\u00e9\"}]}", "[ ]", "t" };

	jt_expect(dec, S("{\"o\": {\"x\": [1, {\"y\": \"\\u00e9\"}]}, \"arr\": [ ], \"s\": \"t\"}"), want, 3);
	decoder_free(dec);
}

static void test_json_fields_duplicates(void **state)
{
	struct decoder *dec = jt_decoder("a,b");
	const char *want1[] = { "two", "x" };
	const char *want2[] = { NULL, "y" };

	jt_expect(dec, S("{\"a\": 1, \"b\": \"x\", \"a\": \"two\"}"), want1, 2);
	jt_expect(dec, S("{\"a\": \"x\\n\", \"a\": null, \"b\": \"y\"}"), want2, 2);
	decoder_free(dec);
}

static void test_json_fields_escaped_name(void **state)
{
	struct decoder *dec = jt_decoder("a\xc3\xa9,b");
	const char *want[] = { "5", "6" };

	/* "a\u00e9" is the column's name once unescaped */
	jt_expect(dec, S("{\"a\\u00e9\": 5, \"\\u0062\": 6}"), want, 2);
	decoder_free(dec);
}

static void test_json_fields_json_column(void **state)
{
	struct decoder *dec = jt_decoder("p:jsonb,q:JSON,r:text,n:jsonb");
	const char *want[] = { "\"str\\n\"", "{\"a\": 1}", "str", NULL };

	/* a json/jsonb column takes the member's JSON text, a string with its quotes */
	jt_expect(dec, S("{\"p\": \"str\\n\", \"q\": {\"a\": 1}, \"r\": \"str\", \"n\": null}"), want, 4);
	decoder_free(dec);
}

static void test_json_fields_not_object(void **state)
{
	struct decoder *dec = jt_decoder("a,b");

	jt_contains(jt_err(dec, S("[1, 2]")), "an array, not a JSON object");
	jt_contains(jt_err(dec, S("\"s\"")), "a string, not a JSON object");
	jt_contains(jt_err(dec, S(" 42")), "a number, not a JSON object");
	jt_contains(jt_err(dec, S("null")), "not a JSON object");
	jt_contains(jt_err(dec, S("")), "empty");
	decoder_free(dec);
}

static void test_json_fields_truncated(void **state)
{
	struct decoder *dec = jt_decoder("a");

	jt_contains(jt_err(dec, S("{\"a\": \"abc")), "ends inside the string that starts at byte 6");
	jt_contains(jt_err(dec, S("{\"a\": 1")), "ends early at byte 7");
	jt_contains(jt_err(dec, S("{\"a\"")), "ends early at byte 4");
	jt_contains(jt_err(dec, S("{\"a\": {\"b\": [1")), "ends early at byte 14");
	jt_contains(jt_err(dec, S("{\"a\": \"x\\")), "inside the escape at byte 8");
	jt_contains(jt_err(dec, S("{\"a\": \"\\u12")), "inside the \\u escape at byte 7");
	decoder_free(dec);
}

static void test_json_fields_invalid_utf8(void **state)
{
	struct decoder *dec = jt_decoder("a");

	jt_contains(jt_err(dec, S("{\"a\": \"\xc3\x28\"}")), "invalid UTF-8 at byte 7");
	jt_contains(jt_err(dec, S("{\"a\": \"\xed\xa0\x80\"}")), "invalid UTF-8 at byte 7"); /* encoded surrogate */
	jt_contains(jt_err(dec, S("{\"a\": \"x\x00\"}")), "NUL byte at byte 8");
	decoder_free(dec);
}

static void test_json_fields_trailing(void **state)
{
	struct decoder *dec = jt_decoder("a");

	jt_contains(jt_err(dec, S("{\"a\":1} x")), "trailing data at byte 8");
	jt_contains(jt_err(dec, S("{\"a\":1}{}")), "trailing data at byte 7");
	jt_contains(jt_err(dec, S("{\"a\":1,}")), "member name");
	jt_contains(jt_err(dec, S("{\"a\":1 \"b\":2}")), "expected ',' or '}'");
	decoder_free(dec);
}

/* prefix, n arrays inside each other ([[[...]]]), suffix; NUL-terminated. */
static char *jt_nested(size_t n, const char *prefix, const char *suffix, size_t *len)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *buf = malloc(pl + 2 * n + sl + 1);

	memcpy(buf, prefix, pl);
	memset(buf + pl, '[', n);
	memset(buf + pl + n, ']', n);
	memcpy(buf + pl + 2 * n, suffix, sl + 1);
	*len = pl + 2 * n + sl;
	return buf;
}

static void test_json_depth_cap(void **state)
{
	struct decoder *whole = jt_decoder("doc:jsonb");
	struct decoder *fields = jt_decoder("a");
	size_t len, ilen;
	char *buf, *inner;

	/* whole mode: 64 levels pass, 65 do not */
	buf = jt_nested(JSON_DEPTH_MAX, "", "", &len);
	jt_expect(whole, buf, len, (const char *const[]){ buf }, 1);
	free(buf);
	buf = jt_nested(JSON_DEPTH_MAX + 1, "", "", &len);
	jt_contains(jt_err(whole, buf, len), "nested deeper than 64 levels at byte 64");
	free(buf);

	/* fields mode: the object is level 1, so a member holds 63 */
	buf = jt_nested(JSON_DEPTH_MAX - 1, "{\"a\": ", "}", &len);
	inner = jt_nested(JSON_DEPTH_MAX - 1, "", "", &ilen);
	jt_expect(fields, buf, len, (const char *const[]){ inner }, 1);
	free(buf);
	free(inner);
	buf = jt_nested(JSON_DEPTH_MAX, "{\"a\": ", "}", &len);
	jt_contains(jt_err(fields, buf, len), "nested deeper than 64 levels at byte 69");
	free(buf);
	/* members no column takes too */
	buf = jt_nested(JSON_DEPTH_MAX, "{\"x\": ", "}", &len);
	jt_contains(jt_err(fields, buf, len), "nested deeper than 64 levels");
	free(buf);
	decoder_free(whole);
	decoder_free(fields);
}

static void test_json_size_cap(void **state)
{
	struct decoder *whole = jt_decoder("doc:jsonb");
	struct decoder *fields = jt_decoder("a");
	static const char one[1] = { '1' };
	struct decode_row row;
	char err[256] = "";

	/* the length is checked before a byte is read */
	assert_int_equal(decoder_decode(whole, one, DECODE_MESSAGE_MAX + 1, &row, err, sizeof(err)), -1);
	jt_contains(err, "limit");
	err[0] = '\0';
	assert_int_equal(decoder_decode(fields, one, DECODE_MESSAGE_MAX + 1, &row, err, sizeof(err)), -1);
	jt_contains(err, "limit");
	decoder_free(whole);
	decoder_free(fields);
}

static void test_json_options(void **state)
{
	struct jt_input ji;
	char err[256] = "";

	jt_input_init(&ji, "a,b,a");
	assert_null(decoder_new(&ji.in, err, sizeof(err)));
	jt_contains(err, "COLUMNS[2] \"a\" is given twice");
	jt_input_init(&ji, "");
	assert_null(decoder_new(&ji.in, err, sizeof(err)));
	jt_contains(err, "COLUMNS is empty");
	/* two json columns: fields mode, not whole */
	{
		struct decoder *dec = jt_decoder("a:jsonb,b:jsonb");
		const char *want[] = { "[1]", "\"x\"" };
		jt_expect(dec, S("{\"b\":\"x\",\"a\":[1]}"), want, 2);
		decoder_free(dec);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_whole_valid),
		cmocka_unit_test(test_json_whole_invalid),
		cmocka_unit_test(test_json_fields_strings),
		cmocka_unit_test(test_json_fields_surrogate_errors),
		cmocka_unit_test(test_json_fields_numbers),
		cmocka_unit_test(test_json_fields_bools_null_absent),
		cmocka_unit_test(test_json_fields_many_columns),
		cmocka_unit_test(test_json_fields_nested_raw),
		cmocka_unit_test(test_json_fields_duplicates),
		cmocka_unit_test(test_json_fields_escaped_name),
		cmocka_unit_test(test_json_fields_json_column),
		cmocka_unit_test(test_json_fields_not_object),
		cmocka_unit_test(test_json_fields_truncated),
		cmocka_unit_test(test_json_fields_invalid_utf8),
		cmocka_unit_test(test_json_fields_trailing),
		cmocka_unit_test(test_json_depth_cap),
		cmocka_unit_test(test_json_size_cap),
		cmocka_unit_test(test_json_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
