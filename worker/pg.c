#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgtls.h"
#include "wtypes.h"

/* The one SQLSTATE classifier of the worker (the sink, the check mode and the
 * tool modes).  Unknown classes are retried: the controller backs off and
 * MAX_RETRIES bounds it, while a wrong "fatal" would stop a job for good.
 *
 * 22 (data exception) and 23 (integrity constraint violation) are the rows'
 * fault: the sink isolates such rows into the error table, and a tool meeting
 * one in the worker's own tables (a hand-made progress table with other
 * constraints) cannot be cured by a retry either.
 *
 * 54 (program_limit_exceeded) is data too, not retriable: its common case,
 * 54000 "index row size ... exceeds maximum", is one row's value too large for
 * a btree, and the rest (54001 statement too complex, 54011 too many columns,
 * 54023 too many arguments) come from the job's statements.  The same input
 * fails the same way after a restart.  It is not split into the error table
 * (the sink bisects only 22 and 23): the batch fails and says why. */
int pg_classify(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return WERR_RETRY;
	if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
	    strncmp(sqlstate, "54", 2) == 0)
		return WERR_DATA;
	/* 28 credentials, 3D000 no database, 3F000 no schema, 42 the statement
	 * or a privilege, 0A a feature the server lacks */
	if (strncmp(sqlstate, "28", 2) == 0 || strcmp(sqlstate, "3D000") == 0 ||
	    strcmp(sqlstate, "3F000") == 0 || strncmp(sqlstate, "42", 2) == 0 ||
	    strncmp(sqlstate, "0A", 2) == 0)
		return WERR_FATAL;
	/* 08 connection, 53 resources, 57P01-57P03 shutdown, 40 rollback
	 * (pg_retry_batch), 55P03 lock... */
	return WERR_RETRY;
}

/* A deadlock or a serialization failure says nothing about the rows: the
 * same batch, run again once the other transaction is through, commits.  So
 * it is retried, and never split into the error table (that would reject
 * good rows, and bisection would hit the same contention). */
bool pg_retry_batch(const char *sqlstate)
{
	return sqlstate != NULL && (strcmp(sqlstate, "40P01") == 0 || strcmp(sqlstate, "40001") == 0);
}

const char *pg_hint(const char *sqlstate)
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

void pg_oneline(char *dst, size_t dstlen, const char *src)
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

static void pg_connect_class(const char *msg, struct pg_connect_failure *f)
{
	static const struct {
		const char *needle;
		const char *also; /* must appear too, or NULL */
		struct pg_connect_failure f;
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

int pg_connect(const struct jobspec *spec, const char *job_name, const char *appname, PGconn **out,
	       struct pg_connect_failure *f, char *err, size_t errlen)
{
	struct pg_connect_failure dummy;
	const char *keys[24], *vals[24];
	struct pgtls_files tls;
	char port[16];
	char msg[768];
	PGconn *pg;
	int n = 0;

	if (f == NULL)
		f = &dummy;
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
	pg_oneline(msg, sizeof(msg), PQerrorMessage(pg));
	pgtls_files_unname(&tls, msg, sizeof(msg));
	pgtls_files_remove(&tls);
	PQfinish(pg);
	pg_connect_class(msg, f);
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


bool pg_on_conflict(PGconn *pg)
{
	const char *legacy = getenv("STREAMWORKER_LEGACY_UPSERT");

	if (legacy != NULL && strcmp(legacy, "1") == 0)
		return false;
	return PQserverVersion(pg) >= PG_ON_CONFLICT_VERSION;
}

static void pg_sqlstate_set(char *sqlstate, const char *state)
{
	if (sqlstate != NULL)
		snprintf(sqlstate, PG_SQLSTATE_SIZE, "%s", state != NULL ? state : "");
}

int pg_error(PGconn *pg, const PGresult *res, const char *what, char *sqlstate, char *err, size_t errlen)
{
	const char *state = NULL, *primary = NULL, *detail = NULL, *hint;
	char msg[1024], det[512];

	if (res != NULL) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	}
	if (primary == NULL)
		primary = PQerrorMessage(pg);
	pg_sqlstate_set(sqlstate, state);
	pg_oneline(msg, sizeof(msg), primary);
	pg_oneline(det, sizeof(det), detail);
	if (PQstatus(pg) == CONNECTION_BAD) {
		snprintf(err, errlen, "%s: connection to PostgreSQL lost: %s", what, msg);
		return WERR_RETRY;
	}
	hint = pg_hint(state);
	snprintf(err, errlen, "%s: %s (SQLSTATE %s)%s%s%s%s", what, msg, state ? state : "none", det[0] ? ": " : "",
		 det, hint ? "; " : "", hint ? hint : "");
	return pg_classify(state);
}

/* Checks a result (a statement's or rows, never COPY); keeps it in *out when asked for, else clears it. */
static int pg_result(PGconn *pg, PGresult *res, PGresult **out, const char *what, char *sqlstate, char *err,
		     size_t errlen)
{
	ExecStatusType st = PQresultStatus(res);
	int rc = WERR_OK;

	pg_sqlstate_set(sqlstate, NULL);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = pg_error(pg, res, what, sqlstate, err, errlen);
		PQclear(res);
		res = NULL;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return rc;
}

int pg_exec(PGconn *pg, const char *sql, const char *what, char *sqlstate, char *err, size_t errlen)
{
	return pg_result(pg, PQexec(pg, sql), NULL, what, sqlstate, err, errlen);
}

int pg_query(PGconn *pg, const char *sql, int n, const char *const *params, PGresult **out, const char *what,
	     char *sqlstate, char *err, size_t errlen)
{
	return pg_result(pg, PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0), out, what,
			 sqlstate, err, errlen);
}

int pg_prepare(PGconn *pg, const char *name, const char *sql, const char *what, char *sqlstate, char *err,
	       size_t errlen)
{
	return pg_result(pg, PQprepare(pg, name, sql, 0, NULL), NULL, what, sqlstate, err,
			 errlen);
}

int pg_exec_prepared(PGconn *pg, const char *name, int n, const char *const *params, const int *lengths,
		     const int *formats, PGresult **out, const char *what, char *sqlstate, char *err, size_t errlen)
{
	return pg_result(pg, PQexecPrepared(pg, name, n, params, lengths, formats, 0), out, what,
			 sqlstate, err, errlen);
}

int pg_table_oid(PGconn *pg, const char *schema, const char *table, char *oid, size_t oidlen, char *err,
		 size_t errlen)
{
	const char *params[2] = { schema, table };
	PGresult *res = NULL;
	int rc;

	oid[0] = '\0';
	rc = pg_query(pg,
		      "SELECT c.oid::text FROM pg_catalog.pg_class c "
		      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
		      "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'f', 'v')",
		      2, params, &res, "looking up a table", NULL, err, errlen);
	if (rc == WERR_OK && PQntuples(res) > 0)
		snprintf(oid, oidlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}
