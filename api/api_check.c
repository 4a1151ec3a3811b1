#include "api_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "api_worker.h"
#include "exitcodes.h"
#include "log.h"

cJSON *api_check_error(const char *field, int line, const char *code, const char *message)
{
	cJSON *e = cJSON_CreateObject();

	if (e == NULL)
		return NULL;
	if (field != NULL)
		cJSON_AddStringToObject(e, "field", field);
	else
		cJSON_AddNullToObject(e, "field");
	if (line > 0)
		cJSON_AddNumberToObject(e, "line", line);
	else
		cJSON_AddNullToObject(e, "line");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	return e;
}

/* One error of the worker's answer, scrubbed, with the line of its field. */
static cJSON *api_check_worker_error(const cJSON *item, const struct jobspec *spec)
{
	const char *field = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "field"));
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "code"));
	const char *message =
		cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "message"));
	char *clean_field = field != NULL ? jobspec_scrub(spec, field) : NULL;
	char *clean_message = jobspec_scrub(spec, message != NULL && message[0] != '\0'
							  ? message
							  : "the check gave no reason");
	cJSON *e = NULL;

	if (clean_message != NULL && (field == NULL || clean_field != NULL))
		e = api_check_error(clean_field, field != NULL ? jobspec_line(spec, field) : 0,
				    code != NULL ? code : "other", clean_message);
	free(clean_field);
	free(clean_message);
	return e;
}

/* Parses the worker's answer into out.  Returns false when it printed no
 * answer; *valid is its verdict, *unreachable whether it could not reach the
 * database. */
static bool api_check_answer(const struct api_worker_result *p, const struct jobspec *spec,
			     struct api_check *out, bool *valid, bool *unreachable)
{
	const cJSON *item;
	cJSON *root;

	root = p->answer;
	if (root == NULL)
		return false;
	*valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "valid"));
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "errors")) {
		const char *code =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "code"));

		if (code != NULL && strcmp(code, "unreachable") == 0)
			*unreachable = true;
		cJSON_AddItemToArray(out->errors, api_check_worker_error(item, spec));
	}
	item = cJSON_GetObjectItemCaseSensitive(root, "kafka");
	if (cJSON_IsObject(item))
		out->kafka = cJSON_Duplicate(item, true);
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "statements")) {
		char *clean;

		if (!cJSON_IsString(item))
			continue;
		clean = jobspec_scrub(spec, item->valuestring);
		if (clean != NULL)
			cJSON_AddItemToArray(out->statements, cJSON_CreateString(clean));
		free(clean);
	}
	return true;
}

/* Whether the database was checked, from how the worker ended and what it
 * said; why (code, message) when it was not and the answer does not say. */
static bool api_check_verdict(const struct api_worker_result *p, bool answered, bool unreachable,
			      const char **code, char *why, size_t whylen)
{
	int status = p->reaped && WIFEXITED(p->wstatus) ? WEXITSTATUS(p->wstatus) : -1;

	*code = "other";
	if (p->timed_out) {
		*code = "unreachable";
		snprintf(why, whylen, "database check timed out after %d s",
			 API_WORKER_TIMEOUT_MS / 1000);
		return false;
	}
	if (p->too_large) {
		snprintf(why, whylen, "the database check printed more than %d bytes",
			 API_WORKER_OUTPUT_MAX);
		return false;
	}
	if (p->reaped && WIFSIGNALED(p->wstatus)) {
		snprintf(why, whylen, "the database check was killed by signal %d",
			 WTERMSIG(p->wstatus));
		return false;
	}
	if (status == WORKER_EXIT_RETRY || (answered && unreachable)) {
		if (!answered) {
			*code = "unreachable";
			snprintf(why, whylen, "the database cannot be reached");
		}
		return false;
	}
	if (!answered) {
		if (status >= 0)
			snprintf(why, whylen,
				 "the database check gave no answer (streamworker --check exited "
				 "with status %d)",
				 status);
		else
			snprintf(why, whylen, "the database check gave no answer");
		return false;
	}
	if (p->reaped && status != 0 && status != WORKER_EXIT_CONFIG) {
		snprintf(why, whylen, "the database check failed (streamworker --check exited "
				      "with status %d)",
			 status);
		return false;
	}
	return true;
}

void api_check_run(const char *worker_path, const struct jobspec *spec, int64_t job_id,
		   const char *job_name, bool with_kafka, struct api_check *out)
{
	struct api_worker_result res;
	cJSON *extra = with_kafka ? NULL : cJSON_CreateObject();
	char why[320] = "";
	const char *code = "other";
	bool answered = false, valid = false, unreachable = false;

	memset(&res, 0, sizeof(res));
	memset(out, 0, sizeof(*out));
	out->errors = cJSON_CreateArray();
	out->statements = cJSON_CreateArray();
	if (out->errors == NULL || out->statements == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto out;
	}
	if (!with_kafka && (extra == NULL || cJSON_AddFalseToObject(extra, "kafka") == NULL)) {
		snprintf(why, sizeof(why), "out of memory");
		goto out;
	}
	api_worker_run(worker_path, "--check", spec, job_id, job_name, extra, &res);
	if (!res.ran) {
		snprintf(why, sizeof(why), "%s",
			 worker_path == NULL ? "no worker to check the job with" : res.err);
		goto out;
	}
	answered = api_check_answer(&res, spec, out, &valid, &unreachable);
	out->database_checked =
		api_check_verdict(&res, answered, unreachable, &code, why, sizeof(why));
	out->valid = out->database_checked && valid && cJSON_GetArraySize(out->errors) == 0;
	/* Not valid always comes with a reason. */
	if (!out->valid && why[0] == '\0' && cJSON_GetArraySize(out->errors) == 0)
		snprintf(why, sizeof(why), "the database check failed without saying why");
out:
	if (why[0] != '\0') {
		log_warn("job %s: check: %s", job_name != NULL ? job_name : "(unnamed)", why);
		if (out->errors != NULL)
			cJSON_AddItemToArray(out->errors, api_check_error(NULL, 0, code, why));
	}
	api_worker_result_free(&res);
	cJSON_Delete(extra);
}

void api_check_free(struct api_check *chk)
{
	if (chk == NULL)
		return;
	cJSON_Delete(chk->errors);
	cJSON_Delete(chk->statements);
	cJSON_Delete(chk->kafka);
	chk->errors = chk->statements = chk->kafka = NULL;
}
