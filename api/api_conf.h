/* What the controller gives the API: the supervisor's hooks (struct
 * api_ops) and who may call it and how (struct api_security).  Its own
 * header, with no .c, so that api.h (the server) and the request layers
 * below it (api_http.h, api_tls.h) share these without including each other.
 */
#ifndef SS_API_CONF_H
#define SS_API_CONF_H

#include <stddef.h>

struct api_ops {
	void (*wake)(void *ctx);
	void *ctx;
	/* streamworker, run as `streamworker --check` to check a job against its
	 * database (validate, dry run, UPDATE/MERGE keys at creation). */
	const char *worker_path;
};

/* Who may call the API and how it is reached (doc/operations.md "Security").  Strings
 * are copied by api_server_start.  With a token, /api/v1/... and /metrics
 * need "Authorization: Bearer <token>" (401 otherwise); /healthz, / (the
 * page shell, without data) and /ui/... stay open. */
struct api_security {
	const char *token;      /* bearer token for everything; NULL: no token */
	const char *read_token; /* bearer token for GET/HEAD only (403 otherwise); NULL: none */
	const char *tls_cert;   /* PEM certificate (chain) file; NULL: plain HTTP */
	const char *tls_key;    /* PEM private key file; NULL: in tls_cert.  civetweb wants
				 * key and certificate in one file: they are joined in a
				 * memfd, never written to disk. */
	const char *tls_client_ca; /* PEM CA file: clients need a certificate it signed
				    * (mutual TLS); NULL: none asked for */
	const char *tls_compat_dir; /* directory of the libssl.so and libcrypto.so that
				     * civetweb loads (api/tlscompat/); needed with TLS */
	size_t body_max;        /* request body limit in bytes; 0: API_BODY_DEFAULT */
	/* Web origins ("https://console.example:8443") whose pages may call the
	 * API besides its own, separated by commas or blanks; NULL: none.  A
	 * request with another Origin gets 403. */
	const char *allow_origin;
	/* Host names besides localhost, 127.0.0.1, [::1] and the --listen host
	 * that requests may name when no token is required (421 otherwise: DNS
	 * rebinding); commas or blanks between them; NULL: none. */
	const char *allow_host;
};

#define API_BODY_DEFAULT ((size_t)1024 * 1024)

#endif
