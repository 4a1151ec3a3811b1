#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "log.h"

struct registry {
	char *addrs[REGISTRY_ADDRS_MAX];
	size_t naddrs;
	size_t preferred; /* the address that answered last: tried first */
	char *user, *password;
	CURL *curl;
	struct registry_schema *cache; /* sorted by id */
	size_t ncache, cache_cap;
	int rounds, pause_ms;
};

struct rbody {
	char *data;
	size_t len, cap;
	bool too_large;
};

void registry_schema_free(struct registry_schema *s)
{
	if (s == NULL)
		return;
	free(s->text);
	free(s);
}

void registry_free(struct registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->naddrs; i++)
		free(r->addrs[i]);
	if (r->password != NULL)
		explicit_bzero(r->password, strlen(r->password));
	free(r->user);
	free(r->password);
	if (r->curl != NULL)
		curl_easy_cleanup(r->curl);
	for (size_t i = 0; i < r->ncache; i++)
		free(r->cache[i].text);
	free(r->cache);
	free(r);
}

struct registry *registry_new(const char *addrs, const char *user, const char *password, char *err,
			      size_t errlen)
{
	struct registry *r = calloc(1, sizeof(*r));
	const char *p = addrs;

	if (r == NULL)
		goto oom;
	r->rounds = 3;
	r->pause_ms = 1000;
	if (addrs == NULL || addrs[0] == '\0') {
		snprintf(err, errlen, "SCHEMA_REGISTRY_ADDR is empty: give the registry's URL");
		goto fail;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		while (n > 0 && *p == ' ') {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '/'))
			n--; /* "{base}/schemas/..." without a double slash */
		if (n == 0 || r->naddrs == REGISTRY_ADDRS_MAX) {
			snprintf(err, errlen, "SCHEMA_REGISTRY_ADDR: %s", n == 0 ? "an empty URL in the list"
									  : "more than 16 registries");
			goto fail;
		}
		if ((r->addrs[r->naddrs++] = strndup(p, n)) == NULL)
			goto oom;
		if (end == NULL)
			break;
		p = end + 1;
	}
	if ((user != NULL && (r->user = strdup(user)) == NULL) ||
	    (password != NULL && (r->password = strdup(password)) == NULL))
		goto oom;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (r->curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot start libcurl for the schema registry");
		goto fail;
	}
	return r;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	registry_free(r);
	return NULL;
}

void registry_set_retry(struct registry *r, int rounds, int pause_ms)
{
	r->rounds = rounds > 0 ? rounds : 1;
	r->pause_ms = pause_ms >= 0 ? pause_ms : 0;
}

static size_t rbody_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct rbody *b = userdata;
	size_t n = size * nmemb;

	if (n > REGISTRY_BODY_MAX - b->len) {
		b->too_large = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static void registry_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The registry's {"error_code":N,"message":"..."} as text, for messages;
 * returns N, or 0 when the body has none. */
static int registry_error_text(const struct rbody *b, char *out, size_t outlen)
{
	cJSON *j = b->data != NULL ? cJSON_ParseWithLength(b->data, b->len) : NULL;
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "error_code");
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message"));
	int n = cJSON_IsNumber(code) ? code->valueint : 0;

	out[0] = '\0';
	if (cJSON_IsNumber(code) || msg != NULL)
		snprintf(out, outlen, " (error_code %d: %.200s)", n, msg != NULL ? msg : "");
	cJSON_Delete(j);
	return n;
}

/* GET {base}{path} on each address in turn, rounds times.  On REGISTRY_OK
 * *b holds a 200 answer's body. */
static int registry_get(struct registry *r, const char *path, const char *what, struct rbody *b, char *err,
			size_t errlen)
{
	struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, "
						   "application/json");
	int rc = REGISTRY_RETRY, pause = r->pause_ms;
	char last[512] = "";

	for (int round = 0; round < r->rounds; round++) {
		if (round > 0) {
			log_warn("schema registry: %s; trying again in %d ms", last, pause);
			registry_sleep_ms(pause);
			pause *= 2;
		}
		for (size_t k = 0; k < r->naddrs; k++) {
			size_t a = (r->preferred + k) % r->naddrs;
			char url[4096], cerr[CURL_ERROR_SIZE] = "", detail[256];
			long status = 0;
			int code;
			CURLcode cc;

			snprintf(url, sizeof(url), "%s%s", r->addrs[a], path);
			b->len = 0;
			b->too_large = false;
			curl_easy_reset(r->curl);
			curl_easy_setopt(r->curl, CURLOPT_URL, url);
			curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
			curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
			curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, 15000L);
			curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdr);
			curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, rbody_write);
			curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, b);
			curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, cerr);
			if (r->user != NULL) {
				curl_easy_setopt(r->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
				curl_easy_setopt(r->curl, CURLOPT_USERNAME, r->user);
				curl_easy_setopt(r->curl, CURLOPT_PASSWORD, r->password != NULL ? r->password : "");
			}
			cc = curl_easy_perform(r->curl);
			if (cc != CURLE_OK) {
				snprintf(last, sizeof(last), "%s: %s", r->addrs[a],
					 b->too_large ? "the answer is larger than 8 MiB"
					 : cerr[0] != '\0' ? cerr : curl_easy_strerror(cc));
				continue;
			}
			curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
			code = registry_error_text(b, detail, sizeof(detail));
			if (status == 200) {
				r->preferred = a;
				rc = REGISTRY_OK;
				goto out;
			}
			/* 40401 subject, 40402 version, 40403 schema not found: the
			 * registry's own answer.  A 404 without one is a wrong URL,
			 * which must not send every message to the error table. */
			if (status == 404 && code >= 40401 && code <= 40403) {
				snprintf(err, errlen, "the schema registry %s has no %s%s", r->addrs[a], what, detail);
				rc = REGISTRY_DATA;
				goto out;
			}
			if (status == 404) {
				snprintf(err, errlen, "%s answered HTTP 404 for %s without a registry error code; is "
					 "SCHEMA_REGISTRY_ADDR the registry's base URL (the one under which /schemas/ids/ "
					 "and /subjects/ live)?", r->addrs[a], what);
				rc = REGISTRY_FATAL;
				goto out;
			}
			if (status == 401 || status == 403) {
				snprintf(err, errlen, "the schema registry %s refused the credentials (HTTP %ld)%s; check "
					 "SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD", r->addrs[a], status, detail);
				rc = REGISTRY_FATAL;
				goto out;
			}
			snprintf(last, sizeof(last), "%s answered HTTP %ld for %s%s", r->addrs[a], status, what, detail);
			if (status >= 400 && status < 500 && status != 408 && status != 429) {
				snprintf(err, errlen, "the schema registry %s", last);
				rc = REGISTRY_FATAL;
				goto out;
			}
		}
	}
	snprintf(err, errlen, "no schema registry answered for %s: %s", what, last);
out:
	curl_slist_free_all(hdr);
	return rc;
}

/* {"schema": "...", "schemaType": "AVRO"} into s (text, type, version). */
static int registry_parse_schema(const struct rbody *b, const char *what, struct registry_schema *s, char *err,
				 size_t errlen)
{
	cJSON *j = cJSON_ParseWithLength(b->data != NULL ? b->data : "", b->len);
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "schema"));
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "schemaType"));
	const cJSON *version = cJSON_GetObjectItemCaseSensitive(j, "version");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
	int rc = REGISTRY_RETRY;

	if (text == NULL) {
		snprintf(err, errlen, "the schema registry's answer for %s has no \"schema\" string", what);
		goto out;
	}
	/* Confluent leaves schemaType out for Avro. */
	if (type == NULL || strcmp(type, "AVRO") == 0)
		s->type = REGISTRY_AVRO;
	else if (strcmp(type, "PROTOBUF") == 0)
		s->type = REGISTRY_PROTOBUF;
	else if (strcmp(type, "JSON") == 0)
		s->type = REGISTRY_JSON;
	else {
		snprintf(err, errlen, "%s has schemaType \"%.40s\", not AVRO, PROTOBUF or JSON", what, type);
		rc = REGISTRY_DATA;
		goto out;
	}
	s->len = strlen(text);
	if ((s->text = strdup(text)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	s->version = cJSON_IsNumber(version) ? version->valueint : 0;
	if (cJSON_IsNumber(id))
		s->id = (uint32_t)id->valuedouble;
	rc = REGISTRY_OK;
out:
	cJSON_Delete(j);
	return rc;
}

static ssize_t registry_cache_find(const struct registry *r, uint32_t id, size_t *at)
{
	size_t lo = 0, hi = r->ncache;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (r->cache[mid].id == id)
			return (ssize_t)mid;
		if (r->cache[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return -1;
}

int registry_schema_get(struct registry *r, uint32_t id, const struct registry_schema **out, char *err,
			size_t errlen)
{
	struct rbody b = { 0 };
	struct registry_schema s = { 0 };
	char path[64], what[64];
	size_t at = 0;
	ssize_t found = registry_cache_find(r, id, &at);
	int rc;

	if (found >= 0) {
		*out = &r->cache[found];
		return REGISTRY_OK;
	}
	if (r->ncache >= REGISTRY_CACHE_MAX) {
		snprintf(err, errlen, "schema id %u: this worker already holds %d schemas, its limit", id,
			 REGISTRY_CACHE_MAX);
		return REGISTRY_FATAL;
	}
	snprintf(path, sizeof(path), "/schemas/ids/%u", id);
	snprintf(what, sizeof(what), "schema id %u", id);
	rc = registry_get(r, path, what, &b, err, errlen);
	if (rc == REGISTRY_OK)
		rc = registry_parse_schema(&b, what, &s, err, errlen);
	free(b.data);
	if (rc != REGISTRY_OK)
		return rc;
	s.id = id;
	if (r->ncache == r->cache_cap) {
		size_t cap = r->cache_cap ? r->cache_cap * 2 : 16;
		struct registry_schema *c = realloc(r->cache, cap * sizeof(*c));

		if (c == NULL) {
			free(s.text);
			snprintf(err, errlen, "out of memory");
			return REGISTRY_RETRY;
		}
		r->cache = c;
		r->cache_cap = cap;
	}
	memmove(&r->cache[at + 1], &r->cache[at], (r->ncache - at) * sizeof(*r->cache));
	r->cache[at] = s;
	r->ncache++;
	log_info("schema registry: fetched schema id %u (%zu bytes)", id, s.len);
	*out = &r->cache[at];
	return REGISTRY_OK;
}

int registry_latest(struct registry *r, const char *subject, struct registry_schema **out, char *err,
		    size_t errlen)
{
	struct rbody b = { 0 };
	struct registry_schema *s = NULL;
	char *esc = NULL, *path = NULL, what[320];
	int rc = REGISTRY_RETRY;

	*out = NULL;
	esc = curl_easy_escape(r->curl, subject, 0);
	if (esc == NULL || (path = malloc(strlen(esc) + 64)) == NULL || (s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	sprintf(path, "/subjects/%s/versions/latest", esc);
	snprintf(what, sizeof(what), "subject \"%.256s\"", subject);
	rc = registry_get(r, path, what, &b, err, errlen);
	if (rc == REGISTRY_OK)
		rc = registry_parse_schema(&b, what, s, err, errlen);
	if (rc == REGISTRY_OK) {
		*out = s;
		s = NULL;
	}
out:
	registry_schema_free(s);
	free(b.data);
	free(path);
	curl_free(esc);
	return rc;
}

int registry_frame_parse(const char *buf, size_t len, uint32_t *id, const char **body, size_t *body_len,
			 char *err, size_t errlen)
{
	const unsigned char *u = (const unsigned char *)buf;

	if (len < REGISTRY_FRAME_HEADER) {
		snprintf(err, errlen, "the message is %zu bytes, shorter than a schema registry frame (a zero byte "
			 "and a 4-byte schema id)", len);
		return -1;
	}
	if (u[0] != 0) {
		snprintf(err, errlen, "the message does not start with a schema registry frame: its first byte is "
			 "0x%02x, not 0 (was it written without the registry's serializer?)", u[0]);
		return -1;
	}
	*id = (uint32_t)u[1] << 24 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 8 | (uint32_t)u[4];
	*body = buf + REGISTRY_FRAME_HEADER;
	*body_len = len - REGISTRY_FRAME_HEADER;
	return 0;
}

/* A zig-zag varint of at most 5 bytes (an int32). */
static int registry_zigzag32(const char *buf, size_t len, size_t *pos, int32_t *out)
{
	uint32_t v = 0;

	for (int shift = 0; shift < 35; shift += 7) {
		unsigned char c;

		if (*pos >= len)
			return -1;
		c = (unsigned char)buf[(*pos)++];
		v |= (uint32_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0) {
			*out = (int32_t)((v >> 1) ^ (0u - (v & 1)));
			return 0;
		}
	}
	return -1;
}

int registry_pb_indexes(const char *buf, size_t len, size_t *pos, int32_t *idx, size_t max, size_t *n,
			char *err, size_t errlen)
{
	int32_t count;
	size_t start = *pos;

	if (registry_zigzag32(buf, len, pos, &count) < 0) {
		snprintf(err, errlen, "the Protobuf message indexes at byte %zu are truncated or malformed", start);
		return -1;
	}
	if (count == 0) {
		idx[0] = 0;
		*n = 1;
		return 0;
	}
	if (count < 0 || (size_t)count > max) {
		snprintf(err, errlen, "the Protobuf message index count at byte %zu is %d; expected 0 to %zu", start,
			 count, max);
		return -1;
	}
	for (int32_t i = 0; i < count; i++) {
		if (registry_zigzag32(buf, len, pos, &idx[i]) < 0 || idx[i] < 0) {
			snprintf(err, errlen, "Protobuf message index %d at byte %zu is truncated, malformed or "
				 "negative", i, start);
			return -1;
		}
	}
	*n = (size_t)count;
	return 0;
}
