/* streamctl's job files: whether one is YAML, the job name it gives, and the
 * body that creates a professional-mode job from its YAML.  Shared by the
 * commands (ctl_cmd.c) and jobs load (ctl_load.c), so neither needs the
 * other's header for them.
 */
#ifndef SS_CTL_JOBFILE_H
#define SS_CTL_JOBFILE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* True when the file is to be read as YAML (by its extension: .yaml/.yml,
 * else by content: anything not starting with '{'). */
bool ctl_file_is_yaml(const char *path, const char *text);

/* The body of a professional-mode job: {"name","source_id","mode":
 * "professional","config":yaml}.  Caller owns it. */
cJSON *ctl_job_body_yaml(const char *yaml, const char *name, long long source_id);

/* The name a job file gives when --name is absent: its base name without
 * the extension, into buf. */
void ctl_name_from_file(const char *path, char *buf, size_t buflen);

#endif
