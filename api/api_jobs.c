#include "api_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"

#define API_ID_MAX ((int64_t)1 << 53)
#define API_PASSWORD_MASK "****"

static const char *const job_writable[] = {
	"source_id", "name",	"description", "mode",	   "config",	 "group_name",
	"fallback_offset", "consistency", "database", "schema", "table", "account",
	"password", "write_mode", "error_limit", "fields", NULL,
};

static const char *const job_readonly[] = {
	"id",	    "state",	    "desired_state",	 "pid",		 "started_at",
	"restarts", "messages_consumed", "rows_written", "rows_rejected", "last_error",
	"created_at", "updated_at",	 "definition",	 NULL,
};

/* The wizard fields, in the order responses show them, with their defaults
 * (NULL: none). */
static const struct {
	const char *name;
	const char *dflt;
} wizard_fields[] = {
	{ "group_name", NULL }, { "fallback_offset", "earliest" }, { "consistency", "ATLEAST" },
	{ "database", NULL },	{ "schema", "public" },		   { "table", NULL },
	{ "account", NULL },	{ "password", NULL },		   { "write_mode", "INSERT" },
	{ "error_limit", NULL }, { "fields", NULL },
};

#define NWIZARD (sizeof(wizard_fields) / sizeof(wizard_fields[0]))

static const char *api_row_string(const cJSON *row, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, key));
}

static int64_t api_row_int(const cJSON *row, const char *key)
{
	return (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, key));
}

static void api_wipe_string(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Frees a row or wizard object after wiping its secrets. */
static void api_job_row_free(cJSON *row)
{
	cJSON *def = cJSON_GetObjectItemCaseSensitive(row, "definition");
	cJSON *pw = cJSON_GetObjectItemCaseSensitive(row, "password");

	if (cJSON_IsString(def) && def->valuestring != NULL)
		explicit_bzero(def->valuestring, strlen(def->valuestring));
	if (cJSON_IsString(pw) && pw->valuestring != NULL)
		explicit_bzero(pw->valuestring, strlen(pw->valuestring));
	cJSON_Delete(row);
}

/* ---- representation ---- */

static char *api_job_masked_config(struct store *st, int64_t id, const char *stored)
{
	struct jobspec *spec = NULL;
	struct js_errors *errs = calloc(1, sizeof(*errs));
	char err[256];
	char *yaml = NULL;

	if (errs == NULL)
		return NULL;
	if (store_job_resolve(st, id, &spec, errs, err, sizeof(err)) < 0) {
		/* No longer valid against its source: show what was stored, masked. */
		memset(errs, 0, sizeof(*errs));
		spec = NULL;
		if (stored == NULL || jobspec_parse_yaml(stored, strlen(stored), &spec, errs) < 0)
			goto out;
	}
	yaml = jobspec_to_yaml(spec, true);
out:
	jobspec_free(spec);
	free(errs);
	return yaml;
}

cJSON *api_job_repr(struct store *st, cJSON *row)
{
	static const char *const head[] = { "id", "source_id", "name", "description", "mode" };
	static const char *const tail[] = { "state", "desired_state", "created_at", "updated_at" };
	const char *mode = api_row_string(row, "mode");
	const char *def = api_row_string(row, "definition");
	cJSON *out = cJSON_CreateObject(), *fields = NULL;

	if (out == NULL || row == NULL)
		goto fail;
	for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
		cJSON_AddItemToObject(out, head[i],
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, head[i]),
						      false));
	if (mode != NULL && strcmp(mode, "professional") == 0) {
		char *yaml = api_job_masked_config(st, api_row_int(row, "id"), def);

		if (yaml != NULL)
			cJSON_AddStringToObject(out, "config", yaml);
		else
			cJSON_AddNullToObject(out, "config");
		free(yaml);
	} else {
		fields = def != NULL ? cJSON_Parse(def) : NULL;
		for (size_t i = 0; i < NWIZARD; i++) {
			const char *name = wizard_fields[i].name;
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, name);

			if (strcmp(name, "password") == 0)
				cJSON_AddStringToObject(out, name, API_PASSWORD_MASK);
			else if (v != NULL && !cJSON_IsNull(v))
				cJSON_AddItemToObject(out, name, cJSON_Duplicate(v, true));
			else if (strcmp(name, "error_limit") == 0)
				cJSON_AddNumberToObject(out, name, 0);
			else if (strcmp(name, "fields") == 0)
				cJSON_AddArrayToObject(out, name);
			else if (wizard_fields[i].dflt != NULL)
				cJSON_AddStringToObject(out, name, wizard_fields[i].dflt);
			else
				cJSON_AddNullToObject(out, name);
		}
	}
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
		cJSON_AddItemToObject(out, tail[i],
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, tail[i]),
						      false));
	api_job_row_free(fields);
	api_job_row_free(row);
	return out;
fail:
	cJSON_Delete(out);
	api_job_row_free(row);
	return NULL;
}

cJSON *api_job_status(const cJSON *row)
{
	static const char *const keys[] = { "id",	    "name",	 "state",
					    "desired_state", "pid",	 "started_at",
					    "restarts",	    "messages_consumed", "rows_written",
					    "rows_rejected", "last_error" };
	cJSON *out = cJSON_CreateObject();

	for (size_t i = 0; out != NULL && i < sizeof(keys) / sizeof(keys[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, keys[i]);

		/* pid 0 and an empty error mean "none". */
		if ((strcmp(keys[i], "pid") == 0 && cJSON_GetNumberValue(v) == 0) ||
		    (cJSON_IsString(v) && v->valuestring[0] == '\0' &&
		     strcmp(keys[i], "last_error") == 0))
			cJSON_AddNullToObject(out, keys[i]);
		else
			cJSON_AddItemToObject(out, keys[i],
					      v != NULL ? cJSON_Duplicate(v, false) : cJSON_CreateNull());
	}
	return out;
}

static void api_job_reply_row(struct api_req *req, int status, int64_t id, bool as_status)
{
	char err[512];
	cJSON *row = NULL;
	int rc = store_job_get(req->st, id, &row, err, sizeof(err));

	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	if (as_status) {
		api_reply_json(req, status, api_job_status(row));
		api_job_row_free(row);
		return;
	}
	api_reply_json(req, status, api_job_repr(req->st, row));
}

/* ---- definition ---- */

static bool api_is_wizard_field(const char *name)
{
	for (size_t i = 0; i < NWIZARD; i++)
		if (strcmp(wizard_fields[i].name, name) == 0)
			return true;
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
		} else if (!cJSON_IsString(item)) {
			js_errors_add(errs, 0, k, "%s must be a string", k);
		}
	}
}

/* In professional mode a config sent back as GET shows it, with PASSWORD
 * '****', keeps the stored password.  Returns the text to store (malloc'd), or
 * NULL to store the new text as it is. */
static char *api_config_keep_password(const char *config, const char *stored)
{
	struct jobspec *nspec = NULL, *ospec = NULL;
	struct js_errors *errs = calloc(1, sizeof(*errs));
	char *out = NULL;

	if (errs == NULL || stored == NULL ||
	    jobspec_parse_yaml(config, strlen(config), &nspec, errs) < 0)
		goto out;
	if (nspec->password == NULL || strcmp(nspec->password, API_PASSWORD_MASK) != 0)
		goto out;
	memset(errs, 0, sizeof(*errs));
	if (jobspec_parse_yaml(stored, strlen(stored), &ospec, errs) < 0 || ospec->password == NULL)
		goto out;
	free(nspec->password);
	nspec->password = strdup(ospec->password);
	if (nspec->password != NULL)
		out = jobspec_to_yaml(nspec, false);
out:
	jobspec_free(nspec);
	jobspec_free(ospec);
	free(errs);
	return out;
}

/* What a POST or PATCH asks for, checked and merged with the stored job. */
struct api_job_change {
	cJSON *in;	/* writable columns for the store */
	char *definition; /* text to store; holds the password */
	const char *mode;
	int64_t source_id;
};

static void api_job_change_free(struct api_job_change *ch)
{
	cJSON_Delete(ch->in);
	api_wipe_string(ch->definition);
}

/* Checks the common fields and builds the definition.  row: the stored job
 * (NULL on create).  Returns 0, or -1 after replying. */
static int api_job_build(struct api_req *req, const cJSON *body, const cJSON *row,
			 struct api_job_change *ch)
{
	const char *name, *desc, *mode, *config;
	const char *stored_mode = row ? api_row_string(row, "mode") : NULL;
	const char *stored_def = row ? api_row_string(row, "definition") : NULL;
	const cJSON *item;
	struct js_errors *errs = NULL;
	cJSON *fields = NULL;
	bool present, same_mode;
	int64_t sid;
	int rc = -1;

	if (api_check_keys(req, body, job_writable, job_readonly, "a job") < 0)
		return -1;
	if (api_get_int(req, body, "source_id", row == NULL, 1, API_ID_MAX, &sid, &present) < 0)
		return -1;
	ch->source_id = present ? sid : api_row_int(row, "source_id");
	if (present)
		cJSON_AddNumberToObject(ch->in, "source_id", (double)sid);
	if (api_get_string(req, body, "name", row == NULL, 1, API_NAME_MAX, false, &name) < 0 ||
	    api_get_string(req, body, "description", false, 0, API_TEXT_MAX, true, &desc) < 0 ||
	    api_get_string(req, body, "mode", row == NULL, 1, 32, false, &mode) < 0)
		return -1;
	if (name != NULL)
		cJSON_AddStringToObject(ch->in, "name", name);
	if (desc != NULL)
		cJSON_AddStringToObject(ch->in, "description", desc);
	if (mode != NULL && strcmp(mode, "basic") == 0)
		mode = "wizard"; /* the console's name for it */
	if (mode != NULL && strcmp(mode, "wizard") != 0 && strcmp(mode, "professional") != 0) {
		api_reply_error(req, 422, "mode", "mode must be wizard or professional, not \"%s\"",
				mode);
		return -1;
	}
	ch->mode = mode != NULL ? mode : stored_mode;
	same_mode = stored_mode != NULL && strcmp(ch->mode, stored_mode) == 0;
	cJSON_AddStringToObject(ch->in, "mode", ch->mode);

	if (strcmp(ch->mode, "professional") == 0) {
		cJSON_ArrayForEach(item, body) {
			if (api_is_wizard_field(item->string)) {
				api_reply_error(req, 422, item->string,
						"%s is a wizard-mode field; a professional-mode job "
						"sets everything in config",
						item->string);
				return -1;
			}
		}
		if (api_get_string(req, body, "config", !same_mode, 1, API_BODY_MAX, true,
				   &config) < 0)
			return -1;
		if (config == NULL) {
			ch->definition = strdup(stored_def != NULL ? stored_def : "");
		} else {
			ch->definition = same_mode ? api_config_keep_password(config, stored_def)
						   : NULL;
			if (ch->definition == NULL)
				ch->definition = strdup(config);
		}
		if (ch->definition == NULL)
			goto oom;
		return 0;
	}

	if (cJSON_GetObjectItemCaseSensitive(body, "config") != NULL) {
		api_reply_error(req, 422, "config",
				"config is for professional-mode jobs; a wizard-mode job takes "
				"the wizard fields");
		return -1;
	}
	errs = calloc(1, sizeof(*errs));
	if (errs == NULL)
		goto oom;
	api_wizard_types(body, errs);
	if (errs->count > 0) {
		api_reply_job_invalid(req, errs);
		goto out;
	}
	fields = same_mode && stored_def != NULL ? cJSON_Parse(stored_def) : NULL;
	if (!cJSON_IsObject(fields)) {
		cJSON_Delete(fields);
		fields = cJSON_CreateObject();
	}
	if (fields == NULL)
		goto oom;
	cJSON_ArrayForEach(item, body) {
		const cJSON *old = cJSON_GetObjectItemCaseSensitive(fields, item->string);

		if (!api_is_wizard_field(item->string))
			continue;
		/* A password sent back as shown keeps the stored one. */
		if (strcmp(item->string, "password") == 0 && cJSON_IsString(item) &&
		    strcmp(item->valuestring, API_PASSWORD_MASK) == 0 && cJSON_IsString(old))
			continue;
		if (old != NULL) {
			cJSON *gone = cJSON_DetachItemFromObjectCaseSensitive(fields, item->string);

			if (cJSON_IsString(gone) && gone->valuestring != NULL)
				explicit_bzero(gone->valuestring, strlen(gone->valuestring));
			cJSON_Delete(gone);
		}
		if (!cJSON_IsNull(item))
			cJSON_AddItemToObject(fields, item->string, cJSON_Duplicate(item, true));
	}
	ch->definition = cJSON_PrintUnformatted(fields);
	if (ch->definition == NULL)
		goto oom;
	rc = 0;
	goto out;
oom:
	api_reply_error(req, 500, NULL, "out of memory");
out:
	api_job_row_free(fields);
	free(errs);
	return rc;
}

/* Resolves the changed job against its source and service; replies 422 with
 * every problem.  Returns 0 or -1. */
static int api_job_check(struct api_req *req, struct api_job_change *ch)
{
	cJSON *source = NULL, *service = NULL;
	struct jobspec *spec = NULL;
	struct js_errors *errs;
	char err[512];
	int rc;

	rc = store_source_get(req->st, ch->source_id, &source, err, sizeof(err));
	if (rc == STORE_NOT_FOUND) {
		api_reply_error(req, 422, "source_id", "source_id: no source with id %lld",
				(long long)ch->source_id);
		return -1;
	}
	if (rc == 0)
		rc = store_service_get(req->st,
				       api_row_int(source, "service_id"), &service, err,
				       sizeof(err));
	if (rc < 0) {
		cJSON_Delete(source);
		api_reply_store(req, rc, NULL, err);
		return -1;
	}
	errs = calloc(1, sizeof(*errs)); /* large for civetweb's small stacks */
	if (errs == NULL) {
		rc = -1;
		api_reply_error(req, 500, NULL, "out of memory");
	} else {
		rc = resolve_job(ch->mode, ch->definition, source, service, &spec, errs);
		if (rc < 0)
			api_reply_job_invalid(req, errs);
	}
	jobspec_free(spec);
	cJSON_Delete(source);
	cJSON_Delete(service);
	free(errs);
	if (rc < 0)
		return -1;
	return 0;
}

/* ---- handlers ---- */

void api_jobs_collection(struct api_req *req)
{
	struct api_job_change ch;
	char err[512];
	int64_t page, page_size, total = 0, id = 0;
	cJSON *items = NULL, *out, *item, *body;
	int rc;

	if (strcmp(req->method, "GET") == 0) {
		if (api_get_paging(req, &page, &page_size) < 0)
			return;
		rc = store_job_list(req->st, (page - 1) * page_size, page_size, &items, &total, err,
				    sizeof(err));
		if (rc < 0) {
			api_reply_store(req, rc, NULL, err);
			return;
		}
		out = cJSON_CreateArray();
		while (out != NULL && (item = cJSON_DetachItemFromArray(items, 0)) != NULL)
			cJSON_AddItemToArray(out, api_job_repr(req->st, item));
		api_job_row_free(items);
		api_reply_list(req, out, total, page, page_size);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_reply_method(req, "GET, POST");
		return;
	}
	body = api_req_body(req);
	if (body == NULL)
		return;
	memset(&ch, 0, sizeof(ch));
	ch.in = cJSON_CreateObject();
	if (api_job_build(req, body, NULL, &ch) == 0 && api_job_check(req, &ch) == 0) {
		cJSON_AddStringToObject(ch.in, "definition", ch.definition);
		rc = store_job_create(req->st, ch.in, &id, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, "source_id", err);
		else
			api_job_reply_row(req, 201, id, false);
	}
	api_job_row_free(body);
	api_job_row_free(ch.in);
	ch.in = NULL;
	api_job_change_free(&ch);
}

void api_job_item(struct api_req *req, int64_t id)
{
	struct api_job_change ch;
	char err[512];
	cJSON *row = NULL, *body = NULL;
	const char *state, *desired;
	int rc;

	if (strcmp(req->method, "GET") == 0) {
		api_job_reply_row(req, 200, id, false);
		return;
	}
	if (strcmp(req->method, "DELETE") == 0) {
		rc = store_job_delete(req->st, id, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, NULL, err);
		else
			api_reply_no_content(req);
		return;
	}
	if (strcmp(req->method, "PATCH") != 0) {
		api_reply_method(req, "GET, PATCH, DELETE");
		return;
	}
	memset(&ch, 0, sizeof(ch));
	rc = store_job_get(req->st, id, &row, err, sizeof(err));
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	/* Checked here to answer before reading the body; the store checks
	 * again under its lock. */
	state = api_row_string(row, "state");
	desired = api_row_string(row, "desired_state");
	if (state != NULL && desired != NULL && strcmp(state, "failed") != 0 &&
	    (strcmp(state, "stopped") != 0 || strcmp(desired, "stopped") != 0)) {
		api_reply_error(req, 409, NULL,
				"job %lld (%s) is %s; stop it first (POST /api/v1/jobs/%lld/stop), "
				"then change it",
				(long long)id, api_row_string(row, "name"), state, (long long)id);
		goto out;
	}
	body = api_req_body(req);
	if (body == NULL)
		goto out;
	ch.in = cJSON_CreateObject();
	if (api_job_build(req, body, row, &ch) == 0 && api_job_check(req, &ch) == 0) {
		cJSON_AddStringToObject(ch.in, "definition", ch.definition);
		rc = store_job_update(req->st, id, ch.in, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, "source_id", err);
		else
			api_job_reply_row(req, 200, id, false);
	}
out:
	api_job_row_free(body);
	api_job_row_free(row);
	api_job_row_free(ch.in);
	ch.in = NULL;
	api_job_change_free(&ch);
}

static void api_job_start(struct api_req *req, int64_t id)
{
	struct jobspec *spec = NULL;
	struct js_errors *errs;
	char err[1024];
	cJSON *row = NULL;
	const char *state, *desired;
	bool busy;
	int rc;

	rc = store_job_get(req->st, id, &row, err, sizeof(err));
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	state = api_row_string(row, "state");
	desired = api_row_string(row, "desired_state");
	busy = desired != NULL && strcmp(desired, "running") == 0 && state != NULL &&
	       strcmp(state, "stopped") != 0 && strcmp(state, "failed") != 0;
	api_job_row_free(row);
	if (!busy) {
		/* The source or the service may have changed since the job was
		 * written: say so now rather than through a failed worker. */
		errs = calloc(1, sizeof(*errs));
		if (errs == NULL) {
			api_reply_error(req, 500, NULL, "out of memory");
			return;
		}
		rc = store_job_resolve(req->st, id, &spec, errs, err, sizeof(err));
		jobspec_free(spec);
		if (rc == STORE_INVALID)
			api_reply_job_invalid(req, errs);
		free(errs);
		if (rc == STORE_INVALID)
			return;
		if (rc < 0) {
			api_reply_store(req, rc, NULL, err);
			return;
		}
		rc = store_job_start(req->st, id, err, sizeof(err));
		if (rc < 0) {
			api_reply_store(req, rc, NULL, err);
			return;
		}
		api_wake(req);
	}
	api_job_reply_row(req, 202, id, true);
}

void api_job_action(struct api_req *req, int64_t id, const char *action)
{
	char err[512];
	int rc;

	if (strcmp(action, "status") == 0) {
		if (strcmp(req->method, "GET") != 0)
			api_reply_method(req, "GET");
		else
			api_job_reply_row(req, 200, id, true);
		return;
	}
	if (strcmp(action, "start") != 0 && strcmp(action, "stop") != 0) {
		api_reply_error(req, 404, NULL, "no route %s %s", req->method, req->path);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_reply_method(req, "POST");
		return;
	}
	if (strcmp(action, "start") == 0) {
		api_job_start(req, id);
		return;
	}
	rc = store_job_stop(req->st, id, err, sizeof(err));
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	api_wake(req);
	api_job_reply_row(req, 202, id, true);
}
