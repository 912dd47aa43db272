/*
 * model.h - a network built from a config: layers, one contiguous parameter
 * arena, one gradient arena of the same layout, one state arena
 * (non-trainable, e.g. batchnorm running statistics), activations sized for
 * a maximum batch at build time.  A training step allocates nothing.
 *
 * The last layer's activation and the loss are fused when they match
 * (softmax + softmax_cross_entropy, sigmoid + bce): the network then
 * produces logits and the loss is computed stably from them.
 * cv_model_predict() always returns the final activation (probabilities).
 */
#ifndef CAVIAR_MODEL_H
#define CAVIAR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "caviar/config.h"
#include "caviar/status.h"

typedef struct cv_model cv_model;

/* Build a model for batches of up to max_batch samples.  Errors: CV_CONFIG /
 * CV_SHAPE naming the layer index and shapes, CV_NOMEM.  Parameters are
 * zero until cv_model_init_params or a load. */
cv_status cv_model_create(const struct cv_config *cfg, int max_batch, cv_model **out,
                          struct cv_error *err);
void cv_model_free(cv_model *m); /* NULL is harmless */

/* Flush denormal floats to zero (x86 MXCSR FTZ + DAZ) on the calling thread
 * and every thread of the OpenMP pool, which OpenBLAS's OpenMP build shares.
 * Tiny values (e.g. Adam moments of units whose gradient became 0) otherwise
 * take a slow microcode path (docs/performance.md#denormals).  Results
 * differ only where a value would have been denormal.  The caviar CLI turns
 * it on; an application embedding the library decides for itself.  Returns
 * false where the platform has no such mode (nothing changed). */
bool cv_set_flush_denormals(bool on);

/* Initialise parameters (He/Xavier) and state from `seed`: identical on
 * every rank for the same seed. */
void cv_model_init_params(cv_model *m, uint64_t seed);

size_t cv_model_n_params(const cv_model *m);
/* The span [*lo, *hi) of the parameter arena that holds every parameter
 * to train: frozen layers (trainable: false) at either end lie outside it
 * and need no gradient exchange.  Empty (0, 0) when nothing trains. */
void cv_model_trainable_span(const cv_model *m, size_t *lo, size_t *hi);
float *cv_model_params(cv_model *m); /* borrowed: the parameter arena */
float *cv_model_grads(cv_model *m);  /* borrowed: the gradient arena */
/* Compute on the caller's parameter and gradient arenas (n_params floats
 * each; params already holding this model's parameters) from now on, e.g.
 * memory shared by the ranks of a host (src/reducer_node.c).  The model's
 * own are freed; the caller's must outlive the model's use of them. */
void cv_model_use_arenas(cv_model *m, float *params, float *grads);
size_t cv_model_n_state(const cv_model *m);
float *cv_model_state(cv_model *m);      /* borrowed: the state arena */
int cv_model_inputs(const cv_model *m);  /* features per sample */
int cv_model_outputs(const cv_model *m); /* outputs per sample */
int cv_model_max_batch(const cv_model *m);
/* Steps of the output sequence (per-step targets), 0 when the output has
 * no time axis; outputs then hold steps x classes values per sample. */
int cv_model_output_steps(const cv_model *m);
/* The token ids the first layer reads (embedding vocab), 0 if it reads
 * features. */
int cv_model_vocab(const cv_model *m);
const struct cv_config *cv_model_config(const cv_model *m); /* borrowed */

/* Per-feature input normalisation (x - mean) / std, applied by the data
 * pipeline before forward.  NULL if the model has none. */
const float *cv_model_norm_mean(const cv_model *m);
const float *cv_model_norm_std(const cv_model *m);
cv_status cv_model_set_norm(cv_model *m, const float *mean, const float *std, struct cv_error *err);

/* The vocabulary of a text model (caviar/text.h: one string per token id),
 * kept so that it travels into checkpoints and model files, where `caviar
 * sample` reads it; NULL when the model has none.  Training copies it from
 * data.train; set_tokens copies v.  Errors: CV_NOMEM. */
struct cv_vocab;
const struct cv_vocab *cv_model_tokens(const cv_model *m);
cv_status cv_model_set_tokens(cv_model *m, const struct cv_vocab *v, struct cv_error *err);

/* Classes of one prediction: the outputs, or the outputs per step of a
 * per-step model. */
int cv_model_classes(const cv_model *m);
/* The class names of the model's training data (one per class: per output,
 * or per step's output), kept like the vocabulary so that `predict` names
 * its classes without the training file; NULL (*n = 0) when none were
 * stored.  Borrowed until the model is freed.  set copies names.  Errors:
 * CV_NOMEM. */
const char *const *cv_model_class_names(const cv_model *m, int *n);
cv_status cv_model_set_class_names(cv_model *m, const char *const *names, int n,
                                   struct cv_error *err);

/* A batch: n samples of (already normalised) inputs and targets.  With
 * per-step targets (cv_model_output_steps() = T > 0) y_class holds T class
 * ids per sample, -1 on steps that count for nothing (padding). */
struct cv_batch {
    int n;                  /* samples in this batch (may be 0) */
    const float *x;         /* (n, inputs) */
    const int32_t *y_class; /* (n) or (n, T) class ids, or NULL */
    const float *y_vec;     /* (n, outputs) targets, or NULL */
    const long long *rows;  /* (n) global row ids (dropout keys), or NULL */
    const int32_t *lengths; /* (n) valid steps of each sequence in [1, T], or NULL: all */
};

/* Sums over the samples of a batch.  With per-step targets a sample's
 * loss is the sum over its valid steps, and the sums below count steps:
 * loss_sum / count is the loss per step. */
struct cv_batch_stats {
    double loss_sum;   /* sum of per-sample (per-step) losses (without L2) */
    long long correct; /* argmax hits (classification) */
    long long count;   /* samples (valid steps) */
    double t_forward;  /* seconds in forward (incl. loss) */
    double t_backward; /* seconds in backward */
};

/* Forward + loss + backward for one local batch.  Gradients are the sum of
 * per-sample gradients times `grad_scale` (1 / global batch count), so an
 * allreduce-sum over ranks yields the mean over the global batch.  L2 is
 * not included here (the optimizer adds it).  `step` keys dropout masks.
 * A batch of n == 0 writes zero gradients. */
void cv_model_train_batch(cv_model *m, const struct cv_batch *b, uint64_t step, float grad_scale,
                          struct cv_batch_stats *stats);

/* Inference forward: probabilities / outputs (n, outputs) into `out`;
 * adds loss and accuracy to stats if targets are given and stats != NULL. */
void cv_model_predict(cv_model *m, const struct cv_batch *b, float *out,
                      struct cv_batch_stats *stats);

/* Replace the class weights of the softmax cross-entropy (one float per
 * class: outputs, or outputs / output steps with per-step targets; copied), e.g.
 * model.class_weights = balanced computed from the labels. CV_INVAL when the config has no class
 * weights. */
cv_status cv_model_set_class_weights(cv_model *m, const float *w, struct cv_error *err);

/* Set the keep probability of top-level dropout layer `layer` from now on
 * (train.schedule); CV_INVAL if that layer is no dropout or keep is not in
 * (0, 1]. */
cv_status cv_model_set_keep(cv_model *m, int layer, float keep, struct cv_error *err);

/* Sum of w^2 over decayed (L2) parameters, for the reported cost. */
double cv_model_l2_sum(const cv_model *m);

/* Mark which arena elements get L2 decay: writes 1/0 per parameter. */
void cv_model_decay_mask(const cv_model *m, unsigned char *mask);

/* Walk every parameter or state view in a stable order, for checkpoints:
 * path like "layers/02_dense/W".  Return non-OK from fn to stop. */
typedef cv_status (*cv_view_fn)(void *arg, const char *path, const int *dims, int ndims,
                                float *data, size_t count, struct cv_error *err);
cv_status cv_model_each_param(cv_model *m, cv_view_fn fn, void *arg, struct cv_error *err);
cv_status cv_model_each_state(cv_model *m, cv_view_fn fn, void *arg, struct cv_error *err);

/* Human summary lines (layer, type, output shape, params) to `out`. */
void cv_model_summary(const cv_model *m, void (*print)(void *arg, const char *line), void *arg);

#endif /* CAVIAR_MODEL_H */
