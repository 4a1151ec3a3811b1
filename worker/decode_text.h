/* FORMAT delimited and csv: fields separated by DELIMITER, one per COLUMN.
 *
 * Delimited: DELIMITER is any non-empty string; QUOTE (optional) encloses a
 * field, a doubled QUOTE inside stands for itself; ESCAPE (optional) takes the
 * next character literally, inside and outside quotes.  CSV: DELIMITER one
 * character (default ","), QUOTE default '"', ESCAPE only inside quotes, as in
 * PostgreSQL's COPY CSV.  An empty unquoted field is NULL, and so is an
 * unquoted NULL_STRING when one is given; a quoted empty field is the empty
 * string.  One newline
 * (or CR LF) at the end of the message is dropped.
 *
 * Fields without quotes or escapes point into the message; the others into
 * the decoder's scratch space (unquoting only shrinks text, so it never holds
 * more than one message).  Nothing is allocated per field.
 *
 * Data errors say what is wrong and where: wrong field count, a quote never
 * closed, a character after a closing quote, an escape at the end, invalid
 * UTF-8 or NUL (byte offset in the message), a message over
 * DECODE_MESSAGE_MAX.
 */
#ifndef SS_WORKER_DECODE_TEXT_H
#define SS_WORKER_DECODE_TEXT_H

#include <stddef.h>

#include "jobspec.h"
#include "row.h"

struct text_decoder;

/* Returns NULL with err filled on bad options (no FORMAT, no columns, an empty
 * DELIMITER, a multi-character QUOTE, a QUOTE inside the DELIMITER...): a
 * configuration problem.  Copies what it needs from in. */
struct text_decoder *text_decoder_new(const struct js_input *in, char *err, size_t errlen);
void text_decoder_free(struct text_decoder *td);

/* Decodes one message into *row, valid until the next call and while buf lives. */
int text_decoder_decode(struct text_decoder *td, const char *buf, size_t len, struct decode_row *row, char *err,
			size_t errlen);

#endif
