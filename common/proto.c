#include "proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "secret.h"

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

int proto_send_batch(int fd, const struct proto_batch *b)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "type", "batch");
	cJSON_AddNumberToObject(obj, "messages", (double)b->messages);
	cJSON_AddNumberToObject(obj, "rows", (double)b->rows);
	cJSON_AddNumberToObject(obj, "updated", (double)b->updated);
	cJSON_AddNumberToObject(obj, "rejected", (double)b->rejected);
	cJSON_AddNumberToObject(obj, "duration_ms", (double)b->duration_ms);
	if (b->deleted != 0)
		cJSON_AddNumberToObject(obj, "deleted", (double)b->deleted);
	if (b->tombstones_skipped != 0)
		cJSON_AddNumberToObject(obj, "tombstones_skipped", (double)b->tombstones_skipped);
	return proto_write_json(fd, obj);
}

int proto_send_lag(int fd, const struct proto_lag *parts, size_t n)
{
	cJSON *obj = cJSON_CreateObject(), *list, *pair;
	int64_t total = 0;

	cJSON_AddStringToObject(obj, "type", "lag");
	for (size_t i = 0; i < n; i++)
		if (parts[i].lag > 0)
			total += parts[i].lag;
	cJSON_AddNumberToObject(obj, "total", (double)total);
	list = cJSON_AddArrayToObject(obj, "partitions");
	for (size_t i = 0; i < n && i < PROTO_LAG_MAX; i++) {
		pair = cJSON_CreateArray();
		cJSON_AddItemToArray(pair, cJSON_CreateNumber(parts[i].partition));
		cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)parts[i].lag));
		cJSON_AddItemToArray(list, pair);
	}
	return proto_write_json(fd, obj);
}

int proto_send_assign(int fd, const int32_t *parts, size_t n)
{
	cJSON *obj = cJSON_CreateObject(), *list;

	cJSON_AddStringToObject(obj, "type", "assign");
	list = cJSON_AddArrayToObject(obj, "partitions");
	for (size_t i = 0; i < n && i < PROTO_LAG_MAX; i++)
		cJSON_AddItemToArray(list, cJSON_CreateNumber(parts[i]));
	return proto_write_json(fd, obj);
}

int proto_send_error(int fd, const char *err_class, const char *message)
{
	char msg[PROTO_LINE_MAX - 128];
	cJSON *obj = cJSON_CreateObject();

	/* Keep the line within PROTO_LINE_MAX even after JSON escaping grows it;
	 * the controller shows the message, which may quote the configuration. */
	secret_scrub_registered(message, msg, sizeof(msg) / 2);
	cJSON_AddStringToObject(obj, "type", "error");
	cJSON_AddStringToObject(obj, "class", err_class);
	cJSON_AddStringToObject(obj, "message", msg);
	return proto_write_json(fd, obj);
}

/* A JSON number as an integer in [lo, hi].  cJSON keeps numbers as doubles;
 * converting one outside the target type's range (1e300, NaN) is undefined
 * behaviour in C, so it is checked first: 2^63 itself is out of int64 range. */
static bool proto_num(const cJSON *item, double lo, double hi, int64_t *out)
{
	double v;

	if (!cJSON_IsNumber(item))
		return false;
	v = item->valuedouble;
	if (!(v >= lo && v < hi)) /* false for NaN too */
		return false;
	*out = (int64_t)v;
	return true;
}

#define PROTO_I64_LO (-9223372036854775808.0)
#define PROTO_I64_HI 9223372036854775808.0

/* An absent counter is 0; one that is no number in int64's range makes the
 * line no status message (*bad). */
static int64_t proto_get_int(const cJSON *obj, const char *key, bool *bad)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	int64_t v = 0;

	if (item != NULL && !proto_num(item, PROTO_I64_LO, PROTO_I64_HI, &v))
		*bad = true;
	return v;
}

int proto_parse_line(const char *line, size_t len, struct proto_msg *msg)
{
	cJSON *obj;
	const cJSON *type, *item;
	bool bad = false;

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
		msg->messages = proto_get_int(obj, "messages", &bad);
		msg->rows = proto_get_int(obj, "rows", &bad);
		msg->rejected = proto_get_int(obj, "rejected", &bad);
		msg->updated = proto_get_int(obj, "updated", &bad);
		msg->deleted = proto_get_int(obj, "deleted", &bad);
		msg->tombstones_skipped = proto_get_int(obj, "tombstones_skipped", &bad);
		msg->duration_ms = proto_get_int(obj, "duration_ms", &bad);
	} else if (strcmp(type->valuestring, "lag") == 0) {
		const cJSON *pair;

		msg->type = PROTO_LAG;
		msg->lag_total = proto_get_int(obj, "total", &bad);
		item = cJSON_GetObjectItemCaseSensitive(obj, "partitions");
		cJSON_ArrayForEach(pair, item)
		{
			if (msg->nlag == PROTO_LAG_MAX)
				break;
			int64_t partition, lag;

			/* A pair that is not [partition, lag] in range is left out. */
			if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 ||
			    !proto_num(cJSON_GetArrayItem(pair, 0), 0, 2147483648.0, &partition) ||
			    !proto_num(cJSON_GetArrayItem(pair, 1), PROTO_I64_LO, PROTO_I64_HI, &lag))
				continue;
			msg->lag[msg->nlag].partition = (int32_t)partition;
			msg->lag[msg->nlag].lag = lag;
			msg->nlag++;
		}
	} else if (strcmp(type->valuestring, "assign") == 0) {
		const cJSON *part;

		msg->type = PROTO_ASSIGN;
		item = cJSON_GetObjectItemCaseSensitive(obj, "partitions");
		/* Without a list the line says nothing about what the task owns. */
		if (!cJSON_IsArray(item))
			bad = true;
		cJSON_ArrayForEach(part, item)
		{
			int64_t partition;

			if (msg->nparts == PROTO_LAG_MAX)
				break;
			/* A partition that is no number in int32's range is left out. */
			if (!proto_num(part, 0, 2147483648.0, &partition))
				continue;
			msg->parts[msg->nparts++] = (int32_t)partition;
		}
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
	if (bad) {
		msg->type = PROTO_UNKNOWN;
		return -1;
	}
	return msg->type == PROTO_UNKNOWN ? -1 : 0;
}
