/* streamworker: runs one job for the streamserver controller.  The job arrives
 * on standard input; see loop.h for everything else. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "loop.h"

#ifndef SS_VERSION
#define SS_VERSION "unknown"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"usage: streamworker [--verbose] [--check]\n"
		"       streamworker --version | --help\n"
		"\n"
		"Runs one Streaming Server job: reads {\"job_id\":N,\"job_name\":\"...\",\"config\":\"<YAML>\"}\n"
		"on standard input, consumes the job's Kafka topic and writes it to PostgreSQL.\n"
		"Status lines go to file descriptor 3.  Exit codes: 0 stopped, 1 retriable failure,\n"
		"2 bad configuration, 3 data error.\n"
		"\n"
		"With --check, checks the job against its database instead (target table, columns,\n"
		"types, privileges, unique key; nothing is changed) and prints one JSON object\n"
		"{\"valid\", \"errors\", \"statements\"} on standard output.  Exit codes: 0 valid,\n"
		"1 database unreachable, 2 problems found.\n");
}

int main(int argc, char **argv)
{
	bool check = false;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("streamworker %s\n", SS_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
			log_set_level(LOG_DEBUG);
			continue;
		}
		if (strcmp(argv[i], "--check") == 0) {
			check = true;
			continue;
		}
		fprintf(stderr, "streamworker: unknown argument \"%s\"\n", argv[i]);
		usage(stderr);
		return 2;
	}
	return check ? check_run() : loop_run();
}
