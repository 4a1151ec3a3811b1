#include "store_uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

static bool store_uri_is_pg(const char *uri)
{
	return uri != NULL && (strncmp(uri, "postgresql://", 13) == 0 ||
			       strncmp(uri, "postgres://", 11) == 0);
}

static int store_uri_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes src[0..n) into dst (size dlen); -1 when malformed, too
 * long or holding a NUL. */
static int store_uri_decode(const char *src, size_t n, char *dst, size_t dlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = store_uri_hex(src[i + 1]);
			lo = store_uri_hex(src[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= dlen)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

/* Where the authority's user info ends ('@'), as libpq finds it: an '@'
 * before any '/'.  NULL when there is none. */
static const char *store_uri_at(const char *uri)
{
	const char *p = strstr(uri, "://") + 3;

	while (*p != '\0' && *p != '@' && *p != '/')
		p++;
	return *p == '@' ? p : NULL;
}

/* Copies the URI to buf leaving out the query parameters named drop1 and
 * drop2 (NULL: none) and, when no_password, the password of the user
 * info.  The value of the last schema= found goes to schema (may be NULL).
 * -1 when buf is too small or schema= is malformed. */
static int store_uri_filter(const char *uri, bool no_password, const char *drop1,
			    const char *drop2, char *buf, size_t len, char *schema,
			    size_t schemalen)
{
	const char *at = store_uri_at(uri), *q = strchr(uri, '?');
	const char *scheme_end = strstr(uri, "://") + 3;
	size_t o = 0;
	bool first = true;

#define PUT(s, n)                                        \
	do {                                             \
		if (o + (n) >= len)                      \
			return -1;                       \
		memcpy(buf + o, (s), (n));               \
		o += (n);                                \
	} while (0)

	if (q != NULL && at != NULL && q < at)
		at = NULL; /* a '?' in the host part: no user info after all */
	if (at != NULL && no_password) {
		const char *colon = memchr(scheme_end, ':', (size_t)(at - scheme_end));

		PUT(uri, (size_t)((colon != NULL ? colon : at) - uri));
		PUT(at, (size_t)((q != NULL ? q : at + strlen(at)) - at));
	} else {
		PUT(uri, (size_t)((q != NULL ? q : uri + strlen(uri)) - uri));
	}
	if (q != NULL) {
		const char *p = q + 1;

		while (*p != '\0') {
			size_t n = strcspn(p, "&");
			const char *eq = memchr(p, '=', n);
			size_t klen = eq != NULL ? (size_t)(eq - p) : n;
			bool dropped = (drop1 != NULL && strlen(drop1) == klen &&
					strncmp(p, drop1, klen) == 0) ||
				       (drop2 != NULL && strlen(drop2) == klen &&
					strncmp(p, drop2, klen) == 0);

			if (klen == 6 && strncmp(p, "schema", 6) == 0 && schema != NULL &&
			    (eq == NULL ||
			     store_uri_decode(eq + 1, n - klen - 1, schema, schemalen) < 0 ||
			     schema[0] == '\0'))
				return -1;
			if (!dropped && n > 0) {
				PUT(first ? "?" : "&", 1);
				PUT(p, n);
				first = false;
			}
			p += n;
			if (*p == '&')
				p++;
		}
	}
	buf[o] = '\0';
	return 0;
#undef PUT
}

/* libpq's own check of the URI, so that a mistake shows at start with
 * libpq's words (which name the bad part, never the password). */
static int store_uri_check_libpq(const char *conninfo, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	size_t n;

	if (opts != NULL) {
		PQconninfoFree(opts);
		return 0;
	}
	snprintf(err, errlen, "the store URI is not one libpq takes: %s",
		 msg != NULL ? msg : "out of memory");
	n = strlen(err);
	while (n > 0 && err[n - 1] == '\n')
		err[--n] = '\0';
	PQfreemem(msg);
	return -1;
}

int store_uri_parse(const char *uri, struct store_uri *out, char *err, size_t errlen)
{
	size_t len;

	memset(out, 0, sizeof(*out));
	out->kind = STORE_URI_SQLITE;
	if (uri == NULL || *uri == '\0')
		return 0;
	len = strlen(uri);
	if (len >= STORE_URI_MAX) {
		snprintf(err, errlen, "the store URI has %zu characters; at most %d", len,
			 STORE_URI_MAX - 1);
		return -1;
	}
	if (!store_uri_is_pg(uri)) {
		const char *path = strncmp(uri, "sqlite:", 7) == 0 ? uri + 7 : uri;

		if (strstr(uri, "://") != NULL && strncmp(uri, "sqlite:", 7) != 0) {
			char shown[256];

			store_uri_redact(uri, shown, sizeof(shown));
			snprintf(err, errlen,
				 "the store %s is neither sqlite:PATH (or a path) nor "
				 "postgresql://...",
				 shown);
			return -1;
		}
		if (*path == '\0') {
			snprintf(err, errlen, "the store sqlite: names no file; give sqlite:PATH");
			return -1;
		}
		out->path = strdup(path);
		if (out->path == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	out->kind = STORE_URI_PG;
	snprintf(out->schema, sizeof(out->schema), "%s", STORE_URI_DEFAULT_SCHEMA);
	out->conninfo = calloc(1, len + 1);
	if (out->conninfo == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (store_uri_filter(uri, false, "schema", NULL, out->conninfo, len + 1, out->schema,
			     sizeof(out->schema)) < 0) {
		snprintf(err, errlen,
			 "the store URI's schema= is empty, malformed or longer than %zu bytes; "
			 "give a schema name (schema=streamserver)",
			 sizeof(out->schema) - 1);
		store_uri_free(out);
		return -1;
	}
	if (store_uri_check_libpq(out->conninfo, err, errlen) < 0) {
		store_uri_free(out);
		return -1;
	}
	return 0;
}

void store_uri_free(struct store_uri *u)
{
	if (u == NULL)
		return;
	if (u->conninfo != NULL) {
		explicit_bzero(u->conninfo, strlen(u->conninfo));
		free(u->conninfo);
	}
	free(u->path);
	memset(u, 0, sizeof(*u));
}

bool store_uri_has_password(const char *uri)
{
	const char *at, *scheme_end, *q;
	const char *p;

	if (!store_uri_is_pg(uri))
		return false;
	scheme_end = strstr(uri, "://") + 3;
	at = store_uri_at(uri);
	q = strchr(uri, '?');
	if (at != NULL && (q == NULL || at < q) &&
	    memchr(scheme_end, ':', (size_t)(at - scheme_end)) != NULL)
		return true;
	for (p = q; p != NULL; p = strchr(p + 1, '&'))
		if (strncmp(p + 1, "password=", 9) == 0 || strcmp(p + 1, "password") == 0)
			return true;
	return false;
}

void store_uri_redact(const char *uri, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (uri == NULL) {
		buf[0] = '\0';
		return;
	}
	if (strstr(uri, "://") == NULL) {
		snprintf(buf, len, "%s", uri);
		return;
	}
	/* Too long to show whole: a cut could fall inside the user info. */
	if (store_uri_filter(uri, true, "password", NULL, buf, len, NULL, 0) < 0)
		snprintf(buf, len, "(a URI too long to show)");
}
