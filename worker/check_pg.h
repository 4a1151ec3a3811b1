/* Check mode's database half (check.h has the process side): what the worker
 * would find wrong with a job's database, all at once, changing nothing.
 *
 * Connects as the job would, builds the column plan (catalog.h) with every
 * problem reported instead of the first one stopping it, then checks every
 * mapped column and its type by preparing (never running) what the job runs
 * against a staging table created in a transaction that is rolled back, the
 * privileges the job needs and, for UPDATE and MERGE, the unique key.
 */
#ifndef SS_WORKER_CHECK_PG_H
#define SS_WORKER_CHECK_PG_H

#include "jobspec.h"

struct check_pg_ops {
	/* One problem.  field is a YAML path or NULL; code is one of proto.h's
	 * (no_table, no_column, type_mismatch, privilege, not_unique,
	 * bad_expression, unreachable, other).  The strings are the caller's to
	 * copy. */
	void (*problem)(void *ctx, const char *field, const char *code, const char *message);
	/* One statement of the job, in the order it runs. */
	void (*statement)(void *ctx, const char *sql);
	void *ctx;
};

/* Reports every problem and the statements through ops.  Returns WERR_OK
 * when the check ran (problems or not), WERR_RETRY when the database could
 * not be reached (reported as a problem with code "unreachable"), WERR_FATAL
 * when the connection was refused for a reason a retry cannot fix (reported
 * too). */
int check_pg_run(const struct jobspec *spec, const char *job_name, const struct check_pg_ops *ops);

#endif
