/* The Kafka side of a worker: one librdkafka consumer on one topic.
 *
 * Partitions are assigned by hand (rd_kafka_assign, not subscribe): there is
 * one worker per job, and a restarted worker resumes at once from the offsets
 * the database holds instead of waiting for a group rebalance.  Offsets are
 * committed to the consumer group only after the database commit, and only so
 * that external lag monitors see progress; the progress table is the truth.
 *
 * Every function returning int returns WERR_OK (or a count) or a negative
 * enum werr and fills err.
 */
#ifndef SS_WORKER_CONSUMER_H
#define SS_WORKER_CONSUMER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "jobspec.h"
#include "wtypes.h"

struct consumer;

/* How long all brokers may be unreachable before the worker gives up with a
 * retriable error (the controller restarts it after a backoff). */
#define CONSUMER_DOWN_MAX_MS 30000

/* Creates the consumer and finds the partitions of the job's topic (all, or
 * KAFKA.INPUT.SOURCE.PARTITIONS).  Waits up to CONSUMER_DOWN_MAX_MS for the
 * brokers, returning early with WERR_RETRY once *stop is set.  spec and
 * job_name must outlive the consumer.  On success *out is the caller's. */
int consumer_open(const struct jobspec *spec, const char *job_name, const volatile sig_atomic_t *stop,
		  struct consumer **out, char *err, size_t errlen);

/* For the tool modes (tools.h): like consumer_open, but waits at most wait_ms
 * for the brokers.  The handle is only used for the calls
 * below; nothing is assigned or consumed. */
/* The Kafka group's committed offset of each of the consumer's partitions, in
 * consumer_partitions() order, into next (-1 where the group has none).  For
 * CONSISTENCY none, which keeps no progress table. */
int consumer_committed(struct consumer *c, int64_t *next, char *err, size_t errlen);

int consumer_open_tool(const struct jobspec *spec, const char *job_name, int wait_ms, struct consumer **out,
		       char *err, size_t errlen);

/* The consumer group's id (PROPERTIES group.id or streamserver-<job>); owned
 * by the consumer. */
const char *consumer_group(const struct consumer *c);

/* The low and high watermarks of one partition of the job's topic (blocks up
 * to a few seconds). */
int consumer_watermarks(struct consumer *c, int32_t partition, int64_t *low, int64_t *high, char *err,
			size_t errlen);

/* offsets[i] = the first offset of partitions[i] whose message timestamp is
 * >= timestamp_ms (librdkafka offsetsForTimes), or -1 when there is none. */
int consumer_offsets_for_time(struct consumer *c, int64_t timestamp_ms, const int32_t *partitions, size_t n,
			      int64_t *offsets, char *err, size_t errlen);

/* Commits the offsets to the consumer group and waits for the answer. */
int consumer_commit_sync(struct consumer *c, const struct part_offset *offsets, size_t n, char *err,
			 size_t errlen);

/* The partitions to consume, ascending; owned by the consumer. */
const int32_t *consumer_partitions(const struct consumer *c, size_t *n);

/* What librdkafka last saw of partition, without asking the brokers: the
 * high watermark from the latest fetch response (-1 when none yet) and the
 * consumer's position, the offset after the last message consume returned
 * (-1 when none yet).  For the lag the worker reports. */
void consumer_cached_offsets(struct consumer *c, int32_t partition, int64_t *high, int64_t *position);

/* Starts consuming: next_offsets[i] for partitions[i], or -1 to start at
 * FALLBACK_OFFSET (earliest or latest). */
int consumer_assign(struct consumer *c, const int64_t *next_offsets, char *err, size_t errlen);

/* How often consumer_refresh() may ask the brokers about the topic. */
#define CONSUMER_REFRESH_MS 30000

/* Partitions added to the topic while the job runs are picked up here (when
 * the job did not list PARTITIONS): they are assigned from their beginning,
 * since everything in them was produced after the job started.  Asks the
 * brokers at most every CONSUMER_REFRESH_MS (briefly blocking); *added says
 * how many partitions were added, and consumer_partitions() then returns a new
 * array.  Failing to ask is not an error: it is tried again later. */
int consumer_refresh(struct consumer *c, size_t *added, char *err, size_t errlen);
/* Whether consumer_refresh() would ask the brokers now (and may then reorder
 * the partitions). */
bool consumer_refresh_due(const struct consumer *c);

/* Waits up to timeout_ms for messages and stores up to max of them in msgs.
 * Returns how many (0 on timeout) or a negative enum werr.  Only messages with
 * data are returned (err == 0); the caller destroys each with
 * rd_kafka_message_destroy().  Broker errors are logged here; they become
 * WERR_RETRY once all brokers have been down for CONSUMER_DOWN_MAX_MS. */
int consumer_poll(struct consumer *c, rd_kafka_message_t **msgs, size_t max, int timeout_ms, char *err,
		  size_t errlen);

/* Commits the offsets to the consumer group in the background; a failure only
 * logs a warning. */
void consumer_commit_async(struct consumer *c, const struct part_offset *offsets, size_t n);

/* Leaves the assignment and destroys the consumer; accepts NULL. */
void consumer_free(struct consumer *c);

#endif
