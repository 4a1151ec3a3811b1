/* Data services and data sources: /api/v1/services[/ID], /api/v1/sources[/ID].
 * Internal to api/. */
#ifndef SS_API_CATALOG_H
#define SS_API_CATALOG_H

#include "api_resource.h"

extern const struct api_resource api_services;
extern const struct api_resource api_sources;

#endif
