#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "sqlbuf.h"

/* Key of the advisory lock that serialises creating the worker's tables. */
#define PROGRESS_LOCK_KEY "7411953"

static const struct {
	const char *table;
	const char *columns;
	const char *what;
} progress_tables[] = {
	{ PROGRESS_TABLE,
	  "(job_name text, topic text, partition int, next_offset bigint NOT NULL, "
	  "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job_name, topic, partition))",
	  "progress table" },
	/* proto.h documents it: the API's errors page reads it. */
	{ PROGRESS_ERRORS_TABLE,
	  "(id bigserial PRIMARY KEY, job_name text NOT NULL, topic text NOT NULL, partition int NOT NULL, "
	  "\"offset\" bigint NOT NULL, key bytea, value bytea, error text NOT NULL, "
	  "created_at timestamptz NOT NULL DEFAULT now())",
	  "error table" },
};

/* The sink's prepared statements. */
static const char *const progress_names[PROGRESS_WRITE_MAX] = { "ss_progress_0", "ss_progress_1" };
#define PROGRESS_REJECT_NAME "ss_error"

struct progress {
	PGconn *pg; /* the sink's */
	char *schema;
	char *job_name;
	bool use;    /* not with CONSISTENCY none */
	bool fenced; /* EXACTLY: compare-and-set */
	size_t nwrite;
	/* EXACTLY: the next offset stored per partition, as last read or written */
	struct part_offset *stored;
	size_t nstored;
};

static int progress_oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory");
	return WERR_RETRY;
}

const char *progress_schema(const struct jobspec *spec)
{
	if (spec->metadata_schema != NULL)
		return spec->metadata_schema;
	return spec->schema != NULL ? spec->schema : "public";
}

static void progress_sql_name(struct sqlbuf *sb, const char *schema, const char *table)
{
	sqlbuf_ident(sb, schema);
	sqlbuf_add(sb, ".");
	sqlbuf_add(sb, table);
}

char *progress_sql_create(const char *schema, const char *table)
{
	struct sqlbuf sb = { 0 };
	size_t i;

	for (i = 0; i < sizeof(progress_tables) / sizeof(progress_tables[0]); i++)
		if (strcmp(progress_tables[i].table, table) == 0)
			break;
	if (i == sizeof(progress_tables) / sizeof(progress_tables[0]))
		return NULL;
	/* Concurrent CREATE TABLE IF NOT EXISTS of one name races in PostgreSQL (the
	 * loser fails on the table's row type, 42710 or 23505), and workers of
	 * several jobs start at once.  Both statements in one query string run in
	 * one implicit transaction, so the advisory lock is held until the table
	 * is committed, and the next worker's IF NOT EXISTS then sees it. */
	sqlbuf_add(&sb, "SELECT pg_advisory_xact_lock(" PROGRESS_LOCK_KEY "); CREATE TABLE IF NOT EXISTS ");
	progress_sql_name(&sb, schema, table);
	sqlbuf_add(&sb, " ");
	sqlbuf_add(&sb, progress_tables[i].columns);
	return sqlbuf_take(&sb);
}

int progress_table_ensure(PGconn *pg, const char *schema, const char *table, char *err, size_t errlen)
{
	char oid[32], what[64], *sql = NULL;
	const char *name = strcmp(table, PROGRESS_TABLE) == 0 ? "progress table" : "error table";
	int rc;

	rc = pg_table_oid(pg, schema, table, oid, sizeof(oid), err, errlen);
	if (rc != WERR_OK || oid[0] != '\0')
		goto out;
	if ((sql = progress_sql_create(schema, table)) == NULL) {
		rc = progress_oom(err, errlen);
		goto out;
	}
	snprintf(what, sizeof(what), "creating the %s", name);
	rc = pg_exec(pg, sql, what, NULL, err, errlen);
out:
	if (rc == WERR_OK)
		log_info("%s %s.%s ready", name, schema, table);
	free(sql);
	return rc;
}

size_t progress_nwrite(bool fenced, bool on_conflict)
{
	return on_conflict && !fenced ? 1 : 2;
}

char *progress_sql_write(const char *schema, bool fenced, bool on_conflict, size_t which)
{
	struct sqlbuf sb = { 0 };

	if (which == 0 && (fenced || !on_conflict)) {
		/* Fenced: a concurrent writer of the same row makes this wait for
		 * its commit, then re-check the condition against the new value. */
		sqlbuf_add(&sb, "UPDATE ");
		progress_sql_name(&sb, schema, PROGRESS_TABLE);
		sqlbuf_add(&sb, " AS t SET next_offset = u.o, updated_at = now() FROM unnest($3::int[], $4::bigint[]");
		sqlbuf_add(&sb, fenced ? ", $5::bigint[]) AS u(p, o, e)" : ") AS u(p, o)");
		sqlbuf_add(&sb, " WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p");
		if (fenced)
			sqlbuf_add(&sb, " AND t.next_offset = u.e RETURNING t.partition");
		return sqlbuf_take(&sb);
	}
	sqlbuf_add(&sb, "INSERT INTO ");
	progress_sql_name(&sb, schema, PROGRESS_TABLE);
	sqlbuf_add(&sb, " (job_name, topic, partition, next_offset) "
			"SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o)");
	if (fenced) {
		/* Partitions without a row: exactly one worker may create it; the
		 * other's unique violation or empty result is a fence miss. */
		sqlbuf_add(&sb, on_conflict ? " ON CONFLICT DO NOTHING RETURNING partition" : " RETURNING partition");
	} else if (on_conflict) {
		sqlbuf_add(&sb, " ON CONFLICT (job_name, topic, partition) DO UPDATE "
				"SET next_offset = EXCLUDED.next_offset, updated_at = now()");
	} else {
		/* One writer per job: nobody inserts these rows concurrently. */
		sqlbuf_add(&sb, " WHERE NOT EXISTS (SELECT 1 FROM ");
		progress_sql_name(&sb, schema, PROGRESS_TABLE);
		sqlbuf_add(&sb, " AS t WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p)");
	}
	return sqlbuf_take(&sb);
}

/* $1 job, $2 topic, $3 partition, $4 offset, $5 key, $6 value (binary), $7 error */
static char *progress_sql_reject(const char *schema)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, "INSERT INTO ");
	progress_sql_name(&sb, schema, PROGRESS_ERRORS_TABLE);
	sqlbuf_add(&sb, " (job_name, topic, partition, \"offset\", key, value, error) "
			"VALUES ($1, $2, $3::int, $4::bigint, $5::bytea, $6::bytea, $7)");
	return sqlbuf_take(&sb);
}

/* PostgreSQL array literal of the partitions or next offsets: {1,2,3} */
static char *progress_array(const struct part_offset *p, size_t n, bool offsets)
{
	struct sqlbuf sb = { 0 };
	char num[32];
	size_t i;

	sqlbuf_add(&sb, "{");
	for (i = 0; i < n; i++) {
		if (offsets)
			snprintf(num, sizeof(num), "%s%lld", i ? "," : "", (long long)p[i].next_offset);
		else
			snprintf(num, sizeof(num), "%s%d", i ? "," : "", (int)p[i].partition);
		sqlbuf_add(&sb, num);
	}
	sqlbuf_add(&sb, "}");
	return sqlbuf_take(&sb);
}

int progress_read(PGconn *pg, const char *schema, const char *job_name, const char *topic, const int32_t *parts,
		  size_t n, int64_t *next, char *err, size_t errlen)
{
	const char *params[2] = { job_name, topic };
	struct sqlbuf sb = { 0 };
	PGresult *res = NULL;
	char *sql;
	size_t i;
	int r, rc;

	for (i = 0; i < n; i++)
		next[i] = -1;
	sqlbuf_add(&sb, "SELECT partition, next_offset FROM ");
	progress_sql_name(&sb, schema, PROGRESS_TABLE);
	sqlbuf_add(&sb, " WHERE job_name = $1 AND topic = $2");
	if ((sql = sqlbuf_take(&sb)) == NULL)
		return progress_oom(err, errlen);
	rc = pg_query(pg, sql, 2, params, &res, "reading the stored offsets", NULL, err, errlen);
	for (r = 0; rc == WERR_OK && r < PQntuples(res); r++) {
		long part = strtol(PQgetvalue(res, r, 0), NULL, 10);
		long long off = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		for (i = 0; i < n; i++)
			if (parts[i] == part)
				next[i] = off;
	}
	PQclear(res);
	free(sql);
	return rc;
}

int progress_reset(PGconn *pg, const char *schema, const char *job_name, const char *topic,
		   const struct part_offset *offs, size_t n, char *err, size_t errlen)
{
	char *create = NULL, *update = NULL, *insert = NULL, *parts = NULL, *offsets = NULL, oid[32];
	const char *params[4];
	bool begun = false;
	int rc;

	if ((rc = pg_table_oid(pg, schema, PROGRESS_TABLE, oid, sizeof(oid), err, errlen)) != WERR_OK)
		goto out;
	/* UPDATE then INSERT ... WHERE NOT EXISTS works on every server (no
	 * ON CONFLICT before 9.5). */
	create = progress_sql_create(schema, PROGRESS_TABLE);
	update = progress_sql_write(schema, false, false, 0);
	insert = progress_sql_write(schema, false, false, 1);
	parts = progress_array(offs, n, false);
	offsets = progress_array(offs, n, true);
	if (create == NULL || update == NULL || insert == NULL || parts == NULL || offsets == NULL) {
		rc = progress_oom(err, errlen);
		goto out;
	}
	params[0] = job_name;
	params[1] = topic;
	params[2] = parts;
	params[3] = offsets;
	if ((rc = pg_exec(pg, "BEGIN", "starting the transaction", NULL, err, errlen)) != WERR_OK)
		goto out;
	begun = true;
	if (oid[0] == '\0' && (rc = pg_exec(pg, create, "creating the progress table", NULL, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = pg_query(pg, update, 4, params, NULL, "updating the progress table", NULL, err, errlen)) !=
	    WERR_OK)
		goto out;
	if ((rc = pg_query(pg, insert, 4, params, NULL, "inserting into the progress table", NULL, err, errlen)) !=
	    WERR_OK)
		goto out;
	if ((rc = pg_exec(pg, "COMMIT", "committing the progress table", NULL, err, errlen)) != WERR_OK)
		goto out;
	begun = false;
out:
	if (begun && PQstatus(pg) == CONNECTION_OK)
		PQclear(PQexec(pg, "ROLLBACK"));
	free(create);
	free(update);
	free(insert);
	free(parts);
	free(offsets);
	return rc;
}

int progress_open(PGconn *pg, const char *schema, const char *job_name, enum js_consistency consistency,
		  bool on_conflict, struct progress **out, char *err, size_t errlen)
{
	struct progress *pr = calloc(1, sizeof(*pr));
	char *sql = NULL;
	size_t i;
	int rc = WERR_OK;

	*out = NULL;
	if (pr == NULL || (pr->schema = strdup(schema)) == NULL || (pr->job_name = strdup(job_name)) == NULL)
		goto oom;
	pr->pg = pg;
	pr->use = consistency != JS_CONSISTENCY_NONE;
	pr->fenced = consistency == JS_CONSISTENCY_EXACTLY;
	pr->nwrite = pr->use ? progress_nwrite(pr->fenced, on_conflict) : 0;
	if (pr->use && (rc = progress_table_ensure(pg, schema, PROGRESS_TABLE, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = progress_table_ensure(pg, schema, PROGRESS_ERRORS_TABLE, err, errlen)) != WERR_OK)
		goto out;
	if ((sql = progress_sql_reject(schema)) == NULL)
		goto oom;
	if ((rc = pg_prepare(pg, PROGRESS_REJECT_NAME, sql, "preparing the error table insert", NULL, err,
			     errlen)) != WERR_OK)
		goto out;
	for (i = 0; i < pr->nwrite; i++) {
		free(sql);
		if ((sql = progress_sql_write(schema, pr->fenced, on_conflict, i)) == NULL)
			goto oom;
		if ((rc = pg_prepare(pg, progress_names[i], sql, "preparing the progress update", NULL, err,
				     errlen)) != WERR_OK)
			goto out;
	}
	*out = pr;
	pr = NULL;
	goto out;
oom:
	rc = progress_oom(err, errlen);
out:
	free(sql);
	progress_free(pr);
	return rc;
}

int progress_get(struct progress *pr, const char *topic, const int32_t *parts, size_t n, int64_t *next, char *err,
		 size_t errlen)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		next[i] = -1;
	pr->nstored = 0;
	if (!pr->use)
		return WERR_OK;
	if ((rc = progress_read(pr->pg, pr->schema, pr->job_name, topic, parts, n, next, err, errlen)) != WERR_OK)
		return rc;
	free(pr->stored);
	pr->stored = calloc(n ? n : 1, sizeof(*pr->stored));
	if (pr->stored == NULL)
		return progress_oom(err, errlen);
	for (i = 0; i < n; i++) {
		if (next[i] < 0)
			continue;
		pr->stored[pr->nstored].partition = parts[i];
		pr->stored[pr->nstored++].next_offset = next[i];
	}
	return WERR_OK;
}

static int64_t progress_stored(const struct progress *pr, int32_t partition)
{
	size_t i;

	for (i = 0; i < pr->nstored; i++)
		if (pr->stored[i].partition == partition)
			return pr->stored[i].next_offset;
	return -1;
}

void progress_committed(struct progress *pr, const struct part_offset *p, size_t n)
{
	size_t i, j;

	if (!pr->use)
		return;
	for (i = 0; i < n; i++) {
		for (j = 0; j < pr->nstored; j++)
			if (pr->stored[j].partition == p[i].partition)
				break;
		if (j == pr->nstored) {
			struct part_offset *q = realloc(pr->stored, (pr->nstored + 1) * sizeof(*q));
			if (q == NULL)
				continue; /* then the next batch misses the fence and restarts: safe */
			pr->stored = q;
			pr->nstored++;
			pr->stored[j].partition = p[i].partition;
		}
		pr->stored[j].next_offset = p[i].next_offset;
	}
}

bool progress_known(const struct progress *pr, const struct part_offset *p, size_t n)
{
	size_t i;

	if (!pr->use)
		return true;
	for (i = 0; i < n; i++)
		if (progress_stored(pr, p[i].partition) < 0)
			return false;
	return true;
}

char *progress_sql_execute(const char *name, const char *const *literals, size_t n)
{
	struct sqlbuf sb = { 0 };
	size_t i;

	sqlbuf_add(&sb, "EXECUTE ");
	sqlbuf_add(&sb, name); /* ours, a plain name */
	sqlbuf_add(&sb, "(");
	for (i = 0; i < n; i++) {
		if (i > 0)
			sqlbuf_add(&sb, ", ");
		sqlbuf_add(&sb, literals[i]); /* quoted by the caller */
	}
	sqlbuf_add(&sb, ")");
	return sqlbuf_take(&sb);
}

char *progress_put_sql(struct progress *pr, const char *topic, const struct part_offset *p, size_t n,
		       size_t *nstmts)
{
	struct part_offset *exp = NULL;
	char *raw[5] = { NULL, NULL, NULL, NULL, NULL }, *lit[5] = { NULL, NULL, NULL, NULL, NULL };
	char *one = NULL, *out = NULL;
	struct sqlbuf sb = { 0 };
	size_t i, nparam = pr->fenced ? 5 : 4;
	bool ok = true;

	*nstmts = 0;
	if (!pr->use || n == 0)
		return strdup("");
	if (pr->fenced) {
		if ((exp = calloc(n, sizeof(*exp))) == NULL)
			return NULL;
		for (i = 0; i < n; i++) {
			exp[i].partition = p[i].partition;
			exp[i].next_offset = progress_stored(pr, p[i].partition);
		}
	}
	raw[2] = progress_array(p, n, false);
	raw[3] = progress_array(p, n, true);
	raw[4] = pr->fenced ? progress_array(exp, n, true) : NULL;
	lit[0] = PQescapeLiteral(pr->pg, pr->job_name, strlen(pr->job_name));
	lit[1] = PQescapeLiteral(pr->pg, topic, strlen(topic));
	for (i = 2; i < nparam; i++) /* digits, commas and braces only */
		lit[i] = raw[i] != NULL ? PQescapeLiteral(pr->pg, raw[i], strlen(raw[i])) : NULL;
	for (i = 0; i < nparam; i++)
		ok = ok && lit[i] != NULL;
	/* Fenced: only the compare-and-set (every partition has its row,
	 * progress_known).  Unfenced: the upsert, or UPDATE then INSERT. */
	for (i = 0; ok && i < (pr->fenced ? 1 : pr->nwrite); i++) {
		if ((one = progress_sql_execute(progress_names[i], (const char *const *)lit, nparam)) == NULL) {
			ok = false;
			break;
		}
		if (i > 0)
			sqlbuf_add(&sb, "; ");
		sqlbuf_add(&sb, one);
		free(one);
		(*nstmts)++;
	}
	out = sqlbuf_take(&sb);
	if (!ok) {
		free(out);
		out = NULL;
	}
	for (i = 0; i < 5; i++) {
		free(raw[i]);
		if (lit[i] != NULL)
			PQfreemem(lit[i]);
	}
	free(exp);
	return out;
}

bool progress_put_checks(const struct progress *pr)
{
	return pr->use && pr->fenced;
}

/* Fence miss: says which partition moved and where to. */
static int progress_fence_miss(struct progress *pr, const char *topic, const struct part_offset *p, size_t n,
			       const PGresult *done, char *err, size_t errlen)
{
	const struct part_offset *miss = &p[0];
	char part[16], stored[32] = "none";
	const char *params[3] = { pr->job_name, topic, part };
	struct sqlbuf sb = { 0 };
	PGresult *res = NULL;
	char *sql;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		bool found = false;
		for (r = 0; done != NULL && r < PQntuples(done) && !found; r++)
			found = strtol(PQgetvalue(done, r, 0), NULL, 10) == p[i].partition;
		if (!found) {
			miss = &p[i];
			break;
		}
	}
	snprintf(part, sizeof(part), "%d", (int)miss->partition);
	sqlbuf_add(&sb, "SELECT next_offset FROM ");
	progress_sql_name(&sb, pr->schema, PROGRESS_TABLE);
	sqlbuf_add(&sb, " WHERE job_name = $1 AND topic = $2 AND partition = $3::int");
	if ((sql = sqlbuf_take(&sb)) != NULL) {
		res = PQexecParams(pr->pg, sql, 3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			snprintf(stored, sizeof(stored), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		free(sql);
	}
	if (progress_stored(pr, miss->partition) >= 0)
		snprintf(err, errlen, "partition %d was advanced by another task (stored %s, expected %lld)",
			 (int)miss->partition, stored, (long long)progress_stored(pr, miss->partition));
	else
		snprintf(err, errlen, "partition %d was advanced by another task (stored %s, expected no row)",
			 (int)miss->partition, stored);
	return WERR_FENCED;
}

int progress_put_result(struct progress *pr, const char *topic, const struct part_offset *p, size_t n,
			const PGresult *res, char *err, size_t errlen)
{
	if (res != NULL && (size_t)PQntuples(res) == n)
		return WERR_OK;
	return progress_fence_miss(pr, topic, p, n, res, err, errlen);
}

/* EXACTLY: compare-and-set of every partition of the batch. */
static int progress_put_fenced(struct progress *pr, const char *topic, const struct part_offset *p, size_t n,
			       char *err, size_t errlen)
{
	struct part_offset *upd = calloc(n ? n : 1, sizeof(*upd)), *ins = calloc(n ? n : 1, sizeof(*ins));
	struct part_offset *exp = calloc(n ? n : 1, sizeof(*exp));
	char *a[5] = { NULL, NULL, NULL, NULL, NULL }, sqlstate[PG_SQLSTATE_SIZE];
	const char *params[5];
	size_t i, nupd = 0, nins = 0;
	PGresult *res = NULL;
	int rc = WERR_OK;

	if (upd == NULL || ins == NULL || exp == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		int64_t e = progress_stored(pr, p[i].partition);
		if (e >= 0) {
			exp[nupd].partition = p[i].partition;
			exp[nupd].next_offset = e;
			upd[nupd++] = p[i];
		} else {
			ins[nins++] = p[i];
		}
	}
	params[0] = pr->job_name;
	params[1] = topic;
	if (nupd > 0) {
		a[0] = progress_array(upd, nupd, false);
		a[1] = progress_array(upd, nupd, true);
		a[2] = progress_array(exp, nupd, true);
		if (a[0] == NULL || a[1] == NULL || a[2] == NULL)
			goto oom;
		params[2] = a[0];
		params[3] = a[1];
		params[4] = a[2];
		rc = pg_exec_prepared(pr->pg, progress_names[0], 5, params, NULL, NULL, &res,
				      "storing the offsets in the progress table", NULL, err, errlen);
		if (rc != WERR_OK)
			goto out;
		if ((size_t)PQntuples(res) != nupd) {
			rc = progress_fence_miss(pr, topic, upd, nupd, res, err, errlen);
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	if (nins > 0) {
		a[3] = progress_array(ins, nins, false);
		a[4] = progress_array(ins, nins, true);
		if (a[3] == NULL || a[4] == NULL)
			goto oom;
		params[2] = a[3];
		params[3] = a[4];
		rc = pg_exec_prepared(pr->pg, progress_names[1], 4, params, NULL, NULL, &res,
				      "storing the offsets in the progress table", sqlstate, err, errlen);
		if (rc == WERR_DATA && strcmp(sqlstate, "23505") == 0) {
			/* without ON CONFLICT: the other worker inserted first */
			PQclear(PQexec(pr->pg, "ROLLBACK"));
			PQclear(PQexec(pr->pg, "BEGIN"));
			rc = progress_fence_miss(pr, topic, ins, nins, NULL, err, errlen);
			goto out;
		}
		if (rc != WERR_OK)
			goto out;
		if ((size_t)PQntuples(res) != nins) {
			rc = progress_fence_miss(pr, topic, ins, nins, res, err, errlen);
			goto out;
		}
	}
	goto out;
oom:
	rc = progress_oom(err, errlen);
out:
	PQclear(res);
	for (i = 0; i < 5; i++)
		free(a[i]);
	free(upd);
	free(ins);
	free(exp);
	return rc;
}

int progress_put(struct progress *pr, const char *topic, const struct part_offset *p, size_t n, char *err,
		 size_t errlen)
{
	char *parts = NULL, *offs = NULL;
	const char *params[4];
	size_t i;
	int rc = WERR_OK;

	if (!pr->use || n == 0)
		return WERR_OK;
	if (pr->fenced)
		return progress_put_fenced(pr, topic, p, n, err, errlen);
	parts = progress_array(p, n, false);
	offs = progress_array(p, n, true);
	if (parts == NULL || offs == NULL) {
		rc = progress_oom(err, errlen);
		goto out;
	}
	params[0] = pr->job_name;
	params[1] = topic;
	params[2] = parts;
	params[3] = offs;
	for (i = 0; i < pr->nwrite && rc == WERR_OK; i++)
		rc = pg_exec_prepared(pr->pg, progress_names[i], 4, params, NULL, NULL, NULL,
				      "storing the offsets in the progress table", NULL, err, errlen);
out:
	free(parts);
	free(offs);
	return rc;
}

int progress_reject(struct progress *pr, const char *topic, int32_t partition, int64_t offset, const char *key,
		    size_t key_len, const char *value, size_t value_len, const char *why, char *err, size_t errlen)
{
	char part[16], off[32];
	const char *params[7] = { pr->job_name, topic, part, off, key, value, why };
	int lengths[7] = { 0, 0, 0, 0, (int)key_len, (int)value_len, 0 };
	int formats[7] = { 0, 0, 0, 0, 1, 1, 0 };
	int rc;

	snprintf(part, sizeof(part), "%d", (int)partition);
	snprintf(off, sizeof(off), "%lld", (long long)offset);
	/* A NULL pointer is SQL NULL; an empty key or value is an empty bytea. */
	if (key != NULL && key_len == 0)
		params[4] = "";
	if (value != NULL && value_len == 0)
		params[5] = "";
	rc = pg_exec_prepared(pr->pg, PROGRESS_REJECT_NAME, 7, params, lengths, formats, NULL,
			      "writing a rejected message to the error table", NULL, err, errlen);
	return rc == WERR_DATA ? WERR_RETRY : rc; /* never the message's fault */
}

void progress_free(struct progress *pr)
{
	if (pr == NULL)
		return;
	free(pr->stored);
	free(pr->schema);
	free(pr->job_name);
	free(pr);
}
