/* The store's jobs: starting and stopping them, what the supervisor records
 * and reads, and a job resolved against its source and service. */
#include "store.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "jobspec.h"
#include "log.h"
#include "resolve.h"
#include "store_impl.h"

#define STORE_DEFAULT_RETRY_INTERVAL_MS 5000

/* A job row holds the password in its definition: wipe it before freeing. */
void store_job_row_free(cJSON *job)
{
	cJSON *def = cJSON_GetObjectItemCaseSensitive(job, "definition");

	if (cJSON_IsString(def) && def->valuestring != NULL)
		explicit_bzero(def->valuestring, strlen(def->valuestring));
	cJSON_Delete(job);
}

/* Whether the service (service_id, named service, spec_cu) has room for
 * tasks more tasks besides those of its other jobs (not job id) that are
 * wanted running.  A failed job holds no worker, so it does not use up the
 * service.  0, or STORE_CONFLICT with err saying how many are in use. */
static int store_spec_cu_check_locked(struct store *st, int64_t id, int64_t service_id,
				      const char *service, int64_t spec_cu, int64_t tasks, char *err,
				      size_t errlen)
{
	int64_t running = 0;
	int rc;

	rc = store_query_int(st,
			     "SELECT coalesce(sum(j.tasks), 0) FROM jobs j JOIN sources s ON s.id = j.source_id"
			     " WHERE s.service_id = ?1 AND j.id <> ?2"
			     " AND j.desired_state = 'running' AND j.state <> 'failed'",
			     2, service_id, id, &running, err, errlen);
	if (rc < 0)
		return rc;
	if (running + tasks > spec_cu) {
		store_seterr(err, errlen,
			     "service %s runs %" PRId64 " of %" PRId64 " tasks (spec_cu %" PRId64
			     "); this job needs %" PRId64 " more; stop a job, lower its tasks or raise spec_cu",
			     service, running, spec_cu, spec_cu, tasks);
		return STORE_CONFLICT;
	}
	return 0;
}

static int store_job_start_locked(struct store *st, int64_t id, char *err, size_t errlen)
{
	struct db_stmt *stmt = NULL;
	char service[128], now[32];
	int64_t service_id = 0, spec_cu = 0, tasks = 1;
	bool at_rest = false, wanted = false;
	int rc = STORE_ERROR, step;

	stmt = store_prepare(st,
			     "SELECT j.desired_state, j.state, v.id, v.name, v.spec_cu, j.tasks"
			     " FROM jobs j JOIN sources s ON s.id = j.source_id"
			     " JOIN services v ON v.id = s.service_id WHERE j.id = ?",
			     err, errlen);
	if (stmt == NULL)
		goto out;
	db_bind_int64(stmt, 1, id);
	step = db_step(stmt);
	if (step == DB_DONE) {
		store_seterr(err, errlen, "no job with id %" PRId64, id);
		rc = STORE_NOT_FOUND;
		goto out;
	}
	if (step != DB_ROW) {
		rc = store_dberr(st, err, errlen, "read");
		goto out;
	}
	wanted = strcmp(db_column_text(stmt, 0), "running") == 0;
	at_rest = strcmp(db_column_text(stmt, 1), "stopped") == 0 ||
		  strcmp(db_column_text(stmt, 1), "failed") == 0;
	service_id = db_column_int64(stmt, 2);
	snprintf(service, sizeof(service), "%s", db_column_text(stmt, 3));
	spec_cu = db_column_int64(stmt, 4);
	tasks = db_column_int64(stmt, 5);
	db_finalize(stmt);
	stmt = NULL;

	if (wanted && !at_rest) {
		rc = 0; /* already on its way */
		goto out;
	}
	rc = store_spec_cu_check_locked(st, id, service_id, service, spec_cu, tasks, err, errlen);
	if (rc < 0)
		goto out;
	stmt = store_prepare(st,
			     "UPDATE jobs SET desired_state = 'running',"
			     " restarts = CASE WHEN state IN ('stopped','failed') THEN 0 ELSE restarts END,"
			     " last_error = CASE WHEN state IN ('stopped','failed') THEN NULL"
			     "  ELSE last_error END,"
			     " started_at = CASE WHEN state IN ('stopped','failed') THEN ?2"
			     "  ELSE started_at END,"
			     " messages_at_start = CASE WHEN state IN ('stopped','failed')"
			     "  THEN messages_consumed ELSE messages_at_start END,"
			     " rejected_at_start = CASE WHEN state IN ('stopped','failed')"
			     "  THEN rows_rejected ELSE rejected_at_start END,"
			     " state = CASE WHEN state IN ('stopped','failed') THEN 'starting'"
			     "  ELSE state END"
			     " WHERE id = ?1",
			     err, errlen);
	if (stmt == NULL) {
		rc = STORE_ERROR;
		goto out;
	}
	store_now(now, sizeof(now));
	db_bind_int64(stmt, 1, id);
	db_bind_text(stmt, 2, now);
	rc = db_step(stmt) == DB_DONE ? 0 : store_dberr(st, err, errlen, "write");
out:
	db_finalize(stmt);
	return rc;
}

/* In one transaction: on a shared catalog, two controllers starting jobs of
 * one service at once must not both pass the spec_cu check. */
int store_job_start(struct store *st, int64_t id, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	for (int attempt = 0;; attempt++) {
		rc = store_tx_begin(st, err, errlen);
		if (rc == 0)
			rc = store_job_start_locked(st, id, err, errlen);
		if (!store_tx_again(st, &rc, attempt, err, errlen))
			break;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_job_stop(struct store *st, int64_t id, char *err, size_t errlen)
{
	struct db_stmt *stmt;
	int rc = STORE_ERROR;

	pthread_mutex_lock(&st->lock);
	/* pid 0: no worker (not spawned yet, or waiting to restart), so nothing
	 * needs to wind down. */
	stmt = store_prepare(st,
			     "UPDATE jobs SET desired_state = 'stopped',"
			     " state = CASE WHEN state = 'stopped' THEN 'stopped'"
			     "  WHEN pid > 0 AND state <> 'failed' THEN 'stopping'"
			     "  ELSE 'stopped' END"
			     " WHERE id = ?",
			     err, errlen);
	if (stmt == NULL)
		goto out;
	db_bind_int64(stmt, 1, id);
	if (db_step(stmt) != DB_DONE) {
		rc = store_dberr(st, err, errlen, "write");
	} else if (db_changes(stmt) == 0) {
		store_seterr(err, errlen, "no job with id %" PRId64, id);
		rc = STORE_NOT_FOUND;
	} else {
		rc = 0;
	}
out:
	db_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static int store_job_resolve_locked(struct store *st, int64_t id, bool validate, cJSON **job_out,
				    struct jobspec **out, struct js_errors *errs, char *err,
				    size_t errlen)
{
	cJSON *job = NULL, *source = NULL, *service = NULL;
	const cJSON *ref, *mode, *def;
	struct js_errors *local = NULL;
	int rc;

	*out = NULL;
	/* On the heap: civetweb's threads have small stacks. */
	if (errs == NULL) {
		local = calloc(1, sizeof(*local));
		if (local == NULL) {
			store_seterr(err, errlen, "out of memory");
			return STORE_ERROR;
		}
		errs = local;
	}
	rc = store_row_get_locked(st, STORE_JOB, id, &job, err, errlen);
	if (rc < 0)
		goto out;
	ref = cJSON_GetObjectItemCaseSensitive(job, "source_id");
	rc = store_row_get_locked(st, STORE_SOURCE, (int64_t)cJSON_GetNumberValue(ref), &source,
				  err, errlen);
	if (rc < 0)
		goto out;
	ref = cJSON_GetObjectItemCaseSensitive(source, "service_id");
	rc = store_row_get_locked(st, STORE_SERVICE, (int64_t)cJSON_GetNumberValue(ref), &service,
				  err, errlen);
	if (rc < 0)
		goto out;
	mode = cJSON_GetObjectItemCaseSensitive(job, "mode");
	def = cJSON_GetObjectItemCaseSensitive(job, "definition");
	if (resolve_job(cJSON_GetStringValue(mode), cJSON_GetStringValue(def), source, service,
			validate, out, errs) < 0) {
		char msg[1024];

		js_errors_format(errs, msg, sizeof(msg));
		store_seterr(err, errlen, "job %" PRId64 " does not validate: %s", id, msg);
		rc = STORE_INVALID;
		goto out;
	}
	rc = 0;
	if (job_out != NULL) {
		*job_out = job;
		job = NULL;
	}
out:
	store_job_row_free(job);
	cJSON_Delete(source);
	cJSON_Delete(service);
	free(local);
	return rc;
}

int store_job_resolve(struct store *st, int64_t id, struct jobspec **out, struct js_errors *errs,
		      char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = store_job_resolve_locked(st, id, true, NULL, out, errs, err, errlen);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_job_effective(struct store *st, int64_t id, struct jobspec **out,
			struct js_errors *errs, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = store_job_resolve_locked(st, id, true, NULL, out, errs, err, errlen);
	if (rc == STORE_INVALID) {
		if (errs != NULL)
			memset(errs, 0, sizeof(*errs));
		rc = store_job_resolve_locked(st, id, false, NULL, out, errs, err, errlen);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* ---- used by the supervisor ---- */

void store_job_schedule(struct store *st, int64_t id, int64_t *retry_interval_ms, int64_t *max_retries)
{
	struct jobspec *spec = NULL;
	char ignored[64];

	*retry_interval_ms = STORE_DEFAULT_RETRY_INTERVAL_MS;
	*max_retries = 0;
	pthread_mutex_lock(&st->lock);
	if (store_job_resolve_locked(st, id, true, NULL, &spec, NULL, ignored, sizeof(ignored)) == 0) {
		*retry_interval_ms = spec->retry_interval_ms;
		*max_retries = spec->max_retries;
	}
	pthread_mutex_unlock(&st->lock);
	jobspec_free(spec);
}

int store_jobs_brief(struct store *st, struct store_job_brief **rows, size_t *n, char *err,
		     size_t errlen)
{
	struct store_job_brief *out = NULL, *grown;
	size_t count = 0, cap = 0;
	struct db_stmt *stmt;
	int rc = STORE_ERROR, step;

	*rows = NULL;
	*n = 0;
	pthread_mutex_lock(&st->lock);
	stmt = store_prepare(st, "SELECT id, name, desired_state, state, tasks FROM jobs ORDER BY id",
			     err, errlen);
	if (stmt == NULL)
		goto out;
	while ((step = db_step(stmt)) == DB_ROW) {
		struct store_job_brief *b;

		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(out, cap * sizeof(*out));
			if (grown == NULL) {
				store_seterr(err, errlen, "out of memory");
				goto out;
			}
			out = grown;
		}
		b = &out[count++];
		memset(b, 0, sizeof(*b));
		b->id = db_column_int64(stmt, 0);
		snprintf(b->name, sizeof(b->name), "%s", db_column_text(stmt, 1));
		snprintf(b->desired, sizeof(b->desired), "%s",
			 db_column_text(stmt, 2));
		snprintf(b->state, sizeof(b->state), "%s", db_column_text(stmt, 3));
		b->tasks = (int)db_column_int64(stmt, 4);
	}
	if (step != DB_DONE) {
		store_dberr(st, err, errlen, "list jobs");
		goto out;
	}
	db_finalize(stmt);
	stmt = NULL;
	*rows = out;
	*n = count;
	out = NULL;
	rc = 0;
out:
	db_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	free(out);
	return rc;
}

/* A value bound to a parameter of store_job_write. */
struct store_param {
	const char *text; /* when not is_num; NULL binds NULL */
	int64_t num;
	bool is_num;
};

/* Runs one UPDATE of job id (?1) with params as ?2, ?3, ...  For the
 * supervisor, which has no one to tell: failures go to the log. */
static int store_job_write(struct store *st, int64_t id, const char *sql,
			   const struct store_param *params, size_t nparams)
{
	struct db_stmt *stmt;
	char err[256];
	int rc = STORE_ERROR;

	pthread_mutex_lock(&st->lock);
	stmt = store_prepare(st, sql, err, sizeof(err));
	if (stmt == NULL)
		goto out;
	db_bind_int64(stmt, 1, id);
	for (size_t i = 0; i < nparams; i++) {
		int idx = (int)i + 2;

		/* A NULL is bound as text: "?4 IS NULL" needs a type in PostgreSQL. */
		if (params[i].is_num)
			db_bind_int64(stmt, idx, params[i].num);
		else
			db_bind_text(stmt, idx, params[i].text);
	}
	if (db_step(stmt) != DB_DONE)
		store_dberr(st, err, sizeof(err), "update job");
	else
		rc = db_changes(stmt) > 0 ? 0 : STORE_NOT_FOUND;
out:
	if (rc == STORE_ERROR)
		log_error("job %" PRId64 ": %s", id, err);
	db_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_job_set_state(struct store *st, int64_t id, const char *state, int pid,
			const char *last_error)
{
	char now[32];
	struct store_param params[] = {
		{ .text = state }, { .num = pid, .is_num = true }, { .text = last_error },
		{ .text = now },
	};

	store_now(now, sizeof(now));
	return store_job_write(st, id,
			       "UPDATE jobs SET state = ?2, pid = ?3,"
			       " last_error = CASE WHEN ?4 IS NULL THEN last_error"
			       "  WHEN ?4 = '' THEN NULL ELSE ?4 END,"
			       " started_at = CASE WHEN ?2 = 'starting' THEN ?5 ELSE started_at END"
			       " WHERE id = ?1",
			       params, sizeof(params) / sizeof(params[0]));
}

int store_job_add_counters(struct store *st, int64_t id, int64_t messages, int64_t rows,
			   int64_t updated, int64_t rejected)
{
	const struct store_param params[] = {
		{ .num = messages, .is_num = true },
		{ .num = rows, .is_num = true },
		{ .num = updated, .is_num = true },
		{ .num = rejected, .is_num = true },
	};

	return store_job_write(st, id,
			       "UPDATE jobs SET messages_consumed = messages_consumed + ?2,"
			       " rows_written = rows_written + ?3,"
			       " rows_updated = rows_updated + ?4,"
			       " rows_rejected = rows_rejected + ?5,"
			       " batches = batches + 1 WHERE id = ?1",
			       params, sizeof(params) / sizeof(params[0]));
}

int store_job_set_exit(struct store *st, int64_t id, const char *last_exit)
{
	const struct store_param params[] = { { .text = last_exit } };

	return store_job_write(st, id, "UPDATE jobs SET last_exit = ?2 WHERE id = ?1", params,
			       sizeof(params) / sizeof(params[0]));
}

int store_job_inc_restarts(struct store *st, int64_t id)
{
	return store_job_write(st, id, "UPDATE jobs SET restarts = restarts + 1 WHERE id = ?1",
			       NULL, 0);
}

int store_job_get_pid(struct store *st, int64_t id, int *pid)
{
	char err[256];
	int64_t value = 0;
	int rc;

	*pid = 0;
	pthread_mutex_lock(&st->lock);
	rc = store_query_int(st, "SELECT pid FROM jobs WHERE id = ?", 1, id, 0, &value, err,
			     sizeof(err));
	pthread_mutex_unlock(&st->lock);
	if (rc == 0)
		*pid = (int)value;
	else if (rc == STORE_ERROR)
		log_error("job %" PRId64 ": %s", id, err);
	return rc;
}

char *store_job_worker_input(struct store *st, int64_t id, int task, struct store_worker_info *info,
			     char *err, size_t errlen)
{
	struct jobspec *spec = NULL;
	cJSON *job = NULL, *extra = cJSON_CreateObject();
	char *text = NULL;

	int64_t messages_before = 0, rejected_before = 0;

	pthread_mutex_lock(&st->lock);
	if (store_job_resolve_locked(st, id, true, &job, &spec, NULL, err, errlen) == 0 &&
	    store_query_int(st, "SELECT CASE WHEN messages_consumed > messages_at_start"
				" THEN messages_consumed - messages_at_start ELSE 0 END FROM jobs"
				" WHERE id = ?",
			    1, id, 0, &messages_before, err, errlen) == 0 &&
	    store_query_int(st, "SELECT CASE WHEN rows_rejected > rejected_at_start"
				" THEN rows_rejected - rejected_at_start ELSE 0 END FROM jobs"
				" WHERE id = ?",
			    1, id, 0, &rejected_before, err, errlen) == 0) {
		if (info != NULL) {
			info->tasks = spec->tasks;
			info->partitions = spec->npartitions > 0;
		}
		cJSON_AddNumberToObject(extra, "task", task);
		cJSON_AddNumberToObject(extra, "tasks", spec->tasks);
		text = resolve_worker_input(
			spec, id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job, "name")),
			messages_before, rejected_before, extra);
		if (text == NULL)
			store_seterr(err, errlen, "out of memory");
	}
	pthread_mutex_unlock(&st->lock);
	cJSON_Delete(extra);
	store_job_row_free(job);
	jobspec_free(spec);
	return text;
}

int store_job_set_task_pids(struct store *st, int64_t id, const int *pids, size_t n)
{
	char text[STORE_TASK_PIDS_MAX * 12 + 1];
	size_t off = 0;
	const struct store_param params[] = { { .text = text } };

	text[0] = '\0';
	for (size_t i = 0; i < n && i < STORE_TASK_PIDS_MAX; i++)
		if (pids[i] > 0)
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%d", off > 0 ? "," : "", pids[i]);
	return store_job_write(st, id, "UPDATE jobs SET task_pids = ?2 WHERE id = ?1", params, 1);
}

int store_job_get_pids(struct store *st, int64_t id, int *pids, size_t max, size_t *n)
{
	struct db_stmt *stmt;
	char err[256];
	int rc = STORE_ERROR, step;

	*n = 0;
	pthread_mutex_lock(&st->lock);
	stmt = store_prepare(st, "SELECT pid, task_pids FROM jobs WHERE id = ?", err, sizeof(err));
	if (stmt == NULL)
		goto out;
	db_bind_int64(stmt, 1, id);
	step = db_step(stmt);
	if (step == DB_ROW) {
		const char *list = db_column_text(stmt, 1);
		int pid = (int)db_column_int64(stmt, 0);

		/* A store of an older controller has the pid alone. */
		if (pid > 0 && max > 0)
			pids[(*n)++] = pid;
		while (list != NULL && *list != '\0' && *n < max) {
			char *end;
			long v = strtol(list, &end, 10);
			bool seen = false;

			if (end == list)
				break;
			for (size_t i = 0; i < *n; i++)
				seen = seen || pids[i] == (int)v;
			if (v > 0 && v <= INT_MAX && !seen)
				pids[(*n)++] = (int)v;
			list = *end == ',' ? end + 1 : end;
		}
		rc = 0;
	} else if (step == DB_DONE) {
		rc = STORE_NOT_FOUND;
	} else {
		store_dberr(st, err, sizeof(err), "read");
	}
out:
	if (rc == STORE_ERROR)
		log_error("job %" PRId64 ": %s", id, err);
	db_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static int store_job_set_tasks_locked(struct store *st, int64_t id, const char *definition,
				      int tasks, char *err, size_t errlen)
{
	struct db_stmt *stmt = NULL;
	char service[128], now[32];
	int64_t service_id = 0, spec_cu = 0;
	bool wanted;
	int rc = STORE_ERROR, step;

	stmt = store_prepare(st,
			     "SELECT j.desired_state, j.state, v.id, v.name, v.spec_cu"
			     " FROM jobs j JOIN sources s ON s.id = j.source_id"
			     " JOIN services v ON v.id = s.service_id WHERE j.id = ?",
			     err, errlen);
	if (stmt == NULL)
		goto out;
	db_bind_int64(stmt, 1, id);
	step = db_step(stmt);
	if (step == DB_DONE) {
		store_seterr(err, errlen, "no job with id %" PRId64, id);
		rc = STORE_NOT_FOUND;
		goto out;
	}
	if (step != DB_ROW) {
		rc = store_dberr(st, err, errlen, "read");
		goto out;
	}
	wanted = strcmp(db_column_text(stmt, 0), "running") == 0 &&
		 strcmp(db_column_text(stmt, 1), "failed") != 0;
	service_id = db_column_int64(stmt, 2);
	snprintf(service, sizeof(service), "%s", db_column_text(stmt, 3));
	spec_cu = db_column_int64(stmt, 4);
	db_finalize(stmt);
	stmt = NULL;
	if (wanted) {
		rc = store_spec_cu_check_locked(st, id, service_id, service, spec_cu, tasks, err, errlen);
		if (rc < 0)
			goto out;
	}
	stmt = store_prepare(st, "UPDATE jobs SET definition = ?2, tasks = ?3, updated_at = ?4 WHERE id = ?1",
			     err, errlen);
	if (stmt == NULL) {
		rc = STORE_ERROR;
		goto out;
	}
	store_now(now, sizeof(now));
	db_bind_int64(stmt, 1, id);
	db_bind_text(stmt, 2, definition);
	db_bind_int64(stmt, 3, tasks);
	db_bind_text(stmt, 4, now);
	rc = db_step(stmt) == DB_DONE ? 0 : store_dberr(st, err, errlen, "write");
out:
	db_finalize(stmt);
	return rc;
}

int store_job_set_tasks(struct store *st, int64_t id, const char *definition, int tasks, char *err,
			size_t errlen)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	for (int attempt = 0;; attempt++) {
		rc = store_tx_begin(st, err, errlen);
		if (rc == 0)
			rc = store_job_set_tasks_locked(st, id, definition, tasks, err, errlen);
		if (!store_tx_again(st, &rc, attempt, err, errlen))
			break;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}
