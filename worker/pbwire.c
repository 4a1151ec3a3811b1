#include "pbwire.h"

int pb_wire_varint(const uint8_t *buf, size_t end, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	size_t p = *pos;
	unsigned shift;

	for (shift = 0; shift < 70; shift += 7) {
		uint8_t b;

		if (p >= end)
			return PB_WIRE_TRUNCATED;
		b = buf[p++];
		/* The 10th byte carries only the top bit; what else it holds is dropped, as protobuf does. */
		v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
		if (!(b & 0x80)) {
			*pos = p;
			*out = v;
			return 0;
		}
	}
	return PB_WIRE_MALFORMED;
}

static int pb_wire_field_read(const uint8_t *buf, size_t end, size_t *pos, int depth, struct pb_wire_field *f);

/* Skips a group's content up to and including its end tag. */
static int pb_wire_group_skip(const uint8_t *buf, size_t end, size_t *pos, uint32_t number, int depth,
			      size_t *content_end)
{
	struct pb_wire_field inner;

	if (depth > PB_WIRE_GROUP_DEPTH_MAX)
		return PB_WIRE_MALFORMED;
	for (;;) {
		size_t at = *pos;
		uint64_t tag;
		int rc;

		if (at >= end)
			return PB_WIRE_TRUNCATED;
		if ((rc = pb_wire_varint(buf, end, pos, &tag)) < 0)
			return rc;
		if ((tag & 7) == PB_WIRE_EGROUP) {
			if (tag >> 3 != number) {
				*pos = at;
				return PB_WIRE_MALFORMED;
			}
			*content_end = at;
			return 0;
		}
		*pos = at;
		if ((rc = pb_wire_field_read(buf, end, pos, depth + 1, &inner)) < 0)
			return rc;
	}
}

static int pb_wire_field_read(const uint8_t *buf, size_t end, size_t *pos, int depth, struct pb_wire_field *f)
{
	size_t start = *pos;
	uint64_t tag, v;
	int rc;

	f->tag_off = start;
	if ((rc = pb_wire_varint(buf, end, pos, &tag)) < 0)
		return rc;
	if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff || (tag & 7) > 5 || (tag & 7) == PB_WIRE_EGROUP) {
		*pos = start;
		return PB_WIRE_MALFORMED;
	}
	f->number = (uint32_t)(tag >> 3);
	f->wire = (int)(tag & 7);
	f->value = 0;
	f->off = f->len = 0;
	switch (f->wire) {
	case PB_WIRE_VARINT:
		return pb_wire_varint(buf, end, pos, &f->value);
	case PB_WIRE_I64:
	case PB_WIRE_I32: {
		size_t n = f->wire == PB_WIRE_I64 ? 8 : 4, i;

		if (end - *pos < n)
			return PB_WIRE_TRUNCATED;
		for (i = 0; i < n; i++)
			f->value |= (uint64_t)buf[*pos + i] << (8 * i);
		*pos += n;
		return 0;
	}
	case PB_WIRE_LEN:
		if ((rc = pb_wire_varint(buf, end, pos, &v)) < 0)
			return rc;
		if (v > end - *pos)
			return PB_WIRE_TRUNCATED;
		f->off = *pos;
		f->len = (size_t)v;
		*pos += (size_t)v;
		return 0;
	default: { /* PB_WIRE_SGROUP */
		size_t content_end = 0;

		f->off = *pos;
		if ((rc = pb_wire_group_skip(buf, end, pos, f->number, depth, &content_end)) < 0)
			return rc;
		f->len = content_end - f->off;
		return 0;
	}
	}
}

int pb_wire_next(const uint8_t *buf, size_t end, size_t *pos, struct pb_wire_field *f)
{
	int rc;

	if (*pos >= end)
		return 0;
	rc = pb_wire_field_read(buf, end, pos, 0, f);
	return rc < 0 ? rc : 1;
}

const char *pb_wire_strerror(int rc)
{
	return rc == PB_WIRE_TRUNCATED ? "truncated" : "malformed";
}
