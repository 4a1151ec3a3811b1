/* The controller's store (its catalog): data services, data sources and
 * jobs, in SQLite (the default: DATA_DIR/streamserver.db, WAL journal,
 * schema versioned with PRAGMA user_version, file mode 0600) or in a
 * PostgreSQL schema (created and migrated on start under an advisory lock,
 * versioned in its schema_version table; several controllers may share it).
 * The backends sit under one thin layer (db.h), so every query is written
 * once.
 *
 * One connection guarded by a mutex, so every function may be called from
 * any thread (civetweb's request threads and the supervisor loop).  Nothing
 * is cached: every call reads the database.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define STORE_NOT_FOUND (-2)
#define STORE_CONFLICT (-3)
#define STORE_INVALID (-4)
#define STORE_BUSY (-5) /* another process holds the data directory */
#define STORE_ERROR (-1)

struct store;

/* Opens the store named by uri (see store_uri.h: NULL = DIR/streamserver.db,
 * sqlite:PATH, postgresql://...), creating or migrating its schema, and
 * takes DIR/streamserver.lock (DIR is created if needed) for as long as it
 * is open: STORE_BUSY when another controller holds it.  STORE_INVALID when
 * uri is not one we take.  err never holds a password. */
int store_open_uri(const char *dir, const char *uri, struct store **out, char *err,
		   size_t errlen);
/* store_open_uri(dir, NULL, ...). */
int store_open(const char *dir, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/* --- Used by the supervisor (controller/sup.c) --- */

struct store_job_brief {
	int64_t id;
	char name[128];
	char desired[16]; /* "running" | "stopped" */
	char state[16];   /* stopped starting running degraded stopping retrying failed */
	int tasks;        /* TASKS: the job's worker processes when it runs */
};

/* Every job, ordered by id.  *rows is malloc'd; caller frees. */
int store_jobs_brief(struct store *st, struct store_job_brief **rows, size_t *n, char *err,
		     size_t errlen);

/* Records the runtime state.  pid 0 = no worker.  last_error NULL keeps the
 * stored one, "" clears it.  Moving to "starting" sets started_at to now. */
int store_job_set_state(struct store *st, int64_t id, const char *state, int pid,
			const char *last_error);

/* Adds one batch's counts to the job's totals and counts the batch.  updated:
 * of rows, existing rows changed. */
int store_job_add_counters(struct store *st, int64_t id, int64_t messages, int64_t rows,
			   int64_t updated, int64_t rejected);

int store_job_inc_restarts(struct store *st, int64_t id);

/* The job's SCHEDULE: RETRY_INTERVAL in ms and MAX_RETRIES (0 = unlimited).
 * Resolves that one job, so the supervisor asks only when a worker ended; a
 * job that no longer resolves gets the defaults (5000, 0). */
void store_job_schedule(struct store *st, int64_t id, int64_t *retry_interval_ms, int64_t *max_retries);

/* Records how the job's last worker ended ("exit code 1 (retriable failure)",
 * "signal 9 (Killed)"), shown as last_exit. */
int store_job_set_exit(struct store *st, int64_t id, const char *last_exit);

/* The pid last recorded for the job (0 if none). */
int store_job_get_pid(struct store *st, int64_t id, int *pid);

/* The most tasks a job has (common/jobspec.h JS_TASKS_MAX). */
#define STORE_TASK_PIDS_MAX 64

/* Records the pids of the job's tasks' workers (0 entries are skipped), so
 * that a restarted controller can wait for every one of them. */
int store_job_set_task_pids(struct store *st, int64_t id, const int *pids, size_t n);

/* Every worker pid recorded for the job, the job's pid first, each once, at
 * most max, into pids[0..*n). */
int store_job_get_pids(struct store *st, int64_t id, int *pids, size_t max, size_t *n);

/* The message the worker of task (0-based) reads on standard input (see
 * common/proto.h):
 * {"job_id":N,"job_name":"...","config":"<effective YAML, password included>",
 *  "messages_before":N,"rejected_before":N,"task":I,"tasks":N}
 * resolved from the job, its source and its service as they are now; the
 * counters are what the job consumed and rejected since the user's last start
 * (store_job_start), before this worker.
 * Returns a malloc'd string (caller frees) or NULL with err filled; an invalid
 * definition (the source changed since) is STORE_INVALID. */
struct store_worker_info {
	int tasks;       /* the TASKS the worker was told */
	bool partitions; /* the job lists PARTITIONS (a static division among the tasks) */
};
/* info (may be NULL) receives what the supervisor needs of the job. */
char *store_job_worker_input(struct store *st, int64_t id, int task, struct store_worker_info *info,
			     char *err, size_t errlen);

/* --- Used by the API (api/) and the status page (web/) ---
 *
 * Rows travel as cJSON objects keyed by column name:
 *   service: id, name, description, spec_cu, database_host, database_port,
 *            database_sslmode, database_sslrootcert, database_sslcert,
 *            database_sslkey (null when not set; the key is a secret: never
 *            show it as is), status, created_at, updated_at
 *   source:  id, service_id, name, description, type, brokers, topic, format,
 *            delimiter (null: the format's default), properties (an object of
 *            strings), status, created_at, updated_at
 *   job:     id, source_id, name, description, mode ("wizard"|"professional"),
 *            definition (as stored: the wizard fields as JSON text, or the
 *            YAML; it holds the password, so never show it as is),
 *            desired_state, state, pid, started_at (null), restarts,
 *            messages_consumed, rows_written, rows_rejected, rows_updated,
 *            batches, tasks, last_error (null),
 *            last_exit (null), created_at, updated_at
 * Objects returned through *out are the caller's (cJSON_Delete).
 *
 * _create and _update take an object holding writable columns only, already
 * validated by the caller; _update changes just the keys present.  The store
 * checks what needs its lock: unique names (STORE_CONFLICT), that referenced
 * rows exist (STORE_INVALID), rows still in use (STORE_CONFLICT) and job
 * states.  Lists are ordered by id; *total counts every row.
 */

struct jobspec;
struct js_errors;

enum store_kind {
	STORE_SERVICE,
	STORE_SOURCE,
	STORE_JOB,
};

/* A source refers to a service (service_id), a job to a source (source_id):
 * _create and _update give STORE_INVALID when the referenced row does not
 * exist.  _delete gives STORE_CONFLICT while a source uses the service or a
 * job uses the source.  A job is created with desired_state and state
 * "stopped"; it is changed and deleted only while at rest (state "failed", or
 * "stopped" with desired_state "stopped"), STORE_CONFLICT otherwise. */
int store_row_create(struct store *st, enum store_kind kind, const cJSON *in, int64_t *id,
		     char *err, size_t errlen);
int store_row_get(struct store *st, enum store_kind kind, int64_t id, cJSON **out, char *err,
		  size_t errlen);
int store_row_list(struct store *st, enum store_kind kind, int64_t offset, int64_t limit,
		   cJSON **items, int64_t *total, char *err, size_t errlen);
int store_row_update(struct store *st, enum store_kind kind, int64_t id, const cJSON *in,
		     char *err, size_t errlen);
int store_row_delete(struct store *st, enum store_kind kind, int64_t id, char *err,
		     size_t errlen);

/* Asks for the job to run.  In one step under the lock: a job already wanted
 * running (and not failed) is left alone; otherwise the jobs of its service
 * that are wanted running and not failed are counted against the service's
 * spec_cu, each job counting its tasks (STORE_CONFLICT, err says how many
 * are in use, when the job's do not fit), desired_state
 * becomes "running" and, from "stopped" or "failed", state "starting" with
 * restarts 0 and last_error cleared, and the job's messages_consumed and
 * rows_rejected remembered as the counters at start (see
 * store_job_worker_input). */
int store_job_start(struct store *st, int64_t id, char *err, size_t errlen);

/* A running job's TASKS changed (PATCH): stores definition and tasks in one
 * step, whatever the job's state, after checking, when the job is wanted
 * running, that its service's spec_cu has room for tasks (STORE_CONFLICT,
 * err says how many are in use).  The caller validated both and wakes the
 * supervisor. */
int store_job_set_tasks(struct store *st, int64_t id, const char *definition, int tasks, char *err,
			size_t errlen);

/* Asks for the job to stop: desired_state "stopped"; state "stopping" while a
 * worker may be alive (pid set), else "stopped". */
int store_job_stop(struct store *st, int64_t id, char *err, size_t errlen);

/* The job resolved against its source and service as they are now (see
 * resolve.h).  STORE_INVALID with every problem in errs when the definition
 * does not validate; *out is the caller's (jobspec_free).  errs may be NULL. */
int store_job_resolve(struct store *st, int64_t id, struct jobspec **out, struct js_errors *errs,
		      char *err, size_t errlen);

/* What the job runs, for showing it: as store_job_resolve, but a definition
 * that no longer validates (its source changed since) is still parsed and
 * filled in rather than refused.  STORE_INVALID only when it cannot be parsed
 * at all. */
int store_job_effective(struct store *st, int64_t id, struct jobspec **out,
			struct js_errors *errs, char *err, size_t errlen);

/* ---- the cluster: controllers sharing one catalog (store_cluster.c) ----
 *
 * Every controller renews its row about every second (store_member_beat);
 * ages are measured by the database's clock, so the controllers' own clocks
 * need not agree.  What each says of the tasks it runs (task_status) lets any
 * controller answer for every job. */

#define STORE_MEMBER_NAME_MAX 128

/* Whether other controllers may share this catalog (PostgreSQL); with the
 * SQLite file the data directory's lock keeps it to one. */
bool store_is_shared(const struct store *st);

struct store_member {
	char name[STORE_MEMBER_NAME_MAX];
	char api_url[256];
	int64_t age_ms; /* since its last heartbeat */
	bool draining;
	char started_at[32];
};

/* Registers the controller name (or renews it: heartbeat now, api_url
 * updated; started_at and draining kept unless fresh is true, a controller
 * that just started: then started_at is now and draining false). */
int store_member_beat(struct store *st, const char *name, const char *api_url, bool fresh, char *err,
		      size_t errlen);

/* Every registered controller, ordered by name; *rows malloc'd. */
int store_members(struct store *st, struct store_member **rows, size_t *n, char *err, size_t errlen);

/* STORE_NOT_FOUND when no controller has that name. */
int store_member_set_draining(struct store *st, const char *name, bool draining, char *err, size_t errlen);

/* Removes the controller and what it said of its tasks (a clean shutdown, or
 * a controller gone for longer than older_than_ms when name is NULL). */
int store_member_leave(struct store *st, const char *name, int64_t older_than_ms, char *err, size_t errlen);

struct store_task_status {
	int64_t job_id;
	int task;
	char controller[STORE_MEMBER_NAME_MAX];
	int pid;
	char state[16];
	int64_t restarts;
	char partitions[2048]; /* a JSON array of partition numbers; "null": not known yet */
	double rows_per_second;
	int64_t lag; /* -1: not known */
	char last_error[512];
	int64_t age_ms; /* since the controller wrote it */
};

/* Replaces every row of controller by rows[0..n) (their controller field is
 * ignored), in one transaction. */
int store_task_status_publish(struct store *st, const char *controller, const struct store_task_status *rows,
			      size_t n, char *err, size_t errlen);

/* The rows of job_id (0: of every job), ordered by job, task and age; *rows
 * malloc'd. */
int store_task_status_list(struct store *st, int64_t job_id, struct store_task_status **rows, size_t *n,
			   char *err, size_t errlen);

#endif
