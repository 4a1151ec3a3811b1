/* FORMAT protobuf: decoding wire bytes (worker/decode_pb.c, pbwire.c,
 * pbwkt.c) with the unit tests' descriptor sets (the second with
 * google.protobuf's well-known types).  The first byte chooses the message
 * type and whether the columns are text or json; the rest is the message. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "fuzz_check.h"
#include "pbdesc.h"
#include "textbuf.h"

#include "../unit/data/test_pb_desc.inc"
#include "../unit/data/test_pb_wkt_desc.inc"

#define FUZZ_COLS 64
#define FUZZ_TYPES 64

struct fuzz_pb_type {
	struct decoder *dec;
	size_t ncolumns;
	bool is_json[FUZZ_COLS];
};

static struct fuzz_pb_type fuzz_types[2][FUZZ_TYPES];
static size_t fuzz_ntypes;

/* Whether a message field's text column holds JSON: a message, except the
 * well-known types that are plain values as text. */
static bool fuzz_pb_json_message(const struct pb_message *msg)
{
	return msg == NULL || msg->wkt == PB_WKT_NONE || msg->wkt == PB_WKT_STRUCT || msg->wkt == PB_WKT_VALUE ||
	       msg->wkt == PB_WKT_LIST || msg->wkt == PB_WKT_ANY;
}

/* One decoder per message type of the set (map entries left out) and column
 * flavour, every field of the type a column. */
static void fuzz_pb_init_set(const unsigned char *desc, size_t desc_len)
{
	struct pb_pool *pool = NULL;
	struct textbuf tb;
	char err[512];

	if (pb_pool_load(desc, desc_len, &pool, err, sizeof(err)) < 0)
		abort();
	textbuf_init(&tb, (size_t)1 << 24);
	textbuf_base64(&tb, desc, desc_len);
	textbuf_putc(&tb, '\0');
	for (size_t m = 0; m < pool->nmessages && fuzz_ntypes < FUZZ_TYPES; m++) {
		const struct pb_message *msg = pool->messages[m];
		struct js_column cols[FUZZ_COLS];
		struct js_input in;

		if (msg->map_entry || msg->nfields == 0)
			continue;
		for (int flavour = 0; flavour < 2; flavour++) {
			struct fuzz_pb_type *t = &fuzz_types[flavour][fuzz_ntypes];

			memset(&in, 0, sizeof(in));
			in.present = true;
			in.format = JS_FORMAT_PROTOBUF;
			in.protobuf_descriptor = tb.data;
			in.protobuf_message = msg->full_name;
			t->ncolumns = msg->nfields < FUZZ_COLS ? msg->nfields : FUZZ_COLS;
			for (size_t f = 0; f < t->ncolumns; f++) {
				cols[f].name = msg->fields[f].name;
				cols[f].type = flavour ? "jsonb" : NULL;
				t->is_json[f] = flavour || msg->fields[f].repeated || msg->fields[f].map ||
						msg->fields[f].type == PB_TYPE_GROUP ||
						(msg->fields[f].type == PB_TYPE_MESSAGE &&
						 fuzz_pb_json_message(msg->fields[f].message));
			}
			in.columns = cols;
			in.ncolumns = t->ncolumns;
			t->dec = decoder_new(&in, err, sizeof(err));
			if (t->dec == NULL)
				abort();
		}
		fuzz_ntypes++;
	}
	textbuf_free(&tb);
	pb_pool_free(pool);
}

static void fuzz_pb_init(void)
{
	fuzz_pb_init_set(test_pb_desc, test_pb_desc_len);
	fuzz_pb_init_set(test_pb_wkt_desc, test_pb_wkt_desc_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pb_type *t;
	struct decode_row row;
	char err[512];

	if (fuzz_ntypes == 0)
		fuzz_pb_init();
	if (size < 1)
		return 0;
	t = &fuzz_types[(data[0] >> 7) & 1][data[0] % fuzz_ntypes];
	if (decoder_decode(t->dec, (const char *)data + 1, size - 1, &row, err, sizeof(err)) == 0)
		fuzz_check_row(&row, t->is_json, t->ncolumns);
	return 0;
}
