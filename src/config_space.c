/*
 * config_space.c - sweep.space: each key maps to a distribution written as
 * "dist(args)" (choice, uniform, log_uniform, one_minus_log_uniform,
 * int_uniform), checked here; sampling is sweep_space.c's.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/config.h"
#include "config_internal.h"
#include "config_tree.h"

static const char *const dist_names[] = {
    "choice", "uniform", "log_uniform", "one_minus_log_uniform", "int_uniform", NULL};

static char *trim(char *tok)
{
    while (isspace((unsigned char)*tok))
        tok++;
    char *end = tok + strlen(tok);
    while (end > tok && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return tok;
}

/* Split at the commas outside brackets and quotes, so a choice can be a
 * YAML flow value: choice([64, 64], [128]). */
static int split_args(char *s, char **args, int max)
{
    int n = 0, depth = 0;
    char quote = 0, *tok = s;
    for (char *p = s;; p++) {
        if (quote && *p) {
            quote = *p == quote ? 0 : quote;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '[' || *p == '{') {
            depth++;
        } else if ((*p == ']' || *p == '}') && depth > 0) {
            depth--;
        } else if ((*p == ',' && depth == 0) || !*p) {
            bool end = !*p;
            *p = '\0';
            if (n < max)
                args[n] = trim(tok);
            n++;
            tok = p + 1;
            if (end)
                break;
        }
    }
    return n == 1 && !*args[0] ? 0 : n;
}

static const char *check_dim(struct cv_sweep_dim *d, char **args, int n)
{
    char *end;
    if (d->dist == CV_DIST_CHOICE) {
        if (n < 1)
            return "choice(...) with at least one value";
        for (int i = 0; i < n; i++) {
            if (strlen(args[i]) >= sizeof(d->choices[i]))
                return "choices of at most 255 characters each";
            snprintf(d->choices[i], sizeof(d->choices[i]), "%s", args[i]);
        }
        d->n_choices = n;
        return NULL;
    }
    if (n != 2)
        return "two bounds, e.g. log_uniform(1e-4, 1e-1)";
    d->lo = strtod(args[0], &end);
    if (*end || !isfinite(d->lo))
        return "numeric bounds";
    d->hi = strtod(args[1], &end);
    if (*end || !isfinite(d->hi))
        return "numeric bounds";
    if (!(d->lo < d->hi))
        return "bounds a < b";
    if (d->dist == CV_DIST_LOG_UNIFORM && d->lo <= 0)
        return "positive bounds for log_uniform";
    if (d->dist == CV_DIST_ONE_MINUS_LOG_UNIFORM && (d->lo <= 0 || d->hi >= 1))
        return "bounds in (0, 1) for one_minus_log_uniform";
    if (d->dist == CV_DIST_INT_UNIFORM && (d->lo != floor(d->lo) || d->hi != floor(d->hi)))
        return "integer bounds for int_uniform";
    /* sampling and grids count hi - lo + 1 in 64-bit integers, exactly */
    if (d->dist == CV_DIST_INT_UNIFORM && (fabs(d->lo) > 0x1p53 || fabs(d->hi) > 0x1p53))
        return "int_uniform bounds within +-2^53 (9007199254740992)";
    return NULL;
}

static cv_status parse_dim(struct pctx *p, const char *key, const struct cv_node *n,
                           struct cv_sweep_dim *d)
{
    char buf[1024], *args[CV_MAX_CHOICES + 1];
    const char *problem = "a distribution: choice(...), uniform(a, b), log_uniform(a, b), "
                          "one_minus_log_uniform(a, b) or int_uniform(a, b)";
    memset(d, 0, sizeof(*d));
    d->line = n->line;
    if (strlen(key) >= sizeof(d->key) || !cv__cfg_scalar(n) || strlen(n->text) >= sizeof(buf))
        return cv__cfg_bad(p, n, problem);
    snprintf(d->key, sizeof(d->key), "%s", key);
    snprintf(buf, sizeof(buf), "%s", n->text);
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (open && !close)
        return cv__cfg_bad(p, n,
                           "a complete distribution: inside a {flow} mapping YAML splits values at "
                           "commas, so quote it ('log_uniform(1e-4, 1e-1)') or use block style");
    if (!open || !close || close < open || close[1] != '\0')
        return cv__cfg_bad(p, n, problem);
    *open = *close = '\0';
    int k = cv__cfg_find_name(dist_names, buf);
    if (k < 0)
        return cv__cfg_bad(p, n, problem);
    d->dist = (enum cv_dist)k;
    int na = split_args(open + 1, args, CV_MAX_CHOICES + 1);
    if (na > CV_MAX_CHOICES)
        return cv__cfg_bad(p, n, "at most 32 choices");
    const char *why = check_dim(d, args, na);
    return why ? cv__cfg_bad(p, n, why) : CV_OK;
}

cv_status cv__cfg_space(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_config *c = base;
    if (n->kind != CV_NODE_MAP || n->n < 1 || n->n > CV_MAX_SWEEP)
        return cv__cfg_bad(p, n, "a mapping of 1 to 32 config keys to distributions");
    c->sweep.n_space = 0;
    for (int i = 0; i < n->n; i++) {
        size_t mark;
        cv__cfg_push(p, n->keys[i], &mark);
        cv_status st = parse_dim(p, n->keys[i], n->kids[i], &c->sweep.space[i]);
        cv__cfg_pop(p, mark);
        if (st != CV_OK)
            return st;
        c->sweep.n_space = i + 1;
    }
    return CV_OK;
}
