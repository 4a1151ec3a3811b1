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

/* True when the file is to be read as YAML (by its extension: .yaml/.yml,
 * else by content: anything not starting with '{'). */
bool ctl_file_is_yaml(const char *path, const char *text);

/* The body of a professional-mode job: {"name","source_id","mode":
 * "professional","config":yaml}.  Caller owns it. */
cJSON *ctl_job_body_yaml(const char *yaml, const char *name, long long source_id);

/* The name a job file gives when --name is absent: its base name without
 * the extension, into buf. */
void ctl_name_from_file(const char *path, char *buf, size_t buflen);

/* Prints a job status object as "key: value" lines. */
void ctl_print_status(const cJSON *st);

#endif
