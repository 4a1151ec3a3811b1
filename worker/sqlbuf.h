/* A growing SQL text, and the quoting of identifiers, without a connection.
 *
 * The first failure (out of memory, or the text growing past SQLBUF_MAX)
 * sticks: later appends do nothing and sqlbuf_take returns NULL, so a builder
 * checks once, at the end.  A struct sqlbuf starts zeroed ({ 0 }); it owns
 * its text until sqlbuf_take hands it over.
 */
#ifndef SS_WORKER_SQLBUF_H
#define SS_WORKER_SQLBUF_H

#include <stdbool.h>
#include <stddef.h>

/* Bounds the SQL text built from a job (column lists, MAPPING expressions). */
#define SQLBUF_MAX ((size_t)1 << 20)

struct sqlbuf {
	char *s;
	size_t len, cap;
	bool failed;
};

void sqlbuf_add_len(struct sqlbuf *sb, const char *s, size_t n);
void sqlbuf_add(struct sqlbuf *sb, const char *s);

/* Appends name as a quoted identifier: wrapped in double quotes, each double
 * quote doubled.  This is what PQescapeIdentifier produces for a name in
 * valid UTF-8 (the client encoding of every worker connection); libpq's
 * function also rejects invalid encoding, which cannot reach here: names come
 * from the catalog or from the job's YAML, which libyaml reads as UTF-8 only. */
void sqlbuf_ident(struct sqlbuf *sb, const char *name);

/* The text (the caller's, free()), or NULL when building failed; sb is empty
 * again either way. */
char *sqlbuf_take(struct sqlbuf *sb);

#endif
