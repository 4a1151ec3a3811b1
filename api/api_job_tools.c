#include "api_job_tools.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_worker.h"
#include "jobspec.h"
#include "store.h"

/* Offsets and partitions are at most this (JSON numbers are exact to 2^53). */
#define API_TOOLS_INT_MAX 9007199254740991LL
#define API_TOOLS_PARTITION_MAX 2147483647LL
#define API_TOOLS_OFFSETS_MAX 100000

/* The job resolved, with its name; -1 after replying (404, 422, 500). */
static int api_tools_job(struct api_req *req, int64_t id, cJSON **row, struct jobspec **spec)
{
	struct js_errors *errs = calloc(1, sizeof(*errs));
	char err[512];
	int rc;

	*row = NULL;
	*spec = NULL;
	if (errs == NULL) {
		api_reply_error(req, 500, NULL, "out of memory");
		return -1;
	}
	rc = store_row_get(req->st, STORE_JOB, id, row, err, sizeof(err));
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		goto fail;
	}
	rc = store_job_resolve(req->st, id, spec, errs, err, sizeof(err));
	if (rc == STORE_INVALID) {
		api_reply_job_invalid(req, errs);
		goto fail;
	}
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		goto fail;
	}
	free(errs);
	return 0;
fail:
	free(errs);
	api_row_free(*row);
	*row = NULL;
	jobspec_free(*spec);
	*spec = NULL;
	return -1;
}

static const char *api_tools_name(const cJSON *row)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "name"));
}

void api_job_errors(struct api_req *req, int64_t id)
{
	struct jobspec *spec = NULL;
	cJSON *row = NULL, *extra = NULL, *answer = NULL, *items;
	const cJSON *total;
	int64_t page, page_size;

	if (api_get_paging(req, &page, &page_size) < 0)
		return;
	if (api_tools_job(req, id, &row, &spec) < 0)
		return;
	extra = cJSON_CreateObject();
	if (extra == NULL || cJSON_AddNumberToObject(extra, "page", (double)page) == NULL ||
	    cJSON_AddNumberToObject(extra, "page_size", (double)page_size) == NULL) {
		api_reply_error(req, 500, NULL, "out of memory");
		goto out;
	}
	if (api_worker_tool(req, "--errors", spec, id, api_tools_name(row), extra, &answer) < 0)
		goto out;
	items = cJSON_DetachItemFromObjectCaseSensitive(answer, "items");
	total = cJSON_GetObjectItemCaseSensitive(answer, "total");
	if (!cJSON_IsArray(items)) {
		cJSON_Delete(items);
		items = cJSON_CreateArray();
	}
	api_reply_list(req, items, cJSON_IsNumber(total) ? (int64_t)total->valuedouble : 0, page,
		       page_size);
out:
	cJSON_Delete(answer);
	cJSON_Delete(extra);
	api_row_free(row);
	jobspec_free(spec);
}

void api_job_offsets(struct api_req *req, int64_t id)
{
	struct jobspec *spec = NULL;
	cJSON *row = NULL, *answer = NULL;

	if (api_tools_job(req, id, &row, &spec) < 0)
		return;
	if (api_worker_tool(req, "--offsets", spec, id, api_tools_name(row), NULL, &answer) == 0)
		api_reply_json(req, 200, answer);
	api_row_free(row);
	jobspec_free(spec);
}

/* "2026-11-24T05:00:00Z" (fraction of a second and "+00:00" allowed) as ms
 * since the epoch; -1 when it is not that. */
static int64_t api_tools_parse_time(const char *s)
{
	struct tm tm;
	int year, mon, day, hour, min, sec, n = 0;
	int64_t ms = 0, scale = 100;
	const char *p;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec, &n) != 6 ||
	    n != 19)
		return -1;
	if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
	    sec > 60 || hour < 0 || min < 0 || sec < 0)
		return -1;
	p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm normalizes 2026-02-31 into March: refuse what it moved. */
	if (t < 0 || tm.tm_mday != day || tm.tm_mon != mon - 1)
		return -1;
	return (int64_t)t * 1000 + ms;
}

/* An integral number in [0, max] at body[name]; -1 after replying 422. */
static int api_tools_get_uint(struct api_req *req, const cJSON *obj, const char *field,
			      int64_t max, int64_t *out)
{
	if (!cJSON_IsNumber(obj) || !api_is_integral(obj->valuedouble) || obj->valuedouble < 0 ||
	    obj->valuedouble > (double)max) {
		api_reply_error(req, 422, field, "%s must be an integer from 0 to %" PRId64, field,
				max);
		return -1;
	}
	*out = (int64_t)obj->valuedouble;
	return 0;
}

/* The worker's "reset" member from the user's choice; NULL after replying
 * 422 (or 500). */
static cJSON *api_tools_reset_parse(struct api_req *req, const cJSON *choice, const char *prefix)
{
	static const char *const tos[] = { "earliest", "latest", "timestamp", "offsets" };
	char field[96];
	const cJSON *to, *ts, *offsets, *item;
	cJSON *out = NULL, *list;
	bool known = false;
	int i = 0;

	if (!cJSON_IsObject(choice)) {
		snprintf(field, sizeof(field), "%s", prefix[0] ? "reset" : "to");
		api_reply_error(req, 422, field, "%s must be an object such as {\"to\": \"earliest\"}",
				prefix[0] ? "reset" : "the body");
		return NULL;
	}
	cJSON_ArrayForEach(item, choice) {
		if (strcmp(item->string, "to") != 0 && strcmp(item->string, "timestamp") != 0 &&
		    strcmp(item->string, "offsets") != 0) {
			snprintf(field, sizeof(field), "%s%s", prefix, item->string);
			api_reply_error(req, 422, field,
					"unknown field %s; a reset has to, timestamp and offsets",
					field);
			return NULL;
		}
	}
	snprintf(field, sizeof(field), "%sto", prefix);
	to = cJSON_GetObjectItemCaseSensitive(choice, "to");
	for (size_t k = 0; cJSON_IsString(to) && k < sizeof(tos) / sizeof(tos[0]); k++)
		known = known || strcmp(to->valuestring, tos[k]) == 0;
	if (!known) {
		api_reply_error(req, 422, field,
				"%s %s: \"earliest\", \"latest\", \"timestamp\" or \"offsets\"", field,
				to == NULL ? "is required" : "must be one of");
		return NULL;
	}
	out = cJSON_CreateObject();
	if (out == NULL || cJSON_AddStringToObject(out, "to", to->valuestring) == NULL)
		goto oom;
	if (strcmp(to->valuestring, "timestamp") == 0) {
		int64_t ms = -1;

		snprintf(field, sizeof(field), "%stimestamp", prefix);
		ts = cJSON_GetObjectItemCaseSensitive(choice, "timestamp");
		if (cJSON_IsString(ts))
			ms = api_tools_parse_time(ts->valuestring);
		else if (cJSON_IsNumber(ts) && api_is_integral(ts->valuedouble) &&
			 ts->valuedouble >= 0 && ts->valuedouble <= (double)API_TOOLS_INT_MAX)
			ms = (int64_t)ts->valuedouble;
		if (ms < 0) {
			api_reply_error(req, 422, field,
					"%s is required with \"to\": \"timestamp\": an ISO 8601 UTC "
					"time (\"2026-11-24T05:00:00Z\") or milliseconds since the "
					"epoch",
					field);
			goto fail;
		}
		if (cJSON_AddNumberToObject(out, "timestamp", (double)ms) == NULL)
			goto oom;
	}
	if (strcmp(to->valuestring, "offsets") == 0) {
		snprintf(field, sizeof(field), "%soffsets", prefix);
		offsets = cJSON_GetObjectItemCaseSensitive(choice, "offsets");
		if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) == 0 ||
		    cJSON_GetArraySize(offsets) > API_TOOLS_OFFSETS_MAX) {
			api_reply_error(req, 422, field,
					"%s is required with \"to\": \"offsets\": a non-empty list "
					"of {\"partition\": N, \"offset\": N}",
					field);
			goto fail;
		}
		list = cJSON_AddArrayToObject(out, "offsets");
		if (list == NULL)
			goto oom;
		cJSON_ArrayForEach(item, offsets) {
			int64_t partition, offset;
			cJSON *o;

			if (!cJSON_IsObject(item)) {
				snprintf(field, sizeof(field), "%soffsets[%d]", prefix, i);
				api_reply_error(req, 422, field,
						"%s must be {\"partition\": N, \"offset\": N}", field);
				goto fail;
			}
			snprintf(field, sizeof(field), "%soffsets[%d].partition", prefix, i);
			if (api_tools_get_uint(req, cJSON_GetObjectItemCaseSensitive(item, "partition"),
					       field, API_TOOLS_PARTITION_MAX, &partition) < 0)
				goto fail;
			snprintf(field, sizeof(field), "%soffsets[%d].offset", prefix, i);
			if (api_tools_get_uint(req, cJSON_GetObjectItemCaseSensitive(item, "offset"),
					       field, API_TOOLS_INT_MAX, &offset) < 0)
				goto fail;
			o = cJSON_CreateObject();
			if (o == NULL || !cJSON_AddItemToArray(list, o))
				goto oom;
			cJSON_AddNumberToObject(o, "partition", (double)partition);
			cJSON_AddNumberToObject(o, "offset", (double)offset);
			i++;
		}
	}
	return out;
oom:
	api_reply_error(req, 500, NULL, "out of memory");
fail:
	cJSON_Delete(out);
	return NULL;
}

int api_job_reset_run(struct api_req *req, int64_t id, const cJSON *choice, const char *prefix,
		      cJSON **answer)
{
	struct jobspec *spec = NULL;
	cJSON *row = NULL, *extra = NULL, *reset;
	const char *state, *desired;
	int rc = -1;

	*answer = NULL;
	reset = api_tools_reset_parse(req, choice, prefix);
	if (reset == NULL)
		return -1;
	if (api_tools_job(req, id, &row, &spec) < 0)
		goto out;
	/* A running worker would overwrite the offsets with its next batch. */
	state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "state"));
	desired = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "desired_state"));
	if (state == NULL || desired == NULL ||
	    !(strcmp(state, "failed") == 0 ||
	      (strcmp(state, "stopped") == 0 && strcmp(desired, "stopped") == 0))) {
		api_reply_error(req, 409, NULL,
				"job %" PRId64 " (%s) is %s; stop the job first (POST "
				"/api/v1/jobs/%" PRId64 "/stop), then reset its offsets",
				id, api_tools_name(row) ? api_tools_name(row) : "", state ? state : "?",
				id);
		goto out;
	}
	extra = cJSON_CreateObject();
	if (extra == NULL) {
		api_reply_error(req, 500, NULL, "out of memory");
		goto out;
	}
	cJSON_AddItemToObject(extra, "reset", reset);
	reset = NULL;
	rc = api_worker_tool(req, "--reset", spec, id, api_tools_name(row), extra, answer);
out:
	cJSON_Delete(reset);
	cJSON_Delete(extra);
	api_row_free(row);
	jobspec_free(spec);
	return rc;
}

void api_job_offsets_reset(struct api_req *req, int64_t id)
{
	cJSON *body = api_req_body(req), *answer = NULL;

	if (body == NULL)
		return;
	if (api_job_reset_run(req, id, body, "", &answer) == 0)
		api_reply_json(req, 200, answer);
	cJSON_Delete(body);
}
