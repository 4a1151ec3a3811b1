/* GET /api/v1/openapi.yaml: the OpenAPI 3 description of every route
 * (api/openapi.yaml, embedded at build time). */
#ifndef SS_API_OPENAPI_H
#define SS_API_OPENAPI_H

#include "api_http.h"

void api_openapi(struct api_req *req);

#endif
