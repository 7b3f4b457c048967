/*
 * The segment planner (we_plan.h).
 *
 * Design: the source keyframes become candidate cut points (relative time,
 * frame index, whether the index is a multiple of the output GOP), sorted
 * and de-duplicated. Then one greedy pass from time 0: at each cut, decide
 * how many segments what is left should still become (about target_s each,
 * at least enough to stay under max_s, at most what max_segments allows),
 * aim at an even share of the rest, and take the keyframe closest to that
 * aim among those that leave both this segment and the rest at least min_s
 * long and this one at most max_s: a GOP-aligned keyframe if there is one,
 * any keyframe otherwise. When no keyframe fits the window the segment
 * grows past max_s to the first keyframe that still leaves min_s; when none
 * does, the rest is one segment. So a remainder shorter than min_s is
 * always absorbed by the segment before it.
 *
 * Why the GOP preference: an encoder given a fixed GOP of N frames puts
 * keyframes at frames 0, N, 2N, ... of its input; a segment starting at
 * frame F puts them at F, F+N, ... of the title, which is where a single
 * pass puts them only when F is a multiple of N.
 *
 * Pure functions, no global state.
 */
#include "we_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cand {
    double t;   /* relative to the first video frame */
    long frame; /* round(t x fps) */
    bool aligned;
} cand;

typedef struct planner {
    const we_plan_opts *o;
    double duration, fps;
    int gop;
    cand *c;
    size_t nc;
    we_segment *seg;
    size_t nseg;
} planner;

static int cmp_cand(const void *a, const void *b)
{
    double x = ((const cand *)a)->t, y = ((const cand *)b)->t;
    return (x > y) - (x < y);
}

static int check_args(const double *kf, size_t n_kf, double duration_s, double fps, int gop_frames,
                      const we_plan_opts *o, we_err *err)
{
    if (!(duration_s > 0) || !isfinite(duration_s))
        return we_err_set(err, WE_EINVAL, "plan: duration %g s is not a positive number",
                          duration_s);
    if (!(fps > 0) || !isfinite(fps))
        return we_err_set(err, WE_EINVAL, "plan: frame rate %g is not a positive number", fps);
    if (gop_frames < 1)
        return we_err_set(err, WE_EINVAL, "plan: GOP of %d frames", gop_frames);
    if (n_kf > 0 && !kf)
        return we_err_set(err, WE_EINVAL, "plan: %zu keyframes but no list", n_kf);
    if (!(o->target_s > 0) || !(o->min_s >= 0) || o->min_s > o->target_s ||
        o->target_s > o->max_s || !isfinite(o->max_s) || o->max_segments < 0)
        return we_err_set(err, WE_EINVAL,
                          "plan: options need 0 <= min (%g) <= target (%g) <= max (%g), "
                          "target > 0 and max_segments (%d) >= 0",
                          o->min_s, o->target_s, o->max_s, o->max_segments);
    return 0;
}

/* Keyframes strictly inside the stream, relative, sorted, one per frame. */
static void collect(planner *p, const double *kf, size_t n_kf, double start_s)
{
    double half = 0.5 / p->fps;
    p->c = calloc(n_kf ? n_kf : 1, sizeof *p->c);
    WE_ASSERT(p->c != NULL);
    for (size_t i = 0; i < n_kf; i++) {
        double t = kf[i] - start_s;
        if (!isfinite(t) || t < half || t > p->duration - half)
            continue;
        long f = lround(t * p->fps);
        p->c[p->nc++] = (cand){ t, f, f % p->gop == 0 };
    }
    qsort(p->c, p->nc, sizeof *p->c, cmp_cand);
    size_t n = 0;
    for (size_t i = 0; i < p->nc; i++)
        if (n == 0 || p->c[i].frame != p->c[n - 1].frame)
            p->c[n++] = p->c[i];
    p->nc = n;
}

/* How many segments [cur, duration] should still become. */
static long segments_left(const planner *p, double cur)
{
    double rest = p->duration - cur;
    long n = lround(rest / p->o->target_s);
    long need = (long)ceil(rest / p->o->max_s - 1e-9);
    if (n < need)
        n = need;
    if (n < 1)
        n = 1;
    if (p->o->max_segments > 0 && n > p->o->max_segments - (long)p->nseg)
        n = p->o->max_segments - (long)p->nseg;
    return n;
}

/* The candidate index to cut at after cur, aiming at goal; -1 for none. */
static long choose(const planner *p, double cur, double goal)
{
    const we_plan_opts *o = p->o;
    long best[2] = { -1, -1 }; /* [aligned?] closest to goal within the window */
    long beyond = -1;          /* first keyframe past max_s that leaves min_s */
    for (size_t i = 0; i < p->nc; i++) {
        double t = p->c[i].t;
        if (t - cur < o->min_s || t <= cur || p->duration - t < o->min_s)
            continue;
        if (t - cur > o->max_s) {
            if (beyond < 0)
                beyond = (long)i;
            continue;
        }
        long *b = &best[p->c[i].aligned];
        if (*b < 0 || fabs(t - goal) < fabs(p->c[*b].t - goal))
            *b = (long)i;
    }
    return best[1] >= 0 ? best[1] : best[0] >= 0 ? best[0] : beyond;
}

static void emit(planner *p, double start, double end)
{
    long f = lround(start * p->fps);
    p->seg[p->nseg++] = (we_segment){ start, end - start, f, f % p->gop == 0 };
}

int we_plan_segments(const double *keyframes_s, size_t n_kf, double start_s, double duration_s,
                     double fps, int gop_frames, const we_plan_opts *o, we_segment **out,
                     size_t *n_out, we_err *err)
{
    static const we_plan_opts defaults = WE_PLAN_OPTS_INIT;
    planner p = { o ? o : &defaults, duration_s, fps, gop_frames, NULL, 0, NULL, 0 };
    int rc = check_args(keyframes_s, n_kf, duration_s, fps, gop_frames, p.o, err);
    if (rc != 0)
        return rc;
    collect(&p, keyframes_s, n_kf, start_s);
    p.seg = calloc(p.nc + 1, sizeof *p.seg);
    WE_ASSERT(p.seg != NULL);
    double cur = 0;
    for (;;) {
        long n = segments_left(&p, cur);
        long i = n > 1 ? choose(&p, cur, cur + (duration_s - cur) / (double)n) : -1;
        if (i < 0)
            break;
        emit(&p, cur, p.c[i].t);
        cur = p.c[i].t;
    }
    emit(&p, cur, duration_s);
    free(p.c);
    *out = p.seg;
    *n_out = p.nseg;
    return 0;
}

static void add_seconds(json_t *a, const char *opt, double s)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.6f", s);
    json_array_append_new(a, json_string(opt));
    json_array_append_new(a, json_string(buf));
}

int we_plan_input_args(const we_segment *seg, bool last, double seek_offset_s, json_t **out,
                       we_err *err)
{
    double ss = seg->start_s + seek_offset_s;
    if (!isfinite(ss) || !(seg->duration_s > 0))
        return we_err_set(err, WE_EINVAL, "plan: segment at %g s for %g s", ss, seg->duration_s);
    json_t *a = json_array();
    add_seconds(a, "-ss", ss > 0 ? ss : 0);
    if (!last)
        add_seconds(a, "-t", seg->duration_s);
    *out = a;
    return 0;
}
