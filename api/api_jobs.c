#include "api_jobs.h"

#include <civetweb.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_check.h"
#include "api_job_tasks.h"
#include "api_job_tools.h"
#include "resolve.h"
#include "runtime.h"
#include "secret.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Keys of a PATCH; a POST (and validate) may also say dry_run. */
static const char *const job_writable[] = {
	"source_id", "name",	"description", "mode",	   "config",	 "group_name",
	"fallback_offset", "consistency", "database", "schema", "table", "account",
	"password", "write_mode", "error_limit", "fields", "sslmode", "sslrootcert",
	"sslcert", "sslkey", "tasks", "delete_on_tombstone", NULL,
};

static const char *const job_create_writable[] = {
	"source_id", "name",	"description", "mode",	   "config",	 "group_name",
	"fallback_offset", "consistency", "database", "schema", "table", "account",
	"password", "write_mode", "error_limit", "fields", "sslmode", "sslrootcert",
	"sslcert", "sslkey", "tasks", "dry_run", "delete_on_tombstone", NULL,
};

static const char *const job_readonly[] = {
	"id",	    "state",	    "desired_state",	 "pid",		 "started_at",
	"restarts", "messages_consumed", "rows_written", "rows_rejected", "last_error",
	"created_at", "updated_at",	 "definition",	 "rows_updated", "batches", NULL,
};

/* The columns a body sets directly; a check (validate, dry run) needs no
 * name. */
static const struct api_field job_fields[] = {
	{ "source_id", true, true, false, 1, API_ID_MAX, NULL },
	{ "name", false, true, false, 1, API_NAME_MAX, NULL },
	{ "description", false, false, true, 0, API_TEXT_MAX, NULL },
	{ "mode", false, true, false, 1, 32, NULL },
};

static const struct api_field job_check_fields[] = {
	{ "source_id", true, true, false, 1, API_ID_MAX, NULL },
	{ "name", false, false, false, 1, API_NAME_MAX, NULL },
	{ "description", false, false, true, 0, API_TEXT_MAX, NULL },
	{ "mode", false, true, false, 1, 32, NULL },
};

/* The wizard fields, in the order responses show them, with their defaults
 * (NULL: none); a secret is shown as SECRET_MASK, which sent back keeps it. */
static const struct {
	const char *name;
	const char *dflt;
	bool secret;
} wizard_fields[] = {
	{ "group_name", NULL, false },	 { "fallback_offset", "earliest", false },
	{ "consistency", "ATLEAST", false }, { "database", NULL, false },
	{ "schema", "public", false },	 { "table", NULL, false },
	{ "account", NULL, false },	 { "password", NULL, true },
	{ "write_mode", "INSERT", false },	 { "error_limit", NULL, false },
	{ "fields", NULL, false },
	{ "sslmode", NULL, false },	 { "sslrootcert", NULL, false },
	{ "sslcert", NULL, false },	 { "sslkey", NULL, true },
	{ "delete_on_tombstone", NULL, false },
};

static const char *api_row_string(const cJSON *row, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, key));
}

static int64_t api_row_int(const cJSON *row, const char *key)
{
	return (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, key));
}

/* The job's tasks as stored (TASKS; 1 for a row without it). */
static int api_job_ntasks(const cJSON *row)
{
	int64_t n = api_row_int(row, "tasks");

	return n >= 1 ? (int)n : 1;
}

/* ---- representation ---- */

/* What the job runs, as YAML with its secrets masked: malloc'd, or NULL
 * with errs (when it cannot be parsed) or err filled. */
static char *api_job_effective_yaml(struct store *st, int64_t id, struct js_errors *errs,
				    int *rc, char *err, size_t errlen)
{
	struct jobspec *spec = NULL;
	char *yaml = NULL;

	*rc = store_job_effective(st, id, &spec, errs, err, errlen);
	if (*rc == 0) {
		yaml = jobspec_to_yaml(spec, true);
		if (yaml == NULL) {
			*rc = STORE_ERROR;
			snprintf(err, errlen, "out of memory");
		}
	}
	jobspec_free(spec);
	return yaml;
}

static cJSON *api_job_repr(struct api_req *req, cJSON *row)
{
	static const char *const head[] = { "id", "source_id", "name", "description", "mode" };
	static const char *const tail[] = { "state", "desired_state", "created_at", "updated_at" };
	const char *mode = api_row_string(row, "mode");
	const char *def = api_row_string(row, "definition");
	cJSON *out = cJSON_CreateObject(), *fields = NULL;

	if (out == NULL || row == NULL)
		goto fail;
	for (size_t i = 0; i < NELEM(head); i++)
		cJSON_AddItemToObject(out, head[i],
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, head[i]),
						      false));
	if (mode != NULL && strcmp(mode, "professional") == 0) {
		struct js_errors *errs = calloc(1, sizeof(*errs)); /* small stacks */
		char err[256];
		int rc;
		char *yaml = errs != NULL ? api_job_effective_yaml(req->st, api_row_int(row, "id"),
								   errs, &rc, err, sizeof(err))
					  : NULL;

		if (yaml != NULL)
			cJSON_AddStringToObject(out, "config", yaml);
		else
			cJSON_AddNullToObject(out, "config");
		free(yaml);
		free(errs);
	} else {
		fields = def != NULL ? cJSON_Parse(def) : NULL;
		for (size_t i = 0; i < NELEM(wizard_fields); i++) {
			const char *name = wizard_fields[i].name;
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, name);

			/* An unset key shows as unset (null), the password always as set. */
			if (wizard_fields[i].secret && (cJSON_IsString(v) || strcmp(name, "password") == 0))
				cJSON_AddStringToObject(out, name, SECRET_MASK);
			else if (v != NULL && !cJSON_IsNull(v))
				cJSON_AddItemToObject(out, name, cJSON_Duplicate(v, true));
			else if (strcmp(name, "error_limit") == 0)
				cJSON_AddNumberToObject(out, name, 0);
			else if (strcmp(name, "fields") == 0)
				cJSON_AddArrayToObject(out, name);
			else if (strcmp(name, "delete_on_tombstone") == 0)
				cJSON_AddFalseToObject(out, name);
			else if (wizard_fields[i].dflt != NULL)
				cJSON_AddStringToObject(out, name, wizard_fields[i].dflt);
			else
				cJSON_AddNullToObject(out, name);
		}
	}
	/* Both modes: the job's worker processes (TASKS). */
	cJSON_AddNumberToObject(out, "tasks", api_job_ntasks(row));
	for (size_t i = 0; i < NELEM(tail); i++)
		cJSON_AddItemToObject(out, tail[i],
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, tail[i]),
						      false));
	api_row_free(fields);
	api_row_free(row);
	return out;
fail:
	cJSON_Delete(out);
	api_row_free(row);
	return NULL;
}

/* A rate for JSON: two decimals are plenty. */
static double api_rate(double r)
{
	return (double)(int64_t)(r * 100.0 + 0.5) / 100.0;
}

/* "lag": {"total", "partitions": [{"partition", "lag"}], "updated_at"}: the
 * worker's last report (null total and updated_at before any). */
static cJSON *api_job_lag(const struct runtime_view *rv)
{
	cJSON *lag = cJSON_CreateObject();
	cJSON *parts = cJSON_CreateArray();

	if (lag == NULL || parts == NULL) {
		cJSON_Delete(lag);
		cJSON_Delete(parts);
		return NULL;
	}
	if (rv->lag_known)
		cJSON_AddNumberToObject(lag, "total", (double)rv->lag_total);
	else
		cJSON_AddNullToObject(lag, "total");
	for (size_t i = 0; i < rv->nlag; i++) {
		cJSON *p = cJSON_CreateObject();

		if (p == NULL)
			break;
		cJSON_AddNumberToObject(p, "partition", rv->lag[i].partition);
		if (rv->lag[i].lag >= 0)
			cJSON_AddNumberToObject(p, "lag", (double)rv->lag[i].lag);
		else
			cJSON_AddNullToObject(p, "lag");
		cJSON_AddItemToArray(parts, p);
	}
	cJSON_AddItemToObject(lag, "partitions", parts);
	if (rv->lag_updated_at[0] != '\0')
		cJSON_AddStringToObject(lag, "updated_at", rv->lag_updated_at);
	else
		cJSON_AddNullToObject(lag, "updated_at");
	return lag;
}

/* The status object of GET /api/v1/jobs/ID/status, from a job row (borrowed)
 * and the supervisor's in-memory figures (common/runtime.h).  rv is scratch
 * space (large: the lag list). */
static cJSON *api_job_status_with(const cJSON *row, struct runtime_view *rv)
{
	static const char *const keys[] = { "id",	    "name",	 "state",
					    "desired_state", "pid",	 "started_at",
					    "restarts",	    "messages_consumed", "rows_written",
					    "rows_updated",  "rows_rejected", "batches",
					    "last_error",   "last_exit" };
	cJSON *out = cJSON_CreateObject();

	for (size_t i = 0; out != NULL && i < NELEM(keys); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, keys[i]);

		/* pid 0 and an empty error mean "none". */
		if ((strcmp(keys[i], "pid") == 0 && cJSON_GetNumberValue(v) == 0) ||
		    (cJSON_IsString(v) && v->valuestring[0] == '\0' &&
		     (strcmp(keys[i], "last_error") == 0 || strcmp(keys[i], "last_exit") == 0)))
			cJSON_AddNullToObject(out, keys[i]);
		else
			cJSON_AddItemToObject(out, keys[i],
					      v != NULL ? cJSON_Duplicate(v, false) : cJSON_CreateNull());
		if (strcmp(keys[i], "batches") != 0)
			continue;
		runtime_job_get(api_row_int(row, "id"), rv);
		cJSON_AddNumberToObject(out, "rows_per_second", api_rate(rv->rows_per_second));
		cJSON_AddNumberToObject(out, "messages_per_second",
					api_rate(rv->messages_per_second));
		if (rv->last_batch_at[0] != '\0')
			cJSON_AddStringToObject(out, "last_batch_at", rv->last_batch_at);
		else
			cJSON_AddNullToObject(out, "last_batch_at");
		cJSON_AddItemToObject(out, "lag", api_job_lag(rv));
		cJSON_AddNumberToObject(out, "rows_deleted", (double)rv->rows_deleted);
		cJSON_AddNumberToObject(out, "tombstones_skipped", (double)rv->tombstones_skipped);
	}
	if (out != NULL)
		api_job_tasks_status(out, api_row_int(row, "id"), api_job_ntasks(row),
				     api_row_string(row, "state"));
	return out;
}

static cJSON *api_job_status(const cJSON *row)
{
	struct runtime_view *rv = malloc(sizeof(*rv)); /* civetweb's small stacks */
	cJSON *out = rv != NULL ? api_job_status_with(row, rv) : NULL;

	free(rv);
	return out;
}

static void api_job_reply_status(struct api_req *req, int status, int64_t id)
{
	char err[512];
	cJSON *row = NULL;
	int rc = store_row_get(req->st, STORE_JOB, id, &row, err, sizeof(err));

	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	api_reply_json(req, status, api_job_status(row));
	api_row_free(row);
}

/* ---- definition ---- */

static bool api_is_wizard_field(const char *name)
{
	for (size_t i = 0; i < NELEM(wizard_fields); i++)
		if (strcmp(wizard_fields[i].name, name) == 0)
			return true;
	return false;
}

static bool api_is_wizard_secret(const char *name)
{
	for (size_t i = 0; i < NELEM(wizard_fields); i++)
		if (strcmp(wizard_fields[i].name, name) == 0)
			return wizard_fields[i].secret;
	return false;
}

/* JSON types of the wizard fields; the rest is jobspec_from_wizard's. */
static void api_wizard_types(const cJSON *body, struct js_errors *errs)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, body) {
		const char *k = item->string;

		if (!api_is_wizard_field(k) || cJSON_IsNull(item))
			continue;
		if (strcmp(k, "error_limit") == 0) {
			if (!cJSON_IsNumber(item) || !api_is_integral(item->valuedouble) ||
			    item->valuedouble < 0 || item->valuedouble > 1e15)
				js_errors_add(errs, 0, k, "error_limit must be an integer, 0 or more");
		} else if (strcmp(k, "fields") == 0) {
			if (!cJSON_IsArray(item))
				js_errors_add(errs, 0, k,
					      "fields must be an array of {\"source\", \"dest\", "
					      "\"role\"} objects");
		} else if (strcmp(k, "delete_on_tombstone") == 0) {
			if (!cJSON_IsBool(item))
				js_errors_add(errs, 0, k, "delete_on_tombstone must be true or false");
		} else if (!cJSON_IsString(item)) {
			js_errors_add(errs, 0, k, "%s must be a string", k);
		}
	}
}

/* The stored job as a spec, to take its secrets from: a professional job's
 * YAML, or a wizard job's fields (a job turned professional by sending its
 * effective YAML back).  NULL when there is none or it does not parse. */
static struct jobspec *api_stored_spec(const char *stored_mode, const char *stored)
{
	struct js_errors *errs = calloc(1, sizeof(*errs)); /* civetweb's small stacks */
	struct jobspec *spec = NULL;
	cJSON *fields;

	if (errs == NULL || stored_mode == NULL || stored == NULL)
		goto out;
	if (strcmp(stored_mode, "professional") == 0) {
		if (jobspec_parse_yaml(stored, strlen(stored), &spec, errs) < 0)
			spec = NULL;
	} else if ((fields = cJSON_Parse(stored)) != NULL) {
		if (jobspec_from_wizard(fields, &spec, errs) < 0)
			spec = NULL;
		api_row_free(fields);
	}
out:
	free(errs);
	return spec;
}

/* A config sent back as GET shows it, with SECRET_MASK for a secret, keeps
 * the stored secret (jobspec_keep_secrets); a masked secret property the job
 * did not store is left to the source.  *masked_password: PASSWORD is still
 * the mask (none was stored to keep; it must never be stored as the
 * password).  Returns the text to store (malloc'd), or NULL to store the new
 * text as it is. */
static char *api_config_keep_secrets(const char *config, const char *stored_mode,
				     const char *stored, bool *masked_password)
{
	struct jobspec *nspec = NULL, *ospec = NULL;
	struct js_errors *errs = NULL;
	char *out = NULL;

	*masked_password = false;
	if (strstr(config, SECRET_MASK) == NULL)
		return NULL;
	errs = calloc(1, sizeof(*errs)); /* civetweb's small stacks */
	if (errs == NULL || jobspec_parse_yaml(config, strlen(config), &nspec, errs) < 0)
		goto out;
	ospec = api_stored_spec(stored_mode, stored);
	if (jobspec_keep_secrets(nspec, ospec) == 1)
		out = jobspec_to_yaml(nspec, false);
	*masked_password = secret_is_mask(nspec->password);
out:
	jobspec_free(nspec);
	jobspec_free(ospec);
	free(errs);
	return out;
}

/* A wizard secret sent back as "****" when the stored wizard fields do not
 * hold it (the job was professional, or it is a new job): the value of the
 * stored job in its other mode, or NULL.  Never the mask itself. */
static char *api_wizard_secret_elsewhere(const char *name, const char *stored_mode,
					 const char *stored_def)
{
	struct jobspec *spec = api_stored_spec(stored_mode, stored_def);
	const char *v = NULL;
	char *copy = NULL;

	if (spec != NULL)
		v = strcmp(name, "password") == 0 ? spec->password : spec->sslkey;
	if (v != NULL && !secret_is_mask(v))
		copy = strdup(v);
	jobspec_free(spec);
	return copy;
}

/* The wizard fields to store: the stored ones (same mode) with body's
 * changes.  A secret sent back as shown ("****") keeps the stored one; with
 * none stored, a key is left to the service and a password is a 422 (the
 * mask must never be stored as the password).  Returns NULL after replying. */
static char *api_wizard_definition(struct api_req *req, const cJSON *body, const char *stored_mode,
				   const char *stored_def, bool same_mode)
{
	const cJSON *item;
	cJSON *fields = same_mode && stored_def != NULL ? cJSON_Parse(stored_def) : NULL;
	char *text;

	if (!cJSON_IsObject(fields)) {
		api_row_free(fields);
		fields = cJSON_CreateObject();
	}
	if (fields == NULL)
		goto oom;
	cJSON_ArrayForEach(item, body) {
		const cJSON *old = cJSON_GetObjectItemCaseSensitive(fields, item->string);

		if (!api_is_wizard_field(item->string) && strcmp(item->string, "tasks") != 0)
			continue;
		if (api_is_wizard_secret(item->string) && cJSON_IsString(item) &&
		    secret_is_mask(item->valuestring)) {
			char *kept;

			if (cJSON_IsString(old))
				continue; /* the stored one stays */
			kept = api_wizard_secret_elsewhere(item->string, stored_mode, stored_def);
			if (old != NULL)
				api_row_free(cJSON_DetachItemFromObjectCaseSensitive(fields, item->string));
			if (kept != NULL) {
				cJSON_AddStringToObject(fields, item->string, kept);
				explicit_bzero(kept, strlen(kept));
				free(kept);
			} else if (strcmp(item->string, "password") == 0) {
				api_row_free(fields);
				api_reply_error(req, 422, item->string,
						"%s: \"" SECRET_MASK "\" keeps a stored password, and "
						"there is none; give the password itself",
						item->string);
				return NULL;
			}
			continue;
		}
		if (old != NULL)
			api_row_free(cJSON_DetachItemFromObjectCaseSensitive(fields, item->string));
		if (!cJSON_IsNull(item))
			cJSON_AddItemToObject(fields, item->string, cJSON_Duplicate(item, true));
	}
	text = cJSON_PrintUnformatted(fields);
	api_row_free(fields);
	if (text != NULL)
		return text;
oom:
	api_reply_error(req, 500, NULL, "out of memory");
	return NULL;
}

enum api_job_purpose {
	API_JOB_CREATE, /* POST /api/v1/jobs (a dry run only checks) */
	API_JOB_CHANGE, /* PATCH /api/v1/jobs/ID */
	API_JOB_CHECK,	/* POST /api/v1/jobs/validate */
};

/* What a POST or PATCH asks for, checked and merged with the stored job. */
struct api_job_change {
	cJSON *in;	  /* writable columns for the store */
	char *definition; /* text to store; holds the password */
	const char *mode; /* "wizard" or "professional" */
	const char *name; /* NULL when a check leaves it out */
	int64_t source_id;
	bool check_only;	/* validate or dry run: answer, store nothing */
	struct js_errors *errs; /* what is wrong with the definition */
	struct jobspec *spec;	/* resolved, when errs is empty */
};

static void api_job_change_free(struct api_job_change *ch)
{
	api_row_free(ch->in);
	if (ch->definition != NULL) {
		explicit_bzero(ch->definition, strlen(ch->definition));
		free(ch->definition);
	}
	free(ch->errs);
	jobspec_free(ch->spec);
}

/* The mode a body names, as stored; "basic" is the console's name for the
 * wizard.  NULL when it names none. */
static const char *api_job_mode(struct api_req *req, const cJSON *in, int *rc)
{
	const char *mode = api_row_string(in, "mode");

	*rc = 0;
	if (mode == NULL)
		return NULL;
	if (strcmp(mode, "professional") == 0)
		return "professional";
	if (strcmp(mode, "wizard") == 0 || strcmp(mode, "basic") == 0)
		return "wizard";
	api_reply_error(req, 422, "mode", "mode must be wizard or professional, not \"%s\"", mode);
	*rc = -1;
	return NULL;
}

/* A body's "tasks" in professional mode sets TASKS in the definition (a
 * YAML that does not parse is left for the resolve to report).  Returns 0,
 * or -1 after replying. */
static int api_job_config_tasks(struct api_req *req, const cJSON *body, struct api_job_change *ch)
{
	bool present;
	int tasks;
	char *text;

	if (api_job_body_tasks(req, body, &tasks, &present) < 0)
		return -1;
	if (!present || ch->definition == NULL)
		return 0;
	text = api_config_set_tasks(ch->definition, tasks);
	if (text == NULL)
		return 0;
	explicit_bzero(ch->definition, strlen(ch->definition));
	free(ch->definition);
	ch->definition = text;
	return 0;
}

/* The professional-mode definition: config, or the stored one. */
static int api_job_config_definition(struct api_req *req, const cJSON *body,
				     const char *stored_mode, const char *stored_def,
				     bool same_mode, struct api_job_change *ch)
{
	const cJSON *item;
	const char *config;
	bool masked = false;

	cJSON_ArrayForEach(item, body) {
		if (api_is_wizard_field(item->string)) {
			api_reply_error(req, 422, item->string,
					"%s is a wizard-mode field; a professional-mode job "
					"sets everything in config",
					item->string);
			return -1;
		}
	}
	if (api_get_string(req, body, "config", !same_mode, 1, API_BODY_MAX, true, &config) < 0)
		return -1;
	if (config == NULL)
		ch->definition = strdup(stored_def != NULL ? stored_def : "");
	else
		ch->definition = api_config_keep_secrets(config, stored_mode, stored_def, &masked);
	if (ch->definition == NULL && config != NULL)
		ch->definition = strdup(config);
	if (masked) {
		api_reply_error(req, 422, "config",
				"PASSWORD: '" SECRET_MASK "' keeps a stored password, and this job has "
				"none; give the password itself");
		return -1;
	}
	return api_job_config_tasks(req, body, ch);
}

/* Checks the common fields and builds the definition; problems with the
 * definition itself go to ch->errs.  row: the stored job (NULL unless
 * purpose is API_JOB_CHANGE).  Returns 0, or -1 after replying. */
static int api_job_build(struct api_req *req, const cJSON *body, const cJSON *row,
			 enum api_job_purpose purpose, struct api_job_change *ch)
{
	const char *stored_mode = row ? api_row_string(row, "mode") : NULL;
	const char *stored_def = row ? api_row_string(row, "definition") : NULL;
	bool dry_query = false, dry_body = false, same_mode;
	int rc;

	ch->in = cJSON_CreateObject();
	ch->errs = calloc(1, sizeof(*ch->errs)); /* large for civetweb's small stacks */
	if (ch->in == NULL || ch->errs == NULL)
		goto oom;
	if (api_check_keys(req, body, row != NULL ? job_writable : job_create_writable,
			   job_readonly, "a job") < 0)
		return -1;
	if (purpose == API_JOB_CREATE && (api_query_bool(req, "dry_run", &dry_query) < 0 ||
					  api_get_bool(req, body, "dry_run", &dry_body) < 0))
		return -1;
	ch->check_only = purpose == API_JOB_CHECK || dry_query || dry_body;
	if (api_copy_fields(req, body, row == NULL, ch->check_only ? job_check_fields : job_fields,
			    NELEM(job_fields), ch->in) < 0)
		return -1;
	ch->source_id = cJSON_GetObjectItemCaseSensitive(ch->in, "source_id") != NULL
				? api_row_int(ch->in, "source_id")
				: api_row_int(row, "source_id");
	ch->name = api_row_string(ch->in, "name");
	if (ch->name == NULL)
		ch->name = api_row_string(row, "name");
	ch->mode = api_job_mode(req, ch->in, &rc);
	if (rc < 0)
		return -1;
	if (ch->mode == NULL)
		ch->mode = stored_mode;
	same_mode = stored_mode != NULL && strcmp(ch->mode, stored_mode) == 0;
	cJSON_DeleteItemFromObjectCaseSensitive(ch->in, "mode");
	cJSON_AddStringToObject(ch->in, "mode", ch->mode);

	if (strcmp(ch->mode, "professional") == 0) {
		if (api_job_config_definition(req, body, stored_mode, stored_def, same_mode, ch) < 0)
			return -1;
	} else if (cJSON_GetObjectItemCaseSensitive(body, "config") != NULL) {
		api_reply_error(req, 422, "config",
				"config is for professional-mode jobs; a wizard-mode job takes "
				"the wizard fields");
		return -1;
	} else {
		api_wizard_types(body, ch->errs);
		if (ch->errs->count > 0)
			return 0;
		ch->definition = api_wizard_definition(req, body, stored_mode, stored_def, same_mode);
		return ch->definition != NULL ? 0 : -1;
	}
	if (ch->definition != NULL)
		return 0;
oom:
	api_reply_error(req, 500, NULL, "out of memory");
	return -1;
}

/* Resolves the definition against its source and service into ch->spec, or
 * every problem into ch->errs.  Returns 0, or -1 after replying (no such
 * source: 422). */
static int api_job_resolve(struct api_req *req, struct api_job_change *ch)
{
	cJSON *source = NULL, *service = NULL;
	char err[512];
	int rc;

	rc = store_row_get(req->st, STORE_SOURCE, ch->source_id, &source, err, sizeof(err));
	if (rc == STORE_NOT_FOUND) {
		api_reply_error(req, 422, "source_id", "source_id: no source with id %lld",
				(long long)ch->source_id);
		return -1;
	}
	if (rc == 0)
		rc = store_row_get(req->st, STORE_SERVICE, api_row_int(source, "service_id"),
				   &service, err, sizeof(err));
	if (rc < 0)
		api_reply_store(req, rc, NULL, err);
	else if (ch->errs->count == 0 &&
		 resolve_job(ch->mode, ch->definition, source, service, true, &ch->spec,
			     ch->errs) < 0 &&
		 ch->errs->count == 0)
		js_errors_add(ch->errs, 0, NULL, "the job cannot be resolved (out of memory?)");
	cJSON_Delete(source);
	cJSON_Delete(service);
	return rc < 0 ? -1 : 0;
}

/* ---- checks against the database ---- */

/* "kafka": {"checked", "brokers", "topic", "partitions", "partitions_read"}
 * of a check's answer: checked is whether the brokers answered (the
 * partitions are null when not). */
static int api_job_add_kafka(cJSON *root, const struct jobspec *spec, const cJSON *found)
{
	cJSON *k = cJSON_AddObjectToObject(root, "kafka");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(found, "partitions");
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(found, "partitions_read");

	if (k == NULL || cJSON_AddBoolToObject(k, "checked", cJSON_IsNumber(n)) == NULL ||
	    cJSON_AddStringToObject(k, "brokers", spec->brokers != NULL ? spec->brokers : "") == NULL ||
	    cJSON_AddStringToObject(k, "topic", spec->topic != NULL ? spec->topic : "") == NULL)
		return -1;
	if ((cJSON_IsNumber(n) ? cJSON_AddNumberToObject(k, "partitions", n->valuedouble)
			       : cJSON_AddNullToObject(k, "partitions")) == NULL ||
	    (cJSON_IsNumber(r) ? cJSON_AddNumberToObject(k, "partitions_read", r->valuedouble)
			       : cJSON_AddNullToObject(k, "partitions_read")) == NULL)
		return -1;
	return 0;
}

/* 200 {"valid", "database_checked", "errors", "statements", "kafka"}: the
 * definition's problems, or when there are none the worker's check. */
static void api_job_reply_check(struct api_req *req, const struct api_job_change *ch, int64_t id)
{
	struct api_check chk;
	cJSON *root;

	memset(&chk, 0, sizeof(chk));
	if (ch->spec != NULL) {
		api_check_run(req->ops->worker_path, ch->spec, id, ch->name, true, &chk);
	} else {
		chk.errors = cJSON_CreateArray();
		chk.statements = cJSON_CreateArray();
		for (size_t i = 0; i < ch->errs->count; i++) {
			const struct js_error *e = &ch->errs->items[i];

			cJSON_AddItemToArray(chk.errors,
					     api_check_error(e->path[0] != '\0' ? e->path : NULL,
							     e->line, "invalid", e->message));
		}
	}
	root = cJSON_CreateObject();
	if (root == NULL || chk.errors == NULL || chk.statements == NULL) {
		api_check_free(&chk);
		cJSON_Delete(root);
		api_reply_json(req, 500, NULL);
		return;
	}
	cJSON_AddBoolToObject(root, "valid", chk.valid);
	cJSON_AddBoolToObject(root, "database_checked", chk.database_checked);
	cJSON_AddItemToObject(root, "errors", chk.errors);
	if (ch->errs->truncated)
		cJSON_AddTrueToObject(root, "errors_truncated");
	cJSON_AddItemToObject(root, "statements", chk.statements);
	chk.errors = chk.statements = NULL;
	if (ch->spec != NULL && api_job_add_kafka(root, ch->spec, chk.kafka) < 0) {
		api_check_free(&chk);
		cJSON_Delete(root);
		api_reply_json(req, 500, NULL);
		return;
	}
	api_check_free(&chk);
	api_reply_json(req, 200, root);
}

/* UPDATE and MERGE need MATCH_COLUMNS that are the target's primary key or a
 * unique index: ask the database.  Its other findings do not block (the
 * table may be made later), nor does a database that cannot be reached (the
 * worker checks again when it starts).  Returns 0, or -1 after replying 422. */
static int api_job_check_keys(struct api_req *req, struct api_job_change *ch, int64_t id)
{
	static const char match[] = "KAFKA.OUTPUT.MATCH_COLUMNS";
	struct api_check chk;
	const cJSON *e;

	if (ch->spec->mode != JS_MODE_UPDATE && ch->spec->mode != JS_MODE_MERGE)
		return 0;
	/* The brokers are not asked: a job may be made before its topic. */
	api_check_run(req->ops->worker_path, ch->spec, id, ch->name, false, &chk);
	cJSON_ArrayForEach(e, chk.errors) {
		const char *field = api_row_string(e, "field");
		const char *code = api_row_string(e, "code");

		if (code == NULL || strcmp(code, "not_unique") != 0)
			continue;
		if (field == NULL || strncmp(field, match, sizeof(match) - 1) != 0)
			field = match;
		js_errors_add(ch->errs, jobspec_line(ch->spec, field), field, "%s",
			      api_row_string(e, "message") != NULL ? api_row_string(e, "message")
								    : "not unique");
	}
	api_check_free(&chk);
	if (ch->errs->count == 0)
		return 0;
	api_reply_job_invalid(req, ch->errs);
	return -1;
}

/* ---- handlers ---- */

/* POST /api/v1/jobs (row NULL), PATCH /api/v1/jobs/ID, and validate. */
static void api_job_write_for(struct api_req *req, const cJSON *body, const cJSON *row,
			      int64_t id, enum api_job_purpose purpose)
{
	struct api_job_change ch;
	char err[512];
	int rc;

	memset(&ch, 0, sizeof(ch));
	if (api_job_build(req, body, row, purpose, &ch) < 0)
		goto out;
	/* A definition already known to be wrong is refused before its source
	 * is looked at; a check reports both. */
	if ((ch.check_only || ch.errs->count == 0) && api_job_resolve(req, &ch) < 0)
		goto out;
	if (ch.check_only) {
		api_job_reply_check(req, &ch, id);
		goto out;
	}
	if (ch.errs->count > 0) {
		api_reply_job_invalid(req, ch.errs);
		goto out;
	}
	if (api_job_check_keys(req, &ch, id) < 0)
		goto out;
	cJSON_AddStringToObject(ch.in, "definition", ch.definition);
	cJSON_AddNumberToObject(ch.in, "tasks", ch.spec->tasks);
	rc = row == NULL ? store_row_create(req->st, STORE_JOB, ch.in, &id, err, sizeof(err))
			 : store_row_update(req->st, STORE_JOB, id, ch.in, err, sizeof(err));
	if (rc < 0)
		api_reply_store(req, rc, "source_id", err);
	else
		api_resource_reply_row(req, &api_jobs, row == NULL ? 201 : 200, id);
out:
	api_job_change_free(&ch);
}

static bool api_job_at_rest(const cJSON *row)
{
	const char *state = api_row_string(row, "state");
	const char *desired = api_row_string(row, "desired_state");

	return state == NULL || desired == NULL || strcmp(state, "failed") == 0 ||
	       (strcmp(state, "stopped") == 0 && strcmp(desired, "stopped") == 0);
}

static void api_job_reply_row(struct api_req *req, int64_t id)
{
	api_resource_reply_row(req, &api_jobs, 200, id);
}

static void api_job_write(struct api_req *req, const cJSON *body, const cJSON *row, int64_t id)
{
	/* A job that runs changes its tasks only (the store checks the rest
	 * again under its lock). */
	if (row != NULL && !api_job_at_rest(row))
		api_job_patch_running(req, body, row, id, api_job_reply_row);
	else
		api_job_write_for(req, body, row, id, row == NULL ? API_JOB_CREATE : API_JOB_CHANGE);
}

const struct api_resource api_jobs = {
	.kind = STORE_JOB,
	.repr = api_job_repr,
	.write = api_job_write,
};

/* GET /api/v1/jobs/status: every job's status object, ordered by id, in one
 * call (the status page, streamctl); no paging. */
static void api_jobs_status_all(struct api_req *req)
{
	struct runtime_view *rv = NULL;
	cJSON *rows = NULL, *items = NULL, *row, *root = NULL;
	int64_t total = 0;
	char err[512];
	int rc;

	if (strcmp(req->method, "GET") != 0) {
		api_reply_method(req, "GET");
		return;
	}
	rc = store_row_list(req->st, STORE_JOB, 0, INT64_MAX, &rows, &total, err, sizeof(err));
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	rv = malloc(sizeof(*rv));
	items = cJSON_CreateArray();
	root = cJSON_CreateObject();
	if (rv == NULL || items == NULL || root == NULL)
		goto oom;
	while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL) {
		cJSON *status = api_job_status_with(row, rv);

		api_row_free(row); /* the definition holds the password */
		if (status == NULL)
			goto oom;
		cJSON_AddItemToArray(items, status);
	}
	cJSON_AddItemToObject(root, "items", items);
	items = NULL;
	cJSON_AddNumberToObject(root, "total", (double)total);
	api_reply_json(req, 200, root);
	root = NULL;
	goto out;
oom:
	api_reply_error(req, 500, NULL, "out of memory");
out:
	cJSON_Delete(root);
	cJSON_Delete(items);
	while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL)
		api_row_free(row);
	cJSON_Delete(rows);
	free(rv);
}

bool api_jobs_word(struct api_req *req, const char *word)
{
	cJSON *body;

	if (strcmp(word, "status") == 0) {
		api_jobs_status_all(req);
		return true;
	}
	if (strcmp(word, "validate") != 0)
		return false;
	if (strcmp(req->method, "POST") != 0) {
		api_reply_method(req, "POST");
		return true;
	}
	body = api_req_body(req);
	if (body != NULL)
		api_job_write_for(req, body, NULL, 0, API_JOB_CHECK);
	api_row_free(body);
	return true;
}

/* Asks the store for a change of desired state; 202 with the status. */
static void api_job_want(struct api_req *req, int64_t id,
			 int (*change)(struct store *, int64_t, char *, size_t))
{
	char err[512];
	int rc = change(req->st, id, err, sizeof(err));

	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	api_wake(req);
	api_job_reply_status(req, 202, id);
}

/* The optional body of a start: {"reset": {...}}.  *reset is NULL without
 * one.  Returns 0, or -1 after replying. */
static int api_job_start_body(struct api_req *req, cJSON **body, const cJSON **reset)
{
	static const char *const writable[] = { "reset", NULL };
	const struct mg_request_info *ri = mg_get_request_info(req->conn);

	*body = NULL;
	*reset = NULL;
	if (ri->content_length <= 0)
		return 0;
	*body = api_req_body(req);
	if (*body == NULL)
		return -1;
	if (api_check_keys(req, *body, writable, NULL, "a job start") < 0)
		return -1;
	*reset = cJSON_GetObjectItemCaseSensitive(*body, "reset");
	if (cJSON_IsNull(*reset))
		*reset = NULL;
	return 0;
}

static void api_job_start(struct api_req *req, int64_t id)
{
	struct jobspec *spec = NULL;
	struct js_errors *errs;
	char err[1024];
	cJSON *row = NULL, *body = NULL, *answer = NULL;
	const cJSON *reset = NULL;
	const char *state, *desired;
	bool busy;
	int rc;

	if (api_job_start_body(req, &body, &reset) < 0)
		goto out;
	rc = store_row_get(req->st, STORE_JOB, id, &row, err, sizeof(err));
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		goto out;
	}
	state = api_row_string(row, "state");
	desired = api_row_string(row, "desired_state");
	busy = desired != NULL && strcmp(desired, "running") == 0 && state != NULL &&
	       strcmp(state, "stopped") != 0 && strcmp(state, "failed") != 0;
	api_row_free(row);
	row = NULL;
	if (busy && reset == NULL) {
		api_job_reply_status(req, 202, id);
		goto out;
	}
	/* The source or the service may have changed since the job was written:
	 * say so now rather than through a failed worker. */
	errs = calloc(1, sizeof(*errs));
	if (errs == NULL) {
		api_reply_error(req, 500, NULL, "out of memory");
		goto out;
	}
	rc = store_job_resolve(req->st, id, &spec, errs, err, sizeof(err));
	jobspec_free(spec);
	if (rc == STORE_INVALID)
		api_reply_job_invalid(req, errs);
	else if (rc < 0)
		api_reply_store(req, rc, NULL, err);
	else if (reset == NULL || api_job_reset_run(req, id, reset, "reset.", &answer) == 0)
		api_job_want(req, id, store_job_start);
	free(errs);
out:
	cJSON_Delete(answer);
	cJSON_Delete(body);
}

static void api_job_stop(struct api_req *req, int64_t id)
{
	api_job_want(req, id, store_job_stop);
}

static void api_job_status_action(struct api_req *req, int64_t id)
{
	api_job_reply_status(req, 200, id);
}

/* The effective YAML, for wizard jobs too: what turns one into a
 * professional job. */
static void api_job_config(struct api_req *req, int64_t id)
{
	struct js_errors *errs = calloc(1, sizeof(*errs));
	char err[512];
	char *yaml;
	int rc = STORE_ERROR;

	if (errs == NULL) {
		api_reply_error(req, 500, NULL, "out of memory");
		return;
	}
	yaml = api_job_effective_yaml(req->st, id, errs, &rc, err, sizeof(err));
	if (yaml != NULL)
		api_reply_text(req, 200, "application/yaml", yaml, strlen(yaml));
	else if (rc == STORE_INVALID)
		api_reply_job_invalid(req, errs);
	else
		api_reply_store(req, rc, NULL, err);
	free(yaml);
	free(errs);
}

void api_job_action(struct api_req *req, int64_t id, const char *action)
{
	static const struct {
		const char *name;
		const char *method;
		void (*run)(struct api_req *, int64_t);
	} actions[] = {
		{ "status", "GET", api_job_status_action },
		{ "config", "GET", api_job_config },
		{ "start", "POST", api_job_start },
		{ "stop", "POST", api_job_stop },
		{ "errors", "GET", api_job_errors },
		{ "offsets", "GET", api_job_offsets },
		{ "offsets/reset", "POST", api_job_offsets_reset },
	};

	for (size_t i = 0; i < NELEM(actions); i++) {
		if (strcmp(action, actions[i].name) != 0)
			continue;
		if (strcmp(req->method, actions[i].method) != 0)
			api_reply_method(req, actions[i].method);
		else
			actions[i].run(req, id);
		return;
	}
	api_reply_error(req, 404, NULL, "no route %s %s", req->method, req->path);
}
