/* The verbs every collection under /api/v1 shares, driven by a table: list
 * and create on /api/v1/NAME, get, change and delete on /api/v1/NAME/ID.
 * Internal to api/.
 */
#ifndef SS_API_RESOURCE_H
#define SS_API_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "api_http.h"
#include "store.h"

struct api_resource {
	enum store_kind kind;
	/* A row as the API shows it.  Takes row; NULL on out of memory.  NULL:
	 * the row as stored. */
	cJSON *(*repr)(struct api_req *req, cJSON *row);
	/* Checks a POST (row NULL) or PATCH (row: the stored one, to keep a
	 * secret sent back as SECRET_MASK) body and copies what it sets into in
	 * (the store's columns); replies and returns -1 when it is wrong. */
	int (*fields)(struct api_req *req, const cJSON *body, const cJSON *row, cJSON *in);
	/* The field a STORE_INVALID from the store is about (the parent's id). */
	const char *parent_field;
	/* Instead of fields: the whole POST (row NULL) or PATCH (row: the stored
	 * one), which replies itself. */
	void (*write)(struct api_req *req, const cJSON *body, const cJSON *row, int64_t id);
	/* Before a PATCH reads its body: replies and returns -1 when the row may
	 * not change now.  NULL: it always may. */
	int (*may_change)(struct api_req *req, const cJSON *row, int64_t id);
};

/* GET (list) and POST (create). */
void api_resource_collection(struct api_req *req, const struct api_resource *res);
/* GET, PATCH, DELETE. */
void api_resource_item(struct api_req *req, const struct api_resource *res, int64_t id);

/* Replies status with row id as the API shows it. */
void api_resource_reply_row(struct api_req *req, const struct api_resource *res, int status,
			    int64_t id);

#endif
