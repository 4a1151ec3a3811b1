#include "api_job_tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime.h"

/* A rate for JSON: two decimals are plenty. */
static double api_tasks_rate(double r)
{
	return (double)(int64_t)(r * 100.0 + 0.5) / 100.0;
}

static int api_int32_cmp(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

static cJSON *api_task_json(const struct runtime_task_view *t)
{
	cJSON *o = cJSON_CreateObject(), *parts;

	if (o == NULL)
		return NULL;
	cJSON_AddNumberToObject(o, "task", t->task);
	if (t->pid > 0)
		cJSON_AddNumberToObject(o, "pid", t->pid);
	else
		cJSON_AddNullToObject(o, "pid");
	cJSON_AddStringToObject(o, "state", t->state);
	cJSON_AddNumberToObject(o, "restarts", (double)t->restarts);
	parts = cJSON_AddArrayToObject(o, "partitions");
	for (size_t i = 0; parts != NULL && i < t->nparts; i++)
		cJSON_AddItemToArray(parts, cJSON_CreateNumber(t->parts[i]));
	cJSON_AddNumberToObject(o, "rows_per_second", api_tasks_rate(t->rows_per_second));
	if (t->lag_known)
		cJSON_AddNumberToObject(o, "lag", (double)t->lag_total);
	else
		cJSON_AddNullToObject(o, "lag");
	if (t->last_error[0] != '\0')
		cJSON_AddStringToObject(o, "last_error", t->last_error);
	else
		cJSON_AddNullToObject(o, "last_error");
	/* Which controller runs it (a cluster); null for a controller alone. */
	if (t->controller[0] != '\0')
		cJSON_AddStringToObject(o, "controller", t->controller);
	else
		cJSON_AddNullToObject(o, "controller");
	return o;
}

void api_job_tasks_status(cJSON *status, int64_t job_id, int ntasks, const char *job_state)
{
	/* As many views as the job has tasks now (each is large: its partition
	 * list); a task added meanwhile waits for the next status. */
	size_t max = runtime_job_tasks(job_id, NULL, 0), n, k = 0, nall = 0;
	struct runtime_task_view *views;
	int32_t *all = NULL;
	cJSON *tasks = cJSON_CreateArray(), *parts = cJSON_CreateArray();
	bool at_rest = job_state == NULL || strcmp(job_state, "stopped") == 0 ||
		       strcmp(job_state, "failed") == 0;

	if (max > JS_TASKS_MAX)
		max = JS_TASKS_MAX;
	views = calloc(max > 0 ? max : 1, sizeof(*views));
	if (views == NULL || tasks == NULL || parts == NULL)
		goto out;
	n = runtime_job_tasks(job_id, views, max);
	if (n > max)
		n = max;
	all = malloc((n > 0 ? n : 1) * PROTO_LAG_MAX * sizeof(*all));
	if (all == NULL)
		goto out;
	for (int task = 0; task < ntasks || k < n; task++) {
		struct runtime_task_view none;
		const struct runtime_task_view *t = NULL;

		while (k < n && views[k].task < task)
			k++;
		if (k < n && views[k].task == task)
			t = &views[k];
		/* A task past the job's tasks shows while its worker stops. */
		if (task >= ntasks && (t == NULL || strcmp(t->state, "stopped") == 0))
			continue;
		if (t == NULL) {
			memset(&none, 0, sizeof(none));
			none.task = task;
			snprintf(none.state, sizeof(none.state), "%s", at_rest ? "stopped" : "starting");
			t = &none;
		}
		cJSON_AddItemToArray(tasks, api_task_json(t));
		for (size_t i = 0; i < t->nparts; i++)
			all[nall++] = t->parts[i];
		if (task > 2 * JS_TASKS_MAX)
			break;
	}
	qsort(all, nall, sizeof(*all), api_int32_cmp);
	for (size_t i = 0; i < nall; i++)
		if (i == 0 || all[i] != all[i - 1])
			cJSON_AddItemToArray(parts, cJSON_CreateNumber(all[i]));
	cJSON_AddItemToObject(status, "partitions", parts);
	cJSON_AddItemToObject(status, "tasks", tasks);
	parts = NULL;
	tasks = NULL;
out:
	cJSON_Delete(parts);
	cJSON_Delete(tasks);
	free(all);
	free(views);
}

int api_job_body_tasks(struct api_req *req, const cJSON *body, int *tasks, bool *present)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "tasks");

	*present = false;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= JS_TASKS_MIN && v->valuedouble <= JS_TASKS_MAX) ||
	    v->valuedouble != (double)(int)v->valuedouble) {
		api_reply_error(req, 422, "tasks",
				"tasks must be an integer between %d and %d (the job's worker processes); "
				"leave it out for 1",
				JS_TASKS_MIN, JS_TASKS_MAX);
		return -1;
	}
	*tasks = (int)v->valuedouble;
	*present = true;
	return 0;
}

/* Where a top-level "TASKS:" line starts in yaml (block style, column 0),
 * else -1. */
static long api_yaml_tasks_line(const char *yaml)
{
	for (const char *line = yaml; line != NULL && *line != '\0';) {
		const char *p = line + 5;

		if (strncasecmp(line, "TASKS", 5) == 0) {
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == ':')
				return line - yaml;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return -1;
}

/* The user's text with the TASKS line replaced or added, or NULL. */
static char *api_yaml_edit_tasks(const char *yaml, int tasks)
{
	size_t len = strlen(yaml), cap = len + 32;
	long at = api_yaml_tasks_line(yaml);
	char *out = malloc(cap);
	const char *end;

	if (out == NULL)
		return NULL;
	if (at >= 0) {
		end = strchr(yaml + at, '\n');
		snprintf(out, cap, "%.*sTASKS: %d%s", (int)at, yaml, tasks, end != NULL ? end : "\n");
	} else if (strncmp(yaml, "---", 3) == 0 && (yaml[3] == '\n' || yaml[3] == '\r')) {
		end = strchr(yaml, '\n');
		snprintf(out, cap, "---\nTASKS: %d\n%s", tasks, end + 1);
	} else {
		snprintf(out, cap, "TASKS: %d\n%s", tasks, yaml);
	}
	return out;
}

static void api_wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

char *api_config_set_tasks(const char *yaml, int tasks)
{
	struct js_errors *errs = calloc(1, sizeof(*errs)); /* civetweb's small stacks */
	struct jobspec *spec = NULL;
	char *out = NULL;

	if (errs == NULL)
		return NULL;
	/* Keep the user's text (comments, order) when a line does it. */
	out = api_yaml_edit_tasks(yaml, tasks);
	if (out != NULL && jobspec_parse_yaml(out, strlen(out), &spec, errs) == 0 && spec->tasks == tasks)
		goto done;
	jobspec_free(spec);
	spec = NULL;
	api_wipe_free(out);
	out = NULL;
	if (jobspec_parse_yaml(yaml, strlen(yaml), &spec, errs) == 0) {
		spec->tasks = tasks;
		out = jobspec_to_yaml(spec, false);
	}
done:
	jobspec_free(spec);
	free(errs);
	return out;
}

char *api_definition_set_tasks(const char *mode, const char *definition, int tasks)
{
	cJSON *fields;
	char *out;

	if (mode != NULL && strcmp(mode, "professional") == 0)
		return api_config_set_tasks(definition != NULL ? definition : "", tasks);
	fields = definition != NULL ? cJSON_Parse(definition) : NULL;
	if (!cJSON_IsObject(fields)) {
		api_row_free(fields);
		return NULL;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(fields, "tasks");
	cJSON_AddNumberToObject(fields, "tasks", tasks);
	out = cJSON_PrintUnformatted(fields);
	api_row_free(fields);
	return out;
}

void api_job_patch_running(struct api_req *req, const cJSON *body, const cJSON *row, int64_t id,
			   void (*reply_row)(struct api_req *req, int64_t id))
{
	const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "state"));
	const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "mode"));
	const char *def = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "definition"));
	const cJSON *item;
	bool only_tasks = cJSON_GetObjectItemCaseSensitive(body, "tasks") != NULL, present;
	char err[512], *text;
	int tasks = 1, rc;

	cJSON_ArrayForEach(item, body)
		only_tasks = only_tasks && strcmp(item->string, "tasks") == 0;
	if (!only_tasks) {
		api_reply_error(req, 409, NULL,
				"job %lld (%s) is %s; stop it first (POST /api/v1/jobs/%lld/stop), "
				"then change it (only tasks can change while it runs)",
				(long long)id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "name")),
				state != NULL ? state : "running", (long long)id);
		return;
	}
	if (api_job_body_tasks(req, body, &tasks, &present) < 0)
		return;
	if (!present)
		tasks = 1; /* null: back to the default */
	text = api_definition_set_tasks(mode, def, tasks);
	if (text == NULL) {
		api_reply_error(req, 409, NULL,
				"job %lld: its stored definition no longer reads; stop it, then change it",
				(long long)id);
		return;
	}
	rc = store_job_set_tasks(req->st, id, text, tasks, err, sizeof(err));
	api_wipe_free(text);
	if (rc < 0) {
		api_reply_store(req, rc, "tasks", err);
		return;
	}
	api_wake(req);
	reply_row(req, id);
}
