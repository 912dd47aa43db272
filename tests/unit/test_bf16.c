/*
 * test_bf16.c - float -> bfloat16 rounding against bit patterns worked out
 * by hand (bfloat16 keeps the sign, the 8 exponent bits and the top 7
 * mantissa bits; 1.0 is 0x3F80 and one unit in the last place at 1.0 is
 * 2^-7), and the round trip of every bfloat16.
 */
#include <float.h>
#include <math.h>

#include "bf16.h"
#include "test.h"

static void test_rounding(void)
{
    ASSERT_EQ(cv_bf16_from_float(1.0f), 0x3F80);
    ASSERT_EQ(cv_bf16_from_float(-2.0f), 0xC000);
    ASSERT_EQ(cv_bf16_from_float(0.0f), 0x0000);
    ASSERT_EQ(cv_bf16_from_float(-0.0f), 0x8000);
    /* 1 + 2^-8 lies halfway between 1 (0x3F80, even) and 1 + 2^-7: to even */
    ASSERT_EQ(cv_bf16_from_float(1.0f + 0x1p-8f), 0x3F80);
    /* 1 + 3 * 2^-8: halfway between 0x3F81 and 0x3F82 (even) */
    ASSERT_EQ(cv_bf16_from_float(1.0f + 3 * 0x1p-8f), 0x3F82);
    /* just above the halfway point rounds up, just below rounds down */
    ASSERT_EQ(cv_bf16_from_float(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
    ASSERT_EQ(cv_bf16_from_float(1.0f + 0x1p-8f - 0x1p-20f), 0x3F80);
    /* 0.1f = 0x3DCCCCCD: the dropped bits 0xCCCD are above half, so up */
    ASSERT_EQ(cv_bf16_from_float(0.1f), 0x3DCD);
    /* infinities stay; FLT_MAX rounds past the largest bfloat16 to +inf */
    ASSERT_EQ(cv_bf16_from_float(INFINITY), 0x7F80);
    ASSERT_EQ(cv_bf16_from_float(-INFINITY), 0xFF80);
    ASSERT_EQ(cv_bf16_from_float(FLT_MAX), 0x7F80);
    /* a NaN whose payload sits in the dropped bits must not become inf */
    float nan_low;
    uint32_t bits = 0x7F800001u;
    memcpy(&nan_low, &bits, sizeof(nan_low));
    ASSERT_TRUE(isnan(cv_bf16_to_float(cv_bf16_from_float(nan_low))));
    ASSERT_TRUE(isnan(cv_bf16_to_float(cv_bf16_from_float(NAN))));
    /* the smallest subnormal float is below half the smallest bfloat16 one */
    ASSERT_EQ(cv_bf16_from_float(0x1p-149f), 0x0000);
    ASSERT_NEAR(cv_bf16_to_float(0x3F81), 1.0 + 0x1p-7, 0);
}

static void test_round_trip(void)
{
    int wrong = 0;
    for (uint32_t h = 0; h <= 0xFFFF; h++) {
        float f = cv_bf16_to_float((uint16_t)h);
        if (isnan(f))
            continue;
        wrong += cv_bf16_from_float(f) != h;
    }
    CV_TEST_REPORT(wrong == 0, "%d bfloat16 values did not survive the round trip", wrong);
}

/* The relative error of the rounding is at most 2^-8 (half a unit in the
 * last place, 2^-7, relative to a significand of at least 1), and reaches
 * beyond 2^-9, over a sweep of normal floats. */
static void test_error_bound(void)
{
    double worst = 0;
    for (float x = 1e-30f; x < 1e30f; x *= 1.0001731f) {
        double r = cv_bf16_to_float(cv_bf16_from_float(x));
        double e = fabs(r - x) / x;
        worst = e > worst ? e : worst;
    }
    CV_TEST_REPORT(worst <= 0x1p-8 && worst > 0x1p-9, "worst relative error %g (2^-8 = %g)", worst,
                   0x1p-8);
}

int main(void)
{
    test_rounding();
    test_round_trip();
    test_error_bound();
    TEST_MAIN_END();
}
