/* The backends' side of db.h: what db_sqlite.c and db_pg.c implement and
 * db.c dispatches to.  Private to store/db*.c. */
#ifndef SS_DB_IMPL_H
#define SS_DB_IMPL_H

#include <stdbool.h>
#include <stdint.h>

/* db.h is not included (db.c includes this file: no include circle). */
struct db;
struct db_stmt;

struct db_ops {
	int kind; /* enum db_kind */
	const char *id_type; /* db_dialect_id */
	void (*close)(struct db *db);
	const char *(*errmsg)(struct db *db);
	int (*exec)(struct db *db, const char *sql);
	struct db_stmt *(*prepare)(struct db *db, const char *sql);
	int (*bind_int64)(struct db_stmt *stmt, int idx, int64_t value);
	int (*bind_text)(struct db_stmt *stmt, int idx, const char *value);
	int (*bind_null)(struct db_stmt *stmt, int idx);
	int (*step)(struct db_stmt *stmt);
	bool (*column_is_null)(struct db_stmt *stmt, int col);
	int64_t (*column_int64)(struct db_stmt *stmt, int col);
	const char *(*column_text)(struct db_stmt *stmt, int col);
	int64_t (*changes)(struct db_stmt *stmt);
	void (*finalize)(struct db_stmt *stmt);
	int (*begin)(struct db *db);
	int (*migrate_begin)(struct db *db);
	int (*schema_version)(struct db *db, int64_t *version);
	int (*set_schema_version)(struct db *db, int64_t version);
};

/* The head of each backend's handle and statement. */
struct db {
	const struct db_ops *ops;
	bool retriable; /* the last failure was DB_RETRY */
};

struct db_stmt {
	const struct db_ops *ops;
	struct db *db;
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_pg_ops;

#endif
