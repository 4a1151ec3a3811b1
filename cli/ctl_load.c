/* jobs load (see ctl_load.h). */
#include "ctl_load.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_jobfile.h"
#include "jobspec.h"

#define CTL_LOAD_FILE_MAX (1024u * 1024u) /* the parser's own limit */
#define CTL_LOAD_POLL_MS 1000             /* status is read once a second */
#define CTL_LOAD_LINE_SECONDS 5           /* progress line interval off a TTY */
#define CTL_LOAD_STOP_SECONDS 120         /* waiting for the stop to finish */
#define CTL_LOAD_BAR 24                   /* progress bar width */

static volatile sig_atomic_t ctl_load_interrupted;

static void ctl_load_on_signal(int sig)
{
	(void)sig;
	ctl_load_interrupted = 1;
}

static double ctl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps ms, returning early on a signal. */
static void ctl_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* "a:1, b:2" and "a:1,b:2" are the same broker list. */
static bool ctl_brokers_equal(const char *a, const char *b)
{
	for (;;) {
		while (*a == ' ')
			a++;
		while (*b == ' ')
			b++;
		if (*a == '\0' || *b == '\0')
			return *a == *b;
		if (*a != *b)
			return false;
		a++;
		b++;
	}
}

/* jobs load reports a bad file as an error; jobs validate as its result,
 * in the form of the server's answer (its --json shape with json). */
static void ctl_print_js_errors(const struct ctl *ctl, const char *what,
				const struct js_errors *errs, bool as_result)
{
	FILE *f = as_result ? stdout : stderr;

	if (as_result && ctl->json) {
		cJSON *res = cJSON_CreateObject(), *arr;
		char *text;
		cJSON_AddBoolToObject(res, "valid", false);
		cJSON_AddBoolToObject(res, "database_checked", false);
		arr = cJSON_AddArrayToObject(res, "errors");
		for (size_t i = 0; i < errs->count; i++) {
			cJSON *e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "field", errs->items[i].path);
			if (errs->items[i].line > 0)
				cJSON_AddNumberToObject(e, "line", errs->items[i].line);
			else
				cJSON_AddNullToObject(e, "line");
			cJSON_AddStringToObject(e, "code", "invalid");
			cJSON_AddStringToObject(e, "message", errs->items[i].message);
			cJSON_AddItemToArray(arr, e);
		}
		cJSON_AddArrayToObject(res, "statements");
		if (errs->truncated)
			cJSON_AddBoolToObject(res, "errors_truncated", true);
		text = cJSON_PrintUnformatted(res);
		if (text != NULL)
			printf("%s\n", text);
		free(text);
		cJSON_Delete(res);
		return;
	}
	if (as_result)
		fprintf(f, "invalid:\n");
	else
		fprintf(f, "streamctl: %s: the job definition is invalid:\n", what);
	for (size_t i = 0; i < errs->count; i++) {
		const struct js_error *e = &errs->items[i];
		if (e->line > 0)
			fprintf(f, "  line %d: %s: %s\n", e->line, e->path, e->message);
		else
			fprintf(f, "  %s: %s\n", e->path, e->message);
	}
	if (errs->truncated)
		fprintf(f, "  (more problems not shown)\n");
}

/* The load cannot follow its job any more: stop it rather than leave it
 * running unwatched, or say how to. */
static void ctl_load_abandon(struct ctl *ctl, long long job_id, const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "jobs/%lld/stop", job_id);
	if (ctl_api_json(ctl, "POST", path, NULL, NULL) == CTL_EXIT_OK)
		fprintf(stderr, "streamctl: lost track of job %s (id %lld); asked it to stop\n", name, job_id);
	else
		fprintf(stderr, "streamctl: job %s (id %lld) is still running; stop it with: streamctl jobs stop %lld\n",
			name, job_id, job_id);
}

/* After a create that failed: a 409 is a name another object has. */
static void ctl_load_name_hint(const struct ctl *ctl, const char *kind, const char *name)
{
	if (ctl->last_status == 409)
		fprintf(stderr, "streamctl: a %s named %s exists already; load under another name with "
			"--name NAME (it names the job, and the service and source jobs load makes)\n",
			kind, name);
}

/* The source format and delimiter a job's VALUE block implies. */
static void ctl_source_format(const struct jobspec *spec, cJSON *body)
{
	const struct js_input *v = &spec->value;

	if (v->format == JS_FORMAT_NONE)
		return; /* the API's default */
	cJSON_AddStringToObject(body, "format", js_format_name(v->format));
	if ((v->format == JS_FORMAT_CSV || v->format == JS_FORMAT_DELIMITED) && v->delimiter != NULL &&
	    strlen(v->delimiter) == 1)
		cJSON_AddStringToObject(body, "delimiter", v->delimiter);
}

static int ctl_find_or_make_service(struct ctl *ctl, const struct jobspec *spec,
				    const char *job_name, long long *service_id)
{
	const char *host = spec->host != NULL ? spec->host : "127.0.0.1";
	int port = spec->port > 0 ? spec->port : 5432;
	cJSON *items = NULL, *it, *body = NULL, *made = NULL;
	int rc;

	rc = ctl_api_list_all(ctl, "services", &items);
	if (rc != CTL_EXIT_OK)
		return rc;
	cJSON_ArrayForEach(it, items) {
		const char *h = ctl_json_str(it, "database_host");
		if (h != NULL && strcmp(h, host) == 0 &&
		    (int)ctl_json_num(it, "database_port", 0) == port) {
			*service_id = (long long)ctl_json_num(it, "id", 0);
			printf("using service %s (id %lld) for %s:%d\n", ctl_json_str(it, "name"),
			       *service_id, host, port);
			goto out;
		}
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "name", job_name);
	cJSON_AddStringToObject(body, "description", "made by streamctl jobs load");
	cJSON_AddStringToObject(body, "database_host", host);
	cJSON_AddNumberToObject(body, "database_port", port);
	rc = ctl_api_json(ctl, "POST", "services", body, &made);
	if (rc != CTL_EXIT_OK) {
		ctl_load_name_hint(ctl, "service", job_name);
		goto out;
	}
	*service_id = (long long)ctl_json_num(made, "id", 0);
	printf("created service %s (id %lld) for %s:%d\n", job_name, *service_id, host, port);
out:
	cJSON_Delete(items);
	cJSON_Delete(body);
	cJSON_Delete(made);
	return rc;
}

int ctl_load_source_for_yaml(struct ctl *ctl, const char *yaml, size_t len, const char *job_name,
			     bool create, long long *source_id)
{
	struct jobspec *spec = NULL;
	struct js_errors *errs = calloc(1, sizeof(*errs));
	cJSON *items = NULL, *it, *body = NULL, *made = NULL;
	long long service_id = 0;
	int rc = CTL_EXIT_REFUSED;

	*source_id = 0;
	if (errs == NULL)
		return CTL_EXIT_UNREACHABLE;
	if (jobspec_parse_yaml(yaml, len, &spec, errs) != 0) {
		ctl_print_js_errors(ctl, job_name, errs, !create);
		goto out;
	}
	if (spec->brokers == NULL || spec->topic == NULL) {
		fprintf(stderr, "streamctl: %s: the YAML has no KAFKA.INPUT.SOURCE.%s to find its data "
			"source by; give --source ID_OR_NAME\n", job_name,
			spec->brokers == NULL ? "BROKERS" : "TOPIC");
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	rc = ctl_api_list_all(ctl, "sources", &items);
	if (rc != CTL_EXIT_OK)
		goto out;
	cJSON_ArrayForEach(it, items) {
		const char *b = ctl_json_str(it, "brokers"), *t = ctl_json_str(it, "topic");
		if (b != NULL && t != NULL && strcmp(t, spec->topic) == 0 &&
		    ctl_brokers_equal(b, spec->brokers)) {
			*source_id = (long long)ctl_json_num(it, "id", 0);
			if (create) /* jobs load says what it uses; validate prints only results */
				printf("using source %s (id %lld) for topic %s on %s\n", ctl_json_str(it, "name"),
			       *source_id, spec->topic, spec->brokers);
			goto out;
		}
	}
	if (!create)
		goto out;
	rc = ctl_find_or_make_service(ctl, spec, job_name, &service_id);
	if (rc != CTL_EXIT_OK)
		goto out;
	body = cJSON_CreateObject();
	cJSON_AddNumberToObject(body, "service_id", (double)service_id);
	cJSON_AddStringToObject(body, "name", job_name);
	cJSON_AddStringToObject(body, "description", "made by streamctl jobs load");
	cJSON_AddStringToObject(body, "type", "kafka");
	cJSON_AddStringToObject(body, "brokers", spec->brokers);
	cJSON_AddStringToObject(body, "topic", spec->topic);
	ctl_source_format(spec, body);
	rc = ctl_api_json(ctl, "POST", "sources", body, &made);
	if (rc != CTL_EXIT_OK) {
		ctl_load_name_hint(ctl, "source", job_name);
		goto out;
	}
	*source_id = (long long)ctl_json_num(made, "id", 0);
	printf("created source %s (id %lld) for topic %s on %s\n", job_name, *source_id,
	       spec->topic, spec->brokers);
out:
	cJSON_Delete(items);
	cJSON_Delete(body);
	cJSON_Delete(made);
	jobspec_free(spec);
	free(errs);
	return rc;
}

/* Creates the job, or updates a stopped/failed one of the same name. */
static int ctl_load_submit(struct ctl *ctl, const char *yaml, const char *name,
			   long long source_id, long long *job_id)
{
	cJSON *found = NULL, *body = NULL, *res = NULL;
	char path[64];
	int rc;

	rc = ctl_api_find_name(ctl, "jobs", name, &found);
	if (rc != CTL_EXIT_OK)
		return rc;
	body = ctl_job_body_yaml(yaml, found != NULL ? NULL : name, source_id);
	if (body == NULL) {
		rc = CTL_EXIT_UNREACHABLE;
		goto out;
	}
	if (found == NULL) {
		rc = ctl_api_json(ctl, "POST", "jobs", body, &res);
		if (rc != CTL_EXIT_OK) {
			ctl_load_name_hint(ctl, "job", name);
			goto out;
		}
		*job_id = (long long)ctl_json_num(res, "id", 0);
		printf("created job %s (id %lld)\n", name, *job_id);
	} else {
		const char *state = ctl_json_str(found, "state");
		*job_id = (long long)ctl_json_num(found, "id", 0);
		if (state == NULL || (strcmp(state, "stopped") != 0 && strcmp(state, "failed") != 0)) {
			fprintf(stderr, "streamctl: job %s (id %lld) exists and is %s; stop it first "
				"(streamctl jobs stop %s --wait) or load under another --name\n",
				name, *job_id, state != NULL ? state : "busy", name);
			rc = CTL_EXIT_REFUSED;
			goto out;
		}
		snprintf(path, sizeof(path), "jobs/%lld", *job_id);
		rc = ctl_api_json(ctl, "PATCH", path, body, &res);
		if (rc != CTL_EXIT_OK)
			goto out;
		printf("updated job %s (id %lld)\n", name, *job_id);
	}
out:
	cJSON_Delete(found);
	cJSON_Delete(body);
	cJSON_Delete(res);
	return rc;
}

/* Asks the server to check the job (POST /jobs/validate: the brokers, the
 * topic, the table) before it starts, and says what is wrong: a worker that
 * waits for brokers that do not answer shows only "starting" meanwhile.  The
 * job is started anyway (a topic or table may appear in the meantime). */
static void ctl_load_precheck(struct ctl *ctl, const char *yaml, long long source_id, const char *name)
{
	cJSON *body = ctl_job_body_yaml(yaml, NULL, source_id), *res = NULL;
	const cJSON *e;

	if (body == NULL || ctl_api_json(ctl, "POST", "jobs/validate", body, &res) != CTL_EXIT_OK ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "valid")))
		goto out;
	fprintf(stderr, "streamctl: job %s may not run as it is; the check found:\n", name);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "errors")) {
		char f[256], l[32], c[64], m[1024];
		fprintf(stderr, "  line %s: %s: %s [%s]\n", ctl_json_text(e, "line", l, sizeof(l)),
			ctl_json_text(e, "field", f, sizeof(f)), ctl_json_text(e, "message", m, sizeof(m)),
			ctl_json_text(e, "code", c, sizeof(c)));
	}
	fprintf(stderr, "streamctl: starting it anyway (streamctl jobs validate -f FILE checks again)\n");
out:
	cJSON_Delete(body);
	cJSON_Delete(res);
}

/* True when the job's stored offsets have reached every partition's end
 * (GET /jobs/{id}/offsets: total_lag 0; a partition without a stored
 * offset counts only when it is empty). */
static bool ctl_load_drained(struct ctl *ctl, long long job_id)
{
	char path[64];
	cJSON *res = NULL;
	const cJSON *p, *total;
	bool drained = false;

	snprintf(path, sizeof(path), "jobs/%lld/offsets", job_id);
	if (ctl_api_json(ctl, "GET", path, NULL, &res) != CTL_EXIT_OK)
		return false;
	total = cJSON_GetObjectItemCaseSensitive(res, "total_lag");
	if (!cJSON_IsNumber(total) || total->valuedouble != 0)
		goto out;
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(res, "partitions")) {
		const cJSON *lag = cJSON_GetObjectItemCaseSensitive(p, "lag");
		if (cJSON_IsNumber(lag) ? lag->valuedouble != 0
					: ctl_json_num(p, "high_watermark", -1) !=
						  ctl_json_num(p, "low_watermark", -2))
			goto out;
	}
	drained = true;
out:
	cJSON_Delete(res);
	return drained;
}

struct ctl_progress {
	double rows, rejected, rate, lag; /* lag < 0: unknown */
	const char *state;
	const char *reason; /* last_error of a retrying or failed job, else NULL */
};

static void ctl_progress_show(const struct ctl_progress *p, bool tty, double elapsed)
{
	char lag[32];

	if (p->lag >= 0)
		snprintf(lag, sizeof(lag), "%.0f", p->lag);
	else
		snprintf(lag, sizeof(lag), "?");
	if (tty) {
		char bar[CTL_LOAD_BAR + 1];
		double frac = p->lag >= 0 && p->rows + p->lag > 0 ? p->rows / (p->rows + p->lag) : 0;
		int filled = (int)(frac * CTL_LOAD_BAR);
		for (int i = 0; i < CTL_LOAD_BAR; i++)
			bar[i] = i < filled ? '#' : '-';
		bar[CTL_LOAD_BAR] = '\0';
		/* \033[K clears what a longer previous line left; the reason
		 * is cut so that the line stays one line on a usual terminal */
		printf("\r[%s] %.0f rows  %.1f rows/s  lag %s  %s%s%.100s  %.0fs\033[K", bar, p->rows,
		       p->rate, lag, p->state, p->reason != NULL ? ": " : "",
		       p->reason != NULL ? p->reason : "", elapsed);
	} else {
		printf("%.0fs: %.0f rows, %.1f rows/s, lag %s, %.0f rejected, %s%s%s\n", elapsed, p->rows,
		       p->rate, lag, p->rejected, p->state, p->reason != NULL ? ": " : "",
		       p->reason != NULL ? p->reason : "");
	}
	fflush(stdout);
}

int ctl_load_run(struct ctl *ctl, const char *file, const char *name_arg, const char *source,
		 bool quit_at_eof)
{
	char err[512], name[256], path[128], state_buf[64], lag_at0[64] = "", buf[512], reason[512];
	char *yaml = NULL;
	size_t len;
	long long source_id = 0, job_id = 0;
	cJSON *st = NULL;
	double base_rows, base_rej, t0, last_line = -1e9, last_confirm = -1e9;
	struct ctl_progress prog = {0, 0, 0, -1, "starting", NULL};
	struct sigaction sa;
	bool tty = isatty(STDOUT_FILENO), failed = false, drained = false;
	int rc;

	if (ctl_read_file(file, CTL_LOAD_FILE_MAX, &yaml, &len, err, sizeof(err)) != 0) {
		fprintf(stderr, "streamctl: jobs load %s\n", err);
		return CTL_EXIT_USAGE;
	}
	if (name_arg != NULL)
		snprintf(name, sizeof(name), "%s", name_arg);
	else
		ctl_name_from_file(file, name, sizeof(name));
	if (source != NULL)
		rc = ctl_api_resolve(ctl, "sources", source, &source_id);
	else
		rc = ctl_load_source_for_yaml(ctl, yaml, len, name, true, &source_id);
	if (rc != CTL_EXIT_OK)
		goto out;
	rc = ctl_load_submit(ctl, yaml, name, source_id, &job_id);
	if (rc != CTL_EXIT_OK)
		goto out;
	ctl_load_precheck(ctl, yaml, source_id, name);

	/* Counters are the job's lifetime totals: this load's share is the
	 * difference from here.  The lag report is kept after a stop, so only
	 * one newer than the current one counts. */
	snprintf(path, sizeof(path), "jobs/%lld/status", job_id);
	rc = ctl_api_json(ctl, "GET", path, NULL, &st);
	if (rc != CTL_EXIT_OK)
		goto out;
	base_rows = ctl_json_num(st, "rows_written", 0);
	base_rej = ctl_json_num(st, "rows_rejected", 0);
	ctl_json_text(cJSON_GetObjectItemCaseSensitive(st, "lag"), "updated_at", lag_at0,
		      sizeof(lag_at0));
	cJSON_Delete(st);
	st = NULL;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_load_on_signal; /* no SA_RESTART: a signal ends the sleep */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	snprintf(path, sizeof(path), "jobs/%lld/start", job_id);
	rc = ctl_api_json(ctl, "POST", path, NULL, NULL);
	if (rc != CTL_EXIT_OK)
		goto out;
	t0 = ctl_now();
	printf("started job %s (id %lld)%s\n", name, job_id,
	       quit_at_eof ? "; stops when the topic is drained" : "; Ctrl-C stops it");
	fflush(stdout);

	snprintf(path, sizeof(path), "jobs/%lld/status", job_id);
	while (!ctl_load_interrupted) {
		const cJSON *lag;
		double now, elapsed;
		bool lag_fresh = false, lag_known;

		rc = ctl_api_json(ctl, "GET", path, NULL, &st);
		if (rc != CTL_EXIT_OK && ctl_load_interrupted)
			break; /* Ctrl-C during the request: stopped below */
		if (rc != CTL_EXIT_OK) {
			ctl_load_abandon(ctl, job_id, name);
			goto out;
		}
		now = ctl_now();
		elapsed = now - t0;
		snprintf(state_buf, sizeof(state_buf), "%s", ctl_json_str(st, "state") ? ctl_json_str(st, "state") : "?");
		prog.state = state_buf;
		prog.reason = NULL;
		if ((strcmp(state_buf, "retrying") == 0 || strcmp(state_buf, "failed") == 0) &&
		    ctl_json_str(st, "last_error") != NULL) {
			snprintf(reason, sizeof(reason), "%s", ctl_json_str(st, "last_error"));
			prog.reason = reason;
		}
		prog.rows = ctl_json_num(st, "rows_written", 0) - base_rows;
		prog.rejected = ctl_json_num(st, "rows_rejected", 0) - base_rej;
		prog.rate = ctl_json_num(st, "rows_per_second", elapsed > 0 ? prog.rows / elapsed : 0);
		lag = cJSON_GetObjectItemCaseSensitive(st, "lag");
		lag_known = cJSON_IsObject(lag);
		prog.lag = -1;
		if (lag_known) {
			char at[64];
			ctl_json_text(lag, "updated_at", at, sizeof(at));
			lag_fresh = strcmp(at, "-") != 0 && strcmp(at, lag_at0) != 0;
			if (lag_fresh)
				prog.lag = ctl_json_num(lag, "total", -1);
		}
		if (strcmp(state_buf, "failed") == 0) {
			if (tty)
				putchar('\n');
			fprintf(stderr, "streamctl: job %s (id %lld) failed: %s\n", name, job_id,
				ctl_json_text(st, "last_error", buf, sizeof(buf)));
			failed = true;
			break;
		}
		if (tty || now - last_line >= CTL_LOAD_LINE_SECONDS) {
			ctl_progress_show(&prog, tty, elapsed);
			last_line = now;
		}
		/* Drained: the worker's lag report says 0 (or, from a server
		 * without lag reports, every 5 s), confirmed by the stored
		 * offsets, which is what the table holds. */
		if (quit_at_eof && strcmp(state_buf, "running") == 0 &&
		    ((lag_fresh && prog.lag == 0) ||
		     (!lag_known && now - last_confirm >= CTL_LOAD_LINE_SECONDS))) {
			last_confirm = now;
			if (ctl_load_drained(ctl, job_id)) {
				drained = true;
				break;
			}
		}
		cJSON_Delete(st);
		st = NULL;
		ctl_sleep_ms(CTL_LOAD_POLL_MS);
	}
	cJSON_Delete(st);
	st = NULL;
	if (tty && !failed)
		putchar('\n');
	if (failed) {
		rc = CTL_EXIT_JOB_FAILED;
		goto out;
	}
	printf("%s; stopping job %s (id %lld)\n", drained ? "topic drained" : "interrupted", name,
	       job_id);
	fflush(stdout);

	/* Stop, and wait for it so that the summary counts every batch. */
	snprintf(path, sizeof(path), "jobs/%lld/stop", job_id);
	rc = ctl_api_json(ctl, "POST", path, NULL, NULL);
	if (rc != CTL_EXIT_OK)
		goto out;
	/* The stop is asked for: a second Ctrl-C need not wait for it. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	snprintf(path, sizeof(path), "jobs/%lld/status", job_id);
	for (double deadline = ctl_now() + CTL_LOAD_STOP_SECONDS;;) {
		const char *state;
		rc = ctl_api_json(ctl, "GET", path, NULL, &st);
		if (rc != CTL_EXIT_OK)
			goto out;
		state = ctl_json_str(st, "state");
		if (state != NULL && (strcmp(state, "stopped") == 0 || strcmp(state, "failed") == 0))
			break;
		if (ctl_now() >= deadline) {
			fprintf(stderr, "streamctl: job %lld still %s %d s after the stop\n", job_id,
				state != NULL ? state : "?", CTL_LOAD_STOP_SECONDS);
			rc = CTL_EXIT_UNREACHABLE;
			goto out;
		}
		cJSON_Delete(st);
		st = NULL;
		ctl_sleep_ms(200);
	}
	{
		double secs = ctl_now() - t0;
		double rows = ctl_json_num(st, "rows_written", 0) - base_rows;
		double rej = ctl_json_num(st, "rows_rejected", 0) - base_rej;
		printf("loaded %.0f rows, %.0f rejected, in %.1f s (%.1f rows/s); job %s is %s\n", rows,
		       rej, secs, secs > 0 ? rows / secs : 0.0, name, ctl_json_str(st, "state"));
		if (ctl_json_str(st, "state") != NULL && strcmp(ctl_json_str(st, "state"), "failed") == 0) {
			fprintf(stderr, "streamctl: job %s failed: %s\n", name,
				ctl_json_text(st, "last_error", buf, sizeof(buf)));
			rc = CTL_EXIT_JOB_FAILED;
		}
	}
out:
	cJSON_Delete(st);
	free(yaml);
	return rc;
}
