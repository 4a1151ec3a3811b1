/* Jobs: /api/v1/jobs[/ID[/start|/stop|/status|/config|/errors|/offsets
 * |/offsets/reset]] and
 * /api/v1/jobs/validate.  Internal to api/. */
#ifndef SS_API_JOBS_H
#define SS_API_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "api_resource.h"

/* List, create (or dry run), get, change, delete. */
extern const struct api_resource api_jobs;

/* /api/v1/jobs/WORD where WORD is not an id: "validate" (POST) or "status"
 * (GET: every job's status object).  Returns false,
 * without replying, for any other word. */
bool api_jobs_word(struct api_req *req, const char *word);

/* action: "start", "stop", "status", "config", "errors", "offsets" or
 * "offsets/reset"; anything else is 404. */
void api_job_action(struct api_req *req, int64_t id, const char *action);

#endif
