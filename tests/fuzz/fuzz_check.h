/* What every decoder fuzz target checks of a row it was given: each field is
 * valid UTF-8 without NUL (PostgreSQL's text input would refuse it), a field
 * of a json/jsonb column is valid JSON, and the row becomes a COPY line.  A
 * violation aborts, which libFuzzer reports as a crash with its input. */
#ifndef SS_FUZZ_CHECK_H
#define SS_FUZZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "row.h"

void fuzz_check_row(const struct decode_row *row, const bool *is_json, size_t ncolumns);

#endif
