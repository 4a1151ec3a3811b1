/* Base64 (RFC 4648), the one codec of every process: the job model checks
 * DESCRIPTOR with it, the worker decodes DESCRIPTOR and writes bytes as base64
 * (protobuf bytes inside JSON, META's key_base64, --errors' key_base64 and
 * value_base64) with it, so all of them agree on the text.
 *
 * Encoding: the standard alphabet with "=" padding, no line breaks.
 *
 * Decoding accepts the standard and the URL-safe alphabet (sections 4 and 5,
 * mixed too), with or without "=" padding, and ignores space, tab, CR and LF
 * anywhere (YAML may fold a long value).  Refused: any other character, a
 * digit after a "=", more than two "=", and a single digit left over at the
 * end (6 bits cannot come from whole bytes: the text was cut).  Leftover bits
 * of a last partial group are dropped, as most decoders do.
 */
#ifndef SS_B64_H
#define SS_B64_H

#include <stddef.h>

/* The value of base64 digit c in the standard or the URL-safe alphabet
 * (RFC 4648 sections 4 and 5), or -1 when c is not one. */
int b64_digit_value(unsigned char c);

/* Length of the base64 text of n bytes (padding included, no NUL), or
 * SIZE_MAX when it would not fit in a size_t. */
size_t b64_encoded_len(size_t n);

/* Writes the base64 text of p[0..n) to out, which has room for
 * b64_encoded_len(n) bytes; no NUL is written.  Returns b64_encoded_len(n). */
size_t b64_encode(char *out, const void *p, size_t n);

/* Most bytes that n characters of base64 text can stand for: room enough for
 * b64_decode()'s output. */
size_t b64_decoded_max(size_t n);

/* Decodes base64 text s[0..n) (no NUL terminator assumed) into out, which has
 * room for b64_decoded_max(n) bytes, or is NULL to only check the text and
 * count its bytes.  Returns 0 with *outlen set, or -1 with err filled ("not
 * valid base64: character '!' at position 4", "... the text is truncated")
 * and, when errpos is not NULL, *errpos set to the offending character's
 * position (n when the text is cut short); out may then hold part of the
 * bytes.  err may be NULL when errlen is 0. */
int b64_decode(const char *s, size_t n, void *out, size_t *outlen, size_t *errpos, char *err, size_t errlen);

#endif
