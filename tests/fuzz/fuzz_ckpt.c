/*
 * fuzz_ckpt.c - the checkpoint and model reader: what `inspect` (info and
 * verify), `eval` and `predict` (config, model, weights) and `train
 * --resume` (optimizer moments and training state) read from a .h5 file.
 * The input is the file; seeds are small valid models and checkpoints
 * (tests/fuzz/seeds/ckpt).
 */
#include <hdf5.h>
#include <stddef.h>

#include "caviar/checkpoint.h"
#include "fuzz_common.h"

/* A stored config may describe any model; the harness only builds small
 * ones, so that a changed digit in `units` is not an out-of-memory finding
 * of its own (64-bit size checks of model shapes belong to the model). */
static int small_layers(const struct cv_layer_spec *l, int n)
{
    for (int i = 0; i < n; i++)
        if (l[i].units > 256 || l[i].filters > 256 || !small_layers(l[i].children, l[i].n_children))
            return 0;
    return 1;
}

static int small_model(const struct cv_config *cfg)
{
    const int *in = cfg->model.input;
    return (double)in[0] * in[1] * in[2] <= 4096 &&
           small_layers(cfg->model.layers, cfg->model.n_layers);
}

static void load(const char *path, const struct cv_config *cfg)
{
    cv_model *m = NULL;
    cv_optim *o = NULL;
    struct cv_train_state ts = {0};
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_model_create(cfg, 1, &m, &err);
    if (st == CV_OK)
        st = cv_optim_create(cfg, m, &o, &err);
    if (st == CV_OK) { /* as eval and predict load it, then as train --resume does */
        st = cv_ckpt_load(path, m, NULL, NULL, &err);
        FUZZ_CHECK(st == CV_OK || err.msg[0], "load status %d without a message", (int)st);
        fuzz_note("load model", (int)st, err.msg);
        cv_error_clear(&err);
        st = cv_ckpt_load(path, m, o, &ts, &err);
        FUZZ_CHECK(st == CV_OK || err.msg[0], "load status %d without a message", (int)st);
        fuzz_note("load", (int)st, err.msg);
    }
    free(ts.metrics);
    cv_optim_free(o);
    cv_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[256];
    struct cv_error err;
    struct cv_ckpt_info info;
    struct cv_config *cfg = NULL;
    fuzz_h5_checker();
    fuzz_write(fuzz_path("ckpt.h5", path, sizeof(path)), data, size);
    cv_error_clear(&err);
    cv_status st = cv_ckpt_info(path, &info, &err);
    FUZZ_CHECK(st == CV_OK || err.msg[0], "info status %d without a message", (int)st);
    fuzz_note("info", (int)st, err.msg);
    free(info.ts.metrics);
    cv_error_clear(&err);
    st = cv_ckpt_verify(path, &err);
    FUZZ_CHECK(st == CV_OK || err.msg[0], "verify status %d without a message", (int)st);
    fuzz_note("verify", (int)st, err.msg);
    cv_error_clear(&err);
    st = cv_ckpt_read_config(path, NULL, 0, &cfg, &err);
    FUZZ_CHECK(st == CV_OK || err.msg[0], "config status %d without a message", (int)st);
    fuzz_note("config", (int)st, err.msg);
    if (st == CV_OK && small_model(cfg))
        load(path, cfg);
    cv_config_free(cfg);
    ssize_t left = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); /* a reader left a handle open */
    FUZZ_CHECK(left == 0, "%zd HDF5 objects still open", left);
    fuzz_cleanup(path);
    return 0;
}
