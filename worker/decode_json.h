/* FORMAT json: a validating RFC 8259 scanner, no per-field allocation.
 *
 * Whole mode (js_input_json_whole(): one column of TYPE json or jsonb): the
 * message must be exactly one JSON value (whitespace around it allowed); its
 * text goes into the column unchanged.
 *
 * Fields mode: the message must be a JSON object; each COLUMN receives the
 * top-level member of the same name (case-sensitive):
 *   string          its unescaped text (\uXXXX and surrogate pairs decoded;
 *                   \u0000 is an error, PostgreSQL text cannot hold it)
 *   number          its text as written (big integers and decimals kept exactly)
 *   true / false    "true" / "false"
 *   object / array  its JSON text as written
 *   null, absent    NULL
 * A column of TYPE json or jsonb receives the member's JSON text whatever its
 * type (a string with its quotes), NULL for null or absent.  When a name
 * occurs twice the last one wins, as in PostgreSQL's jsonb.
 *
 * Errors say what is wrong and at which byte of the message: invalid UTF-8,
 * invalid escapes, unpaired surrogates, control characters in strings, bad
 * numbers, truncation, trailing data, nesting deeper than JSON_DEPTH_MAX.
 */
#ifndef SS_WORKER_DECODE_JSON_H
#define SS_WORKER_DECODE_JSON_H

#include <stddef.h>

#include "jobspec.h"
#include "row.h"

/* Objects and arrays nest at most this deep (the top level is 1). */
#define JSON_DEPTH_MAX 64

struct json_decoder;

/* Returns NULL with err filled on bad options (no columns, a column name
 * given twice in fields mode). */
struct json_decoder *json_decoder_new(const struct js_input *in, char *err, size_t errlen);
void json_decoder_free(struct json_decoder *jd);

/* Decodes one message into *row, valid until the next call and while buf lives. */
int json_decoder_decode(struct json_decoder *jd, const char *buf, size_t len, struct decode_row *row, char *err,
			size_t errlen);

/* Checks that buf is exactly one JSON value (surrounding whitespace allowed).
 * Returns 0, or -1 with err naming the problem and its byte offset. */
int json_validate(const char *buf, size_t len, char *err, size_t errlen);

#endif
