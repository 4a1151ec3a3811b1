#include "fuzz_check.h"

#include <stdio.h>
#include <stdlib.h>

#include "copybuf.h"
#include "decode_json.h"
#include "utf8.h"

void fuzz_check_row(const struct decode_row *row, const bool *is_json, size_t ncolumns)
{
	struct copybuf cb;
	char err[512];
	bool is_nul;

	if (row->nfields != ncolumns) {
		fprintf(stderr, "row has %zu fields for %zu columns\n", row->nfields, ncolumns);
		abort();
	}
	for (size_t i = 0; i < row->nfields; i++) {
		const struct decode_field *f = &row->fields[i];

		if (f->is_null)
			continue;
		if (utf8_text_prefix(f->ptr, f->len, &is_nul) != f->len) {
			fprintf(stderr, "field %zu is not valid UTF-8 (or has NUL): %.*s\n", i,
				(int)(f->len > 200 ? 200 : f->len), f->ptr);
			abort();
		}
		if (is_json != NULL && is_json[i] && json_validate(f->ptr, f->len, err, sizeof(err)) < 0) {
			fprintf(stderr, "json field %zu is not JSON (%s): %.*s\n", i, err,
				(int)(f->len > 200 ? 200 : f->len), f->ptr);
			abort();
		}
	}
	copybuf_init(&cb, DECODE_ROW_MAX);
	(void)copybuf_append_row(&cb, row, err, sizeof(err));
	copybuf_free(&cb);
}
