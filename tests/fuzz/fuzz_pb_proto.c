/* .proto text compiled (worker/pbproto.c), as a schema registry hands it
 * over: whatever compiles must be a descriptor set pbdesc.c loads, and every
 * message the indexes can name must be in it. */
#include <stdint.h>
#include <stdlib.h>

#include "pbdesc.h"
#include "pbproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pbproto *pp = NULL;
	struct pb_pool *pool = NULL;
	char err[512];

	if (pbproto_compile((const char *)data, size, &pp, err, sizeof(err)) < 0)
		return 0;
	/* A set of our own making that pbdesc refuses is a bug, except for
	 * what only the loader checks (duplicate names, enum without values,
	 * map key types): those are the schema's errors. */
	if (pb_pool_load(pp->set, pp->set_len, &pool, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < pp->nnames; i++)
			if (pb_pool_message(pool, pp->names[i]) == NULL)
				__builtin_trap();
	}
	pb_pool_free(pool);
	pbproto_free(pp);
	return 0;
}
