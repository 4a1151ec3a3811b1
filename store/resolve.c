#include "resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *resolve_default_delimiter(const char *format)
{
	if (format != NULL && strcmp(format, "csv") == 0)
		return ",";
	if (format != NULL && (strcmp(format, "json") == 0 || strcmp(format, "protobuf") == 0 ||
			       strcmp(format, "avro") == 0))
		return NULL;
	return "|";
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

/* The wizard's fields are the columns of a delimited line, in order.  The
 * error goes first: it is the one to fix first. */
static bool resolve_wizard_source_ok(const cJSON *source, struct js_errors *errs)
{
	const char *format = resolve_row_string(source, "format");
	int fmt = format != NULL ? js_format_parse(format) : JS_FORMAT_DELIMITED;
	struct js_error *first;

	if (fmt == JS_FORMAT_CSV || fmt == JS_FORMAT_DELIMITED)
		return true;
	/* Avro through the source's registry: the wizard's fields name the
	 * record's fields. */
	if (fmt == JS_FORMAT_AVRO && resolve_row_string(source, "schema_registry") != NULL)
		return true;
	if (errs->count == JS_ERRORS_MAX) {
		errs->count--;
		errs->truncated = true;
	}
	memmove(&errs->items[1], &errs->items[0], errs->count * sizeof(errs->items[0]));
	errs->count++;
	first = &errs->items[0];
	first->line = 0;
	snprintf(first->path, sizeof(first->path), "mode");
	snprintf(first->message, sizeof(first->message),
		 "wizard mode supports csv and delimited sources, and avro sources with a "
		 "schema_registry; write this job in professional mode (YAML)");
	return false;
}

/* Semantic errors carry the line of their key where the YAML has one. */
static void resolve_add_lines(const struct jobspec *spec, struct js_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		if (errs->items[i].line <= 0 && errs->items[i].path[0] != '\0')
			errs->items[i].line = jobspec_line(spec, errs->items[i].path);
}

int resolve_job(const char *mode, const char *definition, const cJSON *source,
		const cJSON *service, bool validate, struct jobspec **out,
		struct js_errors *errs)
{
	struct js_defaults defaults;
	struct js_property *props = NULL;
	struct jobspec *spec;
	const cJSON *port;
	const char *format;
	bool source_ok = true;
	int fmt, rc = -1;

	*out = NULL;
	/* The parsers start errs afresh: check the source after them. */
	spec = resolve_parse(mode != NULL ? mode : "", definition, errs);
	if (validate && source != NULL && mode != NULL && strcmp(mode, "wizard") == 0)
		source_ok = resolve_wizard_source_ok(source, errs);
	if (spec == NULL || !source_ok)
		goto out;

	memset(&defaults, 0, sizeof(defaults));
	if (source != NULL) {
		defaults.brokers = resolve_row_string(source, "brokers");
		defaults.topic = resolve_row_string(source, "topic");
		format = resolve_row_string(source, "format");
		fmt = format != NULL ? js_format_parse(format) : -1;
		defaults.format = fmt > 0 ? (enum js_format)fmt : JS_FORMAT_NONE;
		/* json, protobuf and avro have no delimiter, whatever the row holds. */
		if (resolve_default_delimiter(format) != NULL) {
			defaults.delimiter = resolve_row_string(source, "delimiter");
			if (defaults.delimiter == NULL && defaults.format != JS_FORMAT_NONE)
				defaults.delimiter = resolve_default_delimiter(format);
		}
		defaults.registry = resolve_row_string(source, "schema_registry");
		defaults.registry_user = resolve_row_string(source, "schema_registry_user");
		defaults.registry_password = resolve_row_string(source, "schema_registry_password");
		props = resolve_properties(source, &defaults.nproperties);
		defaults.properties = props;
	}
	if (service != NULL) {
		defaults.host = resolve_row_string(service, "database_host");
		port = cJSON_GetObjectItemCaseSensitive(service, "database_port");
		defaults.port = cJSON_IsNumber(port) ? port->valueint : 0;
		defaults.sslmode = resolve_row_string(service, "database_sslmode");
		defaults.sslrootcert = resolve_row_string(service, "database_sslrootcert");
		defaults.sslcert = resolve_row_string(service, "database_sslcert");
		defaults.sslkey = resolve_row_string(service, "database_sslkey");
	}
	if (jobspec_apply_defaults(spec, &defaults) < 0) {
		js_errors_add(errs, 0, "definition",
			      "cannot fill in the source's and service's settings (out of memory?)");
		goto out;
	}
	if (validate && jobspec_validate(spec, errs) < 0) {
		resolve_add_lines(spec, errs);
		goto out;
	}
	*out = spec;
	spec = NULL;
	rc = 0;
out:
	jobspec_free(spec);
	free(props);
	return rc;
}

char *resolve_worker_input(const struct jobspec *spec, int64_t job_id, const char *job_name,
			   int64_t messages_before, int64_t rejected_before, const cJSON *extra)
{
	const cJSON *item;
	char *yaml = jobspec_to_yaml(spec, false);
	cJSON *msg = cJSON_CreateObject(), *config = NULL;
	char *text = NULL;

	if (yaml == NULL || msg == NULL)
		goto out;
	cJSON_AddNumberToObject(msg, "job_id", (double)job_id);
	cJSON_AddStringToObject(msg, "job_name", job_name != NULL ? job_name : "");
	cJSON_AddNumberToObject(msg, "messages_before", (double)messages_before);
	cJSON_AddNumberToObject(msg, "rejected_before", (double)rejected_before);
	cJSON_ArrayForEach(item, extra) {
		if (item->string != NULL)
			cJSON_AddItemToObject(msg, item->string, cJSON_Duplicate(item, true));
	}
	config = cJSON_AddStringToObject(msg, "config", yaml);
	if (config != NULL)
		text = cJSON_PrintUnformatted(msg);
out:
	if (config != NULL && config->valuestring != NULL)
		explicit_bzero(config->valuestring, strlen(config->valuestring));
	if (yaml != NULL) {
		explicit_bzero(yaml, strlen(yaml));
		free(yaml);
	}
	cJSON_Delete(msg);
	return text;
}
