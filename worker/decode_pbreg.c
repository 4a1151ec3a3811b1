#include "decode_pbreg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_pb.h"
#include "pbproto.h"
#include "registry.h"

/* Message indexes a frame may give, at most (nesting depth of the type). */
#define PBREG_INDEXES_MAX 32
/* Types decoded, at most; beyond it the oldest is not kept. */
#define PBREG_TYPES_MAX 1024

struct pbreg_type {
	uint32_t id;
	int32_t idx[PBREG_INDEXES_MAX];
	size_t nidx;
	struct pb_decoder *pd; /* NULL: err says why the type cannot be decoded */
	char *err;
};

struct pbreg_schema {
	uint32_t id;
	struct pbproto *pp; /* NULL: err says why */
	char *err;
};

struct pbreg_decoder {
	struct js_input in; /* columns only (copied) */
	struct registry *reg;
	struct pbreg_type *types;
	size_t ntypes;
	struct pbreg_schema *schemas;
	size_t nschemas;
};

void pbreg_decoder_free(struct pbreg_decoder *rd)
{
	if (rd == NULL)
		return;
	for (size_t i = 0; i < rd->in.ncolumns; i++) {
		free(rd->in.columns[i].name);
		free(rd->in.columns[i].type);
	}
	free(rd->in.columns);
	for (size_t i = 0; i < rd->ntypes; i++) {
		pb_decoder_free(rd->types[i].pd);
		free(rd->types[i].err);
	}
	free(rd->types);
	for (size_t i = 0; i < rd->nschemas; i++) {
		pbproto_free(rd->schemas[i].pp);
		free(rd->schemas[i].err);
	}
	free(rd->schemas);
	registry_free(rd->reg);
	free(rd);
}

struct pbreg_decoder *pbreg_decoder_new(const struct js_input *in, char *err, size_t errlen)
{
	struct pbreg_decoder *rd = calloc(1, sizeof(*rd));

	if (rd == NULL)
		goto oom;
	if (in->ncolumns == 0) {
		snprintf(err, errlen, "COLUMNS is empty: name the message fields to load");
		goto fail;
	}
	rd->in.present = true;
	rd->in.format = JS_FORMAT_PROTOBUF;
	rd->in.columns = calloc(in->ncolumns, sizeof(*rd->in.columns));
	if (rd->in.columns == NULL)
		goto oom;
	rd->in.ncolumns = in->ncolumns;
	for (size_t i = 0; i < in->ncolumns; i++) {
		if ((in->columns[i].name != NULL && (rd->in.columns[i].name = strdup(in->columns[i].name)) == NULL) ||
		    (in->columns[i].type != NULL && (rd->in.columns[i].type = strdup(in->columns[i].type)) == NULL))
			goto oom;
	}
	rd->reg = registry_new(in->registry_addr, in->registry_user, in->registry_password, err, errlen);
	if (rd->reg == NULL)
		goto fail;
	return rd;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	pbreg_decoder_free(rd);
	return NULL;
}

/* Compiles rs with the files it references (fetched from the registry,
 * google/protobuf's built in) into s->pp, or s->err.  Returns 0, or
 * DECODE_RETRY / DECODE_FATAL when a reference could not be fetched for a
 * reason that is not the schema's. */
static int pbreg_compile(struct pbreg_decoder *rd, const struct registry_schema *rs, struct pbreg_schema *s,
			 char *err, size_t errlen)
{
	struct registry_schema *fetched[PBPROTO_FILES_MAX - 1];
	const char *texts[PBPROTO_FILES_MAX], *names[PBPROTO_FILES_MAX];
	size_t lens[PBPROTO_FILES_MAX], n = 0;
	char sub[640], msg[800];
	int rc;

	rc = registry_fetch_refs(rd->reg, rs, fetched, names + 1, PBPROTO_FILES_MAX - 1, &n, sub, sizeof(sub));
	if (rc == REGISTRY_RETRY || rc == REGISTRY_FATAL) {
		snprintf(err, errlen, "%s", sub);
		return rc == REGISTRY_RETRY ? DECODE_RETRY : DECODE_FATAL;
	}
	if (rc != REGISTRY_OK) {
		s->err = strdup(sub);
		return 0;
	}
	texts[0] = rs->text;
	lens[0] = rs->len;
	names[0] = "the schema";
	for (size_t k = 0; k < n; k++) {
		texts[k + 1] = fetched[k]->text;
		lens[k + 1] = fetched[k]->len;
	}
	if (pbproto_compile_files(texts, lens, names, n + 1, &s->pp, sub, sizeof(sub)) < 0) {
		snprintf(msg, sizeof(msg), "schema id %u: %s", rs->id, sub);
		s->err = strdup(msg);
	}
	for (size_t k = 0; k < n; k++)
		registry_schema_free(fetched[k]);
	return 0;
}

/* The compiled schema of id (fetched and compiled once).  Returns 0, -1 (a
 * bad message: err), or DECODE_RETRY / DECODE_FATAL. */
static int pbreg_schema(struct pbreg_decoder *rd, uint32_t id, struct pbreg_schema **out, char *err,
			size_t errlen)
{
	const struct registry_schema *rs;
	struct pbreg_schema s = { id, NULL, NULL }, *grown;
	char sub[512];
	int rc;

	for (size_t i = 0; i < rd->nschemas; i++)
		if (rd->schemas[i].id == id) {
			*out = &rd->schemas[i];
			return 0;
		}
	rc = registry_schema_get(rd->reg, id, &rs, err, errlen);
	if (rc != REGISTRY_OK)
		return rc == REGISTRY_DATA ? -1 : rc == REGISTRY_FATAL ? DECODE_FATAL : DECODE_RETRY;
	if (rs->type != REGISTRY_PROTOBUF) {
		snprintf(sub, sizeof(sub), "schema id %u is a%s schema, not Protobuf; is the topic written with "
			 "another serializer?", id, rs->type == REGISTRY_AVRO ? "n Avro" : " JSON");
		s.err = strdup(sub);
	} else {
		rc = pbreg_compile(rd, rs, &s, err, errlen);
		if (rc != 0)
			return rc;
	}
	if (s.pp == NULL && s.err == NULL) {
		snprintf(err, errlen, "out of memory");
		return DECODE_RETRY;
	}
	grown = realloc(rd->schemas, (rd->nschemas + 1) * sizeof(*grown));
	if (grown == NULL) {
		pbproto_free(s.pp);
		free(s.err);
		snprintf(err, errlen, "out of memory");
		return DECODE_RETRY;
	}
	rd->schemas = grown;
	rd->schemas[rd->nschemas] = s;
	*out = &rd->schemas[rd->nschemas++];
	return 0;
}

int pbreg_decoder_decode(struct pbreg_decoder *rd, const char *buf, size_t len, struct decode_row *row, char *err,
			 size_t errlen)
{
	struct pbreg_type t = { 0 }, *found = NULL, *grown;
	struct pbreg_schema *s;
	const char *body, *name;
	size_t body_len, pos = 0;
	char sub[640];
	int rc;

	row->fields = NULL;
	row->nfields = 0;
	if (registry_frame_parse(buf, len, &t.id, &body, &body_len, err, errlen) < 0)
		return -1;
	if (registry_pb_indexes(body, body_len, &pos, t.idx, PBREG_INDEXES_MAX, &t.nidx, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < rd->ntypes && found == NULL; i++)
		if (rd->types[i].id == t.id && rd->types[i].nidx == t.nidx &&
		    memcmp(rd->types[i].idx, t.idx, t.nidx * sizeof(t.idx[0])) == 0)
			found = &rd->types[i];
	if (found == NULL) {
		if ((rc = pbreg_schema(rd, t.id, &s, err, errlen)) != 0)
			return rc;
		if (s->pp == NULL) {
			t.err = strdup(s->err);
		} else if ((name = pbproto_message_at(s->pp, t.idx, t.nidx)) == NULL) {
			snprintf(sub, sizeof(sub), "schema id %u has no message at the frame's message indexes "
				 "(%zu of them, the first %d)", t.id, t.nidx, (int)t.idx[0]);
			t.err = strdup(sub);
		} else {
			t.pd = pb_decoder_new_from_set(s->pp->set, s->pp->set_len, name, &rd->in, sub, sizeof(sub));
			if (t.pd == NULL) {
				char msg[800];

				snprintf(msg, sizeof(msg), "schema id %u, message %s: %s", t.id, name, sub);
				t.err = strdup(msg);
			}
		}
		if (t.pd == NULL && t.err == NULL) {
			snprintf(err, errlen, "out of memory");
			return DECODE_RETRY;
		}
		if (rd->ntypes == PBREG_TYPES_MAX) { /* forget the oldest */
			pb_decoder_free(rd->types[0].pd);
			free(rd->types[0].err);
			memmove(&rd->types[0], &rd->types[1], (rd->ntypes - 1) * sizeof(*rd->types));
			rd->ntypes--;
		}
		grown = realloc(rd->types, (rd->ntypes + 1) * sizeof(*grown));
		if (grown == NULL) {
			pb_decoder_free(t.pd);
			free(t.err);
			snprintf(err, errlen, "out of memory");
			return DECODE_RETRY;
		}
		rd->types = grown;
		rd->types[rd->ntypes] = t;
		found = &rd->types[rd->ntypes++];
	}
	if (found->pd == NULL) {
		snprintf(err, errlen, "%s", found->err);
		return -1;
	}
	return pb_decoder_decode(found->pd, body + pos, body_len - pos, row, err, errlen);
}
