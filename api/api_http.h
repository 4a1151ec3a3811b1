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
#include <stdint.h>

#include <civetweb.h>
#include <cjson/cJSON.h>

#include "api.h"
#include "jobspec.h"
#include "store.h"

#define API_BODY_MAX (1024 * 1024)
#define API_JSON_DEPTH_MAX 16 /* our bodies need 3 */
#define API_NAME_MAX 64
#define API_TEXT_MAX 4096 /* descriptions, hosts and other free text */

struct api_req {
	struct mg_connection *conn;
	struct store *st;
	const struct api_ops *ops;
	const char *method;
	const char *path;  /* without the query string */
	const char *query; /* NULL if none */
	int status;        /* of the reply sent, 0 before */
};

/* The body as a JSON object (caller owns it), or NULL after replying 400 or
 * 413. */
cJSON *api_req_body(struct api_req *req);

/* Takes obj (may be NULL: 500).  status 200, 201, 202. */
void api_reply_json(struct api_req *req, int status, cJSON *obj);
void api_reply_no_content(struct api_req *req);
void api_reply_html(struct api_req *req, int status, const char *html, size_t len);

/* {"error":{"code","message","field"}}; field may be NULL. */
void api_reply_error(struct api_req *req, int status, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* 405 with an Allow header. */
void api_reply_method(struct api_req *req, const char *allow);

/* 422 with "details", for an invalid job definition. */
void api_reply_job_invalid(struct api_req *req, const struct js_errors *errs);

/* Maps a store result: STORE_NOT_FOUND 404, STORE_CONFLICT 409, STORE_INVALID
 * 422 (with field), else 500. */
void api_reply_store(struct api_req *req, int rc, const char *field, const char *err);

void api_wake(struct api_req *req);

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
