#include "api_body.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

static void api_body_fail(struct api_body_error *bad, int status, const char *field,
			  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void api_body_fail(struct api_body_error *bad, int status, const char *field,
			  const char *fmt, ...)
{
	va_list ap;

	bad->status = status;
	snprintf(bad->field, sizeof(bad->field), "%s", field != NULL ? field : "");
	va_start(ap, fmt);
	vsnprintf(bad->message, sizeof(bad->message), fmt, ap);
	va_end(ap);
}

size_t api_json_depth(const char *buf, size_t len)
{
	size_t depth = 0, max = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (in_string) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_string = false;
		} else if (ch == '"') {
			in_string = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth > max)
				max = depth;
		} else if ((ch == ']' || ch == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/* cJSON turns \u0000 into a NUL that ends the C string it stores ("a\u0000b"
 * would be stored as "a").  Before parsing, each \u0000 escape inside a
 * string becomes three overlong NULs (C0 80, six bytes like the escape),
 * which no valid UTF-8 holds: the string check below then finds it, in the
 * field it belongs to. */
static void api_json_mark_nul(char *buf, size_t len)
{
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		if (!in_string) {
			in_string = buf[i] == '"';
		} else if (buf[i] == '"') {
			in_string = false;
		} else if (buf[i] == '\\' && i + 1 < len) {
			if (buf[i + 1] == 'u' && i + 6 <= len && memcmp(buf + i + 2, "0000", 4) == 0) {
				memcpy(buf + i, "\xC0\x80\xC0\x80\xC0\x80", 6);
				i += 5;
			} else {
				i++; /* the escaped character */
			}
		}
	}
}

/* path + ".name" or path + "[i]" into out (truncated when long). */
static void api_json_path(char *out, size_t outlen, const char *path, const cJSON *item, int index)
{
	if (item->string != NULL)
		snprintf(out, outlen, "%s%s%s", path, path[0] ? "." : "",
			 item->string[0] ? item->string : "\"\""); /* {"": ...} */
	else
		snprintf(out, outlen, "%s[%d]", path, index);
}

/* 0, or -1 with *bad naming the first string (or member name) that is not
 * UTF-8 or holds a NUL.  Recursion is bounded by API_JSON_DEPTH_MAX. */
static int api_json_check_strings(const cJSON *node, const char *path,
				  struct api_body_error *bad)
{
	const cJSON *item;
	char sub[256];
	int index = 0;

	cJSON_ArrayForEach(item, node) {
		if (item->string != NULL) {
			size_t klen = strlen(item->string);

			if (utf8_valid_prefix(item->string, klen) != klen) {
				api_body_fail(bad, 422, path,
					      "a member name in %s is not valid UTF-8 (or holds "
					      "\\u0000): names are UTF-8 text",
					      path[0] ? path : "the body");
				return -1;
			}
		}
		api_json_path(sub, sizeof(sub), path, item, index++);
		if (cJSON_IsString(item) && item->valuestring != NULL) {
			const char *v = item->valuestring;
			size_t len = strlen(v), ok = utf8_valid_prefix(v, len);

			if (ok != len) {
				if ((unsigned char)v[ok] == 0xC0 && ok + 1 < len &&
				    (unsigned char)v[ok + 1] == 0x80)
					api_body_fail(bad, 422, sub,
						      "%s holds a NUL character (\\u0000, or its "
						      "overlong form C0 80); text fields cannot",
						      sub);
				else
					api_body_fail(bad, 422, sub,
						      "%s is not valid UTF-8 (byte %zu of the value is "
						      "0x%02x: invalid, overlong or a surrogate)",
						      sub, ok, (unsigned char)v[ok]);
				return -1;
			}
		} else if ((cJSON_IsObject(item) || cJSON_IsArray(item)) &&
			   api_json_check_strings(item, sub, bad) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Wipes every string under node: a refused body may still hold a password. */
static void api_body_wipe(cJSON *node)
{
	cJSON *item;

	cJSON_ArrayForEach(item, node) {
		if (cJSON_IsString(item) && item->valuestring != NULL)
			explicit_bzero(item->valuestring, strlen(item->valuestring));
		else if (cJSON_IsObject(item) || cJSON_IsArray(item))
			api_body_wipe(item);
	}
}

cJSON *api_body_parse(char *buf, size_t len, struct api_body_error *bad)
{
	const char *end = NULL;
	cJSON *body;

	memset(bad, 0, sizeof(*bad));
	/* cJSON takes a raw NUL inside a string and stops the C string there,
	 * like \u0000; JSON text has no place for one. */
	if (memchr(buf, '\0', len) != NULL) {
		api_body_fail(bad, 400, NULL, "the body holds a NUL byte (at byte %zu): not JSON text",
			      (size_t)((const char *)memchr(buf, '\0', len) - buf));
		return NULL;
	}
	if (api_json_depth(buf, len) > API_JSON_DEPTH_MAX) {
		api_body_fail(bad, 400, NULL, "the body nests deeper than %d levels",
			      API_JSON_DEPTH_MAX);
		return NULL;
	}
	api_json_mark_nul(buf, len);
	body = cJSON_ParseWithLengthOpts(buf, len, &end, false);
	if (body == NULL) {
		if (len == 0)
			api_body_fail(bad, 400, NULL, "the request needs a JSON object as its body");
		else
			api_body_fail(bad, 400, NULL, "the body is not valid JSON (near byte %zu)",
				      end != NULL && end >= buf ? (size_t)(end - buf) : (size_t)0);
		return NULL;
	}
	while (end != NULL && end < buf + len && isspace((unsigned char)*end))
		end++;
	if (end != NULL && end < buf + len) {
		api_body_fail(bad, 400, NULL, "the body has data after the JSON value (byte %zu)",
			      (size_t)(end - buf));
		goto fail;
	}
	if (!cJSON_IsObject(body)) {
		api_body_fail(bad, 400, NULL, "the body must be a JSON object");
		goto fail;
	}
	if (api_json_check_strings(body, "", bad) < 0)
		goto fail;
	return body;
fail:
	api_body_wipe(body);
	cJSON_Delete(body);
	return NULL;
}
