/* The worker's two tables beside the target, and the contract of the first:
 *
 *   <schema>.streamserver_progress (job_name, topic, partition, next_offset,
 *     updated_at): the next offset to read of every partition a job has
 *     written.  The name is documented: users read it and reset offsets by
 *     hand.
 *   <schema>.streamserver_errors (proto.h): rejected messages, read by the
 *     API's errors page (tools.h --errors).
 *
 * <schema> is METADATA.SCHEMA, else OUTPUT.SCHEMA, else public.  Both tables
 * are created (IF NOT EXISTS, under one advisory lock) by the first worker
 * that needs them; the DDL, the lock key, the read, the fenced
 * compare-and-set, the plain write and the reset are all here, for the sink
 * (sink_pg.h), the check mode (check_pg.h) and the tool modes (tools.h).
 *
 * Functions returning int return WERR_OK or a negative enum werr and fill err
 * (pg.h).  Functions returning char * return SQL text the caller free()s, or
 * NULL when out of memory.
 */
#ifndef SS_WORKER_PROGRESS_H
#define SS_WORKER_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "jobspec.h"
#include "wtypes.h"

#define PROGRESS_TABLE "streamserver_progress"
#define PROGRESS_ERRORS_TABLE "streamserver_errors"

/* Statements one progress write runs, at most. */
#define PROGRESS_WRITE_MAX 2

/* The schema of both tables for spec. */
const char *progress_schema(const struct jobspec *spec);

/* CREATE TABLE IF NOT EXISTS schema.table (table: PROGRESS_TABLE or
 * PROGRESS_ERRORS_TABLE), preceded in the same string by the advisory lock
 * that serialises creating it. */
char *progress_sql_create(const char *schema, const char *table);

/* Creates schema.table (as progress_sql_create) unless it exists.  Looks
 * first: CREATE ... IF NOT EXISTS needs CREATE on the schema even when the
 * table exists. */
int progress_table_ensure(PGconn *pg, const char *schema, const char *table, char *err, size_t errlen);

/* The statements that store a batch's offsets: $1 job, $2 topic, $3
 * partitions (int[]), $4 next offsets (bigint[]); fenced also $5, the offsets
 * expected in the table, for statement 0 (the compare-and-set UPDATE, which
 * returns the partitions it changed; statement 1 inserts the rows of
 * partitions that have none and returns them).  Unfenced with ON CONFLICT:
 * one upsert; without: UPDATE, then INSERT ... WHERE NOT EXISTS.
 * progress_nwrite says how many there are. */
size_t progress_nwrite(bool fenced, bool on_conflict);
char *progress_sql_write(const char *schema, bool fenced, bool on_conflict, size_t which);

/* Reads the stored next offsets of job_name's topic: next[i] for parts[i], or
 * -1 when there is no row.  The table must exist. */
int progress_read(PGconn *pg, const char *schema, const char *job_name, const char *topic, const int32_t *parts,
		  size_t n, int64_t *next, char *err, size_t errlen);

/* Sets the offsets of n partitions in one transaction of its own, creating
 * the progress table when it is missing (the tool --reset: the job is
 * stopped, so nobody else writes its rows). */
int progress_reset(PGconn *pg, const char *schema, const char *job_name, const char *topic,
		   const struct part_offset *offs, size_t n, char *err, size_t errlen);

/* The sink's side: one job's progress and error rows on one connection. */
struct progress;

/* Creates the tables it needs (not the progress table with CONSISTENCY none)
 * and prepares its statements on pg, which must outlive it; schema and
 * job_name are copied.  On success *out is the caller's (progress_free). */
int progress_open(PGconn *pg, const char *schema, const char *job_name, enum js_consistency consistency,
		  bool on_conflict, struct progress **out, char *err, size_t errlen);

/* As progress_read (all -1 with CONSISTENCY none).  With EXACTLY these are
 * also the values the next progress_put expects to replace. */
int progress_get(struct progress *pr, const char *topic, const int32_t *parts, size_t n, int64_t *next, char *err,
		 size_t errlen);

/* Stores a batch's offsets inside the caller's transaction.  EXACTLY: a
 * compare-and-set against the offsets last read or committed; a miss is
 * WERR_FENCED ("partition N was advanced by another task ..."), and the
 * caller must roll back. */
int progress_put(struct progress *pr, const char *topic, const struct part_offset *p, size_t n, char *err,
		 size_t errlen);

/* After the caller's COMMIT of a progress_put: those offsets are the stored
 * ones now (EXACTLY: what the next compare-and-set expects; every mode:
 * progress_known). */
void progress_committed(struct progress *pr, const struct part_offset *p, size_t n);

/* Whether every partition of p has a row in the progress table that this
 * sink read or committed (always true with CONSISTENCY none).  Only then does
 * progress_put_sql apply: with EXACTLY it holds the compare-and-set alone. */
bool progress_known(const struct progress *pr, const struct part_offset *p, size_t n);

/* "EXECUTE name(l1, l2, ...)": literals already quoted (PQescapeLiteral). */
char *progress_sql_execute(const char *name, const char *const *literals, size_t n);

/* progress_put as SQL text for a simple-protocol query string that carries
 * the whole batch (sink_pg.c): the prepared statements run by EXECUTE with
 * quoted literals, joined by "; ", no trailing separator; "" without a
 * progress table.  Only for partitions all known (progress_known).  *nstmts:
 * the statements in it.  With EXACTLY (progress_put_checks) the first one's
 * result goes to progress_put_result.  NULL when out of memory. */
char *progress_put_sql(struct progress *pr, const char *topic, const struct part_offset *p, size_t n,
		       size_t *nstmts);
bool progress_put_checks(const struct progress *pr);

/* The compare-and-set's result (res NULL: none came): WERR_OK when it
 * changed all n partitions, else WERR_FENCED with the fence-miss message
 * (which queries the table: call it after the rollback). */
int progress_put_result(struct progress *pr, const char *topic, const struct part_offset *p, size_t n,
			const PGresult *res, char *err, size_t errlen);

/* One rejected message into the error table, inside the caller's
 * transaction.  key and value (raw bytes; NULL: SQL NULL) and why are the
 * caller's.  A failure is never the message's fault: WERR_DATA becomes
 * WERR_RETRY. */
int progress_reject(struct progress *pr, const char *topic, int32_t partition, int64_t offset, const char *key,
		    size_t key_len, const char *value, size_t value_len, const char *why, char *err, size_t errlen);

void progress_free(struct progress *pr);

#endif
