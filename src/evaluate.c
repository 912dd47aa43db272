/*
 * evaluate.c - shard predictions and metrics from probabilities.  Macro
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
    bool ok_vec = d->classes == 0 && d->target_dim == outputs;
    bool ok_cls = d->classes > 0 && (d->classes == outputs || (loss != CV_LOSS_SOFTMAX_CE &&
                                                               outputs == 1 && d->classes <= 2));
    if (d->n_rows < 1)
        return cv_fail(err, CV_FORMAT, "%s: no rows (a split needs at least one)", spec);
    if (d->features != inputs)
        return cv_fail(err, CV_SHAPE, "%s: %d features per row, but model.input describes %d", spec,
                       d->features, inputs);
    if (loss == CV_LOSS_SOFTMAX_CE && d->classes != outputs)
        return cv_fail(err, CV_SHAPE,
                       "%s: %d classes, but the last layer has %d outputs (softmax_cross_entropy "
                       "needs one output per class)",
                       spec, d->classes, outputs);
    if (!ok_vec && !ok_cls)
        return cv_fail(err, CV_SHAPE, "%s: targets (%d classes, %d columns) do not fit %d outputs",
                       spec, d->classes, d->target_dim, outputs);
    return CV_OK;
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

cv_status cv_metrics_init(struct cv_metrics *mt, enum cv_loss kind, int classes, int outputs,
                          struct cv_error *err)
{
    memset(mt, 0, sizeof(*mt));
    mt->loss_kind = kind;
    mt->classes = classes < 2 ? 2 : classes;
    mt->outputs = outputs;
    mt->confusion = cv_calloc((size_t)mt->classes * (size_t)mt->classes, sizeof(long long));
    if (!mt->confusion)
        return cv_fail(err, CV_NOMEM, "out of memory for a %d-class confusion matrix", classes);
    return CV_OK;
}

void cv_metrics_deinit(struct cv_metrics *mt)
{
    free(mt->confusion);
    mt->confusion = NULL;
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

void cv_metrics_add(struct cv_metrics *mt, const float *probs, const int32_t *y, const float *y_vec,
                    long long n)
{
    int k = mt->outputs;
    for (long long i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * (size_t)k;
        mt->loss_sum += row_loss(mt, p, y, y_vec, i);
        if (y) {
            int pred = cv_predicted_class(p, k);
            if (y[i] >= 0 && y[i] < mt->classes && pred < mt->classes)
                mt->confusion[(size_t)y[i] * (size_t)mt->classes + (size_t)pred]++;
        }
    }
    mt->count += n;
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
        p_sum += p;
        r_sum += r;
        f_sum += p + r > 0 ? 2 * p * r / (p + r) : 0;
        hits += tp;
        total += row;
    }
    mt->loss = mt->count ? mt->loss_sum / (double)mt->count : NAN;
    mt->accuracy = total ? (double)hits / (double)total : NAN;
    mt->precision = p_sum / c;
    mt->recall = r_sum / c;
    mt->f1 = f_sum / c;
}

#define SUM_PIECE ((size_t)1 << 30)

cv_status cv_metrics_finish(struct cv_metrics *mt, const cv_comm *comm, struct cv_error *err)
{
    size_t cc = (size_t)mt->classes * (size_t)mt->classes;
    double *v = cv_calloc(cc + 2, sizeof(double));
    cv_status st = v ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
    st = comm ? cv_comm_agree(comm, st, err) : st;
    if (st != CV_OK) {
        free(v);
        return st;
    }
    for (size_t i = 0; i < cc; i++) /* counts stay exact in double below 2^53 */
        v[i] = (double)mt->confusion[i];
    v[cc] = mt->loss_sum;
    v[cc + 1] = (double)mt->count;
    /* classes^2 + 2 passes INT_MAX from 46,341 classes: sum in int-sized pieces */
    for (size_t off = 0; comm && st == CV_OK && off < cc + 2; off += SUM_PIECE) {
        size_t k = cc + 2 - off < SUM_PIECE ? cc + 2 - off : SUM_PIECE;
        st = cv_comm_sum_doubles(comm, v + off, (int)k, err);
    }
    for (size_t i = 0; i < cc; i++)
        mt->confusion[i] = (long long)v[i];
    mt->loss_sum = v[cc];
    mt->count = (long long)v[cc + 1];
    free(v);
    compute_figures(mt);
    return st;
}

static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, "\"%s\":%.6g", key, v);
    else
        fprintf(f, "\"%s\":null", key);
}

void cv_metrics_json(const struct cv_metrics *mt, FILE *f)
{
    fprintf(f, "{\"count\":%lld,", mt->count);
    json_num(f, "loss", mt->loss);
    fputc(',', f);
    json_num(f, "accuracy", mt->accuracy);
    fputc(',', f);
    json_num(f, "precision", mt->precision);
    fputc(',', f);
    json_num(f, "recall", mt->recall);
    fputc(',', f);
    json_num(f, "f1", mt->f1);
    fprintf(f, ",\"confusion\":[");
    for (int i = 0; i < mt->classes; i++) {
        fprintf(f, "%s[", i ? "," : "");
        for (int j = 0; j < mt->classes; j++)
            fprintf(f, "%s%lld", j ? "," : "", mt->confusion[(size_t)i * mt->classes + j]);
        fputc(']', f);
    }
    fprintf(f, "]}");
}

void cv_metrics_print(const struct cv_metrics *mt, FILE *f)
{
    fprintf(f,
            "rows %lld  loss %.4f  accuracy %.4f  precision %.4f  recall %.4f  F1 %.4f (macro)\n",
            mt->count, mt->loss, mt->accuracy, mt->precision, mt->recall, mt->f1);
    fprintf(f, "confusion (rows: true class, columns: predicted)\n");
    for (int i = 0; i < mt->classes; i++) {
        fprintf(f, "  %3d |", i);
        for (int j = 0; j < mt->classes; j++)
            fprintf(f, " %6lld", mt->confusion[(size_t)i * mt->classes + j]);
        fputc('\n', f);
    }
}
