/* /api/v1/cluster: the controllers sharing this catalog (controller/
 * cluster.h), and draining one before maintenance.
 *
 *   GET  /api/v1/cluster               {"shared": bool, "self": name,
 *        "lease_ms": N, "controllers": [{"name", "api_url", "started_at",
 *        "lease_age_ms", "alive", "draining", "tasks": [{"job_id", "task",
 *        "state", "partitions"}]}]}
 *   POST /api/v1/cluster/{name}/drain  its tasks move to the others
 *   POST /api/v1/cluster/{name}/resume it takes tasks again
 * Both POSTs answer the controller as in the list (404 when none has that
 * name).  A controller alone (SQLite) lists itself.
 */
#ifndef SS_API_CLUSTER_H
#define SS_API_CLUSTER_H

#include "api_http.h"

/* rest: what follows "/api/v1/cluster" ("" or "/NAME/ACTION"). */
void api_route_cluster(struct api_req *req, const char *rest);

#endif
