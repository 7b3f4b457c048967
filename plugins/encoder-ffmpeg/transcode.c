/*
 * encoder.transcode: one ffmpeg run, with progress, cancellation and an
 * error the kernel can act on.
 *
 * Params: input (path or URL), output (a local path; parent directories are
 * created; relative paths resolve against work_dir), args (output options),
 * input_args (options before -i), duration_s (expected output length for
 * percent; else from -t/-ss and the input's duration), overwrite (default
 * true). Result: output, size_bytes, duration_s, frames, elapsed_s, speed.
 *
 * Design: parameters are checked here; the run itself — progress at most
 * every 250 ms ending with a final 100, cancellation within a second, a
 * failed or cancelled run's output deleted, the exit classified — is
 * run.c's, shared with encoder.stitch. The input's source (source.c) is
 * opened first: a refused protocol fails before any file or process is
 * made, and a remote input's egress proxy serves both the duration probe
 * and ffmpeg (a refusal during the probe fails the call before ffmpeg).
 *
 * Threads: runs on an SDK pool thread; everything here belongs to the call.
 */
#include "encoder.h"

#include "webencode/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tparams {
    const char *input;
    char *output; /* resolved against work_dir; owned */
    json_t *args, *input_args;
    double duration_s; /* <= 0: unknown */
    bool overwrite;
} tparams;

/* ---- params ------------------------------------------------------------------ */

int enc_param_string(we_plugin_call *call, json_t *params, const char *name, const char **out)
{
    json_t *v = json_object_get(params, name);
    *out = json_string_value(v);
    if (!v)
        return we_plugin_fail_params(call, "%s: missing (a string is required)", name);
    if (!*out || strlen(*out) != json_string_length(v))
        return we_plugin_fail_params(call, "%s: must be a string (without NUL bytes)", name);
    return 0;
}

static int array_field(we_plugin_call *call, json_t *params, const char *name, json_t **out)
{
    char why[256];
    *out = json_object_get(params, name);
    if (*out && json_is_null(*out))
        *out = NULL;
    if (enc_args_check(*out, name, why, sizeof why) < 0)
        return we_plugin_fail_params(call, "%s", why);
    return 0;
}

static int optional_fields(we_plugin_call *call, json_t *params, tparams *p)
{
    json_t *d = json_object_get(params, "duration_s"), *o = json_object_get(params, "overwrite");
    if (d && !json_is_null(d) && (!json_is_number(d) || !(json_number_value(d) >= 0)))
        return we_plugin_fail_params(call, "duration_s: must be a number >= 0");
    if (o && !json_is_null(o) && !json_is_boolean(o))
        return we_plugin_fail_params(call, "overwrite: must be a boolean");
    p->duration_s = json_is_number(d) ? json_number_value(d) : -1;
    p->overwrite = json_is_boolean(o) ? json_is_true(o) : true;
    return 0;
}

static int parse_params(we_plugin_call *call, json_t *params, const enc_state *st, tparams *p)
{
    const char *output;
    char why[256];
    if (enc_param_string(call, params, "input", &p->input) < 0 ||
        enc_param_string(call, params, "output", &output) < 0 ||
        array_field(call, params, "args", &p->args) < 0 ||
        array_field(call, params, "input_args", &p->input_args) < 0 ||
        optional_fields(call, params, p) < 0)
        return -1;
    if (enc_input_check(p->input, why, sizeof why) < 0)
        return we_plugin_fail_params(call, "input: %s", why);
    if (enc_output_check(output, why, sizeof why) < 0)
        return we_plugin_fail_params(call, "output: %s", why);
    p->output = enc_resolve(st->work_dir, output);
    return p->output ? 0 : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
}

/* Expected output duration for percent: given, or from -t/-ss and the input. */
static double expected_duration(we_plugin_call *call, const enc_state *st, const tparams *p,
                                const enc_source *src)
{
    if (p->duration_s > 0)
        return p->duration_s;
    double d = enc_expected_duration(p->input_args, p->args, -1);
    if (d > 0 || enc_args_value(p->input_args, "-f"))
        return d; /* with -f the input is not a file libavformat can open plainly */
    char *url = enc_resolve(st->work_dir, p->input);
    double in = url ? enc_probe_duration(call, url, src) : -1;
    free(url);
    return enc_expected_duration(p->input_args, p->args, in);
}

static json_t *result_json(const char *output, const enc_run_stats *s)
{
    return json_pack("{s:s, s:I, s:f, s:I, s:f, s:f}", "output", output, "size_bytes",
                     (json_int_t)s->size_bytes, "duration_s", s->out_time_s, "frames",
                     (json_int_t)s->frames, "elapsed_s", s->elapsed_s, "speed", s->speed);
}

int enc_method_transcode(we_plugin_call *call, json_t *params, json_t **result)
{
    enc_state *st = we_plugin_state(call);
    tparams p = {0};
    enc_source src = {0};
    enc_run_stats stats;
    int rc = parse_params(call, params, st, &p);
    if (rc == 0)
        rc = enc_source_open(call, p.input, &src);
    if (rc == 0)
        rc = enc_prepare_output(call, p.output, p.overwrite);
    if (rc == 0) {
        enc_job job = {.ffmpeg = st->ffmpeg_path,
                       .input = p.input,
                       .output = p.output,
                       .input_args = p.input_args,
                       .args = p.args,
                       .source = &src,
                       .overwrite = p.overwrite};
        double expected = expected_duration(call, st, &p, &src);
        rc = enc_source_refused(call, &src, "while reading its duration");
        if (rc == 0)
            rc = enc_run(call, &job, expected, "transcode", &stats);
    }
    if (rc == 0 && !(*result = result_json(p.output, &stats)))
        rc = we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    enc_source_close(&src);
    free(p.output);
    return rc;
}
