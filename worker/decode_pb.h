/* FORMAT protobuf: one message type of a FileDescriptorSet, fields to columns
 * by name.
 *
 * PROTOBUF_OPTION gives the descriptor set (DESCRIPTOR_FILE, read once when
 * the decoder is built, a relative path from the worker's working directory;
 * or DESCRIPTOR, the same bytes in base64) and MESSAGE, the full name of the
 * type.  Each COLUMN takes the field of its NAME (or else
 * of that json_name).
 *
 * What a column receives:
 *   integers       decimal text (int32 negative as 10-byte varint, sint zigzag, fixed, sfixed)
 *   float, double  shortest text that reads back to the same value; NaN,
 *                  Infinity, -Infinity as PostgreSQL spells them
 *   bool           true / false
 *   string         the text (must be valid UTF-8 without NUL)
 *   bytes          PostgreSQL bytea hex text: \x0a1b...
 *   enum           the value's name, or its number when the descriptor has no such value
 *   message, repeated field, map
 *                  JSON text: messages as objects keyed by field name, repeated
 *                  fields as arrays, maps as objects; 64-bit integers as JSON
 *                  numbers in full precision, bytes as base64 strings, enums as
 *                  names, NaN/Infinity as strings (protobuf's JSON mapping);
 *                  inside JSON, absent fields with presence are left out and
 *                  absent fields without presence show their default
 * A column of TYPE json or jsonb receives any field as a JSON value (a string
 * field as a JSON string).
 *
 * google.protobuf's well-known types (pbdesc.h's enum pb_wkt, by full name)
 * are plain values, as a column and inside JSON alike:
 *   Timestamp      "2024-01-02T03:04:05.120Z" (timestamptz; pbwkt.h)
 *   Duration       "-1.500s" (interval)
 *   the wrappers   their scalar as above (NULL / left out when absent, the
 *                  default when present without a value)
 *   Struct, Value, ListValue
 *                  JSON (a column of any TYPE gets JSON text)
 *   Any            {"@type": url, <fields>} for a type of the set (named after
 *                  the URL's last '/'), {"@type": url, "value": <JSON value>}
 *                  for a well-known type, else {"@type": url, "value": base64}
 * A Timestamp or Duration out of protobuf's range is a data error.
 *
 * An absent field is NULL when it has presence (proto2 optional/required,
 * proto3 `optional`, message fields, oneof members), else its default (0, "",
 * false, the enum's first value, "[]" / "{}" for repeated fields and maps).
 * The last occurrence of a singular scalar wins; occurrences of a singular
 * message field are merged, as protobuf does.  Unknown fields, fields of
 * unmapped numbers and fields with an unexpected wire type are skipped; only
 * what columns need is decoded below the top level.
 *
 * Data errors (truncated or malformed data, invalid UTF-8, nesting deeper than
 * PB_DEPTH_MAX, a row over DECODE_ROW_MAX) name the byte offset in the message.
 */
#ifndef SS_WORKER_DECODE_PB_H
#define SS_WORKER_DECODE_PB_H

#include <stddef.h>
#include <stdint.h>

#include "jobspec.h"
#include "row.h"

/* Messages nest at most this deep. */
#define PB_DEPTH_MAX 64
/* Largest descriptor set accepted. */
#define PB_DESCRIPTOR_MAX ((size_t)64 * 1024 * 1024)

struct pb_decoder;

/* Loads the descriptor set and maps the columns.  Returns NULL with err filled
 * (a configuration problem: unreadable file, bad base64, no such message or
 * field). */
struct pb_decoder *pb_decoder_new(const struct js_input *in, char *err, size_t errlen);
void pb_decoder_free(struct pb_decoder *pd);

/* The same from a descriptor set in memory (a registry's schema compiled by
 * pbproto.h) and the full name of the message; in gives the columns. */
struct pb_decoder *pb_decoder_new_from_set(const uint8_t *set, size_t len, const char *message,
					   const struct js_input *in, char *err, size_t errlen);

/* Decodes one message into *row, valid until the next call and while buf lives. */
int pb_decoder_decode(struct pb_decoder *pd, const char *buf, size_t len, struct decode_row *row, char *err,
		      size_t errlen);

#endif
