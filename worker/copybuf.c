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

#define COPY_ONES 0x0101010101010101ULL
#define COPY_HIGHS 0x8080808080808080ULL

/* Non-zero when some byte of w is zero (exact as a yes/no). */
static uint64_t copy_zero_byte(uint64_t w)
{
	return (w - COPY_ONES) & ~w & COPY_HIGHS;
}

/* How many bytes of p[0, n) copy_needs_escape: eight bytes at a time where
 * none is one of the four (perf: the byte loop was the worker's first item). */
static size_t copy_escapes(const char *p, size_t n)
{
	size_t i = 0, j, k = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if ((copy_zero_byte(w ^ (COPY_ONES * '\\')) | copy_zero_byte(w ^ (COPY_ONES * '\n')) |
		     copy_zero_byte(w ^ (COPY_ONES * '\r')) | copy_zero_byte(w ^ (COPY_ONES * '\t'))) == 0)
			continue;
		for (j = i; j < i + 8; j++)
			k += copy_needs_escape((unsigned char)p[j]);
	}
	for (; i < n; i++)
		k += copy_needs_escape((unsigned char)p[i]);
	return k;
}

int copybuf_append_row(struct copybuf *cb, const struct decode_row *row, char *err, size_t errlen)
{
	size_t need = 0, escapes = 0, i, j;
	char *p;

	for (i = 0; i < row->nfields; i++) {
		const struct decode_field *f = &row->fields[i];
		need += 1; /* tab or newline after the field */
		if (f->is_null) {
			need += 2;
			continue;
		}
		need += f->len;
		escapes += copy_escapes(f->ptr, f->len);
	}
	need += escapes;
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
		if (escapes == 0) { /* the common case: nothing to escape in the row */
			if (f->len > 0)
				memcpy(p, f->ptr, f->len);
			p += f->len;
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
