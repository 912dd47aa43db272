/*
 * import_csv.c - a CSV file (read by csv_read.c) to an HDF5 dataset: one
 * row per sample, one label column (class id or class name, or a float
 * target with --regression), every other column a float feature.
 */
#include <math.h>
#include <stdlib.h>

#include "import_internal.h"
#include "util.h"

/* Class ids of the labels; the classes are --classes, else the names
 * given or read, else the largest id + 1. */
static cv_status to_classes(const struct cv__csv *t, const struct cv_import_opts *o, int n_given,
                            int32_t *yc, int *classes, const char *path, struct cv_error *err)
{
    int mx = 0;
    for (long long i = 0; i < t->rows; i++) {
        if (t->y[i] < 0 || t->y[i] != floorf(t->y[i]) || t->y[i] > 1e6f)
            return cv_fail(err, CV_FORMAT,
                           "%s: data row %lld: label %g is not a class id "
                           "(an integer >= 0; use --regression for float targets)",
                           path, i + 1, t->y[i]);
        yc[i] = (int32_t)t->y[i];
        mx = yc[i] > mx ? yc[i] : mx;
    }
    *classes = o->classes > 0 ? o->classes : n_given ? n_given : t->n_names ? t->n_names : mx + 1;
    if (mx >= *classes)
        return cv_fail(err, CV_FORMAT, "%s: label %d outside [0, %d)", path, mx, *classes);
    return CV_OK;
}

static cv_status write_table(const char *out, struct cv__csv *t, bool regression, int32_t *yc,
                             int classes, const struct cv_import_opts *opts,
                             struct cv_import_summary *sum, struct cv_error *err)
{
    size_t fb = (size_t)t->features * sizeof(float);
    cv_status st = CV_OK;
    if (opts->shuffle)
        st = regression
                 ? cv__import_shuffle(t->x, fb, t->y, sizeof(float), t->rows, opts->seed, err)
                 : cv__import_shuffle(t->x, fb, yc, sizeof(int32_t), t->rows, opts->seed, err);
    if (st != CV_OK)
        return st;
    struct cv_split_out all = {.group = "/",
                               .n_rows = t->rows,
                               .features = t->features,
                               .x_f32 = t->x,
                               .y_class = regression ? NULL : yc,
                               .y_vec = regression ? t->y : NULL,
                               .target_dim = 1,
                               .classes = classes,
                               .class_names = (const char *const *)t->names};
    st = cv__import_write(out, &all, opts, sum, err);
    sum->filled = t->filled;
    return st;
}

cv_status cv_import_csv(const char *csv, const char *label, bool header, bool regression,
                        const char *out, const struct cv_import_opts *opts,
                        struct cv_import_summary *sum, struct cv_error *err)
{
    const char *names[CV_IMPORT_MAX_NAMES];
    char buf[CV_IMPORT_NAMES_BYTES];
    int n_names = opts->class_names ? cv__import_split_names(opts->class_names, buf, sizeof(buf),
                                                             names, CV_IMPORT_MAX_NAMES)
                                    : 0;
    if (n_names < 0)
        return cv_fail(err, CV_USAGE, "--class-names: more than %d names or %zu bytes",
                       CV_IMPORT_MAX_NAMES, sizeof(buf) - 1);
    struct cv__csv_opts co = {label, header, regression, opts->missing, names, n_names};
    struct cv__csv t;
    int32_t *yc = NULL;
    int classes = 0;
    cv_status st = cv__csv_read(csv, &co, &t, err);
    if (st == CV_OK && t.label < 0)
        st = cv_fail(err, CV_USAGE, "%s: no label column (--label-column)", csv);
    if (st == CV_OK && !regression && !(yc = cv_calloc((size_t)t.rows, sizeof(int32_t))))
        st = cv_fail(err, CV_NOMEM, "out of memory");
    if (st == CV_OK && !regression)
        st = to_classes(&t, opts, n_names, yc, &classes, csv, err);
    if (st == CV_OK)
        st = write_table(out, &t, regression, yc, classes, opts, sum, err);
    cv__csv_free(&t);
    free(yc);
    return st;
}
