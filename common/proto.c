#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static int proto_write_json(int fd, cJSON *obj)
{
	char *text = cJSON_PrintUnformatted(obj);
	size_t len, off = 0;
	int rc = 0;

	cJSON_Delete(obj);
	if (text == NULL)
		return -1;
	len = strlen(text);
	if (len + 1 > PROTO_LINE_MAX)
		len = PROTO_LINE_MAX - 2; /* a truncated message line is still sent */
	text[len] = '\n';
	len++;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		off += (size_t)n;
	}
	cJSON_free(text);
	return rc;
}

int proto_send_ready(int fd)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "type", "ready");
	return proto_write_json(fd, obj);
}

int proto_send_batch(int fd, int64_t messages, int64_t rows, int64_t rejected)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "type", "batch");
	cJSON_AddNumberToObject(obj, "messages", (double)messages);
	cJSON_AddNumberToObject(obj, "rows", (double)rows);
	cJSON_AddNumberToObject(obj, "rejected", (double)rejected);
	return proto_write_json(fd, obj);
}

int proto_send_error(int fd, const char *err_class, const char *message)
{
	char msg[PROTO_LINE_MAX - 128];
	cJSON *obj = cJSON_CreateObject();

	/* Keep the line within PROTO_LINE_MAX even after JSON escaping grows it. */
	snprintf(msg, sizeof(msg) / 2, "%s", message);
	cJSON_AddStringToObject(obj, "type", "error");
	cJSON_AddStringToObject(obj, "class", err_class);
	cJSON_AddStringToObject(obj, "message", msg);
	return proto_write_json(fd, obj);
}

static int64_t proto_get_int(const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsNumber(item) ? (int64_t)item->valuedouble : 0;
}

int proto_parse_line(const char *line, size_t len, struct proto_msg *msg)
{
	cJSON *obj;
	const cJSON *type, *item;

	memset(msg, 0, sizeof(*msg));
	obj = cJSON_ParseWithLength(line, len);
	if (obj == NULL)
		return -1;
	type = cJSON_GetObjectItemCaseSensitive(obj, "type");
	if (!cJSON_IsString(type)) {
		cJSON_Delete(obj);
		return -1;
	}
	if (strcmp(type->valuestring, "ready") == 0) {
		msg->type = PROTO_READY;
	} else if (strcmp(type->valuestring, "batch") == 0) {
		msg->type = PROTO_BATCH;
		msg->messages = proto_get_int(obj, "messages");
		msg->rows = proto_get_int(obj, "rows");
		msg->rejected = proto_get_int(obj, "rejected");
	} else if (strcmp(type->valuestring, "error") == 0) {
		msg->type = PROTO_ERROR;
		item = cJSON_GetObjectItemCaseSensitive(obj, "class");
		snprintf(msg->err_class, sizeof(msg->err_class), "%s",
			 cJSON_IsString(item) ? item->valuestring : "fatal");
		item = cJSON_GetObjectItemCaseSensitive(obj, "message");
		snprintf(msg->message, sizeof(msg->message), "%s",
			 cJSON_IsString(item) ? item->valuestring : "");
	}
	cJSON_Delete(obj);
	return msg->type == PROTO_UNKNOWN ? -1 : 0;
}
