/* predict.c - caviar as a library (docs/library.md): load a trained model,
 * predict every row of a dataset split, print "row,predicted,p0,p1,...".
 * A plain program: no mpirun, no MPI_Init. */
#include <caviar/checkpoint.h>
#include <caviar/evaluate.h>
#include <caviar/shard.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    struct cv_error err = {0};
    struct cv_config *cfg = NULL;
    cv_model *model = NULL;
    cv_shard *data = NULL;
    float *x = NULL, *probs = NULL;
    if (argc != 3)
        return fprintf(stderr, "usage: %s MODEL.h5 DATA.h5[#group]\n", argv[0]), 2;
    cv_status st = cv_ckpt_open_model(argv[1], 256, &cfg, &model, &err); /* batches of 256 */
    if (st == CV_OK) /* the whole split: part 0 of 1 */
        st = cv_shard_open(argv[2], 0, 1, 256, &data, &err);
    if (st == CV_OK) {
        long long n = cv_shard_rows(data);
        int k = cv_model_outputs(model);
        x = calloc(256 * (size_t)cv_model_inputs(model), sizeof(float)); /* a batch of inputs */
        probs = calloc((size_t)n * k, sizeof(float));
        if (!x || !probs)
            st = cv_fail(&err, CV_NOMEM, "out of memory for %lld predictions", n);
        else
            cv_predict_shard(model, data, x, probs); /* applies the model's normalisation */
        for (long long i = 0; st == CV_OK && i < n; i++) {
            printf("%lld,%d", i, cv_predicted_class(probs + i * k, k));
            for (int j = 0; j < k; j++)
                printf(",%.7g", probs[i * k + j]);
            printf("\n");
        }
    }
    if (st != CV_OK)
        fprintf(stderr, "error: %s\n", err.msg);
    free(x), free(probs);
    cv_shard_free(data);
    cv_model_free(model);
    cv_config_free(cfg);
    return st == CV_OK ? 0 : 1;
}
