/* The restart policy: what the supervisor does when a job's worker ends.
 *
 * A pure function of the exit, the job's recent history and its SCHEDULE, so
 * that every rule below is unit-tested (tests/unit/test_policy.c) without a
 * store, a process or a clock.  The supervisor (sup.c) gathers the input,
 * keeps the history counters the decision returns, and carries it out.
 *
 * Exits are classified by common/exitcodes.h:
 *   we sent the stop, and it exited  -> stop (no message)
 *   WORKER_EXIT_STOPPED or by a signal
 *   WORKER_EXIT_CONFIG / _DATA       -> fail at once with the worker's message
 *                                       (even while stopping: it is the news)
 *   we sent the stop, any other exit -> stop, with the worker's message
 *   WORKER_EXIT_RETRY (an outage)    -> restart after SCHEDULE.RETRY_INTERVAL
 *                                       (at least 1 s); the MAX_RETRIES+1st
 *                                       such exit in a row without a batch
 *                                       between (0 = forever) -> fail "gave up
 *                                       after N retries (SCHEDULE.MAX_RETRIES): ..."
 *   a crash (a signal we did not     -> restart after a backoff: RETRY_INTERVAL
 *   send, any other exit code, 0        (at least 1 s) doubled per crash in a
 *   included since nobody asked)        row, at most 5 min; the 10th crash in a
 *                                       row without a healthy run (a batch, or
 *                                       30 s up) -> fail "crash loop: ..."
 * A batch resets the retries in a row; a healthy run resets the crashes.
 */
#ifndef SS_POLICY_H
#define SS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* No restart sooner than this after an exit (s6 waits 1 s too). */
#define POLICY_MIN_DELAY_MS 1000
#define POLICY_MAX_BACKOFF_MS (5 * 60 * 1000)
/* A worker that has run this long (or committed a batch) is healthy: its next
 * crash starts the backoff from the beginning again. */
#define POLICY_HEALTHY_MS 30000
/* This many crashes in a row without a healthy run: failed. */
#define POLICY_CRASH_LOOP 10
/* The longest message: the worker's own (a status line) plus our words. */
#define POLICY_MESSAGE_MAX (PROTO_LINE_MAX + 256)

enum policy_action {
	POLICY_STOP,    /* the job is stopped */
	POLICY_FAIL,    /* the job is failed; no restart until a user starts it */
	POLICY_RESTART, /* the job is retrying: a new worker after delay_ms */
};

struct policy_input {
	bool signaled;         /* died by signal `sig`; else exited with `code` */
	int code;
	int sig;
	bool stop_requested;   /* we sent the stop (a user's stop, or our shutdown) */
	bool batch_seen;       /* this worker reported a batch */
	int64_t uptime_ms;     /* from its spawn to its exit */
	int retries;           /* WORKER_EXIT_RETRY exits in a row without a batch, before this one */
	int crashes;           /* crashes in a row without a healthy run, before this one */
	int64_t retry_interval_ms; /* SCHEDULE.RETRY_INTERVAL */
	int64_t max_retries;       /* SCHEDULE.MAX_RETRIES; 0 = forever */
	const char *why;       /* the worker's last error, or "worker ended with ..."; not NULL */
};

struct policy_decision {
	enum policy_action action;
	int64_t delay_ms;      /* POLICY_RESTART: how long to wait */
	int retries;           /* the history to keep for the next exit */
	int crashes;
	/* The job's last_error: "" for a clean stop (nothing to say), else the
	 * reason to show. */
	char message[POLICY_MESSAGE_MAX];
};

struct policy_decision policy_decide(const struct policy_input *in);

/* The crash backoff: RETRY_INTERVAL (at least 1 s) doubled for each crash in
 * a row after the first, at most POLICY_MAX_BACKOFF_MS. */
int64_t policy_backoff_ms(int crashes, int64_t retry_interval_ms);

/* How a worker ended, as last_exit shows it: "exit code 1 (retriable
 * failure)", "signal 9 (Killed)". */
void policy_describe_exit(bool signaled, int code, int sig, char *buf, size_t buflen);

#endif
