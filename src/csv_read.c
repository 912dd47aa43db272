/*
 * csv_read.c - a CSV file to a table of float features and an optional
 * label column, for `import csv` and for `predict` on a CSV of features.
 * Fields follow RFC 4180 within a line: a field may be quoted ("a, b",
 * "say ""hi"""), a quoted field cannot span lines.  Labels are class ids
 * (numbers), or class names (any other text) mapped to ids: never both in
 * one file.  Missing values (an empty field, NA, N/A, NaN, ?) are refused
 * or filled with the column's mean or zero.  Every error names
 * file:line[:column]; rows have no width limit but memory.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "import_internal.h"
#include "util.h"

struct cells {
    char **v; /* cell texts, pointing into the line */
    size_t n, cap;
};

struct reader {
    const char *path;
    long line;
    const struct cv__csv_opts *o;
    struct cells c;
    long label_line; /* line of the first label, whose kind every other must share */
    double *sum;     /* (features) of the present values, for --missing mean */
    long long *have; /* (features) present values */
};

static cv_status push(struct reader *r, char *cell, struct cv_error *err)
{
    struct cells *c = &r->c;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        char **v = cap <= (size_t)INT_MAX ? cv_realloc(c->v, cap, sizeof(*v)) : NULL;
        if (!v)
            return cv_fail(err, CV_NOMEM, "%s:%ld: out of memory for %zu columns", r->path, r->line,
                           c->n);
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = cell;
    return CV_OK;
}

static char *skip_blank(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A quoted field at *p (the opening quote): unescaped in place. */
static cv_status quoted(struct reader *r, char **p, char **cell, struct cv_error *err)
{
    char *q = *p + 1, *out = q;
    *cell = q;
    for (;; q++) {
        if (!*q)
            return cv_fail(err, CV_FORMAT,
                           "%s:%ld:%zu: malformed quote: no closing quote on the line (a quoted "
                           "field cannot span lines)",
                           r->path, r->line, r->c.n + 1);
        if (*q == '"' && q[1] == '"')
            *out++ = *q++;
        else if (*q == '"')
            break;
        else
            *out++ = *q;
    }
    q = skip_blank(q + 1);
    if (*q && *q != ',')
        return cv_fail(err, CV_FORMAT, "%s:%ld:%zu: malformed quote: text after the closing quote",
                       r->path, r->line, r->c.n + 1);
    *out = '\0';
    *p = q;
    return CV_OK;
}

/* Split `line` (its newline removed) in place into r->c. */
static cv_status split(struct reader *r, char *line, struct cv_error *err)
{
    r->c.n = 0;
    for (char *p = line;;) {
        char *cell;
        cv_status st = CV_OK;
        p = skip_blank(p);
        if (*p == '"') {
            st = quoted(r, &p, &cell, err);
        } else {
            cell = p;
            p += strcspn(p, ",\"");
            if (*p == '"')
                return cv_fail(err, CV_FORMAT,
                               "%s:%ld:%zu: malformed quote: a quote inside an unquoted field",
                               r->path, r->line, r->c.n + 1);
            for (char *e = p; e > cell && (e[-1] == ' ' || e[-1] == '\t'); e--)
                e[-1] = '\0';
        }
        bool last = st == CV_OK && !*p;
        if (st == CV_OK)
            *p = '\0';
        if (st == CV_OK)
            st = push(r, cell, err);
        if (st != CV_OK || last)
            return st;
        p++;
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

static bool is_missing(const char *s)
{
    return !*s || !strcasecmp(s, "NA") || !strcasecmp(s, "N/A") || !strcasecmp(s, "NaN") ||
           !strcmp(s, "?");
}

/* A float32 number: false for text; CV_NONFINITE (set) for inf or out of range. */
static bool number(const struct reader *r, const char *s, int col, float *v, cv_status *st,
                   struct cv_error *err)
{
    char *end;
    double d = strtod(s, &end);         /* underflow reads as 0 or a denormal: fine */
    while (*end == ' ' || *end == '\t') /* " 1.5 " quoted */
        end++;
    if (!*s || *end)
        return false;
    if (!isfinite(d) || !isfinite((float)d)) /* 1e39 would become infinite */
        *st = cv_fail(err, CV_NONFINITE, "%s:%ld:%d: '%s' is not finite in float32", r->path,
                      r->line, col, s);
    *v = (float)d;
    return true;
}

/* Room for one more row: capacity doubles, its byte counts checked. */
static cv_status grow(struct cv__csv *t, const char *path, struct cv_error *err)
{
    size_t cap = t->cap ? 2 * (size_t)t->cap : 1024, xb;
    if (__builtin_mul_overflow(cap, (size_t)t->features * sizeof(float), &xb))
        return cv_fail(err, CV_NOMEM, "%s: %lld rows of %d columns: too large", path, t->rows,
                       t->cols);
    float *x = cv_realloc(t->x, xb ? xb : 1, 1);
    if (x)
        t->x = x;
    float *y = x ? cv_realloc(t->y, cap, sizeof(float)) : NULL;
    if (y)
        t->y = y;
    char **l = y && t->texts ? cv_realloc(t->texts, cap, sizeof(char *)) : NULL;
    if (l)
        t->texts = l;
    if (!x || !y || (t->texts && !l))
        return cv_fail(err, CV_NOMEM, "out of memory reading %s", path);
    t->cap = (long long)cap;
    return CV_OK;
}

/* The id of class name s: its place in the given names (else kept as text
 * and numbered once every name is known). */
static cv_status name_label(struct reader *r, struct cv__csv *t, const char *s, int col,
                            struct cv_error *err)
{
    const struct cv__csv_opts *o = r->o;
    for (int k = 0; k < o->n_names; k++)
        if (!strcmp(o->names[k], s))
            return t->y[t->rows] = (float)k, CV_OK;
    if (o->n_names)
        return cv_fail(err, CV_FORMAT, "%s:%ld:%d: label '%s' is not one of the %d class names",
                       r->path, r->line, col, s, o->n_names);
    t->texts[t->rows] = cv_strdup(s);
    return t->texts[t->rows] ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory reading %s", r->path);
}

/* The label cell: a number or a name, the same kind as the first row's. */
static cv_status label_cell(struct reader *r, struct cv__csv *t, const char *s, int col,
                            struct cv_error *err)
{
    float v = 0;
    cv_status st = CV_OK;
    if (is_missing(s))
        return cv_fail(err, CV_FORMAT, "%s:%ld:%d: the label is missing", r->path, r->line, col);
    bool num = number(r, s, col, &v, &st, err);
    if (st != CV_OK)
        return st;
    if (t->rows == 0) {
        r->label_line = r->line;
        t->named = !num && !r->o->regression;
        bool keep_texts = t->named && !r->o->n_names; /* numbered at the end */
        if (keep_texts && !(t->texts = cv_calloc((size_t)t->cap, sizeof(char *))))
            return cv_fail(err, CV_NOMEM, "out of memory reading %s", r->path);
    }
    if (!num && r->o->regression)
        return cv_fail(err, CV_FORMAT, "%s:%ld:%d: label '%s' is not a number (--regression)",
                       r->path, r->line, col, s);
    if (num == t->named)
        return cv_fail(err, CV_FORMAT,
                       "%s:%ld:%d: label '%s' is %sa number, but the label on line %ld was %s: a "
                       "label column holds class ids or class names, not both",
                       r->path, r->line, col, s, num ? "" : "not ", r->label_line,
                       num ? "a name" : "a number");
    if (num)
        t->y[t->rows] = v;
    return num ? CV_OK : name_label(r, t, s, col, err);
}

static cv_status add_row(struct reader *r, struct cv__csv *t, struct cv_error *err)
{
    cv_status st = t->rows == t->cap ? grow(t, r->path, err) : CV_OK;
    if (st == CV_OK && t->texts) /* grown by realloc: not zeroed */
        t->texts[t->rows] = NULL;
    float *xr = t->x + (size_t)t->rows * (size_t)t->features;
    for (int c = 0, k = 0; st == CV_OK && c < t->cols; c++) {
        const char *s = r->c.v[c];
        if (c == t->label) {
            st = label_cell(r, t, s, c + 1, err);
        } else if (is_missing(s)) {
            if (r->o->missing == CV_MISSING_REFUSE)
                st = cv_fail(err, CV_FORMAT,
                             "%s:%ld:%d: missing value ('%s'): --missing mean or zero fills it",
                             r->path, r->line, c + 1, s);
            xr[k++] = NAN;
        } else if (!number(r, s, c + 1, &xr[k], &st, err) && st == CV_OK) {
            st = cv_fail(err, CV_FORMAT, "%s:%ld:%d: '%s' is not a number", r->path, r->line, c + 1,
                         s);
        } else {
            r->sum[k] += xr[k];
            r->have[k++]++;
        }
    }
    if (st == CV_OK)
        t->rows++;
    else if (t->texts) /* the failed row's label name, if it got that far */
        free(t->texts[t->rows]);
    return st;
}

static cv_status find_label(const char *spec, char **names, int n, const char *path, int *label,
                            struct cv_error *err)
{
    char *end;
    *label = -1;
    if (!spec)
        return CV_OK;
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

/* The first line fixes the columns (and the label's). */
static cv_status first_line(struct reader *r, struct cv__csv *t, struct cv_error *err)
{
    t->cols = (int)r->c.n;
    cv_status st = find_label(r->o->label, r->o->header ? r->c.v : NULL, t->cols, r->path,
                              &t->label, err);
    t->features = t->cols - (t->label >= 0);
    if (st == CV_OK && t->features < 1)
        st = cv_fail(err, CV_FORMAT,
                     "%s:%ld: expected at least one feature column besides the "
                     "label",
                     r->path, r->line);
    r->sum = st == CV_OK ? cv_calloc((size_t)t->features, sizeof(double)) : NULL;
    r->have = r->sum ? cv_calloc((size_t)t->features, sizeof(long long)) : NULL;
    if (st == CV_OK && !r->have)
        st = cv_fail(err, CV_NOMEM, "out of memory reading %s", r->path);
    return st;
}

static cv_status one_line(struct reader *r, struct cv__csv *t, char *line, size_t len,
                          struct cv_error *err)
{
    cv_status st = check_nul(line, len, r->path, r->line, err);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (st != CV_OK || !*skip_blank(line))
        return st;
    st = split(r, line, err);
    bool head = st == CV_OK && t->cols == 0 && r->o->header;
    if (st == CV_OK && t->cols == 0)
        st = first_line(r, t, err);
    if (st != CV_OK || head)
        return st;
    if (r->c.n != (size_t)t->cols)
        return cv_fail(err, CV_FORMAT, "%s:%ld: %zu columns, expected %d", r->path, r->line, r->c.n,
                       t->cols);
    return add_row(r, t, err);
}

/* Missing values become the column's mean (of the values present) or 0. */
static cv_status fill(const struct reader *r, struct cv__csv *t, struct cv_error *err)
{
    size_t f = (size_t)t->features;
    for (size_t k = 0; k < f; k++)
        if (r->o->missing == CV_MISSING_MEAN && r->have[k] == 0)
            return cv_fail(err, CV_FORMAT, "%s: column %zu has no value to take the mean of",
                           r->path, k + 1 + (t->label >= 0 && (int)k >= t->label));
    for (long long i = 0; i < t->rows; i++)
        for (size_t k = 0; k < f; k++) {
            float *v = &t->x[(size_t)i * f + k];
            if (isnan(*v)) {
                *v = r->o->missing == CV_MISSING_MEAN ? (float)(r->sum[k] / (double)r->have[k])
                                                      : 0.0f;
                t->filled++;
            }
        }
    return CV_OK;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Class names read as text: sorted bytewise, distinct, numbered. */
static cv_status number_names(struct cv__csv *t, const char *path, struct cv_error *err)
{
    size_t n = (size_t)t->rows, k = 0;
    char **sorted = cv_calloc(n, sizeof(char *));
    if (!sorted)
        return cv_fail(err, CV_NOMEM, "out of memory reading %s", path);
    memcpy(sorted, t->texts, n * sizeof(char *));
    qsort(sorted, n, sizeof(char *), by_text);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(sorted[k - 1], sorted[i]))
            sorted[k++] = sorted[i];
    for (size_t i = 0; i < n; i++) {
        char **hit = bsearch(&t->texts[i], sorted, k, sizeof(char *), by_text);
        t->y[i] = (float)(hit - sorted);
    }
    t->names = sorted; /* its strings are those of t->texts */
    t->n_names = (int)k;
    return CV_OK;
}

cv_status cv__csv_read(const char *path, const struct cv__csv_opts *o, struct cv__csv *t,
                       struct cv_error *err)
{
    struct reader r = {.path = path, .o = o};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    *t = (struct cv__csv){.label = -1};
    FILE *f = fopen(path, "r");
    if (!f)
        return cv_fail(err, CV_IO, "%s: cannot open: %s", path, strerror(errno));
    cv_status st = CV_OK;
    while (st == CV_OK && (len = getline(&line, &cap, f)) > 0) {
        r.line++;
        st = one_line(&r, t, line, (size_t)len, err);
    }
    fclose(f);
    free(line);
    free(r.c.v);
    if (st == CV_OK && t->rows == 0)
        st = cv_fail(err, CV_FORMAT, "%s: no data rows", path);
    if (st == CV_OK && o->missing != CV_MISSING_REFUSE)
        st = fill(&r, t, err);
    if (st == CV_OK && t->texts)
        st = number_names(t, path, err);
    free(r.sum);
    free(r.have);
    return st;
}

void cv__csv_free(struct cv__csv *t)
{
    for (long long i = 0; t->texts && i < t->rows; i++)
        free(t->texts[i]);
    free(t->texts);
    free(t->names);
    free(t->x);
    free(t->y);
    *t = (struct cv__csv){.label = -1};
}
