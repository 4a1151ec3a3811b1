/* The PostgreSQL side of a worker: one connection, the target table, the
 * session's staging table and the progress table.
 *
 * A batch is one transaction: the rows are COPYed into the TEMP table
 * streamserver_stage (the VALUE columns, with their types), moved into the
 * target with INSERT ... SELECT <MAPPING expressions>, and the next offset of
 * every partition in the batch is upserted into
 * <METADATA.SCHEMA or OUTPUT.SCHEMA>.streamserver_progress in the same
 * transaction.  So the offsets stored there are exactly what the target holds,
 * and a restarted worker resumes from them without duplicates.
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

/* Connects, resolves the target table and the staging column types, creates
 * the progress table if needed and the staging table.  spec and job_name must
 * outlive the sink.  On success *out is the caller's (sink_pg_close). */
int sink_pg_open(const struct jobspec *spec, const char *job_name, struct sink_pg **out, char *err,
		 size_t errlen);

/* Reads the stored next offsets of topic for this job: next_offsets[i] is set
 * for partitions[i], or to -1 when there is no row. */
int sink_pg_progress_get(struct sink_pg *sk, const char *topic, const int32_t *partitions, size_t n,
			 int64_t *next_offsets, char *err, size_t errlen);

/* Writes one batch in one transaction: copy_data holds COPY text rows in the
 * order of the VALUE columns; progress has one entry per partition in the
 * batch.  On success *rows is the number of rows inserted into the target.
 * On failure nothing of the batch is written; bad says which row failed when
 * PostgreSQL said so. */
int sink_pg_write_batch(struct sink_pg *sk, const char *topic, const char *copy_data, size_t copy_len,
			const struct part_offset *progress, size_t nprogress, int64_t *rows,
			struct sink_batch_error *bad, char *err, size_t errlen);

void sink_pg_close(struct sink_pg *sk);

#endif
