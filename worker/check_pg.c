#include "check_pg.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "log.h"
#include "pg.h"
#include "progress.h"
#include "sqlbuf.h"
#include "sqlgen.h"
#include "wtypes.h"

struct check_pg {
	PGconn *pg;
	const struct jobspec *spec;
	const struct check_pg_ops *ops;
	size_t nproblems;
	struct catalog *cat;
	const char *meta_schema; /* where the progress table lives */
	bool progress_exists;
	bool on_conflict;
	char *stage_sql;
	char *copy_sql;
	struct sqlgen_writes w;
	char *progress_sql[PROGRESS_WRITE_MAX];
	size_t nprogress;
};

static void check_pg_problem(struct check_pg *ck, const char *field, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void check_pg_problem(struct check_pg *ck, const char *field, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ck->ops->problem(ck->ops->ctx, field, code, msg);
	ck->nproblems++;
}

/* The catalog's problems, counted with the check's own. */
static void check_pg_on_problem(void *ctx, const char *field, const char *code, const char *message)
{
	struct check_pg *ck = ctx;

	ck->ops->problem(ck->ops->ctx, field, code, message);
	ck->nproblems++;
}

/* proto.h's code for a SQLSTATE met while preparing the job's statements. */
static const char *check_pg_code(const char *sqlstate)
{
	static const struct {
		const char *state;
		const char *code;
	} codes[] = {
		{ "42804", "type_mismatch" },  { "42846", "type_mismatch" }, { "42704", "type_mismatch" },
		{ "22P02", "type_mismatch" },  { "42703", "no_column" },     { "42883", "bad_expression" },
		{ "42601", "bad_expression" }, { "42725", "bad_expression" }, { "42P18", "bad_expression" },
		{ "42803", "bad_expression" }, { "42P20", "bad_expression" }, { "42809", "bad_expression" },
		{ "42P02", "bad_expression" }, { "42P10", "not_unique" },    { "42501", "privilege" },
		{ "42P01", "no_table" },       { "3F000", "no_table" },
	};
	size_t i;

	for (i = 0; sqlstate != NULL && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(codes[i].state, sqlstate) == 0)
			return codes[i].code;
	if (sqlstate != NULL && strncmp(sqlstate, "0A", 2) == 0)
		return "bad_expression";
	return "other";
}

/* Prepares sql (never runs it) inside a savepoint, so a failure leaves the
 * check's transaction usable.  Returns true if it prepared; else sqlstate and
 * msg ("message (SQLSTATE x): detail") say why. */
static bool check_pg_probe(struct check_pg *ck, const char *sql, char *sqlstate, size_t statelen, char *msg,
			  size_t msglen)
{
	const char *state, *primary, *detail;
	char m[768], d[512];
	PGresult *res;
	bool ok;

	PQclear(PQexec(ck->pg, "SAVEPOINT streamserver_check"));
	res = PQprepare(ck->pg, "", sql, 0, NULL);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	log_debug("check: %s: %s", ok ? "ok" : "failed", sql);
	if (!ok) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		pg_oneline(m, sizeof(m), primary ? primary : PQerrorMessage(ck->pg));
		pg_oneline(d, sizeof(d), detail);
		snprintf(sqlstate, statelen, "%s", state ? state : "");
		snprintf(msg, msglen, "%.600s (SQLSTATE %s)%s%.300s", m, state ? state : "none", d[0] ? ": " : "", d);
	}
	PQclear(res);
	PQclear(PQexec(ck->pg, ok ? "RELEASE SAVEPOINT streamserver_check" : "ROLLBACK TO SAVEPOINT streamserver_check"));
	return ok;
}

/* Runs a query returning one boolean; false on error too. */
static bool check_pg_bool(struct check_pg *ck, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(ck->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	bool yes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';

	PQclear(res);
	return yes;
}

/* priv on the table oid, granted on the table or on every column of cols. */
static void check_pg_table_priv(struct check_pg *ck, const char *oid, const char *table, const char *priv,
				     const int *cols, size_t ncols, const char *field, const char *why)
{
	const char *params[3] = { oid, priv, NULL };
	char missing[512] = "";
	size_t i, off = 0;

	if (check_pg_bool(ck, "SELECT pg_catalog.has_table_privilege($1::oid, $2)", 2, params))
		return;
	for (i = 0; i < ncols; i++) {
		const char *p3[3] = { oid, ck->cat->values[cols[i]].name, priv };
		if (ck->cat->map[cols[i]].tcol == NULL ||
		    check_pg_bool(ck, "SELECT pg_catalog.has_column_privilege($1::oid, $2, $3)", 3, p3))
			continue;
		if (off < sizeof(missing)) {
			int w = snprintf(missing + off, sizeof(missing) - off, "%s%s", off ? ", " : "",
					 ck->cat->values[cols[i]].name);
			off += w > 0 ? (size_t)w : 0;
		}
	}
	if (ncols > 0 && missing[0] == '\0')
		return; /* granted column by column */
	check_pg_problem(ck, field, "privilege", "user \"%s\" lacks %s on table %s%s%s%s (%s); GRANT %s ON %s TO %s",
			ck->spec->user, priv, table, missing[0] ? " (columns " : "", missing, missing[0] ? ")" : "",
			why, priv, table, ck->spec->user);
}

static void check_pg_privileges(struct check_pg *ck)
{
	const struct jobspec *spec = ck->spec;
	const char *schema = spec->schema ? spec->schema : "public";
	const char *params[2];
	int *all = NULL;
	size_t i;

	const char *meta_field = spec->metadata_schema ? "KAFKA.METADATA.SCHEMA" : "KAFKA.OUTPUT.SCHEMA";
	bool schema_exists;

	params[0] = schema;
	params[1] = "USAGE";
	schema_exists = check_pg_bool(ck, "SELECT true FROM pg_catalog.pg_namespace WHERE nspname = $1", 1,
					   params);
	if (schema_exists && !check_pg_bool(ck, "SELECT pg_catalog.has_schema_privilege($1, $2)", 2, params))
		check_pg_problem(ck, "KAFKA.OUTPUT.SCHEMA", "privilege",
				"user \"%s\" lacks USAGE on schema %s, which holds the target table; GRANT USAGE ON "
				"SCHEMA %s TO %s",
				spec->user, schema, schema, spec->user);
	params[0] = ck->meta_schema;
	if (!schema_exists && strcmp(ck->meta_schema, schema) == 0) {
		/* reported with the target table */
	} else if (!check_pg_bool(ck, "SELECT true FROM pg_catalog.pg_namespace WHERE nspname = $1", 1,
				       params)) {
		check_pg_problem(ck, meta_field, "no_table",
				"schema \"%s\" for the progress table " PROGRESS_TABLE
				" does not exist; create it or fix METADATA.SCHEMA",
				ck->meta_schema);
	} else if (strcmp(ck->meta_schema, schema) != 0 &&
		   !check_pg_bool(ck, "SELECT pg_catalog.has_schema_privilege($1, $2)", 2, params)) {
		check_pg_problem(ck, "KAFKA.METADATA.SCHEMA", "privilege",
				"user \"%s\" lacks USAGE on schema %s, which holds the progress table; GRANT USAGE ON "
				"SCHEMA %s TO %s",
				spec->user, ck->meta_schema, ck->meta_schema, spec->user);
	} else if (!ck->progress_exists) {
		params[1] = "CREATE";
		if (!check_pg_bool(ck, "SELECT pg_catalog.has_schema_privilege($1, $2)", 2, params))
			check_pg_problem(ck, meta_field, "privilege",
					"user \"%s\" lacks CREATE on schema %s to create the progress table "
					PROGRESS_TABLE "; GRANT CREATE ON SCHEMA %s TO %s, or create the table "
					"once as its owner",
					spec->user, ck->meta_schema, ck->meta_schema, spec->user);
	} else {
		static const char *const privs[] = { "SELECT", "INSERT", "UPDATE" };
		char oid[32], dummy[8], missing[64] = "";
		size_t off = 0;

		if (pg_table_oid(ck->pg, ck->meta_schema, PROGRESS_TABLE, oid, sizeof(oid), dummy,
				 sizeof(dummy)) == WERR_OK && oid[0] != '\0') {
			params[0] = oid;
			for (i = 0; i < sizeof(privs) / sizeof(privs[0]); i++) {
				params[1] = privs[i];
				if (check_pg_bool(ck, "SELECT pg_catalog.has_table_privilege($1::oid, $2)", 2,
						       params))
					continue;
				off += (size_t)snprintf(missing + off, sizeof(missing) - off, "%s%s", off ? ", " : "",
							privs[i]);
			}
		}
		if (missing[0] != '\0')
			check_pg_problem(ck, meta_field, "privilege",
					"user \"%s\" lacks %s on table %s." PROGRESS_TABLE
					" (the worker stores its offsets there); GRANT %s ON %s." PROGRESS_TABLE
					" TO %s",
					spec->user, missing, ck->meta_schema, missing, ck->meta_schema, spec->user);
	}
	if (!check_pg_bool(ck, "SELECT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMP')",
				0, NULL))
		check_pg_problem(ck, "DATABASE", "privilege",
				"user \"%s\" lacks TEMP on database %s, needed for the staging table; GRANT TEMP ON "
				"DATABASE %s TO %s",
				spec->user, spec->database, spec->database, spec->user);

	if (ck->cat->target_oid[0] == '\0')
		return;
	all = calloc(ck->cat->job.nvalues + 1, sizeof(int));
	if (all == NULL)
		return;
	for (i = 0; i < ck->cat->job.nvalues; i++)
		all[i] = (int)i;
	if (spec->mode != JS_MODE_UPDATE)
		check_pg_table_priv(ck, ck->cat->target_oid, ck->cat->target, "INSERT", all, ck->cat->job.nvalues, "KAFKA.OUTPUT.TABLE",
					 spec->mode == JS_MODE_MERGE ? "MODE MERGE inserts unmatched rows"
								     : "MODE INSERT appends rows");
	if (spec->mode != JS_MODE_INSERT) {
		check_pg_table_priv(ck, ck->cat->target_oid, ck->cat->target, "UPDATE", ck->cat->job.update, ck->cat->job.nupdate,
					 "KAFKA.OUTPUT.TABLE", "MODE UPDATE and MERGE update matched rows");
		check_pg_table_priv(ck, ck->cat->target_oid, ck->cat->target, "SELECT", ck->cat->job.match, ck->cat->job.nmatch,
					 "KAFKA.OUTPUT.TABLE", "MODE UPDATE and MERGE read MATCH_COLUMNS to find rows");
		if (ck->cat->job.tombstones)
			check_pg_table_priv(ck, ck->cat->target_oid, ck->cat->target, "DELETE", NULL, 0,
					    "KAFKA.OUTPUT.DELETE_ON_TOMBSTONE", "tombstones delete rows");
	}
	free(all);
}

/* The KEY/VALUE TYPEs, one by one: a bad one is named, and replaced by the
 * type it would have without TYPE so the rest can still be checked. */
static void check_pg_types(struct check_pg *ck)
{
	struct catalog *cat = ck->cat;
	char sqlstate[PG_SQLSTATE_SIZE], msg[1024];
	size_t i;

	for (i = 0; i < cat->job.nstage; i++) {
		struct catalog_stage *c = &cat->stage[i];
		char field[CATALOG_PATH_MAX + 8], *sql;

		if (c->type == NULL)
			continue;
		sql = sqlgen_probe_type(c->sqltype);
		if (sql == NULL || check_pg_probe(ck, sql, sqlstate, sizeof(sqlstate), msg, sizeof(msg))) {
			free(sql);
			continue;
		}
		free(sql);
		snprintf(field, sizeof(field), "%s.TYPE", c->path);
		check_pg_problem(ck, field, "type_mismatch",
				 "TYPE \"%s\" of source column \"%s\" is not a type of this database: %s; use a "
				 "PostgreSQL type such as text, bigint, numeric, timestamptz, jsonb",
				 c->sqltype, cat->job.stage[i].name, msg);
		catalog_stage_untype(cat, i);
	}
}

/* Each MAPPING value alone, as the job converts it: pinpoints the entry. */
static void check_pg_values(struct check_pg *ck)
{
	const struct catalog *cat = ck->cat;
	const struct sqlgen_job *job = &cat->job;
	char sqlstate[PG_SQLSTATE_SIZE], msg[1024];
	size_t i;

	for (i = 0; i < job->nvalues; i++) {
		const struct sqlgen_value *v = &job->values[i];
		const struct catalog_tcol *tcol = cat->map[i].tcol;
		const char *expr_path = cat->map[i].expr_path;
		const char *hint;
		char *sql;
		int src = v->stage;

		if (v->expr != NULL)
			for (src = 0; (size_t)src < job->nstage; src++)
				if (catalog_expr_is_column(v->expr, job->stage[src].name))
					break;
		if (src >= 0 && (size_t)src < job->nstage && cat->stage[src].bad_type)
			continue; /* its TYPE is reported already */
		sql = sqlgen_probe_value(job, i);
		if (sql == NULL || check_pg_probe(ck, sql, sqlstate, sizeof(sqlstate), msg, sizeof(msg))) {
			free(sql);
			continue;
		}
		free(sql);
		hint = pg_hint(sqlstate);
		if (tcol != NULL && strcmp(sqlstate, "42804") == 0)
			check_pg_problem(ck, expr_path, "type_mismatch",
					 "the value for column \"%s\" (%s) of %s: %s; convert it in OUTPUT.MAPPING, "
					 "e.g. EXPRESSION: (%.200s)::%s%s",
					 v->name, tcol->type, cat->target, msg, v->expr ? v->expr : job->stage[v->stage].name,
					 tcol->type, v->expr ? "" : ", or declare the source column with that TYPE");
		else if (tcol != NULL)
			check_pg_problem(ck, expr_path, check_pg_code(sqlstate), "the value for column \"%s\" (%s) of %s: %s%s%s",
					 v->name, tcol->type, cat->target, msg, hint ? "; " : "", hint ? hint : "");
		else
			check_pg_problem(ck, expr_path, check_pg_code(sqlstate), "the value for column \"%s\": %s%s%s",
					 v->name, msg, hint ? "; " : "", hint ? hint : "");
	}
	/* ORDER_COLUMNS need an ordering (json has none, for one). */
	for (i = 0; i < job->norder; i++) {
		char field[CATALOG_PATH_MAX], *sql = sqlgen_probe_order(job, i);

		if (sql == NULL || check_pg_probe(ck, sql, sqlstate, sizeof(sqlstate), msg, sizeof(msg))) {
			free(sql);
			continue;
		}
		free(sql);
		snprintf(field, sizeof(field), "KAFKA.OUTPUT.ORDER_COLUMNS[%zu]", i);
		check_pg_problem(ck, field, "bad_expression",
				 "cannot order by \"%s\": %s; name a column of a type with an ordering (numbers, "
				 "text, timestamps)",
				 job->values[job->order[i]].name, msg);
	}
}

static void check_pg_statements(struct check_pg *ck)
{
	const struct sqlgen_job *job = &ck->cat->job;
	char sqlstate[PG_SQLSTATE_SIZE], msg[1024], *stage_sql = NULL;
	const char *hint;
	size_t i;

	if (PQstatus(ck->pg) != CONNECTION_OK)
		return;
	if (ck->ops->statement != NULL) {
		char *create = ck->progress_exists ? NULL : progress_sql_create(ck->meta_schema, PROGRESS_TABLE);
		if (create != NULL)
			ck->ops->statement(ck->ops->ctx, create);
		free(create);
		ck->ops->statement(ck->ops->ctx, ck->stage_sql);
		ck->ops->statement(ck->ops->ctx, ck->copy_sql);
		for (i = 0; i < ck->w.nwrite; i++)
			ck->ops->statement(ck->ops->ctx, ck->w.write[i]);
		for (i = 0; i < ck->nprogress; i++)
			ck->ops->statement(ck->ops->ctx, ck->progress_sql[i]);
	}

	PQclear(PQexec(ck->pg, "BEGIN"));
	check_pg_types(ck);
	stage_sql = sqlgen_stage(job);
	if (stage_sql == NULL)
		goto out;
	/* The staging table itself: not prepared but created, inside the check's
	 * transaction that is rolled back. */
	PQclear(PQexec(ck->pg, "SAVEPOINT streamserver_check"));
	{
		PGresult *res = PQexec(ck->pg, stage_sql);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok) {
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			pg_oneline(msg, sizeof(msg), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
			check_pg_problem(ck, "KAFKA.INPUT", check_pg_code(state),
					 "cannot create the staging table: %s (SQLSTATE %s)", msg, state ? state : "none");
		}
		PQclear(res);
		PQclear(PQexec(ck->pg, ok ? "RELEASE SAVEPOINT streamserver_check"
					  : "ROLLBACK TO SAVEPOINT streamserver_check"));
		if (!ok)
			goto out;
	}
	check_pg_values(ck);
	/* The whole statements, for anything the probes above cannot pinpoint;
	 * after a problem they would only repeat it. */
	for (i = 0; i < ck->w.nwrite && ck->nproblems == 0; i++) {
		if (check_pg_probe(ck, ck->w.write[i], sqlstate, sizeof(sqlstate), msg, sizeof(msg)))
			continue;
		hint = pg_hint(sqlstate);
		check_pg_problem(ck, NULL, check_pg_code(sqlstate), "%s: %s%s%s",
				 sqlgen_write_what(job, i, ck->w.nwrite), msg, hint ? "; " : "", hint ? hint : "");
	}
	for (i = 0; i < ck->nprogress && ck->progress_exists; i++)
		if (!check_pg_probe(ck, ck->progress_sql[i], sqlstate, sizeof(sqlstate), msg, sizeof(msg)))
			check_pg_problem(ck, NULL, check_pg_code(sqlstate),
					 "the progress table %s." PROGRESS_TABLE " does not have the expected "
					 "columns: %s; drop it (offsets are lost) or fix it",
					 ck->meta_schema, msg);
out:
	free(stage_sql);
	PQclear(PQexec(ck->pg, "ROLLBACK"));
}

/* Every statement the job would run, as the sink builds them. */
static int check_pg_build_sql(struct check_pg *ck, char *err, size_t errlen)
{
	bool use = ck->spec->consistency != JS_CONSISTENCY_NONE;
	bool fenced = ck->spec->consistency == JS_CONSISTENCY_EXACTLY;
	bool failed;
	size_t i;

	ck->stage_sql = sqlgen_stage(&ck->cat->job);
	ck->copy_sql = sqlgen_copy(&ck->cat->job);
	failed = ck->stage_sql == NULL || ck->copy_sql == NULL || sqlgen_writes_build(&ck->cat->job, &ck->w) < 0;
	ck->nprogress = use ? progress_nwrite(fenced, ck->on_conflict) : 0;
	for (i = 0; i < ck->nprogress; i++)
		failed = failed || (ck->progress_sql[i] = progress_sql_write(ck->meta_schema, fenced, ck->on_conflict,
									     i)) == NULL;
	if (failed) {
		snprintf(err, errlen, "out of memory or OUTPUT.MAPPING longer than %zu bytes", SQLBUF_MAX);
		return WERR_FATAL;
	}
	return WERR_OK;
}

int check_pg_run(const struct jobspec *spec, const char *job_name, const struct check_pg_ops *ops)
{
	struct check_pg ck = { 0 };
	struct pg_connect_failure f;
	char err[1536], appname[128], oid[32];
	size_t i;
	int rc;

	ck.spec = spec;
	ck.ops = ops;
	ck.meta_schema = progress_schema(spec);
	snprintf(appname, sizeof(appname), "streamserver-%s", job_name);
	rc = pg_connect(spec, job_name, appname, &ck.pg, &f, err, sizeof(err));
	if (rc != WERR_OK) {
		ops->problem(ops->ctx, f.field, f.code, err);
		goto out;
	}
	ck.on_conflict = pg_on_conflict(ck.pg);
	rc = catalog_open(ck.pg, spec, ck.on_conflict, check_pg_on_problem, &ck, &ck.cat, err, sizeof(err));
	if (rc == WERR_OK)
		rc = catalog_lock_rows(ck.cat, err, sizeof(err));
	if (rc == WERR_OK)
		rc = check_pg_build_sql(&ck, err, sizeof(err));
	if (rc == WERR_OK)
		rc = pg_table_oid(ck.pg, ck.meta_schema, PROGRESS_TABLE, oid, sizeof(oid), err, sizeof(err));
	if (rc != WERR_OK) {
		/* not a problem of the job: the connection, memory */
		ops->problem(ops->ctx, NULL, PQstatus(ck.pg) == CONNECTION_OK ? "other" : "unreachable", err);
		goto out;
	}
	ck.progress_exists = oid[0] != '\0';
	check_pg_privileges(&ck);
	check_pg_statements(&ck);
	if (PQstatus(ck.pg) != CONNECTION_OK) {
		ops->problem(ops->ctx, "HOST", "unreachable", "the connection to PostgreSQL was lost during the check");
		rc = WERR_RETRY;
	}
out:
	free(ck.stage_sql);
	free(ck.copy_sql);
	sqlgen_writes_free(&ck.w);
	for (i = 0; i < PROGRESS_WRITE_MAX; i++)
		free(ck.progress_sql[i]);
	catalog_free(ck.cat);
	if (ck.pg != NULL)
		PQfinish(ck.pg);
	return rc;
}
