/* Aligned tables for streamctl (see ctl_table.h). */
#include "ctl_table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct ctl_table {
	size_t ncols;
	char *headers[CTL_TABLE_COLS];
	bool right[CTL_TABLE_COLS];
	char **cells; /* nrows * ncols */
	size_t nrows, cap;
};

static char *ctl_cell_dup(const char *s)
{
	size_t n;
	char *out;

	if (s == NULL)
		s = "-";
	n = strlen(s);
	if (n > CTL_CELL_MAX)
		n = CTL_CELL_MAX;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	/* A cell is one line: tabs and line breaks in names or errors would
	 * break the columns. */
	for (size_t i = 0; i < n; i++)
		if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t')
			out[i] = ' ';
	if (strlen(s) > CTL_CELL_MAX)
		memcpy(out + n - 3, "...", 3);
	return out;
}

struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers)
{
	struct ctl_table *t;

	if (ncols == 0 || ncols > CTL_TABLE_COLS)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	for (size_t i = 0; i < ncols; i++) {
		const char *h = headers[i];
		if (h[0] == '>') {
			t->right[i] = true;
			h++;
		}
		t->headers[i] = ctl_cell_dup(h);
		if (t->headers[i] == NULL) {
			ctl_table_free(t);
			return NULL;
		}
	}
	return t;
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t ncap = t->cap == 0 ? 16 : t->cap * 2;
		char **nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));
		if (nc == NULL)
			return -1;
		t->cells = nc;
		t->cap = ncap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *c = ctl_cell_dup(cells[i]);
		if (c == NULL) {
			for (size_t j = 0; j < i; j++)
				free(t->cells[t->nrows * t->ncols + j]);
			return -1;
		}
		t->cells[t->nrows * t->ncols + i] = c;
	}
	t->nrows++;
	return 0;
}

static void ctl_table_line(const struct ctl_table *t, char *const *row, const size_t *width,
			   FILE *f)
{
	for (size_t i = 0; i < t->ncols; i++) {
		bool last = i + 1 == t->ncols;
		if (t->right[i])
			fprintf(f, "%*s", (int)width[i], row[i]);
		else if (last)
			fputs(row[i], f);
		else
			fprintf(f, "%-*s", (int)width[i], row[i]);
		fputs(last ? "\n" : "  ", f);
	}
}

void ctl_table_print(const struct ctl_table *t, FILE *f)
{
	size_t width[CTL_TABLE_COLS] = {0};

	for (size_t i = 0; i < t->ncols; i++)
		width[i] = strlen(t->headers[i]);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t n = strlen(t->cells[r * t->ncols + i]);
			if (n > width[i])
				width[i] = n;
		}
	ctl_table_line(t, t->headers, width, f);
	for (size_t r = 0; r < t->nrows; r++)
		ctl_table_line(t, t->cells + r * t->ncols, width, f);
}

void ctl_table_free(struct ctl_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->ncols; i++)
		free(t->headers[i]);
	for (size_t k = 0; k < t->nrows * t->ncols; k++)
		free(t->cells[k]);
	free(t->cells);
	free(t);
}
