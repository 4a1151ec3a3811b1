/* The worker loop's state, shared by loop.c (reading, batching, the writer
 * thread) and assignment.c (what changes when the task's partitions do).
 * Nothing outside the loop includes this.
 */
#ifndef SS_WORKER_LOOP_INT_H
#define SS_WORKER_LOOP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>

#include "consumer.h"
#include "copybuf.h"
#include "decode.h"
#include "decode_meta.h"
#include "jobspec.h"
#include "proto.h"
#include "sink_pg.h"
#include "wtypes.h"

/* Offsets of one partition in the current batch; first < 0 when untouched.
 * done: the next offset after what the database holds (the start offset, then
 * each committed batch's), -1 when not known; for the lag report and to see
 * whether another task moved the partition.  expect: the lowest offset the
 * loop takes next (-1: any); a message below it was fetched before a seek
 * and is dropped.  redo: where to read again after a batch was dropped
 * (loop_recover), -1: nothing dropped. */
struct loop_part {
	int64_t first;
	int64_t next;
	int64_t done;
	int64_t expect;
	int64_t redo;
};

/* The batch being written by the writer thread while the loop reads and
 * decodes the next one: the database's work overlaps ours (measured: COPY of
 * a 10000-row batch ~6 ms, reading and decoding it ~3 ms).  At most one
 * batch is in flight; the next hand-over first collects it (loop_collect),
 * so batches commit in order and the progress, the fence, status lines and
 * ERROR_LIMIT see them exactly as before.  A batch that fails stops the
 * worker; the open batch behind it is dropped unwritten (its offsets were
 * never stored). */
struct loop_flight {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool busy; /* handed over, not yet collected */
	bool done; /* written (or failed); under mu */
	bool quit; /* under mu */

	struct copybuf copy;
	struct sink_msg *msgs;
	rd_kafka_message_t **kms;
	size_t nrows, rows_cap;
	struct loop_part *parts; /* first/next of this batch, same order as the worker's */
	struct part_offset *commit;
	size_t ncommit;

	int rc;
	struct sink_batch_result res;
	char err[1536];
	int64_t duration_ms;
};

struct worker {
	/* the headers of the message being decoded (META), one past the cap so
	 * that the decoder sees there were too many */
	struct decode_header headers[DECODE_HEADERS_MAX + 1];
	int64_t job_id;
	char *job_name;
	int task, tasks; /* this worker is task `task` of the job's `tasks` */
	struct jobspec *spec;
	pid_t ppid;
	int status_fd;
	bool controller_gone;

	struct sink_pg *sink;
	struct consumer *consumer;
	struct row_decoder *decoder; /* KEY, VALUE, META -> one COPY row */
	int32_t *partitions; /* owned now, ascending (the loop's copy) */
	size_t npartitions;
	/* A failure inside the rebalance hook, returned by the next poll. */
	int hook_rc;
	char hook_err[2048];
	int64_t fence_misses, rebalances;
	/* Group mode: a pause longer than this (half the session timeout; 0:
	 * never) may have cost the task its partitions (assignment_stalled). */
	int64_t stall_ms;
	int64_t last_step_ms;

	/* the open batch */
	struct copybuf copy;
	/* every message of the open batch, kept until it is committed: the error
	 * table needs the raw key and value of any of them */
	struct sink_msg *msgs;
	rd_kafka_message_t **kms;
	size_t nrows, rows_cap;
	struct loop_part *parts; /* one per partition, same order */
	int64_t batch_start_ms;
	int64_t max_row;
	int64_t tx_rows; /* LOOP_TX_ROWS in whole MAX_ROW segments, at least MAX_ROW */

	/* totals for the periodic log line */
	int64_t total_rows, total_batches, stats_rows, stats_batches, stats_ms;
	int64_t lag_sent_ms; /* last lag report; 0: none yet */
	struct proto_lag *lag; /* scratch, one per partition */
	/* ERROR_LIMIT: counted since the user started the job (input counters,
	 * then this worker's) */
	int64_t messages_before, rejected_before, total_messages, total_rejected;
	struct loop_flight flight;
};

int64_t loop_now_ms(void);
/* Takes the result of a status write (proto.h): EPIPE means the controller
 * is gone. */
void loop_status_result(struct worker *w, int rc);
/* Empties the open batch, giving its messages back to librdkafka. */
void loop_batch_reset(struct worker *w);
/* partitions[] index of partition, or -1 when the task does not own it. */
ssize_t loop_part_index(const struct worker *w, int32_t partition);
/* Waits for the batch in flight and takes its result (WERR_FENCED: it was
 * rolled back; its partitions' redo is set). */
int loop_collect(struct worker *w, char *err, size_t errlen);
/* Collects, then hands the open batch to the writer thread. */
int loop_flush(struct worker *w, char *err, size_t errlen);

#endif
