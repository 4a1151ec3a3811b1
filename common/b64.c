#include "b64.h"

#include <stdint.h>
#include <stdio.h>

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_digit_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

size_t b64_encoded_len(size_t n)
{
	size_t groups = n / 3 + (n % 3 != 0);

	return groups > (SIZE_MAX - 1) / 4 ? SIZE_MAX : groups * 4;
}

size_t b64_encode(char *out, const void *p, size_t n)
{
	const unsigned char *s = p;
	char *o = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = b64_alphabet[(v >> 6) & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);

		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	return (size_t)(o - out);
}

size_t b64_decoded_max(size_t n)
{
	return n / 4 * 3 + (n % 4 > 1 ? n % 4 - 1 : 0);
}

int b64_decode(const char *s, size_t n, void *out, size_t *outlen, size_t *errpos, char *err, size_t errlen)
{
	unsigned char *o = out;
	uint32_t acc = 0;
	size_t i, pad = 0, len = 0;
	int bits = 0;

	*outlen = 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64_digit_value(c);
		if (v < 0 || pad > 0) {
			if (c >= 0x21 && c < 0x7f)
				snprintf(err, errlen, "not valid base64: character '%c' at position %zu", c, i);
			else
				snprintf(err, errlen, "not valid base64: byte 0x%02x at position %zu", c, i);
			if (errpos != NULL)
				*errpos = i;
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o != NULL)
				o[len] = (unsigned char)((acc >> bits) & 0xff);
			len++;
		}
	}
	/* 6 leftover bits cannot come from whole bytes: the text was cut. */
	if (bits >= 6 || pad > 2) {
		snprintf(err, errlen, "not valid base64: the text is truncated");
		if (errpos != NULL)
			*errpos = n;
		return -1;
	}
	*outlen = len;
	return 0;
}
