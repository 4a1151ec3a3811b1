/* streamctl's job files (see ctl_jobfile.h). */
#include "ctl_jobfile.h"

#include <stdio.h>
#include <string.h>

bool ctl_file_is_yaml(const char *path, const char *text)
{
	size_t n = strlen(path);

	if ((n >= 5 && strcmp(path + n - 5, ".yaml") == 0) ||
	    (n >= 4 && strcmp(path + n - 4, ".yml") == 0))
		return true;
	if (n >= 5 && strcmp(path + n - 5, ".json") == 0)
		return false;
	text += strspn(text, " \t\r\n");
	return *text != '{';
}

void ctl_name_from_file(const char *path, char *buf, size_t buflen)
{
	const char *base = strrchr(path, '/');
	char *dot;

	snprintf(buf, buflen, "%s", base != NULL ? base + 1 : path);
	dot = strrchr(buf, '.');
	if (dot != NULL && dot != buf)
		*dot = '\0';
}

cJSON *ctl_job_body_yaml(const char *yaml, const char *name, long long source_id)
{
	cJSON *body = cJSON_CreateObject();

	if (body == NULL)
		return NULL;
	if ((name != NULL && cJSON_AddStringToObject(body, "name", name) == NULL) ||
	    (source_id > 0 && cJSON_AddNumberToObject(body, "source_id", (double)source_id) == NULL) ||
	    cJSON_AddStringToObject(body, "mode", "professional") == NULL ||
	    cJSON_AddStringToObject(body, "config", yaml) == NULL) {
		cJSON_Delete(body);
		return NULL;
	}
	return body;
}
