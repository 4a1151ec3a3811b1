/* FORMAT protobuf: loading a FileDescriptorSet (worker/pbdesc.c) and decoding
 * with it.  The input is a 2-byte big-endian length L, L bytes of descriptor
 * set, then a message of the set's first type (other than map entries),
 * every field a column: names and enum values from the set must not turn a
 * row into invalid UTF-8 or invalid JSON. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "fuzz_check.h"
#include "pbdesc.h"
#include "textbuf.h"

#define FUZZ_COLS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_pool *pool = NULL;
	const struct pb_message *msg = NULL;
	struct js_column cols[FUZZ_COLS];
	bool is_json[FUZZ_COLS];
	struct js_input in;
	struct decode_row row;
	struct decoder *dec;
	struct textbuf tb;
	char err[512];
	size_t desc_len, ncols;

	if (size < 2)
		return 0;
	desc_len = (size_t)data[0] << 8 | data[1];
	if (desc_len > size - 2)
		desc_len = size - 2;
	if (pb_pool_load(data + 2, desc_len, &pool, err, sizeof(err)) < 0)
		return 0;
	for (size_t m = 0; m < pool->nmessages && msg == NULL; m++)
		if (!pool->messages[m]->map_entry && pool->messages[m]->nfields > 0)
			msg = pool->messages[m];
	if (msg == NULL)
		goto out;
	ncols = msg->nfields < FUZZ_COLS ? msg->nfields : FUZZ_COLS;
	for (size_t f = 0; f < ncols; f++) {
		cols[f].name = msg->fields[f].name;
		cols[f].type = NULL;
		is_json[f] = msg->fields[f].repeated || msg->fields[f].map ||
			     msg->fields[f].type == PB_TYPE_MESSAGE || msg->fields[f].type == PB_TYPE_GROUP;
	}
	textbuf_init(&tb, (size_t)1 << 24);
	textbuf_base64(&tb, data + 2, desc_len);
	textbuf_putc(&tb, '\0');
	memset(&in, 0, sizeof(in));
	in.present = true;
	in.format = JS_FORMAT_PROTOBUF;
	in.protobuf_descriptor = tb.data;
	in.protobuf_message = msg->full_name;
	in.columns = cols;
	in.ncolumns = ncols;
	dec = decoder_new(&in, err, sizeof(err));
	if (dec != NULL) {
		if (decoder_decode(dec, (const char *)data + 2 + desc_len, size - 2 - desc_len, &row, err,
				   sizeof(err)) == 0)
			fuzz_check_row(&row, is_json, ncols);
		decoder_free(dec);
	}
	textbuf_free(&tb);
out:
	pb_pool_free(pool);
	return 0;
}
