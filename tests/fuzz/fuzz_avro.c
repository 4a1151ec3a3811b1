/* FORMAT avro (worker/decode_avro.c) with a local schema of every Avro type
 * and logical type: the whole record into one jsonb column, or fields into
 * columns.  The first byte chooses (bit 0: whole; bit 1: BYTES_TO_BASE64),
 * the rest is the message. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "decode.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/fuzz/make_corpus.py writes seeds with this schema (AVRO_SCHEMA). */
static const char schema[] =
	"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"f\",\"fields\":["
	"{\"name\":\"l\",\"type\":\"long\"},"
	"{\"name\":\"s\",\"type\":[\"null\",\"string\"]},"
	"{\"name\":\"d\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":38,\"scale\":9}},"
	"{\"name\":\"t\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
	"{\"name\":\"day\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
	"{\"name\":\"tm\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
	"{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":[\"null\",\"double\",\"R\"]}},"
	"{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}}},"
	"{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":12,\"logicalType\":\"duration\"}},"
	"{\"name\":\"b\",\"type\":\"bytes\"},"
	"{\"name\":\"fl\",\"type\":\"float\"},"
	"{\"name\":\"ok\",\"type\":\"boolean\"},"
	"{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
	"{\"name\":\"fd\",\"type\":{\"type\":\"fixed\",\"name\":\"G\",\"size\":4,\"logicalType\":\"decimal\","
	"\"precision\":9,\"scale\":2}}"
	"]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct js_column whole[1] = { { "doc", "jsonb" } };
	struct js_column fields[8] = { { "l", "bigint" }, { "s", NULL }, { "d", "numeric" }, { "t", "timestamptz" },
				       { "a", "jsonb" },  { "m", NULL },  { "fx", "interval" }, { "ts", "json" } };
	bool whole_json[1] = { true }, fields_json[8] = { false, false, false, false, true, false, false, true };
	struct js_input in;
	struct decode_row row;
	struct decoder *dec;
	char err[512];
	bool is_whole;

	if (size < 1)
		return 0;
	is_whole = data[0] & 1;
	memset(&in, 0, sizeof(in));
	in.present = true;
	in.format = JS_FORMAT_AVRO;
	in.avro_schema = (char *)schema;
	in.avro_bytes_to_base64 = (data[0] & 2) != 0;
	in.columns = is_whole ? whole : fields;
	in.ncolumns = is_whole ? 1 : 8;
	dec = decoder_new(&in, err, sizeof(err));
	if (dec == NULL)
		__builtin_trap(); /* these options are good: refusing them is a bug */
	if (decoder_decode(dec, (const char *)data + 1, size - 1, &row, err, sizeof(err)) == 0)
		fuzz_check_row(&row, is_whole ? whole_json : fields_json, in.ncolumns);
	decoder_free(dec);
	return 0;
}
