#include "web.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WEB_LIST_MAX 1000       /* rows shown per table */
#define WEB_PAGE_MAX (8u << 20) /* the page never grows past this */

/* A growing output buffer; after a failure every append is a no-op. */
struct web_buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
};

static bool web_buf_reserve(struct web_buf *b, size_t more)
{
	size_t cap;
	char *grown;

	if (b->failed)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	if (b->len + more + 1 > WEB_PAGE_MAX) {
		b->failed = true;
		return false;
	}
	cap = b->cap ? b->cap : 8192;
	while (cap < b->len + more + 1)
		cap *= 2;
	grown = realloc(b->data, cap);
	if (grown == NULL) {
		b->failed = true;
		return false;
	}
	b->data = grown;
	b->cap = cap;
	return true;
}

static void web_buf_put(struct web_buf *b, const char *s, size_t n)
{
	if (!web_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Our own markup only: never pass values from the store as fmt arguments
 * with %s; use web_buf_text. */
static void web_buf_printf(struct web_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void web_buf_printf(struct web_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !web_buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Text from the store, escaped. */
static void web_buf_text(struct web_buf *b, const char *s)
{
	for (; s != NULL && *s; s++) {
		switch (*s) {
		case '&':
			web_buf_put(b, "&amp;", 5);
			break;
		case '<':
			web_buf_put(b, "&lt;", 4);
			break;
		case '>':
			web_buf_put(b, "&gt;", 4);
			break;
		case '"':
			web_buf_put(b, "&quot;", 6);
			break;
		case '\'':
			web_buf_put(b, "&#39;", 5);
			break;
		default:
			web_buf_put(b, s, 1);
			break;
		}
	}
}

char *web_html_escape(const char *s)
{
	struct web_buf b = { NULL, 0, 0, false };

	web_buf_reserve(&b, 0);
	web_buf_text(&b, s);
	if (b.failed) {
		free(b.data);
		return NULL;
	}
	return b.data;
}

static const char *web_str(const cJSON *row, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, key));

	return s != NULL ? s : "";
}

static long long web_int(const cJSON *row, const char *key)
{
	return (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, key));
}

static const cJSON *web_find(const cJSON *items, int64_t id)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, items)
		if (web_int(item, "id") == id)
			return item;
	return NULL;
}

static void web_cell_text(struct web_buf *b, const char *s)
{
	web_buf_printf(b, "<td>");
	web_buf_text(b, s);
	web_buf_printf(b, "</td>");
}

static void web_cell_int(struct web_buf *b, long long v)
{
	web_buf_printf(b, "<td class=\"num\">%lld</td>", v);
}

static void web_more(struct web_buf *b, int64_t total, int shown)
{
	if (total > shown)
		web_buf_printf(b, "<p class=\"note\">Showing the first %d of %lld.</p>\n", shown,
			       (long long)total);
}

static void web_jobs(struct web_buf *b, const cJSON *jobs, int64_t total, const cJSON *sources)
{
	const cJSON *job;

	web_buf_printf(b, "<h2>Jobs <span class=\"count\">%lld</span></h2>\n", (long long)total);
	if (total == 0) {
		web_buf_printf(b, "<p class=\"note\">No jobs yet: POST /api/v1/jobs.</p>\n");
		return;
	}
	web_buf_printf(b, "<table>\n<tr><th>id</th><th>name</th><th>source</th><th>mode</th>"
			  "<th>wanted</th><th>state</th><th>messages consumed</th>"
			  "<th>rows written</th><th>rows rejected</th><th>restarts</th>"
			  "<th>started</th><th>last error</th></tr>\n");
	cJSON_ArrayForEach(job, jobs) {
		const cJSON *src = web_find(sources, web_int(job, "source_id"));
		const char *state = web_str(job, "state");
		const char *cls = "idle";

		if (strcmp(state, "running") == 0)
			cls = "ok";
		else if (strcmp(state, "failed") == 0)
			cls = "bad";
		else if (strcmp(state, "retrying") == 0)
			cls = "warn";
		web_buf_printf(b, "<tr>");
		web_cell_int(b, web_int(job, "id"));
		web_cell_text(b, web_str(job, "name"));
		web_cell_text(b, src != NULL ? web_str(src, "name") : "?");
		web_cell_text(b, web_str(job, "mode"));
		web_cell_text(b, web_str(job, "desired_state"));
		web_buf_printf(b, "<td><span class=\"state %s\">", cls);
		web_buf_text(b, state);
		web_buf_printf(b, "</span></td>");
		web_cell_int(b, web_int(job, "messages_consumed"));
		web_cell_int(b, web_int(job, "rows_written"));
		web_cell_int(b, web_int(job, "rows_rejected"));
		web_cell_int(b, web_int(job, "restarts"));
		web_cell_text(b, web_str(job, "started_at"));
		web_buf_printf(b, "<td class=\"err\">");
		web_buf_text(b, web_str(job, "last_error"));
		web_buf_printf(b, "</td></tr>\n");
	}
	web_buf_printf(b, "</table>\n");
	web_more(b, total, cJSON_GetArraySize(jobs));
}

static void web_services(struct web_buf *b, const cJSON *services, int64_t total,
			 const cJSON *sources, const cJSON *jobs)
{
	const cJSON *sv, *job;
	int nshown = cJSON_GetArraySize(services), i;
	long long *wanted = calloc((size_t)nshown + 1, sizeof(*wanted));

	web_buf_printf(b, "<h2>Data services <span class=\"count\">%lld</span></h2>\n",
		       (long long)total);
	if (total == 0) {
		web_buf_printf(b, "<p class=\"note\">No services yet: POST /api/v1/services.</p>\n");
		free(wanted);
		return;
	}
	/* Jobs wanted running per service, against its spec_cu. */
	cJSON_ArrayForEach(job, jobs) {
		const cJSON *src = web_find(sources, web_int(job, "source_id"));

		if (wanted == NULL || src == NULL ||
		    strcmp(web_str(job, "desired_state"), "running") != 0)
			continue;
		i = 0;
		cJSON_ArrayForEach(sv, services) {
			if (web_int(sv, "id") == web_int(src, "service_id"))
				wanted[i]++;
			i++;
		}
	}
	web_buf_printf(b, "<table>\n<tr><th>id</th><th>name</th><th>jobs wanted running</th>"
			  "<th>spec_cu</th><th>database</th><th>status</th><th>description</th>"
			  "</tr>\n");
	i = 0;
	cJSON_ArrayForEach(sv, services) {
		web_buf_printf(b, "<tr>");
		web_cell_int(b, web_int(sv, "id"));
		web_cell_text(b, web_str(sv, "name"));
		web_cell_int(b, wanted != NULL ? wanted[i] : 0);
		web_cell_int(b, web_int(sv, "spec_cu"));
		web_buf_printf(b, "<td>");
		web_buf_text(b, web_str(sv, "database_host"));
		web_buf_printf(b, ":%lld</td>", web_int(sv, "database_port"));
		web_cell_text(b, web_str(sv, "status"));
		web_cell_text(b, web_str(sv, "description"));
		web_buf_printf(b, "</tr>\n");
		i++;
	}
	web_buf_printf(b, "</table>\n");
	web_more(b, total, nshown);
	free(wanted);
}

static void web_sources(struct web_buf *b, const cJSON *sources, int64_t total,
			const cJSON *services)
{
	const cJSON *src;

	web_buf_printf(b, "<h2>Data sources <span class=\"count\">%lld</span></h2>\n",
		       (long long)total);
	if (total == 0) {
		web_buf_printf(b, "<p class=\"note\">No sources yet: POST /api/v1/sources.</p>\n");
		return;
	}
	web_buf_printf(b, "<table>\n<tr><th>id</th><th>name</th><th>service</th><th>brokers</th>"
			  "<th>topic</th><th>format</th><th>status</th><th>description</th>"
			  "</tr>\n");
	cJSON_ArrayForEach(src, sources) {
		const cJSON *sv = web_find(services, web_int(src, "service_id"));

		web_buf_printf(b, "<tr>");
		web_cell_int(b, web_int(src, "id"));
		web_cell_text(b, web_str(src, "name"));
		web_cell_text(b, sv != NULL ? web_str(sv, "name") : "?");
		web_cell_text(b, web_str(src, "brokers"));
		web_cell_text(b, web_str(src, "topic"));
		web_cell_text(b, web_str(src, "format"));
		web_cell_text(b, web_str(src, "status"));
		web_cell_text(b, web_str(src, "description"));
		web_buf_printf(b, "</tr>\n");
	}
	web_buf_printf(b, "</table>\n");
	web_more(b, total, cJSON_GetArraySize(sources));
}

static const char web_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<meta http-equiv=\"refresh\" content=\"5\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>Streaming Server</title>\n<style>\n"
	"body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;"
	"color:#222;background:#fafafa}\n"
	"h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em}\n"
	".count{color:#888;font-weight:normal}.note{color:#666}\n"
	"table{border-collapse:collapse;background:#fff;width:100%;font-size:.9em}\n"
	"th,td{border:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}\n"
	"th{background:#f0f0f0;font-weight:600}td.num{text-align:right;"
	"font-variant-numeric:tabular-nums}\n"
	"td.err{color:#a00;max-width:30em;word-break:break-word}\n"
	".state{padding:.1em .5em;border-radius:.8em;background:#eee}\n"
	".state.ok{background:#d4f4dd;color:#155724}.state.bad{background:#f8d7da;"
	"color:#721c24}\n.state.warn{background:#fff3cd;color:#856404}\n"
	"</style>\n</head>\n<body>\n<h1>Streaming Server</h1>\n";

char *web_status_page(struct store *st, size_t *len, char *err, size_t errlen)
{
	struct web_buf b = { NULL, 0, 0, false };
	cJSON *services = NULL, *sources = NULL, *jobs = NULL;
	int64_t nservices = 0, nsources = 0, njobs = 0;
	char now[32];
	time_t t = time(NULL);
	struct tm tm;

	*len = 0;
	if (store_service_list(st, 0, WEB_LIST_MAX, &services, &nservices, err, errlen) < 0 ||
	    store_source_list(st, 0, WEB_LIST_MAX, &sources, &nsources, err, errlen) < 0 ||
	    store_job_list(st, 0, WEB_LIST_MAX, &jobs, &njobs, err, errlen) < 0)
		goto out;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);

	web_buf_put(&b, web_head, sizeof(web_head) - 1);
	web_buf_printf(&b,
		       "<p class=\"note\">%s &middot; refreshes every 5 s &middot; "
		       "REST API under /api/v1</p>\n",
		       now);
	web_jobs(&b, jobs, njobs, sources);
	web_services(&b, services, nservices, sources, jobs);
	web_sources(&b, sources, nsources, services);
	web_buf_printf(&b, "</body>\n</html>\n");
	if (b.failed) {
		snprintf(err, errlen, "out of memory rendering the status page");
		free(b.data);
		b.data = NULL;
		goto out;
	}
	*len = b.len;
out:
	cJSON_Delete(services);
	cJSON_Delete(sources);
	if (jobs != NULL) {
		/* The rows carry the job definitions, passwords included. */
		const cJSON *job;

		cJSON_ArrayForEach(job, jobs) {
			cJSON *def = cJSON_GetObjectItemCaseSensitive(job, "definition");

			if (cJSON_IsString(def) && def->valuestring != NULL)
				explicit_bzero(def->valuestring, strlen(def->valuestring));
		}
		cJSON_Delete(jobs);
	}
	return b.data;
}
