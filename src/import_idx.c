/*
 * import_idx.c - IDX files (MNIST / Fashion-MNIST format), gzip-compressed
 * or raw (zlib's gzread passes raw files through): big-endian header, magic
 * 0x00000803 (uint8 images N x rows x cols) or 0x00000801 (uint8 labels N).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "import_internal.h"
#include "util.h"

struct idx {
    unsigned char *data;
    long long n;    /* items */
    int rows, cols; /* images only */
};

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static cv_status read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what,
                            struct cv_error *err)
{
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? 1u << 30 : (unsigned)(n - got);
        int r = gzread(f, (char *)buf + got, chunk);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got != n)
        return cv_fail(err, CV_FORMAT, "%s: truncated: expected %zu bytes of %s, got %zu", path, n,
                       what, got);
    return CV_OK;
}

/* Read `bytes` of data into a buffer that grows as the data arrives, so a
 * header claiming gigabytes in a small (or truncated) file costs at most
 * twice what the file holds. */
static cv_status read_data(gzFile f, const char *path, size_t bytes, const char *what,
                           unsigned char **out, struct cv_error *err)
{
    size_t cap = bytes < (1u << 20) ? bytes : 1u << 20, got = 0;
    unsigned char *buf = cv_calloc(cap ? cap : 1, 1);
    while (buf && got < bytes) {
        if (got == cap) {
            size_t grown = bytes - cap < cap ? bytes : 2 * cap;
            unsigned char *b = realloc(buf, grown);
            if (!b)
                break;
            buf = b;
            cap = grown;
        }
        size_t want = cap - got < (1u << 30) ? cap - got : 1u << 30;
        int r = gzread(f, buf + got, (unsigned)want);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    *out = buf;
    if (!buf || (got < bytes && got == cap))
        return cv_fail(err, CV_NOMEM, "%s: out of memory for %zu bytes of %s", path, bytes, what);
    if (got != bytes)
        return cv_fail(err, CV_FORMAT, "%s: truncated: expected %zu bytes of %s, got %zu", path,
                       bytes, what, got);
    return CV_OK;
}

static cv_status read_idx(const char *path, uint32_t magic, struct idx *out, struct cv_error *err)
{
    unsigned char h[16];
    int ndims = magic == 0x803 ? 3 : 1;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return cv_fail(err, CV_IO, "%s: cannot open", path);
    cv_status st = read_exact(f, path, h, 4 + 4 * (size_t)ndims, "header", err);
    if (st == CV_OK && be32(h) != magic)
        st = cv_fail(err, CV_FORMAT, "%s: magic 0x%08x, expected 0x%08x (IDX %s)", path, be32(h),
                     magic, magic == 0x803 ? "uint8 images" : "uint8 labels");
    if (st == CV_OK) {
        out->n = be32(h + 4);
        out->rows = ndims == 3 ? (int)be32(h + 8) : 1;
        out->cols = ndims == 3 ? (int)be32(h + 12) : 1;
        size_t bytes = (size_t)out->n * (size_t)out->rows * (size_t)out->cols;
        /* rows x cols becomes the int feature count: 65536 x 65536 wrapped to 0 */
        if (out->rows < 1 || out->cols < 1 || out->rows > 65536 || out->cols > 65536 ||
            (long long)out->rows * out->cols > INT_MAX)
            st = cv_fail(err, CV_FORMAT, "%s: bad image size %d x %d", path, out->rows, out->cols);
        else
            st = read_data(f, path, bytes, ndims == 3 ? "pixels" : "labels", &out->data, err);
    }
    gzclose(f);
    return st;
}

static cv_status labels_to_classes(const struct idx *lab, const struct cv_import_opts *o,
                                   int32_t *y, int *classes, const char *path, struct cv_error *err)
{
    int mx = 0;
    for (long long i = 0; i < lab->n; i++) {
        y[i] = lab->data[i];
        mx = y[i] > mx ? y[i] : mx;
    }
    *classes = o->classes > 0 ? o->classes : mx + 1;
    if (mx >= *classes)
        return cv_fail(err, CV_FORMAT, "%s: label %d outside [0, %d) (--classes)", path, mx,
                       *classes);
    return CV_OK;
}

cv_status cv_import_idx(const char *images, const char *labels, const char *out,
                        const struct cv_import_opts *opts, struct cv_import_summary *sum,
                        struct cv_error *err)
{
    struct idx img = {0}, lab = {0};
    int32_t *y = NULL;
    int classes = 0;
    cv_status st = read_idx(images, 0x803, &img, err);
    if (st == CV_OK)
        st = read_idx(labels, 0x801, &lab, err);
    if (st == CV_OK && img.n != lab.n)
        st = cv_fail(err, CV_FORMAT, "%s has %lld images but %s has %lld labels", images, img.n,
                     labels, lab.n);
    if (st == CV_OK && !(y = cv_calloc((size_t)(lab.n ? lab.n : 1), sizeof(int32_t))))
        st = cv_fail(err, CV_NOMEM, "out of memory");
    if (st == CV_OK)
        st = labels_to_classes(&lab, opts, y, &classes, labels, err);
    size_t f = (size_t)img.rows * (size_t)img.cols;
    if (st == CV_OK && opts->shuffle)
        st = cv__import_shuffle(img.data, f, y, sizeof(int32_t), img.n, opts->seed, err);
    if (st == CV_OK) {
        int shape[3] = {1, img.rows, img.cols};
        struct cv_split_out all = {.group = "/",
                                   .n_rows = img.n,
                                   .features = (int)f,
                                   .x_u8 = img.data,
                                   .scale = 1.0f / 255.0f,
                                   .y_class = y,
                                   .target_dim = 1,
                                   .classes = classes,
                                   .shape = shape};
        st = cv__import_write(out, &all, opts, sum, err);
    }
    free(img.data);
    free(lab.data);
    free(y);
    return st;
}
