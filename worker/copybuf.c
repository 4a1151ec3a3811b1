#include "copybuf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void copybuf_init(struct copybuf *cb, size_t max)
{
	memset(cb, 0, sizeof(*cb));
	cb->max = max;
}

void copybuf_reset(struct copybuf *cb)
{
	cb->len = 0;
}

void copybuf_free(struct copybuf *cb)
{
	free(cb->data);
	cb->data = NULL;
	cb->len = cb->cap = 0;
}

static bool copy_needs_escape(unsigned char c)
{
	return c == '\\' || c == '\n' || c == '\r' || c == '\t';
}

int copybuf_append_row(struct copybuf *cb, const struct decode_row *row, char *err, size_t errlen)
{
	size_t need = 0, i, j;
	char *p;

	for (i = 0; i < row->nfields; i++) {
		const struct decode_field *f = &row->fields[i];
		need += 1; /* tab or newline after the field */
		if (f->is_null) {
			need += 2;
			continue;
		}
		need += f->len;
		for (j = 0; j < f->len; j++)
			if (copy_needs_escape((unsigned char)f->ptr[j]))
				need++;
	}
	if (row->nfields == 0)
		need = 1;
	if (need > cb->max - cb->len) {
		snprintf(err, errlen, "row of %zu bytes does not fit in the %zu-byte batch buffer", need, cb->max);
		return -1;
	}
	if (cb->len + need > cb->cap) {
		size_t cap = cb->cap ? cb->cap : 65536;
		while (cap < cb->len + need)
			cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
		if (cap > cb->max)
			cap = cb->max;
		p = realloc(cb->data, cap);
		if (p == NULL) {
			snprintf(err, errlen, "out of memory growing the batch buffer to %zu bytes", cap);
			return -1;
		}
		cb->data = p;
		cb->cap = cap;
	}

	p = cb->data + cb->len;
	for (i = 0; i < row->nfields; i++) {
		const struct decode_field *f = &row->fields[i];
		if (i > 0)
			*p++ = '\t';
		if (f->is_null) {
			*p++ = '\\';
			*p++ = 'N';
			continue;
		}
		for (j = 0; j < f->len; j++) {
			unsigned char c = (unsigned char)f->ptr[j];
			if (!copy_needs_escape(c)) {
				*p++ = (char)c;
				continue;
			}
			*p++ = '\\';
			*p++ = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\';
		}
	}
	*p++ = '\n';
	cb->len = (size_t)(p - cb->data);
	return 0;
}
