#include "decode_json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec.h"
#include "row.h"
#include "utf8.h"

struct json_decoder {
	bool whole;
	size_t ncolumns;
	const char **names; /* point into names_mem */
	size_t *name_lens;
	char *names_mem;
	bool *col_json;   /* TYPE json/jsonb: the member's JSON text */
	uint32_t *slots;  /* open-addressing table: column index + 1, 0 = empty */
	size_t nslots;    /* a power of two */
	struct decode_field *fields;
	char *scratch; /* unescaped strings; unescaping only shrinks, so len bytes suffice */
	size_t scratch_cap;
};

/* One pass over a message. */
struct jscan {
	const char *buf;
	size_t len;
	size_t pos;
	char *err;
	size_t errlen;
};

static int jscan_fail(struct jscan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int jscan_fail(struct jscan *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, s->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* "unexpected end of the message" or "unexpected character 'x' at byte N". */
static int jscan_unexpected(struct jscan *s, const char *expected)
{
	unsigned char c;

	if (s->pos >= s->len)
		return jscan_fail(s, "JSON ends early at byte %zu; expected %s", s->pos, expected);
	c = (unsigned char)s->buf[s->pos];
	if (c >= 0x21 && c < 0x7f)
		return jscan_fail(s, "unexpected character '%c' at byte %zu; expected %s", c, s->pos, expected);
	return jscan_fail(s, "unexpected byte 0x%02x at byte %zu; expected %s", c, s->pos, expected);
}

static void jscan_ws(struct jscan *s)
{
	while (s->pos < s->len) {
		char c = s->buf[s->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		s->pos++;
	}
}

static int jscan_hex4(struct jscan *s, size_t at, uint32_t *out)
{
	uint32_t v = 0;
	size_t i;

	if (s->len - at < 4)
		return jscan_fail(s, "JSON ends early inside the \\u escape at byte %zu", at - 2);
	for (i = 0; i < 4; i++) {
		char c = s->buf[at + i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return jscan_fail(s, "invalid \\u escape at byte %zu: four hex digits must follow \\u", at - 2);
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

static size_t jscan_utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Scans the string at s->pos (its opening quote) up to past its closing
 * quote.  With out, writes the unescaped text there (never longer than the
 * raw text) and its length to *outlen.  *escaped says if any escape was seen,
 * *nul_at is the offset of a \u0000 escape or SIZE_MAX.  UTF-8 was checked
 * for the whole message before. */
static int jscan_string(struct jscan *s, char *out, size_t *outlen, bool *escaped, size_t *nul_at)
{
	size_t start = s->pos, olen = 0;

	*escaped = false;
	*nul_at = SIZE_MAX;
	s->pos++;
	for (;;) {
		size_t run = s->pos;
		unsigned char c = 0;

		while (s->pos < s->len) {
			c = (unsigned char)s->buf[s->pos];
			if (c == '"' || c == '\\' || c < 0x20)
				break;
			s->pos++;
		}
		if (out != NULL && s->pos > run) {
			memcpy(out + olen, s->buf + run, s->pos - run);
			olen += s->pos - run;
		}
		if (s->pos >= s->len)
			return jscan_fail(s, "JSON ends inside the string that starts at byte %zu", start);
		if (c == '"') {
			s->pos++;
			break;
		}
		if (c < 0x20)
			return jscan_fail(s, "control character 0x%02x at byte %zu inside a string; it must be escaped",
					  c, s->pos);
		/* a backslash */
		*escaped = true;
		if (s->pos + 1 >= s->len)
			return jscan_fail(s, "JSON ends inside the escape at byte %zu", s->pos);
		c = (unsigned char)s->buf[s->pos + 1];
		if (c == 'u') {
			uint32_t cp, lo;
			size_t at = s->pos;

			if (jscan_hex4(s, at + 2, &cp) < 0)
				return -1;
			s->pos += 6;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return jscan_fail(s, "unpaired surrogate \\u%04x at byte %zu (a low surrogate without a high one)",
						  cp, at);
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (s->len - s->pos < 2 || s->buf[s->pos] != '\\' || s->buf[s->pos + 1] != 'u')
					return jscan_fail(s, "unpaired surrogate \\u%04x at byte %zu (no low surrogate follows)",
							  cp, at);
				if (jscan_hex4(s, s->pos + 2, &lo) < 0)
					return -1;
				if (lo < 0xDC00 || lo > 0xDFFF)
					return jscan_fail(s, "unpaired surrogate \\u%04x at byte %zu (followed by \\u%04x, "
							  "not a low surrogate)", cp, at, lo);
				s->pos += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			if (cp == 0 && *nul_at == SIZE_MAX)
				*nul_at = at;
			if (out != NULL)
				olen += jscan_utf8_put(out + olen, cp);
			continue;
		}
		{
			char e;
			switch (c) {
			case '"': e = '"'; break;
			case '\\': e = '\\'; break;
			case '/': e = '/'; break;
			case 'b': e = '\b'; break;
			case 'f': e = '\f'; break;
			case 'n': e = '\n'; break;
			case 'r': e = '\r'; break;
			case 't': e = '\t'; break;
			default:
				if (c >= 0x21 && c < 0x7f)
					return jscan_fail(s, "invalid escape \\%c at byte %zu", c, s->pos);
				return jscan_fail(s, "invalid escape (backslash then byte 0x%02x) at byte %zu", c, s->pos);
			}
			if (out != NULL)
				out[olen++] = e;
			s->pos += 2;
		}
	}
	if (outlen != NULL)
		*outlen = olen;
	return 0;
}

static bool jscan_digit(const struct jscan *s)
{
	return s->pos < s->len && s->buf[s->pos] >= '0' && s->buf[s->pos] <= '9';
}

static int jscan_number(struct jscan *s)
{
	size_t start = s->pos;

	if (s->buf[s->pos] == '-')
		s->pos++;
	if (!jscan_digit(s))
		return jscan_fail(s, "invalid number at byte %zu: a digit must follow '-'", start);
	if (s->buf[s->pos] == '0')
		s->pos++; /* no leading zeros: "01" stops after the 0 and fails in the caller */
	else
		while (jscan_digit(s))
			s->pos++;
	if (s->pos < s->len && s->buf[s->pos] == '.') {
		s->pos++;
		if (!jscan_digit(s))
			return jscan_fail(s, "invalid number at byte %zu: a digit must follow the decimal point", start);
		while (jscan_digit(s))
			s->pos++;
	}
	if (s->pos < s->len && (s->buf[s->pos] == 'e' || s->buf[s->pos] == 'E')) {
		s->pos++;
		if (s->pos < s->len && (s->buf[s->pos] == '+' || s->buf[s->pos] == '-'))
			s->pos++;
		if (!jscan_digit(s))
			return jscan_fail(s, "invalid number at byte %zu: the exponent has no digits", start);
		while (jscan_digit(s))
			s->pos++;
	}
	return 0;
}

static int jscan_literal(struct jscan *s, const char *word)
{
	size_t n = strlen(word);

	if (s->len - s->pos < n || memcmp(s->buf + s->pos, word, n) != 0)
		return jscan_unexpected(s, "a JSON value");
	s->pos += n;
	return 0;
}

/* Scans (validates) one value; depth is the nesting of the value's container. */
static int jscan_value(struct jscan *s, int depth)
{
	bool escaped;
	size_t nul_at;
	char c, close;

	if (s->pos >= s->len)
		return jscan_unexpected(s, "a JSON value");
	c = s->buf[s->pos];
	switch (c) {
	case '"':
		return jscan_string(s, NULL, NULL, &escaped, &nul_at);
	case 't':
		return jscan_literal(s, "true");
	case 'f':
		return jscan_literal(s, "false");
	case 'n':
		return jscan_literal(s, "null");
	case '{':
	case '[':
		break;
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return jscan_number(s);
		return jscan_unexpected(s, "a JSON value");
	}
	if (depth + 1 > JSON_DEPTH_MAX)
		return jscan_fail(s, "JSON nested deeper than %d levels at byte %zu", JSON_DEPTH_MAX, s->pos);
	close = c == '{' ? '}' : ']';
	s->pos++;
	jscan_ws(s);
	if (s->pos < s->len && s->buf[s->pos] == close) {
		s->pos++;
		return 0;
	}
	for (;;) {
		if (c == '{') {
			if (s->pos >= s->len || s->buf[s->pos] != '"')
				return jscan_unexpected(s, "a member name in double quotes");
			if (jscan_string(s, NULL, NULL, &escaped, &nul_at) < 0)
				return -1;
			jscan_ws(s);
			if (s->pos >= s->len || s->buf[s->pos] != ':')
				return jscan_unexpected(s, "':' after the member name");
			s->pos++;
			jscan_ws(s);
		}
		if (jscan_value(s, depth + 1) < 0)
			return -1;
		jscan_ws(s);
		if (s->pos < s->len && s->buf[s->pos] == ',') {
			s->pos++;
			jscan_ws(s);
			continue;
		}
		if (s->pos < s->len && s->buf[s->pos] == close) {
			s->pos++;
			return 0;
		}
		return jscan_unexpected(s, c == '{' ? "',' or '}'" : "',' or ']'");
	}
}

static int jscan_utf8(struct jscan *s)
{
	bool is_nul;
	size_t bad = utf8_text_prefix(s->buf, s->len, &is_nul);

	if (bad == s->len)
		return 0;
	if (is_nul)
		return jscan_fail(s, "NUL byte at byte %zu of the message; JSON cannot contain it", bad);
	return jscan_fail(s, "invalid UTF-8 at byte %zu of the message (byte value 0x%02x)", bad,
			  (unsigned char)s->buf[bad]);
}

static int jscan_end(struct jscan *s)
{
	jscan_ws(s);
	if (s->pos < s->len)
		return jscan_fail(s, "trailing data at byte %zu after the JSON value", s->pos);
	return 0;
}

int json_validate(const char *buf, size_t len, char *err, size_t errlen)
{
	struct jscan s = { buf, len, 0, err, errlen };

	if (len > DECODE_MESSAGE_MAX)
		return jscan_fail(&s, "message is %zu bytes, more than the %zu-byte limit", len, DECODE_MESSAGE_MAX);
	if (jscan_utf8(&s) < 0)
		return -1;
	jscan_ws(&s);
	if (s.pos >= len)
		return jscan_fail(&s, "the message is empty; expected a JSON value");
	if (jscan_value(&s, 0) < 0)
		return -1;
	return jscan_end(&s);
}

static uint32_t json_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

/* The column of that member name, or -1. */
static int json_column(const struct json_decoder *jd, const char *name, size_t n)
{
	size_t i = json_hash(name, n) & (jd->nslots - 1);

	for (;;) {
		uint32_t slot = jd->slots[i];
		if (slot == 0)
			return -1;
		if (jd->name_lens[slot - 1] == n && memcmp(jd->names[slot - 1], name, n) == 0)
			return (int)slot - 1;
		i = (i + 1) & (jd->nslots - 1);
	}
}

void json_decoder_free(struct json_decoder *jd)
{
	if (jd == NULL)
		return;
	free(jd->names);
	free(jd->name_lens);
	free(jd->names_mem);
	free(jd->col_json);
	free(jd->slots);
	free(jd->fields);
	free(jd->scratch);
	free(jd);
}

struct json_decoder *json_decoder_new(const struct js_input *in, char *err, size_t errlen)
{
	struct json_decoder *jd;
	size_t i, total = 0, off = 0;

	if (in->ncolumns == 0) {
		snprintf(err, errlen, "COLUMNS is empty: list the JSON members to load, or one json/jsonb column "
			 "for the whole value");
		return NULL;
	}
	jd = calloc(1, sizeof(*jd));
	if (jd == NULL)
		goto oom;
	jd->whole = js_input_json_whole(in);
	jd->ncolumns = jd->whole ? 1 : in->ncolumns;
	jd->fields = calloc(jd->ncolumns, sizeof(*jd->fields));
	if (jd->fields == NULL)
		goto oom;
	if (jd->whole)
		return jd;

	for (i = 0; i < in->ncolumns; i++)
		total += (in->columns[i].name ? strlen(in->columns[i].name) : 0) + 1;
	jd->nslots = 4;
	while (jd->nslots < 2 * in->ncolumns)
		jd->nslots *= 2;
	jd->names = calloc(in->ncolumns, sizeof(*jd->names));
	jd->name_lens = calloc(in->ncolumns, sizeof(*jd->name_lens));
	jd->names_mem = malloc(total);
	jd->col_json = calloc(in->ncolumns, sizeof(*jd->col_json));
	jd->slots = calloc(jd->nslots, sizeof(*jd->slots));
	if (jd->names == NULL || jd->name_lens == NULL || jd->names_mem == NULL || jd->col_json == NULL ||
	    jd->slots == NULL)
		goto oom;
	for (i = 0; i < in->ncolumns; i++) {
		const char *name = in->columns[i].name ? in->columns[i].name : "";
		size_t n = strlen(name), h;

		if (json_column(jd, name, n) >= 0) {
			snprintf(err, errlen, "COLUMNS[%zu] \"%s\" is given twice; each JSON member fills one column", i,
				 name);
			json_decoder_free(jd);
			return NULL;
		}
		memcpy(jd->names_mem + off, name, n + 1);
		jd->names[i] = jd->names_mem + off;
		jd->name_lens[i] = n;
		off += n + 1;
		jd->col_json[i] = js_column_is_json(&in->columns[i]);
		h = json_hash(name, n) & (jd->nslots - 1);
		while (jd->slots[h] != 0)
			h = (h + 1) & (jd->nslots - 1);
		jd->slots[h] = (uint32_t)i + 1;
	}
	return jd;

oom:
	snprintf(err, errlen, "out of memory");
	json_decoder_free(jd);
	return NULL;
}

static int json_decode_fields(struct json_decoder *jd, struct jscan *s)
{
	size_t used = 0, i;
	bool escaped;
	size_t nul_at;

	for (i = 0; i < jd->ncolumns; i++) {
		jd->fields[i].ptr = NULL;
		jd->fields[i].len = 0;
		jd->fields[i].is_null = true;
	}
	jscan_ws(s);
	if (s->pos >= s->len)
		return jscan_fail(s, "the message is empty; expected a JSON object");
	if (s->buf[s->pos] != '{') {
		char c = s->buf[s->pos];
		const char *kind = c == '[' ? "an array" : c == '"' ? "a string" : c == 'n' ? "null" :
				   c == 't' || c == 'f' ? "a boolean" : "a number";

		if (jscan_value(s, 0) < 0)
			return -1;
		return jscan_fail(s, "the message is %s, not a JSON object; its members fill the columns by name",
				  kind);
	}
	s->pos++;
	jscan_ws(s);
	if (s->pos < s->len && s->buf[s->pos] == '}') {
		s->pos++;
		return jscan_end(s);
	}
	for (;;) {
		const char *name;
		size_t nlen, vstart;
		struct decode_field *f;
		int col;
		char c;

		if (s->pos >= s->len || s->buf[s->pos] != '"')
			return jscan_unexpected(s, "a member name in double quotes");
		/* The name is unescaped where the next value would go; it is only compared. */
		vstart = s->pos;
		if (jscan_string(s, jd->scratch + used, &nlen, &escaped, &nul_at) < 0)
			return -1;
		name = escaped ? jd->scratch + used : s->buf + vstart + 1;
		col = json_column(jd, name, nlen);
		jscan_ws(s);
		if (s->pos >= s->len || s->buf[s->pos] != ':')
			return jscan_unexpected(s, "':' after the member name");
		s->pos++;
		jscan_ws(s);

		vstart = s->pos;
		c = s->pos < s->len ? s->buf[s->pos] : '\0';
		if (col < 0) {
			if (jscan_value(s, 1) < 0)
				return -1;
		} else if (c == '"' && !jd->col_json[col]) {
			char *out = jd->scratch + used;
			size_t olen;

			if (jscan_string(s, out, &olen, &escaped, &nul_at) < 0)
				return -1;
			if (nul_at != SIZE_MAX)
				return jscan_fail(s, "member \"%s\" has \\u0000 at byte %zu; PostgreSQL text cannot hold it",
						  jd->names[col], nul_at);
			f = &jd->fields[col];
			f->is_null = false;
			if (escaped) {
				f->ptr = out;
				f->len = olen;
				used += olen;
			} else {
				f->ptr = s->buf + vstart + 1;
				f->len = olen;
			}
		} else {
			if (jscan_value(s, 1) < 0)
				return -1;
			f = &jd->fields[col];
			if (c == 'n') {
				f->is_null = true;
				f->ptr = NULL;
				f->len = 0;
			} else {
				f->is_null = false;
				f->ptr = s->buf + vstart;
				f->len = s->pos - vstart;
			}
		}
		jscan_ws(s);
		if (s->pos < s->len && s->buf[s->pos] == ',') {
			s->pos++;
			jscan_ws(s);
			continue;
		}
		if (s->pos < s->len && s->buf[s->pos] == '}') {
			s->pos++;
			break;
		}
		return jscan_unexpected(s, "',' or '}'");
	}
	return jscan_end(s);
}

int json_decoder_decode(struct json_decoder *jd, const char *buf, size_t len, struct decode_row *row, char *err,
			size_t errlen)
{
	struct jscan s = { buf, len, 0, err, errlen };

	row->fields = jd->fields;
	row->nfields = 0;
	if (jd->whole) {
		if (json_validate(buf, len, err, errlen) < 0)
			return -1;
		jd->fields[0].ptr = len ? buf : "";
		jd->fields[0].len = len;
		jd->fields[0].is_null = false;
		row->nfields = 1;
		return 0;
	}
	if (len > DECODE_MESSAGE_MAX)
		return jscan_fail(&s, "message is %zu bytes, more than the %zu-byte limit", len, DECODE_MESSAGE_MAX);
	if (jscan_utf8(&s) < 0)
		return -1;
	if (len > jd->scratch_cap) {
		size_t cap = jd->scratch_cap ? jd->scratch_cap : 256;
		char *p;

		while (cap < len)
			cap *= 2;
		p = realloc(jd->scratch, cap);
		if (p == NULL)
			return jscan_fail(&s, "out of memory decoding a %zu-byte message", len);
		jd->scratch = p;
		jd->scratch_cap = cap;
	}
	if (json_decode_fields(jd, &s) < 0)
		return -1;
	row->nfields = jd->ncolumns;
	return 0;
}
