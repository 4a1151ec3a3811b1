/* The worker's PostgreSQL layer: the one connection function (with the job's
 * TLS files, pgtls.h), the one SQLSTATE classifier, the hints that go with
 * SQLSTATEs, one-line messages, and the helpers that run a statement and turn
 * a failure into "what: message (SQLSTATE x): detail; hint" and its class.
 * The sink (sink_pg.h), the check mode (check_pg.h), the catalog
 * (catalog.h), the progress module (progress.h) and the tool modes (tools.h)
 * all go through here, so they classify an error alike.
 *
 * Every function returning int returns WERR_OK or a negative enum werr
 * (wtypes.h) and fills err; err never holds the password or the client key.
 * sqlstate, where a function takes it, is a caller's buffer of
 * PG_SQLSTATE_SIZE bytes (or NULL) that receives the SQLSTATE of the failure,
 * "" when there was none (success, or a failure without one).
 */
#ifndef SS_WORKER_PG_H
#define SS_WORKER_PG_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "jobspec.h"

#define PG_SQLSTATE_SIZE 6

/* ON CONFLICT arrived in PostgreSQL 9.5; Greenplum 6 is 9.4. */
#define PG_ON_CONFLICT_VERSION 90500

/* Which SQLSTATEs a restart may cure (WERR_RETRY), which are the data's fault
 * (WERR_DATA) and which need the job fixed (WERR_FATAL).  NULL or malformed:
 * WERR_RETRY. */
int pg_classify(const char *sqlstate);

/* Whether a failure of sqlstate aborted the transaction because of other
 * transactions, so that running the same batch again at once may succeed:
 * 40P01 deadlock_detected, 40001 serialization_failure.  These are
 * WERR_RETRY, never data; the sink retries the batch in place before giving
 * up with WERR_RETRY. */
bool pg_retry_batch(const char *sqlstate);

/* What a user can do about sqlstate ("check USER and PASSWORD"), or NULL. */
const char *pg_hint(const char *sqlstate);

/* Copies a server or libpq message (src may be NULL) into dst as one line:
 * newlines and tabs become blanks, runs of blanks one, none at either end. */
void pg_oneline(char *dst, size_t dstlen, const char *src);

/* How a failed connection is to be treated.  libpq reports connection
 * failures without a SQLSTATE, so this comes from the message's wording. */
struct pg_connect_failure {
	int cls;	   /* WERR_RETRY or WERR_FATAL */
	const char *hint;  /* what to do, or NULL */
	const char *field; /* the YAML key to fix, or NULL */
	const char *code;  /* check mode's error code (proto.h) */
	bool tls;	   /* a TLS problem: the message names the job and SSLMODE */
};

/* One connection to the job's database (HOST, PORT, DATABASE, USER, PASSWORD,
 * SSLMODE, SSLROOTCERT, SSLCERT, SSLKEY) as application_name appname; every
 * connection of the worker goes through here, so the TLS files (pgtls.h)
 * exist only while libpq connects.  On success *out is the caller's
 * (PQfinish).  On failure *out is NULL, f (may be NULL) says how to treat it
 * and err what failed and how to fix it; a TLS failure names job_name, HOST
 * and SSLMODE. */
int pg_connect(const struct jobspec *spec, const char *job_name, const char *appname, PGconn **out,
	       struct pg_connect_failure *f, char *err, size_t errlen);

/* Whether the server has INSERT ... ON CONFLICT (9.5 and later), unless
 * STREAMWORKER_LEGACY_UPSERT=1 in the environment asks for the statements of
 * servers without it (for tests of that path). */
bool pg_on_conflict(PGconn *pg);

/* Builds "what: message (SQLSTATE x): detail; hint" from a failed result
 * (res NULL: libpq's connection message) and returns its class; a lost
 * connection is WERR_RETRY whatever the SQLSTATE. */
int pg_error(PGconn *pg, const PGresult *res, const char *what, char *sqlstate, char *err, size_t errlen);

/* Runs sql (no parameters; several statements allowed), ignoring any rows. */
int pg_exec(PGconn *pg, const char *sql, const char *what, char *sqlstate, char *err, size_t errlen);

/* Runs sql with n text parameters.  out NULL: the result is dropped;
 * otherwise on success *out is the caller's (PQclear), on failure NULL. */
int pg_query(PGconn *pg, const char *sql, int n, const char *const *params, PGresult **out, const char *what,
	     char *sqlstate, char *err, size_t errlen);

/* Prepares sql as the statement name. */
int pg_prepare(PGconn *pg, const char *name, const char *sql, const char *what, char *sqlstate, char *err,
	       size_t errlen);

/* Runs the prepared statement name; lengths and formats as PQexecPrepared's.
 * out as pg_query's. */
int pg_exec_prepared(PGconn *pg, const char *name, int n, const char *const *params, const int *lengths,
		     const int *formats, PGresult **out, const char *what, char *sqlstate, char *err, size_t errlen);

/* The OID, as text in oid, of the table, partitioned table, foreign table or
 * view schema.table; "" when there is none. */
int pg_table_oid(PGconn *pg, const char *schema, const char *table, char *oid, size_t oidlen, char *err,
		 size_t errlen);

#endif
