/* Tool modes: `streamworker --offsets`, `--reset`, `--errors` (proto.h, "Tool
 * modes"), what the API's offsets, offsets/reset and errors routes run.
 *
 * Each reads the job from standard input as check mode does
 * ({"job_id":N,"job_name":"...","config":"<YAML>", ...}; job_name is required:
 * the progress and error tables are keyed by it), parses the YAML (without
 * jobspec_validate: a job whose mapping is wrong can still show and reset its
 * offsets; only the keys the mode needs are required), does its work and
 * prints one JSON object on standard output.  Logs go to standard error;
 * nothing is written on WORKER_STATUS_FD; the password is never printed.
 *
 * Success: the object proto.h gives for the mode, plus for --reset
 *   "kafka_committed": true|false and, when false, "warning": "<why>" (the
 *   progress rows were written; only the group's committed offsets, which
 *   CONSISTENCY none relies on and lag monitors read, are behind).
 * --errors: created_at is UTC with milliseconds, "2026-11-24T05:51:29.123Z".
 *
 * Failure: {"error": {"code": "...", "message": "..."}} where code is
 *   unreachable   the database or the Kafka brokers could not be reached or
 *                 answered with an error a retry may cure     exit 1
 *   bad_request   standard input: not JSON, no job_name, a bad "reset",
 *                 "page" or "page_size"                         exit 2
 *   config        the job cannot work: YAML errors, missing keys, unknown
 *                 topic, authentication, privilege, no schema  exit 2
 *   no_partition  --reset names a partition the job does not read  exit 2
 *   out_of_range  --reset offset outside [low_watermark, high_watermark];
 *                 the message names the partition and the range  exit 2
 * Exit codes are exitcodes.h's: 0 ok, WORKER_EXIT_RETRY, WORKER_EXIT_CONFIG.
 */
#ifndef SS_WORKER_TOOLS_H
#define SS_WORKER_TOOLS_H

enum tools_mode {
	TOOLS_OFFSETS,
	TOOLS_RESET,
	TOOLS_ERRORS,
};

/* How long a tool waits for the Kafka brokers to answer about the topic. */
#define TOOLS_KAFKA_WAIT_MS 10000

/* --errors: the page size when the request gives none, and the largest. */
#define TOOLS_PAGE_SIZE_DEFAULT 20
#define TOOLS_PAGE_SIZE_MAX 100

/* Runs one tool mode; returns the exit code. */
int tools_run(enum tools_mode mode);

#endif
