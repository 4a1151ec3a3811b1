/* streamctl's HTTP client: one request per connection to the controller's
 * REST API, over civetweb's client API (http:// and https://).
 *
 * Ownership: struct ctl_client holds copies of everything it is given (the
 * token included); ctl_client_clear() wipes the token.  A struct ctl_resp owns
 * its body; ctl_resp_free() releases it and accepts a zeroed struct.
 */
#ifndef SS_CTL_HTTP_H
#define SS_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_URL_MAX 1024
#define CTL_TOKEN_MAX 4096
/* Largest answer read: a page of 100 jobs with their YAML fits easily. */
#define CTL_BODY_MAX (64u * 1024u * 1024u)

struct ctl_client {
	bool https;
	char host[256];
	int port;
	char prefix[256]; /* path before /api/v1, "" for a server at the root */
	char token[CTL_TOKEN_MAX]; /* "" = no Authorization header */
	char cacert[CTL_URL_MAX];  /* "" = the system's CA bundle */
	int timeout_ms;
};

struct ctl_resp {
	int status;        /* HTTP status */
	char *body;        /* NUL-terminated; len bytes before the NUL */
	size_t len;
	char content_type[128];
};

/* Parses url (http[s]://host[:port][/prefix]) into c. */
int ctl_client_init(struct ctl_client *c, const char *url, char *err, size_t errlen);

/* Sets the bearer token; trailing whitespace and newlines are stripped.
 * Refuses tokens with control characters (they would break the header). */
int ctl_client_set_token(struct ctl_client *c, const char *token, size_t len, char *err,
			 size_t errlen);

/* Reads the token from a file (at most CTL_TOKEN_MAX bytes). */
int ctl_client_token_file(struct ctl_client *c, const char *path, char *err, size_t errlen);

void ctl_client_clear(struct ctl_client *c);

/* Sends METHOD prefix+path with an optional body (ctype given when body is)
 * and reads the whole answer.  Returns 0 when the server answered (any
 * status), -1 when it could not be reached or did not answer in time (err
 * says which). */
int ctl_http_request(const struct ctl_client *c, const char *method, const char *path,
		     const char *ctype, const char *body, size_t len, struct ctl_resp *resp,
		     char *err, size_t errlen);

void ctl_resp_free(struct ctl_resp *resp);

#endif
