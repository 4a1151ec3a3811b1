#include "api_catalog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"
#include "secret.h"

#define API_PROPERTIES_MAX 256
#define API_PEM_MAX 65536 /* a CA bundle of a few dozen certificates */

static const char *const row_readonly[] = { "id", "status", "created_at", "updated_at", NULL };

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- secrets ---- */

/* A secret sent back as the API shows it, SECRET_MASK, keeps the stored
 * value.  stored: the object that holds it (a row, or a source's
 * properties), NULL on a create.  Returns the value to store, or NULL after
 * replying 422 when there is none to keep. */
static const char *api_keep_secret(struct api_req *req, const cJSON *stored, const char *name,
				   const char *value, const char *field)
{
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(stored, name);

	if (!secret_is_mask(value))
		return value;
	if (cJSON_IsString(old))
		return old->valuestring;
	api_reply_error(req, 422, field,
			"%s: \"" SECRET_MASK "\" keeps a stored secret, and there is none; "
			"give the value itself",
			field);
	return NULL;
}

/* Shows a stored secret as SECRET_MASK. */
static void api_mask_secret(cJSON *item)
{
	if (!cJSON_IsString(item))
		return;
	/* Wiped first: when the mask cannot be set, "" is shown. */
	explicit_bzero(item->valuestring, strlen(item->valuestring));
	cJSON_SetValuestring(item, SECRET_MASK);
}

/* ---- services ---- */

static const char *const service_writable[] = { "name", "description", "spec_cu",
						"database_host", "database_port", "database_sslmode",
						"database_sslrootcert", "database_sslcert",
						"database_sslkey", NULL };

static int api_check_host(struct api_req *req, const char *name, const cJSON *value)
{
	for (const char *p = value->valuestring; *p; p++) {
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

static int api_check_spec_cu(struct api_req *req, const char *name, const cJSON *value)
{
	double d = value->valuedouble; /* any number: 1e999999 arrives as infinity */

	if (d != 2 && d != 4 && d != 8 && d != 16) {
		api_reply_error(req, 422, name, "%s must be 2, 4, 8 or 16, not %.17g", name, d);
		return -1;
	}
	return 0;
}

static const struct api_field service_fields[] = {
	{ "name", false, true, false, 1, API_NAME_MAX, NULL },
	{ "description", false, false, true, 0, API_TEXT_MAX, NULL },
	{ "spec_cu", true, false, false, 0, 1024, api_check_spec_cu },
	{ "database_host", false, false, false, 1, 255, api_check_host },
	{ "database_port", true, false, false, 1, 65535, NULL },
};

/* The TLS settings of the service's jobs: null or "" clears one (back to
 * libpq's default); database_sslkey sent back as shown ("****") keeps the
 * stored key.  Problems never quote a PEM text. */
static int api_service_tls(struct api_req *req, const cJSON *body, const cJSON *row, cJSON *in)
{
	static const char *const names[] = { "database_sslmode", "database_sslrootcert",
					     "database_sslcert", "database_sslkey" };

	for (size_t i = 0; i < NFIELDS(names); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, names[i]);
		bool key = i == 3, mode = i == 0;
		const char *s, *problem;

		if (v == NULL)
			continue;
		if (key && cJSON_IsString(v) && secret_is_mask(v->valuestring)) {
			if (api_keep_secret(req, row, names[i], v->valuestring, names[i]) == NULL)
				return -1;
			continue; /* the stored key stays */
		}
		if (cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0')) {
			cJSON_AddNullToObject(in, names[i]);
			continue;
		}
		if (api_get_string(req, body, names[i], false, 1, mode ? 16 : API_PEM_MAX, !mode, &s) < 0)
			return -1;
		if (mode && !jobspec_sslmode_valid(s)) {
			api_reply_error(req, 422, names[i], "%s must be one of " JS_SSLMODES ", not \"%s\"",
					names[i], s);
			return -1;
		}
		if (!mode && (problem = jobspec_pem_problem(s, key)) != NULL) {
			api_reply_error(req, 422, names[i], "%s %s", names[i], problem);
			return -1;
		}
		cJSON_AddStringToObject(in, names[i], s);
	}
	return 0;
}

/* Checks the body and copies what it sets into in. */
static int api_service_fields(struct api_req *req, const cJSON *body, const cJSON *row, cJSON *in)
{
	if (api_check_keys(req, body, service_writable, row_readonly, "a service") < 0 ||
	    api_copy_fields(req, body, row == NULL, service_fields, NFIELDS(service_fields), in) < 0)
		return -1;
	return api_service_tls(req, body, row, in);
}

/* The client key is a secret: shown as "****" when set. */
static cJSON *api_service_repr(struct api_req *req, cJSON *row)
{
	(void)req;
	api_mask_secret(cJSON_GetObjectItemCaseSensitive(row, "database_sslkey"));
	return row;
}

/* ---- sources ---- */

static const char *const source_writable[] = { "service_id", "name",	    "description",
					       "type",	     "brokers",	    "topic",
					       "format",     "delimiter",   "properties",
					       "schema_registry", "schema_registry_user",
					       "schema_registry_password", NULL };

static int api_check_type(struct api_req *req, const char *name, const cJSON *value)
{
	if (strcmp(value->valuestring, "kafka") != 0) {
		api_reply_error(req, 422, name, "%s \"%s\" is not supported; kafka is the only %s",
				name, value->valuestring, name);
		return -1;
	}
	return 0;
}

/* host:port[,host:port...]; host may be [IPv6]. */
static int api_check_brokers(struct api_req *req, const char *name, const cJSON *value)
{
	const char *p = value->valuestring;

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
	api_reply_error(req, 422, name,
			"%s must be a comma-separated list of host:port (port 1..65535), "
			"for example \"kafka1:9092,kafka2:9092\"",
			name);
	return -1;
}

static int api_check_topic(struct api_req *req, const char *name, const cJSON *value)
{
	for (const char *p = value->valuestring; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
			api_reply_error(req, 422, name,
					"%s may hold only letters, digits, '.', '_' and '-'", name);
			return -1;
		}
	}
	return 0;
}

static const struct api_field source_fields[] = {
	{ "service_id", true, true, false, 1, API_ID_MAX, NULL },
	{ "name", false, true, false, 1, API_NAME_MAX, NULL },
	{ "description", false, false, true, 0, API_TEXT_MAX, NULL },
	{ "type", false, false, false, 0, 64, api_check_type },
	{ "brokers", false, true, false, 1, API_TEXT_MAX, api_check_brokers },
	{ "topic", false, true, false, 1, 249, api_check_topic },
};

/* Copies the properties, with numbers and booleans turned into text. */
static int api_source_properties(struct api_req *req, const cJSON *body, const cJSON *row,
				 cJSON *in)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "properties");
	const cJSON *item;
	const char *value;
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
			value = item->valuestring;
			if (secret_property_is_secret(item->string))
				value = api_keep_secret(
					req, cJSON_GetObjectItemCaseSensitive(row, "properties"),
					item->string, value, field);
			if (value == NULL)
				return -1;
			cJSON_AddStringToObject(out, item->string, value);
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

/* The source's schema registry: an address list as AVRO_OPTION takes it,
 * HTTP basic auth with both or neither of user and password; null or ""
 * clears one; the password sent back as shown ("****") keeps the stored one.
 * Problems never quote the password. */
static int api_source_registry(struct api_req *req, const cJSON *body, const cJSON *row, cJSON *in)
{
	static const char *const names[] = { "schema_registry", "schema_registry_user",
					     "schema_registry_password" };
	const char *now[3];
	char why[256];

	for (size_t i = 0; i < NFIELDS(names); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, names[i]);
		const cJSON *old = cJSON_GetObjectItemCaseSensitive(row, names[i]);
		const char *s;

		now[i] = cJSON_IsString(old) ? old->valuestring : NULL;
		if (v == NULL)
			continue;
		if (cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0')) {
			cJSON_AddNullToObject(in, names[i]);
			now[i] = NULL;
			continue;
		}
		if (i == 2 && cJSON_IsString(v) && secret_is_mask(v->valuestring)) {
			if (api_keep_secret(req, row, names[i], v->valuestring, names[i]) == NULL)
				return -1;
			continue; /* the stored password stays */
		}
		if (api_get_string(req, body, names[i], false, 1, i == 0 ? 4096 : 1024, i == 2, &s) < 0)
			return -1;
		if (i == 0 && jobspec_registry_check(s, why, sizeof(why)) < 0) {
			api_reply_error(req, 422, names[i], "schema_registry %s", why);
			return -1;
		}
		if (i == 1 && strchr(s, ':') != NULL) {
			api_reply_error(req, 422, names[i], "schema_registry_user must not contain ':' (HTTP basic "
					"authentication cannot carry it)");
			return -1;
		}
		cJSON_AddStringToObject(in, names[i], s);
		now[i] = s;
	}
	if ((now[1] != NULL) != (now[2] != NULL)) {
		api_reply_error(req, 422, now[1] != NULL ? names[2] : names[1],
				"schema_registry_user and schema_registry_password go together (HTTP basic "
				"authentication takes both); give both or clear both");
		return -1;
	}
	if (now[1] != NULL && now[0] == NULL) {
		api_reply_error(req, 422, names[0], "schema_registry is required with schema_registry_user "
				"and schema_registry_password");
		return -1;
	}
	return 0;
}

static int api_source_fields(struct api_req *req, const cJSON *body, const cJSON *row, cJSON *in)
{
	const cJSON *delim;
	const char *s;

	if (api_check_keys(req, body, source_writable, row_readonly, "a source") < 0 ||
	    api_copy_fields(req, body, row == NULL, source_fields, NFIELDS(source_fields), in) < 0)
		return -1;
	if (api_get_string(req, body, "format", false, 0, 64, false, &s) < 0)
		return -1;
	if (s != NULL) {
		int fmt = js_format_parse(s);

		if (fmt <= 0) {
			api_reply_error(req, 422, "format",
					"format \"%s\" is unknown; use csv, delimited, json, protobuf or avro",
					s);
			return -1;
		}
		s = js_format_name((enum js_format)fmt);
		cJSON_AddStringToObject(in, "format", s);
	}
	/* null: back to the format's default */
	delim = cJSON_GetObjectItemCaseSensitive(body, "delimiter");
	if (cJSON_IsNull(delim)) {
		cJSON_AddNullToObject(in, "delimiter");
	} else if (delim != NULL) {
		if (s != NULL && resolve_default_delimiter(s) == NULL) {
			api_reply_error(req, 422, "delimiter",
					"a %s source has no delimiter; leave delimiter out", s);
			return -1;
		}
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
	if (api_source_registry(req, body, row, in) < 0)
		return -1;
	return api_source_properties(req, body, row, in);
}

/* The delimiter filled in: the format's default, or null for json and
 * protobuf whatever was stored under another format; secret properties
 * shown as SECRET_MASK. */
static cJSON *api_source_repr(struct api_req *req, cJSON *row)
{
	const char *format = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "format"));
	const char *dflt = resolve_default_delimiter(format);
	cJSON *delim = cJSON_GetObjectItemCaseSensitive(row, "delimiter");
	cJSON *item;

	if (row != NULL && (dflt == NULL || !cJSON_IsString(delim)))
		cJSON_ReplaceItemInObjectCaseSensitive(
			row, "delimiter", dflt != NULL ? cJSON_CreateString(dflt) : cJSON_CreateNull());
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(row, "properties"))
		if (secret_property_is_secret(item->string))
			api_mask_secret(item);
	api_mask_secret(cJSON_GetObjectItemCaseSensitive(row, "schema_registry_password"));
	return row;
}

const struct api_resource api_services = {
	.kind = STORE_SERVICE,
	.repr = api_service_repr,
	.fields = api_service_fields,
};

const struct api_resource api_sources = {
	.kind = STORE_SOURCE,
	.repr = api_source_repr,
	.fields = api_source_fields,
	.parent_field = "service_id",
};
