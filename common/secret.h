/* Secrets: which settings are secret, the mask the API shows for them, and
 * scrubbing them out of text that leaves the process (API answers, log
 * lines, status lines).
 *
 * A secret is stored and handed to the worker on its standard input only;
 * everywhere else it is SECRET_MASK, and SECRET_MASK sent back means "keep
 * the stored value".  Which fields of a job are secrets is jobspec_secrets()
 * (common/jobspec.h); this header knows the librdkafka property names.
 */
#ifndef SS_SECRET_H
#define SS_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* What the API shows instead of a secret, and what keeps it when sent back. */
#define SECRET_MASK "****"

/* At most this many secrets are registered in one process (a worker runs one
 * job: its password, a few properties and the parts of two of them that
 * librdkafka quotes, see jobspec_register_secrets). */
#define SECRET_REGISTERED_MAX 256

/* Whether a KAFKA.PROPERTIES / source "properties" name carries a secret:
 * librdkafka 2.0.2's secret settings (sasl.password, ssl.key.password,
 * ssl.key.pem, ssl.keystore.password, sasl.oauthbearer.client.secret,
 * sasl.oauthbearer.config, ssl_key, sasl.kerberos.kinit.cmd), and any name
 * ending in password, passwd, secret, token, key.pem, jaas.config, .key or
 * _key.  Case is ignored.  NULL is not a secret. */
bool secret_property_is_secret(const char *name);

/* Whether value is SECRET_MASK: "keep what is stored". */
bool secret_is_mask(const char *value);

/* s with every occurrence of each secrets[i] replaced by SECRET_MASK, into
 * out (outlen > 0; NUL-terminated, cut at outlen, never in the middle of a
 * mask).  A secret shorter than 4 characters is replaced only where it is
 * not part of a longer word (a one-letter password is not every "p"); a
 * secret cut off at the end of s (4 characters or more of it) is masked too,
 * since s may have been truncated.  NULL and empty secrets are skipped. */
void secret_scrub_into(const char *s, const char *const *secrets, size_t nsecrets, char *out,
		       size_t outlen);

/* The same, malloc'd (caller frees); NULL on out of memory. */
char *secret_scrub(const char *s, const char *const *secrets, size_t nsecrets);

/* The process's own secrets, scrubbed from every log line (common/log.h) and
 * error status line (common/proto.h) it writes: the worker registers its
 * job's.  The value is copied.  Register before starting threads; reading is
 * safe from any thread.  Returns 0, or -1 when the list is full or out of
 * memory.  NULL and empty values are ignored. */
int secret_register(const char *value);

/* secret_scrub_into with the registered secrets. */
void secret_scrub_registered(const char *s, char *out, size_t outlen);

/* Wipes and forgets every registered secret.  Not thread-safe: for tests and
 * for a process about to exit. */
void secret_forget_all(void);

#endif
