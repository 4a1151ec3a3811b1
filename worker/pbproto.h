/* .proto text (what a schema registry holds for Protobuf) compiled into the
 * FileDescriptorSet that pbdesc.h reads, so that a registry's Protobuf
 * schemas decode like a descriptor set made by protoc.
 *
 * Understood: syntax proto2/proto3, package, messages and enums nested to
 * any depth, labels (optional, required, repeated; proto3 `optional`),
 * oneofs, map<K, V> (as protoc: a nested XxxEntry message), type names
 * resolved as protoc does, from the innermost scope outwards.  Skipped:
 * options, reserved, extensions, extend blocks and services.  Refused:
 * groups.  Imported files come as further texts (pbproto_compile_files: a
 * registry's references); a type from a file not given is "not defined".
 * The well-known types
 * (Timestamp, Duration, the wrappers, Struct/Value/ListValue, Any, Empty,
 * FieldMask) are always in the set.
 *
 * The message indexes of a registry frame name a message by its position:
 * [i] the i-th top-level message of the file, [i, j] the j-th message
 * nested in it, and so on; pbproto_message_at resolves them.
 *
 * Ownership: a struct pbproto owns its set and names; pbproto_free.
 */
#ifndef SS_WORKER_PBPROTO_H
#define SS_WORKER_PBPROTO_H

#include <stddef.h>
#include <stdint.h>

/* Largest .proto text accepted (all files together). */
#define PBPROTO_TEXT_MAX ((size_t)4 * 1024 * 1024)
/* Files of one schema (the schema and the ones it imports), at most. */
#define PBPROTO_FILES_MAX 32

struct pbproto {
	uint8_t *set; /* the FileDescriptorSet */
	size_t set_len;
	/* the file's messages in declaration order (map entries left out):
	 * full name and the index in this array of the enclosing message, -1
	 * at the top level */
	char **names;
	int *parent;
	size_t nnames;
};

/* Compiles text (len bytes, no NUL needed).  Returns 0 and sets *out, or -1
 * with err saying what is wrong and at which line. */
int pbproto_compile(const char *text, size_t len, struct pbproto **out, char *err, size_t errlen);
void pbproto_free(struct pbproto *pp);

/* The same for a schema (texts[0]) and the files it imports (a registry's
 * references), n in all; names[i] names file i in errors (may be NULL).
 * Message indexes refer to texts[0]. */
int pbproto_compile_files(const char *const *texts, const size_t *lens, const char *const *names, size_t n,
			  struct pbproto **out, char *err, size_t errlen);

/* The full name of the message at indexes idx[0..n), or NULL. */
const char *pbproto_message_at(const struct pbproto *pp, const int32_t *idx, size_t n);

#endif
