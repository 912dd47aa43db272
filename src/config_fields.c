/*
 * config_fields.c - the table-driven machinery of config.c and
 * config_layer.c: a node's location for messages, scalar conversion with
 * range checks, and applying a mapping to a table of fields (unknown keys
 * and bad values name file:line or the command-line override).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caviar/config.h"
#include "config_internal.h"
#include "config_tree.h"
#include "util.h"

/* ---- messages ---- */

const char *cv__cfg_where(const struct pctx *p, const struct cv_node *n, char *buf, size_t size)
{
    if (n->origin)
        snprintf(buf, size, "override '%s'", n->origin);
    else
        snprintf(buf, size, "%s:%d", p->source, n->line);
    return buf;
}

cv_status cv__cfg_bad(struct pctx *p, const struct cv_node *n, const char *expected)
{
    char w[400];
    const char *v = n->kind == CV_NODE_SCALAR ? n->text
                    : n->kind == CV_NODE_MAP  ? "{...}"
                                              : "[...]";
    return cv_fail(p->err, CV_CONFIG, "%s: %s = %s: expected %s", cv__cfg_where(p, n, w, sizeof(w)),
                   p->path, v, expected);
}

static void list_names(const char *const *names, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; names[i]; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", names[i]);
    }
}

void cv__cfg_push(struct pctx *p, const char *key, size_t *mark)
{
    *mark = strlen(p->path);
    snprintf(p->path + *mark, sizeof(p->path) - *mark, "%s%s", *mark ? "." : "", key);
}

void cv__cfg_pop(struct pctx *p, size_t mark)
{
    p->path[mark] = '\0';
}

/* ---- scalars ---- */

bool cv__cfg_scalar(const struct cv_node *n)
{
    return n->kind == CV_NODE_SCALAR;
}

bool cv__cfg_to_double(const struct cv_node *n, double *v)
{
    char *end;
    if (!cv__cfg_scalar(n) || !*n->text)
        return false;
    errno = 0;
    *v = strtod(n->text, &end);
    return *end == '\0' && errno == 0 && isfinite(*v);
}

bool cv__cfg_to_ll(const struct cv_node *n, long long *v)
{
    char *end;
    if (!cv__cfg_scalar(n) || !*n->text)
        return false;
    errno = 0;
    *v = strtoll(n->text, &end, 10);
    return *end == '\0' && errno == 0;
}

static bool to_bool(const struct cv_node *n, bool *v)
{
    static const char *const yes[] = {"true", "yes", "on", NULL}, *const no[] = {"false", "no",
                                                                                 "off", NULL};
    for (int i = 0; cv__cfg_scalar(n) && yes[i]; i++) {
        if (!strcasecmp(n->text, yes[i]))
            return *v = true, true;
        if (!strcasecmp(n->text, no[i]))
            return *v = false, true;
    }
    return false;
}

int cv__cfg_find_name(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

static bool in_bounds(const struct field *f, double v)
{
    bool lo = f->lob == NONE || (f->lob == GE ? v >= f->lo : v > f->lo);
    bool hi = f->hib == NONE || (f->hib == LE ? v <= f->hi : v < f->hi);
    return lo && hi;
}

static void expectation(const struct field *f, bool integer, char *buf, size_t size)
{
    const char *what = integer ? "an integer" : "a number";
    if (f->lob != NONE && f->hib != NONE)
        snprintf(buf, size, "%s in %c%g, %g%c", what, f->lob == GE ? '[' : '(', f->lo, f->hi,
                 f->hib == LE ? ']' : ')');
    else if (f->lob != NONE)
        snprintf(buf, size, "%s %s %g", what, f->lob == GE ? ">=" : ">", f->lo);
    else
        snprintf(buf, size, "%s", what);
}

static cv_status set_number(struct pctx *p, const struct field *f, const struct cv_node *n,
                            void *at)
{
    char exp[96];
    bool integer = f->type != F_DBL && f->type != F_FLT;
    long long i = 0;
    double d = 0;
    bool ok = integer ? cv__cfg_to_ll(n, &i) : cv__cfg_to_double(n, &d);
    if (integer)
        d = (double)i;
    if (f->type == F_U64 && i < 0)
        ok = false;
    expectation(f, integer, exp, sizeof(exp));
    if (!ok || !in_bounds(f, d))
        return cv__cfg_bad(p, n, f->type == F_U64 ? "a non-negative integer" : exp);
    if (f->type == F_INT && (i > 2147483647LL || i < -2147483647LL))
        return cv__cfg_bad(p, n, "an integer that fits in 32 bits");
    if (f->type == F_INT)
        *(int *)at = (int)i;
    else if (f->type == F_I64)
        *(long long *)at = i;
    else if (f->type == F_U64)
        *(uint64_t *)at = (uint64_t)i;
    else if (f->type == F_FLT)
        *(float *)at = (float)d;
    else
        *(double *)at = d;
    return CV_OK;
}

cv_status cv__cfg_set_field(struct pctx *p, const struct field *f, const struct cv_node *n,
                            void *base)
{
    void *at = (char *)base + f->off;
    char exp[300];
    switch (f->type) {
    case F_INT:
    case F_I64:
    case F_U64:
    case F_DBL:
    case F_FLT:
        return set_number(p, f, n, at);
    case F_BOOL:
        return to_bool(n, (bool *)at) ? CV_OK : cv__cfg_bad(p, n, "true or false");
    case F_TRI: {
        bool on;
        if (cv__cfg_scalar(n) && !strcasecmp(n->text, "auto"))
            *(enum cv_tristate *)at = CV_AUTO;
        else if (to_bool(n, &on))
            *(enum cv_tristate *)at = on ? CV_ON : CV_OFF;
        else
            return cv__cfg_bad(p, n, "auto, true or false");
        return CV_OK;
    }
    case F_STR:
        if (!cv__cfg_scalar(n) || strlen(n->text) >= f->size)
            return cv__cfg_bad(p, n, "a string (path) shorter than the limit");
        memcpy(at, n->text, strlen(n->text) + 1);
        return CV_OK;
    case F_ENUM: {
        int k = cv__cfg_scalar(n) ? cv__cfg_find_name(f->names, n->text) : -1;
        char names[280];
        list_names(f->names, names, sizeof(names));
        snprintf(exp, sizeof(exp), "one of %s", names);
        if (k < 0)
            return cv__cfg_bad(p, n, exp);
        *(int *)at = k; /* every enum here is int-sized */
        return CV_OK;
    }
    case F_SPECIAL:
        return f->special(p, n, base);
    }
    return CV_OK;
}

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *s = strstr(list, word); s; s = strstr(s + 1, word))
        if ((s == list || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\0'))
            return true;
    return false;
}

/* Convert every key of map n with `fields`; keys outside `allowed` (a
 * space-separated list, NULL = all) are unknown. */
cv_status cv__cfg_apply(struct pctx *p, const struct cv_node *n, const struct field *fields,
                        const char *allowed, void *base)
{
    char w[400], known[400];
    if (n->kind != CV_NODE_MAP)
        return cv__cfg_bad(p, n, "a mapping of keys");
    for (int i = 0; i < n->n; i++) {
        const struct field *f = fields;
        while (f->key && strcmp(f->key, n->keys[i]))
            f++;
        bool ok = f->key && (!allowed || has_word(allowed, f->key));
        if (!ok) {
            if (allowed)
                snprintf(known, sizeof(known), "%s", allowed);
            else
                for (const struct field *g = fields; g->key; g++)
                    snprintf(known + (g == fields ? 0 : strlen(known)),
                             sizeof(known) - (g == fields ? 0 : strlen(known)), "%s%s",
                             g == fields ? "" : ", ", g->key);
            return cv_fail(p->err, CV_CONFIG, "%s: unknown key '%s%s%s' (known keys here: %s)",
                           cv__cfg_where(p, n->kids[i], w, sizeof(w)), p->path, *p->path ? "." : "",
                           n->keys[i], known);
        }
        size_t mark;
        cv__cfg_push(p, n->keys[i], &mark);
        cv_status st = cv__cfg_set_field(p, f, n->kids[i], base);
        cv__cfg_pop(p, mark);
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}
