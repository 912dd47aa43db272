/*
 * import_csv.c - numeric CSV to an HDF5 dataset: one row per sample, one
 * label column (class id >= 0, or a float target with --regression), every
 * other column a float feature.  Errors name file:line:column.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "import_internal.h"
#include "util.h"

struct table {
    float *x, *y; /* (rows, cols - 1), (rows) */
    long long rows, cap;
    int cols, label;
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '"')
        s++;
    char *e = s + strlen(s);
    while (e > s &&
           (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '"' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

struct cells {
    char **v; /* cell texts, pointing into the line */
    size_t n, cap;
};

/* Split line in place at commas into c (grown as needed: rows have no
 * width limit but memory). */
static cv_status split(char *line, struct cells *c, const char *path, long lineno,
                       struct cv_error *err)
{
    size_t n = 1;
    for (const char *q = line; (q = strchr(q, ',')); q++)
        n++;
    if (n > (size_t)INT_MAX - 1) /* features are counted in int */
        return cv_fail(err, CV_FORMAT, "%s:%ld: %zu columns: at most %d", path, lineno, n,
                       INT_MAX - 1);
    if (n > c->cap) {
        char **v = cv_realloc(c->v, n, sizeof(*v));
        if (!v)
            return cv_fail(err, CV_NOMEM, "%s:%ld: out of memory for %zu columns", path, lineno, n);
        c->v = v;
        c->cap = n;
    }
    c->n = 0;
    for (char *q = line;;) {
        char *comma = strchr(q, ',');
        if (comma)
            *comma = '\0';
        c->v[c->n++] = trim(q);
        if (!comma)
            return CV_OK;
        q = comma + 1;
    }
}

/* A NUL byte would end the field early and read as a number: refused,
 * naming the column it is in. */
static cv_status check_nul(const char *line, size_t len, const char *path, long lineno,
                           struct cv_error *err)
{
    const char *nul = memchr(line, '\0', len);
    if (!nul)
        return CV_OK;
    long col = 1;
    for (const char *q = line; q < nul; q++)
        col += *q == ',';
    return cv_fail(err, CV_FORMAT, "%s:%ld:%ld: a NUL byte inside the field", path, lineno, col);
}

static cv_status find_label(const char *spec, char **names, int n, const char *path, int *label,
                            struct cv_error *err)
{
    char *end;
    errno = 0;
    long v = strtol(spec, &end, 10);
    if (*spec && !*end) {
        if (v < 0 || v >= n || errno == ERANGE)
            return cv_fail(err, CV_USAGE, "--label-column %s: %s has %d columns", spec, path, n);
        *label = (int)v;
        return CV_OK;
    }
    for (int i = 0; names && i < n; i++)
        if (!strcmp(names[i], spec))
            return *label = i, CV_OK;
    return cv_fail(err, CV_USAGE, "--label-column %s: no such column in the header of %s%s", spec,
                   path, names ? "" : " (a name needs --header)");
}

/* Room for one more row: capacity doubles, its byte counts checked. */
static cv_status grow(struct table *t, const char *path, struct cv_error *err)
{
    size_t cap = t->cap ? 2 * (size_t)t->cap : 1024, xb;
    if (__builtin_mul_overflow(cap, (size_t)(t->cols - 1) * sizeof(float), &xb))
        return cv_fail(err, CV_NOMEM, "%s: %lld rows of %d columns: too large", path, t->rows,
                       t->cols);
    float *x = cv_realloc(t->x, xb, 1);
    float *y = x ? cv_realloc(t->y, cap, sizeof(float)) : NULL;
    if (x)
        t->x = x;
    if (!x || !y)
        return cv_fail(err, CV_NOMEM, "out of memory reading %s", path);
    t->y = y;
    t->cap = (long long)cap;
    return CV_OK;
}

static cv_status add_row(struct table *t, char **cells, const char *path, long line,
                         struct cv_error *err)
{
    cv_status st = t->rows == t->cap ? grow(t, path, err) : CV_OK;
    if (st != CV_OK)
        return st;
    float *xr = t->x + (size_t)t->rows * (size_t)(t->cols - 1);
    for (int c = 0, k = 0; c < t->cols; c++) {
        char *end;
        errno = 0;
        double v = strtod(cells[c], &end);
        if (!*cells[c] || *end || errno == ERANGE)
            return cv_fail(err, CV_FORMAT, "%s:%ld:%d: '%s' is not a number", path, line, c + 1,
                           cells[c]);
        if (!isfinite(v))
            return cv_fail(err, CV_NONFINITE, "%s:%ld:%d: '%s' is not finite", path, line, c + 1,
                           cells[c]);
        if (!isfinite((float)v)) /* stored as float32: 1e39 would become infinite */
            return cv_fail(err, CV_NONFINITE, "%s:%ld:%d: '%s' is outside the float32 range", path,
                           line, c + 1, cells[c]);
        if (c == t->label)
            t->y[t->rows] = (float)v;
        else
            xr[k++] = (float)v;
    }
    t->rows++;
    return CV_OK;
}

/* The first line fixes the columns (and the label's); a header is skipped. */
static cv_status first_line(struct table *t, struct cells *c, const char *path, long lineno,
                            const char *label, bool header, struct cv_error *err)
{
    t->cols = (int)c->n;
    if (c->n < 2)
        return cv_fail(err, CV_FORMAT, "%s:%ld: expected at least 2 columns", path, lineno);
    return find_label(label, header ? c->v : NULL, t->cols, path, &t->label, err);
}

static cv_status read_table(FILE *f, const char *path, const char *label, bool header,
                            struct table *t, struct cv_error *err)
{
    char *line = NULL;
    struct cells c = {0};
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    cv_status st = CV_OK;
    while (st == CV_OK && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        st = check_nul(line, (size_t)len, path, lineno, err);
        if (st != CV_OK || !*trim(line))
            continue;
        st = split(line, &c, path, lineno, err);
        bool skip = st == CV_OK && t->cols == 0 && header;
        if (st == CV_OK && t->cols == 0)
            st = first_line(t, &c, path, lineno, label, header, err);
        if (st != CV_OK || skip)
            continue;
        if (c.n != (size_t)t->cols)
            st = cv_fail(err, CV_FORMAT, "%s:%ld: %zu columns, expected %d", path, lineno, c.n,
                         t->cols);
        if (st == CV_OK)
            st = add_row(t, c.v, path, lineno, err);
    }
    free(line);
    free(c.v);
    if (st == CV_OK && t->rows == 0)
        st = cv_fail(err, CV_FORMAT, "%s: no data rows", path);
    return st;
}

static cv_status to_classes(struct table *t, const struct cv_import_opts *o, int32_t *yc,
                            int *classes, const char *path, struct cv_error *err)
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
    *classes = o->classes > 0 ? o->classes : mx + 1;
    if (mx >= *classes)
        return cv_fail(err, CV_FORMAT, "%s: label %d outside [0, %d)", path, mx, *classes);
    return CV_OK;
}

cv_status cv_import_csv(const char *csv, const char *label, bool header, bool regression,
                        const char *out, const struct cv_import_opts *opts,
                        struct cv_import_summary *sum, struct cv_error *err)
{
    struct table t = {0};
    int32_t *yc = NULL;
    int classes = 0;
    FILE *f = fopen(csv, "r");
    if (!f)
        return cv_fail(err, CV_IO, "%s: cannot open: %s", csv, strerror(errno));
    cv_status st = read_table(f, csv, label, header, &t, err);
    fclose(f);
    if (st == CV_OK && !regression && !(yc = cv_calloc((size_t)t.rows, sizeof(int32_t))))
        st = cv_fail(err, CV_NOMEM, "out of memory");
    if (st == CV_OK && !regression)
        st = to_classes(&t, opts, yc, &classes, csv, err);
    size_t fb = (size_t)(t.cols - 1) * sizeof(float);
    if (st == CV_OK && opts->shuffle)
        st = regression ? cv__import_shuffle(t.x, fb, t.y, sizeof(float), t.rows, opts->seed, err)
                        : cv__import_shuffle(t.x, fb, yc, sizeof(int32_t), t.rows, opts->seed, err);
    if (st == CV_OK) {
        struct cv_split_out all = {.group = "/",
                                   .n_rows = t.rows,
                                   .features = t.cols - 1,
                                   .x_f32 = t.x,
                                   .y_class = regression ? NULL : yc,
                                   .y_vec = regression ? t.y : NULL,
                                   .target_dim = 1,
                                   .classes = classes};
        st = cv__import_write(out, &all, opts, sum, err);
    }
    free(t.x);
    free(t.y);
    free(yc);
    return st;
}
