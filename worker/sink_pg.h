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
 * The statements of each mode (MAPPING expressions are the user's SQL over the
 * staging columns; every identifier is quoted):
 *   INSERT  INSERT INTO target (cols) SELECT <MAPPING> FROM streamserver_stage
 *   UPDATE  UPDATE target SET <UPDATE_COLUMNS> FROM (<dedup>) d WHERE <MATCH_COLUMNS equal>
 *   MERGE   INSERT INTO target (cols) SELECT ... FROM (<dedup>) d
 *             ON CONFLICT (<MATCH_COLUMNS>) DO UPDATE SET u = EXCLUDED.u (or DO NOTHING)
 *           and, on servers without ON CONFLICT (before PostgreSQL 9.5, e.g.
 *           Greenplum 6): the UPDATE above, then INSERT ... WHERE NOT EXISTS.
 * <dedup> keeps one row per MATCH_COLUMNS value: the largest ORDER_COLUMNS
 * (descending, NULLs last), then the latest message (the staging table's
 * streamserver_seq, filled in COPY order).  In UPDATE and MERGE the MAPPING
 * values are cast to the target column's type (without its length or
 * precision, which the write itself checks), so rows compare as the unique
 * index compares them.
 *
 * Setting STREAMWORKER_LEGACY_UPSERT=1 in the environment makes the worker use
 * the statements for servers without ON CONFLICT (for tests of that path).
 *
 * Every function returning int returns WERR_OK or a negative enum werr and
 * fills err (never with the password or a connection string).
 */
#ifndef SS_WORKER_SINK_PG_H
#define SS_WORKER_SINK_PG_H

#include <stddef.h>
#include <stdint.h>

#include "jobspec.h"
#include "wtypes.h"

struct sink_pg;

/* How a failed batch failed, for the caller's error message. */
struct sink_batch_error {
	/* 1-based row of the batch that PostgreSQL rejected while loading it,
	 * 0 when the failure is not tied to one row (e.g. in INSERT ... SELECT). */
	size_t row;
	char sqlstate[6];
};

/* Connects, resolves the target table and the staging column types, checks
 * that every mapped column exists and, for UPDATE and MERGE, that
 * MATCH_COLUMNS are the target's primary key or a unique index; creates the
 * progress table if needed and the staging table; prepares the statements.
 * spec and job_name must outlive the sink.  On success *out is the caller's
 * (sink_pg_close). */
int sink_pg_open(const struct jobspec *spec, const char *job_name, struct sink_pg **out, char *err,
		 size_t errlen);

/* Reads the stored next offsets of topic for this job: next_offsets[i] is set
 * for partitions[i], or to -1 when there is no row. */
int sink_pg_progress_get(struct sink_pg *sk, const char *topic, const int32_t *partitions, size_t n,
			 int64_t *next_offsets, char *err, size_t errlen);

/* Writes one batch in one transaction: copy_data holds COPY text rows with
 * the KEY columns, the VALUE columns, then the META column, in consumption
 * order (UPDATE and MERGE rely on it: the later row of one key wins); progress
 * has one entry per partition in the batch.  On success *rows is the number of
 * target rows written (INSERT: inserted; UPDATE: updated; MERGE: updated +
 * inserted).  On failure nothing of the batch is written; bad says which row
 * failed when PostgreSQL said so. */
int sink_pg_write_batch(struct sink_pg *sk, const char *topic, const char *copy_data, size_t copy_len,
			const struct part_offset *progress, size_t nprogress, int64_t *rows,
			struct sink_batch_error *bad, char *err, size_t errlen);

void sink_pg_close(struct sink_pg *sk);

/* Check mode (proto.h): what the worker would find wrong, all at once. */
struct sink_check_ops {
	/* One problem.  field is a YAML path or NULL; code is one of proto.h's
	 * (no_table, no_column, type_mismatch, privilege, not_unique,
	 * bad_expression, unreachable, other).  The strings are the caller's to
	 * copy. */
	void (*problem)(void *ctx, const char *field, const char *code, const char *message);
	/* One statement of the job, in the order it runs. */
	void (*statement)(void *ctx, const char *sql);
	void *ctx;
};

/* Connects as the job would, checks the target table, every mapped column and
 * its type (by preparing what the job runs against a staging table created in
 * a transaction that is rolled back), the privileges the job needs and, for
 * UPDATE and MERGE, the unique key; reports every problem and the statements
 * through ops.  Changes nothing.  Returns WERR_OK when the check ran (problems
 * or not), WERR_RETRY when the database could not be reached (reported as a
 * problem with code "unreachable"), WERR_FATAL when the connection was
 * refused for a reason a retry cannot fix (reported too). */
int sink_pg_check(const struct jobspec *spec, const char *job_name, const struct sink_check_ops *ops);

#endif
