/*
 * The segment planner (DESIGN §6 step 3): where to cut a source so that
 * encoding the pieces in parallel and stitching them with the concat
 * demuxer gives the same frames, and keyframes in the same places, as one
 * pass. Pure functions, no I/O.
 *
 * Times. The planner works relative to the first video frame: start_s is
 * its PTS (the probe's first keyframe, keyframes_s[0], for a stream that
 * starts with one), and every segment's start_s is a source keyframe minus
 * that. FFmpeg's input `-ss` counts from the container's start time instead
 * (the earliest stream; in MPEG-TS the audio often starts a few ms before
 * the video), so we_plan_input_args adds seek_offset_s = first video PTS -
 * container start time (the probe's start_time_s).
 */
#ifndef WE_PLAN_H
#define WE_PLAN_H

#include "we_err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct we_plan_opts {
    double target_s;  /* preferred segment length */
    double min_s;     /* shorter only when the whole title is */
    double max_s;     /* longer only when no keyframe allows a cut */
    int max_segments; /* 0: no limit; 1: one segment (one capable worker) */
} we_plan_opts;

/* The defaults: 45 s target, 10 s minimum, 120 s maximum, no limit. */
/* clang-format off */
#define WE_PLAN_OPTS_INIT { 45.0, 10.0, 120.0, 0 }
/* clang-format on */

typedef struct we_segment {
    double start_s;    /* relative to the first video frame; a source keyframe */
    double duration_s; /* up to the next segment's start (the last: to the end) */
    long first_frame;  /* round(start_s x fps) */
    bool gop_aligned;  /* first_frame is a multiple of the output GOP */
} we_segment;

/* Plans the segments of a video stream of duration_s seconds (from its
 * first frame) at fps frames/s, encoded with a GOP of gop_frames frames.
 * keyframes_s: the source keyframes' PTS in seconds (any order; those
 * outside the stream are ignored); start_s: the first video frame's PTS.
 * o: NULL for WE_PLAN_OPTS_INIT; needs 0 <= min_s <= target_s <= max_s and
 * target_s > 0.
 *
 * Cuts only at source keyframes, preferring those whose frame index is a
 * multiple of gop_frames (so the stitched keyframes land where a single
 * pass puts them), each as close as possible to an even share of what is
 * left (about target_s per segment). Segments are contiguous, the first
 * starts at 0, and together they cover [0, duration_s]. Without a usable
 * keyframe there is one segment.
 *
 * *out: a malloc'ed array of *n_out (>= 1) segments; free() it.
 * WE_EINVAL for bad arguments (named in err). */
int we_plan_segments(const double *keyframes_s, size_t n_kf, double start_s, double duration_s,
                     double fps, int gop_frames, const we_plan_opts *o, we_segment **out,
                     size_t *n_out, we_err *err);

/* The FFmpeg input options (before -i) that read exactly seg's frames:
 * ["-ss", "<start_s + seek_offset_s>", "-t", "<duration_s>"] with %.6f;
 * the last segment has no -t and reads to the end, so a probe duration a
 * little off never loses or adds frames. *out: a new array. */
int we_plan_input_args(const we_segment *seg, bool last, double seek_offset_s, json_t **out,
                       we_err *err);

#endif
