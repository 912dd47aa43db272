/*
 * data_args.c - the data options that `import` and `predict` share: for
 * image folders --size HxW, --resize/--crop, --grayscale/--rgb and
 * --on-bad skip|stop; for CSV --missing refuse|mean|zero.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static int bad(const char *cmd, const char *name, const char *text, const char *expected)
{
    if (cv_cli_rank() == 0)
        fprintf(stderr, "caviar %s: error: --%s %s: expected %s\n", cmd, name, text, expected);
    return -1;
}

/* "HxW", each side 1 to 65536. */
static int size_arg(const char *cmd, const char *text, struct cv_image_opts *io)
{
    char *end, *x;
    long h = strtol(text, &x, 10), w = 0;
    bool ok = x != text && (*x == 'x' || *x == 'X');
    if (ok) {
        w = strtol(x + 1, &end, 10);
        ok = end != x + 1 && !*end && h >= 1 && w >= 1 && h <= 65536 && w <= 65536;
    }
    if (!ok)
        return bad(cmd, "size", text, "HxW, two integers from 1 to 65536 (e.g. 28x28)");
    io->height = (int)h;
    io->width = (int)w;
    return 1;
}

int cv_cli_image_arg(const char *cmd, int c, const char *arg, struct cv_image_opts *io)
{
    switch (c) {
    case CV_OPT_SIZE:
        return size_arg(cmd, arg, io);
    case CV_OPT_RESIZE:
    case CV_OPT_CROP:
        io->fit = c == CV_OPT_CROP ? CV_IMAGE_CROP : CV_IMAGE_RESIZE;
        return 1;
    case CV_OPT_GRAYSCALE:
    case CV_OPT_RGB:
        io->channels = c == CV_OPT_RGB ? 3 : 1;
        return 1;
    case CV_OPT_ON_BAD:
        if (strcmp(arg, "skip") && strcmp(arg, "stop"))
            return bad(cmd, "on-bad", arg, "skip or stop");
        io->skip_bad = !strcmp(arg, "skip");
        return 1;
    default:
        return 0;
    }
}

bool cv_cli_missing_arg(const char *cmd, const char *text, enum cv_missing *out)
{
    static const char *const names[] = {"refuse", "mean", "zero"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(text, names[i]))
            return *out = (enum cv_missing)i, true;
    return bad(cmd, "missing", text, "refuse, mean or zero") > 0;
}

int cv_cli_pred_arg(const char *cmd, int c, const char *arg, struct cv_pred_opts *o)
{
    switch (c) {
    case CV_OPT_LABEL:
        o->label_column = arg;
        return 1;
    case CV_OPT_HEADER:
        o->header = true;
        return 1;
    case CV_OPT_MISSING:
        return cv_cli_missing_arg(cmd, arg, &o->missing) ? 1 : -1;
    default:
        return cv_cli_image_arg(cmd, c, arg, &o->image);
    }
}

const char cv_cli_pred_help[] =
    "DATA is an HDF5 split (file.h5[#group]; /y optional), a .csv file of features, or a\n"
    "folder of PNG/JPEG images (one subfolder per class gives true labels; images\n"
    "directly in it have none).  The model's stored input normalisation is applied.\n"
    "  --label-column NAME|INDEX  CSV: the true label's column (else all are features)\n"
    "  --header                   CSV: the first line names the columns\n"
    "  --missing refuse|mean|zero CSV: missing feature values (default refuse)\n"
    "  --size HxW [--resize|--crop] --grayscale|--rgb  images: default the model's\n"
    "                             input shape, else its training data's `shape`\n"
    "  --on-bad stop|skip         images: a file that is not a readable PNG/JPEG\n"
    "Output columns (CSV): row,predicted[,predicted_name][,label],p0..pK-1; HDF5:\n"
    "/probabilities, /predicted, /label and attribute class_names when known.\n";

void cv_cli_print_skipped(const char *msg, void *cmd)
{
    fprintf(stderr, "caviar %s: skipped %s\n", (const char *)cmd, msg);
}
