/*
 * metrics_json.c - the metrics of evaluate.h as one JSON object (for
 * `eval --json`, reports and scripts) and as a human report.  A figure the
 * task does not have is left out of the JSON rather than written as null.
 */
#include <math.h>
#include <stdio.h>

#include "caviar/evaluate.h"

static void num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.9g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}

static void opt(FILE *f, const char *key, double v)
{
    if (!isnan(v))
        num(f, key, v);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* [{"name":..., "precision":..., "recall":..., "f1":..., "support":...}] */
static void rows_json(const struct cv_metrics *mt, const char *key, const double *t, int n, FILE *f)
{
    fprintf(f, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) {
        const double *r = t + 4 * (size_t)i;
        fprintf(f, "%s{\"name\":", i ? "," : "");
        if (mt->names)
            json_str(f, mt->names[i]);
        else
            fprintf(f, "\"%d\"", i);
        fprintf(f, ",\"precision\":%.9g,\"recall\":%.9g,\"f1\":%.9g,\"support\":%.0f}", r[0], r[1],
                r[2], r[3]);
    }
    fputc(']', f);
}

static void confusion_json(const struct cv_metrics *mt, FILE *f)
{
    fprintf(f, ",\"confusion\":[");
    for (int i = 0; i < mt->classes; i++) {
        fprintf(f, "%s[", i ? "," : "");
        for (int j = 0; j < mt->classes; j++)
            fprintf(f, "%s%lld", j ? "," : "", mt->confusion[(size_t)i * mt->classes + j]);
        fputc(']', f);
    }
    fputc(']', f);
}

static void regression_json(const struct cv_metrics *mt, FILE *f)
{
    fprintf(f, ",\"per_output\":[");
    for (int j = 0; j < mt->outputs; j++) {
        const double *o = mt->per_col + 4 * (size_t)j;
        fprintf(f, "%s{\"mae\":%.9g,\"rmse\":%.9g,\"r2\":%.9g}", j ? "," : "", o[0], o[1], o[2]);
    }
    fputc(']', f);
}

void cv_metrics_json(const struct cv_metrics *mt, FILE *f)
{
    fprintf(f, "{\"task\":\"%s\",\"count\":%lld", cv_task_name(mt->task), mt->count);
    num(f, "loss", mt->loss);
    opt(f, "accuracy", mt->accuracy);
    opt(f, "precision", mt->precision);
    opt(f, "recall", mt->recall);
    opt(f, "f1", mt->f1);
    opt(f, "top_k_accuracy", mt->top_k);
    if (mt->task == CV_TASK_BINARY)
        num(f, "roc_auc", mt->roc_auc);
    opt(f, "micro_f1", mt->micro_f1);
    opt(f, "hamming_loss", mt->hamming);
    opt(f, "subset_accuracy", mt->subset_accuracy);
    opt(f, "mae", mt->mae);
    opt(f, "rmse", mt->rmse);
    opt(f, "r2", mt->r2);
    if (mt->task == CV_TASK_CLASSIFICATION || mt->task == CV_TASK_BINARY) {
        if (!isnan(mt->top_k))
            fprintf(f, ",\"top_k\":%d", CV_TOPK);
        rows_json(mt, "per_class", mt->per_class, mt->classes, f);
        confusion_json(mt, f);
    } else if (mt->task == CV_TASK_MULTILABEL) {
        rows_json(mt, "per_label", mt->per_col, mt->outputs, f);
    } else {
        regression_json(mt, f);
    }
    fputc('}', f);
}

static const char *name_of(const struct cv_metrics *mt, int i, char *buf, size_t n)
{
    if (mt->names)
        return mt->names[i];
    snprintf(buf, n, "%d", i);
    return buf;
}

static void table_print(const struct cv_metrics *mt, const char *what, const double *t, int n,
                        FILE *f)
{
    char b[16];
    fprintf(f, "%-16s %9s %9s %9s %9s\n", what, "precision", "recall", "F1", "support");
    for (int i = 0; i < n; i++) {
        const double *r = t + 4 * (size_t)i;
        fprintf(f, "%-16.16s %9.4f %9.4f %9.4f %9.0f\n", name_of(mt, i, b, sizeof(b)), r[0], r[1],
                r[2], r[3]);
    }
}

static void confusion_print(const struct cv_metrics *mt, FILE *f)
{
    char b[16];
    fprintf(f, "confusion (rows: true class, columns: predicted)\n");
    for (int i = 0; i < mt->classes; i++) {
        fprintf(f, "  %12.12s |", name_of(mt, i, b, sizeof(b)));
        for (int j = 0; j < mt->classes; j++)
            fprintf(f, " %6lld", mt->confusion[(size_t)i * mt->classes + j]);
        fputc('\n', f);
    }
}

void cv_metrics_print(const struct cv_metrics *mt, FILE *f)
{
    fprintf(f, "%s: rows %lld  loss %.4f\n", cv_task_name(mt->task), mt->count, mt->loss);
    if (mt->task == CV_TASK_REGRESSION) {
        fprintf(f, "MAE %.6g  RMSE %.6g  R^2 %.6f (averaged over %d output(s))\n", mt->mae,
                mt->rmse, mt->r2, mt->outputs);
        return;
    }
    if (mt->task == CV_TASK_MULTILABEL) {
        fprintf(f, "micro F1 %.4f  macro F1 %.4f  Hamming loss %.4f  subset accuracy %.4f\n",
                mt->micro_f1, mt->f1, mt->hamming, mt->subset_accuracy);
        table_print(mt, "label", mt->per_col, mt->outputs, f);
        return;
    }
    fprintf(f, "accuracy %.4f  precision %.4f  recall %.4f  F1 %.4f (macro)", mt->accuracy,
            mt->precision, mt->recall, mt->f1);
    if (!isnan(mt->top_k))
        fprintf(f, "  top-%d accuracy %.4f", CV_TOPK, mt->top_k);
    if (mt->task == CV_TASK_BINARY)
        fprintf(f, "  ROC AUC %.4f", mt->roc_auc);
    fputc('\n', f);
    table_print(mt, "class", mt->per_class, mt->classes, f);
    confusion_print(mt, f);
}
