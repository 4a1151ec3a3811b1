/* The hook through which a group-mode consumer (consumer.h) hands every
 * change of its assignment to the worker loop.  Apart from consumer.h so that
 * the consumer's private header (consumer_int.h) can hold one without
 * including consumer.h. */
#ifndef SS_WORKER_CONSUMER_HOOK_H
#define SS_WORKER_CONSUMER_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum consumer_event {
	CONSUMER_ASSIGN, /* parts are being added: fill next[i] */
	CONSUMER_REVOKE, /* parts are being given up (lost: already someone else's) */
};

/* Called from consumer_poll (group mode) on every change of the assignment,
 * before the consumer applies it.  ASSIGN: next[i] is where parts[i] starts:
 * an offset, or -1 for FALLBACK_OFFSET (-2: the group's committed offset,
 * for CONSISTENCY none).  REVOKE: next is NULL; when the hook returns the
 * partitions are given up. */
typedef void (*consumer_hook)(void *ctx, enum consumer_event ev, const int32_t *parts, int64_t *next, size_t n,
			      bool lost);

#endif
