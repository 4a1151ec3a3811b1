/* A job's tasks in the API: the "tasks" of GET /api/v1/jobs/ID/status, the
 * "tasks" field of a job body (both modes), and a PATCH of tasks on a
 * running job.  Internal to api/.
 */
#ifndef SS_API_JOB_TASKS_H
#define SS_API_JOB_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api_http.h"

/* Adds "partitions" (what the job's tasks own now, in order, each once) and
 * "tasks" ([{"task", "pid", "state", "restarts", "partitions",
 * "rows_per_second", "lag", "last_error"}]) to a status object, for a job of
 * ntasks tasks whose state is job_state.  Tasks the supervisor has not seen
 * yet are listed with the job's state when it is at rest, else "starting". */
void api_job_tasks_status(cJSON *status, int64_t job_id, int ntasks, const char *job_state);

/* The "tasks" field of a body: *present false when absent or null, else
 * *tasks in JS_TASKS_MIN..JS_TASKS_MAX.  Returns 0, or -1 after replying 422
 * (field "tasks"). */
int api_job_body_tasks(struct api_req *req, const cJSON *body, int *tasks, bool *present);

/* A professional job's YAML with TASKS set to tasks: the line replaced or
 * added where that keeps the user's text, else the YAML written anew.
 * malloc'd (it holds the password: wipe it), or NULL when yaml does not
 * parse or memory ran out. */
char *api_config_set_tasks(const char *yaml, int tasks);

/* A job's stored definition (mode "wizard" or "professional") with its
 * tasks set; malloc'd (wipe it), or NULL. */
char *api_definition_set_tasks(const char *mode, const char *definition, int tasks);

/* PATCH of a job that is not at rest: a body of "tasks" alone changes the
 * running job's tasks (the supervisor adds or removes tasks, the others go
 * on); anything else is the 409 "stop it first".  Replies either way. */
void api_job_patch_running(struct api_req *req, const cJSON *body, const cJSON *row, int64_t id,
			   void (*reply_row)(struct api_req *req, int64_t id));

#endif
