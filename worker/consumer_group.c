/* Group mode's changes of the assignment (consumer.h): the rebalance
 * callback keeps the group's decision, consumer_apply carries it out when
 * the loop has taken the batch before it. */
#include "consumer.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_int.h"
#include "log.h"

/* Adds (add) or removes the partitions of list to/from c->partitions. */
static void consumer_track(struct consumer *c, const rd_kafka_topic_partition_list_t *list, bool add)
{
	int k;

	if (add) {
		int32_t *grown = realloc(c->partitions, (c->npartitions + (size_t)list->cnt + 1) * sizeof(*grown));
		if (grown == NULL) {
			c->failed = true;
			snprintf(c->failed_msg, sizeof(c->failed_msg), "out of memory");
			return;
		}
		c->partitions = grown;
	}
	for (k = 0; k < list->cnt; k++) {
		int32_t id = list->elems[k].partition;
		size_t i, j;

		for (i = 0; i < c->npartitions && c->partitions[i] != id; i++)
			;
		if (add && i == c->npartitions)
			c->partitions[c->npartitions++] = id;
		else if (!add && i < c->npartitions) {
			for (j = i + 1; j < c->npartitions; j++)
				c->partitions[j - 1] = c->partitions[j];
			c->npartitions--;
		}
	}
	qsort(c->partitions, c->npartitions, sizeof(*c->partitions), consumer_cmp_i32);
}

/* The hook, with the list as arrays. */
static void consumer_call_hook(struct consumer *c, enum consumer_event ev, rd_kafka_topic_partition_list_t *list,
			       bool lost)
{
	size_t n = (size_t)list->cnt, i;
	int32_t *parts = calloc(n ? n : 1, sizeof(*parts));
	int64_t *next = calloc(n ? n : 1, sizeof(*next));
	int64_t fallback = c->spec->fallback_offset == JS_FALLBACK_LATEST ? RD_KAFKA_OFFSET_END
									  : RD_KAFKA_OFFSET_BEGINNING;

	if (parts == NULL || next == NULL) {
		c->failed = true;
		snprintf(c->failed_msg, sizeof(c->failed_msg), "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		parts[i] = list->elems[i].partition;
		next[i] = -1;
	}
	if (c->hook != NULL)
		c->hook(c->hook_ctx, ev, parts, ev == CONSUMER_ASSIGN ? next : NULL, n, lost);
	/* Without a hook the consumer is leaving (consumer_free): nothing is
	 * read any more, whatever the group still hands out. */
	if (ev != CONSUMER_ASSIGN || c->hook == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		rd_kafka_topic_partition_t *tp = &list->elems[i];

		if (next[i] >= 0) {
			tp->offset = next[i];
			log_info("partition %d: assigned, resuming at stored offset %lld", (int)tp->partition,
				 (long long)next[i]);
			consumer_check_stored(c, tp->partition, next[i]);
		} else if (next[i] == -2) {
			tp->offset = RD_KAFKA_OFFSET_INVALID; /* the group's committed offset */
			log_info("partition %d: assigned, resuming at the group's committed offset", (int)tp->partition);
		} else {
			tp->offset = fallback;
			log_info("partition %d: assigned, no stored offset, starting at the %s offset",
				 (int)tp->partition, js_fallback_name(c->spec->fallback_offset));
		}
	}
out:
	free(parts);
	free(next);
}

/* Group mode: applies the group's pending decision.  Cooperative (our
 * default): each adds or removes some partitions; eager (PROPERTIES chose
 * another strategy): every rebalance revokes all, then assigns all.  The
 * group waits for it (librdkafka allows the answer outside the callback). */
void consumer_apply(struct consumer *c)
{
	rd_kafka_t *rk = c->rk;
	rd_kafka_topic_partition_list_t *parts = c->pending;
	rd_kafka_resp_err_t err = c->pending_err;
	bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *kerror = NULL;
	rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (parts == NULL)
		return;
	c->pending = NULL;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		consumer_call_hook(c, CONSUMER_ASSIGN, parts, false);
		if (coop)
			kerror = rd_kafka_incremental_assign(rk, parts);
		else
			kerr = rd_kafka_assign(rk, parts);
		consumer_track(c, parts, true);
	} else {
		bool lost = c->pending_lost || rd_kafka_assignment_lost(rk);

		consumer_call_hook(c, CONSUMER_REVOKE, parts, lost);
		if (coop)
			kerror = rd_kafka_incremental_unassign(rk, parts);
		else
			kerr = rd_kafka_assign(rk, NULL);
		consumer_track(c, parts, false);
		if (!coop)
			c->npartitions = 0;
	}
	if (kerror != NULL) {
		kerr = rd_kafka_error_code(kerror);
		rd_kafka_error_destroy(kerror);
	}
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR && !c->failed) {
		c->failed = true;
		snprintf(c->failed_msg, sizeof(c->failed_msg), "changing the assignment of group \"%s\": %s",
			 c->group_id, rd_kafka_err2str(kerr));
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

/* The group's decision: kept for consumer_apply (consumer_poll's start). */
void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
				  void *opaque)
{
	struct consumer *c = opaque;

	(void)rk;
	if (c->pending != NULL)
		consumer_apply(c); /* never seen: the group waits for the answer */
	c->pending = rd_kafka_topic_partition_list_copy(parts);
	c->pending_err = err;
	c->pending_lost = err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
	if (c->pending == NULL) {
		c->failed = true;
		snprintf(c->failed_msg, sizeof(c->failed_msg), "out of memory");
		return;
	}
	if (c->closing)
		consumer_apply(c);
}

int consumer_seek(struct consumer *c, const int32_t *partitions, const int64_t *offsets, size_t n, char *err,
		  size_t errlen)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_error_t *kerror;
	int64_t fallback = c->spec->fallback_offset == JS_FALLBACK_LATEST ? RD_KAFKA_OFFSET_END
									  : RD_KAFKA_OFFSET_BEGINNING;
	size_t i;
	int k, rc = WERR_OK;

	if (n == 0)
		return WERR_OK;
	list = rd_kafka_topic_partition_list_new((int)n);
	for (i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(list, c->spec->topic, partitions[i])->offset =
			offsets[i] >= 0 ? offsets[i] : fallback;
	kerror = rd_kafka_seek_partitions(c->rk, list, CONSUMER_WATERMARK_TIMEOUT_MS);
	if (kerror != NULL) {
		snprintf(err, errlen, "moving to the stored offsets of topic %s: %s", c->spec->topic,
			 rd_kafka_error_string(kerror));
		rd_kafka_error_destroy(kerror);
		rc = WERR_RETRY;
	}
	for (k = 0; rc == WERR_OK && k < list->cnt; k++)
		if (list->elems[k].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(err, errlen, "moving topic %s partition %d to offset %lld: %s", c->spec->topic,
				 (int)list->elems[k].partition, (long long)list->elems[k].offset,
				 rd_kafka_err2str(list->elems[k].err));
			rc = WERR_RETRY;
		}
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}
