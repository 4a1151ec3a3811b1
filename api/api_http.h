/* One API request: reading its body, checking its fields, writing the reply.
 *
 * Internal to api/.  Every api_reply_* sends exactly one response and records
 * its status in req->status; the field checks reply 422 themselves and return
 * -1, so that a handler only has to return.
 */
#ifndef SS_API_HTTP_H
#define SS_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include <civetweb.h>
#include <cjson/cJSON.h>

#include "api_conf.h"
#include "api_body.h"
#include "jobspec.h"
#include "store.h"

/* The longest text field of a body (a job's YAML); the body itself is
 * limited by req->body_max. */
#define API_BODY_MAX (1024 * 1024)
#define API_NAME_MAX 64
#define API_TEXT_MAX 4096 /* descriptions, hosts and other free text */
#define API_ID_MAX ((int64_t)1 << 53) /* ids travel as JSON numbers */
/* The whole body must arrive within this (408 otherwise): a client that
 * trickles it holds one of civetweb's threads no longer. */
#define API_BODY_SECONDS 10
#define API_BODY_SIGNAL (SIGRTMIN + 1) /* see api_body_deadline_init */

/* Installs the (empty) handler of API_BODY_SIGNAL, which ends a body read at
 * its deadline; before civetweb starts.  0 or -1 (errno). */
int api_body_deadline_init(void);

struct api_req {
	struct mg_connection *conn;
	struct store *st;
	const struct api_ops *ops;
	const char *method;
	const char *path;  /* without the query string */
	const char *query; /* NULL if none */
	int status;        /* of the reply sent, 0 before */
	bool head;         /* a HEAD request, routed as GET: the reply has no body */
	size_t body_max;   /* request body limit in bytes (--max-body); 0: API_BODY_DEFAULT */
	bool page;         /* the status page or one of its assets: the reply has a CSP */
	const char *cors_origin; /* an --allow-origin the request came from, or NULL */
};

/* The body as a JSON object (caller owns it), or NULL after replying 400,
 * 408, 413, or 422 when a string (or member name) is not UTF-8 or holds a
 * NUL (\u0000), naming the field ("fields[2].name"). */
cJSON *api_req_body(struct api_req *req);

/* Takes obj (may be NULL: 500).  status 200, 201, 202. */
void api_reply_json(struct api_req *req, int status, cJSON *obj);
void api_reply_no_content(struct api_req *req);
/* A body of the given Content-Type ("text/html; charset=utf-8", ...). */
void api_reply_text(struct api_req *req, int status, const char *type, const char *text,
		    size_t len);

/* {"error":{"code","message","field"}}; field may be NULL. */
void api_reply_error(struct api_req *req, int status, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* 401 "unauthorized" with WWW-Authenticate: Bearer realm="streamserver". */
void api_reply_unauthorized(struct api_req *req, const char *message);

/* 204 to a CORS preflight from an allowed origin (req->cors_origin). */
void api_reply_preflight(struct api_req *req);

/* 405 with an Allow header. */
void api_reply_method(struct api_req *req, const char *allow);

/* 422 with "details", for an invalid job definition. */
void api_reply_job_invalid(struct api_req *req, const struct js_errors *errs);

/* Maps a store result: STORE_NOT_FOUND 404, STORE_CONFLICT 409, STORE_INVALID
 * 422 (with field), else 500. */
void api_reply_store(struct api_req *req, int rc, const char *field, const char *err);

void api_wake(struct api_req *req);

/* cJSON_Delete after wiping the secrets a row or body may hold (a job's
 * definition, a wizard password).  NULL is fine. */
void api_row_free(cJSON *row);

/* ---- body fields ---- */

/* Replies 422 for a key outside writable (NULL-terminated); read-only keys
 * get their own message. */
int api_check_keys(struct api_req *req, const cJSON *body, const char *const *writable,
		   const char *const *readonly, const char *what);

/* A string field: *out NULL when absent (422 when required).  Lengths count
 * characters (UTF-8 code points); control characters are refused unless
 * multiline. */
int api_get_string(struct api_req *req, const cJSON *body, const char *name, bool required,
		   size_t minchars, size_t maxchars, bool multiline, const char **out);

/* An integral number field in [min, max]; *present false when absent. */
int api_get_int(struct api_req *req, const cJSON *body, const char *name, bool required,
		int64_t min, int64_t max, int64_t *out, bool *present);

/* A body field that goes to the store as it is (api_copy_fields). */
struct api_field {
	const char *name;
	bool is_int;      /* an integer; else a string */
	bool required;    /* when creating */
	bool multiline;   /* a string that may hold line breaks and tabs */
	int64_t min, max; /* characters of a string, or the integer's range */
	/* Further checks of a value of the right type and size (of an integer
	 * field: of any number, before the range, so that its message is the
	 * field's own rule): replies 422 and returns -1.  NULL: none. */
	int (*check)(struct api_req *req, const char *name, const cJSON *value);
};

/* Checks the fields of body that fields[] names, in that order, and copies
 * those present into in.  Returns 0, or -1 after replying 422. */
int api_copy_fields(struct api_req *req, const cJSON *body, bool create,
		    const struct api_field *fields, size_t nfields, cJSON *in);

/* A boolean field; *out untouched when absent. */
int api_get_bool(struct api_req *req, const cJSON *body, const char *name, bool *out);

/* A boolean from the query string ("true" or "false"); *out untouched when
 * absent. */
int api_query_bool(struct api_req *req, const char *name, bool *out);

/* page and page_size from the query string (422 when bad). */
int api_get_paging(struct api_req *req, int64_t *page, int64_t *page_size);

/* {"items": items, "total", "page", "page_size"}; takes items. */
void api_reply_list(struct api_req *req, cJSON *items, int64_t total, int64_t page,
		    int64_t page_size);

/* d is a whole number that fits an int64_t exactly (|d| <= 9e15). */
bool api_is_integral(double d);

/* Number of UTF-8 code points in s. */
size_t api_utf8_len(const char *s);

#endif
