/* The worker->controller status line (common/proto.c), as the supervisor
 * reads it from a worker's fd 3. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct proto_msg msg;

	if (proto_parse_line((const char *)data, size, &msg) == 0) {
		if (msg.nlag > PROTO_LAG_MAX || memchr(msg.message, '\0', sizeof(msg.message)) == NULL ||
		    memchr(msg.err_class, '\0', sizeof(msg.err_class)) == NULL) {
			fprintf(stderr, "proto_parse_line left a field unterminated or too long\n");
			abort();
		}
	}
	return 0;
}
