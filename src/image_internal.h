/*
 * image_internal.h - decoding PNG and JPEG files into 8-bit pixels and
 * fitting them to a fixed size: what `import images` and `predict` on a
 * folder of images share.  image_decode.c is the only file that includes
 * <png.h> and <jpeglib.h>; import_images.c walks folders.
 */
#ifndef CV_IMAGE_INTERNAL_H
#define CV_IMAGE_INTERNAL_H

#include <stdint.h>

#include "caviar/import.h"

/* A decoded image: (h, w, c) interleaved, c = 1 (gray) or 3 (RGB). */
struct cv__image {
    uint8_t *px; /* (h, w, c), owned: free() */
    int h, w, c;
};

/* Decode the PNG or JPEG file `path` (told apart by their signatures, not
 * by the name) into `channels` (1 or 3) 8-bit channels.  Errors: CV_IO (cannot
 * open), CV_FORMAT (not a PNG or JPEG, truncated or corrupt: the decoder's
 * words), CV_NOMEM; each naming the file. */
cv_status cv__image_decode(const char *path, int channels, struct cv__image *img,
                           struct cv_error *err);

/* Fit img to (h, w) into out (c, h, w) planar (CHW): stretched (resize), or
 * the largest centred region of the target's aspect ratio scaled (crop);
 * bilinear sampling at pixel centres, exact copy when the sizes match. */
void cv__image_fit(const struct cv__image *img, int h, int w, enum cv_image_fit fit, uint8_t *out);

/* A folder of images: one subfolder per class (labels), or for predict
 * also image files directly in it (no labels). */
struct cv__image_set {
    long long n;       /* rows */
    int shape[3];      /* (C, H, W) of every row */
    uint8_t *x;        /* (n, C*H*W) */
    int32_t *y;        /* (n) class ids, NULL without class subfolders */
    int classes;       /* subfolders (0 without) */
    char **names;      /* (classes) folder names, one block: free() */
    char **files;      /* (n) file paths, one block: free() */
    long long skipped; /* bad files skipped (--on-bad skip) */
};

/* Read folder `dir`.  flat_ok: image files directly in dir are accepted
 * (no labels) when it has no subfolders.  names/n_names: the class list to
 * map folder names to (NULL: the sorted folder names).  Errors name the
 * folder or file. */
cv_status cv__images_read(const char *dir, const struct cv_image_opts *io, bool flat_ok,
                          const char *const *names, int n_names, struct cv__image_set *set,
                          struct cv_error *err);
void cv__images_free(struct cv__image_set *set);

#endif /* CV_IMAGE_INTERNAL_H */
