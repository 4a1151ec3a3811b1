/* The professional-mode job YAML (common/jobspec_yaml.c, with the one-line
 * reflow of common/jobspec_reflow.c).  What parses must be emitted as YAML
 * that parses again to the same YAML: the controller stores and the worker
 * reads the emitted text.  Then the rules that need no database run too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct js_errors errs;
	struct jobspec *spec = NULL, *again = NULL;
	char *yaml = NULL, *yaml2 = NULL, msg[4096];

	memset(&errs, 0, sizeof(errs));
	if (jobspec_parse_yaml((const char *)data, size, &spec, &errs) < 0)
		return 0;
	yaml = jobspec_to_yaml(spec, false);
	if (yaml == NULL)
		abort(); /* out of memory is the only excuse, and inputs are small */
	memset(&errs, 0, sizeof(errs));
	if (jobspec_parse_yaml(yaml, strlen(yaml), &again, &errs) < 0) {
		js_errors_format(&errs, msg, sizeof(msg));
		fprintf(stderr, "emitted YAML does not parse: %s\n---\n%s---\n", msg, yaml);
		abort();
	}
	yaml2 = jobspec_to_yaml(again, false);
	if (yaml2 == NULL || strcmp(yaml, yaml2) != 0) {
		fprintf(stderr, "emitted YAML changes on a round trip:\n---\n%s---\n%s---\n", yaml,
			yaml2 ? yaml2 : "(null)");
		abort();
	}
	memset(&errs, 0, sizeof(errs));
	(void)jobspec_validate(spec, &errs);
	free(yaml);
	free(yaml2);
	jobspec_free(spec);
	jobspec_free(again);
	return 0;
}
