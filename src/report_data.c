/*
 * report_data.c - the page buffer of a report and a run's metrics.jsonl
 * read back (JSON lines are YAML flow maps: libyaml reads them, as
 * sweep_results.c does).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_tree.h"
#include "report_internal.h"
#include "util.h"

/* ---- the page buffer ---- */

static bool reserve(struct cv__html *h, size_t more)
{
    if (h->oom)
        return false;
    if (h->len + more + 1 <= h->cap)
        return true;
    size_t cap = h->cap ? h->cap : 1 << 16;
    while (cap < h->len + more + 1)
        cap *= 2;
    char *s = realloc(h->s, cap);
    if (!s)
        return !(h->oom = true);
    h->s = s;
    h->cap = cap;
    return true;
}

void cv__html_put(struct cv__html *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(h, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(h->s + h->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    h->len += (size_t)n;
}

void cv__html_text(struct cv__html *h, const char *s)
{
    for (; s && *s; s++) {
        const char *e = *s == '<'   ? "&lt;"
                        : *s == '>' ? "&gt;"
                        : *s == '&' ? "&amp;"
                        : *s == '"' ? "&quot;"
                                    : NULL;
        if (e)
            cv__html_put(h, "%s", e);
        else
            cv__html_put(h, "%c", *s);
    }
}

void cv__html_num(struct cv__html *h, double v, const char *fmt)
{
    if (isnan(v))
        cv__html_put(h, "-");
    else
        cv__html_put(h, fmt, v);
}

/* ---- metrics.jsonl ---- */

static const char *const keys[CV_H_N] = {"train_loss", "train_accuracy", "dev_loss", "dev_accuracy",
                                         "lr",         "samples_per_s"};

static double num_at(const struct cv_node *map, const char *key)
{
    const struct cv_node *n = cv__tree_get(map, key);
    char *end;
    if (!n || n->kind != CV_NODE_SCALAR || !*n->text)
        return NAN;
    double v = strtod(n->text, &end);
    return *end ? NAN : v;
}

static bool grow(struct cv__history *h, int cap)
{
    double **all[CV_H_N + 1] = {&h->epoch};
    for (int k = 0; k < CV_H_N; k++)
        all[k + 1] = &h->col[k];
    for (int k = 0; k <= CV_H_N; k++) {
        double *p = realloc(*all[k], (size_t)cap * sizeof(double));
        if (!p)
            return false;
        *all[k] = p;
    }
    return true;
}

/* One line into row h->n; false if it is not an epoch record. */
static bool parse_row(struct cv__history *h, const char *line, const char *source)
{
    struct cv_node *t = NULL;
    if (cv__tree_parse(line, source, NULL, &t, NULL) != CV_OK || t->kind != CV_NODE_MAP) {
        cv__tree_free(t);
        return false;
    }
    double epoch = num_at(t, "epoch");
    bool ok = isfinite(epoch);
    for (int k = 0; ok && k < CV_H_N; k++)
        h->col[k][h->n] = num_at(t, keys[k]);
    if (ok)
        h->epoch[h->n++] = epoch;
    cv__tree_free(t);
    return ok;
}

cv_status cv__history_read(const char *run_dir, struct cv__history *h, struct cv_error *err)
{
    char path[CV_PATH_MAX + 32], line[8192];
    memset(h, 0, sizeof(*h));
    snprintf(path, sizeof(path), "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return cv_fail(err, CV_IO, "cannot open %s: %s", path, strerror(errno));
    int cap = 0, lineno = 0;
    cv_status st = CV_OK;
    while (st == CV_OK && fgets(line, sizeof(line), f)) {
        lineno++;
        if (h->n == cap && !grow(h, cap = cap ? 2 * cap : 64))
            st = cv_fail(err, CV_NOMEM, "out of memory reading %s", path);
        else if (!parse_row(h, line, path) && h->skipped++ == 0)
            snprintf(h->note, sizeof(h->note),
                     "%s:%d could not be read (a job killed while "
                     "writing it?): skipped",
                     path, lineno);
    }
    fclose(f);
    if (st != CV_OK)
        cv__history_free(h);
    return st;
}

void cv__history_free(struct cv__history *h)
{
    free(h->epoch);
    for (int k = 0; k < CV_H_N; k++)
        free(h->col[k]);
    memset(h, 0, sizeof(*h));
}
