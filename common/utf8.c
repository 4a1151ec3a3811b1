#include "utf8.h"

#include <stdint.h>
#include <string.h>

#define UTF8_ONES 0x0101010101010101ULL
#define UTF8_HIGHS 0x8080808080808080ULL

size_t utf8_seq_len(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
	size_t need;

	if (len == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		need = 1;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		need = 2;
		if (s[0] == 0xE0)
			lo = 0xA0; /* overlong */
		else if (s[0] == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		need = 3;
		if (s[0] == 0xF0)
			lo = 0x90; /* overlong */
		else if (s[0] == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0; /* a continuation byte, C0/C1 (overlong) or F5..FF */
	}
	if (len <= need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k <= need; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	return need + 1;
}

size_t utf8_valid_prefix(const char *buf, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seq_len(buf + i, len - i);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}

size_t utf8_text_prefix(const char *buf, size_t len, bool *is_nul)
{
	size_t i = 0, n;

	*is_nul = false;
	while (i < len) {
		/* Eight ASCII bytes, none NUL, at a time: the common case, and this
		 * runs on every text field of every message (perf: 10% of the
		 * worker's CPU byte by byte).  (w - 0x01..) & ~w & 0x80.. is non-zero
		 * exactly when some byte of w is zero. */
		if (len - i >= 8) {
			uint64_t w;
			memcpy(&w, buf + i, 8);
			if (((w & UTF8_HIGHS) | ((w - UTF8_ONES) & ~w & UTF8_HIGHS)) == 0) {
				i += 8;
				continue;
			}
		}
		if (buf[i] == '\0') {
			*is_nul = true;
			return i;
		}
		n = utf8_seq_len(buf + i, len - i);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}
