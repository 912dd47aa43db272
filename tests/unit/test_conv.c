/*
 * test_conv.c - convolution and pooling against hand-computed values (the
 * course's 6x6 vertical-edge example, 2x2 max/avg pooling, output sizes),
 * im2col against a direct 6-loop convolution, centred-difference gradient
 * checks through a model (conv stride 1 and 2, same and valid padding, max,
 * average and global average pooling), and shape errors naming the layer.
 */
#include <math.h>
#include <stdlib.h>

#include "caviar/gradcheck.h"
#include "caviar/model.h"
#include "fixtures.h"
#include "layer.h"
#include "test.h"
#include "util.h"

/* Plan + bind one layer on its own (arenas owned by the caller). */
struct one {
    struct cv_layer l;
    float *p, *g, *s, *scr;
};

static cv_status make(struct one *o, struct cv_layer_spec *sp, struct cv_shape in, int n,
                      struct cv_error *e)
{
    memset(o, 0, sizeof(*o));
    cv_status st = cv__layer_plan(&o->l, sp, 0, in, n, e);
    if (st != CV_OK)
        return st;
    size_t np = 0, ns = 0, nscr = 0;
    cv__layer_sizes(&o->l, &np, &ns, &nscr);
    o->p = calloc(np + 1, 4), o->g = calloc(np + 1, 4), o->s = calloc(ns + 1, 4);
    o->scr = calloc(nscr + 1, 4);
    float *p = o->p, *g = o->g, *s = o->s, *scr = o->scr;
    cv__layer_bind(&o->l, &p, &g, &s, &scr);
    return CV_OK;
}

static void drop(struct one *o)
{
    cv__layer_destroy(&o->l);
    free(o->p), free(o->g), free(o->s), free(o->scr);
}

static struct cv_layer_spec spec(enum cv_layer_type t, int filters, int size, int stride, int pad)
{
    struct cv_layer_spec s = {.type = t,
                              .filters = filters,
                              .size = size,
                              .stride = stride,
                              .pad = pad,
                              .activation = CV_ACT_LINEAR};
    return s;
}

static void test_vertical_edge(void)
{
    /* 6x6 image, left half 10, right half 0; filter [[1,0,-1]] x 3 rows, valid:
     * every row of the 4x4 output is 0, 30, 30, 0 */
    struct cv_layer_spec sp = spec(CV_LAYER_CONV2D, 1, 3, 1, CV_PAD_VALID);
    struct one o;
    ASSERT_EQ(make(&o, &sp, (struct cv_shape){1, 6, 6, 0}, 1, NULL), CV_OK);
    float x[36], y[16];
    for (int i = 0; i < 36; i++)
        x[i] = (i % 6) < 3 ? 10.0f : 0.0f;
    const float w[9] = {1, 0, -1, 1, 0, -1, 1, 0, -1};
    memcpy(o.l.params[0].data, w, sizeof(w));
    struct cv_ctx ctx = {0};
    o.l.ops->forward(&o.l, &ctx, x, y, 1);
    ASSERT_EQ(o.l.out.h, 4);
    for (int r = 0; r < 4; r++) {
        ASSERT_NEAR(y[r * 4 + 0], 0, 1e-6);
        ASSERT_NEAR(y[r * 4 + 1], 30, 1e-5);
        ASSERT_NEAR(y[r * 4 + 2], 30, 1e-5);
        ASSERT_NEAR(y[r * 4 + 3], 0, 1e-6);
    }
    drop(&o);
}

static void test_output_sizes(void)
{
    /* floor((n + 2p - f) / s) + 1; the last is a 1x1 convolution */
    struct size_case {
        int n, f, s, pad, out;
    };
    struct size_case c[] = {
        {6, 3, 1, CV_PAD_VALID, 4}, {6, 3, 1, CV_PAD_SAME, 6},   {7, 3, 2, 0, 3}, {7, 3, 2, 1, 4},
        {28, 5, 1, 2, 28},          {28, 3, 2, CV_PAD_SAME, 14}, {5, 1, 1, 0, 5},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct cv_layer_spec sp = spec(CV_LAYER_CONV2D, 2, c[i].f, c[i].s, c[i].pad);
        struct one o;
        ASSERT_EQ(make(&o, &sp, (struct cv_shape){3, c[i].n, c[i].n, 0}, 1, NULL), CV_OK);
        CV_TEST_REPORT(o.l.out.h == c[i].out && o.l.out.w == c[i].out,
                       "n %d f %d s %d: out %d, expected %d", c[i].n, c[i].f, c[i].s, o.l.out.h,
                       c[i].out);
        drop(&o);
    }
}

static void test_pooling_by_hand(void)
{
    const float x[16] = {1, 3, 2, 1, 2, 9, 1, 1, 1, 3, 2, 3, 5, 6, 1, 2};
    struct cv_ctx ctx = {0};
    float y[4];
    struct cv_layer_spec mp = spec(CV_LAYER_MAXPOOL, 0, 2, 2, 0),
                         ap = spec(CV_LAYER_AVGPOOL, 0, 2, 2, 0);
    struct one o;
    make(&o, &mp, (struct cv_shape){1, 4, 4, 0}, 1, NULL);
    o.l.ops->forward(&o.l, &ctx, x, y, 1);
    ASSERT_NEAR(y[0], 9, 0); /* max of {1,3,2,9} */
    ASSERT_NEAR(y[1], 2, 0);
    ASSERT_NEAR(y[2], 6, 0);
    ASSERT_NEAR(y[3], 3, 0);
    float dy[4] = {1, 1, 1, 1}, dx[16];
    o.l.ops->backward(&o.l, &ctx, x, y, dy, dx, 1);
    ASSERT_NEAR(dx[5], 1, 0); /* the gradient goes to the argmax only */
    ASSERT_NEAR(dx[0], 0, 0);
    drop(&o);
    make(&o, &ap, (struct cv_shape){1, 4, 4, 0}, 1, NULL);
    o.l.ops->forward(&o.l, &ctx, x, y, 1);
    ASSERT_NEAR(y[0], 3.75, 1e-6); /* (1+3+2+9)/4 */
    ASSERT_NEAR(y[3], 2.0, 1e-6);  /* (2+3+1+2)/4 */
    drop(&o);
}

/* The 2x2 stride-2 max pool (its own loop) against windows searched here:
 * odd sizes (the last row and column are dropped), many ties (the first
 * largest in row-major order wins), and the gradient lands on that one. */
static void test_max2x2_matches_search(void)
{
    enum { C = 2, H = 5, W = 7, OH = 2, OW = 3 };
    float x[C * H * W], y[C * OH * OW], dy[C * OH * OW], dx[C * H * W], want[C * H * W] = {0};
    struct cv_layer_spec mp = spec(CV_LAYER_MAXPOOL, 0, 2, 2, 0);
    struct cv_ctx ctx = {0};
    struct cv_rng r;
    struct one o;
    cv_rng_seed(&r, 5, 0, 0, 0);
    for (int k = 0; k < C * H * W; k++)
        x[k] = (float)(cv_rng_u64(&r) % 3); /* ties in most windows */
    make(&o, &mp, (struct cv_shape){C, H, W, 0}, 1, NULL);
    o.l.ops->forward(&o.l, &ctx, x, y, 1);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                int o_at = (c * OH + i) * OW + j, best = (c * H + 2 * i) * W + 2 * j;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        int at = (c * H + 2 * i + a) * W + 2 * j + b;
                        best = x[at] > x[best] ? at : best;
                    }
                ASSERT_NEAR(y[o_at], x[best], 0);
                dy[o_at] = (float)(o_at + 1);
                want[best] = dy[o_at];
            }
    o.l.ops->backward(&o.l, &ctx, x, y, dy, dx, 1);
    for (int k = 0; k < C * H * W; k++)
        ASSERT_NEAR(dx[k], want[k], 0);
    drop(&o);
}

static void test_matches_direct(void)
{
    struct cv_layer_spec sp = spec(CV_LAYER_CONV2D, 4, 3, 2, 1);
    struct one o;
    struct cv_shape in = {3, 9, 8, 0};
    make(&o, &sp, in, 2, NULL);
    struct cv_rng r;
    cv_rng_seed(&r, 3, 0, 0, 0);
    cv__layer_init(&o.l, &r);
    for (int f = 0; f < 4; f++)
        o.l.params[1].data[f] = 0.1f * f;
    float x[2 * 3 * 9 * 8], y[2 * 4 * 5 * 4];
    for (size_t i = 0; i < sizeof(x) / 4; i++)
        x[i] = (float)cv_rng_normal(&r);
    struct cv_ctx ctx = {0};
    o.l.ops->forward(&o.l, &ctx, x, y, 2);
    double worst = 0;
    const float *w = o.l.params[0].data;
    for (int n = 0; n < 2; n++)
        for (int f = 0; f < 4; f++)
            for (int oy = 0; oy < o.l.out.h; oy++)
                for (int ox = 0; ox < o.l.out.w; ox++) {
                    double s = 0.1 * f;
                    for (int c = 0; c < 3; c++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                int iy = oy * 2 + i - 1, ix = ox * 2 + j - 1;
                                if (iy >= 0 && iy < 9 && ix >= 0 && ix < 8)
                                    s += w[((f * 3 + c) * 3 + i) * 3 + j] *
                                         x[((n * 3 + c) * 9 + iy) * 8 + ix];
                            }
                    size_t at = ((size_t)(n * 4 + f) * o.l.out.h + oy) * o.l.out.w + ox;
                    worst = fmax(worst, fabs(s - y[at]));
                }
    ASSERT_NEAR(worst, 0, 1e-5);
    drop(&o);
}

/* conv/pool stack -> dense softmax, checked by centred differences */
static void gradcheck_stack(struct cv_layer_spec *layers, int nl, const char *what)
{
    struct cv_config c;
    int units[1] = {3};
    enum cv_activation acts[1] = {CV_ACT_SOFTMAX};
    fixture_mlp(&c, 1, units, acts, 1, CV_LOSS_SOFTMAX_CE);
    c.model.input[0] = 2, c.model.input[1] = 7, c.model.input[2] = 6;
    c.model.layers[nl] = c.model.layers[0];
    for (int i = 0; i < nl; i++)
        c.model.layers[i] = layers[i];
    c.model.n_layers = nl + 1;
    enum { N = 4 };
    float x[N * 2 * 7 * 6];
    int32_t y[N] = {0, 1, 2, 1};
    struct cv_rng r;
    cv_rng_seed(&r, 8, 0, 0, 0);
    for (size_t i = 0; i < sizeof(x) / 4; i++)
        x[i] = (float)cv_rng_normal(&r);
    cv_model *m = NULL;
    struct cv_error e;
    cv_error_clear(&e);
    if (cv_model_create(&c, N, &m, &e) != CV_OK) {
        CV_TEST_REPORT(0, "%s: %s", what, e.msg);
        return;
    }
    cv_model_init_params(m, 5);
    struct cv_batch b = {N, x, y, NULL, NULL, NULL};
    struct cv_gradcheck_result res;
    cv_gradcheck(m, &b, CV_GRADCHECK_EPS, 0, &res, NULL);
    CV_TEST_REPORT(res.rel_error < CV_GRADCHECK_THRESHOLD, "%s: relative error %g", what,
                   res.rel_error);
    cv_model_free(m);
}

static void test_gradchecks(void)
{
    struct cv_layer_spec a[2] = {spec(CV_LAYER_CONV2D, 3, 3, 1, CV_PAD_SAME)};
    a[0].activation = CV_ACT_TANH;
    gradcheck_stack(a, 1, "conv 3x3 stride 1 same, tanh");
    a[0] = spec(CV_LAYER_CONV2D, 3, 3, 2, CV_PAD_VALID);
    gradcheck_stack(a, 1, "conv 3x3 stride 2 valid");
    a[0] = spec(CV_LAYER_CONV2D, 2, 2, 2, CV_PAD_SAME);
    gradcheck_stack(a, 1, "conv 2x2 stride 2 same (asymmetric)");
    a[0] = spec(CV_LAYER_CONV2D, 3, 1, 1, 0);
    gradcheck_stack(a, 1, "conv 1x1");
    a[0] = spec(CV_LAYER_CONV2D, 3, 3, 1, 1);
    a[1] = spec(CV_LAYER_MAXPOOL, 0, 2, 2, 0);
    gradcheck_stack(a, 2, "conv + maxpool");
    a[1] = spec(CV_LAYER_AVGPOOL, 0, 3, 2, 0);
    gradcheck_stack(a, 2, "conv + avgpool 3/2");
    a[1] = spec(CV_LAYER_GLOBAL_AVGPOOL, 0, 0, 0, 0);
    gradcheck_stack(a, 2, "conv + global avgpool");
}

static void test_batchnorm(void)
{
    struct cv_layer_spec a[3] = {spec(CV_LAYER_CONV2D, 3, 3, 1, CV_PAD_SAME),
                                 spec(CV_LAYER_BATCHNORM, 0, 0, 0, 0)};
    a[1].bn_momentum = 0.9f, a[1].bn_eps = 1e-5f, a[1].activation = CV_ACT_TANH;
    gradcheck_stack(a, 2, "conv + batchnorm (per channel, tanh)");
    a[0] = a[1]; /* batchnorm first: its input gradient is not needed, gamma/beta are */
    a[0].activation = CV_ACT_LINEAR;
    gradcheck_stack(a, 1, "batchnorm as the first layer");
    /* training mode: each channel comes out with mean beta and std gamma */
    struct one o;
    struct cv_layer_spec bn = a[1];
    bn.activation = CV_ACT_LINEAR;
    make(&o, &bn, (struct cv_shape){2, 3, 3, 0}, 4, NULL);
    cv__layer_init(&o.l, NULL);
    o.l.params[0].data[1] = 2.0f, o.l.params[1].data[1] = 0.5f; /* gamma, beta of channel 1 */
    float x[4 * 18], y[4 * 18];
    struct cv_rng r;
    cv_rng_seed(&r, 4, 0, 0, 0);
    for (int i = 0; i < 72; i++)
        x[i] = (float)(3 + 5 * cv_rng_normal(&r));
    struct cv_ctx train = {.train = true}, infer = {.train = false};
    o.l.ops->forward(&o.l, &train, x, y, 4);
    double s = 0, s2 = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 9; j++) {
            double v = y[i * 18 + 9 + j];
            s += v, s2 += v * v;
        }
    ASSERT_NEAR(s / 36, 0.5, 1e-5);
    ASSERT_NEAR(sqrt(s2 / 36 - (s / 36) * (s / 36)), 2.0, 1e-3);
    /* inference uses the running statistics: after one step they are
     * 0.9 * (0, 1) + 0.1 * (batch mean, unbiased batch variance) */
    float rm = o.l.state[0].data[1], rv = o.l.state[1].data[1];
    o.l.ops->forward(&o.l, &infer, x, y, 4);
    ASSERT_NEAR(y[9], 2.0 * (x[9] - rm) / sqrt(rv + 1e-5) + 0.5, 1e-4);
    drop(&o);
}

static void test_residual(void)
{
    /* identity shortcut: conv(same) + batchnorm keeps (2, 7, 6) */
    struct cv_layer_spec kids[2] = {spec(CV_LAYER_CONV2D, 2, 3, 1, CV_PAD_SAME),
                                    spec(CV_LAYER_BATCHNORM, 0, 0, 0, 0)};
    kids[0].activation = CV_ACT_TANH;
    kids[1].bn_momentum = 0.9f, kids[1].bn_eps = 1e-5f;
    struct cv_layer_spec a[2] = {spec(CV_LAYER_RESIDUAL, 0, 0, 0, 0)};
    a[0].children = kids, a[0].n_children = 2, a[0].activation = CV_ACT_TANH;
    gradcheck_stack(a, 1, "residual, identity shortcut");
    /* projection shortcut: stride 2 and 4 channels -> 1x1 conv, stride 2 */
    kids[0] = spec(CV_LAYER_CONV2D, 4, 3, 2, 1);
    kids[0].activation = CV_ACT_TANH;
    a[0].n_children = 1;
    gradcheck_stack(a, 1, "residual, projection shortcut");
    /* as the second layer, so its input gradient is checked too */
    a[1] = a[0];
    a[0] = spec(CV_LAYER_CONV2D, 2, 3, 1, CV_PAD_SAME);
    a[0].activation = CV_ACT_TANH;
    gradcheck_stack(a, 2, "conv then residual (input gradient)");
    /* a branch that no 1x1 strided projection can match */
    struct cv_error e;
    struct one o;
    struct cv_layer_spec bad[1] = {spec(CV_LAYER_CONV2D, 3, 2, 1, CV_PAD_VALID)};
    struct cv_layer_spec res = spec(CV_LAYER_RESIDUAL, 0, 0, 0, 0);
    res.children = bad, res.n_children = 1;
    cv_error_clear(&e);
    ASSERT_EQ(make(&o, &res, (struct cv_shape){2, 6, 6, 0}, 1, &e), CV_SHAPE);
    ASSERT_STR_CONTAINS(e.msg, "layer 0 (residual): the branch maps (2, 6, 6) to (3, 5, 5)");
    drop(&o);
}

static void test_shape_errors(void)
{
    struct cv_error e;
    struct one o;
    struct cv_layer_spec sp = spec(CV_LAYER_CONV2D, 2, 9, 1, CV_PAD_VALID);
    cv_error_clear(&e);
    ASSERT_EQ(make(&o, &sp, (struct cv_shape){1, 6, 6, 0}, 1, &e), CV_SHAPE);
    ASSERT_STR_CONTAINS(e.msg, "layer 0 (conv2d): a 9x9 kernel does not fit the input (1, 6, 6)");
    drop(&o);
    sp = spec(CV_LAYER_CONV2D, 2, 3, 1, CV_PAD_SAME);
    sp.activation = CV_ACT_SOFTMAX;
    cv_error_clear(&e);
    ASSERT_EQ(make(&o, &sp, (struct cv_shape){1, 6, 6, 0}, 1, &e), CV_CONFIG);
    ASSERT_STR_CONTAINS(e.msg, "layer 0 (conv2d): activation softmax: expected an element-wise");
    drop(&o);
    sp = spec(CV_LAYER_MAXPOOL, 0, 5, 5, 0);
    cv_error_clear(&e);
    ASSERT_EQ(make(&o, &sp, (struct cv_shape){3, 4, 4, 0}, 1, &e), CV_SHAPE);
    ASSERT_STR_CONTAINS(e.msg, "window does not fit the input (3, 4, 4)");
    drop(&o);
}

int main(void)
{
    test_vertical_edge();
    test_output_sizes();
    test_pooling_by_hand();
    test_max2x2_matches_search();
    test_matches_direct();
    test_gradchecks();
    test_batchnorm();
    test_residual();
    test_shape_errors();
    TEST_MAIN_END();
}
