#include "tools.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "b64.h"
#include "consumer.h"
#include "exitcodes.h"
#include "jobspec.h"
#include "log.h"
#include "loop.h"
#include "pg.h"
#include "progress.h"
#include "sqlbuf.h"
#include "utf8.h"
#include "wtypes.h"

/* --errors: pages beyond this are refused rather than overflowing OFFSET. */
#define TOOLS_PAGE_MAX 100000000

struct tools {
	enum tools_mode mode;
	cJSON *doc;           /* the request; owns the strings below */
	const char *job_name; /* in doc */
	struct jobspec *spec;
	const char *meta_schema; /* in spec */
	PGconn *pg;
	struct consumer *c;
	cJSON *out; /* the success answer */
	const char *code;
	char err[1024];
};

/* Records why the tool failed and returns the class (WERR_RETRY: exit 1,
 * anything else: exit 2). */
static int tools_fail(struct tools *t, int rc, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int tools_fail(struct tools *t, int rc, const char *code, const char *fmt, ...)
{
	va_list ap;

	t->code = code;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* For a callee that already filled t->err: its class decides the code
 * (WERR_OK: nothing to record). */
static int tools_classed(struct tools *t, int rc)
{
	if (rc != WERR_OK)
		t->code = rc == WERR_RETRY ? "unreachable" : "config";
	return rc;
}

static int tools_read_stdin(struct tools *t, char **out, size_t *outlen)
{
	char err[256];

	if (loop_read_stdin(NULL, out, outlen, err, sizeof(err)) < 0)
		return tools_fail(t, WERR_FATAL, "bad_request", "%s", err);
	return WERR_OK;
}

/* Reads and parses the request; checks that the job has what the mode needs. */
static int tools_parse(struct tools *t)
{
	static struct js_errors errs; /* large; one request per process */
	const cJSON *name, *config;
	char *text = NULL, err[256];
	size_t len = 0;
	int rc;

	if ((rc = tools_read_stdin(t, &text, &len)) != WERR_OK)
		return rc;
	t->doc = cJSON_ParseWithLength(text, len);
	memset(text, 0, len); /* holds the password; doc has its own copy */
	free(text);
	if (t->doc == NULL || !cJSON_IsObject(t->doc))
		return tools_fail(t, WERR_FATAL, "bad_request",
				  "standard input is not a JSON object {\"job_id\", \"job_name\", \"config\"}");
	name = cJSON_GetObjectItemCaseSensitive(t->doc, "job_name");
	config = cJSON_GetObjectItemCaseSensitive(t->doc, "config");
	if (!cJSON_IsString(name) || name->valuestring[0] == '\0' || !cJSON_IsString(config))
		return tools_fail(t, WERR_FATAL, "bad_request",
				  "the request on standard input needs job_name and config (strings)");
	t->job_name = name->valuestring;
	memset(&errs, 0, sizeof(errs));
	if (jobspec_parse_yaml(config->valuestring, strlen(config->valuestring), &t->spec, &errs) < 0) {
		char msg[768];
		js_errors_format(&errs, msg, sizeof(msg));
		return tools_fail(t, WERR_FATAL, "config", "invalid job configuration: %s", msg);
	}
	/* From here on no log line may carry one of them. */
	if (jobspec_register_secrets(t->spec, err, sizeof(err)) < 0)
		return tools_fail(t, WERR_FATAL, "config", "%s", err);
	if (t->spec->database == NULL || t->spec->user == NULL)
		return tools_fail(t, WERR_FATAL, "config", "the job needs DATABASE and USER");
	if (t->mode != TOOLS_ERRORS && (t->spec->brokers == NULL || t->spec->topic == NULL))
		return tools_fail(t, WERR_FATAL, "config",
				  "the job needs KAFKA.INPUT.SOURCE.BROKERS and KAFKA.INPUT.SOURCE.TOPIC");
	t->meta_schema = progress_schema(t->spec);
	return WERR_OK;
}

/* ---- PostgreSQL (pg.h, progress.h) ---- */

static int tools_pg_connect(struct tools *t)
{
	char appname[128];

	snprintf(appname, sizeof(appname), "streamserver-%s-tool", t->job_name);
	return tools_classed(t, pg_connect(t->spec, t->job_name, appname, &t->pg, NULL, t->err, sizeof(t->err)));
}

/* A failed statement is classed by pg.h's one classifier: a lost connection
 * or an unknown SQLSTATE may go away (exit 1); privileges, missing objects
 * and data errors in the worker's own tables need someone to act (exit 2). */
static int tools_pg_query(struct tools *t, const char *sql, int n, const char *const *params, PGresult **out,
			  const char *what)
{
	return tools_classed(t, pg_query(t->pg, sql, n, params, out, what, NULL, t->err, sizeof(t->err)));
}

static int tools_pg_exec(struct tools *t, const char *sql, const char *what)
{
	return tools_classed(t, pg_exec(t->pg, sql, what, NULL, t->err, sizeof(t->err)));
}

/* Whether meta_schema.table exists. */
static int tools_pg_table_exists(struct tools *t, const char *table, bool *exists)
{
	char oid[32];
	int rc = pg_table_oid(t->pg, t->meta_schema, table, oid, sizeof(oid), t->err, sizeof(t->err));

	*exists = rc == WERR_OK && oid[0] != '\0';
	return tools_classed(t, rc);
}

/* "<prefix><quoted meta schema>.<table><suffix>"; malloc'd, NULL on out of memory. */
static char *tools_sql(struct tools *t, const char *prefix, const char *table, const char *suffix)
{
	struct sqlbuf sb = { 0 };

	sqlbuf_add(&sb, prefix);
	sqlbuf_ident(&sb, t->meta_schema);
	sqlbuf_add(&sb, ".");
	sqlbuf_add(&sb, table);
	sqlbuf_add(&sb, suffix);
	return sqlbuf_take(&sb);
}

/* ---- Kafka ---- */

static int tools_kafka_open(struct tools *t)
{
	int rc = consumer_open_tool(t->spec, t->job_name, TOOLS_KAFKA_WAIT_MS, &t->c, t->err, sizeof(t->err));

	return rc == WERR_OK ? rc : tools_classed(t, rc);
}

/* ---- --offsets ---- */

static int tools_offsets(struct tools *t)
{
	const int32_t *parts;
	size_t n, i;
	int64_t *stored = NULL, lo, hi, total = 0;
	cJSON *arr;
	bool exists = false;
	int rc;

	if ((rc = tools_kafka_open(t)) != WERR_OK)
		return rc;
	parts = consumer_partitions(t->c, &n);
	stored = calloc(n ? n : 1, sizeof(*stored));
	if (stored == NULL)
		return tools_fail(t, WERR_RETRY, "unreachable", "out of memory");
	for (i = 0; i < n; i++)
		stored[i] = -1;

	if ((rc = tools_pg_connect(t)) != WERR_OK || (rc = tools_pg_table_exists(t, PROGRESS_TABLE, &exists)) != WERR_OK)
		goto out;
	if (exists && (rc = tools_classed(t, progress_read(t->pg, t->meta_schema, t->job_name, t->spec->topic, parts,
							    n, stored, t->err, sizeof(t->err)))) != WERR_OK)
		goto out;

	t->out = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(t->out, "partitions");
	if (arr == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL || !cJSON_AddItemToArray(arr, o))
			goto oom;
		if ((rc = consumer_watermarks(t->c, parts[i], &lo, &hi, t->err, sizeof(t->err))) != WERR_OK) {
			tools_classed(t, rc);
			goto out;
		}
		if (cJSON_AddNumberToObject(o, "partition", parts[i]) == NULL ||
		    (stored[i] >= 0 ? cJSON_AddNumberToObject(o, "stored_offset", (double)stored[i])
				    : cJSON_AddNullToObject(o, "stored_offset")) == NULL ||
		    cJSON_AddNumberToObject(o, "low_watermark", (double)lo) == NULL ||
		    cJSON_AddNumberToObject(o, "high_watermark", (double)hi) == NULL ||
		    (stored[i] >= 0 ? cJSON_AddNumberToObject(o, "lag", (double)(hi - stored[i]))
				    : cJSON_AddNullToObject(o, "lag")) == NULL)
			goto oom;
		if (stored[i] >= 0)
			total += hi - stored[i];
	}
	if (cJSON_AddNumberToObject(t->out, "total_lag", (double)total) == NULL)
		goto oom;
	rc = WERR_OK;
	goto out;
oom:
	rc = tools_fail(t, WERR_RETRY, "unreachable", "out of memory");
out:
	free(stored);
	return rc;
}

/* ---- --reset ---- */

enum tools_reset_to {
	RESET_EARLIEST,
	RESET_LATEST,
	RESET_TIMESTAMP,
	RESET_OFFSETS,
};

/* An integer JSON number in [min, 2^53]. */
static bool tools_json_int(const cJSON *j, int64_t min, int64_t *v)
{
	if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble != floor(j->valuedouble) ||
	    j->valuedouble < (double)min || j->valuedouble > 9007199254740992.0)
		return false;
	*v = (int64_t)j->valuedouble;
	return true;
}

/* Parses "reset"; for "offsets", fills want (partition, offset) pairs. */
static int tools_reset_parse(struct tools *t, enum tools_reset_to *to, int64_t *timestamp,
			     struct part_offset **want, size_t *nwant)
{
	const cJSON *reset = cJSON_GetObjectItemCaseSensitive(t->doc, "reset");
	const cJSON *jto = cJSON_GetObjectItemCaseSensitive(reset, "to"), *list, *e;
	size_t i, n = 0;

	*want = NULL;
	*nwant = 0;
	if (!cJSON_IsObject(reset) || !cJSON_IsString(jto))
		return tools_fail(t, WERR_FATAL, "bad_request",
				  "the request needs \"reset\": {\"to\": \"earliest\" | \"latest\" | \"timestamp\" | "
				  "\"offsets\"}");
	if (strcmp(jto->valuestring, "earliest") == 0) {
		*to = RESET_EARLIEST;
	} else if (strcmp(jto->valuestring, "latest") == 0) {
		*to = RESET_LATEST;
	} else if (strcmp(jto->valuestring, "timestamp") == 0) {
		*to = RESET_TIMESTAMP;
		if (!tools_json_int(cJSON_GetObjectItemCaseSensitive(reset, "timestamp"), 0, timestamp))
			return tools_fail(t, WERR_FATAL, "bad_request",
					  "reset.timestamp: give milliseconds since 1970-01-01 UTC (an integer >= 0)");
	} else if (strcmp(jto->valuestring, "offsets") == 0) {
		*to = RESET_OFFSETS;
		list = cJSON_GetObjectItemCaseSensitive(reset, "offsets");
		if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
			return tools_fail(t, WERR_FATAL, "bad_request",
					  "reset.offsets: give a non-empty list [{\"partition\": N, \"offset\": N}]");
		*want = calloc((size_t)cJSON_GetArraySize(list), sizeof(**want));
		if (*want == NULL)
			return tools_fail(t, WERR_RETRY, "unreachable", "out of memory");
		cJSON_ArrayForEach(e, list)
		{
			int64_t p, o;

			if (!tools_json_int(cJSON_GetObjectItemCaseSensitive(e, "partition"), 0, &p) ||
			    p > INT32_MAX || !tools_json_int(cJSON_GetObjectItemCaseSensitive(e, "offset"), 0, &o))
				return tools_fail(t, WERR_FATAL, "bad_request",
						  "reset.offsets[%zu]: give {\"partition\": N, \"offset\": N}, both "
						  "integers >= 0",
						  n);
			for (i = 0; i < n; i++)
				if ((*want)[i].partition == (int32_t)p)
					return tools_fail(t, WERR_FATAL, "bad_request",
							  "reset.offsets: partition %d is listed twice", (int)p);
			(*want)[n].partition = (int32_t)p;
			(*want)[n].next_offset = o;
			n++;
		}
		*nwant = n;
	} else {
		return tools_fail(t, WERR_FATAL, "bad_request",
				  "reset.to: \"%.64s\" is not one of earliest, latest, timestamp, offsets",
				  jto->valuestring);
	}
	return WERR_OK;
}

/* Writes the offsets into the progress table, creating it as the worker does
 * when it is missing; the job is stopped while this runs. */
static int tools_reset_write(struct tools *t, const struct part_offset *offs, size_t n)
{
	int rc;

	if ((rc = tools_pg_connect(t)) != WERR_OK)
		return rc;
	return tools_classed(t, progress_reset(t->pg, t->meta_schema, t->job_name, t->spec->topic, offs, n, t->err,
					       sizeof(t->err)));
}

static int tools_reset(struct tools *t)
{
	enum tools_reset_to to = RESET_EARLIEST;
	int64_t timestamp = 0, lo, hi;
	struct part_offset *want = NULL, *offs = NULL;
	size_t nwant = 0, n, i, j, noffs = 0;
	const int32_t *parts;
	int64_t *at = NULL;
	cJSON *arr;
	char kerr[512];
	int rc;

	if ((rc = tools_reset_parse(t, &to, &timestamp, &want, &nwant)) != WERR_OK)
		goto out;
	if ((rc = tools_kafka_open(t)) != WERR_OK)
		goto out;
	parts = consumer_partitions(t->c, &n);
	for (i = 0; i < nwant; i++) {
		bool found = false;
		for (j = 0; j < n && !found; j++)
			found = parts[j] == want[i].partition;
		if (!found) {
			rc = tools_fail(t, WERR_FATAL, "no_partition",
					"reset.offsets: partition %d is not one of the job's partitions of topic %s "
					"(%zu partition(s)%s)",
					(int)want[i].partition, t->spec->topic, n,
					t->spec->partitions != NULL ? ", KAFKA.INPUT.SOURCE.PARTITIONS" : "");
			goto out;
		}
	}
	offs = calloc(n ? n : 1, sizeof(*offs));
	at = calloc(n ? n : 1, sizeof(*at));
	if (offs == NULL || at == NULL) {
		rc = tools_fail(t, WERR_RETRY, "unreachable", "out of memory");
		goto out;
	}
	if (to == RESET_TIMESTAMP &&
	    (rc = consumer_offsets_for_time(t->c, timestamp, parts, n, at, t->err, sizeof(t->err))) != WERR_OK) {
		tools_classed(t, rc);
		goto out;
	}
	for (i = 0; i < n; i++) {
		int64_t o = -1;

		if (to == RESET_OFFSETS) {
			for (j = 0; j < nwant; j++)
				if (want[j].partition == parts[i])
					o = want[j].next_offset;
			if (o < 0)
				continue; /* not listed: keeps its stored offset */
		}
		if ((rc = consumer_watermarks(t->c, parts[i], &lo, &hi, t->err, sizeof(t->err))) != WERR_OK) {
			tools_classed(t, rc);
			goto out;
		}
		switch (to) {
		case RESET_EARLIEST:
			o = lo;
			break;
		case RESET_LATEST:
			o = hi;
			break;
		case RESET_TIMESTAMP:
			o = at[i] >= 0 ? at[i] : hi; /* nothing at or after it: the end */
			break;
		case RESET_OFFSETS:
			if (o < lo || o > hi) {
				rc = tools_fail(t, WERR_FATAL, "out_of_range",
						"reset.offsets: offset %" PRId64 " of partition %d is outside the "
						"valid range %" PRId64 "..%" PRId64
						" (low watermark..high watermark)",
						o, (int)parts[i], lo, hi);
				goto out;
			}
			break;
		}
		offs[noffs].partition = parts[i];
		offs[noffs].next_offset = o;
		noffs++;
	}

	if ((rc = tools_reset_write(t, offs, noffs)) != WERR_OK)
		goto out;
	log_info("job %s: progress of topic %s reset for %zu partition(s)", t->job_name, t->spec->topic, noffs);

	t->out = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(t->out, "partitions");
	if (arr == NULL)
		goto oom;
	for (i = 0; i < noffs; i++) {
		cJSON *o = cJSON_CreateObject();
		if (o == NULL || !cJSON_AddItemToArray(arr, o) ||
		    cJSON_AddNumberToObject(o, "partition", offs[i].partition) == NULL ||
		    cJSON_AddNumberToObject(o, "offset", (double)offs[i].next_offset) == NULL)
			goto oom;
	}
	/* The database holds the truth; the group's offsets follow it. */
	if (consumer_commit_sync(t->c, offs, noffs, kerr, sizeof(kerr)) != WERR_OK) {
		log_warn("%s (the progress table was reset)", kerr);
		if (cJSON_AddFalseToObject(t->out, "kafka_committed") == NULL ||
		    cJSON_AddStringToObject(t->out, "warning", kerr) == NULL)
			goto oom;
	} else if (cJSON_AddTrueToObject(t->out, "kafka_committed") == NULL) {
		goto oom;
	}
	rc = WERR_OK;
	goto out;
oom:
	rc = tools_fail(t, WERR_RETRY, "unreachable", "out of memory");
out:
	free(want);
	free(offs);
	free(at);
	return rc;
}

/* ---- --errors ---- */

/* Adds name and name_base64 for one bytea column of the row. */
static int tools_errors_bytes(cJSON *o, const PGresult *res, int row, int col, const char *name)
{
	char b64name[32];
	unsigned char *bytes;
	size_t len;
	bool is_nul;
	int rc = -1;

	snprintf(b64name, sizeof(b64name), "%s_base64", name);
	if (PQgetisnull(res, row, col))
		return cJSON_AddNullToObject(o, name) != NULL && cJSON_AddNullToObject(o, b64name) != NULL ? 0 : -1;
	bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &len);
	if (bytes == NULL)
		return -1;
	if (utf8_text_prefix((const char *)bytes, len, &is_nul) == len) {
		char *text = malloc(len + 1);
		if (text != NULL) {
			memcpy(text, bytes, len);
			text[len] = '\0';
			if (cJSON_AddStringToObject(o, name, text) != NULL && cJSON_AddNullToObject(o, b64name) != NULL)
				rc = 0;
			free(text);
		}
	} else {
		size_t n64 = b64_encoded_len(len);
		char *b64 = n64 < SIZE_MAX ? malloc(n64 + 1) : NULL;
		if (b64 != NULL)
			b64[b64_encode(b64, bytes, len)] = '\0';
		if (b64 != NULL && cJSON_AddNullToObject(o, name) != NULL &&
		    cJSON_AddStringToObject(o, b64name, b64) != NULL)
			rc = 0;
		free(b64);
	}
	PQfreemem(bytes);
	return rc;
}

static int tools_errors_page(struct tools *t, int64_t *page, int64_t *size)
{
	const cJSON *jp = cJSON_GetObjectItemCaseSensitive(t->doc, "page");
	const cJSON *js = cJSON_GetObjectItemCaseSensitive(t->doc, "page_size");

	*page = 1;
	*size = TOOLS_PAGE_SIZE_DEFAULT;
	if (jp != NULL && !cJSON_IsNull(jp) && (!tools_json_int(jp, 1, page) || *page > TOOLS_PAGE_MAX))
		return tools_fail(t, WERR_FATAL, "bad_request", "page: give an integer from 1 to %d", TOOLS_PAGE_MAX);
	if (js != NULL && !cJSON_IsNull(js) && (!tools_json_int(js, 1, size) || *size > TOOLS_PAGE_SIZE_MAX))
		return tools_fail(t, WERR_FATAL, "bad_request", "page_size: give an integer from 1 to %d",
				  TOOLS_PAGE_SIZE_MAX);
	return WERR_OK;
}

static int tools_errors(struct tools *t)
{
	static const char *const names[] = { "id", "topic", "partition", "offset" };
	int64_t page, size, total = 0;
	char *count_sql = NULL, *page_sql = NULL, limit[24], offset[24];
	const char *params[3];
	PGresult *res = NULL;
	cJSON *items;
	bool exists = false, begun = false;
	int rc, r, k;

	if ((rc = tools_errors_page(t, &page, &size)) != WERR_OK)
		return rc;
	t->out = cJSON_CreateObject();
	items = cJSON_AddArrayToObject(t->out, "items");
	if (items == NULL)
		goto oom;
	if ((rc = tools_pg_connect(t)) != WERR_OK || (rc = tools_pg_table_exists(t, PROGRESS_ERRORS_TABLE, &exists)) != WERR_OK)
		goto out;
	if (!exists)
		goto done;
	count_sql = tools_sql(t, "SELECT count(*) FROM ", PROGRESS_ERRORS_TABLE, " WHERE job_name = $1");
	page_sql = tools_sql(t,
			     "SELECT id, topic, partition, \"offset\", key, value, error, "
			     "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM ",
			     PROGRESS_ERRORS_TABLE, " WHERE job_name = $1 ORDER BY id DESC LIMIT $2 OFFSET $3");
	if (count_sql == NULL || page_sql == NULL)
		goto oom;
	snprintf(limit, sizeof(limit), "%" PRId64, size);
	snprintf(offset, sizeof(offset), "%" PRId64, (page - 1) * size);
	params[0] = t->job_name;
	params[1] = limit;
	params[2] = offset;

	/* The count and the page from one snapshot. */
	if ((rc = tools_pg_exec(t, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the transaction")) !=
	    WERR_OK)
		goto out;
	begun = true;
	if ((rc = tools_pg_query(t, count_sql, 1, params, &res, "counting the error table's rows")) != WERR_OK)
		goto out;
	total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if ((rc = tools_pg_query(t, page_sql, 3, params, &res, "reading the error table")) != WERR_OK)
		goto out;
	for (r = 0; r < PQntuples(res); r++) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL || !cJSON_AddItemToArray(items, o))
			goto oom;
		for (k = 0; k < 4; k++)
			if (k == 1 ? cJSON_AddStringToObject(o, names[k], PQgetvalue(res, r, k)) == NULL
				   : cJSON_AddNumberToObject(o, names[k],
							     (double)strtoll(PQgetvalue(res, r, k), NULL, 10)) == NULL)
				goto oom;
		if (tools_errors_bytes(o, res, r, 4, "key") < 0 || tools_errors_bytes(o, res, r, 5, "value") < 0 ||
		    cJSON_AddStringToObject(o, "error", PQgetvalue(res, r, 6)) == NULL ||
		    cJSON_AddStringToObject(o, "created_at", PQgetvalue(res, r, 7)) == NULL)
			goto oom;
	}
	rc = tools_pg_exec(t, "COMMIT", "ending the transaction");
	begun = false;
	if (rc != WERR_OK)
		goto out;
done:
	if (cJSON_AddNumberToObject(t->out, "total", (double)total) == NULL)
		goto oom;
	rc = WERR_OK;
	goto out;
oom:
	rc = tools_fail(t, WERR_RETRY, "unreachable", "out of memory");
out:
	if (begun && PQstatus(t->pg) == CONNECTION_OK) {
		PGresult *rb = PQexec(t->pg, "ROLLBACK");
		PQclear(rb);
	}
	PQclear(res);
	free(count_sql);
	free(page_sql);
	return rc;
}

/* ---- driver ---- */

static void tools_free(struct tools *t)
{
	if (t->doc != NULL) {
		cJSON *cfg = cJSON_GetObjectItemCaseSensitive(t->doc, "config");
		if (cJSON_IsString(cfg))
			memset(cfg->valuestring, 0, strlen(cfg->valuestring)); /* the password */
	}
	consumer_free(t->c);
	if (t->pg != NULL)
		PQfinish(t->pg);
	jobspec_free(t->spec);
	cJSON_Delete(t->out);
	cJSON_Delete(t->doc);
}

int tools_run(enum tools_mode mode)
{
	static const char *const tags[] = { "offsets", "reset", "errors" };
	struct tools t = { 0 };
	cJSON *fail = NULL;
	char *json = NULL;
	int rc, code;

	t.mode = mode;
	log_set_tag(tags[mode]);
	rc = tools_parse(&t);
	if (rc == WERR_OK) {
		switch (mode) {
		case TOOLS_OFFSETS:
			rc = tools_offsets(&t);
			break;
		case TOOLS_RESET:
			rc = tools_reset(&t);
			break;
		case TOOLS_ERRORS:
			rc = tools_errors(&t);
			break;
		}
	}
	if (rc == WERR_OK) {
		code = 0;
		json = cJSON_PrintUnformatted(t.out);
	} else {
		cJSON *e;

		code = rc == WERR_RETRY ? WORKER_EXIT_RETRY : WORKER_EXIT_CONFIG;
		log_error("%s", t.err);
		fail = cJSON_CreateObject();
		e = cJSON_AddObjectToObject(fail, "error");
		if (e != NULL && cJSON_AddStringToObject(e, "code", t.code != NULL ? t.code : "unreachable") != NULL &&
		    cJSON_AddStringToObject(e, "message", t.err) != NULL)
			json = cJSON_PrintUnformatted(fail);
	}
	if (json == NULL) {
		fprintf(stderr, "streamworker --%s: out of memory\n", tags[mode]);
		code = WORKER_EXIT_RETRY;
	} else {
		fputs(json, stdout);
		fputc('\n', stdout);
		if (fflush(stdout) != 0)
			code = WORKER_EXIT_RETRY;
	}
	free(json);
	cJSON_Delete(fail);
	tools_free(&t);
	return code;
}
