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

/* Bounds on one parsed document.  A config is a few hundred nodes; these
 * refuse hostile ones (aliases that expand exponentially, "billion laughs";
 * deep nesting) after work linear in the input read so far. */
#define CV_TREE_MAX_INPUT      (1 << 20) /* bytes of YAML text */
#define CV_TREE_MAX_DEPTH      64        /* nested maps and lists (and override path components) */
#define CV_TREE_MAX_NODES      100000    /* nodes, aliases expanded */
#define CV_TREE_MAX_TEXT       (4 << 20) /* bytes of keys and values, aliases expanded */
#define CV_TREE_MAX_ANCHORS    256       /* anchors (&name) in one document */
#define CV_TREE_MAX_DIRECTIVES 16        /* %YAML and %TAG lines */

/* The work one parse did, for tests of the bounds. */
struct cv_tree_stats {
    long long events; /* libyaml events consumed */
    long long nodes;  /* nodes built, alias copies included */
    long long text;   /* bytes of keys and values built */
    long long read;   /* input characters libyaml had scanned when parsing stopped */
    int depth;        /* deepest nesting reached */
};

/* Parse YAML text (one document) into a tree (an empty document gives an
 * empty map).  Errors (CV_CONFIG) name `source`:line[:column]: syntax, a
 * bound above exceeded, a second document, a key written twice, a key that
 * is not a plain value, an alias without its anchor, a NUL in a value. */
cv_status cv__tree_parse(const char *text, const char *source, const char *origin,
                         struct cv_node **out, struct cv_error *err);
/* The same, also reporting the work done into *stats (may be NULL). */
cv_status cv__tree_parse_stats(const char *text, const char *source, const char *origin,
                               struct cv_node **out, struct cv_tree_stats *stats,
                               struct cv_error *err);
void cv__tree_free(struct cv_node *n);

/* Apply one `a.b.0.c=value` override (value parsed as YAML, path at most
 * CV_TREE_MAX_DEPTH components). */
cv_status cv__tree_override(struct cv_node *root, const char *override, struct cv_error *err);

/* Map lookup (NULL if absent or not a map). */
struct cv_node *cv__tree_get(const struct cv_node *map, const char *key);

/* Emit the tree as YAML text (malloc'ed) into *out. */
cv_status cv__tree_emit(const struct cv_node *root, char **out, struct cv_error *err);

#endif /* CV_CONFIG_TREE_H */
