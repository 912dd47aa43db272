/*
 * test_exchange_modes.c - run with 1, 2 and 3 ranks.  Every gradient
 * exchange mode (MODES below) x every optimizer (OPTIMS), each plain and
 * with L2 and a global-norm clip that clips, trained by cv_train_run on the
 * whole world, ends with the parameters that the same config trained on
 * ONE rank ends with.  Only the public API: configs are YAML text with
 * `key=value` overrides, the final parameters are read back from
 * RUN_DIR/model.h5.  Checks, per (optimizer, mode):
 *  - training succeeds and takes the configured steps;
 *  - the replicas are identical (params_hash equal on every rank), and
 *    model.h5 holds the parameters the run ended with (their cv_hash_bytes
 *    is params_hash);
 *  - against the one-rank reference r, element-wise |p - r| <= tol (1 + |r|)
 *    with tol 1e-5 for float exchanges (ranks sum the gradients in another
 *    order than one rank does, so the last bits differ) and 1e-2 for
 *    bfloat16 messages (BF16_TOL below says why); and the error of the
 *    whole update, ||p - r|| / ||r - p0||, within 1e-4 (float) or 0.1
 *    (bfloat16).
 * And that the comparison can fail, and is not vacuous: a learning rate
 * 1.5x the reference's fails both bars by 10x, the one-rank run without
 * the clip differs from the clipped one (every step clipped), and training
 * moved the parameters by 50x FLOAT_TOL or more.
 *
 * Full-batch training (train.batch = all ROWS, so one step per epoch): each
 * rank shuffles only its own contiguous block of rows (caviar/shard.h), so
 * a smaller global batch would hold other rows at 2 ranks than at 1, and
 * the runs would differ by their data, not their exchange.  ROWS = 97 gives
 * the ranks uneven shards (49 + 48, 33 + 32 + 32).
 *
 * The modes are one table so that a mode that is removed is one row to
 * delete; the test runs whatever rows remain.  Every rank must share one
 * file system (the temporary directory of rank 0).
 */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "caviar/comm.h"
#include "caviar/config.h"
#include "caviar/dataset.h"
#include "caviar/model.h"
#include "caviar/train.h"
#include "test.h"

/* Two measures of a run p against the one-rank reference r, both started
 * from the same parameters p0:
 *   element-wise   max_i |p_i - r_i| / (1 + |r_i|)
 *   update         ||p - r|| / ||r - p0||  (2-norms: the error of the whole
 *                  training's update, relative to that update)
 * Float exchanges: ranks sum the gradients in another order than one rank
 * does, so only the last bits differ (seen at 2 and 3 ranks: <= 4e-7
 * element-wise, <= 3e-6 of the update). */
#define FLOAT_TOL        1e-5
#define FLOAT_UPDATE_TOL 1e-4
/* bfloat16 messages keep 8 significant bits: each rank's gradient is
 * rounded by up to 2^-9 relative before it is summed.  SGD and momentum
 * steps move by as little; Adam and RMSprop divide each element by its own
 * gradient's size, so where the ranks' contributions nearly cancel, the
 * rounding can change that element's step by up to its whole size
 * (<= lr / sqrt(1 - beta2) = 3.2 lr, either sign).  The learning rates
 * below keep STEPS x 2 x 3.2 x lr < BF16_TOL.  The update measure, over all
 * elements, is the one that would notice a wrong sum (seen: <= 2.6e-2 of
 * the update with Adam, <= 1.2e-3 with SGD and momentum; 1.5x the
 * learning rate is 0.5 of it). */
#define BF16_TOL        1e-2
#define BF16_UPDATE_TOL 0.1

#define MAX_OVERRIDES 8

struct mode {
    const char *name;
    const char *overrides[MAX_OVERRIDES]; /* comm.* keys; NULL-terminated */
    double tol, update_tol;
};

#define FLOAT FLOAT_TOL, FLOAT_UPDATE_TOL
#define BF16  BF16_TOL, BF16_UPDATE_TOL

/* One row per exchange strategy the trainer can pick (src/reducer.h); the
 * {NULL} row ends the table. */
static const struct mode MODES[] = {
    {"allreduce", {"comm.shared_memory=false", "comm.shard_optimizer=false"}, FLOAT},
    {"sharded (ZeRO-1)", {"comm.shared_memory=false", "comm.shard_optimizer=true"}, FLOAT},
    {"bfloat16 allreduce", {"comm.compression=bf16", "comm.shared_memory=false"}, BF16},
    {"default (node-shared arenas on one host)", {NULL}, FLOAT},
    {NULL, {NULL}, 0, 0},
};

struct optim {
    const char *name;
    const char *overrides[MAX_OVERRIDES];
};

/* Learning rates: the parameters move by ~1e-3 or more in STEPS steps,
 * far beyond FLOAT_TOL; Adam's and RMSprop's as BF16_TOL needs (RMSprop has
 * no bias correction: with beta2 0.999 its first step would be 32 lr). */
static const struct optim OPTIMS[] = {
    {"sgd", {"train.optimizer=sgd", "train.lr=0.2"}},
    {"momentum", {"train.optimizer=momentum", "train.lr=0.2"}},
    {"rmsprop", {"train.optimizer=rmsprop", "train.lr=2.5e-4", "train.beta2=0.9"}},
    {"adam", {"train.optimizer=adam", "train.lr=2.5e-4"}},
    /* PyTorch's Nesterov sums the gradients (no 1 - beta1): 10x momentum's step */
    {"nesterov", {"train.optimizer=nesterov", "train.lr=0.02"}},
    {"adamw", {"train.optimizer=adamw", "train.lr=2.5e-4", "train.weight_decay=0.5"}},
    /* per-parameter factors: the first layer frozen, slices cut through the runs */
    {"adam, first layer frozen",
     {"train.optimizer=adam", "train.lr=2.5e-4", "model.layers.0.trainable=false"}},
    {NULL, {NULL}},
};

/* The regularised variant: L2 (lambda / m W, m = 97) and a clip well under
 * the gradient norm, so that every step is clipped.  Adam and RMSprop
 * divide by the gradient's own size: with eps 1e-8 a clip (and a wrong
 * global norm) would hardly change their steps; eps 1e-3, near the size of
 * a clipped gradient's elements, makes them show. */
static const char *const REGULARISED[] = {"train.l2=2", "train.clip_norm=0.1", "train.eps=1e-3",
                                          NULL};

#define ROWS     97
#define FEATURES 12
#define CLASSES  3
#define STEPS    6 /* epochs of one full-batch step each */

static char base[512]; /* the temporary directory, the same on every rank */
static int runs;       /* run directories made so far (the same on every rank) */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Deterministic, learnable: features of different scales (so the
 * normalisation matters), the class the argmax of three fixed linear
 * scores. */
static cv_status write_dataset(const char *path, struct cv_error *err)
{
    static float x[ROWS * FEATURES];
    static int32_t y[ROWS];
    for (int i = 0; i < ROWS; i++) {
        double score[CLASSES] = {0};
        for (int j = 0; j < FEATURES; j++) {
            double v = sin(0.71 * (i + 1) * (j + 1) + 0.3 * j) + 0.25 * cos(1.7 * i - j);
            x[i * FEATURES + j] = (float)(v * (1 + j % 4) + 0.5 * j);
            for (int k = 0; k < CLASSES; k++)
                score[k] += v * cos(2.1 * k + 0.9 * j);
        }
        int best = 0;
        for (int k = 1; k < CLASSES; k++)
            best = score[k] > score[best] ? k : best;
        y[i] = best;
    }
    struct cv_split_out sp = {.group = "/",
                              .n_rows = ROWS,
                              .features = FEATURES,
                              .x_f32 = x,
                              .y_class = y,
                              .classes = CLASSES};
    return cv_dataset_write(path, &sp, 1, err);
}

/* A 12-64-32-3 MLP (3,011 parameters, uneven slices over 2 and 3 ranks)
 * on the synthetic data. */
static struct cv_config *make_config(const struct optim *o, bool regularised, double lr_scale,
                                     const struct mode *m, bool no_clip, const char *run_dir)
{
    char text[2048], lr[64];
    snprintf(text, sizeof(text),
             "data: {train: %s/data.h5}\n"
             "model:\n"
             "  input: [%d]\n"
             "  layers:\n"
             "    - {type: dense, units: 64, activation: relu}\n"
             "    - {type: dense, units: 32, activation: tanh}\n"
             "    - {type: dense, units: %d, activation: softmax}\n"
             "train: {batch: %d, epochs: %d, seed: 11}\n"
             "checkpoint: {every_epochs: 0}\n",
             base, FEATURES, CLASSES, ROWS, STEPS);
    const char *ov[3 * MAX_OVERRIDES];
    char dir[CV_PATH_MAX + 16];
    int n = 0;
    for (int i = 0; i < MAX_OVERRIDES && o->overrides[i]; i++) {
        ov[n++] = o->overrides[i];
        if (strncmp(o->overrides[i], "train.lr=", 9) == 0 && lr_scale != 1.0) {
            snprintf(lr, sizeof(lr), "train.lr=%.9g", atof(o->overrides[i] + 9) * lr_scale);
            ov[n - 1] = lr;
        }
    }
    for (int i = 0; regularised && REGULARISED[i]; i++)
        if (!no_clip || strncmp(REGULARISED[i], "train.clip_norm=", 16) != 0)
            ov[n++] = REGULARISED[i];
    for (int i = 0; m && i < MAX_OVERRIDES && m->overrides[i]; i++)
        ov[n++] = m->overrides[i];
    snprintf(dir, sizeof(dir), "run.dir=%s", run_dir);
    ov[n++] = dir;
    struct cv_config *cfg = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_config_parse(text, "test_exchange_modes", ov, n, &cfg, &err);
    CV_TEST_REPORT(st == CV_OK, "%s%s, %s: config: %s", o->name, regularised ? "+l2+clip" : "",
                   m ? m->name : "reference", err.msg);
    return cfg;
}

/* A trained run's outcome: its final parameters (from model.h5). */
struct outcome {
    bool ok;
    size_t n;
    float *params;
};

/* Collective over comm: train cfg (in a fresh run directory) and read the
 * final parameters back.  `what` names the run in messages. */
static struct outcome train(const struct cv_config *cfg, const cv_comm *comm, const char *what)
{
    struct outcome out = {false, 0, NULL};
    if (!cfg)
        return out;
    struct cv_train_opts opts = {.quiet = true};
    struct cv_train_result res;
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_train_run(cfg, comm, &opts, &res, &err);
    CV_TEST_REPORT(st == CV_OK, "%s: training failed: %s", what, err.msg);
    if (st != CV_OK)
        return out;
    ASSERT_EQ(res.steps, STEPS);
    /* replicas identical: every rank ended with rank 0's parameters */
    unsigned long long h0 = res.params_hash;
    ASSERT_EQ(cv_comm_bcast(comm, &h0, sizeof(h0), 0, NULL), CV_OK);
    CV_TEST_REPORT(h0 == res.params_hash,
                   "%s: replicas differ: rank %d's parameters hash to %016llx, rank 0's to "
                   "%016llx",
                   what, cv_comm_rank(comm), res.params_hash, h0);
    /* model.h5 was written by rank 0 before cv_train_run returned on any rank */
    char path[CV_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/model.h5", cfg->run.dir);
    struct cv_config *mc = NULL;
    cv_model *m = NULL;
    st = cv_ckpt_open_model(path, 1, &mc, &m, &err);
    CV_TEST_REPORT(st == CV_OK, "%s: reading %s: %s", what, path, err.msg);
    if (st != CV_OK)
        return out;
    out.n = cv_model_n_params(m);
    out.params = malloc(out.n * sizeof(float));
    if (out.params) {
        memcpy(out.params, cv_model_params(m), out.n * sizeof(float));
        unsigned long long h = cv_hash_bytes(out.params, out.n * sizeof(float));
        CV_TEST_REPORT(h == res.params_hash,
                       "%s: model.h5's parameters hash to %016llx, the run ended with %016llx",
                       what, h, res.params_hash);
        out.ok = true;
    }
    cv_model_free(m);
    cv_config_free(mc);
    return out;
}

static void outcome_free(struct outcome *o)
{
    free(o->params);
    o->params = NULL;
}

/* How far a run ended from the reference (see FLOAT_TOL). */
struct diff {
    double elem;   /* max |p - r| / (1 + |r|) */
    size_t at;     /* where */
    double update; /* ||p - r|| / ||r - p0|| */
};

static struct diff compare(const struct outcome *a, const struct outcome *ref, const float *p0)
{
    struct diff d = {0, 0, 0};
    double sq = 0, moved = 0;
    for (size_t i = 0; i < ref->n; i++) {
        double e = (double)a->params[i] - ref->params[i], u = (double)ref->params[i] - p0[i];
        double rel = fabs(e) / (1.0 + fabs(ref->params[i]));
        if (!(rel <= d.elem)) /* NaN counts as worst */
            d.elem = rel, d.at = i;
        sq += e * e;
        moved += u * u;
    }
    d.update = sqrt(sq) / sqrt(moved);
    return d;
}

static void run_dir(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "%s/run%03d-%s", base, runs++, tag);
}

/* One optimizer config: the one-rank reference (this rank's own) and the
 * parameters every run starts from. */
struct reference {
    const struct optim *o;
    bool regularised;
    struct outcome r;
    const float *p0;
};

static void what_run(char *out, size_t n, const struct reference *ref, const char *mode, int ranks,
                     const char *extra)
{
    snprintf(out, n, "%s%s, %s, %d rank(s)%s", ref->o->name, ref->regularised ? "+l2+clip" : "",
             mode, ranks, extra);
}

/* Collective over world: the config in every mode, each against the
 * reference. */
static void check_modes(const cv_comm *world, const struct reference *ref)
{
    int rank = cv_comm_rank(world), p = cv_comm_size(world);
    for (const struct mode *m = MODES; m->name; m++) {
        char dir[CV_PATH_MAX], what[512];
        run_dir(dir, sizeof(dir), "mode");
        what_run(what, sizeof(what), ref, m->name, p, "");
        struct cv_config *cfg = make_config(ref->o, ref->regularised, 1.0, m, false, dir);
        double t0 = now();
        struct outcome got = train(cfg, world, what);
        double secs = now() - t0;
        cv_config_free(cfg);
        if (got.ok && ref->r.ok) {
            ASSERT_EQ(got.n, ref->r.n);
            if (got.n != ref->r.n)
                continue;
            struct diff d = compare(&got, &ref->r, ref->p0);
            CV_TEST_REPORT(d.elem <= m->tol,
                           "%s: parameter %zu is %.9g, the one-rank reference %.9g: |diff| / "
                           "(1 + |ref|) = %.3g > tol %g",
                           what, d.at, got.params[d.at], ref->r.params[d.at], d.elem, m->tol);
            CV_TEST_REPORT(d.update <= m->update_tol,
                           "%s: ||params - reference|| is %.3g of the reference's update "
                           "||reference - start||, tol %g",
                           what, d.update, m->update_tol);
            if (rank == 0)
                printf("  %-44s np %d: element %.1e (tol %.0e), update %.1e (tol %.0e), "
                       "%.2f s\n",
                       m->name, p, d.elem, m->tol, d.update, m->update_tol, secs);
        }
        outcome_free(&got);
    }
}

/* Collective over world: the comparison is not vacuous: the first mode
 * with 1.5x the learning rate fails both of a float mode's bars, by 10x. */
static void check_detects_difference(const cv_comm *world, const struct reference *ref)
{
    if (!MODES[0].name)
        return;
    char dir[CV_PATH_MAX], what[512];
    run_dir(dir, sizeof(dir), "lr");
    what_run(what, sizeof(what), ref, MODES[0].name, cv_comm_size(world), ", lr x 1.5");
    struct cv_config *cfg = make_config(ref->o, ref->regularised, 1.5, &MODES[0], false, dir);
    struct outcome got = train(cfg, world, what);
    cv_config_free(cfg);
    if (got.ok && ref->r.ok && got.n == ref->r.n) {
        struct diff d = compare(&got, &ref->r, ref->p0);
        CV_TEST_REPORT(d.elem > 10 * FLOAT_TOL && d.update > 10 * FLOAT_UPDATE_TOL,
                       "%s: as good as a match (element %.3g, update %.3g): the comparison "
                       "cannot tell runs apart",
                       what, d.elem, d.update);
        if (cv_comm_rank(world) == 0)
            printf("  %-44s np %d: element %.1e, update %.1e (must differ)\n", "lr x 1.5",
                   cv_comm_size(world), d.elem, d.update);
    }
    outcome_free(&got);
}

/* Collective over `alone` (this rank by itself): the one-rank reference,
 * and checks that it is one: training moved the parameters well beyond
 * FLOAT_TOL but by much less than their size (so p0 is where it started),
 * and where the config clips, the clip made a difference. */
static struct outcome train_reference(const cv_comm *alone, int rank, const struct optim *o,
                                      bool regularised, const float *p0, size_t n0)
{
    char dir[CV_PATH_MAX], tag[32], what[128];
    snprintf(tag, sizeof(tag), "ref-r%d", rank);
    run_dir(dir, sizeof(dir), tag);
    snprintf(what, sizeof(what), "%s%s, one-rank reference", o->name,
             regularised ? "+l2+clip" : "");
    struct cv_config *cfg = make_config(o, regularised, 1.0, NULL, false, dir);
    struct outcome ref = train(cfg, alone, what);
    cv_config_free(cfg);
    if (ref.ok && ref.n != n0)
        CV_TEST_REPORT(false, "%s: %zu parameters, the model built here %zu", what, ref.n, n0);
    if (!ref.ok || ref.n != n0)
        return ref;
    struct outcome start = {true, n0, (float *)p0};
    struct diff moved = compare(&start, &ref, p0); /* update = 1 */
    double size = 0, step = 0;
    for (size_t i = 0; i < n0; i++) {
        double u = (double)ref.params[i] - p0[i];
        size += (double)p0[i] * p0[i];
        step += u * u;
    }
    CV_TEST_REPORT(moved.elem > 50 * FLOAT_TOL && step < 0.25 * size,
                   "%s: moved the parameters by %.3g at most (want > %g), ||update|| / "
                   "||start|| = %.3g (want < 0.5)",
                   what, moved.elem, 50 * FLOAT_TOL, sqrt(step / size));
    if (rank == 0)
        printf("%s%s: parameters moved by up to %.1e, ||update|| / ||start|| %.1e\n", o->name,
               regularised ? " with l2 and clip" : "", moved.elem, sqrt(step / size));
    if (regularised) { /* the clip clipped: without it the run differs */
        run_dir(dir, sizeof(dir), tag);
        snprintf(what, sizeof(what), "%s+l2, one rank, no clip", o->name);
        cfg = make_config(o, true, 1.0, NULL, true, dir);
        struct outcome unclipped = train(cfg, alone, what);
        cv_config_free(cfg);
        if (unclipped.ok && unclipped.n == n0) {
            struct diff d = compare(&unclipped, &ref, p0);
            CV_TEST_REPORT(d.elem > 10 * FLOAT_TOL || d.update > 10 * FLOAT_UPDATE_TOL,
                           "%s: the clip changed little (element %.3g, update %.3g)", what, d.elem,
                           d.update);
            if (rank == 0)
                printf("  %-44s np 1: element %.1e, update %.1e (must differ)\n", "no clip", d.elem,
                       d.update);
        }
        outcome_free(&unclipped);
    }
    return ref;
}

/* The parameters every run starts from: the trainer initialises them from
 * train.seed (cv_model_init_params).  NULL on failure. */
static float *start_params(size_t *n)
{
    static const struct optim any = {"start", {NULL}};
    struct cv_config *cfg = make_config(&any, false, 1.0, NULL, false, base);
    cv_model *m = NULL;
    float *p0 = NULL;
    if (cfg && cv_model_create(cfg, 1, &m, NULL) == CV_OK) {
        cv_model_init_params(m, cfg->train.seed);
        *n = cv_model_n_params(m);
        p0 = malloc(*n * sizeof(float));
        if (p0)
            memcpy(p0, cv_model_params(m), *n * sizeof(float));
    }
    ASSERT_TRUE(p0 != NULL);
    cv_model_free(m);
    cv_config_free(cfg);
    return p0;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    double t_start = now();
    cv_comm *world = NULL, *alone = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_comm_create_world(&world, &err), CV_OK);
    int rank = cv_comm_rank(world), p = cv_comm_size(world);
    /* the reference: each rank trains it on a group of its own */
    ASSERT_EQ(cv_comm_split(world, rank, 0, &alone, &err), CV_OK);
    ASSERT_EQ(cv_comm_size(alone), 1);

    cv_status st = CV_OK;
    if (rank == 0) {
        /* every epoch writes model.h5, fsynced: free on tmpfs, where a busy
         * disk took 4x the time of the whole test */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(base, sizeof(base), "%s/cv-test-exchange-XXXXXX", tmp);
        if (!mkdtemp(base))
            st = cv_fail(&err, CV_IO, "mkdtemp %s failed", base);
        char data[CV_PATH_MAX + 16];
        snprintf(data, sizeof(data), "%s/data.h5", base);
        if (st == CV_OK)
            st = write_dataset(data, &err);
    }
    st = cv_comm_agree(world, st, &err);
    CV_TEST_REPORT(st == CV_OK, "set-up: %s", err.msg);
    if (st == CV_OK)
        st = cv_comm_bcast(world, base, sizeof(base), 0, &err);
    size_t n0 = 0;
    float *p0 = st == CV_OK ? start_params(&n0) : NULL;
    if (st == CV_OK && cv_comm_agree(world, p0 ? CV_OK : CV_NOMEM, NULL) != CV_OK) {
        free(p0); /* every rank skips the runs */
        p0 = NULL;
    }

    for (const struct optim *o = OPTIMS; p0 && o->name; o++) {
        for (int regularised = 0; regularised < 2; regularised++) {
            struct reference ref = {o, regularised, {false, 0, NULL}, p0};
            ref.r = train_reference(alone, rank, o, regularised, p0, n0);
            check_modes(world, &ref);
            check_detects_difference(world, &ref);
            outcome_free(&ref.r);
        }
    }
    free(p0);

    cv_comm_agree(world, CV_OK, NULL); /* a barrier: everyone has read its files */
    if (rank == 0 && base[0]) {
        char cmd[CV_PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", base);
    }
    if (rank == 0)
        printf("%d rank(s): %.1f s\n", p, now() - t_start);
    int failed = cv_test_failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    cv_comm_free(alone);
    cv_comm_free(world);
    MPI_Finalize();
    if (cv_test_failed == 0 && failed)
        cv_test_failed = failed; /* another rank failed: fail here too */
    TEST_MAIN_END();
}
