/* A request body from bytes to a checked JSON object, without civetweb: the
 * part of api_req_body a fuzzer can drive (tests/fuzz/fuzz_api_body.c).
 * Internal to api/.
 */
#ifndef SS_API_BODY_H
#define SS_API_BODY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define API_JSON_DEPTH_MAX 16 /* our bodies need 3 */

struct api_body_error {
	int status;        /* 400 (not a JSON object) or 422 (a bad string) */
	char field[256];   /* the field a 422 names ("fields[2].name"), or "" */
	char message[512];
};

/* buf[0..len) as a JSON object whose every string and member name is UTF-8
 * without NUL (caller owns it; api_row_free wipes secrets), or NULL with
 * *bad filled.  buf is modified: each \u0000 escape inside a string is
 * overwritten before parsing (see api_body.c). */
cJSON *api_body_parse(char *buf, size_t len, struct api_body_error *bad);

/* How deep the JSON in buf nests, counted without parsing: cJSON parses,
 * copies and frees by recursion, and civetweb's threads have small stacks. */
size_t api_json_depth(const char *buf, size_t len);

#endif
