/*
 * encoder.capabilities: the encoders and hardware accelerations the
 * configured ffmpeg offers, and its version.
 *
 * Design: ffmpeg is asked once (-encoders, -hwaccels, -version; no shell),
 * on the first call rather than at start-up so a handshake never waits for
 * it; the parsed answer is cached in the plugin state and copied to each
 * caller. A failed run is not cached, so a later call tries again.
 *
 * Threads: the cache is guarded by enc_state.caps_mu; concurrent first calls
 * run ffmpeg once.
 */
#include "encoder.h"

#include "webencode/plugin.h"

#include <stdlib.h>

#define CAPTURE_MAX (1024 * 1024)
#define CAPTURE_TIMEOUT_MS 15000

/* ffmpeg <flag> → its stdout (new string), or NULL. */
static char *ask(const enc_state *st, const char *flag)
{
    char *argv[] = {st->ffmpeg_path, "-hide_banner", (char *)flag, NULL};
    char *out = NULL;
    if (enc_run_capture(argv, st->work_dir, CAPTURE_MAX, CAPTURE_TIMEOUT_MS, &out) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static json_t *build_caps(const enc_state *st)
{
    char *enc = ask(st, "-encoders"), *hw = ask(st, "-hwaccels"), *ver = ask(st, "-version");
    char version[128] = "";
    json_t *caps = NULL;
    if (enc && hw && ver) {
        json_t *encoders = json_array(), *hwaccels = json_array();
        enc_encoders_parse(enc, encoders);
        enc_hwaccels_parse(hw, hwaccels);
        enc_version_parse(ver, version, sizeof version);
        caps = json_pack("{s:o, s:o, s:s}", "encoders", encoders, "hwaccels", hwaccels,
                         "ffmpeg_version", version);
    }
    free(enc);
    free(hw);
    free(ver);
    return caps;
}

int enc_method_capabilities(we_plugin_call *call, json_t *params, json_t **result)
{
    enc_state *st = we_plugin_state(call);
    if (!st->ffmpeg_path)
        return we_plugin_fail(call, "WE-JOB-011", true, "ffmpeg not found: %s", st->ffmpeg);
    pthread_mutex_lock(&st->caps_mu);
    if (!st->caps)
        st->caps = build_caps(st);
    *result = st->caps ? json_deep_copy(st->caps) : NULL;
    pthread_mutex_unlock(&st->caps_mu);
    if (!*result)
        return we_plugin_fail(call, "WE-JOB-011", true, "%s -encoders failed", st->ffmpeg_path);
    return 0;
}
