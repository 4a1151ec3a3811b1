#include "sqlbuf.h"

#include <stdlib.h>
#include <string.h>

void sqlbuf_add_len(struct sqlbuf *sb, const char *s, size_t n)
{
	if (sb->failed)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 256;
		char *p;
		while (cap < sb->len + n + 1)
			cap *= 2;
		if (cap > SQLBUF_MAX || (p = realloc(sb->s, cap)) == NULL) {
			sb->failed = true;
			return;
		}
		sb->s = p;
		sb->cap = cap;
	}
	memcpy(sb->s + sb->len, s, n);
	sb->len += n;
	sb->s[sb->len] = '\0';
}

void sqlbuf_add(struct sqlbuf *sb, const char *s)
{
	sqlbuf_add_len(sb, s, strlen(s));
}

void sqlbuf_ident(struct sqlbuf *sb, const char *name)
{
	const char *q;

	sqlbuf_add_len(sb, "\"", 1);
	while ((q = strchr(name, '"')) != NULL) {
		sqlbuf_add_len(sb, name, (size_t)(q - name) + 1);
		sqlbuf_add_len(sb, "\"", 1);
		name = q + 1;
	}
	sqlbuf_add(sb, name);
	sqlbuf_add_len(sb, "\"", 1);
}

char *sqlbuf_take(struct sqlbuf *sb)
{
	char *s = sb->failed ? NULL : sb->s;

	if (sb->failed)
		free(sb->s);
	memset(sb, 0, sizeof(*sb));
	return s;
}
