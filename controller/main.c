/* streamserver: the controller.  Parses its options and runs the store, the
 * REST API and the supervisor. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "store.h"
#include "sup.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_DATA_DIR "./streamserver-data"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: streamserver [OPTIONS]\n"
		"Loads Kafka topics into PostgreSQL; managed over a REST API.\n\n"
		"  --listen HOST:PORT  address of the REST API and status page\n"
		"                      (env STREAMSERVER_LISTEN; default " DEFAULT_LISTEN ")\n"
		"  --data-dir DIR      where the job store lives\n"
		"                      (env STREAMSERVER_DATA_DIR; default " DEFAULT_DATA_DIR ")\n"
		"  --worker PATH       the streamworker executable (env STREAMSERVER_WORKER;\n"
		"                      default: beside streamserver)\n"
		"  --debug             verbose logging\n"
		"  --version, --help\n");
}

/* Finds streamworker beside our own executable, or in the build tree's
 * worker/ folder next to controller/. */
static int find_worker(char *buf, size_t buflen)
{
	char self[PATH_MAX];
	static const char *const rel[] = { "streamworker", "../worker/streamworker" };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		int len = snprintf(buf, buflen, "%s/%s", self, rel[i]);
		if (len > 0 && (size_t)len < buflen && access(buf, X_OK) == 0)
			return 0;
	}
	return -1;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return (v != NULL && *v != '\0') ? v : dflt;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "worker", required_argument, NULL, 'w' },
		{ "debug", no_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = env_or("STREAMSERVER_LISTEN", DEFAULT_LISTEN);
	const char *data_dir = env_or("STREAMSERVER_DATA_DIR", DEFAULT_DATA_DIR);
	const char *worker = env_or("STREAMSERVER_WORKER", NULL);
	char worker_buf[PATH_MAX];
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
		case 'w':
			worker = optarg;
			break;
		case 'D':
			log_set_level(LOG_DEBUG);
			break;
		case 'V':
			printf("streamserver %s\n", STREAMSERVER_VERSION);
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
	if (worker == NULL) {
		if (find_worker(worker_buf, sizeof(worker_buf)) < 0) {
			log_error("cannot find streamworker beside streamserver; give its path with --worker");
			return 2;
		}
		worker = worker_buf;
	}
	if (access(worker, X_OK) != 0) {
		log_error("worker executable %s: %s; give the right path with --worker", worker,
			  strerror(errno));
		return 2;
	}
	/* Before any thread starts, so that every thread inherits the mask. */
	if (sup_block_signals(err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		log_error("cannot create data directory %s: %s", data_dir, strerror(errno));
		return 1;
	}
	if (store_open(data_dir, &st, err, sizeof(err)) < 0) {
		log_error("cannot open the store in %s: %s", data_dir, err);
		goto out;
	}
	if (sup_new(st, worker, &sp, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out;
	}
	ops.wake = sup_wake;
	ops.ctx = sp;
	ops.worker_path = worker;
	if (api_server_start(st, listen, &ops, NULL, &srv, err, sizeof(err)) < 0) {
		log_error("cannot serve the API on %s: %s", listen, err);
		goto out;
	}
	log_info("streamserver %s listening on http://%s (data in %s, worker %s)",
		 STREAMSERVER_VERSION, listen, data_dir, worker);
	rc = sup_run(sp) < 0 ? 1 : 0;
	log_info("controller stopped");
out:
	api_server_stop(srv);
	sup_free(sp);
	store_close(st);
	return rc;
}
