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

/* ---- CSV (csv_read.c) ---- */

struct cv__csv_opts {
    const char *label;        /* column name (needs header) or 0-based index; NULL: none */
    bool header;              /* the first line names the columns */
    bool regression;          /* the label is a float target (never a name) */
    enum cv_missing missing;  /* policy for missing feature values */
    const char *const *names; /* class names labels are mapped to (NULL: sorted) */
    int n_names;
};

struct cv__csv {
    float *x; /* (rows, features) */
    float *y; /* (rows) label as read: number, or id of the name; NULL without */
    long long rows, cap;
    int cols, features, label; /* label: its column, -1 without */
    bool named;                /* labels were class names */
    char **texts;              /* (rows) label texts while reading names (owned) */
    char **names;              /* (n_names) sorted distinct names, into texts (owned array) */
    int n_names;
    long long filled; /* missing values filled */
};

/* Read CSV `path` into t (free with cv__csv_free whatever it returns).
 * Errors: CV_IO, CV_FORMAT and CV_NONFINITE naming file:line[:column],
 * CV_USAGE (no such label column), CV_NOMEM. */
cv_status cv__csv_read(const char *path, const struct cv__csv_opts *o, struct cv__csv *t,
                       struct cv_error *err);
void cv__csv_free(struct cv__csv *t);

#endif /* CV_IMPORT_INTERNAL_H */
