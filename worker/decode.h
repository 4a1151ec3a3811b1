/* Message decoders and the COPY text-format row writer.
 *
 * A decoder turns one Kafka message key or value (const char *buf, size_t
 * len, no NUL terminator assumed) into a row of fields, one per COLUMN of its
 * input.  The format is chosen per input (KEY and VALUE may differ):
 * delimited and CSV here, json in decode_json.h, protobuf in decode_pb.h.
 * The row's field array and its scratch space belong to the decoder and are
 * reused by the next call: a decoded row is valid until the next
 * decoder_decode() on the same decoder and as long as buf is alive (fields
 * without quotes or escapes point into buf).  Nothing is allocated per field.
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
#include <stdint.h>

#include "jobspec.h"
#include "textbuf.h"

/* Largest message a decoder accepts; bounds its scratch space. */
#define DECODE_MESSAGE_MAX ((size_t)64 * 1024 * 1024)
/* Largest text a decoder makes from one message when it is not a part of the
 * message (protobuf renders numbers, JSON, hex). */
#define DECODE_ROW_MAX ((size_t)64 * 1024 * 1024)

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

/* Builds a decoder for one input (KAFKA.INPUT.VALUE or KEY) by its FORMAT.
 * The decoder copies what it needs from in; in may be freed afterwards.
 * Returns NULL with err filled if the options cannot work (empty delimiter,
 * multi-character QUOTE, no FORMAT, an unreadable protobuf descriptor set, a
 * column naming no protobuf field...): a configuration problem. */
struct decoder *decoder_new(const struct js_input *in, char *err, size_t errlen);
void decoder_free(struct decoder *dec);

/* Decodes one message into *row.  Returns 0, or -1 with err filled (a data
 * error: wrong field count, unterminated quote, invalid UTF-8, NUL byte,
 * invalid JSON, truncated protobuf...).
 * buf may be NULL only when len is 0 and it is a real empty payload; a Kafka
 * message without a value (tombstone) is the caller's to reject. */
int decoder_decode(struct decoder *dec, const char *buf, size_t len, struct decode_row *row,
		   char *err, size_t errlen);

/* One Kafka message as the decoders see it; the pointers are the caller's. */
struct decode_msg {
	const char *topic;
	int32_t partition;
	int64_t offset;
	bool has_timestamp;
	int64_t timestamp_ms;
	const char *key; /* NULL: the message has no key */
	size_t key_len;
	const char *value; /* NULL: no value (a tombstone) */
	size_t value_len;
};

/* A whole job's input: KEY, VALUE and META of a message become one COPY row
 * in a FIXED order, the contract with sink_pg (its staging table):
 *   KEY columns in order, then VALUE columns in order, then the META column.
 * KEY is decoded from the message key with KEY's own FORMAT and options; a
 * message without a key gives NULL in every KEY column.  VALUE is decoded from
 * the message value; without VALUE in the job the value is ignored, and with
 * it a message without a value (a tombstone) is a data error.  META is the JSON
 * object of decode_meta_json(). */
struct row_decoder;

/* Builds the decoders of spec->key and spec->value (those present); copies
 * what it needs, spec may go afterwards.  Returns NULL with err filled
 * ("KAFKA.INPUT.KEY: ...") on a configuration problem. */
struct row_decoder *row_decoder_new(const struct jobspec *spec, char *err, size_t errlen);
void row_decoder_free(struct row_decoder *rd);

/* Number of columns in a row: KEY + VALUE + (1 with META). */
size_t row_decoder_ncolumns(const struct row_decoder *rd);

/* Decodes one message into *row, valid until the next call and while the
 * message's key and value live.  Returns 0, or -1 with err filled (a data
 * error, prefixed with "KEY: ", "VALUE: " or "META: "). */
int row_decoder_decode(struct row_decoder *rd, const struct decode_msg *m, struct decode_row *row, char *err,
		       size_t errlen);

/* Whether a column's TYPE is json or jsonb (then JSON and protobuf decoders
 * give it JSON text). */
bool decode_column_is_json(const struct js_column *col);

/* KAFKA.INPUT.META: the message's metadata as one JSON object, written to tb
 * (emptied first):
 *
 *   {"topic":"orders","partition":0,"offset":42,"timestamp":1700000000000,"key":"k1"}
 *
 * topic, partition and offset locate the message; timestamp is the message's
 * timestamp in milliseconds since the epoch (create or log-append time, as
 * the topic keeps it), null when it has none; key is the message key as a
 * JSON string when it is valid UTF-8 without NUL bytes, null when the message
 * has no key (key == NULL) or when the key is not text, and in that last case
 * "key_base64" follows with the key's bytes in base64:
 *
 *   {"topic":"t","partition":1,"offset":7,"timestamp":null,"key":null,"key_base64":"AP8="}
 *
 * Returns 0, or -1 with err filled when memory runs out or the cap is passed. */
int decode_meta_json(struct textbuf *tb, const char *topic, int32_t partition, int64_t offset, bool has_timestamp,
		     int64_t timestamp_ms, const char *key, size_t keylen, char *err, size_t errlen);

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
