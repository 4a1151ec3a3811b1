/* streamserver: the controller.  Parses its options and runs the store, the
 * REST API and the supervisor. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cluster.h"
#include "log.h"
#include "store.h"
#include "store_uri.h"
#include "sup.h"
#include "version.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_DATA_DIR "./streamserver-data"
#define TOKEN_MIN 16
#define TOKEN_MAX 1024
#define BODY_MIN 64
#define BODY_MAX ((size_t)64 * 1024 * 1024)

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: streamserver [OPTIONS]\n"
		"Loads Kafka topics into PostgreSQL; managed over a REST API.\n\n"
		"  --listen HOST:PORT  address of the REST API and status page\n"
		"                      (env STREAMSERVER_LISTEN; default " DEFAULT_LISTEN ")\n"
		"  --data-dir DIR      this controller's directory: its lock and, by default,\n"
		"                      the job store (env STREAMSERVER_DATA_DIR; default\n"
		"                      " DEFAULT_DATA_DIR ")\n"
		"  --store URI         the catalog: sqlite:PATH (or a path) or\n"
		"                      postgresql://USER@HOST:PORT/DB[?schema=NAME] (env\n"
		"                      STREAMSERVER_STORE; default DATA_DIR/streamserver.db).\n"
		"                      No password here: put a URI with one in\n"
		"                      STREAMSERVER_STORE or a file (--store-file), or the\n"
		"                      password in ~/.pgpass (PGPASSFILE)\n"
		"  --store-file PATH   a file, readable by this user only, holding the URI\n"
		"  --name NAME         this controller's name among those sharing a PostgreSQL\n"
		"                      catalog (env STREAMSERVER_NAME; default HOST:PORT of --listen)\n"
		"  --advertise URL     how users and the other controllers reach this API\n"
		"                      (env STREAMSERVER_ADVERTISE; default from --listen)\n"
		"  --worker PATH       the streamworker executable (env STREAMSERVER_WORKER;\n"
		"                      default: " STREAMSERVER_LIBEXEC_DIR "/streamworker\n"
		"                      from streamserver's folder, or beside it)\n"
		"  --token-file PATH   the API's bearer token, in a file readable by this user\n"
		"                      only (env STREAMSERVER_TOKEN_FILE, or the token itself\n"
		"                      in STREAMSERVER_TOKEN); required to listen beyond loopback\n"
		"  --read-token-file PATH  a second token that allows GET and HEAD only\n"
		"                      (env STREAMSERVER_READ_TOKEN_FILE or STREAMSERVER_READ_TOKEN)\n"
		"  --tls-cert PEM      serve HTTPS with this certificate (chain)\n"
		"                      (env STREAMSERVER_TLS_CERT)\n"
		"  --tls-key PEM       its private key, if not in the certificate file\n"
		"                      (env STREAMSERVER_TLS_KEY)\n"
		"  --tls-client-ca PEM ask clients for a certificate signed by this CA and\n"
		"                      refuse those without (mutual TLS; env\n"
		"                      STREAMSERVER_TLS_CLIENT_CA)\n"
		"  --max-body BYTES    request body limit (env STREAMSERVER_MAX_BODY; default 1048576)\n"
		"  --allow-origin ORIGIN  a web origin (https://console.example) whose pages\n"
		"                      may call the API; repeat or separate with commas\n"
		"                      (env STREAMSERVER_ALLOW_ORIGIN)\n"
		"  --allow-host NAME   a Host name to answer to besides localhost and the\n"
		"                      --listen host when no token is set (repeat or commas;\n"
		"                      env STREAMSERVER_ALLOW_HOST)\n"
		"  --log-format text|json  log lines as text or JSON objects\n"
		"                      (env STREAMSERVER_LOG_FORMAT; default text)\n"
		"  --debug             verbose logging\n"
		"  --version, --help\n");
}

/* Finds rel[i] (a file with access mode `mode`) relative to the folder of
 * our own executable; the first that exists wins. */
static int find_beside(const char *const *rel, size_t nrel, int mode, char *buf, size_t buflen)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	for (size_t i = 0; i < nrel; i++) {
		int len = rel[i][0] == '/' ? snprintf(buf, buflen, "%s", rel[i])
					   : snprintf(buf, buflen, "%s/%s", self, rel[i]);
		if (len > 0 && (size_t)len < buflen && access(buf, mode) == 0)
			return 0;
	}
	return -1;
}

/* streamworker where meson installs it (libexecdir, from meson: relative to
 * bindir), beside our own executable (an install before it moved to
 * libexecdir, a hand-made folder), or in the build tree's worker/ folder next
 * to controller/. */
static int find_worker(char *buf, size_t buflen)
{
	static const char *const rel[] = { STREAMSERVER_LIBEXEC_DIR "/streamworker", "streamworker",
					   "../worker/streamworker" };

	return find_beside(rel, sizeof(rel) / sizeof(rel[0]), X_OK, buf, buflen);
}

/* The folder of the libssl.so that civetweb loads for HTTPS (api/tlscompat/):
 * the installed one (STREAMSERVER_TLSCOMPAT_DIR, from meson: relative to
 * bindir, so a staged install finds its own), or the build tree's. */
static int find_tls_compat(char *buf, size_t buflen)
{
	static const char *const rel[] = { STREAMSERVER_TLSCOMPAT_DIR "/libssl.so",
					   "../api/tlscompat/libssl.so" };

	if (find_beside(rel, sizeof(rel) / sizeof(rel[0]), R_OK, buf, buflen) < 0)
		return -1;
	*strrchr(buf, '/') = '\0';
	return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return (v != NULL && *v != '\0') ? v : dflt;
}

/* Checks a token and strips the trailing whitespace (a file's newline).  The
 * messages never show the token. */
static int token_check(char *tok, const char *origin, char *err, size_t errlen)
{
	size_t len = strlen(tok);

	while (len > 0 && isspace((unsigned char)tok[len - 1]))
		tok[--len] = '\0';
	if (len < TOKEN_MIN || len > TOKEN_MAX) {
		snprintf(err, errlen,
			 "the token from %s has %zu characters; it needs %d to %d "
			 "(for example: openssl rand -hex 32)",
			 origin, len, TOKEN_MIN, TOKEN_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (tok[i] <= 0x20 || tok[i] >= 0x7f) {
			snprintf(err, errlen,
				 "the token from %s has a space or a character that is not "
				 "printable ASCII at position %zu; use letters, digits and "
				 "punctuation only (for example: openssl rand -hex 32)",
				 origin, i + 1);
			return -1;
		}
	}
	return 0;
}

/* A token from a file (path) or the value of the environment variable
 * env_name: a new string the caller wipes and frees, NULL with none, or
 * (char *)-1 after a message in err. */
static char *token_load(const char *path, const char *env_name, char *err, size_t errlen)
{
	char *bad = (char *)-1, *tok = NULL;
	const char *value;
	struct stat sb;
	size_t n;
	int fd;
	FILE *f;

	if (path == NULL) {
		value = getenv(env_name);
		if (value == NULL || *value == '\0')
			return NULL;
		tok = strdup(value);
		if (tok == NULL) {
			snprintf(err, errlen, "out of memory");
			return bad;
		}
		if (token_check(tok, env_name, err, errlen) < 0) {
			explicit_bzero(tok, strlen(tok));
			free(tok);
			return bad;
		}
		return tok;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "cannot read the token file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return bad;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "the token file %s is not a regular file", path);
		close(fd);
		return bad;
	}
	if (sb.st_mode & (S_IRGRP | S_IROTH))
		log_warn("the token file %s can be read by its group or others (mode %04o); "
			 "make it private: chmod 600 %s",
			 path, (unsigned)(sb.st_mode & 07777), path);
	f = fdopen(fd, "r");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read the token file %s: %s", path, strerror(errno));
		close(fd);
		return bad;
	}
	tok = calloc(1, TOKEN_MAX + 2);
	if (tok == NULL) {
		snprintf(err, errlen, "out of memory");
		fclose(f);
		return bad;
	}
	n = fread(tok, 1, TOKEN_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read the token file %s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	f = NULL;
	if (memchr(tok, '\0', n) != NULL) {
		snprintf(err, errlen, "the token file %s holds a NUL byte; write the token as text",
			 path);
		goto fail;
	}
	if (token_check(tok, path, err, errlen) < 0)
		goto fail;
	return tok;
fail:
	if (f != NULL)
		fclose(f);
	explicit_bzero(tok, TOKEN_MAX + 2);
	free(tok);
	return bad;
}

static void token_free(char *tok)
{
	if (tok == NULL || tok == (char *)-1)
		return;
	explicit_bzero(tok, strlen(tok));
	free(tok);
}

/* The store's URI from --store-file's file: a new string the caller wipes
 * and frees, or NULL after a message in err. */
static char *store_uri_load(const char *path, char *err, size_t errlen)
{
	char *uri = NULL;
	struct stat sb;
	size_t n;
	int fd;
	FILE *f = NULL;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "--store-file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "--store-file %s is not a regular file", path);
		close(fd);
		return NULL;
	}
	if (sb.st_mode & (S_IRGRP | S_IROTH))
		log_warn("the store file %s can be read by its group or others (mode %04o); "
			 "make it private: chmod 600 %s",
			 path, (unsigned)(sb.st_mode & 07777), path);
	f = fdopen(fd, "r");
	uri = calloc(1, STORE_URI_MAX + 1);
	if (f == NULL || uri == NULL) {
		snprintf(err, errlen, "--store-file %s: %s", path, f == NULL ? strerror(errno) : "out of memory");
		goto fail;
	}
	n = fread(uri, 1, STORE_URI_MAX, f);
	if (ferror(f) || n == STORE_URI_MAX || memchr(uri, '\0', n) != NULL) {
		snprintf(err, errlen, "--store-file %s: %s", path,
			 ferror(f) ? strerror(errno) : "not one line of text holding a URI");
		goto fail;
	}
	while (n > 0 && isspace((unsigned char)uri[n - 1]))
		uri[--n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "--store-file %s is empty; write the store's URI in it", path);
		goto fail;
	}
	fclose(f);
	return uri;
fail:
	if (f != NULL)
		fclose(f);
	else if (fd >= 0)
		close(fd);
	if (uri != NULL) {
		explicit_bzero(uri, STORE_URI_MAX + 1);
		free(uri);
	}
	return NULL;
}

static int parse_body_max(const char *s, size_t *out)
{
	size_t v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 9)
		return -1;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (size_t)(*p - '0');
	}
	if (v < BODY_MIN || v > BODY_MAX)
		return -1;
	*out = v;
	return 0;
}

/* This controller's name among those sharing its catalog, and the URL of
 * its API: --name / --advertise, else from --listen (a wildcard address
 * gives way to the host's name). */
static void main_identity(const char *listen, bool tls, const char *name_opt, const char *advertise, char *name,
			  size_t namelen, char *url, size_t urllen)
{
	char host[256] = "localhost", addr[300];
	const char *colon = strrchr(listen, ':');
	const char *port = colon != NULL ? colon + 1 : "8080";
	size_t hlen = colon != NULL ? (size_t)(colon - listen) : strlen(listen);

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	if (hlen == 0 || (hlen == 7 && strncmp(listen, "0.0.0.0", 7) == 0) ||
	    (hlen == 4 && strncmp(listen, "[::]", 4) == 0))
		snprintf(addr, sizeof(addr), "%s:%s", host, port);
	else
		snprintf(addr, sizeof(addr), "%.*s:%s", (int)hlen, listen, port);
	snprintf(name, namelen, "%.*s", (int)(namelen - 1), name_opt != NULL && *name_opt ? name_opt : addr);
	if (advertise != NULL && *advertise)
		snprintf(url, urllen, "%.*s", (int)(urllen - 1), advertise);
	else
		snprintf(url, urllen, "%s://%.*s", tls ? "https" : "http", (int)(urllen - 9), addr);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "store", required_argument, NULL, 's' },
		{ "store-file", required_argument, NULL, 'S' },
		{ "name", required_argument, NULL, 'n' },
		{ "advertise", required_argument, NULL, 'a' },
		{ "worker", required_argument, NULL, 'w' },
		{ "token-file", required_argument, NULL, 't' },
		{ "read-token-file", required_argument, NULL, 'r' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "tls-client-ca", required_argument, NULL, 'C' },
		{ "max-body", required_argument, NULL, 'b' },
		{ "allow-origin", required_argument, NULL, 'O' },
		{ "allow-host", required_argument, NULL, 'H' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = env_or("STREAMSERVER_LISTEN", DEFAULT_LISTEN);
	const char *data_dir = env_or("STREAMSERVER_DATA_DIR", DEFAULT_DATA_DIR);
	const char *worker = env_or("STREAMSERVER_WORKER", NULL);
	const char *token_file = env_or("STREAMSERVER_TOKEN_FILE", NULL);
	const char *read_token_file = env_or("STREAMSERVER_READ_TOKEN_FILE", NULL);
	const char *tls_cert = env_or("STREAMSERVER_TLS_CERT", NULL);
	const char *tls_key = env_or("STREAMSERVER_TLS_KEY", NULL);
	const char *tls_client_ca = env_or("STREAMSERVER_TLS_CLIENT_CA", NULL);
	const char *body_max = env_or("STREAMSERVER_MAX_BODY", NULL);
	const char *log_format = env_or("STREAMSERVER_LOG_FORMAT", "text");
	const char *store_opt = NULL, *store_file = NULL;
	const char *name_opt = env_or("STREAMSERVER_NAME", NULL), *advertise = env_or("STREAMSERVER_ADVERTISE", NULL);
	char name_buf[STORE_MEMBER_NAME_MAX], url_buf[256];
	struct cluster *cl = NULL;
	char *store_uri = NULL, store_shown[512];
	bool token_file_opt = false, read_token_file_opt = false;
	/* repeated options, joined with commas; the environment when none */
	char allow_origin[2048] = "", allow_host[2048] = "";
	char *token = NULL, *read_token = NULL;
	struct api_security sec;
	enum log_format fmt;
	char worker_buf[PATH_MAX], tls_compat_buf[PATH_MAX];
	char err[512];
	struct store *st = NULL;
	struct sup *sp = NULL;
	struct api_server *srv = NULL;
	struct api_ops ops;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		case 's':
			store_opt = optarg;
			break;
		case 'S':
			store_file = optarg;
			break;
		case 'n':
			name_opt = optarg;
			break;
		case 'a':
			advertise = optarg;
			break;
		case 'w':
			worker = optarg;
			break;
		case 't':
			token_file = optarg;
			token_file_opt = true;
			break;
		case 'r':
			read_token_file = optarg;
			read_token_file_opt = true;
			break;
		case 'c':
			tls_cert = optarg;
			break;
		case 'k':
			tls_key = optarg;
			break;
		case 'C':
			tls_client_ca = optarg;
			break;
		case 'b':
			body_max = optarg;
			break;
		case 'O':
		case 'H': {
			char *list = c == 'O' ? allow_origin : allow_host;
			size_t used = strlen(list);

			if (used + strlen(optarg) + 2 > sizeof(allow_origin)) {
				fprintf(stderr, "streamserver: too many --allow-%s values\n",
					c == 'O' ? "origin" : "host");
				return 2;
			}
			snprintf(list + used, sizeof(allow_origin) - used, "%s%s", used ? "," : "",
				 optarg);
			break;
		}
		case 'f':
			log_format = optarg;
			break;
		case 'D':
			log_set_level(LOG_DEBUG);
			break;
		case 'V':
			printf("streamserver %s\n", ss_version());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "streamserver: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	log_set_tag("controller");
	log_set_component("controller");
	if (!log_format_parse(log_format, &fmt)) {
		fprintf(stderr, "streamserver: --log-format (or STREAMSERVER_LOG_FORMAT) is \"%s\"; "
				"use text or json\n", log_format);
		return 2;
	}
	log_set_format(fmt);
	/* Workers inherit the format through their environment. */
	setenv("STREAMSERVER_LOG_FORMAT", log_format, 1);

	/* The store's URI: a password never on the command line (anyone may
	 * read /proc/PID/cmdline), never in a worker's environment. */
	if (store_opt != NULL && store_file != NULL) {
		log_error("both --store and --store-file are given; keep one");
		return 2;
	}
	if (store_opt != NULL && store_uri_has_password(store_opt)) {
		log_error("--store: the URI holds a password, which anyone on this host could "
			  "read in the process list; give the URI in the environment "
			  "(STREAMSERVER_STORE) or in a file readable by you only (--store-file "
			  "PATH), or keep the password in ~/.pgpass (or the file PGPASSFILE names) "
			  "and leave it out of the URI");
		return 2;
	}
	if (store_file != NULL) {
		store_uri = store_uri_load(store_file, err, sizeof(err));
		if (store_uri == NULL) {
			log_error("%s", err);
			return 2;
		}
	} else {
		const char *v = store_opt != NULL ? store_opt : env_or("STREAMSERVER_STORE", NULL);

		if (v != NULL && (store_uri = strdup(v)) == NULL) {
			log_error("out of memory");
			return 2;
		}
	}
	if (getenv("STREAMSERVER_STORE") != NULL) {
		char *v = getenv("STREAMSERVER_STORE");

		explicit_bzero(v, strlen(v));
		unsetenv("STREAMSERVER_STORE");
	}
	store_uri_redact(store_uri != NULL ? store_uri : "", store_shown, sizeof(store_shown));

	memset(&sec, 0, sizeof(sec));
	if (body_max != NULL && parse_body_max(body_max, &sec.body_max) < 0) {
		log_error("--max-body (or STREAMSERVER_MAX_BODY) is \"%s\"; give a number of bytes "
			  "from %d to %zu",
			  body_max, BODY_MIN, BODY_MAX);
		goto usage_out;
	}
	if (tls_key != NULL && tls_cert == NULL) {
		log_error("--tls-key needs --tls-cert (or STREAMSERVER_TLS_CERT): the certificate "
			  "to serve with that key");
		goto usage_out;
	}
	if (tls_client_ca != NULL && tls_cert == NULL) {
		log_error("--tls-client-ca needs --tls-cert (or STREAMSERVER_TLS_CERT): client "
			  "certificates are asked for over HTTPS only");
		goto usage_out;
	}
	/* A file that cannot be read is a configuration error (exit 2, no
	 * restart), not a failure to serve. */
	for (int i = 0; i < 3; i++) {
		static const char *const what[] = { "--tls-cert (or STREAMSERVER_TLS_CERT)",
						    "--tls-key (or STREAMSERVER_TLS_KEY)",
						    "--tls-client-ca (or STREAMSERVER_TLS_CLIENT_CA)" };
		const char *f = i == 0 ? tls_cert : i == 1 ? tls_key : tls_client_ca;
		if (f != NULL && access(f, R_OK) < 0) {
			log_error("%s %s: cannot read it (%s); give a readable PEM file", what[i], f,
				  strerror(errno));
			goto usage_out;
		}
	}
	if (tls_cert != NULL) {
		if (find_tls_compat(tls_compat_buf, sizeof(tls_compat_buf)) < 0) {
			log_error("cannot find libssl.so for civetweb (HTTPS): looked in %s and "
				  "../api/tlscompat from the folder of streamserver; reinstall "
				  "streamserver (meson install puts it there)",
				  STREAMSERVER_TLSCOMPAT_DIR);
			goto usage_out;
		}
		sec.tls_compat_dir = tls_compat_buf;
	}
	sec.tls_cert = tls_cert;
	sec.tls_key = tls_key;
	sec.tls_client_ca = tls_client_ca;
	/* An option wins over the environment: a token file given as an option
	 * hides the token in STREAMSERVER_TOKEN. */
	if (!token_file_opt && token_file != NULL && getenv("STREAMSERVER_TOKEN") != NULL &&
	    *getenv("STREAMSERVER_TOKEN") != '\0') {
		log_error("both STREAMSERVER_TOKEN_FILE and STREAMSERVER_TOKEN are set; keep one");
		goto usage_out;
	}
	if (!read_token_file_opt && read_token_file != NULL &&
	    getenv("STREAMSERVER_READ_TOKEN") != NULL && *getenv("STREAMSERVER_READ_TOKEN") != '\0') {
		log_error("both STREAMSERVER_READ_TOKEN_FILE and STREAMSERVER_READ_TOKEN are set; "
			  "keep one");
		goto usage_out;
	}
	token = token_load(token_file, "STREAMSERVER_TOKEN", err, sizeof(err));
	if (token != (char *)-1)
		read_token = token_load(read_token_file, "STREAMSERVER_READ_TOKEN", err, sizeof(err));
	/* Never left for a child to see, whatever the environment filter does. */
	unsetenv("STREAMSERVER_TOKEN");
	unsetenv("STREAMSERVER_READ_TOKEN");
	if (token == (char *)-1 || read_token == (char *)-1) {
		log_error("%s", err);
		goto usage_out;
	}
	if (read_token != NULL && token == NULL) {
		log_error("a read token needs the full token too: give --token-file "
			  "(or STREAMSERVER_TOKEN_FILE / STREAMSERVER_TOKEN)");
		goto usage_out;
	}
	if (read_token != NULL && strcmp(read_token, token) == 0) {
		log_error("the read token is the same as the full token; give it another value");
		goto usage_out;
	}
	if (token == NULL && !api_listen_is_loopback(listen)) {
		log_error("refusing to listen on %s without an API token: anyone who reaches that "
			  "address could run jobs.  Give a token with --token-file PATH (or "
			  "STREAMSERVER_TOKEN_FILE / STREAMSERVER_TOKEN), or listen on loopback "
			  "(--listen 127.0.0.1:PORT)",
			  listen);
		goto usage_out;
	}
	sec.token = token;
	sec.read_token = read_token;
	sec.allow_origin =
		allow_origin[0] ? allow_origin : env_or("STREAMSERVER_ALLOW_ORIGIN", NULL);
	sec.allow_host = allow_host[0] ? allow_host : env_or("STREAMSERVER_ALLOW_HOST", NULL);

	if (worker == NULL) {
		if (find_worker(worker_buf, sizeof(worker_buf)) < 0) {
			log_error("cannot find streamworker in " STREAMSERVER_LIBEXEC_DIR
				  " (from streamserver's folder) or beside streamserver; give its path "
				  "with --worker or STREAMSERVER_WORKER");
			goto usage_out;
		}
		worker = worker_buf;
	}
	if (access(worker, X_OK) != 0) {
		log_error("worker executable %s: %s; give the right path with --worker", worker,
			  strerror(errno));
		goto usage_out;
	}
	/* Before any thread starts, so that every thread inherits the mask. */
	if (sup_block_signals(err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out;
	}
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		log_error("cannot create data directory %s: %s", data_dir, strerror(errno));
		goto out;
	}
	if ((rc = store_open_uri(data_dir, store_uri, &st, err, sizeof(err))) < 0) {
		if (store_uri != NULL)
			log_error("cannot open the store %s (data directory %s): %s", store_shown,
				  data_dir, err);
		else
			log_error("cannot open the store in %s: %s", data_dir, err);
		/* Restarting would not help: a configuration error (exit 2). */
		rc = rc == STORE_BUSY || rc == STORE_INVALID ? 2 : 1;
		goto out;
	}
	if (store_uri != NULL)
		log_info("store: %s", store_shown);
	rc = 1;
	if (sup_new(st, worker, &sp, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out;
	}
	main_identity(listen, tls_cert != NULL, name_opt, advertise, name_buf, sizeof(name_buf), url_buf,
		      sizeof(url_buf));
	cl = cluster_new(st, name_buf, url_buf, store_is_shared(st));
	if (cl == NULL) {
		log_error("out of memory");
		goto out;
	}
	sup_set_cluster(sp, cl);
	if (store_is_shared(st))
		log_info("cluster: this controller is \"%s\", reached at %s", name_buf, url_buf);
	ops.wake = sup_wake;
	ops.ctx = sp;
	ops.worker_path = worker;
	if (api_server_start(st, listen, &ops, &sec, &srv, err, sizeof(err)) < 0) {
		log_error("cannot serve the API on %s: %s", listen, err);
		goto out;
	}
	log_info("streamserver %s listening on %s://%s (data in %s, worker %s; API %s)",
		 ss_version(), tls_cert ? "https" : "http", listen, data_dir, worker,
		 sec.token == NULL ? "open: no token (loopback only)"
		 : sec.read_token != NULL ? "needs a bearer token; read-only token accepted"
					  : "needs a bearer token");
	/* api_server_start keeps its own copies. */
	token_free(token);
	token_free(read_token);
	token = read_token = NULL;
	sec.token = sec.read_token = NULL;
	rc = sup_run(sp) < 0 ? 1 : 0;
	log_info("controller stopped");
out:
	api_server_stop(srv);
	sup_free(sp);
	cluster_free(cl);
	store_close(st);
	token_free(token);
	token_free(read_token);
	token_free(store_uri);
	return rc;
usage_out:
	token_free(token);
	token_free(read_token);
	token_free(store_uri);
	return 2;
}
