/* streamctl's HTTP client: one request per call to the controller's REST
 * API, over libcurl (http:// and https://).
 *
 * TLS as curl does it: the server's certificate is verified against --cacert
 * or the system's CA bundle, and its host name against the URL's; a client
 * certificate for mutual TLS.  Proxies come from the environment (http_proxy,
 * https_proxy, no_proxy), as for curl(1).
 *
 * Ownership: struct ctl_client holds copies of everything it is given (the
 * token included); ctl_client_clear() wipes the token.  A struct ctl_resp owns
 * its body; ctl_resp_free() releases it and accepts a zeroed struct.
 * Call curl_global_init() once before the first request.
 */
#ifndef SS_CTL_HTTP_H
#define SS_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_URL_MAX 1024
#define CTL_TOKEN_MAX 4096
/* Largest answer read: a page of 100 jobs with their YAML fits easily. */
#define CTL_BODY_MAX (64u * 1024u * 1024u)
#define CTL_CONNECT_TIMEOUT_S 10
#define CTL_TIMEOUT_S 60 /* validate may hold a request for 30 s */

struct ctl_client {
	bool https;
	char host[256];
	int port;
	char base[CTL_URL_MAX];    /* scheme://host:port[/prefix], without a final '/' */
	char token[CTL_TOKEN_MAX]; /* "" = no Authorization header */
	char cacert[CTL_URL_MAX];  /* "" = the system's CA bundle */
	char cert[CTL_URL_MAX];    /* client certificate (PEM), "" = none */
	char key[CTL_URL_MAX];     /* its key (PEM), "" = in the certificate file */
	int connect_timeout_s;
	int timeout_s; /* the whole request */
};

struct ctl_resp {
	int status;        /* HTTP status */
	char *body;        /* NUL-terminated; len bytes before the NUL */
	size_t len;
	char content_type[128];
};

/* Parses url (http[s]://host[:port][/prefix]) into c, with the default
 * timeouts. */
int ctl_client_init(struct ctl_client *c, const char *url, char *err, size_t errlen);

/* Sets the bearer token; trailing whitespace and newlines are stripped.
 * Refuses tokens with control characters (they would break the header). */
int ctl_client_set_token(struct ctl_client *c, const char *token, size_t len, char *err,
			 size_t errlen);

/* Reads the token from a file (at most CTL_TOKEN_MAX bytes). */
int ctl_client_token_file(struct ctl_client *c, const char *path, char *err, size_t errlen);

/* Sets one of the TLS files (--cacert, --cert, --key: `what` names it in the
 * message); NULL or "" leaves it unset. */
int ctl_client_set_file(char *dst, const char *path, const char *what, char *err,
			size_t errlen);

void ctl_client_clear(struct ctl_client *c);

/* Sends METHOD prefix+path with an optional JSON body (Content-Type:
 * application/json) and reads the whole answer.  Returns 0 when the server
 * answered (any status), -1 when it could not be reached, its certificate
 * was refused, or it did not answer in time (err says which; it never holds
 * the token). */
int ctl_http_request(const struct ctl_client *c, const char *method, const char *path,
		     const char *body, size_t len, struct ctl_resp *resp, char *err,
		     size_t errlen);

void ctl_resp_free(struct ctl_resp *resp);

#endif
