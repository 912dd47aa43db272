/*
 * cpu_check.c - refuse to start on a CPU that lacks the instruction set the
 * build targets (CMake's CV_MARCH, x86-64-v3 by default), with a message
 * instead of an illegal-instruction crash in the first vectorised loop.
 * This file alone is compiled for baseline x86-64 (CMakeLists.txt), and it
 * runs as a constructor, before main and any code built for AVX2.
 */
#include <stdio.h>
#include <unistd.h>

#if defined(CV_NEEDS_X86_64_V3) && defined(__x86_64__)
__attribute__((constructor)) static void cv_check_cpu(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("bmi2"))
        return;
    static const char msg[] = "caviar: this build targets x86-64-v3 (AVX2, FMA, BMI2), which "
                              "this CPU lacks; rebuild with cmake -DCV_MARCH= (the compiler's "
                              "default)\n";
    fputs(msg, stderr);
    _exit(1);
}
#else
/* nothing to check; keeps the translation unit non-empty (ISO C) */
typedef int cv_cpu_check_unused;
#endif
