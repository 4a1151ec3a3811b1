#include "check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "exitcodes.h"
#include "jobspec.h"
#include "log.h"
#include "loop.h"
#include "check_pg.h"
#include "check_registry.h"
#include "consumer.h"
#include "wtypes.h"

struct check_report {
	cJSON *errors;     /* array */
	cJSON *statements; /* array */
	size_t ndefinition; /* errors[0..ndefinition) come from the definition's validation */
	size_t nproblems;
	size_t nunreachable;
	bool oom;
};

static void check_add(struct check_report *rep, const char *field, const char *code, const char *message)
{
	cJSON *e = cJSON_CreateObject();

	if (e == NULL || (field != NULL ? cJSON_AddStringToObject(e, "field", field)
				       : cJSON_AddNullToObject(e, "field")) == NULL ||
	    cJSON_AddStringToObject(e, "code", code) == NULL ||
	    cJSON_AddStringToObject(e, "message", message) == NULL || !cJSON_AddItemToArray(rep->errors, e)) {
		cJSON_Delete(e);
		rep->oom = true;
		return;
	}
	if (strcmp(code, "unreachable") == 0)
		rep->nunreachable++;
	else
		rep->nproblems++;
}

/* The length of path without a trailing .NAME, .EXPRESSION or .TYPE: the
 * list item a problem is about. */
static size_t check_item_len(const char *path)
{
	static const char *const leaves[] = { ".NAME", ".EXPRESSION", ".TYPE" };
	size_t n = strlen(path), i, k;

	for (i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		k = strlen(leaves[i]);
		if (n > k && strcmp(path + n - k, leaves[i]) == 0)
			return n - k;
	}
	return n;
}

/* A database problem about an item the definition's validation already
 * reported would only say the same thing again. */
static bool check_reported(const struct check_report *rep, const char *field)
{
	size_t i, n;

	if (field == NULL)
		return false;
	n = check_item_len(field);
	for (i = 0; i < rep->ndefinition; i++) {
		const cJSON *e = cJSON_GetArrayItem(rep->errors, (int)i);
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "field");
		if (cJSON_IsString(f) && check_item_len(f->valuestring) == n &&
		    strncmp(f->valuestring, field, n) == 0)
			return true;
	}
	return false;
}

static void check_on_problem(void *ctx, const char *field, const char *code, const char *message)
{
	struct check_report *rep = ctx;

	if (!check_reported(rep, field))
		check_add(rep, field, code, message);
}

static void check_on_statement(void *ctx, const char *sql)
{
	struct check_report *rep = ctx;
	cJSON *s = cJSON_CreateString(sql);

	if (s == NULL || !cJSON_AddItemToArray(rep->statements, s)) {
		cJSON_Delete(s);
		rep->oom = true;
	}
}

static void check_add_js_errors(struct check_report *rep, const struct js_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->count; i++)
		check_add(rep, errs->items[i].path[0] ? errs->items[i].path : NULL, "other", errs->items[i].message);
	if (errs->truncated)
		check_add(rep, NULL, "other", "more problems than listed; fix these and check again");
}

/* Whether the database side can be checked at all. */
static bool check_db_possible(const struct jobspec *spec)
{
	return spec->database != NULL && spec->user != NULL && spec->table != NULL &&
	       (spec->key.present || spec->value.present);
}

/* How long the check waits for the brokers when it asks about PARTITIONS. */
#define CHECK_KAFKA_WAIT_MS 3000

/* With PARTITIONS, where the brokers answer: every listed partition exists
 * (and the topic does).  Brokers that do not answer are not a problem here:
 * the job waits for them when it runs. */
static void check_partitions(const struct jobspec *spec, struct check_report *rep)
{
	static const char prefix[] = "KAFKA.INPUT.SOURCE.PARTITIONS: ";
	struct consumer *c = NULL;
	char err[1024];
	int rc = consumer_open_tool(spec, "check", CHECK_KAFKA_WAIT_MS, &c, err, sizeof(err));

	consumer_free(c);
	if (rc != WERR_FATAL)
		return;
	if (strncmp(err, prefix, sizeof(prefix) - 1) == 0)
		check_add(rep, "KAFKA.INPUT.SOURCE.PARTITIONS", "other", err + sizeof(prefix) - 1);
	else if (strstr(err, "does not exist") != NULL)
		check_add(rep, "KAFKA.INPUT.SOURCE.TOPIC", "other", err);
}

/* Parses the job and checks it; fills rep. Returns the class of a failure to
 * check (WERR_RETRY: unreachable), else WERR_OK. */
static int check_job(char *text, size_t len, struct check_report *rep)
{
	static struct js_errors errs; /* large; one job per process */
	const cJSON *name, *config;
	struct jobspec *spec = NULL;
	char err[256];
	cJSON *doc = cJSON_ParseWithLength(text, len);
	int rc = WERR_OK;

	memset(text, 0, len); /* holds the password; doc has its own copy */
	if (doc == NULL || !cJSON_IsObject(doc)) {
		check_add(rep, NULL, "other", "standard input is not a JSON object {\"job_id\", \"job_name\", \"config\"}");
		goto out;
	}
	name = cJSON_GetObjectItemCaseSensitive(doc, "job_name");
	config = cJSON_GetObjectItemCaseSensitive(doc, "config");
	if (!cJSON_IsString(config)) {
		check_add(rep, NULL, "other", "the job on standard input needs config (a string: the job's YAML)");
		goto out;
	}
	memset(&errs, 0, sizeof(errs));
	if (jobspec_parse_yaml(config->valuestring, strlen(config->valuestring), &spec, &errs) < 0) {
		check_add_js_errors(rep, &errs);
		goto out;
	}
	/* From here on no log line may carry one of them. */
	if (jobspec_register_secrets(spec, err, sizeof(err)) < 0) {
		check_add(rep, "KAFKA.PROPERTIES", "other", err);
		goto out;
	}
	memset(&errs, 0, sizeof(errs));
	if (jobspec_validate(spec, &errs) < 0) {
		check_add_js_errors(rep, &errs);
	} else {
		if (spec->partitions != NULL)
			check_partitions(spec, rep);
		check_registry_run(spec, check_on_problem, rep);
	}
	rep->ndefinition = (size_t)cJSON_GetArraySize(rep->errors);
	if (check_db_possible(spec)) {
		struct check_pg_ops ops = { check_on_problem, check_on_statement, rep };
		const char *job_name =
			cJSON_IsString(name) && name->valuestring[0] != '\0' ? name->valuestring : "check";
		rc = check_pg_run(spec, job_name, &ops);
	}
out:
	jobspec_free(spec);
	if (doc != NULL) {
		cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "config");
		if (cJSON_IsString(cfg))
			memset(cfg->valuestring, 0, strlen(cfg->valuestring));
	}
	cJSON_Delete(doc);
	return rc;
}

int check_run(void)
{
	struct check_report rep = { 0 };
	cJSON *out = NULL;
	char err[512], *text = NULL, *json = NULL;
	size_t len = 0;
	int rc = WERR_OK, code;

	log_set_tag("check");
	rep.errors = cJSON_CreateArray();
	rep.statements = cJSON_CreateArray();
	if (rep.errors == NULL || rep.statements == NULL)
		goto oom;
	if (loop_read_stdin(NULL, &text, &len, err, sizeof(err)) < 0)
		check_add(&rep, NULL, "other", err);
	else
		rc = check_job(text, len, &rep);
	free(text);

	if (rep.oom)
		goto oom;
	if (rep.nproblems > 0 || (rc != WERR_OK && rc != WERR_RETRY))
		code = WORKER_EXIT_CONFIG;
	else if (rep.nunreachable > 0 || rc == WERR_RETRY)
		code = WORKER_EXIT_RETRY;
	else
		code = 0;
	out = cJSON_CreateObject();
	if (out == NULL || cJSON_AddBoolToObject(out, "valid", code == 0) == NULL)
		goto oom;
	if (!cJSON_AddItemToObject(out, "errors", rep.errors))
		goto oom;
	rep.errors = NULL;
	if (!cJSON_AddItemToObject(out, "statements", rep.statements))
		goto oom;
	rep.statements = NULL;
	json = cJSON_PrintUnformatted(out);
	if (json == NULL)
		goto oom;
	fputs(json, stdout);
	fputc('\n', stdout);
	if (fflush(stdout) != 0)
		code = WORKER_EXIT_RETRY;
	free(json);
	cJSON_Delete(out);
	return code;
oom:
	fprintf(stderr, "streamworker --check: out of memory\n");
	cJSON_Delete(rep.errors);
	cJSON_Delete(rep.statements);
	cJSON_Delete(out);
	return WORKER_EXIT_RETRY;
}
