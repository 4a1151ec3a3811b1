/* Data services and data sources: /api/v1/services[/ID], /api/v1/sources[/ID].
 * Internal to api/. */
#ifndef SS_API_CATALOG_H
#define SS_API_CATALOG_H

#include <stdint.h>

#include "api_http.h"

/* GET (list) and POST (create). */
void api_services_collection(struct api_req *req);
/* GET, PATCH, DELETE. */
void api_service_item(struct api_req *req, int64_t id);

void api_sources_collection(struct api_req *req);
void api_source_item(struct api_req *req, int64_t id);

/* A source row as the API shows it: the delimiter filled in.  Takes row. */
cJSON *api_source_repr(cJSON *row);

#endif
