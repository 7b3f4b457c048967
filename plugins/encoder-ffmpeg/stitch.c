/*
 * encoder.stitch: joins a profile's encoded segments (and the job's audio)
 * into one output without re-encoding.
 *
 * Params: segments (array of local paths, in order; relative ones resolve
 * against work_dir), audio (a local path, or null/absent for none), output
 * (a local path; parent directories are created), faststart (bool, default
 * false: -movflags +faststart). Result: output, size_bytes, duration_s and
 * frames (read back from the output), elapsed_s.
 *
 * Design: the segments go into a concat list (concat.c) written to a
 * private file in work_dir (mkostemps, 0600), and ffmpeg runs
 *   -f concat -safe 0 -i <list> [-i <audio>] -map 0:v [-map 1:a] -c copy
 *   [-movflags +faststart] <output>
 * through run.c, so progress, cancellation, output cleanup and the error
 * classification are the transcode's. Percent is measured against the sum
 * of the segments' durations (headers only; unknown if any is unreadable).
 * A zero exit is not trusted alone: the output is probed (probe.c, packets
 * only) and must have a video stream, an audio stream when audio was given,
 * and a duration; otherwise it is deleted and the call fails. Inputs are
 * checked first, so a missing segment is named (FFmpeg would name only the
 * list). The list file is removed whatever happens.
 *
 * Threads: runs on an SDK pool thread; everything here belongs to the call.
 */
#include "encoder.h"

#include "webencode/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEGMENTS 65536

typedef struct sparams {
    char **segments; /* resolved; owned */
    size_t n;
    char *audio;  /* resolved, or NULL; owned */
    char *output; /* resolved; owned */
    bool faststart;
    char list[4096]; /* the list file, "" until written */
} sparams;

static void sparams_fini(sparams *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->segments[i]);
    free(p->segments);
    free(p->audio);
    free(p->output);
    if (p->list[0])
        unlink(p->list);
}

/* ---- params ------------------------------------------------------------------ */

/* A local path (no URL other than file:, no pipe) resolved into *out. */
static int local_path(we_plugin_call *call, const char *field, const char *s, char **out)
{
    char why[256];
    const enc_state *st = we_plugin_state(call);
    if (enc_input_check(s, why, sizeof why) < 0)
        return we_plugin_fail_params(call, "%s: %s", field, why);
    if (enc_input_kind_of(s) != ENC_INPUT_LOCAL)
        return we_plugin_fail_params(call, "%s: \"%s\" is a URL; a local path is required", field,
                                     s);
    *out = enc_resolve(st->work_dir, s);
    return *out ? 0 : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
}

static int parse_segments(we_plugin_call *call, json_t *params, sparams *p)
{
    json_t *a = json_object_get(params, "segments"), *v;
    size_t i;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > MAX_SEGMENTS)
        return we_plugin_fail_params(call, "segments: must be an array of 1 to %d paths",
                                     MAX_SEGMENTS);
    p->segments = calloc(json_array_size(a), sizeof *p->segments);
    if (!p->segments)
        return we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    json_array_foreach(a, i, v)
    {
        char field[32];
        const char *s = json_string_value(v);
        snprintf(field, sizeof field, "segments[%zu]", i);
        if (!s || strlen(s) != json_string_length(v))
            return we_plugin_fail_params(call, "%s: must be a string (without NUL bytes)", field);
        if (local_path(call, field, s, &p->segments[i]) < 0)
            return -1;
        p->n = i + 1;
    }
    return 0;
}

static int parse_params(we_plugin_call *call, json_t *params, sparams *p)
{
    const char *output, *audio = NULL;
    char why[256];
    json_t *a = json_object_get(params, "audio"), *fs = json_object_get(params, "faststart");
    if (parse_segments(call, params, p) < 0 ||
        enc_param_string(call, params, "output", &output) < 0 ||
        (a && !json_is_null(a) && enc_param_string(call, params, "audio", &audio) < 0))
        return -1;
    if (fs && !json_is_null(fs) && !json_is_boolean(fs))
        return we_plugin_fail_params(call, "faststart: must be a boolean");
    p->faststart = json_is_true(fs);
    if (audio && local_path(call, "audio", audio, &p->audio) < 0)
        return -1;
    if (enc_output_check(output, why, sizeof why) < 0)
        return we_plugin_fail_params(call, "output: %s", why);
    const enc_state *st = we_plugin_state(call);
    p->output = enc_resolve(st->work_dir, output);
    return p->output ? 0 : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
}

/* ---- the list file -------------------------------------------------------------- */

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_list(we_plugin_call *call, sparams *p)
{
    char why[256];
    const enc_state *st = we_plugin_state(call);
    char *text = enc_concat_list((const char *const *)p->segments, p->n, why, sizeof why);
    if (!text)
        return we_plugin_fail_params(call, "%s", why);
    snprintf(p->list, sizeof p->list, "%s/we-concat-XXXXXX.txt", st->work_dir);
    int fd = mkostemps(p->list, 4, O_CLOEXEC);
    int rc = fd >= 0 && write_all(fd, text, strlen(text)) == 0 ? 0 : -1;
    if (fd < 0)
        p->list[0] = '\0';
    if (fd >= 0 && close(fd) < 0)
        rc = -1;
    free(text);
    if (rc < 0)
        return we_plugin_fail(call, "WE-JOB-011", true, "cannot write the concat list in %s",
                              st->work_dir);
    return 0;
}

/* ---- inputs ------------------------------------------------------------------- */

/* Every segment and the audio must be a file now: FFmpeg would name only the
 * list. Missing is retryable: a shared filesystem may not show it yet. */
static int check_inputs(we_plugin_call *call, const sparams *p)
{
    struct stat sb;
    for (size_t i = 0; i <= p->n; i++) {
        const char *f = i < p->n ? p->segments[i] : p->audio;
        if (!f)
            continue;
        if (stat(f, &sb) < 0)
            return we_plugin_fail(call, "WE-JOB-011", true, "%s %s: %s",
                                  i < p->n ? "segment" : "audio", f, strerror(errno));
        if (!S_ISREG(sb.st_mode))
            return we_plugin_fail(call, "WE-JOB-010", false, "%s %s is not a file",
                                  i < p->n ? "segment" : "audio", f);
    }
    return 0;
}

/* ---- run and verify ------------------------------------------------------------- */

/* Sum of the segments' durations for percent; -1 when any is unknown. */
static double total_duration(we_plugin_call *call, const sparams *p)
{
    double sum = 0;
    for (size_t i = 0; i < p->n && !we_plugin_cancelled(call); i++) {
        double d = enc_probe_duration(call, p->segments[i], NULL);
        if (d <= 0)
            return -1;
        sum += d;
    }
    return sum;
}

static void push2(json_t *arr, const char *a, const char *b)
{
    json_array_append_new(arr, json_string(a));
    json_array_append_new(arr, json_string(b));
}

/* -map 0:v [-map 1:a] -c copy [-movflags +faststart] */
static json_t *output_args(const sparams *p)
{
    json_t *args = json_array();
    if (!args)
        return NULL;
    push2(args, "-map", "0:v");
    if (p->audio)
        push2(args, "-map", "1:a");
    push2(args, "-c", "copy");
    if (p->faststart)
        push2(args, "-movflags", "+faststart");
    return args;
}

static int run_ffmpeg(we_plugin_call *call, const sparams *p, enc_run_stats *stats)
{
    const enc_state *st = we_plugin_state(call);
    json_t *in_args = json_pack("[s, s, s, s]", "-f", "concat", "-safe", "0");
    json_t *args = output_args(p);
    enc_job job = {.ffmpeg = st->ffmpeg_path,
                   .input = p->list,
                   .input2 = p->audio,
                   .output = p->output,
                   .input_args = in_args,
                   .args = args,
                   .overwrite = true};
    int rc = in_args && args ? enc_run(call, &job, total_duration(call, p), "stitch", stats)
                             : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    json_decref(in_args);
    json_decref(args);
    return rc;
}

static bool has_stream(json_t *probe, const char *type)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(probe, "streams"), i, s)
    {
        if (json_is_string(json_object_get(s, "type")) &&
            strcmp(json_string_value(json_object_get(s, "type")), type) == 0)
            return true;
    }
    return false;
}

/* The output read back: the streams asked for and a duration, else deleted. */
static int verify(we_plugin_call *call, const sparams *p, json_t **probe)
{
    if (enc_probe_url(call, p->output, NULL, probe) < 0) {
        unlink(p->output);
        if (we_plugin_cancelled(call))
            return -1;
        return we_plugin_fail(call, "WE-JOB-011", true, "stitched output %s is unreadable",
                              p->output);
    }
    const char *missing = !has_stream(*probe, "video")             ? "video"
                          : p->audio && !has_stream(*probe, "audio") ? "audio"
                          : json_real_value(json_object_get(*probe, "duration_s")) <= 0
                              ? "a duration"
                              : NULL;
    if (!missing)
        return 0;
    unlink(p->output);
    return we_plugin_fail(call, "WE-JOB-010", false, "stitched output %s has no %s", p->output,
                          missing);
}

int enc_method_stitch(we_plugin_call *call, json_t *params, json_t **result)
{
    sparams p = {0};
    enc_run_stats stats;
    json_t *probe = NULL;
    int rc = parse_params(call, params, &p);
    if (rc == 0)
        rc = write_list(call, &p); /* refuses what a list cannot hold: before the files */
    if (rc == 0)
        rc = check_inputs(call, &p);
    if (rc == 0)
        rc = enc_prepare_output(call, p.output, true);
    if (rc == 0)
        rc = run_ffmpeg(call, &p, &stats);
    if (rc == 0)
        rc = verify(call, &p, &probe);
    if (rc == 0) {
        *result = json_pack("{s:s, s:I, s:O, s:O, s:f}", "output", p.output, "size_bytes",
                            (json_int_t)stats.size_bytes, "duration_s",
                            json_object_get(probe, "duration_s"), "frames",
                            json_object_get(probe, "frame_count"), "elapsed_s", stats.elapsed_s);
        rc = *result ? 0 : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    }
    json_decref(probe);
    sparams_fini(&p);
    return rc;
}
