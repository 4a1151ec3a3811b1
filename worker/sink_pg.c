#include "sink_pg.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pgtls.h"
#include "wtypes.h"

/* The name is documented: users read it and reset offsets by hand. */
#define SINK_PROGRESS_TABLE "streamserver_progress"
#define SINK_ERRORS_TABLE "streamserver_errors"
#define SINK_STR_(x) #x
#define SINK_STR(x) SINK_STR_(x)
#define SINK_STAGE_TABLE "streamserver_stage"
/* UPDATE/MERGE: the staging table's arrival order. */
#define SINK_SEQ_COLUMN "streamserver_seq"
/* COPY data goes out in chunks of this size. */
#define SINK_COPY_CHUNK ((size_t)1 << 20)
/* Bounds the SQL text we build from the job (column lists, expressions). */
#define SINK_SQL_MAX ((size_t)1 << 20)
/* ON CONFLICT arrived in PostgreSQL 9.5; Greenplum 6 is 9.4. */
#define SINK_ON_CONFLICT_VERSION 90500
/* Row-level security (pg_class.relrowsecurity) arrived in PostgreSQL 9.5. */
#define SINK_ROW_SECURITY_VERSION 90500
/* pg_index.indnkeyatts (INCLUDE columns) arrived in PostgreSQL 11. */
#define SINK_INDNKEYATTS_VERSION 110000
/* After a batch with repeated keys, this many batches use the DISTINCT ON
 * upsert straight away before the plain one is tried again. */
#define SINK_FAST_SKIP 64
/* The staging table's arrival-order sequence hands out numbers in blocks of
 * this many (per session), not one catalog update per row: measured, COPY of
 * 10000 rows 7.2 ms with the default CACHE 1, 5.3 ms with this, 4.2 ms
 * without the column. */
#define SINK_SEQ_CACHE "100000"
/* Statements a mode runs per batch, at most. */
#define SINK_WRITE_MAX 2
#define SINK_PATH_MAX 96

/* One column of the target table. */
struct sink_tcol {
	char *name;
	char *type; /* with length/precision: "character varying(32)" */
	char *cast; /* the type without them, schema-qualified: "pg_catalog"."varchar" */
};

/* One column of the staging table: a KEY, VALUE or META column. */
struct sink_col {
	const char *name; /* the spec's */
	const char *type; /* TYPE as written; NULL = the mapped target column's */
	char *sqltype;    /* resolved */
	char path[SINK_PATH_MAX]; /* "KAFKA.INPUT.VALUE.COLUMNS[2]" */
	bool bad_type; /* check mode: TYPE is not a type (reported) */
};

/* One target column the job writes. */
struct sink_map {
	const char *name; /* target column */
	const char *expr; /* MAPPING expression; NULL = the staging column of the same name */
	int stage;        /* without MAPPING: that staging column */
	char path[SINK_PATH_MAX];      /* "KAFKA.OUTPUT.MAPPING[1]" or the source column's */
	char expr_path[SINK_PATH_MAX + 16]; /* where the value comes from, for type problems */
	const struct sink_tcol *tcol;  /* NULL when the target has no such column */
	bool key; /* a MATCH_COLUMNS or ORDER_COLUMNS entry: compared in the target's type */
};

struct sink_pg {
	PGconn *pg;
	const struct jobspec *spec;
	const char *job_name;
	/* check mode: problems are reported here and the work goes on */
	const struct sink_check_ops *check;
	size_t nproblems;

	char *target;      /* schema.table, unquoted, for messages */
	char *meta_schema; /* where the progress table lives */
	char target_oid[32]; /* "" when the table is missing (check mode) */
	bool progress_exists;
	bool use_progress; /* not with CONSISTENCY none */
	bool fenced;       /* EXACTLY: compare-and-set progress */
	/* EXACTLY: the next offset stored per partition, as last read or written */
	struct part_offset *stored;
	size_t nstored;
	char *error_sql; /* insert into the error table */
	bool on_conflict;  /* the server has INSERT ... ON CONFLICT */
	bool dedup;        /* UPDATE / MERGE */

	struct sink_tcol *tcols;
	size_t ntarget;
	struct sink_col *stage;
	size_t nstage;
	struct sink_map *map;
	size_t nmap;
	int *match; /* indexes in map[] */
	size_t nmatch;
	int *update;
	size_t nupdate;
	int *order;
	size_t norder;

	char *stage_sql;
	char *copy_sql;
	/* INSERT whose rows need no conversion: COPY straight into the target
	 * (sink_pg_plan_direct); NULL when the rows go through the staging table */
	char *direct_sql;
	/* MERGE with ON CONFLICT: the upsert without the DISTINCT ON that only
	 * keys repeated within a batch need (sink_pg_sql_upsert); NULL if not
	 * used.  fast_skip: batches to write with the full statement after one
	 * whose keys repeated. */
	char *fast_sql;
	int fast_skip;
	/* The batch's BEGIN goes out with its first SAVEPOINT: one round trip
	 * less per batch. */
	bool begin_pending;
	char *write_sql[SINK_WRITE_MAX];
	size_t nwrite;
	char *progress_sql[SINK_WRITE_MAX];
	size_t nprogress;

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
		{ "42501", "grant the missing privilege to USER (INSERT, and for UPDATE/MERGE UPDATE and SELECT, on "
			   "the target table; USAGE and CREATE on the metadata schema)" },
		{ "42703", "fix OUTPUT.MAPPING or the KEY/VALUE column names" },
		{ "42704", "fix the TYPE of the KEY/VALUE columns" },
		{ "42601", "fix the OUTPUT.MAPPING expressions or the KEY/VALUE column TYPEs" },
		{ "42883", "fix the OUTPUT.MAPPING expressions (a function or operator does not exist for these types)" },
		{ "42804", "the expression's type does not match the target column: add a cast in OUTPUT.MAPPING" },
		{ "42P10", "OUTPUT.MATCH_COLUMNS must be the primary key or a unique index of the target table" },
		{ "21000", "two rows of the batch have the same OUTPUT.MATCH_COLUMNS after conversion to the "
			   "target's types; make MAPPING produce distinct keys" },
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

/* A configuration problem.  In check mode it is reported and the caller goes
 * on (WERR_OK); otherwise it fills err ("field: message") and is fatal. */
static int sink_pg_problem(struct sink_pg *sk, const char *field, const char *code, char *err, size_t errlen,
			   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int sink_pg_problem(struct sink_pg *sk, const char *field, const char *code, char *err, size_t errlen,
			   const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sk->check != NULL) {
		sk->check->problem(sk->check->ctx, field, code, msg);
		sk->nproblems++;
		return WERR_OK;
	}
	if (field != NULL && strncmp(msg, field, strlen(field)) != 0)
		snprintf(err, errlen, "%s: %s", field, msg);
	else
		snprintf(err, errlen, "%s", msg);
	return WERR_FATAL;
}

/* What a failed connection means.  libpq reports connection failures without
 * a SQLSTATE: tell the ones a retry cannot fix from the message text
 * (libpq/server wording since PostgreSQL 9). */
struct sink_connect_failure {
	int cls;
	const char *hint;
	const char *field; /* the YAML key to fix */
	const char *code;  /* check mode's error code */
	bool tls;	   /* a TLS problem: the message names the job and SSLMODE */
};

static void sink_pg_connect_class(const char *msg, struct sink_connect_failure *f)
{
	static const struct {
		const char *needle;
		const char *also; /* must appear too, or NULL */
		struct sink_connect_failure f;
	} known[] = {
		{ "password authentication failed", NULL,
		  { WERR_FATAL, "check USER and PASSWORD", "PASSWORD", "privilege", false } },
		{ "no password supplied", NULL, { WERR_FATAL, "set PASSWORD", "PASSWORD", "privilege", false } },
		{ "no pg_hba.conf entry", NULL,
		  { WERR_FATAL, "let this user connect to this database from this host in pg_hba.conf", "USER",
		    "privilege", false } },
		{ "pg_hba.conf rejects", NULL,
		  { WERR_FATAL, "let this user connect to this database from this host in pg_hba.conf", "USER",
		    "privilege", false } },
		{ "authentication failed", NULL,
		  { WERR_FATAL, "check USER and PASSWORD", "PASSWORD", "privilege", false } },
		{ "database \"", "does not exist",
		  { WERR_FATAL, "create the database or fix DATABASE", "DATABASE", "other", false } },
		{ "role \"", "does not exist", { WERR_FATAL, "create the role or fix USER", "USER", "other", false } },
		{ "not permitted to log in", NULL, { WERR_FATAL, "grant LOGIN to USER", "USER", "privilege", false } },
		{ "permission denied for database", NULL,
		  { WERR_FATAL, "GRANT CONNECT ON DATABASE to USER", "DATABASE", "privilege", false } },
		/* may be a DNS outage: retry, but say what to check */
		{ "could not translate host name", NULL, { WERR_RETRY, "check HOST", "HOST", "unreachable", false } },
		/* TLS: a server that cannot be verified, or refuses our certificate,
		 * stays so until someone changes the job or the server (libpq 15
		 * and OpenSSL 3 wording).  "SSL SYSCALL error" and a connection
		 * closed during the handshake are outages: left to the default. */
		{ "does not match host name", NULL,
		  { WERR_FATAL,
		    "the server's certificate is for another name: set HOST to a name it holds, or fix the "
		    "server's certificate (SSLMODE verify-ca checks the CA only)",
		    "HOST", "other", true } },
		{ "could not get server's host name from server certificate", NULL,
		  { WERR_FATAL, "the server's certificate names no host; fix it, or use SSLMODE verify-ca", "SSLMODE",
		    "other", true } },
		{ "certificate verify failed", NULL,
		  { WERR_FATAL, "the server's certificate is not signed by SSLROOTCERT (or has expired): give the CA "
		    "that signed it", "SSLROOTCERT", "other", true } },
		{ "root certificate file", NULL,
		  { WERR_FATAL, "give SSLROOTCERT: the certificate of the CA that signed the server's", "SSLROOTCERT",
		    "other", true } },
		{ "server does not support SSL, but SSL was required", NULL,
		  { WERR_FATAL, "turn ssl on in the server, or change SSLMODE", "SSLMODE", "other", true } },
		{ "private key file", NULL, { WERR_FATAL, "check SSLKEY", "SSLKEY", "other", true } },
		{ "certificate present, but not private key", NULL,
		  { WERR_FATAL, "give SSLKEY with SSLCERT", "SSLKEY", "other", true } },
		{ "certificate file", NULL, { WERR_FATAL, "check SSLCERT", "SSLCERT", "other", true } },
		{ "alert certificate required", NULL,
		  { WERR_FATAL, "the server asks for a client certificate: give SSLCERT and SSLKEY", "SSLCERT", "other",
		    true } },
		{ "SSL error: certificate", NULL,
		  { WERR_FATAL, "the server's certificate cannot be verified with SSLROOTCERT", "SSLROOTCERT", "other",
		    true } },
		{ "SSL error: tlsv1 alert unknown ca", NULL,
		  { WERR_FATAL, "the server does not trust the CA of SSLCERT", "SSLCERT", "other", true } },
		{ "alert bad certificate", NULL,
		  { WERR_FATAL, "the server refuses SSLCERT", "SSLCERT", "other", true } },
		{ "alert certificate", NULL,
		  { WERR_FATAL, "the server refuses SSLCERT", "SSLCERT", "other", true } },
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strstr(msg, known[i].needle) == NULL ||
		    (known[i].also != NULL && strstr(msg, known[i].also) == NULL))
			continue;
		*f = known[i].f;
		return;
	}
	f->cls = WERR_RETRY;
	f->hint = NULL;
	f->field = "HOST";
	f->code = "unreachable";
	f->tls = false;
}

/* Connects to the job's database; on failure *out is NULL, f says how to
 * classify it and err what failed and how to fix it (never the password or
 * the client key).  Every connection of the worker goes through here: the TLS
 * files (pgtls.h) exist only while PQconnectdbParams runs. */
static int sink_pg_open_f(const struct jobspec *spec, const char *job_name, const char *appname, PGconn **out,
			  struct sink_connect_failure *f, char *err, size_t errlen)
{
	const char *keys[24], *vals[24];
	struct pgtls_files tls;
	char port[16];
	char msg[768];
	PGconn *pg;
	int n = 0;

	*out = NULL;
	f->cls = WERR_RETRY;
	f->hint = NULL;
	f->field = NULL;
	f->code = "unreachable";
	f->tls = false;
	/* a full /tmp or a wrong TMPDIR may be mended without changing the job */
	if (pgtls_files_write(spec, &tls, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "cannot connect to PostgreSQL at %s:%d (job %s): %s",
			 spec->host ? spec->host : "(default)", spec->port > 0 ? spec->port : 5432,
			 job_name != NULL && job_name[0] != '\0' ? job_name : "(new)", msg);
		return WERR_RETRY;
	}
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
	/* Absent: libpq's default (prefer).  PGSSLMODE and the other PG*
	 * variables never reach a worker (common/workerenv.h). */
	if (spec->sslmode != NULL) {
		keys[n] = "sslmode";
		vals[n++] = spec->sslmode;
	}
	if (tls.rootcert[0] != '\0') {
		keys[n] = "sslrootcert";
		vals[n++] = tls.rootcert;
	}
	if (tls.cert[0] != '\0') {
		keys[n] = "sslcert";
		vals[n++] = tls.cert;
	}
	if (tls.key[0] != '\0') {
		keys[n] = "sslkey";
		vals[n++] = tls.key;
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
	pg = PQconnectdbParams(keys, vals, 0);
	if (pg == NULL) {
		pgtls_files_remove(&tls);
		snprintf(err, errlen, "out of memory connecting to PostgreSQL");
		return WERR_RETRY;
	}
	if (PQstatus(pg) == CONNECTION_OK) {
		/* libpq has loaded the files; the worker never PQreset()s */
		pgtls_files_remove(&tls);
		*out = pg;
		return WERR_OK;
	}
	sink_pg_oneline(msg, sizeof(msg), PQerrorMessage(pg));
	pgtls_files_unname(&tls, msg, sizeof(msg));
	pgtls_files_remove(&tls);
	PQfinish(pg);
	sink_pg_connect_class(msg, f);
	if (f->tls)
		snprintf(err, errlen, "cannot connect to PostgreSQL at %s:%d database \"%s\" (job %s, sslmode %s): %s%s%s",
			 spec->host ? spec->host : "(default)", spec->port > 0 ? spec->port : 5432, spec->database,
			 job_name != NULL && job_name[0] != '\0' ? job_name : "(new)",
			 spec->sslmode != NULL ? spec->sslmode : "prefer", msg, f->hint ? "; " : "",
			 f->hint ? f->hint : "");
	else
		snprintf(err, errlen, "cannot connect to PostgreSQL at %s:%d database \"%s\" as \"%s\": %s%s%s",
			 spec->host ? spec->host : "(default)", spec->port > 0 ? spec->port : 5432, spec->database,
			 spec->user, msg, f->hint ? "; " : "", f->hint ? f->hint : "");
	return f->cls;
}

int sink_pg_connect_db(const struct jobspec *spec, const char *job_name, const char *appname, PGconn **out,
		       char *err, size_t errlen)
{
	struct sink_connect_failure f;

	return sink_pg_open_f(spec, job_name, appname, out, &f, err, errlen);
}

static int sink_pg_connect(struct sink_pg *sk, struct sink_connect_failure *f, char *err, size_t errlen)
{
	char appname[128];
	int rc;

	snprintf(appname, sizeof(appname), "streamserver-%s", sk->job_name);
	rc = sink_pg_open_f(sk->spec, sk->job_name, appname, &sk->pg, f, err, errlen);
	if (rc != WERR_OK)
		return rc;
	sk->on_conflict = PQserverVersion(sk->pg) >= SINK_ON_CONFLICT_VERSION;
	if (getenv("STREAMWORKER_LEGACY_UPSERT") != NULL &&
	    strcmp(getenv("STREAMWORKER_LEGACY_UPSERT"), "1") == 0)
		sk->on_conflict = false;
	return WERR_OK;
}

/* Returns the OID of schema.name (a table, view... of relkinds) as text in
 * oid (empty if absent). */
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
		rc = sink_pg_error(sk, res, "looking up a table", err, errlen);
		goto out;
	}
	if (PQntuples(res) > 0)
		snprintf(oid, oidlen, "%s", PQgetvalue(res, 0, 0));
out:
	PQclear(res);
	return rc;
}

/* Identifiers are quoted, so "Orders" is not orders: point that out. */
static int sink_pg_table_missing(struct sink_pg *sk, const char *schema, const char *table, char *err,
				 size_t errlen)
{
	const char *params[2] = { schema, table };
	PGresult *res;
	int rc;

	res = PQexecParams(sk->pg, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
		PQclear(res);
		return sink_pg_problem(sk, "KAFKA.OUTPUT.SCHEMA", "no_table", err, errlen,
				       "schema \"%s\" does not exist, so table %s.%s does not either; create them or "
				       "fix OUTPUT.SCHEMA",
				       schema, schema, table);
	}
	PQclear(res);
	res = PQexecParams(sk->pg,
			   "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
			   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
			   "WHERE lower(n.nspname) = lower($1) AND lower(c.relname) = lower($2) "
			   "AND c.relkind IN ('r', 'p', 'f', 'v') LIMIT 1",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		rc = sink_pg_problem(sk, "KAFKA.OUTPUT.TABLE", "no_table", err, errlen,
				     "table %s.%s does not exist; names are case-sensitive: did you mean %s.%s? "
				     "Fix OUTPUT.SCHEMA / OUTPUT.TABLE",
				     schema, table, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	else
		rc = sink_pg_problem(sk, "KAFKA.OUTPUT.TABLE", "no_table", err, errlen,
				     "table %s.%s does not exist; create it or fix OUTPUT.SCHEMA / OUTPUT.TABLE",
				     schema, table);
	PQclear(res);
	return rc;
}

static int sink_pg_load_target(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	const char *schema = spec->schema ? spec->schema : "public";
	const char *params[1];
	PGresult *res = NULL;
	int rc, i, n;

	rc = sink_pg_find_table(sk, schema, spec->table, sk->target_oid, sizeof(sk->target_oid), err, errlen);
	if (rc != WERR_OK)
		return rc;
	if (sk->target_oid[0] == '\0')
		return sink_pg_table_missing(sk, schema, spec->table, err, errlen);
	params[0] = sk->target_oid;
	res = PQexecParams(sk->pg,
			   "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
			   "pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname) "
			   "FROM pg_catalog.pg_attribute a "
			   "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
			   "JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace "
			   "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = sink_pg_error(sk, res, "reading the target table's columns", err, errlen);
		goto out;
	}
	n = PQntuples(res);
	sk->tcols = calloc((size_t)n + 1, sizeof(*sk->tcols));
	if (sk->tcols == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		struct sink_tcol *t = &sk->tcols[i];
		t->name = strdup(PQgetvalue(res, i, 0));
		t->type = strdup(PQgetvalue(res, i, 1));
		t->cast = strdup(PQgetvalue(res, i, 2));
		sk->ntarget++;
		if (t->name == NULL || t->type == NULL || t->cast == NULL)
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

static const struct sink_tcol *sink_pg_tcol(const struct sink_pg *sk, const char *col)
{
	size_t i;

	for (i = 0; i < sk->ntarget; i++)
		if (strcmp(sk->tcols[i].name, col) == 0)
			return &sk->tcols[i];
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

static int sink_pg_stage_find(const struct sink_pg *sk, const char *name)
{
	size_t i;

	for (i = 0; i < sk->nstage; i++)
		if (strcmp(sk->stage[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int sink_pg_map_find(const struct sink_pg *sk, const char *name)
{
	size_t i;

	for (i = 0; i < sk->nmap; i++)
		if (strcmp(sk->map[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The staging columns in COPY order: KEY, VALUE, then META. */
static int sink_pg_stage_columns(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	const struct js_input *inputs[2] = { &spec->key, &spec->value };
	const char *names[2] = { "KAFKA.INPUT.KEY", "KAFKA.INPUT.VALUE" };
	size_t i, k, n = 0;
	int rc;

	for (k = 0; k < 2; k++)
		if (inputs[k]->present)
			n += inputs[k]->ncolumns;
	if (spec->meta_present && spec->meta_column != NULL)
		n++;
	sk->stage = calloc(n + 1, sizeof(*sk->stage));
	if (sk->stage == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	for (k = 0; k < 2; k++) {
		if (!inputs[k]->present)
			continue;
		for (i = 0; i < inputs[k]->ncolumns; i++) {
			struct sink_col *c = &sk->stage[sk->nstage++];
			c->name = inputs[k]->columns[i].name ? inputs[k]->columns[i].name : "";
			c->type = inputs[k]->columns[i].type;
			snprintf(c->path, sizeof(c->path), "%s.COLUMNS[%zu]", names[k], i);
		}
	}
	if (spec->meta_present && spec->meta_column != NULL) {
		struct sink_col *c = &sk->stage[sk->nstage++];
		c->name = spec->meta_column;
		c->type = spec->meta_type ? spec->meta_type : "jsonb";
		snprintf(c->path, sizeof(c->path), "KAFKA.INPUT.META.COLUMNS[0]");
	}
	for (i = 0; i < sk->nstage; i++) {
		char field[SINK_PATH_MAX + 8];
		int j = sink_pg_stage_find(sk, sk->stage[i].name);

		snprintf(field, sizeof(field), "%s.NAME", sk->stage[i].path);
		if (j >= 0 && (size_t)j < i) {
			rc = sink_pg_problem(sk, field, "other", err, errlen,
					     "source column \"%s\" is also %s; give every KEY, VALUE and META "
					     "column its own name",
					     sk->stage[i].name, sk->stage[j].path);
			if (rc != WERR_OK)
				return rc;
		}
		if (sk->spec->mode != JS_MODE_INSERT && strcmp(sk->stage[i].name, SINK_SEQ_COLUMN) == 0) {
			rc = sink_pg_problem(sk, field, "other", err, errlen,
					     "\"" SINK_SEQ_COLUMN "\" is the staging table's own column in MODE "
					     "UPDATE and MERGE; rename this source column");
			if (rc != WERR_OK)
				return rc;
		}
	}
	return WERR_OK;
}

/* The target columns the job writes: MAPPING, else the source columns. */
static int sink_pg_map_columns(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	size_t i, n = spec->mapping ? spec->nmapping : sk->nstage;

	sk->map = calloc(n + 1, sizeof(*sk->map));
	if (sk->map == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	for (i = 0; i < n; i++) {
		struct sink_map *m = &sk->map[i];

		if (spec->mapping != NULL) {
			m->name = spec->mapping[i].name ? spec->mapping[i].name : "";
			m->expr = spec->mapping[i].expression ? spec->mapping[i].expression : "NULL";
			m->stage = -1;
			snprintf(m->path, sizeof(m->path), "KAFKA.OUTPUT.MAPPING[%zu]", i);
			snprintf(m->expr_path, sizeof(m->expr_path), "KAFKA.OUTPUT.MAPPING[%zu].EXPRESSION", i);
		} else {
			m->name = sk->stage[i].name;
			m->expr = NULL;
			m->stage = (int)i;
			snprintf(m->path, sizeof(m->path), "%s", sk->stage[i].path);
			snprintf(m->expr_path, sizeof(m->expr_path), "%s.TYPE", sk->stage[i].path);
		}
		m->tcol = sink_pg_tcol(sk, m->name);
	}
	sk->nmap = n;
	return WERR_OK;
}

/* Checks every column we write exists, so the user gets a message naming the
 * YAML key instead of a bare SQL error on the first batch. */
static int sink_pg_check_target_columns(struct sink_pg *sk, char *err, size_t errlen)
{
	size_t i;
	int rc;

	if (sk->target_oid[0] == '\0')
		return WERR_OK;
	for (i = 0; i < sk->nmap; i++) {
		const struct sink_map *m = &sk->map[i];

		if (m->tcol != NULL)
			continue;
		if (sk->spec->mapping != NULL)
			rc = sink_pg_problem(sk, m->path, "no_column", err, errlen,
					     "column \"%s\" is not in table %s; fix NAME or add the column",
					     m->name, sk->target);
		else
			rc = sink_pg_problem(sk, m->path, "no_column", err, errlen,
					     "column \"%s\" is not in table %s; rename it or add an OUTPUT.MAPPING",
					     m->name, sk->target);
		if (rc != WERR_OK)
			return rc;
	}
	return WERR_OK;
}

/* The type of a KEY/VALUE column without TYPE (wizard jobs): that of the
 * target column it is mapped to, else of the same-named target column, else
 * text. */
static const char *sink_pg_default_stage_type(const struct sink_pg *sk, const struct sink_col *c)
{
	const struct sink_tcol *t;
	size_t j;

	for (j = 0; j < sk->nmap; j++)
		if (sk->map[j].expr != NULL && sink_pg_expr_is_column(sk->map[j].expr, c->name) &&
		    sk->map[j].tcol != NULL)
			return sk->map[j].tcol->type;
	if ((t = sink_pg_tcol(sk, c->name)) != NULL)
		return t->type;
	return "text";
}

static int sink_pg_resolve_stage_types(struct sink_pg *sk, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sk->nstage; i++) {
		struct sink_col *c = &sk->stage[i];
		const char *type = c->type ? c->type : sink_pg_default_stage_type(sk, c);

		c->sqltype = strdup(type);
		if (c->sqltype == NULL) {
			snprintf(err, errlen, "out of memory");
			return WERR_RETRY;
		}
	}
	return WERR_OK;
}

/* One of MATCH_COLUMNS, UPDATE_COLUMNS, ORDER_COLUMNS (role): the indexes in
 * map[] of the target columns it names, appended to out.  key: compared in
 * the target's type. */
static int sink_pg_role(struct sink_pg *sk, const char *role, char *const *names, size_t n, int *out, size_t *nout,
			bool key, char *err, size_t errlen)
{
	char field[SINK_PATH_MAX];
	size_t i;
	int rc, k;

	for (i = 0; i < n; i++) {
		snprintf(field, sizeof(field), "KAFKA.OUTPUT.%s[%zu]", role, i);
		if ((k = sink_pg_map_find(sk, names[i])) < 0) {
			rc = sink_pg_problem(sk, field, "no_column", err, errlen,
					     "column \"%s\" is not written by the job; add it to OUTPUT.MAPPING (or "
					     "name a mapped target column)",
					     names[i]);
			if (rc != WERR_OK)
				return rc;
			continue;
		}
		out[(*nout)++] = k;
		if (key)
			sk->map[k].key = true;
	}
	return WERR_OK;
}

/* MATCH_COLUMNS, UPDATE_COLUMNS, ORDER_COLUMNS name target columns; their
 * values are the MAPPING expressions of those columns. */
static int sink_pg_resolve_roles(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	size_t i, j;
	int rc;

	if (spec->mode == JS_MODE_INSERT)
		return WERR_OK;
	sk->match = calloc(spec->nmatch_columns + 1, sizeof(int));
	sk->update = calloc(spec->nupdate_columns + sk->nmap + 1, sizeof(int));
	sk->order = calloc(spec->norder_columns + 1, sizeof(int));
	if (sk->match == NULL || sk->update == NULL || sk->order == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	if ((rc = sink_pg_role(sk, "MATCH_COLUMNS", spec->match_columns, spec->nmatch_columns, sk->match,
			       &sk->nmatch, true, err, errlen)) != WERR_OK)
		return rc;
	if ((rc = sink_pg_role(sk, "UPDATE_COLUMNS", spec->update_columns, spec->nupdate_columns, sk->update,
			       &sk->nupdate, false, err, errlen)) != WERR_OK)
		return rc;
	if (spec->nupdate_columns == 0) {
		/* Every mapped column that is not a match column. */
		for (i = 0; i < sk->nmap; i++) {
			bool is_match = false;
			for (j = 0; j < spec->nmatch_columns; j++)
				if (strcmp(sk->map[i].name, spec->match_columns[j]) == 0)
					is_match = true;
			if (!is_match)
				sk->update[sk->nupdate++] = (int)i;
		}
	}
	if ((rc = sink_pg_role(sk, "ORDER_COLUMNS", spec->order_columns, spec->norder_columns, sk->order,
			       &sk->norder, true, err, errlen)) != WERR_OK)
		return rc;
	/* The dedup query's inner select names its columns like the target's. */
	for (i = 0; i < sk->nmap; i++) {
		if (strcmp(sk->map[i].name, SINK_SEQ_COLUMN) == 0) {
			rc = sink_pg_problem(sk, sk->map[i].path, "other", err, errlen,
					     "target column \"%s\" has the name of the worker's own column in MODE "
					     "%s; rename the column",
					     sk->map[i].name, js_mode_name(spec->mode));
			if (rc != WERR_OK)
				return rc;
		}
	}
	if (spec->mode == JS_MODE_UPDATE && sk->nupdate == 0 && sk->nmatch == spec->nmatch_columns)
		return sink_pg_problem(sk, "KAFKA.OUTPUT.UPDATE_COLUMNS", "other", err, errlen,
				       "MODE UPDATE has nothing to update: every column the job writes is in "
				       "MATCH_COLUMNS; map the columns to update (or use MODE MERGE to insert "
				       "absent rows)");
	return WERR_OK;
}

/* "(a, b)" of names, into buf. */
static void sink_pg_names(char *buf, size_t buflen, char *const *names, size_t n)
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
struct sink_index {
	char **cols;
	size_t ncols;
	bool primary;
	bool immediate;
};

static bool sink_pg_index_matches(const struct sink_index *ix, char *const *cols, size_t n)
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
static int sink_pg_check_unique(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	const char *params[1] = { sk->target_oid };
	struct sink_index ix[64];
	size_t nix = 0, i, j;
	char last[32] = "", names[512], pk[512] = "", others[1024] = "";
	PGresult *res;
	int rc = WERR_OK, r;
	const char *sql;

	if (spec->mode == JS_MODE_INSERT || sk->target_oid[0] == '\0' || spec->nmatch_columns == 0)
		return WERR_OK;
	if (PQserverVersion(sk->pg) >= SINK_INDNKEYATTS_VERSION)
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
	res = PQexecParams(sk->pg, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = sink_pg_error(sk, res, "reading the target table's unique indexes", err, errlen);
		goto out;
	}
	for (r = 0; r < PQntuples(res); r++) {
		struct sink_index *x;
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
	sink_pg_names(names, sizeof(names), spec->match_columns, spec->nmatch_columns);
	for (i = 0; i < nix; i++) {
		if (!sink_pg_index_matches(&ix[i], spec->match_columns, spec->nmatch_columns))
			continue;
		if (!ix[i].immediate && sk->on_conflict && spec->mode == JS_MODE_MERGE)
			rc = sink_pg_problem(sk, "KAFKA.OUTPUT.MATCH_COLUMNS", "not_unique", err, errlen,
					     "the unique constraint of %s on %s is DEFERRABLE, which INSERT ... "
					     "ON CONFLICT cannot use; make it NOT DEFERRABLE",
					     sk->target, names);
		goto out;
	}
	for (i = 0; i < nix; i++) {
		char one[512];
		size_t off = strlen(others);
		sink_pg_names(one, sizeof(one), ix[i].cols, ix[i].ncols);
		if (ix[i].primary)
			snprintf(pk, sizeof(pk), "%s", one);
		else if (off < sizeof(others))
			snprintf(others + off, sizeof(others) - off, "%s%s", off ? ", " : "", one);
	}
	rc = sink_pg_problem(sk, "KAFKA.OUTPUT.MATCH_COLUMNS", "not_unique", err, errlen,
			     "KAFKA.OUTPUT.MATCH_COLUMNS %s are not the primary key or a unique index of %s; %s%s%s%s; "
			     "create a unique index on %s or change MATCH_COLUMNS",
			     names, sk->target, pk[0] ? "its primary key is " : "it has no primary key", pk,
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

/* Key of the advisory lock that serialises creating the progress table. */
#define SINK_PROGRESS_LOCK_KEY 7411953

#define SINK_PROGRESS_COLUMNS                                                                                \
	"(job_name text, topic text, partition int, next_offset bigint NOT NULL, "                      \
	"updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job_name, topic, partition))"
/* proto.h documents it: the API's errors page reads it. */
#define SINK_ERRORS_COLUMNS                                                                                  \
	"(id bigserial PRIMARY KEY, job_name text NOT NULL, topic text NOT NULL, partition int NOT NULL, "  \
	"\"offset\" bigint NOT NULL, key bytea, value bytea, error text NOT NULL, "                        \
	"created_at timestamptz NOT NULL DEFAULT now())"

static char *sink_pg_sql_aux_create(struct sink_pg *sk, const char *table, const char *columns)
{
	struct sbuf sb = { 0 };

	/* Concurrent CREATE TABLE IF NOT EXISTS of one name races in PostgreSQL (the
	 * loser fails on the table's row type, 42710 or 23505), and workers of
	 * several jobs start at once.  Both statements in one query string run in
	 * one implicit transaction, so the advisory lock is held until the table
	 * is committed, and the next worker's IF NOT EXISTS then sees it. */
	sb_append(&sb, "SELECT pg_advisory_xact_lock(" SINK_STR(SINK_PROGRESS_LOCK_KEY) "); "
		       "CREATE TABLE IF NOT EXISTS ");
	sb_ident(&sb, sk->pg, sk->meta_schema);
	sb_append(&sb, ".");
	sb_append(&sb, table);
	sb_append(&sb, " ");
	sb_append(&sb, columns);
	return sb_take(&sb);
}

static int sink_pg_find_progress(struct sink_pg *sk, char *err, size_t errlen)
{
	char oid[32];
	int rc = sink_pg_find_table(sk, sk->meta_schema, SINK_PROGRESS_TABLE, oid, sizeof(oid), err, errlen);

	sk->progress_exists = rc == WERR_OK && oid[0] != '\0';
	return rc;
}

/* Creates the progress or the error table unless it exists. */
static int sink_pg_create_aux(struct sink_pg *sk, const char *table, const char *columns, const char *what,
			      char *err, size_t errlen)
{
	char oid[32], *sql = NULL;
	int rc;

	/* CREATE ... IF NOT EXISTS needs CREATE on the schema even when the table
	 * exists: look first so a user without it can still run jobs. */
	rc = sink_pg_find_table(sk, sk->meta_schema, table, oid, sizeof(oid), err, errlen);
	if (rc != WERR_OK || oid[0] != '\0')
		goto out;
	sql = sink_pg_sql_aux_create(sk, table, columns);
	if (sql == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	rc = sink_pg_exec(sk, sql, what, err, errlen);
out:
	if (rc == WERR_OK)
		log_info("%s %s.%s ready", strncmp(what, "creating the ", 13) == 0 ? what + 13 : what,
			 sk->meta_schema, table);
	free(sql);
	return rc;
}

static void sb_target(struct sbuf *sb, struct sink_pg *sk)
{
	sb_ident(sb, sk->pg, sk->spec->schema ? sk->spec->schema : "public");
	sb_append(sb, ".");
	sb_ident(sb, sk->pg, sk->spec->table);
}

/* A mapped column's value over the staging table: its MAPPING expression
 * (the user's SQL by design, evaluated by the database) or its source column. */
static void sb_map_value(struct sbuf *sb, struct sink_pg *sk, const struct sink_map *m)
{
	if (m->expr != NULL)
		sb_append(sb, m->expr);
	else
		sb_ident(sb, sk->pg, sk->stage[m->stage].name);
}

/* The same, converted to the target column's type when it is compared
 * (MATCH_COLUMNS, ORDER_COLUMNS), so that keys compare as the unique index
 * compares them.  The other columns are converted by the write itself, by
 * assignment, as in INSERT mode. */
static void sb_map_value_cast(struct sbuf *sb, struct sink_pg *sk, const struct sink_map *m)
{
	if (m->tcol == NULL || !m->key) { /* tcol NULL: check mode, reported already */
		sb_map_value(sb, sk, m);
		return;
	}
	sb_append(sb, "CAST((");
	sb_map_value(sb, sk, m);
	sb_append(sb, ") AS ");
	sb_append(sb, m->tcol->cast); /* quoted by the server's quote_ident */
	sb_append(sb, ")");
}

static void sb_map_names(struct sbuf *sb, struct sink_pg *sk, const char *prefix)
{
	size_t i;

	for (i = 0; i < sk->nmap; i++) {
		if (i > 0)
			sb_append(sb, ", ");
		sb_append(sb, prefix);
		sb_ident(sb, sk->pg, sk->map[i].name);
	}
}

static char *sink_pg_sql_stage(struct sink_pg *sk)
{
	struct sbuf sb = { 0 };
	size_t i;

	/* Session-local, so concurrent workers never meet; emptied at each commit. */
	sb_append(&sb, "CREATE TEMP TABLE " SINK_STAGE_TABLE " (");
	for (i = 0; i < sk->nstage; i++) {
		if (i > 0)
			sb_append(&sb, ", ");
		sb_ident(&sb, sk->pg, sk->stage[i].name);
		sb_append(&sb, " ");
		/* TYPE is SQL the user wrote for their own database, as in GPSS. */
		sb_append(&sb, sk->stage[i].sqltype);
	}
	if (sk->dedup)
		sb_append(&sb, sk->nstage ? ", " SINK_SEQ_COLUMN " bigserial" : SINK_SEQ_COLUMN " bigserial");
	sb_append(&sb, ") ON COMMIT DELETE ROWS");
	return sb_take(&sb);
}

static char *sink_pg_sql_copy(struct sink_pg *sk)
{
	struct sbuf sb = { 0 };
	size_t i;

	sb_append(&sb, "COPY pg_temp." SINK_STAGE_TABLE " (");
	for (i = 0; i < sk->nstage; i++) {
		if (i > 0)
			sb_append(&sb, ", ");
		sb_ident(&sb, sk->pg, sk->stage[i].name);
	}
	sb_append(&sb, ") FROM STDIN");
	return sb_take(&sb);
}

/* One row per MATCH_COLUMNS value, the mapped columns named as the target's:
 *   SELECT DISTINCT ON (m...) a... FROM (SELECT <value> AS a..., streamserver_seq
 *     FROM stage) AS s ORDER BY m..., o... DESC NULLS LAST, streamserver_seq DESC */
static void sb_dedup(struct sbuf *sb, struct sink_pg *sk)
{
	size_t i;

	sb_append(sb, "SELECT DISTINCT ON (");
	for (i = 0; i < sk->nmatch; i++) {
		if (i > 0)
			sb_append(sb, ", ");
		sb_ident(sb, sk->pg, sk->map[sk->match[i]].name);
	}
	sb_append(sb, ") ");
	sb_map_names(sb, sk, "");
	sb_append(sb, " FROM (SELECT ");
	for (i = 0; i < sk->nmap; i++) {
		sb_map_value_cast(sb, sk, &sk->map[i]);
		sb_append(sb, " AS ");
		sb_ident(sb, sk->pg, sk->map[i].name);
		sb_append(sb, ", ");
	}
	sb_append(sb, SINK_SEQ_COLUMN " FROM pg_temp." SINK_STAGE_TABLE ") AS s ORDER BY ");
	for (i = 0; i < sk->nmatch; i++) {
		sb_ident(sb, sk->pg, sk->map[sk->match[i]].name);
		sb_append(sb, ", ");
	}
	for (i = 0; i < sk->norder; i++) {
		sb_ident(sb, sk->pg, sk->map[sk->order[i]].name);
		sb_append(sb, " DESC NULLS LAST, ");
	}
	sb_append(sb, SINK_SEQ_COLUMN " DESC");
}

/* t.m1 = d.m1 AND ... */
static void sb_match_cond(struct sbuf *sb, struct sink_pg *sk)
{
	size_t i;

	for (i = 0; i < sk->nmatch; i++) {
		const char *name = sk->map[sk->match[i]].name;
		if (i > 0)
			sb_append(sb, " AND ");
		sb_append(sb, "t.");
		sb_ident(sb, sk->pg, name);
		sb_append(sb, " = d.");
		sb_ident(sb, sk->pg, name);
	}
}

static char *sink_pg_sql_insert(struct sink_pg *sk)
{
	struct sbuf sb = { 0 };
	size_t i;

	sb_append(&sb, "INSERT INTO ");
	sb_target(&sb, sk);
	sb_append(&sb, " (");
	sb_map_names(&sb, sk, "");
	sb_append(&sb, ") SELECT ");
	for (i = 0; i < sk->nmap; i++) {
		if (i > 0)
			sb_append(&sb, ", ");
		sb_map_value(&sb, sk, &sk->map[i]);
	}
	sb_append(&sb, " FROM pg_temp." SINK_STAGE_TABLE);
	return sb_take(&sb);
}

static char *sink_pg_sql_update(struct sink_pg *sk)
{
	struct sbuf sb = { 0 };
	size_t i;

	sb_append(&sb, "UPDATE ");
	sb_target(&sb, sk);
	sb_append(&sb, " AS t SET ");
	for (i = 0; i < sk->nupdate; i++) {
		const char *name = sk->map[sk->update[i]].name;
		if (i > 0)
			sb_append(&sb, ", ");
		sb_ident(&sb, sk->pg, name);
		sb_append(&sb, " = d.");
		sb_ident(&sb, sk->pg, name);
	}
	sb_append(&sb, " FROM (");
	sb_dedup(&sb, sk);
	sb_append(&sb, ") AS d WHERE ");
	sb_match_cond(&sb, sk);
	return sb_take(&sb);
}

/* INSERT ... ON CONFLICT, wrapped so that it answers one row: the rows
 * written and how many of them were existing rows updated (a row version an
 * ON CONFLICT update wrote has xmax set; an inserted one has not). */
static char *sink_pg_sql_upsert(struct sink_pg *sk, bool dedup)
{
	struct sbuf sb = { 0 };
	size_t i;

	sb_append(&sb, "WITH w AS (INSERT INTO ");
	sb_target(&sb, sk);
	sb_append(&sb, " (");
	sb_map_names(&sb, sk, "");
	sb_append(&sb, ") SELECT ");
	sb_map_names(&sb, sk, "d.");
	sb_append(&sb, " FROM (");
	if (dedup) {
		sb_dedup(&sb, sk);
	} else {
		/* The same values as sb_dedup's, keys converted the same way. */
		sb_append(&sb, "SELECT ");
		for (i = 0; i < sk->nmap; i++) {
			if (i > 0)
				sb_append(&sb, ", ");
			sb_map_value_cast(&sb, sk, &sk->map[i]);
			sb_append(&sb, " AS ");
			sb_ident(&sb, sk->pg, sk->map[i].name);
		}
		sb_append(&sb, " FROM pg_temp." SINK_STAGE_TABLE);
	}
	sb_append(&sb, ") AS d ON CONFLICT (");
	for (i = 0; i < sk->nmatch; i++) {
		if (i > 0)
			sb_append(&sb, ", ");
		sb_ident(&sb, sk->pg, sk->map[sk->match[i]].name);
	}
	if (sk->nupdate == 0) {
		sb_append(&sb, ") DO NOTHING");
	} else {
		sb_append(&sb, ") DO UPDATE SET ");
		for (i = 0; i < sk->nupdate; i++) {
			const char *name = sk->map[sk->update[i]].name;
			if (i > 0)
				sb_append(&sb, ", ");
			sb_ident(&sb, sk->pg, name);
			sb_append(&sb, " = EXCLUDED.");
			sb_ident(&sb, sk->pg, name);
		}
	}
	sb_append(&sb, " RETURNING xmax <> 0 AS updated) SELECT count(*), count(*) FILTER (WHERE updated) FROM w");
	return sb_take(&sb);
}

/* MERGE without ON CONFLICT, after the UPDATE: the rows still unmatched. */
static char *sink_pg_sql_insert_missing(struct sink_pg *sk)
{
	struct sbuf sb = { 0 };

	sb_append(&sb, "INSERT INTO ");
	sb_target(&sb, sk);
	sb_append(&sb, " (");
	sb_map_names(&sb, sk, "");
	sb_append(&sb, ") SELECT ");
	sb_map_names(&sb, sk, "d.");
	sb_append(&sb, " FROM (");
	sb_dedup(&sb, sk);
	sb_append(&sb, ") AS d WHERE NOT EXISTS (SELECT 1 FROM ");
	sb_target(&sb, sk);
	sb_append(&sb, " AS t WHERE ");
	sb_match_cond(&sb, sk);
	sb_append(&sb, ")");
	return sb_take(&sb);
}

static void sb_progress_table(struct sbuf *sb, struct sink_pg *sk)
{
	sb_ident(sb, sk->pg, sk->meta_schema);
	sb_append(sb, "." SINK_PROGRESS_TABLE);
}

/* The progress rows of a batch: $1 job, $2 topic, $3 partitions, $4 next
 * offsets; fenced (EXACTLY) also $5 the offsets expected in the table.  The
 * fenced statements return the partitions they changed, so a miss is seen. */
static char *sink_pg_sql_progress(struct sink_pg *sk, int which)
{
	struct sbuf sb = { 0 };

	if (sk->fenced && which == 0) {
		/* A concurrent writer of the same row makes this wait for its
		 * commit, then re-check the condition against the new value. */
		sb_append(&sb, "UPDATE ");
		sb_progress_table(&sb, sk);
		sb_append(&sb, " AS t SET next_offset = u.o, updated_at = now() "
			       "FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS u(p, o, e) "
			       "WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p AND t.next_offset = u.e "
			       "RETURNING t.partition");
	} else if (sk->fenced) {
		/* Partitions without a row: exactly one worker may create it; the
		 * other's unique violation or empty result is a fence miss. */
		sb_append(&sb, "INSERT INTO ");
		sb_progress_table(&sb, sk);
		sb_append(&sb, " (job_name, topic, partition, next_offset) "
			       "SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o)");
		sb_append(&sb, sk->on_conflict ? " ON CONFLICT DO NOTHING RETURNING partition" : " RETURNING partition");
	} else if (sk->on_conflict) {
		sb_append(&sb, "INSERT INTO ");
		sb_progress_table(&sb, sk);
		sb_append(&sb, " (job_name, topic, partition, next_offset) "
			       "SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o) "
			       "ON CONFLICT (job_name, topic, partition) DO UPDATE "
			       "SET next_offset = EXCLUDED.next_offset, updated_at = now()");
	} else if (which == 0) {
		sb_append(&sb, "UPDATE ");
		sb_progress_table(&sb, sk);
		sb_append(&sb, " AS t SET next_offset = u.o, updated_at = now() "
			       "FROM unnest($3::int[], $4::bigint[]) AS u(p, o) "
			       "WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p");
	} else {
		/* One worker per job: nobody inserts these rows concurrently. */
		sb_append(&sb, "INSERT INTO ");
		sb_progress_table(&sb, sk);
		sb_append(&sb, " (job_name, topic, partition, next_offset) "
			       "SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o) "
			       "WHERE NOT EXISTS (SELECT 1 FROM ");
		sb_progress_table(&sb, sk);
		sb_append(&sb, " AS t WHERE t.job_name = $1 AND t.topic = $2 AND t.partition = u.p)");
	}
	return sb_take(&sb);
}

/* $1 job, $2 topic, $3 partition, $4 offset, $5 key, $6 value (binary), $7 error */
static char *sink_pg_sql_error(struct sink_pg *sk)
{
	struct sbuf sb = { 0 };

	sb_append(&sb, "INSERT INTO ");
	sb_ident(&sb, sk->pg, sk->meta_schema);
	sb_append(&sb, "." SINK_ERRORS_TABLE " (job_name, topic, partition, \"offset\", key, value, error) "
		       "VALUES ($1, $2, $3::int, $4::bigint, $5::bytea, $6::bytea, $7)");
	return sb_take(&sb);
}

/* Every statement a batch runs, from the resolved columns. */
static int sink_pg_build_sql(struct sink_pg *sk, char *err, size_t errlen)
{
	const struct jobspec *spec = sk->spec;
	bool failed = false;
	size_t i;

	sk->stage_sql = sink_pg_sql_stage(sk);
	sk->copy_sql = sink_pg_sql_copy(sk);
	failed = sk->stage_sql == NULL || sk->copy_sql == NULL;
	switch (spec->mode) {
	case JS_MODE_INSERT:
		sk->write_sql[sk->nwrite++] = sink_pg_sql_insert(sk);
		break;
	case JS_MODE_UPDATE:
		if (sk->nupdate > 0)
			sk->write_sql[sk->nwrite++] = sink_pg_sql_update(sk);
		break;
	case JS_MODE_MERGE:
		if (sk->on_conflict) {
			sk->write_sql[sk->nwrite++] = sink_pg_sql_upsert(sk, true);
			/* With nothing to update (every mapped column matches)
			 * the statement is DO NOTHING, which never fails on a
			 * repeated key, so it would not fall back: only DO UPDATE
			 * may skip <dedup>. */
			if (sk->nupdate > 0) {
				sk->fast_sql = sink_pg_sql_upsert(sk, false);
				failed = failed || sk->fast_sql == NULL;
			}
			break;
		}
		if (sk->nupdate > 0)
			sk->write_sql[sk->nwrite++] = sink_pg_sql_update(sk);
		sk->write_sql[sk->nwrite++] = sink_pg_sql_insert_missing(sk);
		break;
	}
	sk->nprogress = sk->on_conflict && !sk->fenced ? 1 : 2;
	if (!sk->use_progress)
		sk->nprogress = 0;
	sk->error_sql = sink_pg_sql_error(sk);
	failed = failed || sk->error_sql == NULL;
	for (i = 0; i < sk->nprogress; i++)
		sk->progress_sql[i] = sink_pg_sql_progress(sk, (int)i);
	for (i = 0; i < SINK_WRITE_MAX; i++)
		failed = failed || (i < sk->nwrite && sk->write_sql[i] == NULL) ||
			 (i < sk->nprogress && sk->progress_sql[i] == NULL);
	if (failed) {
		snprintf(err, errlen, "out of memory or OUTPUT.MAPPING longer than %zu bytes", SINK_SQL_MAX);
		return WERR_FATAL;
	}
	return WERR_OK;
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

/* MODE INSERT without MAPPING copies every source column into the target
 * column of its name.  When each staging column has exactly its target
 * column's type, the INSERT ... SELECT converts nothing, and COPY into the
 * target does the same work once instead of twice (measured: about twice the
 * rows/s).  Not for views, foreign tables or tables with rules: COPY does
 * not apply rules, and INSERT is what the user asked for. */
static int sink_pg_plan_direct(struct sink_pg *sk, char *err, size_t errlen)
{
	const char *params[1] = { sk->target_oid };
	struct sbuf sb = { 0 };
	PGresult *res;
	size_t i;
	int rc = WERR_OK, r;

	if (sk->spec->mode != JS_MODE_INSERT || sk->spec->mapping != NULL || sk->nmap != sk->nstage ||
	    sk->target_oid[0] == '\0')
		return WERR_OK;
	for (i = 0; i < sk->nmap; i++)
		if (sk->map[i].stage != (int)i || sk->map[i].tcol == NULL)
			return WERR_OK;
	/* COPY FROM refuses tables under row-level security (9.5 and later). */
	res = PQexecParams(sk->pg,
			   PQserverVersion(sk->pg) >= SINK_ROW_SECURITY_VERSION
				   ? "SELECT c.relkind IN ('r', 'p') AND NOT c.relhasrules AND NOT c.relrowsecurity "
				     "FROM pg_catalog.pg_class c WHERE c.oid = $1::oid"
				   : "SELECT c.relkind IN ('r', 'p') AND NOT c.relhasrules FROM pg_catalog.pg_class c "
				     "WHERE c.oid = $1::oid",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = sink_pg_error(sk, res, "reading the target table's kind", err, errlen);
		goto out;
	}
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		goto out;
	PQclear(res);
	/* The staging table's types as the server resolved TYPE, in the same
	 * spelling as the target's (format_type). */
	res = PQexec(sk->pg, "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
			     "FROM pg_catalog.pg_attribute a "
			     "WHERE a.attrelid = 'pg_temp." SINK_STAGE_TABLE "'::pg_catalog.regclass "
			     "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = sink_pg_error(sk, res, "reading the staging table's columns", err, errlen);
		goto out;
	}
	if ((size_t)PQntuples(res) != sk->nstage)
		goto out;
	for (r = 0; r < PQntuples(res); r++)
		if (strcmp(PQgetvalue(res, r, 0), sk->stage[r].name) != 0 ||
		    strcmp(PQgetvalue(res, r, 1), sk->map[r].tcol->type) != 0)
			goto out;
	sb_append(&sb, "COPY ");
	sb_target(&sb, sk);
	sb_append(&sb, " (");
	sb_map_names(&sb, sk, "");
	sb_append(&sb, ") FROM STDIN");
	if ((sk->direct_sql = sb_take(&sb)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	log_debug("the rows need no conversion: %s", sk->direct_sql);
out:
	PQclear(res);
	return rc;
}

static const char *const sink_write_names[SINK_WRITE_MAX] = { "ss_write_0", "ss_write_1" };
static const char *const sink_progress_names[SINK_WRITE_MAX] = { "ss_progress_0", "ss_progress_1" };
#define SINK_FAST_NAME "ss_write_fast"

static struct sink_pg *sink_pg_new(const struct jobspec *spec, const char *job_name)
{
	const char *schema = spec->schema ? spec->schema : "public";
	const char *table = spec->table ? spec->table : "";
	struct sink_pg *sk = calloc(1, sizeof(*sk));
	size_t n;

	if (sk == NULL)
		return NULL;
	sk->spec = spec;
	sk->job_name = job_name;
	sk->dedup = spec->mode != JS_MODE_INSERT;
	sk->on_conflict = true;
	sk->use_progress = spec->consistency != JS_CONSISTENCY_NONE;
	sk->fenced = spec->consistency == JS_CONSISTENCY_EXACTLY;
	sk->meta_schema = strdup(spec->metadata_schema ? spec->metadata_schema : schema);
	n = strlen(schema) + strlen(table) + 2;
	sk->target = malloc(n);
	if (sk->meta_schema == NULL || sk->target == NULL) {
		sink_pg_close(sk);
		return NULL;
	}
	snprintf(sk->target, n, "%s.%s", schema, table);
	return sk;
}

/* Resolves what the job writes and builds its statements; fatal problems
 * stop it, unless in check mode. */
static int sink_pg_plan(struct sink_pg *sk, char *err, size_t errlen)
{
	int rc;

	if ((rc = sink_pg_load_target(sk, err, errlen)) != WERR_OK)
		return rc;
	if ((rc = sink_pg_stage_columns(sk, err, errlen)) != WERR_OK)
		return rc;
	if ((rc = sink_pg_map_columns(sk, err, errlen)) != WERR_OK)
		return rc;
	if ((rc = sink_pg_check_target_columns(sk, err, errlen)) != WERR_OK)
		return rc;
	if ((rc = sink_pg_resolve_stage_types(sk, err, errlen)) != WERR_OK)
		return rc;
	if ((rc = sink_pg_resolve_roles(sk, err, errlen)) != WERR_OK)
		return rc;
	if ((rc = sink_pg_check_unique(sk, err, errlen)) != WERR_OK)
		return rc;
	return sink_pg_build_sql(sk, err, errlen);
}

int sink_pg_open(const struct jobspec *spec, const char *job_name, struct sink_pg **out, char *err,
		 size_t errlen)
{
	struct sink_connect_failure f;
	struct sink_pg *sk;
	size_t i;
	int rc;

	*out = NULL;
	sk = sink_pg_new(spec, job_name);
	if (sk == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	rc = sink_pg_connect(sk, &f, err, errlen);
	if (rc != WERR_OK)
		goto out;
	log_info("connected to PostgreSQL %s:%d database \"%s\" as \"%s\" (server %d%s)",
		 spec->host ? spec->host : "(default)", spec->port > 0 ? spec->port : 5432, spec->database,
		 spec->user, PQserverVersion(sk->pg), sk->on_conflict ? "" : ", without ON CONFLICT");

	if ((rc = sink_pg_plan(sk, err, errlen)) != WERR_OK)
		goto out;
	if (sk->use_progress &&
	    (rc = sink_pg_create_aux(sk, SINK_PROGRESS_TABLE, SINK_PROGRESS_COLUMNS, "creating the progress table",
				     err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_create_aux(sk, SINK_ERRORS_TABLE, SINK_ERRORS_COLUMNS, "creating the error table", err,
				     errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_prepare(sk, "ss_error", sk->error_sql, "preparing the error table insert", err,
				  errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_exec(sk, sk->stage_sql, "KAFKA.INPUT: creating the staging table (check the column TYPEs)",
			       err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_plan_direct(sk, err, errlen)) != WERR_OK)
		goto out;
	/* Preparing now reports bad MAPPING expressions before any data flows. */
	for (i = 0; i < sk->nwrite; i++) {
		if ((rc = sink_pg_prepare(sk, sink_write_names[i], sk->write_sql[i],
					  "OUTPUT.MAPPING: preparing the write statement", err, errlen)) != WERR_OK)
			goto out;
		log_debug("write statement %zu: %s", i, sk->write_sql[i]);
	}
	if (sk->fast_sql != NULL &&
	    (rc = sink_pg_prepare(sk, SINK_FAST_NAME, sk->fast_sql, "OUTPUT.MAPPING: preparing the write statement",
				  err, errlen)) != WERR_OK)
		goto out;
	if (sk->dedup) {
		/* Only speed is at stake: a server that refuses keeps CACHE 1. */
		PGresult *res = PQexec(sk->pg, "ALTER SEQUENCE pg_temp." SINK_STAGE_TABLE "_" SINK_SEQ_COLUMN
					       "_seq CACHE " SINK_SEQ_CACHE);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			log_debug("the staging sequence keeps CACHE 1: %s", PQresultErrorMessage(res));
		PQclear(res);
	}
	for (i = 0; i < sk->nprogress; i++)
		if ((rc = sink_pg_prepare(sk, sink_progress_names[i], sk->progress_sql[i],
					  "preparing the progress update", err, errlen)) != WERR_OK)
			goto out;
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
	sk->nstored = 0;
	if (!sk->use_progress)
		return WERR_OK;
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
	free(sk->stored);
	sk->stored = calloc(n ? n : 1, sizeof(*sk->stored));
	if (sk->stored == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (next_offsets[i] < 0)
			continue;
		sk->stored[sk->nstored].partition = partitions[i];
		sk->stored[sk->nstored++].next_offset = next_offsets[i];
	}
out:
	free(sql);
	PQclear(res);
	return rc;
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

/* Write statement i answers (rows written, rows updated) as a row: the
 * ON CONFLICT upsert. */
static bool sink_pg_write_counts(const struct sink_pg *sk, size_t i)
{
	return sk->spec->mode == JS_MODE_MERGE && sk->on_conflict;
}

/* Every row write statement i changes is an existing row updated. */
static bool sink_pg_write_updates(const struct sink_pg *sk, size_t i)
{
	return sk->spec->mode == JS_MODE_UPDATE || (sk->spec->mode == JS_MODE_MERGE && sk->nwrite == 2 && i == 0);
}

static const char *sink_pg_write_what(const struct sink_pg *sk, size_t i)
{
	switch (sk->spec->mode) {
	case JS_MODE_UPDATE:
		return "updating the target table from the batch";
	case JS_MODE_MERGE:
		if (sk->nwrite == 2 && i == 0)
			return "updating the target table from the batch";
		return "merging the batch into the target table";
	case JS_MODE_INSERT:
		break;
	}
	return "inserting the batch into the target table";
}

static int sink_pg_exec_params(struct sink_pg *sk, const char *name, int n, const char *const *params,
			       const int *lengths, const int *formats, PGresult **out, const char *what, char *err,
			       size_t errlen)
{
	PGresult *res = PQexecPrepared(sk->pg, name, n, params, lengths, formats, 0);
	ExecStatusType st = PQresultStatus(res);
	int rc = WERR_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = sink_pg_error(sk, res, what, err, errlen);
		PQclear(res);
		res = NULL;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return rc;
}

/* One rejected message into the error table, in the batch's transaction. */
static int sink_pg_reject(struct sink_pg *sk, const char *topic, const struct sink_msg *m, const char *why,
			  struct sink_batch_result *res, char *err, size_t errlen)
{
	char part[16], off[32];
	const char *params[7] = { sk->job_name, topic, part, off, m->key, m->value, why };
	int lengths[7] = { 0, 0, 0, 0, (int)m->key_len, (int)m->value_len, 0 };
	int formats[7] = { 0, 0, 0, 0, 1, 1, 0 };
	int rc;

	snprintf(part, sizeof(part), "%d", (int)m->partition);
	snprintf(off, sizeof(off), "%lld", (long long)m->offset);
	/* A NULL pointer is SQL NULL; an empty key or value is an empty bytea. */
	if (m->key == NULL)
		params[4] = NULL;
	else if (m->key_len == 0)
		params[4] = "";
	if (m->value == NULL)
		params[5] = NULL;
	else if (m->value_len == 0)
		params[5] = "";
	rc = sink_pg_exec_params(sk, "ss_error", 7, params, lengths, formats, NULL,
				 "writing a rejected message to the error table", err, errlen);
	if (rc != WERR_OK)
		return rc == WERR_DATA ? WERR_RETRY : rc; /* never the message's fault */
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
	int64_t written = 0, updated = 0, n;
	PGresult *pr;
	int rc;

	for (i = lo; i < hi; i++) {
		if (b->msgs[i].error != NULL)
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
	for (i = 0; rc == WERR_OK && sk->direct_sql == NULL && i < sk->nwrite; i++) {
		bool fast = sk->fast_sql != NULL && sk->fast_skip == 0;

		rc = sink_pg_exec_params(sk, fast ? SINK_FAST_NAME : sink_write_names[i], 0, NULL, NULL, NULL, &pr,
					 sink_pg_write_what(sk, i), err, errlen);
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
		if (rc == WERR_OK && sink_pg_write_counts(sk, i)) {
			written += strtoll(PQgetvalue(pr, 0, 0), NULL, 10);
			updated += strtoll(PQgetvalue(pr, 0, 1), NULL, 10);
		} else if (rc == WERR_OK) {
			n = strtoll(PQcmdTuples(pr), NULL, 10);
			written += n;
			if (sink_pg_write_updates(sk, i))
				updated += n;
		}
		PQclear(pr);
	}
	if (rc == WERR_OK) {
		res->rows += written;
		res->updated += updated;
		/* The last part's savepoint ends with the transaction: the progress
		 * statements that follow run inside it, which changes nothing. */
		if (!last)
			rc = sink_pg_exec(sk, "RELEASE SAVEPOINT ss_part", "finishing a part of the batch", err, errlen);
		if (rc == WERR_OK && !last && sk->direct_sql == NULL)
			rc = sink_pg_exec(sk, "DELETE FROM pg_temp." SINK_STAGE_TABLE, "emptying the staging table",
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
			if (b->msgs[i].error != NULL)
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

static int64_t sink_pg_stored(const struct sink_pg *sk, int32_t partition)
{
	size_t i;

	for (i = 0; i < sk->nstored; i++)
		if (sk->stored[i].partition == partition)
			return sk->stored[i].next_offset;
	return -1;
}

static void sink_pg_stored_set(struct sink_pg *sk, const struct part_offset *p, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < sk->nstored; j++)
			if (sk->stored[j].partition == p[i].partition)
				break;
		if (j == sk->nstored) {
			struct part_offset *q = realloc(sk->stored, (sk->nstored + 1) * sizeof(*q));
			if (q == NULL)
				continue; /* then the next batch misses the fence and restarts: safe */
			sk->stored = q;
			sk->nstored++;
			sk->stored[j].partition = p[i].partition;
		}
		sk->stored[j].next_offset = p[i].next_offset;
	}
}

/* Fence miss: says which partition moved and where to. */
static int sink_pg_fence_miss(struct sink_pg *sk, const char *topic, const struct part_offset *p, size_t n,
			      const PGresult *done, char *err, size_t errlen)
{
	const struct part_offset *miss = &p[0];
	char part[16], stored[32] = "none";
	const char *params[3] = { sk->job_name, topic, part };
	struct sbuf sb = { 0 };
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
	sb_append(&sb, "SELECT next_offset FROM ");
	sb_progress_table(&sb, sk);
	sb_append(&sb, " WHERE job_name = $1 AND topic = $2 AND partition = $3::int");
	if ((sql = sb_take(&sb)) != NULL) {
		res = PQexecParams(sk->pg, sql, 3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			snprintf(stored, sizeof(stored), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		free(sql);
	}
	if (sink_pg_stored(sk, miss->partition) >= 0)
		snprintf(err, errlen, "partition %d was advanced by another worker (stored %s, expected %lld); stopping",
			 (int)miss->partition, stored, (long long)sink_pg_stored(sk, miss->partition));
	else
		snprintf(err, errlen, "partition %d was advanced by another worker (stored %s, expected no row); "
				      "stopping",
			 (int)miss->partition, stored);
	return WERR_RETRY;
}

/* EXACTLY: compare-and-set of every partition of the batch. */
static int sink_pg_progress_fenced(struct sink_pg *sk, const char *topic, const struct part_offset *p, size_t n,
				   char *err, size_t errlen)
{
	struct part_offset *upd = calloc(n ? n : 1, sizeof(*upd)), *ins = calloc(n ? n : 1, sizeof(*ins));
	struct part_offset *exp = calloc(n ? n : 1, sizeof(*exp));
	char *a[5] = { NULL, NULL, NULL, NULL, NULL };
	const char *params[5];
	size_t i, nupd = 0, nins = 0;
	PGresult *res = NULL;
	int rc = WERR_OK;

	if (upd == NULL || ins == NULL || exp == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	for (i = 0; i < n; i++) {
		int64_t e = sink_pg_stored(sk, p[i].partition);
		if (e >= 0) {
			exp[nupd].partition = p[i].partition;
			exp[nupd].next_offset = e;
			upd[nupd++] = p[i];
		} else {
			ins[nins++] = p[i];
		}
	}
	params[0] = sk->job_name;
	params[1] = topic;
	if (nupd > 0) {
		a[0] = sink_pg_array(upd, nupd, false);
		a[1] = sink_pg_array(upd, nupd, true);
		a[2] = sink_pg_array(exp, nupd, true);
		if (a[0] == NULL || a[1] == NULL || a[2] == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = WERR_RETRY;
			goto out;
		}
		params[2] = a[0];
		params[3] = a[1];
		params[4] = a[2];
		rc = sink_pg_exec_params(sk, sink_progress_names[0], 5, params, NULL, NULL, &res,
					 "storing the offsets in the progress table", err, errlen);
		if (rc != WERR_OK)
			goto out;
		if ((size_t)PQntuples(res) != nupd) {
			rc = sink_pg_fence_miss(sk, topic, upd, nupd, res, err, errlen);
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	if (nins > 0) {
		a[3] = sink_pg_array(ins, nins, false);
		a[4] = sink_pg_array(ins, nins, true);
		if (a[3] == NULL || a[4] == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = WERR_RETRY;
			goto out;
		}
		params[2] = a[3];
		params[3] = a[4];
		rc = sink_pg_exec_params(sk, sink_progress_names[1], 4, params, NULL, NULL, &res,
					 "storing the offsets in the progress table", err, errlen);
		if (rc == WERR_DATA && strcmp(sk->last_sqlstate, "23505") == 0) {
			/* without ON CONFLICT: the other worker inserted first */
			PQclear(PQexec(sk->pg, "ROLLBACK"));
			PQclear(PQexec(sk->pg, "BEGIN"));
			rc = sink_pg_fence_miss(sk, topic, ins, nins, NULL, err, errlen);
			goto out;
		}
		if (rc != WERR_OK)
			goto out;
		if ((size_t)PQntuples(res) != nins) {
			rc = sink_pg_fence_miss(sk, topic, ins, nins, res, err, errlen);
			goto out;
		}
	}
out:
	PQclear(res);
	for (i = 0; i < 5; i++)
		free(a[i]);
	free(upd);
	free(ins);
	free(exp);
	return rc;
}

static int sink_pg_progress_put(struct sink_pg *sk, const char *topic, const struct part_offset *p, size_t n,
				char *err, size_t errlen)
{
	char *parts = NULL, *offs = NULL;
	const char *params[4];
	size_t i;
	int rc = WERR_OK;

	if (!sk->use_progress || n == 0)
		return WERR_OK;
	if (sk->fenced)
		return sink_pg_progress_fenced(sk, topic, p, n, err, errlen);
	parts = sink_pg_array(p, n, false);
	offs = sink_pg_array(p, n, true);
	if (parts == NULL || offs == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	params[0] = sk->job_name;
	params[1] = topic;
	params[2] = parts;
	params[3] = offs;
	for (i = 0; i < sk->nprogress && rc == WERR_OK; i++)
		rc = sink_pg_exec_params(sk, sink_progress_names[i], 4, params, NULL, NULL, NULL,
					 "storing the offsets in the progress table", err, errlen);
out:
	free(parts);
	free(offs);
	return rc;
}

int sink_pg_write_batch(struct sink_pg *sk, const struct sink_batch *b, struct sink_batch_result *res, char *err,
			size_t errlen)
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
		if ((rc = sink_pg_progress_put(sk, b->topic, b->progress, b->nprogress, err, errlen)) != WERR_OK)
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
	sk->begin_pending = i == b->nmsgs;
	if (!sk->begin_pending &&
	    (rc = sink_pg_exec(sk, "BEGIN", "starting the batch transaction", err, errlen)) != WERR_OK)
		goto out;
	for (i = 0; i < b->nmsgs; i++)
		if (b->msgs[i].error != NULL &&
		    (rc = sink_pg_reject(sk, b->topic, &b->msgs[i], b->msgs[i].error, res, err, errlen)) != WERR_OK)
			goto out;
	if ((rc = sink_pg_write_part(sk, b, 0, b->nmsgs, true, res, err, errlen)) != WERR_OK)
		goto out;
	if (sk->begin_pending) { /* no row to write: nothing took it */
		sk->begin_pending = false;
		if ((rc = sink_pg_exec(sk, "BEGIN", "starting the batch transaction", err, errlen)) != WERR_OK)
			goto out;
	}
	if (!atmost && (rc = sink_pg_progress_put(sk, b->topic, b->progress, b->nprogress, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = sink_pg_exec(sk, "COMMIT", "committing the batch", err, errlen)) != WERR_OK)
		goto out;
	in_tx = false;
	if (sk->fenced)
		sink_pg_stored_set(sk, b->progress, b->nprogress);
out:
	if (rc != WERR_OK) {
		res->rows = 0;
		res->updated = 0;
		res->rejected = 0;
	}
	sk->begin_pending = false;
	if (in_tx && PQstatus(sk->pg) == CONNECTION_OK)
		PQclear(PQexec(sk->pg, "ROLLBACK"));
	return rc;
}

void sink_pg_close(struct sink_pg *sk)
{
	size_t i;

	if (sk == NULL)
		return;
	if (sk->pg != NULL)
		PQfinish(sk->pg);
	for (i = 0; i < sk->ntarget; i++) {
		free(sk->tcols[i].name);
		free(sk->tcols[i].type);
		free(sk->tcols[i].cast);
	}
	free(sk->tcols);
	for (i = 0; i < sk->nstage; i++)
		free(sk->stage[i].sqltype);
	free(sk->stage);
	free(sk->map);
	free(sk->match);
	free(sk->update);
	free(sk->order);
	free(sk->stage_sql);
	free(sk->copy_sql);
	free(sk->direct_sql);
	free(sk->fast_sql);
	for (i = 0; i < SINK_WRITE_MAX; i++) {
		free(sk->write_sql[i]);
		free(sk->progress_sql[i]);
	}
	free(sk->error_sql);
	free(sk->stored);
	free(sk->target);
	free(sk->meta_schema);
	free(sk);
}

/* ---- Check mode ---------------------------------------------------------- */

/* proto.h's code for a SQLSTATE met while preparing the job's statements. */
static const char *sink_pg_check_code(const char *sqlstate)
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
static bool sink_pg_probe(struct sink_pg *sk, const char *sql, char *sqlstate, size_t statelen, char *msg,
			  size_t msglen)
{
	const char *state, *primary, *detail;
	char m[768], d[512];
	PGresult *res;
	bool ok;

	PQclear(PQexec(sk->pg, "SAVEPOINT streamserver_check"));
	res = PQprepare(sk->pg, "", sql, 0, NULL);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	log_debug("check: %s: %s", ok ? "ok" : "failed", sql);
	if (!ok) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		sink_pg_oneline(m, sizeof(m), primary ? primary : PQerrorMessage(sk->pg));
		sink_pg_oneline(d, sizeof(d), detail);
		snprintf(sqlstate, statelen, "%s", state ? state : "");
		snprintf(msg, msglen, "%.600s (SQLSTATE %s)%s%.300s", m, state ? state : "none", d[0] ? ": " : "", d);
	}
	PQclear(res);
	PQclear(PQexec(sk->pg, ok ? "RELEASE SAVEPOINT streamserver_check" : "ROLLBACK TO SAVEPOINT streamserver_check"));
	return ok;
}

/* Runs a query returning one boolean; false on error too. */
static bool sink_pg_check_bool(struct sink_pg *sk, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(sk->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	bool yes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';

	PQclear(res);
	return yes;
}

/* priv on the table oid, granted on the table or on every column of cols. */
static void sink_pg_check_table_priv(struct sink_pg *sk, const char *oid, const char *table, const char *priv,
				     const int *cols, size_t ncols, const char *field, const char *why)
{
	const char *params[3] = { oid, priv, NULL };
	char missing[512] = "";
	size_t i, off = 0;

	if (sink_pg_check_bool(sk, "SELECT pg_catalog.has_table_privilege($1::oid, $2)", 2, params))
		return;
	for (i = 0; i < ncols; i++) {
		const char *p3[3] = { oid, sk->map[cols[i]].name, priv };
		if (sk->map[cols[i]].tcol == NULL ||
		    sink_pg_check_bool(sk, "SELECT pg_catalog.has_column_privilege($1::oid, $2, $3)", 3, p3))
			continue;
		if (off < sizeof(missing)) {
			int w = snprintf(missing + off, sizeof(missing) - off, "%s%s", off ? ", " : "",
					 sk->map[cols[i]].name);
			off += w > 0 ? (size_t)w : 0;
		}
	}
	if (ncols > 0 && missing[0] == '\0')
		return; /* granted column by column */
	sink_pg_problem(sk, field, "privilege", NULL, 0, "user \"%s\" lacks %s on table %s%s%s%s (%s); GRANT %s ON %s TO %s",
			sk->spec->user, priv, table, missing[0] ? " (columns " : "", missing, missing[0] ? ")" : "",
			why, priv, table, sk->spec->user);
}

static void sink_pg_check_privileges(struct sink_pg *sk)
{
	const struct jobspec *spec = sk->spec;
	const char *schema = spec->schema ? spec->schema : "public";
	const char *params[2];
	int *all = NULL;
	size_t i;

	const char *meta_field = spec->metadata_schema ? "KAFKA.METADATA.SCHEMA" : "KAFKA.OUTPUT.SCHEMA";
	bool schema_exists;

	params[0] = schema;
	params[1] = "USAGE";
	schema_exists = sink_pg_check_bool(sk, "SELECT true FROM pg_catalog.pg_namespace WHERE nspname = $1", 1,
					   params);
	if (schema_exists && !sink_pg_check_bool(sk, "SELECT pg_catalog.has_schema_privilege($1, $2)", 2, params))
		sink_pg_problem(sk, "KAFKA.OUTPUT.SCHEMA", "privilege", NULL, 0,
				"user \"%s\" lacks USAGE on schema %s, which holds the target table; GRANT USAGE ON "
				"SCHEMA %s TO %s",
				spec->user, schema, schema, spec->user);
	params[0] = sk->meta_schema;
	if (!schema_exists && strcmp(sk->meta_schema, schema) == 0) {
		/* reported with the target table */
	} else if (!sink_pg_check_bool(sk, "SELECT true FROM pg_catalog.pg_namespace WHERE nspname = $1", 1,
				       params)) {
		sink_pg_problem(sk, meta_field, "no_table", NULL, 0,
				"schema \"%s\" for the progress table " SINK_PROGRESS_TABLE
				" does not exist; create it or fix METADATA.SCHEMA",
				sk->meta_schema);
	} else if (strcmp(sk->meta_schema, schema) != 0 &&
		   !sink_pg_check_bool(sk, "SELECT pg_catalog.has_schema_privilege($1, $2)", 2, params)) {
		sink_pg_problem(sk, "KAFKA.METADATA.SCHEMA", "privilege", NULL, 0,
				"user \"%s\" lacks USAGE on schema %s, which holds the progress table; GRANT USAGE ON "
				"SCHEMA %s TO %s",
				spec->user, sk->meta_schema, sk->meta_schema, spec->user);
	} else if (!sk->progress_exists) {
		params[1] = "CREATE";
		if (!sink_pg_check_bool(sk, "SELECT pg_catalog.has_schema_privilege($1, $2)", 2, params))
			sink_pg_problem(sk, meta_field, "privilege", NULL, 0,
					"user \"%s\" lacks CREATE on schema %s to create the progress table "
					SINK_PROGRESS_TABLE "; GRANT CREATE ON SCHEMA %s TO %s, or create the table "
					"once as its owner",
					spec->user, sk->meta_schema, sk->meta_schema, spec->user);
	} else {
		static const char *const privs[] = { "SELECT", "INSERT", "UPDATE" };
		char oid[32], dummy[8], missing[64] = "";
		size_t off = 0;

		if (sink_pg_find_table(sk, sk->meta_schema, SINK_PROGRESS_TABLE, oid, sizeof(oid), dummy,
				       sizeof(dummy)) == WERR_OK && oid[0] != '\0') {
			params[0] = oid;
			for (i = 0; i < sizeof(privs) / sizeof(privs[0]); i++) {
				params[1] = privs[i];
				if (sink_pg_check_bool(sk, "SELECT pg_catalog.has_table_privilege($1::oid, $2)", 2,
						       params))
					continue;
				off += (size_t)snprintf(missing + off, sizeof(missing) - off, "%s%s", off ? ", " : "",
							privs[i]);
			}
		}
		if (missing[0] != '\0')
			sink_pg_problem(sk, meta_field, "privilege", NULL, 0,
					"user \"%s\" lacks %s on table %s." SINK_PROGRESS_TABLE
					" (the worker stores its offsets there); GRANT %s ON %s." SINK_PROGRESS_TABLE
					" TO %s",
					spec->user, missing, sk->meta_schema, missing, sk->meta_schema, spec->user);
	}
	if (!sink_pg_check_bool(sk, "SELECT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMP')",
				0, NULL))
		sink_pg_problem(sk, "DATABASE", "privilege", NULL, 0,
				"user \"%s\" lacks TEMP on database %s, needed for the staging table; GRANT TEMP ON "
				"DATABASE %s TO %s",
				spec->user, spec->database, spec->database, spec->user);

	if (sk->target_oid[0] == '\0')
		return;
	all = calloc(sk->nmap + 1, sizeof(int));
	if (all == NULL)
		return;
	for (i = 0; i < sk->nmap; i++)
		all[i] = (int)i;
	if (spec->mode != JS_MODE_UPDATE)
		sink_pg_check_table_priv(sk, sk->target_oid, sk->target, "INSERT", all, sk->nmap, "KAFKA.OUTPUT.TABLE",
					 spec->mode == JS_MODE_MERGE ? "MODE MERGE inserts unmatched rows"
								     : "MODE INSERT appends rows");
	if (spec->mode != JS_MODE_INSERT) {
		sink_pg_check_table_priv(sk, sk->target_oid, sk->target, "UPDATE", sk->update, sk->nupdate,
					 "KAFKA.OUTPUT.TABLE", "MODE UPDATE and MERGE update matched rows");
		sink_pg_check_table_priv(sk, sk->target_oid, sk->target, "SELECT", sk->match, sk->nmatch,
					 "KAFKA.OUTPUT.TABLE", "MODE UPDATE and MERGE read MATCH_COLUMNS to find rows");
	}
	free(all);
}

/* The KEY/VALUE TYPEs, one by one: a bad one is named, and replaced by the
 * type it would have without TYPE so the rest can still be checked. */
static void sink_pg_check_types(struct sink_pg *sk)
{
	char sqlstate[6], msg[1024];
	size_t i;

	for (i = 0; i < sk->nstage; i++) {
		struct sink_col *c = &sk->stage[i];
		struct sbuf sb = { 0 };
		char field[SINK_PATH_MAX + 8], *sql, *text;

		if (c->type == NULL)
			continue;
		sb_append(&sb, "SELECT CAST(NULL AS ");
		sb_append(&sb, c->sqltype);
		sb_append(&sb, ")");
		sql = sb_take(&sb);
		if (sql == NULL || sink_pg_probe(sk, sql, sqlstate, sizeof(sqlstate), msg, sizeof(msg))) {
			free(sql);
			continue;
		}
		free(sql);
		snprintf(field, sizeof(field), "%s.TYPE", c->path);
		sink_pg_problem(sk, field, "type_mismatch", NULL, 0,
				"TYPE \"%s\" of source column \"%s\" is not a type of this database: %s; use a "
				"PostgreSQL type such as text, bigint, numeric, timestamptz, jsonb",
				c->sqltype, c->name, msg);
		c->bad_type = true;
		if ((text = strdup(sink_pg_default_stage_type(sk, c))) != NULL) {
			free(c->sqltype);
			c->sqltype = text;
		}
	}
}

/* Each MAPPING value alone, as the job converts it: pinpoints the entry. */
static void sink_pg_check_values(struct sink_pg *sk)
{
	char sqlstate[6], msg[1024];
	size_t i;

	for (i = 0; i < sk->nmap; i++) {
		const struct sink_map *m = &sk->map[i];
		struct sbuf sb = { 0 };
		char *sql;
		int src = m->stage;

		if (m->expr != NULL)
			for (src = 0; (size_t)src < sk->nstage; src++)
				if (sink_pg_expr_is_column(m->expr, sk->stage[src].name))
					break;
		if (src >= 0 && (size_t)src < sk->nstage && sk->stage[src].bad_type)
			continue; /* its TYPE is reported already */

		/* As the job's statement converts it: a compared column by a cast,
		 * the others by assignment (INSERT directly from the staging table,
		 * UPDATE/MERGE through the dedup subquery). */
		if (m->tcol != NULL && !(sk->dedup && m->key)) {
			sb_append(&sb, "INSERT INTO ");
			sb_target(&sb, sk);
			sb_append(&sb, " (");
			sb_ident(&sb, sk->pg, m->name);
			sb_append(&sb, ") SELECT ");
			if (sk->dedup) {
				sb_append(&sb, "v FROM (SELECT ");
				sb_map_value(&sb, sk, m);
				sb_append(&sb, " AS v");
			} else {
				sb_map_value(&sb, sk, m);
			}
		} else {
			sb_append(&sb, "SELECT ");
			sb_map_value_cast(&sb, sk, m);
		}
		sb_append(&sb, " FROM pg_temp." SINK_STAGE_TABLE);
		if (m->tcol != NULL && sk->dedup && !m->key)
			sb_append(&sb, ") AS s");
		sql = sb_take(&sb);
		if (sql == NULL || sink_pg_probe(sk, sql, sqlstate, sizeof(sqlstate), msg, sizeof(msg))) {
			free(sql);
			continue;
		}
		free(sql);
		if (m->tcol != NULL && strcmp(sqlstate, "42804") == 0)
			sink_pg_problem(sk, m->expr_path, "type_mismatch", NULL, 0,
					"the value for column \"%s\" (%s) of %s: %s; convert it in OUTPUT.MAPPING, "
					"e.g. EXPRESSION: (%.200s)::%s%s",
					m->name, m->tcol->type, sk->target, msg, m->expr ? m->expr : sk->stage[m->stage].name,
					m->tcol->type,
					m->expr ? "" : ", or declare the source column with that TYPE");
		else if (m->tcol != NULL)
			sink_pg_problem(sk, m->expr_path, sink_pg_check_code(sqlstate), NULL, 0,
					"the value for column \"%s\" (%s) of %s: %s%s%s", m->name, m->tcol->type,
					sk->target, msg, sink_pg_hint(sqlstate) ? "; " : "",
					sink_pg_hint(sqlstate) ? sink_pg_hint(sqlstate) : "");
		else
			sink_pg_problem(sk, m->expr_path, sink_pg_check_code(sqlstate), NULL, 0,
					"the value for column \"%s\": %s%s%s", m->name, msg,
					sink_pg_hint(sqlstate) ? "; " : "",
					sink_pg_hint(sqlstate) ? sink_pg_hint(sqlstate) : "");
	}
	/* ORDER_COLUMNS need an ordering (json has none, for one). */
	for (i = 0; i < sk->norder; i++) {
		struct sbuf sb = { 0 };
		char field[SINK_PATH_MAX], *sql;

		sb_append(&sb, "SELECT ");
		sb_map_value_cast(&sb, sk, &sk->map[sk->order[i]]);
		sb_append(&sb, " FROM pg_temp." SINK_STAGE_TABLE " ORDER BY 1 DESC");
		sql = sb_take(&sb);
		if (sql == NULL || sink_pg_probe(sk, sql, sqlstate, sizeof(sqlstate), msg, sizeof(msg))) {
			free(sql);
			continue;
		}
		free(sql);
		snprintf(field, sizeof(field), "KAFKA.OUTPUT.ORDER_COLUMNS[%zu]", i);
		sink_pg_problem(sk, field, "bad_expression", NULL, 0,
				"cannot order by \"%s\": %s; name a column of a type with an ordering (numbers, "
				"text, timestamps)",
				sk->map[sk->order[i]].name, msg);
	}
}

static void sink_pg_check_statements(struct sink_pg *sk)
{
	char sqlstate[6], msg[1024], *stage_sql = NULL;
	size_t i;

	if (PQstatus(sk->pg) != CONNECTION_OK)
		return;
	if (sk->check->statement != NULL) {
		char *create = sk->progress_exists ? NULL
						   : sink_pg_sql_aux_create(sk, SINK_PROGRESS_TABLE, SINK_PROGRESS_COLUMNS);
		if (create != NULL)
			sk->check->statement(sk->check->ctx, create);
		free(create);
		sk->check->statement(sk->check->ctx, sk->stage_sql);
		sk->check->statement(sk->check->ctx, sk->copy_sql);
		for (i = 0; i < sk->nwrite; i++)
			sk->check->statement(sk->check->ctx, sk->write_sql[i]);
		for (i = 0; i < sk->nprogress; i++)
			sk->check->statement(sk->check->ctx, sk->progress_sql[i]);
	}

	PQclear(PQexec(sk->pg, "BEGIN"));
	sink_pg_check_types(sk);
	stage_sql = sink_pg_sql_stage(sk);
	if (stage_sql == NULL)
		goto out;
	/* The staging table itself: not prepared but created, inside the check's
	 * transaction that is rolled back. */
	PQclear(PQexec(sk->pg, "SAVEPOINT streamserver_check"));
	{
		PGresult *res = PQexec(sk->pg, stage_sql);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok) {
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			sink_pg_oneline(msg, sizeof(msg), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
			sink_pg_problem(sk, "KAFKA.INPUT", sink_pg_check_code(state), NULL, 0,
					"cannot create the staging table: %s (SQLSTATE %s)", msg, state ? state : "none");
		}
		PQclear(res);
		PQclear(PQexec(sk->pg, ok ? "RELEASE SAVEPOINT streamserver_check"
					  : "ROLLBACK TO SAVEPOINT streamserver_check"));
		if (!ok)
			goto out;
	}
	sink_pg_check_values(sk);
	/* The whole statements, for anything the probes above cannot pinpoint;
	 * after a problem they would only repeat it. */
	for (i = 0; i < sk->nwrite && sk->nproblems == 0; i++)
		if (!sink_pg_probe(sk, sk->write_sql[i], sqlstate, sizeof(sqlstate), msg, sizeof(msg)))
			sink_pg_problem(sk, NULL, sink_pg_check_code(sqlstate), NULL, 0,
					"%s: %s%s%s", sink_pg_write_what(sk, i), msg, sink_pg_hint(sqlstate) ? "; " : "",
					sink_pg_hint(sqlstate) ? sink_pg_hint(sqlstate) : "");
	for (i = 0; i < sk->nprogress && sk->progress_exists; i++)
		if (!sink_pg_probe(sk, sk->progress_sql[i], sqlstate, sizeof(sqlstate), msg, sizeof(msg)))
			sink_pg_problem(sk, NULL, sink_pg_check_code(sqlstate), NULL, 0,
					"the progress table %s." SINK_PROGRESS_TABLE " does not have the expected "
					"columns: %s; drop it (offsets are lost) or fix it",
					sk->meta_schema, msg);
out:
	free(stage_sql);
	PQclear(PQexec(sk->pg, "ROLLBACK"));
}

int sink_pg_check(const struct jobspec *spec, const char *job_name, const struct sink_check_ops *ops)
{
	struct sink_connect_failure f;
	struct sink_pg *sk;
	char err[1536];
	int rc;

	sk = sink_pg_new(spec, job_name);
	if (sk == NULL) {
		ops->problem(ops->ctx, NULL, "other", "out of memory");
		return WERR_RETRY;
	}
	sk->check = ops;
	rc = sink_pg_connect(sk, &f, err, sizeof(err));
	if (rc != WERR_OK) {
		ops->problem(ops->ctx, f.field, f.code, err);
		goto out;
	}
	rc = sink_pg_plan(sk, err, sizeof(err));
	if (rc == WERR_OK)
		rc = sink_pg_find_progress(sk, err, sizeof(err));
	if (rc != WERR_OK) {
		/* not a problem of the job: the connection, memory */
		ops->problem(ops->ctx, NULL, PQstatus(sk->pg) == CONNECTION_OK ? "other" : "unreachable", err);
		goto out;
	}
	sink_pg_check_privileges(sk);
	sink_pg_check_statements(sk);
	if (PQstatus(sk->pg) != CONNECTION_OK) {
		ops->problem(ops->ctx, "HOST", "unreachable", "the connection to PostgreSQL was lost during the check");
		rc = WERR_RETRY;
	}
out:
	sink_pg_close(sk);
	return rc;
}
