#include "pbproto.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textbuf.h"

#define PP_DEPTH_MAX 64
#define PP_NAME_MAX 512

/* The well-known types a registry's schemas import (google/protobuf/...),
 * in their own file of the set. */
static const char pp_wkt[] =
	"syntax = \"proto3\"; package google.protobuf;"
	"message Timestamp { int64 seconds = 1; int32 nanos = 2; }"
	"message Duration { int64 seconds = 1; int32 nanos = 2; }"
	"message DoubleValue { double value = 1; } message FloatValue { float value = 1; }"
	"message Int64Value { int64 value = 1; } message UInt64Value { uint64 value = 1; }"
	"message Int32Value { int32 value = 1; } message UInt32Value { uint32 value = 1; }"
	"message BoolValue { bool value = 1; } message StringValue { string value = 1; }"
	"message BytesValue { bytes value = 1; }"
	"message Struct { map<string, Value> fields = 1; }"
	"message Value { oneof kind { NullValue null_value = 1; double number_value = 2; string string_value = 3;"
	" bool bool_value = 4; Struct struct_value = 5; ListValue list_value = 6; } }"
	"enum NullValue { NULL_VALUE = 0; }"
	"message ListValue { repeated Value values = 1; }"
	"message Any { string type_url = 1; bytes value = 2; }"
	"message Empty { } message FieldMask { repeated string paths = 1; }";

struct pp_field {
	char *name;
	int label; /* 0 none, 1 optional, 2 required, 3 repeated */
	char *type; /* as written */
	uint32_t number;
	int oneof;  /* index in its message's oneofs, or -1 */
	int entry;  /* map: index of the synthesized entry message, else -1 */
};

struct pp_msg {
	char *full;
	int parent; /* enclosing message, -1 at the top */
	bool map_entry;
	int file;
	struct pp_field *fields;
	size_t nfields;
	char **oneofs;
	size_t noneofs;
};

struct pp_enum {
	char *full;
	int parent;
	int file;
	char **names;
	int32_t *numbers;
	size_t n;
};

struct pp {
	const char *text;
	size_t len, pos;
	int line;
	char tok[PP_NAME_MAX];
	bool tok_string;
	char *err;
	size_t errlen;
	bool failed;
	int file; /* 0 the user's, 1 the well-known types */
	const char *label; /* the file, for messages */
	bool proto3[PBPROTO_FILES_MAX + 1];
	char *package[PBPROTO_FILES_MAX + 1];
	struct pp_msg *msgs;
	size_t nmsgs;
	struct pp_enum *enums;
	size_t nenums;
};

static void pp_fail(struct pp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pp_fail(struct pp *p, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "line %d of %s: %s", p->line, p->label, msg);
}

/* ---- tokens ---- */

static void pp_skip_space(struct pp *p)
{
	while (p->pos < p->len) {
		char c = p->text[p->pos];

		if (c == '\n') {
			p->line++;
			p->pos++;
		} else if (isspace((unsigned char)c)) {
			p->pos++;
		} else if (c == '/' && p->pos + 1 < p->len && p->text[p->pos + 1] == '/') {
			while (p->pos < p->len && p->text[p->pos] != '\n')
				p->pos++;
		} else if (c == '/' && p->pos + 1 < p->len && p->text[p->pos + 1] == '*') {
			p->pos += 2;
			while (p->pos + 1 < p->len && !(p->text[p->pos] == '*' && p->text[p->pos + 1] == '/')) {
				if (p->text[p->pos] == '\n')
					p->line++;
				p->pos++;
			}
			p->pos = p->pos + 2 <= p->len ? p->pos + 2 : p->len;
		} else {
			break;
		}
	}
}

/* The next token into p->tok ("" at the end); false on a bad one. */
static bool pp_next(struct pp *p)
{
	size_t n = 0;
	char c;

	p->tok[0] = '\0';
	p->tok_string = false;
	if (p->failed)
		return false;
	pp_skip_space(p);
	if (p->pos >= p->len)
		return true;
	c = p->text[p->pos];
	if (c == '"' || c == '\'') {
		char q = c;

		p->pos++;
		while (p->pos < p->len && p->text[p->pos] != q && p->text[p->pos] != '\n') {
			if (p->text[p->pos] == '\\' && p->pos + 1 < p->len)
				p->pos++;
			if (n + 1 < sizeof(p->tok))
				p->tok[n++] = p->text[p->pos];
			p->pos++;
		}
		if (p->pos >= p->len || p->text[p->pos] != q) {
			pp_fail(p, "a string is not closed");
			return false;
		}
		p->pos++;
		p->tok[n] = '\0';
		p->tok_string = true;
		return true;
	}
	if (isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '+') {
		while (p->pos < p->len) {
			c = p->text[p->pos];
			if (!(isalnum((unsigned char)c) || c == '_' || c == '.' || ((c == '-' || c == '+') && n == 0)))
				break;
			if (n + 1 >= sizeof(p->tok)) {
				pp_fail(p, "a name is longer than %d bytes", PP_NAME_MAX - 1);
				return false;
			}
			p->tok[n++] = c;
			p->pos++;
		}
		p->tok[n] = '\0';
		return true;
	}
	p->tok[0] = c;
	p->tok[1] = '\0';
	p->pos++;
	return true;
}

static bool pp_is(const struct pp *p, const char *s)
{
	return !p->tok_string && strcmp(p->tok, s) == 0;
}

static bool pp_expect(struct pp *p, const char *s)
{
	if (!pp_next(p))
		return false;
	if (!pp_is(p, s)) {
		pp_fail(p, "expected \"%s\", found \"%.60s\"", s, p->tok);
		return false;
	}
	return true;
}

static bool pp_ident(const char *s)
{
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

/* Skips to the ';' that ends a statement, over balanced () [] {}. */
static void pp_skip_statement(struct pp *p)
{
	int depth = 0;

	while (pp_next(p) && p->tok[0] != '\0') {
		if (p->tok_string)
			continue;
		if (strchr("([{", p->tok[0]) && p->tok[1] == '\0')
			depth++;
		else if (strchr(")]}", p->tok[0]) && p->tok[1] == '\0') {
			if (--depth < 0 && p->tok[0] == '}') {
				pp_fail(p, "unbalanced '}'");
				return;
			}
			if (depth == 0 && p->tok[0] == '}')
				return; /* a block statement ends at its brace */
		} else if (depth == 0 && pp_is(p, ";"))
			return;
	}
	if (!p->failed)
		pp_fail(p, "the file ends inside a statement");
}

/* ---- declarations ---- */

static char *pp_join(struct pp *p, const char *scope, const char *name)
{
	size_t n = strlen(scope) + strlen(name) + 2;
	char *s = malloc(n);

	if (s == NULL) {
		pp_fail(p, "out of memory");
		return NULL;
	}
	if (scope[0] != '\0')
		snprintf(s, n, "%s.%s", scope, name);
	else
		snprintf(s, n, "%s", name);
	return s;
}

static int pp_msg_add(struct pp *p, const char *full, int parent)
{
	struct pp_msg *m = realloc(p->msgs, (p->nmsgs + 1) * sizeof(*m));

	if (m == NULL) {
		pp_fail(p, "out of memory");
		return -1;
	}
	p->msgs = m;
	memset(&m[p->nmsgs], 0, sizeof(*m));
	m[p->nmsgs].full = strdup(full);
	m[p->nmsgs].parent = parent;
	m[p->nmsgs].file = p->file;
	if (m[p->nmsgs].full == NULL) {
		pp_fail(p, "out of memory");
		return -1;
	}
	return (int)p->nmsgs++;
}

static struct pp_field *pp_field_add(struct pp *p, int mi)
{
	struct pp_msg *m = &p->msgs[mi];
	struct pp_field *f = realloc(m->fields, (m->nfields + 1) * sizeof(*f));

	if (f == NULL) {
		pp_fail(p, "out of memory");
		return NULL;
	}
	m->fields = f;
	f = &f[m->nfields++];
	memset(f, 0, sizeof(*f));
	f->oneof = -1;
	f->entry = -1;
	return f;
}

static bool pp_number(struct pp *p, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!pp_next(p))
		return false;
	v = strtoll(p->tok, &end, 0);
	if (p->tok_string || p->tok[0] == '\0' || *end != '\0' || v < min || v > max) {
		pp_fail(p, "expected a number from %lld to %lld, found \"%.60s\"", (long long)min, (long long)max,
			p->tok);
		return false;
	}
	*out = v;
	return true;
}

/* "= N [options] ;" after a field's name. */
static bool pp_field_tail(struct pp *p, struct pp_field *f)
{
	int64_t n;

	if (!pp_expect(p, "=") || !pp_number(p, 1, 0x1fffffff, &n))
		return false;
	f->number = (uint32_t)n;
	if (!pp_next(p))
		return false;
	if (pp_is(p, "[")) {
		int depth = 1;

		while (depth > 0 && pp_next(p) && p->tok[0] != '\0') {
			if (pp_is(p, "["))
				depth++;
			else if (pp_is(p, "]"))
				depth--;
		}
		if (!pp_next(p))
			return false;
	}
	if (!pp_is(p, ";")) {
		pp_fail(p, "expected \";\" after field %s, found \"%.60s\"", f->name, p->tok);
		return false;
	}
	return true;
}

static bool pp_name_dup(struct pp *p, char **dst)
{
	if (p->tok_string || !pp_ident(p->tok)) {
		pp_fail(p, "expected a name, found \"%.60s\"", p->tok);
		return false;
	}
	*dst = strdup(p->tok);
	if (*dst == NULL) {
		pp_fail(p, "out of memory");
		return false;
	}
	return true;
}

static bool pp_enum(struct pp *p, const char *scope, int parent)
{
	struct pp_enum *e;
	char *full;

	if (!pp_next(p))
		return false;
	if (!pp_ident(p->tok)) {
		pp_fail(p, "expected an enum name, found \"%.60s\"", p->tok);
		return false;
	}
	if ((full = pp_join(p, scope, p->tok)) == NULL)
		return false;
	e = realloc(p->enums, (p->nenums + 1) * sizeof(*e));
	if (e == NULL) {
		free(full);
		pp_fail(p, "out of memory");
		return false;
	}
	p->enums = e;
	e = &e[p->nenums++];
	memset(e, 0, sizeof(*e));
	e->full = full;
	e->parent = parent;
	e->file = p->file;
	if (!pp_expect(p, "{"))
		return false;
	for (;;) {
		int64_t v;
		char **names;
		int32_t *numbers;

		if (!pp_next(p))
			return false;
		if (pp_is(p, "}"))
			return true;
		if (p->tok[0] == '\0') {
			pp_fail(p, "enum %s is not closed", e->full);
			return false;
		}
		if (pp_is(p, ";"))
			continue;
		if (pp_is(p, "option") || pp_is(p, "reserved")) {
			pp_skip_statement(p);
			continue;
		}
		names = realloc(e->names, (e->n + 1) * sizeof(*names));
		numbers = names != NULL ? realloc(e->numbers, (e->n + 1) * sizeof(*numbers)) : NULL;
		if (names != NULL)
			e->names = names;
		if (numbers == NULL) {
			pp_fail(p, "out of memory");
			return false;
		}
		e->numbers = numbers;
		if (!pp_name_dup(p, &e->names[e->n]))
			return false;
		e->n++;
		if (!pp_expect(p, "=") || !pp_number(p, INT32_MIN, INT32_MAX, &v))
			return false;
		e->numbers[e->n - 1] = (int32_t)v;
		if (!pp_next(p))
			return false;
		if (pp_is(p, "[")) {
			while (pp_next(p) && p->tok[0] != '\0' && !pp_is(p, "]"))
				;
			if (!pp_next(p))
				return false;
		}
		if (!pp_is(p, ";")) {
			pp_fail(p, "expected \";\" in enum %s, found \"%.60s\"", e->full, p->tok);
			return false;
		}
	}
}

static bool pp_message(struct pp *p, const char *scope, int parent, int depth);

/* map<K, V> name = N; as protoc: a nested NameEntry message. */
static bool pp_map(struct pp *p, int mi)
{
	struct pp_field *f, *kf, *vf;
	char key[PP_NAME_MAX], val[PP_NAME_MAX], entry[PP_NAME_MAX + 8], *full;
	int ei;
	size_t k = 0;

	if (!pp_expect(p, "<") || !pp_next(p))
		return false;
	snprintf(key, sizeof(key), "%s", p->tok);
	if (!pp_expect(p, ",") || !pp_next(p))
		return false;
	snprintf(val, sizeof(val), "%s", p->tok);
	if (!pp_expect(p, ">") || !pp_next(p))
		return false;
	if ((f = pp_field_add(p, mi)) == NULL || !pp_name_dup(p, &f->name))
		return false;
	f->label = 3;
	/* "foo_bar" -> "FooBarEntry" */
	for (const char *s = f->name; *s && k + 6 < sizeof(entry); s++) {
		if (*s == '_')
			continue;
		entry[k++] = (char)(s == f->name || s[-1] == '_' ? toupper((unsigned char)*s) : *s);
	}
	snprintf(entry + k, sizeof(entry) - k, "Entry");
	if ((full = pp_join(p, p->msgs[mi].full, entry)) == NULL)
		return false;
	ei = pp_msg_add(p, full, mi);
	free(full);
	if (ei < 0)
		return false;
	p->msgs[ei].map_entry = true;
	f = &p->msgs[mi].fields[p->msgs[mi].nfields - 1];
	f->entry = ei;
	if ((f->type = strdup(p->msgs[ei].full)) == NULL) {
		pp_fail(p, "out of memory");
		return false;
	}
	if ((kf = pp_field_add(p, ei)) == NULL || (kf->name = strdup("key")) == NULL ||
	    (kf->type = strdup(key)) == NULL)
		return false;
	kf->number = 1; /* label none: written optional, without proto3's presence */
	if ((vf = pp_field_add(p, ei)) == NULL || (vf->name = strdup("value")) == NULL ||
	    (vf->type = strdup(val)) == NULL)
		return false;
	vf->number = 2;
	return pp_field_tail(p, &p->msgs[mi].fields[p->msgs[mi].nfields - 1]);
}

/* A field: [label] type name = N [options]; the first token is read. */
static bool pp_field(struct pp *p, int mi, int oneof)
{
	struct pp_field *f = pp_field_add(p, mi);
	char type[PP_NAME_MAX];

	if (f == NULL)
		return false;
	f->oneof = oneof;
	if (pp_is(p, "optional") || pp_is(p, "required") || pp_is(p, "repeated")) {
		f->label = pp_is(p, "optional") ? 1 : pp_is(p, "required") ? 2 : 3;
		if (!pp_next(p))
			return false;
	}
	if (pp_is(p, "group")) {
		pp_fail(p, "groups are not supported; use a nested message");
		return false;
	}
	if (p->tok_string || p->tok[0] == '\0' || !(isalpha((unsigned char)p->tok[0]) || p->tok[0] == '.' ||
						     p->tok[0] == '_')) {
		pp_fail(p, "expected a field type, found \"%.60s\"", p->tok);
		return false;
	}
	snprintf(type, sizeof(type), "%s", p->tok);
	if ((f->type = strdup(type)) == NULL) {
		pp_fail(p, "out of memory");
		return false;
	}
	if (!pp_next(p) || !pp_name_dup(p, &f->name))
		return false;
	return pp_field_tail(p, f);
}

static bool pp_oneof(struct pp *p, int mi)
{
	struct pp_msg *m = &p->msgs[mi];
	char **o = realloc(m->oneofs, (m->noneofs + 1) * sizeof(*o));
	int idx;

	if (o == NULL) {
		pp_fail(p, "out of memory");
		return false;
	}
	m->oneofs = o;
	if (!pp_next(p) || !pp_name_dup(p, &m->oneofs[m->noneofs]))
		return false;
	idx = (int)m->noneofs++;
	if (!pp_expect(p, "{"))
		return false;
	for (;;) {
		if (!pp_next(p))
			return false;
		if (pp_is(p, "}"))
			return true;
		if (p->tok[0] == '\0') {
			pp_fail(p, "a oneof is not closed");
			return false;
		}
		if (pp_is(p, ";"))
			continue;
		if (pp_is(p, "option")) {
			pp_skip_statement(p);
			continue;
		}
		if (!pp_field(p, mi, idx))
			return false;
	}
}

static bool pp_message(struct pp *p, const char *scope, int parent, int depth)
{
	char *full;
	int mi;

	if (depth > PP_DEPTH_MAX) {
		pp_fail(p, "messages nest deeper than %d levels", PP_DEPTH_MAX);
		return false;
	}
	if (!pp_next(p))
		return false;
	if (!pp_ident(p->tok)) {
		pp_fail(p, "expected a message name, found \"%.60s\"", p->tok);
		return false;
	}
	if ((full = pp_join(p, scope, p->tok)) == NULL)
		return false;
	mi = pp_msg_add(p, full, parent);
	free(full);
	if (mi < 0 || !pp_expect(p, "{"))
		return false;
	for (;;) {
		if (!pp_next(p))
			return false;
		if (pp_is(p, "}"))
			return true;
		if (p->tok[0] == '\0') {
			pp_fail(p, "message %s is not closed", p->msgs[mi].full);
			return false;
		}
		if (pp_is(p, ";"))
			continue;
		if (pp_is(p, "message")) {
			char *me = strdup(p->msgs[mi].full);
			bool ok = me != NULL && pp_message(p, me, mi, depth + 1);

			free(me);
			if (!ok)
				return false;
		} else if (pp_is(p, "enum")) {
			char *me = strdup(p->msgs[mi].full);
			bool ok = me != NULL && pp_enum(p, me, mi);

			free(me);
			if (!ok)
				return false;
		} else if (pp_is(p, "oneof")) {
			if (!pp_oneof(p, mi))
				return false;
		} else if (pp_is(p, "map")) {
			if (!pp_map(p, mi))
				return false;
		} else if (pp_is(p, "option") || pp_is(p, "reserved") || pp_is(p, "extensions") ||
			   pp_is(p, "extend")) {
			pp_skip_statement(p);
		} else if (!pp_field(p, mi, -1)) {
			return false;
		}
	}
}

static bool pp_file(struct pp *p)
{
	char *pkg = NULL;
	bool declared = false;

	for (;;) {
		if (!pp_next(p))
			return false;
		if (p->tok[0] == '\0')
			return true;
		if (pp_is(p, ";"))
			continue;
		if (pp_is(p, "syntax")) {
			if (!pp_expect(p, "=") || !pp_next(p))
				return false;
			p->proto3[p->file] = strcmp(p->tok, "proto3") == 0;
			if (!pp_expect(p, ";"))
				return false;
		} else if (pp_is(p, "package")) {
			/* The file's package names every type in it: one, before them. */
			if (p->package[p->file] != NULL || declared) {
				pp_fail(p, "%s", declared ? "the package statement must come before the messages and enums"
							   : "the file has two package statements");
				return false;
			}
			if (!pp_next(p))
				return false;
			for (const char *q = p->tok, *dot; !p->tok_string; q = dot + 1) {
				char part[PP_NAME_MAX];

				dot = strchr(q, '.');
				snprintf(part, sizeof(part), "%.*s", (int)(dot != NULL ? (size_t)(dot - q) : strlen(q)), q);
				if (!pp_ident(part)) {
					pp_fail(p, "\"%.60s\" is not a package name (names joined by dots)", p->tok);
					return false;
				}
				if (dot == NULL)
					break;
			}
			if (p->tok_string) {
				pp_fail(p, "expected a package name, found a string");
				return false;
			}
			if ((p->package[p->file] = strdup(p->tok)) == NULL) {
				pp_fail(p, "out of memory");
				return false;
			}
			if (!pp_expect(p, ";"))
				return false;
		} else if (pp_is(p, "message")) {
			pkg = p->package[p->file];
			declared = true;
			if (!pp_message(p, pkg != NULL ? pkg : "", -1, 0))
				return false;
		} else if (pp_is(p, "enum")) {
			pkg = p->package[p->file];
			declared = true;
			if (!pp_enum(p, pkg != NULL ? pkg : "", -1))
				return false;
		} else if (pp_is(p, "import") || pp_is(p, "option") || pp_is(p, "service") ||
			   pp_is(p, "extend") || pp_is(p, "edition")) {
			pp_skip_statement(p);
		} else {
			pp_fail(p, "unexpected \"%.60s\" at the top level", p->tok);
			return false;
		}
		if (p->failed)
			return false;
	}
}

/* ---- names ---- */

static const struct {
	const char *name;
	int type; /* FieldDescriptorProto.Type */
} pp_scalars[] = {
	{ "double", 1 },   { "float", 2 },    { "int64", 3 },    { "uint64", 4 },  { "int32", 5 },
	{ "fixed64", 6 },  { "fixed32", 7 },  { "bool", 8 },     { "string", 9 },  { "bytes", 12 },
	{ "uint32", 13 },  { "sfixed32", 15 }, { "sfixed64", 16 }, { "sint32", 17 }, { "sint64", 18 },
};

static int pp_scalar(const char *t)
{
	for (size_t i = 0; i < sizeof(pp_scalars) / sizeof(pp_scalars[0]); i++)
		if (strcmp(t, pp_scalars[i].name) == 0)
			return pp_scalars[i].type;
	return 0;
}

/* 11 (message) or 14 (enum) when full names one, else 0. */
static int pp_lookup(const struct pp *p, const char *full)
{
	for (size_t i = 0; i < p->nmsgs; i++)
		if (strcmp(p->msgs[i].full, full) == 0)
			return 11;
	for (size_t i = 0; i < p->nenums; i++)
		if (strcmp(p->enums[i].full, full) == 0)
			return 14;
	return 0;
}

/* A type name as written, seen from scope (a message's full name): the
 * full name it means, innermost scope first, as protoc resolves it. */
static int pp_resolve(const struct pp *p, const char *scope, const char *ref, char *out, size_t outlen)
{
	char s[PP_NAME_MAX * 2];
	int kind;

	if (ref[0] == '.') {
		snprintf(out, outlen, "%s", ref + 1);
		return pp_lookup(p, out);
	}
	snprintf(s, sizeof(s), "%s", scope);
	for (;;) {
		char *dot;

		if (s[0] != '\0')
			snprintf(out, outlen, "%s.%s", s, ref);
		else
			snprintf(out, outlen, "%s", ref);
		if ((kind = pp_lookup(p, out)) != 0)
			return kind;
		if (s[0] == '\0')
			return 0;
		dot = strrchr(s, '.');
		if (dot != NULL)
			*dot = '\0';
		else
			s[0] = '\0';
	}
}

/* ---- the descriptor set ---- */

static void pp_varint(struct textbuf *tb, uint64_t v)
{
	do {
		unsigned char c = (unsigned char)(v & 0x7f);

		v >>= 7;
		if (v)
			c |= 0x80;
		textbuf_putc(tb, (char)c);
	} while (v);
}

static void pp_put_varint_field(struct textbuf *tb, uint32_t number, uint64_t v)
{
	pp_varint(tb, (uint64_t)number << 3);
	pp_varint(tb, v);
}

static void pp_put_bytes(struct textbuf *tb, uint32_t number, const void *data, size_t n)
{
	pp_varint(tb, (uint64_t)number << 3 | 2);
	pp_varint(tb, n);
	textbuf_put(tb, data, n);
}

static void pp_put_str(struct textbuf *tb, uint32_t number, const char *s)
{
	pp_put_bytes(tb, number, s, strlen(s));
}

static const char *pp_short(const char *full)
{
	const char *dot = strrchr(full, '.');

	return dot != NULL ? dot + 1 : full;
}

/* "foo_bar_baz" -> "fooBarBaz", as protoc's json_name. */
static void pp_json_name(const char *name, char *out, size_t outlen)
{
	size_t k = 0;
	bool up = false;

	for (const char *s = name; *s && k + 1 < outlen; s++) {
		if (*s == '_') {
			up = true;
			continue;
		}
		out[k++] = up ? (char)toupper((unsigned char)*s) : *s;
		up = false;
	}
	out[k] = '\0';
}

static bool pp_put_enum(struct pp *p, struct textbuf *out, uint32_t number, const struct pp_enum *e)
{
	struct textbuf tb;

	textbuf_init(&tb, PBPROTO_TEXT_MAX * 4);
	pp_put_str(&tb, 1, pp_short(e->full));
	for (size_t i = 0; i < e->n; i++) {
		struct textbuf v;

		textbuf_init(&v, PP_NAME_MAX * 2);
		pp_put_str(&v, 1, e->names[i]);
		pp_put_varint_field(&v, 2, (uint64_t)(int64_t)e->numbers[i]);
		pp_put_bytes(&tb, 2, v.data, v.len);
		textbuf_free(&v);
	}
	pp_put_bytes(out, number, tb.data, tb.len);
	textbuf_free(&tb);
	return true;
}

static bool pp_put_message(struct pp *p, struct textbuf *out, uint32_t number, int mi)
{
	const struct pp_msg *m = &p->msgs[mi];
	struct textbuf tb;
	bool ok = true;

	textbuf_init(&tb, PBPROTO_TEXT_MAX * 4);
	pp_put_str(&tb, 1, pp_short(m->full));
	for (size_t i = 0; i < m->nfields && ok; i++) {
		const struct pp_field *f = &m->fields[i];
		struct textbuf fb;
		char full[PP_NAME_MAX * 2 + 2], json[PP_NAME_MAX];
		int type = pp_scalar(f->type);

		textbuf_init(&fb, PP_NAME_MAX * 8);
		pp_put_str(&fb, 1, f->name);
		pp_put_varint_field(&fb, 3, f->number);
		pp_put_varint_field(&fb, 4, f->label == 0 ? 1 : (uint64_t)f->label);
		if (type == 0) {
			type = pp_resolve(p, m->full, f->type, full + 1, sizeof(full) - 1);
			if (type == 0) {
				snprintf(p->err, p->errlen, "field %s.%s has type %s, which is not defined in the "
					 "schema nor in the files it references", m->full, f->name, f->type);
				p->failed = true;
				ok = false;
			}
			full[0] = '.';
			pp_put_str(&fb, 6, full);
		}
		pp_put_varint_field(&fb, 5, (uint64_t)type);
		if (f->oneof >= 0)
			pp_put_varint_field(&fb, 9, (uint64_t)f->oneof);
		pp_json_name(f->name, json, sizeof(json));
		pp_put_str(&fb, 10, json);
		if (f->label == 1 && p->proto3[m->file] && f->oneof < 0)
			pp_put_varint_field(&fb, 17, 1);
		pp_put_bytes(&tb, 2, fb.data, fb.len);
		textbuf_free(&fb);
	}
	for (size_t i = 0; i < p->nmsgs && ok; i++)
		if (p->msgs[i].parent == mi)
			ok = pp_put_message(p, &tb, 3, (int)i);
	for (size_t i = 0; i < p->nenums && ok; i++)
		if (p->enums[i].parent == mi)
			ok = pp_put_enum(p, &tb, 4, &p->enums[i]);
	if (m->map_entry) {
		uint8_t opt[] = { 7 << 3, 1 }; /* MessageOptions.map_entry = true */
		pp_put_bytes(&tb, 7, opt, sizeof(opt));
	}
	for (size_t i = 0; i < m->noneofs; i++) {
		struct textbuf ob;

		textbuf_init(&ob, PP_NAME_MAX * 2);
		pp_put_str(&ob, 1, m->oneofs[i]);
		pp_put_bytes(&tb, 8, ob.data, ob.len);
		textbuf_free(&ob);
	}
	if (textbuf_failed(&tb)) {
		snprintf(p->err, p->errlen, "the compiled schema is too large");
		p->failed = true;
		ok = false;
	}
	if (ok)
		pp_put_bytes(out, number, tb.data, tb.len);
	textbuf_free(&tb);
	return ok;
}

static bool pp_put_file(struct pp *p, struct textbuf *set, int file, const char *name)
{
	struct textbuf fb;
	bool ok = true;

	textbuf_init(&fb, PBPROTO_TEXT_MAX * 8);
	pp_put_str(&fb, 1, name);
	if (p->package[file] != NULL)
		pp_put_str(&fb, 2, p->package[file]);
	for (size_t i = 0; i < p->nmsgs && ok; i++)
		if (p->msgs[i].parent < 0 && p->msgs[i].file == file)
			ok = pp_put_message(p, &fb, 4, (int)i);
	for (size_t i = 0; i < p->nenums && ok; i++)
		if (p->enums[i].parent < 0 && p->enums[i].file == file)
			ok = pp_put_enum(p, &fb, 5, &p->enums[i]);
	pp_put_str(&fb, 12, p->proto3[file] ? "proto3" : "proto2");
	if (ok)
		pp_put_bytes(set, 1, fb.data, fb.len);
	textbuf_free(&fb);
	return ok;
}

static void pp_free(struct pp *p)
{
	for (size_t i = 0; i < p->nmsgs; i++) {
		struct pp_msg *m = &p->msgs[i];

		for (size_t j = 0; j < m->nfields; j++) {
			free(m->fields[j].name);
			free(m->fields[j].type);
		}
		free(m->fields);
		for (size_t j = 0; j < m->noneofs; j++)
			free(m->oneofs[j]);
		free(m->oneofs);
		free(m->full);
	}
	free(p->msgs);
	for (size_t i = 0; i < p->nenums; i++) {
		for (size_t j = 0; j < p->enums[i].n; j++)
			free(p->enums[i].names[j]);
		free(p->enums[i].names);
		free(p->enums[i].numbers);
		free(p->enums[i].full);
	}
	free(p->enums);
	for (size_t i = 0; i <= PBPROTO_FILES_MAX; i++)
		free(p->package[i]);
}

void pbproto_free(struct pbproto *pp)
{
	if (pp == NULL)
		return;
	free(pp->set);
	for (size_t i = 0; i < pp->nnames; i++)
		free(pp->names[i]);
	free(pp->names);
	free(pp->parent);
	free(pp);
}

int pbproto_compile(const char *text, size_t len, struct pbproto **out, char *err, size_t errlen)
{
	return pbproto_compile_files(&text, &len, NULL, 1, out, err, errlen);
}

int pbproto_compile_files(const char *const *texts, const size_t *lens, const char *const *names, size_t n,
			  struct pbproto **out, char *err, size_t errlen)
{
	struct pp p;
	struct textbuf set;
	struct pbproto *pp = NULL;
	size_t nuser = 0, k = 0, total = 0;
	int *map = NULL;
	int rc = -1;
	bool wkt = true;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	textbuf_init(&set, PBPROTO_TEXT_MAX * 8);
	p.err = err;
	p.errlen = errlen;
	if (n == 0 || n > PBPROTO_FILES_MAX) {
		snprintf(err, errlen, "a schema with %zu files; at most %d are read", n, PBPROTO_FILES_MAX);
		goto out;
	}
	for (size_t f = 0; f < n; f++) {
		total += lens[f];
		if (total > PBPROTO_TEXT_MAX) {
			snprintf(err, errlen, "the .proto text is more than %zu bytes", PBPROTO_TEXT_MAX);
			goto out;
		}
		/* proto2 when no syntax is given, as protoc. */
		p.file = (int)f;
		p.label = f == 0 || names == NULL ? "the .proto" : names[f];
		p.text = texts[f];
		p.len = lens[f];
		p.pos = 0;
		p.line = 1;
		if (!pp_file(&p))
			goto out;
		if (f == 0)
			nuser = p.nmsgs;
		/* A schema that is itself google.protobuf's keeps its own. */
		if (p.package[f] != NULL && strcmp(p.package[f], "google.protobuf") == 0)
			wkt = false;
	}
	if (wkt) {
		p.file = (int)n;
		p.label = "the well-known types";
		p.text = pp_wkt;
		p.len = sizeof(pp_wkt) - 1;
		p.pos = 0;
		p.line = 1;
		if (!pp_file(&p)) {
			snprintf(err, errlen, "the well-known types did not compile");
			goto out;
		}
	}
	for (size_t f = 0; f < n + (wkt ? 1 : 0); f++) {
		char fname[64];

		snprintf(fname, sizeof(fname), f == n ? "google/protobuf/wkt.proto" : "registry-%zu.proto", f);
		if (!pp_put_file(&p, &set, (int)f, fname))
			goto out;
	}
	if (textbuf_failed(&set)) {
		snprintf(err, errlen, "the compiled schema is too large");
		goto out;
	}
	pp = calloc(1, sizeof(*pp));
	map = malloc((nuser ? nuser : 1) * sizeof(*map));
	if (pp == NULL || map == NULL)
		goto oom;
	pp->names = calloc(nuser ? nuser : 1, sizeof(*pp->names));
	pp->parent = calloc(nuser ? nuser : 1, sizeof(*pp->parent));
	if (pp->names == NULL || pp->parent == NULL)
		goto oom;
	for (size_t i = 0; i < nuser; i++) {
		map[i] = -1;
		if (p.msgs[i].map_entry)
			continue;
		map[i] = (int)k;
		if ((pp->names[k] = strdup(p.msgs[i].full)) == NULL)
			goto oom;
		pp->parent[k] = p.msgs[i].parent >= 0 ? map[p.msgs[i].parent] : -1;
		k++;
	}
	pp->nnames = k;
	pp->set = malloc(set.len ? set.len : 1);
	if (pp->set == NULL)
		goto oom;
	memcpy(pp->set, set.data, set.len);
	pp->set_len = set.len;
	*out = pp;
	pp = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	pbproto_free(pp);
	free(map);
	textbuf_free(&set);
	pp_free(&p);
	return rc;
}

const char *pbproto_message_at(const struct pbproto *pp, const int32_t *idx, size_t n)
{
	int parent = -1;
	const char *found = NULL;

	for (size_t level = 0; level < n; level++) {
		int32_t seen = 0;
		int at = -1;

		for (size_t i = 0; i < pp->nnames; i++) {
			if (pp->parent[i] != parent)
				continue;
			if (seen++ == idx[level]) {
				at = (int)i;
				break;
			}
		}
		if (at < 0)
			return NULL;
		parent = at;
		found = pp->names[at];
	}
	return found;
}
