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
	static struct js_column whole[1] = { { "doc", "jsonb" } };
	static struct js_column fields[8] = { { "l", "bigint" }, { "s", NULL }, { "d", "numeric" },
					      { "t", "timestamptz" }, { "a", "jsonb" }, { "m", NULL },
					      { "fx", "interval" }, { "ts", "json" } };
	static const bool whole_json[1] = { true },
			  fields_json[8] = { false, false, false, false, true, false, false, true };
	/* Built once per variant: the schema's parsing is not what is fuzzed. */
	static struct decoder *decs[4];
	struct decode_row row;
	char err[512];
	int v;

	if (size < 1)
		return 0;
	v = data[0] & 3;
	if (decs[v] == NULL) {
		struct js_input in;

		memset(&in, 0, sizeof(in));
		in.present = true;
		in.format = JS_FORMAT_AVRO;
		in.avro_schema = (char *)schema;
		in.avro_bytes_to_base64 = (v & 2) != 0;
		in.columns = (v & 1) ? whole : fields;
		in.ncolumns = (v & 1) ? 1 : 8;
		decs[v] = decoder_new(&in, err, sizeof(err));
		if (decs[v] == NULL)
			__builtin_trap(); /* these options are good: refusing them is a bug */
	}
	if (decoder_decode(decs[v], (const char *)data + 1, size - 1, &row, err, sizeof(err)) == 0)
		fuzz_check_row(&row, (v & 1) ? whole_json : fields_json, (v & 1) ? 1 : 8);
	return 0;
}
