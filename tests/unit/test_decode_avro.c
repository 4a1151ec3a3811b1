/* Unit tests of FORMAT avro (worker/decode_avro.c, avro_schema.c) and the
 * schema registry framing (worker/registry.c).  The messages are written by
 * Apache Avro's C library (avro_value_write), never by our own encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <avro.h>
#include <cmocka.h>

#include "avro_schema.h"
#include "check_registry.h"
#include "decode.h"
#include "registry.h"

static const char order_schema[] =
	"{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":["
	"{\"name\":\"id\",\"type\":\"long\"},"
	"{\"name\":\"name\",\"type\":\"string\"},"
	"{\"name\":\"price\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":10,\"scale\":2}},"
	"{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
	"{\"name\":\"day\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
	"{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
	"{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null},"
	"{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"NEW\",\"PAID\"]}},"
	"{\"name\":\"addr\",\"type\":{\"type\":\"record\",\"name\":\"Addr\",\"fields\":["
	"{\"name\":\"city\",\"type\":\"string\"},{\"name\":\"zip\",\"type\":\"int\"}]}},"
	"{\"name\":\"blob\",\"type\":\"bytes\"},"
	"{\"name\":\"ratio\",\"type\":\"double\"},"
	"{\"name\":\"uid\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
	"{\"name\":\"ts_us\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
	"{\"name\":\"at\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
	"{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"long\"}}"
	"]}";

/* One Order written with libavro; note NULL means the union's null. */
static size_t write_order(char *buf, size_t cap, int64_t id, const char *note, const unsigned char *price,
			  size_t price_len)
{
	avro_schema_t schema;
	avro_value_iface_t *iface;
	avro_value_t rec, f, sub, br;
	avro_writer_t w;
	size_t len;

	assert_int_equal(avro_schema_from_json_length(order_schema, strlen(order_schema), &schema), 0);
	iface = avro_generic_class_from_schema(schema);
	assert_non_null(iface);
	assert_int_equal(avro_generic_value_new(iface, &rec), 0);
	avro_value_get_by_name(&rec, "id", &f, NULL);
	avro_value_set_long(&f, id);
	avro_value_get_by_name(&rec, "name", &f, NULL);
	avro_value_set_string(&f, "caf\xc3\xa9 \"x\"");
	avro_value_get_by_name(&rec, "price", &f, NULL);
	avro_value_set_bytes(&f, (void *)price, price_len);
	avro_value_get_by_name(&rec, "ts", &f, NULL);
	avro_value_set_long(&f, INT64_C(1706708700123)); /* 2024-01-31 13:45:00.123 UTC */
	avro_value_get_by_name(&rec, "day", &f, NULL);
	avro_value_set_int(&f, 19753); /* 2024-01-31 */
	avro_value_get_by_name(&rec, "tags", &f, NULL);
	avro_value_append(&f, &sub, NULL);
	avro_value_set_string(&sub, "a");
	avro_value_append(&f, &sub, NULL);
	avro_value_set_string(&sub, "b\n");
	avro_value_get_by_name(&rec, "note", &f, NULL);
	if (note == NULL) {
		avro_value_set_branch(&f, 0, &br);
		avro_value_set_null(&br);
	} else {
		avro_value_set_branch(&f, 1, &br);
		avro_value_set_string(&br, note);
	}
	avro_value_get_by_name(&rec, "kind", &f, NULL);
	avro_value_set_enum(&f, 1);
	avro_value_get_by_name(&rec, "addr", &f, NULL);
	avro_value_get_by_name(&f, "city", &sub, NULL);
	avro_value_set_string(&sub, "Oslo");
	avro_value_get_by_name(&f, "zip", &sub, NULL);
	avro_value_set_int(&sub, 150);
	avro_value_get_by_name(&rec, "blob", &f, NULL);
	avro_value_set_bytes(&f, "\x00\xff", 2);
	avro_value_get_by_name(&rec, "ratio", &f, NULL);
	avro_value_set_double(&f, 0.1);
	avro_value_get_by_name(&rec, "uid", &f, NULL);
	avro_value_set_string(&f, "123e4567-e89b-12d3-a456-426614174000");
	avro_value_get_by_name(&rec, "ts_us", &f, NULL);
	avro_value_set_long(&f, INT64_C(-1)); /* 1969-12-31 23:59:59.999999 */
	avro_value_get_by_name(&rec, "at", &f, NULL);
	avro_value_set_int(&f, 49500250); /* 13:45:00.25 */
	avro_value_get_by_name(&rec, "attrs", &f, NULL);
	avro_value_add(&f, "k", &sub, NULL, NULL);
	avro_value_set_long(&sub, -7);

	w = avro_writer_memory(buf, (int64_t)cap);
	assert_int_equal(avro_value_write(w, &rec), 0);
	len = (size_t)avro_writer_tell(w);
	avro_writer_free(w);
	avro_value_decref(&rec);
	avro_value_iface_decref(iface);
	avro_schema_decref(schema);
	return len;
}

#define NCOLS_MAX 20

struct at_input {
	struct js_input in;
	struct js_column cols[NCOLS_MAX];
	char names[NCOLS_MAX][64];
};

/* columns: "a,b:jsonb,c" */
static void at_input_init(struct at_input *ai, const char *columns, const char *schema)
{
	const char *p = columns;
	size_t n = 0;

	memset(ai, 0, sizeof(*ai));
	ai->in.present = true;
	ai->in.format = JS_FORMAT_AVRO;
	ai->in.avro_schema = (char *)schema;
	while (*p != '\0' && n < NCOLS_MAX) {
		size_t len = strcspn(p, ",");
		char *colon;

		snprintf(ai->names[n], sizeof(ai->names[n]), "%.*s", (int)len, p);
		colon = strchr(ai->names[n], ':');
		ai->cols[n].name = ai->names[n];
		if (colon != NULL) {
			*colon = '\0';
			ai->cols[n].type = colon + 1;
		}
		n++;
		p += len;
		if (*p == ',')
			p++;
	}
	ai->in.columns = ai->cols;
	ai->in.ncolumns = n;
}

static struct decoder *at_decoder(const char *columns, const char *schema, bool base64)
{
	struct at_input ai;
	char err[512] = "";
	struct decoder *dec;

	at_input_init(&ai, columns, schema);
	ai.in.avro_bytes_to_base64 = base64;
	dec = decoder_new(&ai.in, err, sizeof(err));
	if (dec == NULL)
		fail_msg("decoder_new: %s", err);
	return dec;
}

static void assert_field(const struct decode_row *row, size_t i, const char *want)
{
	const struct decode_field *f = &row->fields[i];

	if (want == NULL) {
		assert_true(f->is_null);
		return;
	}
	assert_false(f->is_null);
	if (f->len != strlen(want) || memcmp(f->ptr, want, f->len) != 0)
		fail_msg("field %zu: got \"%.*s\", want \"%s\"", i, (int)f->len, f->ptr, want);
}

static const unsigned char price_pos[] = { 0x30, 0x39 };       /* 12345 -> 123.45 */
static const unsigned char price_neg[] = { 0xff, 0xff, 0xfb }; /* -5 -> -0.05 */

static void test_avro_columns(void **state)
{
	struct decoder *dec = at_decoder("id,name,price,ts,day,tags,note,kind,addr,blob,ratio,uid,ts_us,at,attrs",
					 order_schema, false);
	struct decode_row row;
	char buf[1024], err[512] = "";
	size_t len = write_order(buf, sizeof(buf), -42, NULL, price_pos, sizeof(price_pos));

	(void)state;
	if (decoder_decode(dec, buf, len, &row, err, sizeof(err)) != 0)
		fail_msg("decode: %s", err);
	assert_int_equal(row.nfields, 15);
	assert_field(&row, 0, "-42");
	assert_field(&row, 1, "caf\xc3\xa9 \"x\"");
	assert_field(&row, 2, "123.45");
	assert_field(&row, 3, "2024-01-31T13:45:00.123+00:00");
	assert_field(&row, 4, "2024-01-31");
	assert_field(&row, 5, "[\"a\",\"b\\n\"]");
	assert_field(&row, 6, NULL);
	assert_field(&row, 7, "PAID");
	assert_field(&row, 8, "{\"city\":\"Oslo\",\"zip\":150}");
	assert_field(&row, 9, "\\x00ff");
	assert_field(&row, 10, "0.1");
	assert_field(&row, 11, "123e4567-e89b-12d3-a456-426614174000");
	assert_field(&row, 12, "1969-12-31T23:59:59.999999+00:00");
	assert_field(&row, 13, "13:45:00.25");
	assert_field(&row, 14, "{\"k\":-7}");

	len = write_order(buf, sizeof(buf), 7, "hi", price_neg, sizeof(price_neg));
	if (decoder_decode(dec, buf, len, &row, err, sizeof(err)) != 0)
		fail_msg("decode: %s", err);
	assert_field(&row, 2, "-0.05");
	assert_field(&row, 6, "hi");
	decoder_free(dec);
}

static void test_avro_whole_and_base64(void **state)
{
	struct decoder *dec = at_decoder("doc:jsonb", order_schema, true);
	struct decode_row row;
	char buf[1024], err[512] = "";
	size_t len = write_order(buf, sizeof(buf), 1, "n", price_neg, sizeof(price_neg));

	(void)state;
	if (decoder_decode(dec, buf, len, &row, err, sizeof(err)) != 0)
		fail_msg("decode: %s", err);
	assert_int_equal(row.nfields, 1);
	assert_field(&row, 0,
		     "{\"id\":1,\"name\":\"caf\xc3\xa9 \\\"x\\\"\",\"price\":-0.05,"
		     "\"ts\":\"2024-01-31T13:45:00.123+00:00\",\"day\":\"2024-01-31\",\"tags\":[\"a\",\"b\\n\"],"
		     "\"note\":\"n\",\"kind\":\"PAID\",\"addr\":{\"city\":\"Oslo\",\"zip\":150},\"blob\":\"AP8=\","
		     "\"ratio\":0.1,\"uid\":\"123e4567-e89b-12d3-a456-426614174000\","
		     "\"ts_us\":\"1969-12-31T23:59:59.999999+00:00\",\"at\":\"13:45:00.25\",\"attrs\":{\"k\":-7}}");
	decoder_free(dec);

	/* bytes inside JSON without BYTES_TO_BASE64: bytea hex text */
	dec = at_decoder("addr,blob,doc:json", "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
			 "{\"name\":\"blob\",\"type\":\"bytes\"},{\"name\":\"doc\",\"type\":[\"null\",\"bytes\"]},"
			 "{\"name\":\"addr\",\"type\":\"int\"}]}", false);
	if (decoder_decode(dec, "\x04\x01\x02\x02\x02\xab\x06", 7, &row, err, sizeof(err)) != 0)
		fail_msg("decode: %s", err);
	assert_field(&row, 0, "3");
	assert_field(&row, 1, "\\x0102");
	assert_field(&row, 2, "\"\\\\xab\"");
	decoder_free(dec);
}

static void test_avro_errors(void **state)
{
	struct decoder *dec = at_decoder("id,name", order_schema, false);
	struct decode_row row;
	char buf[1024], err[512] = "";
	size_t len = write_order(buf, sizeof(buf), 1, NULL, price_pos, sizeof(price_pos));
	struct at_input ai;

	(void)state;
	assert_int_equal(decoder_decode(dec, buf, len - 3, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated Avro data"));
	buf[len] = 0;
	assert_int_equal(decoder_decode(dec, buf, len + 1, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1 bytes are left after the Avro record"));
	/* a string length far beyond the message */
	assert_int_equal(decoder_decode(dec, "\x02\xfe\xff\xff\xff\x0f", 6, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated Avro data: a string at byte 1"));
	decoder_free(dec);

	dec = at_decoder("u", "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"u\",\"type\":[\"null\",\"int\"]}]}",
			 false);
	assert_int_equal(decoder_decode(dec, "\x04\x02", 2, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "union branch 2 at byte 0 is out of range"));
	decoder_free(dec);

	/* configuration problems */
	at_input_init(&ai, "nope", order_schema);
	assert_null(decoder_new(&ai.in, err, sizeof(err)));
	assert_non_null(strstr(err, "COLUMNS[0] \"nope\": record shop.Order has no field of that name"));
	at_input_init(&ai, "a", "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"Nope\"}]}");
	assert_null(decoder_new(&ai.in, err, sizeof(err)));
	assert_non_null(strstr(err, "AVRO_OPTION.SCHEMA: not a valid Avro schema"));
	at_input_init(&ai, "a", "{not json");
	assert_null(decoder_new(&ai.in, err, sizeof(err)));
	assert_non_null(strstr(err, "not JSON"));
}

static void test_avro_recursive_and_decimal_fixed(void **state)
{
	static const char schema[] =
		"{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
		"{\"name\":\"v\",\"type\":{\"type\":\"fixed\",\"name\":\"D\",\"size\":3,\"logicalType\":\"decimal\","
		"\"precision\":6,\"scale\":3}},"
		"{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}";
	struct decoder *dec = at_decoder("v,next", schema, false);
	struct decode_row row;
	char err[512] = "";

	(void)state;
	/* v = 1 (0.001), next = {v = -1000 (-1.000), next = null} */
	if (decoder_decode(dec, "\x00\x00\x01\x02\xff\xfc\x18\x00", 8, &row, err, sizeof(err)) != 0)
		fail_msg("decode: %s", err);
	assert_field(&row, 0, "0.001");
	assert_field(&row, 1, "{\"v\":-1.000,\"next\":null}");
	decoder_free(dec);
}

/* Timestamps at the ends of a long: no overflow, years before 1 AD as BC. */
static void test_avro_timestamp_extremes(void **state)
{
	struct decoder *dec = at_decoder("t", "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"t\",\"type\":"
					 "{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}}]}", false);
	struct decode_row row;
	char err[512] = "";
	const struct decode_field *f;

	(void)state;
	/* zig-zag of INT64_MIN: ten bytes */
	if (decoder_decode(dec, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, &row, err, sizeof(err)) != 0)
		fail_msg("decode: %s", err);
	f = &row.fields[0];
	assert_true(f->len > 9 && memcmp(f->ptr + f->len - 9, "+00:00 BC", 9) == 0);
	/* 0 is the epoch */
	if (decoder_decode(dec, "\x00", 1, &row, err, sizeof(err)) != 0)
		fail_msg("decode: %s", err);
	assert_field(&row, 0, "1970-01-01T00:00:00+00:00");
	decoder_free(dec);
}

static void test_registry_frame(void **state)
{
	const char *body;
	size_t blen, pos, n;
	uint32_t id;
	int32_t idx[8];
	char err[256];

	(void)state;
	assert_int_equal(registry_frame_parse("\x00\x00\x01\x00\x07xyz", 8, &id, &body, &blen, err, sizeof(err)), 0);
	assert_int_equal(id, 0x10007);
	assert_int_equal(blen, 3);
	assert_memory_equal(body, "xyz", 3);
	assert_int_equal(registry_frame_parse("\x01\x00\x00\x00\x01", 5, &id, &body, &blen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "first byte is 0x01, not 0"));
	assert_int_equal(registry_frame_parse("\x00\x00", 2, &id, &body, &blen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "shorter than a schema registry frame"));

	/* message indexes: [0] written as a single 0, [1, 2] as count 2 */
	pos = 0;
	assert_int_equal(registry_pb_indexes("\x00", 1, &pos, idx, 8, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(idx[0], 0);
	assert_int_equal(pos, 1);
	pos = 0;
	assert_int_equal(registry_pb_indexes("\x04\x02\x04", 3, &pos, idx, 8, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 2);
	pos = 0;
	assert_int_equal(registry_pb_indexes("\x04\x02", 2, &pos, idx, 8, &n, err, sizeof(err)), -1);
	pos = 0;
	assert_int_equal(registry_pb_indexes("\x03", 1, &pos, idx, 8, &n, err, sizeof(err)), -1);
}

static void test_registry_unreachable_is_retry(void **state)
{
	struct at_input ai;
	struct decoder *dec;
	struct decode_row row;
	char err[512] = "";

	(void)state;
	/* A port nothing listens on (connection refused at once). */
	at_input_init(&ai, "id", NULL);
	ai.in.avro_schema = NULL;
	ai.in.registry_addr = (char *)"http://127.0.0.1:1";
	dec = decoder_new(&ai.in, err, sizeof(err));
	assert_non_null(dec);
	assert_int_equal(decoder_decode(dec, "\x01\x00\x00\x00\x01\x02", 6, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not 0"));
	/* framed: the registry cannot be reached, which is not the message's
	 * fault (about 3 s: three rounds, 1 s then 2 s apart) */
	assert_int_equal(decoder_decode(dec, "\x00\x00\x00\x00\x01\x02", 6, &row, err, sizeof(err)), DECODE_RETRY);
	assert_non_null(strstr(err, "KEY") == NULL ? strstr(err, "no schema registry answered for schema id 1") : NULL);
	decoder_free(dec);
}

/* Check mode's type fit of a registry schema's field and a column's TYPE. */
static void test_check_type_fit(void **state)
{
	struct avro_schema *sc;
	char err[256];
	const struct avro_node *f[15];

	(void)state;
	assert_int_equal(avro_schema_parse(order_schema, strlen(order_schema), &sc, err, sizeof(err)), 0);
	for (size_t i = 0; i < 15; i++)
		f[i] = sc->root->fields[i].type;
	assert_null(check_registry_type_problem(f[0], "bigint"));   /* id long */
	assert_null(check_registry_type_problem(f[0], " Numeric(20)"));
	assert_non_null(strstr(check_registry_type_problem(f[0], "boolean"), "is an integer"));
	assert_null(check_registry_type_problem(f[2], "numeric(10,2)")); /* price decimal */
	assert_non_null(check_registry_type_problem(f[2], "bytea"));
	assert_null(check_registry_type_problem(f[3], "timestamptz"));  /* ts */
	assert_non_null(strstr(check_registry_type_problem(f[3], "integer"), "timestamp"));
	assert_null(check_registry_type_problem(f[4], "date"));
	/* an array's JSON is not PostgreSQL's array text */
	assert_non_null(strstr(check_registry_type_problem(f[5], "integer[]"), "JSON"));
	assert_null(check_registry_type_problem(f[5], "hstore")); /* a type not known here: the table decides */
	assert_non_null(strstr(check_registry_type_problem(f[8], "bigint"), "JSON"));   /* addr record */
	assert_null(check_registry_type_problem(f[8], "jsonb"));
	assert_null(check_registry_type_problem(f[6], "text"));    /* note [null,string] */
	assert_null(check_registry_type_problem(f[9], "bytea"));   /* blob */
	assert_non_null(check_registry_type_problem(f[9], "uuid") == NULL ? "" : NULL);
	assert_non_null(strstr(check_registry_type_problem(f[9], "integer"), "bytes"));
	assert_null(check_registry_type_problem(f[13], "time"));   /* at */
	avro_schema_free(sc);
}

/* ---- the registry client against a canned HTTP responder ----
 * Not a schema registry: it answers fixed bodies per path, so that the
 * client's caching, classification, failover and authentication can be
 * checked without one (the e2e tests use the registry harness). */

struct canned {
	int fd;
	int port;
	int requests[8]; /* per schema id 0..7 */
	int with_auth;
	pthread_t thread;
};

static const char canned_avro[] =
	"{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"R\\\",\\\"fields\\\":"
	"[{\\\"name\\\":\\\"id\\\",\\\"type\\\":\\\"long\\\"}]}\"}";

static void *canned_run(void *arg)
{
	struct canned *c = arg;

	for (;;) {
		char req[4096], resp[1024];
		const char *status = "200 OK", *body = canned_avro;
		ssize_t n, got = 0;
		int cfd = accept(c->fd, NULL, NULL);
		unsigned id = 0;

		if (cfd < 0)
			return NULL;
		while (got < (ssize_t)sizeof(req) - 1 && (n = read(cfd, req + got, sizeof(req) - 1 - (size_t)got)) > 0) {
			got += n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n") != NULL)
				break;
		}
		req[got > 0 ? got : 0] = '\0';
		if (sscanf(req, "GET /schemas/ids/%u", &id) == 1 && id < 8)
			c->requests[id]++;
		if (strstr(req, "Authorization: Basic Ym9iOnMzY3JldA==") != NULL) /* bob:s3cret */
			c->with_auth++;
		if (strncmp(req, "GET /subjects/orders-value/versions/latest", 42) == 0) {
			body = "{\"subject\":\"orders-value\",\"version\":3,\"id\":1,\"schema\":\"\\\"long\\\"\"}";
		} else if (id == 2 || strncmp(req, "GET /subjects/", 14) == 0) {
			status = "404 Not Found";
			body = "{\"error_code\":40403,\"message\":\"Schema 2 not found\"}";
		} else if (id == 3) {
			status = "500 Internal Server Error";
			body = "{\"error_code\":50001,\"message\":\"store down\"}";
		} else if (id == 4) {
			body = "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"object\\\"}\"}";
		} else if (id == 6) {
			status = "404 Not Found";
			body = "<html>no such page</html>";
		} else if (id == 5) {
			status = "401 Unauthorized";
			body = "{\"error_code\":401,\"message\":\"Unauthorized\"}";
		}
		n = snprintf(resp, sizeof(resp), "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			     "Connection: close\r\n\r\n%s", status, strlen(body), body);
		if (write(cfd, resp, (size_t)n) != n)
			fprintf(stderr, "canned: short write\n");
		close(cfd);
	}
}

static void canned_start(struct canned *c)
{
	struct sockaddr_in a = { 0 };
	socklen_t alen = sizeof(a);

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(c->fd, 16), 0);
	assert_int_equal(getsockname(c->fd, (struct sockaddr *)&a, &alen), 0);
	c->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&c->thread, NULL, canned_run, c), 0);
}

static void canned_stop(struct canned *c)
{
	shutdown(c->fd, SHUT_RDWR);
	close(c->fd);
	pthread_join(c->thread, NULL);
}

static void test_registry_client(void **state)
{
	struct canned c;
	struct registry *reg;
	const struct registry_schema *rs;
	struct registry_schema *latest;
	struct decoder *dec;
	struct at_input ai;
	struct decode_row row;
	char addrs[128], err[512] = "";

	(void)state;
	canned_start(&c);
	/* The first address refuses: the second is tried. */
	snprintf(addrs, sizeof(addrs), "http://127.0.0.1:1, http://127.0.0.1:%d/", c.port);

	at_input_init(&ai, "id", NULL);
	ai.in.registry_addr = addrs;
	ai.in.registry_user = (char *)"bob";
	ai.in.registry_password = (char *)"s3cret";
	dec = decoder_new(&ai.in, err, sizeof(err));
	assert_non_null(dec);
	/* id 1, twice: fetched once */
	for (int i = 0; i < 2; i++) {
		if (decoder_decode(dec, "\x00\x00\x00\x00\x01\x54", 6, &row, err, sizeof(err)) != 0)
			fail_msg("decode: %s", err);
		assert_field(&row, 0, "42");
	}
	assert_int_equal(c.requests[1], 1);
	assert_true(c.with_auth >= 1);
	/* an id the registry does not know: a bad message */
	assert_int_equal(decoder_decode(dec, "\x00\x00\x00\x00\x02\x54", 6, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "has no schema id 2 (error_code 40403"));
	/* a JSON Schema id in an avro topic: a bad message */
	assert_int_equal(decoder_decode(dec, "\x00\x00\x00\x00\x04\x54", 6, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "schema id 4 is a JSON schema, not Avro"));
	decoder_free(dec);

	/* The client's classes, without pauses. */
	reg = registry_new(addrs, "bob", "s3cret", err, sizeof(err));
	assert_non_null(reg);
	registry_set_retry(reg, 2, 0);
	assert_int_equal(registry_schema_get(reg, 3, &rs, err, sizeof(err)), REGISTRY_RETRY);
	assert_non_null(strstr(err, "HTTP 500"));
	assert_int_equal(c.requests[3], 2); /* two rounds */
	assert_int_equal(registry_schema_get(reg, 5, &rs, err, sizeof(err)), REGISTRY_FATAL);
	assert_non_null(strstr(err, "refused the credentials"));
	assert_null(strstr(err, "s3cret"));
	/* a 404 that is not the registry's: a wrong URL, not a bad message */
	assert_int_equal(registry_schema_get(reg, 6, &rs, err, sizeof(err)), REGISTRY_FATAL);
	assert_non_null(strstr(err, "the registry's base URL"));
	assert_int_equal(registry_latest(reg, "orders-value", &latest, err, sizeof(err)), REGISTRY_OK);
	assert_int_equal(latest->version, 3);
	assert_string_equal(latest->text, "\"long\"");
	registry_schema_free(latest);
	assert_int_equal(registry_latest(reg, "nope-value", &latest, err, sizeof(err)), REGISTRY_DATA);
	registry_free(reg);

	/* FORMAT json with a registry: the frame is checked and removed. */
	memset(&ai, 0, sizeof(ai));
	at_input_init(&ai, "doc:jsonb", NULL);
	ai.in.format = JS_FORMAT_JSON;
	ai.in.registry_addr = addrs;
	dec = decoder_new(&ai.in, err, sizeof(err));
	assert_non_null(dec);
	if (decoder_decode(dec, "\x00\x00\x00\x00\x04{\"a\":1}", 12, &row, err, sizeof(err)) != 0)
		fail_msg("decode: %s", err);
	assert_field(&row, 0, "{\"a\":1}");
	assert_int_equal(decoder_decode(dec, "{\"a\":1}", 7, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "first byte is 0x7b, not 0"));
	assert_int_equal(decoder_decode(dec, "\x00\x00\x00\x00\x01{}", 7, &row, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "schema id 1 is an Avro schema, not a JSON Schema"));
	decoder_free(dec);
	assert_int_equal(c.requests[4], 2); /* once per client */
	canned_stop(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_avro_columns),
		cmocka_unit_test(test_avro_whole_and_base64),
		cmocka_unit_test(test_avro_errors),
		cmocka_unit_test(test_avro_recursive_and_decimal_fixed),
		cmocka_unit_test(test_avro_timestamp_extremes),
		cmocka_unit_test(test_registry_frame),
		cmocka_unit_test(test_registry_unreachable_is_retry),
		cmocka_unit_test(test_check_type_fit),
		cmocka_unit_test(test_registry_client),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
