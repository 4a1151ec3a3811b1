/* The console's wizard fields (JSON) to a jobspec.  Errors name the JSON field
 * ("fields[2].role", "write_mode") and have no line.
 *
 * write_mode UPDATE and MERGE: fields with role "match" give MATCH_COLUMNS and
 * those with role "update" UPDATE_COLUMNS, both by destination column (the
 * MAPPING NAME), as jobspec_validate expects of target columns. */
#include "jobspec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

#define JS_WIZARD_FIELDS_MAX 1600 /* PostgreSQL's column limit */

struct wctx {
	struct js_errors *errs;
	int nerr;
};

static void werr(struct wctx *w, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void werr(struct wctx *w, const char *path, const char *fmt, ...)
{
	char msg[sizeof(((struct js_error *)0)->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->nerr++;
	js_errors_add(w->errs, 0, path, "%s", msg);
}

static const char *wtype(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsObject(v))
		return "an object";
	return "null";
}

/* A string field: NULL when absent or null; an error for another type. */
static const char *wstring(struct wctx *w, const cJSON *v, const char *path, bool nonempty)
{
	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		werr(w, path, "must be a string, got %s", wtype(v));
		return NULL;
	}
	/* The YAML emitter refuses text that is not UTF-8; refuse it here, by field. */
	if (utf8_valid_prefix(v->valuestring, strlen(v->valuestring)) != strlen(v->valuestring)) {
		werr(w, path, "must be UTF-8 text");
		return NULL;
	}
	if (nonempty && v->valuestring[0] == '\0') {
		werr(w, path, "must not be empty");
		return NULL;
	}
	return v->valuestring;
}

static void wcopy(struct wctx *w, const cJSON *v, const char *path, bool nonempty, char **dst)
{
	const char *s = wstring(w, v, path, nonempty);

	if (s == NULL)
		return;
	*dst = strdup(s);
	if (*dst == NULL)
		werr(w, path, "out of memory");
}

static void wrequired(struct wctx *w, const cJSON *obj, const char *name, const char *how)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (v == NULL || cJSON_IsNull(v))
		werr(w, name, "is required; %s", how);
}

static bool wenum(struct wctx *w, const cJSON *v, const char *path, int (*parse)(const char *),
		  const char *allowed, int *dst)
{
	const char *s = wstring(w, v, path, false);
	int e;

	if (s == NULL)
		return false;
	e = parse(s);
	if (e < 0) {
		werr(w, path, "must be one of %s, got \"%.40s\"", allowed, s);
		return false;
	}
	*dst = e;
	return true;
}

/* The wizard offers ATLEAST and EXACTLY only. */
static int wconsistency_parse(const char *s)
{
	int c = js_consistency_parse(s);

	return c == JS_CONSISTENCY_ATLEAST || c == JS_CONSISTENCY_EXACTLY ? c : -1;
}

enum wrole { WROLE_NONE, WROLE_MATCH, WROLE_UPDATE };

static int wrole_parse(const char *s)
{
	/* The console calls "none" Empty and may send it as "". */
	if (strcasecmp(s, "none") == 0 || s[0] == '\0')
		return WROLE_NONE;
	if (strcasecmp(s, "match") == 0)
		return WROLE_MATCH;
	if (strcasecmp(s, "update") == 0)
		return WROLE_UPDATE;
	return -1;
}

static char *wdup(struct wctx *w, const char *s, const char *path)
{
	char *d = strdup(s);

	if (d == NULL)
		werr(w, path, "out of memory");
	return d;
}

static void wfields(struct wctx *w, const cJSON *arr, struct jobspec *spec)
{
	static const char *const field_keys[] = { "source", "dest", "role", NULL };
	size_t n, i = 0;
	const cJSON *f;

	if (arr == NULL || cJSON_IsNull(arr))
		return; /* reported as required */
	if (!cJSON_IsArray(arr)) {
		werr(w, "fields", "must be an array of {\"source\", \"dest\", \"role\"} objects, got %s", wtype(arr));
		return;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	if (n == 0) {
		werr(w, "fields", "must list at least one field, in the order of the fields in the message");
		return;
	}
	if (n > JS_WIZARD_FIELDS_MAX) {
		werr(w, "fields", "has %zu entries; at most %d are allowed", n, JS_WIZARD_FIELDS_MAX);
		return;
	}
	spec->value.columns = calloc(n, sizeof(*spec->value.columns));
	spec->mapping = calloc(n, sizeof(*spec->mapping));
	spec->match_columns = calloc(n, sizeof(*spec->match_columns));
	spec->update_columns = calloc(n, sizeof(*spec->update_columns));
	if (spec->value.columns == NULL || spec->mapping == NULL || spec->match_columns == NULL ||
	    spec->update_columns == NULL) {
		werr(w, "fields", "out of memory");
		return;
	}
	spec->value.ncolumns = n;
	spec->nmapping = n;

	cJSON_ArrayForEach(f, arr) {
		char path[32], fp[128];
		const char *source, *dest;
		int role = WROLE_NONE;
		const cJSON *kv, *sv;
		bool dup_source;

		snprintf(path, sizeof(path), "fields[%zu]", i);
		if (!cJSON_IsObject(f)) {
			werr(w, path, "must be an object {\"source\": ..., \"dest\": ..., \"role\": ...}, got %s",
			     wtype(f));
			i++;
			continue;
		}
		cJSON_ArrayForEach(kv, f) {
			size_t k;

			for (k = 0; field_keys[k] != NULL; k++)
				if (kv->string != NULL && strcmp(kv->string, field_keys[k]) == 0)
					break;
			if (field_keys[k] == NULL) {
				snprintf(fp, sizeof(fp), "%s.%.40s", path, kv->string != NULL ? kv->string : "");
				werr(w, fp, "unknown field; a field has source, dest and role");
			}
		}
		snprintf(fp, sizeof(fp), "%s.source", path);
		sv = cJSON_GetObjectItemCaseSensitive(f, "source");
		source = wstring(w, sv, fp, true);
		if (sv == NULL || cJSON_IsNull(sv))
			werr(w, fp, "is required: the field's name in the message");
		dup_source = false;
		for (size_t j = 0; source != NULL && j < i; j++) {
			if (spec->value.columns[j].name != NULL && strcmp(spec->value.columns[j].name, source) == 0) {
				werr(w, fp, "\"%s\" is given twice (also fields[%zu]); each message field once",
				     source, j);
				dup_source = true;
				break;
			}
		}
		snprintf(fp, sizeof(fp), "%s.dest", path);
		dest = wstring(w, cJSON_GetObjectItemCaseSensitive(f, "dest"), fp, false);
		if ((dest == NULL || dest[0] == '\0') && !dup_source)
			dest = source; /* blank: the same name in the table */
		else if (dest != NULL && dest[0] == '\0')
			dest = NULL;
		for (size_t j = 0; dest != NULL && j < i; j++) {
			if (spec->mapping[j].name != NULL && strcmp(spec->mapping[j].name, dest) == 0) {
				werr(w, fp, "column \"%s\" is the destination of fields[%zu] too; "
				     "each column takes one field", dest, j);
				break;
			}
		}
		snprintf(fp, sizeof(fp), "%s.role", path);
		wenum(w, cJSON_GetObjectItemCaseSensitive(f, "role"), fp, wrole_parse, "match, update, none", &role);

		if (source != NULL && dest != NULL) {
			spec->value.columns[i].name = wdup(w, source, fp); /* type NULL: the column's own */
			spec->mapping[i].name = wdup(w, dest, fp);
			spec->mapping[i].expression = wdup(w, source, fp);
			if (role == WROLE_MATCH)
				spec->match_columns[spec->nmatch_columns++] = wdup(w, dest, fp);
			else if (role == WROLE_UPDATE)
				spec->update_columns[spec->nupdate_columns++] = wdup(w, dest, fp);
		}
		i++;
	}
}

/* delete_on_tombstone: a tombstone has only its key, so the match fields are
 * read from it, as a KEY of the source's format (jobspec_apply_defaults)
 * with one column per match field, in their order; their MAPPING entries
 * name those columns instead of the value's. */
static void wtombstones(struct wctx *w, struct jobspec *spec)
{
	if (spec->mode != JS_MODE_UPDATE && spec->mode != JS_MODE_MERGE) {
		werr(w, "delete_on_tombstone", "needs write_mode UPDATE or MERGE (a tombstone deletes the row its "
		     "key matches); INSERT skips tombstones");
		return;
	}
	if (spec->nmatch_columns == 0)
		return; /* reported: UPDATE and MERGE need a match field */
	spec->delete_on_tombstone = true;
	spec->key.present = true;
	spec->key.format_from_source = true;
	spec->key.columns = calloc(spec->nmatch_columns, sizeof(*spec->key.columns));
	if (spec->key.columns == NULL) {
		werr(w, "delete_on_tombstone", "out of memory");
		return;
	}
	for (size_t k = 0; k < spec->nmatch_columns; k++) {
		char name[48];

		snprintf(name, sizeof(name), "streamserver_key_%zu", k + 1);
		spec->key.columns[k].name = wdup(w, name, "delete_on_tombstone");
		spec->key.ncolumns++;
		for (size_t j = 0; j < spec->nmapping; j++) {
			struct js_mapping *m = &spec->mapping[j];

			if (m->name == NULL || spec->match_columns[k] == NULL || strcmp(m->name, spec->match_columns[k]) != 0)
				continue;
			free(m->expression);
			m->expression = wdup(w, name, "delete_on_tombstone");
		}
	}
}

static bool wlisted(const char *const *names, const char *name)
{
	for (; *names != NULL; names++)
		if (strcmp(*names, name) == 0)
			return true;
	return false;
}

/* A PEM field: blank counts as absent (the service's value applies). */
static void wpem(struct wctx *w, const cJSON *fields, const char *name, bool key, char **dst)
{
	const char *problem;

	wcopy(w, cJSON_GetObjectItemCaseSensitive(fields, name), name, false, dst);
	if (*dst != NULL && (*dst)[0] == '\0') {
		free(*dst);
		*dst = NULL;
	}
	/* the problems are static texts: the key is never quoted */
	if ((problem = jobspec_pem_problem(*dst, key)) != NULL)
		werr(w, name, "%s", problem);
}

/* sslmode, sslrootcert, sslcert, sslkey: the job's own TLS settings over
 * the data service's; checked here so errors name the wizard fields. */
static void wtls(struct wctx *w, const cJSON *fields, struct jobspec *spec)
{
	wcopy(w, cJSON_GetObjectItemCaseSensitive(fields, "sslmode"), "sslmode", false, &spec->sslmode);
	if (spec->sslmode != NULL && spec->sslmode[0] == '\0') {
		free(spec->sslmode);
		spec->sslmode = NULL;
	}
	if (spec->sslmode != NULL && !jobspec_sslmode_valid(spec->sslmode))
		werr(w, "sslmode", "must be one of " JS_SSLMODES ", got \"%.40s\"", spec->sslmode);
	wpem(w, fields, "sslrootcert", false, &spec->sslrootcert);
	wpem(w, fields, "sslcert", false, &spec->sslcert);
	wpem(w, fields, "sslkey", true, &spec->sslkey);
}

int jobspec_from_wizard(const cJSON *fields, struct jobspec **out, struct js_errors *errs)
{
	/* Job fields the caller passes along that are not part of the definition. */
	static const char *const ignored[] = { "id", "name", "description", "source_id", "mode", "state",
					       "desired_state", "created_at", "updated_at", NULL };
	static const char *const known[] = { "group_name", "fallback_offset", "consistency", "database",
					     "schema", "table", "account", "password", "write_mode",
					     "error_limit", "tasks", "fields", "sslmode", "sslrootcert",
					     "sslcert", "sslkey", "delete_on_tombstone", NULL };
	bool seen[sizeof(known) / sizeof(known[0])] = { false };
	struct wctx w = { errs, 0 };
	struct jobspec *spec;
	const cJSON *v;
	int e;

	if (errs != NULL)
		memset(errs, 0, sizeof(*errs));
	if (out != NULL)
		*out = NULL;
	if (out == NULL || !cJSON_IsObject(fields)) {
		werr(&w, "", "the wizard fields must be a JSON object");
		return -1;
	}
	spec = jobspec_new();
	if (spec == NULL) {
		werr(&w, "", "out of memory");
		return -1;
	}

	cJSON_ArrayForEach(v, fields) {
		const char *name = v->string != NULL ? v->string : "";
		size_t i;

		for (i = 0; known[i] != NULL; i++)
			if (strcmp(name, known[i]) == 0)
				break;
		if (known[i] != NULL) {
			/* cJSON keeps both copies of a repeated key; only the first would count. */
			if (seen[i])
				werr(&w, name, "is given twice; give it once");
			seen[i] = true;
		} else if (!wlisted(ignored, name)) {
			werr(&w, name, "unknown field; the wizard fields are group_name, fallback_offset, consistency, "
			     "database, schema, table, account, password, write_mode, error_limit, tasks, "
			     "fields, sslmode, sslrootcert, sslcert, sslkey, delete_on_tombstone");
		}
	}

	wrequired(&w, fields, "database", "give the destination database");
	wrequired(&w, fields, "table", "give the destination table");
	wrequired(&w, fields, "account", "give the database account");
	wrequired(&w, fields, "fields", "list the message's fields, in order");

	/* Optional texts left blank in the console count as absent. */
	v = cJSON_GetObjectItemCaseSensitive(fields, "group_name");
	if (wstring(&w, v, "group_name", false) != NULL && v->valuestring[0] != '\0') {
		spec->properties = calloc(1, sizeof(*spec->properties));
		if (spec->properties == NULL || (spec->properties[0].key = strdup("group.id")) == NULL ||
		    (spec->properties[0].value = strdup(v->valuestring)) == NULL) {
			if (spec->properties != NULL)
				free(spec->properties[0].key);
			werr(&w, "group_name", "out of memory");
		} else {
			spec->nproperties = 1;
		}
	}
	if (wenum(&w, cJSON_GetObjectItemCaseSensitive(fields, "fallback_offset"), "fallback_offset",
		  js_fallback_parse, "earliest, latest", &e))
		spec->fallback_offset = (enum js_fallback)e;
	if (wenum(&w, cJSON_GetObjectItemCaseSensitive(fields, "consistency"), "consistency", wconsistency_parse,
		  "ATLEAST, EXACTLY", &e))
		spec->consistency = (enum js_consistency)e;
	wcopy(&w, cJSON_GetObjectItemCaseSensitive(fields, "database"), "database", true, &spec->database);
	wcopy(&w, cJSON_GetObjectItemCaseSensitive(fields, "schema"), "schema", false, &spec->schema);
	if (spec->schema != NULL && spec->schema[0] == '\0') {
		free(spec->schema);
		spec->schema = NULL;
	}
	if (spec->schema == NULL && (spec->schema = strdup("public")) == NULL)
		werr(&w, "schema", "out of memory");
	wcopy(&w, cJSON_GetObjectItemCaseSensitive(fields, "table"), "table", true, &spec->table);
	wcopy(&w, cJSON_GetObjectItemCaseSensitive(fields, "account"), "account", true, &spec->user);
	wcopy(&w, cJSON_GetObjectItemCaseSensitive(fields, "password"), "password", false, &spec->password);
	wtls(&w, fields, spec);
	if (wenum(&w, cJSON_GetObjectItemCaseSensitive(fields, "write_mode"), "write_mode", js_mode_parse,
		  "INSERT, UPDATE, MERGE", &e))
		spec->mode = (enum js_mode)e;

	v = cJSON_GetObjectItemCaseSensitive(fields, "error_limit");
	if (v != NULL && !cJSON_IsNull(v)) {
		double d = v->valuedouble;

		if (!cJSON_IsNumber(v))
			werr(&w, "error_limit", "must be an integer >= 0, got %s", wtype(v));
		else if (!isfinite(d) || d < 0 || d > 9007199254740992.0 || d != (double)(int64_t)d)
			werr(&w, "error_limit", "must be an integer >= 0, got %g", d);
		else
			spec->error_limit = (int64_t)d;
	}

	v = cJSON_GetObjectItemCaseSensitive(fields, "tasks");
	if (v != NULL && !cJSON_IsNull(v)) {
		double d = v->valuedouble;

		if (!cJSON_IsNumber(v))
			werr(&w, "tasks", "must be an integer between %d and %d (the job's worker processes), got %s",
			     JS_TASKS_MIN, JS_TASKS_MAX, wtype(v));
		else if (!(d >= JS_TASKS_MIN && d <= JS_TASKS_MAX) || d != (double)(int)d)
			werr(&w, "tasks", "must be an integer between %d and %d (the job's worker processes), got %g",
			     JS_TASKS_MIN, JS_TASKS_MAX, d);
		else
			spec->tasks = (int)d;
	}

	spec->value.present = true; /* its format and delimiter come from the data source */
	wfields(&w, cJSON_GetObjectItemCaseSensitive(fields, "fields"), spec);
	if ((spec->mode == JS_MODE_UPDATE || spec->mode == JS_MODE_MERGE) && spec->nmatch_columns == 0 &&
	    spec->value.ncolumns > 0)
		werr(&w, "fields", "write_mode %s needs at least one field with role \"match\" "
		     "(the columns that identify a row)", js_mode_name(spec->mode));
	v = cJSON_GetObjectItemCaseSensitive(fields, "delete_on_tombstone");
	if (v != NULL && !cJSON_IsNull(v) && !cJSON_IsBool(v))
		werr(&w, "delete_on_tombstone", "must be true or false, got %s", wtype(v));
	else if (cJSON_IsTrue(v))
		wtombstones(&w, spec);
	if (spec->nmatch_columns == 0) {
		free(spec->match_columns);
		spec->match_columns = NULL;
	}
	if (spec->nupdate_columns == 0) {
		free(spec->update_columns);
		spec->update_columns = NULL;
	}

	if (w.nerr > 0) {
		jobspec_free(spec);
		return -1;
	}
	*out = spec;
	return 0;
}
