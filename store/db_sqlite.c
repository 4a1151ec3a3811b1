/* The SQLite side of db.h. */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db_impl.h"
#include "log.h"

#define DB_SQLITE_BUSY_TIMEOUT_MS 5000

struct db_sqlite {
	struct db base;
	sqlite3 *conn;
	char msg[512];
};

struct db_sqlite_stmt {
	struct db_stmt base;
	sqlite3_stmt *stmt;
	int64_t changes;
};

static struct db_sqlite *db_sqlite_of(struct db *db)
{
	return (struct db_sqlite *)db;
}

static struct db_sqlite_stmt *db_sqlite_stmt_of(struct db_stmt *stmt)
{
	return (struct db_sqlite_stmt *)stmt;
}

/* Maps a failure to the layer's codes, keeping the message. */
static int db_sqlite_fail(struct db_sqlite *d, int code, const char *msg)
{
	snprintf(d->msg, sizeof(d->msg), "%s", msg != NULL ? msg : sqlite3_errmsg(d->conn));
	switch (code) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return DB_UNIQUE;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return DB_FOREIGN_KEY;
	default:
		return DB_ERROR;
	}
}

static void db_sqlite_close(struct db *db)
{
	struct db_sqlite *d = db_sqlite_of(db);

	sqlite3_close(d->conn);
	free(d);
}

static const char *db_sqlite_errmsg(struct db *db)
{
	return db_sqlite_of(db)->msg;
}

static int db_sqlite_exec(struct db *db, const char *sql)
{
	struct db_sqlite *d = db_sqlite_of(db);
	char *msg = NULL;
	int rc;

	if (sqlite3_exec(d->conn, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	rc = db_sqlite_fail(d, sqlite3_extended_errcode(d->conn), msg);
	sqlite3_free(msg);
	return rc;
}

static struct db_stmt *db_sqlite_prepare(struct db *db, const char *sql)
{
	struct db_sqlite *d = db_sqlite_of(db);
	struct db_sqlite_stmt *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(d->msg, sizeof(d->msg), "out of memory");
		return NULL;
	}
	if (sqlite3_prepare_v2(d->conn, sql, -1, &s->stmt, NULL) != SQLITE_OK) {
		db_sqlite_fail(d, SQLITE_ERROR, NULL);
		sqlite3_finalize(s->stmt);
		free(s);
		return NULL;
	}
	s->base.ops = &db_sqlite_ops;
	s->base.db = db;
	return &s->base;
}

static int db_sqlite_bind_int64(struct db_stmt *stmt, int idx, int64_t value)
{
	return sqlite3_bind_int64(db_sqlite_stmt_of(stmt)->stmt, idx, value) == SQLITE_OK ? 0
											: DB_ERROR;
}

static int db_sqlite_bind_text(struct db_stmt *stmt, int idx, const char *value)
{
	sqlite3_stmt *s = db_sqlite_stmt_of(stmt)->stmt;

	if (value == NULL)
		return sqlite3_bind_null(s, idx) == SQLITE_OK ? 0 : DB_ERROR;
	return sqlite3_bind_text(s, idx, value, -1, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : DB_ERROR;
}

static int db_sqlite_bind_null(struct db_stmt *stmt, int idx)
{
	return sqlite3_bind_null(db_sqlite_stmt_of(stmt)->stmt, idx) == SQLITE_OK ? 0 : DB_ERROR;
}

static int db_sqlite_step(struct db_stmt *stmt)
{
	struct db_sqlite_stmt *s = db_sqlite_stmt_of(stmt);
	struct db_sqlite *d = db_sqlite_of(stmt->db);
	int rc = sqlite3_step(s->stmt);

	if (rc == SQLITE_ROW)
		return DB_ROW;
	if (rc == SQLITE_DONE) {
		s->changes = sqlite3_changes(d->conn);
		return DB_DONE;
	}
	return db_sqlite_fail(d, sqlite3_extended_errcode(d->conn), NULL);
}

static bool db_sqlite_column_is_null(struct db_stmt *stmt, int col)
{
	return sqlite3_column_type(db_sqlite_stmt_of(stmt)->stmt, col) == SQLITE_NULL;
}

static int64_t db_sqlite_column_int64(struct db_stmt *stmt, int col)
{
	return sqlite3_column_int64(db_sqlite_stmt_of(stmt)->stmt, col);
}

static const char *db_sqlite_column_text(struct db_stmt *stmt, int col)
{
	return (const char *)sqlite3_column_text(db_sqlite_stmt_of(stmt)->stmt, col);
}

static int64_t db_sqlite_changes(struct db_stmt *stmt)
{
	return db_sqlite_stmt_of(stmt)->changes;
}

static void db_sqlite_finalize(struct db_stmt *stmt)
{
	struct db_sqlite_stmt *s = db_sqlite_stmt_of(stmt);

	sqlite3_finalize(s->stmt);
	free(s);
}

/* IMMEDIATE: the write lock from the start, so that two writers never both
 * read and then one fails to upgrade. */
static int db_sqlite_begin(struct db *db)
{
	return db_sqlite_exec(db, "BEGIN IMMEDIATE");
}

static int db_sqlite_schema_version(struct db *db, int64_t *version)
{
	struct db_stmt *stmt = db_sqlite_prepare(db, "PRAGMA user_version");
	int rc;

	if (stmt == NULL)
		return DB_ERROR;
	rc = db_sqlite_step(stmt);
	if (rc == DB_ROW) {
		*version = db_sqlite_column_int64(stmt, 0);
		rc = 0;
	} else if (rc == DB_DONE) {
		rc = db_sqlite_fail(db_sqlite_of(db), SQLITE_ERROR, "PRAGMA user_version gave no row");
	}
	db_sqlite_finalize(stmt);
	return rc;
}

static int db_sqlite_set_schema_version(struct db *db, int64_t version)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)version);
	return db_sqlite_exec(db, sql);
}

const struct db_ops db_sqlite_ops = {
	.kind = DB_SQLITE,
	.id_type = "INTEGER PRIMARY KEY AUTOINCREMENT",
	.close = db_sqlite_close,
	.errmsg = db_sqlite_errmsg,
	.exec = db_sqlite_exec,
	.prepare = db_sqlite_prepare,
	.bind_int64 = db_sqlite_bind_int64,
	.bind_text = db_sqlite_bind_text,
	.bind_null = db_sqlite_bind_null,
	.step = db_sqlite_step,
	.column_is_null = db_sqlite_column_is_null,
	.column_int64 = db_sqlite_column_int64,
	.column_text = db_sqlite_column_text,
	.changes = db_sqlite_changes,
	.finalize = db_sqlite_finalize,
	.begin = db_sqlite_begin,
	.migrate_begin = db_sqlite_begin,
	.schema_version = db_sqlite_schema_version,
	.set_schema_version = db_sqlite_set_schema_version,
};

static void db_sqlite_chmod_if_present(const char *path, const char *suffix)
{
	char aux[4096];

	if ((size_t)snprintf(aux, sizeof(aux), "%s%s", path, suffix) >= sizeof(aux))
		return;
	if (chmod(aux, 0600) < 0 && errno != ENOENT)
		log_warn("store: cannot chmod %s: %s", aux, strerror(errno));
}

static int db_sqlite_set_wal(struct db *db, char *err, size_t errlen)
{
	struct db_stmt *stmt = db_sqlite_prepare(db, "PRAGMA journal_mode = WAL");
	const char *mode;
	int rc = DB_ERROR;

	if (stmt == NULL) {
		snprintf(err, errlen, "database prepare failed: %s", db_sqlite_errmsg(db));
		return DB_ERROR;
	}
	if (db_sqlite_step(stmt) != DB_ROW) {
		snprintf(err, errlen, "database switch to the WAL journal failed: %s",
			 db_sqlite_errmsg(db));
		goto out;
	}
	mode = db_sqlite_column_text(stmt, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		snprintf(err, errlen, "the database refuses the WAL journal (mode %s)",
			 mode ? mode : "unknown");
		goto out;
	}
	rc = 0;
out:
	db_sqlite_finalize(stmt);
	return rc;
}

int db_open_sqlite(const char *path, struct db **out, char *err, size_t errlen)
{
	struct db_sqlite *d = calloc(1, sizeof(*d));
	int fd, rc = DB_ERROR;

	*out = NULL;
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERROR;
	}
	d->base.ops = &db_sqlite_ops;
	/* Create the file ourselves so that it is never readable by others, not
	 * even for a moment; fix the mode of one created by someone else. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) < 0)
		log_warn("store: cannot chmod %s: %s", path, strerror(errno));
	close(fd);

	if (sqlite3_open_v2(path, &d->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 d->conn ? sqlite3_errmsg(d->conn) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(d->conn, DB_SQLITE_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(d->conn, 1);
	if (db_sqlite_set_wal(&d->base, err, errlen) < 0)
		goto out;
	if (db_sqlite_exec(&d->base, "PRAGMA foreign_keys = ON") < 0 ||
	    db_sqlite_exec(&d->base, "PRAGMA synchronous = NORMAL") < 0) {
		snprintf(err, errlen, "database error: %s", d->msg);
		goto out;
	}
	db_sqlite_chmod_if_present(path, "-wal");
	db_sqlite_chmod_if_present(path, "-shm");
	*out = &d->base;
	d = NULL;
	rc = 0;
out:
	if (d != NULL)
		db_sqlite_close(&d->base);
	return rc;
}
