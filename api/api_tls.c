/* The controller's HTTPS (see api_tls.h).
 *
 * Why a compatibility library and not a fix-up inside civetweb: civetweb 1.15
 * keeps the OpenSSL functions it looked up in a private table; filling in the
 * one that OpenSSL 3 renamed would mean writing into another library's memory
 * at run time.  Loading our own "libssl.so" (with the old name, needing the
 * real libssl.so.3) uses only what the dynamic linker promises: dlopen() of a
 * name without a slash first matches the SONAME of an object already loaded,
 * and dlsym() on that handle searches the object, then what it needs.  The
 * runtime needs libssl3 only, not libssl-dev's unversioned links. */
#include "api_tls.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define API_PEM_MAX (1024 * 1024) /* a certificate chain or a key file */

static void *api_tls_ssl, *api_tls_crypto; /* never closed: civetweb uses them */

int api_tls_compat_load(const char *dir, char *err, size_t errlen)
{
	static const char *const names[] = { API_TLS_COMPAT_CRYPTO, API_TLS_COMPAT_SSL };
	void **handles[] = { &api_tls_crypto, &api_tls_ssl };
	char path[4096];

	for (size_t i = 0; i < 2; i++) {
		void *again;

		if (*handles[i] != NULL)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path)) {
			snprintf(err, errlen, "the path %s/%s is too long", dir, names[i]);
			return -1;
		}
		/* Local: the old name is for civetweb's lookups, not for the
		 * process's other libraries. */
		*handles[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (*handles[i] == NULL) {
			snprintf(err, errlen, "cannot load %s, which gives civetweb OpenSSL 3: %s",
				 path, dlerror());
			return -1;
		}
		/* What civetweb's dlopen(name) will get. */
		again = dlopen(names[i], RTLD_LAZY | RTLD_NOLOAD);
		if (again != NULL)
			dlclose(again);
		if (again != *handles[i]) {
			snprintf(err, errlen,
				 "%s is loaded but \"%s\" does not resolve to it (is its SONAME %s?)",
				 path, names[i], names[i]);
			return -1;
		}
	}
	if (dlsym(api_tls_ssl, "SSL_get_peer_certificate") == NULL ||
	    dlsym(api_tls_ssl, "SSL_CTX_new") == NULL) {
		snprintf(err, errlen, "%s/%s lacks SSL_get_peer_certificate or OpenSSL 3's SSL_CTX_new",
			 dir, API_TLS_COMPAT_SSL);
		return -1;
	}
	return 0;
}

/* A PEM file into a new buffer (caller frees, wiping it: it may be a key). */
static char *api_pem_read(const char *path, const char *what, size_t *len, char *err,
			  size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "cannot open the TLS %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(API_PEM_MAX + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	n = fread(buf, 1, API_PEM_MAX + 1, f);
	if (ferror(f) || n > API_PEM_MAX || n == 0) {
		snprintf(err, errlen, "cannot read the TLS %s %s: %s", what, path,
			 ferror(f) ? strerror(errno) : n == 0 ? "the file is empty" : "over 1 MiB");
		explicit_bzero(buf, API_PEM_MAX + 1);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = n;
out:
	fclose(f);
	return buf;
}

/* civetweb reads key and certificate from one file (ssl_certificate): joins
 * the two in a memfd, so that the key is not copied to disk.  Returns the fd
 * (close-on-exec) or -1. */
static int api_pem_join(const char *cert, const char *key, char *err, size_t errlen)
{
	char *kbuf = NULL, *cbuf = NULL;
	size_t klen = 0, clen = 0;
	int fd = -1;

	kbuf = api_pem_read(key, "key", &klen, err, errlen);
	if (kbuf == NULL)
		goto out;
	cbuf = api_pem_read(cert, "certificate", &clen, err, errlen);
	if (cbuf == NULL)
		goto out;
	fd = memfd_create("streamserver-tls", MFD_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		goto out;
	}
	if (write(fd, kbuf, klen) != (ssize_t)klen || write(fd, "\n", 1) != 1 ||
	    write(fd, cbuf, clen) != (ssize_t)clen) {
		snprintf(err, errlen, "cannot join the TLS key and certificate: %s", strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	if (kbuf != NULL) {
		explicit_bzero(kbuf, klen);
		free(kbuf);
	}
	free(cbuf);
	return fd;
}

/* The certificate file holds intermediates after the server's certificate. */
static bool api_pem_is_chain(const char *cert)
{
	char err[256];
	size_t len = 0;
	char *buf = api_pem_read(cert, "certificate", &len, err, sizeof(err));
	const char *p;
	bool chain;

	if (buf == NULL)
		return false;
	p = strstr(buf, "-----BEGIN CERTIFICATE-----");
	chain = p != NULL && strstr(p + 1, "-----BEGIN CERTIFICATE-----") != NULL;
	free(buf);
	return chain;
}


int api_tls_options(const struct api_security *sec, struct api_tls_conf *conf,
		    const char **options, size_t *nopt, char *err, size_t errlen)
{
	size_t n = *nopt;

	conf->pem_fd = -1;
	conf->pem[0] = '\0';
	if (sec->tls_key != NULL) {
		conf->pem_fd = api_pem_join(sec->tls_cert, sec->tls_key, err, errlen);
		if (conf->pem_fd < 0)
			return -1;
		snprintf(conf->pem, sizeof(conf->pem), "/proc/self/fd/%d", conf->pem_fd);
		options[n++] = "ssl_certificate";
		options[n++] = conf->pem;
		if (api_pem_is_chain(sec->tls_cert)) {
			options[n++] = "ssl_certificate_chain";
			options[n++] = sec->tls_cert;
		}
	} else {
		options[n++] = "ssl_certificate";
		options[n++] = sec->tls_cert;
	}
	options[n++] = "ssl_protocol_version";
	options[n++] = "4"; /* TLS 1.2 and later */
	if (sec->tls_client_ca != NULL) {
		/* "yes": a client without a certificate is refused in the
		 * handshake; and only this CA is trusted for clients, not the
		 * system's bundle (any public CA's customer would pass). */
		options[n++] = "ssl_ca_file";
		options[n++] = sec->tls_client_ca;
		options[n++] = "ssl_verify_peer";
		options[n++] = "yes";
		options[n++] = "ssl_default_verify_paths";
		options[n++] = "no";
	}
	options[n] = NULL;
	*nopt = n;
	return 0;
}

void api_tls_conf_clear(struct api_tls_conf *conf)
{
	if (conf->pem_fd >= 0)
		close(conf->pem_fd);
	conf->pem_fd = -1;
}
