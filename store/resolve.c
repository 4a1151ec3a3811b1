#include "resolve.h"

#include <stdlib.h>
#include <string.h>

const char *resolve_default_delimiter(const char *format)
{
	return format != NULL && strcmp(format, "csv") == 0 ? "," : "|";
}

static const char *resolve_row_string(const cJSON *row, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(row, key);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* The source's librdkafka settings as an array pointing into the row. */
static struct js_property *resolve_properties(const cJSON *source, size_t *n)
{
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(source, "properties");
	const cJSON *item;
	struct js_property *out;
	size_t count = 0;

	*n = 0;
	if (!cJSON_IsObject(props))
		return NULL;
	cJSON_ArrayForEach(item, props)
		if (cJSON_IsString(item))
			count++;
	if (count == 0)
		return NULL;
	out = calloc(count, sizeof(*out));
	if (out == NULL)
		return NULL;
	cJSON_ArrayForEach(item, props) {
		if (!cJSON_IsString(item))
			continue;
		out[*n].key = item->string;
		out[*n].value = item->valuestring;
		(*n)++;
	}
	return out;
}

static struct jobspec *resolve_parse(const char *mode, const char *definition,
				     struct js_errors *errs)
{
	struct jobspec *spec = NULL;
	cJSON *fields;

	if (definition == NULL) {
		js_errors_add(errs, 0, "definition", "the job has no definition");
		return NULL;
	}
	if (strcmp(mode, "professional") == 0) {
		if (jobspec_parse_yaml(definition, strlen(definition), &spec, errs) < 0)
			return NULL;
		return spec;
	}
	if (strcmp(mode, "wizard") != 0) {
		js_errors_add(errs, 0, "mode", "mode \"%s\" is not wizard or professional", mode);
		return NULL;
	}
	fields = cJSON_Parse(definition);
	if (!cJSON_IsObject(fields)) {
		js_errors_add(errs, 0, "definition", "the stored wizard fields are not a JSON object");
		cJSON_Delete(fields);
		return NULL;
	}
	if (jobspec_from_wizard(fields, &spec, errs) < 0)
		spec = NULL;
	cJSON_Delete(fields);
	return spec;
}

int resolve_job(const char *mode, const char *definition, const cJSON *source,
		const cJSON *service, struct jobspec **out, struct js_errors *errs)
{
	struct js_defaults defaults;
	struct js_property *props = NULL;
	struct jobspec *spec;
	const cJSON *port;
	const char *format;
	int fmt, rc = -1;

	*out = NULL;
	spec = resolve_parse(mode != NULL ? mode : "", definition, errs);
	if (spec == NULL)
		goto out;

	memset(&defaults, 0, sizeof(defaults));
	if (source != NULL) {
		defaults.brokers = resolve_row_string(source, "brokers");
		defaults.topic = resolve_row_string(source, "topic");
		format = resolve_row_string(source, "format");
		fmt = format != NULL ? js_format_parse(format) : -1;
		defaults.format = fmt > 0 ? (enum js_format)fmt : JS_FORMAT_NONE;
		defaults.delimiter = resolve_row_string(source, "delimiter");
		if (defaults.delimiter == NULL && defaults.format != JS_FORMAT_NONE)
			defaults.delimiter = resolve_default_delimiter(format);
		props = resolve_properties(source, &defaults.nproperties);
		defaults.properties = props;
	}
	if (service != NULL) {
		defaults.host = resolve_row_string(service, "database_host");
		port = cJSON_GetObjectItemCaseSensitive(service, "database_port");
		defaults.port = cJSON_IsNumber(port) ? port->valueint : 0;
	}
	if (jobspec_apply_defaults(spec, &defaults) < 0) {
		js_errors_add(errs, 0, "definition",
			      "cannot fill in the source's and service's settings (out of memory?)");
		goto out;
	}
	if (jobspec_validate(spec, errs) < 0)
		goto out;
	*out = spec;
	spec = NULL;
	rc = 0;
out:
	jobspec_free(spec);
	free(props);
	return rc;
}
