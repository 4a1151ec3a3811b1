/* Unit tests of worker/decode.c: delimited and CSV decoding, UTF-8 and NUL
 * checks, and the COPY text encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"

static struct js_column test_columns[8] = {
	{ "c1", NULL }, { "c2", NULL }, { "c3", NULL }, { "c4", NULL },
	{ "c5", NULL }, { "c6", NULL }, { "c7", NULL }, { "c8", NULL },
};

/* A decoder as the job's VALUE section would configure it. */
static struct decoder *test_decoder(enum js_format format, const char *delim, const char *quote,
				    const char *escape, const char *null_string, size_t ncolumns)
{
	struct js_input in;
	char err[256] = "";
	struct decoder *dec;

	memset(&in, 0, sizeof(in));
	in.present = true;
	in.format = format;
	in.columns = test_columns;
	in.ncolumns = ncolumns;
	in.delimiter = (char *)delim;
	in.quote = (char *)quote;
	in.escape = (char *)escape;
	in.null_string = (char *)null_string;
	dec = decoder_new(&in, err, sizeof(err));
	if (dec == NULL)
		fail_msg("decoder_new: %s", err);
	return dec;
}

static const char *test_new_error(enum js_format format, const char *delim, const char *quote, const char *escape)
{
	static char err[256];
	struct js_input in;
	struct decoder *dec;

	memset(&in, 0, sizeof(in));
	in.format = format;
	in.columns = test_columns;
	in.ncolumns = 2;
	in.delimiter = (char *)delim;
	in.quote = (char *)quote;
	in.escape = (char *)escape;
	err[0] = '\0';
	dec = decoder_new(&in, err, sizeof(err));
	if (dec != NULL) {
		decoder_free(dec);
		return NULL;
	}
	return err;
}

/* Decodes buf (len bytes, explicit: no NUL terminator is relied on). */
static void test_decode_ok(struct decoder *dec, const char *buf, size_t len, struct decode_row *row)
{
	char err[256] = "";

	if (decoder_decode(dec, buf, len, row, err, sizeof(err)) != 0)
		fail_msg("decoding \"%.*s\" failed: %s", (int)len, buf, err);
}

static const char *test_decode_err(struct decoder *dec, const char *buf, size_t len)
{
	static char err[256];
	struct decode_row row;

	err[0] = '\0';
	if (decoder_decode(dec, buf, len, &row, err, sizeof(err)) == 0)
		fail_msg("decoding \"%.*s\" should have failed", (int)len, buf);
	assert_true(err[0] != '\0');
	return err;
}

static void assert_field(const struct decode_row *row, size_t i, const char *want)
{
	assert_true(i < row->nfields);
	if (row->fields[i].is_null)
		fail_msg("field %zu is NULL, want \"%s\"", i + 1, want);
	if (row->fields[i].len != strlen(want) || memcmp(row->fields[i].ptr, want, strlen(want)) != 0)
		fail_msg("field %zu is \"%.*s\", want \"%s\"", i + 1, (int)row->fields[i].len, row->fields[i].ptr,
			 want);
}

static void assert_field_null(const struct decode_row *row, size_t i)
{
	assert_true(i < row->nfields);
	if (!row->fields[i].is_null)
		fail_msg("field %zu is \"%.*s\", want NULL", i + 1, (int)row->fields[i].len, row->fields[i].ptr);
}

#define S(lit) lit, (sizeof(lit) - 1)

static void test_delimited_single_char(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, "|", NULL, NULL, NULL, 3);
	struct decode_row row;

	test_decode_ok(dec, S("abc|12|x y"), &row);
	assert_int_equal(row.nfields, 3);
	assert_field(&row, 0, "abc");
	assert_field(&row, 1, "12");
	assert_field(&row, 2, "x y");
	/* without a quote character a '"' is data */
	test_decode_ok(dec, S("\"a|b\"|c"), &row);
	assert_field(&row, 0, "\"a");
	assert_field(&row, 1, "b\"");
	decoder_free(dec);
}

static void test_delimited_multi_char(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, "<|>", NULL, NULL, NULL, 3);
	struct decode_row row;

	test_decode_ok(dec, S("a|b<|>c<d<|>e>"), &row);
	assert_field(&row, 0, "a|b");
	assert_field(&row, 1, "c<d");
	assert_field(&row, 2, "e>");
	/* a delimiter cut short at the end is data */
	test_decode_ok(dec, S("1<|>2<|>3<|"), &row);
	assert_field(&row, 2, "3<|");
	decoder_free(dec);
}

static void test_delimited_quote(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, "||", "'", NULL, NULL, 3);
	struct decode_row row;

	test_decode_ok(dec, S("'a||b'||'it''s'||c'd"), &row);
	assert_field(&row, 0, "a||b");
	assert_field(&row, 1, "it's");
	assert_field(&row, 2, "c'd"); /* a quote inside an unquoted field is data */
	test_decode_ok(dec, S("''||x||"), &row);
	assert_field(&row, 0, "");
	assert_field_null(&row, 2);
	assert_non_null(strstr(test_decode_err(dec, S("'abc||d||e")), "never closed"));
	assert_non_null(strstr(test_decode_err(dec, S("'ab'c||d||e")), "after the closing quote"));
	decoder_free(dec);
}

static void test_delimited_escape(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, "|", "\"", "\\", NULL, 3);
	struct decode_row row;

	test_decode_ok(dec, S("a\\|b|c\\\\d|\\\"e"), &row);
	assert_field(&row, 0, "a|b");
	assert_field(&row, 1, "c\\d");
	assert_field(&row, 2, "\"e");
	test_decode_ok(dec, S("\"x\\\"y\"|\"p|q\"|z"), &row);
	assert_field(&row, 0, "x\"y");
	assert_field(&row, 1, "p|q");
	assert_non_null(strstr(test_decode_err(dec, S("a|b|c\\")), "escape"));
	decoder_free(dec);
}

static void test_delimited_empty_is_null(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, ",", NULL, NULL, NULL, 4);
	struct decode_row row;

	test_decode_ok(dec, S(",b,,"), &row);
	assert_int_equal(row.nfields, 4);
	assert_field_null(&row, 0);
	assert_field(&row, 1, "b");
	assert_field_null(&row, 2);
	assert_field_null(&row, 3);
	decoder_free(dec);

	dec = test_decoder(JS_FORMAT_DELIMITED, ",", NULL, NULL, NULL, 1);
	test_decode_ok(dec, "", 0, &row);
	assert_int_equal(row.nfields, 1);
	assert_field_null(&row, 0);
	decoder_free(dec);
}

static void test_trailing_newline(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, "|", NULL, NULL, NULL, 2);
	struct decode_row row;

	test_decode_ok(dec, S("a|b\n"), &row);
	assert_field(&row, 1, "b");
	test_decode_ok(dec, S("a|b\r\n"), &row);
	assert_field(&row, 1, "b");
	/* only one line end is dropped, and only at the very end */
	test_decode_ok(dec, S("a\n|b\n\n"), &row);
	assert_field(&row, 0, "a\n");
	assert_field(&row, 1, "b\n");
	decoder_free(dec);
}

static void test_no_nul_terminator(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 3);
	struct decode_row row;
	char *buf = malloc(5);

	/* exactly 5 bytes on the heap: ASan would catch a read past the end */
	memcpy(buf, "a,b,c", 5);
	test_decode_ok(dec, buf, 5, &row);
	assert_field(&row, 2, "c");
	test_decode_ok(dec, "1,2,3XYZ", 5, &row);
	assert_field(&row, 2, "3");
	free(buf);
	decoder_free(dec);
}

static void test_wrong_field_count(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, "|", NULL, NULL, NULL, 5);
	struct decoder *csv = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 2);

	assert_string_equal(test_decode_err(dec, S("a|b|c|d")), "expected 5 fields, got 4");
	assert_string_equal(test_decode_err(dec, S("a|b|c|d|e|f|g")), "expected 5 fields, got 7");
	/* a quoted delimiter does not count */
	assert_string_equal(test_decode_err(csv, S("\"a,b\"")), "expected 2 fields, got 1");
	decoder_free(dec);
	decoder_free(csv);
}

static void test_csv_quoted_delimiter(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 3);
	struct decode_row row;

	test_decode_ok(dec, S("\"a,b\",c,\"d\""), &row);
	assert_field(&row, 0, "a,b");
	assert_field(&row, 1, "c");
	assert_field(&row, 2, "d");
	decoder_free(dec);

	dec = test_decoder(JS_FORMAT_CSV, ";", "'", NULL, NULL, 2);
	test_decode_ok(dec, S("'x;y';z"), &row);
	assert_field(&row, 0, "x;y");
	assert_field(&row, 1, "z");
	decoder_free(dec);
}

static void test_csv_embedded_newline(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 2);
	struct decode_row row;

	test_decode_ok(dec, S("\"line1\nline2\r\n\",x\n"), &row);
	assert_field(&row, 0, "line1\nline2\r\n");
	assert_field(&row, 1, "x");
	decoder_free(dec);
}

static void test_csv_doubled_quote(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 2);
	struct decode_row row;

	test_decode_ok(dec, S("\"say \"\"hi\"\"\",\"\"\"\""), &row);
	assert_field(&row, 0, "say \"hi\"");
	assert_field(&row, 1, "\"");
	/* a quote inside an unquoted field is data */
	test_decode_ok(dec, S("a\"b,c"), &row);
	assert_field(&row, 0, "a\"b");
	decoder_free(dec);
}

static void test_csv_escape(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, "\\", NULL, 2);
	struct decode_row row;

	test_decode_ok(dec, S("\"a\\\"b\\\\\",c\\d"), &row);
	assert_field(&row, 0, "a\"b\\");
	assert_field(&row, 1, "c\\d"); /* outside quotes ESCAPE is data, as in COPY CSV */
	decoder_free(dec);
}

static void test_csv_null_string(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, "NULL", 4);
	struct decode_row row;

	test_decode_ok(dec, S("NULL,\"NULL\",NULLx,"), &row);
	assert_field_null(&row, 0);
	assert_field(&row, 1, "NULL"); /* quoted: a string */
	assert_field(&row, 2, "NULLx");
	assert_field_null(&row, 3); /* unquoted empty */
	decoder_free(dec);
}

static void test_csv_quoted_empty(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 3);
	struct decode_row row;

	test_decode_ok(dec, S("\"\",,\"\""), &row);
	assert_field(&row, 0, "");
	assert_false(row.fields[0].is_null);
	assert_field_null(&row, 1);
	assert_field(&row, 2, "");
	decoder_free(dec);
}

static void test_csv_unterminated_quote(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 2);

	assert_non_null(strstr(test_decode_err(dec, S("a,\"bc")), "field 2: quote opened at byte 2 is never closed"));
	assert_non_null(strstr(test_decode_err(dec, S("\"a\"\",b")), "never closed"));
	assert_non_null(strstr(test_decode_err(dec, S("\"a\"x,b")), "after the closing quote"));
	decoder_free(dec);
}

static void test_invalid_utf8(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 2);
	struct decode_row row;
	bool is_nul;

	test_decode_ok(dec, S("\xc3\xa9t\xc3\xa9,\xe2\x82\xac\xf0\x9f\x98\x80"), &row);
	assert_field(&row, 0, "\xc3\xa9t\xc3\xa9");
	assert_field(&row, 1, "\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_string_equal(test_decode_err(dec, S("ab,c\xff")), "invalid UTF-8 at byte 4 of the message (byte value 0xff)");
	assert_non_null(strstr(test_decode_err(dec, S("a,\xc0\xaf")), "at byte 2"));         /* overlong */
	assert_non_null(strstr(test_decode_err(dec, S("a,\xe0\x80\xaf")), "at byte 2"));     /* overlong */
	assert_non_null(strstr(test_decode_err(dec, S("a,\xf0\x80\x80\xaf")), "at byte 2")); /* overlong */
	assert_non_null(strstr(test_decode_err(dec, S("a,\xed\xa0\x80")), "at byte 2"));     /* surrogate */
	assert_non_null(strstr(test_decode_err(dec, S("a,\xf4\x90\x80\x80")), "at byte 2")); /* > U+10FFFF */
	assert_non_null(strstr(test_decode_err(dec, S("a,b\xe2\x82")), "at byte 3"));        /* truncated */
	assert_int_equal(decode_utf8_check(S("ok\xe2\x82\xac"), &is_nul), 5);
	assert_int_equal(decode_utf8_check(S("o\x80k"), &is_nul), 1);
	assert_false(is_nul);
	decoder_free(dec);
}

static void test_nul_byte(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, "|", NULL, NULL, NULL, 2);
	const char *err = test_decode_err(dec, S("ab\0c|d"));
	bool is_nul;

	assert_non_null(strstr(err, "NUL byte at byte 2"));
	assert_int_equal(decode_utf8_check(S("ab\0c"), &is_nul), 2);
	assert_true(is_nul);
	decoder_free(dec);
}

static void test_decoder_options(void **state)
{
	assert_non_null(strstr(test_new_error(JS_FORMAT_DELIMITED, NULL, NULL, NULL), "DELIMITER is required"));
	assert_non_null(strstr(test_new_error(JS_FORMAT_DELIMITED, "", NULL, NULL), "DELIMITER is required"));
	assert_non_null(strstr(test_new_error(JS_FORMAT_CSV, ";;", NULL, NULL), "single character"));
	assert_non_null(strstr(test_new_error(JS_FORMAT_DELIMITED, "|", "''", NULL), "QUOTE must be a single"));
	assert_non_null(strstr(test_new_error(JS_FORMAT_DELIMITED, "|", "|", NULL), "must not appear"));
	assert_non_null(strstr(test_new_error(JS_FORMAT_JSON, NULL, NULL, NULL), "not supported"));
	assert_null(test_new_error(JS_FORMAT_CSV, NULL, NULL, NULL));
}

static void test_copy_escaping(void **state)
{
	static const char want[] = "a\\tb\\nc\\\\d\\re\t\\N\t\tplain\n";
	struct decode_field f[4] = {
		{ "a\tb\nc\\d\re", 9, false },
		{ NULL, 0, true },
		{ "", 0, false },
		{ "plain", 5, false },
	};
	struct decode_row row = { f, 4 };
	struct copybuf cb;
	char err[256];

	copybuf_init(&cb, 1024);
	assert_int_equal(copybuf_append_row(&cb, &row, err, sizeof(err)), 0);
	assert_int_equal(cb.len, sizeof(want) - 1);
	assert_memory_equal(cb.data, want, sizeof(want) - 1);
	/* rows follow each other; reset keeps nothing */
	assert_int_equal(copybuf_append_row(&cb, &row, err, sizeof(err)), 0);
	assert_int_equal(cb.len, 2 * (sizeof(want) - 1));
	copybuf_reset(&cb);
	assert_int_equal(cb.len, 0);
	copybuf_free(&cb);
	copybuf_free(&cb); /* twice is fine */
}

static void test_copy_from_decoder(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_CSV, NULL, NULL, NULL, NULL, 3);
	struct decode_row row;
	struct copybuf cb;
	char err[256];

	copybuf_init(&cb, 1 << 20);
	test_decode_ok(dec, S("\"a\tb\",,\"x\\y\n\""), &row);
	assert_int_equal(copybuf_append_row(&cb, &row, err, sizeof(err)), 0);
	assert_int_equal(cb.len, strlen("a\\tb\t\\N\tx\\\\y\\n\n"));
	assert_memory_equal(cb.data, "a\\tb\t\\N\tx\\\\y\\n\n", cb.len);
	copybuf_free(&cb);
	decoder_free(dec);
}

static void test_copy_cap(void **state)
{
	struct decode_field f[1] = { { "0123456789", 10, false } };
	struct decode_row row = { f, 1 };
	struct copybuf cb;
	char err[256] = "";

	copybuf_init(&cb, 25);
	assert_int_equal(copybuf_append_row(&cb, &row, err, sizeof(err)), 0);
	assert_int_equal(copybuf_append_row(&cb, &row, err, sizeof(err)), 0);
	assert_int_equal(cb.len, 22);
	assert_int_equal(copybuf_append_row(&cb, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not fit"));
	assert_int_equal(cb.len, 22); /* unchanged */
	assert_memory_equal(cb.data, "0123456789\n0123456789\n", 22);
	copybuf_free(&cb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delimited_single_char),
		cmocka_unit_test(test_delimited_multi_char),
		cmocka_unit_test(test_delimited_quote),
		cmocka_unit_test(test_delimited_escape),
		cmocka_unit_test(test_delimited_empty_is_null),
		cmocka_unit_test(test_trailing_newline),
		cmocka_unit_test(test_no_nul_terminator),
		cmocka_unit_test(test_wrong_field_count),
		cmocka_unit_test(test_csv_quoted_delimiter),
		cmocka_unit_test(test_csv_embedded_newline),
		cmocka_unit_test(test_csv_doubled_quote),
		cmocka_unit_test(test_csv_escape),
		cmocka_unit_test(test_csv_null_string),
		cmocka_unit_test(test_csv_quoted_empty),
		cmocka_unit_test(test_csv_unterminated_quote),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_decoder_options),
		cmocka_unit_test(test_copy_escaping),
		cmocka_unit_test(test_copy_from_decoder),
		cmocka_unit_test(test_copy_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
