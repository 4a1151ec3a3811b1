/* Unit tests of FORMAT protobuf (worker/decode_pb.c, pbdesc.c, pbwire.c).
 *
 * The descriptor set is the one protoc makes from data/test_pb.proto and
 * data/test_pb2.proto, embedded as a C array (data/test_pb_desc.inc, generated
 * once; its first lines give the command).  The messages are written by hand
 * below, byte by byte; each was checked against the Python protobuf runtime
 * when the test was written (the comment says what it holds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "decode.h"
#include "decode_pb.h"
#include "pbdesc.h"
#include "pbwire.h"
#include "textbuf.h"

#include "data/test_pb_desc.inc"
#include "data/test_pb_wkt_desc.inc"

#define S(lit) (lit), (sizeof(lit) - 1)
#define NCOLS_MAX 16

static char *pbt_b64; /* the descriptor set as DESCRIPTOR (base64) */
static char *pbt_wkt_b64; /* data/test_pb_wkt_desc.inc as DESCRIPTOR */

static int pbt_setup(void **state)
{
	struct textbuf tb;

	textbuf_init(&tb, 1 << 20);
	textbuf_base64(&tb, test_pb_desc, test_pb_desc_len);
	textbuf_putc(&tb, '\0');
	if (textbuf_failed(&tb))
		return -1;
	pbt_b64 = tb.data;
	textbuf_init(&tb, 1 << 20);
	textbuf_base64(&tb, test_pb_wkt_desc, test_pb_wkt_desc_len);
	textbuf_putc(&tb, '\0');
	if (textbuf_failed(&tb))
		return -1;
	pbt_wkt_b64 = tb.data;
	return 0;
}

static int pbt_teardown(void **state)
{
	free(pbt_b64);
	free(pbt_wkt_b64);
	return 0;
}

/* A js_input for message with these columns ("name" or "name:type"). */
struct pbt_input {
	struct js_input in;
	struct js_column cols[NCOLS_MAX];
	char names[NCOLS_MAX][64];
};

static void pbt_input_init(struct pbt_input *pi, const char *message, const char *columns)
{
	const char *p = columns;
	size_t n = 0;

	memset(pi, 0, sizeof(*pi));
	pi->in.present = true;
	pi->in.format = JS_FORMAT_PROTOBUF;
	pi->in.protobuf_descriptor = pbt_b64;
	pi->in.protobuf_message = (char *)message;
	while (*p != '\0' && n < NCOLS_MAX) {
		size_t len = strcspn(p, ",");
		char *colon;

		snprintf(pi->names[n], sizeof(pi->names[n]), "%.*s", (int)len, p);
		colon = strchr(pi->names[n], ':');
		pi->cols[n].name = pi->names[n];
		if (colon != NULL) {
			*colon = '\0';
			pi->cols[n].type = colon + 1;
		}
		n++;
		p += len;
		if (*p == ',')
			p++;
	}
	pi->in.columns = pi->cols;
	pi->in.ncolumns = n;
}

static struct decoder *pbt_decoder(const char *message, const char *columns)
{
	struct pbt_input pi;
	char err[1024] = "";
	struct decoder *dec;

	pbt_input_init(&pi, message, columns);
	dec = decoder_new(&pi.in, err, sizeof(err));
	if (dec == NULL)
		fail_msg("decoder_new(%s, %s): %s", message, columns, err);
	return dec;
}

static const char *pbt_new_error(const struct js_input *in)
{
	static char err[1024];
	struct decoder *dec;

	err[0] = '\0';
	dec = decoder_new(in, err, sizeof(err));
	if (dec != NULL) {
		decoder_free(dec);
		fail_msg("decoder_new succeeded, an error was expected");
	}
	return err;
}

/* Decodes and compares every column; want[i] NULL means SQL NULL. */
static void pbt_expect(struct decoder *dec, const char *buf, size_t len, const char *const *want, size_t n)
{
	struct decode_row row;
	char err[1024] = "";
	size_t i;

	if (decoder_decode(dec, buf, len, &row, err, sizeof(err)) != 0)
		fail_msg("decoding failed: %s", err);
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
}

static const char *pbt_decode_err(struct decoder *dec, const char *buf, size_t len)
{
	static char err[1024];
	struct decode_row row;

	err[0] = '\0';
	if (decoder_decode(dec, buf, len, &row, err, sizeof(err)) == 0)
		fail_msg("decoding succeeded, an error was expected");
	return err;
}

static void pbt_assert_contains(const char *s, const char *part)
{
	if (strstr(s, part) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* Every scalar type at once.  {"d": 1.5, "f": 0.1, "i64": 9007199254740993,
 * "u64": 18446744073709551615, "i32": -2 (10-byte varint), "fx64": 2^64-1,
 * "fx32": 2^32-1, "b": true, "s": "héllo", "by": 00 0a ff, "u32": 2^32-1,
 * "color": GREEN, "sfx32": -1, "sfx64": -2, "si32": -3 (zigzag 5), "si64": INT64_MIN} */
static const char pbt_scalars[] =
	"\x09\x00\x00\x00\x00\x00\x00\xf8\x3f\x15\xcd\xcc\xcc\x3d\x18\x81\x80\x80\x80\x80\x80\x80\x10\x20\xff\xff"
	"\xff\xff\xff\xff\xff\xff\xff\x01\x28\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01\x31\xff\xff\xff\xff\xff\xff"
	"\xff\xff\x3d\xff\xff\xff\xff\x40\x01\x4a\x06\x68\xc3\xa9\x6c\x6c\x6f\x62\x03\x00\x0a\xff\x68\xff\xff\xff"
	"\xff\x0f\x70\x02\x7d\xff\xff\xff\xff\x81\x01\xfe\xff\xff\xff\xff\xff\xff\xff\x88\x01\x05\x90\x01\xff\xff"
	"\xff\xff\xff\xff\xff\xff\xff\x01";

static void test_pb_scalars(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "d,f,i64,u64,i32,fx64,fx32,b,s,by,u32,color,sfx32,sfx64,si32,si64");
	const char *want[] = { "1.5", "0.1", "9007199254740993", "18446744073709551615", "-2",
			       "18446744073709551615", "4294967295", "true", "h\xc3\xa9llo", "\\x000aff", "4294967295",
			       "GREEN", "-1", "-2", "-3", "-9223372036854775808" };

	pbt_expect(dec, S(pbt_scalars), want, 16);
	decoder_free(dec);
}

static void test_pb_negative_int32(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "i32");
	const char *want[] = { "-1" };

	/* int32 -1 is written as a 10-byte varint */
	pbt_expect(dec, S("\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), want, 1);
	decoder_free(dec);
}

static void test_pb_floats(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "d,f");
	const char *want1[] = { "NaN", "-Infinity" };
	const char *want2[] = { "1e+300", "3.4028235e+38" };
	const char *want3[] = { "Infinity", "-0" };

	pbt_expect(dec, S("\x09\x00\x00\x00\x00\x00\x00\xf8\x7f\x15\x00\x00\x80\xff"), want1, 2);
	pbt_expect(dec, S("\x09\x9c\x75\x00\x88\x3c\xe4\x37\x7e\x15\xff\xff\x7f\x7f"), want2, 2);
	/* d = +inf, f = -0.0 */
	pbt_expect(dec, S("\x09\x00\x00\x00\x00\x00\x00\xf0\x7f\x15\x00\x00\x00\x80"), want3, 2);
	decoder_free(dec);
}

/* Absent fields: proto3 plain scalars give their default, fields with
 * presence (proto3 optional, oneof members, messages) give NULL. */
static void test_pb_defaults_and_presence(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All",
					  "d,s,b,color,by,packed_i32,counts,inner,opt_i32,opt_s,c_text,c_num,i64");
	const char *want_empty[] = { "0", "", "false", "COLOR_UNSPECIFIED", "\\x", "[]", "{}",
				     NULL, NULL, NULL, NULL, NULL, "0" };
	/* opt_i32 = 0, opt_s = "", c_num = 0: set explicitly, so not NULL */
	const char *want_set[] = { "0", "", "false", "COLOR_UNSPECIFIED", "\\x", "[]", "{}",
				   NULL, "0", "", NULL, "0", "0" };

	pbt_expect(dec, "", 0, want_empty, 13);
	pbt_expect(dec, S("\xd0\x01\x00\xda\x01\x00\xe8\x01\x00"), want_set, 13);
	decoder_free(dec);
}

static void test_pb_last_wins(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "i32,s,c_text,c_num");
	const char *want[] = { "7", "second", NULL, "4" };

	/* i32 = 5, s = "first", i32 = 7, s = "second", c_num = 4 */
	pbt_expect(dec, S("\x28\x05\x4a\x05" "first" "\x28\x07\x4a\x06" "second" "\xe8\x01\x04"), want, 4);
	decoder_free(dec);
}

static void test_pb_repeated(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "packed_i32,unpacked_i32,tags,ds,colors");
	const char *want[] = { "[1,-1,300]", "[5,6]", "[\"a\",\"b\\\"c\"]", "[1.5,\"NaN\"]", "[\"RED\",7]" };
	const char *want_mixed[] = { "[1,2,3]", "[8,9]", "[]", "[]", "[]" };

	pbt_expect(dec,
		   S("\xa2\x01\x0d\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\xac\x02\xa8\x01\x05\xa8\x01\x06\xb2\x01"
		     "\x01\x61\xb2\x01\x03\x62\x22\x63\xf2\x01\x10\x00\x00\x00\x00\x00\x00\xf8\x3f\x00\x00\x00\x00\x00"
		     "\x00\xf8\x7f\xfa\x01\x02\x01\x07"),
		   want, 5);
	/* Parsers accept both encodings whatever [packed] says: packed_i32 as
	 * 1 (unpacked), then 2,3 (packed); unpacked_i32 as packed 8,9. */
	pbt_expect(dec, S("\xa0\x01\x01\xa2\x01\x02\x02\x03\xaa\x01\x02\x08\x09"), want_mixed, 5);
	decoder_free(dec);
}

static void test_pb_nested(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "inner,items");
	const char *want[] = {
		"{\"name\":\"x\",\"big\":9223372036854775807,\"nums\":[1,2],\"color\":\"RED\",\"raw\":\"AP8=\"}", "[]"
	};
	const char *want_items[] = {
		NULL,
		"[{\"name\":\"p\",\"big\":0,\"nums\":[],\"color\":\"COLOR_UNSPECIFIED\",\"raw\":\"\"},"
		"{\"name\":\"\",\"big\":-1,\"nums\":[],\"color\":\"COLOR_UNSPECIFIED\",\"raw\":\"\"}]"
	};
	const char *want_merged[] = {
		"{\"name\":\"a\",\"big\":5,\"nums\":[1,2],\"color\":\"COLOR_UNSPECIFIED\",\"raw\":\"\",\"opt\":0}", "[]"
	};

	/* inner {name "x", big INT64_MAX, nums [1,2], color RED, raw 00 ff}; opt absent: left out */
	pbt_expect(dec, S("\x5a\x17\x0a\x01\x78\x10\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x1a\x02\x01\x02\x20\x01\x2a"
			  "\x02\x00\xff"),
		   want, 2);
	/* items [{name "p"}, {big -1}] */
	pbt_expect(dec, S("\xba\x01\x03\x0a\x01\x70\xba\x01\x0b\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
		   want_items, 2);
	/* inner twice: {name "a", nums [1]} then {big 5, nums [2], opt 0}: merged */
	pbt_expect(dec, S("\x5a\x05\x0a\x01\x61\x18\x01\x5a\x06\x10\x05\x18\x02\x30\x00"), want_merged, 2);
	decoder_free(dec);
}

static void test_pb_maps(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "counts,by_id");
	const char *want[] = {
		"{\"a\":1,\"b\":-2}",
		"{\"7\":{\"name\":\"z\",\"big\":0,\"nums\":[],\"color\":\"COLOR_UNSPECIFIED\",\"raw\":\"\"}}"
	};
	const char *want_partial[] = { "{\"\":0}", "{\"0\":{\"name\":\"\",\"big\":0,\"nums\":[],\"color\":\"COLOR_UNSPECIFIED\",\"raw\":\"\"}}" };

	/* counts {"a": 1, "b": -2}, by_id {7: {name "z"}} */
	pbt_expect(dec, S("\xc2\x01\x05\x0a\x01\x61\x10\x01\xc2\x01\x0e\x0a\x01\x62\x10\xfe\xff\xff\xff\xff\xff\xff"
			  "\xff\xff\x01\xca\x01\x07\x08\x07\x12\x03\x0a\x01\x7a"),
		   want, 2);
	/* entries without key or value take the defaults */
	pbt_expect(dec, S("\xc2\x01\x00\xca\x01\x00"), want_partial, 2);
	decoder_free(dec);
}

static void test_pb_unknown_fields_skipped(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "i32,s");
	const char *want[] = { "3", "ok" };
	const char *want_default[] = { "0", "" };

	/* field 99 as varint, field 98 as LEN, 97 fixed32, 96 fixed64, a group 95
	 * holding a field, around i32 = 3 and s = "ok" */
	pbt_expect(dec,
		   S("\x98\x06\x96\x01\x28\x03\x92\x06\x02xy\x8d\x06\x01\x02\x03\x04\x81\x06\x01\x02\x03\x04\x05\x06"
		     "\x07\x08\xfb\x05\x08\x01\xfc\x05\x4a\x02ok"),
		   want, 2);
	/* i32 with the wrong wire type (LEN): skipped like protobuf does */
	pbt_expect(dec, S("\x2a\x01\x05"), want_default, 2);
	decoder_free(dec);
}

static void test_pb_truncated(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "i32,s,inner,packed_i32");
	const char *err;

	/* s says 6 bytes, 2 follow */
	err = pbt_decode_err(dec, S("\x28\x01\x4a\x06hi"));
	pbt_assert_contains(err, "truncated");
	pbt_assert_contains(err, "byte 2");
	/* a varint cut off at the end */
	err = pbt_decode_err(dec, S("\x28\xff\xff"));
	pbt_assert_contains(err, "truncated");
	pbt_assert_contains(err, "byte 0");
	/* a tag cut off */
	err = pbt_decode_err(dec, S("\x28\x01\xa2"));
	pbt_assert_contains(err, "truncated");
	/* fixed64 with 3 bytes */
	err = pbt_decode_err(dec, S("\x09\x01\x02\x03"));
	pbt_assert_contains(err, "truncated");
	/* inside a nested message: inner {name says 5 bytes, 1 follows} */
	err = pbt_decode_err(dec, S("\x5a\x03\x0a\x05x"));
	pbt_assert_contains(err, "truncated");
	pbt_assert_contains(err, "sstest.Inner");
	/* packed varints cut off */
	err = pbt_decode_err(dec, S("\xa2\x01\x02\x01\xff"));
	pbt_assert_contains(err, "truncated");
	pbt_assert_contains(err, "packed_i32");
	decoder_free(dec);
}

static void test_pb_malformed(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "i32");

	/* an 11-byte varint */
	pbt_assert_contains(pbt_decode_err(dec, S("\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")), "malformed");
	/* field number 0 */
	pbt_assert_contains(pbt_decode_err(dec, S("\x28\x01\x00\x01")), "malformed protobuf data at byte 2");
	/* wire type 7 */
	pbt_assert_contains(pbt_decode_err(dec, S("\x2f\x01")), "malformed");
	/* an end-group without its start */
	pbt_assert_contains(pbt_decode_err(dec, S("\xfc\x05")), "malformed");
	/* a group closed by another group's end tag */
	pbt_assert_contains(pbt_decode_err(dec, S("\xfb\x05\x08\x01\xf4\x05")), "malformed");
	decoder_free(dec);
}

static void test_pb_invalid_utf8(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "s");
	struct decoder *nested = pbt_decoder("sstest.All", "inner");
	const char *err;

	err = pbt_decode_err(dec, S("\x4a\x03\x61\xc3\x28"));
	pbt_assert_contains(err, "not valid UTF-8 at byte 3");
	pbt_assert_contains(err, "field s");
	err = pbt_decode_err(dec, S("\x4a\x02\x61\x00"));
	pbt_assert_contains(err, "NUL");
	/* inside a nested message that a column renders as JSON */
	err = pbt_decode_err(nested, S("\x5a\x04\x0a\x02\xed\xa0"));
	pbt_assert_contains(err, "not valid UTF-8 at byte 4");
	/* bytes fields may hold anything */
	decoder_free(dec);
	decoder_free(nested);
}

static void test_pb_proto2_and_groups(void **state)
{
	struct decoder *dec = pbt_decoder("sstest2.Legacy", "a,b,c,r,g,inner,color");
	const char *want[] = { NULL, "req", NULL, "[1]", "{\"x\":5}", "{\"name\":\"\",\"big\":0,\"nums\":[],\"color\":\"COLOR_UNSPECIFIED\",\"raw\":\"\",\"opt\":0}", NULL };

	/* b "req", r [1], group g {x 5}, inner {opt 0} (a type from the imported file) */
	pbt_expect(dec, S("\x12\x03\x72\x65\x71\x20\x01\x2b\x30\x05\x2c\x3a\x02\x30\x00"), want, 7);
	decoder_free(dec);
}

static void test_pb_depth_cap(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.Node", "child,v");
	const char *want[] = { "{\"child\":{\"v\":3},\"v\":0}", "0" };
	char buf[512];
	size_t len, i, depth = 70;
	const char *err;

	pbt_expect(dec, S("\x0a\x04\x0a\x02\x10\x03"), want, 2);

	/* 70 Nodes inside each other, built from the inside out: child = tag
	 * 0x0a, then the length as a varint */
	len = 0;
	for (i = 0; i < depth; i++) {
		size_t hdr = len < 128 ? 2 : 3;

		memmove(buf + hdr, buf, len);
		buf[0] = 0x0a;
		if (hdr == 2) {
			buf[1] = (char)len;
		} else {
			buf[1] = (char)(0x80 | (len & 0x7f));
			buf[2] = (char)(len >> 7);
		}
		len += hdr;
	}
	err = pbt_decode_err(dec, buf, len);
	pbt_assert_contains(err, "nested deeper than 64");
	decoder_free(dec);
}

static void test_pb_json_columns(void **state)
{
	struct decoder *dec = pbt_decoder("sstest.All", "s:jsonb,i64:JSON,by:json,opt_s:jsonb,color: jsonb ,camelCaseName");
	const char *want[] = { "\"a\\\"b\"", "9007199254740993", "\"AAr/\"", NULL, "\"COLOR_UNSPECIFIED\"", "9" };

	/* s "a\"b", i64 2^53+1, by 00 0a ff, camel_case_name 9 (the column uses its json_name) */
	pbt_expect(dec, S("\x4a\x03\x61\x22\x62\x18\x81\x80\x80\x80\x80\x80\x80\x10\x62\x03\x00\x0a\xff\x80\x02\x09"),
		   want, 6);
	decoder_free(dec);
}

/* The unit tests' descriptor set with the bytes at the first occurrence of
 * from (flen bytes) replaced by to (same length), as DESCRIPTOR (base64). */
static char *pbt_patched_b64(const char *from, const char *to, size_t flen)
{
	unsigned char *copy = malloc(test_pb_desc_len);
	struct textbuf tb;
	size_t i;

	assert_non_null(copy);
	memcpy(copy, test_pb_desc, test_pb_desc_len);
	for (i = 0; i + flen <= test_pb_desc_len; i++)
		if (memcmp(copy + i, from, flen) == 0)
			break;
	assert_true(i + flen <= test_pb_desc_len);
	memcpy(copy + i, to, flen);
	textbuf_init(&tb, 1 << 20);
	textbuf_base64(&tb, copy, test_pb_desc_len);
	textbuf_putc(&tb, '\0');
	free(copy);
	return tb.data;
}

/* Found by fuzz_pb_desc: names from the descriptor set reached rows
 * unchecked, so an enum value named "COLOR\xff..." gave a row that is not
 * UTF-8, and one with a quote gave invalid JSON; a map<bytes,...> key gave a
 * JSON key with a bytea escape; two fields of one name made a column's
 * rendering depend on their order.  Such sets are refused when the decoder is
 * built, naming what is wrong. */
static void test_pb_descriptor_names_checked(void **state)
{
	static const struct {
		const char *from, *to;
		size_t len;
		const char *want;
	} cases[] = {
		{ "COLOR_UNSPECIFIED", "COLOR\xff" "UNSPECIFIED", 17, "has a value named" },
		{ "COLOR_UNSPECIFIED", "COLOR\"" "UNSPECIFIED", 17, "not a protobuf name" },
		{ "\x0a\x03key\x18\x01\x20\x01\x28\x09", "\x0a\x03key\x18\x01\x20\x01\x28\x0c", 11,
		  "key of a type protobuf does not allow" },
		/* found by a longer run: a second field named "by" */
		{ "\x0a\x02" "ds\x18", "\x0a\x02" "by\x18", 5, "two fields named by" },
	};
	struct pbt_input pi;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *b64 = pbt_patched_b64(cases[i].from, cases[i].to, cases[i].len);
		const char *err;

		pbt_input_init(&pi, "sstest.All", "color,counts");
		pi.in.protobuf_descriptor = b64;
		err = pbt_new_error(&pi.in);
		pbt_assert_contains(err, cases[i].want);
		free(b64);
	}
}

static void test_pb_config_errors(void **state)
{
	struct pbt_input pi;
	const char *err;

	pbt_input_init(&pi, "sstest.Nope", "i32");
	err = pbt_new_error(&pi.in);
	pbt_assert_contains(err, "no message type \"sstest.Nope\"");
	pbt_assert_contains(err, "sstest.All");

	pbt_input_init(&pi, "sstest.All", "i32,nosuch");
	err = pbt_new_error(&pi.in);
	pbt_assert_contains(err, "COLUMNS[1] \"nosuch\"");
	pbt_assert_contains(err, "no field");

	pbt_input_init(&pi, "sstest.All", "i32");
	pi.in.protobuf_descriptor = NULL;
	pi.in.protobuf_descriptor_file = "/nonexistent/dir/x.desc";
	err = pbt_new_error(&pi.in);
	pbt_assert_contains(err, "DESCRIPTOR_FILE");
	pbt_assert_contains(err, "/nonexistent/dir/x.desc");

	pbt_input_init(&pi, "sstest.All", "i32");
	pi.in.protobuf_descriptor = "Zm9v!!";
	pbt_assert_contains(pbt_new_error(&pi.in), "not valid base64");

	pbt_input_init(&pi, "sstest.All", "i32");
	pi.in.protobuf_descriptor_file = "/tmp/x.desc";
	pbt_assert_contains(pbt_new_error(&pi.in), "exactly one of");

	pbt_input_init(&pi, NULL, "i32");
	pbt_assert_contains(pbt_new_error(&pi.in), "MESSAGE is required");

	/* bytes that are not a descriptor set: "hello" is a truncated field */
	pbt_input_init(&pi, "sstest.All", "i32");
	pi.in.protobuf_descriptor = "aGVsbG8=";
	pbt_assert_contains(pbt_new_error(&pi.in), "not a valid FileDescriptorSet");
}

/* A set missing an imported file: its types cannot be resolved. */
static void test_pb_descriptor_without_imports(void **state)
{
	struct pb_pool *pool = NULL;
	struct pb_wire_field f;
	size_t pos = 0;
	char err[512] = "";
	int rc;

	/* The set's second file is test_pb2.proto: keep only that one. */
	assert_int_equal(pb_wire_next(test_pb_desc, test_pb_desc_len, &pos, &f), 1);
	assert_int_equal(pb_wire_next(test_pb_desc, test_pb_desc_len, &pos, &f), 1);
	assert_int_equal(f.number, 1);
	rc = pb_pool_load(test_pb_desc + f.tag_off, pos - f.tag_off, &pool, err, sizeof(err));
	assert_int_equal(rc, -1);
	assert_null(pool);
	pbt_assert_contains(err, ".sstest.Inner");
	pbt_assert_contains(err, "--include_imports");
}

static void test_pb_descriptor_file(void **state)
{
	char path[] = "/tmp/test_decode_pb_XXXXXX";
	int fd = mkstemp(path);
	struct pbt_input pi;
	struct decoder *dec;
	char err[1024] = "";
	const char *want[] = { "42" };

	assert_true(fd >= 0);
	assert_int_equal(write(fd, test_pb_desc, test_pb_desc_len), (ssize_t)test_pb_desc_len);
	close(fd);
	pbt_input_init(&pi, ".sstest.All", "i32");
	pi.in.protobuf_descriptor = NULL;
	pi.in.protobuf_descriptor_file = path;
	dec = decoder_new(&pi.in, err, sizeof(err));
	unlink(path);
	if (dec == NULL)
		fail_msg("decoder_new: %s", err);
	pbt_expect(dec, S("\x28\x2a"), want, 1);
	decoder_free(dec);
}

static void test_pb_pool(void **state)
{
	struct pb_pool *pool = NULL;
	const struct pb_message *msg;
	char err[512] = "", names[512];
	int idx;

	assert_int_equal(pb_pool_load(test_pb_desc, test_pb_desc_len, &pool, err, sizeof(err)), 0);
	msg = pb_pool_message(pool, "sstest.All");
	assert_non_null(msg);
	idx = pb_message_field_by_name(msg, "by_id");
	assert_true(idx >= 0);
	assert_true(msg->fields[idx].map);
	idx = pb_message_field_by_name(msg, "opt_i32");
	assert_true(msg->fields[idx].has_presence);
	idx = pb_message_field_by_name(msg, "i32");
	assert_false(msg->fields[idx].has_presence);
	assert_int_equal(pb_message_field_by_number(msg, 32), pb_message_field_by_name(msg, "camel_case_name"));
	assert_int_equal(pb_message_field_by_number(msg, 10), -1);
	assert_non_null(pb_pool_message(pool, "sstest2.Legacy.G"));
	pb_pool_message_names(pool, 2, names, sizeof(names));
	pbt_assert_contains(names, "in all");
	assert_null(strstr(names, "Entry")); /* map entries are not listed */
	pb_pool_free(pool);
	pb_pool_free(NULL);
}

/* ---- google.protobuf's well-known types (data/test_pb_wkt.proto; the
 * messages are python3-protobuf's, see each comment) ---- */

static struct decoder *pbt_wkt_decoder(const char *columns)
{
	struct pbt_input pi;
	char err[1024] = "";
	struct decoder *dec;

	pbt_input_init(&pi, "sswkt.Event", columns);
	pi.in.protobuf_descriptor = pbt_wkt_b64;
	dec = decoder_new(&pi.in, err, sizeof(err));
	if (dec == NULL)
		fail_msg("decoder_new(sswkt.Event, %s): %s", columns, err);
	return dec;
}

/* ts 1700000000.12 s, dur -3600.5 s, i64 -9007199254740993, s "hé\"llo", b
 * present without a value, dbl 0.1, raw 00 ff, attrs {"b": [true, null,
 * "x"], "a": 1.5, "c": {"d": "e"}} (in this order on the wire), val "v", list [1, "two", false], any
 * Nested{at: 0 s, n: 7} packed, nested {at: 86400 s + 1000 ns}, times
 * [0001-01-01, 9999-12-31T23:59:59.999999999], u32 absent. */
static const char pbt_wkt_full[] = "\x0a\x0b\x08\x80\xe2\xcf\xaa\x06\x10\x80\x9c\x9c\x39\x12\x16\x08\xf0\xe3\xff\xff\xff\xff\xff\xff"
		"\xff\x01\x10\x80\xb6\xca\x91\xfe\xff\xff\xff\xff\x01\x1a\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xef"
		"\xff\x01\x22\x09\x0a\x07\x68\xc3\xa9\x22\x6c\x6c\x6f\x2a\x00\x32\x09\x09\x9a\x99\x99\x99\x99\x99"
		"\xb9\x3f\x3a\x04\x0a\x02\x00\xff\x42\x39\x0a\x14\x0a\x01\x62\x12\x0f\x32\x0d\x0a\x02\x20\x01\x0a"
		"\x02\x08\x00\x0a\x03\x1a\x01\x78\x0a\x0e\x0a\x01\x61\x12\x09\x11\x00\x00\x00\x00\x00\x00\xf8\x3f"
		"\x0a\x11\x0a\x01\x63\x12\x0c\x2a\x0a\x0a\x08\x0a\x01\x64\x12\x03\x1a\x01\x65\x4a\x03\x1a\x01\x76"
		"\x52\x16\x0a\x09\x11\x00\x00\x00\x00\x00\x00\xf0\x3f\x0a\x05\x1a\x03\x74\x77\x6f\x0a\x02\x20\x00"
		"\x5a\x2a\x0a\x20\x74\x79\x70\x65\x2e\x67\x6f\x6f\x67\x6c\x65\x61\x70\x69\x73\x2e\x63\x6f\x6d\x2f"
		"\x73\x73\x77\x6b\x74\x2e\x4e\x65\x73\x74\x65\x64\x12\x06\x0a\x00\x12\x02\x08\x07\x62\x09\x0a\x07"
		"\x08\x80\xa3\x05\x10\xe8\x07\x6a\x0b\x08\x80\x92\xb8\xc3\x98\xfe\xff\xff\xff\x01\x6a\x0d\x08\xff"
		"\x82\xd1\xff\xaf\x07\x10\xff\x93\xeb\xdc\x03";

static void test_pb_wkt_columns(void **state)
{
	struct decoder *dec = pbt_wkt_decoder("ts,dur,i64,s,b,dbl,raw,attrs,val,list,any,nested,times,u32");
	const char *want[] = {
		"2023-11-14T22:13:20.120Z",
		"-3600.500s",
		"-9007199254740993",
		"h\xc3\xa9\"llo",
		"false",
		"0.1",
		"\\x00ff",
		"{\"b\":[true,null,\"x\"],\"a\":1.5,\"c\":{\"d\":\"e\"}}", /* wire order */
		"\"v\"",
		"[1,\"two\",false]",
		"{\"@type\":\"type.googleapis.com/sswkt.Nested\",\"at\":\"1970-01-01T00:00:00Z\",\"n\":7}",
		"{\"at\":\"1970-01-02T00:00:00.000001Z\"}",
		"[\"0001-01-01T00:00:00Z\",\"9999-12-31T23:59:59.999999999Z\"]",
		NULL,
	};

	(void)state;
	pbt_expect(dec, pbt_wkt_full, sizeof(pbt_wkt_full) - 1, want, 14);
	decoder_free(dec);
}

/* In json/jsonb columns the same values as JSON: strings quoted. */
static void test_pb_wkt_json_columns(void **state)
{
	struct decoder *dec = pbt_wkt_decoder("ts:jsonb,dur:json,s:jsonb,b:jsonb,raw:jsonb,u32:jsonb");
	const char *want[] = {
		"\"2023-11-14T22:13:20.120Z\"", "\"-3600.500s\"", "\"h\xc3\xa9\\\"llo\"", "false", "\"AP8=\"", NULL,
	};

	(void)state;
	pbt_expect(dec, pbt_wkt_full, sizeof(pbt_wkt_full) - 1, want, 6);
	decoder_free(dec);
}

/* An Any of a type the set does not have: its bytes in base64; a Value set to
 * null_value; an Any of a well-known type: {"@type", "value"}; a Timestamp
 * past 9999-12-31: a data error. */
static void test_pb_wkt_any_value_range(void **state)
{
	static const char sparse[] = "\x4a\x02\x08\x00\x5a\x1f\x0a\x19\x74\x79\x70\x65\x2e\x65\x78\x61\x6d\x70\x6c\x65\x2f\x75\x6e\x6b"
		"\x6e\x6f\x77\x6e\x2e\x54\x79\x70\x65\x12\x02\x01\x02";
	static const char anywkt[] = "\x5a\x3c\x0a\x2d\x74\x79\x70\x65\x2e\x67\x6f\x6f\x67\x6c\x65\x61\x70\x69\x73\x2e\x63\x6f\x6d\x2f"
		"\x67\x6f\x6f\x67\x6c\x65\x2e\x70\x72\x6f\x74\x6f\x62\x75\x66\x2e\x54\x69\x6d\x65\x73\x74\x61\x6d"
		"\x70\x12\x0b\x08\x80\xe2\xcf\xaa\x06\x10\x80\x9c\x9c\x39";
	static const char badts[] = "\x0a\x07\x08\x80\x83\xd1\xff\xaf\x07";
	struct decoder *dec = pbt_wkt_decoder("any,val,ts,attrs");
	const char *want[] = { "{\"@type\":\"type.example/unknown.Type\",\"value\":\"AQI=\"}", "null", NULL, NULL };
	const char *want_wkt[] = { "{\"@type\":\"type.googleapis.com/google.protobuf.Timestamp\","
				   "\"value\":\"2023-11-14T22:13:20.120Z\"}", NULL, NULL, NULL };

	(void)state;
	pbt_expect(dec, sparse, sizeof(sparse) - 1, want, 4);
	pbt_expect(dec, anywkt, sizeof(anywkt) - 1, want_wkt, 4);
	pbt_assert_contains(pbt_decode_err(dec, badts, sizeof(badts) - 1), "google.protobuf.Timestamp out of range");
	decoder_free(dec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pb_scalars),
		cmocka_unit_test(test_pb_negative_int32),
		cmocka_unit_test(test_pb_floats),
		cmocka_unit_test(test_pb_defaults_and_presence),
		cmocka_unit_test(test_pb_last_wins),
		cmocka_unit_test(test_pb_repeated),
		cmocka_unit_test(test_pb_nested),
		cmocka_unit_test(test_pb_maps),
		cmocka_unit_test(test_pb_unknown_fields_skipped),
		cmocka_unit_test(test_pb_truncated),
		cmocka_unit_test(test_pb_malformed),
		cmocka_unit_test(test_pb_invalid_utf8),
		cmocka_unit_test(test_pb_proto2_and_groups),
		cmocka_unit_test(test_pb_depth_cap),
		cmocka_unit_test(test_pb_json_columns),
		cmocka_unit_test(test_pb_config_errors),
		cmocka_unit_test(test_pb_descriptor_names_checked),
		cmocka_unit_test(test_pb_descriptor_without_imports),
		cmocka_unit_test(test_pb_descriptor_file),
		cmocka_unit_test(test_pb_pool),
		cmocka_unit_test(test_pb_wkt_columns),
		cmocka_unit_test(test_pb_wkt_json_columns),
		cmocka_unit_test(test_pb_wkt_any_value_range),
	};

	return cmocka_run_group_tests(tests, pbt_setup, pbt_teardown);
}
