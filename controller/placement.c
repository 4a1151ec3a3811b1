#include "placement.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a over the name and the two numbers, then splitmix64's finaliser so
 * that near names and ids spread. */
uint64_t placement_score(const char *name, int64_t job_id, int task)
{
	uint64_t h = 1469598103934665603ull;
	const unsigned char *p;
	uint64_t nums[2] = { (uint64_t)job_id, (uint64_t)(int64_t)task };

	for (p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ull;
	for (size_t i = 0; i < 2; i++)
		for (int b = 0; b < 8; b++)
			h = (h ^ ((nums[i] >> (8 * b)) & 0xff)) * 1099511628211ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

static int placement_cmp_task(const void *a, const void *b)
{
	const struct placement_task *x = *(struct placement_task *const *)a, *y = *(struct placement_task *const *)b;

	if (x->job_id != y->job_id)
		return x->job_id < y->job_id ? -1 : 1;
	return x->task < y->task ? -1 : x->task > y->task;
}

int placement_compute(const struct placement_member *members, size_t nmembers, struct placement_task *tasks,
		      size_t ntasks)
{
	struct placement_task **order = NULL;
	size_t *load = NULL, i, ncand = 0, base, extra, at_ceil = 0;
	bool any_active = false;

	for (i = 0; i < ntasks; i++)
		tasks[i].owner = -1;
	if (nmembers == 0 || ntasks == 0)
		return 0;
	order = calloc(ntasks, sizeof(*order));
	load = calloc(nmembers, sizeof(*load));
	if (order == NULL || load == NULL) {
		free(order);
		free(load);
		return -1;
	}
	for (i = 0; i < nmembers; i++)
		any_active = any_active || !members[i].draining;
	for (i = 0; i < nmembers; i++)
		if (!any_active || !members[i].draining)
			ncand++;
	/* Balanced: every candidate runs base tasks, extra of them one more. */
	base = ntasks / ncand;
	extra = ntasks % ncand;
	for (i = 0; i < ntasks; i++)
		order[i] = &tasks[i];
	qsort(order, ntasks, sizeof(*order), placement_cmp_task);
	for (i = 0; i < ntasks; i++) {
		struct placement_task *t = order[i];
		int best = -1;
		uint64_t best_score = 0;

		for (size_t m = 0; m < nmembers; m++) {
			uint64_t s;

			if ((any_active && members[m].draining) || load[m] > base ||
			    (load[m] == base && at_ceil >= extra))
				continue;
			s = placement_score(members[m].name, t->job_id, t->task);
			/* ties (never seen in practice) go to the smaller name */
			if (best < 0 || s > best_score ||
			    (s == best_score && strcmp(members[m].name, members[best].name) < 0)) {
				best = (int)m;
				best_score = s;
			}
		}
		t->owner = best;
		if (best >= 0 && load[best]++ == base)
			at_ceil++;
	}
	free(order);
	free(load);
	return 0;
}
