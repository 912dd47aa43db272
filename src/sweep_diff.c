/*
 * sweep_diff.c - the keys that differ between two configs, as dotted paths
 * with both values (sweep_diff.h).  Both texts are the emitted effective
 * configs (cfg->text), so a key has one spelling in each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_tree.h"
#include "sweep_diff.h"

static const char *shown(const struct cv_node *n)
{
    return !n                          ? "(not set)"
           : n->kind == CV_NODE_SCALAR ? n->text
           : n->kind == CV_NODE_MAP    ? "(a mapping)"
                                       : "(a list)";
}

static bool growable(const char *path)
{
    return !strcmp(path, "sweep.trials") || !strcmp(path, "sweep.budget_epochs");
}

static void note(struct cv_config_diff *d, const char *path, const struct cv_node *a,
                 const struct cv_node *b)
{
    size_t len = strlen(d->text);
    d->n++;
    snprintf(d->text + len, sizeof(d->text) - len, "%s%s: %.60s -> %.60s", d->n > 1 ? "; " : "",
             path, shown(a), shown(b));
    if (!strcmp(path, "sweep.trials"))
        d->trials = true;
    if (growable(path) && a && b && a->kind == CV_NODE_SCALAR && b->kind == CV_NODE_SCALAR) {
        double x = strtod(a->text, NULL), y = strtod(b->text, NULL);
        /* budget_epochs 0 is no cap: larger than any */
        bool more = !strcmp(path, "sweep.budget_epochs") ? (y == 0 || (x != 0 && y > x)) : y > x;
        d->n_extend += more;
        d->n_shrink += !more;
    }
}

static void walk(const struct cv_node *a, const struct cv_node *b, char *path, size_t size,
                 struct cv_config_diff *d);

static void child(const struct cv_node *a, const struct cv_node *b, char *path, size_t size,
                  const char *key, struct cv_config_diff *d)
{
    size_t len = strlen(path);
    snprintf(path + len, size - len, "%s%s", len ? "." : "", key);
    walk(a, b, path, size, d);
    path[len] = '\0';
}

static const struct cv_node *item(const struct cv_node *n, int i)
{
    return n && n->kind == CV_NODE_SEQ && i < n->n ? n->kids[i] : NULL;
}

static void walk(const struct cv_node *a, const struct cv_node *b, char *path, size_t size,
                 struct cv_config_diff *d)
{
    if (!a || !b || a->kind != b->kind) {
        note(d, path, a, b);
    } else if (a->kind == CV_NODE_SCALAR) {
        if (strcmp(a->text, b->text))
            note(d, path, a, b);
    } else if (a->kind == CV_NODE_MAP) {
        for (int i = 0; i < a->n; i++)
            child(a->kids[i], cv__tree_get(b, a->keys[i]), path, size, a->keys[i], d);
        for (int i = 0; i < b->n; i++)
            if (!cv__tree_get(a, b->keys[i]))
                child(NULL, b->kids[i], path, size, b->keys[i], d);
    } else {
        char key[16];
        for (int i = 0; i < a->n || i < b->n; i++) {
            snprintf(key, sizeof(key), "%d", i);
            child(item(a, i), item(b, i), path, size, key, d);
        }
    }
}

cv_status cv__config_diff(const char *old_text, const char *new_text, struct cv_config_diff *d,
                          struct cv_error *err)
{
    struct cv_node *a = NULL, *b = NULL;
    char path[1024] = "";
    memset(d, 0, sizeof(*d));
    cv_status st = cv__tree_parse(old_text, "the sweep's config.yaml", NULL, &a, err);
    if (st == CV_OK)
        st = cv__tree_parse(new_text, "this config", NULL, &b, err);
    if (st == CV_OK)
        walk(a, b, path, sizeof(path), d);
    cv__tree_free(a);
    cv__tree_free(b);
    return st;
}
