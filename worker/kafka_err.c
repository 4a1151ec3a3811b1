#include "kafka_err.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "secret.h"
#include "wtypes.h"

/* librdkafka's reasons start with the broker's name, "sasl_ssl://HOST:PORT/ID: ",
 * and end with " (after 8ms in state SSL_HANDSHAKE...)".  Copies HOST:PORT to
 * broker (else ctx->brokers) and the text between to detail. */
static void kafka_err_split(const char *reason, const struct kafka_err_ctx *ctx, char *broker, size_t brokerlen,
			    char *detail, size_t detaillen)
{
	const char *scheme = strstr(reason, "://"), *space = strchr(reason, ' '), *end, *after;
	size_t n;

	snprintf(broker, brokerlen, "%s", ctx->brokers != NULL ? ctx->brokers : "brokers");
	if (scheme != NULL && (space == NULL || scheme < space)) {
		/* HOST:PORT ends at the "/" before the broker id */
		const char *host = scheme + 3, *slash = strchr(host, '/');

		if (slash != NULL && (space == NULL || slash < space)) {
			snprintf(broker, brokerlen, "%.*s", (int)(slash - host), host);
			if ((after = strstr(slash, ": ")) != NULL)
				reason = after + 2;
		}
	}
	end = strstr(reason, " (after ");
	n = end != NULL ? (size_t)(end - reason) : strlen(reason);
	snprintf(detail, detaillen, "%.*s", (int)n, reason);
}

/* Replaces every copy of secret in msg by SECRET_MASK (common/secret.h's
 * rules), within msglen. */
static void kafka_err_scrub(char *msg, size_t msglen, const char *secret)
{
	const char *one[1] = { secret };
	char *clean;

	if (secret == NULL || secret[0] == '\0')
		return;
	clean = secret_scrub(msg, one, 1);
	if (clean == NULL) {
		snprintf(msg, msglen, "Kafka: authentication or TLS error (message withheld: out of memory)");
		return;
	}
	snprintf(msg, msglen, "%s", clean);
	free(clean);
}

/* HOST of HOST:PORT (or of [V6]:PORT). */
static void kafka_err_host(const char *broker, char *host, size_t hostlen)
{
	const char *colon = strrchr(broker, ':');

	if (colon == NULL || strchr(colon, ']') != NULL)
		snprintf(host, hostlen, "%s", broker);
	else
		snprintf(host, hostlen, "%.*s", (int)(colon - broker), broker);
}

int kafka_err_classify(int err, const char *reason, const struct kafka_err_ctx *ctx, char *msg, size_t msglen)
{
	char broker[256], host[256], detail[512], user[300] = "";
	const char *mech = ctx->mechanism != NULL ? ctx->mechanism : "GSSAPI";

	if (reason == NULL)
		reason = "";
	/* SASL: the broker refused the credentials.  With PLAIN and SCRAM they
	 * are fixed text in PROPERTIES, and waiting does not change them; a
	 * GSSAPI or OAUTHBEARER failure may be a KDC or token endpoint that is
	 * down, so those stay retriable unless the broker said the credentials
	 * are invalid. */
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED) {
		bool invalid, fixed = strcmp(mech, "PLAIN") == 0 || strncmp(mech, "SCRAM-", 6) == 0;

		kafka_err_split(reason, ctx, broker, sizeof(broker), detail, sizeof(detail));
		invalid = strstr(detail, "nvalid credentials") != NULL ||
			  strstr(detail, "nvalid username or password") != NULL;
		if (!fixed && !invalid)
			return WERR_RETRY;
		if (ctx->username != NULL)
			snprintf(user, sizeof(user), " for user \"%s\"", ctx->username);
		if (invalid)
			snprintf(msg, msglen,
				 "Kafka %s: SASL authentication failed%s (%s): wrong sasl.username or sasl.password",
				 broker, user, mech);
		else
			snprintf(msg, msglen, "Kafka %s: SASL authentication failed%s (%s): %s", broker, user, mech,
				 detail);
		kafka_err_scrub(msg, msglen, ctx->secret);
		return WERR_FATAL;
	}
	/* TLS: the broker's certificate does not verify against the CAs given.
	 * Other TLS and transport failures (a broker going down mid-handshake)
	 * stay retriable. */
	if ((err == RD_KAFKA_RESP_ERR__SSL || err == RD_KAFKA_RESP_ERR__TRANSPORT) &&
	    strstr(reason, "certificate verify failed") != NULL) {
		kafka_err_split(reason, ctx, broker, sizeof(broker), detail, sizeof(detail));
		kafka_err_host(broker, host, sizeof(host));
		snprintf(msg, msglen,
			 "Kafka %s: TLS: broker certificate not trusted (%s): certificate verify failed (issued by "
			 "another CA, expired, or not for host %s)",
			 broker, ctx->ca_source != NULL ? ctx->ca_source : "the system's CAs; set ssl.ca.location",
			 host);
		kafka_err_scrub(msg, msglen, ctx->secret);
		return WERR_FATAL;
	}
	return WERR_RETRY;
}
