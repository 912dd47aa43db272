/*
 * split_gemm.c - what splitting a dense layer by features (comm.split_features)
 * buys one rank: its GEMMs as one rank of 2 computes them with the batch
 * split by rows (128 rows, every column) and with the layer split by
 * features (the host's 256 rows, half the columns).  Best of 30 runs each,
 * in ms, on the thread count OpenBLAS was given (OMP_NUM_THREADS):
 *   OMP_NUM_THREADS=1 taskset -c 0 build/tests/split_gemm
 */
#include <cblas.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { REPS = 30 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best time of C (m, n) = A (m, k) op(B), B rows ldb floats apart. */
static double best(bool tb, int m, int n, int k, const float *a, const float *b, int ldb, float *c,
                   int ldc)
{
    double t_best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
                    k, b, ldb, 0.0f, c, ldc);
        t = now() - t;
        t_best = t < t_best ? t : t_best;
    }
    return t_best * 1e3;
}

static float *random_floats(size_t n)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return p;
}

int main(void)
{
    const int rows = 128, ranks = 2, dims[][2] = {{784, 2048}, {2048, 2048}};
    float *x = random_floats((size_t)rows * ranks * 2048), *w = random_floats(2048 * 2048);
    float *y = random_floats((size_t)rows * ranks * 2048);
    if (!x || !w || !y)
        return 1;
    for (int d = 0; d < 2; d++) {
        int in = dims[d][0], out = dims[d][1];
        /* forward y = x W^T, W (out, in) */
        double by_rows = best(true, rows, out, in, x, w, in, y, out);
        double by_cols = best(true, rows * ranks, out / ranks, in, x, w, in, y, out);
        printf("%d-%d forward: %d rows x %d columns %.3f ms, %d x %d %.3f ms\n", in, out, rows,
               out, by_rows, rows * ranks, out / ranks, by_cols);
        if (d == 0)
            continue;
        /* input gradients dx = dz W, dz (rows, out), dx's columns split */
        by_rows = best(false, rows, in, out, y, w, in, x, in);
        by_cols = best(false, rows * ranks, in / ranks, out, y, w, in, x, in);
        printf("%d-%d input gradients: %d rows x %d columns %.3f ms, %d x %d %.3f ms\n", in, out,
               rows, in, by_rows, rows * ranks, in / ranks, by_cols);
    }
    free(x);
    free(w);
    free(y);
    return 0;
}
