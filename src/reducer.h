/*
 * reducer.h - the gradient exchange of one replica group, behind one small
 * interface: after backward, this rank holds the sum over the group of the
 * gradients of its owned slice [lo, hi) of the parameter arena; the
 * optimizer updates that slice; share() then makes every replica whole.
 *
 * One file per strategy (src/reducer_*.c); cv_reducer_create picks one from
 * the config and the host layout (the exchange policy, src/reducer.c):
 *   allreduce - replicated: every rank owns the whole arena, one
 *               MPI_Allreduce after backward.
 *   sharded   - ZeRO stage 1 between private arenas: a pairwise
 *               reduce-scatter, each rank updates its slice, MPI_Allgatherv
 *               shares the slices; or, with bfloat16 compression, the same
 *               reduce-scatter in bfloat16 and an allgather of the rounded
 *               sums (replicated: every rank owns the whole arena).
 *   node      - one parameter arena per host and every rank's gradients in
 *               an MPI-3 shared window: each slice's owner sums its peers'
 *               gradients from their memory, then across hosts.
 * The optimizer, the model and the layers know none of this: they see
 * plain gradients and parameters.  Every function marked "Collective" must
 * be called by all ranks of the group.
 */
#ifndef CV_REDUCER_H
#define CV_REDUCER_H

#include <stdbool.h>
#include <stddef.h>

#include "caviar/comm.h"
#include "caviar/config.h"
#include "caviar/model.h"
#include "caviar/status.h"

typedef struct cv_reducer cv_reducer;

/* Collective over comm: the exchange of m's gradients that cfg.comm asks
 * for on this host layout.  m must outlive the reducer. */
cv_status cv_reducer_create(const struct cv_config *cfg, const cv_comm *comm, cv_model *m,
                            cv_reducer **out, struct cv_error *err);
/* Collective for the node strategy (it frees a shared window); NULL is
 * harmless.  Free the model first: it may compute on the reducer's arenas. */
void cv_reducer_free(cv_reducer *r);

/* Collective, once the model holds its initial (or resumed) parameters,
 * the same on every rank: the node strategy moves the model onto the
 * host's shared arenas.  Nothing to do for the others. */
cv_status cv_reducer_adopt(cv_reducer *r, struct cv_error *err);

/* Per step, collective, after backward: this rank's owned slice summed.
 * *wait_s (may be NULL) grows by the seconds it took: the exposed exchange. */
cv_status cv_reducer_finish(cv_reducer *r, double *wait_s, struct cv_error *err);

/* The slice [lo, hi) of the arena whose summed gradients this rank holds
 * after finish, and those gradients: element i is arena offset lo + i. */
void cv_reducer_owned(const cv_reducer *r, size_t *lo, size_t *hi);
float *cv_reducer_owned_grads(cv_reducer *r);

/* Collective: every rank's owned slice of `arena` (parameters after the
 * update, optimizer moments before a checkpoint) copied to all ranks. */
cv_status cv_reducer_share(cv_reducer *r, float *arena, struct cv_error *err);

/* Collective: *v summed over the ranks whose owned slices partition the
 * arena (partial squared norms for a global clip norm); unchanged when
 * every rank owns the whole arena. */
cv_status cv_reducer_sum_over_slices(cv_reducer *r, double *v, struct cv_error *err);

/* One human line: which exchange runs, e.g. for rank 0's start-up log. */
const char *cv_reducer_describe(const cv_reducer *r);

/* ---- for the strategies (src/reducer_*.c) ---- */

struct cv_reducer_ops {
    cv_status (*finish)(cv_reducer *r, struct cv_error *err);
    /* optional: nothing to share when every rank owns the whole arena */
    cv_status (*share)(cv_reducer *r, float *arena, struct cv_error *err);
    /* optional */
    cv_status (*adopt)(cv_reducer *r, struct cv_error *err);
    /* optional: the strategy's own state */
    void (*free_impl)(cv_reducer *r);
};

struct cv_reducer {
    const struct cv_reducer_ops *ops;
    const cv_comm *comm;   /* the replica group */
    const cv_comm *slices; /* ranks whose slices partition the arena, or NULL */
    cv_model *model;
    float *grads;        /* (n) the gradient arena this rank's backward writes */
    size_t n;            /* parameters */
    size_t first, count; /* the trainable span [first, first + count) of the arena
                            (cv_model_trainable_span): only it is exchanged, owned
                            and updated; frozen layers outside it cost nothing */
    size_t lo, hi;       /* the owned slice */
    char what[256];      /* cv_reducer_describe */
    void *impl;          /* the strategy's own state */
};

/* Each strategy fills in *r (ops, slices, lo, hi, what, impl) for the
 * fields create set (comm, model, grads, n).  Collective. */
cv_status cv__reducer_allreduce(cv_reducer *r, struct cv_error *err);
/* bf16: the compressed allreduce (optimizer replicated), else ZeRO-1. */
cv_status cv__reducer_sharded(cv_reducer *r, bool bf16, struct cv_error *err);
/* node: the ranks of r->comm on this host (every host the same number);
 * cross: the ranks of r->comm with the same node rank, one per host.  The
 * reducer takes both (frees them), even on failure. */
cv_status cv__reducer_node(cv_reducer *r, cv_comm *node, cv_comm *cross, struct cv_error *err);

/* Rank q's slice [start(q), start(q + 1)) of n floats split over p ranks,
 * cut at multiples of 16 floats so that no cache line has two owners. */
size_t cv__slice_start(size_t n, int q, int p);

/* (*counts)[q], (*displs)[q]: rank q's slice of r's trainable span over
 * p ranks, as arena offsets (allocated here, freed by the caller, also on
 * failure), *widest the longest.  CV_INVAL, naming `what`, beyond 2^31 - 1
 * floats (MPI counts and displacements are ints). */
cv_status cv__plan_slices(const cv_reducer *r, int p, int **counts, int **displs, size_t *widest,
                          const char *what, struct cv_error *err);

/* acc += in, n floats; the OpenMP threads share the work when it is large. */
void cv__accumulate(float *acc, const float *in, long n);

#endif /* CV_REDUCER_H */
