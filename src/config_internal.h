/*
 * config_internal.h - config.c's field machinery, shared with the files
 * that convert parts of the document: config_layer.c (model.layers) and
 * config_space.c (sweep.space).  One table row per setting drives parsing,
 * range checks and messages.
 */
#ifndef CV_CONFIG_INTERNAL_H
#define CV_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "caviar/config.h"
#include "config_tree.h"

/* F_TRI: auto or a boolean, into an enum cv_tristate */
enum ftype { F_INT, F_I64, F_U64, F_DBL, F_FLT, F_BOOL, F_TRI, F_STR, F_ENUM, F_SPECIAL };
enum bound { NONE, GE, GT, LE, LT };

struct pctx;
struct field {
    const char *key;
    enum ftype type;
    size_t off;
    enum bound lob;
    double lo;
    enum bound hib;
    double hi;
    const char *const *names; /* F_ENUM */
    size_t size;              /* F_STR capacity */
    cv_status (*special)(struct pctx *, const struct cv_node *, void *base);
};

struct pctx {
    const char *source;
    struct cv_error *err;
    char path[160]; /* dotted key of the node being converted */
};

#define C(f)            offsetof(struct cv_config, f)
#define L(f)            offsetof(struct cv_layer_spec, f)
#define STR(f)          F_STR, C(f), NONE, 0, NONE, 0, NULL, sizeof(((struct cv_config *)0)->f), NULL
#define ENUM(f, names)  F_ENUM, C(f), NONE, 0, NONE, 0, names, 0, NULL
#define LENUM(f, names) F_ENUM, L(f), NONE, 0, NONE, 0, names, 0, NULL

/* Layer type, activation and init names, indexed by their enums. */
extern const char *const cv__layer_names[];
extern const char *const cv__act_names[];
extern const char *const cv__init_names[];

/* "file:line" or "override '...'" of node n, into buf. */
const char *cv__cfg_where(const struct pctx *p, const struct cv_node *n, char *buf, size_t size);
/* CV_CONFIG: "where: path = value: expected <expected>". */
cv_status cv__cfg_bad(struct pctx *p, const struct cv_node *n, const char *expected);
/* Extend p->path by key (pop restores it to mark). */
void cv__cfg_push(struct pctx *p, const char *key, size_t *mark);
void cv__cfg_pop(struct pctx *p, size_t mark);
bool cv__cfg_scalar(const struct cv_node *n);
bool cv__cfg_to_ll(const struct cv_node *n, long long *v);
bool cv__cfg_to_double(const struct cv_node *n, double *v);
/* Index of s in the NULL-terminated names, or -1. */
int cv__cfg_find_name(const char *const *names, const char *s);
/* Convert one node into the field f of base. */
cv_status cv__cfg_set_field(struct pctx *p, const struct field *f, const struct cv_node *n,
                            void *base);
/* Convert a mapping node by the table `fields`; `allowed` (a space-separated
 * list, or NULL for all) limits which keys may appear. */
cv_status cv__cfg_apply(struct pctx *p, const struct cv_node *n, const struct field *fields,
                        const char *allowed, void *base);

/* The special keys: model.layers (base: the config, or a residual spec) and
 * sweep.space (base: the config); the specs' children, freed. */
cv_status cv__cfg_layers(struct pctx *p, const struct cv_node *n, void *base);
cv_status cv__cfg_space(struct pctx *p, const struct cv_node *n, void *base);
/* train.schedule (config_schedule.c; base: the config). */
cv_status cv__cfg_schedule(struct pctx *p, const struct cv_node *n, void *base);
/* The schedule against the rest of the config (dropout layers, image input). */
cv_status cv__cfg_schedule_check(const struct cv_config *c, struct cv_error *err);
void cv__cfg_free_specs(struct cv_layer_spec *l, int n);

#endif /* CV_CONFIG_INTERNAL_H */
