#include "decode_avro.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avro_schema.h"
#include "jobspec.h"
#include "registry.h"
#include "row.h"
#include "textbuf.h"
#include "utf8.h"

/* Largest decimal accepted, in bytes of its unscaled value (PostgreSQL's
 * numeric holds 131072 digits before the point; 1 KiB is 2466 digits). */
#define AVRO_DECIMAL_MAX 1024

enum av_where { AV_COL_NULL, AV_COL_OUT };

/* One writer's schema and where its fields go. */
struct av_writer {
	uint32_t id; /* registry id; 0 for the local schema */
	struct avro_schema *sc;
	int *field_col; /* per top-level field: column index, or -1 */
};

struct av_col {
	bool json; /* TYPE json/jsonb */
	int where; /* enum av_where */
	size_t off, len;
};

struct avro_decoder {
	bool whole;
	bool base64;
	size_t ncolumns;
	char **names;
	struct av_col *cols;
	struct decode_field *fields;
	struct av_writer local; /* sc NULL with a registry */
	struct registry *reg;
	struct av_writer *writers; /* by registry id, in the order fetched */
	size_t nwriters;
	struct textbuf out;

	/* the message being decoded */
	const unsigned char *buf;
	size_t len, pos;
	char *err;
	size_t errlen;
};

static int avd_fail(struct avro_decoder *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int avd_fail(struct avro_decoder *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, d->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int avd_truncated(struct avro_decoder *d, const char *what)
{
	return avd_fail(d, "truncated Avro data: %s at byte %zu runs past the end of the message (%zu bytes); "
			"is the schema the one the message was written with?", what, d->pos, d->len);
}

/* A zig-zag varint long. */
static int avd_long(struct avro_decoder *d, int64_t *out)
{
	uint64_t v = 0;
	size_t start = d->pos;

	for (int shift = 0; shift < 70; shift += 7) {
		unsigned char c;

		if (d->pos >= d->len) {
			d->pos = start;
			return avd_truncated(d, "a number");
		}
		c = d->buf[d->pos++];
		if (shift == 63 && (c & 0x7e) != 0)
			break;
		v |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0) {
			*out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
			return 0;
		}
	}
	return avd_fail(d, "malformed Avro data: the number at byte %zu is longer than 10 bytes", start);
}

static int avd_int(struct avro_decoder *d, int64_t *out)
{
	size_t start = d->pos;

	if (avd_long(d, out) < 0)
		return -1;
	if (*out < INT32_MIN || *out > INT32_MAX)
		return avd_fail(d, "malformed Avro data: the int at byte %zu is out of the 32-bit range", start);
	return 0;
}

/* A length (bytes, string, a count) that must fit in what is left. */
static int avd_len(struct avro_decoder *d, const char *what, size_t *n)
{
	size_t start = d->pos;
	int64_t v;

	if (avd_long(d, &v) < 0)
		return -1;
	if (v < 0)
		return avd_fail(d, "malformed Avro data: %s at byte %zu has a negative length", what, start);
	if ((uint64_t)v > d->len - d->pos) {
		d->pos = start;
		return avd_truncated(d, what);
	}
	*n = (size_t)v;
	return 0;
}

/* ---- dates and times ---- */

/* Days since 1970-01-01 to a date (Howard Hinnant's civil_from_days). */
static void avd_civil(int64_t z, int64_t *y, unsigned *m, unsigned *dd)
{
	int64_t era, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	yoe = z - era * 146097;
	yoe = (yoe - yoe / 1460 + yoe / 36524 - yoe / 146096) / 365;
	doy = z - era * 146097 - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*dd = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* "2024-01-31", years before 1 as PostgreSQL writes them ("0044-03-15 BC"
 * comes after the time, so the caller adds the era). */
static bool avd_put_date(struct textbuf *tb, int64_t days)
{
	int64_t y;
	unsigned m, dd;

	avd_civil(days, &y, &m, &dd);
	textbuf_printf(tb, "%04" PRId64 "-%02u-%02u", y <= 0 ? 1 - y : y, m, dd);
	return y <= 0;
}

/* HH:MM:SS[.ffffff] with trailing zeros of the fraction left out. */
static void avd_put_time(struct textbuf *tb, int64_t us)
{
	int64_t s = us / 1000000, frac = us % 1000000;

	textbuf_printf(tb, "%02" PRId64 ":%02" PRId64 ":%02" PRId64, s / 3600, s / 60 % 60, s % 60);
	if (frac != 0) {
		char f[8];
		int n = 6;

		snprintf(f, sizeof(f), "%06" PRId64, frac);
		while (n > 0 && f[n - 1] == '0')
			n--;
		textbuf_printf(tb, ".%.*s", n, f);
	}
}

/* A timestamp in microseconds (or milliseconds) since the epoch, as
 * PostgreSQL's to_jsonb writes a timestamptz: 2024-01-31T13:45:00.123+00:00. */
static void avd_put_timestamp(struct textbuf *tb, int64_t v, bool millis, bool utc)
{
	int64_t unit = millis ? 86400000 : INT64_C(86400000000);
	int64_t days = v / unit, rest = v % unit;
	bool bc;

	/* Floor, not truncation, without days * unit (it overflows near INT64_MIN). */
	if (rest < 0) {
		rest += unit;
		days--;
	}
	bc = avd_put_date(tb, days);

	textbuf_putc(tb, 'T');
	avd_put_time(tb, millis ? rest * 1000 : rest);
	if (utc)
		textbuf_puts(tb, "+00:00");
	if (bc)
		textbuf_puts(tb, " BC");
}

/* ---- decimals ---- */

/* The two's complement big-endian unscaled value p[0..n) with scale digits
 * after the point: "-12.340". */
static int avd_put_decimal(struct avro_decoder *d, const unsigned char *p, size_t n, int scale)
{
	uint32_t limbs[AVRO_DECIMAL_MAX / 4 + 2];
	char digits[AVRO_DECIMAL_MAX * 3 + 16 + AVRO_DECIMAL_MAX * 2];
	size_t nl = 0, nd = 0, i;
	bool neg = n > 0 && (p[0] & 0x80);
	unsigned borrow = 1;

	if (n > AVRO_DECIMAL_MAX || scale > AVRO_DECIMAL_MAX * 2)
		return avd_fail(d, "the decimal at byte %zu has %zu bytes and scale %d, more than %d and %d", d->pos,
				n, scale, AVRO_DECIMAL_MAX, AVRO_DECIMAL_MAX * 2);
	/* The magnitude into 32-bit limbs, most significant first. */
	nl = (n + 3) / 4;
	memset(limbs, 0, sizeof(limbs));
	for (i = 0; i < n; i++) {
		size_t bit = (n - 1 - i) * 8; /* of byte i, from the least significant */
		unsigned b = neg ? (unsigned)(~p[i] & 0xff) : p[i];

		limbs[nl - 1 - bit / 32] |= (uint32_t)b << (bit % 32);
	}
	if (neg) /* ~x + 1 */
		for (i = nl; i-- > 0 && borrow;) {
			uint64_t s = (uint64_t)limbs[i] + 1;
			limbs[i] = (uint32_t)s;
			borrow = (unsigned)(s >> 32);
		}
	/* Digits, least significant first, by dividing by 10^9. */
	for (;;) {
		uint64_t rem = 0;
		bool zero = true;

		for (i = 0; i < nl; i++) {
			uint64_t cur = rem << 32 | limbs[i];
			limbs[i] = (uint32_t)(cur / 1000000000u);
			rem = cur % 1000000000u;
			if (limbs[i] != 0)
				zero = false;
		}
		for (int k = 0; k < 9; k++) {
			digits[nd++] = (char)('0' + rem % 10);
			rem /= 10;
		}
		if (zero)
			break;
	}
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	while ((int)nd <= scale)
		digits[nd++] = '0';
	if (neg)
		textbuf_putc(&d->out, '-');
	for (i = nd; i-- > 0;) {
		textbuf_putc(&d->out, digits[i]);
		if ((int)i == scale && scale > 0)
			textbuf_putc(&d->out, '.');
	}
	return 0;
}

/* ---- values ---- */

static int avd_string_check(struct avro_decoder *d, size_t off, size_t n)
{
	bool is_nul;
	size_t bad = utf8_text_prefix((const char *)d->buf + off, n, &is_nul);

	if (bad == n)
		return 0;
	if (is_nul)
		return avd_fail(d, "a string has a NUL byte at byte %zu; PostgreSQL text cannot hold it", off + bad);
	return avd_fail(d, "a string is not valid UTF-8 at byte %zu (byte value 0x%02x)", off + bad,
			d->buf[off + bad]);
}

static void avd_put_bytes(struct avro_decoder *d, const unsigned char *p, size_t n, bool json)
{
	if (json)
		textbuf_putc(&d->out, '"');
	if (d->base64) {
		textbuf_base64(&d->out, p, n);
	} else {
		textbuf_puts(&d->out, json ? "\\\\x" : "\\x");
		textbuf_hex(&d->out, p, n);
	}
	if (json)
		textbuf_putc(&d->out, '"');
}

/* Quotes what follows when json (dates and times are JSON strings). */
static void avd_quote(struct avro_decoder *d, bool json)
{
	if (json)
		textbuf_putc(&d->out, '"');
}

static int avd_value(struct avro_decoder *d, const struct avro_node *n, bool json, int depth, bool *is_null);

/* Array and map blocks: a count, negative when a byte size follows; 0 ends. */
static int avd_blocks(struct avro_decoder *d, const struct avro_node *n, int depth)
{
	bool map = n->kind == AV_MAP, first = true, dummy;

	textbuf_putc(&d->out, map ? '{' : '[');
	for (;;) {
		int64_t count, size;
		size_t at = d->pos;

		if (avd_long(d, &count) < 0)
			return -1;
		if (count == 0)
			break;
		if (count < 0) {
			if (count == INT64_MIN)
				return avd_fail(d, "malformed Avro data: block count at byte %zu", at);
			count = -count;
			if (avd_long(d, &size) < 0)
				return -1;
		}
		for (int64_t i = 0; i < count; i++) {
			if (textbuf_failed(&d->out))
				return -1;
			if (!first)
				textbuf_putc(&d->out, ',');
			first = false;
			if (map) {
				size_t kl;

				if (avd_len(d, "a map key", &kl) < 0 || avd_string_check(d, d->pos, kl) < 0)
					return -1;
				textbuf_json_string(&d->out, (const char *)d->buf + d->pos, kl);
				d->pos += kl;
				textbuf_putc(&d->out, ':');
			}
			if (avd_value(d, n->items, true, depth + 1, &dummy) < 0)
				return -1;
			/* Items of no bytes (null, empty records) could be counted in the
			 * billions: the output's cap stops them above. */
		}
	}
	textbuf_putc(&d->out, map ? '}' : ']');
	return 0;
}

static int avd_record(struct avro_decoder *d, const struct avro_node *n, int depth)
{
	bool dummy;

	textbuf_putc(&d->out, '{');
	for (size_t i = 0; i < n->nfields; i++) {
		if (i > 0)
			textbuf_putc(&d->out, ',');
		textbuf_json_string(&d->out, n->fields[i].name, strlen(n->fields[i].name));
		textbuf_putc(&d->out, ':');
		if (avd_value(d, n->fields[i].type, true, depth + 1, &dummy) < 0)
			return -1;
	}
	textbuf_putc(&d->out, '}');
	return 0;
}

/* One value of type n at d->pos, appended to d->out: as column text, or as a
 * JSON value.  *is_null: a null (column text: nothing written). */
static int avd_value(struct avro_decoder *d, const struct avro_node *n, bool json, int depth, bool *is_null)
{
	int64_t v;
	size_t len, at;

	*is_null = false;
	if (depth > AVRO_DEPTH_MAX)
		return avd_fail(d, "Avro values nested deeper than %d levels at byte %zu", AVRO_DEPTH_MAX, d->pos);
	switch (n->kind) {
	case AV_NULL:
		*is_null = true;
		if (json)
			textbuf_puts(&d->out, "null");
		return 0;
	case AV_BOOLEAN:
		if (d->pos >= d->len)
			return avd_truncated(d, "a boolean");
		if (d->buf[d->pos] > 1)
			return avd_fail(d, "malformed Avro data: the boolean at byte %zu is 0x%02x, not 0 or 1", d->pos,
					d->buf[d->pos]);
		textbuf_puts(&d->out, d->buf[d->pos++] ? "true" : "false");
		return 0;
	case AV_INT:
		if (avd_int(d, &v) < 0)
			return -1;
		if (n->logical == AVL_DATE) {
			bool bc;

			avd_quote(d, json);
			bc = avd_put_date(&d->out, v);
			if (bc)
				textbuf_puts(&d->out, " BC");
			avd_quote(d, json);
		} else if (n->logical == AVL_TIME_MILLIS) {
			avd_quote(d, json);
			avd_put_time(&d->out, v * 1000);
			avd_quote(d, json);
		} else {
			textbuf_printf(&d->out, "%" PRId64, v);
		}
		return 0;
	case AV_LONG:
		if (avd_long(d, &v) < 0)
			return -1;
		switch (n->logical) {
		case AVL_TIME_MICROS:
			avd_quote(d, json);
			avd_put_time(&d->out, v);
			avd_quote(d, json);
			break;
		case AVL_TS_MILLIS:
		case AVL_TS_MICROS:
		case AVL_LOCAL_TS_MILLIS:
		case AVL_LOCAL_TS_MICROS:
			avd_quote(d, json);
			avd_put_timestamp(&d->out, v, n->logical == AVL_TS_MILLIS || n->logical == AVL_LOCAL_TS_MILLIS,
					  n->logical == AVL_TS_MILLIS || n->logical == AVL_TS_MICROS);
			avd_quote(d, json);
			break;
		default:
			textbuf_printf(&d->out, "%" PRId64, v);
		}
		return 0;
	case AV_FLOAT:
	case AV_DOUBLE: {
		size_t sz = n->kind == AV_FLOAT ? 4 : 8;
		uint64_t bits = 0;

		if (d->len - d->pos < sz)
			return avd_truncated(d, n->kind == AV_FLOAT ? "a float" : "a double");
		for (size_t i = 0; i < sz; i++)
			bits |= (uint64_t)d->buf[d->pos + i] << (8 * i);
		d->pos += sz;
		if (n->kind == AV_FLOAT) {
			uint32_t b32 = (uint32_t)bits;
			float f;

			memcpy(&f, &b32, sizeof(f));
			textbuf_float(&d->out, f, true, json);
		} else {
			double f;

			memcpy(&f, &bits, sizeof(f));
			textbuf_float(&d->out, f, false, json);
		}
		return 0;
	}
	case AV_STRING:
		if (avd_len(d, "a string", &len) < 0 || avd_string_check(d, d->pos, len) < 0)
			return -1;
		if (json)
			textbuf_json_string(&d->out, (const char *)d->buf + d->pos, len);
		else
			textbuf_put(&d->out, d->buf + d->pos, len);
		d->pos += len;
		return 0;
	case AV_BYTES:
	case AV_FIXED:
		at = d->pos;
		if (n->kind == AV_BYTES) {
			if (avd_len(d, "a bytes value", &len) < 0)
				return -1;
		} else {
			len = n->size;
			if (d->len - d->pos < len)
				return avd_truncated(d, "a fixed value");
		}
		if (n->logical == AVL_DECIMAL) {
			if (avd_put_decimal(d, d->buf + d->pos, len, n->scale) < 0)
				return -1;
		} else if (n->logical == AVL_DURATION) {
			const unsigned char *p = d->buf + d->pos;
			uint32_t u[3];

			for (int k = 0; k < 3; k++)
				u[k] = (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 | (uint32_t)p[4 * k + 2] << 16 |
				       (uint32_t)p[4 * k + 3] << 24;
			avd_quote(d, json);
			textbuf_printf(&d->out, "%" PRIu32 " months %" PRIu32 " days %" PRIu32 " milliseconds", u[0],
				       u[1], u[2]);
			avd_quote(d, json);
		} else {
			avd_put_bytes(d, d->buf + d->pos, len, json);
		}
		(void)at;
		d->pos += len;
		return 0;
	case AV_ENUM:
		at = d->pos;
		if (avd_int(d, &v) < 0)
			return -1;
		if (v < 0 || (uint64_t)v >= n->nsymbols)
			return avd_fail(d, "the enum index %" PRId64 " at byte %zu is out of range: enum %s has %zu "
					"symbols", v, at, n->name, n->nsymbols);
		if (json)
			textbuf_json_string(&d->out, n->symbols[v], strlen(n->symbols[v]));
		else
			textbuf_puts(&d->out, n->symbols[v]);
		return 0;
	case AV_UNION:
		at = d->pos;
		if (avd_long(d, &v) < 0)
			return -1;
		if (v < 0 || (uint64_t)v >= n->nbranches)
			return avd_fail(d, "the union branch %" PRId64 " at byte %zu is out of range: the union has %zu "
					"branches", v, at, n->nbranches);
		return avd_value(d, n->branches[v], json, depth + 1, is_null);
	case AV_RECORD:
		return avd_record(d, n, depth);
	case AV_ARRAY:
	case AV_MAP:
		return avd_blocks(d, n, depth);
	}
	return avd_fail(d, "unsupported Avro type");
}

/* The writer for a message: the local schema, or the one of its frame's id.
 * Sets d->buf/len to the body. */
static int avd_writer(struct avro_decoder *d, const char *buf, size_t len, const struct av_writer **out)
{
	const struct registry_schema *rs;
	struct av_writer w = { 0 }, *grown;
	const char *body;
	size_t body_len;
	uint32_t id;
	char sub[512];
	int rc;

	d->buf = (const unsigned char *)buf;
	d->len = len;
	if (d->reg == NULL) {
		*out = &d->local;
		return 0;
	}
	if (registry_frame_parse(buf, len, &id, &body, &body_len, d->err, d->errlen) < 0)
		return -1;
	d->buf = (const unsigned char *)body;
	d->len = body_len;
	for (size_t i = 0; i < d->nwriters; i++)
		if (d->writers[i].id == id) {
			*out = &d->writers[i];
			return 0;
		}
	rc = registry_schema_get(d->reg, id, &rs, sub, sizeof(sub));
	if (rc != REGISTRY_OK) {
		snprintf(d->err, d->errlen, "%s", sub);
		return rc == REGISTRY_DATA ? -1 : rc == REGISTRY_FATAL ? DECODE_FATAL : DECODE_RETRY;
	}
	if (rs->type != REGISTRY_AVRO)
		return avd_fail(d, "schema id %u is a %s schema, not Avro; is the topic written with another "
				"serializer?", id, rs->type == REGISTRY_PROTOBUF ? "Protobuf" : "JSON");
	/* A schema the registry holds but libavro refuses is the message's
	 * problem, not a reason to stop the job. */
	if (avro_schema_parse(rs->text, rs->len, &w.sc, sub, sizeof(sub)) < 0)
		return avd_fail(d, "schema id %u: %s", id, sub);
	w.id = id;
	if (w.sc->root->kind == AV_RECORD && !d->whole) {
		w.field_col = malloc((w.sc->root->nfields ? w.sc->root->nfields : 1) * sizeof(int));
		if (w.field_col == NULL)
			goto oom;
		for (size_t f = 0; f < w.sc->root->nfields; f++) {
			w.field_col[f] = -1;
			for (size_t c = 0; c < d->ncolumns; c++)
				if (strcmp(d->names[c], w.sc->root->fields[f].name) == 0)
					w.field_col[f] = (int)c;
		}
	}
	grown = realloc(d->writers, (d->nwriters + 1) * sizeof(*grown));
	if (grown == NULL)
		goto oom;
	d->writers = grown;
	d->writers[d->nwriters] = w;
	*out = &d->writers[d->nwriters++];
	return 0;
oom:
	avro_schema_free(w.sc);
	free(w.field_col);
	return avd_fail(d, "out of memory");
}

int avro_decoder_decode(struct avro_decoder *ad, const char *buf, size_t len, struct decode_row *row, char *err,
			size_t errlen)
{
	const struct av_writer *w;
	const struct avro_node *root;
	bool is_null;
	int rc;

	row->fields = ad->fields;
	row->nfields = 0;
	ad->err = err;
	ad->errlen = errlen;
	ad->pos = 0;
	textbuf_reset(&ad->out);
	if (len > DECODE_MESSAGE_MAX)
		return avd_fail(ad, "message is %zu bytes, more than the %zu-byte limit", len, DECODE_MESSAGE_MAX);
	if ((rc = avd_writer(ad, buf, len, &w)) != 0)
		return rc;
	root = w->sc->root;
	for (size_t i = 0; i < ad->ncolumns; i++)
		ad->cols[i].where = AV_COL_NULL;
	if (ad->whole) {
		if (avd_value(ad, root, true, 0, &is_null) < 0)
			goto fail;
		ad->cols[0].where = is_null ? AV_COL_NULL : AV_COL_OUT;
		ad->cols[0].off = 0;
		ad->cols[0].len = ad->out.len;
	} else {
		if (root->kind != AV_RECORD)
			return avd_fail(ad, "the schema%s is a %s, not a record: name one json/jsonb column to take the "
					"whole value", w->id ? " of the message's id" : "", avro_node_type_name(root));
		for (size_t f = 0; f < root->nfields; f++) {
			int c = w->field_col[f];
			size_t start = ad->out.len;
			struct av_col *col = c >= 0 ? &ad->cols[c] : NULL;
			const struct avro_node *t = root->fields[f].type;
			bool json = col != NULL && (col->json || t->kind == AV_RECORD || t->kind == AV_ARRAY ||
						    t->kind == AV_MAP);

			/* A union of a record (or array, map) renders its branch as
			 * JSON: decide by the branch read. */
			if (col != NULL && !json && t->kind == AV_UNION) {
				size_t save = ad->pos;
				int64_t b;

				if (avd_long(ad, &b) == 0 && b >= 0 && (uint64_t)b < t->nbranches) {
					enum avro_kind k = t->branches[b]->kind;
					json = k == AV_RECORD || k == AV_ARRAY || k == AV_MAP;
				}
				ad->pos = save;
			}
			if (avd_value(ad, t, json, 1, &is_null) < 0)
				goto fail;
			if (col == NULL) {
				textbuf_truncate(&ad->out, start); /* a field no column takes */
				continue;
			}
			col->where = is_null ? AV_COL_NULL : AV_COL_OUT;
			col->off = start;
			col->len = ad->out.len - start;
		}
	}
	if (ad->pos != ad->len)
		return avd_fail(ad, "%zu bytes are left after the Avro record at byte %zu; the message was written "
				"with another schema", ad->len - ad->pos, ad->pos);
	if (textbuf_failed(&ad->out)) {
		textbuf_error(&ad->out, err, errlen);
		return -1;
	}
	for (size_t i = 0; i < ad->ncolumns; i++) {
		struct decode_field *f = &ad->fields[i];

		f->is_null = ad->cols[i].where == AV_COL_NULL;
		f->ptr = f->is_null ? NULL : ad->out.len ? ad->out.data + ad->cols[i].off : "";
		f->len = f->is_null ? 0 : ad->cols[i].len;
	}
	row->nfields = ad->ncolumns;
	return 0;
fail:
	if (textbuf_failed(&ad->out))
		textbuf_error(&ad->out, err, errlen);
	return -1;
}

/* Reads SCHEMA_FILE whole, with a cap. */
static int avd_read_file(const char *path, struct textbuf *tb, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = -1;

	if (fd < 0) {
		snprintf(err, errlen, "AVRO_OPTION.SCHEMA_FILE: cannot read \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "AVRO_OPTION.SCHEMA_FILE: \"%s\" is a directory, not an .avsc file", path);
		goto out;
	}
	for (;;) {
		char chunk[65536];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "AVRO_OPTION.SCHEMA_FILE: cannot read \"%s\": %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		textbuf_put(tb, chunk, (size_t)n);
		if (textbuf_failed(tb)) {
			snprintf(err, errlen, "AVRO_OPTION.SCHEMA_FILE: \"%s\" is larger than %zu bytes", path, tb->max);
			goto out;
		}
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

void avro_decoder_free(struct avro_decoder *ad)
{
	if (ad == NULL)
		return;
	for (size_t i = 0; i < ad->ncolumns && ad->names != NULL; i++)
		free(ad->names[i]);
	free(ad->names);
	free(ad->cols);
	free(ad->fields);
	avro_schema_free(ad->local.sc);
	free(ad->local.field_col);
	for (size_t i = 0; i < ad->nwriters; i++) {
		avro_schema_free(ad->writers[i].sc);
		free(ad->writers[i].field_col);
	}
	free(ad->writers);
	registry_free(ad->reg);
	textbuf_free(&ad->out);
	free(ad);
}

/* "a, b, c" for a "no such field" error. */
static void avd_field_names(const struct avro_node *rec, char *buf, size_t buflen)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < rec->nfields && off < buflen; i++) {
		int n = snprintf(buf + off, buflen - off, "%s%s", i ? ", " : "", rec->fields[i].name);
		if (n > 0)
			off += (size_t)n;
	}
}

static int avd_local(struct avro_decoder *ad, const struct js_input *in, char *err, size_t errlen)
{
	struct textbuf text;
	const char *where = in->avro_schema_file != NULL ? "AVRO_OPTION.SCHEMA_FILE" : "AVRO_OPTION.SCHEMA";
	const struct avro_node *root;
	char sub[512];
	int rc = -1;

	textbuf_init(&text, AVRO_SCHEMA_MAX);
	if (in->avro_schema_file != NULL) {
		if (avd_read_file(in->avro_schema_file, &text, err, errlen) < 0)
			goto out;
	} else {
		textbuf_puts(&text, in->avro_schema);
	}
	if (avro_schema_parse(text.data != NULL ? text.data : "", text.len, &ad->local.sc, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "%s: %s", where, sub);
		goto out;
	}
	root = ad->local.sc->root;
	if (ad->whole) {
		rc = 0;
		goto out;
	}
	if (root->kind != AV_RECORD) {
		snprintf(err, errlen, "%s: the schema is a %s, not a record; name one json/jsonb column to take the "
			 "whole value", where, avro_node_type_name(root));
		goto out;
	}
	ad->local.field_col = malloc((root->nfields ? root->nfields : 1) * sizeof(int));
	if (ad->local.field_col == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t f = 0; f < root->nfields; f++)
		ad->local.field_col[f] = -1;
	for (size_t c = 0; c < ad->ncolumns; c++) {
		int f = avro_record_field(root, ad->names[c]);

		if (f < 0) {
			avd_field_names(root, sub, sizeof(sub));
			snprintf(err, errlen, "COLUMNS[%zu] \"%s\": record %s has no field of that name; its fields are %s",
				 c, ad->names[c], root->name, sub);
			goto out;
		}
		ad->local.field_col[f] = (int)c;
	}
	rc = 0;
out:
	textbuf_free(&text);
	return rc;
}

struct avro_decoder *avro_decoder_new(const struct js_input *in, char *err, size_t errlen)
{
	struct avro_decoder *ad;

	if (in->ncolumns == 0) {
		snprintf(err, errlen, "COLUMNS is empty: name the record's fields to load, or one json/jsonb column "
			 "for the whole record");
		return NULL;
	}
	if ((in->registry_addr != NULL) + (in->avro_schema_file != NULL) + (in->avro_schema != NULL) != 1) {
		snprintf(err, errlen, "AVRO_OPTION needs exactly one of SCHEMA_REGISTRY_ADDR (framed messages), "
			 "SCHEMA_FILE and SCHEMA (unframed messages)");
		return NULL;
	}
	ad = calloc(1, sizeof(*ad));
	if (ad == NULL)
		goto oom;
	textbuf_init(&ad->out, DECODE_ROW_MAX);
	ad->whole = js_input_json_whole(in);
	ad->base64 = in->avro_bytes_to_base64;
	ad->ncolumns = ad->whole ? 1 : in->ncolumns;
	ad->names = calloc(ad->ncolumns, sizeof(*ad->names));
	ad->cols = calloc(ad->ncolumns, sizeof(*ad->cols));
	ad->fields = calloc(ad->ncolumns, sizeof(*ad->fields));
	if (ad->names == NULL || ad->cols == NULL || ad->fields == NULL)
		goto oom;
	for (size_t i = 0; i < ad->ncolumns; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(in->columns[i].name ? in->columns[i].name : "", ad->names[j]) == 0) {
				snprintf(err, errlen, "COLUMNS[%zu] \"%s\" is given twice; each field fills one column", i,
					 ad->names[j]);
				goto fail;
			}
		if ((ad->names[i] = strdup(in->columns[i].name ? in->columns[i].name : "")) == NULL)
			goto oom;
		ad->cols[i].json = js_column_is_json(&in->columns[i]);
	}
	if (in->registry_addr != NULL) {
		ad->reg = registry_new(in->registry_addr, in->registry_user, in->registry_password, err, errlen);
		if (ad->reg == NULL)
			goto fail;
	} else if (avd_local(ad, in, err, errlen) < 0) {
		goto fail;
	}
	return ad;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	avro_decoder_free(ad);
	return NULL;
}
