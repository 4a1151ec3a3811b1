#include "decode_meta.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

/* One header's value: text, {"base64":...} or null. */
static void decode_meta_header_value(struct textbuf *tb, const struct decode_header *h)
{
	bool is_nul;

	if (h->value == NULL) {
		textbuf_puts(tb, "null");
	} else if (utf8_text_prefix(h->value, h->value_len, &is_nul) == h->value_len) {
		textbuf_json_string(tb, h->value, h->value_len);
	} else {
		textbuf_puts(tb, "{\"base64\":\"");
		textbuf_base64(tb, h->value, h->value_len);
		textbuf_puts(tb, "\"}");
	}
}

/* "headers":{...}: each name once, where it first appears.  Quadratic in the
 * count, which DECODE_HEADERS_MAX bounds; messages carry a few. */
static int decode_meta_headers(struct textbuf *tb, const struct decode_header *headers, size_t n, char *err,
			       size_t errlen)
{
	bool is_nul, first = true;

	if (n > DECODE_HEADERS_MAX) {
		snprintf(err, errlen, "the message has more than %d headers", DECODE_HEADERS_MAX);
		return -1;
	}
	textbuf_puts(tb, ",\"headers\":{");
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(headers[i].name), count = 0, j;

		for (j = 0; j < i; j++)
			if (strcmp(headers[j].name, headers[i].name) == 0)
				break;
		if (j < i)
			continue; /* written with its first */
		if (utf8_text_prefix(headers[i].name, len, &is_nul) != len) {
			snprintf(err, errlen, "header %zu: its name is not UTF-8 text", i);
			return -1;
		}
		for (j = i; j < n; j++)
			count += strcmp(headers[j].name, headers[i].name) == 0;
		if (!first)
			textbuf_putc(tb, ',');
		first = false;
		textbuf_json_string(tb, headers[i].name, len);
		textbuf_putc(tb, ':');
		if (count == 1) {
			decode_meta_header_value(tb, &headers[i]);
			continue;
		}
		textbuf_putc(tb, '[');
		for (j = i; j < n; j++) {
			if (strcmp(headers[j].name, headers[i].name) != 0)
				continue;
			if (j > i)
				textbuf_putc(tb, ',');
			decode_meta_header_value(tb, &headers[j]);
		}
		textbuf_putc(tb, ']');
	}
	textbuf_putc(tb, '}');
	return 0;
}

int decode_meta_json(struct textbuf *tb, const char *topic, int32_t partition, int64_t offset, bool has_timestamp,
		     int64_t timestamp_ms, const char *key, size_t keylen, const struct decode_header *headers,
		     size_t nheaders, char *err, size_t errlen)
{
	bool is_nul;

	textbuf_reset(tb);
	textbuf_puts(tb, "{\"topic\":");
	textbuf_json_string(tb, topic, strlen(topic));
	textbuf_printf(tb, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"timestamp\":", partition, offset);
	if (has_timestamp)
		textbuf_printf(tb, "%" PRId64, timestamp_ms);
	else
		textbuf_puts(tb, "null");
	textbuf_puts(tb, ",\"key\":");
	if (key == NULL) {
		textbuf_puts(tb, "null");
	} else if (utf8_text_prefix(key, keylen, &is_nul) == keylen) {
		textbuf_json_string(tb, key, keylen);
	} else {
		textbuf_puts(tb, "null,\"key_base64\":\"");
		textbuf_base64(tb, key, keylen);
		textbuf_putc(tb, '"');
	}
	if (decode_meta_headers(tb, headers, nheaders, err, errlen) < 0)
		return -1;
	textbuf_putc(tb, '}');
	if (textbuf_failed(tb)) {
		textbuf_error(tb, err, errlen);
		return -1;
	}
	return 0;
}
