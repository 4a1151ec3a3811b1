#include "sink_pg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "wtypes.h"

/* The name is documented: users read it and reset offsets by hand. */
#define SINK_PROGRESS_TABLE "streamserver_progress"
#define SINK_STR_(x) #x
#define SINK_STR(x) SINK_STR_(x)
#define SINK_STAGE_TABLE "streamserver_stage"
/* COPY data goes out in chunks of this size. */
#define SINK_COPY_CHUNK ((size_t)1 << 20)
/* Bounds the SQL text we build from the job (column lists, expressions). */
#define SINK_SQL_MAX ((size_t)1 << 20)

struct sink_pg {
	PGconn *pg;
	const struct jobspec *spec;
	const char *job_name;
	char *target;       /* schema.table, unquoted, for messages */
	char *meta_schema;  /* where the progress table lives */
	char **target_cols; /* the target's columns and types, in order */
	char **target_types;
	size_t ntarget;
	char **stage_types; /* one per VALUE column: resolved SQL type */
	char *insert_sql;
	char *progress_sql;
	char last_sqlstate[6]; /* of the last error, "" if none */
};

/* A growing SQL string; the first failure sticks and is reported once. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void sb_append_len(struct sbuf *sb, const char *s, size_t n)
{
	if (sb->failed)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 256;
		char *p;
		while (cap < sb->len + n + 1)
			cap *= 2;
		if (cap > SINK_SQL_MAX || (p = realloc(sb->s, cap)) == NULL) {
			sb->failed = true;
			return;
		}
		sb->s = p;
		sb->cap = cap;
	}
	memcpy(sb->s + sb->len, s, n);
	sb->len += n;
	sb->s[sb->len] = '\0';
}

static void sb_append(struct sbuf *sb, const char *s)
{
	sb_append_len(sb, s, strlen(s));
}

static void sb_ident(struct sbuf *sb, PGconn *pg, const char *name)
{
	char *q = PQescapeIdentifier(pg, name, strlen(name));
	if (q == NULL) {
		sb->failed = true;
		return;
	}
	sb_append(sb, q);
	PQfreemem(q);
}

/* Takes the string; NULL when building failed. */
static char *sb_take(struct sbuf *sb)
{
	char *s = sb->failed ? NULL : sb->s;
	if (sb->failed)
		free(sb->s);
	memset(sb, 0, sizeof(*sb));
	return s;
}

/* Which SQLSTATEs a restart may cure, which are the data's fault and which
 * need the job fixed.  Unknown ones are retried: the controller backs off and
 * MAX_RETRIES bounds it, while a wrong "fatal" would stop a job for good. */
static int sink_pg_classify(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return WERR_RETRY;
	if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
	    strncmp(sqlstate, "54", 2) == 0)
		return WERR_DATA;
	if (strncmp(sqlstate, "28", 2) == 0 || strcmp(sqlstate, "3D000") == 0 ||
	    strcmp(sqlstate, "3F000") == 0 || strncmp(sqlstate, "42", 2) == 0 ||
	    strncmp(sqlstate, "0A", 2) == 0)
		return WERR_FATAL;
	/* 08 connection, 53 resources, 57P01-57P03 shutdown, 40 rollback, 55P03 lock... */
	return WERR_RETRY;
}

static const char *sink_pg_hint(const char *sqlstate)
{
	static const struct {
		const char *state;
		const char *hint;
	} hints[] = {
		{ "28P01", "check USER and PASSWORD" },
		{ "28000", "check USER and that pg_hba.conf lets this user connect to this database from this host" },
		{ "3D000", "create the database or fix DATABASE" },
		{ "3F000", "create the schema or fix OUTPUT.SCHEMA / METADATA.SCHEMA" },
		{ "42P01", "create the table or fix OUTPUT.SCHEMA / OUTPUT.TABLE" },
		{ "42501", "grant the missing privilege to USER (INSERT on the target table; USAGE and CREATE on the "
			   "metadata schema)" },
		{ "42703", "fix OUTPUT.MAPPING or the VALUE column names" },
		{ "42704", "fix the TYPE of the VALUE columns" },
		{ "42601", "fix the OUTPUT.MAPPING expressions or the VALUE column TYPEs" },
		{ "42883", "fix the OUTPUT.MAPPING expressions (a function or operator does not exist for these types)" },
		{ "42804", "the expression's type does not match the target column: add a cast in OUTPUT.MAPPING" },
	};
	size_t i;

	if (sqlstate == NULL)
		return NULL;
	for (i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (strcmp(hints[i].state, sqlstate) == 0)
			return hints[i].hint;
	return NULL;
}

/* Copies a server/libpq message into one line, runs of blanks made one. */
static void sink_pg_oneline(char *dst, size_t dstlen, const char *src)
{
	size_t i = 0;

	if (dstlen == 0)
		return;
	for (; src != NULL && *src != '\0' && i + 1 < dstlen; src++) {
		char c = (*src == '\n' || *src == '\r' || *src == '\t') ? ' ' : *src;
		if (c == ' ' && (i == 0 || dst[i - 1] == ' '))
			continue;
		dst[i++] = c;
	}
	while (i > 0 && dst[i - 1] == ' ')
		i--;
	dst[i] = '\0';
}

/* Builds "what: message (SQLSTATE x): detail; hint" and returns the class.
 * res may be NULL (then libpq's connection message is used). */
static int sink_pg_error(struct sink_pg *sk, const PGresult *res, const char *what, char *err, size_t errlen)
{
	const char *sqlstate = NULL, *primary = NULL, *detail = NULL, *hint;
	char msg[1024], det[512];
	int cls;

	if (res != NULL) {
		sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	}
	if (primary == NULL)
		primary = PQerrorMessage(sk->pg);
	snprintf(sk->last_sqlstate, sizeof(sk->last_sqlstate), "%s", sqlstate ? sqlstate : "");
	sink_pg_oneline(msg, sizeof(msg), primary);
	sink_pg_oneline(det, sizeof(det), detail);
	if (PQstatus(sk->pg) == CONNECTION_BAD) {
		cls = WERR_RETRY;
		snprintf(err, errlen, "%s: connection to PostgreSQL lost: %s", what, msg);
		return cls;
	}
	cls = sink_pg_classify(sqlstate);
	hint = sink_pg_hint(sqlstate);
	snprintf(err, errlen, "%s: %s (SQLSTATE %s)%s%s%s%s", what, msg, sqlstate ? sqlstate : "none",
		 det[0] ? ": " : "", det, hint ? "; " : "", hint ? hint : "");
	return cls;
}

/* Runs a statement that returns no rows (or rows we ignore). */
static int sink_pg_exec(struct sink_pg *sk, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(sk->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = WERR_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = sink_pg_error(sk, res, what, err, errlen);
	PQclear(res);
	return rc;
}

/* libpq reports connection failures without a SQLSTATE: tell the ones a retry
 * cannot fix from the message text (libpq/server wording since PostgreSQL 9). */
static int sink_pg_connect_class(const char *msg, const char **hint)
{
	static const struct {
		const char *needle;
		const char *also; /* must appear too, or NULL */
		int cls;
		const char *hint;
	} known[] = {
		{ "password authentication failed", NULL, WERR_FATAL, "check USER and PASSWORD" },
		{ "no password supplied", NULL, WERR_FATAL, "set PASSWORD" },
		{ "no pg_hba.conf entry", NULL, WERR_FATAL,
		  "let this user connect to this database from this host in pg_hba.conf" },
		{ "pg_hba.conf rejects", NULL, WERR_FATAL,
		  "let this user connect to this database from this host in pg_hba.conf" },
		{ "authentication failed", NULL, WERR_FATAL, "check USER and PASSWORD" },
		{ "database \"", "does not exist", WERR_FATAL, "create the database or fix DATABASE" },
		{ "role \"", "does not exist", WERR_FATAL, "create the role or fix USER" },
		{ "not permitted to log in", NULL, WERR_FATAL, "grant LOGIN to USER" },
		/* may be a DNS outage: retry, but say what to check */
		{ "could not translate host name", NULL, WERR_RETRY, "check HOST" },
	};
	size_t i;

	*hint = NULL;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strstr(msg, known[i].needle) == NULL ||
		    (known[i].also != NULL && strstr(msg, known[i].also) == NULL))
			continue;
		*hint = known[i].hint;
		return known[i].cls;
	}
	return WERR_RETRY;
}

static int sink_pg_connect(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	const char *keys[16], *vals[16];
	char port[16], appname[128];
	const char *hint;
	char msg[768];
	int n = 0, cls;

	snprintf(appname, sizeof(appname), "streamserver-%s", sk->job_name);
	if (spec->host != NULL) {
		keys[n] = "host";
		vals[n++] = spec->host;
	}
	if (spec->port > 0) {
		snprintf(port, sizeof(port), "%d", spec->port);
		keys[n] = "port";
		vals[n++] = port;
	}
	keys[n] = "dbname";
	vals[n++] = spec->database;
	keys[n] = "user";
	vals[n++] = spec->user;
	if (spec->password != NULL) {
		keys[n] = "password";
		vals[n++] = spec->password;
	}
	keys[n] = "application_name";
	vals[n++] = appname;
	keys[n] = "connect_timeout";
	vals[n++] = "10";
	keys[n] = "client_encoding"; /* the decoders check UTF-8; the server converts */
	vals[n++] = "UTF8";
	/* Notice a dead server within about a minute instead of hanging. */
	keys[n] = "keepalives";
	vals[n++] = "1";
	keys[n] = "keepalives_idle";
	vals[n++] = "30";
	keys[n] = "keepalives_interval";
	vals[n++] = "10";
	keys[n] = "keepalives_count";
	vals[n++] = "3";
	keys[n] = NULL;
	vals[n] = NULL;

	/* expand_dbname = 0: DATABASE is a name, never a connection string. */
	sk->pg = PQconnectdbParams(keys, vals, 0);
	if (sk->pg == NULL) {
		snprintf(err, errlen, "out of memory connecting to PostgreSQL");
		return WERR_RETRY;
	}
	if (PQstatus(sk->pg) == CONNECTION_OK)
		return WERR_OK;
	sink_pg_oneline(msg, sizeof(msg), PQerrorMessage(sk->pg));
	cls = sink_pg_connect_class(msg, &hint);
	snprintf(err, errlen, "cannot connect to PostgreSQL at %s:%d database \"%s\" as \"%s\": %s%s%s",
		 spec->host ? spec->host : "(default)", spec->port > 0 ? spec->port : 5432, spec->database,
		 spec->user, msg, hint ? "; " : "", hint ? hint : "");
	return cls;
}

/* Returns the target's OID as text in oid (empty if absent). */
static int sink_pg_find_table(struct sink_pg *sk, const char *schema, const char *table, char *oid,
			      size_t oidlen, char *err, size_t errlen)
{
	const char *params[2] = { schema, table };
	PGresult *res;
	int rc = WERR_OK;

	oid[0] = '\0';
	res = PQexecParams(sk->pg,
			   "SELECT c.oid::text FROM pg_catalog.pg_class c "
			   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
			   "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'f', 'v')",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = sink_pg_error(sk, res, "looking up the target table", err, errlen);
		goto out;
	}
	if (PQntuples(res) > 0)
		snprintf(oid, oidlen, "%s", PQgetvalue(res, 0, 0));
out:
	PQclear(res);
	return rc;
}

/* Identifiers are quoted, so "Orders" is not orders: point that out. */
static void sink_pg_table_missing(struct sink_pg *sk, const char *schema, const char *table, char *err,
				  size_t errlen)
{
	const char *params[2] = { schema, table };
	PGresult *res;

	res = PQexecParams(sk->pg,
			   "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
			   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
			   "WHERE lower(n.nspname) = lower($1) AND lower(c.relname) = lower($2) "
			   "AND c.relkind IN ('r', 'p', 'f', 'v') LIMIT 1",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		snprintf(err, errlen,
			 "table %s.%s does not exist; names are case-sensitive: did you mean %s.%s? "
			 "Fix OUTPUT.SCHEMA / OUTPUT.TABLE",
			 schema, table, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	else
		snprintf(err, errlen,
			 "table %s.%s does not exist; create it or fix OUTPUT.SCHEMA / OUTPUT.TABLE",
			 schema, table);
	PQclear(res);
}

static int sink_pg_load_target(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	const char *schema = spec->schema ? spec->schema : "public";
	const char *params[1];
	char oid[32];
	PGresult *res = NULL;
	int rc, i, n;

	rc = sink_pg_find_table(sk, schema, spec->table, oid, sizeof(oid), err, errlen);
	if (rc != WERR_OK)
		return rc;
	if (oid[0] == '\0') {
		sink_pg_table_missing(sk, schema, spec->table, err, errlen);
		return WERR_FATAL;
	}
	params[0] = oid;
	res = PQexecParams(sk->pg,
			   "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
			   "FROM pg_catalog.pg_attribute a "
			   "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = sink_pg_error(sk, res, "reading the target table's columns", err, errlen);
		goto out;
	}
	n = PQntuples(res);
	sk->target_cols = calloc((size_t)n + 1, sizeof(char *));
	sk->target_types = calloc((size_t)n + 1, sizeof(char *));
	if (sk->target_cols == NULL || sk->target_types == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		sk->target_cols[i] = strdup(PQgetvalue(res, i, 0));
		sk->target_types[i] = strdup(PQgetvalue(res, i, 1));
		sk->ntarget++;
		if (sk->target_cols[i] == NULL || sk->target_types[i] == NULL)
			goto oom;
	}
	rc = WERR_OK;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
	rc = WERR_RETRY;
out:
	PQclear(res);
	return rc;
}

static const char *sink_pg_target_type(const struct sink_pg *sk, const char *col)
{
	size_t i;

	for (i = 0; i < sk->ntarget; i++)
		if (strcmp(sk->target_cols[i], col) == 0)
			return sk->target_types[i];
	return NULL;
}

/* A MAPPING expression that is just the source column's name, bare or quoted. */
static bool sink_pg_expr_is_column(const char *expr, const char *col)
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

/* A VALUE column without TYPE (wizard jobs) takes the type of the target column
 * it is mapped to, else of the same-named target column, else text. */
static int sink_pg_resolve_stage_types(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	size_t i, j;

	sk->stage_types = calloc(spec->value.ncolumns + 1, sizeof(char *));
	if (sk->stage_types == NULL)
		goto oom;
	for (i = 0; i < spec->value.ncolumns; i++) {
		const struct js_column *c = &spec->value.columns[i];
		const char *type = c->type;

		for (j = 0; type == NULL && j < spec->nmapping; j++)
			if (sink_pg_expr_is_column(spec->mapping[j].expression, c->name))
				type = sink_pg_target_type(sk, spec->mapping[j].name);
		if (type == NULL)
			type = sink_pg_target_type(sk, c->name);
		if (type == NULL)
			type = "text";
		sk->stage_types[i] = strdup(type);
		if (sk->stage_types[i] == NULL)
			goto oom;
	}
	return WERR_OK;
oom:
	snprintf(err, errlen, "out of memory");
	return WERR_RETRY;
}

/* Checks every column we insert into exists, so the user gets a message naming
 * the YAML key instead of a bare SQL error on the first batch. */
static int sink_pg_check_target_columns(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	size_t i;

	if (spec->mapping != NULL) {
		for (i = 0; i < spec->nmapping; i++) {
			if (sink_pg_target_type(sk, spec->mapping[i].name) == NULL) {
				snprintf(err, errlen, "OUTPUT.MAPPING[%zu]: column \"%s\" is not in table %s", i,
					 spec->mapping[i].name, sk->target);
				return WERR_FATAL;
			}
		}
		return WERR_OK;
	}
	for (i = 0; i < spec->value.ncolumns; i++) {
		if (sink_pg_target_type(sk, spec->value.columns[i].name) == NULL) {
			snprintf(err, errlen,
				 "KAFKA.INPUT.VALUE.COLUMNS[%zu]: column \"%s\" is not in table %s; rename it or "
				 "add an OUTPUT.MAPPING",
				 i, spec->value.columns[i].name, sk->target);
			return WERR_FATAL;
		}
	}
	return WERR_OK;
}

/* Key of the advisory lock that serialises creating the progress table. */
#define SINK_PROGRESS_LOCK_KEY 7411953

static int sink_pg_create_progress(struct sink_pg *sk, char *err, size_t errlen)
{
	struct sbuf sb = { 0 };
	char oid[32], *sql = NULL;
	int rc;

	/* CREATE ... IF NOT EXISTS needs CREATE on the schema even when the table
	 * exists: look first so a user without it can still run jobs. */
	rc = sink_pg_find_table(sk, sk->meta_schema, SINK_PROGRESS_TABLE, oid, sizeof(oid), err, errlen);
	if (rc != WERR_OK || oid[0] != '\0')
		goto out;
	/* Concurrent CREATE TABLE IF NOT EXISTS of one name races in PostgreSQL (the
	 * loser fails on the table's row type, 42710 or 23505), and workers of
	 * several jobs start at once.  Both statements in one query string run in
	 * one implicit transaction, so the advisory lock is held until the table
	 * is committed, and the next worker's IF NOT EXISTS then sees it. */
	sb_append(&sb, "SELECT pg_advisory_xact_lock(" SINK_STR(SINK_PROGRESS_LOCK_KEY) "); "
		       "CREATE TABLE IF NOT EXISTS ");
	sb_ident(&sb, sk->pg, sk->meta_schema);
	sb_append(&sb, "." SINK_PROGRESS_TABLE " (job_name text, topic text, partition int, "
		       "next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
		       "PRIMARY KEY (job_name, topic, partition))");
	sql = sb_take(&sb);
	if (sql == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	rc = sink_pg_exec(sk, sql, "creating the progress table", err, errlen);
out:
	if (rc == WERR_OK)
		log_info("progress table %s.%s ready", sk->meta_schema, SINK_PROGRESS_TABLE);
	free(sql);
	return rc;
}

static int sink_pg_create_stage(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	struct sbuf sb = { 0 };
	char *sql;
	size_t i;
	int rc;

	/* Session-local, so concurrent workers never meet; emptied at each commit. */
	sb_append(&sb, "CREATE TEMP TABLE " SINK_STAGE_TABLE " (");
	for (i = 0; i < spec->value.ncolumns; i++) {
		if (i > 0)
			sb_append(&sb, ", ");
		sb_ident(&sb, sk->pg, spec->value.columns[i].name);
		sb_append(&sb, " ");
		/* TYPE is SQL the user wrote for their own database, as in GPSS. */
		sb_append(&sb, sk->stage_types[i]);
	}
	sb_append(&sb, ") ON COMMIT DELETE ROWS");
	sql = sb_take(&sb);
	if (sql == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	rc = sink_pg_exec(sk, sql, "KAFKA.INPUT.VALUE.COLUMNS: creating the staging table", err, errlen);
	free(sql);
	return rc;
}

static int sink_pg_prepare(struct sink_pg *sk, const char *name, const char *sql, const char *what, char *err,
			   size_t errlen)
{
	PGresult *res = PQprepare(sk->pg, name, sql, 0, NULL);
	int rc = WERR_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = sink_pg_error(sk, res, what, err, errlen);
	PQclear(res);
	return rc;
}

/* INSERT mode: INSERT INTO target (cols) SELECT exprs FROM the staging table.
 * UPDATE and MERGE will build their statements next to this one. */
static int sink_pg_build_insert(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	struct sbuf sb = { 0 };
	size_t i, n = spec->mapping ? spec->nmapping : spec->value.ncolumns;

	if (spec->mode != JS_MODE_INSERT) {
		snprintf(err, errlen, "OUTPUT.MODE %s is not supported by this version; use INSERT",
			 js_mode_name(spec->mode));
		return WERR_FATAL;
	}
	sb_append(&sb, "INSERT INTO ");
	sb_ident(&sb, sk->pg, spec->schema ? spec->schema : "public");
	sb_append(&sb, ".");
	sb_ident(&sb, sk->pg, spec->table);
	sb_append(&sb, " (");
	for (i = 0; i < n; i++) {
		if (i > 0)
			sb_append(&sb, ", ");
		sb_ident(&sb, sk->pg, spec->mapping ? spec->mapping[i].name : spec->value.columns[i].name);
	}
	sb_append(&sb, ") SELECT ");
	for (i = 0; i < n; i++) {
		if (i > 0)
			sb_append(&sb, ", ");
		/* MAPPING expressions are SQL over the source columns by design
		 * (documented feature); the database evaluates them. */
		if (spec->mapping)
			sb_append(&sb, spec->mapping[i].expression);
		else
			sb_ident(&sb, sk->pg, spec->value.columns[i].name);
	}
	sb_append(&sb, " FROM pg_temp." SINK_STAGE_TABLE);
	sk->insert_sql = sb_take(&sb);
	if (sk->insert_sql == NULL) {
		snprintf(err, errlen, "out of memory or OUTPUT.MAPPING longer than %zu bytes", SINK_SQL_MAX);
		return WERR_FATAL;
	}

	sb_append(&sb, "INSERT INTO ");
	sb_ident(&sb, sk->pg, sk->meta_schema);
	sb_append(&sb, "." SINK_PROGRESS_TABLE " (job_name, topic, partition, next_offset) "
		       "SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o) "
		       "ON CONFLICT (job_name, topic, partition) DO UPDATE "
		       "SET next_offset = EXCLUDED.next_offset, updated_at = now()");
	sk->progress_sql = sb_take(&sb);
	if (sk->progress_sql == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	return WERR_OK;
}

int sink_pg_open(const struct jobspec *spec, const char *job_name, struct sink_pg **out, char *err,
		 size_t errlen)
{
	struct sink_pg *sk;
	const char *schema = spec->schema ? spec->schema : "public";
	size_t n;
	int rc;

	*out = NULL;
	sk = calloc(1, sizeof(*sk));
	if (sk == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	sk->spec = spec;
	sk->job_name = job_name;
	sk->meta_schema = strdup(spec->metadata_schema ? spec->metadata_schema : schema);
	n = strlen(schema) + strlen(spec->table) + 2;
	sk->target = malloc(n);
	if (sk->meta_schema == NULL || sk->target == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	snprintf(sk->target, n, "%s.%s", schema, spec->table);

	rc = sink_pg_connect(sk, err, errlen);
	if (rc != WERR_OK)
		goto out;
	log_info("connected to PostgreSQL %s:%d database \"%s\" as \"%s\"", spec->host ? spec->host : "(default)",
		 spec->port > 0 ? spec->port : 5432, spec->database, spec->user);

	if ((rc = sink_pg_load_target(sk, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_check_target_columns(sk, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_resolve_stage_types(sk, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_create_progress(sk, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_create_stage(sk, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_build_insert(sk, err, errlen)) != WERR_OK)
		goto out;
	/* Preparing now reports bad MAPPING expressions before any data flows. */
	if ((rc = sink_pg_prepare(sk, "ss_insert", sk->insert_sql, "OUTPUT.MAPPING: preparing the INSERT", err,
				  errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_prepare(sk, "ss_progress", sk->progress_sql, "preparing the progress update", err,
				  errlen)) != WERR_OK)
		goto out;
	log_debug("insert statement: %s", sk->insert_sql);
	*out = sk;
	sk = NULL;
out:
	sink_pg_close(sk);
	return rc;
}

int sink_pg_progress_get(struct sink_pg *sk, const char *topic, const int32_t *partitions, size_t n,
			 int64_t *next_offsets, char *err, size_t errlen)
{
	struct sbuf sb = { 0 };
	const char *params[2] = { sk->job_name, topic };
	PGresult *res = NULL;
	char *sql;
	size_t i;
	int r, rc = WERR_OK;

	for (i = 0; i < n; i++)
		next_offsets[i] = -1;
	sb_append(&sb, "SELECT partition, next_offset FROM ");
	sb_ident(&sb, sk->pg, sk->meta_schema);
	sb_append(&sb, "." SINK_PROGRESS_TABLE " WHERE job_name = $1 AND topic = $2");
	sql = sb_take(&sb);
	if (sql == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	res = PQexecParams(sk->pg, sql, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = sink_pg_error(sk, res, "reading the stored offsets", err, errlen);
		goto out;
	}
	for (r = 0; r < PQntuples(res); r++) {
		long part = strtol(PQgetvalue(res, r, 0), NULL, 10);
		long long off = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		for (i = 0; i < n; i++)
			if (partitions[i] == part)
				next_offsets[i] = off;
	}
out:
	free(sql);
	PQclear(res);
	return rc;
}

/* "COPY streamserver_stage, line 17, column b: ..." -> 17 and "b" */
static size_t sink_pg_copy_line(const PGresult *res, char *column, size_t columnlen)
{
	const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *p, *c;
	size_t n;

	column[0] = '\0';
	if (ctx == NULL || (p = strstr(ctx, SINK_STAGE_TABLE ", line ")) == NULL)
		return 0;
	if ((c = strstr(p, ", column ")) != NULL) {
		c += strlen(", column ");
		n = strcspn(c, ":\n");
		snprintf(column, columnlen, "%.*s", (int)n, c);
	}
	return (size_t)strtoul(p + strlen(SINK_STAGE_TABLE ", line "), NULL, 10);
}

static int sink_pg_copy(struct sink_pg *sk, const char *data, size_t len, struct sink_batch_error *bad,
			char *err, size_t errlen)
{
	PGresult *res;
	size_t off = 0;
	int rc = WERR_OK;

	res = PQexec(sk->pg, "COPY pg_temp." SINK_STAGE_TABLE " FROM STDIN");
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
			bad->row = sink_pg_copy_line(res, column, sizeof(column));
			snprintf(what, sizeof(what), "loading the batch%s%s", column[0] ? ", column " : "", column);
			rc = sink_pg_error(sk, res, what, err, errlen);
		}
		PQclear(res);
	}
	if (rc == WERR_OK && off < len)
		rc = sink_pg_error(sk, NULL, "sending the batch", err, errlen);
	return rc;
}

/* Postgres array literal of the partitions or offsets: {1,2,3} */
static char *sink_pg_array(const struct part_offset *p, size_t n, bool offsets)
{
	struct sbuf sb = { 0 };
	char num[32];
	size_t i;

	sb_append(&sb, "{");
	for (i = 0; i < n; i++) {
		if (offsets)
			snprintf(num, sizeof(num), "%s%lld", i ? "," : "", (long long)p[i].next_offset);
		else
			snprintf(num, sizeof(num), "%s%d", i ? "," : "", (int)p[i].partition);
		sb_append(&sb, num);
	}
	sb_append(&sb, "}");
	return sb_take(&sb);
}

int sink_pg_write_batch(struct sink_pg *sk, const char *topic, const char *copy_data, size_t copy_len,
			const struct part_offset *progress, size_t nprogress, int64_t *rows,
			struct sink_batch_error *bad, char *err, size_t errlen)
{
	PGresult *res = NULL;
	char *parts = NULL, *offs = NULL;
	const char *params[4];
	bool in_tx = false;
	int rc;

	*rows = 0;
	memset(bad, 0, sizeof(*bad));
	sk->last_sqlstate[0] = '\0';
	parts = sink_pg_array(progress, nprogress, false);
	offs = sink_pg_array(progress, nprogress, true);
	if (parts == NULL || offs == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}

	if ((rc = sink_pg_exec(sk, "BEGIN", "starting the batch transaction", err, errlen)) != WERR_OK)
		goto out;
	in_tx = true;
	if ((rc = sink_pg_copy(sk, copy_data, copy_len, bad, err, errlen)) != WERR_OK)
		goto out;

	res = PQexecPrepared(sk->pg, "ss_insert", 0, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = sink_pg_error(sk, res, "inserting the batch into the target table", err, errlen);
		goto out;
	}
	*rows = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	res = NULL;

	params[0] = sk->job_name;
	params[1] = topic;
	params[2] = parts;
	params[3] = offs;
	res = PQexecPrepared(sk->pg, "ss_progress", 4, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = sink_pg_error(sk, res, "storing the offsets in the progress table", err, errlen);
		goto out;
	}
	PQclear(res);
	res = NULL;

	res = PQexec(sk->pg, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = sink_pg_error(sk, res, "committing the batch", err, errlen);
		goto out;
	}
	in_tx = false;
	rc = WERR_OK;
out:
	if (rc != WERR_OK) {
		memcpy(bad->sqlstate, sk->last_sqlstate, sizeof(bad->sqlstate));
		*rows = 0;
	}
	PQclear(res);
	if (in_tx && PQstatus(sk->pg) == CONNECTION_OK)
		PQclear(PQexec(sk->pg, "ROLLBACK"));
	free(parts);
	free(offs);
	return rc;
}

static void sink_pg_strv_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void sink_pg_close(struct sink_pg *sk)
{
	if (sk == NULL)
		return;
	if (sk->pg != NULL)
		PQfinish(sk->pg);
	sink_pg_strv_free(sk->target_cols, sk->ntarget);
	sink_pg_strv_free(sk->target_types, sk->ntarget);
	sink_pg_strv_free(sk->stage_types, sk->spec->value.ncolumns);
	free(sk->target);
	free(sk->meta_schema);
	free(sk->insert_sql);
	free(sk->progress_sql);
	free(sk);
}
