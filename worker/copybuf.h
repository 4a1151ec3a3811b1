/* A growing buffer of COPY ... FROM STDIN text-format data, with a cap: the
 * rows of one batch as the sink sends them.
 *
 * Ownership: the buffer owns data; copybuf_free() releases it and accepts a
 * zeroed struct.  The rows appended are copied; they may go afterwards.
 */
#ifndef SS_WORKER_COPYBUF_H
#define SS_WORKER_COPYBUF_H

#include <stddef.h>

#include "row.h"

struct copybuf {
	char *data;
	size_t len;
	size_t cap; /* allocated */
	size_t max; /* never grows past this */
};

void copybuf_init(struct copybuf *cb, size_t max);
void copybuf_reset(struct copybuf *cb); /* empties it, keeps the memory */
void copybuf_free(struct copybuf *cb);  /* accepts a zeroed struct */

/* Appends the row as one COPY text line: fields separated by tab, NULL as \N,
 * backslash, newline, carriage return and tab escaped, ending in a newline.
 * Returns 0, or -1 with err filled when the cap would be passed or memory runs
 * out; the buffer then holds exactly what it held before. */
int copybuf_append_row(struct copybuf *cb, const struct decode_row *row, char *err, size_t errlen);

#endif
