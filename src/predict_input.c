/*
 * predict_input.c - the rows `predict` and `ensemble predict` score: an
 * HDF5 split with or without /y, a CSV of features (csv_read.c), or a
 * folder of images (import_images.c), each rank keeping its contiguous
 * block of rows, and their predictions with the model's normalisation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caviar/dataset.h"
#include "caviar/evaluate.h"
#include "caviar/predictions.h"
#include "caviar/shard.h"
#include "image_internal.h"
#include "import_internal.h"
#include "util.h"

cv_status cv_pred_model_names(const cv_model *m, char ***names, struct cv_error *err)
{
    const struct cv_config *cfg = cv_model_config(m);
    int classes = cv_model_classes(m), n;
    const char *const *stored = cv_model_class_names(m, &n);
    struct cv_dataset_info d;
    struct cv_error ignored;
    *names = NULL;
    if (stored && n == classes) {
        *names = cv_strings_copy(stored, n);
        return *names ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory for class names");
    }
    /* an older model: its training data's, unless that has moved since */
    if (cv_dataset_probe(cfg->data.train, &d, &ignored) != CV_OK || d.classes != classes)
        return CV_OK;
    cv_status st = cv_dataset_class_names(cfg->data.train, classes, names, &ignored);
    return st == CV_NOMEM ? cv_fail(err, CV_NOMEM, "out of memory for class names") : CV_OK;
}

void cv_pred_image_defaults(const struct cv_config *cfg, struct cv_image_opts *io)
{
    const int *in = cfg->model.input;
    struct cv_dataset_info d;
    struct cv_error ignored;
    int shape[3] = {3, 0, 0};
    if (cfg->model.input_rank == 3)
        memcpy(shape, in, sizeof(shape));
    else if (cv_dataset_probe(cfg->data.train, &d, &ignored) == CV_OK && d.shape[1] > 1)
        memcpy(shape, d.shape, sizeof(shape));
    if (!io->channels)
        io->channels = shape[0] == 1 ? 1 : 3;
    if (!io->height && !io->width)
        io->height = shape[1], io->width = shape[2];
}

/* This rank's rows of in->total, in contiguous blocks as shards take them. */
static void rank_block(struct cv_pred_input *in, int rank, int world)
{
    in->first = 0;
    for (int r = 0; r < rank; r++)
        in->first += cv_sched_rows(in->total, r, world);
    in->n = cv_sched_rows(in->total, rank, world);
}

/* Keep only this rank's rows (CSV and folders are read whole). */
static void keep_block(struct cv_pred_input *in, int rank, int world)
{
    rank_block(in, rank, world);
    size_t f = (size_t)in->features;
    if (in->n > 0 && in->first > 0)
        memmove(in->x, in->x + (size_t)in->first * f, (size_t)in->n * f * sizeof(float));
    if (in->label && in->n > 0 && in->first > 0)
        memmove(in->label, in->label + in->first, (size_t)in->n * sizeof(int32_t));
}

static cv_status open_h5(const char *spec, int rank, int world, struct cv_pred_input *in,
                         struct cv_error *err)
{
    struct cv_dataset_info d;
    bool labeled;
    cv_status st = cv_dataset_probe_features(spec, &d, &labeled, err);
    if (st != CV_OK)
        return st;
    in->total = d.n_rows;
    in->features = d.features;
    /* float targets are not labels; per-step targets (a language model's
     * next tokens) are not one label per row: the probabilities are written */
    in->classes = labeled && !d.y_steps ? d.classes : 0;
    rank_block(in, rank, world);
    size_t n = (size_t)(in->n ? in->n : 1);
    in->x = cv_calloc_big(n * (size_t)d.features, sizeof(float));
    in->label = in->classes ? cv_calloc(n, sizeof(int32_t)) : NULL;
    in->lengths = d.steps ? cv_calloc(n, sizeof(int32_t)) : NULL;
    if (!in->x || (in->classes && !in->label) || (d.steps && !in->lengths))
        return cv_fail(err, CV_NOMEM, "out of memory for %lld rows of %s", in->n, spec);
    if (in->classes)
        st = cv_dataset_read_rows(spec, in->first, in->n, in->x, in->label, NULL, err);
    else
        st = cv_dataset_read_features(spec, in->first, in->n, in->x, err);
    if (st == CV_OK && d.steps) /* a sequence's last valid step, not its padding */
        st = cv_dataset_read_lengths(spec, in->first, in->n, in->lengths, err);
    return st;
}

/* CSV labels as class ids: integers >= 0 (names were mapped by the reader). */
static cv_status csv_labels(struct cv__csv *t, int n_names, struct cv_pred_input *in,
                            const char *path, struct cv_error *err)
{
    int mx = 0;
    if (!(in->label = cv_calloc((size_t)t->rows, sizeof(int32_t))))
        return cv_fail(err, CV_NOMEM, "out of memory reading %s", path);
    for (long long i = 0; i < t->rows; i++) {
        float v = t->y[i];
        if (v < 0 || v != (float)(int32_t)v || v > 1e6f)
            return cv_fail(err, CV_FORMAT, "%s: data row %lld: label %g is not a class id", path,
                           i + 1, v);
        in->label[i] = (int32_t)v;
        mx = in->label[i] > mx ? in->label[i] : mx;
    }
    /* ids: any subset of the model's classes may occur (checked then) */
    in->ids_only = !t->named;
    in->classes = !t->named ? mx + 1 : n_names ? n_names : t->n_names;
    return CV_OK;
}

static cv_status open_csv(const char *path, const struct cv_pred_opts *o, const char *const *names,
                          int n_names, struct cv_pred_input *in, struct cv_error *err)
{
    struct cv__csv_opts co = {o->label_column, o->header, false, o->missing, names, n_names};
    struct cv__csv t;
    cv_status st = cv__csv_read(path, &co, &t, err);
    if (st == CV_OK && t.label >= 0)
        st = csv_labels(&t, n_names, in, path, err);
    if (st == CV_OK) {
        in->total = t.rows;
        in->features = t.features;
        in->x = t.x; /* moved */
        t.x = NULL;
    }
    cv__csv_free(&t);
    return st;
}

static cv_status open_images(const char *dir, const struct cv_pred_opts *o,
                             const char *const *names, int n_names, struct cv_pred_input *in,
                             struct cv_error *err)
{
    struct cv__image_set set;
    cv_status st = cv__images_read(dir, &o->image, true, names, n_names, &set, err);
    size_t f = (size_t)set.shape[0] * (size_t)set.shape[1] * (size_t)set.shape[2];
    if (st == CV_OK && !(in->x = cv_calloc_big((size_t)set.n * f, sizeof(float))))
        st = cv_fail(err, CV_NOMEM, "out of memory for %lld images", set.n);
    if (st == CV_OK) {
        const float scale = 1.0f / 255.0f; /* as an imported file's uint8 rows read */
        for (size_t i = 0; i < (size_t)set.n * f; i++)
            in->x[i] = (float)set.x[i] * scale;
        in->total = set.n;
        in->features = (int)f;
        in->classes = set.y ? set.classes : 0;
        in->label = set.y; /* moved */
        set.y = NULL;
    }
    cv__images_free(&set);
    return st;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

cv_status cv_pred_input_open(const char *spec, const struct cv_pred_opts *o,
                             const char *const *names, int n_names, int rank, int world,
                             struct cv_pred_input *in, struct cv_error *err)
{
    struct stat sb;
    *in = (struct cv_pred_input){0};
    snprintf(in->spec, sizeof(in->spec), "%s", spec);
    bool dir = stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (!dir && !ends_with(spec, ".csv"))
        return open_h5(spec, rank, world, in, err);
    cv_status st = dir ? open_images(spec, o, names, n_names, in, err)
                       : open_csv(spec, o, names, n_names, in, err);
    if (st == CV_OK)
        keep_block(in, rank, world);
    return st;
}

cv_status cv_pred_input_check(const struct cv_pred_input *in, int inputs, int outputs,
                              enum cv_loss loss, struct cv_error *err)
{
    if (in->ids_only && in->classes > outputs)
        return cv_fail(err, CV_SHAPE, "%s: label %d, but the model has %d outputs", in->spec,
                       in->classes - 1, outputs);
    /* rows without labels (or with ids checked above) fit any output count:
     * checked as if one class an output */
    struct cv_dataset_info d = {.n_rows = in->total,
                                .features = in->features,
                                .classes = in->classes && !in->ids_only ? in->classes : outputs,
                                .target_dim = 1};
    return cv_eval_check_split(in->spec, &d, inputs, outputs, loss, err);
}

void cv_pred_input_close(struct cv_pred_input *in)
{
    free(in->x);
    free(in->label);
    free(in->lengths);
    *in = (struct cv_pred_input){0};
}

void cv_predict_rows(cv_model *m, const float *x, const int32_t *lengths, long long n, float *xbuf,
                     float *probs)
{
    int mb = cv_model_max_batch(m), f = cv_model_inputs(m), k = cv_model_outputs(m);
    const float *mean = cv_model_norm_mean(m), *sd = cv_model_norm_std(m);
    for (long long first = 0; first < n; first += mb) {
        int cnt = (int)(n - first < mb ? n - first : mb);
        const float *rows = x + (size_t)first * (size_t)f;
        for (size_t i = 0; i < (size_t)cnt * (size_t)f; i++)
            xbuf[i] = mean ? (rows[i] - mean[i % (size_t)f]) / sd[i % (size_t)f] : rows[i];
        struct cv_batch b = {.n = cnt, .x = xbuf, .lengths = lengths ? lengths + first : NULL};
        cv_model_predict(m, &b, probs + (size_t)first * (size_t)k, NULL);
    }
}
