/* The PostgreSQL side of a worker: one connection, the target table, the
 * session's staging table and the progress table.
 *
 * A batch is one transaction: the rows are COPYed into the TEMP table
 * streamserver_stage (the KEY columns, the VALUE columns, then the META
 * column, each with its type), written to the target by the statements of
 * OUTPUT.MODE, and the next offset of every partition in the batch is upserted
 * into <METADATA.SCHEMA or OUTPUT.SCHEMA>.streamserver_progress in the same
 * transaction.  So the offsets stored there are exactly what the target holds,
 * and a restarted worker resumes from them without duplicates.
 *
 * The statements of each mode are sqlgen.h's; the target table and the column
 * plan catalog.h's; the progress and error tables progress.h's; the
 * connection and the classes of errors pg.h's.  What stays here: opening and
 * closing, COPY, splitting a batch around rows the database rejects, and the
 * batch's transaction.
 *
 * Setting STREAMWORKER_LEGACY_UPSERT=1 in the environment makes the worker use
 * the statements for servers without ON CONFLICT (for tests of that path).
 *
 * Rejected messages go to the error table streamserver_errors (proto.h), next
 * to the progress table, created (IF NOT EXISTS) when the sink opens.
 *
 * Every function returning int returns WERR_OK or a negative enum werr and
 * fills err (never with the password or a connection string).
 */
#ifndef SS_WORKER_SINK_PG_H
#define SS_WORKER_SINK_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobspec.h"
#include "wtypes.h"

/* How long the server lets a worker's transaction sit idle (sink_pg_open). */
#define SINK_IDLE_TX_TIMEOUT "10s"

struct sink_pg;

/* Connects, resolves the target table and the staging column types, checks
 * that every mapped column exists and, for UPDATE and MERGE, that
 * MATCH_COLUMNS are the target's primary key or a unique index; creates the
 * progress table (not with CONSISTENCY none) and
 * the error table if needed and the staging table; prepares the statements.
 * spec and job_name must outlive the sink.  On success *out is the caller's
 * (sink_pg_close). */
int sink_pg_open(const struct jobspec *spec, const char *job_name, struct sink_pg **out, char *err,
		 size_t errlen);

/* Reads the stored next offsets of topic for this job: next_offsets[i] is set
 * for partitions[i], or to -1 when there is no row.  With EXACTLY these are
 * also the values the next batch's progress update expects to replace. */
int sink_pg_progress_get(struct sink_pg *sk, const char *topic, const int32_t *partitions, size_t n,
			 int64_t *next_offsets, char *err, size_t errlen);

/* One message of a batch.  A message that could not be decoded has error
 * set and no COPY line; the others have their COPY line at
 * copy_data[copy_off .. copy_off + copy_len).  key and value are the raw
 * message bytes (NULL: absent), written to the error table when the message is
 * rejected.  All pointers are the caller's and must live through the call. */
struct sink_msg {
	int32_t partition;
	int64_t offset;
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
	size_t copy_off, copy_len;
	const char *error; /* decode error, or NULL */
	bool skip;	   /* no row and no error: a tombstone the job skips */
};

/* One batch: its messages in consumption order (UPDATE and MERGE rely on it:
 * the later row of one key wins), their COPY text rows (KEY columns, VALUE
 * columns, then META), and one progress entry per partition of the batch.
 * A batch is one transaction; it is written in segments of seg_rows
 * messages (COMMIT.MAX_ROW; 0: one segment), each its own COPY and write,
 * in order, so that MAX_ROW bounds every write while several ready
 * segments share one transaction (one progress update, one COMMIT). */
struct sink_batch {
	const char *topic;
	const char *copy_data;
	size_t copy_len;
	const struct sink_msg *msgs;
	size_t nmsgs;
	size_t seg_rows;
	const struct part_offset *progress;
	size_t nprogress;
};

struct sink_batch_result {
	int64_t rows;     /* target rows written (INSERT: inserted; UPDATE: updated; MERGE: both) */
	int64_t updated;  /* of rows, existing rows updated (UPDATE: all; MERGE: matched keys) */
	int64_t deleted;  /* target rows deleted by tombstones (DELETE_ON_TOMBSTONE), not in rows */
	int64_t rejected; /* messages written to the error table */
	char first_error[512]; /* the first rejected message's error, "" if none */
};

/* Writes one batch.  Rows the database rejects for their data (SQLSTATE
 * classes 22 and 23) are isolated by splitting the batch inside its
 * transaction (a SAVEPOINT per part; a part that fails is halved until single
 * rows remain) and go to <METADATA.SCHEMA or OUTPUT.SCHEMA>.streamserver_errors
 * (proto.h) with the decode errors; every other row is written.  The progress
 * covers the whole batch, by COMMIT.CONSISTENCY:
 *   EXACTLY  rows and progress in one transaction; the progress update is a
 *            compare-and-set against the offsets this sink last read or wrote,
 *            so a second worker of the same job cannot commit the same
 *            messages: a miss rolls everything back (WERR_FENCED, "partition N
 *            was advanced by another task ...").
 *   ATLEAST  rows and progress in one transaction, unfenced.
 *   at-most  the progress in a transaction of its own, committed before the
 *            rows are written: a crash in between loses the batch.
 *   none     no progress table.
 * A deadlock or serialization failure (pg_retry_batch) is no data error: the
 * transaction is rolled back and the batch written again, up to 5 times after
 * a short jittered pause, before it is returned (WERR_RETRY).
 * On failure nothing of the batch's transaction is written. */
int sink_pg_write_batch(struct sink_pg *sk, const struct sink_batch *b, struct sink_batch_result *res, char *err,
			size_t errlen);

void sink_pg_close(struct sink_pg *sk);

#endif
