#include "textbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"

void textbuf_init(struct textbuf *tb, size_t max)
{
	memset(tb, 0, sizeof(*tb));
	tb->max = max;
}

void textbuf_reset(struct textbuf *tb)
{
	tb->len = 0;
	tb->failed = 0;
}

void textbuf_free(struct textbuf *tb)
{
	free(tb->data);
	tb->data = NULL;
	tb->len = tb->cap = 0;
	tb->failed = 0;
}

void textbuf_error(const struct textbuf *tb, char *err, size_t errlen)
{
	if (tb->failed == TEXTBUF_TOO_LARGE)
		snprintf(err, errlen, "the decoded row is larger than the %zu-byte limit", tb->max);
	else
		snprintf(err, errlen, "out of memory decoding the message");
}

void textbuf_truncate(struct textbuf *tb, size_t len)
{
	if (len < tb->len)
		tb->len = len;
}

/* Room for n more bytes; false (and failed set) when there is none. */
static bool textbuf_room(struct textbuf *tb, size_t n)
{
	size_t cap;
	char *p;

	if (tb->failed)
		return false;
	if (n <= tb->cap - tb->len)
		return true;
	if (n > tb->max - tb->len) {
		tb->failed = TEXTBUF_TOO_LARGE;
		return false;
	}
	cap = tb->cap ? tb->cap : 256;
	while (cap - tb->len < n)
		cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
	if (cap > tb->max)
		cap = tb->max;
	p = realloc(tb->data, cap);
	if (p == NULL) {
		tb->failed = TEXTBUF_NO_MEMORY;
		return false;
	}
	tb->data = p;
	tb->cap = cap;
	return true;
}

void textbuf_put(struct textbuf *tb, const void *p, size_t n)
{
	if (n == 0 || !textbuf_room(tb, n))
		return;
	memcpy(tb->data + tb->len, p, n);
	tb->len += n;
}

void textbuf_putc(struct textbuf *tb, char c)
{
	if (!textbuf_room(tb, 1))
		return;
	tb->data[tb->len++] = c;
}

void textbuf_puts(struct textbuf *tb, const char *s)
{
	textbuf_put(tb, s, strlen(s));
}

void textbuf_printf(struct textbuf *tb, const char *fmt, ...)
{
	char small[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		tb->failed = TEXTBUF_NO_MEMORY;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		textbuf_put(tb, small, (size_t)n);
		return;
	}
	if (!textbuf_room(tb, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(tb->data + tb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	tb->len += (size_t)n;
}

void textbuf_json_string(struct textbuf *tb, const char *s, size_t n)
{
	static const char hexdig[] = "0123456789abcdef";
	size_t i, run = 0;

	textbuf_putc(tb, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		textbuf_put(tb, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hexdig[c >> 4];
			esc[5] = hexdig[c & 15];
			elen = 6;
			break;
		}
		textbuf_put(tb, esc, elen);
	}
	textbuf_put(tb, s + run, n - run);
	textbuf_putc(tb, '"');
}

void textbuf_base64(struct textbuf *tb, const void *p, size_t n)
{
	size_t need = b64_encoded_len(n);

	if (need == SIZE_MAX || !textbuf_room(tb, need))
		return;
	tb->len += b64_encode(tb->data + tb->len, p, n);
}

void textbuf_hex(struct textbuf *tb, const void *p, size_t n)
{
	static const char hexdig[] = "0123456789abcdef";
	const unsigned char *s = p;
	size_t i;

	if (n >= SIZE_MAX / 2 || !textbuf_room(tb, 2 * n))
		return;
	for (i = 0; i < n; i++) {
		tb->data[tb->len++] = hexdig[s[i] >> 4];
		tb->data[tb->len++] = hexdig[s[i] & 15];
	}
}

int textbuf_from_base64(struct textbuf *tb, const char *s, size_t n, char *err, size_t errlen)
{
	size_t len;

	/* Counted first: the cap applies to the bytes, not to the text's length. */
	if (b64_decode(s, n, NULL, &len, NULL, err, errlen) < 0)
		return -1;
	if (len > 0 && textbuf_room(tb, len)) {
		(void)b64_decode(s, n, tb->data + tb->len, &len, NULL, err, errlen);
		tb->len += len;
	}
	if (textbuf_failed(tb)) {
		textbuf_error(tb, err, errlen);
		return -1;
	}
	return 0;
}

void textbuf_float(struct textbuf *tb, double v, bool is_float, bool json)
{
	const char *special = NULL;
	char text[40];
	int prec;

	if (isnan(v))
		special = "NaN";
	else if (isinf(v))
		special = v > 0 ? "Infinity" : "-Infinity";
	if (special != NULL) {
		if (json)
			textbuf_putc(tb, '"');
		textbuf_puts(tb, special);
		if (json)
			textbuf_putc(tb, '"');
		return;
	}
	/* The shortest text that reads back to the same value. */
	/* prec stays <= 17, so the text fits; the length is checked only
	 * because -O0 cannot see that bound. */
	for (prec = is_float ? 6 : 15; prec < (is_float ? 9 : 17); prec++) {
		if (snprintf(text, sizeof(text), "%.*g", prec, v) >= (int)sizeof(text))
			continue;
		if (is_float ? strtof(text, NULL) == (float)v : strtod(text, NULL) == v)
			break;
	}
	if (prec >= (is_float ? 9 : 17) && snprintf(text, sizeof(text), "%.*g", prec, v) >= (int)sizeof(text))
		text[sizeof(text) - 1] = '\0';
	textbuf_puts(tb, text);
}
