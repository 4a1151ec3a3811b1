/* The Kafka side of a worker (one task of a job): one librdkafka consumer on
 * one topic, in one of two modes.
 *
 * Group mode (the job lists no PARTITIONS): every task of the job subscribes
 * to the topic in the job's consumer group and Kafka's group protocol decides
 * who reads what (an eager assignor, roundrobin: see CONSUMER_ASSIGNOR in
 * consumer.c for why not cooperative-sticky).  Each task is a static member
 * (group.instance.id "<group>-task-<i>"): a task killed and restarted within
 * the session timeout gets its partitions back at once, without a rebalance;
 * one gone for longer loses them to the others.  A task that stops on
 * purpose leaves the group (consumer_free), so its partitions move at once.
 * Every change of the assignment reaches the worker through the hook
 * (consumer_set_hook) before it takes effect: the worker finishes its batches
 * and picks each new partition's start from the progress table.
 *
 * Assign mode (PARTITIONS listed): the listed partitions are divided among
 * the tasks by position (task i of n takes the i-th, the (i+n)-th, ...) and
 * assigned by hand (consumer_assign); nothing moves while the job runs.
 *
 * Offsets are committed to the consumer group only after the database commit,
 * and only so that external lag monitors see progress; the progress table is
 * the truth (except with CONSISTENCY none, which keeps no table).
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

#include "consumer_hook.h"
#include "jobspec.h"
#include "wtypes.h"

struct consumer;

/* How long all brokers may be unreachable before the worker gives up with a
 * retriable error (the controller restarts it after a backoff). */
#define CONSUMER_DOWN_MAX_MS 30000

/* Session timeout of the group's members unless KAFKA.PROPERTIES sets
 * session.timeout.ms: how long a frozen or killed task keeps its partitions. */
#define CONSUMER_SESSION_TIMEOUT_MS "10000"

/* Creates the consumer of task `task` of `tasks` and checks the job's topic
 * (and PARTITIONS) against the brokers.  Group mode: subscribes (the
 * partitions come later, through the hook); assign mode: picks the task's
 * share of PARTITIONS, which consumer_assign then starts.  Waits up to
 * CONSUMER_DOWN_MAX_MS for the brokers, returning early with WERR_RETRY once
 * *stop is set.  spec and job_name must outlive the consumer.  On success
 * *out is the caller's. */
int consumer_open(const struct jobspec *spec, const char *job_name, int task, int tasks,
		  const volatile sig_atomic_t *stop, struct consumer **out, char *err, size_t errlen);

/* Whether the consumer is in group mode. */
bool consumer_is_group(const struct consumer *c);

/* Group mode: session.timeout.ms as configured (0 in assign mode). */
int64_t consumer_session_timeout_ms(const struct consumer *c);

void consumer_set_hook(struct consumer *c, consumer_hook fn, void *ctx);

/* Moves the reading position of partitions[i] to offsets[i] (an offset >= 0,
 * or -1 for FALLBACK_OFFSET); messages already fetched from before are
 * dropped by librdkafka. */
int consumer_seek(struct consumer *c, const int32_t *partitions, const int64_t *offsets, size_t n, char *err,
		  size_t errlen);

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

/* The partitions the consumer reads now, ascending; owned by the consumer
 * (in group mode the array changes with the assignment). */
const int32_t *consumer_partitions(const struct consumer *c, size_t *n);

/* How many partitions the topic has (all of them, PARTITIONS or not), as the
 * brokers said when the consumer was opened. */
size_t consumer_topic_partitions(const struct consumer *c);

/* What librdkafka last saw of partition, without asking the brokers: the
 * high watermark from the latest fetch response (-1 when none yet) and the
 * consumer's position, the offset after the last message consume returned
 * (-1 when none yet).  For the lag the worker reports. */
void consumer_cached_offsets(struct consumer *c, int32_t partition, int64_t *high, int64_t *position);

/* Assign mode: starts consuming: next_offsets[i] for partitions[i], or -1
 * to start at FALLBACK_OFFSET (earliest or latest). */
int consumer_assign(struct consumer *c, const int64_t *next_offsets, char *err, size_t errlen);

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

/* Leaves the assignment (group mode: and the group, so the partitions move
 * to the other tasks at once) and destroys the consumer; accepts NULL.  The
 * hook is not called any more. */
void consumer_free(struct consumer *c);

#endif
