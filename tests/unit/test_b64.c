/* common/b64: the one base64 codec.  RFC 4648's vectors, and the language the
 * decoder accepts, which is the job model's DESCRIPTOR check and the worker's
 * DESCRIPTOR decoding at once: both alphabets, padding optional, whitespace
 * (space, tab, CR, LF) anywhere, nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Decodes s and checks it succeeds with the bytes want[0..wantlen). */
static void b64_ok(const char *s, size_t n, const char *want, size_t wantlen)
{
	unsigned char out[256];
	char err[128] = "";
	size_t len = 99, counted = 99;

	assert_true(b64_decoded_max(n) <= sizeof(out));
	if (b64_decode(s, n, out, &len, NULL, err, sizeof(err)) != 0)
		fail_msg("b64_decode(\"%.*s\"): %s", (int)n, s, err);
	assert_int_equal(len, wantlen);
	assert_memory_equal(out, want, wantlen);
	assert_true(len <= b64_decoded_max(n));
	/* counting only gives the same length */
	assert_int_equal(b64_decode(s, n, NULL, &counted, NULL, err, sizeof(err)), 0);
	assert_int_equal(counted, wantlen);
}

/* Decodes s and checks it fails at errpos with a message holding what. */
static void b64_bad(const char *s, size_t n, size_t errpos, const char *what)
{
	unsigned char out[256];
	char err[128] = "";
	size_t len = 99, pos = 99;

	assert_int_equal(b64_decode(s, n, out, &len, &pos, err, sizeof(err)), -1);
	assert_int_equal(pos, errpos);
	assert_int_equal(len, 0);
	if (strstr(err, what) == NULL)
		fail_msg("b64_decode(\"%.*s\"): \"%s\" does not say \"%s\"", (int)n, s, err, what);
}

static void test_rfc4648_vectors(void **state)
{
	/* RFC 4648 section 10 */
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		size_t n = strlen(plain[i]);

		assert_int_equal(b64_encoded_len(n), strlen(enc[i]));
		memset(out, '#', sizeof(out));
		assert_int_equal(b64_encode(out, plain[i], n), strlen(enc[i]));
		assert_memory_equal(out, enc[i], strlen(enc[i]));
		assert_int_equal(out[strlen(enc[i])], '#'); /* no NUL, nothing past the text */
		b64_ok(enc[i], strlen(enc[i]), plain[i], n);
	}
}

static void test_round_trip_all_bytes(void **state)
{
	unsigned char in[256], back[256];
	char text[400], err[128];
	size_t len, tl;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(255 - i);
	for (size_t n = 0; n <= sizeof(in); n += (n < 16 ? 1 : 37)) {
		tl = b64_encode(text, in, n);
		assert_int_equal(tl, b64_encoded_len(n));
		assert_int_equal(b64_decode(text, tl, back, &len, NULL, err, sizeof(err)), 0);
		assert_int_equal(len, n);
		assert_memory_equal(back, in, n);
	}
	/* the high bits of every digit value */
	b64_ok(S("+/+/"), "\xfb\xff\xbf", 3);
	b64_ok(S("AAAA"), "\0\0\0", 3);
}

static void test_lengths(void **state)
{
	(void)state;
	assert_int_equal(b64_encoded_len(0), 0);
	assert_int_equal(b64_encoded_len(1), 4);
	assert_int_equal(b64_encoded_len(3), 4);
	assert_int_equal(b64_encoded_len(4), 8);
	assert_int_equal(b64_encoded_len(SIZE_MAX), SIZE_MAX); /* does not fit: said, not wrapped */
	assert_int_equal(b64_encoded_len(SIZE_MAX / 4 * 3), SIZE_MAX / 4 * 4);
	assert_int_equal(b64_decoded_max(0), 0);
	assert_int_equal(b64_decoded_max(1), 0);
	assert_int_equal(b64_decoded_max(2), 1);
	assert_int_equal(b64_decoded_max(3), 2);
	assert_int_equal(b64_decoded_max(4), 3);
	assert_int_equal(b64_decoded_max(SIZE_MAX), SIZE_MAX / 4 * 3 + 2);
}

/* Text the decoder accepts, and the bytes it stands for. */
struct b64_good {
	const char *text;
	const char *bytes;
	size_t len;
};

/* Text it refuses, where, and what the message says. */
struct b64_refused {
	const char *text;
	size_t pos;
	const char *what;
};

#define GOOD(t, b) { t, b, sizeof(b) - 1 }

static const struct b64_good b64_good_texts[] = {
	/* URL-safe, and the alphabets mixed */
	GOOD("-_8=", "\xfb\xff"),
	GOOD("-_8", "\xfb\xff"),
	GOOD("+_-/", "\xfb\xff\xbf"),
	/* unpadded */
	GOOD("Zg", "f"),
	GOOD("Zm8", "fo"),
	GOOD("Zm9vYmE", "fooba"),
	/* one "=" where two belong, and "=" after a whole group: accepted as before */
	GOOD("Zg=", "f"),
	GOOD("Zm9v=", "foo"),
	/* padding alone stands for nothing (the job model calls that empty) */
	GOOD("==", ""),
	/* YAML may fold a long DESCRIPTOR: space, tab, CR and LF anywhere */
	GOOD("Zm9v\n YmE", "fooba"),
	GOOD(" Zm9v\r\nYmFy\t", "foobar"),
	GOOD("Z m 9 v", "foo"),
	GOOD("Zg= =", "f"),
	GOOD("Zg==\n", "f"),
	GOOD(" \n\t\r", ""),
};

static const struct b64_refused b64_refused_texts[] = {
	/* padding */
	{ "Zm=9v", 3, "character '9' at position 3" },   /* a digit after padding */
	{ "Zg==Zg==", 4, "character 'Z' at position 4" }, /* two texts joined */
	{ "Zg===", 5, "truncated" },                      /* three "=" */
	{ "Zm9vY", 5, "truncated" },                      /* a lone digit: 6 bits */
	{ "Z", 1, "truncated" },
	{ "Zm9vY===", 8, "truncated" },
	/* characters of neither alphabet */
	{ "Zm9v!", 4, "character '!' at position 4" },
	{ "Zm.v", 2, "character '.' at position 2" },
	{ "Zm9v\x80", 4, "byte 0x80 at position 4" },
	{ "Zm9v\x7f", 4, "byte 0x7f at position 4" },
	{ "Zm9v\"", 4, "character '\"' at position 4" },
	/* white space other than space, tab, CR, LF */
	{ "Zm9v\vYmE", 4, "byte 0x0b at position 4" },
	{ "Zm9v\fYmE", 4, "byte 0x0c at position 4" },
};

static void test_accepted(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(b64_good_texts) / sizeof(b64_good_texts[0]); i++) {
		const struct b64_good *g = &b64_good_texts[i];

		b64_ok(g->text, strlen(g->text), g->bytes, g->len);
	}
	assert_int_equal(b64_digit_value('A'), 0);
	assert_int_equal(b64_digit_value('-'), 62);
	assert_int_equal(b64_digit_value('_'), 63);
	assert_int_equal(b64_digit_value('='), -1);
}

static void test_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(b64_refused_texts) / sizeof(b64_refused_texts[0]); i++) {
		const struct b64_refused *r = &b64_refused_texts[i];

		b64_bad(r->text, strlen(r->text), r->pos, r->what);
	}
	/* NUL is a byte like the others: the length rules, not a terminator */
	b64_bad(S("Zm\0v"), 2, "byte 0x00 at position 2");
}

static void test_error_buffer_optional(void **state)
{
	size_t len = 7;

	(void)state;
	/* the job model only asks whether it is base64 and how many bytes */
	assert_int_equal(b64_decode(S("Zm9v!"), NULL, &len, NULL, NULL, 0), -1);
	assert_int_equal(b64_decode(S("Zm9v"), NULL, &len, NULL, NULL, 0), 0);
	assert_int_equal(len, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_round_trip_all_bytes),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_error_buffer_optional),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
