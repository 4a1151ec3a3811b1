/* Checking a job against its database: runs `streamworker --check` (see
 * common/proto.h, "Check mode") and turns its answer into what the API shows.
 *
 * Internal to api/.  Used by POST /api/v1/jobs/validate, dry runs, and the
 * MATCH_COLUMNS check when an UPDATE or MERGE job is created or changed.
 *
 * The worker runs through api_worker_run (api_worker.h): own process group,
 * the job on standard input only, at most API_WORKER_OUTPUT_MAX bytes of
 * answer within API_WORKER_TIMEOUT_MS.  "unreachable" errors mean the
 * database was not checked.
 */
#ifndef SS_API_CHECK_H
#define SS_API_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "jobspec.h"


struct api_check {
	bool database_checked; /* false: unreachable, timed out, or the check failed */
	bool valid;            /* checked, and the worker found nothing wrong */
	cJSON *errors;         /* [{"field","line","code","message"}], the caller's */
	cJSON *statements;     /* ["SQL", ...], the caller's */
	cJSON *kafka;          /* {"partitions", "partitions_read"} when the brokers
				* answered, else NULL; the caller's */
};

/* Checks spec (resolved: what the worker would run) with the worker at
 * worker_path.  A problem running the check is not a failure of this call:
 * it becomes an error in the answer with database_checked false.  Each
 * error's line is the YAML line of its field in spec (jobspec_line), null
 * when unknown.  No secret of the job appears in the answer (jobspec_scrub).
 * with_kafka: also ask the brokers about the topic and its partitions. */
void api_check_run(const char *worker_path, const struct jobspec *spec, int64_t job_id,
		   const char *job_name, bool with_kafka, struct api_check *out);

/* Frees errors, statements and kafka; chk itself is the caller's. */
void api_check_free(struct api_check *chk);

/* {"field", "line", "code", "message"} for the answer's errors; line 0 and a
 * NULL field become null. */
cJSON *api_check_error(const char *field, int line, const char *code, const char *message);

#endif
