/* The worker's life: read the job from standard input, connect to PostgreSQL
 * and Kafka, then consume, decode and write batches until told to stop.
 *
 * Status lines go to WORKER_STATUS_FD (proto.h); if that descriptor is not
 * open (the worker was started by hand) they go nowhere.  The return value is
 * the process's exit code (exitcodes.h).  SIGTERM/SIGINT stop the worker after
 * the current batch is committed; nothing is ever half-written because each
 * batch is one database transaction.
 *
 * Bad data does not stop the job: a message that cannot be decoded, and a row
 * the database rejects for its data, go to the error table (sink_pg.h) and are
 * counted; KAFKA.INPUT.ERROR_LIMIT (a count, or a percentage of the messages
 * consumed since the user started the job, judged after 100 of them) makes
 * the worker commit what is good and exit WORKER_EXIT_DATA.
 */
#ifndef SS_WORKER_LOOP_H
#define SS_WORKER_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest job document accepted on standard input. */
#define LOOP_STDIN_MAX ((size_t)1 << 20)

/* Reads all of standard input (the job document, at most LOOP_STDIN_MAX
 * bytes) into *out (malloc'd, not NUL-terminated, the caller's), its length
 * into *outlen.  Gives up when a signal interrupts it with *stop set (stop may
 * be NULL).  Returns 0, or -1 with err filled.  Shared with check mode. */
int loop_read_stdin(const volatile sig_atomic_t *stop, char **out, size_t *outlen, char *err, size_t errlen);

int loop_run(void);

/* How long one poll of the consumer may wait for messages: KAFKA.POLL.TIMEOUT
 * (poll_timeout_ms, 0: not at all), but never past what the loop must do on
 * time: at most 100 ms (a stop, the lag reports), 5 ms while a batch is
 * being written (in_flight: its commit is reported soon after), and the
 * batch_left_ms until the open batch's MINIMAL_INTERVAL ends (rows_open).
 * A pure function (tests/unit/test_loop.c). */
int64_t loop_poll_wait_ms(int64_t poll_timeout_ms, bool in_flight, bool rows_open,
			  int64_t batch_left_ms);

#endif
