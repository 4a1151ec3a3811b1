/* The worker -> controller status protocol.
 *
 * The worker writes one JSON object per line on WORKER_STATUS_FD:
 *   {"type":"ready"}                              connected to Kafka and PostgreSQL
 *   {"type":"batch","messages":N,"rows":N,"updated":N,"rejected":N,"duration_ms":N}
 *                                                 one batch committed (counts are
 *                                                 for that batch, not totals):
 *                                                 rows = target rows written
 *                                                 (inserted + updated), updated =
 *                                                 of those, existing rows changed
 *                                                 (UPDATE: all; MERGE: the keys
 *                                                 that existed; INSERT: 0);
 *                                                 duration_ms = from the batch's
 *                                                 flush to its commit; with
 *                                                 "deleted":N (rows deleted by
 *                                                 tombstones) and
 *                                                 "tombstones_skipped":N
 *                                                 (tombstones without a row)
 *                                                 when not 0
 *   {"type":"lag","total":N,"partitions":[[P,LAG],...]}
 *                                                 the consumer lag per assigned
 *                                                 partition (high watermark -
 *                                                 next offset to read), sent after
 *                                                 the first batch and then at most
 *                                                 every PROTO_LAG_INTERVAL_MS while
 *                                                 running, also when idle; LAG -1:
 *                                                 not known yet. At most
 *                                                 PROTO_LAG_MAX partitions are
 *                                                 listed; total covers all known.
 *   {"type":"assign","partitions":[P,...]}
 *                                                 the partitions this task owns
 *                                                 now: sent after "ready" and
 *                                                 again each time its assignment
 *                                                 changes (a rebalance, or the
 *                                                 static division of PARTITIONS);
 *                                                 [] = a standby that owns
 *                                                 nothing.  "lag" lines list only
 *                                                 these partitions.  At most
 *                                                 PROTO_LAG_MAX are listed.  Until
 *                                                 a task sends one, the controller
 *                                                 shows no partitions for it.
 *   {"type":"error","class":"retriable|data|fatal","message":"..."}
 *                                                 why the worker is about to exit
 * Lines are at most PROTO_LINE_MAX bytes.  EOF means the worker is gone.
 *
 * The controller writes the job to the worker's standard input, then closes it:
 *   {"job_id":N,"job_name":"...","config":"<YAML of jobspec_to_yaml>",
 *    "messages_before":N,"rejected_before":N,"task":I,"tasks":N}
 * messages_before / rejected_before: messages consumed and rows rejected since
 * the user last started the job, before this worker (ERROR_LIMIT counts from
 * the user's start, across restarts).  Absent = 0.
 * task / tasks: this worker is task I (0-based) of the job's N tasks (TASKS).
 * Without PARTITIONS every task joins the job's consumer group (group.id from
 * PROPERTIES, else "streamserver-<job name>") with group.instance.id
 * "<group id>-task-<I>"; with PARTITIONS task I owns the listed partitions at
 * sorted positions p where p % N == I.  Absent = task 0 of 1.
 *
 * Check mode (`streamworker --check`, the API's validate and dry run): the same
 * input (plus "kafka": false to leave the brokers out); the worker asks the
 * brokers about the topic (they answer within 5 s, the topic exists, every
 * PARTITIONS entry exists), connects to the database, checks the target table, every
 * mapped column and its type, the privileges the job needs, and for UPDATE and
 * MERGE that MATCH_COLUMNS are the primary key or a unique index; it changes
 * nothing (temporary objects only, rolled back).  It prints one JSON object on
 * standard output:
 *   {"valid": true|false,
 *    "errors": [{"field": "KAFKA.OUTPUT.MATCH_COLUMNS", "code": "not_unique", "message": "..."}],
 *    "statements": ["CREATE TEMP TABLE ...", "COPY ...", "INSERT ...", ...],
 *    "kafka": {"partitions": 4, "partitions_read": 4}}
 * ("field" is a YAML path, or null; "code" is one of no_table, no_column,
 * type_mismatch, privilege, not_unique, bad_expression, unreachable (the
 * database), kafka_unreachable, no_topic, no_partition, other; "kafka" is
 * there when the brokers answered: the topic's partition count and how many
 * of them the job reads)
 * and exits 0 when valid, WORKER_EXIT_CONFIG
 * when it found problems, WORKER_EXIT_RETRY when it could not check (database
 * unreachable: errors[0] says why).  Nothing is written on WORKER_STATUS_FD.
 *
 * Tool modes, same input, same exit codes, one JSON object on stdout:
 *   streamworker --offsets   per partition of the job's topic (or PARTITIONS):
 *     {"partitions": [{"partition": 0, "stored_offset": 120 | null,
 *       "low_watermark": 0, "high_watermark": 150, "lag": 30 | null}],
 *      "total_lag": 30}
 *     stored_offset is the progress table's next_offset (null: no row, the
 *     job would start at FALLBACK_OFFSET); lag = high_watermark - stored.
 *   streamworker --reset     input also has "reset": {"to": "earliest" |
 *     "latest" | "timestamp" | "offsets", "timestamp": <ms since epoch>,
 *     "offsets": [{"partition": 0, "offset": 42}]}; writes the progress rows
 *     (and the Kafka group's committed offsets) in one transaction:
 *     {"partitions": [{"partition": 0, "offset": 42}]}
 *     "timestamp": per partition the first offset whose message timestamp is
 *     >= it (librdkafka offsetsForTimes), or the end when there is none.
 *   streamworker --errors    input also has "page", "page_size": a page of the
 *     job's rows in the error table, newest first:
 *     {"items": [{"id", "topic", "partition", "offset", "key", "key_base64",
 *       "value", "value_base64", "error", "created_at"}], "total": N}
 *     key/value: the text when it is valid UTF-8, else null and *_base64 set.
 *
 * The error table, <METADATA.SCHEMA or OUTPUT.SCHEMA>.streamserver_errors:
 *   id bigserial primary key, job_name text not null, topic text not null,
 *   partition int not null, "offset" bigint not null, key bytea, value bytea,
 *   error text not null, created_at timestamptz not null default now()
 */
#ifndef SS_PROTO_H
#define SS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_LINE_MAX 16384
#define PROTO_LAG_MAX 512
#define PROTO_LAG_INTERVAL_MS 2000

enum proto_type {
	PROTO_UNKNOWN = 0,
	PROTO_READY,
	PROTO_BATCH,
	PROTO_ERROR,
	PROTO_LAG,
	PROTO_ASSIGN,
};

struct proto_batch {
	int64_t messages, rows, updated, rejected, duration_ms;
	int64_t deleted, tombstones_skipped; /* sent only when not 0 */
};

struct proto_lag {
	int32_t partition;
	int64_t lag; /* -1: not known */
};

struct proto_msg {
	enum proto_type type;
	int64_t messages;
	int64_t rows;
	int64_t rejected;
	int64_t updated;
	int64_t deleted;            /* PROTO_BATCH, 0 when absent */
	int64_t tombstones_skipped; /* PROTO_BATCH, 0 when absent */
	int64_t duration_ms;
	int64_t lag_total;              /* PROTO_LAG */
	size_t nlag;                    /* PROTO_LAG: entries in lag */
	struct proto_lag lag[PROTO_LAG_MAX];
	size_t nparts;                  /* PROTO_ASSIGN: entries in parts */
	int32_t parts[PROTO_LAG_MAX];   /* PROTO_ASSIGN: the partitions owned now */
	char err_class[16];
	char message[PROTO_LINE_MAX];
};

/* Worker side.  Each returns 0, or -1 if the controller is gone (EPIPE). */
int proto_send_ready(int fd);
int proto_send_batch(int fd, const struct proto_batch *b);
/* parts[0..n): every assigned partition; lag -1 where unknown. */
int proto_send_lag(int fd, const struct proto_lag *parts, size_t n);
/* parts[0..n): every partition the task owns now (n == 0: a standby); at
 * most PROTO_LAG_MAX are sent. */
int proto_send_assign(int fd, const int32_t *parts, size_t n);
/* message is sent with the registered secrets masked (common/secret.h). */
int proto_send_error(int fd, const char *err_class, const char *message);

/* Controller side: parses one line (without its newline).  Returns 0, or -1 if
 * the line is not a status message (msg->type is then PROTO_UNKNOWN). */
int proto_parse_line(const char *line, size_t len, struct proto_msg *msg);

#endif
