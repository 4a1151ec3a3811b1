/* The worker's life: read the job from standard input, connect to PostgreSQL
 * and Kafka, then consume, decode and write batches until told to stop.
 *
 * Status lines go to WORKER_STATUS_FD (proto.h); if that descriptor is not
 * open (the worker was started by hand) they go nowhere.  The return value is
 * the process's exit code (exitcodes.h).  SIGTERM/SIGINT stop the worker after
 * the current batch is committed; nothing is ever half-written because each
 * batch is one database transaction.
 */
#ifndef SS_WORKER_LOOP_H
#define SS_WORKER_LOOP_H

/* Largest job document accepted on standard input. */
#define LOOP_STDIN_MAX ((size_t)1 << 20)

int loop_run(void);

#endif
