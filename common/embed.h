/* Files compiled into a binary (the status page's assets, the OpenAPI
 * document).  common/embed.py writes the tables from the source files at
 * build time:
 *   embed.py OUT.c PREFIX FILE...  defines
 *   const struct embedded_file PREFIX_files[];  (the name is the file's base
 *   name; the array ends with an entry whose name is NULL)
 */
#ifndef SS_EMBED_H
#define SS_EMBED_H

#include <stddef.h>

struct embedded_file {
	const char *name;         /* base name, e.g. "app.js" */
	const char *content_type; /* from the extension, e.g. "text/javascript; charset=utf-8" */
	const unsigned char *data; /* NUL-terminated, so text can be used as a string */
	size_t len;               /* without the NUL */
};

/* The entry of files named name, or NULL. */
const struct embedded_file *embedded_find(const struct embedded_file *files, const char *name);

#endif
