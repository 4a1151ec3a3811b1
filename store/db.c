#include "db.h"

#include <stddef.h>

#include "db_impl.h"

void db_close(struct db *db)
{
	if (db != NULL)
		db->ops->close(db);
}

enum db_kind db_kind_of(const struct db *db)
{
	return (enum db_kind)db->ops->kind;
}

const char *db_errmsg(struct db *db)
{
	return db->ops->errmsg(db);
}

bool db_retriable(struct db *db)
{
	return db->retriable;
}

const char *db_dialect_id(const struct db *db)
{
	return db->ops->id_type;
}

/* Every entry that may fail records whether a retry could help. */
static int db_note(struct db *db, int rc)
{
	if (rc < 0)
		db->retriable = rc == DB_RETRY;
	return rc;
}

int db_exec(struct db *db, const char *sql)
{
	return db_note(db, db->ops->exec(db, sql));
}

struct db_stmt *db_prepare(struct db *db, const char *sql)
{
	struct db_stmt *stmt = db->ops->prepare(db, sql);

	if (stmt == NULL)
		db->retriable = false;
	return stmt;
}

int db_bind_int64(struct db_stmt *stmt, int idx, int64_t value)
{
	if (idx < 1 || idx > DB_PARAMS_MAX)
		return DB_ERROR;
	return stmt->ops->bind_int64(stmt, idx, value);
}

int db_bind_text(struct db_stmt *stmt, int idx, const char *value)
{
	if (idx < 1 || idx > DB_PARAMS_MAX)
		return DB_ERROR;
	return stmt->ops->bind_text(stmt, idx, value);
}

int db_bind_null(struct db_stmt *stmt, int idx)
{
	if (idx < 1 || idx > DB_PARAMS_MAX)
		return DB_ERROR;
	return stmt->ops->bind_null(stmt, idx);
}

int db_step(struct db_stmt *stmt)
{
	return db_note(stmt->db, stmt->ops->step(stmt));
}

bool db_column_is_null(struct db_stmt *stmt, int col)
{
	return stmt->ops->column_is_null(stmt, col);
}

int64_t db_column_int64(struct db_stmt *stmt, int col)
{
	return stmt->ops->column_int64(stmt, col);
}

const char *db_column_text(struct db_stmt *stmt, int col)
{
	return stmt->ops->column_text(stmt, col);
}

int64_t db_changes(struct db_stmt *stmt)
{
	return stmt->ops->changes(stmt);
}

void db_finalize(struct db_stmt *stmt)
{
	if (stmt != NULL)
		stmt->ops->finalize(stmt);
}

int db_begin(struct db *db)
{
	db->retriable = false;
	return db_note(db, db->ops->begin(db));
}

int db_commit(struct db *db)
{
	return db_note(db, db->ops->exec(db, "COMMIT"));
}

void db_rollback(struct db *db)
{
	bool retriable = db->retriable;

	db->ops->exec(db, "ROLLBACK");
	db->retriable = retriable; /* the reason to retry is the failure before */
}

int db_migrate_begin(struct db *db)
{
	db->retriable = false;
	return db_note(db, db->ops->migrate_begin(db));
}

int db_schema_version(struct db *db, int64_t *version)
{
	return db_note(db, db->ops->schema_version(db, version));
}

int db_set_schema_version(struct db *db, int64_t version)
{
	return db_note(db, db->ops->set_schema_version(db, version));
}
