/*
 * test_sample.c - the sampler of `caviar sample`: the temperature draw
 * against its definition (frequencies of p^(1/T), renormalised, over many
 * seeded draws; argmax as T -> 0; zero entries never drawn), and the loop on
 * a small untrained character model: deterministic per seed, different
 * across seeds, stops at the end of line, refuses a prime outside the
 * vocabulary, a temperature <= 0 and a vocabulary the model does not read;
 * as the temperature goes to 0 it prints the greedy decoding computed
 * here step by step (the loop feeds back, reads the right step, slides).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "caviar/config.h"
#include "caviar/sample.h"
#include "fixtures.h"
#include "test.h"
#include "text_internal.h"
#include "util.h"

#define DRAWS 200000

/* Frequencies of DRAWS picks against p^(1/t) renormalised, within 5
 * standard deviations of a binomial count. */
static void check_frequencies(const float *p, int n, double t)
{
    double want[8], total = 0;
    long long count[8] = {0};
    for (int i = 0; i < n; i++)
        total += want[i] = p[i] > 0 ? pow(p[i], 1 / t) : 0;
    struct cv_rng r;
    cv_rng_seed(&r, 11, 1, 2, 3);
    for (int k = 0; k < DRAWS; k++)
        count[cv__sample_pick(p, n, t, cv_rng_uniform_d(&r))]++;
    for (int i = 0; i < n; i++) {
        double q = want[i] / total, sd = sqrt(DRAWS * q * (1 - q));
        ASSERT_NEAR(count[i], DRAWS * q, 5 * sd + 1e-9);
    }
}

static void test_pick(void)
{
    const float p[5] = {0.1f, 0.0f, 0.5f, 0.3f, 0.1f};
    check_frequencies(p, 5, 1.0);
    check_frequencies(p, 5, 0.5);
    check_frequencies(p, 5, 2.0);
    int argmax = 0, zero = 0;
    for (int k = 0; k < 1000; k++) {
        double u = (k + 0.5) / 1000;
        argmax += cv__sample_pick(p, 5, 1e-3, u) == 2;
        zero += cv__sample_pick(p, 5, 1.0, u) == 1 || cv__sample_pick(p, 5, 3.0, u) == 1;
    }
    ASSERT_EQ(argmax, 1000);
    ASSERT_EQ(zero, 0);
    ASSERT_EQ(cv__sample_pick(p, 5, 1.0, 0.0), 0);
    ASSERT_EQ(cv__sample_pick(p, 5, 1.0, 0.9999999), 4);
}

/* ---- the loop on a small untrained model ---- */

/* embedding (V, 4) -> lstm 8 every step -> dense V softmax, on [T] ids */
static cv_model *char_model(struct cv_config *c, int T, int V)
{
    memset(c, 0, sizeof(*c));
    c->model.input[0] = T;
    c->model.input[1] = c->model.input[2] = 1;
    c->model.input_rank = 1;
    c->model.loss = CV_LOSS_SOFTMAX_CE;
    c->train.seed = 7;
    struct cv_layer_spec *e = fixture_add_layer(c, CV_LAYER_EMBEDDING, 0);
    e->vocab = V;
    e->dim = 4;
    fixture_add_layer(c, CV_LAYER_LSTM, 8)->return_sequences = true;
    fixture_add_layer(c, CV_LAYER_DENSE, V)->activation = CV_ACT_SOFTMAX;
    cv_model *m = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    if (cv_model_create(c, 1, &m, &err) != CV_OK) {
        fprintf(stderr, "char_model: %s\n", err.msg);
        return NULL;
    }
    cv_model_init_params(m, 3);
    float *p = cv_model_params(m); /* larger weights: sharper, input-dependent predictions */
    for (size_t i = 0; i < cv_model_n_params(m); i++)
        p[i] *= 4;
    return m;
}

/* The vocabulary "\n" a b c d e (eol 0 when lines). */
static struct cv_vocab letters(bool lines)
{
    static char tok[6][2] = {"\n", "a", "b", "c", "d", "e"};
    static char *ptr[6];
    for (int i = 0; i < 6; i++)
        ptr[i] = tok[i];
    return (struct cv_vocab){6, ptr, lines ? 0 : -1};
}

/* Greedy decoding computed here, step by step through cv_model_predict:
 * what the sampler must print as the temperature goes to 0. */
static void greedy(cv_model *m, const struct cv_vocab *v, const int *start, int n0, int length,
                   char *out)
{
    int T = cv_model_output_steps(m), ids[64], n = n0;
    float x[16], probs[16 * 6];
    memcpy(ids, start, sizeof(int) * (size_t)n0);
    out[0] = '\0';
    for (int i = 0; i < length; i++) {
        if (v->eol >= 0 && n >= T)
            break;
        int L = n < T ? n : T;
        for (int k = 0; k < T; k++)
            x[k] = k < L ? (float)ids[n - L + k] : 0;
        int32_t len = L;
        struct cv_batch b = {.n = 1, .x = x, .lengths = &len};
        cv_model_predict(m, &b, probs, NULL);
        int best = 0;
        for (int j = 1; j < 6; j++)
            best = probs[(L - 1) * 6 + j] > probs[(L - 1) * 6 + best] ? j : best;
        if (v->eol >= 0 && best == v->eol)
            break;
        ids[n++] = best;
        strcat(out, v->tokens[best]);
    }
}

static void test_loop(void)
{
    struct cv_config c;
    cv_model *m = char_model(&c, 5, 6);
    ASSERT_TRUE(m != NULL);
    if (!m)
        return;
    struct cv_error err;
    cv_error_clear(&err);
    char *a = NULL, *b = NULL, want[64];
    struct cv_vocab win = letters(false), lines = letters(true);
    /* a window model slides over its last 5 characters */
    struct cv_sample_opts o = {.prime = "ab", .length = 12, .temperature = 1e-4, .seed = 1};
    ASSERT_EQ(cv_sample(m, &win, &o, "m.h5", &a, &err), CV_OK);
    greedy(m, &win, (const int[]){1, 2}, 2, 12, want);
    ASSERT_TRUE(a && !strncmp(a, "ab", 2) && !strcmp(a + 2, want));
    free(a);
    /* a lines model starts after the end of line, stops at the next */
    o.prime = "";
    ASSERT_EQ(cv_sample(m, &lines, &o, "m.h5", &a, &err), CV_OK);
    greedy(m, &lines, (const int[]){0}, 1, 12, want);
    ASSERT_TRUE(a && !strcmp(a, want) && strlen(a) <= 4);
    free(a);
    /* temperature 1: one seed one text, 20 seeds more than one text */
    o.temperature = 1;
    o.length = 30;
    ASSERT_EQ(cv_sample(m, &win, &o, "m.h5", &a, &err), CV_OK);
    ASSERT_EQ(cv_sample(m, &win, &o, "m.h5", &b, &err), CV_OK);
    ASSERT_TRUE(a && b && !strcmp(a, b) && strlen(a) == 30);
    int differ = 0;
    for (uint64_t s = 2; s < 22; s++) {
        char *t = NULL;
        o.seed = s;
        cv_sample(m, &win, &o, "m.h5", &t, &err);
        differ += t && strcmp(t, a) != 0;
        free(t);
    }
    ASSERT_EQ(differ, 20);
    free(a);
    free(b);
    int ended = 0, newline = 0; /* lines end at the end-of-line token, which is not printed */
    for (uint64_t s = 1; s <= 50; s++) {
        char *t = NULL;
        o.seed = s;
        cv_sample(m, &lines, &o, "m.h5", &t, &err);
        ended += t && strlen(t) < 4;
        newline += !t || strchr(t, '\n') != NULL;
        free(t);
    }
    ASSERT_TRUE(ended > 0);
    ASSERT_EQ(newline, 0);

    /* refused */
    o.prime = "abz";
    ASSERT_EQ(cv_sample(m, &win, &o, "m.h5", &a, &err), CV_USAGE);
    ASSERT_STR_CONTAINS(err.msg, "--prime: 'z' (byte offset 2) is not in the model's vocabulary");
    ASSERT_TRUE(a == NULL);
    cv_error_clear(&err);
    o.prime = "abcde";
    ASSERT_EQ(cv_sample(m, &lines, &o, "m.h5", &a, &err), CV_USAGE);
    ASSERT_STR_CONTAINS(err.msg, "--prime: 5 characters, but the model's lines are at most 4");
    cv_error_clear(&err);
    o.prime = NULL;
    o.temperature = 0;
    ASSERT_EQ(cv_sample(m, &win, &o, "m.h5", &a, &err), CV_USAGE);
    ASSERT_STR_CONTAINS(err.msg, "--temperature 0: expected a number > 0");
    cv_error_clear(&err);
    o.temperature = 1;
    struct cv_vocab small = {5, win.tokens, -1};
    ASSERT_EQ(cv_sample(m, &small, &o, "m.h5", &a, &err), CV_FORMAT);
    ASSERT_STR_CONTAINS(err.msg, "m.h5: the model reads 6 token ids");
    cv_model_free(m);

    /* a model that reads features, not token ids */
    struct cv_config f;
    memset(&f, 0, sizeof(f));
    f.model.input[0] = 6;
    f.model.input[1] = f.model.input[2] = 1;
    f.model.input_rank = 1;
    f.model.loss = CV_LOSS_SOFTMAX_CE;
    fixture_add_layer(&f, CV_LAYER_DENSE, 6)->activation = CV_ACT_SOFTMAX;
    cv_error_clear(&err);
    ASSERT_EQ(cv_model_create(&f, 1, &m, &err), CV_OK);
    ASSERT_EQ(cv_sample(m, &win, &o, "mlp.h5", &a, &err), CV_FORMAT);
    ASSERT_STR_CONTAINS(err.msg, "mlp.h5: not a character language model: it does not read token");
    cv_model_free(m);
}

/* The vocabulary a model keeps travels through its file: written as root
 * attributes, read back by cv_vocab_read (what `caviar sample` reads) and
 * by a load into another model. */
static void test_model_file(void)
{
    struct cv_config c;
    cv_model *m = char_model(&c, 5, 6), *m2 = char_model(&c, 5, 6);
    struct cv_vocab lines = letters(true), back;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_TRUE(m && m2 && cv_model_tokens(m) == NULL);
    if (!m || !m2)
        return;
    char path[] = "/tmp/caviar-sample-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ASSERT_EQ(cv_ckpt_save(path, m, NULL, NULL, &err), CV_OK);
    bool found = true;
    ASSERT_EQ(cv_vocab_read(path, &back, &found, &err), CV_OK);
    ASSERT_TRUE(!found); /* a model without one stores none */
    ASSERT_EQ(cv_model_set_tokens(m, &lines, &err), CV_OK);
    ASSERT_EQ(cv_ckpt_save(path, m, NULL, NULL, &err), CV_OK);
    ASSERT_EQ(cv_vocab_read(path, &back, &found, &err), CV_OK);
    ASSERT_TRUE(found && back.n == 6 && back.eol == 0 && !strcmp(back.tokens[3], "c"));
    cv_vocab_deinit(&back);
    ASSERT_EQ(cv_ckpt_load(path, m2, NULL, NULL, &err), CV_OK);
    const struct cv_vocab *t = cv_model_tokens(m2);
    ASSERT_TRUE(t && t->n == 6 && t->eol == 0 && !strcmp(t->tokens[0], "\n"));
    unlink(path);
    cv_model_free(m);
    cv_model_free(m2);
}

int main(void)
{
    test_pick();
    test_loop();
    test_model_file();
    TEST_MAIN_END();
}
