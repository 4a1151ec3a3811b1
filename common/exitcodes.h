/* Worker exit codes: the contract between streamworker and streamserver.
 *
 * The controller reads a worker's exit status and decides:
 *   WORKER_EXIT_STOPPED  - stopped on request (SIGTERM); the job becomes `stopped`.
 *   WORKER_EXIT_RETRY    - a failure that may go away (database or broker
 *                          unreachable); restarted after a backoff (`retrying`).
 *   WORKER_EXIT_CONFIG   - the job's configuration cannot work (bad YAML, missing
 *                          table, authentication failure); never restarted (`failed`).
 *   WORKER_EXIT_DATA     - the data cannot be written (error limit reached);
 *                          never restarted (`failed`).
 * Death by a signal the controller did not send is a crash: restarted after a
 * backoff, like WORKER_EXIT_RETRY.
 */
#ifndef SS_EXITCODES_H
#define SS_EXITCODES_H

#define WORKER_EXIT_STOPPED 0
#define WORKER_EXIT_RETRY 1
#define WORKER_EXIT_CONFIG 2
#define WORKER_EXIT_DATA 3

/* File descriptor on which the worker writes its status lines (see proto.h).
 * The configuration arrives on standard input. */
#define WORKER_STATUS_FD 3

#endif
