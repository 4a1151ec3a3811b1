#include "catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "wtypes.h"

/* Row-level security (pg_class.relrowsecurity) arrived in PostgreSQL 9.5. */
#define CATALOG_ROW_SECURITY_VERSION 90500
/* pg_index.indnkeyatts (INCLUDE columns) arrived in PostgreSQL 11. */
#define CATALOG_INDNKEYATTS_VERSION 110000

/* A configuration problem.  In check mode it is reported and the caller goes
 * on (WERR_OK); otherwise it fills err ("field: message") and is fatal. */
static int catalog_problem(struct catalog *cat, const char *field, const char *code, char *err, size_t errlen,
			   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int catalog_problem(struct catalog *cat, const char *field, const char *code, char *err, size_t errlen,
			   const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cat->problem != NULL) {
		cat->problem(cat->ctx, field, code, msg);
		return WERR_OK;
	}
	if (field != NULL && strncmp(msg, field, strlen(field)) != 0)
		snprintf(err, errlen, "%s: %s", field, msg);
	else
		snprintf(err, errlen, "%s", msg);
	return WERR_FATAL;
}

static int catalog_oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory");
	return WERR_RETRY;
}

/* Identifiers are quoted, so "Orders" is not orders: point that out. */
static int catalog_table_missing(struct catalog *cat, const char *schema, const char *table, char *err,
				 size_t errlen)
{
	const char *params[2] = { schema, table };
	PGresult *res;
	int rc;

	res = PQexecParams(cat->pg, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
		PQclear(res);
		return catalog_problem(cat, "KAFKA.OUTPUT.SCHEMA", "no_table", err, errlen,
				       "schema \"%s\" does not exist, so table %s.%s does not either; create them or "
				       "fix OUTPUT.SCHEMA",
				       schema, schema, table);
	}
	PQclear(res);
	res = PQexecParams(cat->pg,
			   "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
			   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
			   "WHERE lower(n.nspname) = lower($1) AND lower(c.relname) = lower($2) "
			   "AND c.relkind IN ('r', 'p', 'f', 'v') LIMIT 1",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		rc = catalog_problem(cat, "KAFKA.OUTPUT.TABLE", "no_table", err, errlen,
				     "table %s.%s does not exist; names are case-sensitive: did you mean %s.%s? "
				     "Fix OUTPUT.SCHEMA / OUTPUT.TABLE",
				     schema, table, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	else
		rc = catalog_problem(cat, "KAFKA.OUTPUT.TABLE", "no_table", err, errlen,
				     "table %s.%s does not exist; create it or fix OUTPUT.SCHEMA / OUTPUT.TABLE",
				     schema, table);
	PQclear(res);
	return rc;
}

static int catalog_load_target(struct catalog *cat, char *err, size_t errlen)
{
	const char *params[1];
	PGresult *res = NULL;
	int rc, i, n;

	rc = pg_table_oid(cat->pg, cat->job.schema, cat->job.table, cat->target_oid, sizeof(cat->target_oid), err,
			  errlen);
	if (rc != WERR_OK)
		return rc;
	if (cat->target_oid[0] == '\0')
		return catalog_table_missing(cat, cat->job.schema, cat->job.table, err, errlen);
	params[0] = cat->target_oid;
	rc = pg_query(cat->pg,
		      "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
		      "pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname) "
		      "FROM pg_catalog.pg_attribute a "
		      "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
		      "JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace "
		      "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
		      1, params, &res, "reading the target table's columns", NULL, err, errlen);
	if (rc != WERR_OK)
		return rc;
	n = PQntuples(res);
	cat->tcols = calloc((size_t)n + 1, sizeof(*cat->tcols));
	for (i = 0; cat->tcols != NULL && i < n; i++) {
		struct catalog_tcol *t = &cat->tcols[i];
		t->name = strdup(PQgetvalue(res, i, 0));
		t->type = strdup(PQgetvalue(res, i, 1));
		t->cast = strdup(PQgetvalue(res, i, 2));
		cat->ntarget++;
		if (t->name == NULL || t->type == NULL || t->cast == NULL)
			break;
	}
	if (cat->tcols == NULL || i < n)
		rc = catalog_oom(err, errlen);
	PQclear(res);
	return rc;
}

static const struct catalog_tcol *catalog_tcol(const struct catalog *cat, const char *col)
{
	size_t i;

	for (i = 0; i < cat->ntarget; i++)
		if (strcmp(cat->tcols[i].name, col) == 0)
			return &cat->tcols[i];
	return NULL;
}

bool catalog_expr_is_column(const char *expr, const char *col)
{
	size_t n = strlen(col), m;

	while (*expr == ' ')
		expr++;
	m = strlen(expr);
	while (m > 0 && expr[m - 1] == ' ')
		m--;
	if (m == n && strncmp(expr, col, n) == 0)
		return true;
	return m == n + 2 && expr[0] == '"' && expr[m - 1] == '"' && strncmp(expr + 1, col, n) == 0;
}

static int catalog_value_find(const struct catalog *cat, const char *name)
{
	size_t i;

	for (i = 0; i < cat->job.nvalues; i++)
		if (strcmp(cat->values[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The staging columns in COPY order: KEY, VALUE, then META. */
static int catalog_stage_columns(struct catalog *cat, char *err, size_t errlen)
{
	const struct jobspec *spec = cat->spec;
	const struct js_input *inputs[2] = { &spec->key, &spec->value };
	const char *names[2] = { "KAFKA.INPUT.KEY", "KAFKA.INPUT.VALUE" };
	size_t i, k, n = 0, *ns = &cat->job.nstage;
	int rc;

	for (k = 0; k < 2; k++)
		if (inputs[k]->present)
			n += inputs[k]->ncolumns;
	if (spec->meta_present && spec->meta_column != NULL)
		n++;
	cat->stage = calloc(n + 1, sizeof(*cat->stage));
	cat->cols = calloc(n + 1, sizeof(*cat->cols));
	if (cat->stage == NULL || cat->cols == NULL)
		return catalog_oom(err, errlen);
	cat->job.stage = cat->cols;
	for (k = 0; k < 2; k++) {
		if (!inputs[k]->present)
			continue;
		for (i = 0; i < inputs[k]->ncolumns; i++) {
			cat->cols[*ns].name = inputs[k]->columns[i].name ? inputs[k]->columns[i].name : "";
			cat->stage[*ns].type = inputs[k]->columns[i].type;
			snprintf(cat->stage[*ns].path, sizeof(cat->stage[*ns].path), "%s.COLUMNS[%zu]", names[k], i);
			(*ns)++;
		}
	}
	if (spec->meta_present && spec->meta_column != NULL) {
		cat->cols[*ns].name = spec->meta_column;
		cat->stage[*ns].type = spec->meta_type ? spec->meta_type : "jsonb";
		snprintf(cat->stage[*ns].path, sizeof(cat->stage[*ns].path), "KAFKA.INPUT.META.COLUMNS[0]");
		(*ns)++;
	}
	for (i = 0; i < *ns; i++) {
		char field[CATALOG_PATH_MAX + 8];
		size_t j = 0;

		while (j < i && strcmp(cat->cols[j].name, cat->cols[i].name) != 0)
			j++;
		snprintf(field, sizeof(field), "%s.NAME", cat->stage[i].path);
		if (j < i) {
			rc = catalog_problem(cat, field, "other", err, errlen,
					     "source column \"%s\" is also %s; give every KEY, VALUE and META "
					     "column its own name",
					     cat->cols[i].name, cat->stage[j].path);
			if (rc != WERR_OK)
				return rc;
		}
		if (spec->mode != JS_MODE_INSERT && strcmp(cat->cols[i].name, SQLGEN_SEQ_COLUMN) == 0) {
			rc = catalog_problem(cat, field, "other", err, errlen,
					     "\"" SQLGEN_SEQ_COLUMN "\" is the staging table's own column in MODE "
					     "UPDATE and MERGE; rename this source column");
			if (rc != WERR_OK)
				return rc;
		}
	}
	return WERR_OK;
}

/* The target columns the job writes: MAPPING, else the source columns. */
static int catalog_map_columns(struct catalog *cat, char *err, size_t errlen)
{
	const struct jobspec *spec = cat->spec;
	size_t i, n = spec->mapping ? spec->nmapping : cat->job.nstage;

	cat->map = calloc(n + 1, sizeof(*cat->map));
	cat->values = calloc(n + 1, sizeof(*cat->values));
	if (cat->map == NULL || cat->values == NULL)
		return catalog_oom(err, errlen);
	cat->job.values = cat->values;
	for (i = 0; i < n; i++) {
		struct sqlgen_value *v = &cat->values[i];
		struct catalog_map *m = &cat->map[i];

		if (spec->mapping != NULL) {
			v->name = spec->mapping[i].name ? spec->mapping[i].name : "";
			v->expr = spec->mapping[i].expression ? spec->mapping[i].expression : "NULL";
			v->stage = -1;
			snprintf(m->path, sizeof(m->path), "KAFKA.OUTPUT.MAPPING[%zu]", i);
			snprintf(m->expr_path, sizeof(m->expr_path), "KAFKA.OUTPUT.MAPPING[%zu].EXPRESSION", i);
		} else {
			v->name = cat->cols[i].name;
			v->expr = NULL;
			v->stage = (int)i;
			snprintf(m->path, sizeof(m->path), "%s", cat->stage[i].path);
			snprintf(m->expr_path, sizeof(m->expr_path), "%s.TYPE", cat->stage[i].path);
		}
		m->tcol = catalog_tcol(cat, v->name);
		v->cast = m->tcol != NULL ? m->tcol->cast : NULL;
	}
	cat->job.nvalues = n;
	return WERR_OK;
}

/* Checks every column we write exists, so the user gets a message naming the
 * YAML key instead of a bare SQL error on the first batch. */
static int catalog_check_target_columns(struct catalog *cat, char *err, size_t errlen)
{
	size_t i;
	int rc;

	if (cat->target_oid[0] == '\0')
		return WERR_OK;
	for (i = 0; i < cat->job.nvalues; i++) {
		if (cat->map[i].tcol != NULL)
			continue;
		if (cat->spec->mapping != NULL)
			rc = catalog_problem(cat, cat->map[i].path, "no_column", err, errlen,
					     "column \"%s\" is not in table %s; fix NAME or add the column",
					     cat->values[i].name, cat->target);
		else
			rc = catalog_problem(cat, cat->map[i].path, "no_column", err, errlen,
					     "column \"%s\" is not in table %s; rename it or add an OUTPUT.MAPPING",
					     cat->values[i].name, cat->target);
		if (rc != WERR_OK)
			return rc;
	}
	return WERR_OK;
}

/* The type of a KEY/VALUE column without TYPE (wizard jobs): that of the
 * target column it is mapped to, else of the same-named target column, else
 * text. */
static const char *catalog_default_stage_type(const struct catalog *cat, size_t i)
{
	const char *name = cat->cols[i].name;
	const struct catalog_tcol *t;
	size_t j;

	for (j = 0; j < cat->job.nvalues; j++)
		if (cat->values[j].expr != NULL && catalog_expr_is_column(cat->values[j].expr, name) &&
		    cat->map[j].tcol != NULL)
			return cat->map[j].tcol->type;
	if ((t = catalog_tcol(cat, name)) != NULL)
		return t->type;
	return "text";
}

static int catalog_resolve_stage_types(struct catalog *cat, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < cat->job.nstage; i++) {
		struct catalog_stage *c = &cat->stage[i];
		const char *type = c->type ? c->type : catalog_default_stage_type(cat, i);

		if ((c->sqltype = strdup(type)) == NULL)
			return catalog_oom(err, errlen);
		cat->cols[i].type = c->sqltype;
	}
	return WERR_OK;
}

void catalog_stage_untype(struct catalog *cat, size_t i)
{
	char *text = strdup(catalog_default_stage_type(cat, i));

	cat->stage[i].bad_type = true;
	if (text == NULL)
		return;
	free(cat->stage[i].sqltype);
	cat->stage[i].sqltype = text;
	cat->cols[i].type = text;
}

/* One of MATCH_COLUMNS, UPDATE_COLUMNS, ORDER_COLUMNS (role): the indexes in
 * values[] of the target columns it names, appended to out.  key: compared in
 * the target's type. */
static int catalog_role(struct catalog *cat, const char *role, char *const *names, size_t n, int *out, size_t *nout,
			bool key, char *err, size_t errlen)
{
	char field[CATALOG_PATH_MAX];
	size_t i;
	int rc, k;

	for (i = 0; i < n; i++) {
		snprintf(field, sizeof(field), "KAFKA.OUTPUT.%s[%zu]", role, i);
		if ((k = catalog_value_find(cat, names[i])) < 0) {
			rc = catalog_problem(cat, field, "no_column", err, errlen,
					     "column \"%s\" is not written by the job; add it to OUTPUT.MAPPING (or "
					     "name a mapped target column)",
					     names[i]);
			if (rc != WERR_OK)
				return rc;
			continue;
		}
		out[(*nout)++] = k;
		if (key)
			cat->values[k].key = true;
	}
	return WERR_OK;
}

/* MATCH_COLUMNS, UPDATE_COLUMNS, ORDER_COLUMNS name target columns; their
 * values are the MAPPING expressions of those columns. */
static int catalog_resolve_roles(struct catalog *cat, char *err, size_t errlen)
{
	const struct jobspec *spec = cat->spec;
	struct sqlgen_job *job = &cat->job;
	size_t i, j;
	int rc;

	if (spec->mode == JS_MODE_INSERT)
		return WERR_OK;
	cat->match = calloc(spec->nmatch_columns + 1, sizeof(int));
	cat->update = calloc(spec->nupdate_columns + job->nvalues + 1, sizeof(int));
	cat->order = calloc(spec->norder_columns + 1, sizeof(int));
	if (cat->match == NULL || cat->update == NULL || cat->order == NULL)
		return catalog_oom(err, errlen);
	job->match = cat->match;
	job->update = cat->update;
	job->order = cat->order;
	if ((rc = catalog_role(cat, "MATCH_COLUMNS", spec->match_columns, spec->nmatch_columns, cat->match,
			       &job->nmatch, true, err, errlen)) != WERR_OK)
		return rc;
	if ((rc = catalog_role(cat, "UPDATE_COLUMNS", spec->update_columns, spec->nupdate_columns, cat->update,
			       &job->nupdate, false, err, errlen)) != WERR_OK)
		return rc;
	if (spec->nupdate_columns == 0) {
		/* Every mapped column that is not a match column. */
		for (i = 0; i < job->nvalues; i++) {
			bool is_match = false;
			for (j = 0; j < spec->nmatch_columns; j++)
				if (strcmp(cat->values[i].name, spec->match_columns[j]) == 0)
					is_match = true;
			if (!is_match)
				cat->update[job->nupdate++] = (int)i;
		}
	}
	if ((rc = catalog_role(cat, "ORDER_COLUMNS", spec->order_columns, spec->norder_columns, cat->order,
			       &job->norder, true, err, errlen)) != WERR_OK)
		return rc;
	/* The dedup query's inner select names its columns like the target's. */
	for (i = 0; i < job->nvalues; i++) {
		if (strcmp(cat->values[i].name, SQLGEN_SEQ_COLUMN) == 0) {
			rc = catalog_problem(cat, cat->map[i].path, "other", err, errlen,
					     "target column \"%s\" has the name of the worker's own column in MODE "
					     "%s; rename the column",
					     cat->values[i].name, js_mode_name(spec->mode));
			if (rc != WERR_OK)
				return rc;
		}
	}
	if (spec->mode == JS_MODE_UPDATE && job->nupdate == 0 && job->nmatch == spec->nmatch_columns)
		return catalog_problem(cat, "KAFKA.OUTPUT.UPDATE_COLUMNS", "other", err, errlen,
				       "MODE UPDATE has nothing to update: every column the job writes is in "
				       "MATCH_COLUMNS; map the columns to update (or use MODE MERGE to insert "
				       "absent rows)");
	return WERR_OK;
}

/* "(a, b)" of names, into buf. */
static void catalog_names(char *buf, size_t buflen, char *const *names, size_t n)
{
	size_t i, off = 0;
	int w;

	w = snprintf(buf, buflen, "(");
	off = w > 0 ? (size_t)w : 0;
	for (i = 0; i < n && off < buflen; i++) {
		w = snprintf(buf + off, buflen - off, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			return;
		off += (size_t)w;
	}
	if (off < buflen)
		snprintf(buf + off, buflen - off, ")");
}

/* One unique index (or the primary key) of the target, by its key columns. */
struct catalog_index {
	char **cols;
	size_t ncols;
	bool primary;
	bool immediate;
};

static bool catalog_index_matches(const struct catalog_index *ix, char *const *cols, size_t n)
{
	size_t i, j;

	if (ix->ncols != n)
		return false;
	for (i = 0; i < n; i++) {
		bool found = false;
		for (j = 0; j < ix->ncols && !found; j++)
			found = strcmp(cols[i], ix->cols[j]) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* UPDATE and MERGE: MATCH_COLUMNS must be exactly the columns of the primary
 * key or of a unique index (valid, not partial, not on expressions).  Anything
 * else makes "the matching row" ambiguous, and ON CONFLICT refuses it. */
static int catalog_check_unique(struct catalog *cat, char *err, size_t errlen)
{
	const struct jobspec *spec = cat->spec;
	const char *params[1] = { cat->target_oid };
	struct catalog_index ix[64];
	size_t nix = 0, i, j;
	char last[32] = "", names[512], pk[512] = "", others[1024] = "";
	PGresult *res;
	int rc = WERR_OK, r;
	const char *sql;

	if (spec->mode == JS_MODE_INSERT || cat->target_oid[0] == '\0' || spec->nmatch_columns == 0)
		return WERR_OK;
	if (PQserverVersion(cat->pg) >= CATALOG_INDNKEYATTS_VERSION)
		sql = "SELECT i.indexrelid::text, i.indisprimary, i.indimmediate, a.attname "
		      "FROM pg_catalog.pg_index i, generate_series(0, i.indnkeyatts - 1) AS k(n), "
		      "pg_catalog.pg_attribute a "
		      "WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL "
		      "AND i.indexprs IS NULL AND a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n] "
		      "ORDER BY i.indisprimary DESC, i.indexrelid, k.n";
	else
		sql = "SELECT i.indexrelid::text, i.indisprimary, i.indimmediate, a.attname "
		      "FROM pg_catalog.pg_index i, generate_series(0, i.indnatts - 1) AS k(n), "
		      "pg_catalog.pg_attribute a "
		      "WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL "
		      "AND i.indexprs IS NULL AND a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n] "
		      "ORDER BY i.indisprimary DESC, i.indexrelid, k.n";
	memset(ix, 0, sizeof(ix));
	res = PQexecParams(cat->pg, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pg_error(cat->pg, res, "reading the target table's unique indexes", NULL, err, errlen);
		goto out;
	}
	for (r = 0; r < PQntuples(res); r++) {
		struct catalog_index *x;
		char **p;

		if (strcmp(last, PQgetvalue(res, r, 0)) != 0) {
			if (nix == sizeof(ix) / sizeof(ix[0]))
				break;
			snprintf(last, sizeof(last), "%s", PQgetvalue(res, r, 0));
			x = &ix[nix++];
			x->primary = PQgetvalue(res, r, 1)[0] == 't';
			x->immediate = PQgetvalue(res, r, 2)[0] == 't';
		}
		x = &ix[nix - 1];
		p = realloc(x->cols, (x->ncols + 1) * sizeof(char *));
		if (p == NULL || (p[x->ncols] = strdup(PQgetvalue(res, r, 3))) == NULL) {
			if (p != NULL)
				x->cols = p;
			snprintf(err, errlen, "out of memory");
			rc = WERR_RETRY;
			goto out;
		}
		x->cols = p;
		x->ncols++;
	}
	catalog_names(names, sizeof(names), spec->match_columns, spec->nmatch_columns);
	for (i = 0; i < nix; i++) {
		if (!catalog_index_matches(&ix[i], spec->match_columns, spec->nmatch_columns))
			continue;
		if (!ix[i].immediate && cat->job.on_conflict && spec->mode == JS_MODE_MERGE)
			rc = catalog_problem(cat, "KAFKA.OUTPUT.MATCH_COLUMNS", "not_unique", err, errlen,
					     "the unique constraint of %s on %s is DEFERRABLE, which INSERT ... "
					     "ON CONFLICT cannot use; make it NOT DEFERRABLE",
					     cat->target, names);
		goto out;
	}
	for (i = 0; i < nix; i++) {
		char one[512];
		size_t off = strlen(others);
		catalog_names(one, sizeof(one), ix[i].cols, ix[i].ncols);
		if (ix[i].primary)
			snprintf(pk, sizeof(pk), "%s", one);
		else if (off < sizeof(others))
			snprintf(others + off, sizeof(others) - off, "%s%s", off ? ", " : "", one);
	}
	rc = catalog_problem(cat, "KAFKA.OUTPUT.MATCH_COLUMNS", "not_unique", err, errlen,
			     "KAFKA.OUTPUT.MATCH_COLUMNS %s are not the primary key or a unique index of %s; %s%s%s%s; "
			     "create a unique index on %s or change MATCH_COLUMNS",
			     names, cat->target, pk[0] ? "its primary key is " : "it has no primary key", pk,
			     others[0] ? (pk[0] ? " and its unique indexes are on " : "; its unique indexes are on ")
				       : (pk[0] ? "" : " or unique index"),
			     others, names);
out:
	for (i = 0; i < nix; i++) {
		for (j = 0; j < ix[i].ncols; j++)
			free(ix[i].cols[j]);
		free(ix[i].cols);
	}
	PQclear(res);
	return rc;
}


int catalog_lock_rows(struct catalog *cat, char *err, size_t errlen)
{
	const char *params[1] = { cat->target_oid };
	PGresult *res = NULL;
	int rc;

	cat->job.lock_rows = false;
	if (cat->job.mode == JS_MODE_INSERT || cat->target_oid[0] == '\0' ||
	    PQserverVersion(cat->pg) < PG_ON_CONFLICT_VERSION)
		return WERR_OK;
	rc = pg_query(cat->pg, "SELECT c.relkind IN ('r', 'p') FROM pg_catalog.pg_class c WHERE c.oid = $1::oid", 1,
		      params, &res, "reading the target table's kind", NULL, err, errlen);
	if (rc == WERR_OK)
		cat->job.lock_rows = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return rc;
}

int catalog_direct(struct catalog *cat, char **copy_sql, char *err, size_t errlen)
{
	const char *params[1] = { cat->target_oid };
	const struct sqlgen_job *job = &cat->job;
	PGresult *res = NULL;
	size_t i;
	int rc = WERR_OK, r;

	*copy_sql = NULL;
	if (job->mode != JS_MODE_INSERT || cat->spec->mapping != NULL || job->nvalues != job->nstage ||
	    cat->target_oid[0] == '\0')
		return WERR_OK;
	for (i = 0; i < job->nvalues; i++)
		if (job->values[i].stage != (int)i || cat->map[i].tcol == NULL)
			return WERR_OK;
	/* Not for views, foreign tables or tables with rules: COPY does not
	 * apply rules, and INSERT is what the user asked for.  COPY FROM refuses
	 * tables under row-level security (9.5 and later). */
	rc = pg_query(cat->pg,
		      PQserverVersion(cat->pg) >= CATALOG_ROW_SECURITY_VERSION
			      ? "SELECT c.relkind IN ('r', 'p') AND NOT c.relhasrules AND NOT c.relrowsecurity "
				"FROM pg_catalog.pg_class c WHERE c.oid = $1::oid"
			      : "SELECT c.relkind IN ('r', 'p') AND NOT c.relhasrules FROM pg_catalog.pg_class c "
				"WHERE c.oid = $1::oid",
		      1, params, &res, "reading the target table's kind", NULL, err, errlen);
	if (rc != WERR_OK)
		goto out;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		goto out;
	PQclear(res);
	/* The staging table's types as the server resolved TYPE, in the same
	 * spelling as the target's (format_type). */
	rc = pg_query(cat->pg,
		      "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
		      "FROM pg_catalog.pg_attribute a "
		      "WHERE a.attrelid = 'pg_temp." SQLGEN_STAGE_TABLE "'::pg_catalog.regclass "
		      "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
		      0, NULL, &res, "reading the staging table's columns", NULL, err, errlen);
	if (rc != WERR_OK)
		goto out;
	if ((size_t)PQntuples(res) != job->nstage)
		goto out;
	for (r = 0; r < PQntuples(res); r++)
		if (strcmp(PQgetvalue(res, r, 0), job->stage[r].name) != 0 ||
		    strcmp(PQgetvalue(res, r, 1), cat->map[r].tcol->type) != 0)
			goto out;
	if ((*copy_sql = sqlgen_copy_direct(job)) == NULL) {
		rc = catalog_oom(err, errlen);
		goto out;
	}
	log_debug("the rows need no conversion: %s", *copy_sql);
out:
	PQclear(res);
	return rc;
}

int catalog_open(PGconn *pg, const struct jobspec *spec, bool on_conflict, catalog_problem_fn problem, void *ctx,
		 struct catalog **out, char *err, size_t errlen)
{
	struct catalog *cat = calloc(1, sizeof(*cat));
	size_t n;
	int rc;

	*out = NULL;
	if (cat == NULL)
		return catalog_oom(err, errlen);
	cat->pg = pg;
	cat->spec = spec;
	cat->problem = problem;
	cat->ctx = ctx;
	cat->job.schema = spec->schema ? spec->schema : "public";
	cat->job.table = spec->table ? spec->table : "";
	cat->job.mode = spec->mode;
	cat->job.on_conflict = on_conflict;
	cat->job.tombstones = spec->delete_on_tombstone && spec->mode != JS_MODE_INSERT;
	n = strlen(cat->job.schema) + strlen(cat->job.table) + 2;
	if ((cat->target = malloc(n)) == NULL) {
		rc = catalog_oom(err, errlen);
		goto out;
	}
	snprintf(cat->target, n, "%s.%s", cat->job.schema, cat->job.table);
	if ((rc = catalog_load_target(cat, err, errlen)) != WERR_OK ||
	    (rc = catalog_stage_columns(cat, err, errlen)) != WERR_OK ||
	    (rc = catalog_map_columns(cat, err, errlen)) != WERR_OK ||
	    (rc = catalog_check_target_columns(cat, err, errlen)) != WERR_OK ||
	    (rc = catalog_resolve_stage_types(cat, err, errlen)) != WERR_OK ||
	    (rc = catalog_resolve_roles(cat, err, errlen)) != WERR_OK ||
	    (rc = catalog_check_unique(cat, err, errlen)) != WERR_OK)
		goto out;
	*out = cat;
	cat = NULL;
out:
	catalog_free(cat);
	return rc;
}

void catalog_free(struct catalog *cat)
{
	size_t i;

	if (cat == NULL)
		return;
	for (i = 0; i < cat->ntarget; i++) {
		free(cat->tcols[i].name);
		free(cat->tcols[i].type);
		free(cat->tcols[i].cast);
	}
	free(cat->tcols);
	for (i = 0; cat->stage != NULL && i < cat->job.nstage; i++)
		free(cat->stage[i].sqltype);
	free(cat->stage);
	free(cat->cols);
	free(cat->map);
	free(cat->values);
	free(cat->match);
	free(cat->update);
	free(cat->order);
	free(cat->target);
	free(cat);
}
