/* FORMAT protobuf through a schema registry (PROTOBUF_OPTION.
 * SCHEMA_REGISTRY_ADDR): each message's frame names its schema id and, by
 * its message indexes, the message type in that schema; the schema's .proto
 * text is compiled once per id (pbproto.h) and a decoder of decode_pb.h is
 * built once per id and type, with the columns as decode_pb.h describes.
 *
 * Errors as decode_avro.h: an id the registry does not know, a frame or
 * indexes that do not fit, a type without a COLUMN's field are bad data;
 * an unreachable registry gives DECODE_RETRY.
 */
#ifndef SS_WORKER_DECODE_PBREG_H
#define SS_WORKER_DECODE_PBREG_H

#include <stddef.h>

#include "jobspec.h"
#include "row.h"

struct pbreg_decoder;

/* Copies the columns and the registry settings of in.  NULL with err filled
 * on a configuration problem. */
struct pbreg_decoder *pbreg_decoder_new(const struct js_input *in, char *err, size_t errlen);
void pbreg_decoder_free(struct pbreg_decoder *rd);

/* As avro_decoder_decode. */
int pbreg_decoder_decode(struct pbreg_decoder *rd, const char *buf, size_t len, struct decode_row *row, char *err,
			 size_t errlen);

#endif
