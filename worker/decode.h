/* Message decoders (delimited, CSV) and the COPY text-format row writer.
 *
 * A decoder turns one Kafka message payload (const char *buf, size_t len, no
 * NUL terminator assumed) into a row of fields.  The row's field array and its
 * scratch space belong to the decoder and are reused by the next call: a
 * decoded row is valid until the next decoder_decode() on the same decoder and
 * as long as buf is alive (fields without quotes or escapes point into buf).
 * Nothing is allocated per field.
 *
 * Errors: decoder_new() fails only on bad options (a configuration problem);
 * decoder_decode() fails on bad data.  Both fill err with a message that says
 * what is wrong and where (field number, byte offset in the message).  The
 * caller adds topic/partition/offset.
 */
#ifndef SS_WORKER_DECODE_H
#define SS_WORKER_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "jobspec.h"

/* Largest message a decoder accepts; bounds its scratch space. */
#define DECODE_MESSAGE_MAX ((size_t)64 * 1024 * 1024)

struct decode_field {
	const char *ptr; /* not NUL-terminated; NULL when is_null */
	size_t len;
	bool is_null;
};

struct decode_row {
	const struct decode_field *fields; /* owned by the decoder */
	size_t nfields;
};

struct decoder;

/* Builds a decoder for one input (KAFKA.INPUT.VALUE or KEY).  The decoder
 * copies what it needs from in; in may be freed afterwards.  Returns NULL with
 * err filled if the options cannot work (empty delimiter, multi-character
 * QUOTE, unsupported format...). */
struct decoder *decoder_new(const struct js_input *in, char *err, size_t errlen);
void decoder_free(struct decoder *dec);

/* Decodes one message into *row.  Returns 0, or -1 with err filled (a data
 * error: wrong field count, unterminated quote, invalid UTF-8, NUL byte).
 * buf may be NULL only when len is 0 and it is a real empty payload; a Kafka
 * message without a value (tombstone) is the caller's to reject. */
int decoder_decode(struct decoder *dec, const char *buf, size_t len, struct decode_row *row,
		   char *err, size_t errlen);

/* Returns the byte offset of the first byte that is not valid UTF-8 or is NUL,
 * or len if the whole buffer is valid.  *is_nul says which problem it is. */
size_t decode_utf8_check(const char *buf, size_t len, bool *is_nul);

/* A growing buffer of COPY ... FROM STDIN text-format data, with a cap. */
struct copybuf {
	char *data;
	size_t len;
	size_t cap; /* allocated */
	size_t max; /* never grows past this */
};

void copybuf_init(struct copybuf *cb, size_t max);
void copybuf_reset(struct copybuf *cb); /* empties it, keeps the memory */
void copybuf_free(struct copybuf *cb);  /* accepts a zeroed struct */

/* Appends the row as one COPY text line: fields separated by tab, NULL as \N,
 * backslash, newline, carriage return and tab escaped, ending in a newline.
 * Returns 0, or -1 with err filled when the cap would be passed or memory runs
 * out; the buffer then holds exactly what it held before. */
int copybuf_append_row(struct copybuf *cb, const struct decode_row *row, char *err, size_t errlen);

#endif
