/*
 * checkpoint_internal.h - names shared by the checkpoint writer
 * (checkpoint_h5.c) and reader (checkpoint_read.c).
 */
#ifndef CV_CHECKPOINT_INTERNAL_H
#define CV_CHECKPOINT_INTERNAL_H

/* /train attributes of cv_train_state.last */
extern const char *const cv__ckpt_last_names[4];
/* /train attributes recipe_best_* of cv_recipe_state.best_last */
extern const char *const cv__ckpt_best_names[4];

#endif /* CV_CHECKPOINT_INTERNAL_H */
