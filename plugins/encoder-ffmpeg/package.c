/*
 * encoder.package: packages a ladder's stitched renditions as HLS without
 * re-encoding: a variant playlist and segments per rendition, one shared
 * audio rendition, and the master playlist.
 *
 * Params: inputs (1 to 16 local paths, the renditions in ladder order),
 * names (one per input: the variant's name and directory, see hls.c),
 * output_dir (a local directory, created; no '%', which FFmpeg would read
 * as a pattern), hls_time (seconds, > 0 and <= 60, default 6),
 * segment_type ("mpegts", the default, or "fmp4"), audio (bool, default
 * false: map the first input's audio as the audio group). Result: master
 * (path), size_bytes (of the master), variants (n), elapsed_s.
 *
 * Design: one ffmpeg with every rendition as an input and the hls muxer's
 * var_stream_map (hls.c), run through run.c — so progress (against the
 * first input's duration), cancellation and the error classification are
 * the transcode's; the master playlist is the file run.c checks and deletes
 * on failure. A zero exit is not trusted alone: every variant playlist must
 * exist and end with #EXT-X-ENDLIST, else the master is deleted and the
 * call fails (retryable). Inputs are checked first so a missing rendition
 * is named.
 *
 * Threads: runs on an SDK pool thread; everything here belongs to the call.
 */
#include "encoder.h"

#include "webencode/plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HLS_TIME 60

typedef struct pparams {
    json_t *inputs; /* resolved paths (new array) */
    const char *names[ENC_HLS_MAX_VARIANTS];
    char *dir; /* resolved; owned */
    enc_hls h;
} pparams;

static void pparams_fini(pparams *p)
{
    json_decref(p->inputs);
    free(p->dir);
}

/* ---- params ------------------------------------------------------------------ */

/* A local path (no URL other than file:, no pipe), resolved; NULL after
 * failing the call. */
static char *local_path(we_plugin_call *call, const char *field, const char *s)
{
    char why[256];
    const enc_state *st = we_plugin_state(call);
    if (enc_input_check(s, why, sizeof why) < 0) {
        we_plugin_fail_params(call, "%s: %s", field, why);
        return NULL;
    }
    if (enc_input_kind_of(s) != ENC_INPUT_LOCAL) {
        we_plugin_fail_params(call, "%s: \"%s\" is a URL; a local path is required", field, s);
        return NULL;
    }
    char *out = enc_resolve(st->work_dir, s);
    if (!out)
        we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    return out;
}

static const char *string_at(json_t *a, size_t i)
{
    json_t *v = json_array_get(a, i);
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) ? s : NULL;
}

static int parse_inputs(we_plugin_call *call, json_t *params, pparams *p)
{
    json_t *in = json_object_get(params, "inputs"), *names = json_object_get(params, "names");
    size_t n = json_array_size(in);
    char field[32], why[128];
    if (!json_is_array(in) || n == 0 || n > ENC_HLS_MAX_VARIANTS)
        return we_plugin_fail_params(call, "inputs: must be an array of 1 to %d paths",
                                     ENC_HLS_MAX_VARIANTS);
    if (!json_is_array(names) || json_array_size(names) != n)
        return we_plugin_fail_params(call, "names: must be an array with a name per input");
    p->inputs = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *s = string_at(in, i), *name = string_at(names, i);
        snprintf(field, sizeof field, "inputs[%zu]", i);
        if (!s)
            return we_plugin_fail_params(call, "%s: must be a string (without NUL bytes)", field);
        char *path = local_path(call, field, s);
        if (!path)
            return -1;
        json_array_append_new(p->inputs, json_string(path));
        free(path);
        if (!name || enc_hls_name_check(name, p->h.audio, why, sizeof why) < 0)
            return we_plugin_fail_params(call, "names[%zu]: %s", i, name ? why : "not a string");
        for (size_t k = 0; k < i; k++)
            if (strcmp(p->names[k], name) == 0)
                return we_plugin_fail_params(call, "names[%zu]: \"%s\" is given twice", i, name);
        p->names[i] = name;
    }
    p->h.names = p->names;
    p->h.n = n;
    return 0;
}

static int parse_options(we_plugin_call *call, json_t *params, pparams *p)
{
    json_t *t = json_object_get(params, "hls_time"), *a = json_object_get(params, "audio");
    json_t *st = json_object_get(params, "segment_type");
    if (t && !json_is_null(t) &&
        (!json_is_number(t) || json_number_value(t) <= 0 || json_number_value(t) > MAX_HLS_TIME))
        return we_plugin_fail_params(call, "hls_time: must be a number of seconds, > 0 and <= %d",
                                     MAX_HLS_TIME);
    p->h.hls_time = t && !json_is_null(t) ? json_number_value(t) : 6;
    if (a && !json_is_null(a) && !json_is_boolean(a))
        return we_plugin_fail_params(call, "audio: must be a boolean");
    p->h.audio = json_is_true(a);
    const char *type = st && !json_is_null(st) ? json_string_value(st) : "mpegts";
    if (!type || (strcmp(type, "mpegts") != 0 && strcmp(type, "fmp4") != 0))
        return we_plugin_fail_params(call, "segment_type: must be \"mpegts\" or \"fmp4\"");
    p->h.fmp4 = strcmp(type, "fmp4") == 0;
    return 0;
}

static int parse_params(we_plugin_call *call, json_t *params, pparams *p)
{
    const char *dir;
    if (parse_options(call, params, p) < 0 || parse_inputs(call, params, p) < 0 ||
        enc_param_string(call, params, "output_dir", &dir) < 0)
        return -1;
    if (strchr(dir, '%'))
        return we_plugin_fail_params(call, "output_dir: must not contain '%%'");
    if (!(p->dir = local_path(call, "output_dir", dir)))
        return -1;
    size_t len = strlen(p->dir);
    while (len > 1 && p->dir[len - 1] == '/')
        p->dir[--len] = '\0';
    p->h.dir = p->dir;
    return 0;
}

/* ---- inputs, run, verify ----------------------------------------------------------- */

/* Every rendition must be a file now. Missing is retryable: a shared
 * filesystem may not show it yet. */
static int check_inputs(we_plugin_call *call, const pparams *p)
{
    struct stat sb;
    size_t i;
    json_t *v;
    json_array_foreach(p->inputs, i, v)
    {
        const char *f = json_string_value(v);
        if (stat(f, &sb) < 0)
            return we_plugin_fail(call, "WE-JOB-011", true, "rendition %s: %s", f, strerror(errno));
        if (!S_ISREG(sb.st_mode))
            return we_plugin_fail(call, "WE-JOB-010", false, "rendition %s is not a file", f);
    }
    return 0;
}

static int run_ffmpeg(we_plugin_call *call, const pparams *p, const char *master,
                      enc_run_stats *stats)
{
    const enc_state *st = we_plugin_state(call);
    const char *first = json_string_value(json_array_get(p->inputs, 0));
    json_t *args = enc_hls_args(&p->h), *more = json_array();
    char *pattern = enc_hls_output(&p->h);
    for (size_t i = 1; more && i < json_array_size(p->inputs); i++)
        json_array_append(more, json_array_get(p->inputs, i));
    enc_job job = {.ffmpeg = st->ffmpeg_path,
                   .input = first,
                   .inputs = more,
                   .output = pattern,
                   .result = master,
                   .args = args,
                   .overwrite = true};
    int rc = args && more && pattern
                 ? enc_run(call, &job, enc_probe_duration(call, first, NULL), "package", stats)
                 : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    json_decref(args);
    json_decref(more);
    free(pattern);
    return rc;
}

/* True when the file at path ends its playlist (#EXT-X-ENDLIST). */
static bool playlist_complete(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    bool end = false;
    while (f && fgets(line, sizeof line, f))
        end = strncmp(line, "#EXT-X-ENDLIST", 14) == 0 || (end && line[0] == '\n');
    if (f)
        fclose(f);
    return end;
}

static int verify(we_plugin_call *call, const pparams *p, const char *master)
{
    for (size_t i = 0; i < p->h.n; i++) {
        size_t n = strlen(p->dir) + strlen(p->names[i]) + 16;
        char *path = malloc(n);
        if (!path)
            return we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
        snprintf(path, n, "%s/%s/index.m3u8", p->dir, p->names[i]);
        bool ok = playlist_complete(path);
        if (!ok) {
            unlink(master);
            we_plugin_fail(call, "WE-JOB-011", true, "variant playlist %s is missing or unfinished",
                           path);
        }
        free(path);
        if (!ok)
            return -1;
    }
    return 0;
}

int enc_method_package(we_plugin_call *call, json_t *params, json_t **result)
{
    pparams p = {0};
    enc_run_stats stats;
    char *master = NULL;
    int rc = parse_params(call, params, &p);
    if (rc == 0)
        rc = check_inputs(call, &p);
    if (rc == 0 && !(master = enc_hls_master(&p.h)))
        rc = we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    if (rc == 0)
        rc = enc_prepare_output(call, master, true);
    if (rc == 0)
        rc = run_ffmpeg(call, &p, master, &stats);
    if (rc == 0)
        rc = verify(call, &p, master);
    if (rc == 0) {
        *result = json_pack("{s:s, s:I, s:I, s:f}", "master", master, "size_bytes",
                            (json_int_t)stats.size_bytes, "variants", (json_int_t)p.h.n,
                            "elapsed_s", stats.elapsed_s);
        rc = *result ? 0 : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    }
    free(master);
    pparams_fini(&p);
    return rc;
}
