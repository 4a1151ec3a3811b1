/* Per-job runtime figures that live only in the controller's memory.
 *
 * The supervisor (controller/sup.c) writes what its workers report: each
 * batch (for the 10 s rate window and the batch-duration histogram) and each
 * lag report.  The API (job status, /metrics) reads them from civetweb's
 * threads.  One process-wide registry behind one mutex: every function may be
 * called from any thread.  Nothing here survives a controller restart (the
 * lifetime counters are in the store); the histogram counts since the
 * controller started.
 *
 * Lag is the worker's last report and is kept after the worker ends (stale:
 * lag_updated_at says how old); the rate window is emptied when the worker
 * ends, so a job that does not run shows 0 rows/s.
 */
#ifndef SS_RUNTIME_H
#define SS_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* The window rows_per_second and messages_per_second average over. */
#define RUNTIME_RATE_WINDOW_S 10
/* Upper bounds of the batch-duration histogram, in seconds; +Inf follows. */
#define RUNTIME_NBUCKETS 11
extern const double runtime_bucket_le[RUNTIME_NBUCKETS];
/* ISO 8601 UTC with milliseconds: "2026-11-24T07:30:00.123Z". */
#define RUNTIME_TIME_LEN 32

struct runtime_lag {
	int32_t partition;
	int64_t lag; /* -1: not known */
};

/* A copy of one job's figures (runtime_job_get).  Large (the lag list):
 * allocate it on the heap in threads with small stacks. */
struct runtime_view {
	double rows_per_second;
	double messages_per_second;
	char last_batch_at[RUNTIME_TIME_LEN]; /* "" before any batch seen */
	/* Histogram since the controller started; buckets[i] counts the batches
	 * of at most runtime_bucket_le[i] seconds, not cumulated; the last one
	 * (index RUNTIME_NBUCKETS) those above every bound. */
	uint64_t buckets[RUNTIME_NBUCKETS + 1];
	uint64_t duration_count;
	double duration_sum_s;
	bool lag_known; /* a lag report arrived since the controller started */
	int64_t lag_total;
	char lag_updated_at[RUNTIME_TIME_LEN];
	size_t nlag;
	struct runtime_lag lag[PROTO_LAG_MAX];
};

/* A worker of the job was started: the rate window counts from here. */
void runtime_job_worker_started(int64_t job_id);

/* The job's worker ended: its rates drop to 0 (lag is kept). */
void runtime_job_worker_ended(int64_t job_id);

/* One committed batch: counts for that batch only; duration_ms from the
 * batch's flush to its commit. */
void runtime_job_batch(int64_t job_id, int64_t messages, int64_t rows, int64_t duration_ms);

/* A lag report: total and parts[0..n) as the worker sent them (n is capped at
 * PROTO_LAG_MAX); replaces the previous report. */
void runtime_job_lag(int64_t job_id, int64_t total, const struct proto_lag *parts, size_t n);

/* Fills *out with the job's figures now.  A job never seen gives zeros,
 * empty times and lag_known false. */
void runtime_job_get(int64_t job_id, struct runtime_view *out);

/* Drops the figures of jobs not in ids[0..n) (sorted ascending): jobs that
 * were deleted. */
void runtime_retain(const int64_t *ids, size_t n);

/* Forgets everything (tests). */
void runtime_reset(void);

/* Replaces the monotonic clock (ms) the rate window reads; NULL restores the
 * real one (tests). */
void runtime_set_clock(int64_t (*now_ms)(void));

#endif
