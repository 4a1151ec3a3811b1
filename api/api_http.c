#include "api_http.h"

#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The reason phrase of each status the API sends.  We write the status line
 * ourselves: civetweb 1.15 spells 422 "Unproccessable entity". */
static const char *api_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Entity";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
	}
}

/* The page and its assets may load only from this server and may not be
 * framed; the page has no inline script or style (web/web.c, web/ui/). */
#define API_CSP                                                                             \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "   \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "      \
	"frame-ancestors 'none'"

/* Writes the whole head and the body.  hname: one more header (Allow,
 * WWW-Authenticate), or NULL.  Every answer, errors included, says nosniff
 * and no-store. */
static void api_send(struct api_req *req, int status, const char *type, const char *body,
		     size_t len, const char *hname, const char *hvalue)
{
	const struct mg_request_info *ri = mg_get_request_info(req->conn);
	const char *version = ri != NULL && ri->http_version != NULL &&
					      strcmp(ri->http_version, "1.0") == 0
				      ? "1.0"
				      : "1.1";
	char head[2048], date[64], extra[512] = "";
	time_t now = time(NULL);
	struct tm tm;
	int n;

	req->status = status;
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
	if (hname != NULL)
		snprintf(extra, sizeof(extra), "%s: %s\r\n", hname, hvalue);
	n = snprintf(head, sizeof(head),
		     "HTTP/%s %d %s\r\n"
		     "Date: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "%s%s%s"
		     "Cache-Control: no-store\r\n"
		     "X-Content-Type-Options: nosniff\r\n"
		     "%s"
		     "%s%s%s"
		     "%s"
		     "Connection: close\r\n\r\n",
		     version, status, api_reason(status), date, len,
		     type != NULL ? "Content-Type: " : "", type != NULL ? type : "",
		     type != NULL ? "\r\n" : "",
		     req->page ? "Content-Security-Policy: " API_CSP "\r\n" : "",
		     req->cors_origin != NULL ? "Access-Control-Allow-Origin: " : "",
		     req->cors_origin != NULL ? req->cors_origin : "",
		     req->cors_origin != NULL ? "\r\nVary: Origin\r\n" : "", extra);
	if (n < 0 || (size_t)n >= sizeof(head))
		return; /* cannot happen: every part above is ours and short */
	mg_write(req->conn, head, (size_t)n);
	if (len > 0 && !req->head)
		mg_write(req->conn, body, len);
}

void api_reply_json(struct api_req *req, int status, cJSON *obj)
{
	char *text = obj != NULL ? cJSON_PrintUnformatted(obj) : NULL;

	cJSON_Delete(obj);
	if (text == NULL) {
		static const char oom[] =
			"{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"field\":null}}";
		api_send(req, 500, "application/json", oom, sizeof(oom) - 1, NULL, NULL);
		return;
	}
	api_send(req, status, "application/json", text, strlen(text), NULL, NULL);
	free(text);
}

void api_reply_no_content(struct api_req *req)
{
	api_send(req, 204, NULL, "", 0, NULL, NULL);
}

void api_reply_text(struct api_req *req, int status, const char *type, const char *text,
		    size_t len)
{
	api_send(req, status, type, text, len, NULL, NULL);
}

static const char *api_error_code(int status)
{
	switch (status) {
	case 400:
		return "malformed";
	case 401:
		return "unauthorized";
	case 403:
		return "forbidden";
	case 404:
		return "not_found";
	case 405:
		return "method_not_allowed";
	case 408:
		return "request_timeout";
	case 415:
		return "unsupported_media_type";
	case 421:
		return "misdirected";
	case 501:
		return "not_implemented";
	case 505:
		return "malformed";
	case 409:
		return "conflict";
	case 411: /* civetweb: a Content-Length that is not a number */
		return "malformed";
	case 413:
	case 431:
		return "too_large";
	case 422:
		return "invalid";
	case 502:
		return "unreachable";
	case 504:
		return "timeout";
	default:
		return "internal";
	}
}

static cJSON *api_error_body(int status, const char *field, const char *message, cJSON **error)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(root, "error");

	cJSON_AddStringToObject(e, "code", api_error_code(status));
	cJSON_AddStringToObject(e, "message", message);
	if (field != NULL)
		cJSON_AddStringToObject(e, "field", field);
	else
		cJSON_AddNullToObject(e, "field");
	if (error != NULL)
		*error = e;
	return root;
}

static void api_send_error_obj(struct api_req *req, int status, cJSON *root, const char *hname,
			       const char *hvalue)
{
	char *text = cJSON_PrintUnformatted(root);

	cJSON_Delete(root);
	if (text == NULL) {
		api_reply_json(req, 500, NULL);
		return;
	}
	api_send(req, status, "application/json", text, strlen(text), hname, hvalue);
	free(text);
}

void api_reply_error(struct api_req *req, int status, const char *field, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (status >= 500 && status != 501 && status != 505) /* the client's doing */
		log_error("%s %s: %s", req->method, req->path, msg);
	api_send_error_obj(req, status, api_error_body(status, field, msg, NULL), NULL, NULL);
}

void api_reply_unauthorized(struct api_req *req, const char *message)
{
	api_send_error_obj(req, 401, api_error_body(401, NULL, message, NULL), "WWW-Authenticate",
			   "Bearer realm=\"streamserver\"");
}

void api_reply_preflight(struct api_req *req)
{
	/* api_send takes one extra header; these three are ours and fixed. */
	api_send(req, 204, NULL, "", 0, "Access-Control-Allow-Methods",
		 "GET, HEAD, POST, PUT, PATCH, DELETE\r\n"
		 "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
		 "Access-Control-Max-Age: 600");
}

void api_reply_method(struct api_req *req, const char *allow)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s is not supported on %s; use %s", req->method, req->path,
		 allow);
	api_send_error_obj(req, 405, api_error_body(405, NULL, msg, NULL), "Allow", allow);
}

void api_reply_job_invalid(struct api_req *req, const struct js_errors *errs)
{
	const struct js_error *first = errs->count > 0 ? &errs->items[0] : NULL;
	cJSON *error, *details, *root;

	root = api_error_body(422, first ? first->path : NULL,
			      first ? first->message : "the job definition is invalid", &error);
	details = cJSON_AddArrayToObject(error, "details");
	for (size_t i = 0; i < errs->count; i++) {
		cJSON *d = cJSON_CreateObject();

		cJSON_AddStringToObject(d, "field", errs->items[i].path);
		if (errs->items[i].line > 0)
			cJSON_AddNumberToObject(d, "line", errs->items[i].line);
		else
			cJSON_AddNullToObject(d, "line");
		cJSON_AddStringToObject(d, "message", errs->items[i].message);
		cJSON_AddItemToArray(details, d);
	}
	if (errs->truncated)
		cJSON_AddTrueToObject(error, "details_truncated");
	api_send_error_obj(req, 422, root, NULL, NULL);
}

void api_reply_store(struct api_req *req, int rc, const char *field, const char *err)
{
	switch (rc) {
	case STORE_NOT_FOUND:
		api_reply_error(req, 404, NULL, "%s", err);
		break;
	case STORE_CONFLICT:
		api_reply_error(req, 409, NULL, "%s", err);
		break;
	case STORE_INVALID:
		api_reply_error(req, 422, field, "%s", err);
		break;
	default:
		api_reply_error(req, 500, NULL, "%s", err);
		break;
	}
}

void api_row_free(cJSON *row)
{
	static const char *const secrets[] = { "definition", "password", "database_sslkey" };

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(row, secrets[i]);

		if (cJSON_IsString(v) && v->valuestring != NULL)
			explicit_bzero(v->valuestring, strlen(v->valuestring));
	}
	cJSON_Delete(row);
}

void api_wake(struct api_req *req)
{
	if (req->ops != NULL && req->ops->wake != NULL)
		req->ops->wake(req->ops->ctx);
}


static void api_reply_too_large(struct api_req *req, size_t max)
{
	api_reply_error(req, 413, NULL,
			"the request body is over the limit of %zu bytes (the controller's --max-body)",
			max);
}

/* The body's deadline.  civetweb's mg_read waits for all the bytes it is
 * asked for and gives up only after request_timeout_ms without any: a
 * client sending one byte every 4 s holds the read, and its thread, for as
 * long as it likes.  A per-thread timer signals this thread at the deadline
 * and every 100 ms after; the signal's handler does nothing, but it makes
 * civetweb's poll() fail with EINTR, and mg_read return what it has. */
#ifndef sigev_notify_thread_id /* glibc before 2.37 names it only so */
#define sigev_notify_thread_id _sigev_un._tid
#endif

static void api_body_alarm(int sig)
{
	(void)sig;
}

int api_body_deadline_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = api_body_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: interrupting is the point */
	return sigaction(API_BODY_SIGNAL, &sa, NULL);
}

/* Arms the deadline for the calling thread; false if it could not be. */
static bool api_body_timer_start(timer_t *timer)
{
	struct sigevent sev;
	struct itimerspec its;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = API_BODY_SIGNAL;
	sev.sigev_notify_thread_id = gettid();
	if (timer_create(CLOCK_MONOTONIC, &sev, timer) != 0)
		return false;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = API_BODY_SECONDS;
	its.it_interval.tv_nsec = 100 * 1000 * 1000;
	if (timer_settime(*timer, 0, &its, NULL) != 0) {
		timer_delete(*timer);
		return false;
	}
	return true;
}

cJSON *api_req_body(struct api_req *req)
{
	const struct mg_request_info *ri = mg_get_request_info(req->conn);
	size_t max = req->body_max > 0 ? req->body_max : API_BODY_DEFAULT;
	char *buf = NULL, *grown;
	size_t len = 0, cap;
	cJSON *body = NULL;
	struct api_body_error bad;
	struct timespec start, now;
	timer_t timer;
	bool timed;
	int n = 0;

	if (ri->content_length >= 0 && (unsigned long long)ri->content_length > max) {
		api_reply_too_large(req, max);
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	timed = api_body_timer_start(&timer);
	/* Without a Content-Length (chunked), read up to the cap and one more. */
	cap = ri->content_length >= 0 ? (size_t)ri->content_length + 1
				      : (max < 64 * 1024 ? max + 1 : 64 * 1024);
	buf = malloc(cap);
	if (buf == NULL)
		goto oom;
	for (;;) {
		if (len == cap) {
			if (cap > max)
				break; /* too large: answered below */
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			grown = realloc(buf, cap);
			if (grown == NULL)
				goto oom;
			buf = grown;
		}
		n = mg_read(req->conn, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= API_BODY_SECONDS)
			break;
	}
	/* No reply while the timer may interrupt it. */
	if (timed) {
		timer_delete(timer);
		timed = false;
	}
	/* civetweb's read gave up (no data for its request timeout, or the
	 * deadline's signal), or the deadline passed */
	if ((ri->content_length >= 0 && len < (size_t)ri->content_length) ||
	    (ri->content_length < 0 && len <= max && n > 0)) {
		api_reply_error(req, 408, NULL,
				"the request body did not arrive within %d s (%zu bytes came)",
				API_BODY_SECONDS, len);
		goto out;
	}
	if (len > max) {
		api_reply_too_large(req, max);
		goto out;
	}
	body = api_body_parse(buf, len, &bad);
	if (body == NULL)
		api_reply_error(req, bad.status, bad.field[0] ? bad.field : NULL, "%s", bad.message);
	goto out;
oom:
	if (timed) {
		timer_delete(timer);
		timed = false;
	}
	api_reply_error(req, 500, NULL, "out of memory reading the request body");
out:
	if (timed)
		timer_delete(timer);
	if (buf != NULL)
		explicit_bzero(buf, len); /* it may hold a password */
	free(buf);
	return body;
}

static const char *api_json_type(const cJSON *v)
{
	static const struct {
		int type;
		const char *name;
	} names[] = {
		{ cJSON_String, "a string" }, { cJSON_Number, "a number" },
		{ cJSON_True, "a boolean" },  { cJSON_False, "a boolean" },
		{ cJSON_NULL, "null" },	      { cJSON_Array, "an array" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((v->type & 0xFF) == names[i].type)
			return names[i].name;
	return "an object";
}

static bool api_in_list(const char *const *list, const char *s)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

int api_check_keys(struct api_req *req, const cJSON *body, const char *const *writable,
		   const char *const *readonly, const char *what)
{
	const cJSON *item;
	char known[512];
	size_t used = 0;

	cJSON_ArrayForEach(item, body) {
		if (api_in_list(writable, item->string))
			continue;
		if (api_in_list(readonly, item->string)) {
			api_reply_error(req, 422, item->string, "%s is read-only; leave it out",
					item->string);
			return -1;
		}
		known[0] = '\0';
		for (const char *const *w = writable; *w != NULL && used < sizeof(known); w++)
			used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
						 w == writable ? "" : ", ", *w);
		api_reply_error(req, 422, item->string, "unknown field \"%s\"; %s has %s",
				item->string, what, known);
		return -1;
	}
	return 0;
}

bool api_is_integral(double d)
{
	return d >= -9e15 && d <= 9e15 && (double)(long long)d == d;
}

size_t api_utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* The field, or NULL when absent; -1 in *rc after replying 422 when it is
 * required and absent, or not of the type is() accepts (want names it). */
static const cJSON *api_get_field(struct api_req *req, const cJSON *body, const char *name,
				  bool required, cJSON_bool (*is)(const cJSON *), const char *want,
				  int *rc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);

	*rc = 0;
	if (v == NULL && required) {
		api_reply_error(req, 422, name, "%s is required", name);
		*rc = -1;
	} else if (v != NULL && !is(v)) {
		api_reply_error(req, 422, name, "%s must be %s, not %s", name, want,
				api_json_type(v));
		*rc = -1;
		v = NULL;
	}
	return v;
}

int api_get_string(struct api_req *req, const cJSON *body, const char *name, bool required,
		   size_t minchars, size_t maxchars, bool multiline, const char **out)
{
	int rc;
	const cJSON *v = api_get_field(req, body, name, required, cJSON_IsString, "a string", &rc);
	size_t chars;

	*out = NULL;
	if (v == NULL)
		return rc;
	chars = api_utf8_len(v->valuestring);
	if (chars < minchars || chars > maxchars) {
		if (minchars > 0 && chars == 0)
			api_reply_error(req, 422, name, "%s must not be empty", name);
		else
			api_reply_error(req, 422, name, "%s must be %zu to %zu characters long, not %zu",
					name, minchars, maxchars, chars);
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)v->valuestring; *p; p++) {
		if ((*p < 0x20 || *p == 0x7f) && !(multiline && (*p == '\n' || *p == '\t' || *p == '\r'))) {
			api_reply_error(req, 422, name, "%s must not contain control characters", name);
			return -1;
		}
	}
	*out = v->valuestring;
	return 0;
}

int api_get_int(struct api_req *req, const cJSON *body, const char *name, bool required,
		int64_t min, int64_t max, int64_t *out, bool *present)
{
	int rc;
	const cJSON *v = api_get_field(req, body, name, required, cJSON_IsNumber, "an integer", &rc);
	double d;

	*present = false;
	if (v == NULL)
		return rc;
	d = v->valuedouble;
	if (!api_is_integral(d) || d < (double)min || d > (double)max) {
		api_reply_error(req, 422, name, "%s must be an integer from %lld to %lld", name,
				(long long)min, (long long)max);
		return -1;
	}
	*out = (int64_t)d;
	*present = true;
	return 0;
}

int api_copy_fields(struct api_req *req, const cJSON *body, bool create,
		    const struct api_field *fields, size_t nfields, cJSON *in)
{
	for (size_t i = 0; i < nfields; i++) {
		const struct api_field *f = &fields[i];
		bool required = create && f->required, present;
		const char *text;
		int64_t num;
		int rc;

		/* A number with its own rule is answered with that rule, whatever
		 * its size (spec_cu: 1e999999 is not "2, 4, 8 or 16"). */
		if (f->is_int && f->check != NULL &&
		    cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(body, f->name)) &&
		    f->check(req, f->name, cJSON_GetObjectItemCaseSensitive(body, f->name)) < 0)
			return -1;
		if (f->is_int)
			rc = api_get_int(req, body, f->name, required, f->min, f->max, &num, &present);
		else
			rc = api_get_string(req, body, f->name, required, (size_t)f->min,
					    (size_t)f->max, f->multiline, &text);
		if (rc < 0)
			return -1;
		if (f->is_int ? !present : text == NULL)
			continue;
		if (f->check != NULL &&
		    f->check(req, f->name, cJSON_GetObjectItemCaseSensitive(body, f->name)) < 0)
			return -1;
		cJSON_AddItemToObject(in, f->name,
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(body, f->name),
						      false));
	}
	return 0;
}

int api_get_bool(struct api_req *req, const cJSON *body, const char *name, bool *out)
{
	int rc;
	const cJSON *v = api_get_field(req, body, name, false, cJSON_IsBool, "true or false", &rc);

	if (v != NULL)
		*out = cJSON_IsTrue(v);
	return rc;
}

int api_query_bool(struct api_req *req, const char *name, bool *out)
{
	char buf[8];
	int n;

	if (req->query == NULL)
		return 0;
	n = mg_get_var(req->query, strlen(req->query), name, buf, sizeof(buf));
	if (n == -1)
		return 0; /* absent */
	if (n >= 0 && (strcmp(buf, "true") == 0 || strcmp(buf, "false") == 0)) {
		*out = buf[0] == 't';
		return 0;
	}
	api_reply_error(req, 422, name, "%s must be true or false", name);
	return -1;
}

static int api_query_int(struct api_req *req, const char *name, int64_t dflt, int64_t min,
			 int64_t max, int64_t *out)
{
	char buf[32];
	int n;
	int64_t v = 0;

	*out = dflt;
	if (req->query == NULL)
		return 0;
	n = mg_get_var(req->query, strlen(req->query), name, buf, sizeof(buf));
	if (n == -1)
		return 0; /* absent */
	if (n < 1 || n > 18) {
		api_reply_error(req, 422, name, "%s must be an integer from %lld to %lld", name,
				(long long)min, (long long)max);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)buf[i])) {
			api_reply_error(req, 422, name, "%s must be an integer from %lld to %lld",
					name, (long long)min, (long long)max);
			return -1;
		}
		v = v * 10 + (buf[i] - '0');
	}
	if (v < min || v > max) {
		api_reply_error(req, 422, name, "%s must be an integer from %lld to %lld", name,
				(long long)min, (long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

int api_get_paging(struct api_req *req, int64_t *page, int64_t *page_size)
{
	if (api_query_int(req, "page", 1, 1, 1000000000, page) < 0 ||
	    api_query_int(req, "page_size", 30, 1, 100, page_size) < 0)
		return -1;
	return 0;
}

void api_reply_list(struct api_req *req, cJSON *items, int64_t total, int64_t page,
		    int64_t page_size)
{
	cJSON *root = cJSON_CreateObject();

	if (root == NULL || items == NULL) {
		cJSON_Delete(items);
		cJSON_Delete(root);
		api_reply_json(req, 500, NULL);
		return;
	}
	cJSON_AddItemToObject(root, "items", items);
	cJSON_AddNumberToObject(root, "total", (double)total);
	cJSON_AddNumberToObject(root, "page", (double)page);
	cJSON_AddNumberToObject(root, "page_size", (double)page_size);
	api_reply_json(req, 200, root);
}
