/* Unit tests of the decoding layer: delimited and CSV decoding
 * (decode_text.c, through decode.c's dispatch), UTF-8 and NUL checks, the
 * COPY text encoding (copybuf.c), the META JSON (decode_meta.c) and the
 * KEY/VALUE/META row (decode.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "copybuf.h"
#include "decode.h"
#include "decode_json.h"
#include "decode_meta.h"
#include "textbuf.h"
#include "utf8.h"

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
	assert_int_equal(utf8_text_prefix(S("ok\xe2\x82\xac"), &is_nul), 5);
	assert_int_equal(utf8_text_prefix(S("o\x80k"), &is_nul), 1);
	assert_false(is_nul);
	decoder_free(dec);
}

static void test_nul_byte(void **state)
{
	struct decoder *dec = test_decoder(JS_FORMAT_DELIMITED, "|", NULL, NULL, NULL, 2);
	const char *err = test_decode_err(dec, S("ab\0c|d"));
	bool is_nul;

	assert_non_null(strstr(err, "NUL byte at byte 2"));
	assert_int_equal(utf8_text_prefix(S("ab\0c"), &is_nul), 2);
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
	assert_non_null(strstr(test_new_error(JS_FORMAT_NONE, NULL, NULL, NULL), "FORMAT is required"));
	assert_non_null(strstr(test_new_error(JS_FORMAT_PROTOBUF, NULL, NULL, NULL), "PROTOBUF_OPTION.MESSAGE"));
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

/* Long fields: the character to escape found wherever it falls (the
 * eight-bytes-at-a-time scan), and rows without one copied as they are. */
static void test_copy_long_fields(void **state)
{
	static const char special[] = { '\\', '\n', '\r', '\t' };
	static const char escaped[] = { '\\', 'n', 'r', 't' };
	char text[40], want[64];
	struct decode_field f[2] = { { text, sizeof(text), false }, { "tail", 4, false } };
	struct decode_row row = { f, 2 };
	struct copybuf cb;
	char err[256];
	size_t pos, k;

	(void)state;
	copybuf_init(&cb, 1024);
	memset(text, 'x', sizeof(text));
	assert_int_equal(copybuf_append_row(&cb, &row, err, sizeof(err)), 0);
	assert_int_equal(cb.len, sizeof(text) + 6);
	assert_memory_equal(cb.data, text, sizeof(text));
	assert_memory_equal(cb.data + sizeof(text), "\ttail\n", 6);
	for (k = 0; k < sizeof(special); k++) {
		for (pos = 0; pos < sizeof(text); pos++) {
			memset(text, 'x', sizeof(text));
			text[pos] = special[k];
			memset(want, 'x', sizeof(text) + 1);
			want[pos] = '\\';
			want[pos + 1] = escaped[k];
			memcpy(want + sizeof(text) + 1, "\ttail\n", 6);
			copybuf_reset(&cb);
			assert_int_equal(copybuf_append_row(&cb, &row, err, sizeof(err)), 0);
			assert_int_equal(cb.len, sizeof(text) + 7);
			assert_memory_equal(cb.data, want, sizeof(text) + 7);
		}
	}
	copybuf_free(&cb);
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

/* The headers test_meta passes (none unless a test sets them). */
static const struct decode_header *test_headers;
static size_t test_nheaders;

static const char *test_meta(const char *topic, int32_t partition, int64_t offset, bool has_ts, int64_t ts,
			     const char *key, size_t keylen)
{
	static char out[512];
	struct textbuf tb;
	char err[256] = "";

	textbuf_init(&tb, 4096);
	if (decode_meta_json(&tb, topic, partition, offset, has_ts, ts, key, keylen, test_headers, test_nheaders, err,
			     sizeof(err)) < 0)
		fail_msg("decode_meta_json: %s", err);
	if (json_validate(tb.data, tb.len, err, sizeof(err)) < 0)
		fail_msg("META is not valid JSON: %s", err);
	snprintf(out, sizeof(out), "%.*s", (int)tb.len, tb.data);
	textbuf_free(&tb);
	return out;
}

static void test_meta_json(void **state)
{
	assert_string_equal(test_meta("orders", 3, 42, true, 1700000000123LL, S("k\"1")),
			    "{\"topic\":\"orders\",\"partition\":3,\"offset\":42,\"timestamp\":1700000000123,"
			    "\"key\":\"k\\\"1\",\"headers\":{}}");
	/* no key, no timestamp */
	assert_string_equal(test_meta("t", 0, 0, false, -1, NULL, 0),
			    "{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"timestamp\":null,\"key\":null,\"headers\":{}}");
	/* an empty key is a key */
	assert_string_equal(test_meta("t", 0, 9007199254740993LL, false, 0, "", 0),
			    "{\"topic\":\"t\",\"partition\":0,\"offset\":9007199254740993,\"timestamp\":null,\"key\":\"\",\"headers\":{}}");
	/* a key that is not text: null, and its bytes in base64 */
	assert_string_equal(test_meta("t", 1, 7, false, 0, S("\x00\xff")),
			    "{\"topic\":\"t\",\"partition\":1,\"offset\":7,\"timestamp\":null,\"key\":null,"
			    "\"key_base64\":\"AP8=\",\"headers\":{}}");
	/* quotes and backslashes escaped */
	assert_string_equal(test_meta("t\\x", 1, 7, false, 0, S("a\\b\"")),
			    "{\"topic\":\"t\\\\x\",\"partition\":1,\"offset\":7,\"timestamp\":null,\"key\":\"a\\\\b\\\"\",\"headers\":{}}");
	/* control characters and UTF-8 in a text key */
	assert_string_equal(test_meta("t", 1, 7, false, 0, S("\xc3\xa9\n\x01")),
			    "{\"topic\":\"t\",\"partition\":1,\"offset\":7,\"timestamp\":null,\"key\":\"\xc3\xa9\\n\\u0001\",\"headers\":{}}");

	/* headers: text, not text, a null value, a repeated name as an array */
	{
		static const struct decode_header h[] = {
			{ "trace", "a1", 2 }, { "bin", "\x00\xff", 2 }, { "tag", "x", 1 },
			{ "none", NULL, 0 },  { "tag", "y", 1 },	    { "q\"", "\xc3\xa9", 2 },
		};
		test_headers = h;
		test_nheaders = 6;
		assert_string_equal(test_meta("t", 1, 7, false, 0, NULL, 0),
				    "{\"topic\":\"t\",\"partition\":1,\"offset\":7,\"timestamp\":null,\"key\":null,"
				    "\"headers\":{\"trace\":\"a1\",\"bin\":{\"base64\":\"AP8=\"},\"tag\":[\"x\",\"y\"],"
				    "\"none\":null,\"q\\\"\":\"\xc3\xa9\"}}");
		test_headers = NULL;
		test_nheaders = 0;
	}
}

/* Too many headers, or a name that is not UTF-8: the message is bad. */
static void test_meta_headers_refused(void **state)
{
	static struct decode_header many[DECODE_HEADERS_MAX + 1];
	const struct decode_header bad[] = { { "\xff", "v", 1 } };
	struct textbuf tb;
	char err[256] = "";

	(void)state;
	for (size_t i = 0; i <= DECODE_HEADERS_MAX; i++)
		many[i] = (struct decode_header){ "h", "v", 1 };
	textbuf_init(&tb, 1 << 20);
	assert_int_equal(decode_meta_json(&tb, "t", 0, 0, false, 0, NULL, 0, many, DECODE_HEADERS_MAX, err,
					  sizeof(err)), 0);
	assert_int_equal(decode_meta_json(&tb, "t", 0, 0, false, 0, NULL, 0, many, DECODE_HEADERS_MAX + 1, err,
					  sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 1000 headers"));
	assert_int_equal(decode_meta_json(&tb, "t", 0, 0, false, 0, NULL, 0, bad, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "header 0: its name is not UTF-8"));
	textbuf_free(&tb);
}

/* A spec with KEY delimited (k1|k2), VALUE json fields (a, b) and META. */
static struct jobspec *test_row_spec(bool key, bool value, bool meta)
{
	static struct js_column kcols[2] = { { "k1", NULL }, { "k2", "int" } };
	static struct js_column vcols[2] = { { "a", NULL }, { "b", "jsonb" } };
	struct jobspec *spec = calloc(1, sizeof(*spec));

	spec->key.present = key;
	spec->key.format = JS_FORMAT_DELIMITED;
	spec->key.delimiter = (char *)"|";
	spec->key.columns = kcols;
	spec->key.ncolumns = 2;
	spec->value.present = value;
	spec->value.format = JS_FORMAT_JSON;
	spec->value.columns = vcols;
	spec->value.ncolumns = 2;
	spec->meta_present = meta;
	return spec;
}

static void test_row_field(const struct decode_row *row, size_t i, const char *want)
{
	const struct decode_field *f = &row->fields[i];

	if (want == NULL) {
		if (!f->is_null)
			fail_msg("column %zu: want NULL, got \"%.*s\"", i, (int)f->len, f->ptr);
		return;
	}
	if (f->is_null)
		fail_msg("column %zu: want \"%s\", got NULL", i, want);
	if (f->len != strlen(want) || memcmp(f->ptr, want, f->len) != 0)
		fail_msg("column %zu: want \"%s\", got \"%.*s\"", i, want, (int)f->len, f->ptr);
}

static void test_row_key_value_meta(void **state)
{
	struct jobspec *spec = test_row_spec(true, true, true);
	struct decode_msg m = { "topic1", 2, 10, true, 1000, "x|7", 3, "{\"b\":[1],\"a\":\"v\"}", 17, NULL, 0 };
	struct decode_row row;
	char err[512] = "";
	struct row_decoder *rd = row_decoder_new(spec, err, sizeof(err));

	if (rd == NULL)
		fail_msg("row_decoder_new: %s", err);
	assert_int_equal(row_decoder_ncolumns(rd), 5);
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), 0);
	assert_int_equal(row.nfields, 5);
	/* KEY columns, VALUE columns, META: the order the staging table has */
	test_row_field(&row, 0, "x");
	test_row_field(&row, 1, "7");
	test_row_field(&row, 2, "v");
	test_row_field(&row, 3, "[1]");
	test_row_field(&row, 4, "{\"topic\":\"topic1\",\"partition\":2,\"offset\":10,\"timestamp\":1000,\"key\":\"x|7\",\"headers\":{}}");

	/* no key: the KEY columns are NULL, META says key null */
	m.key = NULL;
	m.key_len = 0;
	m.offset = 11;
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), 0);
	test_row_field(&row, 0, NULL);
	test_row_field(&row, 1, NULL);
	test_row_field(&row, 2, "v");
	test_row_field(&row, 4, "{\"topic\":\"topic1\",\"partition\":2,\"offset\":11,\"timestamp\":1000,\"key\":null,\"headers\":{}}");

	/* a tombstone with VALUE declared: skipped, no error (no DELETE_ON_TOMBSTONE) */
	m.value = NULL;
	m.value_len = 0;
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), ROW_DECODER_SKIP);

	/* each part's error says which part */
	m.key = "only-one-field";
	m.key_len = strlen(m.key);
	m.value = "{}";
	m.value_len = 2;
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "KEY: expected 2 fields, got 1"));
	m.key = "a|1";
	m.key_len = 3;
	m.value = "[]";
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "VALUE: the message is an array"));
	row_decoder_free(rd);
	row_decoder_free(NULL);
	free(spec);
}

/* DELETE_ON_TOMBSTONE in MERGE: a tombstone with a key is a row with NULL
 * VALUE columns and t in the last field; a message with a value has f there;
 * a tombstone without a key is skipped.  In INSERT mode the option does
 * nothing (validation refuses it there). */
static void test_row_tombstones(void **state)
{
	struct jobspec *spec = test_row_spec(true, true, true);
	struct decode_msg m = { "t", 0, 5, false, 0, "k|9", 3, "{\"a\":\"v\"}", 9, NULL, 0 };
	struct decode_row row;
	char err[512] = "";
	struct row_decoder *rd;

	(void)state;
	spec->delete_on_tombstone = true;
	spec->mode = JS_MODE_MERGE;
	rd = row_decoder_new(spec, err, sizeof(err));
	if (rd == NULL)
		fail_msg("row_decoder_new: %s", err);
	assert_int_equal(row_decoder_ncolumns(rd), 6);
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), 0);
	assert_int_equal(row.nfields, 6);
	test_row_field(&row, 2, "v");
	test_row_field(&row, 5, "f");
	m.value = NULL;
	m.value_len = 0;
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), 0);
	assert_int_equal(row.nfields, 6);
	test_row_field(&row, 0, "k");
	test_row_field(&row, 1, "9");
	test_row_field(&row, 2, NULL);
	test_row_field(&row, 3, NULL);
	test_row_field(&row, 4, "{\"topic\":\"t\",\"partition\":0,\"offset\":5,\"timestamp\":null,\"key\":\"k|9\",\"headers\":{}}");
	test_row_field(&row, 5, "t");
	m.key = NULL;
	m.key_len = 0;
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), ROW_DECODER_SKIP);
	row_decoder_free(rd);

	spec->mode = JS_MODE_INSERT;
	rd = row_decoder_new(spec, err, sizeof(err));
	if (rd == NULL)
		fail_msg("row_decoder_new: %s", err);
	assert_int_equal(row_decoder_ncolumns(rd), 5);
	m.key = "k|9";
	m.key_len = 3;
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), ROW_DECODER_SKIP);
	row_decoder_free(rd);
	free(spec);

	/* KEY only: the value is ignored, but a tombstone is still one */
	spec = test_row_spec(true, false, false);
	spec->delete_on_tombstone = true;
	spec->mode = JS_MODE_UPDATE;
	rd = row_decoder_new(spec, err, sizeof(err));
	if (rd == NULL)
		fail_msg("row_decoder_new: %s", err);
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), 0);
	assert_int_equal(row.nfields, 3);
	test_row_field(&row, 0, "k");
	test_row_field(&row, 2, "t");
	m.value = "anything";
	m.value_len = 8;
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), 0);
	test_row_field(&row, 2, "f");
	row_decoder_free(rd);
	free(spec);
}

static void test_row_key_only(void **state)
{
	struct jobspec *spec = test_row_spec(true, false, false);
	/* no VALUE in the job: the value is ignored, even a tombstone */
	struct decode_msg m = { "t", 0, 1, false, 0, "k|1", 3, NULL, 0, NULL, 0 };
	struct decode_row row;
	char err[512] = "";
	struct row_decoder *rd = row_decoder_new(spec, err, sizeof(err));

	if (rd == NULL)
		fail_msg("row_decoder_new: %s", err);
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), 0);
	assert_int_equal(row.nfields, 2);
	test_row_field(&row, 0, "k");
	test_row_field(&row, 1, "1");
	m.value = "not json at all";
	m.value_len = strlen(m.value);
	assert_int_equal(row_decoder_decode(rd, &m, &row, err, sizeof(err)), 0);
	row_decoder_free(rd);
	free(spec);
}

static void test_row_config_errors(void **state)
{
	struct jobspec *spec = test_row_spec(true, true, false);
	char err[512] = "";

	spec->key.delimiter = NULL;
	assert_null(row_decoder_new(spec, err, sizeof(err)));
	assert_non_null(strstr(err, "KAFKA.INPUT.KEY: DELIMITED_OPTION.DELIMITER"));
	spec->key.delimiter = (char *)"|";
	spec->value.format = JS_FORMAT_PROTOBUF;
	assert_null(row_decoder_new(spec, err, sizeof(err)));
	assert_non_null(strstr(err, "KAFKA.INPUT.VALUE: PROTOBUF_OPTION"));
	spec->key.present = spec->value.present = false;
	assert_null(row_decoder_new(spec, err, sizeof(err)));
	assert_non_null(strstr(err, "needs VALUE (or KEY)"));
	free(spec);
}

static void test_textbuf_base64(void **state)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	struct textbuf tb;
	char err[256] = "";
	size_t i;

	textbuf_init(&tb, 1024);
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		textbuf_reset(&tb);
		textbuf_base64(&tb, plain[i], strlen(plain[i]));
		assert_int_equal(tb.len, strlen(enc[i]));
		assert_memory_equal(tb.data, enc[i], tb.len);
		textbuf_reset(&tb);
		assert_int_equal(textbuf_from_base64(&tb, enc[i], strlen(enc[i]), err, sizeof(err)), 0);
		assert_int_equal(tb.len, strlen(plain[i]));
		assert_memory_equal(tb.data, plain[i], tb.len);
	}
	/* unpadded, folded, URL-safe */
	textbuf_reset(&tb);
	assert_int_equal(textbuf_from_base64(&tb, S("Zm9v\n YmE"), err, sizeof(err)), 0);
	assert_int_equal(tb.len, 5);
	assert_memory_equal(tb.data, "fooba", 5);
	textbuf_reset(&tb);
	assert_int_equal(textbuf_from_base64(&tb, S("-_8="), err, sizeof(err)), 0);
	assert_int_equal(tb.len, 2);
	assert_memory_equal(tb.data, "\xfb\xff", 2);
	/* a lone character after whole groups cannot be */
	textbuf_reset(&tb);
	assert_int_equal(textbuf_from_base64(&tb, S("Zm9vY"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));
	textbuf_reset(&tb);
	assert_int_equal(textbuf_from_base64(&tb, S("Zm=9v"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "character '9' at position 3"));
	textbuf_free(&tb);
}

static void test_textbuf_cap(void **state)
{
	struct textbuf tb;
	char err[256] = "";

	textbuf_init(&tb, 8);
	textbuf_puts(&tb, "12345678");
	assert_false(textbuf_failed(&tb));
	textbuf_putc(&tb, '9');
	assert_true(textbuf_failed(&tb));
	assert_int_equal(tb.len, 8);
	textbuf_puts(&tb, "x"); /* ignored once failed */
	assert_int_equal(tb.len, 8);
	textbuf_error(&tb, err, sizeof(err));
	assert_non_null(strstr(err, "8-byte limit"));
	textbuf_reset(&tb);
	assert_false(textbuf_failed(&tb));
	textbuf_printf(&tb, "%d", 1234567);
	assert_false(textbuf_failed(&tb));
	textbuf_printf(&tb, "%s", "too long for the rest");
	assert_true(textbuf_failed(&tb));
	textbuf_free(&tb);
	textbuf_free(&tb);
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
		cmocka_unit_test(test_copy_long_fields),
		cmocka_unit_test(test_copy_from_decoder),
		cmocka_unit_test(test_copy_cap),
		cmocka_unit_test(test_meta_json),
		cmocka_unit_test(test_meta_headers_refused),
		cmocka_unit_test(test_textbuf_base64),
		cmocka_unit_test(test_textbuf_cap),
		cmocka_unit_test(test_row_key_value_meta),
		cmocka_unit_test(test_row_tombstones),
		cmocka_unit_test(test_row_key_only),
		cmocka_unit_test(test_row_config_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
