#include "decode.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_avro.h"
#include "decode_json.h"
#include "decode_meta.h"
#include "decode_pb.h"
#include "decode_text.h"
#include "registry.h"
#include "textbuf.h"

/* Exactly one of the four is set, by FORMAT. */
struct decoder {
	struct text_decoder *text; /* delimited, csv */
	struct json_decoder *json;
	struct pb_decoder *pb;
	struct avro_decoder *avro;
	struct registry *json_reg; /* json with JSON_OPTION: framed messages */
};

struct decoder *decoder_new(const struct js_input *in, char *err, size_t errlen)
{
	struct decoder *dec = calloc(1, sizeof(*dec));

	if (dec == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (in->format == JS_FORMAT_JSON) {
		dec->json = json_decoder_new(in, err, errlen);
		if (dec->json != NULL && in->registry_addr != NULL) {
			dec->json_reg = registry_new(in->registry_addr, in->registry_user, in->registry_password, err,
						     errlen);
			if (dec->json_reg == NULL) {
				decoder_free(dec);
				return NULL;
			}
		}
	} else if (in->format == JS_FORMAT_AVRO)
		dec->avro = avro_decoder_new(in, err, errlen);
	else if (in->format == JS_FORMAT_PROTOBUF)
		dec->pb = pb_decoder_new(in, err, errlen);
	else /* delimited, csv; it says when FORMAT is missing */
		dec->text = text_decoder_new(in, err, errlen);
	if (dec->text == NULL && dec->json == NULL && dec->pb == NULL && dec->avro == NULL) {
		free(dec);
		return NULL;
	}
	return dec;
}

void decoder_free(struct decoder *dec)
{
	if (dec == NULL)
		return;
	text_decoder_free(dec->text);
	json_decoder_free(dec->json);
	pb_decoder_free(dec->pb);
	avro_decoder_free(dec->avro);
	registry_free(dec->json_reg);
	free(dec);
}

/* JSON Schema framing: the body after the frame is plain JSON; the id is
 * checked with the registry (an id it does not know is a bad message). */
static int decoder_json_unframe(struct registry *reg, const char **buf, size_t *len, char *err, size_t errlen)
{
	const struct registry_schema *rs;
	const char *body;
	size_t body_len;
	uint32_t id;
	int rc;

	if (registry_frame_parse(*buf, *len, &id, &body, &body_len, err, errlen) < 0)
		return -1;
	rc = registry_schema_get(reg, id, &rs, err, errlen);
	if (rc != REGISTRY_OK)
		return rc == REGISTRY_DATA ? -1 : rc == REGISTRY_FATAL ? DECODE_FATAL : DECODE_RETRY;
	if (rs->type != REGISTRY_JSON) {
		snprintf(err, errlen, "schema id %u is a%s schema, not a JSON Schema; is the topic written with "
			 "another serializer?", id, rs->type == REGISTRY_AVRO ? "n Avro" : " Protobuf");
		return -1;
	}
	*buf = body;
	*len = body_len;
	return 0;
}

int decoder_decode(struct decoder *dec, const char *buf, size_t len, struct decode_row *row, char *err,
		   size_t errlen)
{
	if (dec->json != NULL && dec->json_reg != NULL) {
		int rc = decoder_json_unframe(dec->json_reg, &buf, &len, err, errlen);

		if (rc != 0)
			return rc;
	}
	if (dec->json != NULL)
		return json_decoder_decode(dec->json, buf, len, row, err, errlen);
	if (dec->avro != NULL)
		return avro_decoder_decode(dec->avro, buf, len, row, err, errlen);
	if (dec->pb != NULL)
		return pb_decoder_decode(dec->pb, buf, len, row, err, errlen);
	return text_decoder_decode(dec->text, buf, len, row, err, errlen);
}

struct row_decoder {
	struct decoder *key;   /* NULL without KEY */
	struct decoder *value; /* NULL without VALUE */
	size_t nkey, nvalue;
	bool meta;
	struct decode_field *fields; /* nkey + nvalue + meta */
	size_t nfields;
	struct textbuf meta_text;
};

void row_decoder_free(struct row_decoder *rd)
{
	if (rd == NULL)
		return;
	decoder_free(rd->key);
	decoder_free(rd->value);
	free(rd->fields);
	textbuf_free(&rd->meta_text);
	free(rd);
}

struct row_decoder *row_decoder_new(const struct jobspec *spec, char *err, size_t errlen)
{
	struct row_decoder *rd = calloc(1, sizeof(*rd));
	char sub[1024];

	if (rd == NULL)
		goto oom;
	textbuf_init(&rd->meta_text, DECODE_ROW_MAX);
	if (spec->key.present) {
		rd->key = decoder_new(&spec->key, sub, sizeof(sub));
		if (rd->key == NULL) {
			snprintf(err, errlen, "KAFKA.INPUT.KEY: %s", sub);
			goto fail;
		}
		rd->nkey = spec->key.ncolumns;
	}
	if (spec->value.present) {
		rd->value = decoder_new(&spec->value, sub, sizeof(sub));
		if (rd->value == NULL) {
			snprintf(err, errlen, "KAFKA.INPUT.VALUE: %s", sub);
			goto fail;
		}
		rd->nvalue = spec->value.ncolumns;
	}
	if (rd->key == NULL && rd->value == NULL) {
		snprintf(err, errlen, "KAFKA.INPUT needs VALUE (or KEY): list the message's columns and their FORMAT");
		goto fail;
	}
	rd->meta = spec->meta_present;
	rd->nfields = rd->nkey + rd->nvalue + (rd->meta ? 1 : 0);
	rd->fields = calloc(rd->nfields, sizeof(*rd->fields));
	if (rd->fields == NULL)
		goto oom;
	return rd;

oom:
	snprintf(err, errlen, "out of memory");
fail:
	row_decoder_free(rd);
	return NULL;
}

size_t row_decoder_ncolumns(const struct row_decoder *rd)
{
	return rd->nfields;
}

/* Copies a part's fields into the row; a decoder always gives its column count. */
static int row_decoder_take(struct decode_field *dst, size_t n, const struct decode_row *part, const char *what,
			    char *err, size_t errlen)
{
	if (part->nfields != n) {
		snprintf(err, errlen, "%s: decoded %zu columns, expected %zu", what, part->nfields, n);
		return -1;
	}
	memcpy(dst, part->fields, n * sizeof(*dst));
	return 0;
}

int row_decoder_decode(struct row_decoder *rd, const struct decode_msg *m, struct decode_row *row, char *err,
		       size_t errlen)
{
	struct decode_row part;
	char sub[640];
	size_t i;

	row->fields = rd->fields;
	row->nfields = 0;
	if (rd->key != NULL) {
		if (m->key == NULL) {
			for (i = 0; i < rd->nkey; i++) {
				rd->fields[i].ptr = NULL;
				rd->fields[i].len = 0;
				rd->fields[i].is_null = true;
			}
		} else {
			int rc = decoder_decode(rd->key, m->key, m->key_len, &part, sub, sizeof(sub));

			if (rc < 0) {
				snprintf(err, errlen, "KEY: %s", sub);
				return rc;
			}
			if (row_decoder_take(rd->fields, rd->nkey, &part, "KEY", err, errlen) < 0)
				return -1;
		}
	}
	if (rd->value != NULL) {
		if (m->value == NULL) {
			snprintf(err, errlen, "VALUE: the message has no value (a tombstone); KAFKA.INPUT.VALUE expects one");
			return -1;
		}
		int rc = decoder_decode(rd->value, m->value, m->value_len, &part, sub, sizeof(sub));

		if (rc < 0) {
			snprintf(err, errlen, "VALUE: %s", sub);
			return rc;
		}
		if (row_decoder_take(rd->fields + rd->nkey, rd->nvalue, &part, "VALUE", err, errlen) < 0)
			return -1;
	}
	if (rd->meta) {
		struct decode_field *f = &rd->fields[rd->nkey + rd->nvalue];

		if (decode_meta_json(&rd->meta_text, m->topic, m->partition, m->offset, m->has_timestamp,
				     m->timestamp_ms, m->key, m->key_len, sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "META: %s", sub);
			return -1;
		}
		f->ptr = rd->meta_text.data;
		f->len = rd->meta_text.len;
		f->is_null = false;
	}
	row->nfields = rd->nfields;
	return 0;
}
