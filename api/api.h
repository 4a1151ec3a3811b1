/* The REST API and the web status page, served by civetweb.
 *
 * api_server_start() listens on `listen` ("HOST:PORT") and serves /api/v1/...,
 * /healthz and / (web/).  Request handlers read and write the store; after a
 * change to a job's desired state they call ops->wake(ops->ctx) so that the
 * supervisor reconciles at once instead of at its next tick.
 *
 * The store is borrowed: it must outlive the server.
 */
#ifndef SS_API_H
#define SS_API_H

#include <stddef.h>

#include "store.h"

struct api_ops {
	void (*wake)(void *ctx);
	void *ctx;
	/* streamworker, run as `streamworker --check` to check a job against its
	 * database (validate, dry run, UPDATE/MERGE keys at creation). */
	const char *worker_path;
};

struct api_server;

int api_server_start(struct store *st, const char *listen, const struct api_ops *ops,
		     struct api_server **out, char *err, size_t errlen);
void api_server_stop(struct api_server *srv);

#endif
