/* The environment a worker process is started with: the controller's own,
 * without the variables that may hold a secret (the API token, a database
 * password) and without libpq's PG* variables, so that the job alone says
 * how a worker connects (a PGSSLMODE=disable in the controller's environment
 * must not weaken a job that leaves SSLMODE to libpq's default).  The job reaches the worker on standard input; nothing secret
 * is passed through argv or the environment (doc/operations.md "Security").
 */
#ifndef SS_WORKERENV_H
#define SS_WORKERENV_H

#include <stdbool.h>

/* The filtered environment, computed once on first call (thread-safe) from
 * environ; the array lives until the process ends. */
char *const *worker_environ(void);

/* Whether a variable of this name ("NAME" or "NAME=value") is kept out of
 * the workers' environment: names containing PASSWORD, PASSWD, SECRET, TOKEN
 * or CREDENTIAL (any case), PGPASSWORD, and the controller's catalog URI
 * (STREAMSERVER_STORE, which may hold the catalog's password). */
bool worker_env_is_secret(const char *name);

/* Whether a variable is one of libpq's ("PG" then a capital letter: PGHOST,
 * PGSSLMODE, PGSSLROOTCERT, PGSERVICE, PGOPTIONS...), also kept out. */
bool worker_env_is_libpq(const char *name);

#endif
