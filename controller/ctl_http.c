/* streamctl's HTTP client over civetweb (see ctl_http.h). */
#include "ctl_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <civetweb.h>

/* Used when https:// is given without --cacert, so that the server's
 * certificate is always verified (civetweb verifies nothing without one). */
#define CTL_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

int ctl_client_init(struct ctl_client *c, const char *url, char *err, size_t errlen)
{
	const char *p, *host_end, *path;
	size_t hlen;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = 60000; /* validate may hold a request for 30 s */
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
	if (strlen(path) >= sizeof(c->prefix)) {
		snprintf(err, errlen, "--url %s: the path is too long", url);
		return -1;
	}
	strcpy(c->prefix, path);
	/* "http://h:1/" and "http://h:1" mean the same server. */
	while (c->prefix[0] != '\0' && c->prefix[strlen(c->prefix) - 1] == '/')
		c->prefix[strlen(c->prefix) - 1] = '\0';
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

static struct mg_connection *ctl_connect(const struct ctl_client *c, char *ebuf, size_t elen)
{
	struct mg_client_options opts;
	const char *ca = c->cacert;

	if (!c->https)
		return mg_connect_client(c->host, c->port, 0, ebuf, elen);
	if (ca[0] == '\0') {
		if (access(CTL_SYSTEM_CA, R_OK) != 0) {
			snprintf(ebuf, elen, "no --cacert given and no system CA bundle at %s",
				 CTL_SYSTEM_CA);
			return NULL;
		}
		ca = CTL_SYSTEM_CA;
	}
	memset(&opts, 0, sizeof(opts));
	opts.host = c->host;
	opts.port = c->port;
	opts.server_cert = ca;
	opts.host_name = c->host;
	return mg_connect_client_secure(&opts, ebuf, elen);
}

int ctl_http_request(const struct ctl_client *c, const char *method, const char *path,
		     const char *ctype, const char *body, size_t len, struct ctl_resp *resp,
		     char *err, size_t errlen)
{
	char ebuf[256] = "";
	struct mg_connection *conn = NULL;
	const struct mg_response_info *ri;
	size_t cap = 0;
	int rc = -1;

	memset(resp, 0, sizeof(*resp));
	conn = ctl_connect(c, ebuf, sizeof(ebuf));
	if (conn == NULL) {
		snprintf(err, errlen, "cannot connect to %s://%s:%d: %s", c->https ? "https" : "http",
			 c->host, c->port, ebuf[0] ? ebuf : "connection failed");
		goto out;
	}
	mg_printf(conn, "%s %s%s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: streamctl/%s\r\n"
		  "Accept: application/json\r\nConnection: close\r\n",
		  method, c->prefix, path, c->host, c->port, STREAMSERVER_VERSION);
	if (c->token[0] != '\0')
		mg_printf(conn, "Authorization: Bearer %s\r\n", c->token);
	if (body != NULL)
		mg_printf(conn, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
			  ctype != NULL ? ctype : "application/json", len);
	else if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0)
		mg_printf(conn, "Content-Length: 0\r\n\r\n");
	else
		mg_printf(conn, "\r\n");
	if (body != NULL && len > 0 && mg_write(conn, body, len) != (int)len) {
		snprintf(err, errlen, "%s %s: the connection closed while sending the body", method, path);
		goto out;
	}
	if (mg_get_response(conn, ebuf, sizeof(ebuf), c->timeout_ms) < 0) {
		snprintf(err, errlen, "%s %s: no answer from %s:%d within %d s (%s)", method, path,
			 c->host, c->port, c->timeout_ms / 1000, ebuf[0] ? ebuf : "timeout");
		goto out;
	}
	ri = mg_get_response_info(conn);
	if (ri == NULL) {
		snprintf(err, errlen, "%s %s: unreadable answer", method, path);
		goto out;
	}
	resp->status = ri->status_code;
	for (int i = 0; i < ri->num_headers; i++) {
		if (ri->http_headers[i].name != NULL && ri->http_headers[i].value != NULL &&
		    strcasecmp(ri->http_headers[i].name, "Content-Type") == 0)
			snprintf(resp->content_type, sizeof(resp->content_type), "%s",
				 ri->http_headers[i].value);
	}
	for (;;) {
		int n;
		if (cap - resp->len < 4096) {
			size_t ncap = cap == 0 ? 16384 : cap * 2;
			char *nb;
			if (ncap > CTL_BODY_MAX + 1) {
				snprintf(err, errlen, "%s %s: answer larger than %u bytes", method, path,
					 CTL_BODY_MAX);
				goto out;
			}
			nb = realloc(resp->body, ncap);
			if (nb == NULL) {
				snprintf(err, errlen, "out of memory reading the answer");
				goto out;
			}
			resp->body = nb;
			cap = ncap;
		}
		n = mg_read(conn, resp->body + resp->len, cap - resp->len - 1);
		if (n < 0) {
			snprintf(err, errlen, "%s %s: the connection broke while reading the answer",
				 method, path);
			goto out;
		}
		if (n == 0)
			break;
		resp->len += (size_t)n;
	}
	resp->body[resp->len] = '\0';
	rc = 0;
out:
	if (conn != NULL)
		mg_close_connection(conn);
	if (rc != 0)
		ctl_resp_free(resp);
	return rc;
}
