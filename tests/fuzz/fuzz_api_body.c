/* The API's body parser (api/api_body.c): whatever the bytes, either a JSON
 * object comes back whose every string and member name is UTF-8 without NUL
 * (so that the API never stores or echoes text a strict client cannot read),
 * or a 400 / 422 with a message; a 422 names a field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_body.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_body_error bad;
	char *buf = malloc(size + 1); /* the parser writes into its input */
	cJSON *body;
	char *text;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	body = api_body_parse(buf, size, &bad);
	if (body == NULL) {
		if ((bad.status != 400 && bad.status != 422) || bad.message[0] == '\0' ||
		    (bad.status == 422 && bad.field[0] == '\0' &&
		     strstr(bad.message, "member name") == NULL))
			__builtin_trap();
	} else {
		if (!cJSON_IsObject(body))
			__builtin_trap();
		text = cJSON_PrintUnformatted(body);
		/* what a GET would send back: UTF-8 throughout, no NUL inside */
		if (text != NULL && utf8_valid_prefix(text, strlen(text)) != strlen(text))
			__builtin_trap();
		free(text);
		cJSON_Delete(body);
	}
	free(buf);
	return 0;
}
