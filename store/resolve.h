/* Resolving a job: its stored definition, filled in from its data source and
 * data service, validated.
 *
 * Used by the API when a job is created, changed, checked or started (to
 * report every problem at once) and by the store when it hands a job to a
 * worker.
 */
#ifndef SS_RESOLVE_H
#define SS_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "jobspec.h"

/* The delimiter a source of this format gets when it names none: "|" for
 * delimited, "," for csv; NULL for formats without one (json, protobuf, avro). */
const char *resolve_default_delimiter(const char *format);

/* mode: "wizard" (definition is the wizard fields as JSON text) or
 * "professional" (definition is the YAML).  source and service are rows as the
 * store returns them (see store.h); service may be NULL when the source's
 * service is gone.  A wizard job needs a csv or delimited source.  Returns 0
 * and sets *out (caller owns it, jobspec_free), or -1 with every problem in
 * errs, each with its YAML line where the YAML has one, and *out NULL.
 *
 * With validate false the definition is only parsed and filled in (what the
 * job would run, for showing a job that no longer validates); parse errors
 * still fail. */
int resolve_job(const char *mode, const char *definition, const cJSON *source,
		const cJSON *service, bool validate, struct jobspec **out,
		struct js_errors *errs);

/* The message a worker reads on standard input (common/proto.h):
 * {"job_id":N,"job_name":"...","config":"<YAML of spec, password included>",
 *  "messages_before":N,"rejected_before":N, <each member of extra>}.
 * extra (borrowed, may be NULL) is an object of further members for the
 * worker's tool modes ("reset", "page", "page_size").  Returns a malloc'd
 * string, or NULL on out of memory.  It holds the password: the caller wipes
 * it (explicit_bzero) before freeing it. */
char *resolve_worker_input(const struct jobspec *spec, int64_t job_id, const char *job_name,
			   int64_t messages_before, int64_t rejected_before, const cJSON *extra);

#endif
