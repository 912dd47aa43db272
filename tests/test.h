/*
 * test.h - a tiny assertion harness: each ASSERT prints both values and
 * file:line, counts the failure and continues; TEST_MAIN_END prints the
 * "N passed, N failed" line and returns non-zero if anything failed.
 */
#ifndef CV_TEST_H
#define CV_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int cv_test_passed, cv_test_failed;

#define CV_TEST_REPORT(ok, ...)                                                                    \
    do {                                                                                           \
        if (ok) {                                                                                  \
            cv_test_passed++;                                                                      \
        } else {                                                                                   \
            cv_test_failed++;                                                                      \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define ASSERT_TRUE(x) CV_TEST_REPORT((x), "expected true: %s", #x)
#define ASSERT_EQ(a, b)                                                                            \
    CV_TEST_REPORT((long long)(a) == (long long)(b), "%s == %s: %lld vs %lld", #a, #b,             \
                   (long long)(a), (long long)(b))
#define ASSERT_NEAR(a, b, tol)                                                                     \
    CV_TEST_REPORT(fabs((double)(a) - (double)(b)) <= (tol), "%s ~ %s: %.9g vs %.9g (tol %g)", #a, \
                   #b, (double)(a), (double)(b), (double)(tol))
#define ASSERT_STR_CONTAINS(s, sub)                                                                \
    CV_TEST_REPORT(strstr((s), (sub)) != NULL, "\"%s\" does not contain \"%s\"", (s), (sub))

#define TEST_MAIN_END()                                                                            \
    do {                                                                                           \
        printf("%d passed, %d failed\n", cv_test_passed, cv_test_failed);                          \
        return cv_test_failed ? 1 : 0;                                                             \
    } while (0)

#endif /* CV_TEST_H */
