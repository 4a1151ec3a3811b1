#include "sqlgen.h"

#include <stdlib.h>
#include <string.h>

#include "sqlbuf.h"

static bool sqlgen_dedup(const struct sqlgen_job *job)
{
	return job->mode != JS_MODE_INSERT;
}

static void sqlgen_target(struct sqlbuf *sb, const struct sqlgen_job *job)
{
	sqlbuf_ident(sb, job->schema);
	sqlbuf_add(sb, ".");
	sqlbuf_ident(sb, job->table);
}

/* A value over the staging table: its MAPPING expression (the user's SQL by
 * design, evaluated by the database) or its source column. */
static void sqlgen_value(struct sqlbuf *sb, const struct sqlgen_job *job, const struct sqlgen_value *v)
{
	if (v->expr != NULL)
		sqlbuf_add(sb, v->expr);
	else
		sqlbuf_ident(sb, job->stage[v->stage].name);
}

/* The same, converted to the target column's type when it is compared
 * (MATCH_COLUMNS, ORDER_COLUMNS), so that keys compare as the unique index
 * compares them.  The other columns are converted by the write itself, by
 * assignment, as in INSERT mode. */
static void sqlgen_value_cast(struct sqlbuf *sb, const struct sqlgen_job *job, const struct sqlgen_value *v)
{
	if (v->cast == NULL || !v->key) { /* no cast: check mode, reported already */
		sqlgen_value(sb, job, v);
		return;
	}
	sqlbuf_add(sb, "CAST((");
	sqlgen_value(sb, job, v);
	sqlbuf_add(sb, ") AS ");
	sqlbuf_add(sb, v->cast); /* quoted by the server's quote_ident */
	sqlbuf_add(sb, ")");
}

static void sqlgen_names(struct sqlbuf *sb, const struct sqlgen_job *job, const char *prefix)
{
	size_t i;

	for (i = 0; i < job->nvalues; i++) {
		if (i > 0)
			sqlbuf_add(sb, ", ");
		sqlbuf_add(sb, prefix);
		sqlbuf_ident(sb, job->values[i].name);
	}
}

/* The names of the values indexed by idx, "a, b". */
static void sqlgen_index_names(struct sqlbuf *sb, const struct sqlgen_job *job, const int *idx, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			sqlbuf_add(sb, ", ");
		sqlbuf_ident(sb, job->values[idx[i]].name);
	}
}

/* The staging columns, "a, b" or with their types "a t, b u". */
static void sqlgen_stage_list(struct sqlbuf *sb, const struct sqlgen_job *job, bool types)
{
	size_t i;

	for (i = 0; i < job->nstage; i++) {
		if (i > 0)
			sqlbuf_add(sb, ", ");
		sqlbuf_ident(sb, job->stage[i].name);
		if (!types)
			continue;
		sqlbuf_add(sb, " ");
		/* TYPE is SQL the user wrote for their own database, as in GPSS. */
		sqlbuf_add(sb, job->stage[i].type);
	}
}

char *sqlgen_stage(const struct sqlgen_job *job)
{
	struct sqlbuf sb = { 0 };

	/* Session-local, so concurrent workers never meet; emptied at each commit. */
	sqlbuf_add(&sb, "CREATE TEMP TABLE " SQLGEN_STAGE_TABLE " (");
	sqlgen_stage_list(&sb, job, true);
	if (job->tombstones)
		sqlbuf_add(&sb, ", " SQLGEN_TOMBSTONE_COLUMN " boolean NOT NULL");
	if (sqlgen_dedup(job))
		sqlbuf_add(&sb, job->nstage ? ", " SQLGEN_SEQ_COLUMN " bigserial" : SQLGEN_SEQ_COLUMN " bigserial");
	sqlbuf_add(&sb, ") ON COMMIT DELETE ROWS");
	return sqlbuf_take(&sb);
}

char *sqlgen_copy(const struct sqlgen_job *job)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, "COPY pg_temp." SQLGEN_STAGE_TABLE " (");
	sqlgen_stage_list(&sb, job, false);
	if (job->tombstones)
		sqlbuf_add(&sb, ", " SQLGEN_TOMBSTONE_COLUMN);
	sqlbuf_add(&sb, ") FROM STDIN");
	return sqlbuf_take(&sb);
}

char *sqlgen_copy_direct(const struct sqlgen_job *job)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, "COPY ");
	sqlgen_target(&sb, job);
	sqlbuf_add(&sb, " (");
	sqlgen_names(&sb, job, "");
	sqlbuf_add(&sb, ") FROM STDIN");
	return sqlbuf_take(&sb);
}

/* Every value named as its target column, keys converted:
 * "CAST((v) AS t) AS a, w AS b" */
static void sqlgen_values_as(struct sqlbuf *sb, const struct sqlgen_job *job)
{
	size_t i;

	for (i = 0; i < job->nvalues; i++) {
		if (i > 0)
			sqlbuf_add(sb, ", ");
		sqlgen_value_cast(sb, job, &job->values[i]);
		sqlbuf_add(sb, " AS ");
		sqlbuf_ident(sb, job->values[i].name);
	}
}

/* "a = <from>a, b = <from>b" of the UPDATE_COLUMNS. */
static void sqlgen_assign(struct sqlbuf *sb, const struct sqlgen_job *job, const char *from)
{
	size_t i;

	for (i = 0; i < job->nupdate; i++) {
		const char *name = job->values[job->update[i]].name;
		if (i > 0)
			sqlbuf_add(sb, ", ");
		sqlbuf_ident(sb, name);
		sqlbuf_add(sb, " = ");
		sqlbuf_add(sb, from);
		sqlbuf_ident(sb, name);
	}
}

/* "INSERT INTO target (a, b) SELECT d.a, d.b FROM (" */
static void sqlgen_insert_from(struct sqlbuf *sb, const struct sqlgen_job *job)
{
	sqlbuf_add(sb, "INSERT INTO ");
	sqlgen_target(sb, job);
	sqlbuf_add(sb, " (");
	sqlgen_names(sb, job, "");
	sqlbuf_add(sb, ") SELECT ");
	sqlgen_names(sb, job, "d.");
	sqlbuf_add(sb, " FROM (");
}

/* One row per MATCH_COLUMNS value, the values named as the target's columns:
 *   SELECT DISTINCT ON (m...) a... FROM (SELECT <value> AS a..., streamserver_seq
 *     FROM stage) AS s ORDER BY m..., o... DESC NULLS LAST, streamserver_seq DESC
 * With tombstones the tombstone column comes along; the latest message of a
 * key is the first by streamserver_seq DESC, a tombstone or a row.  With
 * ORDER_COLUMNS too (a tombstone has none, NULLs, and would always lose), the
 * rows before the key's latest tombstone are cut off by a window over the
 * key, and among the rest (that tombstone and the rows after it) a row comes
 * first: ORDER BY m..., streamserver_tombstone (false first), o... */
static void sqlgen_dedup_select(struct sqlbuf *sb, const struct sqlgen_job *job)
{
	bool cut = job->tombstones && job->norder > 0;
	size_t i;

	sqlbuf_add(sb, "SELECT DISTINCT ON (");
	sqlgen_index_names(sb, job, job->match, job->nmatch);
	sqlbuf_add(sb, ") ");
	sqlgen_names(sb, job, "");
	if (job->tombstones)
		sqlbuf_add(sb, job->nvalues ? ", " SQLGEN_TOMBSTONE_COLUMN : SQLGEN_TOMBSTONE_COLUMN);
	sqlbuf_add(sb, " FROM (");
	if (cut) {
		sqlbuf_add(sb, "SELECT s.*, max(CASE WHEN s." SQLGEN_TOMBSTONE_COLUMN " THEN s." SQLGEN_SEQ_COLUMN
			       " END) OVER (PARTITION BY ");
		sqlgen_index_names(sb, job, job->match, job->nmatch);
		sqlbuf_add(sb, ") AS " SQLGEN_CUT_COLUMN " FROM (");
	}
	sqlbuf_add(sb, "SELECT ");
	sqlgen_values_as(sb, job);
	if (job->tombstones)
		sqlbuf_add(sb, job->nvalues ? ", " SQLGEN_TOMBSTONE_COLUMN : SQLGEN_TOMBSTONE_COLUMN);
	sqlbuf_add(sb, job->nvalues || job->tombstones ? ", " SQLGEN_SEQ_COLUMN : SQLGEN_SEQ_COLUMN);
	sqlbuf_add(sb, " FROM pg_temp." SQLGEN_STAGE_TABLE ") AS s");
	if (cut)
		sqlbuf_add(sb, ") AS s WHERE s." SQLGEN_CUT_COLUMN " IS NULL OR s." SQLGEN_SEQ_COLUMN " >= s." SQLGEN_CUT_COLUMN);
	sqlbuf_add(sb, " ORDER BY ");
	for (i = 0; i < job->nmatch; i++) {
		sqlbuf_ident(sb, job->values[job->match[i]].name);
		sqlbuf_add(sb, ", ");
	}
	if (cut)
		sqlbuf_add(sb, SQLGEN_TOMBSTONE_COLUMN ", ");
	for (i = 0; i < job->norder; i++) {
		sqlbuf_ident(sb, job->values[job->order[i]].name);
		sqlbuf_add(sb, " DESC NULLS LAST, ");
	}
	sqlbuf_add(sb, SQLGEN_SEQ_COLUMN " DESC");
}

/* " ORDER BY d.m1, d.m2": the rows an INSERT ... SELECT writes, in
 * MATCH_COLUMNS order.  Why: two jobs upserting overlapping keys into one
 * table each lock the rows (or the unique index entries) they write, in the
 * order they write them, until they commit.  If job A writes k1 then k2 while
 * job B writes k2 then k1, each ends up waiting for the other: a deadlock
 * (40P01), one of the two batches aborted.  When every transaction writes its
 * keys in the same global order (ascending key), a transaction only ever waits
 * for one holding a smaller key, never the other way round, so no cycle can
 * form.  INSERT ... SELECT ... ORDER BY inserts (and ON CONFLICT updates) in
 * that order; after <dedup>, already sorted on the keys, the planner adds no
 * sort. */
static void sqlgen_order_by_match(struct sqlbuf *sb, const struct sqlgen_job *job)
{
	size_t i;

	sqlbuf_add(sb, " ORDER BY ");
	for (i = 0; i < job->nmatch; i++) {
		if (i > 0)
			sqlbuf_add(sb, ", ");
		sqlbuf_add(sb, "d.");
		sqlbuf_ident(sb, job->values[job->match[i]].name);
	}
}

/* t.m1 = d.m1 AND ... */
static void sqlgen_match_cond(struct sqlbuf *sb, const struct sqlgen_job *job)
{
	size_t i;

	for (i = 0; i < job->nmatch; i++) {
		const char *name = job->values[job->match[i]].name;
		if (i > 0)
			sqlbuf_add(sb, " AND ");
		sqlbuf_add(sb, "t.");
		sqlbuf_ident(sb, name);
		sqlbuf_add(sb, " = d.");
		sqlbuf_ident(sb, name);
	}
}

static char *sqlgen_insert(const struct sqlgen_job *job)
{
	struct sqlbuf sb = { 0 };
	size_t i;

	sqlbuf_add(&sb, "INSERT INTO ");
	sqlgen_target(&sb, job);
	sqlbuf_add(&sb, " (");
	sqlgen_names(&sb, job, "");
	sqlbuf_add(&sb, ") SELECT ");
	for (i = 0; i < job->nvalues; i++) {
		if (i > 0)
			sqlbuf_add(&sb, ", ");
		sqlgen_value(&sb, job, &job->values[i]);
	}
	sqlbuf_add(&sb, " FROM pg_temp." SQLGEN_STAGE_TABLE);
	return sqlbuf_take(&sb);
}

/* The rows locked by UPDATE ... FROM follow the join's order, which no
 * clause of UPDATE can fix, and a batch of a few hundred rows against a small
 * table gets a hash join that scans the target: its physical order, which
 * concurrent updates shuffle (measured: 4 deadlocks in tests/e2e/
 * test_deadlock.py).  So with lock_rows the source is a sub-select that locks
 * the target's rows itself, SELECT ... ORDER BY <keys> FOR UPDATE OF k: rows
 * are locked as they leave the sort, in key order (sqlgen_order_by_match says
 * why that order prevents deadlocks), and the UPDATE only meets rows it has
 * locked already, whatever plan joins them (a sub-select with FOR UPDATE is
 * never pulled up into the join).  The keys missing from the target drop out
 * of the join, as they would from the UPDATE. */
static void sqlgen_update_source(struct sqlbuf *sb, const struct sqlgen_job *job)
{
	size_t i;

	if (!job->lock_rows) {
		sqlgen_dedup_select(sb, job);
		return;
	}
	sqlbuf_add(sb, "SELECT ");
	sqlgen_names(sb, job, "d.");
	if (job->tombstones)
		sqlbuf_add(sb, job->nvalues ? ", d." SQLGEN_TOMBSTONE_COLUMN : "d." SQLGEN_TOMBSTONE_COLUMN);
	sqlbuf_add(sb, " FROM (");
	sqlgen_dedup_select(sb, job);
	sqlbuf_add(sb, ") AS d JOIN ");
	sqlgen_target(sb, job);
	sqlbuf_add(sb, " AS k ON ");
	for (i = 0; i < job->nmatch; i++) {
		const char *name = job->values[job->match[i]].name;
		if (i > 0)
			sqlbuf_add(sb, " AND ");
		sqlbuf_add(sb, "k.");
		sqlbuf_ident(sb, name);
		sqlbuf_add(sb, " = d.");
		sqlbuf_ident(sb, name);
	}
	sqlgen_order_by_match(sb, job);
	sqlbuf_add(sb, " FOR UPDATE OF k");
}

static char *sqlgen_update(const struct sqlgen_job *job)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, "UPDATE ");
	sqlgen_target(&sb, job);
	sqlbuf_add(&sb, " AS t SET ");
	sqlgen_assign(&sb, job, "d.");
	sqlbuf_add(&sb, " FROM (");
	sqlgen_update_source(&sb, job);
	sqlbuf_add(&sb, ") AS d WHERE ");
	sqlgen_match_cond(&sb, job);
	if (job->tombstones)
		sqlbuf_add(&sb, " AND NOT d." SQLGEN_TOMBSTONE_COLUMN);
	return sqlbuf_take(&sb);
}

/* The tombstones: the rows whose key's latest message is one.  The source is
 * UPDATE's, so with lock_rows the rows are locked in key order first. */
static char *sqlgen_delete(const struct sqlgen_job *job)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, "DELETE FROM ");
	sqlgen_target(&sb, job);
	sqlbuf_add(&sb, " AS t USING (");
	sqlgen_update_source(&sb, job);
	sqlbuf_add(&sb, ") AS d WHERE ");
	sqlgen_match_cond(&sb, job);
	sqlbuf_add(&sb, " AND d." SQLGEN_TOMBSTONE_COLUMN);
	return sqlbuf_take(&sb);
}

/* INSERT ... ON CONFLICT, wrapped so that it answers one row: the rows
 * written and how many of them were existing rows updated (a row version an
 * ON CONFLICT update wrote has xmax set; an inserted one has not). */
static char *sqlgen_upsert(const struct sqlgen_job *job, bool dedup)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, "WITH w AS (");
	sqlgen_insert_from(&sb, job);
	if (dedup) {
		sqlgen_dedup_select(&sb, job);
	} else {
		/* The same values as the dedup's, keys converted the same way. */
		sqlbuf_add(&sb, "SELECT ");
		sqlgen_values_as(&sb, job);
		sqlbuf_add(&sb, " FROM pg_temp." SQLGEN_STAGE_TABLE);
	}
	sqlbuf_add(&sb, ") AS d");
	if (job->tombstones)
		sqlbuf_add(&sb, " WHERE NOT d." SQLGEN_TOMBSTONE_COLUMN);
	sqlgen_order_by_match(&sb, job);
	sqlbuf_add(&sb, " ON CONFLICT (");
	sqlgen_index_names(&sb, job, job->match, job->nmatch);
	if (job->nupdate == 0) {
		sqlbuf_add(&sb, ") DO NOTHING");
	} else {
		sqlbuf_add(&sb, ") DO UPDATE SET ");
		sqlgen_assign(&sb, job, "EXCLUDED.");
	}
	sqlbuf_add(&sb, " RETURNING xmax <> 0 AS updated) SELECT count(*), count(*) FILTER (WHERE updated) FROM w");
	return sqlbuf_take(&sb);
}

/* MERGE without ON CONFLICT, after the UPDATE: the rows still unmatched. */
static char *sqlgen_insert_missing(const struct sqlgen_job *job)
{
	struct sqlbuf sb = { 0 };

	sqlgen_insert_from(&sb, job);
	sqlgen_dedup_select(&sb, job);
	sqlbuf_add(&sb, job->tombstones ? ") AS d WHERE NOT d." SQLGEN_TOMBSTONE_COLUMN " AND NOT EXISTS (SELECT 1 FROM "
				       : ") AS d WHERE NOT EXISTS (SELECT 1 FROM ");
	sqlgen_target(&sb, job);
	sqlbuf_add(&sb, " AS t WHERE ");
	sqlgen_match_cond(&sb, job);
	sqlbuf_add(&sb, ")");
	sqlgen_order_by_match(&sb, job);
	return sqlbuf_take(&sb);
}

int sqlgen_writes_build(const struct sqlgen_job *job, struct sqlgen_writes *w)
{
	bool failed = false;
	size_t i;

	memset(w, 0, sizeof(*w));
	switch (job->mode) {
	case JS_MODE_INSERT:
		w->write[w->nwrite++] = sqlgen_insert(job);
		break;
	case JS_MODE_UPDATE:
		if (job->nupdate > 0)
			w->write[w->nwrite++] = sqlgen_update(job);
		break;
	case JS_MODE_MERGE:
		if (job->on_conflict) {
			w->write[w->nwrite++] = sqlgen_upsert(job, true);
			/* With nothing to update (every mapped column matches)
			 * the statement is DO NOTHING, which never fails on a
			 * repeated key, so it would not fall back: only DO UPDATE
			 * may skip <dedup>.  Neither with tombstones: a row and
			 * a later tombstone of one key never make the upsert
			 * fail, and both would be written. */
			if (job->nupdate > 0 && !job->tombstones)
				failed = (w->fast = sqlgen_upsert(job, false)) == NULL;
			break;
		}
		if (job->nupdate > 0)
			w->write[w->nwrite++] = sqlgen_update(job);
		w->write[w->nwrite++] = sqlgen_insert_missing(job);
		break;
	}
	if (job->tombstones && job->mode != JS_MODE_INSERT)
		w->write[w->nwrite++] = sqlgen_delete(job);
	for (i = 0; i < w->nwrite; i++)
		failed = failed || w->write[i] == NULL;
	if (failed) {
		sqlgen_writes_free(w);
		return -1;
	}
	return 0;
}

void sqlgen_writes_free(struct sqlgen_writes *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < SQLGEN_WRITE_MAX; i++)
		free(w->write[i]);
	free(w->fast);
	memset(w, 0, sizeof(*w));
}

/* The tombstones' DELETE is always the last statement. */
bool sqlgen_write_deletes(const struct sqlgen_job *job, size_t i, size_t nwrite)
{
	return job->tombstones && job->mode != JS_MODE_INSERT && i + 1 == nwrite;
}

bool sqlgen_write_counts(const struct sqlgen_job *job, size_t i)
{
	/* the upsert is its mode's first statement, the DELETE may follow */
	return job->mode == JS_MODE_MERGE && job->on_conflict && i == 0;
}

bool sqlgen_write_updates(const struct sqlgen_job *job, size_t i, size_t nwrite)
{
	if (sqlgen_write_deletes(job, i, nwrite))
		return false;
	if (job->tombstones)
		nwrite--;
	return job->mode == JS_MODE_UPDATE || (job->mode == JS_MODE_MERGE && nwrite == 2 && i == 0);
}

const char *sqlgen_write_what(const struct sqlgen_job *job, size_t i, size_t nwrite)
{
	if (sqlgen_write_deletes(job, i, nwrite))
		return "deleting the rows of the batch's tombstones from the target table";
	if (job->tombstones)
		nwrite--;
	switch (job->mode) {
	case JS_MODE_UPDATE:
		return "updating the target table from the batch";
	case JS_MODE_MERGE:
		if (nwrite == 2 && i == 0)
			return "updating the target table from the batch";
		return "merging the batch into the target table";
	case JS_MODE_INSERT:
		break;
	}
	return "inserting the batch into the target table";
}

char *sqlgen_batch(const char *copy, const char *progress, bool async_commit, const char *const *writes,
		   size_t nwrites, size_t nseg, const char *between, bool commit)
{
	struct sqlbuf sb = { 0 };
	size_t i, s;

	sqlbuf_add(&sb, "BEGIN; ");
	if (async_commit)
		sqlbuf_add(&sb, "SET LOCAL synchronous_commit = off; ");
	sqlbuf_add(&sb, "SAVEPOINT " SQLGEN_SAVEPOINT);
	for (s = 0; s < (nseg ? nseg : 1); s++) {
		if (s > 0 && between != NULL) {
			sqlbuf_add(&sb, "; ");
			sqlbuf_add(&sb, between);
		}
		sqlbuf_add(&sb, "; ");
		sqlbuf_add(&sb, copy);
		for (i = 0; i < nwrites; i++) {
			sqlbuf_add(&sb, "; EXECUTE ");
			sqlbuf_add(&sb, writes[i]); /* ours, a plain name */
		}
	}
	if (progress != NULL && progress[0] != '\0') {
		sqlbuf_add(&sb, "; ");
		sqlbuf_add(&sb, progress);
	}
	if (commit)
		sqlbuf_add(&sb, "; COMMIT");
	return sqlbuf_take(&sb);
}

size_t sqlgen_segments(size_t n, size_t seg_rows)
{
	if (seg_rows == 0 || seg_rows >= n)
		return 1;
	return (n + seg_rows - 1) / seg_rows;
}

void sqlgen_segment(size_t n, size_t seg_rows, size_t s, size_t *lo, size_t *hi)
{
	if (sqlgen_segments(n, seg_rows) == 1) {
		*lo = 0;
		*hi = n;
		return;
	}
	*lo = s * seg_rows;
	*hi = (s + 1) * seg_rows > n ? n : (s + 1) * seg_rows;
}

char *sqlgen_probe_type(const char *type)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, "SELECT CAST(NULL AS ");
	sqlbuf_add(&sb, type);
	sqlbuf_add(&sb, ")");
	return sqlbuf_take(&sb);
}

char *sqlgen_probe_value(const struct sqlgen_job *job, size_t i)
{
	const struct sqlgen_value *v = &job->values[i];
	bool dedup = sqlgen_dedup(job);
	struct sqlbuf sb = { 0 };

	/* As the job's statement converts it: a compared column by a cast, the
	 * others by assignment (INSERT directly from the staging table,
	 * UPDATE/MERGE through the dedup subquery). */
	if (v->cast != NULL && !(dedup && v->key)) {
		sqlbuf_add(&sb, "INSERT INTO ");
		sqlgen_target(&sb, job);
		sqlbuf_add(&sb, " (");
		sqlbuf_ident(&sb, v->name);
		sqlbuf_add(&sb, ") SELECT ");
		if (dedup) {
			sqlbuf_add(&sb, "v FROM (SELECT ");
			sqlgen_value(&sb, job, v);
			sqlbuf_add(&sb, " AS v");
		} else {
			sqlgen_value(&sb, job, v);
		}
	} else {
		sqlbuf_add(&sb, "SELECT ");
		sqlgen_value_cast(&sb, job, v);
	}
	sqlbuf_add(&sb, " FROM pg_temp." SQLGEN_STAGE_TABLE);
	if (v->cast != NULL && dedup && !v->key)
		sqlbuf_add(&sb, ") AS s");
	return sqlbuf_take(&sb);
}

char *sqlgen_probe_order(const struct sqlgen_job *job, size_t i)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, "SELECT ");
	sqlgen_value_cast(&sb, job, &job->values[job->order[i]]);
	sqlbuf_add(&sb, " FROM pg_temp." SQLGEN_STAGE_TABLE " ORDER BY 1 DESC");
	return sqlbuf_take(&sb);
}
