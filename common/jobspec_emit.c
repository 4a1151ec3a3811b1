/* The job model as professional-mode YAML (the GPSS version 2 format of the
 * seed's appendix): jobspec_to_yaml, whose output jobspec_parse_yaml
 * (jobspec_yaml.c) reads back to an equal spec.  This is what the controller
 * stores for a professional job, shows as the effective YAML, and writes to a
 * worker's standard input.  libyaml's emitter does the quoting; values that a
 * YAML reader would take for another type (null, true, 1e3...) are quoted. */
#include "jobspec.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "secret.h"

struct ybuf {
	char *data;
	size_t len, cap;
};

static int ybuf_write(void *data, unsigned char *buffer, size_t size)
{
	struct ybuf *b = data;

	if (b->len + size + 1 > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 1024;
		char *grown;

		while (cap < b->len + size + 1)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (grown == NULL)
			return 0;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, buffer, size);
	b->len += size;
	b->data[b->len] = '\0';
	return 1;
}

struct yemit {
	yaml_emitter_t em;
	bool failed;
};

static void ye_emit(struct yemit *e, yaml_event_t *ev, int initialized)
{
	if (!initialized) {
		e->failed = true;
		return;
	}
	if (e->failed) {
		yaml_event_delete(ev);
		return;
	}
	/* The emitter owns the event from here, even when it fails. */
	if (!yaml_emitter_emit(&e->em, ev))
		e->failed = true;
}

static void ye_scalar(struct yemit *e, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;
	int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, style);

	ye_emit(e, &ev, ok);
}

/* Text that a YAML reader would take for null, a boolean or a number is
 * quoted, so it stays text. */
static bool ye_needs_quotes(const char *s)
{
	static const char *const words[] = { "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n" };
	const char *p = s;

	if (s[0] == '\0')
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	if (*p == '+' || *p == '-')
		p++;
	return isdigit((unsigned char)*p) || *p == '.';
}

static void ye_str(struct yemit *e, const char *s)
{
	ye_scalar(e, s, ye_needs_quotes(s) ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
}

static void ye_int(struct yemit *e, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	ye_scalar(e, buf, YAML_PLAIN_SCALAR_STYLE);
}

static void ye_map_start(struct yemit *e)
{
	yaml_event_t ev;
	int ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);

	ye_emit(e, &ev, ok);
}

static void ye_map_end(struct yemit *e)
{
	yaml_event_t ev;
	int ok = yaml_mapping_end_event_initialize(&ev);

	ye_emit(e, &ev, ok);
}

static void ye_seq_start(struct yemit *e)
{
	yaml_event_t ev;
	int ok = yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);

	ye_emit(e, &ev, ok);
}

static void ye_seq_end(struct yemit *e)
{
	yaml_event_t ev;
	int ok = yaml_sequence_end_event_initialize(&ev);

	ye_emit(e, &ev, ok);
}

static void ye_key(struct yemit *e, const char *key)
{
	ye_scalar(e, key, YAML_PLAIN_SCALAR_STYLE);
}

static void ye_kv_str(struct yemit *e, const char *key, const char *value)
{
	if (value == NULL)
		return;
	ye_key(e, key);
	ye_str(e, value);
}

/* PEM text as a literal block (libyaml quotes it when it cannot). */
static void ye_kv_pem(struct yemit *e, const char *key, const char *value)
{
	if (value == NULL)
		return;
	ye_key(e, key);
	if (strchr(value, '\n') != NULL)
		ye_scalar(e, value, YAML_LITERAL_SCALAR_STYLE);
	else
		ye_str(e, value);
}

static void ye_kv_int(struct yemit *e, const char *key, int64_t value)
{
	ye_key(e, key);
	ye_int(e, value);
}

static void ye_kv_names(struct yemit *e, const char *key, char *const *names, size_t n)
{
	if (n == 0)
		return;
	ye_key(e, key);
	ye_seq_start(e);
	for (size_t i = 0; i < n; i++)
		ye_str(e, names[i] != NULL ? names[i] : "");
	ye_seq_end(e);
}

static void ye_input(struct yemit *e, const char *key, const struct js_input *in, bool mask_secrets)
{
	bool csv;

	if (!in->present)
		return;
	ye_key(e, key);
	ye_map_start(e);
	if (in->ncolumns > 0) {
		ye_key(e, "COLUMNS");
		ye_seq_start(e);
		for (size_t i = 0; i < in->ncolumns; i++) {
			ye_map_start(e);
			ye_kv_str(e, "NAME", in->columns[i].name != NULL ? in->columns[i].name : "");
			ye_kv_str(e, "TYPE", in->columns[i].type);
			ye_map_end(e);
		}
		ye_seq_end(e);
	}
	if (in->format != JS_FORMAT_NONE) {
		ye_key(e, "FORMAT");
		ye_scalar(e, js_format_name(in->format), YAML_PLAIN_SCALAR_STYLE);
	}
	/* Without a FORMAT the block name is a guess the parser does not keep:
	 * NULL_STRING exists only in CSV_OPTION. */
	csv = in->format == JS_FORMAT_CSV || (in->format == JS_FORMAT_NONE && in->null_string != NULL);
	if (in->delimiter != NULL || in->quote != NULL || in->escape != NULL || (csv && in->null_string != NULL)) {
		ye_key(e, csv ? "CSV_OPTION" : "DELIMITED_OPTION");
		ye_map_start(e);
		ye_kv_str(e, "DELIMITER", in->delimiter);
		ye_kv_str(e, "QUOTE", in->quote);
		if (csv)
			ye_kv_str(e, "NULL_STRING", in->null_string);
		ye_kv_str(e, "ESCAPE", in->escape);
		ye_map_end(e);
	}
	if (in->protobuf_descriptor_file != NULL || in->protobuf_descriptor != NULL || in->protobuf_message != NULL) {
		ye_key(e, "PROTOBUF_OPTION");
		ye_map_start(e);
		ye_kv_str(e, "DESCRIPTOR_FILE", in->protobuf_descriptor_file);
		ye_kv_str(e, "DESCRIPTOR", in->protobuf_descriptor);
		ye_kv_str(e, "MESSAGE", in->protobuf_message);
		ye_map_end(e);
	}
	/* JSON_OPTION only holds a registry; every other format's registry
	 * settings are AVRO_OPTION's (the validator refuses them elsewhere). */
	if (in->registry_addr != NULL || in->registry_user != NULL || in->registry_password != NULL ||
	    in->avro_bytes_to_base64 || in->avro_schema_file != NULL || in->avro_schema != NULL) {
		bool json = in->format == JS_FORMAT_JSON;

		ye_key(e, json ? "JSON_OPTION" : "AVRO_OPTION");
		ye_map_start(e);
		ye_kv_str(e, "SCHEMA_REGISTRY_ADDR", in->registry_addr);
		ye_kv_str(e, "SCHEMA_REGISTRY_USER", in->registry_user);
		if (in->registry_password != NULL)
			ye_kv_str(e, "SCHEMA_REGISTRY_PASSWORD", mask_secrets ? SECRET_MASK : in->registry_password);
		if (!json) {
			if (in->avro_bytes_to_base64) {
				ye_key(e, "BYTES_TO_BASE64");
				ye_scalar(e, "true", YAML_PLAIN_SCALAR_STYLE);
			}
			ye_kv_str(e, "SCHEMA_FILE", in->avro_schema_file);
			ye_kv_str(e, "SCHEMA", in->avro_schema);
		}
		ye_map_end(e);
	}
	ye_map_end(e);
}

static void ye_partitions(struct yemit *e, const struct jobspec *spec)
{
	size_t cap = spec->npartitions * 12 + 3, off = 0;
	char *buf;

	if (spec->npartitions == 0)
		return;
	buf = malloc(cap);
	if (buf == NULL) {
		e->failed = true;
		return;
	}
	buf[off++] = '(';
	for (size_t i = 0; i < spec->npartitions; i++)
		off += (size_t)snprintf(buf + off, cap - off, "%s%d", i > 0 ? "," : "", (int)spec->partitions[i]);
	snprintf(buf + off, cap - off, ")");
	ye_key(e, "PARTITIONS");
	ye_scalar(e, buf, YAML_PLAIN_SCALAR_STYLE);
	free(buf);
}

static void ye_kafka_input(struct yemit *e, const struct jobspec *spec, bool mask_secrets)
{
	ye_key(e, "INPUT");
	ye_map_start(e);
	ye_key(e, "SOURCE");
	ye_map_start(e);
	ye_kv_str(e, "BROKERS", spec->brokers);
	ye_kv_str(e, "TOPIC", spec->topic);
	ye_partitions(e, spec);
	ye_key(e, "FALLBACK_OFFSET");
	ye_scalar(e, js_fallback_name(spec->fallback_offset), YAML_PLAIN_SCALAR_STYLE);
	ye_map_end(e);
	ye_input(e, "KEY", &spec->key, mask_secrets);
	ye_input(e, "VALUE", &spec->value, mask_secrets);
	if (spec->meta_present) {
		ye_key(e, "META");
		ye_map_start(e);
		if (spec->meta_column != NULL || spec->meta_type != NULL) {
			ye_key(e, "COLUMNS");
			ye_seq_start(e);
			ye_map_start(e);
			ye_kv_str(e, "NAME", spec->meta_column != NULL ? spec->meta_column : "");
			ye_kv_str(e, "TYPE", spec->meta_type);
			ye_map_end(e);
			ye_seq_end(e);
		}
		ye_key(e, "FORMAT");
		ye_scalar(e, spec->meta_type != NULL && strcasecmp(spec->meta_type, "text") == 0 ? "text" : "json",
			  YAML_PLAIN_SCALAR_STYLE);
		ye_map_end(e);
	}
	ye_key(e, "ERROR_LIMIT");
	if (spec->error_limit_percent) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%lld%%", (long long)spec->error_limit);
		ye_scalar(e, buf, YAML_PLAIN_SCALAR_STYLE);
	} else {
		ye_int(e, spec->error_limit);
	}
	ye_map_end(e);
}

static void ye_kafka_output(struct yemit *e, const struct jobspec *spec)
{
	ye_key(e, "OUTPUT");
	ye_map_start(e);
	ye_kv_str(e, "SCHEMA", spec->schema);
	ye_kv_str(e, "TABLE", spec->table);
	ye_key(e, "MODE");
	ye_scalar(e, js_mode_name(spec->mode), YAML_PLAIN_SCALAR_STYLE);
	ye_kv_names(e, "MATCH_COLUMNS", spec->match_columns, spec->nmatch_columns);
	ye_kv_names(e, "ORDER_COLUMNS", spec->order_columns, spec->norder_columns);
	ye_kv_names(e, "UPDATE_COLUMNS", spec->update_columns, spec->nupdate_columns);
	if (spec->nmapping > 0) {
		ye_key(e, "MAPPING");
		ye_seq_start(e);
		for (size_t i = 0; i < spec->nmapping; i++) {
			ye_map_start(e);
			ye_kv_str(e, "NAME", spec->mapping[i].name != NULL ? spec->mapping[i].name : "");
			ye_kv_str(e, "EXPRESSION", spec->mapping[i].expression != NULL ? spec->mapping[i].expression : "");
			ye_map_end(e);
		}
		ye_seq_end(e);
	}
	ye_map_end(e);
}

static void ye_kafka(struct yemit *e, const struct jobspec *spec, bool mask_secrets)
{
	ye_key(e, "KAFKA");
	ye_map_start(e);
	ye_kafka_input(e, spec, mask_secrets);
	ye_kafka_output(e, spec);
	if (spec->metadata_schema != NULL) {
		ye_key(e, "METADATA");
		ye_map_start(e);
		ye_kv_str(e, "SCHEMA", spec->metadata_schema);
		ye_map_end(e);
	}
	ye_key(e, "COMMIT");
	ye_map_start(e);
	ye_kv_int(e, "MAX_ROW", spec->commit_max_row);
	ye_kv_int(e, "MINIMAL_INTERVAL", spec->commit_minimal_interval_ms);
	ye_key(e, "CONSISTENCY");
	ye_scalar(e, js_consistency_name(spec->consistency), YAML_PLAIN_SCALAR_STYLE);
	ye_map_end(e);
	ye_key(e, "POLL");
	ye_map_start(e);
	ye_kv_int(e, "BATCHSIZE", spec->poll_batchsize);
	ye_kv_int(e, "TIMEOUT", spec->poll_timeout_ms);
	ye_map_end(e);
	if (spec->nproperties > 0) {
		ye_key(e, "PROPERTIES");
		ye_map_start(e);
		for (size_t i = 0; i < spec->nproperties; i++) {
			if (spec->properties[i].key == NULL || spec->properties[i].value == NULL)
				continue;
			ye_str(e, spec->properties[i].key);
			ye_str(e, mask_secrets && secret_property_is_secret(spec->properties[i].key)
					  ? SECRET_MASK
					  : spec->properties[i].value);
		}
		ye_map_end(e);
	}
	ye_map_end(e);
}

char *jobspec_to_yaml(const struct jobspec *spec, bool mask_secrets)
{
	struct yemit e = { .failed = false };
	struct ybuf b = { NULL, 0, 0 };
	yaml_event_t ev;
	int ok;

	if (spec == NULL || !yaml_emitter_initialize(&e.em))
		return NULL;
	yaml_emitter_set_output(&e.em, ybuf_write, &b);
	yaml_emitter_set_unicode(&e.em, 1);
	yaml_emitter_set_width(&e.em, -1); /* never fold long values */

	ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	ye_emit(&e, &ev, ok);
	ok = yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	ye_emit(&e, &ev, ok);
	ye_map_start(&e);

	ye_kv_str(&e, "DATABASE", spec->database);
	ye_kv_str(&e, "USER", spec->user);
	if (spec->password != NULL)
		ye_kv_str(&e, "PASSWORD", mask_secrets ? SECRET_MASK : spec->password);
	ye_kv_str(&e, "HOST", spec->host);
	if (spec->port != 0)
		ye_kv_int(&e, "PORT", spec->port);
	ye_kv_str(&e, "SSLMODE", spec->sslmode);
	ye_kv_pem(&e, "SSLROOTCERT", spec->sslrootcert);
	ye_kv_pem(&e, "SSLCERT", spec->sslcert);
	if (spec->sslkey != NULL)
		ye_kv_pem(&e, "SSLKEY", mask_secrets ? SECRET_MASK : spec->sslkey);
	ye_kv_int(&e, "VERSION", spec->version);
	if (spec->tasks != 1) /* an extension of the format: only where it says something */
		ye_kv_int(&e, "TASKS", spec->tasks);
	ye_kafka(&e, spec, mask_secrets);
	ye_key(&e, "SCHEDULE");
	ye_map_start(&e);
	ye_kv_int(&e, "RETRY_INTERVAL", spec->retry_interval_ms);
	ye_kv_int(&e, "MAX_RETRIES", spec->max_retries); /* 0 = retry forever */
	ye_map_end(&e);

	ye_map_end(&e);
	ok = yaml_document_end_event_initialize(&ev, 1);
	ye_emit(&e, &ev, ok);
	ok = yaml_stream_end_event_initialize(&ev);
	ye_emit(&e, &ev, ok);

	yaml_emitter_delete(&e.em);
	if (e.failed || b.data == NULL) {
		free(b.data);
		return NULL;
	}
	return b.data;
}
