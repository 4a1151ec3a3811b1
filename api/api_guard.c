#include "api_guard.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define API_ALLOW_MAX 16 /* --allow-origin and --allow-host entries, each */

struct api_guard {
	char listen_host[256]; /* the host part of --listen, as given; "" for all */
	int port;              /* the port we listen on */
	bool tls;
	bool token;            /* a token is required: the Host is not checked */
	char *allow_origin[API_ALLOW_MAX]; /* owned: origins besides our own */
	size_t n_allow_origin;
	char *allow_host[API_ALLOW_MAX]; /* owned: Host names besides ours */
	size_t n_allow_host;
};

/* Splits a list of names at commas and blanks into list (copies, at most
 * API_ALLOW_MAX).  what names the option for the message. */
static int api_allow_parse(const char *text, char **list, size_t *n, const char *what, char *err,
			   size_t errlen)
{
	const char *p = text;

	while (p != NULL && *p != '\0') {
		size_t len;

		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		if (*n == API_ALLOW_MAX) {
			snprintf(err, errlen, "%s: at most %d entries", what, API_ALLOW_MAX);
			return -1;
		}
		if (len > 200) {
			snprintf(err, errlen, "%s: \"%.40s...\" is too long", what, p);
			return -1;
		}
		list[*n] = strndup(p, len);
		if (list[*n] == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		(*n)++;
		p += len;
	}
	return 0;
}

/* The methods the API implements; civetweb knows more (PROPFIND, LOCK...). */
bool api_method_known(const char *method)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
					       "OPTIONS" };

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(method, methods[i]) == 0)
			return true;
	return false;
}

/* s[0..len) equals the NUL-terminated t, ignoring ASCII case. */
static bool api_span_equal(const char *s, size_t len, const char *t)
{
	return strlen(t) == len && strncasecmp(s, t, len) == 0;
}

/* The Host header names this server: the names of a loopback listener
 * (localhost, 127.0.0.1, [::1]) or the listen host as given, with our port,
 * or an --allow-host name (any port).  Asked only when no token is required:
 * then a page on another site that has its name resolve to 127.0.0.1 (DNS
 * rebinding) reaches us under its own name and is refused. */
static bool api_host_allowed(const struct api_guard *g, const char *h)
{
	static const char *const loopback[] = { "localhost", "127.0.0.1", "[::1]" };
	const char *colon, *port;
	size_t namelen;
	long num = 0;

	while (*h == ' ' || *h == '\t')
		h++;
	if (h[0] == '[') {
		const char *close = strchr(h, ']');

		if (close == NULL)
			return false;
		namelen = (size_t)(close - h) + 1;
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] != '\0' && close[1] != ':')
			return false;
	} else {
		colon = strchr(h, ':');
		namelen = colon ? (size_t)(colon - h) : strlen(h);
	}
	if (namelen > 0 && h[namelen - 1] == '.')
		namelen--; /* "localhost." is localhost */
	for (size_t i = 0; i < g->n_allow_host; i++)
		if (api_span_equal(h, namelen, g->allow_host[i]))
			return true;
	if (colon == NULL) {
		num = g->tls ? 443 : 80;
	} else {
		port = colon + 1;
		if (*port == '\0' || strlen(port) > 5)
			return false;
		for (const char *p = port; *p; p++) {
			if (!isdigit((unsigned char)*p))
				return false;
			num = num * 10 + (*p - '0');
		}
	}
	if (num != g->port)
		return false;
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		if (api_span_equal(h, namelen, loopback[i]))
			return true;
	return g->listen_host[0] != '\0' && api_span_equal(h, namelen, g->listen_host);
}

/* NULL when the request may come from where its Origin says (no Origin, our
 * own origin, or an --allow-origin); else the Origin, for the message.
 * *cors: the allowed foreign origin to name in Access-Control-Allow-Origin. */
static const char *api_origin_refused(const struct api_guard *g, struct mg_connection *conn,
				      const char **cors)
{
	const char *origin = mg_get_header(conn, "Origin");
	const char *host = mg_get_header(conn, "Host");
	const char *scheme = g->tls ? "https://" : "http://";
	size_t slen = strlen(scheme);

	*cors = NULL;
	if (origin == NULL)
		return NULL;
	for (size_t i = 0; i < g->n_allow_origin; i++) {
		if (strcasecmp(origin, g->allow_origin[i]) == 0) {
			*cors = g->allow_origin[i];
			return NULL;
		}
	}
	/* Our own origin: the scheme we serve and the Host the browser used. */
	if (host != NULL && strncasecmp(origin, scheme, slen) == 0 &&
	    strcasecmp(origin + slen, host) == 0)
		return NULL;
	return origin;
}

/* A request with a body, or a write that says its type, must say JSON
 * (charset, if given, UTF-8): an HTML form or a "simple" cross-site fetch
 * cannot send that type without the browser asking us first. */
static bool api_content_type_ok(struct mg_connection *conn, const char *method)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *type = mg_get_header(conn, "Content-Type");
	const char *te = mg_get_header(conn, "Transfer-Encoding");
	bool body = ri->content_length > 0 || (te != NULL && strcasecmp(te, "identity") != 0);
	const char *p, *cs;

	if (type == NULL)
		return !body;
	if (!body && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
		return true;
	while (*type == ' ' || *type == '\t')
		type++;
	if (strncasecmp(type, "application/json", 16) != 0)
		return false;
	p = type + 16;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return true;
	if (*p != ';')
		return false;
	cs = strcasestr(p, "charset=");
	if (cs == NULL)
		return true;
	cs += 8;
	if (*cs == '"')
		cs++;
	return strncasecmp(cs, "utf-8", 5) == 0 && (cs[5] == '\0' || cs[5] == '"' ||
						    cs[5] == ';' || cs[5] == ' ');
}

/* One Host; one Content-Length, digits only, and not with Transfer-Encoding
 * (two framings of one body are how requests get smuggled past proxies).
 * civetweb reads the first of each and ignores the rest. */
static const char *api_framing_problem(struct mg_connection *conn)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *first = NULL;
	int hosts = 0;

	for (int i = 0; i < ri->num_headers; i++) {
		const char *v = ri->http_headers[i].value;

		/* the Host we check must be the one the request is for */
		if (strcasecmp(ri->http_headers[i].name, "Host") == 0 && ++hosts > 1)
			return "the request has two Host headers";
		if (strcasecmp(ri->http_headers[i].name, "Content-Length") != 0)
			continue;
		if (v[0] == '\0' || strspn(v, "0123456789") != strlen(v))
			return "Content-Length must be a number of bytes";
		if (first != NULL && strcmp(first, v) != 0)
			return "the request has two different Content-Length headers";
		first = v;
	}
	if (first != NULL && mg_get_header(conn, "Transfer-Encoding") != NULL)
		return "the request has both Content-Length and Transfer-Encoding";
	return NULL;
}

/* The path from civetweb's undecoded URI (decode_url is off): %00 would end
 * a decoded C string early and route /api/v1/jobs/%00 as /api/v1/jobs.
 * Returns false for a NUL or a path too long for out. */
bool api_path_decode(const char *uri, char *out, size_t outlen, bool *nul)
{
	int n;

	*nul = false;
	n = mg_url_decode(uri, (int)strlen(uri), out, (int)outlen, 0);
	if (n < 0 || (size_t)n >= outlen)
		return false;
	if (strlen(out) != (size_t)n) {
		*nul = true;
		return false;
	}
	return true;
}

/* A CORS preflight from an --allow-origin: says what may follow. */
static bool api_preflight(struct api_req *req, struct mg_connection *conn)
{
	if (req->cors_origin == NULL || strcmp(req->method, "OPTIONS") != 0 ||
	    mg_get_header(conn, "Access-Control-Request-Method") == NULL)
		return false;
	api_reply_preflight(req);
	return true;
}

int api_guard_new(const char *listen, bool tls, bool token, const char *allow_origin,
		  const char *allow_host, struct api_guard **out, char *err, size_t errlen)
{
	struct api_guard *g = calloc(1, sizeof(*g));
	const char *colon = strrchr(listen, ':');

	*out = NULL;
	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	g->tls = tls;
	g->token = token;
	if (api_allow_parse(allow_origin, g->allow_origin, &g->n_allow_origin, "--allow-origin",
			    err, errlen) < 0 ||
	    api_allow_parse(allow_host, g->allow_host, &g->n_allow_host, "--allow-host", err,
			    errlen) < 0)
		goto fail;
	for (size_t i = 0; i < g->n_allow_origin; i++) {
		if (strncmp(g->allow_origin[i], "http://", 7) != 0 &&
		    strncmp(g->allow_origin[i], "https://", 8) != 0) {
			snprintf(err, errlen,
				 "--allow-origin \"%s\" is not an origin (scheme://host[:port], "
				 "as a browser sends it in Origin)",
				 g->allow_origin[i]);
			goto fail;
		}
	}
	if (colon != NULL && (size_t)(colon - listen) < sizeof(g->listen_host) &&
	    !(listen[0] == '*' && listen + 1 == colon))
		snprintf(g->listen_host, sizeof(g->listen_host), "%.*s", (int)(colon - listen),
			 listen);
	*out = g;
	return 0;
fail:
	api_guard_free(g);
	return -1;
}

void api_guard_set_port(struct api_guard *g, int port)
{
	g->port = port;
}

void api_guard_free(struct api_guard *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->n_allow_origin; i++)
		free(g->allow_origin[i]);
	for (size_t i = 0; i < g->n_allow_host; i++)
		free(g->allow_host[i]);
	free(g);
}

bool api_guard_before_auth(const struct api_guard *g, struct api_req *req, bool path_ok, bool nul)
{
	struct mg_connection *conn = req->conn;
	const char *host = mg_get_header(conn, "Host"), *origin, *problem;
	const char *method = mg_get_request_info(conn)->request_method;

	if (!g->token && host != NULL && !api_host_allowed(g, host)) {
		api_reply_error(req, 421, NULL,
				"Host \"%.100s\" is not this server: with no API token the "
				"controller answers to localhost, 127.0.0.1, [::1] and the "
				"--listen host on port %d, and to --allow-host names",
				host, g->port);
		return false;
	}
	origin = api_origin_refused(g, conn, &req->cors_origin);
	if (origin != NULL) {
		api_reply_error(req, 403, NULL,
				"requests from the web origin \"%.100s\" are refused; start the "
				"controller with --allow-origin %.100s to let its pages call the API",
				origin, origin);
		return false;
	}
	if (!api_method_known(method)) {
		api_reply_error(req, 501, NULL,
				"method %.20s is not implemented; the API uses GET, HEAD, POST, PUT, "
				"PATCH, DELETE and OPTIONS",
				method);
		return false;
	}
	if (!path_ok) {
		if (nul)
			api_reply_error(req, 400, NULL, "the path holds a NUL character (%%00)");
		else
			api_reply_error(req, 404, NULL, "no route %s %s; the API lives under /api/v1 "
					"(see doc/API.md)", req->method, req->path);
		return false;
	}
	problem = api_framing_problem(conn);
	if (problem != NULL) {
		api_reply_error(req, 400, NULL, "%s", problem);
		return false;
	}
	if (api_preflight(req, conn))
		return false;
	return true;
}

bool api_guard_body_type(struct api_req *req)
{
	const char *type = mg_get_header(req->conn, "Content-Type");

	if (api_content_type_ok(req->conn, req->head ? "HEAD" : req->method))
		return true;
	api_reply_error(req, 415, NULL,
			"the request body must be JSON: send \"Content-Type: application/json\" "
			"(not \"%.100s\")",
			type != NULL ? type : "none");
	return false;
}

/* civetweb's own error answers (a request it cannot parse, an unknown or
 * lowercase method, a header not complete in time) as the API's JSON error,
 * with the same headers as every other answer. */
int api_http_error(struct mg_connection *conn, int status, const char *msg)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *method = ri != NULL ? ri->request_method : NULL;
	struct api_req req;
	char m[24];
	size_t i;

	memset(&req, 0, sizeof(req));
	req.conn = conn;
	req.method = "-";
	req.path = "-";
	if (status == 400 && method != NULL && ri->http_version != NULL &&
	    !api_method_known(method)) {
		for (i = 0; i + 1 < sizeof(m) && method[i] != '\0'; i++)
			m[i] = method[i] > 0x20 && method[i] < 0x7f ? method[i] : '?';
		m[i] = '\0';
		api_reply_error(&req, 501, NULL,
				"method %s is not implemented (methods are case-sensitive); the "
				"API uses GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS",
				m);
	} else if (status == 400 && msg != NULL && strcmp(msg, "Malformed message") == 0) {
		api_reply_error(&req, 400, NULL,
				"the request header is malformed, over 16 KiB, or was not complete "
				"within %d s",
				API_HEADER_SECONDS);
	} else if (status == 413) {
		api_reply_error(&req, 413, NULL,
				"the request header is over civetweb's 16 KiB (max_request_size)");
	} else {
		api_reply_error(&req, status >= 400 && status <= 599 ? status : 400, NULL,
				"the request is not valid HTTP/1.1: %.80s", msg != NULL ? msg : "");
	}
	log_debug("http: %d %s", status, msg != NULL ? msg : "");
	return 0; /* answered */
}

