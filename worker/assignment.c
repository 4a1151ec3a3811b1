#include "assignment.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "log.h"
#include "loop_int.h"
#include "proto.h"
#include "sink_pg.h"
#include "wtypes.h"

/* Drops the open batch, unwritten, after a fence miss: its partitions are
 * read again from where the database says (assignment_resync). */
static void assignment_drop_open(struct worker *w)
{
	for (size_t i = 0; i < w->npartitions; i++)
		if (w->parts[i].first >= 0 && (w->parts[i].redo < 0 || w->parts[i].first < w->parts[i].redo))
			w->parts[i].redo = w->parts[i].first;
	loop_batch_reset(w);
}

/* Writes everything read so far: the batch in flight, then the open one.
 * Afterwards nothing is in flight and the open batch is empty (also when a
 * fence miss, WERR_FENCED, dropped them). */
int assignment_quiesce(struct worker *w, char *err, size_t errlen)
{
	int rc = loop_flush(w, err, errlen);

	if (rc == WERR_OK)
		return loop_collect(w, err, errlen);
	if (rc == WERR_FENCED)
		assignment_drop_open(w);
	return rc;
}

/* Reads the stored offsets of every partition owned now and moves the
 * reading position of each where the database and the loop disagree: another
 * task advanced it, or a dropped batch must be read again.  fresh[i] (may be
 * NULL): partitions[i] was just assigned; its start goes to start[i] (hook
 * convention, consumer.h) instead of a seek. */
static int assignment_resync(struct worker *w, const bool *fresh, int64_t *start, char *err, size_t errlen)
{
	size_t n = w->npartitions, i, nseek = 0;
	int64_t *next = calloc(n ? n : 1, sizeof(*next)), *to = calloc(n ? n : 1, sizeof(*to));
	int32_t *seek = calloc(n ? n : 1, sizeof(*seek));
	bool none = w->spec->consistency == JS_CONSISTENCY_NONE;
	int rc = WERR_OK;

	if (next == NULL || to == NULL || seek == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	for (i = 0; i < n; i++)
		next[i] = -1;
	if (!none && (rc = sink_pg_progress_get(w->sink, w->spec->topic, w->partitions, n, next, err, errlen)) !=
			     WERR_OK)
		goto out;
	for (i = 0; i < n; i++) {
		struct loop_part *p = &w->parts[i];
		int64_t target = -1;

		if (fresh != NULL && fresh[i]) {
			start[i] = none ? -2 : next[i];
			p->expect = next[i];
		} else {
			if (next[i] >= 0 && (next[i] != p->done || p->redo >= 0))
				target = next[i];
			else if (next[i] < 0 && p->redo >= 0)
				target = p->redo;
			if (target >= 0) {
				if (next[i] != p->done && next[i] >= 0 && p->done >= 0)
					log_info("partition %d: another task wrote up to offset %lld (this one had %lld); "
						 "going on from there",
						 (int)w->partitions[i], (long long)next[i], (long long)p->done);
				seek[nseek] = w->partitions[i];
				to[nseek++] = target;
				p->expect = target;
			}
		}
		if (!none)
			p->done = next[i];
		p->redo = -1;
	}
	rc = consumer_seek(w->consumer, seek, to, nseek, err, errlen);
out:
	free(next);
	free(to);
	free(seek);
	return rc;
}

/* After a fence miss (another task advanced a partition of the batch): the
 * batch was rolled back; drop what was read after it and go on from what the
 * database holds, with the partitions this task still owns. */
int assignment_recover(struct worker *w, const char *why, char *err, size_t errlen)
{
	w->fence_misses++;
	log_warn("%s; reading the stored offsets again and going on", why);
	assignment_drop_open(w);
	return assignment_resync(w, NULL, NULL, err, errlen);
}

int assignment_stalled(struct worker *w, int64_t ms, char *err, size_t errlen)
{
	log_warn("this task stood still for %lld ms: the group may have given its partitions to other tasks; the "
		 "open batch is dropped and reading goes on from the stored offsets",
		 (long long)ms);
	assignment_drop_open(w);
	return assignment_resync(w, NULL, NULL, err, errlen);
}

void assignment_report(struct worker *w)
{
	if (w->status_fd >= 0)
		loop_status_result(w, proto_send_assign(w->status_fd, w->partitions, w->npartitions));
}

static int assignment_cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return x < y ? -1 : x > y;
}

/* Replaces the owned set by ids[0..n) (ascending), nothing open or in
 * flight; what the loop knows of partitions it keeps stays.  fresh[i] says
 * whether ids[i] is new (the caller's array of n). */
static int assignment_set(struct worker *w, int32_t *ids, size_t n, bool *fresh, char *err, size_t errlen)
{
	struct loop_part *parts = calloc(n ? n : 1, sizeof(*parts));
	struct loop_part *fparts = calloc(n ? n : 1, sizeof(*fparts));
	struct part_offset *commit = calloc(n ? n : 1, sizeof(*commit));
	size_t i;

	if (parts == NULL || fparts == NULL || commit == NULL) {
		free(parts);
		free(fparts);
		free(commit);
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	for (i = 0; i < n; i++) {
		ssize_t old = loop_part_index(w, ids[i]);

		parts[i].first = parts[i].next = -1;
		parts[i].done = old >= 0 ? w->parts[old].done : -1;
		parts[i].expect = old >= 0 ? w->parts[old].expect : -1;
		parts[i].redo = old >= 0 ? w->parts[old].redo : -1;
		fresh[i] = old < 0;
	}
	free(w->parts);
	free(w->flight.parts);
	free(w->flight.commit);
	free(w->partitions);
	w->parts = parts;
	w->flight.parts = fparts;
	w->flight.commit = commit;
	w->partitions = ids;
	w->npartitions = n;
	return WERR_OK;
}

/* "0, 3, 5" */
static void assignment_list(const int32_t *parts, size_t n, char *buf, size_t buflen)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < n && off + 12 < buflen; i++)
		off += (size_t)snprintf(buf + off, buflen - off, "%s%d", i ? ", " : "", (int)parts[i]);
	if (i < n)
		snprintf(buf + off, buflen - off, ", ...");
}

/* The consumer's hook (group mode, consumer.h): called from consumer_poll
 * when the group adds or takes partitions.  Everything read so far is
 * written first, so a revoked partition leaves with its last batch
 * committed (or rolled back by the fence if it was lost to another task
 * meanwhile), then the stored offsets of the new set are read: the new
 * partitions start there, and kept ones move if another task wrote them.  A
 * failure is kept in hook_rc for the poll to return. */
void assignment_hook(void *ctx, enum consumer_event ev, const int32_t *parts, int64_t *next, size_t n,
			      bool lost)
{
	struct worker *w = ctx;
	size_t i, m = 0, cap = w->npartitions + (ev == CONSUMER_ASSIGN ? n : 0);
	int32_t *ids = NULL;
	bool *fresh = NULL;
	int64_t *start = NULL;
	char list[256];
	int rc;

	if (w->hook_rc != WERR_OK)
		return; /* the worker stops at the next poll */
	w->rebalances++;
	assignment_list(parts, n, list, sizeof(list));
	if (n > 0)
		log_info("%s partition(s) %s", ev == CONSUMER_ASSIGN ? "assigned"
					       : lost		     ? "lost (the group may give them to another task)"
								     : "revoked",
			 list);
	if (ev == CONSUMER_REVOKE && lost) {
		/* Another task may own them already and read from the stored
		 * offsets: the batch in flight is finished (the fence decides
		 * under EXACTLY), the open one is dropped, not written, so
		 * ATLEAST repeats at most the batch in flight. */
		rc = loop_collect(w, w->hook_err, sizeof(w->hook_err));
		assignment_drop_open(w);
	} else {
		rc = assignment_quiesce(w, w->hook_err, sizeof(w->hook_err));
	}
	if (rc == WERR_FENCED) {
		w->fence_misses++;
		log_warn("%s; the batch is dropped", w->hook_err);
		rc = WERR_OK;
	}
	if (rc != WERR_OK)
		goto fail;
	ids = calloc(cap ? cap : 1, sizeof(*ids));
	fresh = calloc(cap ? cap : 1, sizeof(*fresh));
	start = calloc(cap ? cap : 1, sizeof(*start));
	if (ids == NULL || fresh == NULL || start == NULL) {
		snprintf(w->hook_err, sizeof(w->hook_err), "out of memory");
		rc = WERR_RETRY;
		goto fail;
	}
	for (i = 0; i < w->npartitions; i++) {
		bool gone = false;
		for (size_t k = 0; ev == CONSUMER_REVOKE && k < n && !gone; k++)
			gone = parts[k] == w->partitions[i];
		if (!gone)
			ids[m++] = w->partitions[i];
	}
	for (i = 0; ev == CONSUMER_ASSIGN && i < n; i++)
		if (loop_part_index(w, parts[i]) < 0)
			ids[m++] = parts[i];
	qsort(ids, m, sizeof(*ids), assignment_cmp_i32);
	if ((rc = assignment_set(w, ids, m, fresh, w->hook_err, sizeof(w->hook_err))) != WERR_OK)
		goto fail;
	ids = NULL; /* the worker's now */
	if ((rc = assignment_resync(w, fresh, start, w->hook_err, sizeof(w->hook_err))) != WERR_OK)
		goto fail;
	for (i = 0; ev == CONSUMER_ASSIGN && i < n; i++) {
		ssize_t idx = loop_part_index(w, parts[i]);
		next[i] = idx >= 0 ? start[idx] : -1;
	}
	assignment_report(w);
	goto out;
fail:
	w->hook_rc = rc;
out:
	free(ids);
	free(fresh);
	free(start);
}
