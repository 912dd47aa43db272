/*
 * import_internal.h - helpers shared by import_idx.c, import_csv.c and import_images.c.
 */
#ifndef CV_IMPORT_INTERNAL_H
#define CV_IMPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "caviar/dataset.h"
#include "caviar/import.h"

#define CV_IMPORT_MAX_NAMES   1024 /* --class-names: names ... */
#define CV_IMPORT_NAMES_BYTES 8192 /* ... and bytes */

/* Split the comma-separated list into names (pointing into buf, a copy of
 * list of `size` bytes).  Returns the count, or -1 when list has more than
 * max names or does not fit buf. */
int cv__import_split_names(const char *list, char *buf, size_t size, const char **names, int max);

cv_status cv__import_shuffle(void *x, size_t row_bytes, void *y, size_t y_bytes, long long n,
                             uint64_t seed, struct cv_error *err);
/* Split `all` into root (+ "dev" when opts->dev > 0) and write atomically. */
cv_status cv__import_write(const char *out, struct cv_split_out *all,
                           const struct cv_import_opts *opts, struct cv_import_summary *sum,
                           struct cv_error *err);

#endif /* CV_IMPORT_INTERNAL_H */
