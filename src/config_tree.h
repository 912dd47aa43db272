/*
 * config_tree.h - a YAML document as a small tree that remembers where each
 * node came from (file line, or the command-line override), so config
 * errors can name it.  Built with libyaml's document API, edited by
 * `key.path=value` overrides, emitted back as YAML with libyaml's emitter.
 * Private to config*.c.
 */
#ifndef CV_CONFIG_TREE_H
#define CV_CONFIG_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "caviar/status.h"

enum cv_node_kind { CV_NODE_SCALAR, CV_NODE_MAP, CV_NODE_SEQ };

struct cv_node {
    enum cv_node_kind kind;
    int line;              /* 1-based line in the source, 0 for overrides */
    const char *origin;    /* the override text this node came from, or NULL */
    bool quoted;           /* scalar was quoted in the source: always a string */
    char *text;            /* scalar text (owned) */
    char **keys;           /* map keys (owned), n of them */
    struct cv_node **kids; /* map values / sequence items (owned) */
    int n, cap;
};

/* Parse YAML text into a tree (an empty document gives an empty map).
 * Errors name `source`:line:column. */
cv_status cv__tree_parse(const char *text, const char *source, const char *origin,
                         struct cv_node **out, struct cv_error *err);
void cv__tree_free(struct cv_node *n);

/* Apply one `a.b.0.c=value` override (value parsed as YAML). */
cv_status cv__tree_override(struct cv_node *root, const char *override, struct cv_error *err);

/* Map lookup (NULL if absent or not a map). */
struct cv_node *cv__tree_get(const struct cv_node *map, const char *key);

/* Emit the tree as YAML text (malloc'ed) into *out. */
cv_status cv__tree_emit(const struct cv_node *root, char **out, struct cv_error *err);

#endif /* CV_CONFIG_TREE_H */
