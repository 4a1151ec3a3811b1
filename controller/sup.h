/* The supervisor: one worker process per running job.
 *
 * The store holds what the user wants (a job's desired state); the supervisor
 * makes it so and records what it sees (the job's runtime state).  It runs in
 * one thread (the controller's main thread) as a poll() loop over a signalfd
 * (SIGCHLD, SIGTERM, SIGINT, SIGHUP), a wake-up eventfd (poked by the API after
 * a start or stop) and every worker's status pipe.  Signals are blocked in all
 * threads by sup_block_signals(), which must run before any other thread starts.
 *
 * Workers are started through common/workerspawn.h (their own process group,
 * clean signal mask and defaults); the job reaches them on standard input,
 * never in argv or the environment.  What happens when one ends is the
 * restart policy of policy.h (stop, fail, or restart after a delay), a pure
 * function this file feeds with the exit, the job's history and its SCHEDULE.
 * The loop reconciles the store's desired states with its workers on a
 * wake-up from the API, a child's exit and its timers (a restart, the SIGKILL
 * deadline), never for a status line: those only update counters, the
 * runtime state and common/runtime.h.
 * Every exit is recorded as the job's last_exit ("exit code 1 (retriable
 * failure)", "signal 9 (Killed)"); the state while waiting is "retrying" with
 * the reason in last_error.
 * Stopping is staged: SIGTERM, then SIGKILL after SUP_STOP_DEADLINE_MS, both
 * to the worker's process group.
 * What workers report goes to the store (each batch's counts, added to the
 * job's lifetime counters) and to common/runtime.h (the rate window, batch
 * durations and the last lag report, which the API reads from memory).
 */
#ifndef SS_SUP_H
#define SS_SUP_H

#include <stddef.h>

#include "store.h"

#define SUP_STOP_DEADLINE_MS 15000

struct sup;

/* Blocks the signals the supervisor takes through its signalfd, in the calling
 * thread and so in every thread it starts afterwards. */
int sup_block_signals(char *err, size_t errlen);

/* worker_path: the streamworker executable (copied).  The store is borrowed. */
int sup_new(struct store *st, const char *worker_path, struct sup **out, char *err, size_t errlen);
void sup_free(struct sup *sp);

struct cluster;

/* Runs only the tasks the cluster places here (cluster.h), and takes part in
 * it; c is borrowed, set before sup_run.  Without it every task runs here. */
void sup_set_cluster(struct sup *sp, struct cluster *c);

/* Thread-safe and async-signal-safe: makes the loop reconcile now. */
void sup_wake(void *sp);

/* Runs until SIGTERM or SIGINT, then stops every worker (desired states are
 * kept, so the next controller brings the jobs back) and returns 0. */
int sup_run(struct sup *sp);

#endif
