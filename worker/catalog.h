/* The target table as the catalog describes it, and the job's column plan
 * over it: which staging columns a batch is COPYed into (KEY, VALUE, META,
 * with their types), which target columns it writes and from what value
 * (MAPPING or the source column of the same name), the MATCH_COLUMNS,
 * UPDATE_COLUMNS and ORDER_COLUMNS among them, and whether MATCH_COLUMNS are
 * a unique key.  Every problem names the YAML key to fix.
 *
 * In the sink a problem is fatal (WERR_FATAL, err "FIELD: message"); in check
 * mode (problem != NULL) each is reported and the plan goes on, so that a
 * check reports everything at once.  The plan's job member is what sqlgen.h
 * builds the statements from.
 */
#ifndef SS_WORKER_CATALOG_H
#define SS_WORKER_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "jobspec.h"
#include "sqlgen.h"

/* Length of a YAML path kept for a column: "KAFKA.INPUT.VALUE.COLUMNS[2]". */
#define CATALOG_PATH_MAX 96

/* One column of the target table. */
struct catalog_tcol {
	char *name;
	char *type; /* with length/precision: "character varying(32)" */
	char *cast; /* the type without them, schema-qualified: "pg_catalog"."varchar" */
};

/* A staging column beyond what sqlgen needs (job.stage[i]). */
struct catalog_stage {
	const char *type; /* TYPE as written; NULL = the mapped target column's */
	char *sqltype;	  /* resolved; job.stage[i].type points here */
	char path[CATALOG_PATH_MAX];
	bool bad_type; /* check mode: TYPE is not a type (reported) */
};

/* A written target column beyond what sqlgen needs (job.values[i]). */
struct catalog_map {
	char path[CATALOG_PATH_MAX];	       /* "KAFKA.OUTPUT.MAPPING[1]" or the source column's */
	char expr_path[CATALOG_PATH_MAX + 16]; /* where the value comes from, for type problems */
	const struct catalog_tcol *tcol;       /* NULL when the target has no such column */
};

/* Check mode's sink for problems: field is a YAML path or NULL, code one of
 * proto.h's; the strings are the callee's to copy. */
typedef void (*catalog_problem_fn)(void *ctx, const char *field, const char *code, const char *message);

/* The plan.  Callers read it; only catalog.c changes it. */
struct catalog {
	PGconn *pg; /* the caller's */
	const struct jobspec *spec;
	catalog_problem_fn problem; /* NULL outside check mode */
	void *ctx;
	char *target;	     /* schema.table, unquoted, for messages */
	char target_oid[32]; /* "" when the table is missing (check mode) */
	struct catalog_tcol *tcols;
	size_t ntarget;
	struct catalog_stage *stage; /* [job.nstage] */
	struct catalog_map *map;     /* [job.nvalues] */
	struct sqlgen_job job;
	/* what job points into */
	struct sqlgen_column *cols;
	struct sqlgen_value *values;
	int *match, *update, *order;
};

/* Reads the target table of spec over pg and builds the plan.  pg and spec
 * must outlive it.  On success *out is the caller's (catalog_free); in check
 * mode too when problems were reported. */
int catalog_open(PGconn *pg, const struct jobspec *spec, bool on_conflict, catalog_problem_fn problem, void *ctx,
		 struct catalog **out, char *err, size_t errlen);

/* MODE INSERT without MAPPING copies every source column into the target
 * column of its name.  When each staging column has exactly its target
 * column's type, the INSERT ... SELECT converts nothing, and COPY into the
 * target does the same work once instead of twice (measured: about twice the
 * rows/s).  Sets *copy_sql to that COPY when it applies, else NULL.  The
 * staging table must exist in pg's session. */
int catalog_direct(struct catalog *cat, char **copy_sql, char *err, size_t errlen);

/* Sets job.lock_rows (sqlgen.h): UPDATE ... FROM locks the target's rows in
 * key order first, on PostgreSQL 9.5 and later when the target is a table or
 * a partitioned table (FOR UPDATE is not for every view or foreign table, and
 * Greenplum 6's UPDATE locks the whole table anyway). */
int catalog_lock_rows(struct catalog *cat, char *err, size_t errlen);

/* A MAPPING expression that is just the source column's name, bare or quoted. */
bool catalog_expr_is_column(const char *expr, const char *col);

/* Check mode: staging column i's TYPE is not a type; it takes the type it
 * would have without TYPE, so the rest can still be checked. */
void catalog_stage_untype(struct catalog *cat, size_t i);

void catalog_free(struct catalog *cat);

#endif
