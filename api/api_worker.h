/* Running the worker's one-shot modes from a request thread:
 * `streamworker --check`, `--offsets`, `--reset`, `--errors` (see
 * common/proto.h).  Internal to api/.
 *
 * The worker is started by the controller's one spawn helper
 * (common/workerspawn.h: its own process group, a clean signal mask, default
 * signal handlers, the workers' environment); the job, secrets included,
 * reaches it on its standard input only (never argv, environment or log),
 * with the mode's extra members ("reset", "page", "page_size").  Its answer
 * is read from its standard output, at most API_WORKER_OUTPUT_MAX bytes,
 * within API_WORKER_TIMEOUT_MS; after that the group is killed.  The calling
 * thread reaps it by pid (the supervisor reaps only its own workers, so the
 * exit status is ours).  SIGPIPE must be ignored in the process (the
 * controller does), so that a worker that dies early gives EPIPE, not a
 * signal.
 */
#ifndef SS_API_WORKER_H
#define SS_API_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api_http.h"
#include "jobspec.h"

#define API_WORKER_TIMEOUT_MS 30000
#define API_WORKER_OUTPUT_MAX (1024 * 1024)

struct api_worker_result {
	bool ran;       /* the worker was started; err says why not */
	bool reaped;    /* wstatus holds how it ended */
	int wstatus;
	bool timed_out; /* killed at the deadline */
	bool too_large; /* killed for printing more than API_WORKER_OUTPUT_MAX */
	cJSON *answer;  /* its standard output when that is a JSON object; owned */
	char err[256];
};

/* Runs `worker_path mode` (mode: "--check", "--offsets", ...) for spec
 * (resolved) and waits for it.  extra (borrowed, may be NULL): members added
 * to the input.  Never fails as such: res says what happened.  The answer is
 * as the worker printed it: scrub what you show (jobspec_scrub). */
void api_worker_run(const char *worker_path, const char *mode, const struct jobspec *spec,
		    int64_t job_id, const char *job_name, const cJSON *extra,
		    struct api_worker_result *res);

/* Frees res->answer; res itself is the caller's. */
void api_worker_result_free(struct api_worker_result *res);

/* The exit code, or -1 when it was not reaped or died by a signal. */
int api_worker_exit_code(const struct api_worker_result *res);

/* For the tool routes: runs the mode and returns 0 with *answer (the caller's)
 * when the worker exited 0 with a JSON object; otherwise replies and returns
 * -1: exit 1 (WORKER_EXIT_RETRY) -> 502 unreachable, exit 2 or 3 -> 422 with
 * the worker's message, no answer within the timeout -> 504, anything else ->
 * 502.  Messages are scrubbed of every secret of the job (jobspec_scrub). */
int api_worker_tool(struct api_req *req, const char *mode, const struct jobspec *spec,
		    int64_t job_id, const char *job_name, const cJSON *extra, cJSON **answer);

#endif
