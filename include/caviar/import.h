/*
 * import.h - converting IDX (MNIST-style, gzip or raw) and CSV files into
 * caviar's HDF5 dataset format (caviar/dataset.h), with an optional seeded
 * shuffle and a held-out dev split (the last `dev` rows after shuffling,
 * stored in group "dev").
 */
#ifndef CAVIAR_IMPORT_H
#define CAVIAR_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "caviar/status.h"

struct cv_import_opts {
    bool shuffle; /* permute rows (Fisher-Yates, keyed by seed) */
    uint64_t seed;
    long long dev;           /* rows held out into group "dev" (0 = none) */
    int classes;             /* 0 = max label + 1 */
    const char *class_names; /* comma-separated, or NULL */
};

struct cv_import_summary {
    long long rows, dev_rows;
    int features, classes, target_dim;
};

/* IDX: images (magic 0x00000803, uint8, N x rows x cols) and labels
 * (0x00000801, uint8, N).  Pixels are stored as uint8 with scale 1/255. */
cv_status cv_import_idx(const char *images, const char *labels, const char *out,
                        const struct cv_import_opts *opts, struct cv_import_summary *sum,
                        struct cv_error *err);

/* CSV: numeric cells; `label` is a column name (needs header) or a 0-based
 * index.  regression: the label column is a float target. */
cv_status cv_import_csv(const char *csv, const char *label, bool header, bool regression,
                        const char *out, const struct cv_import_opts *opts,
                        struct cv_import_summary *sum, struct cv_error *err);

#endif /* CAVIAR_IMPORT_H */
