/*
 * config.h - the typed run configuration, parsed from YAML with libyaml.
 *
 * A config is a YAML document (see docs/config.md).  Loading goes
 *   file text -> YAML tree (with line numbers) -> `key.path=value` overrides
 *   applied to the tree -> validated struct cv_config.
 * Unknown keys and bad values are errors naming `file:line` (or the override).
 * The effective config (after overrides) is kept as YAML text in cfg->text so
 * it can be stored in every model and checkpoint and parsed back exactly.
 * Sweeps reuse the override mechanism: a trial is the base text plus overrides.
 */
#ifndef CAVIAR_CONFIG_H
#define CAVIAR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caviar/status.h"

#define CV_PATH_MAX    1024
#define CV_MAX_LAYERS  64
#define CV_MAX_SWEEP   32
#define CV_MAX_CHOICES 32
#define CV_KEY_MAX     128
#define CV_CHOICE_MAX  256

enum cv_layer_type {
    CV_LAYER_DENSE,
    CV_LAYER_DROPOUT,
    CV_LAYER_CONV2D,
    CV_LAYER_MAXPOOL,
    CV_LAYER_AVGPOOL,
    CV_LAYER_GLOBAL_AVGPOOL,
    CV_LAYER_BATCHNORM,
    CV_LAYER_FLATTEN,
    CV_LAYER_RESIDUAL,
    CV_LAYER_ACTIVATION, /* standalone activation, e.g. after batchnorm */
    CV_LAYER_EMBEDDING,  /* token ids -> vectors */
    CV_LAYER_RNN,        /* recurrent layers: tanh, GRU, LSTM */
    CV_LAYER_GRU,
    CV_LAYER_LSTM,
    CV_LAYER_BIDIRECTIONAL, /* a recurrent layer run both ways */
    CV_LAYER_TYPE_COUNT
};

enum cv_activation {
    CV_ACT_LINEAR,
    CV_ACT_SIGMOID,
    CV_ACT_TANH,
    CV_ACT_RELU,
    CV_ACT_LEAKY_RELU,
    CV_ACT_SOFTMAX,
    CV_ACT_COUNT
};

enum cv_init { CV_INIT_AUTO, CV_INIT_HE, CV_INIT_XAVIER };

enum cv_loss { CV_LOSS_SOFTMAX_CE, CV_LOSS_BCE, CV_LOSS_MSE };

/* nesterov: PyTorch's SGD(momentum=beta1, nesterov=True); adamw: Adam with
 * decoupled weight decay (Loshchilov & Hutter 2019) */
enum cv_optimizer {
    CV_OPT_SGD,
    CV_OPT_MOMENTUM,
    CV_OPT_RMSPROP,
    CV_OPT_ADAM,
    CV_OPT_NESTEROV,
    CV_OPT_ADAMW
};

enum cv_decay {
    CV_DECAY_CONSTANT,
    CV_DECAY_INVERSE_TIME,
    CV_DECAY_EXPONENTIAL,
    CV_DECAY_STEP,
    CV_DECAY_COSINE,       /* to decay.floor, optionally restarting (SGDR) */
    CV_DECAY_INVERSE_SQRT, /* the course's k/sqrt(epoch): rate = k */
    CV_DECAY_PLATEAU       /* x rate after `patience` epochs without improvement */
};

enum cv_normalize { CV_NORM_NONE, CV_NORM_STANDARD };

/* train.monitor: the epoch metric that early stopping, reduce-on-plateau
 * and the best model follow */
enum cv_monitor {
    CV_MON_NONE,
    CV_MON_TRAIN_LOSS,
    CV_MON_TRAIN_ACCURACY,
    CV_MON_DEV_LOSS,
    CV_MON_DEV_ACCURACY,
    CV_MON_DEV_F1 /* macro-averaged over the classes */
};

#define CV_MAX_CLASSES 1024 /* model.class_weights entries */

enum cv_resume { CV_RESUME_NEVER, CV_RESUME_AUTO };
/* A switch whose default the trainer decides (comm.shard_optimizer) */
enum cv_tristate { CV_AUTO, CV_ON, CV_OFF };

/* comm.compression: how gradients cross between ranks */
enum cv_compression { CV_COMPRESS_NONE, CV_COMPRESS_BF16 };

enum cv_strategy {
    CV_STRATEGY_RANDOM,
    CV_STRATEGY_GRID,
    CV_STRATEGY_ASHA,
    CV_STRATEGY_TPE,
    CV_STRATEGY_PBT
};

/* train.schedule: keys whose value may change from an epoch on */
enum cv_sched_key {
    CV_SCHED_LR,
    CV_SCHED_BETA1,
    CV_SCHED_BETA2,
    CV_SCHED_L2,
    CV_SCHED_WEIGHT_DECAY,
    CV_SCHED_AUGMENT_SHIFT, /* data.augment.shift */
    CV_SCHED_KEEP,          /* model.layers.N.keep of dropout layer N */
    CV_SCHED_KEYS
};
#define CV_MAX_SCHEDULE 256

struct cv_sched_point {
    enum cv_sched_key key; /* which value */
    int layer;             /* CV_SCHED_KEEP: the top-level layer N, else -1 */
    long long at;          /* from this epoch (or global step, unit: steps) on, 0-based */
    double value;
};

/* sweep.direction: auto = from the metric's name (losses, mae, rmse: min) */
enum cv_direction { CV_DIRECTION_AUTO, CV_DIRECTION_MAX, CV_DIRECTION_MIN };

enum cv_dist {
    CV_DIST_CHOICE,
    CV_DIST_UNIFORM,
    CV_DIST_LOG_UNIFORM,
    CV_DIST_ONE_MINUS_LOG_UNIFORM,
    CV_DIST_INT_UNIFORM
};

/* bidirectional: how the two directions' outputs combine */
enum cv_merge { CV_MERGE_CONCAT, CV_MERGE_SUM };

#define CV_PAD_SAME  (-1)
#define CV_PAD_VALID (-2)

struct cv_layer_spec {
    enum cv_layer_type type;
    int line;                       /* config line of this layer, 0 if unknown */
    int units;                      /* dense: output features */
    enum cv_activation activation;  /* dense, conv2d, batchnorm, activation (default linear) */
    float leaky_slope;              /* leaky_relu slope for x < 0 (default 0.01) */
    enum cv_init init;              /* dense, conv2d: auto = He for relu family, else Xavier */
    float keep;                     /* dropout: keep probability in (0, 1] */
    int filters;                    /* conv2d: output channels */
    int size;                       /* conv2d kernel / pool window (square) */
    int stride;                     /* conv2d / pool stride (default 1 conv, = size pool) */
    int pad;                        /* conv2d: >= 0 pixels, CV_PAD_SAME or CV_PAD_VALID */
    float bn_momentum;              /* batchnorm: running-average momentum (default 0.9) */
    float bn_eps;                   /* batchnorm: variance epsilon (default 1e-5) */
    bool frozen;                    /* trainable: false - no update, no optimizer state */
    int vocab;                      /* embedding: token ids in [0, vocab) */
    int dim;                        /* embedding: vector size */
    int pad_id;                     /* embedding: id whose vector gets no gradient, -1 = none */
    bool return_sequences;          /* rnn, gru, lstm: every step (T, units), else the last */
    bool reverse;                   /* rnn, gru, lstm: run from the last step (bidirectional) */
    enum cv_merge merge;            /* bidirectional: concat (default) or sum */
    struct cv_layer_spec *children; /* residual: the wrapped layers; bidirectional: one (owned) */
    int n_children;                 /* residual: number of wrapped layers */
};

struct cv_sweep_dim {
    char key[CV_KEY_MAX]; /* config key path, e.g. "train.lr", "model.layers.0.units" */
    enum cv_dist dist;    /* distribution to sample from */
    double lo, hi;        /* bounds for uniform / log / int distributions */
    char choices[CV_MAX_CHOICES][CV_CHOICE_MAX]; /* choice(...): values as YAML text */
    int n_choices;                               /* number of choices */
    int line;                                    /* config line, for messages */
};

struct cv_config {
    char source[CV_PATH_MAX]; /* file the config came from (for messages) */
    char *text;               /* effective config as YAML (owned) */

    struct {
        char train[CV_PATH_MAX];     /* "file.h5" or "file.h5#group" */
        char dev[CV_PATH_MAX];       /* optional, "" if none */
        char test[CV_PATH_MAX];      /* optional, "" if none */
        enum cv_normalize normalize; /* none | standard (default standard) */
        bool augment_flip;           /* random horizontal mirror of image inputs */
        int augment_shift;           /* random shift by up to k pixels (0 = off) */
    } data;

    struct {
        int input[3];    /* per-sample shape (C, H, W); [784] -> {784, 1, 1} */
        int input_rank;  /* how many dims the config gave (1, 2 or 3) */
        int input_steps; /* [T, F]: T steps of input[0] = F features; 0 = no time axis */
        struct cv_layer_spec layers[CV_MAX_LAYERS];
        int n_layers;
        enum cv_loss loss;                   /* default softmax_cross_entropy */
        double label_smoothing;              /* softmax CE: targets (1-e) y + e/K (default 0) */
        float class_weights[CV_MAX_CLASSES]; /* per-class loss weights (n_class_weights) */
        int n_class_weights;                 /* 0 = none */
        bool balanced;                       /* class weights N / (K n_c) from data.train */
        char init_from[CV_PATH_MAX];         /* model file: load layers of matching name/shape */
    } model;

    struct {
        enum cv_optimizer optimizer; /* default adam */
        double lr;                   /* > 0 (default 1e-3) */
        double beta1;                /* momentum / Adam first moment (default 0.9) */
        double beta2;                /* RMSprop / Adam second moment (default 0.999) */
        double eps;                  /* default 1e-8 */
        int batch;                   /* global mini-batch size (default 128) */
        int epochs;                  /* default 10 */
        double l2;                   /* lambda; lambda/m * W added to dW (default 0) */
        double weight_decay;         /* adamw: w -= lr wd w, decoupled (default 0.01) */
        bool decay_all;              /* L2 / weight decay on biases and batch-norm too */
        double lr_loaded;            /* lr factor of the layers model.init_from loaded */
        enum cv_decay decay;         /* decay.kind (default constant) */
        double decay_rate;           /* decay.rate */
        int decay_every;             /* decay.every: epochs per step for kind step (default 1) */
        double decay_floor;          /* decay.floor: cosine / plateau lower bound (default 0) */
        int decay_restart;           /* decay.restart: cosine epochs of the first cycle, 0 = one */
        int decay_restart_mult;      /* decay.restart_mult: cycle growth factor (default 1) */
        int decay_patience;          /* decay.patience: plateau epochs (default 10) */
        int warmup_epochs;           /* warmup.epochs: linear ramp before the schedule */
        long long warmup_steps;      /* warmup.steps: the same in optimizer steps */
        enum cv_monitor monitor;     /* metric followed (default none; see docs/config.md) */
        bool monitor_min;            /* lower is better (a loss) */
        int patience;                /* early_stopping.patience: epochs, 0 = off */
        double min_delta;            /* early_stopping.min_delta: smallest improvement */
        double clip_norm;            /* global gradient-norm clip, 0 = off */
        uint64_t seed;               /* default 1 */
        long long max_steps;         /* stop after this many optimizer steps, 0 = no limit */
        struct cv_sched_point schedule[CV_MAX_SCHEDULE]; /* train.schedule (a pbt replay) */
        int n_schedule;
        bool schedule_steps; /* train.schedule.unit: steps (points at global steps) */
    } train;

    struct {
        enum cv_tristate shard_optimizer; /* each rank updates 1/P; auto: above 4 MiB */
        enum cv_compression compression;  /* gradients in bfloat16 (default none) */
        enum cv_tristate shared_memory;   /* one parameter arena per host (default auto) */
    } comm;

    struct {
        int every_steps;  /* 0 = off */
        int every_epochs; /* default 1 */
        int keep;         /* newest checkpoints kept (default 3) */
    } checkpoint;

    struct {
        char dir[CV_PATH_MAX];    /* run directory (default "runs/default") */
        enum cv_resume resume;    /* never | auto (default never) */
        double progress;          /* seconds between plain progress lines, 0 = off (default 30) */
        long long progress_steps; /* > 0: a plain progress line every so many steps instead */
        bool report;              /* rank 0 rewrites RUN_DIR/report.html after every epoch */
    } run;

    struct {
        int trials;                  /* number of trials (random/asha); grid: all points */
        int ranks_per_trial;         /* default 1 */
        enum cv_strategy strategy;   /* default random */
        char metric[64];             /* default "dev.accuracy" */
        enum cv_direction direction; /* auto | max | min (default auto) */
        bool minimize;               /* min, or auto and a loss-like metric name */
        uint64_t seed;               /* sampling seed (default = train.seed) */
        int eta;                     /* asha reduction factor (default 3) */
        int min_epochs;              /* asha minimum resource (default 1) */
        int max_epochs;              /* asha maximum resource (default train.epochs) */
        int budget_epochs;           /* total epochs handed out, 0 = no cap (default 0) */
        int ready;                   /* pbt: epochs between exploit steps (default 1) */
        int ready_steps;             /* pbt: global steps between them instead (0 = epochs) */
        double pbt_fraction;         /* pbt: bottom/top fraction of the population (default 0.25) */
        double resample;             /* pbt: probability to resample a key, not perturb (0.25) */
        int tpe_startup;             /* tpe: random trials before the model (default 10) */
        int tpe_candidates;          /* tpe: candidates scored per proposal (default 24) */
        struct cv_sweep_dim space[CV_MAX_SWEEP];
        int n_space;
    } sweep;
};

/* Load a YAML config file and apply `key.path=value` overrides in order.
 * On success *out is a new config owned by the caller (free with
 * cv_config_free).  Errors: CV_IO (file), CV_CONFIG (syntax, unknown key,
 * bad value: the message names file:line or the override). */
cv_status cv_config_load(const char *path, const char *const *overrides, int n_overrides,
                         struct cv_config **out, struct cv_error *err);

/* Same as cv_config_load from text in memory; `source` names it in messages
 * (e.g. "model.h5:/config"). */
cv_status cv_config_parse(const char *text, const char *source, const char *const *overrides,
                          int n_overrides, struct cv_config **out, struct cv_error *err);

/* Free a config and everything it owns.  NULL is harmless. */
void cv_config_free(struct cv_config *cfg);

/* Name <-> enum helpers shared by messages, inspect and checkpoints. */
const char *cv_layer_type_name(enum cv_layer_type t);
const char *cv_activation_name(enum cv_activation a);
const char *cv_loss_name(enum cv_loss l);
const char *cv_optimizer_name(enum cv_optimizer o);
const char *cv_monitor_name(enum cv_monitor m); /* "dev.loss", ... */

/* The first architectural difference between a and b (input, layers,
 * loss) described in buf ("model.layers.2.units differs"), or NULL when a
 * model of one can load the parameters of the other. */
/* The value of schedulable key k (of top-level layer `layer` for
 * CV_SCHED_KEEP, ignored otherwise) at e, the 0-based epoch (or global
 * step with train.schedule.unit: steps): the latest train.schedule point at
 * or before e, else the config's own value. */
double cv_config_sched_value(const struct cv_config *c, enum cv_sched_key k, int layer,
                             long long e);
/* "train.lr", ... for a schedulable key ("model.layers.N.keep" for
 * CV_SCHED_KEEP); the key of a name ("model.layers.3.keep": CV_SCHED_KEEP,
 * layer 3 in *layer when not NULL), -1 if the name is not schedulable. */
const char *cv_sched_key_name(enum cv_sched_key k);
int cv_sched_key_find(const char *name, int *layer);
/* Whether train.schedule has a point for key k. */
bool cv_config_sched_has(const struct cv_config *c, enum cv_sched_key k);

const char *cv_config_arch_diff(const struct cv_config *a, const struct cv_config *b, char *buf,
                                size_t n);

#endif /* CAVIAR_CONFIG_H */
