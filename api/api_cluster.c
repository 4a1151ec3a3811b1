#include "api_cluster.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "runtime.h"
#include "store.h"

/* The controllers are gone after this long without a heartbeat (the
 * supervisor's CLUSTER_LEASE_MS; the API does not link the controller). */
#define API_CLUSTER_LEASE_MS 6000

static cJSON *api_cluster_member(const struct store_member *m, const struct store_task_status *t, size_t nt)
{
	cJSON *o = cJSON_CreateObject(), *tasks;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "name", m->name);
	cJSON_AddStringToObject(o, "api_url", m->api_url);
	cJSON_AddStringToObject(o, "started_at", m->started_at);
	cJSON_AddNumberToObject(o, "lease_age_ms", (double)(m->age_ms < 0 ? 0 : m->age_ms));
	cJSON_AddBoolToObject(o, "alive", m->age_ms <= API_CLUSTER_LEASE_MS);
	cJSON_AddBoolToObject(o, "draining", m->draining);
	tasks = cJSON_AddArrayToObject(o, "tasks");
	for (size_t i = 0; tasks != NULL && i < nt; i++) {
		cJSON *x, *parts;

		if (strcmp(t[i].controller, m->name) != 0 || (x = cJSON_CreateObject()) == NULL)
			continue;
		cJSON_AddNumberToObject(x, "job_id", (double)t[i].job_id);
		cJSON_AddNumberToObject(x, "task", t[i].task);
		cJSON_AddStringToObject(x, "state", t[i].state);
		parts = cJSON_Parse(t[i].partitions);
		if (cJSON_IsArray(parts))
			cJSON_AddItemToObject(x, "partitions", parts);
		else {
			cJSON_Delete(parts);
			cJSON_AddNullToObject(x, "partitions");
		}
		cJSON_AddItemToArray(tasks, x);
	}
	return o;
}

/* The list, or the member named name (NULL: all). */
static void api_cluster_reply(struct api_req *req, const char *name)
{
	struct store_member *m = NULL;
	struct store_task_status *t = NULL;
	size_t nm = 0, nt = 0;
	char err[512], self[RUNTIME_CONTROLLER_LEN];
	cJSON *out = NULL, *list;
	int rc;

	if ((rc = store_members(req->st, &m, &nm, err, sizeof(err))) < 0 ||
	    (rc = store_task_status_list(req->st, 0, &t, &nt, err, sizeof(err))) < 0) {
		api_reply_store(req, rc, NULL, err);
		goto out;
	}
	if (name != NULL) {
		for (size_t i = 0; i < nm; i++)
			if (strcmp(m[i].name, name) == 0)
				out = api_cluster_member(&m[i], t, nt);
		api_reply_json(req, 200, out);
		goto out;
	}
	runtime_get_self(self, sizeof(self));
	out = cJSON_CreateObject();
	if (out != NULL) {
		cJSON_AddBoolToObject(out, "shared", store_is_shared(req->st));
		cJSON_AddStringToObject(out, "self", self);
		cJSON_AddNumberToObject(out, "lease_ms", API_CLUSTER_LEASE_MS);
		list = cJSON_AddArrayToObject(out, "controllers");
		for (size_t i = 0; list != NULL && i < nm; i++)
			cJSON_AddItemToArray(list, api_cluster_member(&m[i], t, nt));
	}
	api_reply_json(req, 200, out);
out:
	free(m);
	free(t);
}

void api_route_cluster(struct api_req *req, const char *rest)
{
	char name[STORE_MEMBER_NAME_MAX], err[512];
	const char *slash, *action;
	size_t len;
	int rc;

	if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
		if (strcmp(req->method, "GET") != 0) {
			api_reply_method(req, "GET");
			return;
		}
		api_cluster_reply(req, NULL);
		return;
	}
	slash = strchr(rest + 1, '/');
	action = slash != NULL ? slash + 1 : "";
	len = slash != NULL ? (size_t)(slash - rest - 1) : strlen(rest + 1);
	if (rest[0] != '/' || len == 0 || len >= sizeof(name) ||
	    (strcmp(action, "drain") != 0 && strcmp(action, "resume") != 0)) {
		api_reply_error(req, 404, NULL, "no route %s %s: try GET /api/v1/cluster, POST "
				"/api/v1/cluster/NAME/drain or POST /api/v1/cluster/NAME/resume",
				req->method, req->path);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_reply_method(req, "POST");
		return;
	}
	memcpy(name, rest + 1, len);
	name[len] = '\0';
	rc = store_member_set_draining(req->st, name, strcmp(action, "drain") == 0, err, sizeof(err));
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	api_wake(req);
	api_cluster_reply(req, name);
}
