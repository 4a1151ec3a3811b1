/* Protobuf message types, read from a FileDescriptorSet (the output of
 * `protoc --include_imports --descriptor_set_out=FILE`).
 *
 * The set is parsed once when a decoder is built.  Only what decoding needs is
 * kept: messages with their fields, enums with their values, map entries,
 * oneofs, presence.  Every type a field names must be in the set (hence
 * --include_imports).  Extensions, services and options other than map_entry
 * are ignored.
 *
 * Ownership: a struct pb_pool owns every message, field, enum and string in it;
 * pb_pool_free() releases them.  The structs are read by decode_pb.c, so their
 * bodies are here; nothing outside pbdesc.c writes them.
 */
#ifndef SS_WORKER_PBDESC_H
#define SS_WORKER_PBDESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* FieldDescriptorProto.Type */
enum pb_type {
	PB_TYPE_DOUBLE = 1,
	PB_TYPE_FLOAT = 2,
	PB_TYPE_INT64 = 3,
	PB_TYPE_UINT64 = 4,
	PB_TYPE_INT32 = 5,
	PB_TYPE_FIXED64 = 6,
	PB_TYPE_FIXED32 = 7,
	PB_TYPE_BOOL = 8,
	PB_TYPE_STRING = 9,
	PB_TYPE_GROUP = 10,
	PB_TYPE_MESSAGE = 11,
	PB_TYPE_BYTES = 12,
	PB_TYPE_UINT32 = 13,
	PB_TYPE_ENUM = 14,
	PB_TYPE_SFIXED32 = 15,
	PB_TYPE_SFIXED64 = 16,
	PB_TYPE_SINT32 = 17,
	PB_TYPE_SINT64 = 18,
};

struct pb_enum_value {
	char *name;
	int32_t number;
};

struct pb_enum {
	char *full_name; /* "pkg.Outer.Kind", no leading dot */
	struct pb_enum_value *values; /* in declaration order; values[0] is the default */
	size_t nvalues;
};

struct pb_message;

struct pb_field {
	char *name;
	char *json_name; /* lowerCamelCase as protoc writes it; NULL if absent */
	char *type_name; /* GROUP, MESSAGE, ENUM: as the descriptor names it (".pkg.Type") */
	uint32_t number;
	int type; /* enum pb_type */
	bool repeated;
	bool map;          /* repeated map-entry message: rendered as a JSON object */
	bool has_presence; /* absent means NULL / omitted, not the default */
	const struct pb_message *message; /* GROUP, MESSAGE: the type */
	const struct pb_enum *enm;        /* ENUM: the type */
};

/* google.protobuf's well-known types that decode as plain values, by full
 * name (their descriptors come in the set like any import); PB_WKT_NONE for a
 * message of that name whose fields are not the well-known ones. */
enum pb_wkt {
	PB_WKT_NONE = 0,
	PB_WKT_TIMESTAMP,
	PB_WKT_DURATION,
	PB_WKT_DOUBLE, /* DoubleValue ... BytesValue: the wrappers */
	PB_WKT_FLOAT,
	PB_WKT_INT64,
	PB_WKT_UINT64,
	PB_WKT_INT32,
	PB_WKT_UINT32,
	PB_WKT_BOOL,
	PB_WKT_STRING,
	PB_WKT_BYTES,
	PB_WKT_STRUCT,
	PB_WKT_VALUE,
	PB_WKT_LIST,
	PB_WKT_ANY,
};

struct pb_message {
	char *full_name; /* "pkg.Outer.Inner", no leading dot */
	int wkt;         /* enum pb_wkt */
	struct pb_field *fields; /* in declaration order */
	size_t nfields;
	uint32_t *by_number; /* field indexes sorted by field number */
	bool map_entry;
};

struct pb_pool {
	struct pb_message **messages; /* sorted by full_name */
	size_t nmessages;
	struct pb_enum **enums; /* sorted by full_name */
	size_t nenums;
};

/* Parses a serialized FileDescriptorSet.  Returns 0 and sets *out (the
 * caller's, pb_pool_free), or -1 with err saying what is wrong with the set. */
int pb_pool_load(const uint8_t *buf, size_t len, struct pb_pool **out, char *err, size_t errlen);
void pb_pool_free(struct pb_pool *pool);

/* The message of that full name (a leading dot is allowed), or NULL. */
const struct pb_message *pb_pool_message(const struct pb_pool *pool, const char *full_name);

/* Up to max message names, comma-separated, for "no such message" errors
 * ("a.B, a.C, ... (12 in all)"); map entries are left out. */
void pb_pool_message_names(const struct pb_pool *pool, size_t max, char *buf, size_t buflen);

/* Index in msg->fields of the field with that number, or -1. */
int pb_message_field_by_number(const struct pb_message *msg, uint32_t number);

/* Index of the field with that name (or else that json_name), or -1. */
int pb_message_field_by_name(const struct pb_message *msg, const char *name);

/* The name of an enum value, or NULL when the number is not declared. */
const char *pb_enum_value_name(const struct pb_enum *enm, int32_t number);

#endif
