#include "pbwkt.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, protobuf's range. */
#define PB_WKT_TS_MIN INT64_C(-62135596800)
#define PB_WKT_TS_MAX INT64_C(253402300799)
/* About 10,000 years, protobuf's Duration range. */
#define PB_WKT_DUR_MAX INT64_C(315576000000)

/* ".120", ".000120", ".000000120" or nothing: as protobuf's JSON writes it. */
static void pb_wkt_fraction(struct textbuf *tb, int32_t nanos)
{
	if (nanos == 0)
		return;
	if (nanos % 1000000 == 0)
		textbuf_printf(tb, ".%03" PRId32, nanos / 1000000);
	else if (nanos % 1000 == 0)
		textbuf_printf(tb, ".%06" PRId32, nanos / 1000);
	else
		textbuf_printf(tb, ".%09" PRId32, nanos);
}

int pb_wkt_timestamp(struct textbuf *tb, int64_t seconds, int32_t nanos, bool json, char *err, size_t errlen)
{
	time_t t = (time_t)seconds;
	struct tm tm;

	if (seconds < PB_WKT_TS_MIN || seconds > PB_WKT_TS_MAX || nanos < 0 || nanos > 999999999) {
		snprintf(err, errlen,
			 "google.protobuf.Timestamp out of range (seconds %" PRId64 ", nanos %" PRId32
			 "): it must lie in 0001-01-01..9999-12-31 with nanos 0..999999999",
			 seconds, nanos);
		return -1;
	}
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(err, errlen, "google.protobuf.Timestamp seconds %" PRId64 " cannot be converted", seconds);
		return -1;
	}
	if (json)
		textbuf_putc(tb, '"');
	textbuf_printf(tb, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		       tm.tm_min, tm.tm_sec);
	pb_wkt_fraction(tb, nanos);
	textbuf_putc(tb, 'Z');
	if (json)
		textbuf_putc(tb, '"');
	return 0;
}

int pb_wkt_duration(struct textbuf *tb, int64_t seconds, int32_t nanos, bool json, char *err, size_t errlen)
{
	bool negative = seconds < 0 || nanos < 0;

	if (seconds < -PB_WKT_DUR_MAX || seconds > PB_WKT_DUR_MAX || nanos < -999999999 || nanos > 999999999 ||
	    (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
		snprintf(err, errlen,
			 "google.protobuf.Duration out of range (seconds %" PRId64 ", nanos %" PRId32
			 "): seconds within +-315576000000, nanos within +-999999999 and of the seconds' sign",
			 seconds, nanos);
		return -1;
	}
	if (json)
		textbuf_putc(tb, '"');
	textbuf_printf(tb, "%s%" PRId64, negative ? "-" : "", seconds < 0 ? -seconds : seconds);
	pb_wkt_fraction(tb, nanos < 0 ? -nanos : nanos);
	textbuf_putc(tb, 's');
	if (json)
		textbuf_putc(tb, '"');
	return 0;
}
