/* libcrypto.so for Debian's civetweb 1.15 on OpenSSL 3 (see ssl_compat.c).
 *
 * civetweb also dlopen()s "libcrypto.so", a name only libssl-dev installs.
 * Every libcrypto function civetweb 1.15 asks for still exists in OpenSSL 3,
 * so this library adds none: its SONAME "libcrypto.so" and its need of
 * libcrypto.so.3 are all it is for.  The one function below keeps that need
 * in place when the linker drops unused libraries (--as-needed). */
#include <openssl/crypto.h>

unsigned long ss_crypto_compat_version(void);

unsigned long ss_crypto_compat_version(void)
{
	return OpenSSL_version_num();
}
