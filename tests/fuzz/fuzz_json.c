/* FORMAT json (worker/decode_json.c): the whole value into one json column, or
 * top-level fields into columns.  The first byte chooses, the rest is the
 * message. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "decode.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct js_column whole[1] = { { "doc", "jsonb" } };
	struct js_column fields[5] = { { "id", "bigint" }, { "name", NULL }, { "tags", "json" },
				       { "\xc3\xa9t\xc3\xa9", "text" }, { "n", "numeric" } };
	bool whole_json[1] = { true }, fields_json[5] = { false, false, true, false, false };
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
	in.format = JS_FORMAT_JSON;
	in.columns = is_whole ? whole : fields;
	in.ncolumns = is_whole ? 1 : 5;
	dec = decoder_new(&in, err, sizeof(err));
	if (dec == NULL)
		__builtin_trap(); /* these options are good: refusing them is a bug */
	if (decoder_decode(dec, (const char *)data + 1, size - 1, &row, err, sizeof(err)) == 0)
		fuzz_check_row(&row, is_whole ? whole_json : fields_json, in.ncolumns);
	decoder_free(dec);
	return 0;
}
