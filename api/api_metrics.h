/* GET /metrics: Prometheus text exposition (README "Metrics"). */
#ifndef SS_API_METRICS_H
#define SS_API_METRICS_H

#include "api_http.h"

void api_metrics(struct api_req *req);

#endif
