/* What every decoder produces and every consumer of rows reads: a row of
 * fields, the Kafka message they come from, and the limits that bound a
 * decoder's memory.  Types only (no .c), the bottom of the decoding layer:
 * decode_text, decode_json, decode_pb, copybuf and decode include it, it
 * includes nothing of theirs.
 */
#ifndef SS_WORKER_ROW_H
#define SS_WORKER_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest message a decoder accepts; bounds its scratch space. */
#define DECODE_MESSAGE_MAX ((size_t)64 * 1024 * 1024)
/* Largest text a decoder makes from one message when it is not a part of the
 * message (protobuf renders numbers, JSON, hex). */
#define DECODE_ROW_MAX ((size_t)64 * 1024 * 1024)

/* What a decoder returns besides 0 and -1 (bad data): the message is not at
 * fault, a service it needs is (a schema registry).  RETRY: unreachable,
 * try again later without advancing; FATAL: the job's settings are wrong. */
#define DECODE_RETRY (-2)
#define DECODE_FATAL (-3)

struct decode_field {
	const char *ptr; /* not NUL-terminated; NULL when is_null */
	size_t len;
	bool is_null;
};

/* A decoded row.  The field array belongs to whoever filled the row (a
 * decoder reuses it on its next call); the fields point into the message or
 * into that decoder's scratch space. */
struct decode_row {
	const struct decode_field *fields;
	size_t nfields;
};

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

#endif
