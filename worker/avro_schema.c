#include "avro_schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cjson/cJSON.h>

struct sctx {
	struct avro_schema *sc;
	char *err;
	size_t errlen;
	bool failed;
};

static void sctx_fail(struct sctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sctx_fail(struct sctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->failed)
		return;
	c->failed = true;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
}

static struct avro_node *snode_new(struct sctx *c, enum avro_kind kind)
{
	struct avro_schema *sc = c->sc;
	struct avro_node *n;

	if (sc->nnodes == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 32;
		struct avro_node **p = realloc(sc->nodes, cap * sizeof(*p));

		if (p == NULL) {
			sctx_fail(c, "out of memory");
			return NULL;
		}
		sc->nodes = p;
		sc->cap = cap;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		sctx_fail(c, "out of memory");
		return NULL;
	}
	n->kind = kind;
	sc->nodes[sc->nnodes++] = n;
	return n;
}

static const struct {
	const char *name;
	enum avro_kind kind;
} sprimitives[] = {
	{ "null", AV_NULL },	 { "boolean", AV_BOOLEAN }, { "int", AV_INT },	     { "long", AV_LONG },
	{ "float", AV_FLOAT },	 { "double", AV_DOUBLE },   { "bytes", AV_BYTES },   { "string", AV_STRING },
};

static int sprimitive(const char *s)
{
	for (size_t i = 0; i < sizeof(sprimitives) / sizeof(sprimitives[0]); i++)
		if (strcmp(s, sprimitives[i].name) == 0)
			return (int)sprimitives[i].kind;
	return -1;
}

/* The named type of that full name, or NULL. */
static struct avro_node *slookup(const struct avro_schema *sc, const char *full)
{
	for (size_t i = 0; i < sc->nnodes; i++)
		if (sc->nodes[i]->name != NULL && strcmp(sc->nodes[i]->name, full) == 0)
			return sc->nodes[i];
	return NULL;
}

/* A reference "Name" or "ns.Name" seen inside namespace ns. */
static struct avro_node *sref(struct sctx *c, const char *ref, const char *ns)
{
	struct avro_node *n = NULL;

	if (strchr(ref, '.') == NULL && ns != NULL && ns[0] != '\0') {
		size_t len = strlen(ns) + strlen(ref) + 2;
		char *full = malloc(len);

		if (full == NULL) {
			sctx_fail(c, "out of memory");
			return NULL;
		}
		snprintf(full, len, "%s.%s", ns, ref);
		n = slookup(c->sc, full);
		free(full);
	}
	if (n == NULL)
		n = slookup(c->sc, ref);
	if (n == NULL)
		sctx_fail(c, "type \"%.100s\" is neither a primitive type nor a named type defined before it", ref);
	return n;
}

/* The full name of a named type, and the namespace its children inherit. */
static char *sfull_name(struct sctx *c, const cJSON *j, const char *ns, char **child_ns)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name"));
	const cJSON *jns = cJSON_GetObjectItemCaseSensitive(j, "namespace");
	const char *own = cJSON_IsString(jns) ? jns->valuestring : ns;
	const char *dot;
	char *full;
	size_t len;

	*child_ns = NULL;
	if (name == NULL || name[0] == '\0') {
		sctx_fail(c, "a named type has no \"name\"");
		return NULL;
	}
	if (strchr(name, '.') != NULL)
		full = strdup(name);
	else if (own != NULL && own[0] != '\0') {
		len = strlen(own) + strlen(name) + 2;
		full = malloc(len);
		if (full != NULL)
			snprintf(full, len, "%s.%s", own, name);
	} else
		full = strdup(name);
	if (full == NULL) {
		sctx_fail(c, "out of memory");
		return NULL;
	}
	dot = strrchr(full, '.');
	*child_ns = strndup(full, dot != NULL ? (size_t)(dot - full) : 0);
	if (*child_ns == NULL) {
		free(full);
		sctx_fail(c, "out of memory");
		return NULL;
	}
	if (slookup(c->sc, full) != NULL) {
		sctx_fail(c, "the named type \"%.100s\" is defined twice", full);
		free(full);
		free(*child_ns);
		*child_ns = NULL;
		return NULL;
	}
	return full;
}

/* The logicalType of j applied to n when it fits n's type. */
static void slogical(struct avro_node *n, const cJSON *j)
{
	const char *lt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "logicalType"));
	const cJSON *prec, *scale;

	if (lt == NULL)
		return;
	if (strcmp(lt, "decimal") == 0 && (n->kind == AV_BYTES || n->kind == AV_FIXED)) {
		prec = cJSON_GetObjectItemCaseSensitive(j, "precision");
		scale = cJSON_GetObjectItemCaseSensitive(j, "scale");
		if (!cJSON_IsNumber(prec) || prec->valuedouble < 1 || prec->valuedouble > 100000)
			return;
		if (scale != NULL && (!cJSON_IsNumber(scale) || scale->valuedouble < 0 ||
				      scale->valuedouble > prec->valuedouble))
			return;
		n->logical = AVL_DECIMAL;
		n->precision = prec->valueint;
		n->scale = scale != NULL ? scale->valueint : 0;
	} else if (strcmp(lt, "uuid") == 0 && n->kind == AV_STRING) {
		n->logical = AVL_UUID;
	} else if (strcmp(lt, "date") == 0 && n->kind == AV_INT) {
		n->logical = AVL_DATE;
	} else if (strcmp(lt, "time-millis") == 0 && n->kind == AV_INT) {
		n->logical = AVL_TIME_MILLIS;
	} else if (strcmp(lt, "time-micros") == 0 && n->kind == AV_LONG) {
		n->logical = AVL_TIME_MICROS;
	} else if (strcmp(lt, "timestamp-millis") == 0 && n->kind == AV_LONG) {
		n->logical = AVL_TS_MILLIS;
	} else if (strcmp(lt, "timestamp-micros") == 0 && n->kind == AV_LONG) {
		n->logical = AVL_TS_MICROS;
	} else if (strcmp(lt, "local-timestamp-millis") == 0 && n->kind == AV_LONG) {
		n->logical = AVL_LOCAL_TS_MILLIS;
	} else if (strcmp(lt, "local-timestamp-micros") == 0 && n->kind == AV_LONG) {
		n->logical = AVL_LOCAL_TS_MICROS;
	} else if (strcmp(lt, "duration") == 0 && n->kind == AV_FIXED && n->size == 12) {
		n->logical = AVL_DURATION;
	}
}

static struct avro_node *sparse(struct sctx *c, const cJSON *j, const char *ns, int depth);

static struct avro_node *srecord(struct sctx *c, const cJSON *j, const char *ns, int depth)
{
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(j, "fields"), *f;
	struct avro_node *n;
	char *child_ns = NULL;
	size_t i = 0;

	if (!cJSON_IsArray(fields)) {
		sctx_fail(c, "a record has no \"fields\" list");
		return NULL;
	}
	n = snode_new(c, AV_RECORD);
	if (n == NULL)
		return NULL;
	/* Named before its fields: a field may refer to the record itself. */
	n->name = sfull_name(c, j, ns, &child_ns);
	if (n->name == NULL)
		return NULL;
	n->nfields = (size_t)cJSON_GetArraySize(fields);
	n->fields = calloc(n->nfields ? n->nfields : 1, sizeof(*n->fields));
	if (n->fields == NULL) {
		sctx_fail(c, "out of memory");
		goto out;
	}
	cJSON_ArrayForEach(f, fields) {
		const char *fname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "name"));

		if (fname == NULL || fname[0] == '\0') {
			sctx_fail(c, "field %zu of record %.100s has no \"name\"", i, n->name);
			goto out;
		}
		n->fields[i].name = strdup(fname);
		if (n->fields[i].name == NULL) {
			sctx_fail(c, "out of memory");
			goto out;
		}
		n->fields[i].type = sparse(c, cJSON_GetObjectItemCaseSensitive(f, "type"), child_ns, depth + 1);
		if (n->fields[i].type == NULL)
			goto out;
		i++;
	}
out:
	free(child_ns);
	return c->failed ? NULL : n;
}

static struct avro_node *sparse_object(struct sctx *c, const cJSON *j, const char *ns, int depth)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
	struct avro_node *n = NULL;
	char *child_ns = NULL;
	const char *t;
	int prim;

	if (type == NULL) {
		sctx_fail(c, "a type object has no \"type\"");
		return NULL;
	}
	if (!cJSON_IsString(type))
		return sparse(c, type, ns, depth + 1);
	t = type->valuestring;
	prim = sprimitive(t);
	if (prim >= 0) {
		n = snode_new(c, (enum avro_kind)prim);
		if (n != NULL)
			slogical(n, j);
		return n;
	}
	if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0)
		return srecord(c, j, ns, depth);
	if (strcmp(t, "enum") == 0) {
		const cJSON *syms = cJSON_GetObjectItemCaseSensitive(j, "symbols"), *s;
		size_t i = 0;

		if (!cJSON_IsArray(syms)) {
			sctx_fail(c, "an enum has no \"symbols\" list");
			return NULL;
		}
		if ((n = snode_new(c, AV_ENUM)) == NULL || (n->name = sfull_name(c, j, ns, &child_ns)) == NULL)
			return NULL;
		free(child_ns);
		n->nsymbols = (size_t)cJSON_GetArraySize(syms);
		n->symbols = calloc(n->nsymbols ? n->nsymbols : 1, sizeof(*n->symbols));
		if (n->symbols == NULL) {
			sctx_fail(c, "out of memory");
			return NULL;
		}
		cJSON_ArrayForEach(s, syms) {
			if (!cJSON_IsString(s) || (n->symbols[i] = strdup(s->valuestring)) == NULL) {
				sctx_fail(c, "enum %.100s: symbol %zu is not a string", n->name, i);
				return NULL;
			}
			i++;
		}
		return n;
	}
	if (strcmp(t, "fixed") == 0) {
		const cJSON *size = cJSON_GetObjectItemCaseSensitive(j, "size");

		if (!cJSON_IsNumber(size) || size->valuedouble < 0 || size->valuedouble > 1e9) {
			sctx_fail(c, "a fixed type has no valid \"size\"");
			return NULL;
		}
		if ((n = snode_new(c, AV_FIXED)) == NULL || (n->name = sfull_name(c, j, ns, &child_ns)) == NULL)
			return NULL;
		free(child_ns);
		n->size = (size_t)size->valuedouble;
		slogical(n, j);
		return n;
	}
	if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
		bool array = t[0] == 'a';
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, array ? "items" : "values");

		if ((n = snode_new(c, array ? AV_ARRAY : AV_MAP)) == NULL)
			return NULL;
		n->items = sparse(c, items, ns, depth + 1);
		return n->items != NULL ? n : NULL;
	}
	/* {"type": "SomeNamedType"} */
	return sref(c, t, ns);
}

static struct avro_node *sparse(struct sctx *c, const cJSON *j, const char *ns, int depth)
{
	struct avro_node *n;
	const cJSON *b;
	size_t i = 0;

	if (c->failed)
		return NULL;
	if (depth > AVRO_DEPTH_MAX) {
		sctx_fail(c, "the schema nests deeper than %d levels", AVRO_DEPTH_MAX);
		return NULL;
	}
	if (cJSON_IsString(j)) {
		int prim = sprimitive(j->valuestring);

		return prim >= 0 ? snode_new(c, (enum avro_kind)prim) : sref(c, j->valuestring, ns);
	}
	if (cJSON_IsObject(j))
		return sparse_object(c, j, ns, depth);
	if (!cJSON_IsArray(j)) {
		sctx_fail(c, "a type must be a name, an object or a union list");
		return NULL;
	}
	if ((n = snode_new(c, AV_UNION)) == NULL)
		return NULL;
	n->nbranches = (size_t)cJSON_GetArraySize(j);
	n->branches = calloc(n->nbranches ? n->nbranches : 1, sizeof(*n->branches));
	if (n->branches == NULL) {
		sctx_fail(c, "out of memory");
		return NULL;
	}
	cJSON_ArrayForEach(b, j) {
		n->branches[i] = sparse(c, b, ns, depth + 1);
		if (n->branches[i++] == NULL)
			return NULL;
	}
	return n;
}

/* Apache Avro's own check of the schema: its message names the problem. */
static int avro_schema_check(const char *text, size_t len, char *err, size_t errlen)
{
	avro_schema_t s = NULL;

	if (avro_schema_from_json_length(text, len, &s) != 0) {
		const char *why = avro_strerror();
		size_t n = why != NULL ? strlen(why) : 0;

		while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' '))
			n--;
		snprintf(err, errlen, "not a valid Avro schema: %.*s", (int)(n > 300 ? 300 : n), n ? why : "?");
		return -1;
	}
	avro_schema_decref(s);
	return 0;
}

int avro_schema_parse(const char *text, size_t len, struct avro_schema **out, char *err, size_t errlen)
{
	struct sctx c = { NULL, err, errlen, false };
	cJSON *j = NULL;

	*out = NULL;
	if (len > AVRO_SCHEMA_MAX) {
		snprintf(err, errlen, "the schema is %zu bytes, more than the %zu-byte limit", len, AVRO_SCHEMA_MAX);
		return -1;
	}
	j = cJSON_ParseWithLength(text, len);
	if (j == NULL) {
		snprintf(err, errlen, "not a valid Avro schema: the text is not JSON");
		return -1;
	}
	if (avro_schema_check(text, len, err, errlen) < 0)
		goto fail;
	c.sc = calloc(1, sizeof(*c.sc));
	if (c.sc == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c.sc->root = sparse(&c, j, NULL, 0);
	if (c.sc->root == NULL) {
		if (!c.failed)
			snprintf(err, errlen, "not a valid Avro schema");
		goto fail;
	}
	cJSON_Delete(j);
	*out = c.sc;
	return 0;
fail:
	cJSON_Delete(j);
	avro_schema_free(c.sc);
	return -1;
}

void avro_schema_free(struct avro_schema *sc)
{
	if (sc == NULL)
		return;
	for (size_t i = 0; i < sc->nnodes; i++) {
		struct avro_node *n = sc->nodes[i];

		for (size_t f = 0; f < n->nfields && n->fields != NULL; f++)
			free(n->fields[f].name);
		free(n->fields);
		for (size_t s = 0; s < n->nsymbols && n->symbols != NULL; s++)
			free(n->symbols[s]);
		free(n->symbols);
		free(n->branches);
		free(n->name);
		free(n);
	}
	free(sc->nodes);
	free(sc);
}

int avro_record_field(const struct avro_node *record, const char *name)
{
	if (record == NULL || record->kind != AV_RECORD)
		return -1;
	for (size_t i = 0; i < record->nfields; i++)
		if (strcmp(record->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

const char *avro_node_type_name(const struct avro_node *n)
{
	static const char *const logical[] = { NULL, "decimal", "uuid", "date", "time-millis", "time-micros",
					       "timestamp-millis", "timestamp-micros", "local-timestamp-millis",
					       "local-timestamp-micros", "duration" };
	static const char *const kinds[] = { "null", "boolean", "int", "long", "float", "double", "bytes",
					     "string", "record", "enum", "array", "map", "union", "fixed" };

	if (n->logical != AVL_NONE)
		return logical[n->logical];
	return kinds[n->kind];
}
