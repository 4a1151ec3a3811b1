#include "secret.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRET_MASK_LEN (sizeof(SECRET_MASK) - 1)
/* Shorter secrets are masked only as whole words (see secret.h). */
#define SECRET_WORD 4

static char *secret_list[SECRET_REGISTERED_MAX];
static _Atomic size_t secret_count;

bool secret_property_is_secret(const char *name)
{
	/* From librdkafka 2.0.2's CONFIGURATION.md: every setting whose value
	 * lets its holder authenticate as the client.  sasl.oauthbearer.config
	 * may hold a signed token or its principal's claims; kinit.cmd is a
	 * shell command where people put `echo PASS | kinit`.  Paths
	 * (ssl.key.location, ssl.keystore.location, sasl.kerberos.keytab) are not
	 * secrets: the files are, and they stay on the worker's host; nor are
	 * public certificates (ssl.certificate.pem, ssl.ca.pem), sasl.username or
	 * sasl.oauthbearer.client.id, shown like USER. */
	static const char *const names[] = {
		"sasl.password",	"sasl.oauthbearer.client.secret", "sasl.oauthbearer.config",
		"ssl.key.password",	"ssl.key.pem",			   "ssl_key",
		"ssl.keystore.password", "sasl.kerberos.kinit.cmd",
	};
	/* Whatever a later librdkafka or a plugin adds under these names (in
	 * 2.0.2 they match only secrets listed above).  Java clients' settings
	 * that users bring along, which librdkafka refuses but the API stores and
	 * shows first: sasl.jaas.config holds the password, ssl.keystore.key a
	 * private key. */
	static const char *const endings[] = { "password", "passwd",  "secret", "token",
					       "key.pem",  "jaas.config", ".key", "_key" };
	size_t len;

	if (name == NULL)
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	len = strlen(name);
	for (size_t i = 0; i < sizeof(endings) / sizeof(endings[0]); i++) {
		size_t el = strlen(endings[i]);

		if (len >= el && strcasecmp(name + len - el, endings[i]) == 0)
			return true;
	}
	return false;
}

bool secret_is_mask(const char *value)
{
	return value != NULL && strcmp(value, SECRET_MASK) == 0;
}

static bool secret_is_word(char ch)
{
	return ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z');
}

/* How many bytes of s from i are sec (or the start of it, cut off by the end
 * of s) and must be masked; 0 if none. */
static size_t secret_match(const char *s, size_t i, size_t len, const char *sec)
{
	size_t slen = strlen(sec), rest = len - i;

	if (slen == 0 || s[i] != sec[0])
		return 0;
	if (rest < slen)
		return rest >= SECRET_WORD && memcmp(s + i, sec, rest) == 0 ? rest : 0;
	if (memcmp(s + i, sec, slen) != 0)
		return 0;
	if (slen < SECRET_WORD &&
	    ((i > 0 && secret_is_word(s[i - 1]) && secret_is_word(sec[0])) ||
	     (secret_is_word(s[i + slen]) && secret_is_word(sec[slen - 1]))))
		return 0;
	return slen;
}

void secret_scrub_into(const char *s, const char *const *secrets, size_t nsecrets, char *out,
		       size_t outlen)
{
	size_t len = strlen(s), used = 0, i = 0;

	if (outlen == 0)
		return;
	while (i < len) {
		size_t best = 0;

		/* The longest wins: one secret may contain another. */
		for (size_t k = 0; k < nsecrets; k++) {
			size_t m = secrets[k] != NULL ? secret_match(s, i, len, secrets[k]) : 0;

			if (m > best)
				best = m;
		}
		if (best > 0) {
			if (used + SECRET_MASK_LEN >= outlen)
				break;
			memcpy(out + used, SECRET_MASK, SECRET_MASK_LEN);
			used += SECRET_MASK_LEN;
			i += best;
		} else {
			if (used + 1 >= outlen)
				break;
			out[used++] = s[i++];
		}
	}
	out[used] = '\0';
}

char *secret_scrub(const char *s, const char *const *secrets, size_t nsecrets)
{
	/* Each byte of s becomes at most one mask. */
	size_t cap = strlen(s) * SECRET_MASK_LEN + 1;
	char *out = malloc(cap);

	if (out != NULL)
		secret_scrub_into(s, secrets, nsecrets, out, cap);
	return out;
}

int secret_register(const char *value)
{
	size_t n = atomic_load_explicit(&secret_count, memory_order_acquire);

	if (value == NULL || value[0] == '\0')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(secret_list[i], value) == 0)
			return 0;
	if (n == SECRET_REGISTERED_MAX)
		return -1;
	secret_list[n] = strdup(value);
	if (secret_list[n] == NULL)
		return -1;
	/* The slot is filled before readers may see it. */
	atomic_store_explicit(&secret_count, n + 1, memory_order_release);
	return 0;
}

void secret_scrub_registered(const char *s, char *out, size_t outlen)
{
	size_t n = atomic_load_explicit(&secret_count, memory_order_acquire);

	secret_scrub_into(s, (const char *const *)secret_list, n, out, outlen);
}

void secret_forget_all(void)
{
	size_t n = atomic_load_explicit(&secret_count, memory_order_acquire);

	atomic_store_explicit(&secret_count, 0, memory_order_release);
	for (size_t i = 0; i < n; i++) {
		explicit_bzero(secret_list[i], strlen(secret_list[i]));
		free(secret_list[i]);
		secret_list[i] = NULL;
	}
}
