/* The store's generic rows: services, sources and jobs as cJSON objects,
 * described by one table of columns each (see store.h). */
#include "store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "store_impl.h"


/* How a column travels between SQLite and cJSON. */
enum store_col_type {
	COL_INT,  /* INTEGER <-> number */
	COL_TEXT, /* TEXT <-> string */
	COL_JSON, /* TEXT holding a JSON object <-> object */
};

struct store_col {
	const char *name;
	enum store_col_type type;
	bool writable; /* may appear in the objects given to _create and _update */
};

struct store_table {
	const char *table; /* SQL name */
	const char *what;  /* singular, for messages */
	const struct store_col *cols;
	size_t ncols;
	/* The row this one belongs to: writes check that it exists. */
	const char *parent_field;
	const struct store_table *parent;
	/* The rows that belong to this one: no delete while there are any. */
	const struct store_table *child;
	const char *child_field;
	const char *child_advice;
	/* Change and delete only while at rest (jobs: no worker about). */
	bool at_rest_only;
};

static const struct store_col service_cols[] = {
	{ "id", COL_INT, false },
	{ "name", COL_TEXT, true },
	{ "description", COL_TEXT, true },
	{ "spec_cu", COL_INT, true },
	{ "database_host", COL_TEXT, true },
	{ "database_port", COL_INT, true },
	{ "database_sslmode", COL_TEXT, true },
	{ "database_sslrootcert", COL_TEXT, true },
	{ "database_sslcert", COL_TEXT, true },
	{ "database_sslkey", COL_TEXT, true },
	{ "status", COL_TEXT, false },
	{ "created_at", COL_TEXT, false },
	{ "updated_at", COL_TEXT, false },
};

static const struct store_col source_cols[] = {
	{ "id", COL_INT, false },
	{ "service_id", COL_INT, true },
	{ "name", COL_TEXT, true },
	{ "description", COL_TEXT, true },
	{ "type", COL_TEXT, true },
	{ "brokers", COL_TEXT, true },
	{ "topic", COL_TEXT, true },
	{ "format", COL_TEXT, true },
	{ "delimiter", COL_TEXT, true },
	{ "properties", COL_JSON, true },
	{ "schema_registry", COL_TEXT, true },
	{ "schema_registry_user", COL_TEXT, true },
	{ "schema_registry_password", COL_TEXT, true },
	{ "status", COL_TEXT, false },
	{ "created_at", COL_TEXT, false },
	{ "updated_at", COL_TEXT, false },
};

static const struct store_col job_cols[] = {
	{ "id", COL_INT, false },
	{ "source_id", COL_INT, true },
	{ "name", COL_TEXT, true },
	{ "description", COL_TEXT, true },
	{ "mode", COL_TEXT, true },
	{ "definition", COL_TEXT, true },
	{ "desired_state", COL_TEXT, false },
	{ "state", COL_TEXT, false },
	{ "pid", COL_INT, false },
	{ "started_at", COL_TEXT, false },
	{ "restarts", COL_INT, false },
	{ "messages_consumed", COL_INT, false },
	{ "rows_written", COL_INT, false },
	{ "rows_rejected", COL_INT, false },
	{ "rows_updated", COL_INT, false },
	{ "batches", COL_INT, false },
	{ "tasks", COL_INT, true },
	{ "last_error", COL_TEXT, false },
	{ "last_exit", COL_TEXT, false },
	{ "created_at", COL_TEXT, false },
	{ "updated_at", COL_TEXT, false },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct store_table services_table, sources_table, jobs_table;

static const struct store_table services_table = {
	.table = "services",
	.what = "service",
	.cols = service_cols,
	.ncols = NELEM(service_cols),
	.child = &sources_table,
	.child_field = "service_id",
	.child_advice = "delete the sources or move them to another service first",
};

static const struct store_table sources_table = {
	.table = "sources",
	.what = "source",
	.cols = source_cols,
	.ncols = NELEM(source_cols),
	.parent_field = "service_id",
	.parent = &services_table,
	.child = &jobs_table,
	.child_field = "source_id",
	.child_advice = "delete or move the jobs first",
};

static const struct store_table jobs_table = {
	.table = "jobs",
	.what = "job",
	.cols = job_cols,
	.ncols = NELEM(job_cols),
	.parent_field = "source_id",
	.parent = &sources_table,
	.at_rest_only = true,
};

/* ---- generic rows ---- */

static cJSON *store_row_from_stmt(const struct store_table *tbl, struct db_stmt *stmt)
{
	cJSON *row = cJSON_CreateObject();

	if (row == NULL)
		return NULL;
	for (size_t i = 0; i < tbl->ncols; i++) {
		const struct store_col *col = &tbl->cols[i];
		cJSON *val = NULL;

		if (db_column_is_null(stmt, (int)i)) {
			val = cJSON_CreateNull();
		} else if (col->type == COL_INT) {
			val = cJSON_CreateNumber((double)db_column_int64(stmt, (int)i));
		} else if (col->type == COL_TEXT) {
			val = cJSON_CreateString(db_column_text(stmt, (int)i));
		} else {
			val = cJSON_Parse(db_column_text(stmt, (int)i));
			if (!cJSON_IsObject(val)) {
				cJSON_Delete(val);
				val = cJSON_CreateObject();
			}
		}
		if (val == NULL || !cJSON_AddItemToObject(row, col->name, val)) {
			cJSON_Delete(val);
			cJSON_Delete(row);
			return NULL;
		}
	}
	return row;
}

/* "c1,c2,..." for SELECT; the names are ours, never the caller's. */
static void store_col_list(const struct store_table *tbl, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < tbl->ncols && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "",
					 tbl->cols[i].name);
}

static int store_table_row_get_locked(struct store *st, const struct store_table *tbl,
				      int64_t id, cJSON **out, char *err, size_t errlen)
{
	char cols[512], sql[768];
	struct db_stmt *stmt;
	int rc;

	*out = NULL;
	store_col_list(tbl, cols, sizeof(cols));
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE id = ?", cols, tbl->table);
	stmt = store_prepare(st, sql, err, errlen);
	if (stmt == NULL)
		return STORE_ERROR;
	db_bind_int64(stmt, 1, id);
	rc = db_step(stmt);
	if (rc == DB_ROW) {
		*out = store_row_from_stmt(tbl, stmt);
		rc = *out != NULL ? 0 : STORE_ERROR;
		if (rc < 0)
			store_seterr(err, errlen, "out of memory");
	} else if (rc == DB_DONE) {
		store_seterr(err, errlen, "no %s with id %" PRId64, tbl->what, id);
		rc = STORE_NOT_FOUND;
	} else {
		rc = store_dberr(st, err, errlen, "read");
	}
	db_finalize(stmt);
	return rc;
}

static int store_rows_list(struct store *st, const struct store_table *tbl, int64_t offset,
			   int64_t limit, cJSON **items, int64_t *total, char *err, size_t errlen)
{
	char cols[512], sql[768];
	struct db_stmt *stmt = NULL;
	cJSON *arr = NULL;
	int rc = STORE_ERROR, step;

	*items = NULL;
	pthread_mutex_lock(&st->lock);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tbl->table);
	if (store_query_int(st, sql, 0, 0, 0, total, err, errlen) < 0)
		goto out;
	store_col_list(tbl, cols, sizeof(cols));
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY id LIMIT ? OFFSET ?", cols,
		 tbl->table);
	stmt = store_prepare(st, sql, err, errlen);
	arr = cJSON_CreateArray();
	if (stmt == NULL || arr == NULL)
		goto out;
	db_bind_int64(stmt, 1, limit);
	db_bind_int64(stmt, 2, offset);
	while ((step = db_step(stmt)) == DB_ROW) {
		cJSON *row = store_row_from_stmt(tbl, stmt);

		if (row == NULL) {
			store_seterr(err, errlen, "out of memory");
			goto out;
		}
		cJSON_AddItemToArray(arr, row);
	}
	if (step != DB_DONE) {
		store_dberr(st, err, errlen, "list");
		goto out;
	}
	*items = arr;
	arr = NULL;
	rc = 0;
out:
	db_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	cJSON_Delete(arr);
	return rc;
}

static const struct store_col *store_col_find(const struct store_table *tbl, const char *name)
{
	for (size_t i = 0; i < tbl->ncols; i++)
		if (strcmp(tbl->cols[i].name, name) == 0)
			return &tbl->cols[i];
	return NULL;
}

/* Binds a caller's value to parameter idx, as the column's type wants. */
static int store_bind_value(struct db_stmt *stmt, int idx, const struct store_col *col,
			    const cJSON *val, char *err, size_t errlen)
{
	char *text;
	int rc;

	if (cJSON_IsNull(val))
		return db_bind_null(stmt, idx) == 0 ? 0 : STORE_ERROR;
	switch (col->type) {
	case COL_INT:
		if (cJSON_IsNumber(val))
			return db_bind_int64(stmt, idx, (int64_t)val->valuedouble) == 0 ? 0
											 : STORE_ERROR;
		break;
	case COL_TEXT:
		if (cJSON_IsString(val))
			return db_bind_text(stmt, idx, val->valuestring) == 0 ? 0 : STORE_ERROR;
		break;
	case COL_JSON:
		if (cJSON_IsObject(val)) {
			text = cJSON_PrintUnformatted(val);
			if (text == NULL)
				break;
			rc = db_bind_text(stmt, idx, text);
			free(text);
			return rc == 0 ? 0 : STORE_ERROR;
		}
		break;
	}
	store_seterr(err, errlen, "%s: value of the wrong type", col->name);
	return STORE_INVALID;
}

/* Maps a failed write (step: db_step's code) to a user's message. */
static int store_write_failed(struct store *st, const struct store_table *tbl, const cJSON *in,
			      int step, char *err, size_t errlen)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");

	if (step == DB_UNIQUE && cJSON_IsString(name)) {
		store_seterr(err, errlen, "a %s named \"%s\" already exists; choose another name",
			     tbl->what, name->valuestring);
		return STORE_CONFLICT;
	}
	if (step == DB_FOREIGN_KEY) {
		store_seterr(err, errlen, "the %s refers to a row that does not exist", tbl->what);
		return STORE_INVALID;
	}
	return store_dberr(st, err, errlen, "write");
}

/* The columns in names, as "c1,c2," with values "?1,?2," (assign false) or
 * "c1 = ?1,c2 = ?2,"; *n counts them.  STORE_INVALID for a column the
 * caller may not write. */
static int store_input_cols(const struct store_table *tbl, const cJSON *in, bool assign, char *buf,
			    size_t len, char *vals, size_t vlen, size_t *n, char *err,
			    size_t errlen)
{
	const cJSON *item;
	size_t used = 0, vused = 0;

	buf[0] = '\0';
	if (vals != NULL)
		vals[0] = '\0';
	*n = 0;
	cJSON_ArrayForEach(item, in) {
		const struct store_col *col = store_col_find(tbl, item->string);

		if (col == NULL || !col->writable) {
			store_seterr(err, errlen, "%s is not a writable field of a %s",
				     item->string, tbl->what);
			return STORE_INVALID;
		}
		if (*n + 2 >= DB_PARAMS_MAX) {
			store_seterr(err, errlen, "too many fields");
			return STORE_INVALID;
		}
		(*n)++;
		if (assign)
			used += (size_t)snprintf(buf + used, len - used, "%s = ?%zu,", col->name, *n);
		else
			used += (size_t)snprintf(buf + used, len - used, "%s,", col->name);
		if (vals != NULL)
			vused += (size_t)snprintf(vals + vused, vlen - vused, "?%zu,", *n);
		if (used >= len || (vals != NULL && vused >= vlen)) {
			store_seterr(err, errlen, "too many fields");
			return STORE_INVALID;
		}
	}
	return 0;
}

/* Runs an INSERT ... RETURNING id (id_out) or an UPDATE (*changes) whose
 * parameters are in's n values, then the time of the write (?n+1) and id
 * (?n+2). */
static int store_write_step(struct store *st, const struct store_table *tbl, const char *sql,
			    const cJSON *in, int64_t id, int64_t *id_out, int64_t *changes,
			    char *err, size_t errlen)
{
	struct db_stmt *stmt = store_prepare(st, sql, err, errlen);
	const cJSON *item;
	char now[32];
	int idx = 0, rc = 0, step;

	if (stmt == NULL)
		return STORE_ERROR;
	cJSON_ArrayForEach(item, in) {
		rc = store_bind_value(stmt, ++idx, store_col_find(tbl, item->string), item, err,
				      errlen);
		if (rc < 0)
			goto out;
	}
	store_now(now, sizeof(now));
	db_bind_text(stmt, idx + 1, now);
	if (id_out == NULL)
		db_bind_int64(stmt, idx + 2, id);
	step = db_step(stmt);
	if (step == DB_ROW && id_out != NULL) {
		*id_out = db_column_int64(stmt, 0);
		step = db_step(stmt);
	}
	if (step != DB_DONE)
		rc = store_write_failed(st, tbl, in, step, err, errlen);
	else if (changes != NULL)
		*changes = db_changes(stmt);
out:
	db_finalize(stmt);
	return rc;
}

static int store_row_insert_locked(struct store *st, const struct store_table *tbl,
				   const cJSON *in, int64_t *id, char *err, size_t errlen)
{
	char cols[512], params[256], sql[1024];
	size_t n = 0;
	int rc;

	rc = store_input_cols(tbl, in, false, cols, sizeof(cols), params, sizeof(params), &n, err,
			      errlen);
	if (rc < 0)
		return rc;
	snprintf(sql, sizeof(sql),
		 "INSERT INTO %s (%screated_at,updated_at) VALUES (%s?%zu,?%zu) RETURNING id",
		 tbl->table, cols, params, n + 1, n + 1);
	return store_write_step(st, tbl, sql, in, 0, id, NULL, err, errlen);
}

static int store_row_update_locked(struct store *st, const struct store_table *tbl, int64_t id,
				   const cJSON *in, char *err, size_t errlen)
{
	char sets[768], sql[1024];
	int64_t changes = 0;
	size_t n = 0;
	int rc;

	rc = store_input_cols(tbl, in, true, sets, sizeof(sets), NULL, 0, &n, err, errlen);
	if (rc < 0)
		return rc;
	snprintf(sql, sizeof(sql), "UPDATE %s SET %supdated_at = ?%zu WHERE id = ?%zu",
		 tbl->table, sets, n + 1, n + 2);
	rc = store_write_step(st, tbl, sql, in, id, NULL, &changes, err, errlen);
	if (rc == 0 && changes == 0) {
		store_seterr(err, errlen, "no %s with id %" PRId64, tbl->what, id);
		rc = STORE_NOT_FOUND;
	}
	return rc;
}

static int store_row_delete_locked(struct store *st, const struct store_table *tbl, int64_t id,
				   char *err, size_t errlen)
{
	char sql[128];
	struct db_stmt *stmt;
	int rc, step;

	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", tbl->table);
	stmt = store_prepare(st, sql, err, errlen);
	if (stmt == NULL)
		return STORE_ERROR;
	db_bind_int64(stmt, 1, id);
	if ((step = db_step(stmt)) != DB_DONE) {
		rc = store_write_failed(st, tbl, NULL, step, err, errlen);
	} else if (db_changes(stmt) == 0) {
		store_seterr(err, errlen, "no %s with id %" PRId64, tbl->what, id);
		rc = STORE_NOT_FOUND;
	} else {
		rc = 0;
	}
	db_finalize(stmt);
	return rc;
}

/* STORE_INVALID naming the field when in refers to a parent row that does
 * not exist. */
static int store_check_parent_locked(struct store *st, const struct store_table *tbl,
				     const cJSON *in, char *err, size_t errlen)
{
	const cJSON *val;
	char sql[96];
	int64_t one;
	int rc;

	if (tbl->parent == NULL)
		return 0;
	val = cJSON_GetObjectItemCaseSensitive(in, tbl->parent_field);
	if (val == NULL)
		return 0;
	if (!cJSON_IsNumber(val)) {
		store_seterr(err, errlen, "%s must be the id of a %s", tbl->parent_field,
			     tbl->parent->what);
		return STORE_INVALID;
	}
	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = ?", tbl->parent->table);
	rc = store_query_int(st, sql, 1, (int64_t)val->valuedouble, 0, &one, err, errlen);
	if (rc == STORE_NOT_FOUND) {
		store_seterr(err, errlen, "%s: no %s with id %" PRId64, tbl->parent_field,
			     tbl->parent->what, (int64_t)val->valuedouble);
		return STORE_INVALID;
	}
	return rc;
}

/* Is the row still used by a child row?  STORE_CONFLICT naming the first. */
static int store_check_unused_locked(struct store *st, const struct store_table *tbl, int64_t id,
				     char *err, size_t errlen)
{
	const struct store_table *user = tbl->child;
	char sql[192];
	struct db_stmt *stmt;
	int rc, step;

	if (user == NULL)
		return 0;
	snprintf(sql, sizeof(sql),
		 "SELECT u.id, u.name, (SELECT count(*) FROM %s WHERE %s = ?1),"
		 " (SELECT name FROM %s WHERE id = ?1)"
		 " FROM %s u WHERE u.%s = ?1 ORDER BY u.id LIMIT 1",
		 user->table, tbl->child_field, tbl->table, user->table, tbl->child_field);
	stmt = store_prepare(st, sql, err, errlen);
	if (stmt == NULL)
		return STORE_ERROR;
	db_bind_int64(stmt, 1, id);
	step = db_step(stmt);
	if (step == DB_DONE) {
		rc = 0;
	} else if (step == DB_ROW) {
		int64_t count = db_column_int64(stmt, 2);
		const char *name = db_column_text(stmt, 3);

		if (count > 1)
			store_seterr(err, errlen,
				     "%s %" PRId64 " (%s) is still used by %" PRId64
				     " %ss, %s %" PRId64 " (%s) among them; %s",
				     tbl->what, id, name ? name : "", count, user->what,
				     user->what, (int64_t)db_column_int64(stmt, 0),
				     db_column_text(stmt, 1), tbl->child_advice);
		else
			store_seterr(err, errlen,
				     "%s %" PRId64 " (%s) is still used by %s %" PRId64 " (%s); %s",
				     tbl->what, id, name ? name : "", user->what,
				     (int64_t)db_column_int64(stmt, 0),
				     db_column_text(stmt, 1), tbl->child_advice);
		rc = STORE_CONFLICT;
	} else {
		rc = store_dberr(st, err, errlen, "read");
	}
	db_finalize(stmt);
	return rc;
}

/* STORE_CONFLICT, saying what to do, unless the job is at rest. */
static int store_job_check_at_rest_locked(struct store *st, int64_t id, const char *action,
					  char *err, size_t errlen)
{
	struct db_stmt *stmt;
	int rc, step;

	stmt = store_prepare(st, "SELECT name, state, desired_state FROM jobs WHERE id = ?", err,
			     errlen);
	if (stmt == NULL)
		return STORE_ERROR;
	db_bind_int64(stmt, 1, id);
	step = db_step(stmt);
	if (step == DB_ROW) {
		const char *name = db_column_text(stmt, 0);
		const char *state = db_column_text(stmt, 1);
		const char *desired = db_column_text(stmt, 2);

		rc = 0;
		if (strcmp(state, "failed") != 0 &&
		    (strcmp(state, "stopped") != 0 || strcmp(desired, "stopped") != 0)) {
			store_seterr(err, errlen,
				     "job %" PRId64 " (%s) is %s; stop it first (POST /api/v1/jobs/%" PRId64
				     "/stop), then %s it",
				     id, name, strcmp(state, "stopped") == 0 ? "about to start" : state,
				     id, action);
			rc = STORE_CONFLICT;
		}
	} else if (step == DB_DONE) {
		store_seterr(err, errlen, "no job with id %" PRId64, id);
		rc = STORE_NOT_FOUND;
	} else {
		rc = store_dberr(st, err, errlen, "read");
	}
	db_finalize(stmt);
	return rc;
}

/* ---- services, sources and jobs ---- */

static const struct store_table *store_table_of(enum store_kind kind)
{
	switch (kind) {
	case STORE_SERVICE:
		return &services_table;
	case STORE_SOURCE:
		return &sources_table;
	case STORE_JOB:
		break;
	}
	return &jobs_table;
}

int store_row_get_locked(struct store *st, int kind, int64_t id, cJSON **out, char *err,
			 size_t errlen)
{
	return store_table_row_get_locked(st, store_table_of((enum store_kind)kind), id, out, err,
					  errlen);
}

int store_row_create(struct store *st, enum store_kind kind, const cJSON *in, int64_t *id,
		     char *err, size_t errlen)
{
	const struct store_table *tbl = store_table_of(kind);
	int rc;

	pthread_mutex_lock(&st->lock);
	for (int attempt = 0;; attempt++) {
		rc = store_tx_begin(st, err, errlen);
		if (rc == 0)
			rc = store_check_parent_locked(st, tbl, in, err, errlen);
		if (rc == 0)
			rc = store_row_insert_locked(st, tbl, in, id, err, errlen);
		if (!store_tx_again(st, &rc, attempt, err, errlen))
			break;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_row_get(struct store *st, enum store_kind kind, int64_t id, cJSON **out, char *err,
		  size_t errlen)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = store_row_get_locked(st, kind, id, out, err, errlen);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_row_list(struct store *st, enum store_kind kind, int64_t offset, int64_t limit,
		   cJSON **items, int64_t *total, char *err, size_t errlen)
{
	return store_rows_list(st, store_table_of(kind), offset, limit, items, total, err,
			       errlen);
}

/* A change (in) or, with in NULL, a delete of row id, after the checks it
 * needs under the lock. */
static int store_row_modify(struct store *st, enum store_kind kind, int64_t id, const cJSON *in,
			    char *err, size_t errlen)
{
	const struct store_table *tbl = store_table_of(kind);
	int rc;

	pthread_mutex_lock(&st->lock);
	for (int attempt = 0;; attempt++) {
		rc = store_tx_begin(st, err, errlen);
		if (rc == 0 && tbl->at_rest_only)
			rc = store_job_check_at_rest_locked(st, id, in != NULL ? "change" : "delete",
							    err, errlen);
		if (rc == 0)
			rc = in != NULL ? store_check_parent_locked(st, tbl, in, err, errlen)
					: store_check_unused_locked(st, tbl, id, err, errlen);
		if (rc == 0)
			rc = in != NULL ? store_row_update_locked(st, tbl, id, in, err, errlen)
					: store_row_delete_locked(st, tbl, id, err, errlen);
		if (!store_tx_again(st, &rc, attempt, err, errlen))
			break;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_row_update(struct store *st, enum store_kind kind, int64_t id, const cJSON *in,
		     char *err, size_t errlen)
{
	if (in == NULL) {
		store_seterr(err, errlen, "nothing to change");
		return STORE_INVALID;
	}
	return store_row_modify(st, kind, id, in, err, errlen);
}

int store_row_delete(struct store *st, enum store_kind kind, int64_t id, char *err, size_t errlen)
{
	return store_row_modify(st, kind, id, NULL, err, errlen);
}

/* ---- jobs ---- */