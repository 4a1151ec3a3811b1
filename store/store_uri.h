/* What --store names: the SQLite file (the default, "sqlite:PATH" or a
 * path) or a PostgreSQL catalog ("postgresql://..." or "postgres://...",
 * libpq's URI, plus our own query parameter schema=NAME, default
 * "streamserver").
 *
 * A password may be in the URI (given through the environment or a file,
 * never on the command line: see store_uri_has_password); nothing here
 * logs it, and store_uri_redact gives the URI without it.
 */
#ifndef SS_STORE_URI_H
#define SS_STORE_URI_H

#include <stdbool.h>
#include <stddef.h>

#define STORE_URI_DEFAULT_SCHEMA "streamserver"
#define STORE_URI_MAX 4096

enum store_uri_kind {
	STORE_URI_SQLITE,
	STORE_URI_PG,
};

struct store_uri {
	enum store_uri_kind kind;
	char *path;     /* SQLite: the file; NULL = DATA_DIR/streamserver.db */
	char *conninfo; /* PostgreSQL: the URI for libpq, schema= taken out */
	char schema[64];
};

/* uri NULL or "" = the default SQLite file.  Fills out (store_uri_free);
 * -1 with err filled (never holding the password) when the URI is not one
 * we take. */
int store_uri_parse(const char *uri, struct store_uri *out, char *err, size_t errlen);

/* Wipes the conninfo (it may hold a password) and frees.  Accepts a zeroed
 * struct. */
void store_uri_free(struct store_uri *u);

/* Whether uri is a PostgreSQL URI with a password in it (user:PASSWORD@ or
 * password=). */
bool store_uri_has_password(const char *uri);

/* uri with any password left out, for logs and messages:
 * "postgresql://app@db:5432/catalog?schema=ss".  Truncated to len. */
void store_uri_redact(const char *uri, char *buf, size_t len);

#endif
