/*
 * comm.h - the replica group: rank/size, the gradient allreduce (blocking or
 * bucketed and overlapped with backward), small collectives, and agreement
 * on errors so that a failure on one rank never leaves the others waiting.
 * comm.c is the only library file that includes <mpi.h>; no MPI type shows
 * here.  Every function marked "Collective" must be called by all ranks.
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
/* Collective over c: *node = the ranks of c that share memory with this one
 * (one host), *cross = the ranks with the same node rank on every host, and
 * *uniform = every host has the same number of ranks of c. */
cv_status cv_comm_split_node(const cv_comm *c, cv_comm **node, cv_comm **cross, bool *uniform,
                             struct cv_error *err);

int cv_comm_rank(const cv_comm *c);
int cv_comm_size(const cv_comm *c);

/* Collective: in-place sums / max. */
cv_status cv_comm_sum_floats(const cv_comm *c, float *buf, size_t n, struct cv_error *err);
cv_status cv_comm_sum_doubles(const cv_comm *c, double *buf, int n, struct cv_error *err);
cv_status cv_comm_max_doubles(const cv_comm *c, double *buf, int n, struct cv_error *err);
cv_status cv_comm_max_ints(const cv_comm *c, int *buf, int n, struct cv_error *err);
cv_status cv_comm_bcast(const cv_comm *c, void *buf, size_t bytes, int root,
                        struct cv_error *err);
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

/* ---- gradient reduction, possibly overlapped with backward ----
 * cv_reducer sums a float arena over the group in buckets of bucket_bytes,
 * starting a bucket (MPI_Iallreduce) as soon as backward reports that the
 * arena's tail beyond it is final, and finishing everything in
 * cv_reducer_finish.  With overlap off it does one blocking allreduce.
 *
 * Overlap is off by default (comm.overlap): Open MPI 4.1 advances a
 * nonblocking collective only inside MPI calls, so buckets started during
 * backward mostly move in cv_reducer_finish anyway, and its nonblocking
 * schedules (libnbc) are slower than the blocking collectives.  Measured,
 * 784-2048-2048-10, 2 ranks x 1 thread, Haswell kernels: 4,807 samples/s
 * blocking vs 4,136 overlapped on shared memory; 3,969 vs 3,429 over TCP
 * between two network-namespace hosts (sharded in both).
 *
 * Sharded (ZeRO stage 1, `shard` and more than one rank): each rank owns a
 * contiguous slice of the arena (cv_reducer_owned) and only the owner
 * receives its slice's sum (MPI_Ireduce per bucket when overlapped, else a
 * pairwise-exchange reduce-scatter, comm.c).  Each rank then updates just its
 * slice and cv_reducer_share hands the slices to everyone (MPI_Allgatherv):
 * the same bytes move as in a ring allreduce, but the optimizer's pass over
 * the arena is split P ways.
 *
 * Compressed (`bf16`, comm.compression, more than one rank): gradients cross
 * as bfloat16 (src/bf16.h), half the bytes.  Each slice's owner adds its
 * peers' bfloat16 copies to its own float slice, in float (the pairwise
 * reduce-scatter); replicated, the owners then round their sums to
 * bfloat16 and allgather them, and every rank uses those same values.
 * Parameters are always shared as floats, so replicas stay identical.
 * Compressed reduction is never overlapped (the overlap flag is ignored).
 *
 * Node-shared (cv_reducer_create_node_shared): the ranks of one host keep
 * one parameter arena and their gradient arenas in shared memory (an MPI-3
 * shared window).  After backward each rank sums its slice straight from
 * its peers' gradients, no copies in between; with several hosts the slice
 * is then allreduced with the same slice's owners on the other hosts.  The
 * owners update their slices of the one parameter arena, so there is
 * nothing to allgather: cv_reducer_share of the parameters is a barrier.
 * For the 23 MB of workload b at 2 ranks: 0.89 ms a step, where the
 * pairwise reduce-scatter and allgather take 2.54 ms and MPI_Allreduce 3.02
 * (0.9 MB: 0.03 vs 0.10 and 0.11 ms; tests/bench/comm_bench.c, medians). */
typedef struct cv_reducer cv_reducer;
cv_status cv_reducer_create(const cv_comm *c, float *arena, size_t n, size_t bucket_bytes,
                            bool overlap, bool shard, bool bf16, cv_reducer **out,
                            struct cv_error *err);
/* Collective over node and cross (cv_comm_split_node, every node the same
 * size): node-shared arenas for n parameters, sharded over the node.  With
 * `cut`, each slice starts at cut(cut_arg, where it would start): the same
 * on every rank, never before it (cv_model_row_start keeps whole rows of a
 * weight matrix with one owner). */
cv_status cv_reducer_create_node_shared(const cv_comm *node, const cv_comm *cross, size_t n,
                                        size_t (*cut)(void *arg, size_t at), void *cut_arg,
                                        cv_reducer **out, struct cv_error *err);
/* Node-shared: collective over the node (frees the shared window). */
void cv_reducer_free(cv_reducer *r);
/* Node-shared: the node's parameter arena and this rank's gradient arena
 * (NULL otherwise); the model computes on them (cv_model_use_arenas). */
float *cv_reducer_node_params(cv_reducer *r);
float *cv_reducer_node_grads(cv_reducer *r);
/* Collective, node-shared: `params` (the same on every rank) copied into
 * the shared parameter arena, each owner its slice. */
cv_status cv_reducer_load_params(cv_reducer *r, const float *params, struct cv_error *err);
/* Collective, node-shared: n floats of memory the node's ranks share, for
 * the life of the reducer (a shared batch, cv_model_share_batch); writes
 * to it are published by the same barriers as the arenas'. */
cv_status cv_reducer_node_batch(cv_reducer *r, size_t n, float **out, struct cv_error *err);
/* Collective over the node, node-shared: a barrier after which every node
 * rank sees what the others wrote before it to the arenas and the shared
 * batch (the split layers' barrier, cv_model_split_features). */
cv_status cv_reducer_node_barrier(const cv_reducer *r, struct cv_error *err);
/* Node-shared: each owner computes its slice's sum over the node itself
 * (cv_model_owned_grads over a shared batch), so cv_reducer_finish is only
 * the barrier after backward; across hosts the owner then adds the other
 * hosts' sums with cv_reducer_sum_across_hosts (collective over cross). */
void cv_reducer_owners_compute(cv_reducer *r, bool on);
cv_status cv_reducer_sum_across_hosts(cv_reducer *r, struct cv_error *err);
bool cv_reducer_node_shared(const cv_reducer *r);
/* Hosts the slices are allreduced over (1 unless node-shared across hosts). */
int cv_reducer_hosts(const cv_reducer *r);
/* Collective per step: cv_reducer_begin, then ready(offset) from backward
 * (the model's cv_grad_ready_fn; arg = the reducer), then finish. */
void cv_reducer_begin(cv_reducer *r);
void cv_reducer_ready(void *reducer, size_t offset);
/* Waits for all buckets; returns seconds spent waiting (exposed time). */
cv_status cv_reducer_finish(cv_reducer *r, double *wait_s, struct cv_error *err);
/* cv_reducer_finish, except that where the sum would end by adding a
 * peer's copy of the owned slice from shared memory (node-shared, one
 * host), that last addition is left to the caller: *pending is that copy,
 * to add element-wise to cv_reducer_owned_grads; it is the caller's alone
 * (to read, and to zero: cv_reducer_clear_peers) until the next
 * cv_reducer_share of the parameters.  The optimizer folds it
 * into its own pass (cv_optim_step_part's add), which saves a pass over
 * the slice.  *pending is NULL when the sum is complete. */
cv_status cv_reducer_finish_pending(cv_reducer *r, double *wait_s, float **pending,
                                    struct cv_error *err);
/* Node-shared: from now on the peers' copies of the owned slice are zeroed
 * as they are added, so that with an optimizer that consumes the owned
 * gradients and the pending copy (cv_optim_consume_grads) every rank's
 * gradient arena is zero when the next batch starts.  Ignored otherwise. */
void cv_reducer_clear_peers(cv_reducer *r, bool on);

bool cv_reducer_sharded(const cv_reducer *r);
/* Buckets are reduced during backward (overlap asked for, several ranks and
 * more than one bucket to overlap). */
bool cv_reducer_overlapped(const cv_reducer *r);
bool cv_reducer_compressed(const cv_reducer *r);
/* The slice [lo, hi) of the arena whose sum this rank holds after finish
 * (the whole arena unless sharded). */
void cv_reducer_owned(const cv_reducer *r, size_t *lo, size_t *hi);
/* After finish: the summed gradients of the owned slice; element i belongs
 * to arena offset lo + i. */
float *cv_reducer_owned_grads(cv_reducer *r);
/* Collective: every rank's owned slice of `arena` (an arena of the same
 * layout: parameters after an update, optimizer moments before a
 * checkpoint) copied to all ranks.  Nothing to do unless sharded; for the
 * node-shared parameter arena, a barrier that publishes the updates. */
cv_status cv_reducer_share(const cv_reducer *r, float *arena, struct cv_error *err);
/* Collective: sum v over the ranks whose owned slices partition the arena
 * (partial sums of squares for a global gradient norm). */
cv_status cv_reducer_sum_over_slices(const cv_reducer *r, double *v, struct cv_error *err);

#endif /* CAVIAR_COMM_H */
