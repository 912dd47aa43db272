/*
 * vocab_h5.h - the vocabulary attributes on an open HDF5 object, for the
 * files that include <hdf5.h>: a dataset split's group (text_h5.c) and the
 * root of a model or checkpoint file (checkpoint_h5.c), so that the
 * vocabulary a model was trained with travels with it.
 */
#ifndef CV_VOCAB_H5_H
#define CV_VOCAB_H5_H

#include <hdf5.h>
#include <stdbool.h>

#include "caviar/text.h"

/* Write attributes vocab (V fixed-length UTF-8 strings) and, when
 * v->eol >= 0, eol_id on obj of file `path`.  Errors: CV_NOMEM, CV_IO
 * naming path. */
cv_status cv__vocab_write_attrs(hid_t obj, const struct cv_vocab *v, const char *path,
                                struct cv_error *err);

/* Read them from obj into v (*found false and v empty when obj has no
 * vocab).  spec names the file in messages.  Errors: CV_FORMAT, CV_NOMEM;
 * v is empty on failure. */
cv_status cv__vocab_read_attrs(hid_t obj, const char *spec, struct cv_vocab *v, bool *found,
                               struct cv_error *err);

#endif /* CV_VOCAB_H5_H */
