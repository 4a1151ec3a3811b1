/* FORMAT avro: Avro binary records, fields to columns by name.
 *
 * The writer's schema is AVRO_OPTION.SCHEMA_FILE or SCHEMA for every message
 * (unframed Avro), or, with SCHEMA_REGISTRY_ADDR, the schema of the id in
 * each message's frame (registry.h), fetched once per id: a topic whose
 * schema evolved decodes each message with the schema it was written with,
 * and a column whose field an older schema lacks is NULL.
 *
 * Like FORMAT json: a single column of TYPE json or jsonb receives the whole
 * record as JSON; otherwise each column receives the top-level field of its
 * NAME.  What a column receives:
 *   null                  NULL (also a union's null branch)
 *   boolean, int, long    true/false, decimal text
 *   float, double         shortest text that reads back the same; NaN, Infinity
 *   string, uuid          the text (valid UTF-8 without NUL)
 *   bytes, fixed          PostgreSQL bytea hex (\x0a1b...), or base64 with
 *                         BYTES_TO_BASE64
 *   enum                  the symbol
 *   union                 its branch's value
 *   decimal               exact decimal text with the schema's scale (-12.340)
 *   date                  2024-01-31;  time-millis/micros 13:45:00.123
 *   timestamp-millis/micros  2024-01-31T13:45:00.123+00:00 (timestamptz text);
 *                         local-timestamp-* the same without the offset
 *   duration              "M months D days N milliseconds" (interval text)
 *   record, array, map    JSON: objects by field name, arrays, objects; inside
 *                         JSON numbers stay numbers (decimals exact), the
 *                         texts above become JSON strings, unions their value
 * A column of TYPE json or jsonb receives any field as a JSON value.
 *
 * Data errors (truncated data, an out-of-range union or enum index, invalid
 * UTF-8, bytes left after the record, nesting deeper than AVRO_DEPTH_MAX, a
 * message without a frame, an id the registry does not know) name the byte
 * offset or the id.  An unreachable registry is not the message's fault:
 * avro_decoder_decode returns DECODE_RETRY.
 */
#ifndef SS_WORKER_DECODE_AVRO_H
#define SS_WORKER_DECODE_AVRO_H

#include <stddef.h>

#include "jobspec.h"
#include "row.h"

struct avro_decoder;

/* Loads the local schema, or prepares the registry client; maps the columns
 * (with a local schema, a column naming no field is a configuration error).
 * Returns NULL with err filled. */
struct avro_decoder *avro_decoder_new(const struct js_input *in, char *err, size_t errlen);
void avro_decoder_free(struct avro_decoder *ad);

/* Decodes one message into *row, valid until the next call.  Returns 0, -1
 * (bad data: err says why), DECODE_RETRY (the registry could not be reached:
 * the message is not at fault) or DECODE_FATAL (the registry refused the
 * job's credentials). */
int avro_decoder_decode(struct avro_decoder *ad, const char *buf, size_t len, struct decode_row *row, char *err,
			size_t errlen);

#endif
