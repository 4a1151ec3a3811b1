#include "check_registry.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "avro_schema.h"
#include "registry.h"

enum sql_kind { SQL_OTHER, SQL_TEXT, SQL_JSON, SQL_BOOL, SQL_NUMBER, SQL_BYTEA, SQL_DATE, SQL_TIME, SQL_TIMESTAMP };

/* The family of an SQL type as written in COLUMNS (its first words). */
static enum sql_kind check_sql_kind(const char *t)
{
	static const struct {
		const char *prefix;
		enum sql_kind kind;
	} kinds[] = {
		{ "jsonb", SQL_JSON },	       { "json", SQL_JSON },
		{ "text", SQL_TEXT },	       { "varchar", SQL_TEXT },	       { "character", SQL_TEXT },
		{ "char", SQL_TEXT },	       { "bpchar", SQL_TEXT },	       { "citext", SQL_TEXT },
		{ "boolean", SQL_BOOL },       { "bool", SQL_BOOL },
		{ "smallint", SQL_NUMBER },    { "integer", SQL_NUMBER },      { "int", SQL_NUMBER },
		{ "bigint", SQL_NUMBER },      { "numeric", SQL_NUMBER },      { "decimal", SQL_NUMBER },
		{ "real", SQL_NUMBER },	       { "double", SQL_NUMBER },       { "float", SQL_NUMBER },
		{ "bytea", SQL_BYTEA },	       { "date", SQL_DATE },	       { "timestamp", SQL_TIMESTAMP },
		{ "time", SQL_TIME },
	};

	while (isspace((unsigned char)*t))
		t++;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncasecmp(t, kinds[i].prefix, n) == 0 && !isalpha((unsigned char)t[n]) &&
		    (kinds[i].kind != SQL_NUMBER || !isalpha((unsigned char)t[n])))
			return kinds[i].kind;
	}
	return SQL_OTHER;
}

const char *check_registry_type_problem(const struct avro_node *n, const char *sql_type)
{
	enum sql_kind k = check_sql_kind(sql_type);

	if (k == SQL_OTHER || k == SQL_TEXT || k == SQL_JSON)
		return NULL;
	if (n->kind == AV_UNION) {
		const struct avro_node *only = NULL;

		for (size_t i = 0; i < n->nbranches; i++) {
			if (n->branches[i]->kind == AV_NULL)
				continue;
			if (only != NULL)
				return NULL; /* several types: the data decides */
			only = n->branches[i];
		}
		if (only == NULL)
			return NULL;
		n = only;
	}
	switch (n->kind) {
	case AV_RECORD:
	case AV_ARRAY:
	case AV_MAP:
		return "is JSON (a record, an array or a map); load it into json, jsonb or text";
	case AV_BOOLEAN:
		return k == SQL_BOOL ? NULL : "is a boolean; load it into boolean or text";
	case AV_INT:
	case AV_LONG:
		if (n->logical == AVL_DATE)
			return k == SQL_DATE || k == SQL_TIMESTAMP ? NULL : "is a date; load it into date or text";
		if (n->logical == AVL_TIME_MILLIS || n->logical == AVL_TIME_MICROS)
			return k == SQL_TIME ? NULL : "is a time of day; load it into time or text";
		if (n->logical != AVL_NONE)
			return k == SQL_TIMESTAMP || k == SQL_DATE ? NULL
								   : "is a timestamp; load it into timestamptz or text";
		return k == SQL_NUMBER ? NULL : "is an integer; load it into a number type or text";
	case AV_FLOAT:
	case AV_DOUBLE:
		return k == SQL_NUMBER ? NULL : "is a floating-point number; load it into a number type or text";
	case AV_BYTES:
	case AV_FIXED:
		if (n->logical == AVL_DECIMAL)
			return k == SQL_NUMBER ? NULL : "is a decimal; load it into numeric or text";
		if (n->logical == AVL_DURATION)
			return "is a duration; load it into interval or text";
		return k == SQL_BYTEA ? NULL : "is bytes; load it into bytea or text";
	default:
		return NULL; /* strings, enums: their text decides */
	}
}

static void check_registry_input(const struct jobspec *spec, const struct js_input *in, const char *which,
				 void (*problem)(void *, const char *, const char *, const char *), void *ctx)
{
	const char *block = in->format == JS_FORMAT_AVRO ? "AVRO_OPTION" : "JSON_OPTION";
	struct registry *reg = NULL;
	struct registry_schema *rs = NULL;
	struct avro_schema *sc = NULL;
	char field[160], subject[320], err[768], msg[2048], sub[512];
	int rc;

	snprintf(field, sizeof(field), "KAFKA.INPUT.%s.%s.SCHEMA_REGISTRY_ADDR", which, block);
	reg = registry_new(in->registry_addr, in->registry_user, in->registry_password, err, sizeof(err));
	if (reg == NULL) {
		problem(ctx, field, "other", err);
		return;
	}
	registry_set_retry(reg, 1, 0); /* a check answers at once */
	snprintf(subject, sizeof(subject), "%s-%s", spec->topic, which[0] == 'K' ? "key" : "value");
	rc = registry_latest(reg, subject, &rs, err, sizeof(err));
	if (rc == REGISTRY_RETRY) {
		problem(ctx, field, "unreachable", err);
		goto out;
	}
	if (rc == REGISTRY_DATA) {
		snprintf(msg, sizeof(msg), "%s; register the topic's schema under subject \"%s\" (TopicNameStrategy) "
			 "or check TOPIC", err, subject);
		problem(ctx, field, "other", msg);
		goto out;
	}
	if (rc != REGISTRY_OK) {
		problem(ctx, field, "other", err);
		goto out;
	}
	if (in->format == JS_FORMAT_JSON) {
		if (rs->type != REGISTRY_JSON) {
			snprintf(msg, sizeof(msg), "subject \"%s\" holds a%s schema, not a JSON Schema; use FORMAT %s",
				 subject, rs->type == REGISTRY_AVRO ? "n Avro" : " Protobuf",
				 rs->type == REGISTRY_AVRO ? "avro" : "protobuf");
			problem(ctx, field, "other", msg);
		}
		goto out;
	}
	if (rs->type != REGISTRY_AVRO) {
		snprintf(msg, sizeof(msg), "subject \"%s\" holds a %s schema, not Avro", subject,
			 rs->type == REGISTRY_JSON ? "JSON" : "Protobuf");
		problem(ctx, field, "other", msg);
		goto out;
	}
	if (avro_schema_parse(rs->text, rs->len, &sc, sub, sizeof(sub)) < 0) {
		snprintf(msg, sizeof(msg), "subject \"%s\" version %d: %s", subject, rs->version, sub);
		problem(ctx, field, "other", msg);
		goto out;
	}
	if (js_input_json_whole(in))
		goto out;
	if (sc->root->kind != AV_RECORD) {
		snprintf(msg, sizeof(msg), "subject \"%s\" version %d is a %s, not a record: name one json/jsonb "
			 "column to take the whole value", subject, rs->version, avro_node_type_name(sc->root));
		problem(ctx, field, "other", msg);
		goto out;
	}
	for (size_t i = 0; i < in->ncolumns; i++) {
		const struct js_column *c = &in->columns[i];
		int f = c->name != NULL ? avro_record_field(sc->root, c->name) : -1;
		const char *why;

		if (f < 0) {
			size_t off = 0;

			sub[0] = '\0';
			for (size_t k = 0; k < sc->root->nfields && off < sizeof(sub); k++) {
				int n = snprintf(sub + off, sizeof(sub) - off, "%s%s", k ? ", " : "",
						 sc->root->fields[k].name);
				if (n > 0)
					off += (size_t)n;
			}
			snprintf(field, sizeof(field), "KAFKA.INPUT.%s.COLUMNS[%zu].NAME", which, i);
			snprintf(msg, sizeof(msg), "record %s (subject \"%s\" version %d) has no field \"%s\"; its "
				 "fields are %s", sc->root->name, subject, rs->version, c->name ? c->name : "", sub);
			problem(ctx, field, "other", msg);
			continue;
		}
		if (c->type == NULL)
			continue;
		why = check_registry_type_problem(sc->root->fields[f].type, c->type);
		if (why != NULL) {
			snprintf(field, sizeof(field), "KAFKA.INPUT.%s.COLUMNS[%zu].TYPE", which, i);
			snprintf(msg, sizeof(msg), "field \"%s\" (%s, subject \"%s\" version %d) %s, not %s", c->name,
				 avro_node_type_name(sc->root->fields[f].type), subject, rs->version, why, c->type);
			problem(ctx, field, "other", msg);
		}
	}
out:
	avro_schema_free(sc);
	registry_schema_free(rs);
	registry_free(reg);
}

void check_registry_run(const struct jobspec *spec,
			void (*problem)(void *ctx, const char *field, const char *code, const char *message),
			void *ctx)
{
	if (spec->topic == NULL)
		return;
	if (spec->key.present && spec->key.registry_addr != NULL)
		check_registry_input(spec, &spec->key, "KEY", problem, ctx);
	if (spec->value.present && spec->value.registry_addr != NULL)
		check_registry_input(spec, &spec->value, "VALUE", problem, ctx);
}
