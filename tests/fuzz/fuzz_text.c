/* FORMAT delimited and csv (worker/decode.c).  The first two bytes choose the
 * options, the rest is the message. */
#include <stdint.h>
#include <string.h>

#include "decode.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const delims[] = { ",", "|", "\t", "||", ";;;", "\xc3\xa9" };
	static const char *const quotes[] = { "\"", "'" };
	static const char *const escapes[] = { "\"", "\\" };
	static const char *const nulls[] = { NULL, "", "\\N", "NULL" };
	struct js_column cols[4] = { { "a", NULL }, { "b", "text" }, { "c", "int" }, { "d", NULL } };
	struct js_input in;
	struct decode_row row;
	struct decoder *dec;
	char err[512];

	if (size < 2)
		return 0;
	memset(&in, 0, sizeof(in));
	in.present = true;
	in.format = (data[0] & 1) ? JS_FORMAT_CSV : JS_FORMAT_DELIMITED;
	in.delimiter = (char *)delims[(data[0] >> 1) % 6];
	if (in.format == JS_FORMAT_CSV) {
		in.quote = (char *)quotes[(data[0] >> 4) & 1];
		in.escape = (char *)escapes[(data[0] >> 5) & 1];
		in.null_string = (char *)nulls[(data[0] >> 6) & 3];
	}
	in.columns = cols;
	in.ncolumns = 1 + data[1] % 4;
	dec = decoder_new(&in, err, sizeof(err));
	if (dec == NULL)
		return 0; /* an option this decoder refuses (e.g. a long CSV delimiter) */
	if (decoder_decode(dec, (const char *)data + 2, size - 2, &row, err, sizeof(err)) == 0)
		fuzz_check_row(&row, NULL, in.ncolumns);
	decoder_free(dec);
	return 0;
}
