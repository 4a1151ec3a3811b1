#include "api_resource.h"

#include <string.h>

void api_resource_reply_row(struct api_req *req, const struct api_resource *res, int status,
			    int64_t id)
{
	char err[512];
	cJSON *row = NULL;
	int rc = store_row_get(req->st, res->kind, id, &row, err, sizeof(err));

	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	api_reply_json(req, status, res->repr != NULL ? res->repr(req, row) : row);
}

/* A create (row NULL, id 0) or change through res->fields. */
static void api_resource_write(struct api_req *req, const struct api_resource *res,
			       const cJSON *body, const cJSON *row, int64_t id)
{
	bool create = row == NULL;
	char err[512];
	cJSON *in = cJSON_CreateObject();
	int rc;

	if (in == NULL) {
		api_reply_json(req, 500, NULL);
		return;
	}
	if (res->fields(req, body, row, in) == 0) {
		rc = create ? store_row_create(req->st, res->kind, in, &id, err, sizeof(err))
			    : store_row_update(req->st, res->kind, id, in, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, res->parent_field, err);
		else
			api_resource_reply_row(req, res, create ? 201 : 200, id);
	}
	cJSON_Delete(in);
}

void api_resource_collection(struct api_req *req, const struct api_resource *res)
{
	char err[512];
	int64_t page, page_size, total = 0;
	cJSON *items = NULL, *out, *item, *body;
	int rc;

	if (strcmp(req->method, "GET") == 0) {
		if (api_get_paging(req, &page, &page_size) < 0)
			return;
		rc = store_row_list(req->st, res->kind, (page - 1) * page_size, page_size, &items,
				    &total, err, sizeof(err));
		if (rc < 0) {
			api_reply_store(req, rc, NULL, err);
			return;
		}
		out = cJSON_CreateArray();
		while (out != NULL && (item = cJSON_DetachItemFromArray(items, 0)) != NULL)
			cJSON_AddItemToArray(out, res->repr != NULL ? res->repr(req, item) : item);
		api_row_free(items);
		api_reply_list(req, out, total, page, page_size);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_reply_method(req, "GET, POST");
		return;
	}
	body = api_req_body(req);
	if (body == NULL)
		return;
	if (res->write != NULL)
		res->write(req, body, NULL, 0);
	else
		api_resource_write(req, res, body, NULL, 0);
	api_row_free(body);
}

void api_resource_item(struct api_req *req, const struct api_resource *res, int64_t id)
{
	char err[512];
	cJSON *row = NULL, *body = NULL;
	int rc;

	if (strcmp(req->method, "GET") == 0) {
		api_resource_reply_row(req, res, 200, id);
		return;
	}
	if (strcmp(req->method, "DELETE") == 0) {
		rc = store_row_delete(req->st, res->kind, id, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, NULL, err);
		else
			api_reply_no_content(req);
		return;
	}
	if (strcmp(req->method, "PATCH") != 0) {
		api_reply_method(req, "GET, PATCH, DELETE");
		return;
	}
	/* 404 before reading the body. */
	rc = store_row_get(req->st, res->kind, id, &row, err, sizeof(err));
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	if (res->may_change != NULL && res->may_change(req, row, id) < 0)
		goto out;
	body = api_req_body(req);
	if (body == NULL)
		goto out;
	if (res->write != NULL)
		res->write(req, body, row, id);
	else
		api_resource_write(req, res, body, row, id);
out:
	api_row_free(body);
	api_row_free(row);
}
