/*
 * Unit tests of the segment planner (src/lib/we_plan.c): cuts at source
 * keyframes only, GOP-aligned ones preferred, min/max respected (max
 * exceeded only when no keyframe allows a cut, a short remainder absorbed),
 * max_segments, relative times with a non-zero start, bad arguments, the
 * rendered -ss/-t options, and the invariants over random keyframe lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "we_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-9

typedef struct plan {
    we_segment *s;
    size_t n;
} plan;

static plan run(const double *kf, size_t n_kf, double start, double dur, double fps, int gop,
                const we_plan_opts *o)
{
    plan p = { NULL, 0 };
    we_err err = { "" };
    if (we_plan_segments(kf, n_kf, start, dur, fps, gop, o, &p.s, &p.n, &err) != 0)
        fail_msg("plan failed: %s", err.msg);
    return p;
}

/* Keyframes every step seconds from 0 up to (excluding) end, plus offset. */
static size_t every(double *kf, double step, double end, double offset)
{
    size_t n = 0;
    for (double t = 0; t < end - EPS; t += step)
        kf[n++] = t + offset;
    return n;
}

/* The starts as "0 8 16" (%g), for readable failures. */
static const char *starts(plan p)
{
    static char buf[1024];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p.n; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%g", i ? " " : "", p.s[i].start_s);
    return buf;
}

/* Contiguous, starting at 0, covering [0, dur] exactly. */
static void assert_covers(plan p, double dur)
{
    assert_true(p.n >= 1);
    assert_true(fabs(p.s[0].start_s) < EPS);
    for (size_t i = 0; i + 1 < p.n; i++)
        assert_true(fabs(p.s[i].start_s + p.s[i].duration_s - p.s[i + 1].start_s) < EPS);
    assert_true(fabs(p.s[p.n - 1].start_s + p.s[p.n - 1].duration_s - dur) < EPS);
}

static void test_regular(void **st)
{
    double kf[64];
    size_t n = every(kf, 2.0, 24.0, 0);
    we_plan_opts o = { 8.0, 2.0, 20.0, 0 };
    plan p = run(kf, n, 0, 24.0, 30.0, 60, &o);
    assert_string_equal(starts(p), "0 8 16");
    assert_covers(p, 24.0);
    for (size_t i = 0; i < p.n; i++) {
        assert_true(fabs(p.s[i].duration_s - 8.0) < EPS);
        assert_int_equal(p.s[i].first_frame, 240 * (long)i);
        assert_true(p.s[i].gop_aligned);
    }
    free(p.s);
}

static void test_defaults(void **st)
{
    double kf[256];
    size_t n = every(kf, 2.0, 300.0, 0);
    plan p = run(kf, n, 0, 300.0, 30.0, 60, NULL);
    assert_int_equal(p.n, 7); /* round(300 / 45) */
    assert_covers(p, 300.0);
    for (size_t i = 0; i < p.n; i++) {
        assert_true(p.s[i].duration_s >= 10.0 && p.s[i].duration_s <= 120.0);
        assert_true(fabs(p.s[i].duration_s - 300.0 / 7) <= 2.0); /* an even share, +- a GOP */
        assert_true(p.s[i].gop_aligned);
    }
    free(p.s);
    /* a 60 s title is one segment at the default target */
    p = run(kf, 30, 0, 60.0, 30.0, 60, NULL);
    assert_int_equal(p.n, 1);
    free(p.s);
}

static void test_prefers_gop_aligned(void **st)
{
    double kf[64];
    size_t n = every(kf, 2.0, 24.0, 0);
    we_plan_opts o = { 8.0, 2.0, 20.0, 0 };
    /* output GOP 3 s: only keyframes at multiples of 6 s are aligned */
    plan p = run(kf, n, 0, 24.0, 30.0, 90, &o);
    assert_string_equal(starts(p), "0 6 12 18");
    for (size_t i = 0; i < p.n; i++)
        assert_true(p.s[i].gop_aligned);
    free(p.s);
    /* no aligned keyframe in reach: the closest other one */
    double odd[] = { 0, 7.1, 15.3, 22.9 };
    p = run(odd, 4, 0, 30.0, 30.0, 60, &o);
    assert_string_equal(starts(p), "0 7.1 15.3 22.9");
    assert_int_equal(p.s[1].first_frame, 213);
    assert_false(p.s[1].gop_aligned);
    free(p.s);
}

static void test_min_and_remainder(void **st)
{
    double kf[64];
    size_t n = every(kf, 2.0, 21.0, 0); /* 0 .. 20 */
    we_plan_opts o = { 10.0, 5.0, 20.0, 0 };
    plan p = run(kf, n, 0, 21.0, 30.0, 60, &o);
    assert_string_equal(starts(p), "0 10"); /* never a 1 s segment at 20 */
    assert_true(fabs(p.s[1].duration_s - 11.0) < EPS);
    free(p.s);
    /* too short to split without a piece under min_s */
    o = (we_plan_opts){ 5.0, 5.0, 20.0, 0 };
    p = run(kf, n, 0, 9.0, 30.0, 60, &o);
    assert_int_equal(p.n, 1);
    free(p.s);
}

static void test_max_exceeded_only_without_keyframe(void **st)
{
    double kf[] = { 0, 150, 160 };
    plan p = run(kf, 3, 0, 200.0, 25.0, 50, NULL);
    assert_string_equal(starts(p), "0 150"); /* nothing in [10, 120]: the first past it */
    free(p.s);
    double late[] = { 0, 195 }; /* cutting there would leave 5 s < min_s */
    p = run(late, 2, 0, 200.0, 25.0, 50, NULL);
    assert_int_equal(p.n, 1);
    free(p.s);
    /* max_s forces more segments than target_s alone would */
    double kf2[256];
    size_t n = every(kf2, 2.0, 100.0, 0);
    we_plan_opts o = { 40.0, 10.0, 40.0, 0 };
    p = run(kf2, n, 0, 100.0, 30.0, 60, &o);
    assert_int_equal(p.n, 3);
    for (size_t i = 0; i < p.n; i++)
        assert_true(p.s[i].duration_s <= 40.0 + EPS);
    free(p.s);
}

static void test_max_segments(void **st)
{
    double kf[256];
    size_t n = every(kf, 2.0, 300.0, 0);
    we_plan_opts o = WE_PLAN_OPTS_INIT;
    o.max_segments = 1;
    plan p = run(kf, n, 0, 300.0, 30.0, 60, &o);
    assert_int_equal(p.n, 1);
    assert_true(fabs(p.s[0].duration_s - 300.0) < EPS);
    free(p.s);
    o.max_segments = 2;
    p = run(kf, n, 0, 300.0, 30.0, 60, &o);
    assert_int_equal(p.n, 2);
    assert_covers(p, 300.0);
    assert_true(fabs(p.s[0].duration_s - 120.0) < EPS); /* as long as max_s allows */
    free(p.s);
}

static void test_no_keyframes(void **st)
{
    plan p = run(NULL, 0, 0, 500.0, 30.0, 60, NULL);
    assert_int_equal(p.n, 1);
    assert_covers(p, 500.0);
    free(p.s);
    double only_first[] = { 1.4 };
    p = run(only_first, 1, 1.4, 500.0, 30.0, 60, NULL);
    assert_int_equal(p.n, 1);
    free(p.s);
}

static void test_relative_times(void **st)
{
    /* MPEG-TS style: first video PTS 1.466667, keyframes every 2 s after */
    double kf[64];
    size_t n = every(kf, 2.0, 24.0, 1.466667);
    we_plan_opts o = { 8.0, 2.0, 20.0, 0 };
    plan p = run(kf, n, 1.466667, 24.0, 30.0, 60, &o);
    assert_string_equal(starts(p), "0 8 16");
    assert_int_equal(p.s[2].first_frame, 480);
    free(p.s);
    /* unsorted, duplicated and out-of-range keyframes are ignored */
    double messy[] = { 16.0, -4.0, 8.0, 8.0, 0.0, 30.0, 24.0, NAN, 8.0000001 };
    p = run(messy, sizeof messy / sizeof messy[0], 0, 24.0, 30.0, 60, &o);
    assert_string_equal(starts(p), "0 8 16");
    assert_covers(p, 24.0);
    free(p.s);
}

static void test_bad_args(void **st)
{
    we_segment *s = NULL;
    size_t n = 0;
    we_err err = { "" };
    double kf[] = { 0, 2 };
    we_plan_opts bad = { 5.0, 10.0, 120.0, 0 };
    assert_int_equal(we_plan_segments(kf, 2, 0, 0, 30, 60, NULL, &s, &n, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "duration"));
    assert_int_equal(we_plan_segments(kf, 2, 0, NAN, 30, 60, NULL, &s, &n, &err), WE_EINVAL);
    assert_int_equal(we_plan_segments(kf, 2, 0, 10, 0, 60, NULL, &s, &n, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "frame rate"));
    assert_int_equal(we_plan_segments(kf, 2, 0, 10, 30, 0, NULL, &s, &n, &err), WE_EINVAL);
    assert_int_equal(we_plan_segments(NULL, 2, 0, 10, 30, 60, NULL, &s, &n, &err), WE_EINVAL);
    assert_int_equal(we_plan_segments(kf, 2, 0, 10, 30, 60, &bad, &s, &n, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "min (10) <= target (5)"));
    bad = (we_plan_opts){ 0, 0, 0, 0 };
    assert_int_equal(we_plan_segments(kf, 2, 0, 10, 30, 60, &bad, &s, &n, &err), WE_EINVAL);
    bad = (we_plan_opts){ 45, 10, 120, -1 };
    assert_int_equal(we_plan_segments(kf, 2, 0, 10, 30, 60, &bad, &s, &n, &err), WE_EINVAL);
    assert_null(s);
}

static const char *args_text(json_t *a)
{
    static char buf[256];
    size_t i, len = 0;
    json_t *v;
    json_array_foreach(a, i, v) len +=
        (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? " " : "", json_string_value(v));
    return buf;
}

static void test_input_args(void **st)
{
    json_t *a = NULL;
    we_err err = { "" };
    we_segment seg = { 8.0, 8.0, 240, true };
    assert_int_equal(we_plan_input_args(&seg, false, 0.021334, &a, &err), 0);
    assert_string_equal(args_text(a), "-ss 8.021334 -t 8.000000");
    json_decref(a);
    assert_int_equal(we_plan_input_args(&seg, true, 0, &a, &err), 0);
    assert_string_equal(args_text(a), "-ss 8.000000");
    json_decref(a);
    seg = (we_segment){ 0, 2.0 / 3.0, 0, true };
    assert_int_equal(we_plan_input_args(&seg, false, -1e-12, &a, &err), 0);
    assert_string_equal(args_text(a), "-ss 0.000000 -t 0.666667");
    json_decref(a);
    a = NULL;
    seg.duration_s = 0;
    assert_int_equal(we_plan_input_args(&seg, false, 0, &a, &err), WE_EINVAL);
    assert_null(a);
}

/* Is there a keyframe that would have allowed a cut within [min, max]? */
static bool cut_possible(const double *kf, size_t n, double from, double dur, const we_plan_opts *o)
{
    for (size_t i = 0; i < n; i++)
        if (kf[i] - from >= o->min_s && kf[i] - from <= o->max_s && dur - kf[i] >= o->min_s)
            return true;
    return false;
}

static bool is_keyframe(const double *kf, size_t n, double t)
{
    for (size_t i = 0; i < n; i++)
        if (fabs(kf[i] - t) < EPS)
            return true;
    return false;
}

static void test_random_invariants(void **st)
{
    srand(42);
    double kf[400];
    for (int iter = 0; iter < 300; iter++) {
        double fps = (rand() % 2) ? 30.0 : 25.0, dur = 5.0 + rand() % 900;
        size_t n = 0;
        for (double t = 0; t < dur && n < 400; t += (1 + rand() % 300) / fps)
            kf[n++] = round(t * fps) / fps;
        we_plan_opts o = { 20.0 + rand() % 60, (double)(rand() % 15), 0, rand() % 4 };
        o.max_s = o.target_s + rand() % 100;
        plan p = run(kf, n, 0, dur, fps, 1 + rand() % 120, &o);
        assert_covers(p, dur);
        if (o.max_segments > 0)
            assert_true(p.n <= (size_t)o.max_segments);
        for (size_t i = 0; i < p.n; i++) {
            const we_segment *s = &p.s[i];
            assert_true(i == 0 || is_keyframe(kf, n, s->start_s));
            assert_true(p.n == 1 || s->duration_s >= o.min_s - EPS);
            if (s->duration_s > o.max_s + EPS && i + 1 < p.n)
                assert_false(cut_possible(kf, n, s->start_s, dur, &o));
        }
        free(p.s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regular),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_prefers_gop_aligned),
        cmocka_unit_test(test_min_and_remainder),
        cmocka_unit_test(test_max_exceeded_only_without_keyframe),
        cmocka_unit_test(test_max_segments),
        cmocka_unit_test(test_no_keyframes),
        cmocka_unit_test(test_relative_times),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_input_args),
        cmocka_unit_test(test_random_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
