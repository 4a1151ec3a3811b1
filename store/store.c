#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "jobspec.h"
#include "log.h"
#include "resolve.h"

#define STORE_SCHEMA_VERSION 5
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_DEFAULT_RETRY_INTERVAL_MS 5000

struct store {
	sqlite3 *db;
	pthread_mutex_t lock;
	int dir_fd; /* DIR/streamserver.lock, flock()ed for the store's lifetime */
};

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

/* AUTOINCREMENT so that the id of a deleted row is never given to a new one:
 * clients may still hold it. */
static const char *const store_schema_v1 =
	"CREATE TABLE services ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT NOT NULL UNIQUE,"
	" description TEXT NOT NULL DEFAULT '',"
	" spec_cu INTEGER NOT NULL DEFAULT 8,"
	" database_host TEXT NOT NULL DEFAULT '127.0.0.1',"
	" database_port INTEGER NOT NULL DEFAULT 5432,"
	" status TEXT NOT NULL DEFAULT 'running',"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL);"
	"CREATE TABLE sources ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" service_id INTEGER NOT NULL REFERENCES services(id),"
	" name TEXT NOT NULL UNIQUE,"
	" description TEXT NOT NULL DEFAULT '',"
	" type TEXT NOT NULL DEFAULT 'kafka',"
	" brokers TEXT NOT NULL,"
	" topic TEXT NOT NULL,"
	" format TEXT NOT NULL DEFAULT 'delimited',"
	" delimiter TEXT,"
	" properties TEXT NOT NULL DEFAULT '{}',"
	" status TEXT NOT NULL DEFAULT 'running',"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL);"
	"CREATE INDEX sources_service_id ON sources(service_id);"
	"CREATE TABLE jobs ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" source_id INTEGER NOT NULL REFERENCES sources(id),"
	" name TEXT NOT NULL UNIQUE,"
	" description TEXT NOT NULL DEFAULT '',"
	" mode TEXT NOT NULL,"
	" definition TEXT NOT NULL,"
	" desired_state TEXT NOT NULL DEFAULT 'stopped',"
	" state TEXT NOT NULL DEFAULT 'stopped',"
	" pid INTEGER NOT NULL DEFAULT 0,"
	" started_at TEXT,"
	" restarts INTEGER NOT NULL DEFAULT 0,"
	" messages_consumed INTEGER NOT NULL DEFAULT 0,"
	" rows_written INTEGER NOT NULL DEFAULT 0,"
	" rows_rejected INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL);"
	"CREATE INDEX jobs_source_id ON jobs(source_id);";

/* Version 2: the counters at the user's last start (ERROR_LIMIT counts from
 * there, across restarts) and how the last worker ended. */
static const char *const store_schema_v2 =
	"ALTER TABLE jobs ADD COLUMN messages_at_start INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN rejected_at_start INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN last_exit TEXT;";

/* Version 3: lifetime counters of rows updated (of rows_written, existing
 * rows changed) and batches committed, kept like messages_consumed. */
static const char *const store_schema_v3 =
	"ALTER TABLE jobs ADD COLUMN rows_updated INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN batches INTEGER NOT NULL DEFAULT 0;";

/* Version 4: the service's TLS settings for its jobs' database connections
 * (libpq's sslmode; root CA, client certificate and client key as PEM text),
 * NULL = not set (libpq's default, prefer). */
static const char *const store_schema_v4 =
	"ALTER TABLE services ADD COLUMN database_sslmode TEXT;"
	"ALTER TABLE services ADD COLUMN database_sslrootcert TEXT;"
	"ALTER TABLE services ADD COLUMN database_sslcert TEXT;"
	"ALTER TABLE services ADD COLUMN database_sslkey TEXT;";

/* Version 5: the job's TASKS (kept beside the definition that says it, so
 * that the supervisor and the spec_cu count need not parse every job) and
 * the pids of its tasks' workers ("123,456"; a restarted controller waits
 * for them, see sup.c). */
static const char *const store_schema_v5 =
	"ALTER TABLE jobs ADD COLUMN tasks INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE jobs ADD COLUMN task_pids TEXT NOT NULL DEFAULT '';";

static void store_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int store_dberr(struct store *st, char *err, size_t errlen, const char *what)
{
	store_seterr(err, errlen, "database %s failed: %s", what, sqlite3_errmsg(st->db));
	return STORE_ERROR;
}

static void store_now(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static sqlite3_stmt *store_prepare(struct store *st, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		store_dberr(st, err, errlen, "prepare");
		sqlite3_finalize(stmt);
		return NULL;
	}
	return stmt;
}

/* Runs a statement that returns no rows. */
static int store_exec(struct store *st, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		store_seterr(err, errlen, "database error: %s", msg != NULL ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return STORE_ERROR;
	}
	return 0;
}

/* One integer from a query with up to two integer parameters. */
static int store_query_int(struct store *st, const char *sql, int64_t a, int64_t b, int64_t *out,
			   char *err, size_t errlen)
{
	sqlite3_stmt *stmt = store_prepare(st, sql, err, errlen);
	int rc;

	if (stmt == NULL)
		return STORE_ERROR;
	if (sqlite3_bind_parameter_count(stmt) >= 1)
		sqlite3_bind_int64(stmt, 1, a);
	if (sqlite3_bind_parameter_count(stmt) >= 2)
		sqlite3_bind_int64(stmt, 2, b);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(stmt, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = STORE_NOT_FOUND;
	} else {
		rc = store_dberr(st, err, errlen, "query");
	}
	sqlite3_finalize(stmt);
	return rc;
}

/* ---- opening ---- */

static void store_chmod_if_present(const char *path)
{
	if (chmod(path, 0600) < 0 && errno != ENOENT)
		log_warn("store: cannot chmod %s: %s", path, strerror(errno));
}

static int store_set_wal(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = store_prepare(st, "PRAGMA journal_mode = WAL", err, errlen);
	const char *mode;
	int rc = STORE_ERROR;

	if (stmt == NULL)
		return STORE_ERROR;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_dberr(st, err, errlen, "switch to the WAL journal");
		goto out;
	}
	mode = (const char *)sqlite3_column_text(stmt, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		store_seterr(err, errlen, "the database refuses the WAL journal (mode %s)",
			     mode ? mode : "unknown");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(stmt);
	return rc;
}

static int store_migrate(struct store *st, char *err, size_t errlen)
{
	int64_t version = 0;
	char sql[64];

	if (store_query_int(st, "PRAGMA user_version", 0, 0, &version, err, errlen) < 0)
		return STORE_ERROR;
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (version > STORE_SCHEMA_VERSION) {
		store_seterr(err, errlen,
			     "the database has schema version %" PRId64
			     ", newer than this streamserver knows (%d); use a newer streamserver",
			     version, STORE_SCHEMA_VERSION);
		return STORE_ERROR;
	}
	if (store_exec(st, "BEGIN IMMEDIATE", err, errlen) < 0)
		return STORE_ERROR;
	/* Version 0 is an empty database; each step brings it one version up. */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	if ((version < 1 && store_exec(st, store_schema_v1, err, errlen) < 0) ||
	    (version < 2 && store_exec(st, store_schema_v2, err, errlen) < 0) ||
	    (version < 3 && store_exec(st, store_schema_v3, err, errlen) < 0) ||
	    (version < 4 && store_exec(st, store_schema_v4, err, errlen) < 0) ||
	    (version < 5 && store_exec(st, store_schema_v5, err, errlen) < 0) ||
	    store_exec(st, sql, err, errlen) < 0 || store_exec(st, "COMMIT", err, errlen) < 0) {
		store_exec(st, "ROLLBACK", NULL, 0);
		return STORE_ERROR;
	}
	return 0;
}

/* Takes DIR/streamserver.lock for as long as the store is open, so that two
 * controllers never share one data directory: both would run the same jobs
 * and two workers would write each of them.  flock() is released by the
 * kernel when the holder dies, however it dies, so a lock left by a crashed
 * or kill -9'd controller never blocks a restart; the pid written into the
 * file is only for the message.  O_CLOEXEC keeps workers from inheriting it. */
static int store_lock_dir(const char *dir, int *fd_out, char *err, size_t errlen)
{
	char path[4096], pid[32];
	ssize_t n;
	int fd;

	*fd_out = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/streamserver.lock", dir) >= sizeof(path)) {
		store_seterr(err, errlen, "data directory path too long: %s", dir);
		return STORE_ERROR;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		store_seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return STORE_ERROR;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK) {
			store_seterr(err, errlen,
				     "data directory %s is in use by another streamserver (pid %s, "
				     "lock %s); stop that one first, or give this one another "
				     "--data-dir",
				     dir, pid[0] ? pid : "unknown", path);
			return STORE_BUSY;
		}
		store_seterr(err, errlen, "cannot lock %s: %s", path, strerror(e));
		return STORE_ERROR;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("store: cannot write the pid into %s: %s", path, strerror(errno));
	*fd_out = fd;
	return 0;
}

int store_open(const char *dir, struct store **out, char *err, size_t errlen)
{
	struct store *st = NULL;
	char *path = NULL, *aux = NULL;
	size_t pathlen;
	int fd, rc = STORE_ERROR;

	*out = NULL;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		store_seterr(err, errlen, "cannot create data directory %s: %s", dir,
			     strerror(errno));
		return STORE_ERROR;
	}
	pathlen = strlen(dir) + sizeof("/streamserver.db-wal");
	path = malloc(pathlen);
	aux = malloc(pathlen);
	st = calloc(1, sizeof(*st));
	if (st != NULL)
		st->dir_fd = -1;
	if (path == NULL || aux == NULL || st == NULL) {
		store_seterr(err, errlen, "out of memory");
		goto out;
	}
	pthread_mutex_init(&st->lock, NULL);
	if ((rc = store_lock_dir(dir, &st->dir_fd, err, errlen)) < 0)
		goto out;
	rc = STORE_ERROR;
	snprintf(path, pathlen, "%s/streamserver.db", dir);

	/* Create the file ourselves so that it is never readable by others, not
	 * even for a moment; fix the mode of one created by someone else. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		store_seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) < 0)
		log_warn("store: cannot chmod %s: %s", path, strerror(errno));
	close(fd);

	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
	    SQLITE_OK) {
		store_seterr(err, errlen, "cannot open %s: %s", path,
			     st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(st->db, 1);
	if (store_set_wal(st, err, errlen) < 0)
		goto out;
	if (store_exec(st, "PRAGMA foreign_keys = ON", err, errlen) < 0 ||
	    store_exec(st, "PRAGMA synchronous = NORMAL", err, errlen) < 0)
		goto out;
	if (store_migrate(st, err, errlen) < 0)
		goto out;
	snprintf(aux, pathlen, "%s-wal", path);
	store_chmod_if_present(aux);
	snprintf(aux, pathlen, "%s-shm", path);
	store_chmod_if_present(aux);

	*out = st;
	st = NULL;
	rc = 0;
out:
	store_close(st);
	free(path);
	free(aux);
	return rc;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->db != NULL)
		sqlite3_close(st->db);
	if (st->dir_fd >= 0)
		close(st->dir_fd); /* releases the data directory, after the database */
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* ---- generic rows ---- */

static cJSON *store_row_from_stmt(const struct store_table *tbl, sqlite3_stmt *stmt)
{
	cJSON *row = cJSON_CreateObject();

	if (row == NULL)
		return NULL;
	for (size_t i = 0; i < tbl->ncols; i++) {
		const struct store_col *col = &tbl->cols[i];
		cJSON *val = NULL;

		if (sqlite3_column_type(stmt, (int)i) == SQLITE_NULL) {
			val = cJSON_CreateNull();
		} else if (col->type == COL_INT) {
			val = cJSON_CreateNumber((double)sqlite3_column_int64(stmt, (int)i));
		} else if (col->type == COL_TEXT) {
			val = cJSON_CreateString((const char *)sqlite3_column_text(stmt, (int)i));
		} else {
			val = cJSON_Parse((const char *)sqlite3_column_text(stmt, (int)i));
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

static int store_row_get_locked(struct store *st, const struct store_table *tbl, int64_t id,
				cJSON **out, char *err, size_t errlen)
{
	char cols[512], sql[768];
	sqlite3_stmt *stmt;
	int rc;

	*out = NULL;
	store_col_list(tbl, cols, sizeof(cols));
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE id = ?", cols, tbl->table);
	stmt = store_prepare(st, sql, err, errlen);
	if (stmt == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*out = store_row_from_stmt(tbl, stmt);
		rc = *out != NULL ? 0 : STORE_ERROR;
		if (rc < 0)
			store_seterr(err, errlen, "out of memory");
	} else if (rc == SQLITE_DONE) {
		store_seterr(err, errlen, "no %s with id %" PRId64, tbl->what, id);
		rc = STORE_NOT_FOUND;
	} else {
		rc = store_dberr(st, err, errlen, "read");
	}
	sqlite3_finalize(stmt);
	return rc;
}

static int store_rows_list(struct store *st, const struct store_table *tbl, int64_t offset,
			   int64_t limit, cJSON **items, int64_t *total, char *err, size_t errlen)
{
	char cols[512], sql[768];
	sqlite3_stmt *stmt = NULL;
	cJSON *arr = NULL;
	int rc = STORE_ERROR, step;

	*items = NULL;
	pthread_mutex_lock(&st->lock);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tbl->table);
	if (store_query_int(st, sql, 0, 0, total, err, errlen) < 0)
		goto out;
	store_col_list(tbl, cols, sizeof(cols));
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY id LIMIT ? OFFSET ?", cols,
		 tbl->table);
	stmt = store_prepare(st, sql, err, errlen);
	arr = cJSON_CreateArray();
	if (stmt == NULL || arr == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, limit);
	sqlite3_bind_int64(stmt, 2, offset);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		cJSON *row = store_row_from_stmt(tbl, stmt);

		if (row == NULL) {
			store_seterr(err, errlen, "out of memory");
			goto out;
		}
		cJSON_AddItemToArray(arr, row);
	}
	if (step != SQLITE_DONE) {
		store_dberr(st, err, errlen, "list");
		goto out;
	}
	*items = arr;
	arr = NULL;
	rc = 0;
out:
	sqlite3_finalize(stmt);
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
static int store_bind_value(sqlite3_stmt *stmt, int idx, const struct store_col *col,
			    const cJSON *val, char *err, size_t errlen)
{
	char *text;

	if (cJSON_IsNull(val))
		return sqlite3_bind_null(stmt, idx) == SQLITE_OK ? 0 : STORE_ERROR;
	switch (col->type) {
	case COL_INT:
		if (cJSON_IsNumber(val))
			return sqlite3_bind_int64(stmt, idx, (sqlite3_int64)val->valuedouble) ==
					       SQLITE_OK
				       ? 0
				       : STORE_ERROR;
		break;
	case COL_TEXT:
		if (cJSON_IsString(val))
			return sqlite3_bind_text(stmt, idx, val->valuestring, -1,
						 SQLITE_TRANSIENT) == SQLITE_OK
				       ? 0
				       : STORE_ERROR;
		break;
	case COL_JSON:
		if (cJSON_IsObject(val)) {
			text = cJSON_PrintUnformatted(val);
			if (text == NULL)
				break;
			if (sqlite3_bind_text(stmt, idx, text, -1, free) != SQLITE_OK)
				return STORE_ERROR;
			return 0;
		}
		break;
	}
	store_seterr(err, errlen, "%s: value of the wrong type", col->name);
	return STORE_INVALID;
}

/* Maps a failed write to a user's message. */
static int store_write_failed(struct store *st, const struct store_table *tbl, const cJSON *in,
			      int step, char *err, size_t errlen)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");

	if (step == SQLITE_CONSTRAINT_UNIQUE && cJSON_IsString(name)) {
		store_seterr(err, errlen, "a %s named \"%s\" already exists; choose another name",
			     tbl->what, name->valuestring);
		return STORE_CONFLICT;
	}
	if (step == SQLITE_CONSTRAINT_FOREIGNKEY) {
		store_seterr(err, errlen, "the %s refers to a row that does not exist", tbl->what);
		return STORE_INVALID;
	}
	return store_dberr(st, err, errlen, "write");
}

/* The columns in names, as "c1,c2," (assign false) or "c1 = ?,c2 = ?,"; *n
 * counts them.  STORE_INVALID for a column the caller may not write. */
static int store_input_cols(const struct store_table *tbl, const cJSON *in, bool assign, char *buf,
			    size_t len, size_t *n, char *err, size_t errlen)
{
	const cJSON *item;
	size_t used = 0;

	buf[0] = '\0';
	*n = 0;
	cJSON_ArrayForEach(item, in) {
		const struct store_col *col = store_col_find(tbl, item->string);

		if (col == NULL || !col->writable) {
			store_seterr(err, errlen, "%s is not a writable field of a %s",
				     item->string, tbl->what);
			return STORE_INVALID;
		}
		used += (size_t)snprintf(buf + used, len - used, assign ? "%s = ?," : "%s,",
					 col->name);
		if (used >= len) {
			store_seterr(err, errlen, "too many fields");
			return STORE_INVALID;
		}
		(*n)++;
	}
	return 0;
}

/* Runs an INSERT or UPDATE whose first parameters are in's values, then
 * :now (the time of the write) and :id. */
static int store_write_step(struct store *st, const struct store_table *tbl, const char *sql,
			    const cJSON *in, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = store_prepare(st, sql, err, errlen);
	const cJSON *item;
	char now[32];
	int idx = 0, rc = 0;

	if (stmt == NULL)
		return STORE_ERROR;
	cJSON_ArrayForEach(item, in) {
		rc = store_bind_value(stmt, ++idx, store_col_find(tbl, item->string), item, err,
				      errlen);
		if (rc < 0)
			goto out;
	}
	store_now(now, sizeof(now));
	sqlite3_bind_text(stmt, sqlite3_bind_parameter_index(stmt, ":now"), now, -1,
			  SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":id"), id);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = store_write_failed(st, tbl, in, sqlite3_extended_errcode(st->db), err, errlen);
out:
	sqlite3_finalize(stmt);
	return rc;
}

static int store_row_insert_locked(struct store *st, const struct store_table *tbl,
				   const cJSON *in, int64_t *id, char *err, size_t errlen)
{
	char cols[512], params[256], sql[1024];
	size_t n = 0;
	int rc;

	rc = store_input_cols(tbl, in, false, cols, sizeof(cols), &n, err, errlen);
	if (rc < 0)
		return rc;
	if (2 * n >= sizeof(params)) {
		store_seterr(err, errlen, "too many fields");
		return STORE_INVALID;
	}
	for (size_t i = 0; i < n; i++)
		memcpy(params + 2 * i, "?,", 2);
	params[2 * n] = '\0';
	snprintf(sql, sizeof(sql),
		 "INSERT INTO %s (%screated_at,updated_at) VALUES (%s:now,:now)", tbl->table,
		 cols, params);
	rc = store_write_step(st, tbl, sql, in, 0, err, errlen);
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(st->db);
	return rc;
}

static int store_row_update_locked(struct store *st, const struct store_table *tbl, int64_t id,
				   const cJSON *in, char *err, size_t errlen)
{
	char sets[768], sql[1024];
	size_t n = 0;
	int rc;

	rc = store_input_cols(tbl, in, true, sets, sizeof(sets), &n, err, errlen);
	if (rc < 0)
		return rc;
	snprintf(sql, sizeof(sql), "UPDATE %s SET %supdated_at = :now WHERE id = :id", tbl->table,
		 sets);
	rc = store_write_step(st, tbl, sql, in, id, err, errlen);
	if (rc == 0 && sqlite3_changes(st->db) == 0) {
		store_seterr(err, errlen, "no %s with id %" PRId64, tbl->what, id);
		rc = STORE_NOT_FOUND;
	}
	return rc;
}

static int store_row_delete_locked(struct store *st, const struct store_table *tbl, int64_t id,
				   char *err, size_t errlen)
{
	char sql[128];
	sqlite3_stmt *stmt;
	int rc;

	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", tbl->table);
	stmt = store_prepare(st, sql, err, errlen);
	if (stmt == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = store_write_failed(st, tbl, NULL, sqlite3_extended_errcode(st->db), err, errlen);
	} else if (sqlite3_changes(st->db) == 0) {
		store_seterr(err, errlen, "no %s with id %" PRId64, tbl->what, id);
		rc = STORE_NOT_FOUND;
	} else {
		rc = 0;
	}
	sqlite3_finalize(stmt);
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
	rc = store_query_int(st, sql, (int64_t)val->valuedouble, 0, &one, err, errlen);
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
	sqlite3_stmt *stmt;
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
	sqlite3_bind_int64(stmt, 1, id);
	step = sqlite3_step(stmt);
	if (step == SQLITE_DONE) {
		rc = 0;
	} else if (step == SQLITE_ROW) {
		int64_t count = sqlite3_column_int64(stmt, 2);
		const char *name = (const char *)sqlite3_column_text(stmt, 3);

		if (count > 1)
			store_seterr(err, errlen,
				     "%s %" PRId64 " (%s) is still used by %" PRId64
				     " %ss, %s %" PRId64 " (%s) among them; %s",
				     tbl->what, id, name ? name : "", count, user->what,
				     user->what, (int64_t)sqlite3_column_int64(stmt, 0),
				     (const char *)sqlite3_column_text(stmt, 1), tbl->child_advice);
		else
			store_seterr(err, errlen,
				     "%s %" PRId64 " (%s) is still used by %s %" PRId64 " (%s); %s",
				     tbl->what, id, name ? name : "", user->what,
				     (int64_t)sqlite3_column_int64(stmt, 0),
				     (const char *)sqlite3_column_text(stmt, 1), tbl->child_advice);
		rc = STORE_CONFLICT;
	} else {
		rc = store_dberr(st, err, errlen, "read");
	}
	sqlite3_finalize(stmt);
	return rc;
}

/* STORE_CONFLICT, saying what to do, unless the job is at rest. */
static int store_job_check_at_rest_locked(struct store *st, int64_t id, const char *action,
					  char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc, step;

	stmt = store_prepare(st, "SELECT name, state, desired_state FROM jobs WHERE id = ?", err,
			     errlen);
	if (stmt == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(stmt, 1, id);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(stmt, 0);
		const char *state = (const char *)sqlite3_column_text(stmt, 1);
		const char *desired = (const char *)sqlite3_column_text(stmt, 2);

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
	} else if (step == SQLITE_DONE) {
		store_seterr(err, errlen, "no job with id %" PRId64, id);
		rc = STORE_NOT_FOUND;
	} else {
		rc = store_dberr(st, err, errlen, "read");
	}
	sqlite3_finalize(stmt);
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

int store_row_create(struct store *st, enum store_kind kind, const cJSON *in, int64_t *id,
		     char *err, size_t errlen)
{
	const struct store_table *tbl = store_table_of(kind);
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = store_check_parent_locked(st, tbl, in, err, errlen);
	if (rc == 0)
		rc = store_row_insert_locked(st, tbl, in, id, err, errlen);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_row_get(struct store *st, enum store_kind kind, int64_t id, cJSON **out, char *err,
		  size_t errlen)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = store_row_get_locked(st, store_table_of(kind), id, out, err, errlen);
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
	int rc = 0;

	pthread_mutex_lock(&st->lock);
	if (tbl->at_rest_only)
		rc = store_job_check_at_rest_locked(st, id, in != NULL ? "change" : "delete", err,
						    errlen);
	if (rc == 0)
		rc = in != NULL ? store_check_parent_locked(st, tbl, in, err, errlen)
				: store_check_unused_locked(st, tbl, id, err, errlen);
	if (rc == 0)
		rc = in != NULL ? store_row_update_locked(st, tbl, id, in, err, errlen)
				: store_row_delete_locked(st, tbl, id, err, errlen);
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

/* A job row holds the password in its definition: wipe it before freeing. */
static void store_job_row_free(cJSON *job)
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
			     service_id, id, &running, err, errlen);
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

int store_job_start(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	char service[128], now[32];
	int64_t service_id = 0, spec_cu = 0, tasks = 1;
	bool at_rest = false, wanted = false;
	int rc = STORE_ERROR, step;

	pthread_mutex_lock(&st->lock);
	stmt = store_prepare(st,
			     "SELECT j.desired_state, j.state, v.id, v.name, v.spec_cu, j.tasks"
			     " FROM jobs j JOIN sources s ON s.id = j.source_id"
			     " JOIN services v ON v.id = s.service_id WHERE j.id = ?",
			     err, errlen);
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	step = sqlite3_step(stmt);
	if (step == SQLITE_DONE) {
		store_seterr(err, errlen, "no job with id %" PRId64, id);
		rc = STORE_NOT_FOUND;
		goto out;
	}
	if (step != SQLITE_ROW) {
		rc = store_dberr(st, err, errlen, "read");
		goto out;
	}
	wanted = strcmp((const char *)sqlite3_column_text(stmt, 0), "running") == 0;
	at_rest = strcmp((const char *)sqlite3_column_text(stmt, 1), "stopped") == 0 ||
		  strcmp((const char *)sqlite3_column_text(stmt, 1), "failed") == 0;
	service_id = sqlite3_column_int64(stmt, 2);
	snprintf(service, sizeof(service), "%s", (const char *)sqlite3_column_text(stmt, 3));
	spec_cu = sqlite3_column_int64(stmt, 4);
	tasks = sqlite3_column_int64(stmt, 5);
	sqlite3_finalize(stmt);
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
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, now, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : store_dberr(st, err, errlen, "write");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_job_stop(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
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
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = store_dberr(st, err, errlen, "write");
	} else if (sqlite3_changes(st->db) == 0) {
		store_seterr(err, errlen, "no job with id %" PRId64, id);
		rc = STORE_NOT_FOUND;
	} else {
		rc = 0;
	}
out:
	sqlite3_finalize(stmt);
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
	rc = store_row_get_locked(st, &jobs_table, id, &job, err, errlen);
	if (rc < 0)
		goto out;
	ref = cJSON_GetObjectItemCaseSensitive(job, "source_id");
	rc = store_row_get_locked(st, &sources_table, (int64_t)cJSON_GetNumberValue(ref), &source,
				  err, errlen);
	if (rc < 0)
		goto out;
	ref = cJSON_GetObjectItemCaseSensitive(source, "service_id");
	rc = store_row_get_locked(st, &services_table, (int64_t)cJSON_GetNumberValue(ref), &service,
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
	sqlite3_stmt *stmt;
	int rc = STORE_ERROR, step;

	*rows = NULL;
	*n = 0;
	pthread_mutex_lock(&st->lock);
	stmt = store_prepare(st, "SELECT id, name, desired_state, state, tasks FROM jobs ORDER BY id",
			     err, errlen);
	if (stmt == NULL)
		goto out;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
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
		b->id = sqlite3_column_int64(stmt, 0);
		snprintf(b->name, sizeof(b->name), "%s", (const char *)sqlite3_column_text(stmt, 1));
		snprintf(b->desired, sizeof(b->desired), "%s",
			 (const char *)sqlite3_column_text(stmt, 2));
		snprintf(b->state, sizeof(b->state), "%s", (const char *)sqlite3_column_text(stmt, 3));
		b->tasks = sqlite3_column_int(stmt, 4);
	}
	if (step != SQLITE_DONE) {
		store_dberr(st, err, errlen, "list jobs");
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	*rows = out;
	*n = count;
	out = NULL;
	rc = 0;
out:
	sqlite3_finalize(stmt);
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
	sqlite3_stmt *stmt;
	char err[256];
	int rc = STORE_ERROR;

	pthread_mutex_lock(&st->lock);
	stmt = store_prepare(st, sql, err, sizeof(err));
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	for (size_t i = 0; i < nparams; i++) {
		int idx = (int)i + 2;

		if (params[i].is_num)
			sqlite3_bind_int64(stmt, idx, params[i].num);
		else if (params[i].text != NULL)
			sqlite3_bind_text(stmt, idx, params[i].text, -1, SQLITE_TRANSIENT);
	}
	if (sqlite3_step(stmt) != SQLITE_DONE)
		store_dberr(st, err, sizeof(err), "update job");
	else
		rc = sqlite3_changes(st->db) > 0 ? 0 : STORE_NOT_FOUND;
out:
	if (rc == STORE_ERROR)
		log_error("job %" PRId64 ": %s", id, err);
	sqlite3_finalize(stmt);
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
	rc = store_query_int(st, "SELECT pid FROM jobs WHERE id = ?", id, 0, &value, err,
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
	    store_query_int(st, "SELECT max(messages_consumed - messages_at_start, 0) FROM jobs"
				" WHERE id = ?",
			    id, 0, &messages_before, err, errlen) == 0 &&
	    store_query_int(st, "SELECT max(rows_rejected - rejected_at_start, 0) FROM jobs"
				" WHERE id = ?",
			    id, 0, &rejected_before, err, errlen) == 0) {
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
	sqlite3_stmt *stmt;
	char err[256];
	int rc = STORE_ERROR, step;

	*n = 0;
	pthread_mutex_lock(&st->lock);
	stmt = store_prepare(st, "SELECT pid, task_pids FROM jobs WHERE id = ?", err, sizeof(err));
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW) {
		const char *list = (const char *)sqlite3_column_text(stmt, 1);
		int pid = sqlite3_column_int(stmt, 0);

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
	} else if (step == SQLITE_DONE) {
		rc = STORE_NOT_FOUND;
	} else {
		store_dberr(st, err, sizeof(err), "read");
	}
out:
	if (rc == STORE_ERROR)
		log_error("job %" PRId64 ": %s", id, err);
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_job_set_tasks(struct store *st, int64_t id, const char *definition, int tasks, char *err,
			size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	char service[128], now[32];
	int64_t service_id = 0, spec_cu = 0;
	bool wanted;
	int rc = STORE_ERROR, step;

	pthread_mutex_lock(&st->lock);
	stmt = store_prepare(st,
			     "SELECT j.desired_state, j.state, v.id, v.name, v.spec_cu"
			     " FROM jobs j JOIN sources s ON s.id = j.source_id"
			     " JOIN services v ON v.id = s.service_id WHERE j.id = ?",
			     err, errlen);
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	step = sqlite3_step(stmt);
	if (step == SQLITE_DONE) {
		store_seterr(err, errlen, "no job with id %" PRId64, id);
		rc = STORE_NOT_FOUND;
		goto out;
	}
	if (step != SQLITE_ROW) {
		rc = store_dberr(st, err, errlen, "read");
		goto out;
	}
	wanted = strcmp((const char *)sqlite3_column_text(stmt, 0), "running") == 0 &&
		 strcmp((const char *)sqlite3_column_text(stmt, 1), "failed") != 0;
	service_id = sqlite3_column_int64(stmt, 2);
	snprintf(service, sizeof(service), "%s", (const char *)sqlite3_column_text(stmt, 3));
	spec_cu = sqlite3_column_int64(stmt, 4);
	sqlite3_finalize(stmt);
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
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, definition, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(stmt, 3, tasks);
	sqlite3_bind_text(stmt, 4, now, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : store_dberr(st, err, errlen, "write");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return rc;
}
