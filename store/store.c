#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "store_impl.h"
#include "store_uri.h"

#define STORE_SCHEMA_VERSION 7

/* The schema, written once for both databases: "{ID}" is the id column's
 * type (db_dialect_id: AUTOINCREMENT in SQLite, an identity in PostgreSQL,
 * so that the id of a deleted row is never given to a new one: clients may
 * still hold it).  BIGINT is SQLite's INTEGER affinity and PostgreSQL's
 * 64 bits, which the counters need. */
static const char *const store_schema_v1 =
	"CREATE TABLE services ("
	" id {ID},"
	" name TEXT NOT NULL UNIQUE,"
	" description TEXT NOT NULL DEFAULT '',"
	" spec_cu INTEGER NOT NULL DEFAULT 8,"
	" database_host TEXT NOT NULL DEFAULT '127.0.0.1',"
	" database_port INTEGER NOT NULL DEFAULT 5432,"
	" status TEXT NOT NULL DEFAULT 'running',"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL);"
	"CREATE TABLE sources ("
	" id {ID},"
	" service_id BIGINT NOT NULL REFERENCES services(id),"
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
	" id {ID},"
	" source_id BIGINT NOT NULL REFERENCES sources(id),"
	" name TEXT NOT NULL UNIQUE,"
	" description TEXT NOT NULL DEFAULT '',"
	" mode TEXT NOT NULL,"
	" definition TEXT NOT NULL,"
	" desired_state TEXT NOT NULL DEFAULT 'stopped',"
	" state TEXT NOT NULL DEFAULT 'stopped',"
	" pid INTEGER NOT NULL DEFAULT 0,"
	" started_at TEXT,"
	" restarts INTEGER NOT NULL DEFAULT 0,"
	" messages_consumed BIGINT NOT NULL DEFAULT 0,"
	" rows_written BIGINT NOT NULL DEFAULT 0,"
	" rows_rejected BIGINT NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL);"
	"CREATE INDEX jobs_source_id ON jobs(source_id);";

/* Version 2: the counters at the user's last start (ERROR_LIMIT counts from
 * there, across restarts) and how the last worker ended. */
static const char *const store_schema_v2 =
	"ALTER TABLE jobs ADD COLUMN messages_at_start BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN rejected_at_start BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN last_exit TEXT;";

/* Version 3: lifetime counters of rows updated (of rows_written, existing
 * rows changed) and batches committed, kept like messages_consumed. */
static const char *const store_schema_v3 =
	"ALTER TABLE jobs ADD COLUMN rows_updated BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN batches BIGINT NOT NULL DEFAULT 0;";

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

/* Version 6: the cluster (store_cluster.c): the controllers sharing the
 * catalog, and what each says of the tasks it runs.  Times in ms since the
 * epoch by the database's clock. */
static const char *const store_schema_v6 =
	"CREATE TABLE controllers ("
	" name TEXT PRIMARY KEY,"
	" api_url TEXT NOT NULL,"
	" heartbeat_ms BIGINT NOT NULL,"
	" started_at TEXT NOT NULL,"
	" draining INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE task_status ("
	" job_id BIGINT NOT NULL,"
	" task INTEGER NOT NULL,"
	" controller TEXT NOT NULL,"
	" pid INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL,"
	" restarts INTEGER NOT NULL DEFAULT 0,"
	" partitions TEXT NOT NULL DEFAULT '[]',"
	" rows_per_second DOUBLE PRECISION NOT NULL DEFAULT 0,"
	" lag BIGINT,"
	" last_error TEXT,"
	" updated_ms BIGINT NOT NULL,"
	" PRIMARY KEY (job_id, task, controller));";

/* Version 7: a source's schema registry (FORMAT avro, framed json): its
 * base URLs ("url[,url...]") and HTTP basic auth; the password is a secret,
 * masked in the API like a Kafka SASL password. */
static const char *const store_schema_v7 =
	"ALTER TABLE sources ADD COLUMN schema_registry TEXT;"
	"ALTER TABLE sources ADD COLUMN schema_registry_user TEXT;"
	"ALTER TABLE sources ADD COLUMN schema_registry_password TEXT;";

/* store_schema[v] brings version v - 1 to v. */
static const char *const *const store_schema[] = {
	NULL, &store_schema_v1, &store_schema_v2, &store_schema_v3, &store_schema_v4,
	&store_schema_v5, &store_schema_v6, &store_schema_v7,
};

void store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int store_dberr(struct store *st, char *err, size_t errlen, const char *what)
{
	store_seterr(err, errlen, "database %s failed: %s", what, db_errmsg(st->db));
	return STORE_ERROR;
}

void store_now(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct db_stmt *store_prepare(struct store *st, const char *sql, char *err, size_t errlen)
{
	struct db_stmt *stmt = db_prepare(st->db, sql);

	if (stmt == NULL)
		store_dberr(st, err, errlen, "prepare");
	return stmt;
}

int store_query_int(struct store *st, const char *sql, int nparams, int64_t a, int64_t b,
		    int64_t *out, char *err, size_t errlen)
{
	struct db_stmt *stmt = store_prepare(st, sql, err, errlen);
	int rc;

	if (stmt == NULL)
		return STORE_ERROR;
	if (nparams >= 1)
		db_bind_int64(stmt, 1, a);
	if (nparams >= 2)
		db_bind_int64(stmt, 2, b);
	rc = db_step(stmt);
	if (rc == DB_ROW) {
		*out = db_column_int64(stmt, 0);
		rc = 0;
	} else if (rc == DB_DONE) {
		rc = STORE_NOT_FOUND;
	} else {
		rc = store_dberr(st, err, errlen, "query");
	}
	db_finalize(stmt);
	return rc;
}

int store_tx_begin(struct store *st, char *err, size_t errlen)
{
	if (db_begin(st->db) < 0)
		return store_dberr(st, err, errlen, "begin");
	return 0;
}

bool store_tx_again(struct store *st, int *rc, int attempt, char *err, size_t errlen)
{
	if (*rc == 0 && db_commit(st->db) < 0)
		*rc = store_dberr(st, err, errlen, "commit");
	if (*rc == 0)
		return false;
	db_rollback(st->db);
	if (*rc != STORE_ERROR || !db_retriable(st->db) || attempt + 1 >= STORE_TX_ATTEMPTS)
		return false; /* err says why */
	log_debug("store: a transaction lost to another controller's (%s); running it again",
		  db_errmsg(st->db));
	/* 1, 2, 4 ... ms: the other controller's transaction is short. */
	usleep(1000u << attempt);
	return true;
}

/* ---- opening ---- */

char *store_subst(const char *sql, const char *token, const char *value)
{
	size_t n = 0, tlen = strlen(token), vlen = strlen(value);
	char *out, *o;

	for (const char *p = strstr(sql, token); p != NULL; p = strstr(p + tlen, token))
		n++;
	out = malloc(strlen(sql) + n * vlen + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (const char *p = sql;;) {
		const char *t = strstr(p, token);

		if (t == NULL) {
			strcpy(o, p);
			break;
		}
		memcpy(o, p, (size_t)(t - p));
		o += t - p;
		memcpy(o, value, vlen);
		o += vlen;
		p = t + tlen;
	}
	return out;
}

/* The DDL with the dialect's pieces filled in; malloc'd. */
static char *store_ddl(struct store *st, const char *sql)
{
	return store_subst(sql, "{ID}", db_dialect_id(st->db));
}

static int store_migrate_locked(struct store *st, char *err, size_t errlen)
{
	int64_t version = 0;

	if (db_schema_version(st->db, &version) < 0)
		return store_dberr(st, err, errlen, "read of the schema version");
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (version > STORE_SCHEMA_VERSION) {
		store_seterr(err, errlen,
			     "the database has schema version %" PRId64
			     ", newer than this streamserver knows (%d); use a newer streamserver",
			     version, STORE_SCHEMA_VERSION);
		return STORE_ERROR;
	}
	/* Version 0 is an empty database; each step brings it one version up. */
	for (int64_t v = version + 1; v <= STORE_SCHEMA_VERSION; v++) {
		char *sql = store_ddl(st, *store_schema[v]);
		int rc;

		if (sql == NULL) {
			store_seterr(err, errlen, "out of memory");
			return STORE_ERROR;
		}
		rc = db_exec(st->db, sql);
		free(sql);
		if (rc < 0) {
			store_seterr(err, errlen, "database migration to schema version %" PRId64
				     " failed: %s", v, db_errmsg(st->db));
			return STORE_ERROR;
		}
	}
	if (db_set_schema_version(st->db, STORE_SCHEMA_VERSION) < 0)
		return store_dberr(st, err, errlen, "write of the schema version");
	return 0;
}

/* Creates or brings up the schema in one transaction; on PostgreSQL under
 * an advisory lock, so that controllers starting together on one catalog
 * migrate it once, one after the other. */
static int store_migrate(struct store *st, char *err, size_t errlen)
{
	int rc;

	if (db_migrate_begin(st->db) < 0) {
		rc = store_dberr(st, err, errlen, "lock for the schema migration");
		db_rollback(st->db);
		return STORE_ERROR;
	}
	rc = store_migrate_locked(st, err, errlen);
	if (rc == 0 && db_commit(st->db) < 0)
		rc = store_dberr(st, err, errlen, "commit of the schema migration");
	if (rc != 0) {
		db_rollback(st->db);
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

/* Connects to the catalog uri names (DIR/streamserver.db when it names no
 * file). */
static int store_connect(struct store *st, const char *dir, const struct store_uri *uri,
			 char *err, size_t errlen)
{
	char *path = NULL;
	size_t len;
	int rc;

	if (uri->kind == STORE_URI_PG)
		return db_open_pg(uri->conninfo, uri->schema, &st->db, err, errlen) < 0 ? STORE_ERROR
											 : 0;
	if (uri->path != NULL)
		return db_open_sqlite(uri->path, &st->db, err, errlen) < 0 ? STORE_ERROR : 0;
	len = strlen(dir) + sizeof("/streamserver.db");
	path = malloc(len);
	if (path == NULL) {
		store_seterr(err, errlen, "out of memory");
		return STORE_ERROR;
	}
	snprintf(path, len, "%s/streamserver.db", dir);
	rc = db_open_sqlite(path, &st->db, err, errlen) < 0 ? STORE_ERROR : 0;
	free(path);
	return rc;
}

int store_open_uri(const char *dir, const char *uri_text, struct store **out, char *err,
		   size_t errlen)
{
	struct store_uri uri;
	struct store *st = NULL;
	int rc = STORE_ERROR;

	*out = NULL;
	memset(&uri, 0, sizeof(uri));
	if (store_uri_parse(uri_text, &uri, err, errlen) < 0)
		return STORE_INVALID;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		store_seterr(err, errlen, "cannot create data directory %s: %s", dir,
			     strerror(errno));
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		store_seterr(err, errlen, "out of memory");
		goto out;
	}
	st->dir_fd = -1;
	pthread_mutex_init(&st->lock, NULL);
	if ((rc = store_lock_dir(dir, &st->dir_fd, err, errlen)) < 0)
		goto out;
	if ((rc = store_connect(st, dir, &uri, err, errlen)) < 0)
		goto out;
	if ((rc = store_migrate(st, err, errlen)) < 0)
		goto out;
	*out = st;
	st = NULL;
	rc = 0;
out:
	store_close(st);
	store_uri_free(&uri);
	return rc;
}

int store_open(const char *dir, struct store **out, char *err, size_t errlen)
{
	return store_open_uri(dir, NULL, out, err, errlen);
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	db_close(st->db);
	if (st->dir_fd >= 0)
		close(st->dir_fd); /* releases the data directory, after the database */
	pthread_mutex_destroy(&st->lock);
	free(st);
}
