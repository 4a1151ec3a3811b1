/* A task's share of the topic, and what happens when it changes.
 *
 * In group mode (consumer.h) the group adds and takes partitions while the
 * task runs: assignment_hook is the consumer's hook.  Each change is made
 * with nothing open or in flight (everything read so far is written first,
 * so a revoked partition leaves with its last batch committed, or rolled
 * back by the fence when another task got there first), then the stored
 * offsets of the whole new set are read again: the new partitions start
 * there, and a kept partition whose stored offset is not the one this task
 * wrote (another task advanced it meanwhile) is read again from there.
 *
 * A fence miss (EXACTLY: another task advanced a partition of a batch, which
 * was rolled back) is the same move without a change of set:
 * assignment_recover drops what was read after it and goes on from what the
 * database holds.  Nothing is written twice and nothing is skipped: what was
 * dropped is read again unless the database says another task wrote it.
 *
 * Functions returning int return WERR_OK or a negative enum werr and fill
 * err (wtypes.h).
 */
#ifndef SS_WORKER_ASSIGNMENT_H
#define SS_WORKER_ASSIGNMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer.h"

struct worker;

/* Writes everything read so far: the batch in flight, then the open one.
 * Afterwards nothing is in flight and the open batch is empty, also when it
 * returns WERR_FENCED (the batches were dropped; call assignment_recover). */
int assignment_quiesce(struct worker *w, char *err, size_t errlen);

/* After WERR_FENCED: drops the open batch and goes on from the stored
 * offsets of the partitions the task owns.  why: the fence's message. */
int assignment_recover(struct worker *w, const char *why, char *err, size_t errlen);

/* The task stood still for ms (SIGSTOP, a stalled machine) long enough that
 * the group may have given its partitions to other tasks: the open batch is
 * dropped, unwritten, and reading goes on from the stored offsets (what the
 * others wrote meanwhile is not read again), until the group says what the
 * task still owns. */
int assignment_stalled(struct worker *w, int64_t ms, char *err, size_t errlen);

/* Sends the "assign" status line (proto.h): the partitions owned now. */
void assignment_report(struct worker *w);

/* The consumer's hook (consumer_hook, ctx = the worker).  A failure is kept
 * in the worker's hook_rc / hook_err for the loop to return. */
void assignment_hook(void *ctx, enum consumer_event ev, const int32_t *parts, int64_t *next, size_t n, bool lost);

#endif
