/*
 * test_evaluate.c - the metrics of every task on hand-worked examples
 * (one process, no communicator).  The scikit-learn comparison on real
 * models is tests/e2e/test_metrics_sklearn.sh.
 */
#include <stdlib.h>

#include "caviar/evaluate.h"
#include "progress.h"
#include "test.h"

static void test_classes(void)
{
    /* 3 classes, 4 rows: true 0,1,2,2; predicted 0,2,2,1 */
    const float p[] = {.7f, .2f, .1f, .1f, .3f, .6f, .2f, .1f, .7f, .1f, .5f, .4f};
    const int32_t y[] = {0, 1, 2, 2};
    struct cv_metrics mt;
    ASSERT_EQ(cv_metrics_init(&mt, CV_LOSS_SOFTMAX_CE, 3, 3, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_add(&mt, p, y, NULL, 4, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_finish(&mt, NULL, NULL), CV_OK);
    ASSERT_EQ(mt.task, CV_TASK_CLASSIFICATION);
    ASSERT_NEAR(mt.accuracy, 0.5, 1e-12);
    /* class 2: tp 1, predicted twice, present twice -> P = R = F1 = 1/2 */
    ASSERT_NEAR(mt.per_class[4 * 2 + 0], 0.5, 1e-12);
    ASSERT_NEAR(mt.per_class[4 * 2 + 2], 0.5, 1e-12);
    ASSERT_NEAR(mt.per_class[4 * 1 + 2], 0.0, 1e-12); /* class 1 never right */
    ASSERT_NEAR(mt.f1, (1.0 + 0 + 0.5) / 3, 1e-12);
    ASSERT_NEAR(mt.per_class[4 * 2 + 3], 2, 0); /* support */
    ASSERT_TRUE(isnan(mt.top_k));               /* 3 classes: no top-5 */
    ASSERT_NEAR(mt.loss, -(log(.7) + log(.3) + log(.7) + log(.4)) / 4, 1e-6);
    cv_metrics_deinit(&mt);
}

static void test_binary_auc(void)
{
    /* the classic example: AUC 0.75; then a tie between classes: 1/2 */
    const float p[] = {.1f, .4f, .35f, .8f}, tie[] = {.5f, .5f};
    const int32_t y[] = {0, 0, 1, 1}, yt[] = {0, 1};
    struct cv_metrics mt;
    ASSERT_EQ(cv_metrics_init(&mt, CV_LOSS_BCE, 2, 1, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_add(&mt, p, y, NULL, 4, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_finish(&mt, NULL, NULL), CV_OK);
    ASSERT_EQ(mt.task, CV_TASK_BINARY);
    ASSERT_NEAR(mt.roc_auc, 0.75, 1e-12);
    ASSERT_NEAR(mt.accuracy, 0.75, 1e-12); /* 0.35 -> class 0: the one miss */
    cv_metrics_deinit(&mt);
    ASSERT_EQ(cv_metrics_init(&mt, CV_LOSS_BCE, 2, 1, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_add(&mt, tie, yt, NULL, 2, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_finish(&mt, NULL, NULL), CV_OK);
    ASSERT_NEAR(mt.roc_auc, 0.5, 1e-12);
    cv_metrics_deinit(&mt);
}

static void test_multilabel(void)
{
    /* 2 rows x 2 labels: row 0 exact, row 1 misses label 1 (fn) */
    const float p[] = {.9f, .2f, .8f, .3f}, y[] = {1, 0, 1, 1};
    struct cv_metrics mt;
    ASSERT_EQ(cv_metrics_init(&mt, CV_LOSS_BCE, 0, 2, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_add(&mt, p, NULL, y, 2, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_finish(&mt, NULL, NULL), CV_OK);
    ASSERT_EQ(mt.task, CV_TASK_MULTILABEL);
    ASSERT_NEAR(mt.subset_accuracy, 0.5, 1e-12);
    ASSERT_NEAR(mt.hamming, 0.25, 1e-12);
    ASSERT_NEAR(mt.per_col[4 * 0 + 2], 1.0, 1e-12); /* label 0: tp 2 */
    ASSERT_NEAR(mt.per_col[4 * 1 + 2], 0.0, 1e-12); /* label 1: fn 1 */
    ASSERT_NEAR(mt.micro_f1, 4.0 / 5.0, 1e-12);     /* 2tp / (2tp + fp + fn) = 4/5 */
    ASSERT_NEAR(mt.f1, 0.5, 1e-12);
    ASSERT_TRUE(isnan(mt.accuracy));
    cv_metrics_deinit(&mt);
}

static void test_regression(void)
{
    /* y 1,2,3 predicted 1,2,4: MAE 1/3, RMSE sqrt(1/3), SST 2, R^2 1/2 */
    const float p[] = {1, 2, 4}, y[] = {1, 2, 3};
    struct cv_metrics mt;
    ASSERT_EQ(cv_metrics_init(&mt, CV_LOSS_MSE, 0, 1, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_add(&mt, p, NULL, y, 3, NULL), CV_OK);
    ASSERT_EQ(cv_metrics_finish(&mt, NULL, NULL), CV_OK);
    ASSERT_EQ(mt.task, CV_TASK_REGRESSION);
    ASSERT_NEAR(mt.mae, 1.0 / 3, 1e-12);
    ASSERT_NEAR(mt.rmse, sqrt(1.0 / 3), 1e-12);
    ASSERT_NEAR(mt.r2, 0.5, 1e-12);
    ASSERT_NEAR(mt.loss, 0.5 / 3, 1e-12); /* mse loss is 1/2 e^2 per row */
    cv_metrics_deinit(&mt);
}

static void test_durations(void)
{
    char b[32];
    ASSERT_STR_CONTAINS(cv__progress_duration(42.4, b, sizeof(b)), "42s");
    ASSERT_STR_CONTAINS(cv__progress_duration(185, b, sizeof(b)), "3m05s");
    ASSERT_STR_CONTAINS(cv__progress_duration(3725, b, sizeof(b)), "1h02m");
    ASSERT_STR_CONTAINS(cv__progress_duration(NAN, b, sizeof(b)), "?");
}

int main(void)
{
    test_classes();
    test_binary_auc();
    test_multilabel();
    test_regression();
    test_durations();
    TEST_MAIN_END();
}
