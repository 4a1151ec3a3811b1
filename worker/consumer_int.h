/* What consumer.c and consumer_group.c share: the consumer's state and a
 * few helpers.  Private to those two files. */
#ifndef SS_WORKER_CONSUMER_INT_H
#define SS_WORKER_CONSUMER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumer_hook.h"
#include "jobspec.h"

/* A broker request that must answer (watermarks, a seek). */
#define CONSUMER_WATERMARK_TIMEOUT_MS 5000

struct consumer {
	const struct jobspec *spec;
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	int32_t *partitions;
	size_t npartitions;
	size_t topic_partitions; /* how many the topic has (its metadata) */
	char group_id[256];
	bool group;            /* group mode (consumer.h) */
	int task, tasks;       /* this task's index and the job's number of tasks */
	consumer_hook hook;
	void *hook_ctx;
	int64_t down_since_ms; /* when all brokers went down; 0 = not down */
	/* consumer_wake: the queue limits (as configured, PROPERTIES included)
	 * and the messages and payload bytes taken since the last wake */
	int64_t queue_min_messages, queue_bytes;
	int64_t taken_since_wake, taken_bytes_since_wake;
	bool broken;           /* skip the graceful close: brokers are gone */
	/* Set by consumer_error_cb when an error means the configuration cannot
	 * work (kafka_err.h); the next poll or metadata wait returns WERR_FATAL. */
	bool fatal;
	char fatal_msg[1024];
	/* A change of the assignment the group decided, applied at the start
	 * of the next consumer_poll (consumer_apply): the callback may run in
	 * the middle of a batch, and every message of that batch must reach
	 * the loop under the assignment it was fetched in (librdkafka 2.0.2
	 * returns the messages it took before the callback after it). */
	rd_kafka_topic_partition_list_t *pending;
	rd_kafka_resp_err_t pending_err;
	bool pending_lost;
	bool closing; /* consumer_free: changes are applied at once */
	/* Set by the rebalance callback when librdkafka refused an assignment
	 * change; the next poll returns WERR_RETRY (a restart rejoins). */
	bool failed;
	char failed_msg[1024];
};

/* qsort's comparison of int32_t. */
int consumer_cmp_i32(const void *a, const void *b);

/* Warns when a stored offset is no longer in the log (retention) or past its
 * end (a recreated topic): FALLBACK_OFFSET then applies. */
void consumer_check_stored(struct consumer *c, int32_t partition, int64_t next);

/* consumer_group.c: the rebalance callback (keeps the group's decision) and
 * its application (the hook, then librdkafka's assign or unassign); a no-op
 * when nothing is pending. */
void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
			   void *opaque);
void consumer_apply(struct consumer *c);

#endif
