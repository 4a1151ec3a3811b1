/* The controller's SQLite store: data services, data sources and jobs.
 *
 * Owned by the controller alone.  One connection guarded by a mutex, so every
 * function may be called from any thread (civetweb's request threads and the
 * supervisor loop).  WAL journal, schema versioned with PRAGMA user_version,
 * database file mode 0600.
 *
 * The store is the source of truth for a job's desired state (what the user
 * asked for: running or stopped) and its runtime state (what the supervisor
 * last saw), so that the API reads status without asking the supervisor and a
 * restarted controller knows what to bring back.
 *
 * Errors: functions return 0 on success, STORE_NOT_FOUND, STORE_CONFLICT or
 * STORE_ERROR (negative), and fill err with a message a user can act on.
 */
#ifndef SS_STORE_H
#define SS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define STORE_NOT_FOUND (-2)
#define STORE_CONFLICT (-3)
#define STORE_INVALID (-4)
#define STORE_ERROR (-1)

struct store;

/* Opens (creating if needed) DIR/streamserver.db. */
int store_open(const char *dir, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/* --- Used by the supervisor (controller/sup.c) --- */

struct store_job_brief {
	int64_t id;
	char name[128];
	char desired[16]; /* "running" | "stopped" */
	char state[16];   /* stopped starting running stopping retrying failed */
	int64_t retry_interval_ms; /* SCHEDULE.RETRY_INTERVAL of the job, resolved */
	int64_t max_retries;       /* SCHEDULE.MAX_RETRIES, 0 = unlimited */
};

/* Every job, ordered by id.  *rows is malloc'd; caller frees. */
int store_jobs_brief(struct store *st, struct store_job_brief **rows, size_t *n, char *err,
		     size_t errlen);

/* Records the runtime state.  pid 0 = no worker.  last_error NULL keeps the
 * stored one, "" clears it.  Moving to "starting" sets started_at to now. */
int store_job_set_state(struct store *st, int64_t id, const char *state, int pid,
			const char *last_error);

/* Adds one batch's counts to the job's totals. */
int store_job_add_counters(struct store *st, int64_t id, int64_t messages, int64_t rows,
			   int64_t rejected);

int store_job_inc_restarts(struct store *st, int64_t id);

/* The message the worker reads on standard input (see common/proto.h):
 * {"job_id":N,"job_name":"...","config":"<effective YAML, password included>"}
 * resolved from the job, its source and its service as they are now.
 * Returns a malloc'd string (caller frees) or NULL with err filled; an invalid
 * definition (the source changed since) is STORE_INVALID. */
char *store_job_worker_input(struct store *st, int64_t id, char *err, size_t errlen);

#endif
