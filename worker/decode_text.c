#include "decode_text.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

struct text_decoder {
	char *delim;
	size_t delim_len;
	int quote;  /* -1: none */
	int escape; /* -1: none */
	/* Delimited: ESCAPE works everywhere.  CSV: only inside quotes, as in
	 * PostgreSQL's COPY CSV. */
	bool escape_outside_quotes;
	char *null_string; /* NULL: none */
	size_t null_len;
	size_t ncolumns;
	struct decode_field *fields; /* ncolumns entries */
	char *scratch;               /* unquoted/unescaped field text */
	size_t scratch_cap;
};

/* QUOTE and ESCAPE are one character; YAML gives strings. */
static int text_opt_char(const char *value, const char *what, int *out, char *err, size_t errlen)
{
	*out = -1;
	if (value == NULL || value[0] == '\0')
		return 0;
	if (value[1] != '\0') {
		snprintf(err, errlen, "%s must be a single character, got \"%s\"", what, value);
		return -1;
	}
	*out = (unsigned char)value[0];
	return 0;
}

struct text_decoder *text_decoder_new(const struct js_input *in, char *err, size_t errlen)
{
	struct text_decoder *td = NULL;
	const char *delim, *quote;
	const char *opt = "DELIMITED_OPTION";

	if (in->format != JS_FORMAT_DELIMITED && in->format != JS_FORMAT_CSV) {
		snprintf(err, errlen, "FORMAT is required: delimited, csv, json or protobuf");
		goto fail;
	}
	if (in->ncolumns == 0) {
		snprintf(err, errlen, "COLUMNS is empty: list the message's fields in order");
		goto fail;
	}
	td = calloc(1, sizeof(*td));
	if (td == NULL)
		goto oom;
	td->ncolumns = in->ncolumns;

	delim = in->delimiter;
	quote = in->quote;
	if (in->format == JS_FORMAT_CSV) {
		opt = "CSV_OPTION";
		if (delim == NULL || delim[0] == '\0')
			delim = ",";
		if (quote == NULL || quote[0] == '\0')
			quote = "\"";
		if (strlen(delim) != 1) {
			snprintf(err, errlen, "CSV_OPTION.DELIMITER must be a single character, got \"%s\"", delim);
			goto fail;
		}
	} else if (delim == NULL || delim[0] == '\0') {
		snprintf(err, errlen, "DELIMITED_OPTION.DELIMITER is required and must not be empty");
		goto fail;
	}
	td->escape_outside_quotes = in->format == JS_FORMAT_DELIMITED;

	{
		char what[64];
		snprintf(what, sizeof(what), "%s.QUOTE", opt);
		if (text_opt_char(quote, what, &td->quote, err, errlen) < 0)
			goto fail;
		snprintf(what, sizeof(what), "%s.ESCAPE", opt);
		if (text_opt_char(in->escape, what, &td->escape, err, errlen) < 0)
			goto fail;
	}
	if (td->quote >= 0 && memchr(delim, td->quote, strlen(delim)) != NULL) {
		snprintf(err, errlen, "%s.QUOTE must not appear in the DELIMITER", opt);
		goto fail;
	}
	if (td->escape >= 0 && memchr(delim, td->escape, strlen(delim)) != NULL) {
		snprintf(err, errlen, "%s.ESCAPE must not appear in the DELIMITER", opt);
		goto fail;
	}

	td->delim = strdup(delim);
	td->delim_len = strlen(delim);
	if (in->null_string != NULL) {
		td->null_string = strdup(in->null_string);
		td->null_len = strlen(in->null_string);
		if (td->null_string == NULL)
			goto oom;
	}
	td->fields = calloc(in->ncolumns, sizeof(*td->fields));
	if (td->delim == NULL || td->fields == NULL)
		goto oom;
	return td;

oom:
	snprintf(err, errlen, "out of memory");
fail:
	text_decoder_free(td);
	return NULL;
}

void text_decoder_free(struct text_decoder *td)
{
	if (td == NULL)
		return;
	free(td->delim);
	free(td->null_string);
	free(td->fields);
	free(td->scratch);
	free(td);
}

static bool text_delim_at(const struct text_decoder *td, const char *buf, size_t len, size_t pos)
{
	return len - pos >= td->delim_len && buf[pos] == td->delim[0] &&
	       memcmp(buf + pos, td->delim, td->delim_len) == 0;
}

static int text_reserve(struct text_decoder *td, size_t len, char *err, size_t errlen)
{
	char *p;
	size_t cap;

	if (len <= td->scratch_cap)
		return 0;
	cap = td->scratch_cap ? td->scratch_cap : 256;
	while (cap < len)
		cap *= 2;
	p = realloc(td->scratch, cap);
	if (p == NULL) {
		snprintf(err, errlen, "out of memory decoding a %zu-byte message", len);
		return -1;
	}
	td->scratch = p;
	td->scratch_cap = cap;
	return 0;
}

int text_decoder_decode(struct text_decoder *td, const char *buf, size_t len, struct decode_row *row, char *err,
			size_t errlen)
{
	size_t pos = 0, used = 0, nf = 0, bad;
	bool is_nul;

	row->fields = td->fields;
	row->nfields = 0;
	if (len > DECODE_MESSAGE_MAX) {
		snprintf(err, errlen, "message is %zu bytes, more than the %zu-byte limit", len,
			 DECODE_MESSAGE_MAX);
		return -1;
	}
	bad = utf8_text_prefix(buf, len, &is_nul);
	if (bad < len) {
		if (is_nul)
			snprintf(err, errlen, "NUL byte at byte %zu of the message; PostgreSQL text cannot hold it", bad);
		else
			snprintf(err, errlen, "invalid UTF-8 at byte %zu of the message (byte value 0x%02x)", bad,
				 (unsigned char)buf[bad]);
		return -1;
	}
	/* Producers often end a line-oriented message with a newline. */
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	/* Unquoting and unescaping only shrink text: len bytes of scratch suffice. */
	if (text_reserve(td, len, err, errlen) < 0)
		return -1;

	for (;;) {
		struct decode_field f = { 0 };
		size_t start = pos;

		if (td->quote >= 0 && pos < len && (unsigned char)buf[pos] == td->quote) {
			char *out = td->scratch + used;
			size_t olen = 0;
			bool closed = false;

			pos++;
			while (pos < len) {
				unsigned char c = (unsigned char)buf[pos];
				if (td->escape >= 0 && c == td->escape && td->escape != td->quote) {
					if (pos + 1 >= len) {
						snprintf(err, errlen, "field %zu: escape character at the end of the message",
							 nf + 1);
						return -1;
					}
					out[olen++] = buf[pos + 1];
					pos += 2;
					continue;
				}
				if (c == td->quote) {
					if (pos + 1 < len && (unsigned char)buf[pos + 1] == td->quote) {
						out[olen++] = (char)c;
						pos += 2;
						continue;
					}
					pos++;
					closed = true;
					break;
				}
				out[olen++] = (char)c;
				pos++;
			}
			if (!closed) {
				snprintf(err, errlen, "field %zu: quote opened at byte %zu is never closed", nf + 1,
					 start);
				return -1;
			}
			if (pos < len && !text_delim_at(td, buf, len, pos)) {
				snprintf(err, errlen,
					 "field %zu: unexpected character '%c' at byte %zu after the closing quote; "
					 "expected the delimiter",
					 nf + 1, buf[pos], pos);
				return -1;
			}
			used += olen;
			f.ptr = out;
			f.len = olen; /* a quoted empty field is the empty string, not NULL */
		} else {
			bool escaped = false;

			while (pos < len && !text_delim_at(td, buf, len, pos)) {
				if (td->escape_outside_quotes && td->escape >= 0 &&
				    (unsigned char)buf[pos] == td->escape) {
					if (pos + 1 >= len) {
						snprintf(err, errlen, "field %zu: escape character at the end of the message",
							 nf + 1);
						return -1;
					}
					escaped = true;
					pos += 2;
					continue;
				}
				pos++;
			}
			if (pos == start ||
			    (td->null_string != NULL && pos - start == td->null_len &&
			     memcmp(buf + start, td->null_string, td->null_len) == 0)) {
				f.is_null = true;
			} else if (escaped) {
				char *out = td->scratch + used;
				size_t i, olen = 0;

				for (i = start; i < pos; i++) {
					if ((unsigned char)buf[i] == td->escape)
						i++;
					out[olen++] = buf[i];
				}
				used += olen;
				f.ptr = out;
				f.len = olen;
			} else {
				f.ptr = buf + start;
				f.len = pos - start;
			}
		}

		if (nf < td->ncolumns)
			td->fields[nf] = f;
		nf++;
		if (pos >= len)
			break;
		pos += td->delim_len; /* at a delimiter: another field follows, maybe empty */
	}

	if (nf != td->ncolumns) {
		snprintf(err, errlen, "expected %zu fields, got %zu", td->ncolumns, nf);
		return -1;
	}
	row->nfields = nf;
	return 0;
}
