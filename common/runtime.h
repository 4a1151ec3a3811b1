/* Per-job and per-task runtime figures that live only in the controller's
 * memory.
 *
 * The supervisor (controller/sup.c) writes what each task's worker reports:
 * each batch (for the task's 10 s rate window and the job's batch-duration
 * histogram), each lag report and each assignment, and the task's state,
 * pid, restarts and last error.  A job's figures are the union or sum over
 * its tasks.  The API (job status, /metrics) reads them from civetweb's
 * threads.  One process-wide registry behind one mutex: every function may be
 * called from any thread.  Nothing here survives a controller restart (the
 * lifetime counters are in the store); the histogram counts since the
 * controller started.
 *
 * Lag is the worker's last report and is kept after the worker ends (stale:
 * lag_updated_at says how old); the rate window is emptied when the worker
 * ends, so a task that does not run shows 0 rows/s.
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
	int32_t task; /* the task that reported it */
	int64_t lag;  /* -1: not known */
};

/* A copy of one job's figures (runtime_job_get): the union or sum over its
 * tasks.  Large (the lag list): allocate it on the heap in threads with
 * small stacks. */
struct runtime_view {
	double rows_per_second;     /* the sum over the tasks */
	double messages_per_second;
	char last_batch_at[RUNTIME_TIME_LEN]; /* "" before any batch seen */
	/* Histogram since the controller started; buckets[i] counts the batches
	 * of at most runtime_bucket_le[i] seconds, not cumulated; the last one
	 * (index RUNTIME_NBUCKETS) those above every bound. */
	uint64_t buckets[RUNTIME_NBUCKETS + 1];
	uint64_t duration_count;
	double duration_sum_s;
	/* Since the controller started, over the tasks: target rows deleted by
	 * tombstones, tombstones skipped (DELETE_ON_TOMBSTONE off, or no key). */
	int64_t rows_deleted;
	int64_t tombstones_skipped;
	bool lag_known; /* a lag report arrived since the controller started */
	int64_t lag_total;  /* the sum of the tasks' last totals */
	char lag_updated_at[RUNTIME_TIME_LEN]; /* the latest report's */
	size_t nlag;
	/* One task: its last report as sent.  Several: every task's, ordered by
	 * partition, each partition once (the latest report that lists it). */
	struct runtime_lag lag[PROTO_LAG_MAX];
};

/* The longest controller name a task view holds. */
#define RUNTIME_CONTROLLER_LEN 128

/* The longest last_error a task view holds (the store keeps the job's whole). */
#define RUNTIME_ERROR_LEN 512

/* A copy of one task's figures (runtime_job_tasks).  Large: on the heap. */
struct runtime_task_view {
	int task;          /* 0-based index */
	int pid;           /* 0: no worker now */
	char state[16];    /* starting running standby retrying stopping stopped failed */
	int64_t restarts;  /* of this task since the job's start */
	/* The partitions the task owns now, from its last "assign" line; none
	 * while it has not sent one (assign_known false) or has no worker. */
	bool assign_known;
	size_t nparts;
	int32_t parts[PROTO_LAG_MAX];
	double rows_per_second;
	double messages_per_second;
	bool lag_known;
	int64_t lag_total;
	char last_error[RUNTIME_ERROR_LEN]; /* "" none */
	char controller[RUNTIME_CONTROLLER_LEN]; /* who runs it ("" alone) */
};

/* What another controller of the cluster published of a task it runs. */
struct runtime_remote {
	const char *controller;
	int pid;
	const char *state;
	int64_t restarts;
	const char *last_error;
	bool assign_known;
	const int32_t *parts;
	size_t nparts;
	double rows_per_second;
	int64_t lag; /* -1: not known */
};

/* This controller's name; shown (a cluster) as the controller of the tasks
 * it runs, else their controller is "". */
void runtime_set_self(const char *name, bool shown);
void runtime_get_self(char *buf, size_t len);

/* A task another controller runs (controller/sup.c's cluster tick): its
 * figures are what r says, until this controller starts the task itself
 * (runtime_task_started).  Ignored while this controller runs it. */
void runtime_task_remote(int64_t job_id, int task, const struct runtime_remote *r);

/* A task shown as another controller's is no longer published by anyone
 * (its job stopped, or it was removed): it shows as stopped, with the
 * controller that ran it, as that controller shows it.  Ignored once this
 * controller runs the task itself. */
void runtime_task_remote_gone(int64_t job_id, int task);

/* Supervisor side: a task's worker was started (pid): its rate window counts
 * from here, it owns nothing until it says so, its state is "starting". */
void runtime_task_started(int64_t job_id, int task, int pid);

/* The task's worker ended: its rates drop to 0 and it owns nothing (lag is
 * kept, stale). */
void runtime_task_ended(int64_t job_id, int task);

/* The task's state as the supervisor sees it, its restarts, and last_error
 * (NULL keeps the one held, "" clears it). */
void runtime_task_set_state(int64_t job_id, int task, const char *state, int64_t restarts,
			    const char *last_error);

/* One committed batch of the task: counts for that batch only; duration_ms
 * from the batch's flush to its commit. */
/* Supervisor side: a batch's tombstone figures (its status line's deleted and
 * tombstones_skipped), added to the job's. */
void runtime_job_tombstones(int64_t job_id, int64_t deleted, int64_t skipped);

void runtime_task_batch(int64_t job_id, int task, int64_t messages, int64_t rows, int64_t duration_ms);

/* A lag report of the task: total and parts[0..n) as the worker sent them (n
 * is capped at PROTO_LAG_MAX); replaces its previous report. */
void runtime_task_lag(int64_t job_id, int task, int64_t total, const struct proto_lag *parts, size_t n);

/* An "assign" line: the task owns parts[0..n) now (n capped at
 * PROTO_LAG_MAX).  Lag entries of partitions it no longer owns are dropped. */
void runtime_task_assign(int64_t job_id, int task, const int32_t *parts, size_t n);

/* Forgets the tasks with index >= ntasks (the job's tasks were lowered, and
 * those stopped). */
void runtime_job_tasks_keep(int64_t job_id, int ntasks);

/* Fills *out with the job's figures now.  A job never seen gives zeros,
 * empty times and lag_known false. */
void runtime_job_get(int64_t job_id, struct runtime_view *out);

/* Copies the job's tasks, ordered by index, into out[0..max); returns how
 * many the job has (more than max: only max were written). */
size_t runtime_job_tasks(int64_t job_id, struct runtime_task_view *out, size_t max);

/* Drops the figures of jobs not in ids[0..n) (sorted ascending): jobs that
 * were deleted. */
void runtime_retain(const int64_t *ids, size_t n);

/* Forgets everything (tests). */
void runtime_reset(void);

/* Replaces the monotonic clock (ms) the rate window reads; NULL restores the
 * real one (tests). */
void runtime_set_clock(int64_t (*now_ms)(void));

#endif
