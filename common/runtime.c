#include "runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double runtime_bucket_le[RUNTIME_NBUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
						     0.5,   1,	  2.5,	 5,    10 };

/* The rate window in slots of 100 ms: precise enough for a rate, small
 * enough to keep per task (2.4 KB). */
#define RUNTIME_SLOT_MS 100
#define RUNTIME_NSLOTS (RUNTIME_RATE_WINDOW_S * 1000 / RUNTIME_SLOT_MS)

struct runtime_slot {
	int64_t tag; /* monotonic ms / RUNTIME_SLOT_MS of what it counts; -1 empty */
	int64_t rows, messages;
};

/* One task of a job: its worker's rate window, last lag report and
 * assignment, and what the supervisor says of it. */
struct runtime_task {
	int task;
	bool running;
	int pid;
	char state[16];
	int64_t restarts;
	char last_error[RUNTIME_ERROR_LEN];
	int64_t started_ms; /* monotonic, the worker's start */
	struct runtime_slot slots[RUNTIME_NSLOTS];
	bool lag_known;
	int64_t lag_total;
	int64_t lag_seq; /* order of the reports, for the newest of a partition */
	char lag_updated_at[RUNTIME_TIME_LEN];
	size_t nlag, lag_cap;
	struct runtime_lag *lag; /* malloc'd, lag_cap entries */
	bool assign_known;
	size_t nparts, parts_cap;
	int32_t *parts; /* malloc'd, parts_cap entries */
	/* Run by another controller of the cluster ("": by this one): the
	 * figures are what it published (runtime_task_remote). */
	char controller[RUNTIME_CONTROLLER_LEN];
	double remote_rows_ps;
};

/* This controller's name, and whether task views show it (a cluster). */
static char runtime_self[RUNTIME_CONTROLLER_LEN];
static bool runtime_self_shown;

struct runtime_job {
	int64_t job_id;
	char last_batch_at[RUNTIME_TIME_LEN];
	uint64_t buckets[RUNTIME_NBUCKETS + 1];
	uint64_t duration_count;
	double duration_sum_s;
	int64_t rows_deleted, tombstones_skipped;
	struct runtime_task **tasks; /* malloc'd array of malloc'd entries, by index */
	size_t ntasks, tasks_cap;
};

static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct runtime_job **runtime_jobs; /* malloc'd array of malloc'd entries */
static size_t runtime_njobs, runtime_cap;
static int64_t (*runtime_clock)(void);
static int64_t runtime_lag_seq;

static int64_t runtime_mono_ms(void)
{
	struct timespec ts;

	if (runtime_clock != NULL)
		return runtime_clock();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void runtime_iso_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n > 0 && n < len)
		snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

static void runtime_slots_clear(struct runtime_task *t)
{
	for (size_t i = 0; i < RUNTIME_NSLOTS; i++)
		t->slots[i] = (struct runtime_slot){ .tag = -1 };
}

/* The job's entry, created when create is set.  NULL when absent or out of
 * memory (figures are then lost, which only the status shows). */
static struct runtime_job *runtime_find_locked(int64_t job_id, bool create)
{
	struct runtime_job *job, **grown;

	for (size_t i = 0; i < runtime_njobs; i++)
		if (runtime_jobs[i]->job_id == job_id)
			return runtime_jobs[i];
	if (!create)
		return NULL;
	if (runtime_njobs == runtime_cap) {
		size_t cap = runtime_cap ? runtime_cap * 2 : 16;

		grown = realloc(runtime_jobs, cap * sizeof(*grown));
		if (grown == NULL)
			return NULL;
		runtime_jobs = grown;
		runtime_cap = cap;
	}
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		return NULL;
	job->job_id = job_id;
	runtime_jobs[runtime_njobs++] = job;
	return job;
}

/* The task's entry (created with state "stopped"), kept ordered by index. */
static struct runtime_task *runtime_task_find_locked(struct runtime_job *job, int task, bool create)
{
	struct runtime_task *t, **grown;
	size_t at;

	if (job == NULL || task < 0)
		return NULL;
	for (at = 0; at < job->ntasks && job->tasks[at]->task <= task; at++)
		if (job->tasks[at]->task == task)
			return job->tasks[at];
	if (!create)
		return NULL;
	if (job->ntasks == job->tasks_cap) {
		size_t cap = job->tasks_cap ? job->tasks_cap * 2 : 4;

		grown = realloc(job->tasks, cap * sizeof(*grown));
		if (grown == NULL)
			return NULL;
		job->tasks = grown;
		job->tasks_cap = cap;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->task = task;
	snprintf(t->state, sizeof(t->state), "stopped");
	runtime_slots_clear(t);
	memmove(&job->tasks[at + 1], &job->tasks[at], (job->ntasks - at) * sizeof(job->tasks[0]));
	job->tasks[at] = t;
	job->ntasks++;
	return t;
}

static struct runtime_task *runtime_task_locked(int64_t job_id, int task, bool create)
{
	return runtime_task_find_locked(runtime_find_locked(job_id, create), task, create);
}

static void runtime_task_free(struct runtime_task *t)
{
	if (t == NULL)
		return;
	free(t->lag);
	free(t->parts);
	free(t);
}

static void runtime_job_free(struct runtime_job *job)
{
	if (job == NULL)
		return;
	for (size_t i = 0; i < job->ntasks; i++)
		runtime_task_free(job->tasks[i]);
	free(job->tasks);
	free(job);
}

void runtime_task_started(int64_t job_id, int task, int pid)
{
	struct runtime_task *t;

	pthread_mutex_lock(&runtime_lock);
	t = runtime_task_locked(job_id, task, true);
	if (t != NULL) {
		t->running = true;
		t->pid = pid;
		t->controller[0] = '\0';
		t->started_ms = runtime_mono_ms();
		t->assign_known = false;
		t->nparts = 0;
		snprintf(t->state, sizeof(t->state), "starting");
		runtime_slots_clear(t);
	}
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_task_ended(int64_t job_id, int task)
{
	struct runtime_task *t;

	pthread_mutex_lock(&runtime_lock);
	t = runtime_task_locked(job_id, task, false);
	if (t != NULL) {
		t->running = false;
		t->pid = 0;
		t->assign_known = false;
		t->nparts = 0;
		runtime_slots_clear(t);
	}
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_task_set_state(int64_t job_id, int task, const char *state, int64_t restarts,
			    const char *last_error)
{
	struct runtime_task *t;

	pthread_mutex_lock(&runtime_lock);
	t = runtime_task_locked(job_id, task, true);
	if (t != NULL) {
		snprintf(t->state, sizeof(t->state), "%s", state);
		t->restarts = restarts;
		if (last_error != NULL)
			snprintf(t->last_error, sizeof(t->last_error), "%s", last_error);
	}
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_job_tombstones(int64_t job_id, int64_t deleted, int64_t skipped)
{
	struct runtime_job *job;

	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, true);
	if (job != NULL) {
		job->rows_deleted += deleted > 0 ? deleted : 0;
		job->tombstones_skipped += skipped > 0 ? skipped : 0;
	}
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_task_batch(int64_t job_id, int task, int64_t messages, int64_t rows, int64_t duration_ms)
{
	struct runtime_job *job;
	struct runtime_task *t;
	double seconds = duration_ms > 0 ? (double)duration_ms / 1000.0 : 0;
	size_t b = 0;

	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, true);
	t = runtime_task_find_locked(job, task, true);
	if (job == NULL)
		goto out;
	if (t != NULL && t->running) {
		int64_t tag = runtime_mono_ms() / RUNTIME_SLOT_MS;
		struct runtime_slot *slot = &t->slots[tag % RUNTIME_NSLOTS];

		if (slot->tag != tag)
			*slot = (struct runtime_slot){ .tag = tag };
		slot->rows += rows > 0 ? rows : 0;
		slot->messages += messages > 0 ? messages : 0;
	}
	runtime_iso_now(job->last_batch_at, sizeof(job->last_batch_at));
	while (b < RUNTIME_NBUCKETS && seconds > runtime_bucket_le[b])
		b++;
	job->buckets[b]++;
	job->duration_count++;
	job->duration_sum_s += seconds;
out:
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_task_lag(int64_t job_id, int task, int64_t total, const struct proto_lag *parts, size_t n)
{
	struct runtime_task *t;

	if (n > PROTO_LAG_MAX)
		n = PROTO_LAG_MAX;
	pthread_mutex_lock(&runtime_lock);
	t = runtime_task_locked(job_id, task, true);
	if (t == NULL)
		goto out;
	if (n > t->lag_cap) {
		struct runtime_lag *grown = realloc(t->lag, n * sizeof(*grown));

		if (grown == NULL)
			goto out;
		t->lag = grown;
		t->lag_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		t->lag[i].partition = parts[i].partition;
		t->lag[i].task = task;
		t->lag[i].lag = parts[i].lag < 0 ? -1 : parts[i].lag;
	}
	t->nlag = n;
	t->lag_total = total < 0 ? 0 : total;
	t->lag_known = true;
	t->lag_seq = ++runtime_lag_seq;
	runtime_iso_now(t->lag_updated_at, sizeof(t->lag_updated_at));
out:
	pthread_mutex_unlock(&runtime_lock);
}

static bool runtime_has_part(const int32_t *parts, size_t n, int32_t p)
{
	for (size_t i = 0; i < n; i++)
		if (parts[i] == p)
			return true;
	return false;
}

void runtime_task_assign(int64_t job_id, int task, const int32_t *parts, size_t n)
{
	struct runtime_task *t;
	size_t kept = 0;
	int64_t total = 0;

	if (n > PROTO_LAG_MAX)
		n = PROTO_LAG_MAX;
	pthread_mutex_lock(&runtime_lock);
	t = runtime_task_locked(job_id, task, true);
	if (t == NULL)
		goto out;
	if (n > t->parts_cap) {
		int32_t *grown = realloc(t->parts, n * sizeof(*grown));

		if (grown == NULL)
			goto out;
		t->parts = grown;
		t->parts_cap = n;
	}
	if (n > 0)
		memcpy(t->parts, parts, n * sizeof(*parts));
	t->nparts = n;
	t->assign_known = true;
	/* A revoked partition's lag is another task's now. */
	for (size_t i = 0; i < t->nlag; i++) {
		if (!runtime_has_part(parts, n, t->lag[i].partition))
			continue;
		total += t->lag[i].lag > 0 ? t->lag[i].lag : 0;
		t->lag[kept++] = t->lag[i];
	}
	if (kept != t->nlag) {
		t->nlag = kept;
		t->lag_total = total;
	}
out:
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_job_tasks_keep(int64_t job_id, int ntasks)
{
	struct runtime_job *job;
	size_t kept = 0;

	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, false);
	for (size_t i = 0; job != NULL && i < job->ntasks; i++) {
		if (job->tasks[i]->task < ntasks)
			job->tasks[kept++] = job->tasks[i];
		else
			runtime_task_free(job->tasks[i]);
	}
	if (job != NULL)
		job->ntasks = kept;
	pthread_mutex_unlock(&runtime_lock);
}

/* The task's rates over the window now. */
static void runtime_task_rates(const struct runtime_task *t, int64_t now, double *rows_ps,
			       double *messages_ps)
{
	int64_t tag = now / RUNTIME_SLOT_MS, rows = 0, messages = 0;
	double span_s;

	*rows_ps = 0;
	*messages_ps = 0;
	if (t->controller[0] != '\0') {
		*rows_ps = *messages_ps = t->remote_rows_ps;
		return;
	}
	if (!t->running)
		return;
	for (size_t i = 0; i < RUNTIME_NSLOTS; i++) {
		if (t->slots[i].tag > tag - RUNTIME_NSLOTS && t->slots[i].tag <= tag) {
			rows += t->slots[i].rows;
			messages += t->slots[i].messages;
		}
	}
	/* A worker up for less than the window: average over its time (at
	 * least one slot), not over time it was not there. */
	span_s = (double)(now - t->started_ms) / 1000.0;
	if (span_s > RUNTIME_RATE_WINDOW_S)
		span_s = RUNTIME_RATE_WINDOW_S;
	if (span_s < RUNTIME_SLOT_MS / 1000.0)
		span_s = RUNTIME_SLOT_MS / 1000.0;
	*rows_ps = (double)rows / span_s;
	*messages_ps = (double)messages / span_s;
}

struct runtime_lag_src {
	struct runtime_lag lag;
	int64_t seq;
};

static int runtime_lag_src_cmp(const void *a, const void *b)
{
	const struct runtime_lag_src *x = a, *y = b;

	if (x->lag.partition != y->lag.partition)
		return (x->lag.partition > y->lag.partition) - (x->lag.partition < y->lag.partition);
	return (x->seq < y->seq) - (x->seq > y->seq); /* newest first */
}

/* Several tasks' lag lists into one, by partition, each once. */
static void runtime_lag_merge_locked(const struct runtime_job *job, struct runtime_view *out)
{
	struct runtime_lag_src *all;
	size_t n = 0;

	for (size_t i = 0; i < job->ntasks; i++)
		n += job->tasks[i]->nlag;
	if (n == 0 || (all = malloc(n * sizeof(*all))) == NULL)
		return;
	n = 0;
	for (size_t i = 0; i < job->ntasks; i++)
		for (size_t j = 0; j < job->tasks[i]->nlag; j++)
			all[n++] = (struct runtime_lag_src){ job->tasks[i]->lag[j], job->tasks[i]->lag_seq };
	qsort(all, n, sizeof(*all), runtime_lag_src_cmp);
	for (size_t i = 0; i < n && out->nlag < PROTO_LAG_MAX; i++)
		if (i == 0 || all[i].lag.partition != all[i - 1].lag.partition)
			out->lag[out->nlag++] = all[i].lag;
	free(all);
}

void runtime_set_self(const char *name, bool shown)
{
	pthread_mutex_lock(&runtime_lock);
	snprintf(runtime_self, sizeof(runtime_self), "%s", name != NULL ? name : "");
	runtime_self_shown = shown;
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_get_self(char *buf, size_t len)
{
	pthread_mutex_lock(&runtime_lock);
	snprintf(buf, len, "%s", runtime_self);
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_task_remote(int64_t job_id, int task, const struct runtime_remote *r)
{
	struct runtime_task *t;

	pthread_mutex_lock(&runtime_lock);
	t = runtime_task_locked(job_id, task, true);
	if (t != NULL && (!t->running || t->controller[0] != '\0')) {
		int32_t *parts = t->parts;

		if (r->nparts > t->parts_cap) {
			parts = realloc(t->parts, r->nparts * sizeof(*parts));
			if (parts != NULL) {
				t->parts = parts;
				t->parts_cap = r->nparts;
			}
		}
		snprintf(t->controller, sizeof(t->controller), "%s", r->controller[0] ? r->controller : "?");
		t->running = false;
		t->pid = r->pid;
		snprintf(t->state, sizeof(t->state), "%s", r->state);
		t->restarts = r->restarts;
		snprintf(t->last_error, sizeof(t->last_error), "%s", r->last_error);
		t->remote_rows_ps = r->rows_per_second;
		t->assign_known = r->assign_known && (r->nparts == 0 || r->nparts <= t->parts_cap);
		t->nparts = t->assign_known ? r->nparts : 0;
		if (t->nparts > 0)
			memcpy(t->parts, r->parts, t->nparts * sizeof(*t->parts));
		t->lag_known = r->lag >= 0;
		t->lag_total = r->lag >= 0 ? r->lag : 0;
		t->nlag = 0;
	}
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_task_remote_gone(int64_t job_id, int task)
{
	struct runtime_task *t;

	pthread_mutex_lock(&runtime_lock);
	t = runtime_task_locked(job_id, task, false);
	if (t != NULL && !t->running && t->controller[0] != '\0') {
		t->pid = 0;
		snprintf(t->state, sizeof(t->state), "stopped");
		t->remote_rows_ps = 0;
		t->assign_known = false;
		t->nparts = 0;
		t->lag_known = false;
		t->lag_total = 0;
		t->nlag = 0;
	}
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_job_get(int64_t job_id, struct runtime_view *out)
{
	struct runtime_job *job;
	int64_t now = runtime_mono_ms(), newest = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, false);
	if (job == NULL)
		goto out;
	for (size_t i = 0; i < job->ntasks; i++) {
		const struct runtime_task *t = job->tasks[i];
		double rows_ps, messages_ps;

		runtime_task_rates(t, now, &rows_ps, &messages_ps);
		out->rows_per_second += rows_ps;
		out->messages_per_second += messages_ps;
		if (!t->lag_known)
			continue;
		out->lag_known = true;
		out->lag_total += t->lag_total;
		if (t->lag_seq > newest) {
			newest = t->lag_seq;
			memcpy(out->lag_updated_at, t->lag_updated_at, sizeof(out->lag_updated_at));
		}
	}
	memcpy(out->last_batch_at, job->last_batch_at, sizeof(out->last_batch_at));
	memcpy(out->buckets, job->buckets, sizeof(out->buckets));
	out->duration_count = job->duration_count;
	out->duration_sum_s = job->duration_sum_s;
	out->rows_deleted = job->rows_deleted;
	out->tombstones_skipped = job->tombstones_skipped;
	if (job->ntasks == 1) {
		/* One task: its report as it came. */
		out->nlag = job->tasks[0]->nlag;
		if (out->nlag > 0)
			memcpy(out->lag, job->tasks[0]->lag, out->nlag * sizeof(out->lag[0]));
	} else {
		runtime_lag_merge_locked(job, out);
	}
out:
	pthread_mutex_unlock(&runtime_lock);
}

size_t runtime_job_tasks(int64_t job_id, struct runtime_task_view *out, size_t max)
{
	struct runtime_job *job;
	int64_t now = runtime_mono_ms();
	size_t n = 0;

	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, false);
	if (job != NULL)
		n = job->ntasks;
	for (size_t i = 0; i < n && i < max; i++) {
		const struct runtime_task *t = job->tasks[i];
		struct runtime_task_view *v = &out[i];

		v->task = t->task;
		v->pid = t->pid;
		memcpy(v->state, t->state, sizeof(v->state));
		/* Running but owning nothing: a hot standby (more tasks than
		 * partitions). */
		if (strcmp(t->state, "running") == 0 && t->assign_known && t->nparts == 0)
			snprintf(v->state, sizeof(v->state), "standby");
		v->restarts = t->restarts;
		v->assign_known = t->assign_known;
		v->nparts = t->nparts;
		if (t->nparts > 0)
			memcpy(v->parts, t->parts, t->nparts * sizeof(v->parts[0]));
		runtime_task_rates(t, now, &v->rows_per_second, &v->messages_per_second);
		v->lag_known = t->lag_known;
		v->lag_total = t->lag_total;
		memcpy(v->last_error, t->last_error, sizeof(v->last_error));
		snprintf(v->controller, sizeof(v->controller), "%s",
			 t->controller[0] ? t->controller : runtime_self_shown ? runtime_self : "");
	}
	pthread_mutex_unlock(&runtime_lock);
	return n;
}

static int runtime_id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void runtime_retain(const int64_t *ids, size_t n)
{
	size_t kept = 0;

	pthread_mutex_lock(&runtime_lock);
	for (size_t i = 0; i < runtime_njobs; i++) {
		struct runtime_job *job = runtime_jobs[i];

		if (n > 0 && bsearch(&job->job_id, ids, n, sizeof(ids[0]), runtime_id_cmp) != NULL)
			runtime_jobs[kept++] = job;
		else
			runtime_job_free(job);
	}
	runtime_njobs = kept;
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_reset(void)
{
	pthread_mutex_lock(&runtime_lock);
	for (size_t i = 0; i < runtime_njobs; i++)
		runtime_job_free(runtime_jobs[i]);
	free(runtime_jobs);
	runtime_jobs = NULL;
	runtime_njobs = 0;
	runtime_cap = 0;
	runtime_lag_seq = 0;
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_set_clock(int64_t (*now_ms)(void))
{
	pthread_mutex_lock(&runtime_lock);
	runtime_clock = now_ms;
	pthread_mutex_unlock(&runtime_lock);
}
