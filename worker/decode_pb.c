#include "decode_pb.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobspec.h"
#include "pbdesc.h"
#include "pbwire.h"
#include "row.h"
#include "textbuf.h"
#include "utf8.h"

/* Field occurrences alive at once (the top level plus the nested messages
 * being rendered); a bound on the decoder's memory. */
#define PB_OCC_MAX ((size_t)8 << 20)

/* One occurrence of a known field in the message being decoded. */
struct pb_occ {
	uint32_t field; /* index in its message's fields */
	int wire;       /* enum pb_wire_type */
	uint64_t value; /* VARINT, I64, I32 */
	size_t off;     /* LEN payload / group content, absolute in the message; for others the tag */
	size_t len;
};

enum pb_col_where { PB_COL_NULL, PB_COL_BUF, PB_COL_OUT };

struct pb_column {
	int field; /* index in root->fields */
	bool json; /* TYPE json/jsonb: the field as a JSON value */
	/* the current message's value */
	int where; /* enum pb_col_where */
	size_t off, len;
};

struct pb_decoder {
	struct pb_pool *pool;
	const struct pb_message *root;
	size_t ncolumns;
	struct pb_column *cols;
	struct decode_field *fields;

	/* Occurrences: the top level's first, then a stack of nested messages'. */
	struct pb_occ *occ;
	size_t nocc, occ_cap;
	uint32_t *counts; /* counting sort; largest field count in the pool + 1 */
	size_t *root_first, *root_count; /* per root field, into occ */
	struct textbuf out;

	/* the message being decoded */
	const uint8_t *buf;
	size_t len;
	char *err;
	size_t errlen;
};

static int pbdec_fail(struct pb_decoder *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int pbdec_fail(struct pb_decoder *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, d->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The wire type a field of this type is written with (not packed). */
static int pbdec_wire_of(int type)
{
	switch (type) {
	case PB_TYPE_DOUBLE:
	case PB_TYPE_FIXED64:
	case PB_TYPE_SFIXED64:
		return PB_WIRE_I64;
	case PB_TYPE_FLOAT:
	case PB_TYPE_FIXED32:
	case PB_TYPE_SFIXED32:
		return PB_WIRE_I32;
	case PB_TYPE_STRING:
	case PB_TYPE_BYTES:
	case PB_TYPE_MESSAGE:
		return PB_WIRE_LEN;
	case PB_TYPE_GROUP:
		return PB_WIRE_SGROUP;
	default:
		return PB_WIRE_VARINT;
	}
}

static bool pbdec_packable(int type)
{
	int w = pbdec_wire_of(type);

	return w == PB_WIRE_VARINT || w == PB_WIRE_I64 || w == PB_WIRE_I32;
}

/* A repeated scalar may come packed (LEN) or not; anything else with an
 * unexpected wire type is skipped like an unknown field, as protobuf does. */
static bool pbdec_wire_ok(const struct pb_field *fd, int wire)
{
	if (wire == pbdec_wire_of(fd->type))
		return true;
	return fd->repeated && wire == PB_WIRE_LEN && pbdec_packable(fd->type);
}

static int pbdec_wire_error(struct pb_decoder *d, const struct pb_message *msg, int rc, size_t tag_off,
			    size_t pos, size_t end)
{
	if (rc == PB_WIRE_TRUNCATED)
		return pbdec_fail(d, "truncated protobuf data: the field at byte %zu of %s runs past the end of "
				  "its message (byte %zu)", tag_off, msg->full_name, end);
	return pbdec_fail(d, "malformed protobuf data at byte %zu in %s (bad tag, wire type, group or "
			  "varint longer than 10 bytes)", pos, msg->full_name);
}

static int pbdec_push(struct pb_decoder *d, const struct pb_occ *o)
{
	if (d->nocc == d->occ_cap) {
		size_t cap = d->occ_cap ? d->occ_cap * 2 : 256;
		struct pb_occ *p;

		if (d->occ_cap >= PB_OCC_MAX)
			return pbdec_fail(d, "the message has more than %zu fields to decode", PB_OCC_MAX);
		if (cap > PB_OCC_MAX)
			cap = PB_OCC_MAX;
		p = realloc(d->occ, cap * sizeof(*p));
		if (p == NULL)
			return pbdec_fail(d, "out of memory decoding a %zu-byte message", d->len);
		d->occ = p;
		d->occ_cap = cap;
	}
	d->occ[d->nocc++] = *o;
	return 0;
}

/* Appends the occurrences of msg's known fields in buf[off, off+len). */
static int pbdec_scan(struct pb_decoder *d, const struct pb_message *msg, size_t off, size_t len)
{
	struct pb_wire_field f = { 0 };
	size_t pos = off, end = off + len;
	int rc;

	while ((rc = pb_wire_next(d->buf, end, &pos, &f)) > 0) {
		int idx = pb_message_field_by_number(msg, f.number);
		struct pb_occ o;

		if (idx < 0 || !pbdec_wire_ok(&msg->fields[idx], f.wire))
			continue;
		o.field = (uint32_t)idx;
		o.wire = f.wire;
		o.value = f.value;
		o.off = f.wire == PB_WIRE_LEN || f.wire == PB_WIRE_SGROUP ? f.off : f.tag_off;
		o.len = f.len;
		if (pbdec_push(d, &o) < 0)
			return -1;
	}
	if (rc < 0)
		return pbdec_wire_error(d, msg, rc, f.tag_off, pos, end);
	return 0;
}

/* Stable sort of occ[base, nocc) by field index (counting sort), so each
 * field's occurrences are together, in wire order, fields in declaration order. */
static int pbdec_sort(struct pb_decoder *d, const struct pb_message *msg, size_t base)
{
	size_t n = d->nocc - base, i, tmp;
	bool sorted = true;

	for (i = base + 1; i < d->nocc; i++)
		if (d->occ[i].field < d->occ[i - 1].field) {
			sorted = false;
			break;
		}
	if (sorted)
		return 0;
	memset(d->counts, 0, (msg->nfields + 1) * sizeof(*d->counts));
	for (i = base; i < base + n; i++)
		d->counts[d->occ[i].field + 1]++;
	for (i = 1; i <= msg->nfields; i++)
		d->counts[i] += d->counts[i - 1];
	/* The arena's tail is the scratch space. */
	tmp = d->nocc;
	for (i = 0; i < n; i++) {
		struct pb_occ filler = { 0 };
		if (pbdec_push(d, &filler) < 0)
			return -1;
	}
	for (i = base; i < base + n; i++)
		d->occ[tmp + d->counts[d->occ[i].field]++] = d->occ[i];
	memcpy(d->occ + base, d->occ + tmp, n * sizeof(*d->occ));
	d->nocc = tmp;
	return 0;
}

/* The message msg made of the payloads of occurrences [src, src+nsrc): one,
 * or several when a singular message field occurs more than once (protobuf
 * merges them, which is the same as reading them one after the other).  Its
 * occurrences land sorted at [*base, d->nocc). */
static int pbdec_gather(struct pb_decoder *d, const struct pb_message *msg, size_t src, size_t nsrc,
			size_t *base)
{
	size_t i;

	*base = d->nocc;
	for (i = 0; i < nsrc; i++) {
		size_t off = d->occ[src + i].off, len = d->occ[src + i].len;
		if (pbdec_scan(d, msg, off, len) < 0)
			return -1;
	}
	return pbdec_sort(d, msg, *base);
}

static int pbdec_string_check(struct pb_decoder *d, const struct pb_field *fd, size_t off, size_t len)
{
	bool is_nul;
	size_t bad = utf8_text_prefix((const char *)d->buf + off, len, &is_nul);

	if (bad == len)
		return 0;
	if (is_nul)
		return pbdec_fail(d, "string field %s has a NUL byte at byte %zu; PostgreSQL text cannot hold it",
				  fd->name, off + bad);
	return pbdec_fail(d, "string field %s is not valid UTF-8 at byte %zu (byte value 0x%02x)", fd->name,
			  off + bad, d->buf[off + bad]);
}

/* One scalar value (not a message): as column text, or as a JSON value. */
static int pbdec_scalar(struct pb_decoder *d, const struct pb_field *fd, uint64_t v, size_t off, size_t len,
			bool json)
{
	struct textbuf *tb = &d->out;

	switch (fd->type) {
	case PB_TYPE_INT32:
	case PB_TYPE_SFIXED32:
		textbuf_printf(tb, "%" PRId32, (int32_t)(uint32_t)v);
		break;
	case PB_TYPE_INT64:
	case PB_TYPE_SFIXED64:
		textbuf_printf(tb, "%" PRId64, (int64_t)v);
		break;
	case PB_TYPE_UINT32:
	case PB_TYPE_FIXED32:
		textbuf_printf(tb, "%" PRIu32, (uint32_t)v);
		break;
	case PB_TYPE_UINT64:
	case PB_TYPE_FIXED64:
		textbuf_printf(tb, "%" PRIu64, v);
		break;
	case PB_TYPE_SINT32: {
		uint32_t u = (uint32_t)v;
		textbuf_printf(tb, "%" PRId32, (int32_t)((u >> 1) ^ (0u - (u & 1))));
		break;
	}
	case PB_TYPE_SINT64:
		textbuf_printf(tb, "%" PRId64, (int64_t)((v >> 1) ^ (0u - (v & 1))));
		break;
	case PB_TYPE_BOOL:
		textbuf_puts(tb, v ? "true" : "false");
		break;
	case PB_TYPE_FLOAT: {
		uint32_t bits = (uint32_t)v;
		float f;
		memcpy(&f, &bits, sizeof(f));
		textbuf_float(tb, f, true, json);
		break;
	}
	case PB_TYPE_DOUBLE: {
		double f;
		memcpy(&f, &v, sizeof(f));
		textbuf_float(tb, f, false, json);
		break;
	}
	case PB_TYPE_ENUM: {
		const char *name = pb_enum_value_name(fd->enm, (int32_t)(uint32_t)v);
		if (name == NULL)
			textbuf_printf(tb, "%" PRId32, (int32_t)(uint32_t)v);
		else if (json)
			textbuf_json_string(tb, name, strlen(name));
		else
			textbuf_puts(tb, name);
		break;
	}
	case PB_TYPE_STRING:
		if (pbdec_string_check(d, fd, off, len) < 0)
			return -1;
		if (json)
			textbuf_json_string(tb, (const char *)d->buf + off, len);
		else
			textbuf_put(tb, d->buf + off, len);
		break;
	case PB_TYPE_BYTES:
		if (json) {
			textbuf_putc(tb, '"');
			textbuf_base64(tb, d->buf + off, len);
			textbuf_putc(tb, '"');
		} else {
			textbuf_puts(tb, "\\x");
			textbuf_hex(tb, d->buf + off, len);
		}
		break;
	default:
		return pbdec_fail(d, "field %s: unsupported type %d", fd->name, fd->type);
	}
	return 0;
}

/* The value of an absent field without presence. */
static void pbdec_default(struct pb_decoder *d, const struct pb_field *fd, bool json)
{
	struct textbuf *tb = &d->out;

	if (fd->map) {
		textbuf_puts(tb, "{}");
		return;
	}
	if (fd->repeated) {
		textbuf_puts(tb, "[]");
		return;
	}
	switch (fd->type) {
	case PB_TYPE_BOOL:
		textbuf_puts(tb, "false");
		break;
	case PB_TYPE_STRING:
		if (json)
			textbuf_puts(tb, "\"\"");
		break;
	case PB_TYPE_BYTES:
		textbuf_puts(tb, json ? "\"\"" : "\\x");
		break;
	case PB_TYPE_ENUM:
		if (json)
			textbuf_json_string(tb, fd->enm->values[0].name, strlen(fd->enm->values[0].name));
		else
			textbuf_puts(tb, fd->enm->values[0].name);
		break;
	case PB_TYPE_MESSAGE:
	case PB_TYPE_GROUP:
		textbuf_puts(tb, "{}");
		break;
	default:
		textbuf_putc(tb, '0');
		break;
	}
}

/* The elements of a packed repeated scalar field, comma-separated. */
static int pbdec_packed(struct pb_decoder *d, const struct pb_field *fd, const struct pb_occ *o, bool json,
			bool *first)
{
	int wire = pbdec_wire_of(fd->type);
	size_t pos = o->off, end = o->off + o->len;

	while (pos < end) {
		uint64_t v = 0;
		size_t at = pos;

		if (wire == PB_WIRE_VARINT) {
			int rc = pb_wire_varint(d->buf, end, &pos, &v);
			if (rc < 0)
				return pbdec_fail(d, "%s protobuf data: packed field %s has a bad varint at byte %zu",
						  pb_wire_strerror(rc), fd->name, at);
		} else {
			size_t n = wire == PB_WIRE_I64 ? 8 : 4, i;
			if (end - pos < n)
				return pbdec_fail(d, "truncated protobuf data: packed field %s ends inside a "
						  "%zu-byte value at byte %zu", fd->name, n, at);
			for (i = 0; i < n; i++)
				v |= (uint64_t)d->buf[pos + i] << (8 * i);
			pos += n;
		}
		if (!*first)
			textbuf_putc(&d->out, ',');
		*first = false;
		if (pbdec_scalar(d, fd, v, 0, 0, json) < 0)
			return -1;
	}
	return 0;
}

static int pbdec_json_message(struct pb_decoder *d, const struct pb_message *msg, size_t src, size_t nsrc,
			      int depth);

static int pbdec_too_deep(struct pb_decoder *d, size_t s, size_t cnt)
{
	return pbdec_fail(d, "protobuf messages nested deeper than %d levels at byte %zu", PB_DEPTH_MAX,
			  cnt > 0 ? d->occ[s].off : 0);
}

/* A map key as a JSON object key: always a string. */
static int pbdec_map_key(struct pb_decoder *d, const struct pb_field *kf, const struct pb_occ *o)
{
	if (o == NULL) {
		textbuf_puts(&d->out, kf->type == PB_TYPE_STRING ? "\"\"" : kf->type == PB_TYPE_BOOL ? "\"false\"" : "\"0\"");
		return 0;
	}
	if (kf->type == PB_TYPE_STRING)
		return pbdec_scalar(d, kf, 0, o->off, o->len, true);
	textbuf_putc(&d->out, '"');
	if (pbdec_scalar(d, kf, o->value, 0, 0, false) < 0)
		return -1;
	textbuf_putc(&d->out, '"');
	return 0;
}

static int pbdec_json_map(struct pb_decoder *d, const struct pb_field *fd, size_t s, size_t cnt, int depth)
{
	const struct pb_message *em = fd->message;
	int kidx = pb_message_field_by_number(em, 1), vidx = pb_message_field_by_number(em, 2);
	const struct pb_field *kf = &em->fields[kidx], *vf = &em->fields[vidx];
	size_t i;

	if (depth > PB_DEPTH_MAX)
		return pbdec_too_deep(d, s, cnt);
	textbuf_putc(&d->out, '{');
	for (i = 0; i < cnt; i++) {
		size_t base, j, kpos = 0, vfirst = 0, vcount = 0;
		bool has_key = false;

		if (pbdec_gather(d, em, s + i, 1, &base) < 0)
			return -1;
		for (j = base; j < d->nocc; j++) {
			if (d->occ[j].field == (uint32_t)kidx) {
				kpos = j; /* the last one wins */
				has_key = true;
			} else if (d->occ[j].field == (uint32_t)vidx) {
				if (vcount++ == 0)
					vfirst = j;
			}
		}
		if (i > 0)
			textbuf_putc(&d->out, ',');
		if (pbdec_map_key(d, kf, has_key ? &d->occ[kpos] : NULL) < 0)
			return -1;
		textbuf_putc(&d->out, ':');
		if (vf->type == PB_TYPE_MESSAGE || vf->type == PB_TYPE_GROUP) {
			if (pbdec_json_message(d, vf->message, vfirst, vcount, depth + 1) < 0)
				return -1;
		} else if (vcount == 0) {
			pbdec_default(d, vf, true);
		} else {
			struct pb_occ o = d->occ[vfirst + vcount - 1];
			if (pbdec_scalar(d, vf, o.value, o.off, o.len, true) < 0)
				return -1;
		}
		d->nocc = base;
	}
	textbuf_putc(&d->out, '}');
	return 0;
}

/* A field's occurrences [s, s+cnt) (cnt > 0, or a field without presence) as a JSON value. */
static int pbdec_json_field(struct pb_decoder *d, const struct pb_field *fd, size_t s, size_t cnt, int depth)
{
	bool is_msg = fd->type == PB_TYPE_MESSAGE || fd->type == PB_TYPE_GROUP;
	size_t i;

	if (fd->map)
		return pbdec_json_map(d, fd, s, cnt, depth + 1);
	if (fd->repeated) {
		bool first = true;

		textbuf_putc(&d->out, '[');
		for (i = s; i < s + cnt; i++) {
			struct pb_occ o = d->occ[i];

			if (is_msg) {
				if (!first)
					textbuf_putc(&d->out, ',');
				first = false;
				if (pbdec_json_message(d, fd->message, i, 1, depth + 1) < 0)
					return -1;
			} else if (o.wire == PB_WIRE_LEN && pbdec_packable(fd->type)) {
				if (pbdec_packed(d, fd, &o, true, &first) < 0)
					return -1;
			} else {
				if (!first)
					textbuf_putc(&d->out, ',');
				first = false;
				if (pbdec_scalar(d, fd, o.value, o.off, o.len, true) < 0)
					return -1;
			}
		}
		textbuf_putc(&d->out, ']');
		return 0;
	}
	if (is_msg)
		return pbdec_json_message(d, fd->message, s, cnt, depth + 1);
	if (cnt == 0) {
		pbdec_default(d, fd, true);
		return 0;
	}
	{
		struct pb_occ o = d->occ[s + cnt - 1];
		return pbdec_scalar(d, fd, o.value, o.off, o.len, true);
	}
}

/* The message made of occurrences [src, src+nsrc) as a JSON object (nsrc 0: an empty message). */
static int pbdec_json_message(struct pb_decoder *d, const struct pb_message *msg, size_t src, size_t nsrc,
			      int depth)
{
	size_t base, cur, fi;
	bool first = true;

	if (depth > PB_DEPTH_MAX)
		return pbdec_too_deep(d, src, nsrc);
	if (textbuf_failed(&d->out))
		return -1;
	if (pbdec_gather(d, msg, src, nsrc, &base) < 0)
		return -1;
	textbuf_putc(&d->out, '{');
	cur = base;
	for (fi = 0; fi < msg->nfields; fi++) {
		const struct pb_field *fd = &msg->fields[fi];
		size_t s = cur;

		while (cur < d->nocc && d->occ[cur].field == fi)
			cur++;
		if (cur == s && fd->has_presence)
			continue;
		if (!first)
			textbuf_putc(&d->out, ',');
		first = false;
		textbuf_json_string(&d->out, fd->name, strlen(fd->name));
		textbuf_putc(&d->out, ':');
		if (pbdec_json_field(d, fd, s, cur - s, depth) < 0)
			return -1;
	}
	textbuf_putc(&d->out, '}');
	d->nocc = base;
	return 0;
}

/* One column's value for the current message. */
static int pbdec_column(struct pb_decoder *d, struct pb_column *col)
{
	const struct pb_field *fd = &d->root->fields[col->field];
	size_t s = d->root_first[col->field], cnt = d->root_count[col->field];
	size_t start = d->out.len;
	bool is_msg = fd->type == PB_TYPE_MESSAGE || fd->type == PB_TYPE_GROUP;

	col->where = PB_COL_OUT;
	if (cnt == 0 && fd->has_presence) {
		col->where = PB_COL_NULL;
		return 0;
	}
	if (fd->repeated || is_msg || col->json) {
		if (pbdec_json_field(d, fd, s, cnt, 0) < 0)
			return -1;
	} else if (cnt == 0) {
		pbdec_default(d, fd, false);
	} else {
		struct pb_occ o = d->occ[s + cnt - 1];

		if (fd->type == PB_TYPE_STRING) {
			/* The text is in the message as it is. */
			if (pbdec_string_check(d, fd, o.off, o.len) < 0)
				return -1;
			col->where = PB_COL_BUF;
			col->off = o.off;
			col->len = o.len;
			return 0;
		}
		if (pbdec_scalar(d, fd, o.value, o.off, o.len, false) < 0)
			return -1;
	}
	col->off = start;
	col->len = d->out.len - start;
	return 0;
}

int pb_decoder_decode(struct pb_decoder *pd, const char *buf, size_t len, struct decode_row *row, char *err,
		      size_t errlen)
{
	size_t i;

	row->fields = pd->fields;
	row->nfields = 0;
	if (len > DECODE_MESSAGE_MAX) {
		snprintf(err, errlen, "message is %zu bytes, more than the %zu-byte limit", len, DECODE_MESSAGE_MAX);
		return -1;
	}
	pd->buf = (const uint8_t *)buf;
	pd->len = len;
	pd->err = err;
	pd->errlen = errlen;
	pd->nocc = 0;
	textbuf_reset(&pd->out);

	if (pbdec_scan(pd, pd->root, 0, len) < 0 || pbdec_sort(pd, pd->root, 0) < 0)
		return -1;
	for (i = 0; i < pd->root->nfields; i++)
		pd->root_count[i] = 0;
	for (i = pd->nocc; i-- > 0;) {
		pd->root_first[pd->occ[i].field] = i;
		pd->root_count[pd->occ[i].field]++;
	}
	for (i = 0; i < pd->ncolumns; i++) {
		if (pbdec_column(pd, &pd->cols[i]) < 0) {
			if (textbuf_failed(&pd->out))
				textbuf_error(&pd->out, err, errlen);
			return -1;
		}
	}
	if (textbuf_failed(&pd->out)) {
		textbuf_error(&pd->out, err, errlen);
		return -1;
	}
	/* out has stopped moving: now the offsets become pointers. */
	for (i = 0; i < pd->ncolumns; i++) {
		const struct pb_column *col = &pd->cols[i];
		struct decode_field *f = &pd->fields[i];

		f->is_null = col->where == PB_COL_NULL;
		f->ptr = col->where == PB_COL_BUF ? buf + col->off : col->where == PB_COL_OUT ? pd->out.data + col->off : NULL;
		f->len = col->where == PB_COL_NULL ? 0 : col->len;
		if (f->ptr == NULL && !f->is_null)
			f->ptr = "";
	}
	row->nfields = pd->ncolumns;
	return 0;
}

/* Reads the descriptor set file whole, with a cap. */
static int pbdec_read_file(const char *path, struct textbuf *tb, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = -1;

	if (fd < 0) {
		snprintf(err, errlen, "PROTOBUF_OPTION.DESCRIPTOR_FILE: cannot read \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "PROTOBUF_OPTION.DESCRIPTOR_FILE: \"%s\" is a directory, not a descriptor set file",
			 path);
		goto out;
	}
	for (;;) {
		char chunk[65536];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "PROTOBUF_OPTION.DESCRIPTOR_FILE: cannot read \"%s\": %s", path,
				 strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		textbuf_put(tb, chunk, (size_t)n);
		if (textbuf_failed(tb)) {
			snprintf(err, errlen, "PROTOBUF_OPTION.DESCRIPTOR_FILE: \"%s\" is larger than %zu bytes or memory ran out",
				 path, tb->max);
			goto out;
		}
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

void pb_decoder_free(struct pb_decoder *pd)
{
	if (pd == NULL)
		return;
	pb_pool_free(pd->pool);
	free(pd->cols);
	free(pd->fields);
	free(pd->occ);
	free(pd->counts);
	free(pd->root_first);
	free(pd->root_count);
	textbuf_free(&pd->out);
	free(pd);
}

/* "a, b, c, ..." for a "no such field" error. */
static void pbdec_field_names(const struct pb_message *msg, char *buf, size_t buflen)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < msg->nfields && off < buflen; i++) {
		int n = snprintf(buf + off, buflen - off, "%s%s", i ? ", " : "", msg->fields[i].name);
		if (n > 0)
			off += (size_t)n;
	}
	if (msg->nfields == 0)
		snprintf(buf, buflen, "none");
}

struct pb_decoder *pb_decoder_new(const struct js_input *in, char *err, size_t errlen)
{
	struct pb_decoder *pd = NULL;
	struct textbuf desc;
	const char *where;
	char sub[512];
	size_t i, maxf = 0;

	textbuf_init(&desc, PB_DESCRIPTOR_MAX);
	if (in->protobuf_message == NULL || in->protobuf_message[0] == '\0') {
		snprintf(err, errlen, "PROTOBUF_OPTION.MESSAGE is required: the full name of the message type, "
			 "e.g. shop.v1.Order");
		goto fail;
	}
	if ((in->protobuf_descriptor_file != NULL) == (in->protobuf_descriptor != NULL)) {
		snprintf(err, errlen, "PROTOBUF_OPTION needs exactly one of DESCRIPTOR_FILE (a path) and DESCRIPTOR "
			 "(base64), made by protoc --include_imports --descriptor_set_out=FILE");
		goto fail;
	}
	if (in->ncolumns == 0) {
		snprintf(err, errlen, "COLUMNS is empty: name the message fields to load");
		goto fail;
	}
	if (in->protobuf_descriptor_file != NULL) {
		if (pbdec_read_file(in->protobuf_descriptor_file, &desc, err, errlen) < 0)
			goto fail;
		where = "PROTOBUF_OPTION.DESCRIPTOR_FILE";
	} else {
		if (textbuf_from_base64(&desc, in->protobuf_descriptor, strlen(in->protobuf_descriptor), sub,
					sizeof(sub)) < 0) {
			snprintf(err, errlen, "PROTOBUF_OPTION.DESCRIPTOR: %s", sub);
			goto fail;
		}
		where = "PROTOBUF_OPTION.DESCRIPTOR";
	}

	pd = calloc(1, sizeof(*pd));
	if (pd == NULL)
		goto oom;
	textbuf_init(&pd->out, DECODE_ROW_MAX);
	if (pb_pool_load((const uint8_t *)desc.data, desc.len, &pd->pool, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "%s: %s", where, sub);
		goto fail;
	}
	pd->root = pb_pool_message(pd->pool, in->protobuf_message);
	if (pd->root == NULL) {
		pb_pool_message_names(pd->pool, 8, sub, sizeof(sub));
		snprintf(err, errlen, "PROTOBUF_OPTION.MESSAGE: the descriptor set has no message type \"%s\"; "
			 "it has %s", in->protobuf_message, sub);
		goto fail;
	}
	pd->ncolumns = in->ncolumns;
	pd->cols = calloc(in->ncolumns, sizeof(*pd->cols));
	pd->fields = calloc(in->ncolumns, sizeof(*pd->fields));
	pd->root_first = calloc(pd->root->nfields + 1, sizeof(*pd->root_first));
	pd->root_count = calloc(pd->root->nfields + 1, sizeof(*pd->root_count));
	for (i = 0; i < pd->pool->nmessages; i++)
		if (pd->pool->messages[i]->nfields > maxf)
			maxf = pd->pool->messages[i]->nfields;
	pd->counts = calloc(maxf + 1, sizeof(*pd->counts));
	if (pd->cols == NULL || pd->fields == NULL || pd->root_first == NULL || pd->root_count == NULL ||
	    pd->counts == NULL)
		goto oom;
	for (i = 0; i < in->ncolumns; i++) {
		const struct js_column *c = &in->columns[i];
		int idx = c->name != NULL ? pb_message_field_by_name(pd->root, c->name) : -1;

		if (idx < 0) {
			pbdec_field_names(pd->root, sub, sizeof(sub));
			snprintf(err, errlen, "COLUMNS[%zu] \"%s\": message %s has no field of that name; its fields are %s",
				 i, c->name ? c->name : "", pd->root->full_name, sub);
			goto fail;
		}
		pd->cols[i].field = idx;
		pd->cols[i].json = js_column_is_json(c);
	}
	textbuf_free(&desc);
	return pd;

oom:
	snprintf(err, errlen, "out of memory");
fail:
	textbuf_free(&desc);
	pb_decoder_free(pd);
	return NULL;
}
