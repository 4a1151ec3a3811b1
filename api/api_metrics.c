#include "api_metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobspec.h"
#include "runtime.h"
#include "version.h"

/* Every job with 512 partitions still fits; beyond this the scrape is
 * refused rather than the controller's memory spent. */
#define API_METRICS_MAX (32 * 1024 * 1024)
#define API_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const api_job_states[] = { "stopped",  "starting", "running", "degraded",
					      "stopping", "retrying", "failed" };

/* The exposition text, grown as it is written. */
struct api_mbuf {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory or over API_METRICS_MAX */
};

static void api_mbuf_printf(struct api_mbuf *mb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void api_mbuf_printf(struct api_mbuf *mb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (mb->failed)
		return;
	for (;;) {
		size_t room = mb->cap - mb->len;

		va_start(ap, fmt);
		n = vsnprintf(mb->p != NULL ? mb->p + mb->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			mb->failed = true;
			return;
		}
		if ((size_t)n < room) {
			mb->len += (size_t)n;
			return;
		}
		size_t cap = mb->cap ? mb->cap * 2 : 65536;
		while (cap < mb->len + (size_t)n + 1)
			cap *= 2;
		if (cap > API_METRICS_MAX) {
			mb->failed = true;
			return;
		}
		char *grown = realloc(mb->p, cap);
		if (grown == NULL) {
			mb->failed = true;
			return;
		}
		mb->p = grown;
		mb->cap = cap;
	}
}

/* A label value in the exposition format: backslash, double quote and line
 * feed escaped.  Writes at most outlen - 1 bytes (job names are short). */
static void api_label_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; in != NULL && *in != '\0' && o + 3 < outlen; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static void api_family(struct api_mbuf *mb, const char *name, const char *type, const char *help)
{
	api_mbuf_printf(mb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* job_name="NAME",job_id="ID" of a job row.  Not "job": Prometheus puts
 * its own job label (the scrape job's name) on every series, and a series'
 * own "job" would be renamed exported_job. */
static void api_job_labels(const cJSON *row, char *out, size_t outlen)
{
	char name[2 * 256 + 1];

	api_label_escape(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "name")), name,
			 sizeof(name));
	snprintf(out, outlen, "job_name=\"%s\",job_id=\"%" PRId64 "\"", name,
		 (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "id")));
}

static int64_t api_row_num(const cJSON *row, const char *key)
{
	return (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, key));
}

/* One counter family from a column of every job row. */
static void api_job_counter(struct api_mbuf *mb, const cJSON *rows, const char *name,
			    const char *column, const char *help)
{
	const cJSON *row;
	char labels[640];

	api_family(mb, name, "counter", help);
	cJSON_ArrayForEach(row, rows) {
		api_job_labels(row, labels, sizeof(labels));
		api_mbuf_printf(mb, "%s{%s} %" PRId64 "\n", name, labels, api_row_num(row, column));
	}
}

static void api_job_histograms(struct api_mbuf *mb, const cJSON *rows, struct runtime_view *rv)
{
	static const char name[] = "streamserver_job_batch_duration_seconds";
	const cJSON *row;
	char labels[640];

	api_family(mb, name, "histogram",
		   "Time from a batch's flush to its commit, since the controller started.");
	cJSON_ArrayForEach(row, rows) {
		uint64_t cumulated = 0;

		api_job_labels(row, labels, sizeof(labels));
		runtime_job_get(api_row_num(row, "id"), rv);
		for (size_t b = 0; b < RUNTIME_NBUCKETS; b++) {
			cumulated += rv->buckets[b];
			api_mbuf_printf(mb, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, labels,
					runtime_bucket_le[b], cumulated);
		}
		cumulated += rv->buckets[RUNTIME_NBUCKETS];
		api_mbuf_printf(mb, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels,
				cumulated);
		api_mbuf_printf(mb, "%s_sum{%s} %.9g\n", name, labels, rv->duration_sum_s);
		api_mbuf_printf(mb, "%s_count{%s} %" PRIu64 "\n", name, labels, rv->duration_count);
	}
}

/* The tombstone counters, kept in memory since the controller started. */
static void api_job_tombstones(struct api_mbuf *mb, const cJSON *rows, struct runtime_view *rv)
{
	static const char deleted[] = "streamserver_job_rows_deleted_total";
	static const char skipped[] = "streamserver_job_tombstones_skipped_total";
	const cJSON *row;
	char labels[640];

	api_family(mb, deleted, "counter",
		   "Target rows deleted by tombstones (DELETE_ON_TOMBSTONE), since the controller started.");
	cJSON_ArrayForEach(row, rows) {
		api_job_labels(row, labels, sizeof(labels));
		runtime_job_get(api_row_num(row, "id"), rv);
		api_mbuf_printf(mb, "%s{%s} %" PRId64 "\n", deleted, labels, rv->rows_deleted);
	}
	api_family(mb, skipped, "counter",
		   "Tombstones (messages without a value) skipped, since the controller started.");
	cJSON_ArrayForEach(row, rows) {
		api_job_labels(row, labels, sizeof(labels));
		runtime_job_get(api_row_num(row, "id"), rv);
		api_mbuf_printf(mb, "%s{%s} %" PRId64 "\n", skipped, labels, rv->tombstones_skipped);
	}
}

static void api_job_lags(struct api_mbuf *mb, const cJSON *rows, struct runtime_view *rv)
{
	static const char name[] = "streamserver_job_lag_messages";
	const cJSON *row;
	char labels[640];

	api_family(mb, name, "gauge",
		   "Consumer lag per partition (high watermark - next offset) in the last report "
		   "of the task that owns it; partitions whose lag is not known are left out.");
	cJSON_ArrayForEach(row, rows) {
		api_job_labels(row, labels, sizeof(labels));
		runtime_job_get(api_row_num(row, "id"), rv);
		for (size_t i = 0; i < rv->nlag; i++)
			if (rv->lag[i].lag >= 0)
				api_mbuf_printf(mb, "%s{%s,partition=\"%" PRId32 "\",task=\"%" PRId32 "\"} %" PRId64 "\n",
						name, labels, rv->lag[i].partition, rv->lag[i].task, rv->lag[i].lag);
	}
}

/* "2026-11-24T07:30:00.123Z" (runtime.h's times) in seconds since the
 * epoch; -1 when it is not such a time (none yet). */
static double api_iso_seconds(const char *iso)
{
	struct tm tm;
	unsigned ms = 0;
	const char *rest;

	memset(&tm, 0, sizeof(tm));
	rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return -1;
	if (sscanf(rest, ".%3uZ", &ms) != 1)
		ms = 0;
	return (double)timegm(&tm) + (double)ms / 1000.0;
}

static void api_job_last_batch(struct api_mbuf *mb, const cJSON *rows, struct runtime_view *rv)
{
	static const char name[] = "streamserver_job_last_batch_timestamp_seconds";
	const cJSON *row;
	char labels[640];

	api_family(mb, name, "gauge",
		   "When the job's last batch committed, in seconds since the epoch; absent "
		   "until its first batch since the controller started.");
	cJSON_ArrayForEach(row, rows) {
		double at;

		runtime_job_get(api_row_num(row, "id"), rv);
		at = api_iso_seconds(rv->last_batch_at);
		if (at < 0)
			continue;
		api_job_labels(row, labels, sizeof(labels));
		api_mbuf_printf(mb, "%s{%s} %.3f\n", name, labels, at);
	}
}

/* Per task of every job: up, restarts, rows/s. */
static void api_task_gauges(struct api_mbuf *mb, const cJSON *rows)
{
	struct runtime_task_view *views = calloc(JS_TASKS_MAX, sizeof(*views)); /* large */
	const cJSON *row;
	char labels[640];

	if (views == NULL) {
		mb->failed = true;
		return;
	}
	api_family(mb, "streamserver_task_up", "gauge",
		   "1 while the task's worker runs (ready, or a standby owning no partition), else 0.");
	cJSON_ArrayForEach(row, rows) {
		int64_t ntasks = api_row_num(row, "tasks");
		size_t n = runtime_job_tasks(api_row_num(row, "id"), views, JS_TASKS_MAX), k = 0;

		api_job_labels(row, labels, sizeof(labels));
		for (int64_t task = 0; task < (ntasks > 0 ? ntasks : 1); task++) {
			bool up = false;

			while (k < n && k < JS_TASKS_MAX && views[k].task < task)
				k++;
			if (k < n && k < JS_TASKS_MAX && views[k].task == task)
				up = strcmp(views[k].state, "running") == 0 || strcmp(views[k].state, "standby") == 0;
			api_mbuf_printf(mb, "streamserver_task_up{%s,task=\"%" PRId64 "\"} %d\n", labels, task,
					up ? 1 : 0);
		}
	}
	free(views);
}

static void api_job_state_gauges(struct api_mbuf *mb, const cJSON *rows)
{
	static const char name[] = "streamserver_job_state";
	int64_t count[NELEM(api_job_states)] = { 0 };
	const cJSON *row;
	char labels[640];

	api_family(mb, name, "gauge", "1 for the job's current state, 0 for the others.");
	cJSON_ArrayForEach(row, rows) {
		const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "state"));

		api_job_labels(row, labels, sizeof(labels));
		for (size_t s = 0; s < NELEM(api_job_states); s++) {
			bool is = state != NULL && strcmp(state, api_job_states[s]) == 0;

			count[s] += is;
			api_mbuf_printf(mb, "%s{%s,state=\"%s\"} %d\n", name, labels,
					api_job_states[s], is ? 1 : 0);
		}
	}
	api_family(mb, "streamserver_jobs", "gauge", "Jobs by state.");
	for (size_t s = 0; s < NELEM(api_job_states); s++)
		api_mbuf_printf(mb, "streamserver_jobs{state=\"%s\"} %" PRId64 "\n", api_job_states[s],
				count[s]);
}

/* ---- the controller's own process, from /proc/self ---- */

/* Reads a small /proc file into buf (NUL-terminated).  Returns its length, or
 * -1. */
static ssize_t api_proc_read(const char *path, char *buf, size_t buflen)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, buflen - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* The value of "KEY: N" in a /proc status-like text, or -1. */
static long long api_proc_field(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *line = text; line != NULL && *line != '\0';) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			return strtoll(line + klen + 1, NULL, 10);
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return -1;
}

struct api_proc {
	double cpu_seconds, start_time;
	long long rss_bytes, vsize_bytes, open_fds, max_fds;
};

static void api_proc_stat(struct api_proc *pr)
{
	char buf[4096];
	const char *p;
	long ticks = sysconf(_SC_CLK_TCK);
	unsigned long long utime = 0, stime = 0, starttime = 0, vsize = 0;
	long long btime;

	if (api_proc_read("/proc/self/stat", buf, sizeof(buf)) < 0 || ticks <= 0)
		return;
	/* The command name may hold spaces and parentheses: fields start after
	 * the last ')', with field 3 (state). */
	p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d"
		   " %llu %llu",
		   &utime, &stime, &starttime, &vsize) != 4)
		return;
	pr->cpu_seconds = (double)(utime + stime) / (double)ticks;
	pr->vsize_bytes = (long long)vsize;
	if (api_proc_read("/proc/stat", buf, sizeof(buf)) < 0)
		return;
	p = strstr(buf, "\nbtime ");
	btime = p != NULL ? strtoll(p + 7, NULL, 10) : -1;
	if (btime > 0)
		pr->start_time = (double)btime + (double)starttime / (double)ticks;
}

static void api_proc_figures(struct api_proc *pr)
{
	char buf[4096];
	DIR *dir;
	struct dirent *de;
	const char *p;

	memset(pr, 0, sizeof(*pr));
	pr->rss_bytes = pr->vsize_bytes = pr->open_fds = pr->max_fds = -1;
	pr->cpu_seconds = pr->start_time = -1;
	api_proc_stat(pr);
	if (api_proc_read("/proc/self/status", buf, sizeof(buf)) >= 0) {
		long long kb = api_proc_field(buf, "VmRSS");

		if (kb >= 0)
			pr->rss_bytes = kb * 1024;
	}
	dir = opendir("/proc/self/fd");
	if (dir != NULL) {
		long long n = 0;

		while ((de = readdir(dir)) != NULL)
			if (de->d_name[0] != '.')
				n++;
		/* Not counting the one this listing holds open. */
		pr->open_fds = n - 1;
		closedir(dir);
	}
	if (api_proc_read("/proc/self/limits", buf, sizeof(buf)) >= 0 &&
	    (p = strstr(buf, "Max open files")) != NULL) {
		p += strlen("Max open files");
		while (*p == ' ')
			p++;
		if (*p >= '0' && *p <= '9')
			pr->max_fds = strtoll(p, NULL, 10);
	}
}

static void api_process_metrics(struct api_mbuf *mb)
{
	struct api_proc pr;

	api_proc_figures(&pr);
	if (pr.cpu_seconds >= 0) {
		api_family(mb, "process_cpu_seconds_total", "counter",
			   "Total user and system CPU time spent in seconds.");
		api_mbuf_printf(mb, "process_cpu_seconds_total %.9g\n", pr.cpu_seconds);
	}
	if (pr.rss_bytes >= 0) {
		api_family(mb, "process_resident_memory_bytes", "gauge",
			   "Resident memory size in bytes.");
		api_mbuf_printf(mb, "process_resident_memory_bytes %lld\n", pr.rss_bytes);
	}
	if (pr.vsize_bytes >= 0) {
		api_family(mb, "process_virtual_memory_bytes", "gauge",
			   "Virtual memory size in bytes.");
		api_mbuf_printf(mb, "process_virtual_memory_bytes %lld\n", pr.vsize_bytes);
	}
	if (pr.open_fds >= 0) {
		api_family(mb, "process_open_fds", "gauge", "Number of open file descriptors.");
		api_mbuf_printf(mb, "process_open_fds %lld\n", pr.open_fds);
	}
	if (pr.max_fds >= 0) {
		api_family(mb, "process_max_fds", "gauge",
			   "Maximum number of open file descriptors.");
		api_mbuf_printf(mb, "process_max_fds %lld\n", pr.max_fds);
	}
	if (pr.start_time >= 0) {
		api_family(mb, "process_start_time_seconds", "gauge",
			   "Start time of the process since unix epoch in seconds.");
		api_mbuf_printf(mb, "process_start_time_seconds %.3f\n", pr.start_time);
	}
}

/* ---- the workers this controller runs, from /proc/<pid> ---- */

/* CPU seconds (user + system) and resident bytes of a worker, from
 * /proc/<pid>/stat and /proc/<pid>/statm.  -1 when it cannot be read (the
 * worker has just ended). */
static int api_worker_usage(int pid, double *cpu_seconds, long long *rss_bytes)
{
	char path[64], buf[4096];
	const char *p;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long utime, stime, size, resident;

	if (pid <= 0 || ticks <= 0 || page <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (api_proc_read(path, buf, sizeof(buf)) < 0)
		return -1;
	/* Fields 14 and 15 after the command name, which may hold ')'. */
	p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
		   &stime) != 2)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	if (api_proc_read(path, buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return -1;
	*cpu_seconds = (double)(utime + stime) / (double)ticks;
	*rss_bytes = (long long)resident * page;
	return 0;
}

struct api_usage {
	char labels[640 + 32];
	double cpu_seconds;
	long long rss_bytes;
};

/* Resident memory and CPU time of each task's worker that this controller
 * runs (another controller of a cluster reports its own). */
static void api_worker_metrics(struct api_mbuf *mb, const cJSON *rows)
{
	static const char mem[] = "streamserver_worker_resident_memory_bytes";
	static const char cpu[] = "streamserver_worker_cpu_seconds_total";
	struct runtime_task_view *views = calloc(JS_TASKS_MAX, sizeof(*views)); /* large */
	struct api_usage *use = NULL;
	size_t nuse = 0, capuse = 0;
	char self[RUNTIME_CONTROLLER_LEN], labels[640];
	const cJSON *row;

	if (views == NULL) {
		mb->failed = true;
		return;
	}
	runtime_get_self(self, sizeof(self));
	cJSON_ArrayForEach(row, rows) {
		size_t n = runtime_job_tasks(api_row_num(row, "id"), views, JS_TASKS_MAX);

		api_job_labels(row, labels, sizeof(labels));
		for (size_t k = 0; k < n && k < JS_TASKS_MAX; k++) {
			const struct runtime_task_view *v = &views[k];
			struct api_usage u;

			if (v->pid <= 0 || (v->controller[0] != '\0' && strcmp(v->controller, self) != 0))
				continue;
			if (api_worker_usage(v->pid, &u.cpu_seconds, &u.rss_bytes) < 0)
				continue;
			snprintf(u.labels, sizeof(u.labels), "%s,task=\"%d\"", labels, v->task);
			if (nuse == capuse) {
				size_t cap = capuse ? capuse * 2 : 16;
				struct api_usage *grown = realloc(use, cap * sizeof(*grown));

				if (grown == NULL) {
					mb->failed = true;
					goto out;
				}
				use = grown;
				capuse = cap;
			}
			use[nuse++] = u;
		}
	}
	api_family(mb, mem, "gauge",
		   "Resident memory of the task's worker process, in bytes; absent while no "
		   "worker runs.");
	for (size_t i = 0; i < nuse; i++)
		api_mbuf_printf(mb, "%s{%s} %lld\n", mem, use[i].labels, use[i].rss_bytes);
	api_family(mb, cpu, "counter",
		   "User and system CPU time of the task's current worker process, in seconds "
		   "(starts again from 0 with each new worker).");
	for (size_t i = 0; i < nuse; i++)
		api_mbuf_printf(mb, "%s{%s} %.9g\n", cpu, use[i].labels, use[i].cpu_seconds);
out:
	free(use);
	free(views);
}

void api_metrics(struct api_req *req)
{
	struct api_mbuf mb = { 0 };
	struct runtime_view *rv = NULL;
	cJSON *rows = NULL, *row;
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
	rv = malloc(sizeof(*rv)); /* large, and civetweb's stacks are small */
	if (rv == NULL) {
		api_reply_error(req, 500, NULL, "out of memory");
		goto out;
	}
	api_job_counter(&mb, rows, "streamserver_job_messages_consumed_total", "messages_consumed",
			"Kafka messages consumed, over the job's life.");
	api_job_counter(&mb, rows, "streamserver_job_rows_written_total", "rows_written",
			"Rows inserted or updated in the target table, over the job's life.");
	api_job_counter(&mb, rows, "streamserver_job_rows_updated_total", "rows_updated",
			"Of the rows written, existing rows updated, over the job's life.");
	api_job_counter(&mb, rows, "streamserver_job_rows_rejected_total", "rows_rejected",
			"Rows rejected to the error table, over the job's life.");
	api_job_counter(&mb, rows, "streamserver_job_batches_total", "batches",
			"Batches committed, over the job's life.");
	api_job_histograms(&mb, rows, rv);
	api_job_tombstones(&mb, rows, rv);
	api_job_lags(&mb, rows, rv);
	api_job_last_batch(&mb, rows, rv);
	api_job_state_gauges(&mb, rows);
	api_task_gauges(&mb, rows);
	api_job_counter(&mb, rows, "streamserver_job_restarts_total", "restarts",
			"Automatic restarts since the user last started the job.");
	api_worker_metrics(&mb, rows);
	api_process_metrics(&mb);
	/* revision: the build's git describe ("" outside a git checkout). */
	api_family(&mb, "streamserver_build_info", "gauge",
		   "The streamserver version and the commit it was built from; always 1.");
	api_mbuf_printf(&mb, "streamserver_build_info{version=\"%s\",revision=\"%s\"} 1\n",
			STREAMSERVER_VERSION, ss_version_git());
	if (mb.failed)
		api_reply_error(req, 500, NULL,
				"the metrics do not fit in %d MB (out of memory, or too many jobs "
				"and partitions)",
				API_METRICS_MAX / (1024 * 1024));
	else
		api_reply_text(req, 200, API_METRICS_TYPE, mb.p, mb.len);
out:
	while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL)
		api_row_free(row); /* the definition holds the password */
	cJSON_Delete(rows);
	free(rv);
	free(mb.p);
}
