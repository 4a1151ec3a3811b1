/* The job routes that run the worker's tool modes (common/proto.h):
 * GET /api/v1/jobs/ID/errors, GET /api/v1/jobs/ID/offsets,
 * POST /api/v1/jobs/ID/offsets/reset, and the reset of
 * POST /api/v1/jobs/ID/start {"reset": {...}}.  Internal to api/. */
#ifndef SS_API_JOB_TOOLS_H
#define SS_API_JOB_TOOLS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "api_http.h"

void api_job_errors(struct api_req *req, int64_t id);
void api_job_offsets(struct api_req *req, int64_t id);
void api_job_offsets_reset(struct api_req *req, int64_t id);

/* Resets the job's offsets to what choice (borrowed; the body of
 * offsets/reset, or the "reset" member of a start, named prefix in messages:
 * "" or "reset.") asks for.  Returns 0 with *answer ({"partitions": [...]},
 * the caller's), or -1 after replying: 422 for a bad choice, 409 unless the
 * job is stopped or failed, 502/504 when the worker could not do it. */
int api_job_reset_run(struct api_req *req, int64_t id, const cJSON *choice, const char *prefix,
		      cJSON **answer);

#endif
