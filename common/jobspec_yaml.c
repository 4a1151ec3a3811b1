/* Professional-mode YAML (the GPSS version 2 job format) to a jobspec; the way
 * back is jobspec_emit.c.
 *
 * Parsing loads the whole document with libyaml's document API so every node
 * carries its line, then walks the tree level by level against tables of the
 * keys allowed there.  It never stops at the first problem: each one is added
 * to the caller's js_errors with its path, its line and how to fix it.
 *
 * A plain (unquoted) empty value, "~" or "null" counts as absent, as in YAML;
 * quote it to mean the text.
 *
 * Every key and list item the parser meets is recorded with its line in
 * spec->lines under its canonical path ("KAFKA.OUTPUT.MATCH_COLUMNS[1]",
 * "KAFKA.INPUT.VALUE.COLUMNS[2].TYPE"; MAPPING entries are "MAPPING[i]" in
 * both of its forms), so jobspec_validate can give its problems lines too.
 *
 * Beyond the seed's appendix, KEY and VALUE take a PROTOBUF_OPTION block for
 * FORMAT protobuf:
 *
 *   PROTOBUF_OPTION:
 *     DESCRIPTOR_FILE: /etc/streamserver/shop.desc   # or DESCRIPTOR: <base64>
 *     MESSAGE: shop.v1.Order
 *
 * DESCRIPTOR_FILE (an absolute path on the worker's host) or DESCRIPTOR (the
 * same bytes as base64, folding allowed) holds the FileDescriptorSet made by
 * `protoc --include_imports --descriptor_set_out=FILE`; MESSAGE is the full
 * name of the message type, without a leading dot.  Exactly one of the two
 * descriptor keys; the block only with FORMAT protobuf, which requires it
 * (checked by jobspec_validate).
 *
 * A job written on one line, as the seed prints its example, is re-flowed into
 * lines first (jobspec_reflow.h); its problems are then all on line 1. */
#include "jobspec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "jobspec_reflow.h"

#define JS_YAML_MAX (1024 * 1024)
#define JS_LIST_MAX 1600 /* PostgreSQL's column limit bounds every column list */
#define JS_PARTITIONS_MAX 100000
#define JS_PROPERTIES_MAX 1000
#define JS_KEYS_MAX 16 /* keys allowed at one level, at most */
#define JS_DEPTH_MAX 32 /* a job nests 6 levels deep */
#define JS_ANCHORS_MAX 256

/* ---- error reporting ---- */

struct yctx {
	yaml_document_t *doc;
	struct js_errors *errs;
	int nerr;
	/* The line map being built, handed to the spec at the end. */
	struct js_line *lines;
	size_t nlines, lines_cap;
	bool lines_oom;
	/* The text was one line, re-flowed (jobspec_reflow.h): every line is 1. */
	bool reflowed;
};

static void yerr(struct yctx *y, int line, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void yerr(struct yctx *y, int line, const char *path, const char *fmt, ...)
{
	char msg[sizeof(((struct js_error *)0)->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	y->nerr++;
	js_errors_add(y->errs, line, path, "%s", msg);
}

/* The line of the key at path when it was recorded, else n's line.  An error
 * about a value as a whole (wrong kind, wrong count) points at its key: a
 * block list or map starts on the line after the key. */
static int ykey_line(const struct yctx *y, const char *path, const yaml_node_t *n)
{
	for (size_t i = y->nlines; i > 0; i--)
		if (strcmp(y->lines[i - 1].path, path) == 0)
			return y->lines[i - 1].line;
	return n != NULL ? (int)n->start_mark.line + 1 : 0;
}

/* Records where path stood.  Losing the map only costs lines in messages,
 * but it is reported like any out-of-memory. */
static void yrecord(struct yctx *y, const char *path, int line)
{
	struct js_line *l;

	if (y->lines_oom)
		return;
	if (y->nlines == y->lines_cap) {
		size_t cap = y->lines_cap != 0 ? y->lines_cap * 2 : 64;
		struct js_line *grown = realloc(y->lines, cap * sizeof(*grown));

		if (grown == NULL)
			goto oom;
		y->lines = grown;
		y->lines_cap = cap;
	}
	l = &y->lines[y->nlines];
	l->path = strdup(path);
	if (l->path == NULL)
		goto oom;
	l->line = line;
	y->nlines++;
	return;
oom:
	y->lines_oom = true;
	yerr(y, 0, path, "out of memory");
}

static void ylines_free(struct yctx *y)
{
	for (size_t i = 0; i < y->nlines; i++)
		free(y->lines[i].path);
	free(y->lines);
	y->lines = NULL;
	y->nlines = y->lines_cap = 0;
}

static char *ydup(struct yctx *y, const char *s, const char *path)
{
	char *d = strdup(s);

	if (d == NULL)
		yerr(y, 0, path, "out of memory");
	return d;
}

/* A path too long for its buffer ends in "..." rather than misleading. */
static void ypath_fit(char *out, size_t outlen, int n)
{
	if (n >= 0 && (size_t)n < outlen)
		return;
	if (outlen > 4)
		memcpy(out + outlen - 4, "...", 4);
}

static void ypath(char *out, size_t outlen, const char *parent, const char *key)
{
	int n;

	if (parent == NULL || parent[0] == '\0')
		n = snprintf(out, outlen, "%s", key);
	else
		n = snprintf(out, outlen, "%s.%s", parent, key);
	ypath_fit(out, outlen, n);
}

static void ypath_index(char *out, size_t outlen, const char *parent, size_t i)
{
	ypath_fit(out, outlen, snprintf(out, outlen, "%s[%zu]", parent, i));
}

/* ---- nodes ---- */

static int yline(const yaml_node_t *n)
{
	return n != NULL ? (int)n->start_mark.line + 1 : 0;
}

static const char *ykind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a map";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "text";
	}
}

static const char *yvalue(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool ynull(const yaml_node_t *n)
{
	const char *s;

	if (n == NULL)
		return true;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = yvalue(n);
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
	       strcmp(s, "NULL") == 0;
}

static yaml_node_t *ynode(struct yctx *y, int index)
{
	return yaml_document_get_node(y->doc, index);
}

static size_t yseq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t ymap_len(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* The text of a scalar, or NULL when absent (no error) or not text (error). */
static const char *ytext(struct yctx *y, yaml_node_t *n, const char *path)
{
	if (ynull(n))
		return NULL;
	if (n->type != YAML_SCALAR_NODE) {
		yerr(y, ykey_line(y, path, n), path, "must be a single value, got %s", ykind(n));
		return NULL;
	}
	if (strlen(yvalue(n)) != n->data.scalar.length) {
		yerr(y, yline(n), path, "must not contain NUL characters");
		return NULL;
	}
	return yvalue(n);
}

/* ---- the keys allowed at each level ---- */

static const char *const keys_top[] = { "DATABASE", "USER", "PASSWORD", "HOST", "PORT",
					"SSLMODE", "SSLROOTCERT", "SSLCERT", "SSLKEY",
					"VERSION", "TASKS", "KAFKA", "SCHEDULE", NULL };
static const char *const keys_kafka[] = { "INPUT", "OUTPUT", "METADATA", "COMMIT", "POLL", "PROPERTIES", NULL };
static const char *const keys_input[] = { "SOURCE", "KEY", "VALUE", "META", "ERROR_LIMIT", NULL };
static const char *const keys_source[] = { "BROKERS", "TOPIC", "PARTITIONS", "FALLBACK_OFFSET", NULL };
static const char *const keys_kv[] = { "COLUMNS", "FORMAT", "DELIMITED_OPTION", "CSV_OPTION",
				       "PROTOBUF_OPTION", "AVRO_OPTION", "JSON_OPTION", NULL };
static const char *const keys_delimited[] = { "DELIMITER", "QUOTE", "ESCAPE", NULL };
static const char *const keys_csv[] = { "DELIMITER", "QUOTE", "NULL_STRING", "ESCAPE", NULL };
static const char *const keys_protobuf[] = { "DESCRIPTOR_FILE", "DESCRIPTOR", "MESSAGE", NULL };
static const char *const keys_avro[] = { "SCHEMA_REGISTRY_ADDR", "SCHEMA_REGISTRY_USER", "SCHEMA_REGISTRY_PASSWORD",
					 "BYTES_TO_BASE64", "SCHEMA_FILE", "SCHEMA", NULL };
static const char *const keys_jsonopt[] = { "SCHEMA_REGISTRY_ADDR", "SCHEMA_REGISTRY_USER",
					    "SCHEMA_REGISTRY_PASSWORD", NULL };
static const char *const keys_column[] = { "NAME", "TYPE", NULL };
static const char *const keys_meta[] = { "COLUMNS", "FORMAT", NULL };
static const char *const keys_output[] = { "SCHEMA", "TABLE", "MODE", "MATCH_COLUMNS",
					   "ORDER_COLUMNS", "UPDATE_COLUMNS", "MAPPING", NULL };
static const char *const keys_mapping[] = { "NAME", "EXPRESSION", NULL };
static const char *const keys_metadata[] = { "SCHEMA", NULL };
static const char *const keys_commit[] = { "MAX_ROW", "MINIMAL_INTERVAL", "CONSISTENCY", NULL };
static const char *const keys_poll[] = { "BATCHSIZE", "TIMEOUT", NULL };
static const char *const keys_schedule[] = { "RETRY_INTERVAL", "MAX_RETRIES", NULL };

/* Where each key lives, to tell a user who put one at the wrong level. */
static const struct {
	const char *parent;
	const char *const *keys;
} ylevels[] = {
	{ "the top level", keys_top },
	{ "KAFKA", keys_kafka },
	{ "KAFKA.INPUT", keys_input },
	{ "KAFKA.INPUT.SOURCE", keys_source },
	{ "KAFKA.INPUT.VALUE", keys_kv },
	{ "KAFKA.INPUT.VALUE.DELIMITED_OPTION", keys_delimited },
	{ "KAFKA.INPUT.VALUE.CSV_OPTION", keys_csv },
	{ "KAFKA.INPUT.VALUE.PROTOBUF_OPTION", keys_protobuf },
	{ "KAFKA.INPUT.VALUE.AVRO_OPTION", keys_avro },
	{ "KAFKA.INPUT.VALUE.JSON_OPTION", keys_jsonopt },
	{ "KAFKA.INPUT.VALUE.COLUMNS items", keys_column },
	{ "KAFKA.OUTPUT", keys_output },
	{ "KAFKA.OUTPUT.MAPPING items", keys_mapping },
	{ "KAFKA.METADATA", keys_metadata },
	{ "KAFKA.COMMIT", keys_commit },
	{ "KAFKA.POLL", keys_poll },
	{ "SCHEDULE", keys_schedule },
};

/* Case-insensitive Levenshtein distance, for "did you mean". */
static size_t yedit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t prev[65], cur[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			size_t best = prev[j - 1] + cost;

			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			cur[j] = best;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

static void yunknown_key(struct yctx *y, const yaml_node_t *key, const char *parent, const char *const *keys)
{
	const char *name = yvalue(key);
	const char *best = NULL;
	size_t best_d = SIZE_MAX, len = strlen(name);
	size_t limit = len / 3 < 1 ? 1 : (len / 3 > 3 ? 3 : len / 3);
	char path[128];
	char allowed[256];
	size_t off = 0;

	ypath(path, sizeof(path), parent, name);
	if (y->errs != NULL && y->errs->count >= JS_ERRORS_MAX) {
		yerr(y, yline(key), path, "unknown key"); /* only counted now: skip the suggestions */
		return;
	}
	for (size_t i = 0; keys[i] != NULL; i++) {
		size_t d = yedit_distance(name, keys[i]);

		if (d < best_d) {
			best_d = d;
			best = keys[i];
		}
	}
	/* A cut-short key ("EXPR", "BATCH") names the key it starts. */
	if (best_d > limit && len >= 3) {
		for (size_t i = 0; keys[i] != NULL; i++) {
			if (strncasecmp(name, keys[i], len) == 0) {
				best = keys[i];
				best_d = 0;
				break;
			}
		}
	}
	if (best != NULL && best_d <= limit) {
		yerr(y, yline(key), path, "unknown key \"%.64s\" (did you mean %s?)", name, best);
		return;
	}
	allowed[0] = '\0';
	for (size_t l = 0; l < sizeof(ylevels) / sizeof(ylevels[0]); l++) {
		if (ylevels[l].keys == keys)
			continue;
		for (size_t i = 0; ylevels[l].keys[i] != NULL; i++) {
			if (strcasecmp(name, ylevels[l].keys[i]) == 0 && off < sizeof(allowed)) {
				int n = snprintf(allowed + off, sizeof(allowed) - off, "%s%s", off > 0 ? " or " : "",
						 ylevels[l].parent);

				if (n > 0)
					off += (size_t)n;
			}
		}
	}
	if (off > 0) {
		yerr(y, yline(key), path, "unknown key \"%.64s\" here; it belongs under %s", name, allowed);
		return;
	}
	allowed[0] = '\0';
	for (size_t i = 0; keys[i] != NULL && off < sizeof(allowed); i++) {
		int n = snprintf(allowed + off, sizeof(allowed) - off, "%s%s", i > 0 ? ", " : "", keys[i]);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	yerr(y, yline(key), path, "unknown key \"%.64s\"; allowed here: %s", name, allowed);
}

/* The values of one map, by key.  Keys match case-insensitively. */
struct ymap {
	const char *const *keys;
	yaml_node_t *key[JS_KEYS_MAX];
	yaml_node_t *val[JS_KEYS_MAX];
};

/* Loads node (a map) into m, reporting unknown and duplicate keys.  Returns
 * false when node is absent (no error) or not a map (error). */
static bool ymap_load(struct yctx *y, yaml_node_t *node, const char *path, const char *const *keys,
		      struct ymap *m)
{
	memset(m, 0, sizeof(*m));
	m->keys = keys;
	if (ynull(node))
		return false;
	if (node->type != YAML_MAPPING_NODE) {
		yerr(y, ykey_line(y, path, node), path, "must be a map of KEY: value lines, got %s", ykind(node));
		return false;
	}
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top;
	     pair++) {
		yaml_node_t *k = ynode(y, pair->key);
		yaml_node_t *v = ynode(y, pair->value);
		char p[128];
		size_t i;

		if (k == NULL || k->type != YAML_SCALAR_NODE) {
			yerr(y, yline(k), path, "a key must be a word like %s, got %s", keys[0],
			     k != NULL ? ykind(k) : "nothing");
			continue;
		}
		for (i = 0; keys[i] != NULL; i++)
			if (strcasecmp(yvalue(k), keys[i]) == 0)
				break;
		if (keys[i] == NULL) {
			yunknown_key(y, k, path, keys);
			continue;
		}
		ypath(p, sizeof(p), path, keys[i]);
		if (m->key[i] != NULL) {
			yerr(y, yline(k), p, "duplicate key %s (first at line %d); keep only one", keys[i],
			     yline(m->key[i]));
			continue;
		}
		m->key[i] = k;
		m->val[i] = v;
		yrecord(y, p, yline(k));
	}
	return true;
}

static yaml_node_t *ymap_val(const struct ymap *m, const char *name)
{
	for (size_t i = 0; m->keys != NULL && m->keys[i] != NULL; i++)
		if (strcmp(m->keys[i], name) == 0)
			return m->val[i];
	return NULL;
}

static yaml_node_t *ymap_key(const struct ymap *m, const char *name)
{
	for (size_t i = 0; m->keys != NULL && m->keys[i] != NULL; i++)
		if (strcmp(m->keys[i], name) == 0)
			return m->key[i];
	return NULL;
}

/* ---- scalars ---- */

/* Decimal integer, optional sign, nothing else.  0 ok, -1 not a number, -2 out of range. */
static int yparse_int64(const char *s, int64_t *out)
{
	const char *p = s;
	char *end;
	long long v;

	if (*p == '-' || *p == '+')
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE)
		return -2;
	*out = v;
	return 0;
}

static void ystr(struct yctx *y, yaml_node_t *n, const char *parent, const char *key, char **dst)
{
	char path[128];
	const char *t;

	ypath(path, sizeof(path), parent, key);
	t = ytext(y, n, path);
	if (t != NULL)
		*dst = ydup(y, t, path);
}

/* Like ystr, but an empty text is an error: names and the like. */
static void yname(struct yctx *y, yaml_node_t *n, const char *path, char **dst)
{
	const char *t = ytext(y, n, path);

	if (t == NULL)
		return;
	if (t[0] == '\0') {
		yerr(y, yline(n), path, "must not be empty");
		return;
	}
	*dst = ydup(y, t, path);
}

static bool yint(struct yctx *y, yaml_node_t *n, const char *path, int64_t min, int64_t max, int64_t *dst)
{
	const char *t = ytext(y, n, path);
	int64_t v;
	int rc;

	if (t == NULL)
		return false;
	rc = yparse_int64(t, &v);
	if (rc == -1) {
		yerr(y, yline(n), path, "must be an integer, got \"%.40s\"", t);
		return false;
	}
	if (rc == -2 || v < min || v > max) {
		if (max == INT64_MAX)
			yerr(y, yline(n), path, "must be >= %lld, got %.40s", (long long)min, t);
		else
			yerr(y, yline(n), path, "must be between %lld and %lld, got %.40s", (long long)min,
			     (long long)max, t);
		return false;
	}
	*dst = v;
	return true;
}

static void yint_key(struct yctx *y, const struct ymap *m, const char *parent, const char *key, int64_t min,
		     int64_t *dst)
{
	char path[128];

	ypath(path, sizeof(path), parent, key);
	yint(y, ymap_val(m, key), path, min, INT64_MAX, dst);
}

static bool yenum(struct yctx *y, yaml_node_t *n, const char *path, int (*parse)(const char *),
		  const char *allowed, int *dst)
{
	const char *t = ytext(y, n, path);
	int v;

	if (t == NULL)
		return false;
	v = parse(t);
	if (v < 0) {
		yerr(y, yline(n), path, "must be one of %s, got \"%.40s\"", allowed, t);
		return false;
	}
	*dst = v;
	return true;
}

/* "5000" (ms), "500ms", "5s", "1m", "1h", "1d", or a sum such as "1m30s". */
static int yparse_duration_ms(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
	int64_t total = 0;
	int rc = yparse_int64(s, out);

	if (rc != -1)
		return rc;
	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		int64_t n = 0, part;
		size_t u, ulen = 0;

		if (!isdigit((unsigned char)*s))
			return -1;
		for (; isdigit((unsigned char)*s); s++)
			if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *s - '0', &n))
				return -2;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
			ulen = strlen(units[u].unit);
			if (strncasecmp(s, units[u].unit, ulen) == 0 && !isalpha((unsigned char)s[ulen]))
				break;
		}
		if (u == sizeof(units) / sizeof(units[0]))
			return -1;
		s += ulen;
		if (__builtin_mul_overflow(n, units[u].ms, &part) || __builtin_add_overflow(total, part, &total))
			return -2;
	}
	*out = total;
	return 0;
}

static void yduration(struct yctx *y, yaml_node_t *n, const char *path, int64_t *dst)
{
	const char *t = ytext(y, n, path);
	int64_t v;
	int rc;

	if (t == NULL)
		return;
	rc = yparse_duration_ms(t, &v);
	if (rc == -1)
		yerr(y, yline(n), path,
		     "must be a duration: milliseconds like 5000, or a number with a unit d, h, m, s or ms "
		     "like \"5s\" or \"500ms\"; got \"%.40s\"", t);
	else if (rc == -2)
		yerr(y, yline(n), path, "is too large: %.40s", t);
	else if (v < 0)
		yerr(y, yline(n), path, "must be >= 0, got %.40s", t);
	else
		*dst = v;
}

/* ---- lists ---- */

/* Items of a list node, or false (absent, or an error for another kind). */
static bool yseq(struct yctx *y, yaml_node_t *n, const char *path, const char *example, size_t max, size_t *count)
{
	*count = 0;
	if (ynull(n))
		return false;
	if (n->type != YAML_SEQUENCE_NODE) {
		yerr(y, ykey_line(y, path, n), path, "must be a list (%s), got %s", example, ykind(n));
		return false;
	}
	*count = yseq_len(n);
	if (*count > max) {
		yerr(y, yline(n), path, "has %zu items; at most %zu are allowed", *count, max);
		*count = 0;
		return false;
	}
	for (size_t i = 0; i < *count; i++) {
		char ip[128];

		ypath_index(ip, sizeof(ip), path, i);
		yrecord(y, ip, yline(ynode(y, n->data.sequence.items.start[i])));
	}
	return true;
}

static yaml_node_t *yseq_item(struct yctx *y, yaml_node_t *n, size_t i)
{
	return ynode(y, n->data.sequence.items.start[i]);
}

/* A list of names (MATCH_COLUMNS and the like): texts, non-empty, unique. */
static void ynames(struct yctx *y, yaml_node_t *n, const char *parent, const char *key, char ***out, size_t *nout)
{
	char path[128], ip[128];
	size_t count;
	char **v;

	ypath(path, sizeof(path), parent, key);
	if (!yseq(y, n, path, "- column lines", JS_LIST_MAX, &count) || count == 0)
		return;
	v = calloc(count, sizeof(*v));
	if (v == NULL) {
		yerr(y, 0, path, "out of memory");
		return;
	}
	*out = v;
	*nout = count;
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = yseq_item(y, n, i);

		ypath_index(ip, sizeof(ip), path, i);
		if (ynull(item)) {
			yerr(y, yline(item), ip, "is empty; give a column name");
			continue;
		}
		yname(y, item, ip, &v[i]);
		for (size_t j = 0; v[i] != NULL && j < i; j++) {
			if (v[j] != NULL && strcmp(v[i], v[j]) == 0) {
				yerr(y, yline(item), ip, "\"%s\" is listed twice (also %s[%zu]); list it once", v[i],
				     key, j);
				break;
			}
		}
	}
}

static int yint32_cmp(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

static bool ypartition(struct yctx *y, const char *tok, size_t len, int line, const char *path, int32_t *out)
{
	char buf[32];
	int64_t v;

	while (len > 0 && isspace((unsigned char)*tok)) {
		tok++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)tok[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(buf)) {
		yerr(y, line, path, "must be partition numbers like (0,2,5), 0,2,5 or a list; got an empty "
				    "or overlong entry");
		return false;
	}
	memcpy(buf, tok, len);
	buf[len] = '\0';
	if (yparse_int64(buf, &v) == -1) {
		yerr(y, line, path, "must be partition numbers like (0,2,5); \"%s\" is not an integer", buf);
		return false;
	}
	if (v < 0 || v > INT32_MAX) {
		yerr(y, line, path, "partition %s is out of range; partitions are numbered from 0", buf);
		return false;
	}
	*out = (int32_t)v;
	return true;
}

/* PARTITIONS: "(0,2,5)", "0,2,5", 3, or a YAML list. */
static void ypartitions(struct yctx *y, yaml_node_t *n, const char *parent, struct jobspec *spec)
{
	char path[128], ip[128];
	int32_t *v = NULL, *sorted = NULL;
	size_t count = 0;
	int bad = y->nerr;

	ypath(path, sizeof(path), parent, "PARTITIONS");
	if (ynull(n))
		return;
	if (n->type == YAML_SEQUENCE_NODE) {
		if (!yseq(y, n, path, "- 0", JS_PARTITIONS_MAX, &count))
			return;
		v = calloc(count + 1, sizeof(*v));
		if (v == NULL)
			goto oom;
		for (size_t i = 0; i < count; i++) {
			yaml_node_t *item = yseq_item(y, n, i);
			const char *t;

			ypath_index(ip, sizeof(ip), path, i);
			if (ynull(item)) {
				yerr(y, yline(item), ip, "is empty; give a partition number");
				continue;
			}
			t = ytext(y, item, ip);
			if (t != NULL)
				ypartition(y, t, strlen(t), yline(item), ip, &v[i]);
		}
	} else {
		const char *t = ytext(y, n, path);
		size_t len;

		if (t == NULL)
			return;
		len = strlen(t);
		while (len > 0 && isspace((unsigned char)*t)) {
			t++;
			len--;
		}
		while (len > 0 && isspace((unsigned char)t[len - 1]))
			len--;
		if (len > 0 && t[0] == '(') {
			if (t[len - 1] != ')') {
				yerr(y, yline(n), path, "has \"(\" without a closing \")\"; write (0,2,5)");
				return;
			}
			t++;
			len -= 2;
		}
		count = 1;
		for (size_t i = 0; i < len; i++)
			count += t[i] == ',';
		if (count > JS_PARTITIONS_MAX) {
			yerr(y, yline(n), path, "lists %zu partitions; at most %d are allowed", count,
			     JS_PARTITIONS_MAX);
			return;
		}
		v = calloc(count, sizeof(*v));
		if (v == NULL)
			goto oom;
		count = 0;
		for (const char *tok = t, *end = t + len;;) {
			const char *comma = memchr(tok, ',', (size_t)(end - tok));
			size_t tlen = comma != NULL ? (size_t)(comma - tok) : (size_t)(end - tok);

			if (!ypartition(y, tok, tlen, yline(n), path, &v[count]))
				break;
			count++;
			if (comma == NULL)
				break;
			tok = comma + 1;
		}
	}
	if (y->nerr != bad) {
		free(v);
		return;
	}
	if (count == 0) {
		yerr(y, yline(n), path, "lists no partition; leave PARTITIONS out to read all of them");
		free(v);
		return;
	}
	sorted = malloc(count * sizeof(*sorted));
	if (sorted == NULL)
		goto oom;
	memcpy(sorted, v, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), yint32_cmp);
	for (size_t i = 1; i < count; i++) {
		if (sorted[i] == sorted[i - 1]) {
			yerr(y, yline(n), path, "partition %d is listed twice; list it once", (int)sorted[i]);
			free(sorted);
			free(v);
			return;
		}
	}
	free(sorted);
	spec->partitions = v;
	spec->npartitions = count;
	return;
oom:
	free(v);
	yerr(y, yline(n), path, "out of memory");
}

/* ---- KAFKA.INPUT ---- */

static void ycolumns(struct yctx *y, yaml_node_t *n, const char *parent, struct js_column **out, size_t *nout)
{
	char path[128], ip[128], fp[128];
	struct js_column *cols;
	size_t count;

	ypath(path, sizeof(path), parent, "COLUMNS");
	if (!yseq(y, n, path, "- NAME: <column> TYPE: <type>", JS_LIST_MAX, &count) || count == 0)
		return;
	cols = calloc(count, sizeof(*cols));
	if (cols == NULL) {
		yerr(y, yline(n), path, "out of memory");
		return;
	}
	*out = cols;
	*nout = count;
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = yseq_item(y, n, i);
		struct ymap m;

		ypath_index(ip, sizeof(ip), path, i);
		if (ynull(item)) {
			yerr(y, yline(item), ip, "is empty; give NAME: <column> and TYPE: <type>");
			continue;
		}
		if (!ymap_load(y, item, ip, keys_column, &m))
			continue;
		ypath(fp, sizeof(fp), ip, "NAME");
		if (ynull(ymap_val(&m, "NAME")))
			yerr(y, yline(item), fp, "is required; give the column's name");
		else
			yname(y, ymap_val(&m, "NAME"), fp, &cols[i].name);
		ypath(fp, sizeof(fp), ip, "TYPE");
		yname(y, ymap_val(&m, "TYPE"), fp, &cols[i].type);
		for (size_t j = 0; cols[i].name != NULL && j < i; j++) {
			if (cols[j].name != NULL && strcmp(cols[i].name, cols[j].name) == 0) {
				yerr(y, yline(item), ip, "column \"%s\" is defined twice (also COLUMNS[%zu]); "
				     "column names must be unique", cols[i].name, j);
				break;
			}
		}
	}
}

/* QUOTE, ESCAPE and CSV delimiters: one single-byte character. */
static void yonechar(struct yctx *y, const struct ymap *m, const char *parent, const char *key, char **dst)
{
	char path[128];
	yaml_node_t *n = ymap_val(m, key);

	ypath(path, sizeof(path), parent, key);
	ystr(y, n, parent, key, dst);
	if (*dst != NULL && strlen(*dst) != 1)
		yerr(y, yline(n), path, "must be exactly one (single-byte) character, got \"%.40s\"", *dst);
}

/* NULL_STRING: NULL means the text NULL, the usual marker, not YAML's null. */
static void ynull_string(struct yctx *y, yaml_node_t *n, const char *parent, char **dst)
{
	char path[128];

	ypath(path, sizeof(path), parent, "NULL_STRING");
	if (n != NULL && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    ynull(n) && yvalue(n)[0] != '\0')
		*dst = ydup(y, yvalue(n), path);
	else
		ystr(y, n, parent, "NULL_STRING", dst);
}

static void yoptions(struct yctx *y, yaml_node_t *n, const char *path, bool csv, struct js_input *in)
{
	struct ymap m;
	char dp[128];
	yaml_node_t *dn;

	if (!ymap_load(y, n, path, csv ? keys_csv : keys_delimited, &m))
		return;
	dn = ymap_val(&m, "DELIMITER");
	ypath(dp, sizeof(dp), path, "DELIMITER");
	if (csv) {
		yonechar(y, &m, path, "DELIMITER", &in->delimiter);
		ynull_string(y, ymap_val(&m, "NULL_STRING"), path, &in->null_string);
	} else {
		ystr(y, dn, path, "DELIMITER", &in->delimiter);
		if (in->delimiter != NULL && in->delimiter[0] == '\0')
			yerr(y, yline(dn), dp, "must not be empty; write e.g. DELIMITER: \"|\"");
	}
	yonechar(y, &m, path, "QUOTE", &in->quote);
	yonechar(y, &m, path, "ESCAPE", &in->escape);
}

/* PROTOBUF_OPTION: the message type and where its descriptor set is.  Only
 * types are checked here; jobspec_validate checks the values (absolute path,
 * base64, full name, exactly one of DESCRIPTOR_FILE and DESCRIPTOR). */
static void yprotobuf(struct yctx *y, yaml_node_t *n, const char *path, struct js_input *in)
{
	struct ymap m;
	char p[128];

	if (!ymap_load(y, n, path, keys_protobuf, &m))
		return;
	ypath(p, sizeof(p), path, "DESCRIPTOR_FILE");
	yname(y, ymap_val(&m, "DESCRIPTOR_FILE"), p, &in->protobuf_descriptor_file);
	ypath(p, sizeof(p), path, "DESCRIPTOR");
	yname(y, ymap_val(&m, "DESCRIPTOR"), p, &in->protobuf_descriptor);
	ypath(p, sizeof(p), path, "MESSAGE");
	yname(y, ymap_val(&m, "MESSAGE"), p, &in->protobuf_message);
}

/* SCHEMA_REGISTRY_ADDR: "url[,url...]" or a list of URLs, kept as the
 * comma-separated text. */
static void yregistry_addr(struct yctx *y, yaml_node_t *n, const char *path, char **dst)
{
	char ip[128];
	size_t count, total = 0;

	if (n == NULL || n->type != YAML_SEQUENCE_NODE) {
		yname(y, n, path, dst);
		return;
	}
	if (!yseq(y, n, path, "[https://registry1:8081, https://registry2:8081]", 16, &count) || count == 0)
		return;
	for (size_t i = 0; i < count; i++) {
		const char *t;

		ypath_index(ip, sizeof(ip), path, i);
		t = ytext(y, yseq_item(y, n, i), ip);
		if (t == NULL || t[0] == '\0' || strchr(t, ',') != NULL) {
			yerr(y, yline(yseq_item(y, n, i)), ip, "must be one registry URL, e.g. https://registry:8081");
			return;
		}
		total += strlen(t) + 1;
	}
	*dst = malloc(total);
	if (*dst == NULL) {
		yerr(y, yline(n), path, "out of memory");
		return;
	}
	(*dst)[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			strcat(*dst, ",");
		strcat(*dst, yvalue(yseq_item(y, n, i)));
	}
}

/* AVRO_OPTION (avro: true) or JSON_OPTION: a registry, avro's local schema.
 * Only types are checked here; jobspec_validate checks the values. */
static void yregistry_option(struct yctx *y, yaml_node_t *n, const char *path, bool avro, struct js_input *in)
{
	struct ymap m;
	char p[128];
	const char *t;

	if (!ymap_load(y, n, path, avro ? keys_avro : keys_jsonopt, &m))
		return;
	ypath(p, sizeof(p), path, "SCHEMA_REGISTRY_ADDR");
	yregistry_addr(y, ymap_val(&m, "SCHEMA_REGISTRY_ADDR"), p, &in->registry_addr);
	ypath(p, sizeof(p), path, "SCHEMA_REGISTRY_USER");
	yname(y, ymap_val(&m, "SCHEMA_REGISTRY_USER"), p, &in->registry_user);
	ystr(y, ymap_val(&m, "SCHEMA_REGISTRY_PASSWORD"), path, "SCHEMA_REGISTRY_PASSWORD", &in->registry_password);
	if (!avro)
		return;
	ypath(p, sizeof(p), path, "BYTES_TO_BASE64");
	t = ytext(y, ymap_val(&m, "BYTES_TO_BASE64"), p);
	if (t != NULL) {
		if (strcasecmp(t, "true") == 0)
			in->avro_bytes_to_base64 = true;
		else if (strcasecmp(t, "false") != 0)
			yerr(y, yline(ymap_val(&m, "BYTES_TO_BASE64")), p, "must be true or false, got \"%.40s\"", t);
	}
	ypath(p, sizeof(p), path, "SCHEMA_FILE");
	yname(y, ymap_val(&m, "SCHEMA_FILE"), p, &in->avro_schema_file);
	ypath(p, sizeof(p), path, "SCHEMA");
	yname(y, ymap_val(&m, "SCHEMA"), p, &in->avro_schema);
}

/* KEY or VALUE.  One option block at most, the one of its FORMAT; without a
 * FORMAT (the data source may give it) the block is kept for validation. */
static void yinput(struct yctx *y, yaml_node_t *key, yaml_node_t *val, const char *parent, const char *name,
		   struct js_input *in)
{
	static const char *const opts[] = { "DELIMITED_OPTION", "CSV_OPTION", "PROTOBUF_OPTION", "AVRO_OPTION",
					    "JSON_OPTION" };
	static const enum js_format opt_format[] = { JS_FORMAT_DELIMITED, JS_FORMAT_CSV, JS_FORMAT_PROTOBUF,
						     JS_FORMAT_AVRO, JS_FORMAT_JSON };
#define YNOPTS (sizeof(opts) / sizeof(opts[0]))
	char path[128], p[128];
	struct ymap m;
	int format;
	int first = -1;
	bool done[YNOPTS] = { false };

	ypath(path, sizeof(path), parent, name);
	in->present = true;
	in->line = yline(key);
	if (!ymap_load(y, val, path, keys_kv, &m))
		return;
	ycolumns(y, ymap_val(&m, "COLUMNS"), path, &in->columns, &in->ncolumns);
	ypath(p, sizeof(p), path, "FORMAT");
	if (yenum(y, ymap_val(&m, "FORMAT"), p, js_format_parse, "delimited, csv, json, protobuf, avro", &format))
		in->format = (enum js_format)format;

	/* In the order written: the first block is kept, later ones refused. */
	for (;;) {
		int next = -1;
		yaml_node_t *k;

		for (int i = 0; i < (int)YNOPTS; i++) {
			yaml_node_t *ki = ymap_key(&m, opts[i]);

			if (ki != NULL && !done[i] &&
			    (next < 0 || ki->start_mark.index < ymap_key(&m, opts[next])->start_mark.index))
				next = i;
		}
		if (next < 0)
			break;
		done[next] = true;
		k = ymap_key(&m, opts[next]);
		ypath(p, sizeof(p), path, opts[next]);
		if (first >= 0) {
			yerr(y, yline(k), p, "use one option block, not both %s and %s; keep the one matching FORMAT",
			     opts[first], opts[next]);
			continue;
		}
		first = next;
		if (in->format != JS_FORMAT_NONE && in->format != opt_format[next]) {
			const char *hint = "remove it";

			if (in->format == JS_FORMAT_DELIMITED)
				hint = "use DELIMITED_OPTION";
			else if (in->format == JS_FORMAT_CSV)
				hint = "use CSV_OPTION";
			else if (in->format == JS_FORMAT_PROTOBUF)
				hint = "use PROTOBUF_OPTION";
			else if (in->format == JS_FORMAT_AVRO)
				hint = "use AVRO_OPTION";
			yerr(y, yline(k), p, "applies to FORMAT %s, but FORMAT is %s; %s", js_format_name(opt_format[next]),
			     js_format_name(in->format), hint);
			continue;
		}
		if (opt_format[next] == JS_FORMAT_PROTOBUF)
			yprotobuf(y, ymap_val(&m, opts[next]), p, in);
		else if (opt_format[next] == JS_FORMAT_AVRO || opt_format[next] == JS_FORMAT_JSON)
			yregistry_option(y, ymap_val(&m, opts[next]), p, opt_format[next] == JS_FORMAT_AVRO, in);
		else
			yoptions(y, ymap_val(&m, opts[next]), p, opt_format[next] == JS_FORMAT_CSV, in);
	}
}

static int ymeta_type_parse(const char *s)
{
	static const char *const types[] = { "json", "jsonb", "text" };

	for (int i = 0; i < 3; i++)
		if (strcasecmp(s, types[i]) == 0)
			return i;
	return -1;
}

static int ymeta_format_parse(const char *s)
{
	return strcasecmp(s, "json") == 0 ? 0 : strcasecmp(s, "text") == 0 ? 1 : -1;
}

/* META: one column receiving the message's metadata.  Its FORMAT is checked
 * but not kept: it follows from the column's type when written back. */
static void ymeta(struct yctx *y, yaml_node_t *val, const char *parent, struct jobspec *spec)
{
	static const char *const types[] = { "json", "jsonb", "text" };
	char path[128], p[128], ip[128];
	struct ymap m, cm;
	yaml_node_t *cols, *item;
	size_t count;
	int v;

	ypath(path, sizeof(path), parent, "META");
	spec->meta_present = true;
	if (!ymap_load(y, val, path, keys_meta, &m))
		return;
	ypath(p, sizeof(p), path, "FORMAT");
	yenum(y, ymap_val(&m, "FORMAT"), p, ymeta_format_parse, "json, text", &v);

	ypath(p, sizeof(p), path, "COLUMNS");
	cols = ymap_val(&m, "COLUMNS");
	if (!yseq(y, cols, p, "- NAME: meta TYPE: json", JS_LIST_MAX, &count))
		return;
	if (count != 1) {
		yerr(y, yline(cols), p, "must list exactly one column (- NAME: meta TYPE: json), got %zu", count);
		return;
	}
	item = yseq_item(y, cols, 0);
	ypath_index(ip, sizeof(ip), p, 0);
	if (ynull(item)) {
		yerr(y, yline(item), ip, "is empty; give NAME: <column> and TYPE: json");
		return;
	}
	if (!ymap_load(y, item, ip, keys_column, &cm))
		return;
	ypath(p, sizeof(p), ip, "NAME");
	if (ynull(ymap_val(&cm, "NAME")))
		yerr(y, yline(item), p, "is required; name the metadata column");
	else
		yname(y, ymap_val(&cm, "NAME"), p, &spec->meta_column);
	ypath(p, sizeof(p), ip, "TYPE");
	if (ynull(ymap_val(&cm, "TYPE")))
		yerr(y, yline(item), p, "is required; use json, jsonb or text");
	else if (yenum(y, ymap_val(&cm, "TYPE"), p, ymeta_type_parse, "json, jsonb, text", &v))
		spec->meta_type = ydup(y, types[v], p);
}

static void yerror_limit(struct yctx *y, yaml_node_t *n, const char *path, struct jobspec *spec)
{
	const char *t = ytext(y, n, path);
	size_t len;
	int64_t v;

	if (t == NULL)
		return;
	len = strlen(t);
	if (len > 1 && len < 32 && t[len - 1] == '%') {
		char num[32];

		memcpy(num, t, len - 1);
		num[len - 1] = '\0';
		if (yparse_int64(num, &v) == 0) {
			if (v <= 0 || v > 100) {
				yerr(y, yline(n), path, "a percentage must be more than 0%% and at most 100%%, got %s", t);
				return;
			}
			spec->error_limit = v;
			spec->error_limit_percent = true;
			return;
		}
	} else if (yparse_int64(t, &v) == 0) {
		if (v < 0) {
			yerr(y, yline(n), path, "must be >= 0, got %s", t);
			return;
		}
		spec->error_limit = v;
		spec->error_limit_percent = false;
		return;
	}
	yerr(y, yline(n), path, "must be a number of errors (an integer >= 0) or a percentage like \"5%%\"; "
	     "got \"%.40s\"", t);
}

static void ykafka_input(struct yctx *y, yaml_node_t *n, struct jobspec *spec)
{
	const char *path = "KAFKA.INPUT";
	const char *sp = "KAFKA.INPUT.SOURCE";
	struct ymap m, sm;
	char p[128];
	int v;

	if (!ymap_load(y, n, path, keys_input, &m))
		return;
	if (ymap_load(y, ymap_val(&m, "SOURCE"), sp, keys_source, &sm)) {
		ystr(y, ymap_val(&sm, "BROKERS"), sp, "BROKERS", &spec->brokers);
		ystr(y, ymap_val(&sm, "TOPIC"), sp, "TOPIC", &spec->topic);
		ypartitions(y, ymap_val(&sm, "PARTITIONS"), sp, spec);
		ypath(p, sizeof(p), sp, "FALLBACK_OFFSET");
		if (yenum(y, ymap_val(&sm, "FALLBACK_OFFSET"), p, js_fallback_parse, "earliest, latest", &v))
			spec->fallback_offset = (enum js_fallback)v;
	}
	if (ymap_key(&m, "KEY") != NULL)
		yinput(y, ymap_key(&m, "KEY"), ymap_val(&m, "KEY"), path, "KEY", &spec->key);
	if (ymap_key(&m, "VALUE") != NULL)
		yinput(y, ymap_key(&m, "VALUE"), ymap_val(&m, "VALUE"), path, "VALUE", &spec->value);
	if (ymap_key(&m, "META") != NULL)
		ymeta(y, ymap_val(&m, "META"), path, spec);
	ypath(p, sizeof(p), path, "ERROR_LIMIT");
	yerror_limit(y, ymap_val(&m, "ERROR_LIMIT"), p, spec);
}

/* ---- KAFKA.OUTPUT ---- */

static bool ymapping_dup(struct yctx *y, const struct jobspec *spec, size_t i, int line, const char *path)
{
	for (size_t j = 0; j < i; j++) {
		if (spec->mapping[j].name != NULL && strcmp(spec->mapping[j].name, spec->mapping[i].name) == 0) {
			yerr(y, line, path, "target column \"%s\" is mapped twice; map it once",
			     spec->mapping[i].name);
			return true;
		}
	}
	return false;
}

/* MAPPING: a list of NAME/EXPRESSION maps, or a map of target: expression. */
static void ymapping(struct yctx *y, yaml_node_t *n, const char *parent, struct jobspec *spec)
{
	char path[128], ip[128], fp[128];
	size_t count;

	ypath(path, sizeof(path), parent, "MAPPING");
	if (ynull(n))
		return;
	if (n->type == YAML_SCALAR_NODE) {
		yerr(y, ykey_line(y, path, n), path, "must be a list of NAME/EXPRESSION pairs or a map of "
		     "<target column>: <expression> lines, got text");
		return;
	}
	count = n->type == YAML_SEQUENCE_NODE ? yseq_len(n) : ymap_len(n);
	if (count == 0)
		return;
	if (count > JS_LIST_MAX) {
		yerr(y, yline(n), path, "has %zu entries; at most %d are allowed", count, JS_LIST_MAX);
		return;
	}
	spec->mapping = calloc(count, sizeof(*spec->mapping));
	if (spec->mapping == NULL) {
		yerr(y, yline(n), path, "out of memory");
		return;
	}
	spec->nmapping = count;

	if (n->type == YAML_MAPPING_NODE) {
		for (size_t i = 0; i < count; i++) {
			yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
			yaml_node_t *k = ynode(y, pair->key), *v = ynode(y, pair->value);
			const char *name;

			/* The line map names entries by position in both forms. */
			ypath_index(ip, sizeof(ip), path, i);
			yrecord(y, ip, yline(k));
			/* A null key (~, null) is no name either: taken as absent, the
			 * entry would be dropped and emitted as YAML that does not parse. */
			if (k == NULL || k->type != YAML_SCALAR_NODE || yvalue(k)[0] == '\0' || ynull(k)) {
				yerr(y, yline(k), path, "a target column name must be text, got %s",
				     k != NULL && k->type != YAML_SCALAR_NODE ? ykind(k)
				     : k != NULL && yvalue(k)[0] != '\0'	 ? "null (quote it to use it as a name)"
									 : "nothing");
				continue;
			}
			ypath(ip, sizeof(ip), path, yvalue(k));
			name = ytext(y, k, ip);
			if (name == NULL)
				continue;
			if (ynull(v)) {
				yerr(y, yline(k), ip, "needs an expression: a source column or an SQL expression");
				continue;
			}
			spec->mapping[i].name = ydup(y, name, ip);
			yname(y, v, ip, &spec->mapping[i].expression);
			if (spec->mapping[i].name != NULL)
				ymapping_dup(y, spec, i, yline(k), ip);
		}
		return;
	}
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = yseq_item(y, n, i);
		struct ymap m;

		ypath_index(ip, sizeof(ip), path, i);
		yrecord(y, ip, yline(item));
		if (ynull(item)) {
			yerr(y, yline(item), ip, "is empty; give NAME: <target column> and EXPRESSION: <expression>");
			continue;
		}
		if (!ymap_load(y, item, ip, keys_mapping, &m))
			continue;
		ypath(fp, sizeof(fp), ip, "NAME");
		if (ynull(ymap_val(&m, "NAME")))
			yerr(y, yline(item), fp, "is required; give the target column");
		else
			yname(y, ymap_val(&m, "NAME"), fp, &spec->mapping[i].name);
		ypath(fp, sizeof(fp), ip, "EXPRESSION");
		if (ynull(ymap_val(&m, "EXPRESSION")))
			yerr(y, yline(item), fp, "is required; give a source column or an SQL expression");
		else
			yname(y, ymap_val(&m, "EXPRESSION"), fp, &spec->mapping[i].expression);
		if (spec->mapping[i].name != NULL)
			ymapping_dup(y, spec, i, yline(item), ip);
	}
}

static void ykafka_output(struct yctx *y, yaml_node_t *n, struct jobspec *spec)
{
	const char *path = "KAFKA.OUTPUT";
	struct ymap m;
	char p[128];
	int v;

	if (!ymap_load(y, n, path, keys_output, &m))
		return;
	ystr(y, ymap_val(&m, "SCHEMA"), path, "SCHEMA", &spec->schema);
	ystr(y, ymap_val(&m, "TABLE"), path, "TABLE", &spec->table);
	ypath(p, sizeof(p), path, "MODE");
	if (yenum(y, ymap_val(&m, "MODE"), p, js_mode_parse, "INSERT, UPDATE, MERGE", &v))
		spec->mode = (enum js_mode)v;
	ynames(y, ymap_val(&m, "MATCH_COLUMNS"), path, "MATCH_COLUMNS", &spec->match_columns, &spec->nmatch_columns);
	ynames(y, ymap_val(&m, "ORDER_COLUMNS"), path, "ORDER_COLUMNS", &spec->order_columns, &spec->norder_columns);
	ynames(y, ymap_val(&m, "UPDATE_COLUMNS"), path, "UPDATE_COLUMNS", &spec->update_columns,
	       &spec->nupdate_columns);
	ymapping(y, ymap_val(&m, "MAPPING"), path, spec);
}

/* ---- KAFKA.PROPERTIES ---- */

static void yproperties(struct yctx *y, yaml_node_t *n, struct jobspec *spec)
{
	const char *path = "KAFKA.PROPERTIES";
	char p[128];
	size_t count;

	if (ynull(n))
		return;
	if (n->type != YAML_MAPPING_NODE) {
		yerr(y, ykey_line(y, path, n), path, "must be a map of <librdkafka property>: <value> lines, got %s", ykind(n));
		return;
	}
	count = ymap_len(n);
	if (count == 0)
		return;
	if (count > JS_PROPERTIES_MAX) {
		yerr(y, yline(n), path, "has %zu entries; at most %d are allowed", count, JS_PROPERTIES_MAX);
		return;
	}
	spec->properties = calloc(count, sizeof(*spec->properties));
	if (spec->properties == NULL) {
		yerr(y, yline(n), path, "out of memory");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
		yaml_node_t *k = ynode(y, pair->key), *v = ynode(y, pair->value);
		struct js_property *pr = &spec->properties[spec->nproperties];
		const char *key, *val;

		if (k == NULL || k->type != YAML_SCALAR_NODE || ynull(k) || yvalue(k)[0] == '\0') {
			yerr(y, yline(k), path, "a property name must be text like group.id");
			continue;
		}
		ypath(p, sizeof(p), path, yvalue(k));
		key = ytext(y, k, p);
		if (key == NULL)
			continue;
		if (jobspec_property(spec, key) != NULL) {
			yerr(y, yline(k), p, "duplicate property %.64s; keep only one", key);
			continue;
		}
		if (ynull(v)) {
			yerr(y, yline(k), p, "needs a value (text, a number or true/false)");
			continue;
		}
		val = ytext(y, v, p);
		if (val == NULL)
			continue;
		pr->key = ydup(y, key, p);
		pr->value = ydup(y, val, p);
		if (pr->key == NULL || pr->value == NULL) {
			free(pr->key);
			free(pr->value);
			pr->key = pr->value = NULL;
			continue;
		}
		spec->nproperties++;
		yrecord(y, p, yline(k));
	}
}

/* ---- the document ---- */

static void ykafka(struct yctx *y, yaml_node_t *n, struct jobspec *spec)
{
	struct ymap m, cm, pm;
	char p[128];
	int v;

	if (!ymap_load(y, n, "KAFKA", keys_kafka, &m))
		return;
	ykafka_input(y, ymap_val(&m, "INPUT"), spec);
	ykafka_output(y, ymap_val(&m, "OUTPUT"), spec);
	if (ymap_load(y, ymap_val(&m, "METADATA"), "KAFKA.METADATA", keys_metadata, &cm))
		ystr(y, ymap_val(&cm, "SCHEMA"), "KAFKA.METADATA", "SCHEMA", &spec->metadata_schema);
	if (ymap_load(y, ymap_val(&m, "COMMIT"), "KAFKA.COMMIT", keys_commit, &cm)) {
		yint_key(y, &cm, "KAFKA.COMMIT", "MAX_ROW", 1, &spec->commit_max_row);
		yint_key(y, &cm, "KAFKA.COMMIT", "MINIMAL_INTERVAL", 0, &spec->commit_minimal_interval_ms);
		ypath(p, sizeof(p), "KAFKA.COMMIT", "CONSISTENCY");
		if (yenum(y, ymap_val(&cm, "CONSISTENCY"), p, js_consistency_parse,
			  "ATLEAST (at-least), EXACTLY (strong), at-most, none", &v))
			spec->consistency = (enum js_consistency)v;
	}
	if (ymap_load(y, ymap_val(&m, "POLL"), "KAFKA.POLL", keys_poll, &pm)) {
		yint_key(y, &pm, "KAFKA.POLL", "BATCHSIZE", 1, &spec->poll_batchsize);
		yint_key(y, &pm, "KAFKA.POLL", "TIMEOUT", 0, &spec->poll_timeout_ms);
	}
	yproperties(y, ymap_val(&m, "PROPERTIES"), spec);
}

static void yversion(struct yctx *y, yaml_node_t *n, struct jobspec *spec)
{
	const char *t = ytext(y, n, "VERSION");
	int64_t v;

	if (t == NULL)
		return;
	/* GPSS writes 2, later formats v3; either spelling names the version. */
	if ((t[0] == 'v' || t[0] == 'V') && isdigit((unsigned char)t[1]))
		t++;
	if (yparse_int64(t, &v) != 0 || v < 1 || v > INT_MAX) {
		yerr(y, yline(n), "VERSION", "must be a positive integer (this format is VERSION: 2), got \"%.40s\"",
		     yvalue(n));
		return;
	}
	spec->version = (int)v;
}

static void ytasks(struct yctx *y, yaml_node_t *n, struct jobspec *spec)
{
	const char *t = ytext(y, n, "TASKS");
	int64_t v;

	if (t == NULL)
		return;
	if (yparse_int64(t, &v) != 0 || v < JS_TASKS_MIN || v > JS_TASKS_MAX) {
		yerr(y, yline(n), "TASKS",
		     "must be an integer between %d and %d (the job's worker processes), got \"%.40s\"; "
		     "leave it out for 1", JS_TASKS_MIN, JS_TASKS_MAX, yvalue(n));
		return;
	}
	spec->tasks = (int)v;
}

static void ydocument(struct yctx *y, yaml_node_t *root, struct jobspec *spec)
{
	struct ymap m, sm;
	int64_t port;

	if (root->type != YAML_MAPPING_NODE) {
		yerr(y, yline(root), "", "the job must be a map of KEY: value lines (DATABASE: ..., KAFKA: ...), "
		     "got %s", ykind(root));
		return;
	}
	if (!ymap_load(y, root, "", keys_top, &m))
		return;
	ystr(y, ymap_val(&m, "DATABASE"), "", "DATABASE", &spec->database);
	ystr(y, ymap_val(&m, "USER"), "", "USER", &spec->user);
	ystr(y, ymap_val(&m, "PASSWORD"), "", "PASSWORD", &spec->password);
	ystr(y, ymap_val(&m, "HOST"), "", "HOST", &spec->host);
	if (yint(y, ymap_val(&m, "PORT"), "PORT", 1, 65535, &port))
		spec->port = (int)port;
	ystr(y, ymap_val(&m, "SSLMODE"), "", "SSLMODE", &spec->sslmode);
	ystr(y, ymap_val(&m, "SSLROOTCERT"), "", "SSLROOTCERT", &spec->sslrootcert);
	ystr(y, ymap_val(&m, "SSLCERT"), "", "SSLCERT", &spec->sslcert);
	ystr(y, ymap_val(&m, "SSLKEY"), "", "SSLKEY", &spec->sslkey);
	yversion(y, ymap_val(&m, "VERSION"), spec);
	ytasks(y, ymap_val(&m, "TASKS"), spec);
	ykafka(y, ymap_val(&m, "KAFKA"), spec);
	if (ymap_load(y, ymap_val(&m, "SCHEDULE"), "SCHEDULE", keys_schedule, &sm)) {
		yduration(y, ymap_val(&sm, "RETRY_INTERVAL"), "SCHEDULE.RETRY_INTERVAL", &spec->retry_interval_ms);
		yint_key(y, &sm, "SCHEDULE", "MAX_RETRIES", 0, &spec->max_retries);
	}
}

static int yline_of_offset(const char *text, size_t len, size_t offset)
{
	int line = 1;

	for (size_t i = 0; i < offset && i < len; i++)
		line += text[i] == '\n';
	return line;
}

/* A syntax error in a re-flowed one-line job: its lines are not the user's,
 * so show the re-flowed line the problem is on. */
static void ysyntax_error_reflowed(struct yctx *y, const yaml_parser_t *parser, const char *text, size_t len)
{
	size_t line = parser->problem_mark.line, i = 0, end;

	if (parser->error == YAML_MEMORY_ERROR) {
		yerr(y, 0, "", "out of memory while reading the YAML");
		return;
	}
	for (size_t l = 0; l < line && i < len; i++)
		l += text[i] == '\n';
	while (i < len && text[i] == ' ')
		i++;
	end = i;
	while (end < len && text[end] != '\n')
		end++;
	yerr(y, 1, "",
	     "YAML syntax error in the one-line job, split at its keys, near \"%.*s%s\": %s; quote values that "
	     "contain \": \", \" #\" or \" - \", or write the job on several lines",
	     (int)(end - i > 80 ? 80 : end - i), text + i, end - i > 80 ? "..." : "",
	     parser->problem != NULL ? parser->problem : "invalid YAML");
}

static void ysyntax_error(struct yctx *y, const yaml_parser_t *parser, const char *text, size_t len)
{
	const char *hint = "check indentation and quoting";

	if (y->reflowed) {
		ysyntax_error_reflowed(y, parser, text, len);
		return;
	}

	if (parser->problem_mark.index < len && text[parser->problem_mark.index] == '\t')
		hint = "YAML indents with spaces, not tabs";
	if (parser->error == YAML_MEMORY_ERROR) {
		yerr(y, 0, "", "out of memory while reading the YAML");
	} else if (parser->error == YAML_READER_ERROR) {
		yerr(y, yline_of_offset(text, len, parser->problem_offset), "",
		     "YAML input error at byte %zu: %s; the job must be UTF-8 text", parser->problem_offset,
		     parser->problem != NULL ? parser->problem : "unreadable input");
	} else if (parser->context != NULL) {
		yerr(y, (int)parser->problem_mark.line + 1, "",
		     "YAML syntax error at line %d, column %d: %s (%s at line %d); %s",
		     (int)parser->problem_mark.line + 1, (int)parser->problem_mark.column + 1,
		     parser->problem != NULL ? parser->problem : "invalid YAML", parser->context,
		     (int)parser->context_mark.line + 1, hint);
	} else {
		yerr(y, (int)parser->problem_mark.line + 1, "",
		     "YAML syntax error at line %d, column %d: %s; %s",
		     (int)parser->problem_mark.line + 1, (int)parser->problem_mark.column + 1,
		     parser->problem != NULL ? parser->problem : "invalid YAML", hint);
	}
}

/* libyaml slows down quadratically with the depth of flow nesting ("[[[[")
 * and with the number of anchors; a first pass over the events refuses both
 * (and reports syntax errors) before any document is built. */
static bool yprecheck(struct yctx *y, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0;
	size_t anchors = 0;
	bool ok = true;

	if (!yaml_parser_initialize(&parser)) {
		yerr(y, 0, "", "out of memory");
		return false;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_type_t type;
		int line;

		if (!yaml_parser_parse(&parser, &ev)) {
			ysyntax_error(y, &parser, text, len);
			ok = false;
			break;
		}
		type = ev.type;
		line = (int)ev.start_mark.line + 1;
		if ((type == YAML_SCALAR_EVENT && ev.data.scalar.anchor != NULL) ||
		    (type == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor != NULL) ||
		    (type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor != NULL))
			anchors++;
		if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT)
			depth--;
		yaml_event_delete(&ev);
		if (depth > JS_DEPTH_MAX) {
			yerr(y, line, "", "the YAML is nested more than %d levels deep; a job needs 6", JS_DEPTH_MAX);
			ok = false;
			break;
		}
		if (anchors > JS_ANCHORS_MAX) {
			yerr(y, line, "", "the YAML defines more than %d anchors (&name); write the values out",
			     JS_ANCHORS_MAX);
			ok = false;
			break;
		}
		if (type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&parser);
	return ok;
}

/* Every line of a re-flowed job is the user's line 1. */
static void yreflowed_lines(struct yctx *y, struct jobspec *spec)
{
	if (y->errs != NULL)
		for (size_t i = 0; i < y->errs->count; i++)
			if (y->errs->items[i].line > 0)
				y->errs->items[i].line = 1;
	for (size_t i = 0; i < y->nlines; i++)
		y->lines[i].line = 1;
	if (spec != NULL) {
		if (spec->key.line > 0)
			spec->key.line = 1;
		if (spec->value.line > 0)
			spec->value.line = 1;
	}
}

int jobspec_parse_yaml(const char *text, size_t len, struct jobspec **out, struct js_errors *errs)
{
	struct yctx y = { NULL, errs, 0, NULL, 0, 0, false, false };
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	bool have_parser = false, have_doc = false;
	struct jobspec *spec = NULL;
	yaml_node_t *root;
	char *reflowed = NULL;
	size_t reflowed_len = 0;
	int rc;

	if (errs != NULL)
		memset(errs, 0, sizeof(*errs));
	if (out != NULL)
		*out = NULL;
	if (out == NULL || (text == NULL && len > 0)) {
		yerr(&y, 0, "", "no job definition given");
		return -1;
	}
	if (len > JS_YAML_MAX) {
		yerr(&y, 0, "", "the job definition is %zu bytes; at most %d are allowed", len, JS_YAML_MAX);
		return -1;
	}
	if (text == NULL)
		text = "";
	/* The seed prints its example flattened onto one line: put it back in lines. */
	rc = jobspec_reflow(text, len, &reflowed, &reflowed_len);
	if (rc < 0) {
		yerr(&y, 0, "", "out of memory");
		return -1;
	}
	if (rc > 0) {
		y.reflowed = true;
		text = reflowed;
		len = reflowed_len;
	}
	if (!yprecheck(&y, text, len))
		goto out;
	spec = jobspec_new();
	if (spec == NULL || !yaml_parser_initialize(&parser)) {
		yerr(&y, 0, "", "out of memory");
		goto out;
	}
	have_parser = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		ysyntax_error(&y, &parser, text, len);
		goto out;
	}
	have_doc = true;
	y.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL) {
		yerr(&y, 0, "", "the job definition is empty; write DATABASE, USER, HOST, PORT and KAFKA: "
		     "INPUT/OUTPUT as in the appendix format");
		goto out;
	}
	ydocument(&y, root, spec);

	/* A second document would be silently ignored; say so instead. */
	if (!yaml_parser_load(&parser, &extra)) {
		ysyntax_error(&y, &parser, text, len);
	} else {
		yaml_node_t *r2 = yaml_document_get_root_node(&extra);

		if (r2 != NULL)
			yerr(&y, yline(r2), "", "only one YAML document is allowed; remove the \"---\" and what follows");
		yaml_document_delete(&extra);
	}
out:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	if (y.reflowed)
		yreflowed_lines(&y, spec);
	free(reflowed);
	if (y.nerr > 0) {
		ylines_free(&y);
		jobspec_free(spec);
		return -1;
	}
	spec->lines = y.lines;
	spec->nlines = y.nlines;
	*out = spec;
	return 0;
}
