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

/* Append (key may be NULL for sequences); takes ownership of kid. */
static int append(struct cv_node *n, const char *key, struct cv_node *kid)
{
    if (grow(n) != 0)
        return -1;
    if (n->kind == CV_NODE_MAP && !(n->keys[n->n] = cv_strdup(key)))
        return -1;
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

/* ---- from libyaml's document ---- */

struct conv {
    yaml_document_t *doc;
    const char *source, *origin;
    struct cv_error *err;
    int depth;
};

static struct cv_node *convert(struct conv *c, yaml_node_t *y);

static struct cv_node *convert_map(struct conv *c, yaml_node_t *y, struct cv_node *n)
{
    for (yaml_node_pair_t *p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            cv_fail(c->err, CV_CONFIG, "%s:%lu: mapping keys must be plain names", c->source,
                    (unsigned long)y->start_mark.line + 1);
            return NULL;
        }
        const char *key = (const char *)k->data.scalar.value;
        if (cv__tree_get(n, key)) {
            cv_fail(c->err, CV_CONFIG, "%s:%lu: key '%s' appears twice", c->source,
                    (unsigned long)k->start_mark.line + 1, key);
            return NULL;
        }
        struct cv_node *v = convert(c, yaml_document_get_node(c->doc, p->value));
        if (!v || append(n, key, v) != 0) {
            cv__tree_free(v);
            return NULL;
        }
    }
    return n;
}

static struct cv_node *convert(struct conv *c, yaml_node_t *y)
{
    if (!y || ++c->depth > 64) {
        cv_fail(c->err, CV_CONFIG, "%s: document nested too deeply", c->source);
        return NULL;
    }
    enum cv_node_kind kind = y->type == YAML_MAPPING_NODE    ? CV_NODE_MAP
                             : y->type == YAML_SEQUENCE_NODE ? CV_NODE_SEQ
                                                             : CV_NODE_SCALAR;
    struct cv_node *n = node_new(kind, (int)y->start_mark.line + 1, c->origin), *ok = n;
    if (n && kind == CV_NODE_SCALAR) {
        n->text = cv_strdup((const char *)y->data.scalar.value);
        n->quoted = y->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    y->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        ok = n->text ? n : NULL;
    } else if (n && kind == CV_NODE_MAP) {
        ok = convert_map(c, y, n);
    } else if (n) {
        for (yaml_node_item_t *it = y->data.sequence.items.start;
             ok && it < y->data.sequence.items.top; it++) {
            struct cv_node *v = convert(c, yaml_document_get_node(c->doc, *it));
            if (!v || append(n, NULL, v) != 0)
                cv__tree_free(v), ok = NULL;
        }
    }
    c->depth--;
    if (!ok) {
        cv__tree_free(n);
        cv_fail(c->err, CV_NOMEM, "out of memory reading %s", c->source);
    }
    return ok;
}

cv_status cv__tree_parse(const char *text, const char *source, const char *origin,
                         struct cv_node **out, struct cv_error *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    *out = NULL;
    if (!yaml_parser_initialize(&parser))
        return cv_fail(err, CV_NOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&parser, &doc)) {
        cv_status st = cv_fail(err, CV_CONFIG, "%s:%lu:%lu: YAML syntax error: %s", source,
                               (unsigned long)parser.problem_mark.line + 1,
                               (unsigned long)parser.problem_mark.column + 1,
                               parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        return st;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    struct conv c = {&doc, source, origin, err, 0};
    *out = root ? convert(&c, root) : node_new(CV_NODE_MAP, 1, origin);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (!*out)
        return err && err->code ? err->code : cv_fail(err, CV_NOMEM, "out of memory");
    return CV_OK;
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

/* Walk/create the path; the last component's node is replaced by val. */
static cv_status set_path(struct cv_node *n, char *path, struct cv_node *val, const char *ov,
                          struct cv_error *err)
{
    char *dot = strchr(path, '.');
    if (dot)
        *dot = '\0';
    struct cv_node **slot = NULL;
    long idx;
    if (!*path)
        return cv_fail(err, CV_CONFIG, "override '%s': empty key component", ov);
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
            if ((dot && !fresh) || append(n, path, fresh) != 0) {
                cv__tree_free(fresh);
                return cv_fail(err, CV_NOMEM, "out of memory");
            }
            slot = &n->kids[n->n - 1];
        }
    } else {
        return cv_fail(err, CV_CONFIG, "override '%s': '%s' is below a plain value", ov, path);
    }
    if (dot)
        return set_path(*slot, dot + 1, val, ov, err);
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
        st = set_path(root, path, val, ov, err);
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
