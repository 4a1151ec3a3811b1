/* Reading the protobuf wire format: varints, tags, fixed-width values,
 * length-delimited payloads and groups.  Used both for descriptor sets (which
 * are protobuf messages themselves) and for the messages a job consumes.
 *
 * Everything works on (buf, end) with a position; nothing is allocated and
 * nothing past end is read.  Offsets are absolute in buf, so an error can name
 * the byte of the whole message where it happened.
 */
#ifndef SS_WORKER_PBWIRE_H
#define SS_WORKER_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

enum pb_wire_type {
	PB_WIRE_VARINT = 0,
	PB_WIRE_I64 = 1,
	PB_WIRE_LEN = 2,
	PB_WIRE_SGROUP = 3,
	PB_WIRE_EGROUP = 4,
	PB_WIRE_I32 = 5,
};

/* Results below zero. */
#define PB_WIRE_TRUNCATED (-1) /* the data ends inside a value */
#define PB_WIRE_MALFORMED (-2) /* a varint of more than 10 bytes, field number 0, wire type 6/7,
				* an end-group tag without its start, groups nested too deep */

/* Groups nest at most this deep while being skipped. */
#define PB_WIRE_GROUP_DEPTH_MAX 64

/* One field as read from the wire. */
struct pb_wire_field {
	uint32_t number;
	int wire;       /* enum pb_wire_type */
	uint64_t value; /* VARINT, I64, I32: the raw bits */
	size_t off;     /* LEN: payload start; SGROUP: content start (after the tag) */
	size_t len;     /* LEN: payload length; SGROUP: content length (without the end tag) */
	size_t tag_off; /* where the field's tag starts */
};

/* Reads a varint at *pos (advanced past it). */
int pb_wire_varint(const uint8_t *buf, size_t end, size_t *pos, uint64_t *out);

/* Reads the next field of buf[*pos, end).  Returns 1 with *f filled and *pos
 * past the field (for a group: past its end tag), 0 at end (*pos == end), or
 * PB_WIRE_TRUNCATED/MALFORMED with *pos at the offending byte.  An end-group
 * tag without its start group is MALFORMED. */
int pb_wire_next(const uint8_t *buf, size_t end, size_t *pos, struct pb_wire_field *f);

/* "truncated" / "malformed" for messages. */
const char *pb_wire_strerror(int rc);

#endif
