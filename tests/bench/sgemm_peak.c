/*
 * sgemm_peak.c - the machine's single-precision GEMM peak as OpenBLAS
 * reaches it: best of 5 runs of a 2048^3 cblas_sgemm, in GFLOP/s, with the
 * thread count OpenBLAS was given (OMP_NUM_THREADS).  Built by run.py.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void)
{
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n);
    float *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c)
        return 1;
    for (long i = 0; i < (long)n * n; i++)
        a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.2f, c[i] = 0;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double g = 2.0 * n * n * (double)n / (now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    printf("{\"gflops\": %.1f, \"core\": \"%s\"}\n", best, openblas_get_corename());
    free(a);
    free(b);
    free(c);
    return 0;
}
