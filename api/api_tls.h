/* The controller's HTTPS: OpenSSL for civetweb and civetweb's ssl_* options.
 *
 * Debian's civetweb 1.15 opens OpenSSL itself, at mg_init_library(), by the
 * unversioned names "libssl.so" and "libcrypto.so", and asks for OpenSSL
 * 1.1's names.  api_tls_compat_load() loads the project's two small
 * libraries with those SONAMEs (api/tlscompat/) first, so that civetweb gets
 * them and, through them, OpenSSL 3.
 */
#ifndef SS_API_TLS_H
#define SS_API_TLS_H

#include <stddef.h>

#include "api_conf.h"

/* The file names in the directory given to api_tls_compat_load(). */
#define API_TLS_COMPAT_SSL "libssl.so"
#define API_TLS_COMPAT_CRYPTO "libcrypto.so"

/* Loads DIR/libcrypto.so and DIR/libssl.so and checks that the names civetweb
 * opens now resolve to them.  Call before mg_init_library(MG_FEATURES_TLS).
 * The libraries stay loaded for the life of the process.  0, or -1 with a
 * message in err. */
int api_tls_compat_load(const char *dir, char *err, size_t errlen);

/* What civetweb's TLS options point at while the server runs. */
struct api_tls_conf {
	int pem_fd;   /* memfd holding key and certificate, or -1 */
	char pem[64]; /* "/proc/self/fd/N" of pem_fd */
};

/* At most this many option strings (name, value pairs) from api_tls_options. */
#define API_TLS_OPTIONS_MAX 12

/* Appends civetweb's ssl_* options for sec (tls_cert set) at options[*nopt]
 * and advances *nopt; the strings point into sec and conf, which must outlive
 * mg_start2().  conf is set up here (pem_fd -1 when none is needed) and
 * released with api_tls_conf_clear().  0, or -1 with a message in err. */
int api_tls_options(const struct api_security *sec, struct api_tls_conf *conf,
		    const char **options, size_t *nopt, char *err, size_t errlen);

/* Closes conf's memfd; accepts a conf that was never set up if pem_fd is -1. */
void api_tls_conf_clear(struct api_tls_conf *conf);

#endif
