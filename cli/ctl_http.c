/* streamctl's HTTP client over libcurl (see ctl_http.h). */
#include "ctl_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

int ctl_client_init(struct ctl_client *c, const char *url, char *err, size_t errlen)
{
	const char *p, *host_end, *path;
	char prefix[256]; /* path before /api/v1, "" for a server at the root */
	size_t hlen;

	memset(c, 0, sizeof(*c));
	c->connect_timeout_s = CTL_CONNECT_TIMEOUT_S;
	c->timeout_s = CTL_TIMEOUT_S;
	if (strncmp(url, "http://", 7) == 0) {
		p = url + 7;
		c->port = 80;
	} else if (strncmp(url, "https://", 8) == 0) {
		p = url + 8;
		c->https = true;
		c->port = 443;
	} else {
		snprintf(err, errlen, "--url %s: must start with http:// or https://", url);
		return -1;
	}
	path = strchr(p, '/');
	if (path == NULL)
		path = p + strlen(p);
	host_end = path;
	if (*p == '[') { /* [v6]:port */
		const char *rb = memchr(p, ']', (size_t)(path - p));
		if (rb == NULL) {
			snprintf(err, errlen, "--url %s: missing ']' after the IPv6 address", url);
			return -1;
		}
		hlen = (size_t)(rb - p - 1);
		if (hlen == 0 || hlen >= sizeof(c->host))
			goto bad_host;
		memcpy(c->host, p + 1, hlen);
		p = rb + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(path - p));
		const char *end = colon != NULL ? colon : path;
		hlen = (size_t)(end - p);
		if (hlen == 0 || hlen >= sizeof(c->host))
			goto bad_host;
		memcpy(c->host, p, hlen);
		p = end;
	}
	if (p < host_end) {
		char *e;
		long port;
		if (*p != ':')
			goto bad_host;
		errno = 0;
		port = strtol(p + 1, &e, 10);
		if (e != host_end || e == p + 1 || errno != 0 || port < 1 || port > 65535) {
			snprintf(err, errlen, "--url %s: the port must be a number from 1 to 65535", url);
			return -1;
		}
		c->port = (int)port;
	}
	if (strlen(path) >= sizeof(prefix)) {
		snprintf(err, errlen, "--url %s: the path is too long", url);
		return -1;
	}
	strcpy(prefix, path);
	/* "http://h:1/" and "http://h:1" mean the same server. */
	while (prefix[0] != '\0' && prefix[strlen(prefix) - 1] == '/')
		prefix[strlen(prefix) - 1] = '\0';
	if (snprintf(c->base, sizeof(c->base), "%s://%s%s%s:%d%s", c->https ? "https" : "http",
		     strchr(c->host, ':') ? "[" : "", c->host, strchr(c->host, ':') ? "]" : "",
		     c->port, prefix) >= (int)sizeof(c->base)) {
		snprintf(err, errlen, "--url %s: too long", url);
		return -1;
	}
	return 0;
bad_host:
	snprintf(err, errlen, "--url %s: expected http[s]://HOST[:PORT]", url);
	return -1;
}

int ctl_client_set_token(struct ctl_client *c, const char *token, size_t len, char *err,
			 size_t errlen)
{
	while (len > 0 && isspace((unsigned char)token[len - 1]))
		len--;
	if (len == 0) {
		snprintf(err, errlen, "the token is empty");
		return -1;
	}
	if (len >= sizeof(c->token)) {
		snprintf(err, errlen, "the token is longer than %zu bytes", sizeof(c->token) - 1);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (iscntrl((unsigned char)token[i])) {
			snprintf(err, errlen, "the token contains a control character (a line break?); "
				 "it must be one line");
			return -1;
		}
	}
	memcpy(c->token, token, len);
	c->token[len] = '\0';
	return 0;
}

int ctl_client_token_file(struct ctl_client *c, const char *path, char *err, size_t errlen)
{
	char buf[CTL_TOKEN_MAX + 1];
	size_t n;
	int rc = -1;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f)) {
		snprintf(err, errlen, "token file %s: read error", path);
		goto out;
	}
	if (n > CTL_TOKEN_MAX) {
		snprintf(err, errlen, "token file %s: longer than %d bytes", path, CTL_TOKEN_MAX);
		goto out;
	}
	if (ctl_client_set_token(c, buf, n, err, errlen) != 0) {
		char why[256];
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "token file %s: %s", path, why);
		goto out;
	}
	rc = 0;
out:
	memset(buf, 0, sizeof(buf));
	fclose(f);
	return rc;
}

void ctl_client_clear(struct ctl_client *c)
{
	/* volatile so that the wipe is not optimised away */
	volatile char *t = c->token;
	for (size_t i = 0; i < sizeof(c->token); i++)
		t[i] = 0;
}

void ctl_resp_free(struct ctl_resp *resp)
{
	if (resp == NULL)
		return;
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

int ctl_client_set_file(char *dst, const char *path, const char *what, char *err,
			size_t errlen)
{
	if (path == NULL || path[0] == '\0')
		return 0;
	if (strlen(path) >= CTL_URL_MAX) {
		snprintf(err, errlen, "%s %s: path too long", what, path);
		return -1;
	}
	if (access(path, R_OK) != 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	strcpy(dst, path);
	return 0;
}

struct ctl_sink {
	struct ctl_resp *resp;
	size_t cap;
	bool too_big;
	bool oom;
};

static size_t ctl_http_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct ctl_sink *k = arg;
	struct ctl_resp *r = k->resp;
	size_t n = size * nmemb;

	if (n > CTL_BODY_MAX - r->len) {
		k->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if (r->len + n + 1 > k->cap) {
		size_t ncap = k->cap == 0 ? 16384 : k->cap;
		char *nb;

		while (ncap < r->len + n + 1)
			ncap *= 2;
		nb = realloc(r->body, ncap);
		if (nb == NULL) {
			k->oom = true;
			return 0;
		}
		r->body = nb;
		k->cap = ncap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* A message for a failed transfer: what the user can do about it.  curl's
 * own text (ebuf) is kept in parentheses; it names no header, so never the
 * token. */
static void ctl_http_explain(const struct ctl_client *c, CURLcode rc, const char *ebuf,
			     char *err, size_t errlen)
{
	const char *why = ebuf[0] != '\0' ? ebuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		if (strstr(why, "subject name") != NULL || strstr(why, "match") != NULL)
			snprintf(err, errlen,
				 "%s: the server's certificate is not for host \"%s\" (%s)", c->base,
				 c->host, why);
		else
			snprintf(err, errlen,
				 "%s: the server's certificate cannot be verified (%s); give the CA "
				 "that signed it with --cacert",
				 c->base, why);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(err, errlen, "--cacert %s: cannot use it (%s)",
			 c->cacert[0] ? c->cacert : "(the system's CA bundle)", why);
		break;
	case CURLE_SSL_CERTPROBLEM:
		snprintf(err, errlen, "--cert %s%s%s: cannot use it (%s)", c->cert,
			 c->key[0] ? " / --key " : "", c->key, why);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(err, errlen, "%s: no answer within %d s (connect timeout %d s): %s",
			 c->base, c->timeout_s, c->connect_timeout_s, why);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		snprintf(err, errlen, "cannot connect to %s: %s", c->base, why);
		break;
	default:
		snprintf(err, errlen, "%s: %s", c->base, why);
		break;
	}
}

static int ctl_http_header(struct curl_slist **hdrs, const char *line)
{
	struct curl_slist *h = curl_slist_append(*hdrs, line);

	if (h == NULL)
		return -1;
	*hdrs = h;
	return 0;
}

int ctl_http_request(const struct ctl_client *c, const char *method, const char *path,
		     const char *body, size_t len, struct ctl_resp *resp, char *err,
		     size_t errlen)
{
	char url[CTL_URL_MAX + 1024], auth[CTL_TOKEN_MAX + 32], ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct ctl_sink sink;
	bool sends_body = body != NULL || strcmp(method, "POST") == 0 ||
			  strcmp(method, "PATCH") == 0 || strcmp(method, "PUT") == 0;
	const char *ctype = NULL;
	long status = 0;
	CURL *curl = NULL;
	CURLcode rc;
	int ret = -1;

	memset(resp, 0, sizeof(*resp));
	memset(&sink, 0, sizeof(sink));
	sink.resp = resp;
	auth[0] = '\0';
	if (snprintf(url, sizeof(url), "%s%s", c->base, path) >= (int)sizeof(url)) {
		snprintf(err, errlen, "%s %s: the URL is too long", method, path);
		return -1;
	}
	curl = curl_easy_init();
	if (curl == NULL) {
		snprintf(err, errlen, "cannot set up libcurl");
		return -1;
	}
	if (c->token[0] != '\0')
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
	/* A POST without a body would otherwise be sent as a form; and no
	 * "Expect: 100-continue" round trip before large bodies. */
	if (ctl_http_header(&hdrs, "Accept: application/json") < 0 ||
	    (sends_body && ctl_http_header(&hdrs, "Content-Type: application/json") < 0) ||
	    (sends_body && ctl_http_header(&hdrs, "Expect:") < 0) ||
	    (auth[0] != '\0' && ctl_http_header(&hdrs, auth) < 0)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK) {
		snprintf(err, errlen, "%s %s: libcurl refused the URL %s", method, path, url);
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "streamctl/" STREAMSERVER_VERSION);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)c->connect_timeout_s);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)c->timeout_s);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ctl_http_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	/* Verification stays on (libcurl's defaults), stated so that nobody
	 * wonders. */
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->cacert[0] != '\0')
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
	if (c->cert[0] != '\0')
		curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
	if (c->key[0] != '\0')
		curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (sends_body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
	}

	rc = curl_easy_perform(curl);
	if (sink.too_big) {
		snprintf(err, errlen, "%s %s: answer larger than %u bytes", method, path, CTL_BODY_MAX);
		goto out;
	}
	if (sink.oom) {
		snprintf(err, errlen, "out of memory reading the answer");
		goto out;
	}
	if (rc != CURLE_OK) {
		ctl_http_explain(c, rc, ebuf, err, errlen);
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype != NULL)
		snprintf(resp->content_type, sizeof(resp->content_type), "%s", ctype);
	resp->status = (int)status;
	if (resp->body == NULL) {
		resp->body = calloc(1, 1);
		if (resp->body == NULL) {
			snprintf(err, errlen, "out of memory reading the answer");
			goto out;
		}
	}
	ret = 0;
out:
	curl_easy_cleanup(curl);
	for (struct curl_slist *h = hdrs; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data)); /* the token's copy */
	curl_slist_free_all(hdrs);
	explicit_bzero(auth, sizeof(auth));
	if (ret != 0)
		ctl_resp_free(resp);
	return ret;
}
