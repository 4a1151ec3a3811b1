/* Avro schemas (the JSON of an .avsc or of a schema registry's answer) as a
 * tree the Avro decoder (decode_avro.c) walks.
 *
 * The text is first checked by Apache Avro's C library
 * (avro_schema_from_json_length): its message says what is wrong with a bad
 * schema.  The tree itself is built from the JSON here because libavro 1.11's
 * schema API keeps no logical types (decimal, date, timestamp-millis, uuid...)
 * and the decoder renders them as PostgreSQL reads them.
 *
 * Named types (records, enums, fixed) are resolved by full name, with
 * namespaces inherited as the specification says; a record may refer to
 * itself.  A logicalType on a type it does not fit (decimal on an int, a
 * decimal whose scale exceeds its precision) is ignored, as the
 * specification asks: the value is then read as its underlying type.
 *
 * Ownership: a struct avro_schema owns every node, field and string in it;
 * avro_schema_free() releases them.  Nodes may be shared (a named type used
 * twice) and cyclic (a recursive record), so nothing walks them to free.
 */
#ifndef SS_WORKER_AVRO_SCHEMA_H
#define SS_WORKER_AVRO_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest schema text accepted (a registry's answer, an .avsc). */
#define AVRO_SCHEMA_MAX ((size_t)4 * 1024 * 1024)
/* Schemas nest at most this deep (records in records, arrays, unions). */
#define AVRO_DEPTH_MAX 64

enum avro_kind {
	AV_NULL,
	AV_BOOLEAN,
	AV_INT,
	AV_LONG,
	AV_FLOAT,
	AV_DOUBLE,
	AV_BYTES,
	AV_STRING,
	AV_RECORD,
	AV_ENUM,
	AV_ARRAY,
	AV_MAP,
	AV_UNION,
	AV_FIXED,
};

enum avro_logical {
	AVL_NONE,
	AVL_DECIMAL,       /* bytes, fixed: two's complement big-endian unscaled value */
	AVL_UUID,          /* string */
	AVL_DATE,          /* int: days since 1970-01-01 */
	AVL_TIME_MILLIS,   /* int: ms after midnight */
	AVL_TIME_MICROS,   /* long: us after midnight */
	AVL_TS_MILLIS,     /* long: ms since the epoch, UTC */
	AVL_TS_MICROS,     /* long: us since the epoch, UTC */
	AVL_LOCAL_TS_MILLIS, /* long: ms, no time zone */
	AVL_LOCAL_TS_MICROS, /* long: us, no time zone */
	AVL_DURATION,      /* fixed(12): months, days, ms as little-endian uint32 */
};

struct avro_node;

struct avro_field {
	char *name;
	struct avro_node *type;
};

struct avro_node {
	enum avro_kind kind;
	enum avro_logical logical;
	int precision, scale;           /* AVL_DECIMAL */
	char *name;                     /* full name of a record, enum or fixed */
	struct avro_field *fields;      /* AV_RECORD, in declaration (wire) order */
	size_t nfields;
	char **symbols;                 /* AV_ENUM */
	size_t nsymbols;
	struct avro_node *items;        /* AV_ARRAY items, AV_MAP values */
	struct avro_node **branches;    /* AV_UNION */
	size_t nbranches;
	size_t size;                    /* AV_FIXED */
};

struct avro_schema {
	struct avro_node *root;
	struct avro_node **nodes; /* every node, for freeing and name lookups */
	size_t nnodes, cap;
};

/* Parses a schema's JSON text (len bytes, no NUL needed).  Returns 0 and sets
 * *out (the caller's, avro_schema_free), or -1 with err saying what is wrong. */
int avro_schema_parse(const char *text, size_t len, struct avro_schema **out, char *err, size_t errlen);
void avro_schema_free(struct avro_schema *sc);

/* Index of a record's field of that name, or -1. */
int avro_record_field(const struct avro_node *record, const char *name);

/* "record", "string", "decimal", "timestamp-millis"...: for messages. */
const char *avro_node_type_name(const struct avro_node *n);

#endif
