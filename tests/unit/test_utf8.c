/* common/utf8: the one strict UTF-8 check (RFC 3629 table 3.7 of Unicode). */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_valid(void **state)
{
	(void)state;
	assert_int_equal(utf8_valid_prefix(S("")), 0);
	assert_int_equal(utf8_valid_prefix(S("plain ascii")), 11);
	assert_int_equal(utf8_valid_prefix(S("\xc2\x80\xdf\xbf")), 4);             /* U+0080, U+07FF */
	assert_int_equal(utf8_valid_prefix(S("\xe0\xa0\x80\xed\x9f\xbf")), 6);     /* U+0800, U+D7FF */
	assert_int_equal(utf8_valid_prefix(S("\xee\x80\x80\xef\xbf\xbf")), 6);     /* U+E000, U+FFFF */
	assert_int_equal(utf8_valid_prefix(S("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf")), 8); /* U+10000, U+10FFFF */
	assert_int_equal(utf8_valid_prefix(S("a\0b")), 3); /* NUL is the caller's business */
	assert_int_equal(utf8_seq_len(S("\xe2\x82\xac!")), 3);
}

static void test_invalid(void **state)
{
	(void)state;
	assert_int_equal(utf8_valid_prefix(S("ab\x80")), 2);                 /* stray continuation */
	assert_int_equal(utf8_valid_prefix(S("a\xc0\x80")), 1);              /* overlong NUL */
	assert_int_equal(utf8_valid_prefix(S("a\xc1\xbf")), 1);              /* overlong */
	assert_int_equal(utf8_valid_prefix(S("a\xe0\x9f\xbf")), 1);          /* overlong, 3 bytes */
	assert_int_equal(utf8_valid_prefix(S("a\xf0\x8f\xbf\xbf")), 1);      /* overlong, 4 bytes */
	assert_int_equal(utf8_valid_prefix(S("a\xed\xa0\x80")), 1);          /* surrogate D800 */
	assert_int_equal(utf8_valid_prefix(S("a\xed\xbf\xbf")), 1);          /* surrogate DFFF */
	assert_int_equal(utf8_valid_prefix(S("a\xf4\x90\x80\x80")), 1);      /* U+110000 */
	assert_int_equal(utf8_valid_prefix(S("a\xf5\x80\x80\x80")), 1);
	assert_int_equal(utf8_valid_prefix(S("a\xff")), 1);
	assert_int_equal(utf8_valid_prefix(S("ab\xe2\x82")), 2);             /* truncated */
	assert_int_equal(utf8_valid_prefix(S("ab\xe2\x28\xa1")), 2);         /* bad continuation */
	assert_int_equal(utf8_seq_len("\xe2\x82\xac", 2), 0);                /* len is respected */
	assert_int_equal(utf8_seq_len("", 0), 0);
}

static void test_text(void **state)
{
	bool is_nul = true;

	(void)state;
	/* valid UTF-8 without NUL: what PostgreSQL text and JSON strings hold */
	assert_int_equal(utf8_text_prefix(S(""), &is_nul), 0);
	assert_false(is_nul);
	assert_int_equal(utf8_text_prefix(S("ok\xe2\x82\xac"), &is_nul), 5);
	assert_false(is_nul);
	assert_int_equal(utf8_text_prefix(S("ab\0c"), &is_nul), 2);
	assert_true(is_nul);
	assert_int_equal(utf8_text_prefix(S("o\x80k"), &is_nul), 1);
	assert_false(is_nul);
	assert_int_equal(utf8_text_prefix(S("a\xc0\x80"), &is_nul), 1); /* overlong NUL is not NUL but invalid */
	assert_false(is_nul);
	assert_int_equal(utf8_text_prefix("ab\xe2\x82\xac", 4, &is_nul), 2); /* len is respected */
	assert_false(is_nul);
}

/* The eight-bytes-at-a-time path agrees with the byte by byte definition
 * wherever the bad byte or the NUL falls, in long texts. */
static void test_text_long(void **state)
{
	static const char *const bad[] = { "\0", "\x80", "\xC3", "\xE9\x80", "\xFF" };
	char buf[64];
	bool is_nul;
	size_t pos, b;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	assert_int_equal(utf8_text_prefix(buf, sizeof(buf), &is_nul), sizeof(buf));
	assert_false(is_nul);
	for (b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		for (pos = 0; pos + 2 < sizeof(buf); pos++) {
			size_t n = b == 0 ? 1 : strlen(bad[b]);
			memset(buf, 'a', sizeof(buf));
			memcpy(buf + pos, bad[b], n);
			assert_int_equal(utf8_text_prefix(buf, sizeof(buf), &is_nul), pos);
			assert_true(is_nul == (b == 0));
		}
	}
	/* valid multi-byte text between ASCII blocks */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf + 13, "\xC3\xA9\xE2\x82\xAC", 5);
	assert_int_equal(utf8_text_prefix(buf, sizeof(buf), &is_nul), sizeof(buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_text_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
