/* The job model: one resolved job definition, shared by controller and worker.
 *
 * A job is written either as professional-mode YAML (the GPSS version 2 format
 * of the seed's appendix) or as the console's wizard fields (JSON); both become
 * a struct jobspec.  The controller fills in what the job leaves out from its
 * data source and data service (jobspec_apply_defaults), validates the result
 * (jobspec_validate), and hands it to the worker as YAML (jobspec_to_yaml) on a
 * pipe.  The worker parses that YAML with the same parser.
 *
 * Ownership: a struct jobspec owns every string and array it points to;
 * jobspec_free() releases them all.  Strings are NUL-terminated, heap-allocated
 * with malloc, and NULL when the key was absent.
 */
#ifndef SS_JOBSPEC_H
#define SS_JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum js_format {
	JS_FORMAT_NONE = 0, /* key absent */
	JS_FORMAT_DELIMITED,
	JS_FORMAT_CSV,
	JS_FORMAT_JSON,
	JS_FORMAT_PROTOBUF,
	JS_FORMAT_AVRO,
};

enum js_mode {
	JS_MODE_INSERT = 0,
	JS_MODE_UPDATE,
	JS_MODE_MERGE,
};

enum js_consistency {
	JS_CONSISTENCY_ATLEAST = 0, /* "ATLEAST", "at-least" */
	JS_CONSISTENCY_EXACTLY,     /* "EXACTLY", "strong" */
	JS_CONSISTENCY_ATMOST,      /* "at-most" */
	JS_CONSISTENCY_NONE,        /* "none" */
};

enum js_fallback {
	JS_FALLBACK_EARLIEST = 0,
	JS_FALLBACK_LATEST,
};

struct js_column {
	char *name;
	char *type; /* SQL type; NULL means "the destination column's type" */
};

/* KAFKA.INPUT.KEY or KAFKA.INPUT.VALUE */
struct js_input {
	bool present;
	int line; /* line of the KEY/VALUE key in the YAML, 0 if none */
	struct js_column *columns;
	size_t ncolumns;
	enum js_format format;
	char *delimiter;   /* DELIMITED_OPTION.DELIMITER (any length) or CSV_OPTION.DELIMITER */
	char *quote;       /* QUOTE, one character */
	char *escape;      /* ESCAPE, one character */
	char *null_string; /* CSV_OPTION.NULL_STRING */

	/* PROTOBUF_OPTION (FORMAT: protobuf): the message type, from a
	 * FileDescriptorSet made by `protoc --include_imports --descriptor_set_out`,
	 * given either as a file path or inline as base64 (exactly one of the two). */
	char *protobuf_descriptor_file; /* DESCRIPTOR_FILE */
	char *protobuf_descriptor;      /* DESCRIPTOR (base64) */
	char *protobuf_message;         /* MESSAGE: full name, e.g. "shop.v1.Order" */

	/* AVRO_OPTION (FORMAT avro) and JSON_OPTION (FORMAT json): a schema
	 * registry speaking Confluent's API.  With an address every message is
	 * framed (a zero byte, a 4-byte big-endian schema id, the body) and
	 * decoded with the schema of its id; a json body is plain JSON.  Avro
	 * without a registry takes one schema for every message, SCHEMA_FILE or
	 * SCHEMA (exactly one of the three for avro). */
	char *registry_addr;     /* SCHEMA_REGISTRY_ADDR: "url[,url...]", tried in turn */
	char *registry_user;     /* SCHEMA_REGISTRY_USER: HTTP basic auth */
	char *registry_password; /* SCHEMA_REGISTRY_PASSWORD: a secret */
	bool avro_bytes_to_base64; /* BYTES_TO_BASE64: bytes/fixed as base64, not bytea hex */
	char *avro_schema_file;  /* SCHEMA_FILE: absolute path of an .avsc */
	char *avro_schema;       /* SCHEMA: the schema's JSON text inline */
};

/* FORMAT: json or avro.  A single column of TYPE json or jsonb receives the
 * whole value; otherwise each column receives the top-level field of the same
 * name (objects and arrays as JSON text, JSON null and absent fields as NULL). */
bool js_input_json_whole(const struct js_input *in);

/* Whether a column's TYPE is json or jsonb (case and surrounding whitespace
 * aside): the JSON and protobuf decoders then give it JSON text. */
bool js_column_is_json(const struct js_column *col);

#define JS_TASKS_MIN 1
#define JS_TASKS_MAX 64

/* Where a key stood in the YAML, for error messages. */
struct js_line {
	char *path; /* e.g. "KAFKA.OUTPUT.MATCH_COLUMNS[1]" */
	int line;
};

struct js_mapping {
	char *name;       /* target column */
	char *expression; /* source column or SQL expression over source columns */
};

struct js_property {
	char *key;
	char *value;
};

struct jobspec {
	/* connection */
	char *database;
	char *user;
	char *password;
	char *host;
	int port; /* 0 = absent */
	/* TLS to PostgreSQL (SSLMODE, SSLROOTCERT, SSLCERT, SSLKEY): libpq's
	 * sslmode, NULL = libpq's default (prefer); the root CA, the client
	 * certificate and the client key as PEM text, not file names.  sslkey is
	 * a secret, masked like the password. */
	char *sslmode;
	char *sslrootcert;
	char *sslcert;
	char *sslkey;
	int version;
	/* TASKS (an extension of the GPSS format): how many worker processes run
	 * the job, JS_TASKS_MIN..JS_TASKS_MAX, default 1.  Without PARTITIONS
	 * they share the topic through the job's consumer group; with PARTITIONS
	 * task i of n owns the listed partitions at sorted positions p where
	 * p % n == i. */
	int tasks;

	/* KAFKA.INPUT.SOURCE */
	char *brokers;
	char *topic;
	int32_t *partitions; /* NULL = all partitions */
	size_t npartitions;
	enum js_fallback fallback_offset;

	/* KAFKA.INPUT.KEY / VALUE / META */
	struct js_input key;
	struct js_input value;
	bool meta_present;
	char *meta_column; /* META.COLUMNS[0].NAME */
	char *meta_type;   /* json or jsonb */

	/* KAFKA.INPUT.ERROR_LIMIT: a count, or a percentage when error_limit_percent */
	int64_t error_limit;
	bool error_limit_percent;

	/* KAFKA.OUTPUT */
	char *schema; /* default "public" */
	char *table;
	enum js_mode mode;
	char **match_columns;
	size_t nmatch_columns;
	char **order_columns;
	size_t norder_columns;
	char **update_columns;
	size_t nupdate_columns;
	struct js_mapping *mapping; /* NULL = target columns named like the source columns */
	size_t nmapping;

	/* KAFKA.METADATA.SCHEMA: where the auxiliary tables go; NULL = output schema */
	char *metadata_schema;

	/* KAFKA.COMMIT */
	int64_t commit_max_row;             /* default 500 */
	int64_t commit_minimal_interval_ms; /* default 1000 */
	enum js_consistency consistency;    /* default ATLEAST */

	/* KAFKA.POLL */
	int64_t poll_batchsize;  /* default 64 */
	int64_t poll_timeout_ms; /* default 5000 */

	/* KAFKA.PROPERTIES, in the order written */
	struct js_property *properties;
	size_t nproperties;

	/* SCHEDULE */
	int64_t retry_interval_ms; /* default 5000 */
	int64_t max_retries;       /* default 0 = retry forever */

	/* Line of every key and list item of the YAML it was parsed from; empty
	 * for a wizard job.  Not part of the job's meaning: not emitted. */
	struct js_line *lines;
	size_t nlines;
};

/* The YAML line of path, else of its nearest enclosing key that has one,
 * else 0.  "KAFKA.OUTPUT.MATCH_COLUMNS[1]" falls back to
 * "KAFKA.OUTPUT.MATCH_COLUMNS", then "KAFKA.OUTPUT", ... */
int jobspec_line(const struct jobspec *spec, const char *path);

/* Problems found in a job definition, each with where it is and how to fix it. */
#define JS_ERRORS_MAX 64

struct js_error {
	char path[128];    /* YAML path, e.g. "KAFKA.OUTPUT.MATCH_COLUMNS[1]", or wizard field name */
	int line;          /* 1-based line in the YAML, 0 when unknown */
	char message[384]; /* says what is wrong and how to fix it */
};

struct js_errors {
	struct js_error items[JS_ERRORS_MAX];
	size_t count;
	bool truncated; /* more than JS_ERRORS_MAX problems */
};

void js_errors_add(struct js_errors *errs, int line, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes "PATH (line N): message; PATH: message; ..." into buf. */
void js_errors_format(const struct js_errors *errs, char *buf, size_t buflen);

/* A spec with every default set and every pointer NULL. */
struct jobspec *jobspec_new(void);
void jobspec_free(struct jobspec *spec);

/* Parses professional-mode YAML.  Checks syntax, types, ranges and unknown keys;
 * keys that defaults may fill (HOST, PORT, BROKERS, TOPIC, FORMAT...) may be
 * absent.  Returns 0 and sets *out (caller owns it), or -1 with every problem
 * found in errs and *out NULL.  text need not be NUL-terminated. */
int jobspec_parse_yaml(const char *text, size_t len, struct jobspec **out, struct js_errors *errs);

/* Builds a spec from the console's wizard fields (a JSON object with
 * group_name, fallback_offset, consistency, database, schema, table, account,
 * password, write_mode, error_limit, tasks, fields[{source,dest,role}], and the
 * TLS settings sslmode, sslrootcert, sslcert, sslkey).  Each wizard
 * field becomes a VALUE column (type NULL: the destination column's type) and a
 * MAPPING entry dest: source; roles fill MATCH_COLUMNS / UPDATE_COLUMNS;
 * group_name becomes PROPERTIES group.id.  Errors name the JSON field. */
int jobspec_from_wizard(const cJSON *fields, struct jobspec **out, struct js_errors *errs);

/* What a job leaves out, taken from its data source and data service. */
struct js_defaults {
	const char *brokers;
	const char *topic;
	enum js_format format; /* JS_FORMAT_NONE = no default */
	const char *delimiter;
	const char *host;
	int port;
	const char *sslmode; /* the service's TLS settings */
	const char *sslrootcert;
	const char *sslcert;
	const char *sslkey;
	const struct js_property *properties; /* the source's librdkafka settings */
	size_t nproperties;
	/* The source's schema registry (its schema_registry and credentials):
	 * an avro KEY or VALUE, or a json VALUE, without SCHEMA_REGISTRY_ADDR
	 * (avro: nor SCHEMA_FILE / SCHEMA) takes it. */
	const char *registry;
	const char *registry_user;
	const char *registry_password;
};

/* Fills absent values from defaults: BROKERS, TOPIC, HOST, PORT, SSLMODE,
 * SSLROOTCERT, SSLCERT, SSLKEY (each on its own); a VALUE with
 * no FORMAT gets the source's format and delimiter; source properties are added
 * where the job does not set the same key; the source's registry as said at
 * js_defaults.registry. */
int jobspec_apply_defaults(struct jobspec *spec, const struct js_defaults *defaults);

/* Semantic checks on a complete spec: required keys present, MATCH_COLUMNS for
 * UPDATE/MERGE, mapping names, property blacklist, and what this build does
 * not support yet.  Returns 0 if valid, -1 with every problem in errs. */
int jobspec_validate(const struct jobspec *spec, struct js_errors *errs);

/* The spec as YAML in the seed's appendix format, which jobspec_parse_yaml
 * reads back to an equal spec.  With mask_secrets every secret (PASSWORD,
 * SSLKEY, a secret property's value) is SECRET_MASK, as the API shows a job.
 * Returns a malloc'd string (caller frees), or NULL on out of memory. */
char *jobspec_to_yaml(const struct jobspec *spec, bool mask_secrets);

/* A schema registry address list, "url[,url...]" (AVRO_OPTION's and a
 * source's): http(s) URLs with a host, no spaces, no user:password, at most
 * 16.  0, or -1 with why saying which URL and what is wrong. */
int jobspec_registry_check(const char *addrs, char *why, size_t whylen);

/* libpq's sslmode values: disable, allow, prefer, require, verify-ca,
 * verify-full (exactly so: libpq reads them case-sensitively). */
bool jobspec_sslmode_valid(const char *s);
#define JS_SSLMODES "disable, allow, prefer, require, verify-ca, verify-full"

/* Whether text looks like PEM: one or more blocks of -----BEGIN CERTIFICATE-----
 * (key false; a CA bundle or a chain) or exactly one block of
 * -----BEGIN ... PRIVATE KEY----- (key true), base64 between the lines; text
 * around the blocks is ignored, as OpenSSL does.  NULL when it does, else
 * what is wrong (a static string that never quotes the text). */
const char *jobspec_pem_problem(const char *text, bool key);

/* The value of KAFKA.PROPERTIES key, or NULL. */
const char *jobspec_property(const struct jobspec *spec, const char *key);

/* ---- secrets (see common/secret.h) ----
 * A job's secrets are the fields listed in js_secret_fields (jobspec.c:
 * PASSWORD) and the value of every property secret_property_is_secret names.
 * A new secret field goes into that table, and jobspec_to_yaml masks it; the
 * functions below then cover it. */

/* The secrets spec holds (pointers into spec), into out[0..max); returns how
 * many there are (more than max: only max were written). */
size_t jobspec_secrets(const struct jobspec *spec, const char **out, size_t max);

/* s with every secret of spec masked (secret_scrub): for text from a worker
 * or a library that may quote the configuration.  malloc'd; NULL on out of
 * memory. */
char *jobspec_scrub(const struct jobspec *spec, const char *s);

/* secret_register for every secret of spec: the worker does it once it has
 * its job, so that none of its log or status lines carries one.  Returns 0,
 * or -1 with err filled when one could not be registered (run no further:
 * it could leak). */
int jobspec_register_secrets(const struct jobspec *spec, char *err, size_t errlen);

/* A spec sent back as the API shows it keeps the stored secrets: a secret
 * field that is SECRET_MASK takes stored's value (when stored has none, a
 * PASSWORD is left as it is and an SSLKEY removed, so that the service's
 * applies), a secret property that is SECRET_MASK takes stored's value of
 * the same property or, when stored has none, is removed so that the
 * source's applies.  stored may be NULL.  Returns 1 when spec changed, 0 when
 * not, -1 on out of memory. */
int jobspec_keep_secrets(struct jobspec *spec, const struct jobspec *stored);

/* Names used in messages and YAML. */
const char *js_format_name(enum js_format f);    /* "delimited", "csv", "json", "protobuf", "avro" */
const char *js_mode_name(enum js_mode m);        /* "INSERT", "UPDATE", "MERGE" */
const char *js_consistency_name(enum js_consistency c); /* "ATLEAST", "EXACTLY", "at-most", "none" */
const char *js_fallback_name(enum js_fallback f); /* "earliest", "latest" */

/* Case-insensitive name to enum; return -1 if unknown. */
int js_format_parse(const char *s);
int js_mode_parse(const char *s);
int js_consistency_parse(const char *s);
int js_fallback_parse(const char *s);

#endif
