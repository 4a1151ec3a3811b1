/* Check mode's look at a job's schema registry (check.h): for each KEY and
 * VALUE that names one, the registry answers, the topic's subject exists
 * ("{topic}-key" / "{topic}-value", TopicNameStrategy), and for Avro its
 * latest version is a record with a field of every COLUMN's name, of a type
 * that fits the column's TYPE (a record, array or map only into json, jsonb
 * or text; a number not into boolean, bytea or a date/time type; bytes only
 * into bytea or text; ...).  Columns without TYPE take the table's type,
 * which check_pg checks; unions of null and one type are that type; other
 * unions and strings fit anything.
 */
#ifndef SS_WORKER_CHECK_REGISTRY_H
#define SS_WORKER_CHECK_REGISTRY_H

#include "jobspec.h"

/* Reports each problem through problem(ctx, field, code, message): code
 * "unreachable" when no registry answered, else "other". */
void check_registry_run(const struct jobspec *spec,
			void (*problem)(void *ctx, const char *field, const char *code, const char *message),
			void *ctx);

/* NULL when an Avro value of type n (a node of avro_schema.h) fits an SQL
 * column of TYPE sql_type, else why not (a static string). */
struct avro_node;
const char *check_registry_type_problem(const struct avro_node *n, const char *sql_type);

#endif
