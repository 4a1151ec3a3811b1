/* What the API refuses before it routes a request (issue 10, section 7):
 * requests from other sites (a foreign Origin; without a token, a foreign
 * Host: DNS rebinding), unknown methods, NUL in the path, two framings of one
 * body, bodies that are not JSON; and civetweb's own errors, answered as the
 * API's JSON error.  Internal to api/.
 *
 * Every api_guard_* check that refuses has replied (api_reply_error) and
 * returns false.
 */
#ifndef SS_API_GUARD_H
#define SS_API_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include <civetweb.h>

#include "api_http.h"

#define API_HEADER_SECONDS 5 /* civetweb's request_timeout_ms, in seconds */

struct api_guard;

/* listen: "HOST:PORT" as given to --listen; token: a token is required (the
 * Host is then not checked); allow_origin, allow_host: names separated by
 * commas or blanks, or NULL (copied).  -1 with err for a bad list. */
int api_guard_new(const char *listen, bool tls, bool token, const char *allow_origin,
		  const char *allow_host, struct api_guard **out, char *err, size_t errlen);
/* The port civetweb listens on, once it does. */
void api_guard_set_port(struct api_guard *g, int port);
void api_guard_free(struct api_guard *g);

/* Before authentication: Host (421), Origin (403; an allowed one is set in
 * req->cors_origin), method (501), the path (400 for %00, 404 when too long:
 * path_ok and nul from api_path_decode), framing (400), and a CORS preflight
 * of an allowed origin, answered 204.  true: go on. */
bool api_guard_before_auth(const struct api_guard *g, struct api_req *req, bool path_ok,
			   bool nul);

/* After authentication: a body (or a write naming a type) must be JSON (415). */
bool api_guard_body_type(struct api_req *req);

/* The URI's path percent-decoded into out (civetweb's decode_url is off, so
 * that %00 cannot end the path early); false for a NUL (*nul) or a path that
 * does not fit. */
bool api_path_decode(const char *uri, char *out, size_t outlen, bool *nul);

/* GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (civetweb knows more). */
bool api_method_known(const char *method);

/* civetweb's http_error callback: its own errors as the API's JSON error
 * (unknown methods 501); returns 0 (answered). */
int api_http_error(struct mg_connection *conn, int status, const char *msg);

#endif
