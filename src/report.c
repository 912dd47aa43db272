/*
 * report.c - `caviar report` (see caviar/report.h): which kind of directory
 * each argument is, the page around the sections (report_run.c,
 * report_sweep.c, report_ensemble.c), and the overlaid curves of several
 * runs.  The page is built in memory and written atomically, so a browser
 * refreshing it while a job rewrites it never sees half a page.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "caviar/report.h"
#include "caviar/sweep.h"
#include "atomic_file.h"
#include "report_internal.h"
#include "util.h"

static bool exists(const char *dir, const char *name)
{
    char path[CV_PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

enum cv_report_kind cv_report_kind_of(const char *dir, char *sub, size_t size)
{
    char in[CV_PATH_MAX + 16];
    snprintf(sub, size, "%s", dir);
    if (exists(dir, "results.jsonl") && exists(dir, "config.yaml"))
        return exists(dir, "members.txt") ? CV_REPORT_ENSEMBLE : CV_REPORT_SWEEP;
    if (exists(dir, "metrics.jsonl") || exists(dir, "model.h5"))
        return CV_REPORT_RUN;
    static const char *const subs[] = {"sweep", "ensemble"};
    for (int i = 0; i < 2; i++) {
        snprintf(in, sizeof(in), "%s/%s", dir, subs[i]);
        if (exists(in, "results.jsonl") || exists(in, "config.yaml")) {
            snprintf(sub, size, "%s", in);
            return i == 0 ? CV_REPORT_SWEEP : CV_REPORT_ENSEMBLE;
        }
    }
    return CV_REPORT_NONE;
}

void cv__report_note(struct cv__html *h, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cv__html_put(h, "<p class=\"note\">");
    cv__html_text(h, msg);
    cv__html_put(h, "</p>\n");
}

static const char *const css =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #d8dde6;padding-bottom:4px}"
    "h3{font-size:15px}code{font-size:13px}section{margin-bottom:36px}"
    ".plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}"
    "figure{margin:0;background:#fff;border:1px solid #e3e7ee;border-radius:6px;padding:4px}"
    "svg text{font:11px system-ui,sans-serif;fill:#333}svg .title{font-size:13px;font-weight:600}"
    "svg .label{font-size:12px}.axes line{stroke:#555}.axes .grid{stroke:#e6e9ef}"
    ".legend text{stroke:none;fill:#333}.legend-bg{fill:#fff;fill-opacity:.85;stroke:#e3e7ee}"
    ".series polyline{fill:none;stroke-width:2}.pline{fill:none;stroke-width:1.5;opacity:.8}"
    ".s0{stroke:#1f5fbf;fill:#1f5fbf}.s1{stroke:#e8710a;fill:#e8710a}"
    ".s2{stroke:#1a9850;fill:#1a9850}.s3{stroke:#c51b7d;fill:#c51b7d}"
    ".s4{stroke:#6a3d9a;fill:#6a3d9a}.s5{stroke:#8c6d31;fill:#8c6d31}"
    ".s6{stroke:#17becf;fill:#17becf}.s7{stroke:#7f7f7f;fill:#7f7f7f}"
    ".series polyline,.legend rect{fill-opacity:0}.legend rect{fill-opacity:1;stroke:none}"
    ".cellv{font-size:10px}.cellv.light{fill:#fff}.bar{fill:#9db7e0}.bar.mark{fill:#e8710a}"
    "table{border-collapse:collapse;background:#fff;margin:8px 0}"
    "td,th{border:1px solid #e3e7ee;padding:3px 8px;text-align:right}th{background:#f0f3f8}"
    "tr.best td{background:#fff4e0;font-weight:600}.note{background:#fff8d6;border:1px solid "
    "#e6d38a;padding:6px 10px;border-radius:4px}.kpis{display:flex;flex-wrap:wrap;gap:10px}"
    ".kpi{background:#fff;border:1px solid #e3e7ee;border-radius:6px;padding:6px 12px}"
    ".kpi span{display:block;font-size:11px;color:#667}.kpi b{font-size:18px}"
    "pre.config{background:#fff;border:1px solid #e3e7ee;padding:8px;font-size:12px}";

static void page_head(struct cv__html *h, const char *const *dirs, int n)
{
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    cv__html_put(h,
                 "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<title>caviar report</title><style>%s</style></head><body>\n"
                 "<h1>caviar report</h1><p>",
                 css);
    for (int i = 0; i < n; i++) {
        cv__html_put(h, "%s<code>", i ? ", " : "");
        cv__html_text(h, dirs[i]);
        cv__html_put(h, "</code>");
    }
    cv__html_put(h, " &middot; written %s</p>\n", when);
}

/* The directory whose curves stand for dirs[i] in the comparison: a run
 * itself, a sweep's best finished trial; NULL for an ensemble. */
static bool curve_dir(enum cv_report_kind k, const char *sub, char *out, size_t size)
{
    if (k == CV_REPORT_RUN)
        return snprintf(out, size, "%s", sub), true;
    if (k != CV_REPORT_SWEEP)
        return false;
    char path[CV_PATH_MAX + 32];
    struct cv_result *rows = NULL;
    int n = 0;
    struct cv_config *cfg = NULL;
    snprintf(path, sizeof(path), "%s/config.yaml", sub);
    bool minimize = cv_config_load(path, NULL, 0, &cfg, NULL) == CV_OK && cfg->sweep.minimize;
    snprintf(path, sizeof(path), "%s/results.jsonl", sub);
    cv_config_free(cfg);
    bool ok = cv_results_read(path, &rows, &n, NULL) == CV_OK &&
              cv_results_best_per_trial(rows, n, minimize) > 0 && rows[0].status != CV_JOB_FAILED;
    if (ok) {
        snprintf(out, size, "%s", rows[0].model);
        char *slash = strrchr(out, '/');
        if (slash)
            *slash = '\0';
    }
    free(rows);
    return ok;
}

static cv_status sections(struct cv__html *h, const char *const *dirs, int n, struct cv_error *err)
{
    char sub[CV_PATH_MAX + 16];
    char(*curves)[CV_PATH_MAX + 16] = cv_calloc((size_t)n, sizeof(*curves));
    const char **runs = cv_calloc((size_t)n, sizeof(*runs)),
               **labels = cv_calloc((size_t)n, sizeof(*labels));
    int nc = 0;
    cv_status st = curves && runs && labels ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
    for (int i = 0; st == CV_OK && i < n; i++) {
        enum cv_report_kind k = cv_report_kind_of(dirs[i], sub, sizeof(sub));
        if (k == CV_REPORT_NONE)
            st = cv_fail(err, CV_USAGE,
                         "%s is not a run directory: no metrics.jsonl or model.h5 (a training "
                         "run), results.jsonl (a sweep or ensemble), sweep/ or ensemble/",
                         dirs[i]);
        if (k != CV_REPORT_NONE && curve_dir(k, sub, curves[nc], sizeof(curves[nc]))) {
            runs[nc] = curves[nc];
            labels[nc++] = dirs[i];
        }
    }
    if (st == CV_OK && n > 1 && nc > 1)
        cv__report_compare(h, runs, labels, nc);
    for (int i = 0; st == CV_OK && i < n; i++) {
        enum cv_report_kind k = cv_report_kind_of(dirs[i], sub, sizeof(sub));
        if (k == CV_REPORT_RUN)
            cv__report_run(h, sub, i);
        else if (k == CV_REPORT_SWEEP)
            cv__report_sweep(h, sub, i);
        else
            cv__report_ensemble(h, sub, i);
    }
    free(curves);
    free(runs);
    free(labels);
    return st;
}

cv_status cv_report_write(const char *const *dirs, int n, const char *out, struct cv_error *err)
{
    struct cv__html h = {0};
    page_head(&h, dirs, n);
    cv_status st = sections(&h, dirs, n, err);
    cv__html_put(&h, "</body></html>\n");
    if (st == CV_OK && h.oom)
        st = cv_fail(err, CV_NOMEM, "out of memory building the report");
    if (st == CV_OK)
        st = cv__write_text_atomic(out, h.s, err);
    free(h.s);
    return st;
}
