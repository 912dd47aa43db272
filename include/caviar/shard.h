/*
 * shard.h - one rank's share of a dataset split, held in memory as float32,
 * and the deterministic batch schedule of data-parallel training.
 *
 * Rows are split in contiguous blocks: rank r of P holds
 * n_r = N/P (+1 for r < N%P) rows read with one hyperslab.  The global batch
 * B is split the same way: b_r = B/P (+1 for r < B%P).  Every rank runs
 * ceil(max_r n_r / b_r) steps per epoch; in step s rank r contributes
 * clamp(n_r - s*b_r, 0, b_r) samples, so uneven shards never deadlock and
 * no sample is dropped or counted twice.  Any rank can compute any rank's
 * counts, so the global count of a step needs no communication.
 * Each epoch a rank permutes its rows from (seed, epoch, rank).
 */
#ifndef CAVIAR_SHARD_H
#define CAVIAR_SHARD_H

#include <stdint.h>

#include "caviar/dataset.h"
#include "caviar/model.h"
#include "caviar/status.h"

typedef struct cv_shard cv_shard;

/* Read rank `rank` of `world`'s rows of split `spec` and prepare batch
 * buffers for batches of up to max_batch rows.  Errors as
 * cv_dataset_read_rows, plus CV_SHAPE if the rank would get no rows while
 * the dataset is non-empty is NOT an error (it contributes empty batches). */
cv_status cv_shard_open(const char *spec, int rank, int world, int max_batch, cv_shard **out,
                        struct cv_error *err);
void cv_shard_free(cv_shard *s);

const struct cv_dataset_info *cv_shard_info(const cv_shard *s);
long long cv_shard_rows(const cv_shard *s);      /* n_r */
long long cv_shard_first_row(const cv_shard *s); /* global id of local row 0 */

/* All local labels in storage order: class ids (NULL for float targets)
 * or float targets (NULL for class ids).  Borrowed. */
const int32_t *cv_shard_labels(const cv_shard *s);
const float *cv_shard_targets(const cv_shard *s);

/* Per-feature sums over local rows (double), for the global mean/std. */
void cv_shard_feature_sums(const cv_shard *s, double *sum, double *sumsq);
/* x = (x - mean) / std in place, once. */
void cv_shard_normalize(cv_shard *s, const float *mean, const float *std);

/* Batch schedule (pure arithmetic, identical on all ranks). */
long long cv_sched_rows(long long n, int rank, int world);
int cv_sched_local_batch(int global_batch, int rank, int world);
long long cv_sched_steps(long long n, int global_batch, int world);
int cv_sched_count(long long n, int global_batch, int rank, int world, long long step);
long long cv_sched_global_count(long long n, int global_batch, int world, long long step);

/* Permute local rows for `epoch` (identity order if shuffle is false). */
void cv_shard_shuffle(cv_shard *s, uint64_t seed, long long epoch, bool shuffle);

/* Gather this rank's rows for step `step` of the epoch (local batch size
 * `local_batch` = cv_sched_local_batch(...)) into the batch buffers; `b`
 * points into them (valid until the next call). */
void cv_shard_batch(cv_shard *s, int local_batch, long long step, struct cv_batch *b);

/* Contiguous rows [first, first + n) of the shard in storage order, for
 * evaluation. */
void cv_shard_slice(cv_shard *s, long long first, int n, struct cv_batch *b);

/* Gather batch inputs into the caller's (max_batch, features) floats from
 * now on (NULL: the shard's own), e.g. a model's shared batch rows
 * (cv_model_share_batch); they must outlive the shard's use of them. */
void cv_shard_gather_into(cv_shard *s, float *x);

/* Augment a training batch in place: random horizontal mirror (flip) and a
 * random shift of up to `shift` pixels in x and y (zero fill), per sample,
 * keyed by (seed, step, global row) so it replays exactly on resume.  Rows
 * are (C, H, W) images: `shape` gives C, H, W. */
void cv_shard_augment(cv_shard *s, struct cv_batch *b, const int shape[3], uint64_t seed,
                      long long step, bool flip, int shift);

#endif /* CAVIAR_SHARD_H */
