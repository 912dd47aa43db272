/*
 * score.c - a model file's predictions on this rank's rows of a split,
 * with the checks and class names that go with them: what `eval`,
 * `predict` and `report` share (see caviar/evaluate.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "caviar/checkpoint.h"
#include "caviar/evaluate.h"
#include "util.h"

#define SCORE_BATCH 256

cv_status cv_scored_open(const char *model, const char *data, int rank, int world,
                         struct cv_scored *s, struct cv_error *err)
{
    *s = (struct cv_scored){0};
    cv_status st = cv_ckpt_open_model(model, SCORE_BATCH, &s->cfg, &s->model, err);
    if (st != CV_OK)
        return st;
    if (!data)
        data = s->cfg->data.dev[0] ? s->cfg->data.dev : s->cfg->data.train;
    snprintf(s->split, sizeof(s->split), "%s", data);
    st = cv_shard_open(data, rank, world, SCORE_BATCH, &s->shard, err);
    const struct cv_dataset_info *d = st == CV_OK ? cv_shard_info(s->shard) : NULL;
    int in = cv_model_inputs(s->model), k = cv_model_outputs(s->model);
    if (st == CV_OK)
        st = cv_eval_check_model(data, d, s->model, err);
    if (st == CV_OK)
        st = cv_dataset_class_names(data, d->classes, &s->names, err);
    if (st != CV_OK)
        return st;
    size_t rows = (size_t)cv_shard_rows(s->shard);
    s->xbuf = cv_calloc((size_t)SCORE_BATCH * (size_t)in, sizeof(float));
    s->probs = cv_calloc((rows ? rows : 1) * (size_t)k, sizeof(float));
    if (!s->xbuf || !s->probs)
        return cv_fail(err, CV_NOMEM, "out of memory for %zu predictions", rows);
    cv_predict_shard(s->model, s->shard, s->xbuf, s->probs);
    return CV_OK;
}

cv_status cv_scored_metrics(const struct cv_scored *s, struct cv_metrics *mt, struct cv_error *err)
{
    int classes = cv_shard_info(s->shard)->classes;
    cv_status st = cv_metrics_init(mt, s->cfg->model.loss, classes, cv_model_outputs(s->model),
                                   err);
    if (st != CV_OK)
        return st;
    mt->names = (const char *const *)s->names;
    return cv_metrics_add(mt, s->probs, cv_shard_labels(s->shard), cv_shard_targets(s->shard),
                          cv_shard_rows(s->shard), err);
}

void cv_scored_close(struct cv_scored *s)
{
    cv_model_free(s->model);
    cv_config_free(s->cfg);
    cv_shard_free(s->shard);
    free(s->xbuf);
    free(s->probs);
    free(s->names);
    *s = (struct cv_scored){0};
}
