#include "api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <civetweb.h>

#include "api_catalog.h"
#include "api_http.h"
#include "api_jobs.h"
#include "api_metrics.h"
#include "api_openapi.h"
#include "log.h"
#include "web.h"

#define API_THREADS "8"
#define API_REQUEST_TIMEOUT_MS "30000"
#define API_PATH_MAX 256

struct api_server {
	struct mg_context *ctx;
	struct store *st;
	struct api_ops ops;
	char host[64]; /* numeric address we listen on, to wake civetweb at stop */
	volatile bool stopped;
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

static void api_route_root(struct api_req *req)
{
	char err[512];
	char *html;
	size_t len = 0;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		api_reply_method(req, "GET");
		return;
	}
	html = web_status_page(req->st, &len, err, sizeof(err));
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

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
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

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
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

static int api_handle(struct mg_connection *conn, void *cbdata)
{
	struct api_server *srv = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct api_req req;
	char path[API_PATH_MAX];
	const char *uri = ri->local_uri != NULL ? ri->local_uri : "/";
	size_t len = strlen(uri);

	memset(&req, 0, sizeof(req));
	req.conn = conn;
	req.st = srv->st;
	req.ops = &srv->ops;
	req.method = ri->request_method;
	req.query = ri->query_string;
	req.path = path;
	if (len >= sizeof(path))
		len = sizeof(path) - 1;
	memcpy(path, uri, len);
	path[len] = '\0';
	/* The path goes into messages and the log: no control characters. */
	for (char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';

	if (strlen(uri) >= sizeof(path))
		api_not_found(&req);
	else if (strcmp(path, "/") == 0)
		api_route_root(&req);
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

	if (req.status == 0)
		api_reply_error(&req, 500, NULL, "the request was not answered");
	if (api_is_mutating(req.method))
		log_info("%s %s %d", req.method, path, req.status);
	else
		log_debug("%s %s %d", req.method, path, req.status);
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
	const char *options[] = {
		"listening_ports",    ports,
		"num_threads",	      API_THREADS,
		"request_timeout_ms", API_REQUEST_TIMEOUT_MS,
		"enable_keep_alive",  "no",
		NULL,
	};

	*out = NULL;
	if (api_listen_spec(listen, ports, sizeof(ports), err, errlen) < 0)
		return -1;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->st = st;
	if (ports[0] != '[' && strrchr(ports, ':') != NULL)
		snprintf(srv->host, sizeof(srv->host), "%.*s", (int)(strrchr(ports, ':') - ports), ports);
	if (ops != NULL)
		srv->ops = *ops;

	memset(&callbacks, 0, sizeof(callbacks));
	callbacks.log_message = api_log_message;
	init.callbacks = &callbacks;
	init.user_data = srv;
	init.configuration_options = options;
	memset(&error, 0, sizeof(error));
	error.code = &code;
	error.text = errtext;
	error.text_buffer_size = sizeof(errtext);

	mg_init_library(0);
	api_starting = true;
	api_start_msg[0] = '\0';
	srv->ctx = mg_start2(&init, &error);
	api_starting = false;
	if (srv->ctx == NULL) {
		if (api_start_msg[0] != '\0')
			snprintf(err, errlen, "%s", api_start_msg);
		else
			snprintf(err, errlen, "cannot listen on %s: %s", listen,
				 errtext[0] ? errtext : "civetweb failed to start");
		mg_exit_library();
		free(srv);
		return -1;
	}
	mg_set_request_handler(srv->ctx, "**", api_handle, srv);
	*out = srv;
	return 0;
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
	free(srv);
}
