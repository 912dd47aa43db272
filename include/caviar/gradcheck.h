/*
 * gradcheck.h - compare backprop with centred differences (course notes):
 *   num_i = (J(w + eps e_i) - J(w - eps e_i)) / (2 eps)
 *   relative error = ||num - ana|| / (||num|| + ||ana||)
 * J is the mean data loss of one batch (L2 is added by the optimizer and
 * not part of J).  The network runs in float32, so eps = 1e-3 and the pass
 * threshold CV_GRADCHECK_THRESHOLD = 1e-3 replace the course's 1e-7
 * (which assumes float64): float round-off in J is ~1e-7 relative, which
 * becomes ~1e-4 relative in a 1e-3 difference quotient.
 */
#ifndef CAVIAR_GRADCHECK_H
#define CAVIAR_GRADCHECK_H

#include <stddef.h>

#include "caviar/model.h"
#include "caviar/status.h"

#define CV_GRADCHECK_EPS       1e-3
#define CV_GRADCHECK_THRESHOLD 1e-3

struct cv_gradcheck_tensor {
    char path[96];    /* e.g. layers/00_dense/W */
    size_t checked;   /* entries compared */
    double rel_error; /* over the compared entries */
};

#define CV_GRADCHECK_MAX_TENSORS 64

struct cv_gradcheck_result {
    struct cv_gradcheck_tensor tensor[CV_GRADCHECK_MAX_TENSORS];
    int n_tensors;
    double rel_error; /* over all compared entries */
    size_t checked;
};

/* Check up to max_per_tensor entries of every parameter tensor (evenly
 * spread; 0 = all) on batch b.  Parameters are restored afterwards. */
cv_status cv_gradcheck(cv_model *m, const struct cv_batch *b, double eps, size_t max_per_tensor,
                       struct cv_gradcheck_result *res, struct cv_error *err);

#endif /* CAVIAR_GRADCHECK_H */
