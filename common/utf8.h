/* Strict UTF-8 (RFC 3629), one implementation for every process: the API's
 * body check, the job model's wizard fields, the log's JSON lines and the
 * worker's decoders accept exactly the same text.
 *
 * Refused: stray continuation bytes, truncated sequences, overlong forms
 * (C0 80 for NUL, E0 80 80...), UTF-16 surrogates (ED A0 80..ED BF BF) and
 * anything above U+10FFFF.  NUL is a valid one-byte sequence here; callers
 * that refuse it check for it.
 */
#ifndef SS_UTF8_H
#define SS_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1 to 4) of the valid UTF-8 sequence that starts buf (at most len
 * bytes are read), or 0 when there is none. */
size_t utf8_seq_len(const char *buf, size_t len);

/* Length of the longest prefix of buf[0..len) that is valid UTF-8: len when
 * all of it is, else the offset of the first bad byte. */
size_t utf8_valid_prefix(const char *buf, size_t len);

/* As utf8_valid_prefix(), but NUL ends the text too (PostgreSQL text, JSON
 * and C strings cannot hold it): the offset of the first byte that is not
 * valid UTF-8 or is NUL, or len if there is none.  *is_nul says which problem
 * it is. */
size_t utf8_text_prefix(const char *buf, size_t len, bool *is_nul);

#endif
