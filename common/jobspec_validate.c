/* jobspec_validate: the rules a resolved job must meet before a worker runs
 * it (after jobspec_apply_defaults), each problem with its YAML path, its
 * line from spec->lines and how to fix it; plus the sslmode and PEM checks
 * the API uses for a service's TLS fields. */
#include "jobspec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64.h"

/* Error sink that also counts, so callers need not compare errs->count.  The
 * line of each problem comes from the spec's line map (the key itself, else
 * its nearest enclosing key), else from the caller's hint. */
struct js_vctx {
	const struct jobspec *spec;
	struct js_errors *errs;
	int nerr;
};

static void js_verr(struct js_vctx *v, int hint, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void js_verr(struct js_vctx *v, int hint, const char *path, const char *fmt, ...)
{
	char msg[sizeof(((struct js_error *)0)->message)];
	va_list ap;
	int line = 0;

	/* Past the cap the problem is only counted: spare the lookup. */
	if (v->errs != NULL && v->errs->count < JS_ERRORS_MAX)
		line = jobspec_line(v->spec, path);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->nerr++;
	js_errors_add(v->errs, line > 0 ? line : hint, path, "%s", msg);
}

static bool js_blank(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static void js_require(struct js_vctx *v, const char *value, const char *path, const char *how)
{
	if (js_blank(value))
		js_verr(v, 0, path, "is required; %s", how);
}

/* QUOTE, ESCAPE and CSV delimiters are single bytes, as COPY wants them. */
static void js_check_onechar(struct js_vctx *v, int line, const char *path, const char *s)
{
	if (s != NULL && strlen(s) != 1)
		js_verr(v, line, path, "must be exactly one (single-byte) character, got \"%s\"", s);
}

static void js_check_names_unique(struct js_vctx *v, const char *path, char *const *names, size_t n)
{
	char p[128];

	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (js_blank(names[i])) {
			js_verr(v, 0, p, "must not be empty; give a column name");
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			if (names[j] != NULL && strcmp(names[i], names[j]) == 0) {
				js_verr(v, 0, p, "\"%s\" is listed twice (also at [%zu]); list each column once",
					names[i], j);
				break;
			}
		}
	}
}

/* A protobuf full name as protoc writes it in a descriptor, without the
 * leading dot: identifiers (a letter or _, then letters, digits, _) joined by
 * single dots, e.g. "shop.v1.Order" or "Outer.Inner". */
static bool js_message_name_valid(const char *s)
{
	bool start = true;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '.') {
			if (start)
				return false;
			start = true;
		} else if (isalpha(c) || c == '_' || (!start && isdigit(c))) {
			start = false;
		} else {
			return false;
		}
	}
	return !start;
}

/* PROTOBUF_OPTION: only with FORMAT protobuf, which requires it.  MESSAGE is
 * the message type's full name; its FileDescriptorSet (protoc
 * --include_imports --descriptor_set_out) is given by exactly one of
 * DESCRIPTOR_FILE (an absolute path on the worker's host) and DESCRIPTOR
 * (the file's bytes as base64). */
static void js_validate_protobuf(struct js_vctx *v, const struct js_input *in, const char *path)
{
	bool any = in->protobuf_descriptor_file != NULL || in->protobuf_descriptor != NULL ||
		   in->protobuf_message != NULL;
	char p[128], pp[160];

	snprintf(p, sizeof(p), "%s.PROTOBUF_OPTION", path);
	if (in->format != JS_FORMAT_PROTOBUF) {
		if (any && in->format != JS_FORMAT_NONE)
			js_verr(v, in->line, p, "applies to FORMAT protobuf only, but FORMAT is %s; remove it",
				js_format_name(in->format));
		return;
	}
	if (!any) {
		js_verr(v, in->line, p,
			"is required for FORMAT protobuf; give MESSAGE: <full message name> and DESCRIPTOR_FILE: "
			"<absolute path> or DESCRIPTOR: <base64> of a descriptor set made by "
			"protoc --include_imports --descriptor_set_out");
		return;
	}
	if (in->protobuf_descriptor_file != NULL && in->protobuf_descriptor != NULL) {
		snprintf(pp, sizeof(pp), "%s.DESCRIPTOR", p);
		js_verr(v, in->line, pp, "give DESCRIPTOR_FILE or DESCRIPTOR, not both; remove one");
	} else if (in->protobuf_descriptor_file == NULL && in->protobuf_descriptor == NULL) {
		js_verr(v, in->line, p,
			"needs DESCRIPTOR_FILE: <absolute path> or DESCRIPTOR: <base64>: the descriptor set made by "
			"protoc --include_imports --descriptor_set_out");
	}
	if (in->protobuf_descriptor_file != NULL) {
		const char *f = in->protobuf_descriptor_file;

		snprintf(pp, sizeof(pp), "%s.DESCRIPTOR_FILE", p);
		if (f[0] != '/')
			js_verr(v, in->line, pp, "must be an absolute path (starting with /), got \"%.80s\"", f);
		else if (strlen(f) >= 4096)
			js_verr(v, in->line, pp, "is longer than 4095 bytes; use a shorter path");
	}
	if (in->protobuf_descriptor != NULL) {
		/* The worker decodes it with the same b64_decode(). */
		size_t n = 0;
		int rc = b64_decode(in->protobuf_descriptor, strlen(in->protobuf_descriptor), NULL, &n, NULL, NULL, 0);

		snprintf(pp, sizeof(pp), "%s.DESCRIPTOR", p);
		if (rc < 0)
			js_verr(v, in->line, pp, "is not base64; give the descriptor set file's bytes as base64 "
				"(e.g. the output of base64 -w0 FILE)");
		else if (n == 0)
			js_verr(v, in->line, pp, "is empty; give the descriptor set file's bytes as base64");
	}
	snprintf(pp, sizeof(pp), "%s.MESSAGE", p);
	if (js_blank(in->protobuf_message))
		js_verr(v, in->line, pp, "is required; give the message type's full name, e.g. shop.v1.Order");
	else if (in->protobuf_message[0] == '.' && js_message_name_valid(in->protobuf_message + 1))
		js_verr(v, in->line, pp, "must be written without the leading dot: %s", in->protobuf_message + 1);
	else if (!js_message_name_valid(in->protobuf_message))
		js_verr(v, in->line, pp, "must be a full message name like shop.v1.Order (names of letters, digits "
			"and _ joined by dots), got \"%.80s\"", in->protobuf_message);
}

/* One registry URL: http:// or https://, a host, no spaces, no user:password
 * (credentials go in SCHEMA_REGISTRY_USER/PASSWORD, which are kept secret). */
static const char *js_registry_url_problem(const char *u, size_t n)
{
	size_t skip;
	const char *at;

	if (n >= 7 && strncasecmp(u, "http://", 7) == 0)
		skip = 7;
	else if (n >= 8 && strncasecmp(u, "https://", 8) == 0)
		skip = 8;
	else
		return "must start with http:// or https://";
	if (n == skip || u[skip] == '/')
		return "has no host after the scheme";
	for (size_t i = 0; i < n; i++)
		if (isspace((unsigned char)u[i]) || (unsigned char)u[i] < 0x20)
			return "must not contain spaces or control characters";
	at = memchr(u + skip, '@', n - skip);
	if (at != NULL && memchr(u + skip, '/', (size_t)(at - u) - skip) == NULL)
		return "must not hold user:password; use SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD";
	return NULL;
}

int jobspec_registry_check(const char *addrs, char *why, size_t whylen)
{
	const char *a = addrs;
	size_t count = 0;

	if (strlen(a) > 4096) {
		snprintf(why, whylen, "is longer than 4096 bytes");
		return -1;
	}
	for (;;) {
		const char *end = strchr(a, ',');
		size_t n = end != NULL ? (size_t)(end - a) : strlen(a);
		const char *problem;

		while (n > 0 && a[0] == ' ') {
			a++;
			n--;
		}
		while (n > 0 && a[n - 1] == ' ')
			n--;
		problem = js_registry_url_problem(a, n);
		if (problem != NULL) {
			snprintf(why, whylen, "URL %zu \"%.*s\" %s; write e.g. https://registry:8081[,https://registry2:8081]",
				 count + 1, (int)(n > 80 ? 80 : n), a, problem);
			return -1;
		}
		if (++count > 16) {
			snprintf(why, whylen, "names more than 16 registries");
			return -1;
		}
		if (end == NULL)
			return 0;
		a = end + 1;
	}
}

/* AVRO_OPTION (FORMAT avro, which needs a registry or a schema) and
 * JSON_OPTION (FORMAT json: framed messages).  Each of the registry
 * settings only with the other format's block is refused. */
static void js_validate_registry(struct js_vctx *v, const struct js_input *in, const char *path)
{
	bool avro = in->format == JS_FORMAT_AVRO;
	bool reg = in->registry_addr != NULL || in->registry_user != NULL || in->registry_password != NULL;
	bool local = in->avro_schema_file != NULL || in->avro_schema != NULL;
	const char *block = avro ? "AVRO_OPTION" : "JSON_OPTION";
	char p[128], pp[192];

	snprintf(p, sizeof(p), "%s.%s", path, block);
	if (!avro && in->format != JS_FORMAT_JSON) {
		snprintf(p, sizeof(p), "%s.AVRO_OPTION", path);
		if ((reg || local || in->avro_bytes_to_base64) && in->format != JS_FORMAT_NONE)
			js_verr(v, in->line, p, "applies to FORMAT avro (a registry also to json) only, but FORMAT "
				"is %s; remove it", js_format_name(in->format));
		return;
	}
	if (!avro && (local || in->avro_bytes_to_base64)) {
		snprintf(p, sizeof(p), "%s.AVRO_OPTION", path);
		js_verr(v, in->line, p, "applies to FORMAT avro only, but FORMAT is json; remove it");
		return;
	}
	if (avro && !reg && !local) {
		js_verr(v, in->line, p, "is required for FORMAT avro; give SCHEMA_REGISTRY_ADDR: <registry URL> "
			"(messages framed by a schema registry serializer), or SCHEMA_FILE: <absolute path of an "
			".avsc> or SCHEMA: <the schema's JSON> (unframed messages), or give the data source a "
			"schema_registry");
		return;
	}
	if (avro && ((in->registry_addr != NULL) + (in->avro_schema_file != NULL) + (in->avro_schema != NULL)) > 1) {
		js_verr(v, in->line, p, "give one of SCHEMA_REGISTRY_ADDR, SCHEMA_FILE and SCHEMA, not several; "
			"with a registry each message names its own schema");
		return;
	}
	if (in->registry_addr != NULL) {
		char why[256];

		snprintf(pp, sizeof(pp), "%s.SCHEMA_REGISTRY_ADDR", p);
		if (jobspec_registry_check(in->registry_addr, why, sizeof(why)) < 0)
			js_verr(v, in->line, pp, "%s", why);
	} else if (in->registry_user != NULL || in->registry_password != NULL) {
		snprintf(pp, sizeof(pp), "%s.SCHEMA_REGISTRY_ADDR", p);
		js_verr(v, in->line, pp, "is required with SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD");
	}
	if ((in->registry_user != NULL) != (in->registry_password != NULL)) {
		snprintf(pp, sizeof(pp), "%s.%s", p, in->registry_user != NULL ? "SCHEMA_REGISTRY_PASSWORD"
										: "SCHEMA_REGISTRY_USER");
		js_verr(v, in->line, pp, "is required with %s (HTTP basic authentication takes both)",
			in->registry_user != NULL ? "SCHEMA_REGISTRY_USER" : "SCHEMA_REGISTRY_PASSWORD");
	}
	if (in->registry_user != NULL && strchr(in->registry_user, ':') != NULL) {
		snprintf(pp, sizeof(pp), "%s.SCHEMA_REGISTRY_USER", p);
		js_verr(v, in->line, pp, "must not contain ':' (HTTP basic authentication cannot carry it)");
	}
	if (in->avro_schema_file != NULL) {
		const char *f = in->avro_schema_file;

		snprintf(pp, sizeof(pp), "%s.SCHEMA_FILE", p);
		if (f[0] != '/')
			js_verr(v, in->line, pp, "must be an absolute path (starting with /), got \"%.80s\"", f);
		else if (strlen(f) >= 4096)
			js_verr(v, in->line, pp, "is longer than 4095 bytes; use a shorter path");
	}
}

static void js_validate_input(struct js_vctx *v, const struct js_input *in, const char *path, bool is_value)
{
	char p[128];

	if (!in->present)
		return;

	snprintf(p, sizeof(p), "%s.COLUMNS", path);
	if (in->ncolumns == 0)
		js_verr(v, in->line, p, "needs at least one column (- NAME: <column> TYPE: <type>), "
			"in the order of the fields in the message");
	for (size_t i = 0; i < in->ncolumns; i++) {
		const struct js_column *c = &in->columns[i];

		snprintf(p, sizeof(p), "%s.COLUMNS[%zu].NAME", path, i);
		if (js_blank(c->name)) {
			js_verr(v, in->line, p, "is required; name the column");
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			if (in->columns[j].name != NULL && strcmp(c->name, in->columns[j].name) == 0) {
				js_verr(v, in->line, p,
					"column \"%s\" is defined twice (also COLUMNS[%zu]); column names must be unique",
					c->name, j);
				break;
			}
		}
		if (c->type != NULL && c->type[0] == '\0') {
			snprintf(p, sizeof(p), "%s.COLUMNS[%zu].TYPE", path, i);
			js_verr(v, in->line, p, "must not be empty; give an SQL type or leave TYPE out");
		}
	}

	snprintf(p, sizeof(p), "%s.FORMAT", path);
	switch (in->format) {
	case JS_FORMAT_NONE:
		js_verr(v, in->line, p, "is required; set FORMAT: delimited, csv, json, protobuf or avro%s",
			is_value ? " (or give the data source a format)" : "");
		break;
	case JS_FORMAT_DELIMITED:
		snprintf(p, sizeof(p), "%s.DELIMITED_OPTION.DELIMITER", path);
		if (js_blank(in->delimiter))
			js_verr(v, in->line, p, "is required for FORMAT delimited; set e.g. DELIMITER: \"|\"");
		snprintf(p, sizeof(p), "%s.DELIMITED_OPTION.QUOTE", path);
		js_check_onechar(v, in->line, p, in->quote);
		snprintf(p, sizeof(p), "%s.DELIMITED_OPTION.ESCAPE", path);
		js_check_onechar(v, in->line, p, in->escape);
		if (in->null_string != NULL) {
			snprintf(p, sizeof(p), "%s.CSV_OPTION.NULL_STRING", path);
			js_verr(v, in->line, p, "applies to FORMAT csv only; remove it");
		}
		break;
	case JS_FORMAT_CSV:
		snprintf(p, sizeof(p), "%s.CSV_OPTION.DELIMITER", path);
		js_check_onechar(v, in->line, p, in->delimiter);
		snprintf(p, sizeof(p), "%s.CSV_OPTION.QUOTE", path);
		js_check_onechar(v, in->line, p, in->quote);
		snprintf(p, sizeof(p), "%s.CSV_OPTION.ESCAPE", path);
		js_check_onechar(v, in->line, p, in->escape);
		if (in->quote != NULL && strcmp(in->quote, in->delimiter != NULL ? in->delimiter : ",") == 0) {
			snprintf(p, sizeof(p), "%s.CSV_OPTION.QUOTE", path);
			js_verr(v, in->line, p, "must differ from the delimiter");
		}
		break;
	case JS_FORMAT_JSON:
	case JS_FORMAT_PROTOBUF:
	case JS_FORMAT_AVRO:
		/* json: one json/jsonb column takes the whole value (js_input_json_whole),
		 * otherwise columns take the top-level fields of their names. */
		if (in->delimiter != NULL || in->quote != NULL || in->escape != NULL || in->null_string != NULL)
			js_verr(v, in->line, p,
				"%s takes no DELIMITED_OPTION or CSV_OPTION; remove the option block",
				js_format_name(in->format));
		break;
	default:
		js_verr(v, in->line, p, "must be one of delimited, csv, json, protobuf, avro");
		break;
	}
	js_validate_protobuf(v, in, path);
	js_validate_registry(v, in, path);
}

/* One column of KEY, VALUE or META, for the checks across them. */
struct js_colref {
	const char *name;
	const char *input; /* "KAFKA.INPUT.KEY" ... */
	size_t index;
};

/* The i-th column of KEY, then VALUE, then META; false past the end. */
static bool js_source_column(const struct jobspec *spec, size_t i, struct js_colref *c)
{
	size_t nkey = spec->key.present ? spec->key.ncolumns : 0;
	size_t nvalue = spec->value.present ? spec->value.ncolumns : 0;

	if (i < nkey) {
		*c = (struct js_colref){ spec->key.columns[i].name, "KAFKA.INPUT.KEY", i };
		return true;
	}
	i -= nkey;
	if (i < nvalue) {
		*c = (struct js_colref){ spec->value.columns[i].name, "KAFKA.INPUT.VALUE", i };
		return true;
	}
	i -= nvalue;
	if (i == 0 && spec->meta_present) {
		*c = (struct js_colref){ spec->meta_column, "KAFKA.INPUT.META", 0 };
		return true;
	}
	return false;
}

/* KEY, VALUE and META columns are the columns of one staging table, so a
 * name may appear once across the three (duplicates within one input are
 * reported by js_validate_input). */
static void js_validate_shared_names(struct js_vctx *v, const struct jobspec *spec)
{
	struct js_colref a, b;
	char p[128];

	for (size_t i = 0; js_source_column(spec, i, &a); i++) {
		if (js_blank(a.name))
			continue;
		for (size_t j = 0; j < i && js_source_column(spec, j, &b); j++) {
			if (b.name == NULL || strcmp(a.name, b.name) != 0 || strcmp(a.input, b.input) == 0)
				continue;
			snprintf(p, sizeof(p), "%s.COLUMNS[%zu].NAME", a.input, a.index);
			js_verr(v, 0, p,
				"column \"%s\" is also %s.COLUMNS[%zu]; KEY, VALUE and META columns share one staging "
				"table, so their names must differ: rename one (MAPPING can still write it to any "
				"target column)", a.name, b.input, b.index);
			break;
		}
	}
}

/* Whether name is a column the job writes: a MAPPING NAME, or without
 * MAPPING a KEY, VALUE or META column (written to the same name). */
static bool js_is_target(const struct jobspec *spec, const char *name)
{
	struct js_colref c;

	if (spec->nmapping > 0) {
		for (size_t i = 0; i < spec->nmapping; i++)
			if (spec->mapping[i].name != NULL && strcmp(spec->mapping[i].name, name) == 0)
				return true;
		return false;
	}
	for (size_t i = 0; js_source_column(spec, i, &c); i++)
		if (c.name != NULL && strcmp(c.name, name) == 0)
			return true;
	return false;
}

/* "a", "b", ... : the target columns, cut to fit buf. */
static void js_target_names(const struct jobspec *spec, char *buf, size_t buflen)
{
	size_t off = 0;
	struct js_colref c;

	buf[0] = '\0';
	for (size_t i = 0;; i++) {
		const char *name;
		int n;

		if (spec->nmapping > 0) {
			if (i >= spec->nmapping)
				break;
			name = spec->mapping[i].name;
		} else {
			if (!js_source_column(spec, i, &c))
				break;
			name = c.name;
		}
		if (name == NULL)
			continue;
		n = snprintf(buf + off, buflen - off, "%s\"%s\"", off > 0 ? ", " : "", name);
		if (n < 0 || (size_t)n >= buflen - off) {
			/* No room for this one: end with an ellipsis (buflen >= 8). */
			size_t at = off + 6 <= buflen ? off : buflen - 6;

			snprintf(buf + at, buflen - at, "%s", at > 0 ? ", ..." : "...");
			return;
		}
		off += (size_t)n;
	}
	if (off == 0)
		snprintf(buf, buflen, "none");
}

/* MATCH_COLUMNS, UPDATE_COLUMNS and ORDER_COLUMNS name target columns.  They
 * take effect in MODE UPDATE and MERGE only; in INSERT they are accepted and
 * ignored (the seed's example carries them), so they are not checked there. */
static void js_validate_target_lists(struct js_vctx *v, const struct jobspec *spec)
{
	static const char *const keys[] = { "MATCH_COLUMNS", "UPDATE_COLUMNS", "ORDER_COLUMNS" };
	char *const *lists[] = { spec->match_columns, spec->update_columns, spec->order_columns };
	const size_t counts[] = { spec->nmatch_columns, spec->nupdate_columns, spec->norder_columns };
	char names[160], p[128];

	if (spec->mode != JS_MODE_UPDATE && spec->mode != JS_MODE_MERGE)
		return;
	if (spec->nmatch_columns == 0)
		js_verr(v, 0, "KAFKA.OUTPUT.MATCH_COLUMNS",
			"is required for MODE %s; list the target columns that identify a row (its primary key "
			"or a unique index)", js_mode_name(spec->mode));
	names[0] = '\0';
	for (size_t l = 0; l < 3; l++) {
		for (size_t i = 0; i < counts[l]; i++) {
			const char *name = lists[l][i];

			if (js_blank(name))
				continue; /* reported by js_check_names_unique */
			snprintf(p, sizeof(p), "KAFKA.OUTPUT.%s[%zu]", keys[l], i);
			if (!js_is_target(spec, name)) {
				if (names[0] == '\0')
					js_target_names(spec, names, sizeof(names));
				if (spec->nmapping > 0)
					js_verr(v, 0, p, "\"%s\" is not a MAPPING NAME; %s names target columns, which "
						"MAPPING defines: use one of %s, or map it", name, keys[l], names);
				else
					js_verr(v, 0, p, "\"%s\" is not a KEY, VALUE or META column; without MAPPING "
						"the target columns are those: use one of %s", name, names);
				continue;
			}
			if (l == 1) {
				for (size_t j = 0; j < spec->nmatch_columns; j++) {
					if (spec->match_columns[j] != NULL && strcmp(spec->match_columns[j], name) == 0) {
						js_verr(v, 0, p, "\"%s\" is also MATCH_COLUMNS[%zu]; a row is found by its "
							"MATCH_COLUMNS, so they are not updated: remove it here", name, j);
						break;
					}
				}
			}
		}
	}
}

static bool js_truthy(const char *s)
{
	/* librdkafka reads booleans as true/t/1 and false/f/0. */
	return !(strcasecmp(s, "false") == 0 || strcasecmp(s, "f") == 0 || strcmp(s, "0") == 0);
}

static void js_validate_properties(struct js_vctx *v, const struct jobspec *spec)
{
	char p[128];

	for (size_t i = 0; i < spec->nproperties; i++) {
		const struct js_property *pr = &spec->properties[i];

		snprintf(p, sizeof(p), "KAFKA.PROPERTIES.%s", pr->key != NULL ? pr->key : "");
		if (js_blank(pr->key) || pr->value == NULL) {
			js_verr(v, 0, p, "needs a name and a value");
			continue;
		}
		if (strcasecmp(pr->key, "enable.auto.commit") == 0 && js_truthy(pr->value))
			js_verr(v, 0, p, "cannot be %s: offsets are committed together with the rows written, "
				"so the delivery guarantee holds; remove it", pr->value);
		else if (strcasecmp(pr->key, "enable.auto.offset.store") == 0 && js_truthy(pr->value))
			js_verr(v, 0, p, "cannot be %s: offsets are stored only after the rows are written, "
				"so the delivery guarantee holds; remove it", pr->value);
		else if (strcasecmp(pr->key, "bootstrap.servers") == 0 ||
			 strcasecmp(pr->key, "metadata.broker.list") == 0)
			js_verr(v, 0, p, "is not allowed here; use KAFKA.INPUT.SOURCE.BROKERS");
	}
}

bool jobspec_sslmode_valid(const char *s)
{
	static const char *const modes[] = { "disable", "allow", "prefer", "require", "verify-ca", "verify-full" };

	for (size_t i = 0; s != NULL && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(s, modes[i]) == 0)
			return true;
	return false;
}

/* The label of a "-----BEGIN label-----" line at p (length in *len), or NULL. */
static const char *js_pem_label(const char *p, const char *kind, size_t *len)
{
	const char *end;

	if (strncmp(p, kind, strlen(kind)) != 0)
		return NULL;
	p += strlen(kind);
	end = strstr(p, "-----");
	if (end == NULL || memchr(p, '\n', (size_t)(end - p)) != NULL)
		return NULL;
	*len = (size_t)(end - p);
	return p;
}

static bool js_pem_key_label(const char *label, size_t len)
{
	static const char suffix[] = "PRIVATE KEY";

	return len >= sizeof(suffix) - 1 && memcmp(label + len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0;
}

const char *jobspec_pem_problem(const char *text, bool key)
{
	const char *p = text, *label, *body, *end;
	size_t len, nblocks = 0;

	if (text == NULL)
		return NULL;
	/* PEM blocks may have text around them (openssl x509 -text output, "Bag
	 * Attributes" of a PKCS#12 export): OpenSSL skips it, and so do we. */
	while ((p = strstr(p, "-----BEGIN ")) != NULL) {
		label = js_pem_label(p, "-----BEGIN ", &len);
		if (label == NULL)
			return "has a -----BEGIN line that is not of the form -----BEGIN LABEL-----";
		if (key && !js_pem_key_label(label, len))
			return "must be a private key in PEM (-----BEGIN PRIVATE KEY-----), not another kind of PEM block";
		if (!key && !(len == 11 && memcmp(label, "CERTIFICATE", 11) == 0))
			return js_pem_key_label(label, len)
				       ? "holds a private key; give the certificate (-----BEGIN CERTIFICATE-----) here"
				       : "must hold certificates in PEM (-----BEGIN CERTIFICATE-----), not another kind "
					 "of PEM block";
		if (key && len >= 21 && memcmp(label, "ENCRYPTED PRIVATE KEY", 21) == 0)
			return "is an encrypted key, which needs a passphrase; give it unencrypted "
			       "(openssl pkey -in key.pem -out plain.pem) and keep it secret";
		body = label + len + 5;
		end = strstr(body, "-----END ");
		if (end == NULL)
			return "has no -----END line after its -----BEGIN line; give the whole PEM text";
		if (strncmp(end + 9, label, len) != 0 || strncmp(end + 9 + len, "-----", 5) != 0)
			return "has an -----END line whose label differs from its -----BEGIN line";
		/* "Proc-Type: 4,ENCRYPTED": a traditional encrypted key */
		if (key && strstr(body, "Proc-Type:") != NULL && strstr(body, "Proc-Type:") < end)
			return "is an encrypted key, which needs a passphrase; give it unencrypted "
			       "(openssl pkey -in key.pem -out plain.pem) and keep it secret";
		for (const char *q = body; q < end; q++) {
			unsigned char ch = (unsigned char)*q;

			if (!isalnum(ch) && ch != '+' && ch != '/' && ch != '=' && !isspace(ch))
				return "holds characters that are not base64 between its -----BEGIN and -----END "
				       "lines";
		}
		if (end == body + strspn(body, " \t\r\n"))
			return "has no base64 text between its -----BEGIN and -----END lines";
		nblocks++;
		p = end + 9 + len + 5;
	}
	if (nblocks == 0)
		return key ? "is not PEM text: give the key file's contents, starting with -----BEGIN PRIVATE KEY----- "
			     "(not a file name)"
			   : "is not PEM text: give the certificate file's contents, starting with -----BEGIN "
			     "CERTIFICATE----- (not a file name)";
	if (key && nblocks > 1)
		return "must hold exactly one private key";
	return NULL;
}

/* SSLMODE and the PEM texts; paths are the YAML keys (a wizard job's errors
 * are reported by the wizard builder under its field names). */
static void js_validate_tls(struct js_vctx *v, const struct jobspec *spec)
{
	const char *problem;

	if (spec->sslmode != NULL && !jobspec_sslmode_valid(spec->sslmode))
		js_verr(v, 0, "SSLMODE", "must be one of " JS_SSLMODES ", got \"%.40s\"", spec->sslmode);
	if ((problem = jobspec_pem_problem(spec->sslrootcert, false)) != NULL)
		js_verr(v, 0, "SSLROOTCERT", "%s", problem);
	if ((problem = jobspec_pem_problem(spec->sslcert, false)) != NULL)
		js_verr(v, 0, "SSLCERT", "%s", problem);
	/* never quote the key: its problems are static texts */
	if ((problem = jobspec_pem_problem(spec->sslkey, true)) != NULL)
		js_verr(v, 0, "SSLKEY", "%s", problem);
	if (spec->sslcert != NULL && spec->sslkey == NULL)
		js_verr(v, 0, "SSLKEY", "is required with SSLCERT: give the client certificate's private key as PEM text");
	if (spec->sslkey != NULL && spec->sslcert == NULL)
		js_verr(v, 0, "SSLCERT", "is required with SSLKEY: give the client certificate as PEM text");
	/* Without a root CA libpq would look in the worker's ~/.postgresql/root.crt:
	 * the job, not the worker's home, says whom to trust. */
	if (spec->sslmode != NULL && strncmp(spec->sslmode, "verify-", 7) == 0 && jobspec_sslmode_valid(spec->sslmode) &&
	    js_blank(spec->sslrootcert))
		js_verr(v, 0, "SSLROOTCERT",
			"is required with SSLMODE %s: give the certificate of the CA that signed the server's "
			"certificate as PEM text (or set it on the data service)",
			spec->sslmode);
}

static void js_check_min(struct js_vctx *v, const char *path, int64_t value, int64_t min)
{
	if (value < min)
		js_verr(v, 0, path, "must be >= %lld, got %lld", (long long)min, (long long)value);
}

/* What this build cannot run yet.  ONE place on purpose: the next milestone
 * deletes these rules one by one as the worker learns the feature. */
static void jobspec_check_supported(struct js_vctx *v, const struct jobspec *spec)
{
	/* Every CONSISTENCY is honoured now; the hook stays for what comes next. */
	(void)v;
	(void)spec;
}

static int js_int32_cmp(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* Two tasks must never own one partition, so each is listed once (the YAML
 * parser says so too; a spec built otherwise is checked here). */
static void js_validate_partitions_once(struct js_vctx *v, const struct jobspec *spec)
{
	int32_t *sorted;

	if (spec->npartitions < 2)
		return;
	sorted = malloc(spec->npartitions * sizeof(*sorted));
	if (sorted == NULL) {
		js_verr(v, 0, "KAFKA.INPUT.SOURCE.PARTITIONS", "out of memory");
		return;
	}
	memcpy(sorted, spec->partitions, spec->npartitions * sizeof(*sorted));
	qsort(sorted, spec->npartitions, sizeof(*sorted), js_int32_cmp);
	for (size_t i = 1; i < spec->npartitions; i++) {
		if (sorted[i] == sorted[i - 1]) {
			js_verr(v, jobspec_line(spec, "KAFKA.INPUT.SOURCE.PARTITIONS"), "KAFKA.INPUT.SOURCE.PARTITIONS",
				"partition %d is listed twice; list it once", (int)sorted[i]);
			break;
		}
	}
	free(sorted);
}

int jobspec_validate(const struct jobspec *spec, struct js_errors *errs)
{
	struct js_vctx v = { spec, errs, 0 };

	if (errs != NULL)
		memset(errs, 0, sizeof(*errs));
	if (spec == NULL) {
		js_verr(&v, 0, "", "no job definition");
		return -1;
	}

	js_require(&v, spec->database, "DATABASE", "add DATABASE: <database name>");
	js_require(&v, spec->user, "USER", "add USER: <database account>");
	js_require(&v, spec->host, "HOST", "add HOST: <database host> (or set it on the data service)");
	if (spec->port == 0)
		js_verr(&v, 0, "PORT", "is required; add PORT: <port> (or set it on the data service)");
	else if (spec->port < 1 || spec->port > 65535)
		js_verr(&v, 0, "PORT", "must be between 1 and 65535, got %d", spec->port);
	js_validate_tls(&v, spec);
	js_require(&v, spec->brokers, "KAFKA.INPUT.SOURCE.BROKERS",
		   "add BROKERS: host:port[,host:port...] (or set them on the data source)");
	js_require(&v, spec->topic, "KAFKA.INPUT.SOURCE.TOPIC",
		   "add TOPIC: <topic> (or set it on the data source)");
	if (spec->tasks < JS_TASKS_MIN || spec->tasks > JS_TASKS_MAX)
		js_verr(&v, jobspec_line(spec, "TASKS"), "TASKS",
			"must be between %d and %d (the job's worker processes), got %d; leave it out for 1",
			JS_TASKS_MIN, JS_TASKS_MAX, spec->tasks);
	for (size_t i = 0; i < spec->npartitions; i++)
		if (spec->partitions[i] < 0)
			js_verr(&v, 0, "KAFKA.INPUT.SOURCE.PARTITIONS", "partition %d is negative",
				(int)spec->partitions[i]);
	js_validate_partitions_once(&v, spec);
	if ((unsigned)spec->fallback_offset > JS_FALLBACK_LATEST)
		js_verr(&v, 0, "KAFKA.INPUT.SOURCE.FALLBACK_OFFSET", "must be earliest or latest");

	if (!spec->key.present && !spec->value.present)
		js_verr(&v, 0, "KAFKA.INPUT",
			"needs VALUE (or KEY): list the message's columns and their FORMAT");
	js_validate_input(&v, &spec->key, "KAFKA.INPUT.KEY", false);
	js_validate_input(&v, &spec->value, "KAFKA.INPUT.VALUE", true);

	/* META: one column holding the message's topic, partition, offset,
	 * timestamp and key as a JSON object.  TYPE json or jsonb; text (what the
	 * seed's table says) is accepted too and then holds that JSON as text. */
	if (spec->meta_present) {
		js_require(&v, spec->meta_column, "KAFKA.INPUT.META.COLUMNS[0].NAME",
			   "name the column that receives the message metadata");
		if (js_blank(spec->meta_type))
			js_verr(&v, 0, "KAFKA.INPUT.META.COLUMNS[0].TYPE", "is required; use json, jsonb or text");
		else if (strcasecmp(spec->meta_type, "json") != 0 && strcasecmp(spec->meta_type, "jsonb") != 0 &&
			 strcasecmp(spec->meta_type, "text") != 0)
			js_verr(&v, 0, "KAFKA.INPUT.META.COLUMNS[0].TYPE", "must be one of json, jsonb, text");
	}
	js_validate_shared_names(&v, spec);

	if (spec->error_limit_percent) {
		if (spec->error_limit <= 0 || spec->error_limit > 100)
			js_verr(&v, 0, "KAFKA.INPUT.ERROR_LIMIT",
				"a percentage must be between 1%% and 100%%, got %lld%%", (long long)spec->error_limit);
	} else {
		js_check_min(&v, "KAFKA.INPUT.ERROR_LIMIT", spec->error_limit, 0);
	}

	js_require(&v, spec->table, "KAFKA.OUTPUT.TABLE", "add TABLE: <destination table>");
	if ((unsigned)spec->mode > JS_MODE_MERGE)
		js_verr(&v, 0, "KAFKA.OUTPUT.MODE", "must be one of INSERT, UPDATE, MERGE");
	js_check_names_unique(&v, "KAFKA.OUTPUT.MATCH_COLUMNS", spec->match_columns, spec->nmatch_columns);
	js_check_names_unique(&v, "KAFKA.OUTPUT.ORDER_COLUMNS", spec->order_columns, spec->norder_columns);
	js_check_names_unique(&v, "KAFKA.OUTPUT.UPDATE_COLUMNS", spec->update_columns, spec->nupdate_columns);
	for (size_t i = 0; i < spec->nmapping; i++) {
		const struct js_mapping *m = &spec->mapping[i];
		char p[128];

		snprintf(p, sizeof(p), "KAFKA.OUTPUT.MAPPING[%zu]", i);
		if (js_blank(m->name)) {
			snprintf(p, sizeof(p), "KAFKA.OUTPUT.MAPPING[%zu].NAME", i);
			js_verr(&v, 0, p, "is required; give the target column");
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			if (spec->mapping[j].name != NULL && strcmp(m->name, spec->mapping[j].name) == 0) {
				js_verr(&v, 0, p, "target column \"%s\" is mapped twice (also MAPPING[%zu]); map it once",
					m->name, j);
				break;
			}
		}
		if (js_blank(m->expression)) {
			snprintf(p, sizeof(p), "KAFKA.OUTPUT.MAPPING[%zu].EXPRESSION", i);
			js_verr(&v, 0, p, "\"%s\" needs EXPRESSION: a source column or an SQL expression over them",
				m->name);
		}
	}
	js_validate_target_lists(&v, spec);

	js_check_min(&v, "KAFKA.COMMIT.MAX_ROW", spec->commit_max_row, 1);
	js_check_min(&v, "KAFKA.COMMIT.MINIMAL_INTERVAL", spec->commit_minimal_interval_ms, 0);
	if ((unsigned)spec->consistency > JS_CONSISTENCY_NONE)
		js_verr(&v, 0, "KAFKA.COMMIT.CONSISTENCY", "must be one of ATLEAST, EXACTLY, at-most, none");
	js_check_min(&v, "KAFKA.POLL.BATCHSIZE", spec->poll_batchsize, 1);
	js_check_min(&v, "KAFKA.POLL.TIMEOUT", spec->poll_timeout_ms, 0);
	js_validate_properties(&v, spec);
	js_check_min(&v, "SCHEDULE.RETRY_INTERVAL", spec->retry_interval_ms, 0);
	js_check_min(&v, "SCHEDULE.MAX_RETRIES", spec->max_retries, 0);

	jobspec_check_supported(&v, spec);
	return v.nerr > 0 ? -1 : 0;
}
