/* Check mode: `streamworker --check` (the API's validate and dry run).
 *
 * Reads the job from standard input as a normal run does
 * ({"job_id":N,"job_name":"...","config":"<YAML>"}; job_id and job_name may be
 * left out), parses and validates it, then checks it against its database
 * (check_pg.h) without changing anything, and prints one JSON object on
 * standard output, as proto.h describes:
 *   {"valid": bool, "errors": [{"field", "code", "message"}], "statements": [...]}
 * With PARTITIONS it also asks the brokers (up to 3 s) whether every listed
 * partition exists; brokers that do not answer are not reported.  With a
 * schema registry it asks it about the topic's subject (check_registry.h).
 * Every problem found is reported, not only the first.  Nothing is written on
 * WORKER_STATUS_FD; logs go to standard error; the password is never printed.
 */
#ifndef SS_WORKER_CHECK_H
#define SS_WORKER_CHECK_H

/* Returns the exit code: 0 valid, WORKER_EXIT_CONFIG when problems were found,
 * WORKER_EXIT_RETRY when the database could not be reached (and nothing else
 * was wrong). */
int check_run(void);

#endif
