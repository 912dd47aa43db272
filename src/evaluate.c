/*
 * evaluate.c - shard predictions, whether data fits a model, and the
 * metrics of classification and binary tasks (metrics_vec.c has the
 * others, metrics_json.c their output) from probabilities.  Macro
 * precision/recall/F1 average the per-class figures over classes; a class
 * that is never predicted (or never present) contributes 0 precision (or
 * recall), as scikit-learn does with zero_division=0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/evaluate.h"
#include "util.h"

cv_status cv_eval_check_split(const char *spec, const struct cv_dataset_info *d, int inputs,
                              int outputs, enum cv_loss loss, struct cv_error *err)
{
    long long per_row = (long long)d->classes * (d->y_steps > 0 ? d->y_steps : 1);
    bool ok_vec = d->classes == 0 && d->target_dim == outputs;
    bool ok_cls = d->classes > 0 &&
                  (per_row == outputs ||
                   (loss != CV_LOSS_SOFTMAX_CE && !d->y_steps && outputs == 1 && d->classes <= 2));
    if (d->n_rows < 1)
        return cv_fail(err, CV_FORMAT, "%s: no rows (a split needs at least one)", spec);
    if (d->features != inputs)
        return cv_fail(err, CV_SHAPE, "%s: %d features per row, but model.input describes %d", spec,
                       d->features, inputs);
    if (d->y_steps > 0 && per_row != outputs)
        return cv_fail(err, CV_SHAPE,
                       "%s: /y holds %d classes at each of %d steps, but the model outputs %d "
                       "values per sample (a per-step head: %d steps x %d classes)",
                       spec, d->classes, d->y_steps, outputs, d->y_steps, d->classes);
    if (loss == CV_LOSS_SOFTMAX_CE && per_row != outputs)
        return cv_fail(err, CV_SHAPE,
                       "%s: %d classes, but the last layer has %d outputs (softmax_cross_entropy "
                       "needs one output per class)",
                       spec, d->classes, outputs);
    if (!ok_vec && !ok_cls)
        return cv_fail(err, CV_SHAPE, "%s: targets (%d classes, %d columns) do not fit %d outputs",
                       spec, d->classes, d->target_dim, outputs);
    return CV_OK;
}

/* Sequences: per-step targets need a sequence output of as many steps,
 * per-row targets a non-sequence one; token ids need an embedding whose
 * vocab holds them. */
static cv_status check_sequence(const char *spec, const struct cv_dataset_info *d,
                                const cv_model *m, struct cv_error *err)
{
    int steps = cv_model_output_steps(m), vocab = cv_model_vocab(m);
    if (d->y_steps > 0 && steps != d->y_steps)
        return cv_fail(err, CV_SHAPE,
                       "%s: /y holds one class per step (%d steps), but the model's output %s%d "
                       "steps (a per-step head needs return_sequences: true on the last "
                       "recurrent layer)",
                       spec, d->y_steps, steps ? "has " : "is the last step, not a sequence of ",
                       steps ? steps : d->y_steps);
    if (d->y_steps == 0 && d->classes > 0 && steps > 0)
        return cv_fail(err, CV_SHAPE,
                       "%s: /y holds one class per row, but the model outputs a sequence of %d "
                       "steps (set return_sequences: false on the last recurrent layer)",
                       spec, steps);
    if (d->vocab_size > 0 && (vocab == 0 || d->vocab_size > vocab))
        return cv_fail(err, CV_SHAPE, "%s: /X holds token ids below vocab_size %d, but %s", spec,
                       d->vocab_size,
                       vocab ? "the embedding's vocab is smaller"
                             : "the first layer is not an embedding");
    if (d->vocab_size == 0 && vocab > 0)
        return cv_fail(err, CV_SHAPE,
                       "%s: /X holds features, but the first layer (embedding) reads token ids",
                       spec);
    return CV_OK;
}

cv_status cv_eval_check_model(const char *spec, const struct cv_dataset_info *d, const cv_model *m,
                              struct cv_error *err)
{
    /* the sequence checks first: their messages say what to change */
    cv_status st = check_sequence(spec, d, m, err);
    return st == CV_OK ? cv_eval_check_split(spec, d, cv_model_inputs(m), cv_model_outputs(m),
                                             cv_model_config(m)->model.loss, err)
                       : st;
}

cv_status cv_eval_probe_split(const char *spec, int inputs, int outputs, enum cv_loss loss,
                              struct cv_error *err)
{
    struct cv_dataset_info d;
    cv_status st = cv_dataset_probe(spec, &d, err);
    return st == CV_OK ? cv_eval_check_split(spec, &d, inputs, outputs, loss, err) : st;
}

void cv_predict_shard(cv_model *m, cv_shard *sh, float *xbuf, float *probs)
{
    int mb = cv_model_max_batch(m), f = cv_model_inputs(m), k = cv_model_outputs(m);
    const float *mean = cv_model_norm_mean(m), *sd = cv_model_norm_std(m);
    long long n = cv_shard_rows(sh);
    for (long long first = 0; first < n; first += mb) {
        struct cv_batch b;
        int cnt = (int)(n - first < mb ? n - first : mb);
        cv_shard_slice(sh, first, cnt, &b);
        for (size_t i = 0; i < (size_t)cnt; i++)
            for (int j = 0; j < f; j++) {
                float v = b.x[i * (size_t)f + j];
                xbuf[i * (size_t)f + j] = mean ? (v - mean[j]) / sd[j] : v;
            }
        b.x = xbuf;
        cv_model_predict(m, &b, probs + (size_t)first * (size_t)k, NULL);
    }
}

enum cv_task cv_metrics_task(enum cv_loss loss, int classes, int outputs)
{
    if (classes == 0)
        return loss == CV_LOSS_BCE ? CV_TASK_MULTILABEL : CV_TASK_REGRESSION;
    return outputs == 1 ? CV_TASK_BINARY : CV_TASK_CLASSIFICATION;
}

const char *cv_task_name(enum cv_task t)
{
    static const char *const names[] = {"classification", "binary", "multilabel", "regression"};
    return names[t];
}

cv_status cv_metrics_init(struct cv_metrics *mt, enum cv_loss kind, int classes, int outputs,
                          struct cv_error *err)
{
    memset(mt, 0, sizeof(*mt));
    mt->steps = 1;
    if (kind == CV_LOSS_SOFTMAX_CE && classes >= 2 && outputs > classes && outputs % classes == 0)
        mt->steps = outputs / classes, outputs = classes; /* one prediction per step */
    mt->task = cv_metrics_task(kind, classes, outputs);
    mt->loss_kind = kind;
    mt->classes = classes < 2 ? 2 : classes;
    mt->outputs = outputs;
    size_t c = (size_t)mt->classes, k = (size_t)outputs;
    mt->confusion = cv_calloc(c * c, sizeof(long long));
    mt->per_class = cv_calloc(c * 4, sizeof(double));
    mt->col = cv_calloc(k * 4, sizeof(double));
    mt->per_col = cv_calloc(k * 4, sizeof(double));
    if (!mt->confusion || !mt->per_class || !mt->col || !mt->per_col) {
        cv_metrics_deinit(mt);
        return cv_fail(err, CV_NOMEM, "out of memory for the metrics of %d classes, %d outputs",
                       classes, outputs);
    }
    return CV_OK;
}

const char *cv_figure_name(int i)
{
#define CV_FIGURE_NAME(id, name, field) name,
    static const char *const names[] = {CV_FIGURES(CV_FIGURE_NAME)};
#undef CV_FIGURE_NAME
    return (unsigned)i < CV_FIG_COUNT ? names[i] : "?";
}

double cv_metrics_figure(const struct cv_metrics *mt, int i)
{
    switch ((enum cv_figure)i) {
#define CV_FIGURE_CASE(id, name, field)                                                            \
    case CV_FIG_##id:                                                                              \
        return mt->field;
        CV_FIGURES(CV_FIGURE_CASE)
#undef CV_FIGURE_CASE
    case CV_FIG_COUNT:
        break;
    }
    return NAN;
}

void cv_metrics_reset(struct cv_metrics *mt)
{
    size_t c = (size_t)mt->classes, k = (size_t)mt->outputs;
    memset(mt->confusion, 0, c * c * sizeof(long long));
    memset(mt->col, 0, 4 * k * sizeof(double));
    mt->count = mt->topk_hits = mt->subset_hits = mt->n_scores = 0;
    mt->loss_sum = 0;
}

void cv_metrics_deinit(struct cv_metrics *mt)
{
    free(mt->confusion);
    free(mt->per_class);
    free(mt->col);
    free(mt->per_col);
    free(mt->scores);
    mt->confusion = NULL;
    mt->per_class = mt->col = mt->per_col = NULL;
    mt->scores = NULL;
}

int cv_predicted_class(const float *p, int k)
{
    if (k == 1)
        return p[0] > 0.5f;
    int best = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[best])
            best = j;
    return best;
}

static double row_loss(const struct cv_metrics *mt, const float *p, const int32_t *y,
                       const float *yv, long long i)
{
    int k = mt->outputs;
    double s = 0;
    if (mt->loss_kind == CV_LOSS_SOFTMAX_CE && y)
        return -log(fmax(p[y[i]], 1e-12));
    for (int j = 0; j < k; j++) {
        double t = yv ? yv[i * k + j] : (k == 1 ? (double)y[i] : (double)(y[i] == j));
        double q = fmin(fmax(p[j], 1e-12), 1 - 1e-12);
        if (mt->loss_kind == CV_LOSS_MSE)
            s += 0.5 * (p[j] - t) * (p[j] - t);
        else
            s -= t * log(q) + (1 - t) * log(1 - q);
    }
    return s;
}

/* Rows whose class is among the CV_TOPK highest (ties count against). */
static bool in_top_k(const float *p, int k, int y)
{
    int above = 0;
    for (int j = 0; j < k; j++)
        above += p[j] > p[y];
    return above < CV_TOPK;
}

static cv_status keep_scores(struct cv_metrics *mt, const float *probs, const int32_t *y,
                             long long n, struct cv_error *err)
{
    if (mt->n_scores + n > mt->cap_scores) {
        long long cap = 2 * (mt->n_scores + n);
        float *grown = realloc(mt->scores, (size_t)cap * 2 * sizeof(float));
        if (!grown)
            return cv_fail(err, CV_NOMEM, "out of memory for %lld scores", cap);
        mt->scores = grown;
        mt->cap_scores = cap;
    }
    for (long long i = 0; i < n; i++) {
        mt->scores[2 * (mt->n_scores + i)] = probs[i];
        mt->scores[2 * (mt->n_scores + i) + 1] = (float)y[i];
    }
    mt->n_scores += n;
    return CV_OK;
}

static void add_classes(struct cv_metrics *mt, const float *probs, const int32_t *y, long long n)
{
    int k = mt->outputs;
    for (long long i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * (size_t)k;
        int pred = cv_predicted_class(p, k);
        if (y[i] >= 0 && y[i] < mt->classes && pred < mt->classes)
            mt->confusion[(size_t)y[i] * (size_t)mt->classes + (size_t)pred]++;
        if (k > CV_TOPK && y[i] >= 0 && y[i] < k)
            mt->topk_hits += in_top_k(p, k, y[i]);
    }
}

cv_status cv_metrics_add(struct cv_metrics *mt, const float *probs, const int32_t *y,
                         const float *y_vec, long long n, struct cv_error *err)
{
    int k = mt->outputs;
    if (mt->steps > 1 && y) { /* each valid step is a row; padded ones are -1 */
        for (long long i = 0; i < n * mt->steps; i++)
            if (y[i] >= 0) {
                mt->loss_sum += row_loss(mt, probs + (size_t)i * (size_t)k, y, NULL, i);
                mt->count++;
            }
        add_classes(mt, probs, y, n * mt->steps);
        return CV_OK;
    }
    for (long long i = 0; i < n; i++)
        mt->loss_sum += row_loss(mt, probs + (size_t)i * (size_t)k, y, y_vec, i);
    mt->count += n;
    if (y)
        add_classes(mt, probs, y, n);
    else if (y_vec)
        cv__metrics_add_vec(mt, probs, y_vec, n);
    if (y && mt->task == CV_TASK_BINARY)
        return keep_scores(mt, probs, y, n, err);
    return CV_OK;
}

static void compute_figures(struct cv_metrics *mt)
{
    int c = mt->classes;
    long long hits = 0, total = 0;
    double p_sum = 0, r_sum = 0, f_sum = 0;
    for (int i = 0; i < c; i++) {
        long long tp = mt->confusion[(size_t)i * c + i], col = 0, row = 0;
        for (int j = 0; j < c; j++) {
            col += mt->confusion[(size_t)j * c + i];
            row += mt->confusion[(size_t)i * c + j];
        }
        double p = col ? (double)tp / (double)col : 0, r = row ? (double)tp / (double)row : 0;
        double f = p + r > 0 ? 2 * p * r / (p + r) : 0;
        double *pc = mt->per_class + 4 * (size_t)i;
        pc[0] = p;
        pc[1] = r;
        pc[2] = f;
        pc[3] = (double)row;
        p_sum += p;
        r_sum += r;
        f_sum += f;
        hits += tp;
        total += row;
    }
    mt->loss = mt->count ? mt->loss_sum / (double)mt->count : NAN;
    mt->accuracy = total ? (double)hits / (double)total : NAN;
    mt->precision = p_sum / c;
    mt->recall = r_sum / c;
    mt->f1 = f_sum / c;
    mt->top_k = mt->outputs > CV_TOPK && total ? (double)mt->topk_hits / (double)total : NAN;
}

static void no_figures(struct cv_metrics *mt)
{
    mt->accuracy = mt->precision = mt->recall = mt->f1 = mt->top_k = mt->roc_auc = NAN;
    mt->micro_f1 = mt->hamming = mt->subset_accuracy = mt->mae = mt->rmse = mt->r2 = NAN;
}

/* The sums every rank adds: confusion, per-output sums, and the scalars
 * (loss, count, top-k hits, exact multi-label rows). */
static void pack(const struct cv_metrics *mt, double *v, size_t cc, size_t kc, bool in)
{
    for (size_t i = 0; i < cc; i++) /* counts stay exact in double below 2^53 */
        if (in)
            v[i] = (double)mt->confusion[i];
        else
            mt->confusion[i] = (long long)v[i];
    for (size_t i = 0; i < kc; i++)
        if (in)
            v[cc + i] = mt->col[i];
        else
            mt->col[i] = v[cc + i];
}

#define SUM_PIECE ((size_t)1 << 30)

cv_status cv_metrics_finish(struct cv_metrics *mt, const cv_comm *comm, struct cv_error *err)
{
    size_t cc = (size_t)mt->classes * (size_t)mt->classes, kc = 4 * (size_t)mt->outputs;
    double *v = cv_calloc(cc + kc + 4, sizeof(double));
    cv_status st = v ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
    st = comm ? cv_comm_agree(comm, st, err) : st;
    if (st != CV_OK) {
        free(v);
        return st;
    }
    pack(mt, v, cc, kc, true);
    double *s = v + cc + kc;
    s[0] = mt->loss_sum;
    s[1] = (double)mt->count;
    s[2] = (double)mt->topk_hits;
    s[3] = (double)mt->subset_hits;
    /* classes^2 passes INT_MAX from 46,341 classes: sum in int-sized pieces */
    for (size_t off = 0; comm && st == CV_OK && off < cc + kc + 4; off += SUM_PIECE) {
        size_t k = cc + kc + 4 - off < SUM_PIECE ? cc + kc + 4 - off : SUM_PIECE;
        st = cv_comm_sum_doubles(comm, v + off, (int)k, err);
    }
    pack(mt, v, cc, kc, false);
    mt->loss_sum = s[0];
    mt->count = (long long)s[1];
    mt->topk_hits = (long long)s[2];
    mt->subset_hits = (long long)s[3];
    free(v);
    no_figures(mt);
    if (mt->task == CV_TASK_CLASSIFICATION || mt->task == CV_TASK_BINARY)
        compute_figures(mt);
    else
        cv__metrics_vec_figures(mt);
    mt->loss = mt->count ? mt->loss_sum / (double)mt->count : NAN;
    if (st == CV_OK && mt->task == CV_TASK_BINARY)
        st = cv__metrics_auc(mt, comm, err);
    return st;
}
