/* streamworker: runs one job for the streamserver controller.  The job arrives
 * on standard input; see loop.h for everything else. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "loop.h"
#include "tools.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: streamworker [--verbose] [--check | --offsets | --reset | --errors]\n"
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
		"1 database unreachable, 2 problems found.\n"
		"\n"
		"--offsets, --reset and --errors show the job's offsets, reset them, or page through its\n"
		"error table (see common/proto.h, \"Tool modes\"); each prints one JSON object.  Exit codes:\n"
		"0 done, 1 database or brokers unreachable, 2 bad request or job.\n");
}

int main(int argc, char **argv)
{
	bool check = false, tool = false;
	enum tools_mode mode = TOOLS_OFFSETS;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("streamworker %s\n", ss_version());
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
		if (strcmp(argv[i], "--offsets") == 0 || strcmp(argv[i], "--reset") == 0 ||
		    strcmp(argv[i], "--errors") == 0) {
			tool = true;
			mode = argv[i][2] == 'o' ? TOOLS_OFFSETS : argv[i][2] == 'r' ? TOOLS_RESET : TOOLS_ERRORS;
			continue;
		}
		fprintf(stderr, "streamworker: unknown argument \"%s\"\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (check && tool) {
		fprintf(stderr, "streamworker: --check and the tool modes exclude each other\n");
		return 2;
	}
	if (tool)
		return tools_run(mode);
	return check ? check_run() : loop_run();
}
