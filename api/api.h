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

#include <stdbool.h>
#include <stddef.h>

#include "api_conf.h"
#include "store.h"

struct api_server;

/* sec may be NULL: no token, plain HTTP, default limits. */
int api_server_start(struct store *st, const char *listen, const struct api_ops *ops,
		     const struct api_security *sec, struct api_server **out, char *err, size_t errlen);
void api_server_stop(struct api_server *srv);

/* listen ("HOST:PORT") reaches this machine only: 127.0.0.0/8, ::1, or a
 * name (localhost) whose every address is one of those.  "*:PORT" and
 * ":PORT" (every interface) are not. */
bool api_listen_is_loopback(const char *listen);

#endif
