/* `streamctl jobs load FILE.yaml` (like gpsscli load): create or update the
 * job, start it, show its progress, and stop it on Ctrl-C or, with
 * --quit-at-eof, once the topic is drained.  Also finds (or makes) the data
 * source and service a job file needs when --source is not given.
 */
#ifndef SS_CTL_LOAD_H
#define SS_CTL_LOAD_H

#include <stdbool.h>

#include "ctl_api.h"

/* jobs load FILE [--name NAME] [--source ID_OR_NAME] [--quit-at-eof]; name
 * and source may be NULL.  Returns the exit code (CTL_EXIT_*). */
int ctl_load_run(struct ctl *ctl, const char *file, const char *name, const char *source,
		 bool quit_at_eof);

/* The id of the source whose brokers and topic are those of the job YAML's
 * KAFKA.INPUT.SOURCE.  With create, a missing source (and its service, for
 * the YAML's HOST/PORT, unless one matches) is made, named job_name, and
 * what was made is said on stdout.  The YAML is parsed with the controller's
 * own parser; its problems are printed with their lines (on stderr for a
 * load; without create, for jobs validate, on stdout as its result, JSON
 * with --json), and the exit code is then CTL_EXIT_REFUSED.  Returns an exit
 * code; *source_id is 0 when create is false and nothing matches. */
int ctl_load_source_for_yaml(struct ctl *ctl, const char *yaml, size_t len, const char *job_name,
			     bool create, long long *source_id);

#endif
