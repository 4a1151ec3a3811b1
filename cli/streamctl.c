/* streamctl: the command-line client of streamserver's REST API.
 *
 * Only argument parsing lives here; the commands are in ctl_cmd.c and
 * ctl_load.c, the HTTP client (libcurl) in ctl_http.c.  The token is read from a file
 * or the environment, never from an argument (arguments are visible to every
 * user in the process list). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl_api.h"
#include "ctl_cmd.h"
#include "ctl_http.h"
#include "version.h"

static const char usage_text[] =
"NAME\n"
"    streamctl - manage a streamserver through its REST API\n"
"\n"
"SYNOPSIS\n"
"    streamctl [GLOBAL OPTIONS] services|sources|jobs list [--page N]\n"
"    streamctl [GLOBAL OPTIONS] services|sources|jobs get ID_OR_NAME\n"
"    streamctl [GLOBAL OPTIONS] services|sources create -f FILE.json\n"
"    streamctl [GLOBAL OPTIONS] jobs create -f FILE.yaml --source ID_OR_NAME [--name N]\n"
"    streamctl [GLOBAL OPTIONS] jobs create -f FILE.json [--source ID_OR_NAME] [--name N]\n"
"    streamctl [GLOBAL OPTIONS] services|sources|jobs update ID_OR_NAME -f FILE\n"
"    streamctl [GLOBAL OPTIONS] services|sources|jobs delete ID_OR_NAME\n"
"    streamctl [GLOBAL OPTIONS] jobs start|stop ID_OR_NAME [--wait]\n"
"    streamctl [GLOBAL OPTIONS] jobs status|offsets|config ID_OR_NAME\n"
"    streamctl [GLOBAL OPTIONS] jobs errors ID_OR_NAME [--page N]\n"
"    streamctl [GLOBAL OPTIONS] jobs validate -f FILE [--source ID_OR_NAME]\n"
"    streamctl [GLOBAL OPTIONS] jobs load FILE.yaml [--name N] [--source ID_OR_NAME]\n"
"                               [--quit-at-eof]\n"
"    streamctl [GLOBAL OPTIONS] health\n"
"\n"
"GLOBAL OPTIONS (anywhere on the line)\n"
"    --url URL          the server, http[s]://HOST[:PORT] (env STREAMCTL_URL;\n"
"                       default http://127.0.0.1:8080)\n"
"    --token-file PATH  a file holding the API token (env STREAMCTL_TOKEN_FILE);\n"
"                       or put the token itself in env STREAMCTL_TOKEN.  The token\n"
"                       is never taken as an argument value and never printed.\n"
"    --cacert PEM       CA certificate(s) to verify an https server with (env\n"
"                       STREAMCTL_CACERT; default the system's CA bundle).  The\n"
"                       certificate must also name the URL's host.\n"
"    --cert PEM         client certificate for a server that asks for one\n"
"                       (mutual TLS; env STREAMCTL_CERT)\n"
"    --key PEM          its private key, if not in the --cert file (env\n"
"                       STREAMCTL_KEY)\n"
"    --connect-timeout SEC  give up connecting after SEC seconds (default 10)\n"
"    --timeout SEC      give up on a request after SEC seconds (default 60)\n"
"    --json             print the server's JSON answer unchanged, for scripts\n"
"    --help             this text\n"
"    --version          the version of streamctl\n"
"\n"
"    Proxies come from the environment as for curl: http_proxy, https_proxy\n"
"    (or HTTPS_PROXY), no_proxy.\n"
"\n"
"DESCRIPTION\n"
"    ID_OR_NAME is a number (an id) or a name, looked up in the list.\n"
"    list shows a table: services (id, name, host, port, spec_cu), sources\n"
"    (id, name, service, brokers, topic, format), jobs (id, name, mode, source,\n"
"    state, rows written, rows/s, lag, rows rejected).  get shows one object\n"
"    as \"key value\" lines; status, offsets and errors show a job's figures.\n"
"    With --json, list prints one page of the server's list (100 items; --page\n"
"    N for the others); jobs config prints the YAML either way.\n"
"\n"
"    jobs create -f FILE.yaml makes a professional-mode job whose config is the\n"
"    file's text, named --name or after the file; a .json file is sent as the\n"
"    body (--name and --source then replace its name and source_id).  update\n"
"    sends a JSON file as the PATCH body, a job's YAML file as its new config.\n"
"\n"
"    jobs validate checks a definition without storing it (POST\n"
"    /jobs/validate): the brokers answer and have the topic (and every\n"
"    PARTITIONS entry), the table, its columns and the account's privileges\n"
"    fit; it prints each problem with its YAML line and field, or the\n"
"    topic's partition count and the SQL of a batch.\n"
"    Without --source a YAML file is checked against the source that reads\n"
"    its KAFKA.INPUT.SOURCE topic from its brokers.\n"
"\n"
"    jobs start|stop --wait waits until the job runs (or has stopped).\n"
"\n"
"    jobs load FILE.yaml creates the job (or updates it when a stopped or\n"
"    failed job of that name exists), starts it and shows its progress: rows\n"
"    written, rows/s and lag, as a bar redrawn in place on a terminal, as a\n"
"    line every 5 s otherwise.  Ctrl-C stops the job and exits 0.  With\n"
"    --quit-at-eof it stops the job once the topic is drained (the worker's\n"
"    lag is 0 and the stored offsets confirm it) and prints a summary: rows,\n"
"    rejected, seconds, rows/s.  Without --source it uses the source whose\n"
"    brokers and topic are the YAML's; if there is none it makes one named\n"
"    after the job, on a service for the YAML's HOST and PORT (an existing one\n"
"    when it matches), and says what it made.  When the job retries or fails\n"
"    the progress line says why; a name another object has (409) is solved\n"
"    with --name.\n"
"\n"
"EXIT STATUS\n"
"    0  success\n"
"    1  the server refused the request (4xx other than 401/403: not found,\n"
"       conflict, invalid definition; also jobs validate of an invalid job)\n"
"    2  usage error (bad command line, unreadable file)\n"
"    3  the server is unreachable, answered 5xx, did not answer in time, or\n"
"       its certificate was refused (untrusted, or for another host name)\n"
"    4  unauthorized or forbidden (401/403): check the token\n"
"    5  the job failed (jobs load, jobs start --wait)\n"
"\n"
"EXAMPLES\n"
"    STREAMCTL_URL=http://127.0.0.1:8080 streamctl jobs list\n"
"    streamctl --token-file ~/.streamserver-token jobs status orders\n"
"    streamctl jobs load orders.yaml --quit-at-eof\n"
"    streamctl --json jobs get 7 | jq .state\n";


/* An option's value: "--opt=value" or the next argument. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static bool opt_is(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

int main(int argc, char **argv)
{
	static struct ctl ctl; /* static: the token buffer is large */
	struct ctl_args a;
	const char *url = getenv("STREAMCTL_URL"), *token_file = getenv("STREAMCTL_TOKEN_FILE");
	const char *cacert = getenv("STREAMCTL_CACERT"), *env_token = getenv("STREAMCTL_TOKEN");
	const char *cert = getenv("STREAMCTL_CERT"), *key = getenv("STREAMCTL_KEY");
	int connect_timeout = CTL_CONNECT_TIMEOUT_S, timeout = CTL_TIMEOUT_S;
	const char *pos[3] = {NULL, NULL, NULL};
	int npos = 0, rc;
	bool only_pos = false;
	char err[512];

	memset(&a, 0, sizeof(a));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *v;
		if (only_pos || arg[0] != '-' || strcmp(arg, "-") == 0) {
			if (npos == 3)
				return ctl_usage_error("unexpected argument \"%s\"", arg);
			pos[npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = true;
		} else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage_text, stdout);
			return CTL_EXIT_OK;
		} else if (strcmp(arg, "--version") == 0) {
			printf("streamctl %s\n", ss_version());
			return CTL_EXIT_OK;
		} else if (strcmp(arg, "--json") == 0) {
			ctl.json = true;
		} else if (strcmp(arg, "--quit-at-eof") == 0) {
			a.quit_at_eof = true;
		} else if (strcmp(arg, "--wait") == 0) {
			a.wait = true;
		} else if (opt_is(arg, "--token")) {
			return ctl_usage_error("%s: the token is not taken on the command line (every user "
					   "can read it there); use --token-file PATH or the "
					   "environment variable STREAMCTL_TOKEN", "--token");
		} else if (opt_is(arg, "--url") || opt_is(arg, "--token-file") ||
			   opt_is(arg, "--cacert") || opt_is(arg, "--cert") ||
			   opt_is(arg, "--key") || opt_is(arg, "--connect-timeout") ||
			   opt_is(arg, "--timeout") || opt_is(arg, "--name") ||
			   opt_is(arg, "--source") || opt_is(arg, "--page") ||
			   opt_is(arg, "--file") || strcmp(arg, "-f") == 0) {
			const char *name = strcmp(arg, "-f") == 0 ? "-f" : arg;
			char optname[32];
			snprintf(optname, sizeof(optname), "%.*s", (int)strcspn(name, "="), name);
			v = opt_value(argc, argv, &i, optname);
			if (v == NULL)
				return ctl_usage_error("%s needs a value", optname);
			if (strcmp(optname, "--url") == 0)
				url = v;
			else if (strcmp(optname, "--token-file") == 0)
				token_file = v;
			else if (strcmp(optname, "--cacert") == 0)
				cacert = v;
			else if (strcmp(optname, "--cert") == 0)
				cert = v;
			else if (strcmp(optname, "--key") == 0)
				key = v;
			else if (strcmp(optname, "--connect-timeout") == 0 ||
				 strcmp(optname, "--timeout") == 0) {
				char *end;
				long sec = strtol(v, &end, 10);
				if (*end != '\0' || end == v || sec < 1 || sec > 86400)
					return ctl_usage_error("%s %s: expected seconds from 1 to 86400",
							   optname, v);
				if (strcmp(optname, "--timeout") == 0)
					timeout = (int)sec;
				else
					connect_timeout = (int)sec;
			}
			else if (strcmp(optname, "--name") == 0)
				a.name = v;
			else if (strcmp(optname, "--source") == 0)
				a.source = v;
			else if (strcmp(optname, "--page") == 0) {
				char *end;
				long p = strtol(v, &end, 10);
				if (*end != '\0' || p < 1 || p > 1000000)
					return ctl_usage_error("--page %s: expected a number from 1", v);
				a.page = (int)p;
			} else {
				a.file = v;
			}
		} else {
			return ctl_usage_error("unknown option \"%s\"", arg);
		}
	}
	if (npos == 0) {
		fputs(usage_text, stderr);
		return CTL_EXIT_USAGE;
	}
	a.resource = pos[0];
	a.verb = pos[1];
	a.target = pos[2];

	if (url == NULL || url[0] == '\0')
		url = "http://127.0.0.1:8080";
	if (ctl_client_init(&ctl.client, url, err, sizeof(err)) != 0)
		return ctl_usage_error("%s", err);
	if (ctl_client_set_file(ctl.client.cacert, cacert, "--cacert", err, sizeof(err)) != 0 ||
	    ctl_client_set_file(ctl.client.cert, cert, "--cert", err, sizeof(err)) != 0 ||
	    ctl_client_set_file(ctl.client.key, key, "--key", err, sizeof(err)) != 0)
		return ctl_usage_error("%s", err);
	if (ctl.client.key[0] != '\0' && ctl.client.cert[0] == '\0')
		return ctl_usage_error("--key needs --cert: the client certificate of that key");
	ctl.client.connect_timeout_s = connect_timeout;
	ctl.client.timeout_s = timeout;
	if (token_file != NULL && token_file[0] != '\0') {
		if (ctl_client_token_file(&ctl.client, token_file, err, sizeof(err)) != 0)
			return ctl_usage_error("%s", err);
	} else if (env_token != NULL && env_token[0] != '\0') {
		if (ctl_client_set_token(&ctl.client, env_token, strlen(env_token), err,
					 sizeof(err)) != 0)
			return ctl_usage_error("STREAMCTL_TOKEN: %s", err);
	}

	signal(SIGPIPE, SIG_IGN); /* a closed connection is an error, not a death */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "streamctl: cannot set up libcurl\n");
		ctl_client_clear(&ctl.client);
		return CTL_EXIT_UNREACHABLE;
	}
	rc = ctl_cmd_run(&ctl, &a);
	curl_global_cleanup();
	ctl_client_clear(&ctl.client);
	fflush(stdout);
	return rc;
}
