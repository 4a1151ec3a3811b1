/* A schema registry client (Confluent's REST API, which Apicurio, Karapace
 * and Redpanda serve too) and the wire framing of its serializers.
 *
 * Framing: a message written by a registry-aware serializer is a zero byte,
 * the schema id as 4 bytes big-endian, then the body; a Protobuf body is
 * preceded by its message indexes (a zig-zag varint count, then that many
 * zig-zag varint indexes; a count of 0 means the first message, [0]).
 *
 * The client fetches GET {base}/schemas/ids/{id} over HTTP(S) with libcurl
 * and keeps each answer for the worker's life: an id is fetched once however
 * many messages name it (schemas under an id never change).  Several base
 * URLs are tried in turn.  TLS is checked against the system's CAs.  Basic
 * auth credentials go to libcurl only, never into a message or a log line.
 *
 * Errors are classified where they arise:
 *   REGISTRY_RETRY  no registry answered, or each answered 5xx / 429 / a
 *                   garbled body: may go away by itself; the message is not
 *                   at fault (the worker stops without advancing, and retries)
 *   REGISTRY_DATA   a registry says the id does not exist (404 with error
 *                   code 40403; 40401/40402 for a subject): the message is
 *                   bad and goes to the error table
 *   REGISTRY_FATAL  401/403, a 404 without a registry error code (a wrong
 *                   base URL), other 4xx: the job's settings are wrong
 *
 * Ownership: registry_new's strings are copied; a schema returned by
 * registry_schema_get belongs to the client and lives until registry_free.
 */
#ifndef SS_WORKER_REGISTRY_H
#define SS_WORKER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REGISTRY_OK 0
#define REGISTRY_RETRY (-1)
#define REGISTRY_DATA (-2)
#define REGISTRY_FATAL (-3)

/* Largest registry answer read. */
#define REGISTRY_BODY_MAX ((size_t)8 * 1024 * 1024)
/* Schema ids kept, at most; beyond it the client refuses new ids (a topic with
 * this many schemas is not what a worker is for). */
#define REGISTRY_CACHE_MAX 4096
#define REGISTRY_ADDRS_MAX 16
#define REGISTRY_FRAME_HEADER 5

enum registry_schema_type { REGISTRY_AVRO, REGISTRY_PROTOBUF, REGISTRY_JSON };

struct registry_schema {
	uint32_t id;
	enum registry_schema_type type;
	char *text; /* the schema: Avro JSON, .proto text, JSON Schema */
	size_t len;
	int version; /* registry_latest only; 0 otherwise */
};

struct registry;

/* addrs: "url[,url...]" (the job's SCHEMA_REGISTRY_ADDR); user and password
 * may be NULL (no authentication).  Returns NULL with err filled on a bad
 * address list or out of memory. */
struct registry *registry_new(const char *addrs, const char *user, const char *password, char *err,
			      size_t errlen);
void registry_free(struct registry *r);

/* How long to keep trying before REGISTRY_RETRY, and the pause between
 * rounds over the addresses (tests shorten them).  Defaults: 3 rounds, 1 s
 * apart, doubling. */
void registry_set_retry(struct registry *r, int rounds, int pause_ms);

/* The schema of that id, from the cache or the registry.  Returns
 * REGISTRY_OK and sets *out (the client's), or a negative class with err
 * filled (naming the id and the registry, never the credentials). */
int registry_schema_get(struct registry *r, uint32_t id, const struct registry_schema **out, char *err,
			size_t errlen);

/* The latest version under a subject ("orders-value"), fetched each time
 * (check mode).  *out is the caller's: registry_schema_free. */
int registry_latest(struct registry *r, const char *subject, struct registry_schema **out, char *err,
		    size_t errlen);
void registry_schema_free(struct registry_schema *s);

/* Splits a framed message: *id, and the body after the 5-byte header.
 * Returns 0, or -1 with err saying why it is not framed. */
int registry_frame_parse(const char *buf, size_t len, uint32_t *id, const char **body, size_t *body_len,
			 char *err, size_t errlen);

/* Reads a Protobuf body's message indexes at *pos (after the header):
 * fills idx[0..*n) (at most max), advances *pos.  A count of 0 gives n = 1,
 * idx[0] = 0.  Returns 0, or -1 with err filled (truncated, negative,
 * more than max). */
int registry_pb_indexes(const char *buf, size_t len, size_t *pos, int32_t *idx, size_t max, size_t *n,
			char *err, size_t errlen);

#endif
