/* Secrets as a user of the API and a reader of the logs meets them: which
 * librdkafka settings are secret, "****" wherever a job is shown, "****" sent
 * back keeping the stored value, and no secret in a scrubbed message, a log
 * line or a status line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobspec.h"
#include "log.h"
#include "proto.h"
#include "secret.h"

static const char job_yaml[] =
	"DATABASE: db\n"
	"USER: loader\n"
	"PASSWORD: pg-Secret-1\n"
	"HOST: 127.0.0.1\n"
	"KAFKA:\n"
	"  INPUT:\n"
	"    SOURCE:\n"
	"      BROKERS: localhost:9092\n"
	"      TOPIC: orders\n"
	"    VALUE:\n"
	"      FORMAT: delimited\n"
	"      COLUMNS:\n"
	"        - NAME: id\n"
	"          TYPE: bigint\n"
	"  OUTPUT:\n"
	"    TABLE: orders\n"
	"  PROPERTIES:\n"
	"    security.protocol: SASL_PLAINTEXT\n"
	"    sasl.username: alice\n"
	"    sasl.password: kafka-Secret-2\n"
	"    ssl.key.password: key-Secret-3\n"
	"    ssl.key.location: /etc/kafka/client.key\n"
	"    fetch.min.bytes: '1'\n";

static struct jobspec *parse(const char *yaml)
{
	static struct js_errors errs;
	struct jobspec *spec = NULL;

	memset(&errs, 0, sizeof(errs));
	if (jobspec_parse_yaml(yaml, strlen(yaml), &spec, &errs) < 0) {
		char msg[1024];

		js_errors_format(&errs, msg, sizeof(msg));
		fail_msg("parse failed: %s", msg);
	}
	return spec;
}

/* ---- which names are secret ---- */

static void test_librdkafka_secrets(void **state)
{
	/* librdkafka 2.0.2's CONFIGURATION.md, every setting that lets its
	 * holder authenticate as the client. */
	static const char *const secret[] = {
		"sasl.password",	 "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config",
		"ssl.key.password",	 "ssl.key.pem",			   "ssl_key",
		"ssl.keystore.password", "sasl.kerberos.kinit.cmd",
		/* case and the endings rule */
		"SASL.PASSWORD", "Ssl.Key.Pem", "sasl.jaas.config", "my.plugin.secret",
		"vault.token", "db.passwd", "client.private.key.pem", "ssl.keystore.key", "my_key",
	};
	static const char *const plain[] = {
		"sasl.username",	  "sasl.mechanisms",	   "security.protocol",
		"ssl.key.location",	  "ssl.keystore.location", "sasl.kerberos.keytab",
		"ssl.certificate.pem",	  "ssl.ca.pem",		   "ssl.ca.location",
		"sasl.oauthbearer.client.id", "sasl.oauthbearer.token.endpoint.url",
		"sasl.oauthbearer.extensions", "group.id", "fetch.min.bytes", "", "monkey",
	};

	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		if (!secret_property_is_secret(secret[i]))
			fail_msg("%s should be a secret", secret[i]);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (secret_property_is_secret(plain[i]))
			fail_msg("%s should not be a secret", plain[i]);
	assert_false(secret_property_is_secret(NULL));
	assert_true(secret_is_mask("****"));
	assert_false(secret_is_mask("*****"));
	assert_false(secret_is_mask(NULL));
}

/* ---- scrubbing ---- */

static void test_scrub(void **state)
{
	const char *secrets[] = { "hunter2", "hunter2-long", NULL, "", "pw" };
	char *out;
	char buf[14];

	out = secret_scrub("auth failed for hunter2-long and hunter2 (hunter2)", secrets, 5);
	assert_string_equal(out, "auth failed for **** and **** (****)");
	free(out);
	/* Short secrets only as whole words. */
	out = secret_scrub("password pw: pw,pwx", secrets, 5);
	assert_string_equal(out, "password ****: ****,pwx");
	free(out);
	/* A secret cut off by an earlier truncation is masked too. */
	out = secret_scrub("value was \"hunt", secrets, 5);
	assert_string_equal(out, "value was \"****");
	free(out);
	out = secret_scrub("hun", secrets, 1);
	assert_string_equal(out, "hun");
	free(out);
	/* A short buffer cuts before a mask, never through it. */
	secret_scrub_into("0123456789 hunter2 end", secrets, 1, buf, sizeof(buf));
	assert_string_equal(buf, "0123456789 ");
	secret_scrub_into("nothing", secrets, 0, buf, sizeof(buf));
	assert_string_equal(buf, "nothing");
}

static void test_jobspec_secrets(void **state)
{
	struct jobspec *spec = parse(job_yaml);
	const char *list[8];
	char *out;

	assert_int_equal(jobspec_secrets(spec, list, 8), 3);
	assert_string_equal(list[0], "pg-Secret-1");
	assert_string_equal(list[1], "kafka-Secret-2");
	assert_string_equal(list[2], "key-Secret-3");
	assert_int_equal(jobspec_secrets(spec, list, 1), 3);
	out = jobspec_scrub(spec, "Authentication failed: sasl.password=kafka-Secret-2, "
				  "key key-Secret-3, pg pg-Secret-1, user alice");
	assert_string_equal(out, "Authentication failed: sasl.password=****, key ****, pg ****, "
				 "user alice");
	free(out);
	jobspec_free(spec);
}

/* ---- the YAML the API shows, and sent back ---- */

static void test_yaml_masks_properties(void **state)
{
	struct jobspec *spec = parse(job_yaml);
	char *plain = jobspec_to_yaml(spec, false);
	char *masked = jobspec_to_yaml(spec, true);

	assert_non_null(strstr(plain, "sasl.password: kafka-Secret-2\n"));
	assert_non_null(strstr(plain, "PASSWORD: pg-Secret-1\n"));
	assert_null(strstr(masked, "Secret"));
	assert_non_null(strstr(masked, "PASSWORD: '****'\n"));
	assert_non_null(strstr(masked, "sasl.password: '****'\n"));
	assert_non_null(strstr(masked, "ssl.key.password: '****'\n"));
	/* What is not secret is shown as it is. */
	assert_non_null(strstr(masked, "sasl.username: alice\n"));
	assert_non_null(strstr(masked, "ssl.key.location: /etc/kafka/client.key\n"));
	free(plain);
	free(masked);
	jobspec_free(spec);
}

static void test_mask_sent_back_keeps(void **state)
{
	struct jobspec *stored = parse(job_yaml);
	char *masked = jobspec_to_yaml(stored, true);
	struct jobspec *back = parse(masked);
	char *again;

	assert_int_equal(jobspec_keep_secrets(back, stored), 1);
	assert_string_equal(back->password, "pg-Secret-1");
	assert_string_equal(jobspec_property(back, "sasl.password"), "kafka-Secret-2");
	assert_string_equal(jobspec_property(back, "ssl.key.password"), "key-Secret-3");
	again = jobspec_to_yaml(back, false);
	free(masked);
	masked = jobspec_to_yaml(stored, false);
	assert_string_equal(again, masked);
	/* Nothing masked: nothing changes. */
	assert_int_equal(jobspec_keep_secrets(back, stored), 0);
	free(again);
	free(masked);
	jobspec_free(back);
	jobspec_free(stored);
}

static void test_mask_without_stored(void **state)
{
	struct jobspec *spec = parse("DATABASE: db\n"
				     "USER: loader\n"
				     "PASSWORD: '****'\n"
				     "KAFKA:\n"
				     "  OUTPUT:\n"
				     "    TABLE: t\n"
				     "  PROPERTIES:\n"
				     "    sasl.password: '****'\n"
				     "    client.rack: '****'\n"
				     "    ssl.key.pem: '****'\n"
				     "    sasl.username: bob\n");

	/* A masked property the job never stored is the source's to give. */
	assert_int_equal(jobspec_keep_secrets(spec, NULL), 1);
	assert_int_equal(spec->nproperties, 2);
	assert_null(jobspec_property(spec, "sasl.password"));
	assert_null(jobspec_property(spec, "ssl.key.pem"));
	assert_string_equal(jobspec_property(spec, "client.rack"), "****");
	assert_string_equal(jobspec_property(spec, "sasl.username"), "bob");
	/* A password has no other place to come from: left as given. */
	assert_string_equal(spec->password, "****");
	jobspec_free(spec);
}

/* ---- the worker's own lines ---- */

/* Found in review: librdkafka quotes sasl.oauthbearer.config from the token
 * it cannot parse on, and the kinit command with its placeholders filled in;
 * neither contains the whole registered value. */
static void test_registered_parts(void **state)
{
	struct jobspec *spec = parse("DATABASE: db\n"
				     "USER: loader\n"
				     "PASSWORD: pg-Secret-9\n"
				     "KAFKA:\n"
				     "  OUTPUT:\n"
				     "    TABLE: t\n"
				     "  PROPERTIES:\n"
				     "    sasl.oauthbearer.config: 'principal=admin extension_x=1 "
				     "tokenSecret=Sup3rSecretTail'\n"
				     "    sasl.kerberos.kinit.cmd: 'echo Pa55word-K | kinit "
				     "%{sasl.kerberos.principal}'\n");
	char out[512], err[256];

	assert_int_equal(jobspec_register_secrets(spec, err, sizeof(err)), 0);
	jobspec_free(spec);
	secret_scrub_registered("Unrecognized sasl.oauthbearer.config beginning at: "
				"tokenSecret=Sup3rSecretTail",
				out, sizeof(out));
	assert_null(strstr(out, "Sup3rSecretTail"));
	assert_non_null(strstr(out, "beginning at: ****"));
	secret_scrub_registered("Kerberos ticket refresh failed: echo Pa55word-K | kinit "
				"alice@EXAMPLE.COM: exited with code 1",
				out, sizeof(out));
	assert_null(strstr(out, "Pa55word-K"));
	assert_non_null(strstr(out, "alice@EXAMPLE.COM: exited with code 1"));
	secret_forget_all();
}

static void test_registered_lines(void **state)
{
	struct jobspec *spec = parse(job_yaml);
	char path[] = "/tmp/test_secret_XXXXXX";
	char buf[4096], err[256];
	int fds[2], fd = mkstemp(path), saved = dup(2);
	ssize_t n;
	FILE *f;
	size_t len;

	assert_int_equal(jobspec_register_secrets(spec, err, sizeof(err)), 0);
	/* Again: no duplicates. */
	assert_int_equal(jobspec_register_secrets(spec, err, sizeof(err)), 0);
	jobspec_free(spec);

	/* A status error line, as the controller stores and shows it. */
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(proto_send_error(fds[1], "fatal",
					  "SASL authentication error: password kafka-Secret-2 refused"),
			 0);
	n = read(fds[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_null(strstr(buf, "kafka-Secret-2"));
	assert_non_null(strstr(buf, "password **** refused"));
	close(fds[0]);
	close(fds[1]);

	/* A log line, as librdkafka's callback passes it on. */
	assert_true(fd >= 0 && saved >= 0);
	log_set_format(LOG_TEXT);
	fflush(stderr);
	assert_true(dup2(fd, 2) >= 0);
	log_warn("kafka: ssl.key.password=%s, db %s", "key-Secret-3", "pg-Secret-1");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	assert_non_null(f);
	rewind(f);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = '\0';
	fclose(f);
	unlink(path);
	assert_null(strstr(buf, "Secret"));
	assert_non_null(strstr(buf, "kafka: ssl.key.password=****, db ****\n"));

	secret_forget_all();
	secret_scrub_registered("pg-Secret-1", buf, sizeof(buf));
	assert_string_equal(buf, "pg-Secret-1");

	/* Past the cap registering fails, so that a worker refuses to run. */
	for (int i = 0; i < SECRET_REGISTERED_MAX; i++) {
		snprintf(buf, sizeof(buf), "secret-%03d", i);
		assert_int_equal(secret_register(buf), 0);
	}
	assert_int_equal(secret_register("one-too-many"), -1);
	secret_forget_all();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_librdkafka_secrets),  cmocka_unit_test(test_scrub),
		cmocka_unit_test(test_jobspec_secrets),	    cmocka_unit_test(test_yaml_masks_properties),
		cmocka_unit_test(test_mask_sent_back_keeps), cmocka_unit_test(test_mask_without_stored),
		cmocka_unit_test(test_registered_parts), cmocka_unit_test(test_registered_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
