/* A job's TLS material for libpq, for the length of one connection attempt.
 *
 * libpq reads the root CA, the client certificate and the client key only from
 * files (sslrootcert, sslcert, sslkey), while a job carries them as PEM text
 * (SSLROOTCERT, SSLCERT, SSLKEY).  pgtls_files_write puts the texts into a
 * private directory made by mkdtemp (mode 0700; the files 0600, created with
 * O_EXCL | O_NOFOLLOW) under $TMPDIR or /tmp; pgtls_files_remove deletes it.
 * The caller removes it as soon as PQconnectdbParams returns, whatever the
 * outcome: libpq loads the files only while it establishes the connection
 * (initialize_SSL), and the worker never reconnects with PQreset (a lost
 * connection ends the worker; its restart connects afresh and writes the files
 * again).  So the files exist for at most connect_timeout, never for the
 * worker's lifetime.
 *
 * While they exist, a SIGTERM, SIGINT, SIGHUP or SIGQUIT whose disposition is
 * the default (the tool modes) removes them before the process dies; a handler
 * the program installed (the job loop's, which only sets a flag) is called
 * instead, and the files go when the connection attempt returns.  exit()
 * removes them too.  Only SIGKILL can leave a directory behind: the next
 * worker removes directories of workers that are gone
 * (streamworker-pgtls-<pid>-XXXXXX of a pid that no longer runs, owned by the
 * same user).
 *
 * One set of files at a time per process (the worker connects from one
 * thread).
 */
#ifndef SS_WORKER_PGTLS_H
#define SS_WORKER_PGTLS_H

#include <limits.h>
#include <stddef.h>

#include "jobspec.h"

struct pgtls_files {
	char dir[PATH_MAX - 32]; /* "" when the job gives no PEM text */
	char rootcert[PATH_MAX]; /* "" when absent, else the file's path */
	char cert[PATH_MAX];
	char key[PATH_MAX];
};

/* Writes the job's PEM texts (those present) into a new private directory and
 * fills f with their paths.  With none present it creates nothing and f's
 * paths are "".  Returns 0, or -1 with err saying what failed (nothing is left
 * behind); err never holds a PEM text. */
int pgtls_files_write(const struct jobspec *spec, struct pgtls_files *f, char *err, size_t errlen);

/* Deletes the files and the directory (nothing when there are none); f's
 * paths become "".  Safe to call twice. */
void pgtls_files_remove(struct pgtls_files *f);

/* Replaces each file path of f in msg (a libpq message, NUL-terminated, in a
 * buffer of msglen bytes) by the job key it came from: SSLROOTCERT, SSLCERT,
 * SSLKEY.  The paths are of a directory that is gone by the time anyone reads
 * the message. */
void pgtls_files_unname(const struct pgtls_files *f, char *msg, size_t msglen);

#endif
