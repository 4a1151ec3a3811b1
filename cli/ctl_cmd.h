/* streamctl's commands: services|sources|jobs list/get/create/update/delete,
 * jobs start/stop/status/offsets/errors/validate/config/load, health.
 */
#ifndef SS_CTL_CMD_H
#define SS_CTL_CMD_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "ctl_api.h"

/* What the command line asked for (streamctl.c fills it; strings point into
 * argv). */
struct ctl_args {
	const char *resource; /* services, sources, jobs, health */
	const char *verb;     /* list, get, ... (NULL for health) */
	const char *target;   /* ID_OR_NAME, or FILE.yaml for jobs load */
	const char *file;     /* -f FILE */
	const char *name;     /* --name */
	const char *source;   /* --source ID_OR_NAME */
	bool quit_at_eof;     /* jobs load */
	bool wait;            /* jobs start/stop --wait */
	int page;             /* list, jobs errors: --page (0 = default) */
};

/* "streamctl: <message>" and a hint on stderr; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs the command; returns the exit code (CTL_EXIT_*). */
int ctl_cmd_run(struct ctl *ctl, const struct ctl_args *a);

/* Prints a job status object as "key: value" lines. */
void ctl_print_status(const cJSON *st);

#endif
