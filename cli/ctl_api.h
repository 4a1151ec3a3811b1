/* streamctl's view of the REST API: calls that report failures the way the
 * CLI promises (message on stderr, an exit code per the contract), paging
 * through lists, and ID_OR_NAME lookups.
 *
 * Ownership: cJSON trees handed out through `out` belong to the caller
 * (cJSON_Delete); a struct ctl_resp filled here is freed by the caller with
 * ctl_resp_free().
 */
#ifndef SS_CTL_API_H
#define SS_CTL_API_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "ctl_http.h"

/* Exit codes of streamctl (doc/streamctl.md). */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_REFUSED = 1,     /* the server refused: 4xx other than 401/403 */
	CTL_EXIT_USAGE = 2,       /* bad command line or input file */
	CTL_EXIT_UNREACHABLE = 3, /* no connection, timeout, or 5xx */
	CTL_EXIT_AUTH = 4,        /* 401 or 403 */
	CTL_EXIT_JOB_FAILED = 5,  /* the job failed (jobs load, jobs start --wait) */
};

struct ctl {
	struct ctl_client client;
	bool json; /* --json: print the server's JSON unchanged */
	int last_status; /* HTTP status of the last answer (0: none) */
};

/* The exit code for an HTTP status that is not 2xx. */
int ctl_exit_for_status(int status);

/* Prints the server's error (code, message, field, and each detail with its
 * YAML line) on stderr, prefixed by what was asked. */
void ctl_api_print_error(const char *what, const struct ctl_resp *resp);

/* One API call; path is relative to /api/v1 unless it starts with '/'.
 * body (JSON, may be NULL) is sent as application/json.  Returns
 * CTL_EXIT_OK on 2xx with resp filled and *out set to the parsed JSON answer
 * (NULL for an empty or non-JSON body; out may be NULL); otherwise prints why
 * on stderr and returns the exit code (resp is then freed). */
int ctl_api_call(struct ctl *ctl, const char *method, const char *path,
		 const char *body, size_t len, struct ctl_resp *resp, cJSON **out);

/* Like ctl_api_call with a JSON body, and the response body discarded. */
int ctl_api_json(struct ctl *ctl, const char *method, const char *path, const cJSON *body,
		 cJSON **out);

/* Every item of GET /api/v1/<kind> (services, sources, jobs), all pages. */
int ctl_api_list_all(struct ctl *ctl, const char *kind, cJSON **items);

/* ID_OR_NAME of a service, source or job: a number is an id, otherwise the
 * name is looked up in the list.  Unknown names print an error and return
 * CTL_EXIT_REFUSED. */
int ctl_api_resolve(struct ctl *ctl, const char *kind, const char *id_or_name, long long *id);

/* The item of kind named name in *found (caller owns it), NULL when none;
 * returns an exit code. */
int ctl_api_find_name(struct ctl *ctl, const char *kind, const char *name, cJSON **found);

/* A field shown as text: strings as they are, numbers without a needless
 * fraction, null/absent as "-", objects and arrays as compact JSON. */
const char *ctl_json_text(const cJSON *obj, const char *key, char *buf, size_t buflen);

/* A number field, or dflt when absent or not a number. */
double ctl_json_num(const cJSON *obj, const char *key, double dflt);

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
int ctl_read_file(const char *path, size_t max, char **text, size_t *len, char *err,
		  size_t errlen);

/* obj's string member key, or NULL (absent, or not a string). */
const char *ctl_json_str(const cJSON *obj, const char *key);

/* "services" -> "service", "sources" -> "source", else "job". */
const char *ctl_kind_one(const char *kind);

#endif
