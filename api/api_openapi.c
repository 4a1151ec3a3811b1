#include "api_openapi.h"

#include <string.h>

#include "embed.h"

extern const struct embedded_file api_files[];

void api_openapi(struct api_req *req)
{
	const struct embedded_file *f = embedded_find(api_files, "openapi.yaml");

	if (strcmp(req->method, "GET") != 0) {
		api_reply_method(req, "GET");
		return;
	}
	api_reply_text(req, 200, f->content_type, (const char *)f->data, f->len);
}
