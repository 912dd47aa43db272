/*
 * sweep_results.c - RUN_DIR/<kind>/results.jsonl: one JSON object per
 * trial and rung, appended with a single write() and fsync'ed, so a kill
 * leaves at most a torn last line (skipped on reading).  Lines are read
 * back with libyaml (JSON is YAML's flow style), not a parser of our own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caviar/sweep.h"
#include "config_tree.h"
#include "util.h"

#define LINE_MAX_BYTES 65536

static const char *status_names[] = {"done", "paused", "failed", "interrupted", "exploit"};

const char *cv_job_status_name(enum cv_job_status s)
{
    return status_names[s];
}

const char *cv_strategy_name(enum cv_strategy s)
{
    static const char *const names[] = {"random", "grid", "asha", "tpe", "pbt"};
    return names[s];
}

/* ---- writing ---- */

struct out {
    char *buf;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    o->len = n < 0 || (size_t)n >= o->cap - o->len ? o->cap - 1 : o->len + (size_t)n;
}

static void put_str(struct out *o, const char *s)
{
    put(o, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(o, "\\%c", c);
        else if (c < 0x20)
            put(o, "\\u%04x", c);
        else
            put(o, "%c", c);
    }
    put(o, "\"");
}

static void put_num(struct out *o, const char *key, double v)
{
    if (isfinite(v))
        put(o, ",\"%s\":%.9g", key, v);
    else
        put(o, ",\"%s\":null", key);
}

/* A value that reads as a finite number goes out as a JSON number. */
static void put_value(struct out *o, const char *text)
{
    char *end;
    double v = strtod(text, &end);
    if (*text && !*end && isfinite(v) && !strchr(text, 'x') && !strchr(text, 'X'))
        put(o, "%s", text);
    else
        put_str(o, text);
}

/* The log is appended in place, so it cannot be renamed into place like
 * the other files: it is opened without following a symlink, and must be a
 * plain file with no other name (a hard link planted at it would make the
 * append land in another file). */
static cv_status open_append(const char *path, int *fd, struct cv_error *err)
{
    struct stat sb;
    *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
    if (*fd < 0)
        return cv_fail(err, CV_IO, "cannot open %s: %s%s", path, strerror(errno),
                       errno == ELOOP ? " (a symbolic link: not followed)" : "");
    if (fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1)
        return cv_fail(err, CV_IO, "%s: not a plain file with a single name: not appended to",
                       path);
    return CV_OK;
}

cv_status cv_result_append(const char *path, const struct cv_result *r, const char *metric,
                           struct cv_error *err)
{
    char *buf = cv_calloc(LINE_MAX_BYTES, 1);
    if (!buf)
        return cv_fail(err, CV_NOMEM, "out of memory");
    struct out o = {buf, 0, LINE_MAX_BYTES};
    put(&o, "{\"trial\":%d,\"rung\":%d,\"epochs\":%d,", r->trial, r->rung, r->epochs);
    if (r->steps > 0) /* pbt with sweep.ready_steps */
        put(&o, "\"steps\":%lld,", r->steps);
    put(&o, "\"status\":");
    put_str(&o, cv_job_status_name(r->status));
    put(&o, ",\"metric\":");
    put_str(&o, metric);
    put_num(&o, "value", r->value);
    put_num(&o, "train_loss", r->train_loss);
    put_num(&o, "train_accuracy", r->train_accuracy);
    put_num(&o, "dev_loss", r->dev_loss);
    put_num(&o, "dev_accuracy", r->dev_accuracy);
    put_num(&o, "seconds", r->seconds);
    put(&o, ",\"params\":{");
    for (int j = 0; j < r->n_params; j++) {
        put(&o, j ? "," : "");
        put_str(&o, r->params[j].key);
        put(&o, ":");
        put_value(&o, r->params[j].value);
    }
    put(&o, "}");
    if (r->status == CV_JOB_EXPLOIT) {
        put(&o, ",\"parent\":%d", r->parent);
        put_num(&o, "parent_value", r->parent_value);
    }
    put(&o, ",\"model\":");
    put_str(&o, r->model);
    put(&o, ",\"message\":");
    put_str(&o, r->message);
    put(&o, "}\n");
    int fd = -1;
    cv_status st = open_append(path, &fd, err);
    if (st == CV_OK && (write(fd, buf, o.len) != (ssize_t)o.len || fsync(fd) != 0))
        st = cv_fail(err, CV_IO, "cannot append to %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(buf);
    return st;
}

/* ---- reading ---- */

static double num(const struct cv_node *map, const char *key)
{
    const struct cv_node *n = cv__tree_get(map, key);
    if (!n || n->kind != CV_NODE_SCALAR)
        return NAN;
    char *end;
    double v = strtod(n->text, &end);
    return *n->text && !*end ? v : NAN;
}

static bool text(const struct cv_node *map, const char *key, char *buf, size_t size)
{
    const struct cv_node *n = cv__tree_get(map, key);
    if (!n || n->kind != CV_NODE_SCALAR || strlen(n->text) >= size)
        return false;
    memcpy(buf, n->text, strlen(n->text) + 1);
    return true;
}

static const char *from_tree(const struct cv_node *t, struct cv_result *r)
{
    char status[32];
    memset(r, 0, sizeof(*r));
    if (t->kind != CV_NODE_MAP || !text(t, "status", status, sizeof(status)))
        return "an object with \"status\"";
    int k = 0;
    while (k < 5 && strcmp(status, status_names[k]) != 0)
        k++;
    if (k == 5)
        return "status done, paused, failed, interrupted or exploit";
    r->status = (enum cv_job_status)k;
    double trial = num(t, "trial"), rung = num(t, "rung"), epochs = num(t, "epochs");
    /* converted to int below: out of range would be undefined, not wrapped */
    if (!(trial >= 0 && trial <= INT_MAX) || !(rung >= 0 && rung <= INT_MAX) ||
        !(epochs >= 0 && epochs <= INT_MAX))
        return "\"trial\", \"rung\" and \"epochs\" in [0, 2147483647]";
    r->trial = (int)trial;
    r->rung = (int)rung;
    r->epochs = (int)epochs;
    double steps = num(t, "steps"); /* only with sweep.ready_steps */
    r->steps = steps >= 1 && steps <= 1e15 ? (long long)steps : 0;
    r->value = num(t, "value");
    r->train_loss = num(t, "train_loss");
    r->train_accuracy = num(t, "train_accuracy");
    r->dev_loss = num(t, "dev_loss");
    r->dev_accuracy = num(t, "dev_accuracy");
    r->seconds = num(t, "seconds");
    double parent = num(t, "parent");
    if (r->status == CV_JOB_EXPLOIT && !(parent >= 0 && parent <= INT_MAX))
        return "\"parent\" in [0, 2147483647] on an exploit line";
    r->parent = r->status == CV_JOB_EXPLOIT ? (int)parent : -1;
    r->parent_value = num(t, "parent_value");
    text(t, "model", r->model, sizeof(r->model));
    text(t, "message", r->message, sizeof(r->message));
    const struct cv_node *p = cv__tree_get(t, "params");
    if (!p || p->kind != CV_NODE_MAP || p->n > CV_MAX_SWEEP + 2)
        return "a \"params\" object";
    for (int j = 0; j < p->n; j++) {
        if (p->kids[j]->kind != CV_NODE_SCALAR || strlen(p->keys[j]) >= CV_KEY_MAX ||
            strlen(p->kids[j]->text) >= sizeof(r->params[j].value))
            return "params with plain values";
        strcpy(r->params[j].key, p->keys[j]);
        strcpy(r->params[j].value, p->kids[j]->text);
    }
    r->n_params = p->n;
    return NULL;
}

static cv_status parse_line(const char *path, int lineno, const char *line, struct cv_result *r,
                            struct cv_error *err)
{
    char source[CV_PATH_MAX + 32];
    snprintf(source, sizeof(source), "%s:%d", path, lineno);
    struct cv_node *t = NULL;
    struct cv_error e;
    cv_error_clear(&e);
    if (cv__tree_parse(line, source, NULL, &t, &e) != CV_OK)
        return cv_fail(err, CV_CORRUPT, "%s: not a results line: %s", source, e.msg);
    const char *why = from_tree(t, r);
    cv__tree_free(t);
    return why ? cv_fail(err, CV_CORRUPT, "%s: expected %s", source, why) : CV_OK;
}

cv_status cv_results_read(const char *path, struct cv_result **rows, int *n, struct cv_error *err)
{
    *rows = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return cv_fail(err, CV_IO, "cannot open %s: %s", path, strerror(errno));
    char *line = cv_calloc(LINE_MAX_BYTES, 1);
    int cap = 0, lineno = 0;
    cv_status st = line ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
    while (st == CV_OK && fgets(line, LINE_MAX_BYTES, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            if (fgetc(f) == EOF)
                break; /* torn last line: the writer was killed mid-write */
            st = cv_fail(err, CV_CORRUPT, "%s:%d: line longer than %d bytes", path, lineno,
                         LINE_MAX_BYTES);
            break;
        }
        if (strspn(line, " \t\r\n") == len)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            struct cv_result *grown = cv_realloc(*rows, (size_t)cap, sizeof(**rows));
            if (!grown) {
                st = cv_fail(err, CV_NOMEM, "out of memory");
                break;
            }
            *rows = grown;
        }
        st = parse_line(path, lineno, line, &(*rows)[*n], err);
        if (st == CV_OK)
            (*n)++;
    }
    free(line);
    fclose(f);
    if (st != CV_OK) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return st;
}

/* ---- summaries ---- */

static int status_order(enum cv_job_status s)
{
    return s == CV_JOB_DONE || s == CV_JOB_PAUSED ? 0 : s == CV_JOB_FAILED ? 1 : 2;
}

/* < 0 when a ranks before b: finished by value (best first), then failed,
 * then interrupted; ties by trial id. */
static int compare_rows(const struct cv_result *a, const struct cv_result *b, bool minimize)
{
    int sa = status_order(a->status), sb = status_order(b->status);
    if (sa != sb)
        return sa - sb;
    if (sa == 0 && a->value != b->value) {
        if (isnan(a->value) != isnan(b->value))
            return isnan(a->value) ? 1 : -1;
        bool a_first = minimize ? a->value < b->value : a->value > b->value;
        return a_first ? -1 : 1;
    }
    return a->trial - b->trial;
}

/* A trial's line that tells most: a finished one over an interrupted one,
 * then the highest rung, then the latest. */
static bool supersedes(const struct cv_result *a, const struct cv_result *b)
{
    bool fa = a->status != CV_JOB_INTERRUPTED, fb = b->status != CV_JOB_INTERRUPTED;
    if (fa != fb)
        return fa;
    return a->rung >= b->rung;
}

int cv_results_best_per_trial(struct cv_result *rows, int n, bool minimize)
{
    int kept = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        if (rows[i].status == CV_JOB_EXPLOIT)
            continue;
        while (j < kept && rows[j].trial != rows[i].trial)
            j++;
        if (j == kept)
            rows[kept++] = rows[i];
        else if (supersedes(&rows[i], &rows[j]))
            rows[j] = rows[i];
    }
    for (int i = 1; i < kept; i++) { /* insertion sort: stable, few rows */
        struct cv_result r = rows[i];
        int j = i;
        for (; j > 0 && compare_rows(&r, &rows[j - 1], minimize) < 0; j--)
            rows[j] = rows[j - 1];
        rows[j] = r;
    }
    return kept;
}

void cv_results_print(const struct cv_result *rows, int n, const char *metric, FILE *f)
{
    fprintf(f, "%4s %6s %-11s %6s %12s %9s  %s\n", "#", "trial", "status", "epochs", metric,
            "seconds", "hyperparameters");
    for (int i = 0; i < n; i++) {
        const struct cv_result *r = &rows[i];
        fprintf(f, "%4d %6d %-11s %6d %12.4f %9.1f ", i + 1, r->trial,
                cv_job_status_name(r->status), r->epochs, r->value, r->seconds);
        for (int j = 0; j < r->n_params; j++)
            fprintf(f, " %s=%s", r->params[j].key, r->params[j].value);
        if (r->status == CV_JOB_FAILED && r->message[0])
            fprintf(f, "  (%s)", r->message);
        fputc('\n', f);
    }
}

/* The last job line of trial t at rung k (not an exploit line), or -1. */
static int job_row(const struct cv_result *rows, int n, int t, int k)
{
    int at = -1;
    for (int i = 0; i < n; i++)
        if (rows[i].trial == t && rows[i].rung == k && rows[i].status != CV_JOB_EXPLOIT &&
            rows[i].status != CV_JOB_INTERRUPTED)
            at = i;
    return at;
}

int cv_results_pbt_ancestry(const struct cv_result *rows, int n, int member, int *line, int max)
{
    int top = -1, cur = member;
    for (int i = 0; i < n; i++)
        if (rows[i].trial == member && rows[i].status != CV_JOB_EXPLOIT &&
            rows[i].status != CV_JOB_INTERRUPTED && rows[i].rung > top)
            top = rows[i].rung;
    if (top < 0 || top >= max)
        return 0;
    for (int k = top; k >= 0; k--) {
        line[k] = job_row(rows, n, cur, k);
        if (line[k] < 0)
            return 0; /* a gap: not a complete pbt history */
        for (int i = 0; k > 0 && i < n; i++)
            if (rows[i].status == CV_JOB_EXPLOIT && rows[i].trial == cur && rows[i].rung == k - 1)
                cur = rows[i].parent; /* before generation k its weights were the parent's */
    }
    return top + 1;
}
