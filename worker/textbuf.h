/* A growing text buffer with a cap, and the encodings the decoders write:
 * JSON string literals, base64, hex.
 *
 * Appends never fail loudly: once the cap would be passed or memory runs out
 * the buffer is marked failed, later appends do nothing, and the caller checks
 * textbuf_failed() once at the end (textbuf_error() says why).  So a renderer
 * can write a whole value without checking every call.
 *
 * Ownership: the buffer owns data; textbuf_free() releases it and accepts a
 * zeroed struct.  Pointers into data are invalidated by any append (realloc):
 * keep offsets while writing.
 */
#ifndef SS_WORKER_TEXTBUF_H
#define SS_WORKER_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct textbuf {
	char *data;
	size_t len;
	size_t cap; /* allocated */
	size_t max; /* never grows past this */
	int failed; /* 0, or TEXTBUF_TOO_LARGE / TEXTBUF_NO_MEMORY */
};

#define TEXTBUF_TOO_LARGE 1
#define TEXTBUF_NO_MEMORY 2

void textbuf_init(struct textbuf *tb, size_t max);
void textbuf_reset(struct textbuf *tb); /* empties it and clears failed; keeps the memory */
void textbuf_free(struct textbuf *tb);  /* accepts a zeroed struct */

static inline bool textbuf_failed(const struct textbuf *tb)
{
	return tb->failed != 0;
}

/* "the decoded value is larger than N bytes" or "out of memory ...". */
void textbuf_error(const struct textbuf *tb, char *err, size_t errlen);

/* Shrinks the text back to len (len <= tb->len). */
void textbuf_truncate(struct textbuf *tb, size_t len);

void textbuf_put(struct textbuf *tb, const void *p, size_t n);
void textbuf_putc(struct textbuf *tb, char c);
void textbuf_puts(struct textbuf *tb, const char *s);
void textbuf_printf(struct textbuf *tb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s (n bytes of valid UTF-8) as a JSON string literal with its quotes:
 * '"' and '\\' escaped, control characters as \n, \t ... or \u00XX. */
void textbuf_json_string(struct textbuf *tb, const char *s, size_t n);

/* n bytes as standard base64 (RFC 4648, with padding), by common/b64.h. */
void textbuf_base64(struct textbuf *tb, const void *p, size_t n);

/* A float (is_float: a 32-bit one) as the shortest text that reads back to
 * the same value; NaN, Infinity, -Infinity as PostgreSQL spells them,
 * quoted when json (JSON has no such numbers). */
void textbuf_float(struct textbuf *tb, double v, bool is_float, bool json);

/* n bytes as lowercase hex digits, two per byte. */
void textbuf_hex(struct textbuf *tb, const void *p, size_t n);

/* Appends the bytes that base64 text s (n bytes) stands for, in the language
 * of common/b64.h's b64_decode() (both alphabets, padding optional,
 * whitespace ignored: YAML may fold a long value).  Returns 0, or -1 with err
 * filled naming the first bad character's position, or the cap passed; the
 * buffer then holds what it held before. */
int textbuf_from_base64(struct textbuf *tb, const char *s, size_t n, char *err, size_t errlen);

#endif
