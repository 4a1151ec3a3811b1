/* Which errors librdkafka reports through its error callback mean that the
 * job's Kafka configuration cannot work.
 *
 * librdkafka retries a failed SASL authentication or TLS handshake by itself,
 * forever; a worker that waited for it would retry forever too.  A wrong
 * password or an untrusted broker certificate does not go away by waiting, so
 * the consumer classifies these at the source (consumer.c's error callback)
 * and the worker exits with WORKER_EXIT_CONFIG: the job goes `failed` with a
 * message naming what to fix.  Everything else stays retriable.
 *
 * A pure function, unit-tested in tests/unit/test_kafka_err.c.
 */
#ifndef SS_WORKER_KAFKA_ERR_H
#define SS_WORKER_KAFKA_ERR_H

#include <stddef.h>

/* What the message may name, from the consumer's configuration.  Any field
 * may be NULL.  secret: the sasl.password, removed from the message should the
 * broker or librdkafka ever quote it. */
struct kafka_err_ctx {
	const char *brokers;   /* bootstrap.servers, when the reason names no broker */
	const char *username;  /* sasl.username */
	const char *mechanism; /* sasl.mechanisms */
	const char *ca_source; /* "ssl.ca.location", "ssl.ca.pem" or NULL: the system's CAs */
	const char *secret;
};

/* err is a rd_kafka_resp_err_t, reason librdkafka's text.  Returns WERR_FATAL
 * and fills msg ("Kafka 127.0.0.1:9093: SASL authentication failed for user
 * \"x\" (SCRAM-SHA-512): wrong sasl.username or sasl.password") when the error
 * means the configuration cannot work; WERR_RETRY, msg untouched, otherwise. */
int kafka_err_classify(int err, const char *reason, const struct kafka_err_ctx *ctx, char *msg, size_t msglen);

#endif
