/* KAFKA.INPUT.META: a message's metadata as one JSON object.
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
 * Last comes "headers", an object of the message's headers, {} when it has
 * none: each name once, in the order of its first header, its value a JSON
 * string when it is UTF-8 text without NUL bytes, {"base64":"..."} when it
 * is not, null for a header without a value, and an array of those, in the
 * message's order, when the name repeats:
 *
 *   "headers":{"trace":"a1","bin":{"base64":"AP8="},"tag":["x","y"],"none":null}
 *
 * A message with more than DECODE_HEADERS_MAX headers, or whose header name is
 * not UTF-8 text, is a data error.
 */
#ifndef SS_WORKER_DECODE_META_H
#define SS_WORKER_DECODE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "row.h"
#include "textbuf.h"

/* The most headers META takes from one message (a caller passing more gets
 * the data error); the JSON's size is bounded by tb's cap. */
#define DECODE_HEADERS_MAX 1000

/* Writes the object to tb (emptied first).  Returns 0, or -1 with err filled
 * when memory runs out, tb's cap is passed, or the headers are refused. */
int decode_meta_json(struct textbuf *tb, const char *topic, int32_t partition, int64_t offset, bool has_timestamp,
		     int64_t timestamp_ms, const char *key, size_t keylen, const struct decode_header *headers,
		     size_t nheaders, char *err, size_t errlen);

#endif
