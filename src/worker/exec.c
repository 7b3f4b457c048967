/*
 * One task through the plugins (docs/pipeline.md §2–3).
 *
 * Inputs: "fs://<key>" is a storage key, turned into this machine's path by
 * storage.local_path; "file:///abs" is used as the path it names (the
 * kernel decided it may be read); http(s):// goes to FFmpeg as it is.
 * Outputs are keys, resolved with create_parent so the encoder can write
 * in place. Each task type is a row of the handler table: probe, video and
 * audio (the same transcode), stitch, package (a ladder's renditions to HLS
 * under output_prefix: the master playlist's key is the result, with the
 * size and sha256 storage.checksum gives).
 *
 * Errors keep the plugin's words: its we_code and retryable flag go into
 * the failed event unchanged (WE-JOB-010 corrupt input, not retryable;
 * WE-JOB-011 a crash or I/O trouble, retryable; WE-STO-001 a bad key; the
 * host's WE-PLG-* when a plugin is down or the deadline passed). A call
 * that fails with no we_code is a refused request (WE-JOB-012, not
 * retryable) or a lost one (WE-JOB-011, retryable).
 *
 * Cancellation: every call gets the task's cancel flag, so the host sends
 * $/cancel and the encoder kills FFmpeg within a second; once the flag is
 * set the outcome is "cancelled" whatever the call returned.
 *
 * Threads: runs on the task's thread; everything here belongs to the call.
 */
#include "exec.h"
#include "we_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORAGE_MS 60000              /* local_path */
#define CHECKSUM_MS (10 * 60 * 1000)  /* reads the whole output */
#define ENCODER_MS (24 * 3600 * 1000) /* a transcode may take hours; cancel ends it sooner */

typedef struct run {
    const wk_exec *x;
    char enc[WE_PLUGIN_ID_MAX + 1]; /* the encoder plugin's id */
    char sto[WE_PLUGIN_ID_MAX + 1]; /* the storage plugin's id */
    wk_task_error *e;
} run;

static void fail(run *r, const char *code, bool retryable, const char *msg)
{
    snprintf(r->e->code, sizeof r->e->code, "%s", code);
    snprintf(r->e->message, sizeof r->e->message, "%s", msg);
    r->e->retryable = retryable;
}

static void fail_rpc(run *r, int rc, const we_rpc_error *rerr, const we_err *err)
{
    bool refused = rc == WE_EINVAL;
    const char *msg = rerr->message[0] ? rerr->message : we_err_msg(err);
    if (rerr->we_code[0])
        fail(r, rerr->we_code, rerr->retryable, msg);
    else
        fail(r, refused ? "WE-JOB-012" : "WE-JOB-011", !refused, msg);
}

/* Calls method with params (stolen); 0 with *res, or the call's error in r->e. */
static int call(run *r, const char *plugin, const char *method, json_t *params, int timeout_ms,
                json_t **res)
{
    we_rpc_error rerr;
    we_err err = {""};
    const wk_exec *x = r->x;
    bool enc = plugin == r->enc; /* only the encoder's calls have progress */
    if (!params) {
        fail(r, "WE-JOB-011", true, "out of memory");
        return WE_ENOMEM;
    }
    int rc = we_host_call(x->host, plugin, method, params, timeout_ms, enc ? x->progress : NULL,
                          x->progress_arg, x->cancel, res, &rerr, &err);
    json_decref(params);
    if (rc != 0)
        fail_rpc(r, rc, &rerr, &err);
    return rc;
}

/* ---- paths ------------------------------------------------------------------------ */

/* The local path of key (new string in *out). */
static int local_path(run *r, const char *key, bool create_parent, char **out)
{
    json_t *res = NULL;
    int rc =
        call(r, r->sto, "storage.local_path",
             json_pack("{s:s, s:b}", "key", key, "create_parent", create_parent), STORAGE_MS, &res);
    const char *path = json_string_value(json_object_get(res, "path"));
    if (rc == 0 && !path) {
        fail(r, "WE-JOB-011", true, "storage.local_path answered without a path");
        rc = WE_EIO;
    }
    *out = rc == 0 ? we_strdup(path) : NULL;
    json_decref(res);
    return rc;
}

/* What FFmpeg should open for the input URL (new string in *out). */
static int resolve_input(run *r, const char *url, char **out)
{
    if (strncmp(url, "fs://", 5) == 0)
        return local_path(r, url + 5, false, out);
    if (strncmp(url, "file:///", 8) == 0) {
        *out = we_strdup(url + 7);
        return 0;
    }
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        *out = we_strdup(url);
        return 0;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "input \"%.120s\": not fs://, file:/// or http(s)://", url);
    fail(r, "WE-JOB-012", false, msg);
    return WE_EINVAL;
}

static const char *param(const run *r, const char *name)
{
    return json_string_value(json_object_get(r->x->task->params, name));
}

/* ---- handlers ------------------------------------------------------------------------- */

static int do_probe(run *r, json_t **result)
{
    char *in = NULL;
    int rc = resolve_input(r, param(r, "input"), &in);
    if (rc == 0)
        rc = call(r, r->enc, "encoder.probe", json_pack("{s:s}", "url", in), ENCODER_MS, result);
    free(in);
    return rc;
}

/* params[name] when it is set (not null), for passing on. */
static json_t *given(const run *r, const char *name)
{
    json_t *v = json_object_get(r->x->task->params, name);
    return json_is_null(v) ? NULL : v;
}

static json_t *transcode_params(const run *r, const char *in, const char *out)
{
    json_t *p = json_pack("{s:s, s:s, s:O, s:b}", "input", in, "output", out, "args",
                          given(r, "args"), "overwrite", 1);
    if (p && given(r, "input_args"))
        json_object_set(p, "input_args", given(r, "input_args"));
    if (p && given(r, "duration_s"))
        json_object_set(p, "duration_s", given(r, "duration_s"));
    return p;
}

static json_t *field_or_zero(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return v ? json_incref(v) : json_integer(0);
}

static int do_transcode(run *r, json_t **result)
{
    char *in = NULL, *out = NULL;
    json_t *res = NULL;
    const char *key = param(r, "output_key");
    int rc = resolve_input(r, param(r, "input"), &in);
    if (rc == 0)
        rc = local_path(r, key, true, &out);
    if (rc == 0)
        rc = call(r, r->enc, "encoder.transcode", transcode_params(r, in, out), ENCODER_MS, &res);
    if (rc == 0)
        *result = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "output_key", key, "size_bytes",
                            field_or_zero(res, "size_bytes"), "duration_s",
                            field_or_zero(res, "duration_s"), "frames",
                            field_or_zero(res, "frames"), "elapsed_s",
                            field_or_zero(res, "elapsed_s"), "speed", field_or_zero(res, "speed"));
    json_decref(res);
    free(in);
    free(out);
    return rc;
}

/* stitch: segment keys (and the audio key) to local paths, in order. */
static int stitch_inputs(run *r, json_t **segments, char **audio)
{
    size_t i;
    json_t *k;
    int rc = 0;
    *segments = json_array();
    json_array_foreach(given(r, "segment_keys"), i, k)
    {
        char *path = NULL;
        if ((rc = local_path(r, json_string_value(k), false, &path)) != 0)
            return rc;
        json_array_append_new(*segments, json_string(path));
        free(path);
    }
    const char *audio_key = param(r, "audio_key");
    return audio_key ? local_path(r, audio_key, false, audio) : 0;
}

static int do_stitch(run *r, json_t **result)
{
    json_t *segments = NULL, *res = NULL, *sum = NULL;
    char *audio = NULL, *out = NULL;
    const char *key = param(r, "output_key");
    int rc = stitch_inputs(r, &segments, &audio);
    if (rc == 0)
        rc = local_path(r, key, true, &out);
    if (rc == 0)
        rc = call(r, r->enc, "encoder.stitch",
                  json_pack("{s:O, s:s?, s:s, s:b}", "segments", segments, "audio", audio, "output",
                            out, "faststart", json_is_true(given(r, "faststart"))),
                  ENCODER_MS, &res);
    if (rc == 0)
        rc = call(r, r->sto, "storage.checksum", json_pack("{s:s}", "key", key), CHECKSUM_MS, &sum);
    if (rc == 0)
        *result = json_pack(
            "{s:s, s:s, s:o, s:o, s:o, s:o}", "output_key", key, "storage_plugin", r->sto,
            "size_bytes", field_or_zero(sum, "size_bytes"), "sha256", field_or_zero(sum, "sha256"),
            "duration_s", field_or_zero(res, "duration_s"), "frames", field_or_zero(res, "frames"));
    json_decref(segments);
    json_decref(res);
    json_decref(sum);
    free(audio);
    free(out);
    return rc;
}

/* package: each rendition key to its local path (with its name), and the
 * output directory through the master playlist's key (create_parent). */
static int package_inputs(run *r, json_t **inputs, json_t **names)
{
    size_t i;
    json_t *rd;
    *inputs = json_array();
    *names = json_array();
    json_array_foreach(given(r, "renditions"), i, rd)
    {
        char *path = NULL;
        int rc = local_path(r, json_string_value(json_object_get(rd, "key")), false, &path);
        if (rc != 0)
            return rc;
        json_array_append_new(*inputs, json_string(path));
        json_array_append(*names, json_object_get(rd, "name"));
        free(path);
    }
    return 0;
}

/* The directory of a local path (cut at its last '/'), in place. */
static void cut_to_dir(char *path)
{
    char *slash = strrchr(path, '/');
    if (slash && slash != path)
        *slash = '\0';
}

static json_t *package_params(const run *r, json_t *inputs, json_t *names, const char *dir)
{
    json_t *p = json_pack("{s:O, s:O, s:s, s:b}", "inputs", inputs, "names", names, "output_dir",
                          dir, "audio", json_is_true(given(r, "audio")));
    if (p && given(r, "hls_time"))
        json_object_set(p, "hls_time", given(r, "hls_time"));
    if (p && given(r, "segment_type"))
        json_object_set(p, "segment_type", given(r, "segment_type"));
    return p;
}

static int do_package(run *r, json_t **result)
{
    json_t *inputs = NULL, *names = NULL, *res = NULL, *sum = NULL;
    char *dir = NULL, key[1024];
    snprintf(key, sizeof key, "%smaster.m3u8", param(r, "output_prefix"));
    int rc = package_inputs(r, &inputs, &names);
    if (rc == 0)
        rc = local_path(r, key, true, &dir);
    if (rc == 0) {
        cut_to_dir(dir);
        rc = call(r, r->enc, "encoder.package", package_params(r, inputs, names, dir), ENCODER_MS,
                  &res);
    }
    if (rc == 0)
        rc = call(r, r->sto, "storage.checksum", json_pack("{s:s}", "key", key), CHECKSUM_MS, &sum);
    if (rc == 0)
        *result =
            json_pack("{s:s, s:s, s:o, s:o, s:o}", "output_key", key, "storage_plugin", r->sto,
                      "size_bytes", field_or_zero(sum, "size_bytes"), "sha256",
                      field_or_zero(sum, "sha256"), "variants", field_or_zero(res, "variants"));
    json_decref(inputs);
    json_decref(names);
    json_decref(res);
    json_decref(sum);
    free(dir);
    return rc;
}

static const struct {
    wk_task_type type;
    int (*run)(run *r, json_t **result);
} handlers[] = {
    {WK_TASK_PROBE, do_probe},   {WK_TASK_VIDEO, do_transcode}, {WK_TASK_AUDIO, do_transcode},
    {WK_TASK_STITCH, do_stitch}, {WK_TASK_PACKAGE, do_package},
};

/* ---- the task ----------------------------------------------------------------------- */

static int pick_plugins(run *r)
{
    we_err err;
    if (we_host_pick(r->x->host, WE_PT_ENCODER, r->enc, &err) != 0 ||
        we_host_pick(r->x->host, WE_PT_STORAGE, r->sto, &err) != 0) {
        fail(r, WE_HOST_UNAVAILABLE, true, "no healthy encoder and storage plugin on this worker");
        return WE_EUNAVAIL;
    }
    return 0;
}

static int dispatch(run *r, json_t **result)
{
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        if (handlers[i].type == r->x->task->type)
            return handlers[i].run(r, result);
    fail(r, "WE-JOB-012", false, "no handler for this task type");
    return WE_EINVAL;
}

wk_outcome wk_exec_run(const wk_exec *x, json_t **result, wk_task_error *e)
{
    we_err err;
    run r = {.x = x, .e = e};
    *result = NULL;
    memset(e, 0, sizeof *e);
    int rc = x->host ? pick_plugins(&r) : WE_EUNAVAIL;
    if (!x->host)
        fail(&r, WE_HOST_UNAVAILABLE, true, "this worker runs no plugins");
    if (rc == 0 && (rc = wk_task_check(x->task, &err)) != 0)
        fail(&r, "WE-JOB-012", false, err.msg);
    if (rc == 0)
        rc = dispatch(&r, result);
    if (atomic_load(x->cancel)) {
        json_decref(*result);
        *result = NULL;
        return WK_OUT_CANCELLED;
    }
    if (rc == 0 && !*result) {
        fail(&r, "WE-JOB-011", true, "out of memory building the result");
        rc = WE_ENOMEM;
    }
    return rc == 0 ? WK_OUT_COMPLETED : WK_OUT_FAILED;
}
