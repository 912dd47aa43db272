/*
 * test_schedule.c - the data-parallel batch schedule: every sample of an
 * epoch lands in exactly one step on exactly one rank, for even and uneven
 * splits, and the global count is the sum of the local ones.
 */
#include <stdlib.h>

#include "caviar/shard.h"
#include "test.h"

static void check(long long n, int batch, int world)
{
    long long steps = cv_sched_steps(n, batch, world), total = 0, rows = 0;
    for (int r = 0; r < world; r++)
        rows += cv_sched_rows(n, r, world);
    ASSERT_EQ(rows, n);
    for (long long s = 0; s < steps; s++) {
        long long g = 0;
        for (int r = 0; r < world; r++) {
            int c = cv_sched_count(n, batch, r, world, s);
            ASSERT_TRUE(c >= 0 && c <= cv_sched_local_batch(batch, r, world));
            g += c;
        }
        ASSERT_EQ(g, cv_sched_global_count(n, batch, world, s));
        ASSERT_TRUE(g > 0 && g <= batch); /* no empty global step, never more than B */
        total += g;
    }
    ASSERT_EQ(total, n); /* nothing dropped, nothing counted twice */
    int lb = 0;
    for (int r = 0; r < world; r++)
        lb += cv_sched_local_batch(batch, r, world);
    ASSERT_EQ(lb, batch);
}

int main(void)
{
    check(60000, 128, 1);
    check(60000, 128, 2);
    check(55000, 256, 3);
    check(101, 10, 4); /* uneven rows and batch */
    check(7, 3, 3);
    check(5, 7, 2); /* batch larger than the data */
    /* hand example: 10 rows, batch 4, 3 ranks -> rows 4,3,3; local batch 2,1,1 */
    ASSERT_EQ(cv_sched_rows(10, 0, 3), 4);
    ASSERT_EQ(cv_sched_local_batch(4, 0, 3), 2);
    ASSERT_EQ(cv_sched_steps(10, 4, 3), 3);
    ASSERT_EQ(cv_sched_count(10, 4, 0, 3, 2), 0);
    ASSERT_EQ(cv_sched_global_count(10, 4, 3, 2), 2);
    TEST_MAIN_END();
}
