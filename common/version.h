/* The version every program prints for --version: meson's project version
 * and, built from a git checkout, what `git describe` said of it. */
#ifndef SS_VERSION_H
#define SS_VERSION_H

/* "0.1.0 (git 6346e6c-dirty)" or "0.1.0"; a static string. */
const char *ss_version(void);

/* What git describe said ("6346e6c-dirty"), or "" when not built from a git
 * checkout; a static string. */
const char *ss_version_git(void);

#endif
