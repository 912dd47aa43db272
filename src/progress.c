/*
 * progress.c - the progress line of an epoch (see progress.h).  The ETA of
 * the epoch is the mean step time of this epoch so far times the steps
 * left; the run's adds the remaining epochs' steps at the mean step time of
 * this call (evaluation time between epochs is not counted).
 */
#include <math.h>
#include <stdio.h>

#include "progress.h"
#include "util.h"

#define TTY_PERIOD_S 0.5 /* in place: often enough to look alive, cheap */

void cv__progress_init(struct cv_progress *p, FILE *out, bool tty, const char *tag, double every_s,
                       long long every_steps)
{
    bool on = out && (every_s > 0 || every_steps > 0); /* 0 turns the terminal line off too */
    *p = (struct cv_progress){.out = on ? out : NULL, .tty = tty, .tag = tag};
    p->every_s = tty ? TTY_PERIOD_S : every_s;
    p->every_steps = every_steps; /* deterministic in place too (tests) */
    p->t_run = cv_now();
}

void cv__progress_epoch(struct cv_progress *p, long long step0)
{
    p->t_epoch = cv_now();
    p->step0 = step0;
    p->next_due = p->t_epoch + p->every_s;
}

bool cv__progress_due(struct cv_progress *p, long long epoch_step)
{
    p->run_steps++;
    if (!p->out)
        return false;
    if (p->every_steps > 0)
        return epoch_step % p->every_steps == 0;
    return cv_now() >= p->next_due;
}

const char *cv__progress_duration(double s, char *buf, size_t n)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, n, "%.0fs", s);
    return buf;
}

void cv__progress_print(struct cv_progress *p, const struct cv_progress_at *at)
{
    double now = cv_now(), el = now - p->t_epoch;
    long long done = at->step - p->step0;
    double per_step = done > 0 ? el / (double)done : NAN;
    double run_per_step = (now - p->t_run) / (double)p->run_steps;
    double eta_epoch = per_step * (double)(at->steps - at->step);
    double eta_run = eta_epoch + run_per_step * (double)at->left;
    char a[32], b[32];
    p->next_due = now + p->every_s;
    fprintf(p->out,
            "%s%s%s%sepoch %d/%d  step %lld/%lld  %.0f samples/s  loss %.4f  ETA epoch %s, run %s",
            p->tty ? "\r\033[K" : "", p->tag ? "[" : "", p->tag ? p->tag : "", p->tag ? "] " : "",
            at->epoch, at->epochs, at->step, at->steps, el > 0 ? (double)at->samples / el : 0,
            at->loss, cv__progress_duration(eta_epoch, a, sizeof(a)),
            cv__progress_duration(eta_run, b, sizeof(b)));
    fputs(p->tty ? "" : "\n", p->out);
    fflush(p->out);
    p->dirty = p->tty;
}

void cv__progress_clear(struct cv_progress *p)
{
    if (p->out && p->dirty)
        fputs("\r\033[K", p->out);
    p->dirty = false;
}
