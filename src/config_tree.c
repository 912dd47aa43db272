/*
 * config_tree.c - YAML text <-> a line-numbered tree (libyaml document API
 * and emitter), and `key.path=value` overrides applied to the tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_tree.h"
#include "util.h"

static struct cv_node *node_new(enum cv_node_kind kind, int line, const char *origin)
{
    struct cv_node *n = cv_calloc(1, sizeof(*n));
    if (n) {
        n->kind = kind;
        n->line = line;
        n->origin = origin;
    }
    return n;
}

void cv__tree_free(struct cv_node *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n; i++) {
        if (n->keys)
            free(n->keys[i]);
        cv__tree_free(n->kids[i]);
    }
    free(n->keys);
    free(n->kids);
    free(n->text);
    free(n);
}

static int grow(struct cv_node *n)
{
    if (n->n < n->cap)
        return 0;
    int cap = n->cap ? 2 * n->cap : 8;
    struct cv_node **k = cv_realloc(n->kids, (size_t)cap, sizeof(*k));
    if (!k)
        return -1;
    n->kids = k;
    if (n->kind == CV_NODE_MAP) {
        char **keys = cv_realloc(n->keys, (size_t)cap, sizeof(*keys));
        if (!keys)
            return -1;
        n->keys = keys;
    }
    n->cap = cap;
    return 0;
}

/* Append (key NULL for sequences); takes ownership of key and kid on
 * success only. */
static int append(struct cv_node *n, char *key, struct cv_node *kid)
{
    if (grow(n) != 0)
        return -1;
    if (n->kind == CV_NODE_MAP)
        n->keys[n->n] = key;
    n->kids[n->n++] = kid;
    return 0;
}

struct cv_node *cv__tree_get(const struct cv_node *map, const char *key)
{
    if (!map || map->kind != CV_NODE_MAP)
        return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key))
            return map->kids[i];
    return NULL;
}

/* ---- from libyaml's events ----
 *
 * The tree is built from the event stream rather than libyaml's document
 * API: the document loader expands nothing, but it reads the whole input
 * before any bound can be checked, and its scanner's cost per token grows
 * with the nesting depth (100,000 nested brackets took half a minute).
 * Here each event is checked as it arrives, so a hostile document is
 * refused after a bounded amount of the input, and an alias is copied
 * against the same node and text budget as the rest of the document. */

struct keyref {
    const char *key; /* borrowed from the map being built */
    int line;        /* where the key was written */
    int idx;         /* its position in the map */
};

struct frame {
    struct cv_node *node; /* open map or list, owned by its parent (or the root) */
    char *key;            /* map: the key whose value comes next (owned) */
    int key_line;         /* line of that key */
    struct keyref *refs;  /* map: its keys so far, for the duplicate check */
    int n_refs, refs_cap;
};

struct anchor {
    char *name;                 /* owned */
    const struct cv_node *node; /* a map or list of the tree, or `own` */
    struct cv_node *own;        /* a scalar's own copy (it may be used as a key) */
};

struct builder {
    const char *source, *origin;
    struct cv_error *err;
    struct cv_node *root;
    struct frame stack[CV_TREE_MAX_DEPTH];
    int depth;
    struct anchor anchors[CV_TREE_MAX_ANCHORS];
    int n_anchors;
    int documents;
    struct cv_tree_stats *st;
};

static cv_status fail_at(struct builder *b, int line, const char *what)
{
    return cv_fail(b->err, CV_CONFIG, "%s:%d: %s", b->source, line, what);
}

static cv_status nomem(struct builder *b)
{
    return cv_fail(b->err, CV_NOMEM, "out of memory reading %s", b->source);
}

/* Charge one node and `text` bytes to the document's budget. */
static cv_status charge(struct builder *b, int line, size_t text)
{
    char what[160];
    b->st->nodes++;
    b->st->text += (long long)text;
    if (b->st->nodes > CV_TREE_MAX_NODES) {
        snprintf(what, sizeof(what), "the document (aliases expanded) holds more than %d nodes",
                 CV_TREE_MAX_NODES);
        return fail_at(b, line, what);
    }
    if (b->st->text > CV_TREE_MAX_TEXT) {
        snprintf(what, sizeof(what),
                 "the document (aliases expanded) holds more than %d bytes of keys and values",
                 CV_TREE_MAX_TEXT);
        return fail_at(b, line, what);
    }
    return CV_OK;
}

static cv_status too_deep(struct builder *b, int line)
{
    char what[80];
    snprintf(what, sizeof(what), "nested deeper than %d levels", CV_TREE_MAX_DEPTH);
    return fail_at(b, line, what);
}

static cv_status new_scalar(struct builder *b, int line, const char *text, size_t len, bool quoted,
                            struct cv_node **out)
{
    *out = NULL;
    if (strlen(text) != len)
        return fail_at(b, line, "a value holds a NUL character");
    cv_status st = charge(b, line, len);
    if (st != CV_OK)
        return st;
    struct cv_node *n = node_new(CV_NODE_SCALAR, line, b->origin);
    if (!n || !(n->text = cv_strdup(text))) {
        cv__tree_free(n);
        return nomem(b);
    }
    n->quoted = quoted;
    *out = n;
    return CV_OK;
}

/* Deep copy of src (an alias), its collections starting at nesting `level`. */
static cv_status copy_node(struct builder *b, const struct cv_node *src, int line, int level,
                           struct cv_node **out)
{
    if (src->kind == CV_NODE_SCALAR)
        return new_scalar(b, line, src->text, strlen(src->text), src->quoted, out);
    *out = NULL;
    if (level > CV_TREE_MAX_DEPTH)
        return too_deep(b, line);
    cv_status st = charge(b, line, 0);
    struct cv_node *n = st == CV_OK ? node_new(src->kind, line, b->origin) : NULL;
    if (st == CV_OK && !n)
        st = nomem(b);
    for (int i = 0; st == CV_OK && i < src->n; i++) {
        struct cv_node *kid;
        char *key = NULL;
        st = copy_node(b, src->kids[i], line, level + 1, &kid);
        if (st == CV_OK && src->keys)
            st = charge(b, line, strlen(src->keys[i]));
        if (st == CV_OK && src->keys && !(key = cv_strdup(src->keys[i])))
            st = nomem(b);
        if (st == CV_OK && append(n, key, kid) != 0)
            st = nomem(b);
        if (st != CV_OK) {
            free(key);
            cv__tree_free(kid);
        }
    }
    if (st != CV_OK) {
        cv__tree_free(n);
        return st;
    }
    *out = n;
    return CV_OK;
}

static int add_ref(struct frame *f, int line)
{
    if (f->n_refs == f->refs_cap) {
        int cap = f->refs_cap ? 2 * f->refs_cap : 8;
        struct keyref *r = cv_realloc(f->refs, (size_t)cap, sizeof(*r));
        if (!r)
            return -1;
        f->refs = r;
        f->refs_cap = cap;
    }
    int idx = f->node->n - 1;
    f->refs[f->n_refs++] = (struct keyref){f->node->keys[idx], line, idx};
    return 0;
}

/* Hang node (owned from here on) below the open collection, or make it the
 * root; in a map it is the key or the value, alternately. */
static cv_status attach(struct builder *b, struct cv_node *node, int line)
{
    if (b->depth == 0) {
        b->root = node;
        return CV_OK;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == CV_NODE_MAP && !f->key) {
        if (node->kind != CV_NODE_SCALAR) {
            cv__tree_free(node);
            return fail_at(b, line, "mapping keys must be plain names");
        }
        f->key = node->text;
        f->key_line = line;
        node->text = NULL;
        cv__tree_free(node);
        return CV_OK;
    }
    char *key = f->key;
    f->key = NULL;
    if (append(f->node, key, node) != 0) {
        free(key);
        cv__tree_free(node);
        return nomem(b);
    }
    if (key && add_ref(f, f->key_line) != 0)
        return nomem(b);
    return CV_OK;
}

static cv_status add_anchor(struct builder *b, const char *name, const struct cv_node *node,
                            int line)
{
    char what[80];
    if (!name)
        return CV_OK;
    if (b->n_anchors == CV_TREE_MAX_ANCHORS) {
        snprintf(what, sizeof(what), "more than %d anchors", CV_TREE_MAX_ANCHORS);
        return fail_at(b, line, what);
    }
    struct anchor *a = &b->anchors[b->n_anchors];
    cv_status st = CV_OK;
    if (node->kind == CV_NODE_SCALAR)
        st = copy_node(b, node, line, 0, &a->own);
    if (st != CV_OK)
        return st;
    a->node = a->own ? a->own : node;
    if (!(a->name = cv_strdup(name))) {
        cv__tree_free(a->own);
        a->own = NULL;
        return nomem(b);
    }
    b->n_anchors++;
    return CV_OK;
}

static cv_status on_alias(struct builder *b, const char *name, int line)
{
    char what[160];
    for (int i = b->n_anchors - 1; i >= 0; i--) {
        if (strcmp(b->anchors[i].name, name) != 0)
            continue;
        struct cv_node *n;
        cv_status st = copy_node(b, b->anchors[i].node, line, b->depth + 1, &n);
        return st == CV_OK ? attach(b, n, line) : st;
    }
    snprintf(what, sizeof(what), "alias '*%.100s' names no anchor before it", name);
    return fail_at(b, line, what);
}

static cv_status on_scalar(struct builder *b, const yaml_event_t *ev, int line)
{
    struct cv_node *n;
    bool quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                  ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    cv_status st = new_scalar(b, line, (const char *)ev->data.scalar.value, ev->data.scalar.length,
                              quoted, &n);
    if (st == CV_OK)
        st = add_anchor(b, (const char *)ev->data.scalar.anchor, n, line);
    if (st != CV_OK) {
        cv__tree_free(n);
        return st;
    }
    return attach(b, n, line);
}

static cv_status on_open(struct builder *b, enum cv_node_kind kind, const char *anchor, int line)
{
    if (b->depth == CV_TREE_MAX_DEPTH)
        return too_deep(b, line);
    cv_status st = charge(b, line, 0);
    if (st != CV_OK)
        return st;
    struct cv_node *n = node_new(kind, line, b->origin);
    if (!n)
        return nomem(b);
    st = attach(b, n, line);
    if (st == CV_OK)
        st = add_anchor(b, anchor, n, line);
    if (st != CV_OK)
        return st;
    b->stack[b->depth++] = (struct frame){.node = n};
    if (b->depth > b->st->depth)
        b->st->depth = b->depth;
    return CV_OK;
}

static int by_key(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : x->idx - y->idx;
}

/* A map is complete: refuse a key written twice (sorted, so a map of many
 * keys costs n log n, not n^2). */
static cv_status on_close(struct builder *b)
{
    struct frame *f = &b->stack[--b->depth];
    cv_status st = CV_OK;
    if (f->n_refs > 1)
        qsort(f->refs, (size_t)f->n_refs, sizeof(*f->refs), by_key);
    for (int i = 1; i < f->n_refs && st == CV_OK; i++) {
        if (strcmp(f->refs[i - 1].key, f->refs[i].key) == 0)
            st = cv_fail(b->err, CV_CONFIG, "%s:%d: key '%s' appears twice", b->source,
                         f->refs[i].line, f->refs[i].key);
    }
    free(f->refs);
    free(f->key);
    *f = (struct frame){0};
    return st;
}

static cv_status on_event(struct builder *b, const yaml_event_t *ev, bool *done)
{
    int line = (int)ev->start_mark.line + 1;
    b->st->events++;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->documents++ > 0)
            return fail_at(b, line, "a second YAML document ('---'): a config is one document");
        return CV_OK;
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev, line);
    case YAML_ALIAS_EVENT:
        return on_alias(b, (const char *)ev->data.alias.anchor, line);
    case YAML_SEQUENCE_START_EVENT:
        return on_open(b, CV_NODE_SEQ, (const char *)ev->data.sequence_start.anchor, line);
    case YAML_MAPPING_START_EVENT:
        return on_open(b, CV_NODE_MAP, (const char *)ev->data.mapping_start.anchor, line);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_close(b);
    case YAML_STREAM_END_EVENT:
        *done = true;
        return CV_OK;
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return CV_OK;
    }
    return CV_OK;
}

static void builder_deinit(struct builder *b)
{
    while (b->depth > 0)
        on_close(b);
    for (int i = 0; i < b->n_anchors; i++) {
        free(b->anchors[i].name);
        cv__tree_free(b->anchors[i].own);
    }
}

static cv_status syntax_error(const yaml_parser_t *parser, const char *source, struct cv_error *err)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return cv_fail(err, CV_NOMEM, "out of memory reading %s", source);
    return cv_fail(err, CV_CONFIG, "%s:%lu:%lu: YAML syntax error: %s", source,
                   (unsigned long)parser->problem_mark.line + 1,
                   (unsigned long)parser->problem_mark.column + 1,
                   parser->problem ? parser->problem : "unknown");
}

static cv_status build(yaml_parser_t *parser, struct builder *b)
{
    bool done = false;
    cv_status st = CV_OK;
    while (st == CV_OK && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev))
            return syntax_error(parser, b->source, b->err);
        st = on_event(b, &ev, &done);
        yaml_event_delete(&ev);
    }
    return st;
}

/* libyaml checks each %TAG directive against all the earlier ones (and each
 * tag against all of them), so thousands of directives cost seconds before
 * the first event; they are counted in the text first.  A directive starts
 * a line; the bytes that end a YAML line break are \n, \r and the last byte
 * of NEL, LS and PS (counting a few more is harmless). */
static int count_directives(const char *text)
{
    int n = 0;
    for (const char *s = text; *s; s++)
        if (*s == '%' && (s == text || strchr("\n\r\x85\xa8\xa9", s[-1])))
            n++;
    return n;
}

cv_status cv__tree_parse_stats(const char *text, const char *source, const char *origin,
                               struct cv_node **out, struct cv_tree_stats *stats,
                               struct cv_error *err)
{
    struct cv_tree_stats local;
    yaml_parser_t parser;
    size_t len = strlen(text);
    *out = NULL;
    stats = stats ? stats : &local;
    *stats = (struct cv_tree_stats){0};
    if (len > CV_TREE_MAX_INPUT)
        return cv_fail(err, CV_CONFIG, "%s: %zu bytes: a config holds at most %d", source, len,
                       CV_TREE_MAX_INPUT);
    if (count_directives(text) > CV_TREE_MAX_DIRECTIVES)
        return cv_fail(err, CV_CONFIG,
                       "%s: more than %d YAML directives (lines that start with '%%')", source,
                       CV_TREE_MAX_DIRECTIVES);
    if (!yaml_parser_initialize(&parser))
        return cv_fail(err, CV_NOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    struct builder b = {.source = source, .origin = origin, .err = err, .st = stats};
    cv_status st = build(&parser, &b);
    stats->read = (long long)parser.mark.index;
    builder_deinit(&b);
    yaml_parser_delete(&parser);
    if (st == CV_OK && !b.root && !(b.root = node_new(CV_NODE_MAP, 1, origin)))
        st = cv_fail(err, CV_NOMEM, "out of memory");
    if (st != CV_OK) {
        cv__tree_free(b.root);
        return st;
    }
    *out = b.root;
    return CV_OK;
}

cv_status cv__tree_parse(const char *text, const char *source, const char *origin,
                         struct cv_node **out, struct cv_error *err)
{
    return cv__tree_parse_stats(text, source, origin, out, NULL, err);
}

/* ---- overrides ---- */

static bool is_index(const char *s, long *idx)
{
    char *end;
    if (!*s)
        return false;
    *idx = strtol(s, &end, 10);
    return *end == '\0' && *idx >= 0;
}

/* Walk/create the path (`level` components deep so far); the last
 * component's node is replaced by val. */
static cv_status set_path(struct cv_node *n, char *path, int level, struct cv_node *val,
                          const char *ov, struct cv_error *err)
{
    char *dot = strchr(path, '.');
    if (dot)
        *dot = '\0';
    struct cv_node **slot = NULL;
    long idx;
    if (!*path)
        return cv_fail(err, CV_CONFIG, "override '%s': empty key component", ov);
    if (level >= CV_TREE_MAX_DEPTH)
        return cv_fail(err, CV_CONFIG, "override '%.200s': a key path of more than %d components",
                       ov, CV_TREE_MAX_DEPTH);
    if (n->kind == CV_NODE_SEQ) {
        if (!is_index(path, &idx) || idx >= n->n)
            return cv_fail(err, CV_CONFIG, "override '%s': '%s' is not an index of a list of %d",
                           ov, path, n->n);
        slot = &n->kids[idx];
    } else if (n->kind == CV_NODE_MAP) {
        for (int i = 0; i < n->n && !slot; i++)
            if (!strcmp(n->keys[i], path))
                slot = &n->kids[i];
        if (!slot) {
            struct cv_node *fresh = dot ? node_new(CV_NODE_MAP, 0, ov) : NULL;
            char *key = cv_strdup(path);
            if ((dot && !fresh) || !key || append(n, key, fresh) != 0) {
                cv__tree_free(fresh);
                free(key);
                return cv_fail(err, CV_NOMEM, "out of memory");
            }
            slot = &n->kids[n->n - 1];
        }
    } else {
        return cv_fail(err, CV_CONFIG, "override '%s': '%s' is below a plain value", ov, path);
    }
    if (dot)
        return set_path(*slot, dot + 1, level + 1, val, ov, err);
    cv__tree_free(*slot);
    *slot = val;
    return CV_OK;
}

cv_status cv__tree_override(struct cv_node *root, const char *ov, struct cv_error *err)
{
    const char *eq = strchr(ov, '=');
    if (!eq || eq == ov)
        return cv_fail(err, CV_CONFIG, "override '%s': expected key.path=value", ov);
    char *path = cv_strndup(ov, (size_t)(eq - ov));
    struct cv_node *val = NULL;
    cv_status st = path ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
    char src[300];
    snprintf(src, sizeof(src), "override '%s'", ov);
    if (st == CV_OK && !*(eq + 1)) { /* key= sets an empty string */
        val = node_new(CV_NODE_SCALAR, 0, ov);
        if (!val || !(val->text = cv_strdup("")))
            st = cv_fail(err, CV_NOMEM, "out of memory");
    } else if (st == CV_OK) {
        st = cv__tree_parse(eq + 1, src, ov, &val, err);
    }
    if (st == CV_OK)
        st = set_path(root, path, 0, val, ov, err);
    if (st != CV_OK)
        cv__tree_free(val); /* set_path only takes ownership on success */
    free(path);
    return st;
}

/* ---- emitting ---- */

static int emit_node(yaml_emitter_t *e, const struct cv_node *n)
{
    yaml_event_t ev;
    if (n->kind == CV_NODE_SCALAR) {
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)n->text, (int)strlen(n->text),
                                     1, 1,
                                     n->quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                               : YAML_ANY_SCALAR_STYLE);
        return yaml_emitter_emit(e, &ev) ? 0 : -1;
    }
    bool map = n->kind == CV_NODE_MAP;
    if (map)
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    else
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    if (!yaml_emitter_emit(e, &ev))
        return -1;
    for (int i = 0; i < n->n; i++) {
        if (map) {
            yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)n->keys[i],
                                         (int)strlen(n->keys[i]), 1, 1, YAML_ANY_SCALAR_STYLE);
            if (!yaml_emitter_emit(e, &ev))
                return -1;
        }
        if (emit_node(e, n->kids[i]) != 0)
            return -1;
    }
    if (map)
        yaml_mapping_end_event_initialize(&ev);
    else
        yaml_sequence_end_event_initialize(&ev);
    return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

struct sink {
    char *buf;
    size_t len, cap;
};

static int write_sink(void *data, unsigned char *buffer, size_t size)
{
    struct sink *s = data;
    if (s->len + size + 1 > s->cap) {
        size_t cap = (s->len + size + 1) * 2;
        char *b = cv_realloc(s->buf, cap, 1);
        if (!b)
            return 0;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, buffer, size);
    s->len += size;
    s->buf[s->len] = '\0';
    return 1;
}

cv_status cv__tree_emit(const struct cv_node *root, char **out, struct cv_error *err)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    struct sink s = {0};
    *out = NULL;
    if (!yaml_emitter_initialize(&e))
        return cv_fail(err, CV_NOMEM, "out of memory");
    yaml_emitter_set_output(&e, write_sink, &s);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, 100);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    int ok = yaml_emitter_emit(&e, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ok = ok && yaml_emitter_emit(&e, &ev) && emit_node(&e, root) == 0;
    yaml_document_end_event_initialize(&ev, 1);
    ok = ok && yaml_emitter_emit(&e, &ev);
    yaml_stream_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&e, &ev);
    yaml_emitter_delete(&e);
    if (!ok) {
        free(s.buf);
        return cv_fail(err, CV_NOMEM, "cannot emit the effective config");
    }
    *out = s.buf;
    return CV_OK;
}
