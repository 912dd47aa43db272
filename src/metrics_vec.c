/*
 * metrics_vec.c - the figures of float targets and of binary scores:
 * multi-label (a label is on when its probability, or target, is above
 * 0.5: per-label precision / recall / F1, micro and macro F1, Hamming loss,
 * subset accuracy), regression (MAE, RMSE, R^2 per output, averaged over
 * outputs as scikit-learn's multioutput="uniform_average" does) and the
 * ROC AUC of a binary task.  Definitions and their scikit-learn
 * equivalents: docs/metrics.md.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/evaluate.h"
#include "util.h"

static void add_labels(struct cv_metrics *mt, const float *probs, const float *y, long long n)
{
    int k = mt->outputs;
    for (long long i = 0; i < n; i++) {
        bool exact = true;
        for (int j = 0; j < k; j++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            bool p = probs[at] > 0.5f, t = y[at] > 0.5f;
            /* col (k, 4): tp, fp, fn, tn */
            mt->col[4 * (size_t)j + (p ? (t ? 0 : 1) : (t ? 2 : 3))] += 1;
            exact = exact && p == t;
        }
        mt->subset_hits += exact;
    }
}

static void add_values(struct cv_metrics *mt, const float *probs, const float *y, long long n)
{
    int k = mt->outputs;
    for (long long i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            double e = (double)probs[at] - (double)y[at], t = y[at];
            double *c = mt->col + 4 * (size_t)j; /* sum |e|, sum e^2, sum y, sum y^2 */
            c[0] += fabs(e);
            c[1] += e * e;
            c[2] += t;
            c[3] += t * t;
        }
}

void cv__metrics_add_vec(struct cv_metrics *mt, const float *probs, const float *y_vec, long long n)
{
    if (mt->task == CV_TASK_MULTILABEL)
        add_labels(mt, probs, y_vec, n);
    else
        add_values(mt, probs, y_vec, n);
}

static void label_figures(struct cv_metrics *mt)
{
    int k = mt->outputs;
    double tp = 0, fp = 0, fn = 0, p_sum = 0, r_sum = 0, f_sum = 0;
    for (int j = 0; j < k; j++) {
        const double *c = mt->col + 4 * (size_t)j;
        double *o = mt->per_col + 4 * (size_t)j;
        o[0] = c[0] + c[1] > 0 ? c[0] / (c[0] + c[1]) : 0; /* zero_division=0 */
        o[1] = c[0] + c[2] > 0 ? c[0] / (c[0] + c[2]) : 0;
        o[2] = 2 * c[0] + c[1] + c[2] > 0 ? 2 * c[0] / (2 * c[0] + c[1] + c[2]) : 0;
        o[3] = c[0] + c[2];
        p_sum += o[0];
        r_sum += o[1];
        f_sum += o[2];
        tp += c[0];
        fp += c[1];
        fn += c[2];
    }
    double n = (double)mt->count;
    mt->precision = p_sum / k;
    mt->recall = r_sum / k;
    mt->f1 = f_sum / k;
    mt->micro_f1 = 2 * tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0;
    mt->hamming = n > 0 ? (fp + fn) / (n * k) : NAN;
    mt->subset_accuracy = n > 0 ? (double)mt->subset_hits / n : NAN;
}

/* R^2 of one output; a constant target gives 1 when predicted exactly,
 * else 0 (scikit-learn's force_finite). */
static double r2_of(double sse, double sum, double sum_sq, double n)
{
    double sst = sum_sq - sum * sum / n;
    if (sst <= 1e-12 * (sum_sq > 1 ? sum_sq : 1))
        return sse == 0 ? 1 : 0;
    return 1 - sse / sst;
}

static void value_figures(struct cv_metrics *mt)
{
    int k = mt->outputs;
    double n = (double)mt->count, mae = 0, rmse = 0, r2 = 0;
    if (n <= 0)
        return;
    for (int j = 0; j < k; j++) {
        const double *c = mt->col + 4 * (size_t)j;
        double *o = mt->per_col + 4 * (size_t)j;
        o[0] = c[0] / n;
        o[1] = sqrt(c[1] / n);
        o[2] = r2_of(c[1], c[2], c[3], n);
        mae += o[0];
        rmse += o[1];
        r2 += o[2];
    }
    mt->mae = mae / k;
    mt->rmse = rmse / k;
    mt->r2 = r2 / k;
}

void cv__metrics_vec_figures(struct cv_metrics *mt)
{
    if (mt->task == CV_TASK_MULTILABEL)
        label_figures(mt);
    else
        value_figures(mt);
}

/* ---- ROC AUC ---- */

static int by_score(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The Mann-Whitney statistic: the probability that a positive scores above
 * a negative, ties counting one half (ranks averaged over tied scores). */
static double auc_of(float *pairs, long long n)
{
    qsort(pairs, (size_t)n, 2 * sizeof(float), by_score);
    double pos = 0, rank_sum = 0;
    for (long long i = 0; i < n;) {
        long long j = i;
        double tied_pos = 0;
        while (j < n && pairs[2 * j] == pairs[2 * i])
            tied_pos += pairs[2 * j++ + 1] > 0.5f;
        rank_sum += tied_pos * (double)(i + 1 + j) / 2; /* mean rank of i+1..j */
        pos += tied_pos;
        i = j;
    }
    double neg = (double)n - pos;
    if (pos == 0 || neg == 0)
        return NAN; /* undefined with one class only */
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

cv_status cv__metrics_auc(struct cv_metrics *mt, const cv_comm *comm, struct cv_error *err)
{
    long long n = mt->count;
    bool root = !comm || cv_comm_rank(comm) == 0;
    float *all = root ? cv_calloc(2 * (size_t)(n ? n : 1), sizeof(float)) : NULL;
    cv_status st = root && !all ? cv_fail(err, CV_NOMEM, "out of memory for %lld scores", n)
                                : CV_OK;
    if (comm)
        st = cv_comm_agree(comm, st, err);
    if (st == CV_OK && comm)
        st = cv_comm_gather_floats(comm, mt->scores, 2 * (size_t)mt->n_scores, all, 0, err);
    else if (st == CV_OK && n > 0)
        memcpy(all, mt->scores, 2 * (size_t)n * sizeof(float));
    double v = st == CV_OK && root ? auc_of(all, n) : 0;
    free(all);
    if (st == CV_OK && comm) /* only rank 0 has it: the sum hands it to every rank */
        st = cv_comm_sum_doubles(comm, &v, 1, err);
    mt->roc_auc = v;
    return st;
}
