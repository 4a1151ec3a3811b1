/* Message decoders: one per input, by its FORMAT, and the row decoder that
 * assembles a job's COPY row from a message's KEY, VALUE and META.
 *
 * A decoder turns one Kafka message key or value (const char *buf, size_t
 * len, no NUL terminator assumed) into a row of fields, one per COLUMN of its
 * input.  The format is chosen per input (KEY and VALUE may differ):
 * delimited and CSV in decode_text.h, json in decode_json.h, protobuf in
 * decode_pb.h; this file only dispatches.  The row's field array and its
 * scratch space belong to the decoder and are reused by the next call: a
 * decoded row is valid until the next decoder_decode() on the same decoder
 * and as long as buf is alive (fields without quotes or escapes point into
 * buf).  Nothing is allocated per field.
 *
 * Errors: decoder_new() fails only on bad options (a configuration problem);
 * decoder_decode() fails on bad data.  Both fill err with a message that says
 * what is wrong and where (field number, byte offset in the message).  The
 * caller adds topic/partition/offset.
 */
#ifndef SS_WORKER_DECODE_H
#define SS_WORKER_DECODE_H

#include <stddef.h>

#include "jobspec.h"
#include "row.h"

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

/* A whole job's input: KEY, VALUE and META of a message become one COPY row
 * in a FIXED order, the contract with sink_pg (its staging table):
 *   KEY columns in order, then VALUE columns in order, then the META column.
 * KEY is decoded from the message key with KEY's own FORMAT and options; a
 * message without a key gives NULL in every KEY column.  VALUE is decoded from
 * the message value; without VALUE in the job the value is ignored.  With
 * VALUE a message without a value (a tombstone) is skipped
 * (ROW_DECODER_SKIP), unless the job deletes on tombstones (OUTPUT.
 * DELETE_ON_TOMBSTONE in UPDATE or MERGE): then a tombstone with a key is a
 * row with NULL VALUE columns, and every row ends with one more field, the
 * sink's tombstone column: t for a tombstone, f for a message with a value
 * (sqlgen.h).  META is the JSON object of decode_meta_json() (decode_meta.h). */
struct row_decoder;

/* Builds the decoders of spec->key and spec->value (those present); copies
 * what it needs, spec may go afterwards.  Returns NULL with err filled
 * ("KAFKA.INPUT.KEY: ...") on a configuration problem. */
struct row_decoder *row_decoder_new(const struct jobspec *spec, char *err, size_t errlen);
void row_decoder_free(struct row_decoder *rd);

/* Number of columns in a row: KEY + VALUE + (1 with META) + (1 deleting on
 * tombstones). */
size_t row_decoder_ncolumns(const struct row_decoder *rd);

/* Decodes one message into *row, valid until the next call and while the
 * message's key and value live.  Returns 0, ROW_DECODER_SKIP for a tombstone
 * the job skips (no row), or -1 with err filled (a data error, prefixed with
 * "KEY: ", "VALUE: " or "META: "). */
#define ROW_DECODER_SKIP 1
int row_decoder_decode(struct row_decoder *rd, const struct decode_msg *m, struct decode_row *row, char *err,
		       size_t errlen);

#endif
