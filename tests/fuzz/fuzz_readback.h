/*
 * fuzz_readback.h - what a successful import must give: a dataset whose
 * splits probe with the summary's rows, features and classes, and whose
 * rows all read (values finite, class ids in range: the reader checks).
 */
#ifndef CV_FUZZ_READBACK_H
#define CV_FUZZ_READBACK_H

#include "caviar/dataset.h"
#include "caviar/import.h"
#include "fuzz_common.h"

static inline void fuzz_read_split(const char *spec, long long rows,
                                   const struct cv_import_summary *sum)
{
    struct cv_dataset_info in;
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_dataset_probe(spec, &in, &err);
    FUZZ_CHECK(st == CV_OK, "%s: %s", spec, err.msg);
    FUZZ_CHECK(in.n_rows == rows && in.features == sum->features && in.classes == sum->classes,
               "%s: %lld x %d (%d classes), the import said %lld x %d (%d)", spec, in.n_rows,
               in.features, in.classes, rows, sum->features, sum->classes);
    float *x = calloc((size_t)rows * (size_t)in.features + 1, sizeof(float));
    float *yv = calloc((size_t)rows * (size_t)in.target_dim + 1, sizeof(float));
    int32_t *yc = calloc((size_t)rows + 1, sizeof(int32_t));
    FUZZ_CHECK(x && yv && yc, "out of memory for %lld rows", rows);
    st = cv_dataset_read_rows(spec, 0, rows, x, yc, yv, &err);
    FUZZ_CHECK(st == CV_OK, "%s: %s", spec, err.msg);
    free(x);
    free(yv);
    free(yc);
}

static inline void fuzz_readback(const char *path, const struct cv_import_summary *sum)
{
    char dev[300];
    fuzz_read_split(path, sum->rows, sum);
    if (sum->dev_rows > 0) {
        snprintf(dev, sizeof(dev), "%s#dev", path);
        fuzz_read_split(dev, sum->dev_rows, sum);
    }
}

/* An import returned st: a failure has a message, a success reads back. */
static inline void fuzz_import_result(const char *step, cv_status st, const struct cv_error *err,
                                      const char *out, const struct cv_import_summary *sum)
{
    FUZZ_CHECK(st == CV_OK || err->msg[0], "%s: status %d without a message", step, (int)st);
    fuzz_note(step, (int)st, err->msg);
    if (st == CV_OK)
        fuzz_readback(out, sum);
}

#endif /* CV_FUZZ_READBACK_H */
