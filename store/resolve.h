/* Resolving a job: its stored definition, filled in from its data source and
 * data service, validated.
 *
 * Used by the API when a job is created, changed or started (to report every
 * problem at once) and by the store when it hands a job to a worker.
 */
#ifndef SS_RESOLVE_H
#define SS_RESOLVE_H

#include <cjson/cJSON.h>

#include "jobspec.h"

/* The delimiter a source of this format gets when it names none: "|" for
 * delimited, "," for csv. */
const char *resolve_default_delimiter(const char *format);

/* mode: "wizard" (definition is the wizard fields as JSON text) or
 * "professional" (definition is the YAML).  source and service are rows as the
 * store returns them (see store.h); service may be NULL when the source's
 * service is gone.  Returns 0 and sets *out (caller owns it, jobspec_free), or
 * -1 with every problem in errs and *out NULL. */
int resolve_job(const char *mode, const char *definition, const cJSON *source,
		const cJSON *service, struct jobspec **out, struct js_errors *errs);

#endif
