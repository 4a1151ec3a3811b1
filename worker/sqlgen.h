/* The SQL text of every statement a job runs on its target, as pure
 * functions: a plain description of the job in (struct sqlgen_job), malloc'd
 * text out, no connection.  The statements of each mode (MAPPING expressions
 * are the user's SQL over the staging columns; every identifier is quoted):
 *   INSERT  INSERT INTO target (cols) SELECT <MAPPING> FROM streamserver_stage
 *           or, when the rows need no conversion, COPY straight into target
 *   UPDATE  UPDATE target SET <UPDATE_COLUMNS> FROM (<dedup>) d WHERE <MATCH_COLUMNS equal>
 *           (lock_rows: FROM (SELECT d.* FROM (<dedup>) d JOIN target k ON <keys equal>
 *            ORDER BY <MATCH_COLUMNS> FOR UPDATE OF k) d)
 *   MERGE   INSERT INTO target (cols) SELECT ... FROM (<dedup>) d
 *             ON CONFLICT (<MATCH_COLUMNS>) DO UPDATE SET u = EXCLUDED.u (or DO NOTHING)
 *           and, on servers without ON CONFLICT (before PostgreSQL 9.5, e.g.
 *           Greenplum 6): the UPDATE above, then INSERT ... WHERE NOT EXISTS.
 * UPDATE and MERGE write the rows in MATCH_COLUMNS order (ORDER BY the keys;
 * UPDATE ... FROM locks them first with SELECT ... ORDER BY ... FOR UPDATE when
 * lock_rows), so that jobs writing one table lock its keys in one global order
 * and do not deadlock each other.
 * <dedup> keeps one row per MATCH_COLUMNS value: the largest ORDER_COLUMNS
 * (descending, NULLs last), then the latest message (the staging table's
 * streamserver_seq, filled in COPY order).  With tombstones the rows of a key
 * before its latest tombstone drop out first (that tombstone deleted them):
 * the tombstone wins unless rows follow it, which then compete as above; the
 * rows go to the write statements with NOT d.streamserver_tombstone, the
 * tombstones to
 *   DELETE  DELETE FROM target t USING (<dedup> or its locking sub-select) d
 *           WHERE <MATCH_COLUMNS equal> AND d.streamserver_tombstone  In UPDATE and MERGE the key values
 * (MATCH_COLUMNS, ORDER_COLUMNS) are cast to the target column's type
 * (without its length or precision, which the write itself checks), so rows
 * compare as the unique index compares them.
 *
 * Every function returning char * returns text the caller free()s, or NULL
 * when out of memory or longer than SQLBUF_MAX.
 */
#ifndef SS_WORKER_SQLGEN_H
#define SS_WORKER_SQLGEN_H

#include <stdbool.h>
#include <stddef.h>

#include "jobspec.h"

/* The session's staging table, and its arrival-order column (UPDATE/MERGE). */
#define SQLGEN_STAGE_TABLE "streamserver_stage"
#define SQLGEN_SEQ_COLUMN "streamserver_seq"
/* With tombstones (DELETE_ON_TOMBSTONE): the staging column after the job's
 * own, COPYed as t for a tombstone and f for a row, and the dedup's cut (the
 * key's latest tombstone, with ORDER_COLUMNS). */
#define SQLGEN_TOMBSTONE_COLUMN "streamserver_tombstone"
#define SQLGEN_CUT_COLUMN "streamserver_cut"

/* Statements a mode runs per batch, at most. */
#define SQLGEN_WRITE_MAX 3

/* A staging column (KEY, VALUE, then META columns, in COPY order). */
struct sqlgen_column {
	const char *name;
	const char *type; /* SQL as the user wrote it (TYPE), or the target column's */
};

/* A target column the job writes. */
struct sqlgen_value {
	const char *name; /* the target column */
	const char *expr; /* its MAPPING expression; NULL: staging column stage */
	int stage;
	/* the target column's type without length or precision, already quoted
	 * ("pg_catalog"."varchar"); NULL when unknown (check mode, no column) */
	const char *cast;
	bool key; /* compared: a MATCH_COLUMNS or ORDER_COLUMNS entry */
};

/* A job's target and columns.  match, update and order are indexes in
 * values[].  All pointers are the caller's. */
struct sqlgen_job {
	const char *schema; /* the target's, never NULL */
	const char *table;
	enum js_mode mode;
	bool on_conflict; /* the server has INSERT ... ON CONFLICT (9.5 and later) */
	/* UPDATE ... FROM first locks the target's rows in key order (a locking
	 * sub-select): PostgreSQL 9.5 and later, even when on_conflict is turned
	 * off for tests; not Greenplum 6 (9.4), whose UPDATE locks the table. */
	bool lock_rows;
	/* DELETE_ON_TOMBSTONE (UPDATE, MERGE): the staging table has the
	 * tombstone column; per key the latest message wins, and when it is a
	 * tombstone the target's row is deleted (the last write statement). */
	bool tombstones;
	const struct sqlgen_column *stage;
	size_t nstage;
	const struct sqlgen_value *values;
	size_t nvalues;
	const int *match;
	size_t nmatch;
	const int *update;
	size_t nupdate;
	const int *order;
	size_t norder;
};

/* CREATE TEMP TABLE streamserver_stage (...) ON COMMIT DELETE ROWS. */
char *sqlgen_stage(const struct sqlgen_job *job);

/* COPY pg_temp.streamserver_stage (...) FROM STDIN. */
char *sqlgen_copy(const struct sqlgen_job *job);

/* COPY target (...) FROM STDIN: MODE INSERT without MAPPING, when the staging
 * columns have exactly the target columns' types (the caller decides). */
char *sqlgen_copy_direct(const struct sqlgen_job *job);

/* The statements that write the staging table into the target, in the order
 * they run, and for MERGE with ON CONFLICT and something to update, fast: the
 * upsert without <dedup>, which fails (SQLSTATE 21000) when a key repeats
 * within the batch. */
struct sqlgen_writes {
	char *write[SQLGEN_WRITE_MAX];
	size_t nwrite;
	char *fast; /* NULL when not used */
};

/* Fills w; returns 0, or -1 (nothing left allocated) when out of memory. */
int sqlgen_writes_build(const struct sqlgen_job *job, struct sqlgen_writes *w);
void sqlgen_writes_free(struct sqlgen_writes *w);

/* Of write statement i of nwrite: whether it answers one row (rows written,
 * rows updated), the ON CONFLICT upsert; whether every row it changes is an
 * existing row updated; what it does, for messages. */
bool sqlgen_write_counts(const struct sqlgen_job *job, size_t i);
bool sqlgen_write_updates(const struct sqlgen_job *job, size_t i, size_t nwrite);
/* Whether write statement i deletes (the tombstones' DELETE). */
bool sqlgen_write_deletes(const struct sqlgen_job *job, size_t i, size_t nwrite);
const char *sqlgen_write_what(const struct sqlgen_job *job, size_t i, size_t nwrite);

/* The savepoint around a part of a batch (sink_pg.c). */
#define SQLGEN_SAVEPOINT "ss_part"

/* One batch as one simple-protocol query string, so that it costs one round
 * trip per COPY plus one (the string, answered up to the first COPY's
 * CopyInResponse; each COPY's data, answered up to the next COPY or the end)
 * instead of one per statement:
 *   BEGIN; [SET LOCAL synchronous_commit = off; ]SAVEPOINT ss_part;
 *   <copy>; [EXECUTE <write>; ...][<between>; <copy>; [EXECUTE <write>; ...]]...
 *   [<progress>; ][COMMIT]
 * with nseg (at least 1) COPYs, one per segment of the batch (each at most
 * COMMIT.MAX_ROW rows), and between them `between` (emptying the staging
 * table; NULL: nothing).  writes: names of prepared statements; progress:
 * progress_put_sql's text, NULL or "" for none.  The progress comes after
 * the rows, as on the statement by statement path, so that the progress
 * rows are locked only once the rows are written: a worker stalled in its
 * COPY never holds up the partition's next owner.  commit false leaves the
 * COMMIT out: EXACTLY reads the compare-and-set's result first.  The
 * savepoint lets rows the database rejects be split off (ROLLBACK TO). */
char *sqlgen_batch(const char *copy, const char *progress, bool async_commit, const char *const *writes,
		   size_t nwrites, size_t nseg, const char *between, bool commit);

/* The segments of a batch of n messages cut every seg_rows (0: one
 * segment): how many, and segment s as messages [*lo, *hi). */
size_t sqlgen_segments(size_t n, size_t seg_rows);
void sqlgen_segment(size_t n, size_t seg_rows, size_t s, size_t *lo, size_t *hi);

/* Check mode's probes, prepared (never run) against the staging table. */
/* SELECT CAST(NULL AS type): whether TYPE is a type. */
char *sqlgen_probe_type(const char *type);
/* Value i alone, converted as the job's statements convert it. */
char *sqlgen_probe_value(const struct sqlgen_job *job, size_t i);
/* ORDER_COLUMNS entry i, ordered: whether its type has an ordering. */
char *sqlgen_probe_order(const struct sqlgen_job *job, size_t i);

#endif
