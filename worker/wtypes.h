/* Types shared by the worker's modules (no code of their own).
 *
 * enum werr: functions that can fail for reasons the controller must tell
 * apart return one of these (0 or negative) and fill a caller's err buffer; the
 * loop maps the class to an exit code (exitcodes.h) and to the "class" of the
 * status line (proto.h).
 */
#ifndef SS_WORKER_WTYPES_H
#define SS_WORKER_WTYPES_H

#include <stdint.h>

enum werr {
	WERR_OK = 0,
	WERR_RETRY = -1, /* may go away by itself: connection lost, broker down */
	WERR_DATA = -2,  /* the data cannot be written: decode error, SQLSTATE 22/23 */
	WERR_FATAL = -3, /* the configuration cannot work: fix the job */
	/* EXACTLY's fence missed: another task advanced a partition of the
	 * batch, which was rolled back; the loop reads the stored offsets again
	 * and goes on (loop.c).  Anywhere else it is WERR_RETRY. */
	WERR_FENCED = -4,
};

/* The next offset to read of one partition (last written offset + 1). */
struct part_offset {
	int32_t partition;
	int64_t next_offset;
};

#endif
