/*
 * sweep_diff.h - private to sweep*.c: what differs between the config a
 * sweep's results belong to (RUN_DIR/<kind>/config.yaml) and the config of
 * a resume, key by key, so a refused resume names every difference and an
 * extension (more trials, a larger budget) is told apart from a new sweep.
 */
#ifndef CV_SWEEP_DIFF_H
#define CV_SWEEP_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "caviar/status.h"

struct cv_config_diff {
    int n;           /* keys that differ */
    int n_extend;    /* of them, sweep.trials / sweep.budget_epochs grown */
    int n_shrink;    /* of them, sweep.trials / sweep.budget_epochs made smaller */
    bool trials;     /* sweep.trials differs */
    char text[4096]; /* "key: old -> new; ..." every difference (values cut at 60) */
};

/* Compare two config texts (YAML).  Errors: CV_CONFIG if one does not parse. */
cv_status cv__config_diff(const char *old_text, const char *new_text, struct cv_config_diff *d,
                          struct cv_error *err);

#endif /* CV_SWEEP_DIFF_H */
