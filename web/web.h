/* The status page served at GET /: services, sources and jobs with each job's
 * state and counters, as one self-contained HTML document (inline CSS, no
 * scripts) that refreshes itself every 5 seconds.  Rendered from the store;
 * every value from the store is HTML-escaped.
 */
#ifndef SS_WEB_H
#define SS_WEB_H

#include <stddef.h>

#include "embed.h"
#include "store.h"

/* Returns the page (malloc'd, caller frees) and its length, or NULL with err
 * filled. */
char *web_status_page(struct store *st, size_t *len, char *err, size_t errlen);

/* The page's assets served at /ui/NAME (files of web/ui/, embedded at build
 * time), or NULL. */
const struct embedded_file *web_asset(const char *name);

/* s with & < > " ' replaced by entities: a malloc'd string (caller frees),
 * or NULL on out of memory.  NULL s gives "". */
char *web_html_escape(const char *s);

#endif
