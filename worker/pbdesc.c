#include "pbdesc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbwire.h"

/* Message types nest at most this deep in a descriptor (a guard against a
 * crafted set; real ones nest a few levels). */
#define PBDESC_NEST_MAX 64

/* While loading: the set's bytes and where errors go. */
struct pbd {
	const uint8_t *buf;
	size_t len;
	struct pb_pool *pool;
	size_t messages_cap, enums_cap;
	char *err;
	size_t errlen;
};

/* Field numbers of descriptor.proto. */
enum {
	FDS_FILE = 1,
	FILE_PACKAGE = 2,
	FILE_MESSAGE_TYPE = 4,
	FILE_ENUM_TYPE = 5,
	FILE_SYNTAX = 12,
	MSG_NAME = 1,
	MSG_FIELD = 2,
	MSG_NESTED_TYPE = 3,
	MSG_ENUM_TYPE = 4,
	MSG_OPTIONS = 7,
	MSGOPT_MAP_ENTRY = 7,
	FIELD_NAME = 1,
	FIELD_NUMBER = 3,
	FIELD_LABEL = 4,
	FIELD_TYPE = 5,
	FIELD_TYPE_NAME = 6,
	FIELD_ONEOF_INDEX = 9,
	FIELD_JSON_NAME = 10,
	FIELD_PROTO3_OPTIONAL = 17,
	ENUM_NAME = 1,
	ENUM_VALUE = 2,
	ENUMVAL_NAME = 1,
	ENUMVAL_NUMBER = 2,
	LABEL_REPEATED = 3,
};

static int pbd_next(struct pbd *d, size_t end, size_t *pos, struct pb_wire_field *f)
{
	int rc = pb_wire_next(d->buf, end, pos, f);

	if (rc < 0)
		snprintf(d->err, d->errlen, "the descriptor set is not a valid FileDescriptorSet: %s data at byte %zu",
			 pb_wire_strerror(rc), *pos);
	return rc;
}

static int pbd_oom(struct pbd *d)
{
	snprintf(d->err, d->errlen, "out of memory loading the descriptor set");
	return -1;
}

/* A LEN field as a new NUL-terminated string. */
static int pbd_str(struct pbd *d, const struct pb_wire_field *f, char **out)
{
	char *s;

	if (memchr(d->buf + f->off, 0, f->len) != NULL) {
		snprintf(d->err, d->errlen, "the descriptor set has a name with a NUL byte at byte %zu", f->off);
		return -1;
	}
	s = malloc(f->len + 1);
	if (s == NULL)
		return pbd_oom(d);
	memcpy(s, d->buf + f->off, f->len);
	s[f->len] = '\0';
	free(*out);
	*out = s;
	return 0;
}

/* prefix + "." + name, or name when prefix is empty. */
static char *pbd_join(const char *prefix, const char *name)
{
	size_t pl = strlen(prefix), nl = strlen(name);
	char *s = malloc(pl + nl + 2);

	if (s == NULL)
		return NULL;
	if (pl == 0) {
		memcpy(s, name, nl + 1);
		return s;
	}
	memcpy(s, prefix, pl);
	s[pl] = '.';
	memcpy(s + pl + 1, name, nl + 1);
	return s;
}

static void pb_enum_free(struct pb_enum *enm)
{
	size_t i;

	if (enm == NULL)
		return;
	for (i = 0; i < enm->nvalues; i++)
		free(enm->values[i].name);
	free(enm->values);
	free(enm->full_name);
	free(enm);
}

static void pb_message_free(struct pb_message *msg)
{
	size_t i;

	if (msg == NULL)
		return;
	for (i = 0; i < msg->nfields; i++) {
		free(msg->fields[i].name);
		free(msg->fields[i].json_name);
		free(msg->fields[i].type_name);
	}
	free(msg->fields);
	free(msg->by_number);
	free(msg->full_name);
	free(msg);
}

void pb_pool_free(struct pb_pool *pool)
{
	size_t i;

	if (pool == NULL)
		return;
	for (i = 0; i < pool->nmessages; i++)
		pb_message_free(pool->messages[i]);
	for (i = 0; i < pool->nenums; i++)
		pb_enum_free(pool->enums[i]);
	free(pool->messages);
	free(pool->enums);
	free(pool);
}

static int pbd_enum(struct pbd *d, size_t off, size_t len, const char *prefix)
{
	struct pb_enum *enm = calloc(1, sizeof(*enm));
	struct pb_wire_field f, vf;
	size_t pos = off, cap = 0;
	char *name = NULL;
	int rc;

	if (enm == NULL)
		return pbd_oom(d);
	while ((rc = pbd_next(d, off + len, &pos, &f)) > 0) {
		if (f.wire != PB_WIRE_LEN)
			continue;
		if (f.number == ENUM_NAME) {
			if (pbd_str(d, &f, &name) < 0)
				goto fail;
		} else if (f.number == ENUM_VALUE) {
			struct pb_enum_value *v;
			size_t vpos = f.off;

			if (enm->nvalues == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				struct pb_enum_value *p = realloc(enm->values, ncap * sizeof(*p));
				if (p == NULL) {
					pbd_oom(d);
					goto fail;
				}
				enm->values = p;
				cap = ncap;
			}
			v = &enm->values[enm->nvalues++];
			memset(v, 0, sizeof(*v));
			while ((rc = pbd_next(d, f.off + f.len, &vpos, &vf)) > 0) {
				if (vf.number == ENUMVAL_NAME && vf.wire == PB_WIRE_LEN) {
					if (pbd_str(d, &vf, &v->name) < 0)
						goto fail;
				} else if (vf.number == ENUMVAL_NUMBER && vf.wire == PB_WIRE_VARINT) {
					v->number = (int32_t)(uint32_t)vf.value;
				}
			}
			if (rc < 0)
				goto fail;
			if (v->name == NULL) {
				snprintf(d->err, d->errlen, "the descriptor set has an enum value without a name");
				goto fail;
			}
		}
	}
	if (rc < 0)
		goto fail;
	if (name == NULL) {
		snprintf(d->err, d->errlen, "the descriptor set has an enum without a name");
		goto fail;
	}
	enm->full_name = pbd_join(prefix, name);
	if (enm->full_name == NULL) {
		pbd_oom(d);
		goto fail;
	}
	free(name);
	if (d->pool->nenums == d->enums_cap) {
		size_t ncap = d->enums_cap ? d->enums_cap * 2 : 16;
		struct pb_enum **p = realloc(d->pool->enums, ncap * sizeof(*p));
		if (p == NULL) {
			pb_enum_free(enm);
			return pbd_oom(d);
		}
		d->pool->enums = p;
		d->enums_cap = ncap;
	}
	d->pool->enums[d->pool->nenums++] = enm;
	return 0;
fail:
	free(name);
	pb_enum_free(enm);
	return -1;
}

static int pbd_field(struct pbd *d, size_t off, size_t len, bool proto3, struct pb_field *fd)
{
	struct pb_wire_field f;
	size_t pos = off;
	bool oneof = false;
	int rc, label = 0;

	while ((rc = pbd_next(d, off + len, &pos, &f)) > 0) {
		switch (f.number) {
		case FIELD_NAME:
			if (f.wire == PB_WIRE_LEN && pbd_str(d, &f, &fd->name) < 0)
				return -1;
			break;
		case FIELD_JSON_NAME:
			if (f.wire == PB_WIRE_LEN && pbd_str(d, &f, &fd->json_name) < 0)
				return -1;
			break;
		case FIELD_TYPE_NAME:
			if (f.wire == PB_WIRE_LEN && pbd_str(d, &f, &fd->type_name) < 0)
				return -1;
			break;
		case FIELD_NUMBER:
			if (f.wire == PB_WIRE_VARINT)
				fd->number = (uint32_t)f.value;
			break;
		case FIELD_LABEL:
			if (f.wire == PB_WIRE_VARINT)
				label = (int)f.value;
			break;
		case FIELD_TYPE:
			if (f.wire == PB_WIRE_VARINT)
				fd->type = (int)f.value;
			break;
		case FIELD_ONEOF_INDEX:
			/* proto3 `optional` is a one-field oneof too (proto3_optional marks it). */
			if (f.wire == PB_WIRE_VARINT)
				oneof = true;
			break;
		case FIELD_PROTO3_OPTIONAL:
			if (f.wire == PB_WIRE_VARINT && f.value)
				oneof = true;
			break;
		default:
			break;
		}
	}
	if (rc < 0)
		return -1;
	if (fd->name == NULL || fd->number == 0 || fd->number > 0x1fffffff) {
		snprintf(d->err, d->errlen, "the descriptor set has a field without a name or a valid number");
		return -1;
	}
	if (fd->type < 0 || fd->type > PB_TYPE_SINT64) {
		snprintf(d->err, d->errlen, "field %s has unknown type %d in the descriptor set", fd->name, fd->type);
		return -1;
	}
	fd->repeated = label == LABEL_REPEATED;
	/* Presence as protobuf defines it: proto2 singular fields, message
	 * fields and oneof members have it; proto3 plain scalars do not. */
	if (fd->repeated)
		fd->has_presence = false;
	else if (fd->type == PB_TYPE_MESSAGE || fd->type == PB_TYPE_GROUP || oneof)
		fd->has_presence = true;
	else
		fd->has_presence = !proto3;
	return 0;
}

static int pbd_message(struct pbd *d, size_t off, size_t len, const char *prefix, bool proto3, int depth)
{
	struct pb_message *msg;
	struct pb_wire_field f, of;
	size_t pos = off, cap = 0;
	char *name = NULL;
	int rc;

	if (depth > PBDESC_NEST_MAX) {
		snprintf(d->err, d->errlen, "the descriptor set nests message types more than %d deep",
			 PBDESC_NEST_MAX);
		return -1;
	}
	msg = calloc(1, sizeof(*msg));
	if (msg == NULL)
		return pbd_oom(d);
	/* The name first: nested types are named after it, wherever it is on the wire. */
	while ((rc = pbd_next(d, off + len, &pos, &f)) > 0) {
		if (f.number == MSG_NAME && f.wire == PB_WIRE_LEN) {
			if (pbd_str(d, &f, &name) < 0)
				goto fail;
		} else if (f.number == MSG_OPTIONS && f.wire == PB_WIRE_LEN) {
			size_t opos = f.off;
			while ((rc = pbd_next(d, f.off + f.len, &opos, &of)) > 0)
				if (of.number == MSGOPT_MAP_ENTRY && of.wire == PB_WIRE_VARINT)
					msg->map_entry = of.value != 0;
			if (rc < 0)
				goto fail;
		}
	}
	if (rc < 0)
		goto fail;
	if (name == NULL) {
		snprintf(d->err, d->errlen, "the descriptor set has a message type without a name");
		goto fail;
	}
	msg->full_name = pbd_join(prefix, name);
	free(name);
	name = NULL;
	if (msg->full_name == NULL) {
		pbd_oom(d);
		goto fail;
	}

	pos = off;
	while ((rc = pbd_next(d, off + len, &pos, &f)) > 0) {
		if (f.wire != PB_WIRE_LEN)
			continue;
		if (f.number == MSG_FIELD) {
			if (msg->nfields == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				struct pb_field *p = realloc(msg->fields, ncap * sizeof(*p));
				if (p == NULL) {
					pbd_oom(d);
					goto fail;
				}
				msg->fields = p;
				cap = ncap;
			}
			memset(&msg->fields[msg->nfields], 0, sizeof(msg->fields[0]));
			msg->nfields++;
			if (pbd_field(d, f.off, f.len, proto3, &msg->fields[msg->nfields - 1]) < 0)
				goto fail;
		} else if (f.number == MSG_NESTED_TYPE) {
			if (pbd_message(d, f.off, f.len, msg->full_name, proto3, depth + 1) < 0)
				goto fail;
		} else if (f.number == MSG_ENUM_TYPE) {
			if (pbd_enum(d, f.off, f.len, msg->full_name) < 0)
				goto fail;
		}
	}
	if (rc < 0)
		goto fail;

	if (d->pool->nmessages == d->messages_cap) {
		size_t ncap = d->messages_cap ? d->messages_cap * 2 : 16;
		struct pb_message **p = realloc(d->pool->messages, ncap * sizeof(*p));
		if (p == NULL) {
			pbd_oom(d);
			goto fail;
		}
		d->pool->messages = p;
		d->messages_cap = ncap;
	}
	d->pool->messages[d->pool->nmessages++] = msg;
	return 0;
fail:
	free(name);
	pb_message_free(msg);
	return -1;
}

static int pbd_file(struct pbd *d, size_t off, size_t len)
{
	struct pb_wire_field f;
	size_t pos = off;
	char *package = NULL, *syntax = NULL;
	bool proto3;
	int rc;

	while ((rc = pbd_next(d, off + len, &pos, &f)) > 0) {
		if (f.wire != PB_WIRE_LEN)
			continue;
		if (f.number == FILE_PACKAGE && pbd_str(d, &f, &package) < 0)
			goto fail;
		if (f.number == FILE_SYNTAX && pbd_str(d, &f, &syntax) < 0)
			goto fail;
	}
	if (rc < 0)
		goto fail;
	proto3 = syntax != NULL && strcmp(syntax, "proto3") == 0;
	pos = off;
	while ((rc = pbd_next(d, off + len, &pos, &f)) > 0) {
		if (f.wire != PB_WIRE_LEN)
			continue;
		if (f.number == FILE_MESSAGE_TYPE &&
		    pbd_message(d, f.off, f.len, package ? package : "", proto3, 0) < 0)
			goto fail;
		if (f.number == FILE_ENUM_TYPE && pbd_enum(d, f.off, f.len, package ? package : "") < 0)
			goto fail;
	}
	if (rc < 0)
		goto fail;
	free(package);
	free(syntax);
	return 0;
fail:
	free(package);
	free(syntax);
	return -1;
}

static int pbd_cmp_message(const void *a, const void *b)
{
	return strcmp((*(struct pb_message *const *)a)->full_name, (*(struct pb_message *const *)b)->full_name);
}

static int pbd_cmp_enum(const void *a, const void *b)
{
	return strcmp((*(struct pb_enum *const *)a)->full_name, (*(struct pb_enum *const *)b)->full_name);
}

static const struct pb_enum *pb_pool_enum(const struct pb_pool *pool, const char *full_name)
{
	size_t lo = 0, hi = pool->nenums;

	if (full_name[0] == '.')
		full_name++;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(pool->enums[mid]->full_name, full_name);
		if (c == 0)
			return pool->enums[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct pb_message *pb_pool_message(const struct pb_pool *pool, const char *full_name)
{
	size_t lo = 0, hi = pool->nmessages;

	if (full_name[0] == '.')
		full_name++;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(pool->messages[mid]->full_name, full_name);
		if (c == 0)
			return pool->messages[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct pbd_numidx {
	uint32_t number;
	uint32_t idx;
};

static int pbd_cmp_number(const void *a, const void *b)
{
	const struct pbd_numidx *x = a, *y = b;

	return x->number < y->number ? -1 : x->number > y->number;
}

static int pbd_index(struct pbd *d, struct pb_message *msg)
{
	struct pbd_numidx *tmp = malloc((msg->nfields ? msg->nfields : 1) * sizeof(*tmp));
	size_t j;

	msg->by_number = malloc((msg->nfields ? msg->nfields : 1) * sizeof(*msg->by_number));
	if (tmp == NULL || msg->by_number == NULL) {
		free(tmp);
		return pbd_oom(d);
	}
	for (j = 0; j < msg->nfields; j++) {
		tmp[j].number = msg->fields[j].number;
		tmp[j].idx = (uint32_t)j;
	}
	qsort(tmp, msg->nfields, sizeof(*tmp), pbd_cmp_number);
	for (j = 0; j < msg->nfields; j++)
		msg->by_number[j] = tmp[j].idx;
	free(tmp);
	return 0;
}

/* Whether s is a protobuf identifier ([A-Za-z_][A-Za-z0-9_]*), or with
 * dotted, identifiers joined by dots.  protoc writes nothing else; a set
 * with other names is made by hand or damaged, and its names would reach
 * rows (enum values as text, field names as JSON keys) unescaped. */
static bool pbd_is_ident(const char *s, bool dotted)
{
	bool start = true;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (dotted && c == '.' && !start) {
			start = true;
			continue;
		}
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (!start && c >= '0' && c <= '9')))
			return false;
		start = false;
	}
	return !start;
}

/* Map keys become JSON object keys: protobuf allows only integral, bool and
 * string key types. */
static bool pbd_is_map_key_type(int type)
{
	switch (type) {
	case PB_TYPE_INT32: case PB_TYPE_INT64: case PB_TYPE_UINT32: case PB_TYPE_UINT64:
	case PB_TYPE_SINT32: case PB_TYPE_SINT64: case PB_TYPE_FIXED32: case PB_TYPE_FIXED64:
	case PB_TYPE_SFIXED32: case PB_TYPE_SFIXED64: case PB_TYPE_BOOL: case PB_TYPE_STRING:
		return true;
	default:
		return false;
	}
}

static int pbd_check_names(struct pbd *d)
{
	for (size_t i = 0; i < d->pool->nmessages; i++) {
		const struct pb_message *msg = d->pool->messages[i];

		if (!pbd_is_ident(msg->full_name, true)) {
			snprintf(d->err, d->errlen, "the descriptor set names a message type \"%.64s\", "
				 "which is not a protobuf name; build the set with protoc", msg->full_name);
			return -1;
		}
		for (size_t j = 0; j < msg->nfields; j++) {
			if (!pbd_is_ident(msg->fields[j].name, false)) {
				snprintf(d->err, d->errlen, "message %s has a field named \"%.64s\", which is "
					 "not a protobuf name; build the set with protoc", msg->full_name,
					 msg->fields[j].name);
				return -1;
			}
			/* Columns find fields by name: two of one name would make
			 * the column's field (and its rendering) a matter of order. */
			for (size_t k = 0; k < j; k++) {
				if (strcmp(msg->fields[k].name, msg->fields[j].name) == 0) {
					snprintf(d->err, d->errlen, "message %s has two fields named %s; "
						 "build the set with protoc", msg->full_name, msg->fields[j].name);
					return -1;
				}
			}
		}
	}
	for (size_t i = 0; i < d->pool->nenums; i++) {
		const struct pb_enum *enm = d->pool->enums[i];

		if (!pbd_is_ident(enm->full_name, true)) {
			snprintf(d->err, d->errlen, "the descriptor set names an enum \"%.64s\", which is "
				 "not a protobuf name; build the set with protoc", enm->full_name);
			return -1;
		}
		for (size_t j = 0; j < enm->nvalues; j++) {
			if (!pbd_is_ident(enm->values[j].name, false)) {
				snprintf(d->err, d->errlen, "enum %s has a value named \"%.64s\", which is "
					 "not a protobuf name; build the set with protoc", enm->full_name,
					 enm->values[j].name);
				return -1;
			}
		}
	}
	return 0;
}

/* The well-known types: name, then the type of field 1, 2, ... (0: any). */
static const struct {
	const char *name;
	int wkt;
	int types[6];
} pbd_wkts[] = {
	{ "google.protobuf.Timestamp", PB_WKT_TIMESTAMP, { PB_TYPE_INT64, PB_TYPE_INT32 } },
	{ "google.protobuf.Duration", PB_WKT_DURATION, { PB_TYPE_INT64, PB_TYPE_INT32 } },
	{ "google.protobuf.DoubleValue", PB_WKT_DOUBLE, { PB_TYPE_DOUBLE } },
	{ "google.protobuf.FloatValue", PB_WKT_FLOAT, { PB_TYPE_FLOAT } },
	{ "google.protobuf.Int64Value", PB_WKT_INT64, { PB_TYPE_INT64 } },
	{ "google.protobuf.UInt64Value", PB_WKT_UINT64, { PB_TYPE_UINT64 } },
	{ "google.protobuf.Int32Value", PB_WKT_INT32, { PB_TYPE_INT32 } },
	{ "google.protobuf.UInt32Value", PB_WKT_UINT32, { PB_TYPE_UINT32 } },
	{ "google.protobuf.BoolValue", PB_WKT_BOOL, { PB_TYPE_BOOL } },
	{ "google.protobuf.StringValue", PB_WKT_STRING, { PB_TYPE_STRING } },
	{ "google.protobuf.BytesValue", PB_WKT_BYTES, { PB_TYPE_BYTES } },
	{ "google.protobuf.Struct", PB_WKT_STRUCT, { PB_TYPE_MESSAGE } },
	{ "google.protobuf.Value", PB_WKT_VALUE,
	  { PB_TYPE_ENUM, PB_TYPE_DOUBLE, PB_TYPE_STRING, PB_TYPE_BOOL, PB_TYPE_MESSAGE, PB_TYPE_MESSAGE } },
	{ "google.protobuf.ListValue", PB_WKT_LIST, { PB_TYPE_MESSAGE } },
	{ "google.protobuf.Any", PB_WKT_ANY, { PB_TYPE_STRING, PB_TYPE_BYTES } },
};

/* Marks msg as a well-known type when its name is one and its fields are the
 * ones the decoder reads (a set may carry its own message of that name). */
static void pbd_wkt_mark(struct pb_message *msg)
{
	for (size_t i = 0; i < sizeof(pbd_wkts) / sizeof(pbd_wkts[0]); i++) {
		if (strcmp(msg->full_name, pbd_wkts[i].name) != 0)
			continue;
		for (uint32_t n = 1; n <= 6 && pbd_wkts[i].types[n - 1] != 0; n++) {
			int idx = pb_message_field_by_number(msg, n);

			if (idx < 0 || msg->fields[idx].type != pbd_wkts[i].types[n - 1])
				return;
		}
		if (pbd_wkts[i].wkt == PB_WKT_STRUCT) {
			int idx = pb_message_field_by_number(msg, 1);
			const struct pb_message *entry = msg->fields[idx].message;
			int v = msg->fields[idx].map ? pb_message_field_by_number(entry, 2) : -1;

			if (v < 0 || entry->fields[v].type != PB_TYPE_MESSAGE)
				return;
		}
		if (pbd_wkts[i].wkt == PB_WKT_LIST && !msg->fields[pb_message_field_by_number(msg, 1)].repeated)
			return;
		msg->wkt = pbd_wkts[i].wkt;
		return;
	}
}

/* Links fields to their types and indexes fields by number. */
static int pbd_resolve(struct pbd *d)
{
	size_t i, j;

	for (i = 0; i < d->pool->nmessages; i++) {
		struct pb_message *msg = d->pool->messages[i];

		for (j = 0; j < msg->nfields; j++) {
			struct pb_field *fd = &msg->fields[j];
			bool want_msg = fd->type == PB_TYPE_MESSAGE || fd->type == PB_TYPE_GROUP;

			if (want_msg || fd->type == PB_TYPE_ENUM || fd->type == 0) {
				if (fd->type_name == NULL) {
					snprintf(d->err, d->errlen, "field %s.%s has no type in the descriptor set",
						 msg->full_name, fd->name);
					return -1;
				}
				if (want_msg || fd->type == 0)
					fd->message = pb_pool_message(d->pool, fd->type_name);
				if (!want_msg)
					fd->enm = pb_pool_enum(d->pool, fd->type_name);
				if (fd->type == 0)
					fd->type = fd->message ? PB_TYPE_MESSAGE : PB_TYPE_ENUM;
				if (fd->message == NULL && fd->enm == NULL) {
					snprintf(d->err, d->errlen,
						 "field %s.%s has type %s, which is not in the descriptor set; "
						 "build the set with protoc --include_imports",
						 msg->full_name, fd->name, fd->type_name);
					return -1;
				}
				if (fd->type == PB_TYPE_MESSAGE && fd->message->map_entry && fd->repeated)
					fd->map = true;
				if (fd->enm != NULL && fd->enm->nvalues == 0) {
					snprintf(d->err, d->errlen, "enum %s has no values in the descriptor set",
						 fd->enm->full_name);
					return -1;
				}
			}
		}
		if (pbd_index(d, msg) < 0)
			return -1;
		if (msg->map_entry && (pb_message_field_by_number(msg, 1) < 0 || pb_message_field_by_number(msg, 2) < 0)) {
			snprintf(d->err, d->errlen, "map entry %s lacks its key or value field", msg->full_name);
			return -1;
		}
		if (msg->map_entry && !pbd_is_map_key_type(msg->fields[pb_message_field_by_number(msg, 1)].type)) {
			snprintf(d->err, d->errlen, "map entry %s has a key of a type protobuf does not allow "
				 "for map keys (only integers, bool and string)", msg->full_name);
			return -1;
		}
	}
	return 0;
}

int pb_pool_load(const uint8_t *buf, size_t len, struct pb_pool **out, char *err, size_t errlen)
{
	struct pbd d = { buf, len, NULL, 0, 0, err, errlen };
	struct pb_wire_field f;
	size_t pos = 0, nfiles = 0;
	int rc;

	*out = NULL;
	d.pool = calloc(1, sizeof(*d.pool));
	if (d.pool == NULL)
		return pbd_oom(&d);
	while ((rc = pbd_next(&d, len, &pos, &f)) > 0) {
		if (f.number != FDS_FILE || f.wire != PB_WIRE_LEN)
			continue;
		nfiles++;
		if (pbd_file(&d, f.off, f.len) < 0)
			goto fail;
	}
	if (rc < 0)
		goto fail;
	if (nfiles == 0 || d.pool->nmessages == 0) {
		snprintf(err, errlen, "the descriptor set holds no message types; "
			 "make it with protoc --include_imports --descriptor_set_out=FILE");
		goto fail;
	}
	qsort(d.pool->messages, d.pool->nmessages, sizeof(*d.pool->messages), pbd_cmp_message);
	if (d.pool->nenums > 0)
		qsort(d.pool->enums, d.pool->nenums, sizeof(*d.pool->enums), pbd_cmp_enum);
	if (pbd_check_names(&d) < 0 || pbd_resolve(&d) < 0)
		goto fail;
	/* after pbd_resolve: every message's fields are linked and indexed */
	for (size_t i = 0; i < d.pool->nmessages; i++)
		pbd_wkt_mark(d.pool->messages[i]);
	*out = d.pool;
	return 0;
fail:
	pb_pool_free(d.pool);
	return -1;
}

void pb_pool_message_names(const struct pb_pool *pool, size_t max, char *buf, size_t buflen)
{
	size_t i, shown = 0, total = 0, off = 0;

	if (buflen == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < pool->nmessages; i++) {
		if (pool->messages[i]->map_entry)
			continue;
		total++;
		if (shown < max && off < buflen) {
			int n = snprintf(buf + off, buflen - off, "%s%s", shown ? ", " : "", pool->messages[i]->full_name);
			if (n > 0)
				off += (size_t)n;
			shown++;
		}
	}
	if (total > shown && off < buflen)
		snprintf(buf + off, buflen - off, ", ... (%zu in all)", total);
}

int pb_message_field_by_number(const struct pb_message *msg, uint32_t number)
{
	size_t lo = 0, hi = msg->nfields;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t n = msg->fields[msg->by_number[mid]].number;
		if (n == number)
			return (int)msg->by_number[mid];
		if (n < number)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int pb_message_field_by_name(const struct pb_message *msg, const char *name)
{
	size_t i;

	for (i = 0; i < msg->nfields; i++)
		if (strcmp(msg->fields[i].name, name) == 0)
			return (int)i;
	for (i = 0; i < msg->nfields; i++)
		if (msg->fields[i].json_name != NULL && strcmp(msg->fields[i].json_name, name) == 0)
			return (int)i;
	return -1;
}

const char *pb_enum_value_name(const struct pb_enum *enm, int32_t number)
{
	size_t i;

	for (i = 0; i < enm->nvalues; i++)
		if (enm->values[i].number == number)
			return enm->values[i].name;
	return NULL;
}
