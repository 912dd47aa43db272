/*
 * bf16.h - bfloat16 (the upper 16 bits of an IEEE-754 float: same exponent
 * range, 8 significant bits) for the compressed gradient exchange
 * (comm.compression: bf16).  Floats round to nearest, ties to even, as
 * PyTorch's float->bfloat16 cast does; a NaN stays a (quiet) NaN, and a
 * value beyond the largest bfloat16 rounds to infinity.
 */
#ifndef CV_BF16_H
#define CV_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t cv_bf16_from_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: truncating could make it infinite */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u); /* to nearest; a tie goes to the even result */
    return (uint16_t)(u >> 16);
}

static inline float cv_bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* The array loops run on the OpenMP threads once they are long enough. */
#define CV_BF16_PARALLEL_MIN 65536

/* out[i] = bf16(x[i]) */
static inline void cv_bf16_pack(const float *x, uint16_t *out, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= CV_BF16_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = cv_bf16_from_float(x[i]);
}

/* acc[i] += in[i], in float */
static inline void cv_bf16_accumulate(float *acc, const uint16_t *in, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= CV_BF16_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        acc[i] += cv_bf16_to_float(in[i]);
}

/* out[i] = in[i] as a float */
static inline void cv_bf16_unpack(const uint16_t *in, float *out, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= CV_BF16_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = cv_bf16_to_float(in[i]);
}

#endif /* CV_BF16_H */
