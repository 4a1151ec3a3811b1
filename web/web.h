/* The status page served at GET /: an HTML shell that loads /ui/app.js and
 * /ui/style.css (embedded from web/ui/ at build time).  The script reads the
 * REST API (services, sources, jobs, GET /api/v1/jobs/status) every 3 s and
 * updates the page in place; it starts and stops jobs, creates jobs from
 * pasted YAML and asks for the API token when a call answers 401.  Without
 * scripts the shell carries a summary of the store in <noscript> that
 * refreshes itself every 5 s; every value from the store is HTML-escaped.
 */
#ifndef SS_WEB_H
#define SS_WEB_H

#include <stddef.h>

#include "embed.h"
#include "store.h"

/* Returns the page (malloc'd, caller frees) and its length, or NULL with err
 * filled.  st NULL gives the shell without the no-JS summary: for a server
 * whose API needs a token, since GET / itself is open. */
char *web_status_page(struct store *st, size_t *len, char *err, size_t errlen);

/* The page's assets served at /ui/NAME (files of web/ui/, embedded at build
 * time), or NULL. */
const struct embedded_file *web_asset(const char *name);

/* s with & < > " ' replaced by entities: a malloc'd string (caller frees),
 * or NULL on out of memory.  NULL s gives "". */
char *web_html_escape(const char *s);

#endif
