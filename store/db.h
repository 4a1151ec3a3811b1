/* The store's database layer: one small interface over SQLite and libpq, so
 * that store.c writes each query once.
 *
 * SQL is written in the dialect both accept, with SQLite's placeholders
 * ("?", "?NNN"); the PostgreSQL side turns them into $n.  Where the two
 * differ the layer supplies the piece: the id column of a table
 * (db_dialect_id), the schema version (PRAGMA user_version / a table), the
 * transaction that migrates (BEGIN IMMEDIATE / an advisory lock).
 *
 * Not thread-safe: the caller (the store) serializes every call on one
 * handle with its own mutex.
 *
 * Errors: db_step, db_exec, db_begin and db_commit return DB_ERROR,
 * DB_UNIQUE, DB_FOREIGN_KEY or DB_RETRY (negative); db_errmsg() then says
 * what happened, never with a password in it.
 */
#ifndef SS_DB_H
#define SS_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_ROW 1
#define DB_DONE 0
#define DB_ERROR (-1)
#define DB_UNIQUE (-2)      /* a UNIQUE constraint (a name taken) */
#define DB_FOREIGN_KEY (-3) /* a REFERENCES constraint */
#define DB_RETRY (-4)       /* serialization failure or deadlock: run the transaction again */

/* The most parameters one statement takes. */
#define DB_PARAMS_MAX 32

enum db_kind {
	DB_SQLITE,
	DB_PG,
};

struct db;
struct db_stmt;

/* The SQLite file at path (created 0600 if missing; WAL journal, foreign
 * keys on). */
int db_open_sqlite(const char *path, struct db **out, char *err, size_t errlen);

/* A PostgreSQL connection (conninfo: a libpq URI or key=value string, with
 * no parameter of ours left in it) whose tables live in schema, created by
 * db_migrate_begin when missing. */
int db_open_pg(const char *conninfo, const char *schema, struct db **out, char *err,
	       size_t errlen);

/* Accepts NULL. */
void db_close(struct db *db);

enum db_kind db_kind_of(const struct db *db);

/* The last error's message; valid until the next call on the handle. */
const char *db_errmsg(struct db *db);

/* Whether the last failure was a serialization failure or a deadlock. */
bool db_retriable(struct db *db);

/* The type of a table's id column: an integer given by the database, never
 * given again after its row is deleted (clients may still hold it). */
const char *db_dialect_id(const struct db *db);

/* Runs one or more statements without parameters or results. */
int db_exec(struct db *db, const char *sql);

/* NULL with db_errmsg() set on failure.  The statement runs at the first
 * db_step, with the values bound then; unbound parameters are NULL. */
struct db_stmt *db_prepare(struct db *db, const char *sql);
int db_bind_int64(struct db_stmt *stmt, int idx, int64_t value);
/* value NULL binds a NULL of type text; the string is copied. */
int db_bind_text(struct db_stmt *stmt, int idx, const char *value);
/* A NULL of no stated type (for a column of any type). */
int db_bind_null(struct db_stmt *stmt, int idx);
/* DB_ROW (a row to read), DB_DONE, or a negative error. */
int db_step(struct db_stmt *stmt);
bool db_column_is_null(struct db_stmt *stmt, int col);
int64_t db_column_int64(struct db_stmt *stmt, int col);
/* NULL for SQL NULL; valid until the next db_step or db_finalize. */
const char *db_column_text(struct db_stmt *stmt, int col);
/* Rows the statement inserted, changed or deleted (after DB_DONE). */
int64_t db_changes(struct db_stmt *stmt);
/* Accepts NULL. */
void db_finalize(struct db_stmt *stmt);

/* A transaction: SQLite BEGIN IMMEDIATE; PostgreSQL SERIALIZABLE, so that
 * checks and writes made by several controllers at once stay consistent
 * (one of them gets DB_RETRY). */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* The transaction that creates or migrates the schema: on PostgreSQL it
 * takes an advisory lock (held until commit or rollback) so that
 * controllers starting together migrate one after the other, and creates the
 * schema and its version table when missing. */
int db_migrate_begin(struct db *db);
/* The schema's version: 0 for an empty database. */
int db_schema_version(struct db *db, int64_t *version);
int db_set_schema_version(struct db *db, int64_t version);

#endif
