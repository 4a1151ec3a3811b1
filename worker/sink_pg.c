#include "sink_pg.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "log.h"
#include "pg.h"
#include "progress.h"
#include "sqlbuf.h"
#include "sqlgen.h"
#include "wtypes.h"

/* COPY data goes out in chunks of this size. */
#define SINK_COPY_CHUNK ((size_t)1 << 20)
/* After a batch with repeated keys, this many batches use the DISTINCT ON
 * upsert straight away before the plain one is tried again. */
#define SINK_FAST_SKIP 64
/* The staging table's arrival-order sequence hands out numbers in blocks of
 * this many (per session), not one catalog update per row: measured, COPY of
 * 10000 rows 7.2 ms with the default CACHE 1, 5.3 ms with this, 4.2 ms
 * without the column. */
#define SINK_SEQ_CACHE "100000"
/* A batch that meets a deadlock or a serialization failure is written again
 * in place up to this many times, after SINK_TX_BACKOFF_MS doubling (jittered):
 * at most about 0.6 s in all before the worker gives up with a retriable exit. */
#define SINK_TX_RETRIES 5
#define SINK_TX_BACKOFF_MS 20L

static const char *const sink_write_names[SQLGEN_WRITE_MAX] = { "ss_write_0", "ss_write_1", "ss_write_2" };
#define SINK_FAST_NAME "ss_write_fast"

struct sink_pg {
	PGconn *pg;
	const struct jobspec *spec;
	const char *job_name;
	struct catalog *cat;	/* the target and the column plan */
	struct progress *prog; /* the progress and error tables */

	char *stage_sql;
	char *copy_sql;
	/* INSERT whose rows need no conversion: COPY straight into the target
	 * (catalog_direct); NULL when the rows go through the staging table */
	char *direct_sql;
	/* The write statements; w.fast (MERGE with ON CONFLICT) skips the
	 * DISTINCT ON that only keys repeated within a batch need.  fast_skip:
	 * batches to write with the full statement after one whose keys
	 * repeated. */
	struct sqlgen_writes w;
	int fast_skip;
	/* The batch's BEGIN goes out with its first SAVEPOINT: one round trip
	 * less per batch. */
	bool begin_pending;
	/* The job's offsets commit with its rows (EXACTLY, ATLEAST) and
	 * STREAMWORKER_SYNCHRONOUS_COMMIT is not "on": read once at open, as
	 * neither changes while the worker runs (sink_pg_async_commit). */
	bool async_ok;

	char last_sqlstate[PG_SQLSTATE_SIZE]; /* of the last error, "" if none */
	uint32_t jitter;		       /* the retry backoff's state, never 0 */
};

/* The pg.h helpers, keeping the SQLSTATE the batch logic looks at. */
static int sink_pg_error(struct sink_pg *sk, const PGresult *res, const char *what, char *err, size_t errlen)
{
	return pg_error(sk->pg, res, what, sk->last_sqlstate, err, errlen);
}

static int sink_pg_exec(struct sink_pg *sk, const char *sql, const char *what, char *err, size_t errlen)
{
	return pg_exec(sk->pg, sql, what, sk->last_sqlstate, err, errlen);
}

int sink_pg_open(const struct jobspec *spec, const char *job_name, struct sink_pg **out, char *err,
		 size_t errlen)
{
	struct sink_pg *sk;
	const char *sync_env = getenv("STREAMWORKER_SYNCHRONOUS_COMMIT");
	char appname[128];
	bool on_conflict;
	size_t i;
	int rc;

	*out = NULL;
	sk = calloc(1, sizeof(*sk));
	if (sk == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	sk->spec = spec;
	sk->job_name = job_name;
	sk->async_ok = (spec->consistency == JS_CONSISTENCY_EXACTLY || spec->consistency == JS_CONSISTENCY_ATLEAST) &&
		       !(sync_env != NULL && strcmp(sync_env, "on") == 0);
	/* per process and start, so that colliding workers draw apart */
	sk->jitter = ((uint32_t)getpid() * 2654435761u) ^ (uint32_t)time(NULL);
	if (sk->jitter == 0)
		sk->jitter = 1;
	snprintf(appname, sizeof(appname), "streamserver-%s", job_name);
	if ((rc = pg_connect(spec, job_name, appname, &sk->pg, NULL, err, errlen)) != WERR_OK)
		goto out;
	on_conflict = pg_on_conflict(sk->pg);
	log_info("connected to PostgreSQL %s:%d database \"%s\" as \"%s\" (server %d%s)",
		 spec->host ? spec->host : "(default)", spec->port > 0 ? spec->port : 5432, spec->database,
		 spec->user, PQserverVersion(sk->pg), on_conflict ? "" : ", without ON CONFLICT");

	/* A worker frozen inside a batch (SIGSTOP, a stalled VM, a zombie task)
	 * must not keep the locks of its rows and progress rows while other
	 * tasks take its partitions over: the server ends a transaction idle
	 * this long, and its session.  A batch's statements follow each other at
	 * once, so only a stalled worker is ever cut off (it then fails the
	 * batch and restarts).  PostgreSQL 9.6 and later. */
	if (PQserverVersion(sk->pg) >= 90600) {
		PGresult *res = PQexec(sk->pg, "SET idle_in_transaction_session_timeout = '" SINK_IDLE_TX_TIMEOUT "'");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			log_debug("idle_in_transaction_session_timeout not set: %s", PQresultErrorMessage(res));
		PQclear(res);
	}
	if ((rc = catalog_open(sk->pg, spec, on_conflict, NULL, NULL, &sk->cat, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = catalog_lock_rows(sk->cat, err, errlen)) != WERR_OK)
		goto out;
	sk->stage_sql = sqlgen_stage(&sk->cat->job);
	sk->copy_sql = sqlgen_copy(&sk->cat->job);
	if (sk->stage_sql == NULL || sk->copy_sql == NULL || sqlgen_writes_build(&sk->cat->job, &sk->w) < 0) {
		snprintf(err, errlen, "out of memory or OUTPUT.MAPPING longer than %zu bytes", SQLBUF_MAX);
		rc = WERR_FATAL;
		goto out;
	}
	if ((rc = progress_open(sk->pg, progress_schema(spec), job_name, spec->consistency, on_conflict, &sk->prog,
				err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_exec(sk, sk->stage_sql, "KAFKA.INPUT: creating the staging table (check the column TYPEs)",
			       err, errlen)) != WERR_OK)
		goto out;
	if ((rc = catalog_direct(sk->cat, &sk->direct_sql, err, errlen)) != WERR_OK)
		goto out;
	/* Preparing now reports bad MAPPING expressions before any data flows. */
	for (i = 0; i < sk->w.nwrite; i++) {
		if ((rc = pg_prepare(sk->pg, sink_write_names[i], sk->w.write[i],
				     "OUTPUT.MAPPING: preparing the write statement", NULL, err, errlen)) != WERR_OK)
			goto out;
		log_debug("write statement %zu: %s", i, sk->w.write[i]);
	}
	if (sk->w.fast != NULL &&
	    (rc = pg_prepare(sk->pg, SINK_FAST_NAME, sk->w.fast, "OUTPUT.MAPPING: preparing the write statement",
			     NULL, err, errlen)) != WERR_OK)
		goto out;
	if (spec->mode != JS_MODE_INSERT) {
		/* Only speed is at stake: a server that refuses keeps CACHE 1. */
		PGresult *res = PQexec(sk->pg, "ALTER SEQUENCE pg_temp." SQLGEN_STAGE_TABLE "_" SQLGEN_SEQ_COLUMN
					       "_seq CACHE " SINK_SEQ_CACHE);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			log_debug("the staging sequence keeps CACHE 1: %s", PQresultErrorMessage(res));
		PQclear(res);
	}
	*out = sk;
	sk = NULL;
out:
	sink_pg_close(sk);
	return rc;
}

int sink_pg_progress_get(struct sink_pg *sk, const char *topic, const int32_t *partitions, size_t n,
			 int64_t *next_offsets, char *err, size_t errlen)
{
	return progress_get(sk->prog, topic, partitions, n, next_offsets, err, errlen);
}

/* "COPY streamserver_stage, line 17, column b: ..." (or the target table's
 * name) -> 17 and "b" */
static size_t sink_pg_copy_line(const PGresult *res, char *column, size_t columnlen)
{
	const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *p, *c;
	size_t n;

	column[0] = '\0';
	if (ctx == NULL || strncmp(ctx, "COPY ", 5) != 0 || (p = strstr(ctx, ", line ")) == NULL)
		return 0;
	if ((c = strstr(p, ", column ")) != NULL) {
		c += strlen(", column ");
		n = strcspn(c, ":\n");
		snprintf(column, columnlen, "%.*s", (int)n, c);
	}
	return (size_t)strtoul(p + strlen(", line "), NULL, 10);
}

/* COPY sql FROM STDIN of data; *copied: the rows the server took. */
static int sink_pg_copy(struct sink_pg *sk, const char *sql, const char *data, size_t len, int64_t *copied,
			char *err, size_t errlen)
{
	PGresult *res;
	size_t off = 0;
	int rc = WERR_OK;

	*copied = 0;
	res = PQexec(sk->pg, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		rc = sink_pg_error(sk, res, "starting COPY", err, errlen);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	while (off < len) {
		size_t n = len - off < SINK_COPY_CHUNK ? len - off : SINK_COPY_CHUNK;
		if (PQputCopyData(sk->pg, data + off, (int)n) != 1)
			break; /* the error comes back from PQgetResult */
		off += n;
	}
	PQputCopyEnd(sk->pg, off < len ? "client failed to send the data" : NULL);
	while ((res = PQgetResult(sk->pg)) != NULL) {
		if (rc == WERR_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
			char column[128], what[192];
			sink_pg_copy_line(res, column, sizeof(column));
			snprintf(what, sizeof(what), "loading the batch%s%s", column[0] ? ", column " : "", column);
			rc = sink_pg_error(sk, res, what, err, errlen);
		} else if (rc == WERR_OK) {
			*copied = strtoll(PQcmdTuples(res), NULL, 10);
		}
		PQclear(res);
	}
	if (rc == WERR_OK && off < len)
		rc = sink_pg_error(sk, NULL, "sending the batch", err, errlen);
	return rc;
}

/* One rejected message into the error table, in the batch's transaction. */
static int sink_pg_reject(struct sink_pg *sk, const char *topic, const struct sink_msg *m, const char *why,
			  struct sink_batch_result *res, char *err, size_t errlen)
{
	int rc = progress_reject(sk->prog, topic, m->partition, m->offset, m->key, m->key_len, m->value, m->value_len,
				 why, err, errlen);

	if (rc != WERR_OK)
		return rc;
	log_warn("rejected topic %s partition %d offset %lld: %s", topic, (int)m->partition, (long long)m->offset,
		 why);
	if (res->rejected++ == 0)
		snprintf(res->first_error, sizeof(res->first_error), "partition %d offset %lld: %s",
			 (int)m->partition, (long long)m->offset, why);
	return WERR_OK;
}

/* Whether a failed write is the rows' fault: bad value, too long, null in a
 * not-null column, unique or check violation... */
static bool sink_pg_row_error(const struct sink_pg *sk, int rc)
{
	return rc == WERR_DATA && (strncmp(sk->last_sqlstate, "22", 2) == 0 || strncmp(sk->last_sqlstate, "23", 2) == 0);
}

/* COPY + write the rows of msgs[lo, hi) inside a savepoint.  On a row error
 * the part is rolled back and halved; a single row that still fails goes to
 * the error table.  last: nothing follows in this transaction, so the staging
 * table need not be emptied. */
static int sink_pg_write_part(struct sink_pg *sk, const struct sink_batch *b, size_t lo, size_t hi, bool last,
			      struct sink_batch_result *res, char *err, size_t errlen)
{
	size_t i, first = hi, end = hi, nrows = 0;
	int64_t written = 0, updated = 0, deleted = 0, n;
	PGresult *pr;
	int rc;

	for (i = lo; i < hi; i++) {
		if (b->msgs[i].error != NULL || b->msgs[i].skip)
			continue;
		if (first == hi)
			first = i;
		end = i;
		nrows++;
	}
	if (nrows == 0)
		return WERR_OK;
	rc = sink_pg_exec(sk, sk->begin_pending ? "BEGIN; SAVEPOINT ss_part" : "SAVEPOINT ss_part",
			  "starting a part of the batch", err, errlen);
	sk->begin_pending = false;
	if (rc != WERR_OK)
		return rc;
	rc = sink_pg_copy(sk, sk->direct_sql ? sk->direct_sql : sk->copy_sql, b->copy_data + b->msgs[first].copy_off,
			  b->msgs[end].copy_off + b->msgs[end].copy_len - b->msgs[first].copy_off, &n, err, errlen);
	if (sk->direct_sql != NULL)
		written = n;
	for (i = 0; rc == WERR_OK && sk->direct_sql == NULL && i < sk->w.nwrite; i++) {
		bool fast = sk->w.fast != NULL && sk->fast_skip == 0;

		rc = pg_exec_prepared(sk->pg, fast ? SINK_FAST_NAME : sink_write_names[i], 0, NULL, NULL, NULL, &pr,
				      sqlgen_write_what(&sk->cat->job, i, sk->w.nwrite), sk->last_sqlstate, err, errlen);
		if (fast && rc != WERR_OK && strcmp(sk->last_sqlstate, "21000") == 0) {
			/* "ON CONFLICT DO UPDATE command cannot affect row a second
			 * time": keys repeat in this part.  Undo it and write it
			 * again with DISTINCT ON, for this and the next batches. */
			log_debug("keys repeat within the batch; writing it with DISTINCT ON");
			sk->fast_skip = SINK_FAST_SKIP;
			if ((rc = sink_pg_exec(sk, "ROLLBACK TO SAVEPOINT ss_part; RELEASE SAVEPOINT ss_part",
					       "undoing a part of the batch", err, errlen)) != WERR_OK)
				return rc;
			return sink_pg_write_part(sk, b, lo, hi, last, res, err, errlen);
		}
		if (rc == WERR_OK && sqlgen_write_counts(&sk->cat->job, i)) {
			written += strtoll(PQgetvalue(pr, 0, 0), NULL, 10);
			updated += strtoll(PQgetvalue(pr, 0, 1), NULL, 10);
		} else if (rc == WERR_OK && sqlgen_write_deletes(&sk->cat->job, i, sk->w.nwrite)) {
			deleted += strtoll(PQcmdTuples(pr), NULL, 10);
		} else if (rc == WERR_OK) {
			n = strtoll(PQcmdTuples(pr), NULL, 10);
			written += n;
			if (sqlgen_write_updates(&sk->cat->job, i, sk->w.nwrite))
				updated += n;
		}
		PQclear(pr);
	}
	if (rc == WERR_OK) {
		res->rows += written;
		res->updated += updated;
		res->deleted += deleted;
		/* The last part's savepoint ends with the transaction: the progress
		 * statements that follow run inside it, which changes nothing. */
		if (!last)
			rc = sink_pg_exec(sk, "RELEASE SAVEPOINT ss_part", "finishing a part of the batch", err, errlen);
		if (rc == WERR_OK && !last && sk->direct_sql == NULL)
			rc = sink_pg_exec(sk, "DELETE FROM pg_temp." SQLGEN_STAGE_TABLE, "emptying the staging table",
					  err, errlen);
		return rc;
	}
	if (!sink_pg_row_error(sk, rc))
		return rc;
	if (nrows == 1) {
		char why[1024];
		snprintf(why, sizeof(why), "%s", err);
		if ((rc = sink_pg_exec(sk, "ROLLBACK TO SAVEPOINT ss_part; RELEASE SAVEPOINT ss_part",
				       "undoing a part of the batch", err, errlen)) != WERR_OK)
			return rc;
		return sink_pg_reject(sk, b->topic, &b->msgs[first], why, res, err, errlen);
	}
	log_info("a part of %zu rows of the batch failed (%s); splitting it", nrows, err);
	if ((rc = sink_pg_exec(sk, "ROLLBACK TO SAVEPOINT ss_part; RELEASE SAVEPOINT ss_part",
			       "undoing a part of the batch", err, errlen)) != WERR_OK)
		return rc;
	/* Halve by rows, so each half holds at least one. */
	{
		size_t half = nrows / 2, seen = 0, mid = first;
		for (i = first; i <= end; i++) {
			if (b->msgs[i].error != NULL || b->msgs[i].skip)
				continue;
			if (seen++ == half) {
				mid = i;
				break;
			}
		}
		if ((rc = sink_pg_write_part(sk, b, first, mid, false, res, err, errlen)) != WERR_OK)
			return rc;
		return sink_pg_write_part(sk, b, mid, end + 1, last, res, err, errlen);
	}
}

/* Whether a batch's COMMIT may return before its WAL is flushed: only when
 * the batch's offsets commit in the same transaction (EXACTLY, ATLEAST) and
 * every partition of it already has a stored row.  A commit the server then
 * loses in a crash loses the rows and their offsets together: the worker's
 * connection is gone with the server, its next batch fails, and the
 * restarted worker resumes from the offsets the database still holds, so
 * nothing is lost or written twice.  Never with at-most (offsets committed
 * ahead of the rows) or none (offsets outside the database), and never for a
 * partition's first row (a lost one would make the restart fall back to
 * FALLBACK_OFFSET).  STREAMWORKER_SYNCHRONOUS_COMMIT=on in the environment
 * turns it off (to measure it). */
static bool sink_pg_async_commit(const struct sink_pg *sk, const struct sink_batch *b)
{
	return sk->async_ok && b->nprogress > 0 && progress_known(sk->prog, b->progress, b->nprogress);
}

/* The segments of a batch (sink_batch.seg_rows), each at most MAX_ROW rows. */
static size_t sink_pg_nseg(const struct sink_batch *b)
{
	return sqlgen_segments(b->nmsgs, b->seg_rows);
}

static void sink_pg_seg(const struct sink_batch *b, size_t s, size_t *lo, size_t *hi)
{
	sqlgen_segment(b->nmsgs, b->seg_rows, s, lo, hi);
}

/* What the results of sqlgen_batch's string answer, in order. */
enum sink_step { SINK_BEGIN, SINK_SET, SINK_PROGRESS, SINK_SAVEPOINT, SINK_COPY, SINK_WRITE, SINK_BETWEEN, SINK_COMMIT };

/* Sends one segment's COPY data, or (abort_copy: the batch failed already)
 * fails the COPY, so that the server skips the rest of the string. */
static void sink_pg_copy_send(struct sink_pg *sk, const struct sink_batch *b, size_t seg, bool abort_copy)
{
	size_t lo, hi, off = 0, from, len;

	if (abort_copy) {
		PQputCopyEnd(sk->pg, "the batch failed before this COPY");
		return;
	}
	sink_pg_seg(b, seg, &lo, &hi);
	from = b->msgs[lo].copy_off;
	len = b->msgs[hi - 1].copy_off + b->msgs[hi - 1].copy_len - from;
	while (off < len) {
		size_t n = len - off < SINK_COPY_CHUNK ? len - off : SINK_COPY_CHUNK;
		if (PQputCopyData(sk->pg, b->copy_data + from + off, (int)n) != 1)
			break; /* the error comes back from PQgetResult */
		off += n;
	}
	PQputCopyEnd(sk->pg, off < len ? "client failed to send the data" : NULL);
}

/* The batch's rows in one simple-protocol query string (sqlgen_batch): one
 * round trip per segment plus one (EXACTLY: plus the COMMIT's, sent once the
 * compare-and-set's result is read), however many statements.  For batches
 * without decode errors whose partitions all have their progress row
 * (progress_known, or at-most, whose offsets are committed already); the
 * others, and a batch whose rows the database rejects, take the statement
 * by statement path.  *fallback: the transaction is open, the savepoint
 * rolled back, nothing of the batch written; the caller writes the rows part
 * by part (sink_pg_write_part), then the progress, and commits. */
static int sink_pg_write_fast(struct sink_pg *sk, const struct sink_batch *b, bool atmost,
			      struct sink_batch_result *res, bool *fallback, char *err, size_t errlen)
{
	const char *writes[SQLGEN_WRITE_MAX];
	char *prog = NULL, *sql = NULL;
	enum sink_step *steps = NULL;
	size_t nprog = 0, nw = 0, nseg = sink_pg_nseg(b), nsteps = 0, k, i, seg = 0, wi = 0;
	bool fast = false, async, fence_miss = false, committed = false, copying = false;
	bool fenced = !atmost && progress_put_checks(sk->prog);
	bool post_error = false; /* a COPY or a write failed */
	PGresult *r, *fence = NULL;
	int64_t written = 0, updated = 0, deleted = 0;
	int rc = WERR_OK, frc;

	*fallback = false;
	async = !atmost && sink_pg_async_commit(sk, b);
	if (!atmost && (prog = progress_put_sql(sk->prog, b->topic, b->progress, b->nprogress, &nprog)) == NULL)
		goto oom;
	if (sk->direct_sql == NULL) {
		fast = sk->w.fast != NULL && sk->fast_skip == 0;
		if (fast)
			writes[nw++] = SINK_FAST_NAME;
		else
			for (i = 0; i < sk->w.nwrite; i++)
				writes[nw++] = sink_write_names[i];
	}
	sql = sqlgen_batch(sk->direct_sql ? sk->direct_sql : sk->copy_sql, prog, async, writes, nw, nseg,
			   sk->direct_sql ? NULL : "DELETE FROM pg_temp." SQLGEN_STAGE_TABLE, !fenced);
	steps = calloc(4 + nprog + nseg * (2 + nw), sizeof(*steps));
	if (sql == NULL || steps == NULL)
		goto oom;
	steps[nsteps++] = SINK_BEGIN;
	if (async)
		steps[nsteps++] = SINK_SET;
	steps[nsteps++] = SINK_SAVEPOINT;
	for (k = 0; k < nseg; k++) {
		if (k > 0 && sk->direct_sql == NULL)
			steps[nsteps++] = SINK_BETWEEN;
		steps[nsteps++] = SINK_COPY;
		for (i = 0; i < nw; i++)
			steps[nsteps++] = SINK_WRITE;
	}
	for (i = 0; i < nprog; i++)
		steps[nsteps++] = SINK_PROGRESS;
	if (!fenced)
		steps[nsteps++] = SINK_COMMIT;
	if (!PQsendQuery(sk->pg, sql)) {
		rc = sink_pg_error(sk, NULL, "sending the batch", err, errlen);
		goto out;
	}
	/* One result per statement, in order; after a failure the server skips
	 * the rest of the string and the results end.  A COPY answers twice:
	 * COPY_IN (send its data), then its command result. */
	for (k = 0, i = 0; (r = PQgetResult(sk->pg)) != NULL;) {
		ExecStatusType st = PQresultStatus(r);
		enum sink_step step = k < nsteps ? steps[k] : SINK_COMMIT;

		if (st == PGRES_COPY_IN) {
			PQclear(r);
			sink_pg_copy_send(sk, b, seg, rc != WERR_OK);
			copying = true;
			continue;
		}
		k++;
		if (step == SINK_WRITE)
			wi = i++ % (nw ? nw : 1);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			if (rc == WERR_OK) {
				char column[128], what[192];
				switch (step) {
				case SINK_COPY:
					sink_pg_copy_line(r, column, sizeof(column));
					snprintf(what, sizeof(what), "loading the batch%s%s", column[0] ? ", column " : "",
						 column);
					break;
				case SINK_WRITE:
					snprintf(what, sizeof(what), "%s",
						 sqlgen_write_what(&sk->cat->job, fast ? 0 : wi, fast ? 1 : nw));
					break;
				case SINK_PROGRESS:
					snprintf(what, sizeof(what), "storing the offsets in the progress table");
					break;
				case SINK_SAVEPOINT:
				case SINK_BETWEEN:
					snprintf(what, sizeof(what), "starting a part of the batch");
					break;
				case SINK_COMMIT:
					snprintf(what, sizeof(what), "committing the batch");
					break;
				default:
					snprintf(what, sizeof(what), "starting the batch transaction");
					break;
				}
				rc = sink_pg_error(sk, r, what, err, errlen);
				post_error = step == SINK_COPY || step == SINK_WRITE || step == SINK_BETWEEN;
			}
			PQclear(r);
			continue;
		}
		switch (step) {
		case SINK_PROGRESS:
			if (fenced && fence == NULL) {
				fence = r; /* the compare-and-set: looked at once rolled back */
				fence_miss = (size_t)PQntuples(r) != b->nprogress;
				continue;
			}
			break;
		case SINK_COPY:
			if (copying)
				seg++;
			copying = false;
			if (sk->direct_sql != NULL)
				written += strtoll(PQcmdTuples(r), NULL, 10);
			break;
		case SINK_WRITE:
			if (sqlgen_write_counts(&sk->cat->job, wi)) {
				written += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
				updated += strtoll(PQgetvalue(r, 0, 1), NULL, 10);
			} else if (sqlgen_write_deletes(&sk->cat->job, wi, nw)) {
				deleted += strtoll(PQcmdTuples(r), NULL, 10);
			} else {
				int64_t n = strtoll(PQcmdTuples(r), NULL, 10);
				written += n;
				if (sqlgen_write_updates(&sk->cat->job, wi, nw))
					updated += n;
			}
			break;
		case SINK_COMMIT:
			committed = true;
			break;
		default:
			break;
		}
		PQclear(r);
	}
	/* EXACTLY: the rows are written and the progress rows locked; COMMIT
	 * only if the compare-and-set changed every partition. */
	if (rc == WERR_OK && fenced && fence != NULL && !fence_miss) {
		if ((rc = sink_pg_exec(sk, "COMMIT", "committing the batch", err, errlen)) != WERR_OK)
			goto out;
		committed = true;
	}
	if (rc == WERR_OK && committed) {
		res->rows = written;
		res->updated = updated;
		res->deleted = deleted;
		goto out;
	}
	if (rc == WERR_OK && fence_miss) {
		if (PQstatus(sk->pg) == CONNECTION_OK)
			PQclear(PQexec(sk->pg, "ROLLBACK"));
		rc = progress_put_result(sk->prog, b->topic, b->progress, b->nprogress, fence, err, errlen);
		goto out;
	}
	if (rc == WERR_OK) /* ended early without an error: a broken connection */
		rc = sink_pg_error(sk, NULL, "writing the batch", err, errlen);
	/* Rows the database rejects, or keys repeated within a segment for the
	 * upsert without DISTINCT ON: undo the rows (the savepoint is before the
	 * first COPY) and let the statement by statement path split them or
	 * write them with DISTINCT ON. */
	if (post_error && PQstatus(sk->pg) == CONNECTION_OK && PQtransactionStatus(sk->pg) == PQTRANS_INERROR &&
	    (sink_pg_row_error(sk, rc) || (fast && strcmp(sk->last_sqlstate, "21000") == 0))) {
		if (fast && strcmp(sk->last_sqlstate, "21000") == 0) {
			log_debug("keys repeat within the batch; writing it with DISTINCT ON");
			sk->fast_skip = SINK_FAST_SKIP;
		}
		frc = sink_pg_exec(sk, "ROLLBACK TO SAVEPOINT " SQLGEN_SAVEPOINT "; RELEASE SAVEPOINT " SQLGEN_SAVEPOINT,
				   "undoing a part of the batch", err, errlen);
		if (frc == WERR_OK) {
			*fallback = true;
			rc = WERR_OK;
		} else {
			rc = frc;
		}
	}
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
	rc = WERR_RETRY;
out:
	PQclear(fence);
	free(steps);
	free(prog);
	free(sql);
	return rc;
}

/* The rows of every segment, statement by statement, each in its savepoint. */
static int sink_pg_write_parts(struct sink_pg *sk, const struct sink_batch *b, struct sink_batch_result *res,
			       char *err, size_t errlen)
{
	size_t s, lo, hi, n = sink_pg_nseg(b);
	int rc = WERR_OK;

	for (s = 0; s < n && rc == WERR_OK; s++) {
		sink_pg_seg(b, s, &lo, &hi);
		rc = sink_pg_write_part(sk, b, lo, hi, s + 1 == n, res, err, errlen);
	}
	return rc;
}

static int sink_pg_write_once(struct sink_pg *sk, const struct sink_batch *b, struct sink_batch_result *res,
			      char *err, size_t errlen)
{
	bool in_tx = false, atmost = sk->spec->consistency == JS_CONSISTENCY_ATMOST;
	size_t i;
	int rc;

	memset(res, 0, sizeof(*res));
	sk->last_sqlstate[0] = '\0';
	if (sk->fast_skip > 0)
		sk->fast_skip--;
	if (atmost) {
		/* Offsets first, in their own transaction: a crash before the rows
		 * are committed loses this batch and never writes it twice. */
		if ((rc = sink_pg_exec(sk, "BEGIN", "starting the progress transaction", err, errlen)) != WERR_OK)
			goto out;
		in_tx = true;
		if ((rc = progress_put(sk->prog, b->topic, b->progress, b->nprogress, err, errlen)) != WERR_OK)
			goto out;
		if ((rc = sink_pg_exec(sk, "COMMIT", "committing the offsets", err, errlen)) != WERR_OK)
			goto out;
		in_tx = false;
	}
	/* Rejected messages go first, with their own statements; otherwise the
	 * BEGIN rides with the first SAVEPOINT. */
	for (i = 0; i < b->nmsgs && b->msgs[i].error == NULL; i++)
		;
	in_tx = true;
	if (i == b->nmsgs && b->nmsgs > 0 && (atmost || progress_known(sk->prog, b->progress, b->nprogress))) {
		bool fallback;

		if ((rc = sink_pg_write_fast(sk, b, atmost, res, &fallback, err, errlen)) != WERR_OK) {
			in_tx = rc != WERR_FENCED; /* a fence miss was rolled back already */
			goto out;
		}
		if (!fallback) {
			in_tx = false;
			goto committed;
		}
		/* In the transaction, nothing written yet: the rows part by part,
		 * then the progress. */
		if ((rc = sink_pg_write_parts(sk, b, res, err, errlen)) != WERR_OK)
			goto out;
		if (!atmost &&
		    (rc = progress_put(sk->prog, b->topic, b->progress, b->nprogress, err, errlen)) != WERR_OK)
			goto out;
		if ((rc = sink_pg_exec(sk, "COMMIT", "committing the batch", err, errlen)) != WERR_OK)
			goto out;
		in_tx = false;
		goto committed;
	}
	sk->begin_pending = i == b->nmsgs;
	if (!sk->begin_pending &&
	    (rc = sink_pg_exec(sk, "BEGIN", "starting the batch transaction", err, errlen)) != WERR_OK)
		goto out;
	for (i = 0; i < b->nmsgs; i++)
		if (b->msgs[i].error != NULL &&
		    (rc = sink_pg_reject(sk, b->topic, &b->msgs[i], b->msgs[i].error, res, err, errlen)) != WERR_OK)
			goto out;
	if ((rc = sink_pg_write_parts(sk, b, res, err, errlen)) != WERR_OK)
		goto out;
	if (sk->begin_pending) { /* no row to write: nothing took it */
		sk->begin_pending = false;
		if ((rc = sink_pg_exec(sk, "BEGIN", "starting the batch transaction", err, errlen)) != WERR_OK)
			goto out;
	}
	if (!atmost && (rc = progress_put(sk->prog, b->topic, b->progress, b->nprogress, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_exec(sk, "COMMIT", "committing the batch", err, errlen)) != WERR_OK)
		goto out;
	in_tx = false;
committed:
	if (!atmost)
		progress_committed(sk->prog, b->progress, b->nprogress);
out:
	if (rc != WERR_OK) {
		res->rows = 0;
		res->updated = 0;
		res->deleted = 0;
		res->rejected = 0;
	}
	sk->begin_pending = false;
	if (in_tx && PQstatus(sk->pg) == CONNECTION_OK)
		PQclear(PQexec(sk->pg, "ROLLBACK"));
	return rc;
}

/* Milliseconds before retry attempt (0-based) of a batch that met a
 * deadlock: 20 ms doubling, each drawn in [d/2, d] so that the two
 * transactions that collided do not come back in step. */
static long sink_pg_backoff_ms(struct sink_pg *sk, int attempt)
{
	long d = SINK_TX_BACKOFF_MS << attempt;

	/* xorshift32: no shared state with rand(), no need for quality */
	sk->jitter ^= sk->jitter << 13;
	sk->jitter ^= sk->jitter >> 17;
	sk->jitter ^= sk->jitter << 5;
	return d / 2 + (long)(sk->jitter % (uint32_t)(d / 2 + 1));
}

int sink_pg_write_batch(struct sink_pg *sk, const struct sink_batch *b, struct sink_batch_result *res, char *err,
			size_t errlen)
{
	int attempt, rc;

	for (attempt = 0;; attempt++) {
		struct timespec ts;
		long ms;

		rc = sink_pg_write_once(sk, b, res, err, errlen);
		/* A deadlock or serialization failure rolled the whole batch
		 * back (the fenced progress too, so its expected offsets still
		 * hold): write the same batch again, in place, rather than exit
		 * and be restarted.  Past SINK_TX_RETRIES it is the retriable
		 * failure it always was. */
		if (rc != WERR_RETRY || !pg_retry_batch(sk->last_sqlstate) || attempt >= SINK_TX_RETRIES ||
		    PQstatus(sk->pg) != CONNECTION_OK)
			return rc;
		ms = sink_pg_backoff_ms(sk, attempt);
		log_warn("%s; writing the batch again in %ld ms (retry %d of %d)", err, ms, attempt + 1,
			 SINK_TX_RETRIES);
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		nanosleep(&ts, NULL);
	}
}

void sink_pg_close(struct sink_pg *sk)
{
	if (sk == NULL)
		return;
	progress_free(sk->prog);
	catalog_free(sk->cat);
	if (sk->pg != NULL)
		PQfinish(sk->pg);
	free(sk->stage_sql);
	free(sk->copy_sql);
	free(sk->direct_sql);
	sqlgen_writes_free(&sk->w);
	free(sk);
}
