#include "decode_meta.h"

#include <inttypes.h>
#include <string.h>

#include "utf8.h"

int decode_meta_json(struct textbuf *tb, const char *topic, int32_t partition, int64_t offset, bool has_timestamp,
		     int64_t timestamp_ms, const char *key, size_t keylen, char *err, size_t errlen)
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
	textbuf_putc(tb, '}');
	if (textbuf_failed(tb)) {
		textbuf_error(tb, err, errlen);
		return -1;
	}
	return 0;
}
