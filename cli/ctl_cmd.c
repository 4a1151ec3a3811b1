/* streamctl's commands (see ctl_cmd.h). */
#include "ctl_cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_jobfile.h"
#include "ctl_load.h"
#include "ctl_table.h"

/* Job files and bodies: the API refuses bodies over 1 MiB by default. */
#define CTL_FILE_MAX (4u * 1024u * 1024u)
/* jobs start/stop --wait give up after this long (exit 3). */
#define CTL_WAIT_SECONDS 120

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("streamctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(streamctl --help shows the commands)\n", stderr);
	return CTL_EXIT_USAGE;
}

/* Prints a 2xx body as it came (--json). */
static void ctl_print_raw(const struct ctl_resp *resp)
{
	if (resp->len == 0)
		return;
	fwrite(resp->body, 1, resp->len, stdout);
	if (resp->body[resp->len - 1] != '\n')
		fputc('\n', stdout);
}

/* ------------------------------------------------------------------ list */

static void ctl_row_services(struct ctl_table *t, const cJSON *it)
{
	char b[5][128];
	const char *cells[5] = {
		ctl_json_text(it, "id", b[0], sizeof(b[0])),
		ctl_json_text(it, "name", b[1], sizeof(b[1])),
		ctl_json_text(it, "database_host", b[2], sizeof(b[2])),
		ctl_json_text(it, "database_port", b[3], sizeof(b[3])),
		ctl_json_text(it, "spec_cu", b[4], sizeof(b[4])),
	};
	ctl_table_add(t, cells);
}

static void ctl_row_sources(struct ctl_table *t, const cJSON *it)
{
	char b[6][256];
	const char *cells[6] = {
		ctl_json_text(it, "id", b[0], sizeof(b[0])),
		ctl_json_text(it, "name", b[1], sizeof(b[1])),
		ctl_json_text(it, "service_id", b[2], sizeof(b[2])),
		ctl_json_text(it, "brokers", b[3], sizeof(b[3])),
		ctl_json_text(it, "topic", b[4], sizeof(b[4])),
		ctl_json_text(it, "format", b[5], sizeof(b[5])),
	};
	ctl_table_add(t, cells);
}

/* rows/s with one decimal, "-" when the status does not say */
static const char *ctl_rate_text(const cJSON *st, char *buf, size_t buflen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, "rows_per_second");
	if (!cJSON_IsNumber(v))
		return "-";
	snprintf(buf, buflen, "%.1f", v->valuedouble);
	return buf;
}

static const char *ctl_lag_text(const cJSON *st, char *buf, size_t buflen)
{
	const cJSON *lag = cJSON_GetObjectItemCaseSensitive(st, "lag");
	return ctl_json_text(lag, "total", buf, buflen);
}

static void ctl_row_jobs(struct ctl_table *t, const cJSON *it, const cJSON *st)
{
	char b[9][128];
	const char *cells[9] = {
		ctl_json_text(it, "id", b[0], sizeof(b[0])),
		ctl_json_text(it, "name", b[1], sizeof(b[1])),
		ctl_json_text(it, "mode", b[2], sizeof(b[2])),
		ctl_json_text(it, "source_id", b[3], sizeof(b[3])),
		ctl_json_text(st != NULL ? st : it, "state", b[4], sizeof(b[4])),
		ctl_json_text(st, "rows_written", b[5], sizeof(b[5])),
		ctl_rate_text(st, b[6], sizeof(b[6])),
		ctl_lag_text(st, b[7], sizeof(b[7])),
		ctl_json_text(st, "rows_rejected", b[8], sizeof(b[8])),
	};
	ctl_table_add(t, cells);
}

/* The status of every job: GET /jobs/status, or one GET per job from a
 * server without that route.  Returns an array (caller owns it) or NULL
 * when the statuses cannot be had (the table then shows "-"). */
static cJSON *ctl_all_status(struct ctl *ctl, const cJSON *jobs)
{
	struct ctl_resp resp;
	char err[512];
	cJSON *arr = NULL, *it;

	if (ctl_http_request(&ctl->client, "GET", "/api/v1/jobs/status", NULL, 0, &resp, err,
			     sizeof(err)) == 0 && resp.status == 200) {
		cJSON *root = cJSON_ParseWithLength(resp.body, resp.len);
		cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(root, "items");
		cJSON_Delete(root);
		ctl_resp_free(&resp);
		if (cJSON_IsArray(items))
			return items;
		cJSON_Delete(items);
	} else {
		ctl_resp_free(&resp);
	}
	arr = cJSON_CreateArray();
	cJSON_ArrayForEach(it, jobs) {
		char path[64];
		cJSON *st = NULL;
		snprintf(path, sizeof(path), "jobs/%.0f/status", ctl_json_num(it, "id", 0));
		if (ctl_api_json(ctl, "GET", path, NULL, &st) == CTL_EXIT_OK && st != NULL)
			cJSON_AddItemToArray(arr, st);
		else
			cJSON_Delete(st);
	}
	return arr;
}

static const cJSON *ctl_status_of(const cJSON *statuses, double id)
{
	const cJSON *st;
	cJSON_ArrayForEach(st, statuses) {
		if (ctl_json_num(st, "id", -1) == id)
			return st;
	}
	return NULL;
}

static int ctl_cmd_list(struct ctl *ctl, const struct ctl_args *a)
{
	static const char *const h_services[] = {">ID", "NAME", "HOST", ">PORT", ">SPEC_CU"};
	static const char *const h_sources[] = {">ID", "NAME", ">SERVICE", "BROKERS", "TOPIC",
						"FORMAT"};
	static const char *const h_jobs[] = {">ID", "NAME", "MODE", ">SOURCE", "STATE",
					     ">ROWS", ">ROWS/S", ">LAG", ">REJECTED"};
	struct ctl_table *t = NULL;
	cJSON *items = NULL, *statuses = NULL, *it;
	int rc;

	if (ctl->json) {
		struct ctl_resp resp;
		char path[128];
		snprintf(path, sizeof(path), "%s?page=%d&page_size=100", a->resource,
			 a->page > 0 ? a->page : 1);
		rc = ctl_api_call(ctl, "GET", path, NULL, 0, &resp, NULL);
		if (rc == CTL_EXIT_OK) {
			ctl_print_raw(&resp);
			ctl_resp_free(&resp);
		}
		return rc;
	}
	rc = ctl_api_list_all(ctl, a->resource, &items);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (strcmp(a->resource, "services") == 0)
		t = ctl_table_new(5, h_services);
	else if (strcmp(a->resource, "sources") == 0)
		t = ctl_table_new(6, h_sources);
	else {
		t = ctl_table_new(9, h_jobs);
		statuses = ctl_all_status(ctl, items);
	}
	if (t == NULL) {
		rc = CTL_EXIT_UNREACHABLE;
		goto out;
	}
	cJSON_ArrayForEach(it, items) {
		if (strcmp(a->resource, "services") == 0)
			ctl_row_services(t, it);
		else if (strcmp(a->resource, "sources") == 0)
			ctl_row_sources(t, it);
		else
			ctl_row_jobs(t, it, ctl_status_of(statuses, ctl_json_num(it, "id", 0)));
	}
	ctl_table_print(t, stdout);
out:
	ctl_table_free(t);
	cJSON_Delete(items);
	cJSON_Delete(statuses);
	return rc;
}

/* ------------------------------------------------------------------ get */

/* "key: value" per top-level field; a job's YAML config last, as a block. */
static void ctl_print_object(const cJSON *obj)
{
	const cJSON *v;
	const char *config = NULL;
	size_t w = 0;

	cJSON_ArrayForEach(v, obj) {
		if (strlen(v->string) > w)
			w = strlen(v->string);
	}
	cJSON_ArrayForEach(v, obj) {
		char buf[1024];
		if (strcmp(v->string, "config") == 0 && cJSON_IsString(v)) {
			config = v->valuestring;
			continue;
		}
		printf("%-*s  %s\n", (int)w + 1, v->string, ctl_json_text(obj, v->string, buf,
									 sizeof(buf)));
	}
	if (config != NULL) {
		printf("config:\n");
		for (const char *p = config; *p != '\0';) {
			const char *nl = strchr(p, '\n');
			size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
			printf("  %.*s\n", (int)n, p);
			p += n + (nl != NULL);
		}
	}
}

static int ctl_cmd_get(struct ctl *ctl, const struct ctl_args *a, long long id)
{
	struct ctl_resp resp;
	char path[128];
	cJSON *obj = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/%lld", a->resource, id);
	rc = ctl_api_call(ctl, "GET", path, NULL, 0, &resp, &obj);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		ctl_print_raw(&resp);
	else
		ctl_print_object(obj);
	cJSON_Delete(obj);
	ctl_resp_free(&resp);
	return CTL_EXIT_OK;
}

/* ------------------------------------------------------- create / update */

/* The body of a create or update from -f FILE.  For jobs a YAML file
 * becomes a professional-mode job; --name/--source set those fields. */
enum ctl_purpose { CTL_BODY_CREATE, CTL_BODY_UPDATE, CTL_BODY_VALIDATE };

static int ctl_body_from_file(struct ctl *ctl, const struct ctl_args *a, enum ctl_purpose why,
			      char **body, size_t *len)
{
	bool create = why == CTL_BODY_CREATE;
	bool is_job = strcmp(a->resource, "jobs") == 0;
	char err[512], defname[256];
	char *text = NULL;
	size_t tlen;
	long long source_id = 0;
	cJSON *obj = NULL;
	int rc = CTL_EXIT_USAGE;

	*body = NULL;
	if (ctl_read_file(a->file, CTL_FILE_MAX, &text, &tlen, err, sizeof(err)) != 0) {
		fprintf(stderr, "streamctl: -f %s\n", err);
		return CTL_EXIT_USAGE;
	}
	if (strlen(text) != tlen) {
		fprintf(stderr, "streamctl: -f %s: the file contains a NUL byte\n", a->file);
		goto out;
	}
	if (a->source != NULL) {
		if (!is_job && strcmp(a->resource, "sources") != 0) {
			rc = ctl_usage_error("--source applies to jobs (and sources: their service)");
			goto out;
		}
		rc = ctl_api_resolve(ctl, is_job ? "sources" : "services", a->source, &source_id);
		if (rc != CTL_EXIT_OK)
			goto out;
	}
	if (is_job && ctl_file_is_yaml(a->file, text)) {
		const char *name = a->name;
		if (create && source_id == 0) {
			rc = ctl_usage_error("jobs create -f %s: a YAML job needs --source ID_OR_NAME "
					     "(the data source it reads; or use jobs load, which "
					     "finds or makes one)", a->file);
			goto out;
		}
		if (why == CTL_BODY_VALIDATE && source_id == 0) {
			/* the route needs a source: the one the YAML reads */
			ctl_name_from_file(a->file, defname, sizeof(defname));
			rc = ctl_load_source_for_yaml(ctl, text, tlen, defname, false, &source_id);
			if (rc != CTL_EXIT_OK)
				goto out;
			if (source_id == 0) {
				rc = ctl_usage_error("jobs validate -f %s: no source reads the YAML's "
						     "topic from its brokers; give --source ID_OR_NAME",
						     a->file);
				goto out;
			}
		}
		if (create && name == NULL) {
			ctl_name_from_file(a->file, defname, sizeof(defname));
			name = defname;
		}
		obj = ctl_job_body_yaml(text, name, source_id);
		if (why == CTL_BODY_UPDATE)
			cJSON_DeleteItemFromObjectCaseSensitive(obj, "mode");
	} else {
		obj = cJSON_ParseWithLength(text, tlen);
		if (!cJSON_IsObject(obj)) {
			fprintf(stderr, "streamctl: -f %s: not a JSON object%s\n", a->file,
				is_job ? " (a job file ends in .yaml for professional mode)" : "");
			goto out;
		}
		if (a->name != NULL) {
			cJSON_DeleteItemFromObjectCaseSensitive(obj, "name");
			cJSON_AddStringToObject(obj, "name", a->name);
		}
		if (source_id > 0) {
			const char *key = is_job ? "source_id" : "service_id";
			cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
			cJSON_AddNumberToObject(obj, key, (double)source_id);
		}
		if (a->name == NULL && source_id == 0) {
			/* sent as written */
			*body = text;
			*len = tlen;
			text = NULL;
			rc = CTL_EXIT_OK;
			goto out;
		}
	}
	if (obj == NULL || (*body = cJSON_PrintUnformatted(obj)) == NULL) {
		fprintf(stderr, "streamctl: out of memory\n");
		rc = CTL_EXIT_UNREACHABLE;
		goto out;
	}
	*len = strlen(*body);
	rc = CTL_EXIT_OK;
out:
	cJSON_Delete(obj);
	free(text);
	return rc;
}

static int ctl_cmd_write(struct ctl *ctl, const struct ctl_args *a, long long id)
{
	bool create = id == 0;
	struct ctl_resp resp;
	char path[128], b1[256], b2[64];
	char *body = NULL;
	size_t len = 0;
	cJSON *obj = NULL;
	int rc;

	rc = ctl_body_from_file(ctl, a, create ? CTL_BODY_CREATE : CTL_BODY_UPDATE, &body, &len);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (create)
		snprintf(path, sizeof(path), "%s", a->resource);
	else
		snprintf(path, sizeof(path), "%s/%lld", a->resource, id);
	rc = ctl_api_call(ctl, create ? "POST" : "PATCH", path, body, len, &resp, &obj);
	free(body);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		ctl_print_raw(&resp);
	else
		printf("%s %s %s (id %s)\n", create ? "created" : "updated", ctl_kind_one(a->resource),
		       ctl_json_text(obj, "name", b1, sizeof(b1)), ctl_json_text(obj, "id", b2, sizeof(b2)));
	cJSON_Delete(obj);
	ctl_resp_free(&resp);
	return CTL_EXIT_OK;
}

static int ctl_cmd_delete(struct ctl *ctl, const struct ctl_args *a, long long id)
{
	char path[128];
	int rc;

	snprintf(path, sizeof(path), "%s/%lld", a->resource, id);
	rc = ctl_api_json(ctl, "DELETE", path, NULL, NULL);
	if (rc == CTL_EXIT_OK && !ctl->json)
		printf("deleted %s %s (id %lld)\n", ctl_kind_one(a->resource), a->target, id);
	return rc;
}

/* ------------------------------------------------------------ job verbs */

/* A task's partitions as "0,3,6", "-" for none. */
static const char *ctl_parts_text(const cJSON *task, char *buf, size_t buflen)
{
	const cJSON *p;
	size_t off = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(task, "partitions")) {
		int n;

		if (!cJSON_IsNumber(p))
			continue;
		n = snprintf(buf + off, buflen - off, "%s%.0f", off > 0 ? "," : "", p->valuedouble);
		if (n < 0 || (size_t)n >= buflen - off)
			break;
		off += (size_t)n;
	}
	return off > 0 ? buf : "-";
}

/* The job's tasks: one row each. */
static void ctl_print_tasks(const cJSON *tasks)
{
	static const char *const headers[] = { ">task", ">pid", "state", ">restarts",
					       "partitions", ">rows/s", ">lag" };
	struct ctl_table *t;
	const cJSON *it;

	if (!cJSON_IsArray(tasks))
		return; /* an older server */
	t = ctl_table_new(7, headers);
	if (t == NULL)
		return;
	cJSON_ArrayForEach(it, tasks) {
		char b[7][256];
		const char *cells[7] = {
			ctl_json_text(it, "task", b[0], sizeof(b[0])),
			ctl_json_text(it, "pid", b[1], sizeof(b[1])),
			ctl_json_text(it, "state", b[2], sizeof(b[2])),
			ctl_json_text(it, "restarts", b[3], sizeof(b[3])),
			ctl_parts_text(it, b[4], sizeof(b[4])),
			ctl_rate_text(it, b[5], sizeof(b[5])),
			ctl_json_text(it, "lag", b[6], sizeof(b[6])),
		};
		ctl_table_add(t, cells);
	}
	printf("tasks\n");
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

void ctl_print_status(const cJSON *st)
{
	static const char *const keys[] = {
		"id", "name", "state", "desired_state", "pid", "started_at", "restarts",
		"messages_consumed", "rows_written", "rows_updated", "rows_rejected", "batches",
		"rows_deleted", "tombstones_skipped",
		"rows_per_second", "messages_per_second", "last_batch_at", "last_error", "last_exit",
	};
	const cJSON *lag = cJSON_GetObjectItemCaseSensitive(st, "lag");
	const cJSON *p;
	char buf[1024];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (cJSON_GetObjectItemCaseSensitive(st, keys[i]) == NULL)
			continue; /* an older server */
		printf("%-20s %s\n", keys[i], ctl_json_text(st, keys[i], buf, sizeof(buf)));
	}
	if (cJSON_IsObject(lag)) {
		printf("%-20s %s", "lag", ctl_json_text(lag, "total", buf, sizeof(buf)));
		printf(" (updated %s)\n", ctl_json_text(lag, "updated_at", buf, sizeof(buf)));
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(lag, "partitions")) {
			char b2[64];
			printf("  partition %-9s %s\n", ctl_json_text(p, "partition", b2, sizeof(b2)),
			       ctl_json_text(p, "lag", buf, sizeof(buf)));
		}
	}
	ctl_print_tasks(cJSON_GetObjectItemCaseSensitive(st, "tasks"));
}

static volatile sig_atomic_t ctl_wait_interrupted;

static void ctl_wait_on_signal(int sig)
{
	(void)sig;
	ctl_wait_interrupted = 1;
}

/* Polls the job's status until it reaches want (running or stopped). */
static int ctl_wait_state(struct ctl *ctl, long long id, const char *want)
{
	struct sigaction sa;
	char path[64], buf[512];
	time_t deadline = time(NULL) + CTL_WAIT_SECONDS;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_wait_on_signal;
	sigaction(SIGINT, &sa, NULL);
	snprintf(path, sizeof(path), "jobs/%lld/status", id);
	for (;;) {
		cJSON *st = NULL;
		const char *state;
		rc = ctl_api_json(ctl, "GET", path, NULL, &st);
		if (rc != CTL_EXIT_OK)
			return rc;
		state = ctl_json_text(st, "state", buf, sizeof(buf));
		if (strcmp(state, want) == 0) {
			cJSON_Delete(st);
			return CTL_EXIT_OK;
		}
		if (strcmp(state, "failed") == 0) {
			fprintf(stderr, "streamctl: job %lld failed: %s\n", id,
				ctl_json_text(st, "last_error", buf, sizeof(buf)));
			cJSON_Delete(st);
			return CTL_EXIT_JOB_FAILED;
		}
		cJSON_Delete(st);
		if (ctl_wait_interrupted) {
			fprintf(stderr, "streamctl: interrupted while waiting for job %lld\n", id);
			return CTL_EXIT_REFUSED;
		}
		if (time(NULL) >= deadline) {
			fprintf(stderr, "streamctl: job %lld is %s, not %s, after %d s\n", id, state,
				want, CTL_WAIT_SECONDS);
			return CTL_EXIT_UNREACHABLE;
		}
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000}, NULL);
	}
}

static int ctl_cmd_startstop(struct ctl *ctl, const struct ctl_args *a, long long id)
{
	bool start = strcmp(a->verb, "start") == 0;
	struct ctl_resp resp;
	char path[128], b1[256], b2[64];
	cJSON *st = NULL;
	int rc;

	snprintf(path, sizeof(path), "jobs/%lld/%s", id, a->verb);
	rc = ctl_api_call(ctl, "POST", path, NULL, 0, &resp, &st);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		ctl_print_raw(&resp);
	else
		printf("job %s (id %lld): %s requested, state %s\n",
		       ctl_json_text(st, "name", b1, sizeof(b1)), id, a->verb,
		       ctl_json_text(st, "state", b2, sizeof(b2)));
	cJSON_Delete(st);
	ctl_resp_free(&resp);
	if (!a->wait)
		return CTL_EXIT_OK;
	rc = ctl_wait_state(ctl, id, start ? "running" : "stopped");
	if (rc == CTL_EXIT_OK && !ctl->json)
		printf("job %lld is %s\n", id, start ? "running" : "stopped");
	return rc;
}

static int ctl_cmd_simple_get(struct ctl *ctl, const char *path, struct ctl_resp *resp,
			      cJSON **obj)
{
	int rc = ctl_api_call(ctl, "GET", path, NULL, 0, resp, obj);
	if (rc == CTL_EXIT_OK && ctl->json) {
		ctl_print_raw(resp);
		ctl_resp_free(resp);
		cJSON_Delete(*obj);
		*obj = NULL;
	}
	return rc;
}

static int ctl_cmd_status(struct ctl *ctl, long long id)
{
	struct ctl_resp resp;
	char path[64];
	cJSON *st = NULL;
	int rc;

	snprintf(path, sizeof(path), "jobs/%lld/status", id);
	rc = ctl_cmd_simple_get(ctl, path, &resp, &st);
	if (rc != CTL_EXIT_OK || ctl->json)
		return rc;
	ctl_print_status(st);
	cJSON_Delete(st);
	ctl_resp_free(&resp);
	return CTL_EXIT_OK;
}

static int ctl_cmd_offsets(struct ctl *ctl, long long id)
{
	static const char *const h[] = {">PARTITION", ">STORED", ">LOW", ">HIGH", ">LAG"};
	struct ctl_resp resp;
	struct ctl_table *t;
	char path[64], b[5][64];
	cJSON *obj = NULL;
	const cJSON *p;
	int rc;

	snprintf(path, sizeof(path), "jobs/%lld/offsets", id);
	rc = ctl_cmd_simple_get(ctl, path, &resp, &obj);
	if (rc != CTL_EXIT_OK || ctl->json)
		return rc;
	t = ctl_table_new(5, h);
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(obj, "partitions")) {
		const char *cells[5] = {
			ctl_json_text(p, "partition", b[0], sizeof(b[0])),
			ctl_json_text(p, "stored_offset", b[1], sizeof(b[1])),
			ctl_json_text(p, "low_watermark", b[2], sizeof(b[2])),
			ctl_json_text(p, "high_watermark", b[3], sizeof(b[3])),
			ctl_json_text(p, "lag", b[4], sizeof(b[4])),
		};
		if (t != NULL)
			ctl_table_add(t, cells);
	}
	if (t != NULL)
		ctl_table_print(t, stdout);
	printf("total lag: %s\n", ctl_json_text(obj, "total_lag", b[0], sizeof(b[0])));
	ctl_table_free(t);
	cJSON_Delete(obj);
	ctl_resp_free(&resp);
	return CTL_EXIT_OK;
}

static int ctl_cmd_errors(struct ctl *ctl, const struct ctl_args *a, long long id)
{
	static const char *const h[] = {">ID", ">PARTITION", ">OFFSET", "CREATED", "ERROR",
					"VALUE"};
	struct ctl_resp resp;
	struct ctl_table *t;
	char path[128], b[6][256];
	cJSON *obj = NULL;
	const cJSON *e;
	int rc;

	snprintf(path, sizeof(path), "jobs/%lld/errors?page=%d&page_size=100", id,
		 a->page > 0 ? a->page : 1);
	rc = ctl_cmd_simple_get(ctl, path, &resp, &obj);
	if (rc != CTL_EXIT_OK || ctl->json)
		return rc;
	t = ctl_table_new(6, h);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(obj, "items")) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "value");
		const char *cells[6] = {
			ctl_json_text(e, "id", b[0], sizeof(b[0])),
			ctl_json_text(e, "partition", b[1], sizeof(b[1])),
			ctl_json_text(e, "offset", b[2], sizeof(b[2])),
			ctl_json_text(e, "created_at", b[3], sizeof(b[3])),
			ctl_json_text(e, "error", b[4], sizeof(b[4])),
			cJSON_IsString(v) ? ctl_json_text(e, "value", b[5], sizeof(b[5]))
					  : ctl_json_text(e, "value_base64", b[5], sizeof(b[5])),
		};
		if (t != NULL)
			ctl_table_add(t, cells);
	}
	if (t != NULL)
		ctl_table_print(t, stdout);
	printf("%s rejected messages in all (page %d, 100 a page)\n",
	       ctl_json_text(obj, "total", b[0], sizeof(b[0])), a->page > 0 ? a->page : 1);
	ctl_table_free(t);
	cJSON_Delete(obj);
	ctl_resp_free(&resp);
	return CTL_EXIT_OK;
}

static int ctl_cmd_config(struct ctl *ctl, long long id)
{
	struct ctl_resp resp;
	char path[64];
	int rc;

	/* YAML either way: --json has no JSON to show here. */
	snprintf(path, sizeof(path), "jobs/%lld/config", id);
	rc = ctl_api_call(ctl, "GET", path, NULL, 0, &resp, NULL);
	if (rc != CTL_EXIT_OK)
		return rc;
	ctl_print_raw(&resp);
	ctl_resp_free(&resp);
	return CTL_EXIT_OK;
}

/* Prints the problems of a validate answer; returns the exit code. */
static int ctl_print_validation(const cJSON *res)
{
	const cJSON *e, *s;
	bool valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "valid"));
	bool checked = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "database_checked"));

	const cJSON *kafka = cJSON_GetObjectItemCaseSensitive(res, "kafka");

	if (valid) {
		printf("valid%s\n", checked ? " (checked against the database)" : "");
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(kafka, "checked")))
			printf("topic %s on %s: %.0f partitions, the job reads %.0f\n",
			       ctl_json_str(kafka, "topic") ? ctl_json_str(kafka, "topic") : "?",
			       ctl_json_str(kafka, "brokers") ? ctl_json_str(kafka, "brokers") : "?",
			       ctl_json_num(kafka, "partitions", 0), ctl_json_num(kafka, "partitions_read", 0));
		if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(res, "statements")) > 0)
			printf("statements per batch:\n");
		cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(res, "statements")) {
			if (cJSON_IsString(s))
				printf("  %s\n", s->valuestring);
		}
		return CTL_EXIT_OK;
	}
	printf("invalid:\n");
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "errors")) {
		char f[256], l[32], c[64], m[1024];
		printf("  line %s: %s: %s [%s]\n", ctl_json_text(e, "line", l, sizeof(l)),
		       ctl_json_text(e, "field", f, sizeof(f)), ctl_json_text(e, "message", m, sizeof(m)),
		       ctl_json_text(e, "code", c, sizeof(c)));
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "errors_truncated")))
		printf("  (more problems not shown)\n");
	return CTL_EXIT_REFUSED;
}

static int ctl_cmd_validate(struct ctl *ctl, const struct ctl_args *a)
{
	struct ctl_resp resp;
	char *body = NULL;
	size_t len = 0;
	cJSON *res = NULL;
	int rc;

	rc = ctl_body_from_file(ctl, a, CTL_BODY_VALIDATE, &body, &len);
	if (rc != CTL_EXIT_OK)
		return rc;
	rc = ctl_api_call(ctl, "POST", "jobs/validate", body, len, &resp, &res);
	free(body);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctl->json) {
		ctl_print_raw(&resp);
		rc = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "valid")) ? CTL_EXIT_OK
										   : CTL_EXIT_REFUSED;
	} else {
		rc = ctl_print_validation(res);
	}
	cJSON_Delete(res);
	ctl_resp_free(&resp);
	return rc;
}

static int ctl_cmd_health(struct ctl *ctl)
{
	struct ctl_resp resp;
	cJSON *obj = NULL;
	char buf[64];
	int rc;

	rc = ctl_api_call(ctl, "GET", "/healthz", NULL, 0, &resp, &obj);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		ctl_print_raw(&resp);
	else
		printf("%s\n", ctl_json_text(obj, "status", buf, sizeof(buf)));
	cJSON_Delete(obj);
	ctl_resp_free(&resp);
	return CTL_EXIT_OK;
}

/* ------------------------------------------------------------- dispatch */

static bool ctl_in(const char *s, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

int ctl_cmd_run(struct ctl *ctl, const struct ctl_args *a)
{
	static const char *const kinds[] = {"services", "sources", "jobs", NULL};
	static const char *const common[] = {"list", "get", "create", "update", "delete", NULL};
	static const char *const jobverbs[] = {"start", "stop", "status", "offsets", "errors",
					       "config", "validate", "load", NULL};
	static const char *const with_target[] = {"get", "update", "delete", "start", "stop",
						  "status", "offsets", "errors", "config", "load",
						  NULL};
	static const char *const with_file[] = {"create", "update", "validate", NULL};
	long long id = 0;
	int rc;

	if (strcmp(a->resource, "health") == 0) {
		if (a->verb != NULL)
			return ctl_usage_error("health takes no arguments (got \"%s\")", a->verb);
		return ctl_cmd_health(ctl);
	}
	if (!ctl_in(a->resource, kinds))
		return ctl_usage_error("unknown command \"%s\"; expected services, sources, jobs "
				       "or health", a->resource);
	if (a->verb == NULL)
		return ctl_usage_error("%s: which action? (list, get, create, update, delete%s)",
				       a->resource, strcmp(a->resource, "jobs") == 0
				       ? ", start, stop, status, offsets, errors, validate, config, load"
				       : "");
	if (!ctl_in(a->verb, common) &&
	    !(strcmp(a->resource, "jobs") == 0 && ctl_in(a->verb, jobverbs)))
		return ctl_usage_error("%s: unknown action \"%s\"", a->resource, a->verb);
	if (ctl_in(a->verb, with_target) && a->target == NULL)
		return ctl_usage_error("%s %s: give the %s", a->resource, a->verb,
				       strcmp(a->verb, "load") == 0 ? "job's YAML file" : "ID_OR_NAME");
	if (!ctl_in(a->verb, with_target) && a->target != NULL)
		return ctl_usage_error("%s: unexpected argument \"%s\"", a->verb, a->target);
	if (ctl_in(a->verb, with_file) && a->file == NULL)
		return ctl_usage_error("%s %s: give the definition with -f FILE", a->resource, a->verb);
	if (!ctl_in(a->verb, with_file) && a->file != NULL)
		return ctl_usage_error("%s %s: -f does not apply", a->resource, a->verb);
	if ((a->name != NULL || a->source != NULL) &&
	    !ctl_in(a->verb, (const char *const[]){"create", "update", "validate", "load", NULL}))
		return ctl_usage_error("%s %s: --name and --source do not apply", a->resource, a->verb);
	if (a->quit_at_eof && strcmp(a->verb, "load") != 0)
		return ctl_usage_error("--quit-at-eof applies to jobs load only");
	if (a->wait && strcmp(a->verb, "start") != 0 && strcmp(a->verb, "stop") != 0)
		return ctl_usage_error("--wait applies to jobs start and jobs stop only");

	if (strcmp(a->verb, "list") == 0)
		return ctl_cmd_list(ctl, a);
	if (strcmp(a->verb, "create") == 0)
		return ctl_cmd_write(ctl, a, 0);
	if (strcmp(a->verb, "validate") == 0)
		return ctl_cmd_validate(ctl, a);
	if (strcmp(a->verb, "load") == 0)
		return ctl_load_run(ctl, a->target, a->name, a->source, a->quit_at_eof);
	rc = ctl_api_resolve(ctl, a->resource, a->target, &id);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (strcmp(a->verb, "get") == 0)
		return ctl_cmd_get(ctl, a, id);
	if (strcmp(a->verb, "update") == 0)
		return ctl_cmd_write(ctl, a, id);
	if (strcmp(a->verb, "delete") == 0)
		return ctl_cmd_delete(ctl, a, id);
	if (strcmp(a->verb, "start") == 0 || strcmp(a->verb, "stop") == 0)
		return ctl_cmd_startstop(ctl, a, id);
	if (strcmp(a->verb, "status") == 0)
		return ctl_cmd_status(ctl, id);
	if (strcmp(a->verb, "offsets") == 0)
		return ctl_cmd_offsets(ctl, id);
	if (strcmp(a->verb, "errors") == 0)
		return ctl_cmd_errors(ctl, a, id);
	return ctl_cmd_config(ctl, id);
}
