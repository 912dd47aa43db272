/*
 * gradcheck.c - centred-difference gradient check over the model's
 * parameter tensors (see caviar/gradcheck.h for the error measure).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/gradcheck.h"
#include "util.h"

struct check {
    cv_model *m;
    const struct cv_batch *b;
    double eps;
    size_t max_per;
    const float *ana; /* analytical gradient arena copy */
    struct cv_gradcheck_result *res;
    double num2, ana2, diff2; /* totals over all tensors */
};

static double batch_loss(struct check *c)
{
    struct cv_batch_stats st = {0};
    cv_model_train_batch(c->m, c->b, 0, 1.0f, &st);
    return st.loss_sum / (double)c->b->n;
}

static cv_status check_tensor(void *arg, const char *path, const int *dims, int ndims, float *w,
                              size_t count, struct cv_error *err)
{
    (void)dims;
    (void)err;
    (void)ndims;
    struct check *c = arg;
    size_t off = (size_t)(w - cv_model_params(c->m));
    size_t stride = c->max_per && count > c->max_per ? count / c->max_per : 1;
    double n2 = 0, a2 = 0, d2 = 0;
    size_t checked = 0;
    for (size_t i = 0; i < count; i += stride, checked++) {
        float keep = w[i];
        w[i] = keep + (float)c->eps;
        double jp = batch_loss(c);
        w[i] = keep - (float)c->eps;
        double jm = batch_loss(c);
        w[i] = keep;
        /* the actual perturbation, as float rounding changed eps slightly */
        double h = (double)(float)(keep + (float)c->eps) - (double)(float)(keep - (float)c->eps);
        double num = (jp - jm) / h, ana = c->ana[off + i];
        n2 += num * num;
        a2 += ana * ana;
        d2 += (num - ana) * (num - ana);
    }
    struct cv_gradcheck_result *r = c->res;
    if (r->n_tensors < CV_GRADCHECK_MAX_TENSORS) {
        struct cv_gradcheck_tensor *t = &r->tensor[r->n_tensors++];
        snprintf(t->path, sizeof(t->path), "%s", path);
        t->checked = checked;
        t->rel_error = sqrt(n2) + sqrt(a2) > 0 ? sqrt(d2) / (sqrt(n2) + sqrt(a2)) : 0;
    }
    c->num2 += n2;
    c->ana2 += a2;
    c->diff2 += d2;
    r->checked += checked;
    return CV_OK;
}

cv_status cv_gradcheck(cv_model *m, const struct cv_batch *b, double eps, size_t max_per_tensor,
                       struct cv_gradcheck_result *res, struct cv_error *err)
{
    memset(res, 0, sizeof(*res));
    if (b->n < 1)
        return cv_fail(err, CV_INVAL, "gradcheck needs at least one sample");
    size_t n = cv_model_n_params(m);
    float *ana = cv_calloc(n, sizeof(float));
    if (!ana)
        return cv_fail(err, CV_NOMEM, "out of memory");
    /* J = mean loss, so the gradient scale is 1/n */
    cv_model_train_batch(m, b, 0, 1.0f / (float)b->n, NULL);
    memcpy(ana, cv_model_grads(m), n * sizeof(float));
    struct check c = {m, b, eps, max_per_tensor, ana, res, 0, 0, 0};
    cv_status st = cv_model_each_param(m, check_tensor, &c, err);
    double den = sqrt(c.num2) + sqrt(c.ana2);
    res->rel_error = den > 0 ? sqrt(c.diff2) / den : 0;
    free(ana);
    return st;
}
