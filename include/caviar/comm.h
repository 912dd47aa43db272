/*
 * comm.h - a group of ranks (a replica group, a sweep's trial group): rank
 * and size, small collectives, agreement on errors so that a failure on one
 * rank never leaves the others waiting, and the sweep coordinator's
 * messages.  No MPI type shows here; the gradient exchange that training
 * runs over a group is private to the library (src/reducer.h).  Every
 * function marked "Collective" must be called by all ranks.
 */
#ifndef CAVIAR_COMM_H
#define CAVIAR_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caviar/status.h"

typedef struct cv_comm cv_comm;

/* A duplicate of MPI_COMM_WORLD (MPI must be initialised). */
cv_status cv_comm_create_world(cv_comm **out, struct cv_error *err);
/* Collective over parent: ranks with the same color form a new group,
 * ordered by key.  color < 0 yields *out == NULL. */
cv_status cv_comm_split(const cv_comm *parent, int color, int key, cv_comm **out,
                        struct cv_error *err);
void cv_comm_free(cv_comm *c); /* NULL is harmless */
int cv_comm_rank(const cv_comm *c);
int cv_comm_size(const cv_comm *c);

/* Collective: in-place sums / max. */
cv_status cv_comm_sum_doubles(const cv_comm *c, double *buf, int n, struct cv_error *err);
cv_status cv_comm_max_doubles(const cv_comm *c, double *buf, int n, struct cv_error *err);
cv_status cv_comm_bcast(const cv_comm *c, void *buf, size_t bytes, int root, struct cv_error *err);
/* Collective: concatenate every rank's n floats on root in rank order
 * (recv: the sum of all n, on root only). */
cv_status cv_comm_gather_floats(const cv_comm *c, const float *send, size_t n, float *recv,
                                int root, struct cv_error *err);
cv_status cv_comm_barrier(const cv_comm *c, struct cv_error *err);

/* Collective: agree on a status.  Returns the worst status of any rank; if
 * another rank failed, `err` receives that rank's message (the lowest
 * failing rank's), prefixed with "rank R: ", so every rank can report it. */
cv_status cv_comm_agree(const cv_comm *c, cv_status local, struct cv_error *err);

/* Collective: FNV-1a hash of buf on every rank; *same = all ranks equal. */
cv_status cv_comm_same_bytes(const cv_comm *c, const void *buf, size_t bytes, bool *same,
                             uint64_t *hash, struct cv_error *err);

uint64_t cv_hash_bytes(const void *buf, size_t bytes);

/* ---- messages, for the sweep coordinator ----
 * Fixed-size byte messages.  The waiting calls idle: they test and sleep
 * (20 us, doubling up to 2 ms) instead of spinning in MPI, so a rank that
 * waits for work leaves its core to the ranks that compute. */
cv_status cv_comm_send(const cv_comm *c, const void *buf, size_t bytes, int dest, int tag,
                       struct cv_error *err);
/* If a message with `tag` is waiting (from any rank), receive it (exactly
 * `bytes`) and set *from to its sender; else *from = -1.  Never waits. */
cv_status cv_comm_try_recv(const cv_comm *c, void *buf, size_t bytes, int tag, int *from,
                           struct cv_error *err);
/* Wait (idly) for a message with `tag` from rank `src`. */
cv_status cv_comm_recv_idle(const cv_comm *c, void *buf, size_t bytes, int src, int tag,
                            struct cv_error *err);
/* Collective, idle while waiting: broadcast / barrier. */
cv_status cv_comm_bcast_idle(const cv_comm *c, void *buf, size_t bytes, int root,
                             struct cv_error *err);
cv_status cv_comm_barrier_idle(const cv_comm *c, struct cv_error *err);

#endif /* CAVIAR_COMM_H */
