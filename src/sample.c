/*
 * sample.c - the course's sampling loop for a character-level language
 * model: feed the prime, draw the next character from the softmax at a
 * temperature, feed it back, until the end-of-line token (a lines model),
 * the model's longest row, or the requested length.
 *
 * Each character costs one forward pass over the sequence so far (the
 * model's forward is causal: the output at step L - 1 depends on steps
 * 0 .. L - 1 only).  A window model sees the last T characters once the
 * text is longer than its T steps.  The draws come from one generator keyed
 * by the seed, so a seed always gives the same text.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/sample.h"
#include "text_internal.h"
#include "util.h"

#define SAMPLE_KEY 0x53414d504c45ull /* "SAMPLE": the sampler's own random stream */

int cv__sample_pick(const float *p, int n, double temperature, double u)
{
    double top = -INFINITY, total = 0;
    for (int i = 0; i < n; i++)
        top = p[i] > 0 && log(p[i]) > top ? log(p[i]) : top;
    for (int i = 0; i < n; i++) /* p^(1/temperature), scaled so the largest is 1 */
        total += p[i] > 0 ? exp((log(p[i]) - top) / temperature) : 0;
    if (!(total > 0)) /* all zero or NaN: nothing to prefer */
        return (int)(u * n);
    double goal = u * total, sum = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (!(p[i] > 0))
            continue;
        sum += exp((log(p[i]) - top) / temperature);
        last = i;
        if (sum > goal)
            return i;
    }
    return last; /* rounding left goal at the very end */
}

/* The model must read token ids of this vocabulary and predict one of them
 * at each of its steps. */
static cv_status check_model(const cv_model *m, const struct cv_vocab *v, const char *name,
                             struct cv_error *err)
{
    int T = cv_model_output_steps(m), V = cv_model_vocab(m);
    if (T <= 0 || V <= 0)
        return cv_fail(err, CV_FORMAT,
                       "%s: not a character language model: it %s (expected an embedding of "
                       "the tokens, a recurrent layer returning every step and a softmax)",
                       name, V <= 0 ? "does not read token ids" : "predicts no sequence");
    if (V != v->n || cv_model_outputs(m) != T * V || cv_model_inputs(m) != T)
        return cv_fail(err, CV_FORMAT,
                       "%s: the model reads %d token ids and predicts %d values per row, but its "
                       "vocabulary has %d tokens over %d steps",
                       name, V, cv_model_outputs(m), v->n, T);
    return CV_OK;
}

/* Ids of the prime's characters; CV_USAGE naming the first one that is not
 * in the vocabulary. */
static cv_status prime_ids(const struct cv_vocab *v, const char *prime, int32_t *ids, int *n,
                           struct cv_error *err)
{
    for (size_t i = 0; prime[i];) {
        int len, id = cv_vocab_find(v, prime + i, &len);
        if (id < 0 && len == 0)
            return cv_fail(err, CV_USAGE, "--prime: invalid UTF-8 at byte offset %zu", i);
        if (id < 0)
            return cv_fail(err, CV_USAGE,
                           "--prime: '%.*s' (byte offset %zu) is not in the model's vocabulary "
                           "of %d characters",
                           len, prime + i, i, v->n);
        ids[(*n)++] = id;
        i += (size_t)len;
    }
    return CV_OK;
}

/* Append token id's text to out (room for it is the caller's). */
static void put(char *out, size_t *used, const struct cv_vocab *v, int id)
{
    size_t len = strlen(v->tokens[id]);
    memcpy(out + *used, v->tokens[id], len + 1);
    *used += len;
}

struct loop {
    cv_model *m;
    const struct cv_vocab *v;
    int T, V;
    float *x, *probs; /* (T), (T, V) */
    int32_t *ids;     /* (cap) every token so far */
    int n, cap;
};

/* Probabilities of the token after ids[0 .. n) into l->probs row L - 1;
 * returns L, the steps fed. */
static int step(struct loop *l)
{
    int L = l->n < l->T ? l->n : l->T, first = l->n - L;
    for (int k = 0; k < l->T; k++)
        l->x[k] = (float)(k < L ? l->ids[first + k] : 0);
    int32_t len = L;
    struct cv_batch b = {.n = 1, .x = l->x, .lengths = &len};
    cv_model_predict(l->m, &b, l->probs, NULL);
    return L;
}

static void run(struct loop *l, const struct cv_sample_opts *o, char *out, size_t *used)
{
    struct cv_rng rng;
    cv_rng_seed(&rng, o->seed, SAMPLE_KEY, 0, 0);
    bool lines = l->v->eol >= 0;
    for (long long i = 0; i < o->length; i++) {
        if (lines && l->n >= l->T) /* as long as the longest line it learnt */
            break;
        int L = step(l);
        int id = cv__sample_pick(l->probs + (size_t)(L - 1) * (size_t)l->V, l->V, o->temperature,
                                 cv_rng_uniform_d(&rng));
        if (lines && id == l->v->eol)
            break;
        l->ids[l->n++] = id;
        put(out, used, l->v, id);
    }
}

static cv_status start(struct loop *l, const struct cv_sample_opts *o, char *out, size_t *used,
                       struct cv_error *err)
{
    const struct cv_vocab *v = l->v;
    int n = 0;
    if (v->eol >= 0) /* a line starts after an end of line */
        l->ids[l->n++] = v->eol;
    cv_status st = prime_ids(v, o->prime ? o->prime : "", l->ids + l->n, &n, err);
    l->n += n;
    for (int i = l->n - n; st == CV_OK && i < l->n; i++)
        put(out, used, v, l->ids[i]);
    if (st == CV_OK && l->n == 0) { /* a window model: start from a line end if it knows one */
        int len, nl = cv_vocab_find(v, "\n", &len);
        if (nl < 0)
            return cv_fail(err, CV_USAGE,
                           "--prime: this model has no newline in its vocabulary to start from: "
                           "give it a few characters");
        l->ids[l->n++] = nl;
    }
    if (st == CV_OK && v->eol >= 0 && l->n > l->T)
        st = cv_fail(err, CV_USAGE, "--prime: %d characters, but the model's lines are at most %d",
                     l->n - 1, l->T - 1);
    return st;
}

static cv_status check_opts(const struct cv_sample_opts *o, struct cv_error *err)
{
    if (!(o->temperature > 0) || !isfinite(o->temperature))
        return cv_fail(err, CV_USAGE, "--temperature %g: expected a number > 0", o->temperature);
    if (o->length < 0 || o->length > (1 << 24))
        return cv_fail(err, CV_USAGE, "--length %lld: expected 0 to %d", o->length, 1 << 24);
    return CV_OK;
}

cv_status cv_sample(cv_model *m, const struct cv_vocab *v, const struct cv_sample_opts *o,
                    const char *name, char **text, struct cv_error *err)
{
    *text = NULL;
    cv_status st = check_opts(o, err);
    if (st == CV_OK)
        st = check_model(m, v, name, err);
    if (st != CV_OK)
        return st;
    size_t prime = o->prime ? strlen(o->prime) : 0, used = 0;
    struct loop l = {m, v, cv_model_output_steps(m), v->n, NULL, NULL, NULL, 0, 0};
    l.cap = (int)prime + (int)o->length + 2;
    l.x = cv_calloc((size_t)l.T, sizeof(float));
    l.probs = cv_calloc((size_t)l.T * (size_t)l.V, sizeof(float));
    l.ids = cv_calloc((size_t)l.cap, sizeof(int32_t));
    char *out = cv_calloc((size_t)l.cap, CV_TOKEN_MAX);
    if (!l.x || !l.probs || !l.ids || !out)
        st = cv_fail(err, CV_NOMEM, "out of memory for %lld characters", o->length);
    if (st == CV_OK)
        st = start(&l, o, out, &used, err);
    if (st == CV_OK)
        run(&l, o, out, &used);
    free(l.x);
    free(l.probs);
    free(l.ids);
    if (st == CV_OK)
        *text = out;
    else
        free(out);
    return st;
}
