/*
 * transfer.c - model.init_from and frozen layers (transfer.h).  The source
 * model is opened whole (its own config builds it), its parameter and state
 * views are listed by path, and each layer of the new model takes them only
 * if every one of its arrays finds a match of the same shape: half a layer
 * is never loaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/checkpoint.h"
#include "transfer.h"
#include "util.h"

#define MAX_VIEWS 512

struct view {
    char path[128];
    const float *data;
    size_t count;
};

struct views {
    struct view v[MAX_VIEWS];
    int n;
};

static cv_status list_view(void *arg, const char *path, const int *dims, int ndims, float *data,
                           size_t count, struct cv_error *err)
{
    struct views *vs = arg;
    (void)dims, (void)ndims;
    if (vs->n == MAX_VIEWS)
        return cv_fail(err, CV_INVAL, "model.init_from: more than %d arrays", MAX_VIEWS);
    struct view *v = &vs->v[vs->n++];
    snprintf(v->path, sizeof(v->path), "%s", path);
    v->data = data;
    v->count = count;
    return CV_OK;
}

/* "layers/03_dense/W" -> 3 */
static int layer_of(const char *path)
{
    return atoi(path + strlen("layers/"));
}

static const struct view *find(const struct views *src, const struct view *want)
{
    for (int i = 0; i < src->n; i++)
        if (!strcmp(src->v[i].path, want->path))
            return src->v[i].count == want->count ? &src->v[i] : NULL;
    return NULL;
}

/* Every layer whose arrays all match: copied, loaded[i] set. */
static int copy_matching(const struct views *src, const struct views *dst, int n_layers, bool copy,
                         bool *loaded)
{
    bool *miss = cv_calloc((size_t)n_layers, sizeof(bool)), *has = loaded;
    int n = 0;
    if (!miss)
        return -1;
    memset(has, 0, sizeof(bool) * (size_t)n_layers);
    for (int i = 0; i < dst->n; i++) {
        int l = layer_of(dst->v[i].path);
        has[l] = true;
        miss[l] |= find(src, &dst->v[i]) == NULL;
    }
    for (int l = 0; l < n_layers; l++)
        loaded[l] = has[l] && !miss[l];
    for (int i = 0; i < dst->n; i++)
        if (loaded[layer_of(dst->v[i].path)]) {
            if (copy)
                memcpy((float *)dst->v[i].data, find(src, &dst->v[i])->data,
                       dst->v[i].count * sizeof(float));
            n++;
        }
    free(miss);
    return n;
}

static cv_status list_all(cv_model *m, struct views *vs, struct cv_error *err)
{
    vs->n = 0;
    cv_status st = cv_model_each_param(m, list_view, vs, err);
    return st == CV_OK ? cv_model_each_state(m, list_view, vs, err) : st;
}

static bool has_params(enum cv_layer_type t)
{
    return t == CV_LAYER_DENSE || t == CV_LAYER_CONV2D || t == CV_LAYER_BATCHNORM ||
           t == CV_LAYER_RESIDUAL;
}

static void summarise(const cv_model *m, const bool *loaded, const char *path,
                      void (*note)(void *, const char *), void *arg)
{
    const struct cv_config *c = cv_model_config(m);
    char line[CV_PATH_MAX + 96];
    for (int l = 0; note && l < c->model.n_layers; l++) {
        const struct cv_layer_spec *s = &c->model.layers[l];
        const char *what = loaded[l] ? "loaded from " : has_params(s->type) ? "new" : "-";
        snprintf(line, sizeof(line), "  init_from: layer %2d %-10s %s%s%s", l,
                 cv_layer_type_name(s->type), what, loaded[l] ? path : "",
                 s->frozen ? " (frozen)" : "");
        note(arg, line);
    }
}

cv_status cv__transfer_load(cv_model *m, const char *path, bool copy, bool *loaded,
                            void (*note)(void *arg, const char *line), void *note_arg,
                            struct cv_error *err)
{
    struct cv_config *scfg = NULL;
    cv_model *src = NULL;
    struct views *a = cv_calloc(2, sizeof(*a));
    if (!a)
        return cv_fail(err, CV_NOMEM, "out of memory");
    cv_status st = cv_ckpt_open_model(path, 1, &scfg, &src, err);
    if (st == CV_OK)
        st = list_all(src, &a[0], err);
    if (st == CV_OK)
        st = list_all(m, &a[1], err);
    int n = st == CV_OK
                ? copy_matching(&a[0], &a[1], cv_model_config(m)->model.n_layers, copy, loaded)
                : 0;
    if (st == CV_OK && n < 0)
        st = cv_fail(err, CV_NOMEM, "out of memory");
    else if (st == CV_OK && n == 0)
        st = cv_fail(err, CV_CONFIG,
                     "model.init_from = %s: no layer matches this model by position, type and "
                     "shape; nothing to start from",
                     path);
    bool norm = cv_model_norm_mean(src) && cv_model_inputs(src) == cv_model_inputs(m);
    if (st == CV_OK && copy && norm)
        st = cv_model_set_norm(m, cv_model_norm_mean(src), cv_model_norm_std(src), err);
    if (st == CV_OK && copy)
        summarise(m, loaded, path, note, note_arg);
    cv_model_free(src);
    cv_config_free(scfg);
    free(a);
    return st;
}

struct scaler {
    const cv_model *m;
    const bool *loaded;
    float *scale;
    bool any;
};

static cv_status scale_view(void *arg, const char *path, const int *dims, int ndims, float *data,
                            size_t count, struct cv_error *err)
{
    struct scaler *s = arg;
    const struct cv_config *c = cv_model_config(s->m);
    int l = layer_of(path);
    const struct cv_layer_spec *spec = &c->model.layers[l];
    const char *child = strchr(path + strlen("layers/"), '/') + 1; /* "00_dense/W" in a block */
    bool frozen = spec->frozen;
    if (spec->n_children && child[0] >= '0' && child[0] <= '9' && atoi(child) < spec->n_children)
        frozen |= spec->children[atoi(child)].frozen;
    (void)dims, (void)ndims, (void)err;
    float f = frozen ? 0.0f : s->loaded && s->loaded[l] ? (float)c->train.lr_loaded : 1.0f;
    size_t off = (size_t)(data - cv_model_params((cv_model *)s->m));
    for (size_t i = 0; i < count; i++)
        s->scale[off + i] = f;
    s->any |= f != 1.0f;
    return CV_OK;
}

bool cv__transfer_lr_scale(const cv_model *m, const bool *loaded, float *scale)
{
    struct scaler s = {m, loaded, scale, false};
    cv_model_each_param((cv_model *)m, scale_view, &s, NULL);
    return s.any;
}
