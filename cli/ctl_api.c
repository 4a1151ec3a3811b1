/* API calls, error reporting and lookups for streamctl (see ctl_api.h). */
#include "ctl_api.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_exit_for_status(int status)
{
	if (status >= 200 && status < 300)
		return CTL_EXIT_OK;
	if (status == 401 || status == 403)
		return CTL_EXIT_AUTH;
	if (status >= 400 && status < 500)
		return CTL_EXIT_REFUSED;
	return CTL_EXIT_UNREACHABLE;
}

const char *ctl_json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

void ctl_api_print_error(const char *what, const struct ctl_resp *resp)
{
	cJSON *root = cJSON_ParseWithLength(resp->body != NULL ? resp->body : "", resp->len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	const cJSON *details, *d;
	const char *msg, *code, *field;

	if (!cJSON_IsObject(e)) {
		/* not the API's error body (a proxy, another server): show its start */
		fprintf(stderr, "streamctl: %s: HTTP %d: %.300s\n", what, resp->status,
			resp->body != NULL ? resp->body : "");
		goto out;
	}
	msg = ctl_json_str(e, "message");
	code = ctl_json_str(e, "code");
	field = ctl_json_str(e, "field");
	fprintf(stderr, "streamctl: %s: HTTP %d %s: %s", what, resp->status, code ? code : "error",
		msg ? msg : "(no message)");
	if (field != NULL)
		fprintf(stderr, " (field %s)", field);
	fputc('\n', stderr);
	details = cJSON_GetObjectItemCaseSensitive(e, "details");
	cJSON_ArrayForEach(d, details) {
		const cJSON *line = cJSON_GetObjectItemCaseSensitive(d, "line");
		const char *df = ctl_json_str(d, "field"), *dm = ctl_json_str(d, "message");
		if (cJSON_IsNumber(line))
			fprintf(stderr, "  line %d: %s: %s\n", line->valueint, df ? df : "-",
				dm ? dm : "");
		else
			fprintf(stderr, "  %s: %s\n", df ? df : "-", dm ? dm : "");
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "details_truncated")))
		fprintf(stderr, "  (more problems not shown)\n");
	if (resp->status == 401)
		fprintf(stderr, "streamctl: give the API token with --token-file PATH or the "
			"environment variable STREAMCTL_TOKEN\n");
out:
	cJSON_Delete(root);
}

int ctl_api_call(struct ctl *ctl, const char *method, const char *path,
		 const char *body, size_t len, struct ctl_resp *resp, cJSON **out)
{
	char full[1024], err[512], what[1100];
	int code;

	if (out != NULL)
		*out = NULL;
	ctl->last_status = 0;
	if (snprintf(full, sizeof(full), "%s%s", path[0] == '/' ? "" : "/api/v1/", path) >=
	    (int)sizeof(full)) {
		fprintf(stderr, "streamctl: request path too long\n");
		return CTL_EXIT_USAGE;
	}
	if (ctl_http_request(&ctl->client, method, full, body, len, resp, err,
			     sizeof(err)) != 0) {
		fprintf(stderr, "streamctl: %s\n", err);
		return CTL_EXIT_UNREACHABLE;
	}
	ctl->last_status = resp->status;
	code = ctl_exit_for_status(resp->status);
	if (code != CTL_EXIT_OK) {
		snprintf(what, sizeof(what), "%s %s", method, full);
		ctl_api_print_error(what, resp);
		ctl_resp_free(resp);
		return code;
	}
	if (out != NULL && resp->len > 0)
		*out = cJSON_ParseWithLength(resp->body, resp->len);
	return CTL_EXIT_OK;
}

int ctl_api_json(struct ctl *ctl, const char *method, const char *path, const cJSON *body,
		 cJSON **out)
{
	struct ctl_resp resp;
	char *text = NULL;
	int rc;

	if (body != NULL) {
		text = cJSON_PrintUnformatted(body);
		if (text == NULL) {
			fprintf(stderr, "streamctl: out of memory\n");
			return CTL_EXIT_UNREACHABLE;
		}
	}
	rc = ctl_api_call(ctl, method, path, text, text ? strlen(text) : 0, &resp, out);
	if (rc == CTL_EXIT_OK)
		ctl_resp_free(&resp);
	free(text);
	return rc;
}

int ctl_api_list_all(struct ctl *ctl, const char *kind, cJSON **items)
{
	cJSON *all = cJSON_CreateArray();
	int rc = CTL_EXIT_OK;

	*items = NULL;
	if (all == NULL)
		return CTL_EXIT_UNREACHABLE;
	/* page_size 100 is the API's cap; the loop ends at the total (or an
	 * empty page, should the list shrink meanwhile). */
	for (int page = 1;; page++) {
		char path[128];
		cJSON *body = NULL, *it;
		const cJSON *arr;
		double total;
		int got = 0;

		snprintf(path, sizeof(path), "%s?page=%d&page_size=100", kind, page);
		rc = ctl_api_json(ctl, "GET", path, NULL, &body);
		if (rc != CTL_EXIT_OK)
			goto out;
		arr = cJSON_GetObjectItemCaseSensitive(body, "items");
		if (!cJSON_IsArray(arr)) {
			fprintf(stderr, "streamctl: GET %s: the answer has no items list\n", path);
			cJSON_Delete(body);
			rc = CTL_EXIT_UNREACHABLE;
			goto out;
		}
		total = ctl_json_num(body, "total", 0);
		cJSON_ArrayForEach(it, arr) {
			cJSON_AddItemToArray(all, cJSON_Duplicate(it, true));
			got++;
		}
		cJSON_Delete(body);
		if (got == 0 || cJSON_GetArraySize(all) >= total)
			break;
	}
out:
	if (rc != CTL_EXIT_OK)
		cJSON_Delete(all);
	else
		*items = all;
	return rc;
}

int ctl_api_find_name(struct ctl *ctl, const char *kind, const char *name, cJSON **found)
{
	cJSON *items, *it;
	int rc;

	*found = NULL;
	rc = ctl_api_list_all(ctl, kind, &items);
	if (rc != CTL_EXIT_OK)
		return rc;
	cJSON_ArrayForEach(it, items) {
		const char *n = ctl_json_str(it, "name");
		if (n != NULL && strcmp(n, name) == 0) {
			*found = cJSON_Duplicate(it, true);
			break;
		}
	}
	cJSON_Delete(items);
	return CTL_EXIT_OK;
}

const char *ctl_kind_one(const char *kind)
{
	if (strcmp(kind, "services") == 0)
		return "service";
	if (strcmp(kind, "sources") == 0)
		return "source";
	return "job";
}

int ctl_api_resolve(struct ctl *ctl, const char *kind, const char *id_or_name, long long *id)
{
	char *end;
	cJSON *found;
	int rc;

	errno = 0;
	if (id_or_name[0] >= '0' && id_or_name[0] <= '9') {
		long long v = strtoll(id_or_name, &end, 10);
		if (*end == '\0' && errno == 0 && v > 0) {
			*id = v;
			return CTL_EXIT_OK;
		}
	}
	rc = ctl_api_find_name(ctl, kind, id_or_name, &found);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (found == NULL) {
		fprintf(stderr, "streamctl: no %s named \"%s\" (streamctl %s list shows them)\n",
			ctl_kind_one(kind), id_or_name, kind);
		return CTL_EXIT_REFUSED;
	}
	*id = (long long)ctl_json_num(found, "id", 0);
	cJSON_Delete(found);
	return CTL_EXIT_OK;
}

const char *ctl_json_text(const cJSON *obj, const char *key, char *buf, size_t buflen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL || cJSON_IsNull(v))
		snprintf(buf, buflen, "-");
	else if (cJSON_IsString(v))
		snprintf(buf, buflen, "%s", v->valuestring);
	else if (cJSON_IsBool(v))
		snprintf(buf, buflen, "%s", cJSON_IsTrue(v) ? "true" : "false");
	else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == floor(d) && fabs(d) < 9e15)
			snprintf(buf, buflen, "%.0f", d);
		else
			snprintf(buf, buflen, "%.1f", d);
	} else {
		char *s = cJSON_PrintUnformatted(v);
		snprintf(buf, buflen, "%s", s != NULL ? s : "?");
		free(s);
	}
	return buf;
}

double ctl_json_num(const cJSON *obj, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int ctl_read_file(const char *path, size_t max, char **text, size_t *len, char *err,
		  size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc = -1;

	*text = NULL;
	*len = 0;
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t got;
		if (cap - n < 4096) {
			size_t ncap = cap == 0 ? 8192 : cap * 2;
			char *nb;
			if (ncap > max + 4096 + 1)
				ncap = max + 4096 + 1;
			if (ncap <= cap) {
				snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
				goto out;
			}
			nb = realloc(buf, ncap);
			if (nb == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (n > max) {
			snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
			goto out;
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}
