/*
 * import.h - converting IDX (MNIST-style, gzip or raw), CSV files and
 * folders of PNG/JPEG images into
 * caviar's HDF5 dataset format (caviar/dataset.h), with an optional seeded
 * shuffle and a held-out dev split (the last `dev` rows after shuffling,
 * stored in group "dev").
 */
#ifndef CAVIAR_IMPORT_H
#define CAVIAR_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "caviar/status.h"

/* What CSV import and predict do with a missing feature value (an empty
 * field, NA, N/A, NaN or ?).  A missing label is always an error. */
enum cv_missing {
    CV_MISSING_REFUSE, /* an error naming file:line:column (the default) */
    CV_MISSING_MEAN,   /* the mean of the column's values present in the file */
    CV_MISSING_ZERO    /* 0 */
};

struct cv_import_opts {
    bool shuffle; /* permute rows (Fisher-Yates, keyed by seed) */
    uint64_t seed;
    long long dev;           /* rows held out into group "dev" (0 = none) */
    int classes;             /* 0 = max label + 1 */
    const char *class_names; /* comma-separated, or NULL */
    enum cv_missing missing; /* CSV: missing feature values */
};

struct cv_import_summary {
    long long rows, dev_rows;
    int features, classes, target_dim;
    long long skipped; /* images skipped as unreadable (import images, skip_bad) */
    long long filled;  /* CSV missing values filled (--missing mean or zero) */
};

/* IDX: images (magic 0x00000803, uint8, N x rows x cols) and labels
 * (0x00000801, uint8, N).  Pixels are stored as uint8 with scale 1/255. */
cv_status cv_import_idx(const char *images, const char *labels, const char *out,
                        const struct cv_import_opts *opts, struct cv_import_summary *sum,
                        struct cv_error *err);

/* CSV: numeric feature cells (missing ones per opts->missing); `label` is a
 * column name (needs header) or a 0-based index.  Labels are class ids, or
 * class names numbered in the order of opts->class_names (else sorted
 * bytewise) and stored as class_names; regression: a float target.
 * Fields may be quoted (RFC 4180, within one line).  Errors name
 * file:line[:column]: a malformed quote, a NUL byte, a cell that is not a
 * number, a label column mixing numbers and names. */
cv_status cv_import_csv(const char *csv, const char *label, bool header, bool regression,
                        const char *out, const struct cv_import_opts *opts,
                        struct cv_import_summary *sum, struct cv_error *err);

/* How an image is brought to the target size. */
enum cv_image_fit {
    CV_IMAGE_RESIZE, /* stretch the whole image to H x W */
    CV_IMAGE_CROP    /* the largest centred region of H:W's aspect ratio, scaled to H x W */
};

struct cv_image_opts {
    int height, width;     /* target size; 0 = the first image's (every image must match) */
    enum cv_image_fit fit; /* when an image is not height x width */
    int channels;          /* 1 (grayscale) or 3 (RGB) */
    bool skip_bad;         /* skip (and count) unreadable files instead of stopping */
    /* called with the message naming each skipped file (may be NULL) */
    void (*on_skip)(const char *msg, void *arg);
    void *on_skip_arg;
};

/* Images: `dir` holds one subfolder per class; its name is the class name.
 * Ids follow opts->class_names when given (every folder must be named in
 * it), else the folder names sorted bytewise.  Rows go class by class,
 * files sorted by name within a class (then --shuffle).  Pixels are stored
 * CHW as uint8 with scale 1/255 and the `shape` attribute.  Hidden files
 * are ignored; any other file that is not a readable PNG or JPEG stops the
 * import naming it, or is skipped and counted (skip_bad: sum->skipped).
 * Errors: CV_IO, CV_FORMAT (no class subfolders, no images, a bad file),
 * CV_NOMEM. */
cv_status cv_import_images(const char *dir, const char *out, const struct cv_image_opts *io,
                           const struct cv_import_opts *opts, struct cv_import_summary *sum,
                           struct cv_error *err);

#endif /* CAVIAR_IMPORT_H */
