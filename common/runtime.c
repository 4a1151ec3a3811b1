#include "runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double runtime_bucket_le[RUNTIME_NBUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
						     0.5,   1,	  2.5,	 5,    10 };

/* The rate window in slots of 100 ms: precise enough for a rate, small
 * enough to keep per job (2.4 KB). */
#define RUNTIME_SLOT_MS 100
#define RUNTIME_NSLOTS (RUNTIME_RATE_WINDOW_S * 1000 / RUNTIME_SLOT_MS)

struct runtime_slot {
	int64_t tag; /* monotonic ms / RUNTIME_SLOT_MS of what it counts; -1 empty */
	int64_t rows, messages;
};

struct runtime_job {
	int64_t job_id;
	bool running;
	int64_t started_ms; /* monotonic, the worker's start */
	struct runtime_slot slots[RUNTIME_NSLOTS];
	char last_batch_at[RUNTIME_TIME_LEN];
	uint64_t buckets[RUNTIME_NBUCKETS + 1];
	uint64_t duration_count;
	double duration_sum_s;
	bool lag_known;
	int64_t lag_total;
	char lag_updated_at[RUNTIME_TIME_LEN];
	size_t nlag, lag_cap;
	struct runtime_lag *lag; /* malloc'd, lag_cap entries */
};

static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct runtime_job **runtime_jobs; /* malloc'd array of malloc'd entries */
static size_t runtime_njobs, runtime_cap;
static int64_t (*runtime_clock)(void);

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

static void runtime_slots_clear(struct runtime_job *job)
{
	for (size_t i = 0; i < RUNTIME_NSLOTS; i++)
		job->slots[i] = (struct runtime_slot){ .tag = -1 };
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
	runtime_slots_clear(job);
	runtime_jobs[runtime_njobs++] = job;
	return job;
}

static void runtime_job_free(struct runtime_job *job)
{
	if (job == NULL)
		return;
	free(job->lag);
	free(job);
}

void runtime_job_worker_started(int64_t job_id)
{
	struct runtime_job *job;

	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, true);
	if (job != NULL) {
		job->running = true;
		job->started_ms = runtime_mono_ms();
		runtime_slots_clear(job);
	}
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_job_worker_ended(int64_t job_id)
{
	struct runtime_job *job;

	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, false);
	if (job != NULL) {
		job->running = false;
		runtime_slots_clear(job);
	}
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_job_batch(int64_t job_id, int64_t messages, int64_t rows, int64_t duration_ms)
{
	struct runtime_job *job;
	double seconds = duration_ms > 0 ? (double)duration_ms / 1000.0 : 0;
	size_t b = 0;

	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, true);
	if (job == NULL)
		goto out;
	if (job->running) {
		int64_t tag = runtime_mono_ms() / RUNTIME_SLOT_MS;
		struct runtime_slot *slot = &job->slots[tag % RUNTIME_NSLOTS];

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

void runtime_job_lag(int64_t job_id, int64_t total, const struct proto_lag *parts, size_t n)
{
	struct runtime_job *job;

	if (n > PROTO_LAG_MAX)
		n = PROTO_LAG_MAX;
	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, true);
	if (job == NULL)
		goto out;
	if (n > job->lag_cap) {
		struct runtime_lag *grown = realloc(job->lag, n * sizeof(*grown));

		if (grown == NULL)
			goto out;
		job->lag = grown;
		job->lag_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		job->lag[i].partition = parts[i].partition;
		job->lag[i].lag = parts[i].lag < 0 ? -1 : parts[i].lag;
	}
	job->nlag = n;
	job->lag_total = total < 0 ? 0 : total;
	job->lag_known = true;
	runtime_iso_now(job->lag_updated_at, sizeof(job->lag_updated_at));
out:
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_job_get(int64_t job_id, struct runtime_view *out)
{
	struct runtime_job *job;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&runtime_lock);
	job = runtime_find_locked(job_id, false);
	if (job == NULL)
		goto out;
	if (job->running) {
		int64_t now = runtime_mono_ms(), tag = now / RUNTIME_SLOT_MS;
		int64_t rows = 0, messages = 0;
		double span_s;

		for (size_t i = 0; i < RUNTIME_NSLOTS; i++) {
			if (job->slots[i].tag > tag - RUNTIME_NSLOTS && job->slots[i].tag <= tag) {
				rows += job->slots[i].rows;
				messages += job->slots[i].messages;
			}
		}
		/* A worker up for less than the window: average over its time
		 * (at least one slot), not over time it was not there. */
		span_s = (double)(now - job->started_ms) / 1000.0;
		if (span_s > RUNTIME_RATE_WINDOW_S)
			span_s = RUNTIME_RATE_WINDOW_S;
		if (span_s < RUNTIME_SLOT_MS / 1000.0)
			span_s = RUNTIME_SLOT_MS / 1000.0;
		out->rows_per_second = (double)rows / span_s;
		out->messages_per_second = (double)messages / span_s;
	}
	memcpy(out->last_batch_at, job->last_batch_at, sizeof(out->last_batch_at));
	memcpy(out->buckets, job->buckets, sizeof(out->buckets));
	out->duration_count = job->duration_count;
	out->duration_sum_s = job->duration_sum_s;
	out->lag_known = job->lag_known;
	out->lag_total = job->lag_total;
	memcpy(out->lag_updated_at, job->lag_updated_at, sizeof(out->lag_updated_at));
	out->nlag = job->nlag;
	if (job->nlag > 0)
		memcpy(out->lag, job->lag, job->nlag * sizeof(out->lag[0]));
out:
	pthread_mutex_unlock(&runtime_lock);
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
	pthread_mutex_unlock(&runtime_lock);
}

void runtime_set_clock(int64_t (*now_ms)(void))
{
	pthread_mutex_lock(&runtime_lock);
	runtime_clock = now_ms;
	pthread_mutex_unlock(&runtime_lock);
}
