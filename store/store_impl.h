/* What store.c, store_rows.c and store_job.c share: the handle and the
 * helpers every statement uses.  Private to store/store*.c.
 *
 * "_locked" functions run with st->lock held; the public functions take it. */
#ifndef SS_STORE_IMPL_H
#define SS_STORE_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "db.h"

/* store.h is not included (store.c includes this file: no include circle);
 * the .c files include it first. */
struct store;

/* How many times a transaction that lost to another controller
 * (PostgreSQL's serialization failures, deadlocks) runs. */
#define STORE_TX_ATTEMPTS 8

struct store {
	struct db *db;
	pthread_mutex_t lock;
	int dir_fd; /* DIR/streamserver.lock, flock()ed for the store's lifetime */
};

void store_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* STORE_ERROR with err saying what failed (db_retriable() tells whether
 * running the transaction again may help). */
int store_dberr(struct store *st, char *err, size_t errlen, const char *what);

/* Now as ISO-8601 UTC text ("2026-12-07T12:00:00Z"), the same in both
 * backends so that the API answers alike. */
void store_now(char *buf, size_t len);

/* sql with every token replaced by value; malloc'd (NULL: out of memory). */
char *store_subst(const char *sql, const char *token, const char *value);

struct db_stmt *store_prepare(struct store *st, const char *sql, char *err, size_t errlen);

/* One integer from a query with nparams (0..2) integer parameters a, b.
 * STORE_NOT_FOUND when it gives no row. */
int store_query_int(struct store *st, const char *sql, int nparams, int64_t a, int64_t b,
		    int64_t *out, char *err, size_t errlen);

/* A transaction around a check and its write:
 *   for (attempt = 0;; attempt++) {
 *           rc = store_tx_begin(st, err, errlen);
 *           if (rc == 0) rc = ...;
 *           if (!store_tx_again(st, &rc, attempt, err, errlen)) break;
 *   }
 * store_tx_again commits (rc 0) or rolls back, and says whether to run the
 * body again (it failed, or the commit did, with a serialization failure);
 * rc ends as the body's or the commit's result. */
int store_tx_begin(struct store *st, char *err, size_t errlen);
bool store_tx_again(struct store *st, int *rc, int attempt, char *err, size_t errlen);

/* The row as a cJSON object (see store.h); kind is an enum store_kind. */
int store_row_get_locked(struct store *st, int kind, int64_t id, cJSON **out,
			 char *err, size_t errlen);

/* A job row holds the password in its definition: wipes it, then frees. */
void store_job_row_free(cJSON *job);

#endif
