/* streamctl's human output: tables with aligned columns.
 *
 * Ownership: the table copies every cell; ctl_table_free() releases them and
 * accepts NULL.
 */
#ifndef SS_CTL_TABLE_H
#define SS_CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define CTL_TABLE_COLS 12
#define CTL_CELL_MAX 80 /* longer cells are cut with "..." */

struct ctl_table;

/* headers: ncols names; a name starting with '>' is right-aligned (numbers),
 * the '>' is not shown. */
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);

/* Appends a row of ncols cells (NULL shows as "-"). Returns -1 when out of memory. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);

void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

#endif
