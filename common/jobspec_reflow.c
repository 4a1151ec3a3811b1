/* Re-flowing a job written on one line (see jobspec_reflow.h for the rules). */
#include "jobspec_reflow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#define RF_DEPTH_MAX 16      /* frames; the grammar nests 6 deep */
#define RF_FLOW_DEPTH_MAX 32 /* as the parser's precheck: libyaml is quadratic beyond */
#define RF_OUT_MAX (8u * 1024 * 1024)

/* ---- the key grammar ---- */

enum rf_kind {
	RF_SCALAR,
	RF_MAP,     /* child: its keys */
	RF_LIST,    /* child: an item's keys, NULL when items are scalars */
	RF_FREE,    /* any word: is an entry */
	RF_MAPPING, /* a list of child items, or a free map, by what follows */
};

struct rf_key {
	const char *name;
	enum rf_kind kind;
	const struct rf_key *child;
};

static const struct rf_key rf_column[] = {
	{ "NAME", RF_SCALAR, NULL },
	{ "TYPE", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_options[] = {
	{ "DELIMITER", RF_SCALAR, NULL },
	{ "QUOTE", RF_SCALAR, NULL },
	{ "ESCAPE", RF_SCALAR, NULL },
	{ "NULL_STRING", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_protobuf[] = {
	{ "DESCRIPTOR_FILE", RF_SCALAR, NULL },
	{ "DESCRIPTOR", RF_SCALAR, NULL },
	{ "MESSAGE", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_avro[] = {
	{ "SCHEMA_REGISTRY_ADDR", RF_SCALAR, NULL },
	{ "SCHEMA_REGISTRY_USER", RF_SCALAR, NULL },
	{ "SCHEMA_REGISTRY_PASSWORD", RF_SCALAR, NULL },
	{ "BYTES_TO_BASE64", RF_SCALAR, NULL },
	{ "SCHEMA_FILE", RF_SCALAR, NULL },
	{ "SCHEMA", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_kv[] = {
	{ "COLUMNS", RF_LIST, rf_column },
	{ "FORMAT", RF_SCALAR, NULL },
	{ "DELIMITED_OPTION", RF_MAP, rf_options },
	{ "CSV_OPTION", RF_MAP, rf_options },
	{ "PROTOBUF_OPTION", RF_MAP, rf_protobuf },
	{ "AVRO_OPTION", RF_MAP, rf_avro },
	{ "JSON_OPTION", RF_MAP, rf_avro },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_meta[] = {
	{ "COLUMNS", RF_LIST, rf_column },
	{ "FORMAT", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_source[] = {
	{ "BROKERS", RF_SCALAR, NULL },
	{ "TOPIC", RF_SCALAR, NULL },
	{ "PARTITIONS", RF_LIST, NULL },
	{ "FALLBACK_OFFSET", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_input[] = {
	{ "SOURCE", RF_MAP, rf_source },
	{ "KEY", RF_MAP, rf_kv },
	{ "VALUE", RF_MAP, rf_kv },
	{ "META", RF_MAP, rf_meta },
	{ "ERROR_LIMIT", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_mapping_item[] = {
	{ "NAME", RF_SCALAR, NULL },
	{ "EXPRESSION", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_output[] = {
	{ "SCHEMA", RF_SCALAR, NULL },
	{ "TABLE", RF_SCALAR, NULL },
	{ "MODE", RF_SCALAR, NULL },
	{ "MATCH_COLUMNS", RF_LIST, NULL },
	{ "ORDER_COLUMNS", RF_LIST, NULL },
	{ "UPDATE_COLUMNS", RF_LIST, NULL },
	{ "MAPPING", RF_MAPPING, rf_mapping_item },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_metadata[] = {
	{ "SCHEMA", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_commit[] = {
	{ "MAX_ROW", RF_SCALAR, NULL },
	{ "MINIMAL_INTERVAL", RF_SCALAR, NULL },
	{ "CONSISTENCY", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_poll[] = {
	{ "BATCHSIZE", RF_SCALAR, NULL },
	{ "TIMEOUT", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_kafka[] = {
	{ "INPUT", RF_MAP, rf_input },
	{ "OUTPUT", RF_MAP, rf_output },
	{ "METADATA", RF_MAP, rf_metadata },
	{ "COMMIT", RF_MAP, rf_commit },
	{ "POLL", RF_MAP, rf_poll },
	{ "PROPERTIES", RF_FREE, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_schedule[] = {
	{ "RETRY_INTERVAL", RF_SCALAR, NULL },
	{ "MAX_RETRIES", RF_SCALAR, NULL },
	{ NULL, RF_SCALAR, NULL },
};
static const struct rf_key rf_top[] = {
	{ "DATABASE", RF_SCALAR, NULL },
	{ "USER", RF_SCALAR, NULL },
	{ "PASSWORD", RF_SCALAR, NULL },
	{ "HOST", RF_SCALAR, NULL },
	{ "PORT", RF_SCALAR, NULL },
	{ "SSLMODE", RF_SCALAR, NULL },
	{ "SSLROOTCERT", RF_SCALAR, NULL },
	{ "SSLCERT", RF_SCALAR, NULL },
	{ "SSLKEY", RF_SCALAR, NULL },
	{ "VERSION", RF_SCALAR, NULL },
	{ "TASKS", RF_SCALAR, NULL },
	{ "KAFKA", RF_MAP, rf_kafka },
	{ "SCHEDULE", RF_MAP, rf_schedule },
	{ NULL, RF_SCALAR, NULL },
};

static const struct rf_key *rf_find(const struct rf_key *keys, const char *s, size_t n, bool exact)
{
	for (; keys != NULL && keys->name != NULL; keys++) {
		if (strlen(keys->name) != n)
			continue;
		if (exact ? strncmp(keys->name, s, n) == 0 : strncasecmp(keys->name, s, n) == 0)
			return keys;
	}
	return NULL;
}

/* ---- is it a flattened job? ---- */

static bool rf_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool rf_one_line(const char *text, size_t len)
{
	size_t a = 0, b = len;

	while (a < b && rf_space(text[a]))
		a++;
	while (b > a && rf_space(text[b - 1]))
		b--;
	if (a == b)
		return false;
	return memchr(text + a, '\n', b - a) == NULL && memchr(text + a, '\r', b - a) == NULL;
}

/* A syntax error, or a document that is a plain scalar.  Too deep a flow
 * nesting is left to the parser, which refuses it with its own message. */
static bool rf_not_a_map(const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	bool result = false, root_seen = false;
	int depth = 0;

	if (!yaml_parser_initialize(&parser))
		return false;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_type_t type;

		if (!yaml_parser_parse(&parser, &ev)) {
			result = true;
			break;
		}
		type = ev.type;
		if (!root_seen && (type == YAML_SCALAR_EVENT || type == YAML_SEQUENCE_START_EVENT ||
				   type == YAML_MAPPING_START_EVENT)) {
			root_seen = true;
			if (type == YAML_SCALAR_EVENT && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
				yaml_event_delete(&ev);
				result = true;
				break;
			}
		}
		if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT)
			depth--;
		yaml_event_delete(&ev);
		if (depth > RF_FLOW_DEPTH_MAX || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&parser);
	return result;
}

/* ---- tokens ---- */

struct rf_tok {
	const char *s;
	size_t n;
	bool quoted; /* starts with ' or " */
};

/* The next whitespace-separated token; a quoted one runs to its closing
 * quote (YAML's escapes: \x in "", '' in '') and on to the next space.
 * Returns 1, 0 at the end, -1 at an unterminated quote. */
static int rf_next(const char *text, size_t len, size_t *pos, struct rf_tok *t)
{
	size_t i = *pos;

	while (i < len && rf_space(text[i]))
		i++;
	if (i >= len) {
		*pos = i;
		return 0;
	}
	t->s = text + i;
	t->quoted = text[i] == '"' || text[i] == '\'';
	if (t->quoted) {
		char q = text[i++];

		for (;;) {
			if (i >= len)
				return -1;
			if (q == '"' && text[i] == '\\') {
				i += 2;
				continue;
			}
			if (text[i] == q) {
				if (q == '\'' && i + 1 < len && text[i + 1] == '\'') {
					i += 2;
					continue;
				}
				i++;
				break;
			}
			i++;
		}
	}
	while (i < len && !rf_space(text[i]))
		i++;
	t->n = (size_t)(text + i - t->s);
	*pos = i;
	return 1;
}

/* "NAME:" (n = length without the colon); false for anything else. */
static bool rf_keyword(const struct rf_tok *t, size_t *n)
{
	if (t->quoted || t->n < 2 || t->s[t->n - 1] != ':' || t->s[t->n - 2] == ':')
		return false;
	if (strchr("-[]{},#&*!|>%@`?", t->s[0]) != NULL)
		return false;
	*n = t->n - 1;
	return true;
}

/* A quoted entry name, "group.id": as written (PROPERTIES and the like). */
static bool rf_quoted_keyword(const struct rf_tok *t)
{
	return t->quoted && t->n >= 3 && t->s[t->n - 1] == ':' && t->s[t->n - 2] == t->s[0];
}

/* "FOO:" in upper case, as the appendix writes keys: a key the grammar does
 * not know, put on its own line so the parser names it ("did you mean"). */
static bool rf_upper_keyword(const struct rf_tok *t)
{
	size_t n;

	if (!rf_keyword(t, &n) || n < 2 || !(t->s[0] >= 'A' && t->s[0] <= 'Z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t->s[i] >= 'A' && t->s[i] <= 'Z') || (t->s[i] >= '0' && t->s[i] <= '9') || t->s[i] == '_'))
			return false;
	return true;
}

static bool rf_dash(const struct rf_tok *t)
{
	return !t->quoted && t->n == 1 && t->s[0] == '-';
}

/* ---- output ---- */

enum rf_frame_type { RF_FR_MAP, RF_FR_LIST, RF_FR_FREE };

struct rf_frame {
	enum rf_frame_type type;
	const struct rf_key *keys; /* MAP: its keys; LIST: an item's keys or NULL */
	size_t indent;             /* MAP, FREE: of its keys; LIST: of its "-" */
	bool item;                 /* a MAP that is an item of the LIST below it */
};

struct rf {
	const char *text;
	size_t len, pos;
	char *out;
	size_t outlen, outcap;
	bool oom, too_big;
	struct rf_frame st[RF_DEPTH_MAX];
	int sp;
	int flow; /* unclosed [ and { in the current value */
};

static void rf_put(struct rf *r, const char *s, size_t n)
{
	if (r->oom || r->too_big)
		return;
	if (r->outlen + n + 1 > r->outcap) {
		size_t cap = r->outcap != 0 ? r->outcap : 1024;
		char *grown;

		while (cap < r->outlen + n + 1)
			cap *= 2;
		if (cap > RF_OUT_MAX) {
			r->too_big = true;
			return;
		}
		grown = realloc(r->out, cap);
		if (grown == NULL) {
			r->oom = true;
			return;
		}
		r->out = grown;
		r->outcap = cap;
	}
	memcpy(r->out + r->outlen, s, n);
	r->outlen += n;
	r->out[r->outlen] = '\0';
}

/* A new line indented by indent, then prefix. */
static void rf_line(struct rf *r, size_t indent, const char *prefix)
{
	static const char spaces[] = "                                ";

	if (r->outlen > 0)
		rf_put(r, "\n", 1);
	while (indent > 0) {
		size_t n = indent < sizeof(spaces) - 1 ? indent : sizeof(spaces) - 1;

		rf_put(r, spaces, n);
		indent -= n;
	}
	rf_put(r, prefix, strlen(prefix));
}

static bool rf_push(struct rf *r, enum rf_frame_type type, const struct rf_key *keys, size_t indent, bool item)
{
	if (r->sp >= RF_DEPTH_MAX)
		return false;
	r->st[r->sp++] = (struct rf_frame){ type, keys, indent, item };
	return true;
}

static bool rf_peek_dash(const struct rf *r)
{
	size_t pos = r->pos;
	struct rf_tok t;

	return rf_next(r->text, r->len, &pos, &t) == 1 && rf_dash(&t);
}

/* Writes key k (as the user spelled it: t) of frame f, opening its level. */
static bool rf_key(struct rf *r, int f, const struct rf_tok *t, const struct rf_key *k, bool dash)
{
	size_t indent = r->st[f].indent;

	r->sp = f + 1;
	if (dash)
		rf_line(r, indent - 2, "- ");
	else
		rf_line(r, indent, "");
	rf_put(r, t->s, t->n);
	r->flow = 0;
	switch (k->kind) {
	case RF_SCALAR:
		return true;
	case RF_MAP:
		return rf_push(r, RF_FR_MAP, k->child, indent + 2, false);
	case RF_LIST:
		return rf_push(r, RF_FR_LIST, k->child, indent + 2, false);
	case RF_FREE:
		return rf_push(r, RF_FR_FREE, NULL, indent + 2, false);
	case RF_MAPPING:
		if (rf_peek_dash(r))
			return rf_push(r, RF_FR_LIST, k->child, indent + 2, false);
		return rf_push(r, RF_FR_FREE, NULL, indent + 2, false);
	}
	return false;
}

/* After a "-" of list frame l: an item that is a map when the next token is
 * one of its keys, else a scalar item. */
static bool rf_item(struct rf *r, int l)
{
	const struct rf_frame *list = &r->st[l];
	size_t pos = r->pos, n;
	struct rf_tok t;
	const struct rf_key *k;

	r->sp = l + 1;
	r->flow = 0;
	if (list->keys != NULL && rf_next(r->text, r->len, &pos, &t) == 1 && rf_keyword(&t, &n) &&
	    (k = rf_find(list->keys, t.s, n, false)) != NULL) {
		r->pos = pos;
		if (!rf_push(r, RF_FR_MAP, list->keys, list->indent + 2, true))
			return false;
		return rf_key(r, r->sp - 1, &t, k, true);
	}
	rf_line(r, list->indent, "- ");
	return true;
}

static void rf_value(struct rf *r, const struct rf_tok *t)
{
	if (r->outlen > 0 && r->out[r->outlen - 1] != ' ')
		rf_put(r, " ", 1);
	rf_put(r, t->s, t->n);
	if (t->quoted)
		return;
	for (size_t i = 0; i < t->n; i++) {
		if (t->s[i] == '[' || t->s[i] == '{')
			r->flow++;
		else if ((t->s[i] == ']' || t->s[i] == '}') && r->flow > 0)
			r->flow--;
	}
}

/* One token.  false: the text does not fit the grammar's shape (too deep). */
static bool rf_token(struct rf *r, const struct rf_tok *t)
{
	struct rf_frame *top = &r->st[r->sp - 1];
	size_t n;

	if (r->flow == 0 && rf_dash(t)) {
		size_t pos = r->pos, kn;
		struct rf_tok u;

		if (top->type == RF_FR_LIST)
			return rf_item(r, r->sp - 1);
		/* A "-" inside an item's value ("a - b") is text unless an item key follows. */
		if (top->item && rf_next(r->text, r->len, &pos, &u) == 1 && rf_keyword(&u, &kn) &&
		    rf_find(top->keys, u.s, kn, false) != NULL)
			return rf_item(r, r->sp - 2);
	}
	if (r->flow == 0 && rf_keyword(t, &n)) {
		bool exact = false;

		for (int f = r->sp - 1; f >= 0; f--) {
			const struct rf_key *k;

			if (r->st[f].type == RF_FR_FREE) {
				exact = true;
				continue;
			}
			if (r->st[f].type == RF_FR_MAP && (k = rf_find(r->st[f].keys, t->s, n, exact)) != NULL)
				return rf_key(r, f, t, k, false);
		}
	}
	if (r->flow == 0 && top->type == RF_FR_FREE && (rf_keyword(t, &n) || rf_quoted_keyword(t))) {
		rf_line(r, top->indent, "");
		rf_put(r, t->s, t->n);
		return true;
	}
	if (r->flow == 0 && rf_upper_keyword(t)) {
		static const struct rf_key unknown = { "", RF_SCALAR, NULL };

		for (int f = r->sp - 1; f >= 0; f--)
			if (r->st[f].type == RF_FR_MAP)
				return rf_key(r, f, t, &unknown, false);
	}
	rf_value(r, t);
	return true;
}

int jobspec_reflow(const char *text, size_t len, char **out, size_t *outlen)
{
	struct rf r;
	struct rf_tok t;
	size_t n;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (text == NULL || !rf_one_line(text, len) || !rf_not_a_map(text, len))
		return 0;
	memset(&r, 0, sizeof(r));
	r.text = text;
	r.len = len;
	/* Only a job: the first token is a top-level key. */
	{
		size_t pos = 0;

		if (rf_next(text, len, &pos, &t) != 1 || !rf_keyword(&t, &n) || rf_find(rf_top, t.s, n, false) == NULL)
			return 0;
	}
	r.st[0] = (struct rf_frame){ RF_FR_MAP, rf_top, 0, false };
	r.sp = 1;
	while ((rc = rf_next(text, len, &r.pos, &t)) == 1) {
		if (!rf_token(&r, &t))
			break;
	}
	rf_put(&r, "\n", 1);
	if (r.oom) {
		free(r.out);
		return -1;
	}
	if (rc != 0 || r.too_big) {
		free(r.out);
		return 0; /* an unterminated quote, or no job: the parser says what is wrong */
	}
	*out = r.out;
	*outlen = r.outlen;
	return 1;
}
