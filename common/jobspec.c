/* The job model: errors, enum names, defaults, semantic validation.
 * Parsing and emitting live in jobspec_yaml.c and jobspec_wizard.c. */
#include "jobspec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "secret.h"

void js_errors_add(struct js_errors *errs, int line, const char *path, const char *fmt, ...)
{
	struct js_error *e;
	va_list ap;

	if (errs == NULL)
		return;
	if (errs->count >= JS_ERRORS_MAX) {
		errs->truncated = true;
		return;
	}
	e = &errs->items[errs->count++];
	e->line = line;
	snprintf(e->path, sizeof(e->path), "%s", path != NULL ? path : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

void js_errors_format(const struct js_errors *errs, char *buf, size_t buflen)
{
	size_t off = 0;

	if (buf == NULL || buflen == 0)
		return;
	buf[0] = '\0';
	if (errs == NULL)
		return;
	for (size_t i = 0; i < errs->count && off < buflen; i++) {
		const struct js_error *e = &errs->items[i];
		const char *sep = i > 0 ? "; " : "";
		int n;

		if (e->path[0] != '\0' && e->line > 0)
			n = snprintf(buf + off, buflen - off, "%s%s (line %d): %s", sep, e->path, e->line,
				     e->message);
		else if (e->path[0] != '\0')
			n = snprintf(buf + off, buflen - off, "%s%s: %s", sep, e->path, e->message);
		else if (e->line > 0)
			n = snprintf(buf + off, buflen - off, "%sline %d: %s", sep, e->line, e->message);
		else
			n = snprintf(buf + off, buflen - off, "%s%s", sep, e->message);
		if (n < 0)
			return;
		off += (size_t)n;
	}
	if (errs->truncated && off < buflen)
		snprintf(buf + off, buflen - off, "; (more problems not shown)");
}

struct jobspec *jobspec_new(void)
{
	struct jobspec *spec = calloc(1, sizeof(*spec));

	if (spec == NULL)
		return NULL;
	spec->version = 2;
	spec->tasks = 1;
	spec->fallback_offset = JS_FALLBACK_EARLIEST;
	spec->mode = JS_MODE_INSERT;
	spec->commit_max_row = 500;
	spec->commit_minimal_interval_ms = 1000;
	spec->consistency = JS_CONSISTENCY_ATLEAST;
	spec->poll_batchsize = 64;
	spec->poll_timeout_ms = 5000;
	spec->retry_interval_ms = 5000;
	spec->max_retries = 0; /* 0 = retry forever */
	return spec;
}

static void js_input_free(struct js_input *in)
{
	for (size_t i = 0; i < in->ncolumns; i++) {
		free(in->columns[i].name);
		free(in->columns[i].type);
	}
	free(in->columns);
	free(in->delimiter);
	free(in->quote);
	free(in->escape);
	free(in->null_string);
	free(in->protobuf_descriptor_file);
	free(in->protobuf_descriptor);
	free(in->protobuf_message);
	free(in->registry_addr);
	free(in->registry_user);
	if (in->registry_password != NULL)
		explicit_bzero(in->registry_password, strlen(in->registry_password));
	free(in->registry_password);
	free(in->avro_schema_file);
	free(in->avro_schema);
}

static void js_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void jobspec_free(struct jobspec *spec)
{
	if (spec == NULL)
		return;
	free(spec->database);
	free(spec->user);
	free(spec->password);
	free(spec->host);
	free(spec->sslmode);
	free(spec->sslrootcert);
	free(spec->sslcert);
	if (spec->sslkey != NULL)
		explicit_bzero(spec->sslkey, strlen(spec->sslkey));
	free(spec->sslkey);
	free(spec->brokers);
	free(spec->topic);
	free(spec->partitions);
	js_input_free(&spec->key);
	js_input_free(&spec->value);
	free(spec->meta_column);
	free(spec->meta_type);
	free(spec->schema);
	free(spec->table);
	js_strv_free(spec->match_columns, spec->nmatch_columns);
	js_strv_free(spec->order_columns, spec->norder_columns);
	js_strv_free(spec->update_columns, spec->nupdate_columns);
	for (size_t i = 0; i < spec->nmapping; i++) {
		free(spec->mapping[i].name);
		free(spec->mapping[i].expression);
	}
	free(spec->mapping);
	free(spec->metadata_schema);
	for (size_t i = 0; i < spec->nproperties; i++) {
		free(spec->properties[i].key);
		free(spec->properties[i].value);
	}
	free(spec->properties);
	for (size_t i = 0; i < spec->nlines; i++)
		free(spec->lines[i].path);
	free(spec->lines);
	free(spec);
}

/* ---- enum names ---- */

const char *js_format_name(enum js_format f)
{
	switch (f) {
	case JS_FORMAT_DELIMITED:
		return "delimited";
	case JS_FORMAT_CSV:
		return "csv";
	case JS_FORMAT_JSON:
		return "json";
	case JS_FORMAT_PROTOBUF:
		return "protobuf";
	case JS_FORMAT_AVRO:
		return "avro";
	case JS_FORMAT_NONE:
		break;
	}
	return "none";
}

const char *js_mode_name(enum js_mode m)
{
	switch (m) {
	case JS_MODE_INSERT:
		return "INSERT";
	case JS_MODE_UPDATE:
		return "UPDATE";
	case JS_MODE_MERGE:
		return "MERGE";
	}
	return "?";
}

const char *js_consistency_name(enum js_consistency c)
{
	switch (c) {
	case JS_CONSISTENCY_ATLEAST:
		return "ATLEAST";
	case JS_CONSISTENCY_EXACTLY:
		return "EXACTLY";
	case JS_CONSISTENCY_ATMOST:
		return "at-most";
	case JS_CONSISTENCY_NONE:
		return "none";
	}
	return "?";
}

const char *js_fallback_name(enum js_fallback f)
{
	switch (f) {
	case JS_FALLBACK_EARLIEST:
		return "earliest";
	case JS_FALLBACK_LATEST:
		return "latest";
	}
	return "?";
}

struct js_name {
	const char *name;
	int value;
};

static int js_name_lookup(const struct js_name *names, const char *s)
{
	if (s == NULL)
		return -1;
	for (; names->name != NULL; names++)
		if (strcasecmp(names->name, s) == 0)
			return names->value;
	return -1;
}

int js_format_parse(const char *s)
{
	static const struct js_name names[] = {
		{ "delimited", JS_FORMAT_DELIMITED },
		{ "csv", JS_FORMAT_CSV },
		{ "json", JS_FORMAT_JSON },
		{ "protobuf", JS_FORMAT_PROTOBUF },
		{ "avro", JS_FORMAT_AVRO },
		{ NULL, 0 },
	};
	return js_name_lookup(names, s);
}

int js_mode_parse(const char *s)
{
	static const struct js_name names[] = {
		{ "INSERT", JS_MODE_INSERT },
		{ "UPDATE", JS_MODE_UPDATE },
		{ "MERGE", JS_MODE_MERGE },
		{ NULL, 0 },
	};
	return js_name_lookup(names, s);
}

int js_consistency_parse(const char *s)
{
	/* The console says ATLEAST/EXACTLY, the GPSS appendix strong/at-least/at-most/none. */
	static const struct js_name names[] = {
		{ "ATLEAST", JS_CONSISTENCY_ATLEAST },
		{ "at-least", JS_CONSISTENCY_ATLEAST },
		{ "EXACTLY", JS_CONSISTENCY_EXACTLY },
		{ "strong", JS_CONSISTENCY_EXACTLY },
		{ "at-most", JS_CONSISTENCY_ATMOST },
		{ "ATMOST", JS_CONSISTENCY_ATMOST },
		{ "none", JS_CONSISTENCY_NONE },
		{ NULL, 0 },
	};
	return js_name_lookup(names, s);
}

int js_fallback_parse(const char *s)
{
	static const struct js_name names[] = {
		{ "earliest", JS_FALLBACK_EARLIEST },
		{ "latest", JS_FALLBACK_LATEST },
		{ NULL, 0 },
	};
	return js_name_lookup(names, s);
}

const char *jobspec_property(const struct jobspec *spec, const char *key)
{
	if (spec == NULL || key == NULL)
		return NULL;
	for (size_t i = 0; i < spec->nproperties; i++)
		if (strcmp(spec->properties[i].key, key) == 0)
			return spec->properties[i].value;
	return NULL;
}

/* ---- secrets ---- */

/* The job's scalar fields that are secrets.  A property is one when
 * secret_property_is_secret says so. */
static const struct {
	size_t offset;
	bool inherited; /* may come from the service when the job has none */
} js_secret_fields[] = {
	{ offsetof(struct jobspec, password), false },
	{ offsetof(struct jobspec, sslkey), true }, /* SSLKEY: the client's private key (PEM) */
	/* AVRO_OPTION / JSON_OPTION.SCHEMA_REGISTRY_PASSWORD; may be the source's */
	{ offsetof(struct jobspec, key.registry_password), true },
	{ offsetof(struct jobspec, value.registry_password), true },
};

#define JS_NSECRET_FIELDS (sizeof(js_secret_fields) / sizeof(js_secret_fields[0]))

static char **js_secret_field(struct jobspec *spec, size_t i)
{
	return (char **)((char *)spec + js_secret_fields[i].offset);
}

static const char *js_secret_field_value(const struct jobspec *spec, size_t i)
{
	return *(char *const *)((const char *)spec + js_secret_fields[i].offset);
}

size_t jobspec_secrets(const struct jobspec *spec, const char **out, size_t max)
{
	size_t n = 0;

	if (spec == NULL)
		return 0;
	for (size_t i = 0; i < JS_NSECRET_FIELDS; i++) {
		const char *v = js_secret_field_value(spec, i);

		if (v == NULL || v[0] == '\0')
			continue;
		if (n < max)
			out[n] = v;
		n++;
	}
	for (size_t i = 0; i < spec->nproperties; i++) {
		const struct js_property *pr = &spec->properties[i];

		if (pr->value == NULL || pr->value[0] == '\0' || !secret_property_is_secret(pr->key))
			continue;
		if (n < max)
			out[n] = pr->value;
		n++;
	}
	return n;
}

char *jobspec_scrub(const struct jobspec *spec, const char *s)
{
	size_t n = jobspec_secrets(spec, NULL, 0);
	const char **list = calloc(n > 0 ? n : 1, sizeof(*list));
	char *out = NULL;

	if (list != NULL) {
		jobspec_secrets(spec, list, n);
		out = secret_scrub(s, list, n);
	}
	free(list);
	return out;
}

/* librdkafka quotes two secret settings only in part, so the whole value
 * never matches: "Unrecognized sasl.oauthbearer.config beginning at:
 * <the rest>" (every tail that starts a name=value token is registered,
 * longest first), and the kinit command after filling in its %{...}
 * placeholders ("Kerberos ticket refresh failed: <command>": the literal
 * pieces between them are).  Pieces under 4 bytes would mask common words
 * and reveal little. */
static int js_register_secret_parts(const struct js_property *pr)
{
	const char *v = pr->value;
	int rc = 0;

	if (v == NULL)
		return 0;
	if (strcasecmp(pr->key, "sasl.oauthbearer.config") == 0) {
		for (size_t i = 1; rc == 0 && v[i] != '\0'; i++)
			if (isspace((unsigned char)v[i - 1]) && !isspace((unsigned char)v[i]) &&
			    strlen(v + i) >= 4)
				rc = secret_register(v + i);
	} else if (strcasecmp(pr->key, "sasl.kerberos.kinit.cmd") == 0) {
		const char *p = v;

		while (rc == 0 && *p != '\0') {
			const char *open = strstr(p, "%{"), *close;
			size_t len = open != NULL ? (size_t)(open - p) : strlen(p);

			if (len >= 4 && (open != NULL || p != v)) {
				char *piece = strndup(p, len);

				rc = piece != NULL ? secret_register(piece) : -1;
				free(piece);
			}
			if (open == NULL || (close = strchr(open, '}')) == NULL)
				break;
			p = close + 1;
		}
	}
	return rc;
}

int jobspec_register_secrets(const struct jobspec *spec, char *err, size_t errlen)
{
	size_t n = jobspec_secrets(spec, NULL, 0);
	const char **list = calloc(n > 0 ? n : 1, sizeof(*list));
	int rc = list != NULL ? 0 : -1;

	if (list != NULL)
		jobspec_secrets(spec, list, n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = secret_register(list[i]);
	free(list);
	for (size_t i = 0; rc == 0 && i < spec->nproperties; i++)
		rc = js_register_secret_parts(&spec->properties[i]);
	if (rc < 0)
		snprintf(err, errlen,
			 "KAFKA.PROPERTIES: the job has more than %d secrets (PASSWORD and secret "
			 "properties), more than can be kept out of the logs (or out of memory)",
			 SECRET_REGISTERED_MAX);
	return rc;
}

int jobspec_keep_secrets(struct jobspec *spec, const struct jobspec *stored)
{
	int changed = 0;
	size_t i = 0;

	for (size_t f = 0; f < JS_NSECRET_FIELDS; f++) {
		char **v = js_secret_field(spec, f);
		const char *old = stored != NULL ? js_secret_field_value(stored, f) : NULL;
		char *copy;

		/* Nothing stored: the mask stood for the service's SSLKEY, which
		 * then applies again; a password has no other place to come
		 * from and is left as given. */
		if (!secret_is_mask(*v) || (old == NULL && !js_secret_fields[f].inherited))
			continue;
		copy = NULL;
		if (old != NULL && (copy = strdup(old)) == NULL)
			return -1;
		free(*v);
		*v = copy;
		changed = 1;
	}
	while (i < spec->nproperties) {
		struct js_property *pr = &spec->properties[i];
		const char *old;
		char *copy;

		if (!secret_is_mask(pr->value) || !secret_property_is_secret(pr->key)) {
			i++;
			continue;
		}
		changed = 1;
		old = jobspec_property(stored, pr->key);
		if (old != NULL) {
			if ((copy = strdup(old)) == NULL)
				return -1;
			free(pr->value);
			pr->value = copy;
			i++;
			continue;
		}
		free(pr->key);
		free(pr->value);
		memmove(pr, pr + 1, (spec->nproperties - i - 1) * sizeof(*pr));
		spec->nproperties--;
	}
	return changed;
}

/* ---- defaults ---- */

/* Sets *dst to a copy of src when *dst is absent.  -1 on out of memory. */
static int js_default_str(char **dst, const char *src)
{
	if (*dst != NULL || src == NULL)
		return 0;
	*dst = strdup(src);
	return *dst != NULL ? 0 : -1;
}

/* The source's registry, for an input that names none: avro with no schema
 * of its own, or (VALUE only: a KEY's JSON is seldom framed) json.  The
 * credentials come with the address, never alone. */
static int js_default_registry(struct js_input *in, bool json_too, const struct js_defaults *defaults)
{
	bool wants = in->format == JS_FORMAT_AVRO ? in->avro_schema_file == NULL && in->avro_schema == NULL
						  : json_too && in->format == JS_FORMAT_JSON;

	if (!in->present || !wants || in->registry_addr != NULL || defaults->registry == NULL ||
	    defaults->registry[0] == '\0')
		return 0;
	if (js_default_str(&in->registry_addr, defaults->registry) < 0)
		return -1;
	if (in->registry_user == NULL && in->registry_password == NULL &&
	    (js_default_str(&in->registry_user, defaults->registry_user) < 0 ||
	     js_default_str(&in->registry_password, defaults->registry_password) < 0))
		return -1;
	return 0;
}

int jobspec_apply_defaults(struct jobspec *spec, const struct js_defaults *defaults)
{
	if (spec == NULL)
		return -1;
	/* OUTPUT.SCHEMA defaults to public, as in the console. */
	if (js_default_str(&spec->schema, "public") < 0)
		return -1;
	if (defaults == NULL)
		return 0;
	if (js_default_str(&spec->brokers, defaults->brokers) < 0 ||
	    js_default_str(&spec->topic, defaults->topic) < 0 ||
	    js_default_str(&spec->host, defaults->host) < 0 ||
	    js_default_str(&spec->sslmode, defaults->sslmode) < 0 ||
	    js_default_str(&spec->sslrootcert, defaults->sslrootcert) < 0 ||
	    js_default_str(&spec->sslcert, defaults->sslcert) < 0 ||
	    js_default_str(&spec->sslkey, defaults->sslkey) < 0)
		return -1;
	if (spec->port == 0 && defaults->port > 0)
		spec->port = defaults->port;

	/* The source's delimiter belongs to the source's format: it is taken
	 * when the VALUE gets that format, or already has it and sets none. */
	if (spec->value.present && defaults->format != JS_FORMAT_NONE &&
	    (spec->value.format == JS_FORMAT_NONE || spec->value.format == defaults->format)) {
		spec->value.format = defaults->format;
		if (js_default_str(&spec->value.delimiter, defaults->delimiter) < 0)
			return -1;
	}

	if (js_default_registry(&spec->key, false, defaults) < 0 ||
	    js_default_registry(&spec->value, true, defaults) < 0)
		return -1;

	for (size_t i = 0; i < defaults->nproperties; i++) {
		const struct js_property *dp = &defaults->properties[i];
		struct js_property *grown;

		if (dp->key == NULL || dp->value == NULL || jobspec_property(spec, dp->key) != NULL)
			continue;
		grown = realloc(spec->properties, (spec->nproperties + 1) * sizeof(*grown));
		if (grown == NULL)
			return -1;
		spec->properties = grown;
		grown[spec->nproperties].key = strdup(dp->key);
		grown[spec->nproperties].value = strdup(dp->value);
		if (grown[spec->nproperties].key == NULL || grown[spec->nproperties].value == NULL) {
			free(grown[spec->nproperties].key);
			free(grown[spec->nproperties].value);
			return -1;
		}
		spec->nproperties++;
	}
	return 0;
}

/* ---- lines and input modes ---- */

int jobspec_line(const struct jobspec *spec, const char *path)
{
	size_t len;

	if (spec == NULL || path == NULL || spec->nlines == 0)
		return 0;
	len = strlen(path);
	while (len > 0) {
		size_t cut;

		for (size_t i = 0; i < spec->nlines; i++) {
			const char *p = spec->lines[i].path;

			if (p != NULL && strncmp(p, path, len) == 0 && p[len] == '\0')
				return spec->lines[i].line;
		}
		/* The parent: "A.B[2]" -> "A.B", "A.B.C" -> "A.B".  A property
		 * name's own dots ("KAFKA.PROPERTIES.group.id") only add steps. */
		cut = len;
		if (path[len - 1] == ']') {
			while (cut > 0 && path[cut - 1] != '[')
				cut--;
			if (cut > 0)
				cut--;
		}
		if (cut == len || cut == 0) {
			cut = len - 1;
			while (cut > 0 && path[cut] != '.')
				cut--;
		}
		len = cut;
	}
	return 0;
}

bool js_column_is_json(const struct js_column *col)
{
	const char *t = col->type;
	size_t n;

	if (t == NULL)
		return false;
	n = strlen(t);
	while (n > 0 && isspace((unsigned char)*t)) {
		t++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)t[n - 1]))
		n--;
	return (n == 4 && strncasecmp(t, "json", 4) == 0) || (n == 5 && strncasecmp(t, "jsonb", 5) == 0);
}

bool js_input_json_whole(const struct js_input *in)
{
	return in != NULL && (in->format == JS_FORMAT_JSON || in->format == JS_FORMAT_AVRO) && in->ncolumns == 1 && in->columns != NULL &&
	       js_column_is_json(&in->columns[0]);
}
