/* libssl.so for Debian's civetweb 1.15 on OpenSSL 3.
 *
 * civetweb 1.15 dlopen()s "libssl.so" and looks its functions up by their
 * OpenSSL 1.1 names.  OpenSSL 3 renamed one of them: SSL_get_peer_certificate
 * is SSL_get1_peer_certificate (same meaning: a new reference the caller
 * frees with X509_free), and only a macro keeps the old name for C sources.
 * This library's SONAME is "libssl.so" and it needs libssl.so.3: the
 * controller loads it by its full path before civetweb opens OpenSSL, so
 * glibc hands civetweb this object for "libssl.so", and dlsym() finds the old
 * name here and every other function in libssl.so.3. */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *s);

X509 *SSL_get_peer_certificate(const SSL *s)
{
	return SSL_get1_peer_certificate(s);
}
