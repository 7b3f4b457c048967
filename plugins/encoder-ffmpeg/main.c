/*
 * encoder-ffmpeg: the encoder plugin. Probes sources with libavformat and
 * runs ffmpeg for transcodes, speaking docs/plugin-protocol.md through the
 * SDK (include/webencode/plugin.h).
 *
 * Files: main.c (this: method table, configuration, health), probe.c
 * (encoder.probe), transcode.c (encoder.transcode), stitch.c
 * (encoder.stitch), package.c (encoder.package), run.c (one supervised
 * ffmpeg run, shared by the three), capabilities.c (encoder.capabilities),
 * spawn.c (starting ffmpeg), source.c and egress.c (what an input may
 * reach: the egress proxy every remote input goes through), and the pure
 * parts args.c, progress.c, classify.c, caps.c, concat.c, hls.c that the
 * unit test includes.
 *
 * Configuration (plugin.toml's [config_schema]; the host fills defaults and
 * environment values, but a missing field still falls back to the same
 * env/default here so the plugin also runs under a bare host): ffmpeg
 * (FFMPEG_PATH, "ffmpeg"), work_dir (ENCODER_WORK_DIR, "/tmp": ffmpeg's
 * working directory, against which relative paths resolve), kill_grace_ms
 * (500; at most 1000 so a cancelled ffmpeg is gone within a second),
 * source_allow_private (SOURCE_ALLOW_PRIVATE, false) and source_allow_cidrs
 * (SOURCE_ALLOW_CIDRS, ""): which internal addresses remote inputs may
 * reach (source.c).
 *
 * Threads: init/fini/health run on the SDK's main thread; methods on its
 * pool threads share only the read-only state and the capability cache
 * (enc_state.caps_mu). libav* messages go through one callback that makes
 * them JSON log lines on stderr.
 */
#include "encoder.h"

#include "webencode/plugin.h"

#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_GRACE_MS 1000

static const char *config_string(json_t *cfg, const char *key, const char *env, const char *def)
{
    const char *v = json_string_value(json_object_get(cfg, key));
    const char *e = env ? getenv(env) : NULL;
    return v ? v : (e && *e ? e : def);
}

/* Absolute path of an executable: as given when it has a '/', else from PATH. */
static char *find_program(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
    const char *path = getenv("PATH");
    char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
    char *found = NULL, buf[PATH_MAX];
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, sizeof buf, "%s/%s", d, name);
        if (access(buf, X_OK) == 0)
            found = strdup(buf);
    }
    free(copy);
    return found;
}

/* libav* calls back on the thread that called it, so a probe finds its own
 * detail here. */
static _Thread_local char av_last[256];

const char *enc_av_last(void)
{
    return av_last;
}

void enc_av_clear(void)
{
    av_last[0] = '\0';
}

/* libav* log lines become the plugin's JSON log lines (warn level: a bad
 * input is the caller's error, reported in the call's reply). */
static void av_log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > av_log_get_level())
        return;
    char line[1024];
    va_list copy;
    va_copy(copy, vl);
    vsnprintf(av_last, sizeof av_last, fmt, copy);
    va_end(copy);
    av_last[strcspn(av_last, "\n")] = '\0';
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &prefix);
    line[strcspn(line, "\n")] = '\0';
    if (line[0])
        we_plugin_log("warn", line, json_pack("{s:s}", "source", "libav"));
}

/* A boolean field: JSON true/false, else the variable as the host reads
 * it (1/true/yes/on, 0/false/no/off), else def. -1 when malformed. */
static int config_bool(json_t *cfg, const char *key, const char *env, bool def, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no",
                                                                                "off"};
    json_t *v = json_object_get(cfg, key);
    const char *e = getenv(env);
    *out = def;
    if (v)
        return json_is_boolean(v) ? (*out = json_is_true(v), 0) : -1;
    for (size_t i = 0; e && *e && i < 4; i++) {
        if (strcasecmp(e, yes[i]) == 0 || strcasecmp(e, no[i]) == 0) {
            *out = strcasecmp(e, yes[i]) == 0;
            return 0;
        }
    }
    return e && *e ? -1 : 0;
}

static int parse_policy(json_t *cfg, enc_state *st, char *err, size_t n)
{
    bool allow_private;
    char why[160];
    json_t *cidrs = json_object_get(cfg, "source_allow_cidrs");
    if (config_bool(cfg, "source_allow_private", "SOURCE_ALLOW_PRIVATE", false, &allow_private) <
        0) {
        snprintf(err, n, "source_allow_private: must be a boolean (SOURCE_ALLOW_PRIVATE: "
                         "true/false)");
        return -1;
    }
    if (cidrs && !json_is_string(cidrs)) {
        snprintf(err, n, "source_allow_cidrs: must be a string (a comma list of CIDRs)");
        return -1;
    }
    if (enc_egress_policy_parse(allow_private,
                                config_string(cfg, "source_allow_cidrs", "SOURCE_ALLOW_CIDRS", ""),
                                &st->policy, why, sizeof why) < 0) {
        snprintf(err, n, "source_allow_cidrs: %s", why);
        return -1;
    }
    return 0;
}

static int parse_config(json_t *cfg, enc_state *st, char *err, size_t n)
{
    json_t *grace = json_object_get(cfg, "kill_grace_ms");
    if (grace && (!json_is_integer(grace) || json_integer_value(grace) < 0 ||
                  json_integer_value(grace) > MAX_GRACE_MS)) {
        snprintf(err, n, "kill_grace_ms: must be an integer from 0 to %d", MAX_GRACE_MS);
        return -1;
    }
    st->kill_grace_ms = grace ? (int)json_integer_value(grace) : 500;
    if (parse_policy(cfg, st, err, n) < 0)
        return -1;
    st->ffmpeg = strdup(config_string(cfg, "ffmpeg", "FFMPEG_PATH", "ffmpeg"));
    st->work_dir = strdup(config_string(cfg, "work_dir", "ENCODER_WORK_DIR", "/tmp"));
    if (!st->ffmpeg || !st->work_dir) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    struct stat sb;
    if (stat(st->work_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, n, "work_dir: %s is not a directory", st->work_dir);
        return -1;
    }
    st->ffmpeg_path = find_program(st->ffmpeg);
    return 0;
}

static void enc_fini(void *state)
{
    enc_state *st = state;
    if (!st)
        return;
    avformat_network_deinit();
    pthread_mutex_destroy(&st->caps_mu);
    json_decref(st->caps);
    free(st->ffmpeg);
    free(st->ffmpeg_path);
    free(st->work_dir);
    free(st);
}

static int enc_init(json_t *config, void **state, char *err, size_t err_len)
{
    enc_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    pthread_mutex_init(&st->caps_mu, NULL);
    avformat_network_init();
    if (parse_config(json_is_object(config) ? config : NULL, st, err, err_len) < 0) {
        enc_fini(st);
        return -1;
    }
    if (!st->ffmpeg_path)
        we_plugin_log("warn", "ffmpeg not found; transcodes will fail",
                      json_pack("{s:s}", "ffmpeg", st->ffmpeg));
    enc_egress_global_policy(&st->policy);
    *state = st;
    return 0;
}

static bool enc_health(void *state, const char **detail)
{
    const enc_state *st = state;
    if (st && !st->ffmpeg_path) {
        *detail = "ffmpeg not found (config ffmpeg / FFMPEG_PATH)";
        return false;
    }
    return true;
}

static const we_plugin_method methods[] = {
    {"encoder.capabilities", enc_method_capabilities},
    {"encoder.probe", enc_method_probe},
    {"encoder.transcode", enc_method_transcode},
    {"encoder.stitch", enc_method_stitch},
    {"encoder.package", enc_method_package},
    {NULL, NULL},
};

static const we_plugin_def def = {
    .id = "encoder-ffmpeg",
    .type = "encoder",
    .version = "0.1.0",
    .description = "Probes with libavformat (packets only) and transcodes with ffmpeg",
    .methods = methods,
    .init = enc_init,
    .fini = enc_fini,
    .health = enc_health,
    .capabilities_json = "{\"probe\":\"libavformat\",\"keyframes\":true,\"progress\":true,"
                         "\"cancel\":true}",
    .max_concurrency = 64, /* a worker runs up to WORKER_SLOTS (<= 64) calls at once */
};

int main(int argc, char **argv)
{
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(av_log_cb);
    /* before any thread exists: it sets environment variables */
    int rc = enc_egress_global_start();
    if (rc != 0) {
        fprintf(stderr, "encoder-ffmpeg: cannot start the egress proxy: %s\n", strerror(rc));
        return 1;
    }
    rc = we_plugin_serve(&def, argc, argv);
    enc_egress_global_stop();
    return rc;
}
