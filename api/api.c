#include "api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <civetweb.h>

#include "api_catalog.h"
#include "api_cluster.h"
#include "api_guard.h"
#include "api_http.h"
#include "api_jobs.h"
#include "api_metrics.h"
#include "api_openapi.h"
#include "api_tls.h"
#include "log.h"
#include "web.h"

/* Slow clients.  civetweb 1.15 gives each connection one thread from a pool
 * fixed at start, so a client that trickles its request holds a thread until
 * its request timeout; with 8 threads and 30 s, eight such clients stopped
 * the API.  Three limits together keep it answering:
 * - threads: 512, well above the 200 slow connections we must survive
 *   (civetweb starts them all; idle ones cost memory, not CPU).  Measured:
 *   the idle controller's RSS went from 4.5 MiB with 8 threads to 19-22 MiB
 *   with 512, about 30 KiB a thread (civetweb's 16 KiB request buffer and
 *   the stack pages touched; the 8 MiB stack is only reserved), and to
 *   29-32 MiB under 200 slow connections held for 60 s, whose probes were
 *   answered in 1 ms (p50; at most 5 ms), where 8 threads answered none
 *   (tests/bench/slow_clients.py prints these figures);
 * - the request header must arrive whole within 5 s: civetweb measures
 *   request_timeout_ms from the start of the request while reading its
 *   header (read_message, get_message in 1.15), so trickling header lines
 *   does not extend it; the body within API_BODY_SECONDS, which needs a
 *   timer of ours: civetweb's mg_read has no overall deadline (api_http.c);
 * - connections beyond the busy threads wait in civetweb's queue (64) and
 *   then in the kernel's listen backlog (256), not in unbounded memory.
 * A per-address cap was left out: civetweb 1.15 has no hook before a
 * connection takes its thread, and behind a proxy every client has one
 * address. */
#define API_THREADS "512"
#define API_REQUEST_TIMEOUT_MS "5000" /* API_HEADER_SECONDS; also each read's limit */
#define API_CONNECTION_QUEUE "64"
#define API_LISTEN_BACKLOG "256"
#define API_PATH_MAX 256
#define API_BODY_LIMIT_MAX ((size_t)64 * 1024 * 1024)

struct api_server {
	struct mg_context *ctx;
	struct store *st;
	struct api_ops ops;
	char *token;      /* owned, wiped at stop; NULL: the API is open */
	char *read_token; /* owned, wiped at stop; NULL: none */
	size_t body_max;
	struct api_tls_conf tls; /* what civetweb's ssl_* options point at */
	char host[64]; /* numeric address we listen on, to wake civetweb at stop */
	struct api_guard *guard; /* owned: Host, Origin and the like */
	volatile bool stopped;
};

/* Who sent the request. */
enum api_auth {
	API_AUTH_OPEN,    /* no token configured: everyone may do everything */
	API_AUTH_FULL,    /* the token */
	API_AUTH_READ,    /* the read token: GET and HEAD only */
	API_AUTH_MISSING, /* no bearer token */
	API_AUTH_WRONG,   /* a bearer token that is neither */
};

/* A resource id from the path: 1.. 2^53, digits only. */
static bool api_parse_id(const char *s, size_t len, int64_t *id)
{
	int64_t v = 0;

	if (len == 0 || len > 16 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*id = v;
	return v >= 1 && v <= ((int64_t)1 << 53);
}

static void api_not_found(struct api_req *req)
{
	api_reply_error(req, 404, NULL, "no route %s %s; the API lives under /api/v1 (see doc/API.md)",
			req->method, req->path);
}

/* with_data false: the shell without the store's contents (no token given
 * while one is required); the page's script asks for the token. */
static void api_route_root(struct api_req *req, bool with_data)
{
	char err[512];
	char *html;
	size_t len = 0;

	if (strcmp(req->method, "GET") != 0) {
		api_reply_method(req, "GET");
		return;
	}
	html = web_status_page(with_data ? req->st : NULL, &len, err, sizeof(err));
	if (html == NULL) {
		api_reply_error(req, 500, NULL, "%s", err);
		return;
	}
	api_reply_text(req, 200, "text/html; charset=utf-8", html, len);
	free(html);
}

/* /ui/NAME: the status page's scripts and styles (web/, embedded). */
static void api_route_asset(struct api_req *req, const char *name)
{
	const struct embedded_file *f;

	if (strcmp(req->method, "GET") != 0) {
		api_reply_method(req, "GET");
		return;
	}
	f = web_asset(name);
	if (f == NULL) {
		api_not_found(req);
		return;
	}
	api_reply_text(req, 200, f->content_type, (const char *)f->data, f->len);
}

static void api_route_health(struct api_req *req)
{
	cJSON *obj;

	if (strcmp(req->method, "GET") != 0) {
		api_reply_method(req, "GET");
		return;
	}
	obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "status", "ok");
	api_reply_json(req, 200, obj);
}

/* /api/v1/COLLECTION[/ID[/ACTION]] or /api/v1/COLLECTION/WORD */
static void api_route_v1(struct api_req *req, const char *rest)
{
	static const struct {
		const char *name;
		const char *what;
		const struct api_resource *res;
		bool (*word)(struct api_req *, const char *); /* NULL: none */
		void (*action)(struct api_req *, int64_t, const char *); /* NULL: none */
	} collections[] = {
		{ "services", "service", &api_services, NULL, NULL },
		{ "sources", "source", &api_sources, NULL, NULL },
		{ "jobs", "job", &api_jobs, api_jobs_word, api_job_action },
	};
	const char *slash = strchr(rest, '/');
	size_t namelen = slash ? (size_t)(slash - rest) : strlen(rest);
	const char *idstr, *action;
	int64_t id;

	if (strncmp(rest, "cluster", 7) == 0 && (rest[7] == '\0' || rest[7] == '/')) {
		api_route_cluster(req, rest + 7);
		return;
	}
	for (size_t i = 0; i < sizeof(collections) / sizeof(collections[0]); i++) {
		if (strlen(collections[i].name) != namelen ||
		    strncmp(collections[i].name, rest, namelen) != 0)
			continue;
		if (slash == NULL) {
			api_resource_collection(req, collections[i].res);
			return;
		}
		idstr = slash + 1;
		action = strchr(idstr, '/');
		if (action == NULL && collections[i].word != NULL && collections[i].word(req, idstr))
			return;
		if (!api_parse_id(idstr, action ? (size_t)(action - idstr) : strlen(idstr), &id)) {
			api_reply_error(req, 404, NULL, "no route %s %s: a %s id is a positive integer",
					req->method, req->path, collections[i].what);
			return;
		}
		if (action == NULL)
			api_resource_item(req, collections[i].res, id);
		else if (collections[i].action != NULL)
			collections[i].action(req, id, action + 1);
		else
			api_not_found(req);
		return;
	}
	api_not_found(req);
}

static bool api_is_mutating(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	       strcmp(method, "OPTIONS") != 0;
}

/* Compares in constant time: how long it takes depends on the length of the
 * expected token only, never on where a guess first differs. */
static bool api_token_equal(const char *expected, const char *given, size_t given_len)
{
	size_t n = strlen(expected);
	volatile unsigned char diff = (unsigned char)(given_len != n);

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)((unsigned char)expected[i] ^
					(unsigned char)(i < given_len ? given[i] : 0));
	return diff == 0;
}

static enum api_auth api_authenticate(const struct api_server *srv, struct mg_connection *conn)
{
	const char *h, *tok;
	size_t len;
	bool full, read;

	if (srv->token == NULL)
		return API_AUTH_OPEN;
	h = mg_get_header(conn, "Authorization");
	if (h == NULL)
		return API_AUTH_MISSING;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return API_AUTH_MISSING;
	tok = h + 7;
	while (*tok == ' ' || *tok == '\t')
		tok++;
	len = strlen(tok);
	while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
		len--;
	/* Both comparisons always run: which token matched takes no longer. */
	full = api_token_equal(srv->token, tok, len);
	read = srv->read_token != NULL && api_token_equal(srv->read_token, tok, len);
	if (full)
		return API_AUTH_FULL;
	return read ? API_AUTH_READ : API_AUTH_WRONG;
}

/* Open without a token: the health check, the page shell and its assets. */
static bool api_path_is_open(const char *path)
{
	return strcmp(path, "/") == 0 || strcmp(path, "/healthz") == 0 ||
	       strncmp(path, "/ui/", 4) == 0;
}

/* Replies 401 or 403 when the request may not go on; true if it may. */
static bool api_check_access(struct api_req *req, enum api_auth auth)
{
	switch (auth) {
	case API_AUTH_OPEN:
	case API_AUTH_FULL:
		return true;
	case API_AUTH_READ:
		if (strcmp(req->method, "GET") == 0)
			return true;
		api_reply_error(req, 403, NULL,
				"the read-only token allows GET and HEAD only; %s %s needs the "
				"controller's full token (--token-file)",
				req->method, req->path);
		return false;
	case API_AUTH_MISSING:
		api_reply_unauthorized(req, "this API needs a bearer token: send the header "
					    "\"Authorization: Bearer <token>\" with the token "
					    "the controller reads from --token-file");
		return false;
	case API_AUTH_WRONG:
	default:
		api_reply_unauthorized(req, "the bearer token is not valid for this controller");
		return false;
	}
}

/* The job a path is about (/api/v1/jobs/ID/...), for the log; 0 if none. */
static int64_t api_path_job(const char *path)
{
	const char *p = path + strlen("/api/v1/jobs/");
	int64_t id;

	if (strncmp(path, "/api/v1/jobs/", strlen("/api/v1/jobs/")) != 0)
		return 0;
	return api_parse_id(p, strcspn(p, "/"), &id) ? id : 0;
}

static int api_handle(struct mg_connection *conn, void *cbdata)
{
	struct api_server *srv = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct api_req req;
	char path[API_PATH_MAX];
	const char *uri = ri->local_uri != NULL ? ri->local_uri : "/";
	size_t len;
	bool path_ok, nul;
	enum api_auth auth = api_authenticate(srv, conn);
	enum log_level level;

	memset(&req, 0, sizeof(req));
	req.conn = conn;
	req.st = srv->st;
	req.ops = &srv->ops;
	req.method = ri->request_method;
	req.query = ri->query_string;
	req.path = path;
	req.body_max = srv->body_max;
	path_ok = api_path_decode(uri, path, sizeof(path), &nul);
	if (!path_ok)
		snprintf(path, sizeof(path), "%.*s", (int)sizeof(path) - 1, uri);
	len = strlen(path);
	/* The path goes into messages and the log: no control characters. */
	for (char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';

	/* HEAD is answered wherever GET is, with the same headers and no body
	 * (and the same access: reading). */
	if (strcmp(req.method, "HEAD") == 0) {
		req.head = true;
		req.method = "GET";
	}
	req.page = strcmp(path, "/") == 0 || strncmp(path, "/ui/", 4) == 0;

	/* Where the request comes from and its form, before who sent it. */
	if (!api_guard_before_auth(srv->guard, &req, path_ok, nul))
		goto done;
	if (!api_path_is_open(path)) {
		if (!api_check_access(&req, auth))
			goto done;
	}
	if (!api_guard_body_type(&req))
		goto done;
	if (strcmp(path, "/") == 0)
		api_route_root(&req, auth == API_AUTH_OPEN || auth == API_AUTH_FULL ||
					     auth == API_AUTH_READ);
	else if (strcmp(path, "/healthz") == 0)
		api_route_health(&req);
	else if (strcmp(path, "/metrics") == 0)
		api_metrics(&req);
	else if (strncmp(path, "/ui/", 4) == 0)
		api_route_asset(&req, path + 4);
	else if (strcmp(path, "/api/v1/openapi.yaml") == 0)
		api_openapi(&req);
	else if (strncmp(path, "/api/v1/", 8) == 0)
		api_route_v1(&req, path + 8);
	else
		api_not_found(&req);

done:
	if (req.status == 0)
		api_reply_error(&req, 500, NULL, "the request was not answered");
	level = api_is_mutating(req.method) || req.status == 401 || req.status == 403 ||
				req.status == 421
			? LOG_INFO
			: LOG_DEBUG;
	log_job(level, api_path_job(path), "%s %s %d", ri->request_method, path, req.status);
	return req.status;
}

/* While api_server_start runs, civetweb's messages (why a port cannot be
 * bound) go to the caller's err instead of the log; civetweb sets up its
 * ports in the thread that calls mg_start2. */
static _Thread_local bool api_starting;
static _Thread_local char api_start_msg[256];

static int api_log_message(const struct mg_connection *conn, const char *message)
{
	if (api_starting) {
		if (api_start_msg[0] == '\0')
			snprintf(api_start_msg, sizeof(api_start_msg), "%s", message);
		return 1;
	}
	log_warn("http: %s", message);
	return 1;
}

static bool api_ipv6_supported(void)
{
	return (mg_check_feature(MG_FEATURES_IPV6) & MG_FEATURES_IPV6) != 0;
}

/* A host name to the numeric address civetweb needs (it binds only to
 * numeric addresses). */
static int api_resolve_host(const char *host, char *out, size_t outlen, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = api_ipv6_supported() ? AF_UNSPEC : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	e = getaddrinfo(host, NULL, &hints, &res);
	if (e != 0) {
		snprintf(err, errlen, "cannot resolve listen host \"%s\": %s", host, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		char addr[INET6_ADDRSTRLEN];

		if (ai->ai_family == AF_INET &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, addr,
			      sizeof(addr)) != NULL) {
			snprintf(out, outlen, "%s", addr);
			break;
		}
		if (ai->ai_family == AF_INET6 &&
		    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, addr,
			      sizeof(addr)) != NULL) {
			snprintf(out, outlen, "[%s]", addr);
			break;
		}
	}
	freeaddrinfo(res);
	if (ai == NULL) {
		snprintf(err, errlen, "listen host \"%s\" has no usable address", host);
		return -1;
	}
	return 0;
}

/* "HOST:PORT" as civetweb's listening_ports wants it. */
static int api_listen_spec(const char *listen, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *colon = strrchr(listen, ':');
	const char *port = colon ? colon + 1 : listen;
	size_t hostlen = colon ? (size_t)(colon - listen) : 0;
	char host[256], numeric[INET6_ADDRSTRLEN + 2];
	struct in6_addr addr6;
	struct in_addr addr4;
	long num = 0;

	for (const char *p = listen; *p; p++) {
		if (isspace((unsigned char)*p) || *p == ',') {
			snprintf(err, errlen, "listen address \"%s\" must be one HOST:PORT", listen);
			return -1;
		}
	}
	if (*port == '\0' || strlen(port) > 5)
		goto bad;
	for (const char *p = port; *p; p++) {
		if (!isdigit((unsigned char)*p))
			goto bad;
		num = num * 10 + (*p - '0');
	}
	if (num < 1 || num > 65535)
		goto bad;
	if (hostlen == 0 || (hostlen == 1 && listen[0] == '*')) {
		snprintf(out, outlen, "%ld", num); /* every interface */
		return 0;
	}
	if (hostlen >= sizeof(host))
		goto bad;
	/* [v6] or a bare v6 address; civetweb wants the brackets */
	if (listen[0] == '[' && listen[hostlen - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)hostlen - 2, listen + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hostlen, listen);
	if (inet_pton(AF_INET6, host, &addr6) == 1) {
		if (!api_ipv6_supported()) {
			snprintf(err, errlen,
				 "listen address \"%s\": this build of civetweb has no IPv6; "
				 "listen on an IPv4 address",
				 listen);
			return -1;
		}
		snprintf(out, outlen, "[%s]:%ld", host, num);
		return 0;
	}
	if (inet_pton(AF_INET, host, &addr4) == 1) {
		snprintf(out, outlen, "%s:%ld", host, num);
		return 0;
	}
	if (api_resolve_host(host, numeric, sizeof(numeric), err, errlen) < 0)
		return -1;
	snprintf(out, outlen, "%s:%ld", numeric, num);
	return 0;
bad:
	snprintf(err, errlen, "listen address \"%s\" needs a port from 1 to 65535 (HOST:PORT)",
		 listen);
	return -1;
}

static void api_server_free(struct api_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->token != NULL) {
		explicit_bzero(srv->token, strlen(srv->token));
		free(srv->token);
	}
	if (srv->read_token != NULL) {
		explicit_bzero(srv->read_token, strlen(srv->read_token));
		free(srv->read_token);
	}
	api_tls_conf_clear(&srv->tls);
	api_guard_free(srv->guard);
	free(srv);
}

int api_server_start(struct store *st, const char *listen, const struct api_ops *ops,
		     const struct api_security *sec,
		     struct api_server **out, char *err, size_t errlen)
{
	struct api_server *srv;
	struct mg_callbacks callbacks;
	struct mg_init_data init;
	struct mg_error_data error;
	char ports[300], errtext[256] = "";
	unsigned code = 0;
	bool tls = sec != NULL && sec->tls_cert != NULL;
	const char *options[18 + API_TLS_OPTIONS_MAX + 1] = {
		"listening_ports",    ports,
		"num_threads",	      API_THREADS,
		"request_timeout_ms", API_REQUEST_TIMEOUT_MS,
		"connection_queue",   API_CONNECTION_QUEUE,
		"listen_backlog",     API_LISTEN_BACKLOG,
		"enable_keep_alive",  "no",
		"decode_url",	      "no", /* api_path_decode */
		/* civetweb 1.15 answers every CORS preflight itself, before any
		 * handler, with "Access-Control-Allow-Origin: *" (its default):
		 * any site could then send JSON.  Empty turns that off; we answer
		 * preflights (api_preflight), for --allow-origin only. */
		"access_control_allow_origin", "",
		"access_control_allow_methods", "",
		NULL,
	};
	size_t nopt = 18;

	*out = NULL;
	if (api_listen_spec(listen, ports, sizeof(ports) - 1, err, errlen) < 0)
		return -1;
	if (sec != NULL && sec->tls_key != NULL && sec->tls_cert == NULL) {
		snprintf(err, errlen, "a TLS key needs its certificate (--tls-cert)");
		return -1;
	}
	if (sec != NULL && sec->read_token != NULL && sec->token == NULL) {
		snprintf(err, errlen, "a read token needs the full token too (--token-file)");
		return -1;
	}
	if (sec != NULL && sec->body_max > API_BODY_LIMIT_MAX) {
		snprintf(err, errlen, "the body limit %zu is over %zu bytes", sec->body_max,
			 API_BODY_LIMIT_MAX);
		return -1;
	}
	if (tls && !(mg_check_feature(MG_FEATURES_TLS) & MG_FEATURES_TLS)) {
		snprintf(err, errlen, "this build of civetweb has no TLS; run without --tls-cert");
		return -1;
	}
	if (tls && sec->tls_compat_dir == NULL) {
		snprintf(err, errlen, "TLS needs the directory of libssl.so for civetweb (tls_compat_dir)");
		return -1;
	}
	if (sec != NULL && sec->tls_client_ca != NULL && !tls) {
		snprintf(err, errlen, "a client CA (--tls-client-ca) needs --tls-cert");
		return -1;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->tls.pem_fd = -1;
	srv->st = st;
	srv->body_max = sec != NULL && sec->body_max > 0 ? sec->body_max : API_BODY_DEFAULT;
	if (sec != NULL && sec->token != NULL && (srv->token = strdup(sec->token)) == NULL)
		goto oom;
	if (sec != NULL && sec->read_token != NULL &&
	    (srv->read_token = strdup(sec->read_token)) == NULL)
		goto oom;
	if (api_guard_new(listen, tls, srv->token != NULL, sec ? sec->allow_origin : NULL,
			  sec ? sec->allow_host : NULL, &srv->guard, err, errlen) < 0)
		goto fail;
	if (ports[0] != '[' && strrchr(ports, ':') != NULL)
		snprintf(srv->host, sizeof(srv->host), "%.*s", (int)(strrchr(ports, ':') - ports), ports);
	if (ops != NULL)
		srv->ops = *ops;
	if (tls) {
		strcat(ports, "s"); /* room was kept above */
		if (api_tls_options(sec, &srv->tls, options, &nopt, err, errlen) < 0)
			goto fail;
	}

	memset(&callbacks, 0, sizeof(callbacks));
	callbacks.log_message = api_log_message;
	callbacks.http_error = api_http_error;
	init.callbacks = &callbacks;
	init.user_data = srv;
	init.configuration_options = options;
	memset(&error, 0, sizeof(error));
	error.code = &code;
	error.text = errtext;
	error.text_buffer_size = sizeof(errtext);

	if (api_body_deadline_init() < 0) {
		snprintf(err, errlen, "cannot install the request body's deadline: %s",
			 strerror(errno));
		goto fail;
	}
	/* Before civetweb opens OpenSSL by its own names (api_tls.h). */
	if (tls && api_tls_compat_load(sec->tls_compat_dir, err, errlen) < 0)
		goto fail;
	mg_init_library(tls ? MG_FEATURES_TLS : 0);
	api_starting = true;
	api_start_msg[0] = '\0';
	srv->ctx = mg_start2(&init, &error);
	api_starting = false;
	if (srv->ctx == NULL) {
		const char *why = api_start_msg[0] ? api_start_msg
				  : errtext[0]	   ? errtext
						   : "civetweb failed to start";

		if (tls)
			snprintf(err, errlen,
				 "cannot listen with TLS on %s (certificate %s, key %s%s%s): %s%s",
				 listen, sec->tls_cert,
				 sec->tls_key ? sec->tls_key : "in the certificate file",
				 sec->tls_client_ca ? ", client CA " : "",
				 sec->tls_client_ca ? sec->tls_client_ca : "", why,
				 strstr(why, "SSL") || strstr(why, "ssl")
					 ? " (check that the files are PEM)"
					 : "");
		else if (api_start_msg[0] != '\0')
			snprintf(err, errlen, "%s", api_start_msg);
		else
			snprintf(err, errlen, "cannot listen on %s: %s", listen, why);
		mg_exit_library();
		goto fail;
	}
	{
		struct mg_server_port sp[4];

		if (mg_get_server_ports(srv->ctx, 4, sp) > 0)
			api_guard_set_port(srv->guard, sp[0].port);
	}
	mg_set_request_handler(srv->ctx, "**", api_handle, srv);
	*out = srv;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	api_server_free(srv);
	return -1;
}

bool api_listen_is_loopback(const char *listen)
{
	const char *colon = strrchr(listen, ':');
	size_t hostlen = colon ? (size_t)(colon - listen) : 0;
	struct addrinfo hints, *res = NULL, *ai;
	char host[256];
	bool loopback = true;

	if (hostlen == 0 || hostlen >= sizeof(host) || (hostlen == 1 && listen[0] == '*'))
		return false;
	if (listen[0] == '[' && hostlen >= 2 && listen[hostlen - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)hostlen - 2, listen + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hostlen, listen);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
		return false;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			uint32_t a = ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr);

			if ((a >> 24) != 127)
				loopback = false;
		} else if (ai->ai_family == AF_INET6) {
			const struct in6_addr *a = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

			if (!IN6_IS_ADDR_LOOPBACK(a))
				loopback = false;
		} else {
			loopback = false;
		}
	}
	freeaddrinfo(res);
	return loopback;
}

static void *api_stop_thread(void *arg)
{
	struct api_server *srv = arg;

	mg_stop(srv->ctx);
	srv->stopped = true;
	return NULL;
}

/* Connects to our own listening socket: civetweb's accept loop checks its stop
 * flag only between polls of 2 s, or when a connection arrives. */
static void api_poke(const struct api_server *srv, int port)
{
	struct sockaddr_in sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, srv->host, &sa.sin_addr) != 1 || sa.sin_addr.s_addr == htonl(INADDR_ANY))
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* Already closed: the stop is under way. */
	}
	close(fd);
}

void api_server_stop(struct api_server *srv)
{
	struct mg_server_port ports[4];
	pthread_t t;
	int nports;

	if (srv == NULL)
		return;
	nports = mg_get_server_ports(srv->ctx, 4, ports);
	if (nports > 0 && ports[0].protocol == 1 &&
	    pthread_create(&t, NULL, api_stop_thread, srv) == 0) {
		for (int i = 0; i < 200 && !srv->stopped; i++) {
			api_poke(srv, ports[0].port);
			usleep(10 * 1000);
		}
		pthread_join(t, NULL);
	} else {
		mg_stop(srv->ctx);
	}
	mg_exit_library();
	api_server_free(srv);
}
