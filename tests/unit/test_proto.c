/* The worker -> controller status protocol: what one side writes, the other reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

/* Sends with fn through a pipe and returns the line read back (without \n). */
static size_t roundtrip(int (*send)(int fd), char *buf, size_t buflen)
{
	int p[2];
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(send(p[1]), 0);
	close(p[1]);
	n = read(p[0], buf, buflen);
	close(p[0]);
	assert_true(n > 0);
	assert_int_equal(buf[n - 1], '\n');
	return (size_t)n - 1;
}

static int send_ready(int fd)
{
	return proto_send_ready(fd);
}

static int send_batch(int fd)
{
	struct proto_batch b = { .messages = 1000, .rows = 998, .updated = 300, .rejected = 2, .duration_ms = 41 };
	return proto_send_batch(fd, &b);
}

static int send_batch_tombstones(int fd)
{
	struct proto_batch b = { .messages = 10, .rows = 4, .duration_ms = 3, .deleted = 5, .tombstones_skipped = 1 };
	return proto_send_batch(fd, &b);
}

static int send_lag(int fd)
{
	static struct proto_lag parts[PROTO_LAG_MAX + 8];

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		parts[i].partition = (int32_t)i;
		parts[i].lag = i == 1 ? -1 : (int64_t)i * 1000000007LL;
	}
	return proto_send_lag(fd, parts, sizeof(parts) / sizeof(parts[0]));
}

static int send_assign(int fd)
{
	static int32_t parts[PROTO_LAG_MAX + 8];

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		parts[i] = (int32_t)(i * 3 + 1);
	parts[2] = 2147483647;
	return proto_send_assign(fd, parts, sizeof(parts) / sizeof(parts[0]));
}

static int send_assign_none(int fd)
{
	return proto_send_assign(fd, NULL, 0);
}

static int send_error(int fd)
{
	return proto_send_error(fd, "fatal", "table \"public.orders\" does not exist\nsecond line");
}

static int send_huge_error(int fd)
{
	static char big[3 * PROTO_LINE_MAX];

	memset(big, '"', sizeof(big) - 1); /* every byte doubles when escaped */
	return proto_send_error(fd, "data", big);
}

static void test_ready(void **state)
{
	char buf[PROTO_LINE_MAX];
	struct proto_msg msg;
	size_t len = roundtrip(send_ready, buf, sizeof(buf));

	assert_int_equal(proto_parse_line(buf, len, &msg), 0);
	assert_int_equal(msg.type, PROTO_READY);
}

static void test_batch_counts(void **state)
{
	char buf[PROTO_LINE_MAX];
	struct proto_msg msg;
	size_t len = roundtrip(send_batch, buf, sizeof(buf));

	assert_int_equal(proto_parse_line(buf, len, &msg), 0);
	assert_int_equal(msg.type, PROTO_BATCH);
	assert_int_equal(msg.messages, 1000);
	assert_int_equal(msg.rows, 998);
	assert_int_equal(msg.rejected, 2);
	assert_int_equal(msg.updated, 300);
	assert_int_equal(msg.duration_ms, 41);
	/* no tombstones: the line does not carry them, they read as 0 */
	assert_null(strstr(buf, "deleted"));
	assert_null(strstr(buf, "tombstones_skipped"));
	assert_int_equal(msg.deleted, 0);
	assert_int_equal(msg.tombstones_skipped, 0);

	len = roundtrip(send_batch_tombstones, buf, sizeof(buf));
	assert_int_equal(proto_parse_line(buf, len, &msg), 0);
	assert_int_equal(msg.type, PROTO_BATCH);
	assert_int_equal(msg.rows, 4);
	assert_int_equal(msg.deleted, 5);
	assert_int_equal(msg.tombstones_skipped, 1);
}

/* Every partition up to PROTO_LAG_MAX on one line, unknown lag kept as -1,
 * large lags exact; the total covers every known partition. */
static void test_lag_partitions(void **state)
{
	char buf[2 * PROTO_LINE_MAX];
	struct proto_msg msg;
	size_t len = roundtrip(send_lag, buf, sizeof(buf));
	int64_t total = 0;

	assert_true(len < PROTO_LINE_MAX);
	assert_int_equal(proto_parse_line(buf, len, &msg), 0);
	assert_int_equal(msg.type, PROTO_LAG);
	assert_int_equal(msg.nlag, PROTO_LAG_MAX);
	assert_int_equal(msg.lag[0].lag, 0);
	assert_int_equal(msg.lag[1].lag, -1);
	assert_int_equal(msg.lag[511].partition, 511);
	assert_int_equal(msg.lag[511].lag, 511LL * 1000000007LL);
	for (int64_t i = 2; i < PROTO_LAG_MAX + 8; i++)
		total += i * 1000000007LL;
	assert_int_equal(msg.lag_total, total);
}

/* The partitions a task owns, in the order sent, capped at PROTO_LAG_MAX;
 * the largest partition number survives the round trip. */
static void test_assign_partitions(void **state)
{
	char buf[2 * PROTO_LINE_MAX];
	struct proto_msg msg;
	size_t len = roundtrip(send_assign, buf, sizeof(buf));

	assert_true(len < PROTO_LINE_MAX);
	assert_int_equal(proto_parse_line(buf, len, &msg), 0);
	assert_int_equal(msg.type, PROTO_ASSIGN);
	assert_int_equal(msg.nparts, PROTO_LAG_MAX);
	assert_int_equal(msg.parts[0], 1);
	assert_int_equal(msg.parts[1], 4);
	assert_int_equal(msg.parts[2], 2147483647);
	assert_int_equal(msg.parts[PROTO_LAG_MAX - 1], (PROTO_LAG_MAX - 1) * 3 + 1);
}

/* A standby: an empty list is a valid assignment, not a missing one. */
static void test_assign_empty_is_standby(void **state)
{
	char buf[PROTO_LINE_MAX];
	struct proto_msg msg;
	size_t len = roundtrip(send_assign_none, buf, sizeof(buf));

	assert_int_equal(proto_parse_line(buf, len, &msg), 0);
	assert_int_equal(msg.type, PROTO_ASSIGN);
	assert_int_equal(msg.nparts, 0);
}

/* An assign line without a list is no status message; entries that are no
 * partition number are left out. */
static void test_assign_bad_entries(void **state)
{
	struct proto_msg msg;
	static const char *const bad[] = { "{\"type\":\"assign\"}",
					   "{\"type\":\"assign\",\"partitions\":3}",
					   "{\"type\":\"assign\",\"partitions\":{\"0\":1}}" };
	const char mixed[] = "{\"type\":\"assign\",\"partitions\":[-1,\"2\",2147483648,1e300,5,0,7]}";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(proto_parse_line(bad[i], strlen(bad[i]), &msg), -1);
		assert_int_equal(msg.type, PROTO_UNKNOWN);
	}
	assert_int_equal(proto_parse_line(mixed, strlen(mixed), &msg), 0);
	assert_int_equal(msg.type, PROTO_ASSIGN);
	assert_int_equal(msg.nparts, 3);
	assert_int_equal(msg.parts[0], 5);
	assert_int_equal(msg.parts[1], 0);
	assert_int_equal(msg.parts[2], 7);
}

static void test_error_keeps_class_and_newlines_escaped(void **state)
{
	char buf[PROTO_LINE_MAX];
	struct proto_msg msg;
	size_t len = roundtrip(send_error, buf, sizeof(buf));

	/* One line on the wire even though the message has a newline. */
	assert_null(memchr(buf, '\n', len));
	assert_int_equal(proto_parse_line(buf, len, &msg), 0);
	assert_int_equal(msg.type, PROTO_ERROR);
	assert_string_equal(msg.err_class, "fatal");
	assert_string_equal(msg.message, "table \"public.orders\" does not exist\nsecond line");
}

static void test_huge_error_stays_within_line_limit(void **state)
{
	char buf[2 * PROTO_LINE_MAX];
	struct proto_msg msg;
	size_t len = roundtrip(send_huge_error, buf, sizeof(buf));

	assert_true(len < PROTO_LINE_MAX);
	assert_int_equal(proto_parse_line(buf, len, &msg), 0);
	assert_int_equal(msg.type, PROTO_ERROR);
	assert_true(strlen(msg.message) > 100);
}

static void test_garbage_is_rejected(void **state)
{
	struct proto_msg msg;
	static const char *const bad[] = { "", "not json", "[1,2]", "{\"type\":7}",
					   "{\"type\":\"launch\"}", "{\"messages\":3}" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(proto_parse_line(bad[i], strlen(bad[i]), &msg), -1);
		assert_int_equal(msg.type, PROTO_UNKNOWN);
	}
}

/* Found by fuzz_proto: numbers outside int64 (or int32 for a partition) were
 * converted anyway, which is undefined behaviour.  A counter out of range
 * makes the line no status message; a lag pair out of range is left out. */
static void test_out_of_range_numbers(void **state)
{
	struct proto_msg msg;
	static const char *const bad[] = {
		"{\"type\":\"batch\",\"messages\":1e300}",
		"{\"type\":\"batch\",\"rows\":-1e19}",
		"{\"type\":\"batch\",\"rows\":9223372036854775808}",
		"{\"type\":\"batch\",\"rows\":\"12\"}",
		"{\"type\":\"lag\",\"total\":1e999}",
	};
	const char lag[] = "{\"type\":\"lag\",\"total\":3,\"partitions\":[[1e300,1],[0,1e300],"
			   "[-1,2],[2147483648,2],[4,3]]}";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(proto_parse_line(bad[i], strlen(bad[i]), &msg), -1);
		assert_int_equal(msg.type, PROTO_UNKNOWN);
	}
	assert_int_equal(proto_parse_line(lag, strlen(lag), &msg), 0);
	assert_int_equal(msg.lag_total, 3);
	assert_int_equal(msg.nlag, 1);
	assert_int_equal(msg.lag[0].partition, 4);
	assert_int_equal(msg.lag[0].lag, 3);
}

static void test_parse_does_not_read_past_len(void **state)
{
	/* A valid line followed by bytes that would make it invalid. */
	const char text[] = "{\"type\":\"ready\"}GARBAGE";
	struct proto_msg msg;

	assert_int_equal(proto_parse_line(text, strlen("{\"type\":\"ready\"}"), &msg), 0);
	assert_int_equal(msg.type, PROTO_READY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready),
		cmocka_unit_test(test_batch_counts),
		cmocka_unit_test(test_lag_partitions),
		cmocka_unit_test(test_assign_partitions),
		cmocka_unit_test(test_assign_empty_is_standby),
		cmocka_unit_test(test_assign_bad_entries),
		cmocka_unit_test(test_error_keeps_class_and_newlines_escaped),
		cmocka_unit_test(test_huge_error_stays_within_line_limit),
		cmocka_unit_test(test_garbage_is_rejected),
		cmocka_unit_test(test_out_of_range_numbers),
		cmocka_unit_test(test_parse_does_not_read_past_len),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
