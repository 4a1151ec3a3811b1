/* Re-flowing a job written on one line.
 *
 * The seed's "Professional mode" section prints its example YAML flattened
 * onto a single line ("DATABASE: liss_test USER: liss_test ... KAFKA: INPUT:
 * SOURCE: BROKERS: ..."), and users paste it like that.  Such a line is not
 * YAML as a map, so before parsing, jobspec_parse_yaml asks this module to
 * put it back into indented lines, driven by the job's known key grammar:
 *
 *   - a token "KEY:" that is a key of the current level or of an enclosing
 *     one starts that key's line and closes the inner levels (keys match
 *     case-insensitively, like the parser's);
 *   - inside list-valued keys (COLUMNS, MAPPING's list form, MATCH_COLUMNS,
 *     UPDATE_COLUMNS, ORDER_COLUMNS, PARTITIONS) a "-" starts an item;
 *   - inside PROPERTIES and MAPPING's "target: expression" form any "word:"
 *     is an entry; there only an upper-case KEY: of an enclosing level (as the
 *     appendix writes them) closes the block, so a property or column named
 *     like a key in lower case ("user:") stays an entry;
 *   - any other upper-case "WORD:" is taken for a misspelt key of the
 *     innermost level, so the parser reports it as an unknown key;
 *   - a value is the tokens up to the next recognised key, joined by single
 *     spaces; quoted tokens are kept as written (spaces inside included), and
 *     inside an unclosed "[" or "{" no key is recognised.
 *
 * Line numbers of problems found in the re-flowed text would refer to lines
 * the user never wrote, so jobspec_parse_yaml reports them all as line 1.
 */
#ifndef SS_JOBSPEC_REFLOW_H
#define SS_JOBSPEC_REFLOW_H

#include <stddef.h>

/* When text (len bytes, need not be NUL-terminated) is a single line, apart
 * from leading and trailing whitespace, that is not YAML as a map (a syntax
 * error, or a plain scalar) and starts with a top-level key ("DATABASE:"),
 * returns 1 and the re-flowed YAML in *out (malloc'd, NUL-terminated, caller
 * frees) and its length in *outlen.  Returns 0 when text is anything else
 * (parse it as it is), -1 when out of memory. */
int jobspec_reflow(const char *text, size_t len, char **out, size_t *outlen);

#endif
