/*
 * dataset_h5.c - HDF5 datasets (docs/dataset-format.md): probe a split, read
 * a row range through a hyperslab (a rank's shard), validate what was read
 * (finite values, token and class ids in range, sequence lengths), and
 * write splits atomically.
 */
#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/config.h"
#include "caviar/dataset.h"
#include "atomic_file.h"
#include "h5_internal.h"
#include "util.h"

struct split {
    hid_t file, group, x, y, len; /* len: /lengths, or -1 */
    char file_path[CV_PATH_MAX];
    const char *spec;
};

static void split_close(struct split *s)
{
    if (s->len >= 0)
        H5Dclose(s->len);
    if (s->y >= 0)
        H5Dclose(s->y);
    if (s->x >= 0)
        H5Dclose(s->x);
    if (s->group >= 0)
        H5Gclose(s->group);
    if (s->file >= 0)
        H5Fclose(s->file);
}

/* "file.h5#group" -> file path and group ("/" by default).  need_y: a
 * missing /y is an error (else s->y stays -1). */
static cv_status split_open(const char *spec, struct split *s, bool need_y, struct cv_error *err)
{
    *s = (struct split){-1, -1, -1, -1, -1, "", spec};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *hash = strrchr(spec, '#');
    size_t len = hash ? (size_t)(hash - spec) : strlen(spec);
    if (len >= sizeof(s->file_path))
        return cv_fail(err, CV_IO, "%s: path too long", spec);
    memcpy(s->file_path, spec, len);
    s->file_path[len] = '\0';
    if (access(s->file_path, R_OK) != 0)
        return cv_fail(err, CV_IO, "%s: cannot open dataset: %s", s->file_path, strerror(errno));
    s->file = H5Fopen(s->file_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0)
        return cv_fail(err, CV_FORMAT, "%s: not an HDF5 file (or truncated)", s->file_path);
    s->group = H5Gopen2(s->file, hash ? hash + 1 : "/", H5P_DEFAULT);
    if (s->group < 0)
        return cv_fail(err, CV_FORMAT, "%s: no group '%s'", s->file_path, hash ? hash + 1 : "/");
    s->x = H5Dopen2(s->group, "X", H5P_DEFAULT);
    if (s->x < 0)
        return cv_fail(err, CV_FORMAT,
                       "%s: no dataset /X (expected N x features, float32 or uint8)", spec);
    if (!need_y && H5Lexists(s->group, "y", H5P_DEFAULT) <= 0)
        return cv__h5_storage_ok(s->x) ? CV_OK
                                       : cv_fail(err, CV_FORMAT,
                                                 "%s: /X stores fewer or more bytes than its "
                                                 "shape holds",
                                                 spec);
    s->y = H5Dopen2(s->group, "y", H5P_DEFAULT);
    if (s->y < 0)
        return cv_fail(err, CV_FORMAT,
                       "%s: no dataset /y (expected N int32 class ids or N x k float32 targets)",
                       spec);
    if (!cv__h5_storage_ok(s->x) || !cv__h5_storage_ok(s->y))
        return cv_fail(err, CV_FORMAT, "%s: /%s stores fewer or more bytes than its shape holds",
                       spec, cv__h5_storage_ok(s->x) ? "y" : "X");
    if (H5Lexists(s->group, "lengths", H5P_DEFAULT) > 0 &&
        ((s->len = H5Dopen2(s->group, "lengths", H5P_DEFAULT)) < 0 || !cv__h5_storage_ok(s->len)))
        return cv_fail(err, CV_FORMAT, "%s: /lengths cannot be read as N int32 lengths", spec);
    return CV_OK;
}

/* Rank of ds; its extent into d (up to 3 dims) when 1 to 3. */
static int dims_of(hid_t ds, hsize_t *d)
{
    hid_t sp = H5Dget_space(ds);
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd >= 1 && nd <= 3)
        H5Sget_simple_extent_dims(sp, d, NULL);
    H5Sclose(sp);
    return nd;
}

/* Read attribute `name` of n elements; false if it is absent, or holds a
 * different number of elements (H5Aread would write them all to out). */
static bool read_attr(hid_t obj, const char *name, hid_t mem_type, void *out, hssize_t n)
{
    if (H5Aexists(obj, name) <= 0)
        return false;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    bool ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == n && H5Aread(a, mem_type, out) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    return ok;
}

/* Row and column counts of a file become long long and int: anything larger
 * is refused here, not truncated (a shard is rows x columns floats). */
static cv_status check_extent(const struct split *s, const char *ds, const hsize_t *d,
                              struct cv_error *err)
{
    hsize_t bytes;
    if (d[0] > (hsize_t)LLONG_MAX || d[1] < 1 || d[1] > (hsize_t)INT_MAX ||
        __builtin_mul_overflow(d[0], d[1] * sizeof(float), &bytes) || bytes > (hsize_t)PTRDIFF_MAX)
        return cv_fail(err, CV_FORMAT,
                       "%s: /%s is %llu x %llu: expected 1 to %d columns and at most %lld "
                       "values in all",
                       s->spec, ds, (unsigned long long)d[0], (unsigned long long)d[1], INT_MAX,
                       (long long)(PTRDIFF_MAX / sizeof(float)));
    return CV_OK;
}

/* The optional per-sample (C, H, W) must describe the features exactly
 * (augmentation walks images of that shape). */
static cv_status read_shape(struct split *s, struct cv_dataset_info *info, struct cv_error *err)
{
    int *sh = info->shape;
    if (!read_attr(s->group, "shape", H5T_NATIVE_INT, sh, 3) &&
        !read_attr(s->x, "shape", H5T_NATIVE_INT, sh, 3)) {
        if (H5Aexists(s->group, "shape") > 0 || H5Aexists(s->x, "shape") > 0)
            return cv_fail(err, CV_FORMAT, "%s: attribute 'shape': expected 3 integers (C, H, W)",
                           s->spec);
        sh[0] = info->features, sh[1] = sh[2] = 1;
    }
    long long n = 0;
    bool ok = sh[0] >= 1 && sh[1] >= 1 && sh[2] >= 1 &&
              !__builtin_mul_overflow((long long)sh[0] * sh[1], (long long)sh[2], &n);
    if (!ok || n != info->features)
        return cv_fail(err, CV_FORMAT,
                       "%s: attribute shape = (%d, %d, %d) does not describe the %d features of /X",
                       s->spec, sh[0], sh[1], sh[2], info->features);
    return CV_OK;
}

/* Integer /X: token ids of a sequence (N x T), with vocab_size. */
static cv_status probe_tokens(struct split *s, struct cv_dataset_info *info, int nd,
                              struct cv_error *err)
{
    int v = 0;
    if (nd != 2 || (!read_attr(s->x, "vocab_size", H5T_NATIVE_INT, &v, 1) &&
                    !read_attr(s->group, "vocab_size", H5T_NATIVE_INT, &v, 1)))
        return cv_fail(err, CV_FORMAT,
                       "%s: integer /X must be N x T token ids with an attribute vocab_size "
                       "(or uint8 features)",
                       s->spec);
    if (v < 1 || v > 1 << 24) /* ids travel as floats: exact below 2^24 */
        return cv_fail(err, CV_FORMAT, "%s: /X attribute vocab_size = %d: expected 1 to %d",
                       s->spec, v, 1 << 24);
    info->vocab_size = v;
    info->steps = info->features;
    return CV_OK;
}

static cv_status probe_x(struct split *s, struct cv_dataset_info *info, struct cv_error *err)
{
    hsize_t d[3] = {0, 0, 1}, cols[2];
    int nd = dims_of(s->x, d);
    if (nd != 2 && nd != 3)
        return cv_fail(err, CV_FORMAT,
                       "%s: /X must be 2-D (N x features, or N x T token ids) or 3-D (N x T x F)",
                       s->spec);
    cols[0] = d[0];
    if (__builtin_mul_overflow(d[1], d[2], &cols[1]))
        cols[1] = (hsize_t)INT_MAX + 1; /* refused below */
    cv_status st = check_extent(s, "X", cols, err);
    if (st != CV_OK)
        return st;
    hid_t t = H5Dget_type(s->x);
    H5T_class_t cls = H5Tget_class(t);
    bool u8 = cls == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    H5Tclose(t);
    if ((cls != H5T_FLOAT && cls != H5T_INTEGER) || (nd == 3 && cls != H5T_FLOAT))
        return cv_fail(err, CV_FORMAT,
                       "%s: /X must be float32/float64 or uint8 (N x features), int32 token ids "
                       "(N x T) or float32 (N x T x F)",
                       s->spec);
    info->n_rows = (long long)d[0];
    info->features = (int)cols[1];
    info->x_uint8 = u8;
    info->scale = 1.0f;
    info->steps = nd == 3 ? (int)d[1] : 0;
    info->pad_id = -1;
    if (cls == H5T_INTEGER && !u8 && (st = probe_tokens(s, info, nd, err)) != CV_OK)
        return st;
    if (info->vocab_size && !read_attr(s->x, "pad_id", H5T_NATIVE_INT, &info->pad_id, 1))
        read_attr(s->group, "pad_id", H5T_NATIVE_INT, &info->pad_id, 1);
    if (u8 && !read_attr(s->x, "scale", H5T_NATIVE_FLOAT, &info->scale, 1))
        read_attr(s->group, "scale", H5T_NATIVE_FLOAT, &info->scale, 1);
    return read_shape(s, info, err);
}

/* Optional /lengths: N int32, only with a sequence /X. */
static cv_status probe_lengths(struct split *s, struct cv_dataset_info *info, struct cv_error *err)
{
    hsize_t d[3] = {0, 1, 1};
    if (s->len < 0)
        return CV_OK;
    hid_t t = H5Dget_type(s->len);
    H5T_class_t cls = H5Tget_class(t);
    H5Tclose(t);
    if (dims_of(s->len, d) != 1 || cls != H5T_INTEGER || d[0] != (hsize_t)info->n_rows)
        return cv_fail(err, CV_FORMAT, "%s: /lengths must be %lld int32 values (one per row)",
                       s->spec, info->n_rows);
    if (!info->steps)
        return cv_fail(err, CV_FORMAT,
                       "%s: /lengths needs a sequence /X (N x T token ids or N x T x F)", s->spec);
    info->has_lengths = true;
    return CV_OK;
}

static cv_status probe_y(struct split *s, struct cv_dataset_info *info, struct cv_error *err)
{
    hsize_t d[3] = {0, 1, 1};
    int nd = dims_of(s->y, d);
    hid_t t = H5Dget_type(s->y);
    H5T_class_t cls = H5Tget_class(t);
    H5Tclose(t);
    if (nd < 1 || nd > 2 || d[0] != (hsize_t)info->n_rows)
        return cv_fail(err, CV_FORMAT, "%s: /y has %llu rows but /X has %lld", s->spec,
                       (unsigned long long)d[0], info->n_rows);
    cv_status st = check_extent(s, "y", d, err);
    if (st != CV_OK)
        return st;
    info->target_dim = (int)d[1];
    info->classes = 0;
    if (nd == 2 && cls == H5T_INTEGER && (hsize_t)info->steps != d[1])
        return cv_fail(err, CV_FORMAT,
                       "%s: /y is %llu x %llu class ids (one per step), but /X has %d steps",
                       s->spec, (unsigned long long)d[0], (unsigned long long)d[1], info->steps);
    if (cls == H5T_INTEGER) {
        int classes = 0;
        if (!read_attr(s->group, "classes", H5T_NATIVE_INT, &classes, 1) || classes < 1)
            return cv_fail(err, CV_FORMAT, "%s: integer /y needs a positive attribute 'classes'",
                           s->spec);
        info->classes = classes;
        info->y_steps = nd == 2 ? (int)d[1] : 0;
    } else if (cls != H5T_FLOAT) {
        return cv_fail(err, CV_FORMAT, "%s: /y must be N int32 class ids or N x k float targets",
                       s->spec);
    }
    return CV_OK;
}

cv_status cv_dataset_probe(const char *spec, struct cv_dataset_info *info, struct cv_error *err)
{
    struct split s;
    memset(info, 0, sizeof(*info));
    cv_status st = cv__h5_check_dataset(spec, 0, 0, err);
    if (st != CV_OK)
        return st;
    st = split_open(spec, &s, true, err);
    if (st == CV_OK)
        st = probe_x(&s, info, err);
    if (st == CV_OK)
        st = probe_lengths(&s, info, err);
    if (st == CV_OK)
        st = probe_y(&s, info, err);
    split_close(&s);
    return st;
}

/* ---- features without labels (predict) ---- */

cv_status cv_dataset_probe_features(const char *spec, struct cv_dataset_info *info, bool *labeled,
                                    struct cv_error *err)
{
    struct split s;
    memset(info, 0, sizeof(*info));
    *labeled = false;
    cv_status st = cv__h5_check_dataset(spec, 0, 0, err);
    if (st != CV_OK)
        return st;
    st = split_open(spec, &s, false, err);
    if (st == CV_OK)
        st = probe_x(&s, info, err);
    if (st == CV_OK)
        st = probe_lengths(&s, info, err);
    *labeled = st == CV_OK && s.y >= 0;
    if (*labeled)
        st = probe_y(&s, info, err);
    split_close(&s);
    return st;
}

/* Read rows [row0, row0+n) of ds (every column of its other 0 to 2
 * dimensions) into buf as mem_type. */
static herr_t read_slab(hid_t ds, long long row0, long long n, hid_t mem_type, void *buf)
{
    hid_t fs = H5Dget_space(ds);
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t start[3] = {(hsize_t)row0, 0, 0}, count[3] = {0, 1, 1};
    H5Sget_simple_extent_dims(fs, count, NULL); /* nd <= 3: checked by the probe */
    count[0] = (hsize_t)n;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(nd, count, NULL);
    herr_t rc = H5Dread(ds, mem_type, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc;
}

static cv_status read_x(struct split *s, const struct cv_dataset_info *in, long long row0,
                        long long n, float *x, struct cv_error *err)
{
    size_t total = (size_t)n * (size_t)in->features;
    herr_t rc;
    if (in->x_uint8) {
        /* bytes in blocks of about 4 MiB: a buffer for the whole range
         * would add a quarter of the float shard to the peak RSS */
        long long block = (4 << 20) / in->features > 0 ? (4 << 20) / in->features : 1;
        block = block < n ? block : n;
        unsigned char *raw = cv_calloc_big((size_t)block * (size_t)in->features, 1);
        if (!raw)
            return cv_fail(err, CV_NOMEM, "out of memory reading %s", s->spec);
        float scale = in->scale;
        rc = 0;
        for (long long r = 0; r < n && rc >= 0; r += block) {
            long long cnt = n - r < block ? n - r : block;
            size_t len = (size_t)cnt * (size_t)in->features;
            float *dst = x + (size_t)r * (size_t)in->features;
            rc = read_slab(s->x, row0 + r, cnt, H5T_NATIVE_UCHAR, raw);
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < len; i++)
                dst[i] = (float)raw[i] * scale;
        }
        free(raw);
    } else {
        rc = read_slab(s->x, row0, n, H5T_NATIVE_FLOAT, x);
    }
    if (rc < 0)
        return cv_fail(err, CV_FORMAT, "%s: cannot read /X rows %lld..%lld", s->spec, row0,
                       row0 + n - 1);
    for (size_t i = 0; i < total; i++)
        if (!isfinite(x[i]))
            return cv_fail(err, CV_NONFINITE, "%s: /X[%lld, %zu] is %s: inputs must be finite",
                           s->spec, row0 + (long long)(i / in->features), i % in->features,
                           isnan(x[i]) ? "NaN" : "infinite");
    for (size_t i = 0; in->vocab_size && i < total; i++)
        if (!(x[i] >= 0 && x[i] < (float)in->vocab_size) || x[i] != floorf(x[i]))
            return cv_fail(err, CV_FORMAT,
                           "%s: /X[%lld, %zu] = %g: token id outside [0, %d) (attribute "
                           "vocab_size)",
                           s->spec, row0 + (long long)(i / in->features), i % in->features, x[i],
                           in->vocab_size);
    return CV_OK;
}

static cv_status read_len(struct split *s, const struct cv_dataset_info *in, long long row0,
                          long long n, int32_t *len, struct cv_error *err)
{
    for (long long i = 0; !in->has_lengths && i < n; i++)
        len[i] = in->steps;
    if (!in->has_lengths)
        return CV_OK;
    if (read_slab(s->len, row0, n, H5T_NATIVE_INT32, len) < 0)
        return cv_fail(err, CV_FORMAT, "%s: cannot read /lengths", s->spec);
    for (long long i = 0; i < n; i++)
        if (len[i] < 1 || len[i] > in->steps)
            return cv_fail(err, CV_FORMAT,
                           "%s: /lengths[%lld] = %d: expected 1 to %d (the steps of /X)", s->spec,
                           row0 + i, len[i], in->steps);
    return CV_OK;
}

/* Per-step classes: in range up to each row's length, -1 after it. */
static cv_status check_step_classes(struct split *s, const struct cv_dataset_info *in,
                                    long long row0, long long n, int32_t *yc, struct cv_error *err)
{
    int32_t *len = cv_calloc((size_t)n, sizeof(int32_t));
    cv_status st = len ? read_len(s, in, row0, n, len, err)
                       : cv_fail(err, CV_NOMEM, "out of memory reading %s", s->spec);
    for (long long i = 0; st == CV_OK && i < n; i++)
        for (int t = 0; t < in->y_steps; t++) {
            int32_t *c = &yc[i * in->y_steps + t];
            if (t >= len[i])
                *c = -1;
            else if (*c < 0 || *c >= in->classes)
                st = cv_fail(err, CV_FORMAT, "%s: /y[%lld, %d] = %d: class id outside [0, %d)",
                             s->spec, row0 + i, t, *c, in->classes);
            if (st != CV_OK)
                break;
        }
    free(len);
    return st;
}

static cv_status read_y(struct split *s, const struct cv_dataset_info *in, long long row0,
                        long long n, int32_t *yc, float *yv, struct cv_error *err)
{
    if (in->classes > 0 && yc && !in->y_steps) { /* per step: cv_dataset_read_step_classes */
        if (read_slab(s->y, row0, n, H5T_NATIVE_INT32, yc) < 0)
            return cv_fail(err, CV_FORMAT, "%s: cannot read /y", s->spec);
        for (long long i = 0; i < n; i++)
            if (yc[i] < 0 || yc[i] >= in->classes)
                return cv_fail(err, CV_FORMAT, "%s: /y[%lld] = %d: class id outside [0, %d)",
                               s->spec, row0 + i, yc[i], in->classes);
    } else if (in->classes == 0 && yv) {
        if (read_slab(s->y, row0, n, H5T_NATIVE_FLOAT, yv) < 0)
            return cv_fail(err, CV_FORMAT, "%s: cannot read /y", s->spec);
        for (size_t i = 0; i < (size_t)n * (size_t)in->target_dim; i++)
            if (!isfinite(yv[i]))
                return cv_fail(err, CV_NONFINITE, "%s: /y row %lld is not finite", s->spec,
                               row0 + (long long)(i / in->target_dim));
    }
    return CV_OK;
}

/* Probe `spec` (with its labels when need_y), check rows [row0, row0 + n)
 * exist and open it (s must be closed by the caller in every case). */
static cv_status open_rows(const char *spec, bool need_y, long long row0, long long n,
                           struct split *s, struct cv_dataset_info *in, struct cv_error *err)
{
    bool labeled;
    *s = (struct split){-1, -1, -1, -1, -1, "", spec};
    cv_status st = cv__h5_check_dataset(spec, row0, n, err);
    if (st == CV_OK)
        st = need_y ? cv_dataset_probe(spec, in, err)
                    : cv_dataset_probe_features(spec, in, &labeled, err);
    if (st != CV_OK)
        return st;
    if (row0 < 0 || n < 0 || row0 + n > in->n_rows)
        return cv_fail(err, CV_INVAL, "%s: rows %lld..%lld outside [0, %lld)", spec, row0, row0 + n,
                       in->n_rows);
    return split_open(spec, s, need_y, err);
}

/* Rows [row0, row0 + n) of /X, and of /y when need_y. */
static cv_status read_range(const char *spec, bool need_y, long long row0, long long n, float *x,
                            int32_t *y_class, float *y_vec, struct cv_error *err)
{
    struct split s;
    struct cv_dataset_info in;
    cv_status st = open_rows(spec, need_y, row0, n, &s, &in, err);
    if (st == CV_OK && n > 0)
        st = read_x(&s, &in, row0, n, x, err);
    if (st == CV_OK && n > 0 && need_y)
        st = read_y(&s, &in, row0, n, y_class, y_vec, err);
    split_close(&s);
    return st;
}

cv_status cv_dataset_read_rows(const char *spec, long long row0, long long n, float *x,
                               int32_t *y_class, float *y_vec, struct cv_error *err)
{
    return read_range(spec, true, row0, n, x, y_class, y_vec, err);
}

cv_status cv_dataset_read_features(const char *spec, long long row0, long long n, float *x,
                                   struct cv_error *err)
{
    return read_range(spec, false, row0, n, x, NULL, NULL, err);
}

cv_status cv_dataset_read_step_classes(const char *spec, long long row0, long long n, int32_t *y,
                                       struct cv_error *err)
{
    struct split s;
    struct cv_dataset_info in;
    cv_status st = open_rows(spec, true, row0, n, &s, &in, err);
    if (st == CV_OK && !in.y_steps)
        st = cv_fail(err, CV_INVAL, "%s: /y holds one class per row, not per step", spec);
    if (st == CV_OK && n > 0 && read_slab(s.y, row0, n, H5T_NATIVE_INT32, y) < 0)
        st = cv_fail(err, CV_FORMAT, "%s: cannot read /y", spec);
    if (st == CV_OK && n > 0)
        st = check_step_classes(&s, &in, row0, n, y, err);
    split_close(&s);
    return st;
}

cv_status cv_dataset_read_lengths(const char *spec, long long row0, long long n, int32_t *len,
                                  struct cv_error *err)
{
    struct split s;
    struct cv_dataset_info in;
    cv_status st = open_rows(spec, false, row0, n, &s, &in, err);
    if (st == CV_OK)
        st = read_len(&s, &in, row0, n, len, err);
    split_close(&s);
    return st;
}

/* ---- writing ---- */

herr_t cv__h5_write_dataset(hid_t g, const char *name, hid_t file_t, hid_t mem_t, int nd,
                            const hsize_t *d, const void *data)
{
    hid_t sp = H5Screate_simple(nd, d, NULL);
    hid_t ds = H5Dcreate2(g, name, file_t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, mem_t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(sp);
    return rc;
}

herr_t cv__h5_write_attr(hid_t obj, const char *name, hid_t file_t, hid_t mem_t, hsize_t n,
                         const void *v)
{
    hid_t sp = n > 1 ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, file_t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mem_t, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

void cv__h5_write_names(hid_t g, const char *const *names, int n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hsize_t d = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t a = H5Acreate2(g, "class_names", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, names);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static herr_t write_split(hid_t f, const struct cv_split_out *s)
{
    bool root = !strcmp(s->group, "/") || !*s->group;
    hid_t g = root ? H5Gopen2(f, "/", H5P_DEFAULT)
                   : H5Gcreate2(f, s->group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    hsize_t dx[2] = {(hsize_t)s->n_rows, (hsize_t)s->features};
    hsize_t dy[2] = {(hsize_t)s->n_rows, (hsize_t)s->target_dim};
    herr_t rc = s->x_u8
                    ? cv__h5_write_dataset(g, "X", H5T_STD_U8LE, H5T_NATIVE_UCHAR, 2, dx, s->x_u8)
                    : cv__h5_write_dataset(g, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dx,
                                           s->x_f32);
    if (rc >= 0)
        rc = s->y_class
                 ? cv__h5_write_dataset(g, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dy, s->y_class)
                 : cv__h5_write_dataset(g, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dy, s->y_vec);
    if (rc >= 0)
        rc = cv__h5_write_attr(g, "classes", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &s->classes);
    if (rc >= 0 && s->x_u8)
        rc = cv__h5_write_attr(g, "scale", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &s->scale);
    if (rc >= 0 && s->shape)
        rc = cv__h5_write_attr(g, "shape", H5T_STD_I32LE, H5T_NATIVE_INT, 3, s->shape);
    if (rc >= 0 && s->class_names && s->classes > 0)
        cv__h5_write_names(g, s->class_names, s->classes);
    H5Gclose(g);
    return rc;
}

cv_status cv_dataset_write(const char *path, const struct cv_split_out *splits, int n_splits,
                           struct cv_error *err)
{
    char tmp[CV_PATH_MAX + 128];
    hid_t f;
    cv_status st = cv__h5_create_tmp(path, tmp, sizeof(tmp), H5P_DEFAULT, &f, err);
    if (st != CV_OK)
        return st;
    herr_t rc = 0;
    for (int i = 0; i < n_splits && rc >= 0; i++)
        rc = write_split(f, &splits[i]);
    if (H5Fclose(f) < 0)
        rc = -1;
    if (rc < 0) {
        unlink(tmp);
        return cv_fail(err, CV_IO, "%s: write failed (disk full?)", path);
    }
    return cv__commit_file(tmp, path, err);
}

/* ---- class names ---- */

/* Names packed in one block: the pointer array, then the strings. */
static char **pack_names(char **raw, int n)
{
    size_t bytes = (size_t)n * sizeof(char *);
    for (int i = 0; i < n; i++)
        bytes += strlen(raw[i] ? raw[i] : "") + 1;
    char **out = cv_calloc(bytes, 1);
    char *p = out ? (char *)(out + n) : NULL;
    for (int i = 0; out && i < n; i++) {
        size_t len = strlen(raw[i] ? raw[i] : "") + 1;
        memcpy(p, raw[i] ? raw[i] : "", len);
        out[i] = p;
        p += len;
    }
    return out;
}

bool cv__h5_read_names(hid_t g, int n, char ***names)
{
    *names = NULL;
    hid_t a = n > 0 && H5Aexists(g, "class_names") > 0 ? H5Aopen(g, "class_names", H5P_DEFAULT)
                                                       : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1, t = H5Tcopy(H5T_C_S1);
    hid_t at = a >= 0 ? H5Aget_type(a) : -1;
    H5Tset_size(t, H5T_VARIABLE);
    if (at >= 0) /* as stored (h5py writes UTF-8): HDF5 converts no character set */
        H5Tset_cset(t, H5Tget_cset(at));
    char **raw = NULL;
    bool ok = true;
    if (sp >= 0 && H5Sget_simple_extent_npoints(sp) == n &&
        (raw = cv_calloc((size_t)n, sizeof(char *))) && H5Aread(a, t, raw) >= 0) {
        *names = pack_names(raw, n);
        H5Dvlen_reclaim(t, sp, H5P_DEFAULT, raw);
        ok = *names != NULL;
    }
    free(raw);
    if (at >= 0)
        H5Tclose(at);
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    H5Tclose(t);
    return ok;
}

cv_status cv_dataset_class_names(const char *spec, int classes, char ***names, struct cv_error *err)
{
    struct split s;
    *names = NULL;
    cv_status st = cv__h5_check_dataset(spec, 0, 0, err);
    if (st != CV_OK)
        return st;
    st = split_open(spec, &s, true, err);
    if (st == CV_OK && !cv__h5_read_names(s.group, classes, names))
        st = cv_fail(err, CV_NOMEM, "out of memory for the class names of %s", spec);
    split_close(&s);
    return st;
}
