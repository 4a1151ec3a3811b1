/* The cluster's tables (store.h, "the cluster"): controllers and
 * task_status.  Schema version 6 (store.c) makes them. */
#include "store.h"
#include "store_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Now in ms since the epoch, by the database's clock: the ages of every
 * controller's rows are measured by one clock. */
static const char *store_cluster_now(const struct store *st)
{
	return db_kind_of(st->db) == DB_PG ? "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
					   : "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
}

static struct db_stmt *store_cluster_prepare(struct store *st, const char *sql, char *err, size_t errlen)
{
	char *text = store_subst(sql, "{NOW}", store_cluster_now(st));
	struct db_stmt *stmt;

	if (text == NULL) {
		store_seterr(err, errlen, "out of memory");
		return NULL;
	}
	stmt = store_prepare(st, text, err, errlen);
	free(text);
	return stmt;
}

/* Runs a statement that returns no rows (changes: the rows it changed, may
 * be NULL); rc 0 or STORE_ERROR. */
static int store_cluster_run(struct store *st, struct db_stmt *stmt, int64_t *changes, const char *what, char *err,
			     size_t errlen)
{
	int rc = db_step(stmt);

	rc = rc == DB_DONE ? 0 : store_dberr(st, err, errlen, what);
	if (changes != NULL)
		*changes = rc == 0 ? db_changes(stmt) : 0;
	db_finalize(stmt);
	return rc;
}

static int store_cluster_done(struct store *st, struct db_stmt *stmt, const char *what, char *err, size_t errlen)
{
	return store_cluster_run(st, stmt, NULL, what, err, errlen);
}

/* arr with room for one more element of size (n used of *cap): arr itself,
 * or the grown array; NULL when out of memory (arr is kept). */
static void *store_cluster_grow(void *arr, size_t *cap, size_t n, size_t size)
{
	void *grown;

	if (n < *cap)
		return arr;
	grown = realloc(arr, (*cap ? *cap * 2 : 8) * size);
	if (grown != NULL)
		*cap = *cap ? *cap * 2 : 8;
	return grown;
}

static void store_cluster_copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

bool store_is_shared(const struct store *st)
{
	return db_kind_of(st->db) == DB_PG;
}

int store_member_beat(struct store *st, const char *name, const char *api_url, bool fresh, char *err,
		      size_t errlen)
{
	char now[32];
	int rc = 0;

	store_now(now, sizeof(now));
	pthread_mutex_lock(&st->lock);
	for (int attempt = 0;; attempt++) {
		struct db_stmt *stmt;

		int64_t changed = 0;

		rc = store_tx_begin(st, err, errlen);
		if (rc == 0) {
			stmt = store_cluster_prepare(st,
						     fresh ? "UPDATE controllers SET api_url = ?, heartbeat_ms = {NOW}, "
							     "started_at = ?, draining = 0 WHERE name = ?"
							   : "UPDATE controllers SET api_url = ?, heartbeat_ms = {NOW} "
							     "WHERE name = ?",
						     err, errlen);
			if (stmt == NULL) {
				rc = STORE_ERROR;
			} else {
				db_bind_text(stmt, 1, api_url);
				db_bind_text(stmt, 2, fresh ? now : name);
				if (fresh)
					db_bind_text(stmt, 3, name);
				rc = store_cluster_run(st, stmt, &changed, "heartbeat", err, errlen);
			}
		}
		if (rc == 0 && changed == 0) {
			stmt = store_cluster_prepare(st,
						     "INSERT INTO controllers (name, api_url, heartbeat_ms, started_at, "
						     "draining) VALUES (?, ?, {NOW}, ?, 0)",
						     err, errlen);
			if (stmt == NULL) {
				rc = STORE_ERROR;
			} else {
				db_bind_text(stmt, 1, name);
				db_bind_text(stmt, 2, api_url);
				db_bind_text(stmt, 3, now);
				rc = store_cluster_done(st, stmt, "registration", err, errlen);
			}
		}
		if (!store_tx_again(st, &rc, attempt, err, errlen))
			break;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_members(struct store *st, struct store_member **rows, size_t *n, char *err, size_t errlen)
{
	struct store_member *out = NULL;
	struct db_stmt *stmt;
	size_t cap = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	pthread_mutex_lock(&st->lock);
	stmt = store_cluster_prepare(st,
				     "SELECT name, api_url, {NOW} - heartbeat_ms, draining, started_at FROM controllers "
				     "ORDER BY name",
				     err, errlen);
	if (stmt == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	while ((rc = db_step(stmt)) == DB_ROW) {
		struct store_member *m;
		void *room = store_cluster_grow(out, &cap, *n, sizeof(*out));

		if (room == NULL) {
			rc = DB_ERROR;
			break;
		}
		out = room;
		m = &out[(*n)++];
		memset(m, 0, sizeof(*m));
		store_cluster_copy(m->name, sizeof(m->name), db_column_text(stmt, 0));
		store_cluster_copy(m->api_url, sizeof(m->api_url), db_column_text(stmt, 1));
		m->age_ms = db_column_int64(stmt, 2);
		m->draining = db_column_int64(stmt, 3) != 0;
		store_cluster_copy(m->started_at, sizeof(m->started_at), db_column_text(stmt, 4));
	}
	rc = rc == DB_DONE ? 0 : store_dberr(st, err, errlen, "read of the controllers");
	db_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	if (rc != 0) {
		free(out);
		*n = 0;
		return rc;
	}
	*rows = out;
	return 0;
}

int store_member_set_draining(struct store *st, const char *name, bool draining, char *err, size_t errlen)
{
	struct db_stmt *stmt;
	int rc;

	pthread_mutex_lock(&st->lock);
	stmt = store_cluster_prepare(st, "UPDATE controllers SET draining = ? WHERE name = ?", err, errlen);
	if (stmt == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	int64_t changed = 0;

	db_bind_int64(stmt, 1, draining ? 1 : 0);
	db_bind_text(stmt, 2, name);
	rc = store_cluster_run(st, stmt, &changed, "drain", err, errlen);
	if (rc == 0 && changed == 0) {
		store_seterr(err, errlen, "no controller is named %s", name);
		rc = STORE_NOT_FOUND;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_member_leave(struct store *st, const char *name, int64_t older_than_ms, char *err, size_t errlen)
{
	static const char *const by_name[] = {
		"DELETE FROM task_status WHERE controller = ?",
		"DELETE FROM controllers WHERE name = ?",
	};
	static const char *const by_age[] = {
		"DELETE FROM task_status WHERE controller IN (SELECT name FROM controllers WHERE "
		"{NOW} - heartbeat_ms > ?)",
		"DELETE FROM controllers WHERE {NOW} - heartbeat_ms > ?",
	};
	int rc = 0;

	pthread_mutex_lock(&st->lock);
	for (int attempt = 0;; attempt++) {
		rc = store_tx_begin(st, err, errlen);
		for (size_t i = 0; rc == 0 && i < 2; i++) {
			struct db_stmt *stmt = store_cluster_prepare(st, name != NULL ? by_name[i] : by_age[i], err,
								     errlen);
			if (stmt == NULL) {
				rc = STORE_ERROR;
				break;
			}
			if (name != NULL)
				db_bind_text(stmt, 1, name);
			else
				db_bind_int64(stmt, 1, older_than_ms);
			rc = store_cluster_done(st, stmt, "removal of a controller", err, errlen);
		}
		if (!store_tx_again(st, &rc, attempt, err, errlen))
			break;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_task_status_publish(struct store *st, const char *controller, const struct store_task_status *rows,
			      size_t n, char *err, size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&st->lock);
	for (int attempt = 0;; attempt++) {
		struct db_stmt *stmt;

		rc = store_tx_begin(st, err, errlen);
		if (rc == 0) {
			stmt = store_cluster_prepare(st, "DELETE FROM task_status WHERE controller = ?", err, errlen);
			if (stmt == NULL)
				rc = STORE_ERROR;
			else {
				db_bind_text(stmt, 1, controller);
				rc = store_cluster_done(st, stmt, "write of the task status", err, errlen);
			}
		}
		for (size_t i = 0; rc == 0 && i < n; i++) {
			const struct store_task_status *r = &rows[i];
			char rate[64];

			stmt = store_cluster_prepare(st,
						     "INSERT INTO task_status (job_id, task, controller, pid, state, "
						     "restarts, partitions, rows_per_second, lag, last_error, "
						     "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS DOUBLE PRECISION), ?, ?, "
						     "{NOW})",
						     err, errlen);
			if (stmt == NULL) {
				rc = STORE_ERROR;
				break;
			}
			snprintf(rate, sizeof(rate), "%.3f", r->rows_per_second);
			db_bind_int64(stmt, 1, r->job_id);
			db_bind_int64(stmt, 2, r->task);
			db_bind_text(stmt, 3, controller);
			db_bind_int64(stmt, 4, r->pid);
			db_bind_text(stmt, 5, r->state);
			db_bind_int64(stmt, 6, r->restarts);
			db_bind_text(stmt, 7, r->partitions[0] ? r->partitions : "null");
			db_bind_text(stmt, 8, rate);
			if (r->lag >= 0)
				db_bind_int64(stmt, 9, r->lag);
			else
				db_bind_null(stmt, 9);
			db_bind_text(stmt, 10, r->last_error[0] ? r->last_error : NULL);
			rc = store_cluster_done(st, stmt, "write of the task status", err, errlen);
		}
		if (!store_tx_again(st, &rc, attempt, err, errlen))
			break;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_task_status_list(struct store *st, int64_t job_id, struct store_task_status **rows, size_t *n,
			   char *err, size_t errlen)
{
	struct store_task_status *out = NULL;
	struct db_stmt *stmt;
	size_t cap = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	pthread_mutex_lock(&st->lock);
	stmt = store_cluster_prepare(st,
				     "SELECT job_id, task, controller, pid, state, restarts, partitions, "
				     "rows_per_second, lag, last_error, {NOW} - updated_ms FROM task_status "
				     "WHERE ? = 0 OR job_id = ? ORDER BY job_id, task, updated_ms DESC",
				     err, errlen);
	if (stmt == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	db_bind_int64(stmt, 1, job_id);
	db_bind_int64(stmt, 2, job_id);
	while ((rc = db_step(stmt)) == DB_ROW) {
		struct store_task_status *r;
		const char *rate;
		void *room = store_cluster_grow(out, &cap, *n, sizeof(*out));

		if (room == NULL) {
			rc = DB_ERROR;
			break;
		}
		out = room;
		r = &out[(*n)++];
		memset(r, 0, sizeof(*r));
		r->job_id = db_column_int64(stmt, 0);
		r->task = (int)db_column_int64(stmt, 1);
		store_cluster_copy(r->controller, sizeof(r->controller), db_column_text(stmt, 2));
		r->pid = (int)db_column_int64(stmt, 3);
		store_cluster_copy(r->state, sizeof(r->state), db_column_text(stmt, 4));
		r->restarts = db_column_int64(stmt, 5);
		store_cluster_copy(r->partitions, sizeof(r->partitions), db_column_text(stmt, 6));
		rate = db_column_text(stmt, 7);
		r->rows_per_second = rate != NULL ? strtod(rate, NULL) : 0;
		r->lag = db_column_is_null(stmt, 8) ? -1 : db_column_int64(stmt, 8);
		store_cluster_copy(r->last_error, sizeof(r->last_error), db_column_text(stmt, 9));
		r->age_ms = db_column_int64(stmt, 10);
	}
	rc = rc == DB_DONE ? 0 : store_dberr(st, err, errlen, "read of the task status");
	db_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	if (rc != 0) {
		free(out);
		*n = 0;
		return rc;
	}
	*rows = out;
	return 0;
}
