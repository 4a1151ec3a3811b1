#include "api_catalog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"

#define API_ID_MAX ((int64_t)1 << 53) /* ids travel as JSON numbers */
#define API_PROPERTIES_MAX 256

static const char *const row_readonly[] = { "id", "status", "created_at", "updated_at", NULL };

/* ---- services ---- */

static const char *const service_writable[] = { "name", "description", "spec_cu",
						"database_host", "database_port", NULL };

static int api_check_host(struct api_req *req, const char *name, const char *host)
{
	for (const char *p = host; *p; p++) {
		if (*p == ' ' || *p == '/' || *p == ',') {
			api_reply_error(req, 422, name,
					"%s must be a host name or an IP address, without spaces, "
					"slashes or commas",
					name);
			return -1;
		}
	}
	return 0;
}

/* Checks the body and copies what it sets into in. */
static int api_service_fields(struct api_req *req, const cJSON *body, bool create, cJSON *in)
{
	const char *s;
	int64_t v;
	bool present;

	if (api_check_keys(req, body, service_writable, row_readonly, "a service") < 0)
		return -1;
	if (api_get_string(req, body, "name", create, 1, API_NAME_MAX, false, &s) < 0)
		return -1;
	if (s != NULL)
		cJSON_AddStringToObject(in, "name", s);
	if (api_get_string(req, body, "description", false, 0, API_TEXT_MAX, true, &s) < 0)
		return -1;
	if (s != NULL)
		cJSON_AddStringToObject(in, "description", s);
	if (api_get_int(req, body, "spec_cu", false, 0, 1024, &v, &present) < 0)
		return -1;
	if (present) {
		if (v != 2 && v != 4 && v != 8 && v != 16) {
			api_reply_error(req, 422, "spec_cu", "spec_cu must be 2, 4, 8 or 16, not %lld",
					(long long)v);
			return -1;
		}
		cJSON_AddNumberToObject(in, "spec_cu", (double)v);
	}
	if (api_get_string(req, body, "database_host", false, 1, 255, false, &s) < 0)
		return -1;
	if (s != NULL) {
		if (api_check_host(req, "database_host", s) < 0)
			return -1;
		cJSON_AddStringToObject(in, "database_host", s);
	}
	if (api_get_int(req, body, "database_port", false, 1, 65535, &v, &present) < 0)
		return -1;
	if (present)
		cJSON_AddNumberToObject(in, "database_port", (double)v);
	return 0;
}

static void api_service_reply_row(struct api_req *req, int status, int64_t id)
{
	char err[512];
	cJSON *row = NULL;
	int rc = store_service_get(req->st, id, &row, err, sizeof(err));

	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	api_reply_json(req, status, row);
}

void api_services_collection(struct api_req *req)
{
	char err[512];
	int64_t page, page_size, total = 0, id = 0;
	cJSON *items = NULL, *body, *in;
	int rc;

	if (strcmp(req->method, "GET") == 0) {
		if (api_get_paging(req, &page, &page_size) < 0)
			return;
		rc = store_service_list(req->st, (page - 1) * page_size, page_size, &items, &total,
					err, sizeof(err));
		if (rc < 0) {
			api_reply_store(req, rc, NULL, err);
			return;
		}
		api_reply_list(req, items, total, page, page_size);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_reply_method(req, "GET, POST");
		return;
	}
	body = api_req_body(req);
	if (body == NULL)
		return;
	in = cJSON_CreateObject();
	if (api_service_fields(req, body, true, in) == 0) {
		rc = store_service_create(req->st, in, &id, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, NULL, err);
		else
			api_service_reply_row(req, 201, id);
	}
	cJSON_Delete(in);
	cJSON_Delete(body);
}

void api_service_item(struct api_req *req, int64_t id)
{
	char err[512];
	cJSON *row = NULL, *body, *in;
	int rc;

	if (strcmp(req->method, "GET") == 0) {
		api_service_reply_row(req, 200, id);
		return;
	}
	if (strcmp(req->method, "DELETE") == 0) {
		rc = store_service_delete(req->st, id, err, sizeof(err));
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
	rc = store_service_get(req->st, id, &row, err, sizeof(err));
	cJSON_Delete(row);
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	body = api_req_body(req);
	if (body == NULL)
		return;
	in = cJSON_CreateObject();
	if (api_service_fields(req, body, false, in) == 0) {
		rc = store_service_update(req->st, id, in, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, NULL, err);
		else
			api_service_reply_row(req, 200, id);
	}
	cJSON_Delete(in);
	cJSON_Delete(body);
}

/* ---- sources ---- */

static const char *const source_writable[] = { "service_id", "name",	    "description",
					       "type",	     "brokers",	    "topic",
					       "format",     "delimiter",   "properties",
					       NULL };

/* host:port[,host:port...]; host may be [IPv6]. */
static int api_check_brokers(struct api_req *req, const char *brokers)
{
	const char *p = brokers;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *colon = NULL;
		long port = 0;
		size_t digits = 0;

		for (size_t i = 0; i < len; i++) {
			if (isspace((unsigned char)p[i]))
				goto bad;
			if (p[i] == ':')
				colon = p + i;
		}
		if (colon == NULL || colon == p || (p[0] == '[' && colon[-1] != ']'))
			goto bad;
		for (const char *q = colon + 1; q < p + len; q++, digits++) {
			if (!isdigit((unsigned char)*q) || digits >= 5)
				goto bad;
			port = port * 10 + (*q - '0');
		}
		if (digits == 0 || port < 1 || port > 65535)
			goto bad;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
bad:
	api_reply_error(req, 422, "brokers",
			"brokers must be a comma-separated list of host:port (port 1..65535), "
			"for example \"kafka1:9092,kafka2:9092\"");
	return -1;
}

static int api_check_topic(struct api_req *req, const char *topic)
{
	for (const char *p = topic; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
			api_reply_error(req, 422, "topic",
					"topic may hold only letters, digits, '.', '_' and '-'");
			return -1;
		}
	}
	return 0;
}

/* Copies the properties, with numbers and booleans turned into text. */
static int api_source_properties(struct api_req *req, const cJSON *body, cJSON *in)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "properties");
	const cJSON *item;
	cJSON *out;
	char field[320], num[64];
	int count = 0;

	if (v == NULL)
		return 0;
	if (!cJSON_IsObject(v)) {
		api_reply_error(req, 422, "properties",
				"properties must be an object of librdkafka settings, such as "
				"{\"fetch.min.bytes\": \"1048576\"}");
		return -1;
	}
	out = cJSON_AddObjectToObject(in, "properties");
	cJSON_ArrayForEach(item, v) {
		snprintf(field, sizeof(field), "properties.%.256s", item->string);
		if (++count > API_PROPERTIES_MAX) {
			api_reply_error(req, 422, "properties", "properties may hold at most %d settings",
					API_PROPERTIES_MAX);
			return -1;
		}
		if (item->string[0] == '\0' || strlen(item->string) > 256) {
			api_reply_error(req, 422, "properties",
					"property names must be 1 to 256 characters long");
			return -1;
		}
		if (cJSON_GetObjectItemCaseSensitive(out, item->string) != NULL) {
			api_reply_error(req, 422, field, "property %s is given twice", item->string);
			return -1;
		}
		if (cJSON_IsString(item)) {
			if (strlen(item->valuestring) > API_TEXT_MAX) {
				api_reply_error(req, 422, field, "%s is longer than %d bytes", field,
						API_TEXT_MAX);
				return -1;
			}
			cJSON_AddStringToObject(out, item->string, item->valuestring);
		} else if (cJSON_IsBool(item)) {
			cJSON_AddStringToObject(out, item->string,
						cJSON_IsTrue(item) ? "true" : "false");
		} else if (cJSON_IsNumber(item)) {
			double d = item->valuedouble;

			if (api_is_integral(d))
				snprintf(num, sizeof(num), "%lld", (long long)d);
			else
				snprintf(num, sizeof(num), "%.17g", d);
			cJSON_AddStringToObject(out, item->string, num);
		} else {
			api_reply_error(req, 422, field,
					"%s must be a string, a number or a boolean", field);
			return -1;
		}
	}
	return 0;
}

static int api_source_fields(struct api_req *req, const cJSON *body, bool create, cJSON *in)
{
	const cJSON *delim;
	const char *s;
	int64_t v;
	bool present;

	if (api_check_keys(req, body, source_writable, row_readonly, "a source") < 0)
		return -1;
	if (api_get_int(req, body, "service_id", create, 1, API_ID_MAX, &v, &present) < 0)
		return -1;
	if (present)
		cJSON_AddNumberToObject(in, "service_id", (double)v);
	if (api_get_string(req, body, "name", create, 1, API_NAME_MAX, false, &s) < 0)
		return -1;
	if (s != NULL)
		cJSON_AddStringToObject(in, "name", s);
	if (api_get_string(req, body, "description", false, 0, API_TEXT_MAX, true, &s) < 0)
		return -1;
	if (s != NULL)
		cJSON_AddStringToObject(in, "description", s);
	if (api_get_string(req, body, "type", false, 0, 64, false, &s) < 0)
		return -1;
	if (s != NULL) {
		if (strcmp(s, "kafka") != 0) {
			api_reply_error(req, 422, "type",
					"type \"%s\" is not supported; kafka is the only type", s);
			return -1;
		}
		cJSON_AddStringToObject(in, "type", s);
	}
	if (api_get_string(req, body, "brokers", create, 1, API_TEXT_MAX, false, &s) < 0)
		return -1;
	if (s != NULL) {
		if (api_check_brokers(req, s) < 0)
			return -1;
		cJSON_AddStringToObject(in, "brokers", s);
	}
	if (api_get_string(req, body, "topic", create, 1, 249, false, &s) < 0)
		return -1;
	if (s != NULL) {
		if (api_check_topic(req, s) < 0)
			return -1;
		cJSON_AddStringToObject(in, "topic", s);
	}
	if (api_get_string(req, body, "format", false, 0, 64, false, &s) < 0)
		return -1;
	if (s != NULL) {
		int fmt = js_format_parse(s);

		if (fmt == JS_FORMAT_JSON || fmt == JS_FORMAT_PROTOBUF ||
		    strcasecmp(s, "jsonl") == 0 || strcasecmp(s, "avro") == 0) {
			api_reply_error(req, 422, "format",
					"format %s is not supported yet; use csv or delimited", s);
			return -1;
		}
		if (fmt != JS_FORMAT_CSV && fmt != JS_FORMAT_DELIMITED) {
			api_reply_error(req, 422, "format",
					"format \"%s\" is unknown; use csv or delimited", s);
			return -1;
		}
		cJSON_AddStringToObject(in, "format", js_format_name((enum js_format)fmt));
	}
	/* null: back to the format's default */
	delim = cJSON_GetObjectItemCaseSensitive(body, "delimiter");
	if (cJSON_IsNull(delim)) {
		cJSON_AddNullToObject(in, "delimiter");
	} else if (delim != NULL) {
		if (!cJSON_IsString(delim) || strlen(delim->valuestring) != 1 ||
		    delim->valuestring[0] == '\n' || delim->valuestring[0] == '\r' ||
		    (unsigned char)delim->valuestring[0] >= 0x80) {
			api_reply_error(req, 422, "delimiter",
					"delimiter must be exactly one character, such as \"|\" or "
					"\",\" (not a line break)");
			return -1;
		}
		cJSON_AddStringToObject(in, "delimiter", delim->valuestring);
	}
	return api_source_properties(req, body, in);
}

cJSON *api_source_repr(cJSON *row)
{
	cJSON *delim = cJSON_GetObjectItemCaseSensitive(row, "delimiter");

	if (row != NULL && !cJSON_IsString(delim)) {
		const char *format =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "format"));

		cJSON_ReplaceItemInObjectCaseSensitive(
			row, "delimiter", cJSON_CreateString(resolve_default_delimiter(format)));
	}
	return row;
}

static void api_source_reply_row(struct api_req *req, int status, int64_t id)
{
	char err[512];
	cJSON *row = NULL;
	int rc = store_source_get(req->st, id, &row, err, sizeof(err));

	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	api_reply_json(req, status, api_source_repr(row));
}

void api_sources_collection(struct api_req *req)
{
	char err[512];
	int64_t page, page_size, total = 0, id = 0;
	cJSON *items = NULL, *item, *body, *in;
	int rc;

	if (strcmp(req->method, "GET") == 0) {
		if (api_get_paging(req, &page, &page_size) < 0)
			return;
		rc = store_source_list(req->st, (page - 1) * page_size, page_size, &items, &total,
				       err, sizeof(err));
		if (rc < 0) {
			api_reply_store(req, rc, NULL, err);
			return;
		}
		cJSON_ArrayForEach(item, items)
			api_source_repr(item);
		api_reply_list(req, items, total, page, page_size);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_reply_method(req, "GET, POST");
		return;
	}
	body = api_req_body(req);
	if (body == NULL)
		return;
	in = cJSON_CreateObject();
	if (api_source_fields(req, body, true, in) == 0) {
		rc = store_source_create(req->st, in, &id, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, "service_id", err);
		else
			api_source_reply_row(req, 201, id);
	}
	cJSON_Delete(in);
	cJSON_Delete(body);
}

void api_source_item(struct api_req *req, int64_t id)
{
	char err[512];
	cJSON *row = NULL, *body, *in;
	int rc;

	if (strcmp(req->method, "GET") == 0) {
		api_source_reply_row(req, 200, id);
		return;
	}
	if (strcmp(req->method, "DELETE") == 0) {
		rc = store_source_delete(req->st, id, err, sizeof(err));
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
	rc = store_source_get(req->st, id, &row, err, sizeof(err));
	cJSON_Delete(row);
	if (rc < 0) {
		api_reply_store(req, rc, NULL, err);
		return;
	}
	body = api_req_body(req);
	if (body == NULL)
		return;
	in = cJSON_CreateObject();
	if (api_source_fields(req, body, false, in) == 0) {
		rc = store_source_update(req->st, id, in, err, sizeof(err));
		if (rc < 0)
			api_reply_store(req, rc, "service_id", err);
		else
			api_source_reply_row(req, 200, id);
	}
	cJSON_Delete(in);
	cJSON_Delete(body);
}
