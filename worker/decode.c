#include "decode.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode_json.h"
#include "decode_pb.h"
#include "utf8.h"

struct decoder {
	enum js_format format;
	struct json_decoder *json; /* FORMAT json */
	struct pb_decoder *pb;     /* FORMAT protobuf */
	/* The rest is for delimited and CSV. */
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
static int decoder_opt_char(const char *value, const char *what, int *out, char *err, size_t errlen)
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

struct decoder *decoder_new(const struct js_input *in, char *err, size_t errlen)
{
	struct decoder *dec = NULL;
	const char *delim, *quote;
	const char *opt = "DELIMITED_OPTION";

	if (in->format == JS_FORMAT_JSON || in->format == JS_FORMAT_PROTOBUF) {
		dec = calloc(1, sizeof(*dec));
		if (dec == NULL)
			goto oom;
		dec->format = in->format;
		if (in->format == JS_FORMAT_JSON)
			dec->json = json_decoder_new(in, err, errlen);
		else
			dec->pb = pb_decoder_new(in, err, errlen);
		if (dec->json == NULL && dec->pb == NULL)
			goto fail;
		return dec;
	}
	if (in->format != JS_FORMAT_DELIMITED && in->format != JS_FORMAT_CSV) {
		snprintf(err, errlen, "FORMAT is required: delimited, csv, json or protobuf");
		goto fail;
	}
	if (in->ncolumns == 0) {
		snprintf(err, errlen, "COLUMNS is empty: list the message's fields in order");
		goto fail;
	}
	dec = calloc(1, sizeof(*dec));
	if (dec == NULL)
		goto oom;
	dec->format = in->format;
	dec->ncolumns = in->ncolumns;

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
	dec->escape_outside_quotes = in->format == JS_FORMAT_DELIMITED;

	{
		char what[64];
		snprintf(what, sizeof(what), "%s.QUOTE", opt);
		if (decoder_opt_char(quote, what, &dec->quote, err, errlen) < 0)
			goto fail;
		snprintf(what, sizeof(what), "%s.ESCAPE", opt);
		if (decoder_opt_char(in->escape, what, &dec->escape, err, errlen) < 0)
			goto fail;
	}
	if (dec->quote >= 0 && memchr(delim, dec->quote, strlen(delim)) != NULL) {
		snprintf(err, errlen, "%s.QUOTE must not appear in the DELIMITER", opt);
		goto fail;
	}
	if (dec->escape >= 0 && memchr(delim, dec->escape, strlen(delim)) != NULL) {
		snprintf(err, errlen, "%s.ESCAPE must not appear in the DELIMITER", opt);
		goto fail;
	}

	dec->delim = strdup(delim);
	dec->delim_len = strlen(delim);
	if (in->null_string != NULL) {
		dec->null_string = strdup(in->null_string);
		dec->null_len = strlen(in->null_string);
		if (dec->null_string == NULL)
			goto oom;
	}
	dec->fields = calloc(in->ncolumns, sizeof(*dec->fields));
	if (dec->delim == NULL || dec->fields == NULL)
		goto oom;
	return dec;

oom:
	snprintf(err, errlen, "out of memory");
fail:
	decoder_free(dec);
	return NULL;
}

void decoder_free(struct decoder *dec)
{
	if (dec == NULL)
		return;
	json_decoder_free(dec->json);
	pb_decoder_free(dec->pb);
	free(dec->delim);
	free(dec->null_string);
	free(dec->fields);
	free(dec->scratch);
	free(dec);
}

bool decode_column_is_json(const struct js_column *col)
{
	const char *t = col->type;
	size_t n;

	if (t == NULL)
		return false;
	while (*t == ' ' || *t == '\t')
		t++;
	n = strlen(t);
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	return (n == 4 && strncasecmp(t, "json", 4) == 0) || (n == 5 && strncasecmp(t, "jsonb", 5) == 0);
}

int decode_meta_json(struct textbuf *tb, const char *topic, int32_t partition, int64_t offset, bool has_timestamp,
		     int64_t timestamp_ms, const char *key, size_t keylen, char *err, size_t errlen)
{
	bool is_nul;

	textbuf_reset(tb);
	textbuf_puts(tb, "{\"topic\":");
	textbuf_json_string(tb, topic, strlen(topic));
	textbuf_printf(tb, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"timestamp\":", partition, offset);
	if (has_timestamp)
		textbuf_printf(tb, "%" PRId64, timestamp_ms);
	else
		textbuf_puts(tb, "null");
	textbuf_puts(tb, ",\"key\":");
	if (key == NULL) {
		textbuf_puts(tb, "null");
	} else if (decode_utf8_check(key, keylen, &is_nul) == keylen) {
		textbuf_json_string(tb, key, keylen);
	} else {
		textbuf_puts(tb, "null,\"key_base64\":\"");
		textbuf_base64(tb, key, keylen);
		textbuf_putc(tb, '"');
	}
	textbuf_putc(tb, '}');
	if (textbuf_failed(tb)) {
		textbuf_error(tb, err, errlen);
		return -1;
	}
	return 0;
}

size_t decode_utf8_check(const char *buf, size_t len, bool *is_nul)
{
	size_t i = 0, n;

	*is_nul = false;
	while (i < len) {
		if (buf[i] == '\0') {
			*is_nul = true;
			return i;
		}
		n = utf8_seq_len(buf + i, len - i);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}

static bool decoder_delim_at(const struct decoder *dec, const char *buf, size_t len, size_t pos)
{
	return len - pos >= dec->delim_len && buf[pos] == dec->delim[0] &&
	       memcmp(buf + pos, dec->delim, dec->delim_len) == 0;
}

static int decoder_reserve(struct decoder *dec, size_t len, char *err, size_t errlen)
{
	char *p;
	size_t cap;

	if (len <= dec->scratch_cap)
		return 0;
	cap = dec->scratch_cap ? dec->scratch_cap : 256;
	while (cap < len)
		cap *= 2;
	p = realloc(dec->scratch, cap);
	if (p == NULL) {
		snprintf(err, errlen, "out of memory decoding a %zu-byte message", len);
		return -1;
	}
	dec->scratch = p;
	dec->scratch_cap = cap;
	return 0;
}

int decoder_decode(struct decoder *dec, const char *buf, size_t len, struct decode_row *row,
		   char *err, size_t errlen)
{
	size_t pos = 0, used = 0, nf = 0, bad;
	bool is_nul;

	if (dec->json != NULL)
		return json_decoder_decode(dec->json, buf, len, row, err, errlen);
	if (dec->pb != NULL)
		return pb_decoder_decode(dec->pb, buf, len, row, err, errlen);
	row->fields = dec->fields;
	row->nfields = 0;
	if (len > DECODE_MESSAGE_MAX) {
		snprintf(err, errlen, "message is %zu bytes, more than the %zu-byte limit", len,
			 DECODE_MESSAGE_MAX);
		return -1;
	}
	bad = decode_utf8_check(buf, len, &is_nul);
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
	if (decoder_reserve(dec, len, err, errlen) < 0)
		return -1;

	for (;;) {
		struct decode_field f = { 0 };
		size_t start = pos;

		if (dec->quote >= 0 && pos < len && (unsigned char)buf[pos] == dec->quote) {
			char *out = dec->scratch + used;
			size_t olen = 0;
			bool closed = false;

			pos++;
			while (pos < len) {
				unsigned char c = (unsigned char)buf[pos];
				if (dec->escape >= 0 && c == dec->escape && dec->escape != dec->quote) {
					if (pos + 1 >= len) {
						snprintf(err, errlen, "field %zu: escape character at the end of the message",
							 nf + 1);
						return -1;
					}
					out[olen++] = buf[pos + 1];
					pos += 2;
					continue;
				}
				if (c == dec->quote) {
					if (pos + 1 < len && (unsigned char)buf[pos + 1] == dec->quote) {
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
			if (pos < len && !decoder_delim_at(dec, buf, len, pos)) {
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

			while (pos < len && !decoder_delim_at(dec, buf, len, pos)) {
				if (dec->escape_outside_quotes && dec->escape >= 0 &&
				    (unsigned char)buf[pos] == dec->escape) {
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
			    (dec->null_string != NULL && pos - start == dec->null_len &&
			     memcmp(buf + start, dec->null_string, dec->null_len) == 0)) {
				f.is_null = true;
			} else if (escaped) {
				char *out = dec->scratch + used;
				size_t i, olen = 0;

				for (i = start; i < pos; i++) {
					if ((unsigned char)buf[i] == dec->escape)
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

		if (nf < dec->ncolumns)
			dec->fields[nf] = f;
		nf++;
		if (pos >= len)
			break;
		pos += dec->delim_len; /* at a delimiter: another field follows, maybe empty */
	}

	if (nf != dec->ncolumns) {
		snprintf(err, errlen, "expected %zu fields, got %zu", dec->ncolumns, nf);
		return -1;
	}
	row->nfields = nf;
	return 0;
}

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

struct row_decoder {
	struct decoder *key;   /* NULL without KEY */
	struct decoder *value; /* NULL without VALUE */
	size_t nkey, nvalue;
	bool meta;
	struct decode_field *fields; /* nkey + nvalue + meta */
	size_t nfields;
	struct textbuf meta_text;
};

void row_decoder_free(struct row_decoder *rd)
{
	if (rd == NULL)
		return;
	decoder_free(rd->key);
	decoder_free(rd->value);
	free(rd->fields);
	textbuf_free(&rd->meta_text);
	free(rd);
}

struct row_decoder *row_decoder_new(const struct jobspec *spec, char *err, size_t errlen)
{
	struct row_decoder *rd = calloc(1, sizeof(*rd));
	char sub[1024];

	if (rd == NULL)
		goto oom;
	textbuf_init(&rd->meta_text, DECODE_ROW_MAX);
	if (spec->key.present) {
		rd->key = decoder_new(&spec->key, sub, sizeof(sub));
		if (rd->key == NULL) {
			snprintf(err, errlen, "KAFKA.INPUT.KEY: %s", sub);
			goto fail;
		}
		rd->nkey = spec->key.ncolumns;
	}
	if (spec->value.present) {
		rd->value = decoder_new(&spec->value, sub, sizeof(sub));
		if (rd->value == NULL) {
			snprintf(err, errlen, "KAFKA.INPUT.VALUE: %s", sub);
			goto fail;
		}
		rd->nvalue = spec->value.ncolumns;
	}
	if (rd->key == NULL && rd->value == NULL) {
		snprintf(err, errlen, "KAFKA.INPUT needs VALUE (or KEY): list the message's columns and their FORMAT");
		goto fail;
	}
	rd->meta = spec->meta_present;
	rd->nfields = rd->nkey + rd->nvalue + (rd->meta ? 1 : 0);
	rd->fields = calloc(rd->nfields, sizeof(*rd->fields));
	if (rd->fields == NULL)
		goto oom;
	return rd;

oom:
	snprintf(err, errlen, "out of memory");
fail:
	row_decoder_free(rd);
	return NULL;
}

size_t row_decoder_ncolumns(const struct row_decoder *rd)
{
	return rd->nfields;
}

/* Copies a part's fields into the row; a decoder always gives its column count. */
static int row_decoder_take(struct decode_field *dst, size_t n, const struct decode_row *part, const char *what,
			    char *err, size_t errlen)
{
	if (part->nfields != n) {
		snprintf(err, errlen, "%s: decoded %zu columns, expected %zu", what, part->nfields, n);
		return -1;
	}
	memcpy(dst, part->fields, n * sizeof(*dst));
	return 0;
}

int row_decoder_decode(struct row_decoder *rd, const struct decode_msg *m, struct decode_row *row, char *err,
		       size_t errlen)
{
	struct decode_row part;
	char sub[640];
	size_t i;

	row->fields = rd->fields;
	row->nfields = 0;
	if (rd->key != NULL) {
		if (m->key == NULL) {
			for (i = 0; i < rd->nkey; i++) {
				rd->fields[i].ptr = NULL;
				rd->fields[i].len = 0;
				rd->fields[i].is_null = true;
			}
		} else {
			if (decoder_decode(rd->key, m->key, m->key_len, &part, sub, sizeof(sub)) < 0) {
				snprintf(err, errlen, "KEY: %s", sub);
				return -1;
			}
			if (row_decoder_take(rd->fields, rd->nkey, &part, "KEY", err, errlen) < 0)
				return -1;
		}
	}
	if (rd->value != NULL) {
		if (m->value == NULL) {
			snprintf(err, errlen, "VALUE: the message has no value (a tombstone); KAFKA.INPUT.VALUE expects one");
			return -1;
		}
		if (decoder_decode(rd->value, m->value, m->value_len, &part, sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "VALUE: %s", sub);
			return -1;
		}
		if (row_decoder_take(rd->fields + rd->nkey, rd->nvalue, &part, "VALUE", err, errlen) < 0)
			return -1;
	}
	if (rd->meta) {
		struct decode_field *f = &rd->fields[rd->nkey + rd->nvalue];

		if (decode_meta_json(&rd->meta_text, m->topic, m->partition, m->offset, m->has_timestamp,
				     m->timestamp_ms, m->key, m->key_len, sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "META: %s", sub);
			return -1;
		}
		f->ptr = rd->meta_text.data;
		f->len = rd->meta_text.len;
		f->is_null = false;
	}
	row->nfields = rd->nfields;
	return 0;
}
