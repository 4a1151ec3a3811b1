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

/* How a column of a table shows its row. */
enum web_cell {
	WEB_TEXT,     /* the string at key */
	WEB_NUM,      /* the integer at key */
	WEB_PARENT,   /* the name of the row whose id is at key, in the parent list */
	WEB_STATE,    /* a job's state, as a badge */
	WEB_ERROR,    /* the string at key, as an error */
	WEB_HOSTPORT, /* a service's database_host:database_port */
	WEB_COUNT,    /* the per-row count the caller worked out */
};

struct web_col {
	const char *title;
	const char *key;
	enum web_cell cell;
};

struct web_table {
	const char *title;
	const char *empty; /* what to say when there are no rows */
	const struct web_col *cols;
	size_t ncols;
};

static void web_cell_state(struct web_buf *b, const char *state)
{
	static const struct {
		const char *state;
		const char *cls;
	} classes[] = { { "running", "ok" }, { "failed", "bad" }, { "retrying", "warn" }, { "degraded", "warn" } };
	const char *cls = "idle";

	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strcmp(state, classes[i].state) == 0)
			cls = classes[i].cls;
	web_buf_printf(b, "<td><span class=\"state %s\">", cls);
	web_buf_text(b, state);
	web_buf_printf(b, "</span></td>");
}

static void web_cell(struct web_buf *b, const struct web_col *col, const cJSON *row,
		     const cJSON *parents, long long count)
{
	const cJSON *parent;

	switch (col->cell) {
	case WEB_TEXT:
		web_cell_text(b, web_str(row, col->key));
		break;
	case WEB_NUM:
		web_cell_int(b, web_int(row, col->key));
		break;
	case WEB_PARENT:
		parent = web_find(parents, web_int(row, col->key));
		web_cell_text(b, parent != NULL ? web_str(parent, "name") : "?");
		break;
	case WEB_STATE:
		web_cell_state(b, web_str(row, col->key));
		break;
	case WEB_ERROR:
		web_buf_printf(b, "<td class=\"err\">");
		web_buf_text(b, web_str(row, col->key));
		web_buf_printf(b, "</td>");
		break;
	case WEB_HOSTPORT:
		web_buf_printf(b, "<td>");
		web_buf_text(b, web_str(row, "database_host"));
		web_buf_printf(b, ":%lld</td>", web_int(row, "database_port"));
		break;
	case WEB_COUNT:
		web_cell_int(b, count);
		break;
	}
}

/* One section of the page; counts (one per row, may be NULL) feed WEB_COUNT. */
static void web_section(struct web_buf *b, const struct web_table *tbl, const cJSON *rows,
			int64_t total, const cJSON *parents, const long long *counts)
{
	const cJSON *row;
	int i = 0;

	web_buf_printf(b, "<h2>%s <span class=\"count\">%lld</span></h2>\n", tbl->title,
		       (long long)total);
	if (total == 0) {
		web_buf_printf(b, "<p class=\"note\">%s</p>\n", tbl->empty);
		return;
	}
	web_buf_printf(b, "<table>\n<tr>");
	for (size_t c = 0; c < tbl->ncols; c++)
		web_buf_printf(b, "<th>%s</th>", tbl->cols[c].title);
	web_buf_printf(b, "</tr>\n");
	cJSON_ArrayForEach(row, rows) {
		web_buf_printf(b, "<tr>");
		for (size_t c = 0; c < tbl->ncols; c++)
			web_cell(b, &tbl->cols[c], row, parents, counts != NULL ? counts[i] : 0);
		web_buf_printf(b, "</tr>\n");
		i++;
	}
	web_buf_printf(b, "</table>\n");
	web_more(b, total, i);
}

static const struct web_col job_cols[] = {
	{ "id", "id", WEB_NUM },
	{ "name", "name", WEB_TEXT },
	{ "source", "source_id", WEB_PARENT },
	{ "mode", "mode", WEB_TEXT },
	{ "wanted", "desired_state", WEB_TEXT },
	{ "state", "state", WEB_STATE },
	{ "tasks", "tasks", WEB_NUM },
	{ "messages consumed", "messages_consumed", WEB_NUM },
	{ "rows written", "rows_written", WEB_NUM },
	{ "rows rejected", "rows_rejected", WEB_NUM },
	{ "restarts", "restarts", WEB_NUM },
	{ "started", "started_at", WEB_TEXT },
	{ "last error", "last_error", WEB_ERROR },
	{ "last exit", "last_exit", WEB_TEXT },
};

static const struct web_col service_cols[] = {
	{ "id", "id", WEB_NUM },
	{ "name", "name", WEB_TEXT },
	{ "jobs wanted running", NULL, WEB_COUNT },
	{ "spec_cu", "spec_cu", WEB_NUM },
	{ "database", NULL, WEB_HOSTPORT },
	{ "status", "status", WEB_TEXT },
	{ "description", "description", WEB_TEXT },
};

static const struct web_col source_cols[] = {
	{ "id", "id", WEB_NUM },
	{ "name", "name", WEB_TEXT },
	{ "service", "service_id", WEB_PARENT },
	{ "brokers", "brokers", WEB_TEXT },
	{ "topic", "topic", WEB_TEXT },
	{ "format", "format", WEB_TEXT },
	{ "status", "status", WEB_TEXT },
	{ "description", "description", WEB_TEXT },
};

#define WEB_TABLE(title, empty, cols) { title, empty, cols, sizeof(cols) / sizeof((cols)[0]) }

static const struct web_table jobs_table =
	WEB_TABLE("Jobs", "No jobs yet: POST /api/v1/jobs.", job_cols);
static const struct web_table services_table =
	WEB_TABLE("Data services", "No services yet: POST /api/v1/services.", service_cols);
static const struct web_table sources_table =
	WEB_TABLE("Data sources", "No sources yet: POST /api/v1/sources.", source_cols);

/* Jobs wanted running per service shown, against its spec_cu: malloc'd, one
 * per service row; NULL on out of memory. */
static long long *web_wanted(const cJSON *services, const cJSON *sources, const cJSON *jobs)
{
	long long *wanted = calloc((size_t)cJSON_GetArraySize(services) + 1, sizeof(*wanted));
	const cJSON *job, *sv;

	cJSON_ArrayForEach(job, jobs) {
		const cJSON *src = web_find(sources, web_int(job, "source_id"));
		int i = 0;

		if (wanted == NULL || src == NULL ||
		    strcmp(web_str(job, "desired_state"), "running") != 0)
			continue;
		cJSON_ArrayForEach(sv, services) {
			if (web_int(sv, "id") == web_int(src, "service_id"))
				wanted[i]++;
			i++;
		}
	}
	return wanted;
}

/* The document up to the no-JS summary.  The summary refreshes itself only
 * when scripts are off (the meta refresh sits in <noscript>); with scripts,
 * /ui/app.js fills the sections below in place and never reloads. */
static const char web_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>Streaming Server</title>\n"
	"<link rel=\"icon\" href=\"data:,\">\n" /* no /favicon.ico request */
	"<link rel=\"stylesheet\" href=\"/ui/style.css\">\n"
	"<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\n"
	"<script src=\"/ui/app.js\" defer></script>\n"
	"</head>\n<body>\n<header>\n<h1>Streaming Server</h1>\n"
	"<p class=\"note\" id=\"status-line\" role=\"status\" aria-live=\"polite\"></p>\n"
	"<button id=\"token-forget\" type=\"button\" hidden>Forget token</button>\n"
	"</header>\n";

/* What the script fills: ids and data-* attributes are its (and the
 * browser test's) handles. */
static const char web_app[] =
	"<section id=\"auth\" class=\"auth\" hidden>\n"
	"<h2>API token</h2>\n"
	"<p id=\"auth-message\" class=\"note\"></p>\n"
	"<form id=\"auth-form\" autocomplete=\"off\">\n"
	"<label for=\"token-input\">Bearer token</label>\n"
	"<input id=\"token-input\" name=\"token\" type=\"password\" size=\"48\" required>\n"
	"<button id=\"token-save\" type=\"submit\">Use token</button>\n"
	"</form>\n"
	"<p class=\"note\">Kept for this browser tab only (sessionStorage).</p>\n"
	"</section>\n"
	"<main id=\"app\" hidden>\n"
	"<section id=\"jobs\" aria-labelledby=\"jobs-title\">\n"
	"<div class=\"section-head\">\n"
	"<h2 id=\"jobs-title\">Jobs <span class=\"count\" id=\"jobs-count\"></span></h2>\n"
	"<button id=\"new-job-toggle\" type=\"button\" aria-expanded=\"false\" "
	"aria-controls=\"new-job\">New job</button>\n"
	"</div>\n"
	"<p id=\"jobs-empty\" class=\"note\" hidden>No jobs yet: create one with New job or "
	"POST /api/v1/jobs.</p>\n"
	"<table id=\"jobs-table\">\n<thead><tr><th>id</th><th>name</th><th>source</th>"
	"<th>topic &rarr; table</th>"
	"<th>state</th><th>tasks</th><th class=\"num\" "
	"title=\"rows written per second, with its trend over the last 15 minutes\">rows/s</th>"
	"<th class=\"num\" title=\"consumer lag in messages, with its age and its trend over "
	"the last 15 minutes\">lag</th><th>last batch</th>"
	"<th class=\"num\">rows written</th><th class=\"num\">rows rejected</th>"
	"<th class=\"num\">restarts</th><th>last error</th><th>actions</th></tr></thead>\n"
	"<tbody id=\"jobs-body\"></tbody>\n</table>\n"
	"</section>\n"
	/* One job's view, filled when its name is clicked. */
	"<section id=\"job-view\" class=\"job-view\" aria-labelledby=\"job-view-title\" hidden>\n"
	"<div class=\"section-head\">\n"
	"<h2 id=\"job-view-title\"></h2>\n"
	"<button id=\"job-view-close\" type=\"button\">Close</button>\n"
	"</div>\n"
	"<p id=\"job-view-summary\" class=\"note\"></p>\n"
	"<div class=\"job-view-actions\">\n"
	"<button id=\"job-view-reload\" type=\"button\">Reload offsets and rejected rows</button>\n"
	"<label for=\"job-reset-to\">Reset offsets to</label>\n"
	"<select id=\"job-reset-to\"><option value=\"earliest\">earliest</option>"
	"<option value=\"latest\">latest</option></select>\n"
	"<button id=\"job-reset\" type=\"button\">Reset offsets</button>\n"
	"<button id=\"job-delete\" type=\"button\" class=\"danger\">Delete job</button>\n"
	"<span id=\"job-view-message\" role=\"status\"></span>\n"
	"</div>\n"
	"<div id=\"job-delete-confirm\" class=\"confirm\" role=\"alertdialog\" "
	"aria-labelledby=\"job-delete-question\" hidden>\n"
	"<p id=\"job-delete-question\"></p>\n"
	"<button id=\"job-delete-yes\" type=\"button\" class=\"danger\">Delete</button>\n"
	"<button id=\"job-delete-no\" type=\"button\">Cancel</button>\n"
	"</div>\n"
	"<h3>Tasks</h3>\n"
	"<table id=\"job-tasks-table\">\n<thead><tr><th>task</th><th>state</th><th>pid</th>"
	"<th>partitions</th><th class=\"num\">rows/s</th><th class=\"num\">lag</th>"
	"<th class=\"num\">restarts</th><th>last error</th></tr></thead>\n"
	"<tbody id=\"job-tasks-body\"></tbody>\n</table>\n"
	"<h3>Partitions and offsets</h3>\n"
	"<p id=\"job-offsets-note\" class=\"note\"></p>\n"
	"<table id=\"job-offsets-table\">\n<thead><tr><th class=\"num\">partition</th>"
	"<th class=\"num\">stored offset</th><th class=\"num\">low watermark</th>"
	"<th class=\"num\">high watermark</th><th class=\"num\">lag</th></tr></thead>\n"
	"<tbody id=\"job-offsets-body\"></tbody>\n</table>\n"
	"<h3>Latest rejected rows <span class=\"count\" id=\"job-rejects-count\"></span></h3>\n"
	"<p id=\"job-rejects-note\" class=\"note\"></p>\n"
	"<table id=\"job-rejects-table\">\n<thead><tr><th>when</th><th class=\"num\">partition</th>"
	"<th class=\"num\">offset</th><th>error</th><th>payload</th></tr></thead>\n"
	"<tbody id=\"job-rejects-body\"></tbody>\n</table>\n"
	"<h3>Effective YAML</h3>\n"
	"<pre id=\"job-view-yaml\" class=\"yaml\"></pre>\n"
	"</section>\n"
	"<section id=\"new-job\" aria-labelledby=\"new-job-title\" hidden>\n"
	"<h2 id=\"new-job-title\">New job</h2>\n"
	"<form id=\"job-form\" novalidate>\n"
	"<div class=\"row\"><label for=\"job-name\">Name</label>\n"
	"<input id=\"job-name\" name=\"name\" maxlength=\"64\" required></div>\n"
	"<div class=\"row\"><label for=\"job-source\">Source</label>\n"
	"<select id=\"job-source\" name=\"source_id\" required></select></div>\n"
	"<div class=\"row\"><label for=\"job-config\">YAML (professional mode)</label></div>\n"
	"<div class=\"editor-wrap\">\n"
	"<div class=\"editor\"><pre id=\"job-config-gutter\" class=\"gutter\" "
	"aria-hidden=\"true\"></pre>\n"
	"<textarea id=\"job-config\" name=\"config\" rows=\"18\" cols=\"72\" spellcheck=\"false\" "
	"wrap=\"off\" aria-describedby=\"job-errors\"></textarea></div>\n"
	"<div class=\"problems\"><h3>Problems</h3>\n"
	"<ul id=\"job-errors\" aria-live=\"polite\"></ul></div>\n"
	"</div>\n"
	"<p><button id=\"job-submit\" type=\"submit\">Create job</button>\n"
	"<span id=\"job-form-message\" role=\"status\"></span></p>\n"
	"</form>\n"
	"</section>\n"
	"<section id=\"services\" aria-labelledby=\"services-title\">\n"
	"<h2 id=\"services-title\">Data services <span class=\"count\" "
	"id=\"services-count\"></span></h2>\n"
	"<table id=\"services-table\">\n<thead><tr><th>id</th><th>name</th>"
	"<th class=\"num\">jobs wanted running</th><th class=\"num\">spec_cu</th>"
	"<th>database</th><th>status</th><th>description</th></tr></thead>\n"
	"<tbody id=\"services-body\"></tbody>\n</table>\n"
	"</section>\n"
	"<section id=\"sources\" aria-labelledby=\"sources-title\">\n"
	"<h2 id=\"sources-title\">Data sources <span class=\"count\" "
	"id=\"sources-count\"></span></h2>\n"
	"<table id=\"sources-table\">\n<thead><tr><th>id</th><th>name</th><th>service</th>"
	"<th>brokers</th><th>topic</th><th>format</th><th>status</th><th>description</th>"
	"</tr></thead>\n<tbody id=\"sources-body\"></tbody>\n</table>\n"
	"</section>\n"
	"</main>\n";

char *web_status_page(struct store *st, size_t *len, char *err, size_t errlen)
{
	struct web_buf b = { NULL, 0, 0, false };
	cJSON *services = NULL, *sources = NULL, *jobs = NULL;
	int64_t nservices = 0, nsources = 0, njobs = 0;
	long long *wanted = NULL;
	char now[32];
	time_t t = time(NULL);
	struct tm tm;

	*len = 0;
	if (st != NULL &&
	    (store_row_list(st, STORE_SERVICE, 0, WEB_LIST_MAX, &services, &nservices, err,
			    errlen) < 0 ||
	     store_row_list(st, STORE_SOURCE, 0, WEB_LIST_MAX, &sources, &nsources, err,
			    errlen) < 0 ||
	     store_row_list(st, STORE_JOB, 0, WEB_LIST_MAX, &jobs, &njobs, err, errlen) < 0))
		goto out;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);

	web_buf_put(&b, web_head, sizeof(web_head) - 1);
	web_buf_put(&b, web_app, sizeof(web_app) - 1);
	web_buf_printf(&b, "<noscript>\n<div id=\"summary\">\n");
	if (st != NULL) {
		web_buf_printf(&b,
			       "<p class=\"note\">%s &middot; without scripts this summary "
			       "refreshes every 5 s &middot; REST API under /api/v1</p>\n",
			       now);
		wanted = web_wanted(services, sources, jobs);
		web_section(&b, &jobs_table, jobs, njobs, sources, NULL);
		web_section(&b, &services_table, services, nservices, NULL, wanted);
		web_section(&b, &sources_table, sources, nsources, services, NULL);
	} else {
		web_buf_printf(&b, "<p class=\"note\">The API needs a token: turn on scripts to "
				   "enter it, or use the REST API under /api/v1.</p>\n");
	}
	web_buf_printf(&b, "</div>\n</noscript>\n</body>\n</html>\n");
	if (b.failed) {
		snprintf(err, errlen, "out of memory rendering the status page");
		free(b.data);
		b.data = NULL;
		goto out;
	}
	*len = b.len;
out:
	free(wanted);
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

extern const struct embedded_file web_files[];

const struct embedded_file *web_asset(const char *name)
{
	return embedded_find(web_files, name);
}
