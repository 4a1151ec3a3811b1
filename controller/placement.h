/* Placement: which controller of a cluster runs which task.
 *
 * Every controller on a shared catalog computes the same answer from the same
 * facts (the live controllers, which of them are draining, the tasks of the
 * running jobs), so no controller hands out work and none needs to agree with
 * another at every instant: while two views differ, a task may run on two
 * controllers for a moment, and the consumer group (a second member with the
 * task's group.instance.id fences the first out) and the progress table's
 * fence keep the data exact.
 *
 * The rule, a pure function unit-tested in tests/unit/test_placement.c:
 *   candidates = the live controllers that are not draining (all live ones
 *     when every one is draining: a drain never stops a job by itself);
 *   each task ranks the candidates by a hash of (controller name, job id,
 *     task index) (rendezvous hashing: when a controller comes or goes, only
 *     the tasks that prefer it move);
 *   tasks are taken in (job id, task) order and each goes to its best-ranked
 *     candidate that runs fewer than ceil(tasks / candidates) tasks, so the
 *     load is balanced to within one task.
 */
#ifndef SS_PLACEMENT_H
#define SS_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct placement_member {
	const char *name; /* unique in the cluster */
	bool draining;
};

struct placement_task {
	int64_t job_id;
	int task;
	int owner; /* out: index into members, -1 when there is none */
};

/* Fills tasks[i].owner for every task.  members need not be sorted; the
 * answer depends only on their names and drain flags, and on the set of
 * tasks.  Returns 0, or -1 when out of memory (owners then -1). */
int placement_compute(const struct placement_member *members, size_t nmembers, struct placement_task *tasks,
		      size_t ntasks);

/* The rendezvous score of (name, job, task); exposed for the tests. */
uint64_t placement_score(const char *name, int64_t job_id, int task);

#endif
