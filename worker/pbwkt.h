/* The text of google.protobuf.Timestamp and Duration, as protobuf's JSON
 * mapping writes them and PostgreSQL reads them (timestamptz, interval):
 *
 *   Timestamp  "2024-01-02T03:04:05.120Z"   RFC 3339 in UTC, 0, 3, 6 or 9
 *                                           fractional digits
 *   Duration   "-3600.500s"                 seconds, 0, 3, 6 or 9 digits
 *
 * Pure functions over the two fields (seconds, nanos); decode_pb.c reads them
 * from the message.  Values outside protobuf's ranges (Timestamp 0001-01-01
 * to 9999-12-31, nanos 0..999999999; Duration +-315576000000 s, nanos of the
 * seconds' sign) are refused with err filled, as bad data.
 */
#ifndef SS_WORKER_PBWKT_H
#define SS_WORKER_PBWKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "textbuf.h"

/* Appends the text to tb, in double quotes when json.  Returns 0, or -1 with
 * err filled when the value is out of range. */
int pb_wkt_timestamp(struct textbuf *tb, int64_t seconds, int32_t nanos, bool json, char *err, size_t errlen);
int pb_wkt_duration(struct textbuf *tb, int64_t seconds, int32_t nanos, bool json, char *err, size_t errlen);

#endif
