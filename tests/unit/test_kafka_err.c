/* kafka_err_classify: which librdkafka errors end a job (configuration) and
 * what they say; the reasons are librdkafka 2.0.2's own, as logged against
 * tests/harness/kafka.sh start DIR --secure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "kafka_err.h"
#include "wtypes.h"

#define AUTH_REASON                                                                                            \
	"sasl_ssl://127.0.0.1:55785/bootstrap: SASL authentication error: Authentication failed during "          \
	"authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 335ms in state "      \
	"AUTH_REQ)"
#define TLS_REASON                                                                                             \
	"sasl_ssl://127.0.0.1:55785/bootstrap: SSL handshake failed: error:0A000086:SSL "                         \
	"routines::certificate verify failed: broker certificate could not be verified, verify that "            \
	"ssl.ca.location is correctly configured or root CA certificates are installed (install "                \
	"ca-certificates package) (after 8ms in state SSL_HANDSHAKE)"

static const struct kafka_err_ctx scram = {
	.brokers = "127.0.0.1:55785",
	.username = "streamserver",
	.mechanism = "SCRAM-SHA-512",
	.ca_source = "ssl.ca.location",
	.secret = "s3cret-pw",
};

static void test_wrong_password(void **state)
{
	char msg[512] = "";

	(void)state;
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__AUTHENTICATION, AUTH_REASON, &scram, msg, sizeof(msg)),
			 WERR_FATAL);
	assert_string_equal(msg, "Kafka 127.0.0.1:55785: SASL authentication failed for user \"streamserver\" "
				 "(SCRAM-SHA-512): wrong sasl.username or sasl.password");
}

static void test_untrusted_ca(void **state)
{
	char msg[512] = "";

	(void)state;
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__SSL, TLS_REASON, &scram, msg, sizeof(msg)), WERR_FATAL);
	assert_string_equal(msg, "Kafka 127.0.0.1:55785: TLS: broker certificate not trusted (ssl.ca.location): "
				 "certificate verify failed (issued by another CA, expired, or not for host "
				 "127.0.0.1)");
}

static void test_system_cas(void **state)
{
	struct kafka_err_ctx ctx = scram;
	char msg[512] = "";

	(void)state;
	ctx.ca_source = NULL;
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__TRANSPORT, TLS_REASON, &ctx, msg, sizeof(msg)),
			 WERR_FATAL);
	assert_non_null(strstr(msg, "not trusted (the system's CAs; set ssl.ca.location)"));
}

/* What a broker restart or a wrong port looks like: librdkafka retries, so do we. */
static void test_retriable(void **state)
{
	char msg[64] = "untouched";

	(void)state;
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__TRANSPORT,
					    "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: "
					    "Connection refused (after 0ms in state CONNECT)",
					    &scram, msg, sizeof(msg)),
			 WERR_RETRY);
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__SSL,
					    "sasl_ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: "
					    "error:0A000126:SSL routines::unexpected eof while reading",
					    &scram, msg, sizeof(msg)),
			 WERR_RETRY);
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", &scram, msg,
					    sizeof(msg)),
			 WERR_RETRY);
	assert_string_equal(msg, "untouched");
}

/* A Kerberos or token endpoint may come back: only the broker's "invalid
 * credentials" ends such a job. */
static void test_other_mechanisms(void **state)
{
	struct kafka_err_ctx ctx = scram;
	char msg[512] = "";

	(void)state;
	ctx.mechanism = "OAUTHBEARER";
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__AUTHENTICATION,
					    "Failed to acquire SASL OAUTHBEARER token: connection refused", &ctx, msg,
					    sizeof(msg)),
			 WERR_RETRY);
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__AUTHENTICATION, AUTH_REASON, &ctx, msg, sizeof(msg)),
			 WERR_FATAL);
	assert_non_null(strstr(msg, "(OAUTHBEARER): wrong sasl.username or sasl.password"));
}

/* Another reason is quoted, without librdkafka's "(after ...)" tail, and the
 * password never survives in it. */
static void test_other_reason_scrubbed(void **state)
{
	struct kafka_err_ctx ctx = scram;
	char msg[512] = "";

	(void)state;
	ctx.username = NULL;
	ctx.mechanism = "PLAIN";
	ctx.brokers = "b1:9093,b2:9093";
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__AUTHENTICATION,
					    "odd: s3cret-pw was refused, s3cret-pw (after 3ms in state AUTH_REQ)", &ctx,
					    msg, sizeof(msg)),
			 WERR_FATAL);
	assert_string_equal(msg, "Kafka b1:9093,b2:9093: SASL authentication failed (PLAIN): odd: **** was refused, "
				 "****");
	ctx.secret = "*";
	assert_int_equal(kafka_err_classify(RD_KAFKA_RESP_ERR__AUTHENTICATION, "a * b", &ctx, msg, sizeof(msg)),
			 WERR_FATAL);
	assert_null(strstr(msg, "a * b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrong_password),   cmocka_unit_test(test_untrusted_ca),
		cmocka_unit_test(test_system_cas),       cmocka_unit_test(test_retriable),
		cmocka_unit_test(test_other_mechanisms), cmocka_unit_test(test_other_reason_scrubbed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
