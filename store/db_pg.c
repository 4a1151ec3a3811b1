/* The PostgreSQL side of db.h: one libpq connection, statements run with
 * PQexecParams (text parameters and results), SQLite's placeholders turned
 * into $n.  Nothing is cached between calls: another controller sharing the
 * schema sees every committed change, and this one sees theirs. */
#include "db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db_impl.h"
#include "log.h"

/* pg_type OIDs of the parameters' types (catalog/pg_type_d.h, not installed
 * with libpq-dev); stable since PostgreSQL 7. */
#define DB_PG_INT8OID 20
#define DB_PG_TEXTOID 25

/* The first key of the store's advisory locks ("ssct"), the second being a
 * hash of the schema, so that catalogs in two schemas do not wait for each
 * other. */
#define DB_PG_LOCK_CLASS "1936941940" /* 0x73736374 */

struct db_pg {
	struct db base;
	PGconn *pg;
	char *schema;        /* quoted, for SQL */
	char *schema_plain;  /* as given, for the lock's key */
	bool in_tx;
	char msg[512];
};

struct db_pg_stmt {
	struct db_stmt base;
	char *sql;
	int nparams;
	char *values[DB_PARAMS_MAX];
	Oid types[DB_PARAMS_MAX];
	PGresult *res;
	int row, nrows;
	bool ran;
	int64_t changes;
};

static struct db_pg *db_pg_of(struct db *db)
{
	return (struct db_pg *)db;
}

static struct db_pg_stmt *db_pg_stmt_of(struct db_stmt *stmt)
{
	return (struct db_pg_stmt *)stmt;
}

static void db_pg_set_msg(struct db_pg *d, const char *msg)
{
	size_t n;

	snprintf(d->msg, sizeof(d->msg), "%s", msg != NULL && *msg ? msg : "unknown error");
	n = strlen(d->msg);
	while (n > 0 && (d->msg[n - 1] == '\n' || d->msg[n - 1] == ' '))
		d->msg[--n] = '\0';
}

/* Classifies a failed result by its SQLSTATE. */
static int db_pg_fail(struct db_pg *d, const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	/* The primary message alone: a DETAIL may quote a row's values, and a
	 * job's definition holds a password. */
	if (primary != NULL)
		snprintf(d->msg, sizeof(d->msg), "%s (SQLSTATE %s)", primary,
			 state != NULL ? state : "?");
	else
		db_pg_set_msg(d, PQerrorMessage(d->pg));
	if (state == NULL)
		return DB_ERROR;
	if (strcmp(state, "23505") == 0)
		return DB_UNIQUE;
	if (strcmp(state, "23503") == 0)
		return DB_FOREIGN_KEY;
	/* serialization_failure, deadlock_detected: another controller won. */
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return DB_RETRY;
	return DB_ERROR;
}

static int db_pg_set_path(struct db_pg *d)
{
	PGresult *res;
	const char *values[1] = { d->schema };
	int rc = 0;

	res = PQexecParams(d->pg, "SELECT pg_catalog.set_config('search_path', $1, false)", 1,
			   NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = db_pg_fail(d, res);
	PQclear(res);
	return rc;
}

/* Whether the server closed the idle connection (it restarted, or ended the
 * session): the socket is readable although we asked nothing. */
static bool db_pg_closed_while_idle(struct db_pg *d)
{
	struct pollfd pfd = { .fd = PQsocket(d->pg), .events = POLLIN | POLLRDHUP };

	if (pfd.fd < 0)
		return true;
	if (poll(&pfd, 1, 0) <= 0)
		return false;
	/* A server that shuts down sends its FATAL message, then closes: the
	 * message alone would leave libpq's status OK. */
	if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))
		return true;
	return !PQconsumeInput(d->pg) || PQstatus(d->pg) != CONNECTION_OK;
}

/* A connection lost between transactions (the server restarted, a network
 * cut) is made again before the next statement, found by the socket before
 * a statement is sent, so that a statement is never sent twice; one lost
 * inside a transaction fails the transaction, which the caller sees. */
static int db_pg_ensure(struct db_pg *d)
{
	if (PQstatus(d->pg) == CONNECTION_OK && (d->in_tx || !db_pg_closed_while_idle(d)))
		return 0;
	if (d->in_tx) {
		db_pg_set_msg(d, "the connection to the catalog was lost in a transaction");
		return DB_ERROR;
	}
	log_warn("store: the connection to the catalog was lost; connecting again");
	PQreset(d->pg);
	if (PQstatus(d->pg) != CONNECTION_OK) {
		db_pg_set_msg(d, PQerrorMessage(d->pg));
		return DB_ERROR;
	}
	return db_pg_set_path(d);
}

static void db_pg_close(struct db *db)
{
	struct db_pg *d = db_pg_of(db);

	PQfinish(d->pg);
	PQfreemem(d->schema);
	free(d->schema_plain);
	free(d);
}

static const char *db_pg_errmsg(struct db *db)
{
	return db_pg_of(db)->msg;
}

/* Tracks BEGIN / COMMIT / ROLLBACK so that a reconnect never happens inside
 * a transaction. */
static void db_pg_track_tx(struct db_pg *d)
{
	d->in_tx = PQtransactionStatus(d->pg) == PQTRANS_INTRANS ||
		   PQtransactionStatus(d->pg) == PQTRANS_INERROR;
}

static int db_pg_exec(struct db *db, const char *sql)
{
	struct db_pg *d = db_pg_of(db);
	PGresult *res;
	int rc = 0;

	if ((rc = db_pg_ensure(d)) < 0)
		return rc;
	res = PQexec(d->pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = db_pg_fail(d, res);
	PQclear(res);
	db_pg_track_tx(d);
	return rc;
}

/* SQLite's "?NNN" and "?" to "$NNN" (a bare "?" takes the number after the
 * largest so far, as SQLite does), outside quotes.  *nparams: the largest. */
static char *db_pg_translate(const char *sql, int *nparams)
{
	size_t len = strlen(sql);
	char *out = malloc(len * 3 + 1), *o = out;
	char quote = 0;
	int max = 0;

	if (out == NULL)
		return NULL;
	for (const char *p = sql; *p; p++) {
		if (quote != 0) {
			if (*p == quote)
				quote = 0;
			*o++ = *p;
			continue;
		}
		if (*p == '\'' || *p == '"') {
			quote = *p;
			*o++ = *p;
			continue;
		}
		if (*p != '?') {
			*o++ = *p;
			continue;
		}
		if (p[1] >= '0' && p[1] <= '9') {
			int n = 0;

			while (p[1] >= '0' && p[1] <= '9')
				n = n * 10 + (*++p - '0');
			if (n > max)
				max = n;
			o += sprintf(o, "$%d", n);
		} else {
			o += sprintf(o, "$%d", ++max);
		}
	}
	*o = '\0';
	*nparams = max;
	return out;
}

static struct db_stmt *db_pg_prepare(struct db *db, const char *sql)
{
	struct db_pg *d = db_pg_of(db);
	struct db_pg_stmt *s = calloc(1, sizeof(*s));

	if (s != NULL)
		s->sql = db_pg_translate(sql, &s->nparams);
	if (s == NULL || s->sql == NULL) {
		free(s);
		db_pg_set_msg(d, "out of memory");
		return NULL;
	}
	if (s->nparams > DB_PARAMS_MAX) {
		db_pg_set_msg(d, "too many parameters in one statement");
		free(s->sql);
		free(s);
		return NULL;
	}
	s->base.ops = &db_pg_ops;
	s->base.db = db;
	return &s->base;
}

static int db_pg_bind(struct db_pg_stmt *s, int idx, const char *value, Oid type)
{
	char *copy = NULL;

	if (value != NULL && (copy = strdup(value)) == NULL)
		return DB_ERROR;
	if (s->values[idx - 1] != NULL) {
		explicit_bzero(s->values[idx - 1], strlen(s->values[idx - 1]));
		free(s->values[idx - 1]);
	}
	s->values[idx - 1] = copy;
	s->types[idx - 1] = type;
	if (idx > s->nparams)
		s->nparams = idx;
	return 0;
}

static int db_pg_bind_int64(struct db_stmt *stmt, int idx, int64_t value)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", (long long)value);
	return db_pg_bind(db_pg_stmt_of(stmt), idx, buf, DB_PG_INT8OID);
}

static int db_pg_bind_text(struct db_stmt *stmt, int idx, const char *value)
{
	return db_pg_bind(db_pg_stmt_of(stmt), idx, value, DB_PG_TEXTOID);
}

static int db_pg_bind_null(struct db_stmt *stmt, int idx)
{
	return db_pg_bind(db_pg_stmt_of(stmt), idx, NULL, 0);
}

static int db_pg_run(struct db_pg_stmt *s)
{
	struct db_pg *d = db_pg_of(s->base.db);
	ExecStatusType status;
	int rc;

	s->ran = true;
	if ((rc = db_pg_ensure(d)) < 0)
		return rc;
	s->res = PQexecParams(d->pg, s->sql, s->nparams, s->types,
			      (const char *const *)s->values, NULL, NULL, 0);
	db_pg_track_tx(d);
	status = PQresultStatus(s->res);
	if (status == PGRES_TUPLES_OK) {
		s->nrows = PQntuples(s->res);
		s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
		return 0;
	}
	if (status == PGRES_COMMAND_OK) {
		s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
		return 0;
	}
	return db_pg_fail(d, s->res);
}

static int db_pg_step(struct db_stmt *stmt)
{
	struct db_pg_stmt *s = db_pg_stmt_of(stmt);
	int rc;

	if (!s->ran) {
		if ((rc = db_pg_run(s)) < 0)
			return rc;
		s->row = -1;
	}
	if (s->row + 1 < s->nrows) {
		s->row++;
		return DB_ROW;
	}
	s->row = s->nrows;
	return DB_DONE;
}

static bool db_pg_column_is_null(struct db_stmt *stmt, int col)
{
	struct db_pg_stmt *s = db_pg_stmt_of(stmt);

	if (s->res == NULL || s->row < 0 || s->row >= s->nrows || col >= PQnfields(s->res))
		return true;
	return PQgetisnull(s->res, s->row, col) != 0;
}

static const char *db_pg_column_text(struct db_stmt *stmt, int col)
{
	struct db_pg_stmt *s = db_pg_stmt_of(stmt);

	if (db_pg_column_is_null(stmt, col))
		return NULL;
	return PQgetvalue(s->res, s->row, col);
}

static int64_t db_pg_column_int64(struct db_stmt *stmt, int col)
{
	const char *text = db_pg_column_text(stmt, col);

	return text != NULL ? strtoll(text, NULL, 10) : 0;
}

static int64_t db_pg_changes(struct db_stmt *stmt)
{
	return db_pg_stmt_of(stmt)->changes;
}

static void db_pg_finalize(struct db_stmt *stmt)
{
	struct db_pg_stmt *s = db_pg_stmt_of(stmt);

	for (int i = 0; i < DB_PARAMS_MAX; i++) {
		if (s->values[i] != NULL) {
			/* A job's definition holds a password. */
			explicit_bzero(s->values[i], strlen(s->values[i]));
			free(s->values[i]);
		}
	}
	PQclear(s->res);
	free(s->sql);
	free(s);
}

static int db_pg_begin(struct db *db)
{
	return db_pg_exec(db, "BEGIN ISOLATION LEVEL SERIALIZABLE");
}

/* READ COMMITTED: once the lock is ours, each statement sees what the
 * controller that held it before committed. */
static int db_pg_migrate_begin(struct db *db)
{
	struct db_pg *d = db_pg_of(db);
	const char *values[1] = { d->schema_plain };
	char sql[256];
	PGresult *res;
	int rc;

	if ((rc = db_pg_exec(db, "BEGIN")) < 0)
		return rc;
	res = PQexecParams(d->pg,
			   "SELECT pg_catalog.pg_advisory_xact_lock(" DB_PG_LOCK_CLASS
			   ", pg_catalog.hashtext($1))",
			   1, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = db_pg_fail(d, res);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	/* The schema is quoted by PQescapeIdentifier. */
	snprintf(sql, sizeof(sql),
		 "CREATE SCHEMA IF NOT EXISTS %s;"
		 "CREATE TABLE IF NOT EXISTS %s.schema_version (version INTEGER NOT NULL)",
		 d->schema, d->schema);
	return db_pg_exec(db, sql);
}

static int db_pg_schema_version(struct db *db, int64_t *version)
{
	struct db_stmt *stmt = db_pg_prepare(db, "SELECT coalesce(max(version), 0) FROM schema_version");
	int rc;

	if (stmt == NULL)
		return DB_ERROR;
	rc = db_pg_step(stmt);
	if (rc == DB_ROW) {
		*version = db_pg_column_int64(stmt, 0);
		rc = 0;
	} else if (rc == DB_DONE) {
		db_pg_set_msg(db_pg_of(db), "the schema version table gave no row");
		rc = DB_ERROR;
	}
	db_pg_finalize(stmt);
	return rc;
}

static int db_pg_set_schema_version(struct db *db, int64_t version)
{
	struct db_stmt *stmt;
	int rc;

	if ((rc = db_pg_exec(db, "DELETE FROM schema_version")) < 0)
		return rc;
	stmt = db_pg_prepare(db, "INSERT INTO schema_version (version) VALUES (?)");
	if (stmt == NULL)
		return DB_ERROR;
	db_pg_bind_int64(stmt, 1, version);
	rc = db_pg_step(stmt);
	db_pg_finalize(stmt);
	return rc < 0 ? rc : 0;
}

const struct db_ops db_pg_ops = {
	.kind = DB_PG,
	.id_type = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
	.close = db_pg_close,
	.errmsg = db_pg_errmsg,
	.exec = db_pg_exec,
	.prepare = db_pg_prepare,
	.bind_int64 = db_pg_bind_int64,
	.bind_text = db_pg_bind_text,
	.bind_null = db_pg_bind_null,
	.step = db_pg_step,
	.column_is_null = db_pg_column_is_null,
	.column_int64 = db_pg_column_int64,
	.column_text = db_pg_column_text,
	.changes = db_pg_changes,
	.finalize = db_pg_finalize,
	.begin = db_pg_begin,
	.migrate_begin = db_pg_migrate_begin,
	.schema_version = db_pg_schema_version,
	.set_schema_version = db_pg_set_schema_version,
};

static void db_pg_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("store: %s", message);
}

int db_open_pg(const char *conninfo, const char *schema, struct db **out, char *err,
	       size_t errlen)
{
	/* A catalog that does not answer must not hold the store's lock (and
	 * with it every API thread) for the kernel's TCP timeout; the URI's own
	 * settings win.  A cluster's controller fences itself when it has not
	 * renewed its lease for 6 s (CLUSTER_LEASE_MS), which it only learns
	 * when the call returns: on a link that went down (packets dropped, no
	 * reset) a request blocked for minutes, and a cut-off controller kept
	 * its workers although the others ran its tasks.  Unacknowledged data
	 * now fails the connection after 4 s (tcp_user_timeout), a silent one
	 * after about 5 s (keepalives). */
	static const char *const keys[] = { "application_name", "connect_timeout", "keepalives", "keepalives_idle",
					     "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname",
					     NULL };
	const char *values[] = { "streamserver", "10", "1", "2", "1", "3", "4000", conninfo, NULL };
	struct db_pg *d = calloc(1, sizeof(*d));
	int rc = DB_ERROR;

	*out = NULL;
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERROR;
	}
	d->base.ops = &db_pg_ops;
	/* dbname is expanded: the URI's own settings win over the name. */
	d->pg = PQconnectdbParams(keys, values, 1);
	if (d->pg == NULL || PQstatus(d->pg) != CONNECTION_OK) {
		db_pg_set_msg(d, d->pg != NULL ? PQerrorMessage(d->pg) : "out of memory");
		snprintf(err, errlen, "cannot connect to the catalog: %s", d->msg);
		goto out;
	}
	PQsetNoticeProcessor(d->pg, db_pg_notice, NULL);
	d->schema_plain = strdup(schema);
	d->schema = PQescapeIdentifier(d->pg, schema, strlen(schema));
	if (d->schema_plain == NULL || d->schema == NULL) {
		snprintf(err, errlen, "cannot quote the schema name: %s", PQerrorMessage(d->pg));
		goto out;
	}
	if (db_pg_set_path(d) < 0) {
		snprintf(err, errlen, "cannot use schema %s: %s", d->schema, d->msg);
		goto out;
	}
	*out = &d->base;
	d = NULL;
	rc = 0;
out:
	if (d != NULL)
		db_pg_close(&d->base);
	return rc;
}
