#include "api_metrics.h"

void api_metrics(struct api_req *req)
{
	api_reply_error(req, 501, NULL, "metrics are not implemented yet");
}
