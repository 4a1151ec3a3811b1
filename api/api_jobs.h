/* Jobs: /api/v1/jobs[/ID[/start|/stop|/status]].  Internal to api/. */
#ifndef SS_API_JOBS_H
#define SS_API_JOBS_H

#include <stdint.h>

#include "api_http.h"

/* GET (list) and POST (create). */
void api_jobs_collection(struct api_req *req);
/* GET, PATCH, DELETE. */
void api_job_item(struct api_req *req, int64_t id);
/* action: "start", "stop" or "status"; anything else is 404. */
void api_job_action(struct api_req *req, int64_t id, const char *action);

/* A job row as the API shows it: wizard fields with the password masked, or
 * the effective YAML with the password masked.  Takes row; NULL on out of
 * memory. */
cJSON *api_job_repr(struct store *st, cJSON *row);

/* The status object of GET /api/v1/jobs/ID/status, from a job row (borrowed). */
cJSON *api_job_status(const cJSON *row);

#endif
