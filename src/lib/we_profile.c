/*
 * Encoding profiles (we_profile.h): strict validation of a profile config
 * and the FFmpeg options it expands to.
 *
 * Design: everything an encoder needs to know is in two tables. vcodecs[]
 * lists each accepted video encoder with its family, capability, CRF range
 * and profiles; kinds[] holds, per encoder implementation (x264, NVENC,
 * ...), the presets it takes, its pixel formats and the option templates
 * for constant quality, bitrate mode and a fixed closed GOP ("%d" stands for
 * the number). Validation walks the config once, field by field, and stops
 * at the first error with a message of the form "<field path>: <what was
 * expected>". The argument builders assume a validated config.
 *
 * The GOP recipe is the one DESIGN §6 and deps.md §5 verified frame-exact:
 * `-g N -keyint_min N -sc_threshold 0` plus the encoder's own closed-GOP /
 * no-scene-cut switches, so every segment starts with a keyframe and has
 * keyframes every N frames, as a single pass would.
 *
 * Pure functions, no I/O, no global state: safe from any thread.
 */
#include "we_profile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- tables ---------------------------------------------------------------- */

typedef enum kind { K_X264, K_X265, K_VP9, K_SVTAV1, K_AOM, K_NVENC, K_QSV, K_VAAPI } kind;

typedef struct vcodec {
    const char *name;
    kind k;
    const char *family; /* h264, hevc, vp9, av1 */
    const char *capability;
    int crf_max;
    const char *const *profiles; /* NULL: no "profile" key */
} vcodec;

static const char *const x264_profiles[] = { "baseline", "main",    "high", "high10",
                                             "high422",  "high444", NULL };
static const char *const x265_profiles[] = { "main",       "main10",    "main12",
                                             "main422-10", "main444-8", NULL };
static const char *const nv264_profiles[] = { "baseline", "main", "high", "high444p", NULL };
static const char *const nv265_profiles[] = { "main", "main10", "rext", NULL };
static const char *const hw264_profiles[] = { "baseline", "main", "high", NULL };
static const char *const hw265_profiles[] = { "main", "main10", NULL };

static const vcodec vcodecs[] = {
    { "libx264", K_X264, "h264", "cpu", 51, x264_profiles },
    { "libx265", K_X265, "hevc", "cpu", 51, x265_profiles },
    { "libvpx-vp9", K_VP9, "vp9", "cpu", 63, NULL },
    { "libsvtav1", K_SVTAV1, "av1", "cpu", 63, NULL },
    { "libaom-av1", K_AOM, "av1", "cpu", 63, NULL },
    { "h264_nvenc", K_NVENC, "h264", "nvidia", 51, nv264_profiles },
    { "hevc_nvenc", K_NVENC, "hevc", "nvidia", 51, nv265_profiles },
    { "h264_qsv", K_QSV, "h264", "intel", 51, hw264_profiles },
    { "hevc_qsv", K_QSV, "hevc", "intel", 51, hw265_profiles },
    { "h264_vaapi", K_VAAPI, "h264", "vaapi", 51, hw264_profiles },
    { "hevc_vaapi", K_VAAPI, "hevc", "vaapi", 51, hw265_profiles },
};
#define N_VCODECS (sizeof vcodecs / sizeof vcodecs[0])

/* Option templates end with NULL; "%d" is replaced by the number. */
typedef struct kind_info {
    const char *const *presets; /* named presets, or NULL */
    int preset_max;             /* integer presets 0..preset_max when > 0 */
    const char *preset_opt;     /* how an integer preset is passed */
    const char *const *pix_fmts;
    const char *def_pix_fmt;
    const char *crf[7];  /* constant quality */
    const char *rate[3]; /* before -b:v in bitrate mode */
    const char *gop[4];  /* after -g N -keyint_min N -sc_threshold 0 */
    bool crf_cap_is_bv;  /* CRF capped by -b:v (libvpx/libaom), 0 = uncapped */
} kind_info;

static const char *const x26x_presets[] = { "ultrafast", "superfast", "veryfast", "faster",
                                            "fast",      "medium",    "slow",     "slower",
                                            "veryslow",  "placebo",   NULL };
static const char *const nvenc_presets[] = { "p1", "p2", "p3", "p4", "p5", "p6", "p7", NULL };
static const char *const qsv_presets[] = { "veryfast", "faster", "fast",     "medium",
                                           "slow",     "slower", "veryslow", NULL };
static const char *const x264_pix[] = { "yuv420p",     "yuv422p",     "yuv444p",     "nv12",
                                        "yuv420p10le", "yuv422p10le", "yuv444p10le", NULL };
static const char *const x265_pix[] = { "yuv420p",     "yuv422p",     "yuv444p",     "yuv420p10le",
                                        "yuv422p10le", "yuv444p10le", "yuv420p12le", NULL };
static const char *const vpx_pix[] = { "yuv420p",     "yuv422p",     "yuv444p", "yuv420p10le",
                                       "yuv422p10le", "yuv444p10le", NULL };
static const char *const svt_pix[] = { "yuv420p", "yuv420p10le", NULL };
static const char *const nvenc_pix[] = { "yuv420p", "nv12", "p010le", "yuv444p", NULL };
static const char *const hw_pix[] = { "nv12", "p010le", NULL };

/* clang-format off */
static const kind_info kinds[] = {
    [K_X264]   = { x26x_presets, 0, NULL, x264_pix, "yuv420p",
                   { "-crf", "%d" }, { NULL }, { "-flags", "+cgop" }, false },
    [K_X265]   = { x26x_presets, 0, NULL, x265_pix, "yuv420p",
                   { "-crf", "%d" }, { NULL },
                   { "-x265-params", "keyint=%d:min-keyint=%d:scenecut=0:open-gop=0" }, false },
    [K_VP9]    = { NULL, 8, "-cpu-used", vpx_pix, "yuv420p",
                   { "-crf", "%d" }, { NULL }, { "-row-mt", "1" }, true },
    [K_SVTAV1] = { NULL, 13, "-preset", svt_pix, "yuv420p",
                   { "-crf", "%d" }, { NULL }, { NULL }, false },
    [K_AOM]    = { NULL, 8, "-cpu-used", vpx_pix, "yuv420p",
                   { "-crf", "%d" }, { NULL }, { "-row-mt", "1" }, true },
    [K_NVENC]  = { nvenc_presets, 0, NULL, nvenc_pix, "yuv420p",
                   { "-rc", "vbr", "-cq", "%d", "-b:v", "0" }, { "-rc", "vbr" },
                   { "-forced-idr", "1", "-no-scenecut", "1" }, false },
    [K_QSV]    = { qsv_presets, 0, NULL, hw_pix, "nv12",
                   { "-global_quality", "%d" }, { NULL }, { "-idr_interval", "0" }, false },
    [K_VAAPI]  = { NULL, 0, NULL, hw_pix, "nv12",
                   { "-rc_mode", "CQP", "-qp", "%d" }, { "-rc_mode", "VBR" },
                   { "-idr_interval", "0" }, false },
};
/* clang-format on */

static const char *const containers[] = { "mp4", "webm", "mkv", NULL };
static const char *const packagings[] = { "none", "hls", "dash", NULL };
static const char *const acodecs[] = { "aac", "libopus", "libmp3lame", "copy", NULL };
static const char *const capabilities[] = { "cpu", "nvidia", "intel", "amd", "vaapi", NULL };

static const char *const top_keys[] = { "video",      "audio",     "container",  "faststart",
                                        "capability", "packaging", "renditions", NULL };
static const char *const ladder_keys[] = { "packaging", "renditions", NULL };
static const char *const video_keys[] = { "codec", "width",        "height",       "upscale",
                                          "crf",   "bitrate_kbps", "maxrate_kbps", "preset",
                                          "gop_s", "pix_fmt",      "profile",      NULL };
static const char *const audio_keys[] = { "codec", "bitrate_kbps", "channels", "sample_rate",
                                          NULL };

#define DEFAULT_GOP_S 2.0
#define MAX_RENDITIONS 16

/* ---- small helpers ----------------------------------------------------------- */

static bool in_list(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* "a, b or c" into buf. */
static const char *list_text(const char *const *list, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s",
                                i == 0        ? ""
                                : list[i + 1] ? ", "
                                              : " or ",
                                list[i]);
    return buf;
}

static const vcodec *vcodec_find(const char *name)
{
    for (size_t i = 0; name && i < N_VCODECS; i++)
        if (strcmp(vcodecs[i].name, name) == 0)
            return &vcodecs[i];
    return NULL;
}

static const char *str_of(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Sets err to "<prefix><key>: <message>" and returns WE_EINVAL. */
__attribute__((format(printf, 4, 5))) static int bad(we_err *err, const char *prefix,
                                                     const char *key, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return we_err_set(err, WE_EINVAL, "%s%s: %s", prefix, key, msg);
}

/* ---- field checks (each returns 0 or WE_EINVAL) ------------------------------ */

static int only_keys(json_t *obj, const char *prefix, const char *const *allowed, we_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!in_list(key, allowed))
            return bad(err, prefix, key, "unknown key");
    }
    return 0;
}

/* An integer lo..hi at obj[key]; absent is fine unless required. */
static int check_int(json_t *obj, const char *prefix, const char *key, json_int_t lo, json_int_t hi,
                     bool required, we_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v && !required)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(err, prefix, key, "expected an integer from %lld to %lld", (long long)lo,
                   (long long)hi);
    return 0;
}

static int check_enum(json_t *obj, const char *prefix, const char *key, const char *const *list,
                      bool required, we_err *err)
{
    json_t *v = json_object_get(obj, key);
    char buf[300];
    if (!v && !required)
        return 0;
    if (!in_list(json_string_value(v), list))
        return bad(err, prefix, key, "expected one of %s", list_text(list, buf, sizeof buf));
    return 0;
}

static int check_bool(json_t *obj, const char *prefix, const char *key, we_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (v && !json_is_boolean(v))
        return bad(err, prefix, key, "expected true or false");
    return 0;
}

/* ---- video ------------------------------------------------------------------- */

static int check_size(json_t *video, we_err *err)
{
    json_t *w = json_object_get(video, "width"), *h = json_object_get(video, "height");
    static const struct {
        const char *key;
        json_int_t max;
    } dims[] = { { "width", 7680 }, { "height", 4320 } };
    if (!w != !h)
        return bad(err, "video.", w ? "height" : "width", "required together with %s",
                   w ? "width" : "height");
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(video, dims[i].key);
        if (v && (!json_is_integer(v) || json_integer_value(v) < 16 ||
                  json_integer_value(v) > dims[i].max || json_integer_value(v) % 2 != 0))
            return bad(err, "video.", dims[i].key, "expected an even integer from 16 to %lld",
                       (long long)dims[i].max);
    }
    return check_bool(video, "video.", "upscale", err);
}

static int check_rate(json_t *video, const vcodec *c, we_err *err)
{
    json_t *crf = json_object_get(video, "crf"), *br = json_object_get(video, "bitrate_kbps");
    if (!crf == !br)
        return bad(err, "video.", "crf", "give exactly one of video.crf and video.bitrate_kbps");
    int rc = check_int(video, "video.", "crf", 0, c->crf_max, false, err);
    if (rc == 0)
        rc = check_int(video, "video.", "bitrate_kbps", 50, 200000, false, err);
    if (rc == 0)
        rc = check_int(video, "video.", "maxrate_kbps", 50, 200000, false, err);
    json_t *max = json_object_get(video, "maxrate_kbps");
    if (rc == 0 && br && max && json_integer_value(max) < json_integer_value(br))
        rc = bad(err, "video.", "maxrate_kbps", "must not be below video.bitrate_kbps (%lld)",
                 (long long)json_integer_value(br));
    return rc;
}

static int check_preset(json_t *video, const vcodec *c, we_err *err)
{
    const kind_info *ki = &kinds[c->k];
    json_t *v = json_object_get(video, "preset");
    char buf[300];
    if (!v)
        return 0;
    if (ki->presets && !in_list(json_string_value(v), ki->presets))
        return bad(err, "video.", "preset", "expected one of %s for %s",
                   list_text(ki->presets, buf, sizeof buf), c->name);
    if (!ki->presets && ki->preset_max == 0)
        return bad(err, "video.", "preset", "%s takes no preset", c->name);
    if (!ki->presets && (!json_is_integer(v) || json_integer_value(v) < 0 ||
                         json_integer_value(v) > ki->preset_max))
        return bad(err, "video.", "preset", "expected an integer from 0 to %d for %s",
                   ki->preset_max, c->name);
    return 0;
}

static int check_gop(json_t *video, we_err *err)
{
    json_t *v = json_object_get(video, "gop_s");
    if (v && (!json_is_number(v) || !(json_number_value(v) >= 0.5) || json_number_value(v) > 20.0))
        return bad(err, "video.", "gop_s", "expected a number of seconds from 0.5 to 20");
    return 0;
}

static int check_formats(json_t *video, const vcodec *c, we_err *err)
{
    char buf[300];
    json_t *pf = json_object_get(video, "pix_fmt"), *prof = json_object_get(video, "profile");
    if (pf && !in_list(json_string_value(pf), kinds[c->k].pix_fmts))
        return bad(err, "video.", "pix_fmt", "expected one of %s for %s",
                   list_text(kinds[c->k].pix_fmts, buf, sizeof buf), c->name);
    if (prof && !c->profiles)
        return bad(err, "video.", "profile", "%s takes no profile", c->name);
    if (prof && !in_list(json_string_value(prof), c->profiles))
        return bad(err, "video.", "profile", "expected one of %s for %s",
                   list_text(c->profiles, buf, sizeof buf), c->name);
    return 0;
}

static int check_video(json_t *video, we_err *err)
{
    char buf[300];
    if (!json_is_object(video))
        return bad(err, "", "video", "expected an object");
    int rc = only_keys(video, "video.", video_keys, err);
    const vcodec *c = vcodec_find(str_of(video, "codec"));
    if (rc == 0 && !c) {
        const char *names[N_VCODECS + 1];
        for (size_t i = 0; i < N_VCODECS; i++)
            names[i] = vcodecs[i].name;
        names[N_VCODECS] = NULL;
        return bad(err, "video.", "codec", "expected one of %s", list_text(names, buf, sizeof buf));
    }
    if (rc == 0)
        rc = check_size(video, err);
    if (rc == 0)
        rc = check_rate(video, c, err);
    if (rc == 0)
        rc = check_preset(video, c, err);
    if (rc == 0)
        rc = check_gop(video, err);
    return rc == 0 ? check_formats(video, c, err) : rc;
}

/* ---- audio ------------------------------------------------------------------- */

static int check_sample_rate(json_t *audio, const char *codec, we_err *err)
{
    static const char *const any[] = { "8000",  "11025", "12000", "16000", "22050", "24000",
                                       "32000", "44100", "48000", "88200", "96000", NULL };
    static const char *const opus[] = { "8000", "12000", "16000", "24000", "48000", NULL };
    static const char *const mp3[] = { "8000",  "11025", "12000", "16000", "22050",
                                       "24000", "32000", "44100", "48000", NULL };
    const char *const *list = strcmp(codec, "libopus") == 0      ? opus
                              : strcmp(codec, "libmp3lame") == 0 ? mp3
                                                                 : any;
    json_t *v = json_object_get(audio, "sample_rate");
    char num[32], buf[300];
    if (!v)
        return 0;
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
    if (!json_is_integer(v) || !in_list(num, list))
        return bad(err, "audio.", "sample_rate", "expected one of %s for %s",
                   list_text(list, buf, sizeof buf), codec);
    return 0;
}

static int check_audio(json_t *audio, we_err *err)
{
    static const char *const copy_keys[] = { "codec", NULL };
    if (json_is_null(audio))
        return 0;
    if (!json_is_object(audio))
        return bad(err, "", "audio", "expected an object, or null for no audio");
    int rc = only_keys(audio, "audio.", audio_keys, err);
    if (rc == 0)
        rc = check_enum(audio, "audio.", "codec", acodecs, true, err);
    if (rc != 0)
        return rc;
    const char *codec = str_of(audio, "codec");
    if (strcmp(codec, "copy") == 0)
        return only_keys(audio, "audio.", copy_keys, err);
    rc = check_int(audio, "audio.", "bitrate_kbps", 6, 512, false, err);
    if (rc == 0)
        rc = check_int(audio, "audio.", "channels", 1, strcmp(codec, "libmp3lame") == 0 ? 2 : 8,
                       false, err);
    return rc == 0 ? check_sample_rate(audio, codec, err) : rc;
}

/* ---- the whole config -------------------------------------------------------- */

/* webm takes VP9/AV1 and Opus; mp4 takes no Opus; faststart is an mp4 thing. */
static int check_container(json_t *config, we_err *err)
{
    const char *cont = str_of(config, "container");
    const vcodec *c = vcodec_find(str_of(json_object_get(config, "video"), "codec"));
    const char *acodec = str_of(json_object_get(config, "audio"), "codec");
    bool webm = strcmp(cont, "webm") == 0, mp4 = strcmp(cont, "mp4") == 0;
    if (webm && strcmp(c->family, "vp9") != 0 && strcmp(c->family, "av1") != 0)
        return bad(err, "video.", "codec",
                   "container webm needs a VP9 or AV1 encoder (libvpx-vp9, libsvtav1, libaom-av1)");
    if (webm && acodec && strcmp(acodec, "libopus") != 0)
        return bad(err, "audio.", "codec", "container webm needs libopus (or audio null)");
    if (mp4 && acodec && strcmp(acodec, "libopus") == 0)
        return bad(err, "audio.", "codec", "libopus needs container webm or mkv");
    if (!mp4 && json_is_true(json_object_get(config, "faststart")))
        return bad(err, "", "faststart", "only for container mp4");
    return 0;
}

static int check_capability(json_t *config, we_err *err)
{
    const char *want = str_of(config, "capability");
    const vcodec *c = vcodec_find(str_of(json_object_get(config, "video"), "codec"));
    int rc = check_enum(config, "", "capability", capabilities, false, err);
    if (rc != 0 || !want || strcmp(want, c->capability) == 0)
        return rc;
    if (c->k == K_VAAPI && (strcmp(want, "intel") == 0 || strcmp(want, "amd") == 0))
        return 0;
    return bad(err, "", "capability", "%s runs on workers with capability %s%s", c->name,
               c->capability, c->k == K_VAAPI ? ", intel or amd" : "");
}

static int check_single(json_t *config, we_err *err)
{
    int rc = check_video(json_object_get(config, "video"), err);
    if (rc == 0 && !json_object_get(config, "audio"))
        rc = bad(err, "", "audio", "required (an object, or null for no audio)");
    if (rc == 0)
        rc = check_audio(json_object_get(config, "audio"), err);
    if (rc == 0)
        rc = check_enum(config, "", "container", containers, true, err);
    if (rc == 0)
        rc = check_bool(config, "", "faststart", err);
    if (rc == 0)
        rc = check_enum(config, "", "packaging", packagings, false, err);
    if (rc == 0)
        rc = check_container(config, err);
    return rc == 0 ? check_capability(config, err) : rc;
}

bool we_profile_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 64 ||
        !((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') ||
          (id[0] >= '0' && id[0] <= '9')))
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int check_renditions(json_t *list, we_err *err)
{
    size_t i, j, n = json_array_size(list);
    char key[32];
    if (!json_is_array(list) || n == 0 || n > MAX_RENDITIONS)
        return bad(err, "", "renditions", "expected an array of 1 to %d profile ids",
                   MAX_RENDITIONS);
    for (i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(list, i));
        snprintf(key, sizeof key, "renditions[%zu]", i);
        if (!we_profile_id_valid(id))
            return bad(err, "", key, "expected a profile id");
        for (j = 0; j < i; j++)
            if (strcmp(id, json_string_value(json_array_get(list, j))) == 0)
                return bad(err, "", key, "%s is listed twice", id);
    }
    return 0;
}

static int check_ladder(json_t *config, we_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(config, key, v)
    {
        if (in_list(key, top_keys) && !in_list(key, ladder_keys))
            return bad(err, "", key, "not allowed in a ladder (its renditions carry the encoding)");
    }
    const char *pk = str_of(config, "packaging");
    if (!pk || strcmp(pk, "none") == 0 || !in_list(pk, packagings))
        return bad(err, "", "packaging", "a ladder needs hls or dash");
    return check_renditions(json_object_get(config, "renditions"), err);
}

int we_profile_validate(json_t *config, we_err *err)
{
    if (!json_is_object(config))
        return bad(err, "", "config", "expected an object");
    int rc = only_keys(config, "", top_keys, err);
    if (rc != 0)
        return rc;
    return json_object_get(config, "renditions") ? check_ladder(config, err)
                                                 : check_single(config, err);
}

/* ---- accessors ----------------------------------------------------------------- */

bool we_profile_is_ladder(json_t *config)
{
    return json_object_get(config, "renditions") != NULL;
}

const char *we_profile_capability(json_t *config)
{
    const char *cap = str_of(config, "capability");
    const vcodec *c = vcodec_find(str_of(json_object_get(config, "video"), "codec"));
    return cap ? cap : c ? c->capability : "cpu";
}

const char *we_profile_container(json_t *config)
{
    return we_profile_is_ladder(config) ? NULL : str_of(config, "container");
}

bool we_profile_faststart(json_t *config)
{
    return json_is_true(json_object_get(config, "faststart"));
}

int we_profile_gop_frames(json_t *config, double fps)
{
    json_t *video = json_object_get(config, "video");
    json_t *g = json_object_get(video, "gop_s");
    if (!json_is_object(video) || !(fps > 0) || !isfinite(fps))
        return WE_EINVAL;
    double gop_s = g ? json_number_value(g) : DEFAULT_GOP_S;
    long n = lround(gop_s * fps);
    return n < 1 ? 1 : n > 100000 ? 100000 : (int)n;
}

/* ---- argument builders ----------------------------------------------------------- */

static void add(json_t *args, const char *s)
{
    json_array_append_new(args, json_string(s));
}

static void addf(json_t *args, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(json_t *args, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    add(args, buf);
}

/* Appends the template tpl (up to max entries, NULL-terminated), every
 * "%d" replaced by n. */
static void add_template(json_t *args, const char *const *tpl, size_t max, long n)
{
    for (size_t i = 0; i < max && tpl[i]; i++) {
        char buf[256];
        size_t len = 0;
        for (const char *p = tpl[i]; *p && len < sizeof buf - 24; p++) {
            if (p[0] == '%' && p[1] == 'd')
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%ld", n), p++;
            else
                buf[len++] = *p;
        }
        buf[len] = '\0';
        add(args, buf);
    }
}
#define ADD_TEMPLATE(args, tpl, n) add_template(args, tpl, sizeof tpl / sizeof tpl[0], n)

/* The -vf chain into buf ("" for none): fit into the profile's box keeping
 * the aspect ratio, never enlarging a smaller source unless "upscale"; an
 * odd-sized source is trimmed to even dimensions (4:2:0 needs them). */
static void scale_filter(json_t *video, const we_source_info *src, char *buf, size_t n)
{
    json_int_t w = json_integer_value(json_object_get(video, "width"));
    json_int_t h = json_integer_value(json_object_get(video, "height"));
    bool upscale = json_is_true(json_object_get(video, "upscale"));
    bool known = src->width > 0 && src->height > 0;
    bool fits = known && src->width <= w && src->height <= h;
    buf[0] = '\0';
    if (w > 0 && (upscale || (known && !fits)))
        snprintf(buf, n,
                 "scale=w=%lld:h=%lld:force_original_aspect_ratio=decrease"
                 ":force_divisible_by=2",
                 (long long)w, (long long)h);
    else if (w > 0 && !known)
        snprintf(buf, n,
                 "scale=w='min(%lld,iw)':h='min(%lld,ih)'"
                 ":force_original_aspect_ratio=decrease:force_divisible_by=2",
                 (long long)w, (long long)h);
    else if (known && (src->width % 2 != 0 || src->height % 2 != 0))
        snprintf(buf, n, "scale=w=trunc(iw/2)*2:h=trunc(ih/2)*2");
}

static const char *pix_fmt(json_t *video, const vcodec *c)
{
    const char *pf = str_of(video, "pix_fmt");
    return pf ? pf : kinds[c->k].def_pix_fmt;
}

/* -vf, with VAAPI's upload to the GPU (the worker supplies -vaapi_device). */
static void add_filters(json_t *args, json_t *video, const vcodec *c, const we_source_info *src)
{
    char vf[320];
    size_t len;
    scale_filter(video, src, vf, sizeof vf);
    len = strlen(vf);
    if (c->k == K_VAAPI)
        snprintf(vf + len, sizeof vf - len, "%sformat=%s,hwupload", len ? "," : "",
                 pix_fmt(video, c));
    if (vf[0]) {
        add(args, "-vf");
        add(args, vf);
    }
}

static void add_rate(json_t *args, json_t *video, const vcodec *c)
{
    const kind_info *ki = &kinds[c->k];
    json_t *crf = json_object_get(video, "crf");
    json_int_t max = json_integer_value(json_object_get(video, "maxrate_kbps"));
    if (crf) {
        ADD_TEMPLATE(args, ki->crf, (long)json_integer_value(crf));
    } else {
        ADD_TEMPLATE(args, ki->rate, 0);
        add(args, "-b:v");
        addf(args, "%lldk", (long long)json_integer_value(json_object_get(video, "bitrate_kbps")));
    }
    if (crf && ki->crf_cap_is_bv) {
        /* libvpx/libaom: constant quality with -b:v 0, constrained with a cap */
        add(args, "-b:v");
        if (max)
            addf(args, "%lldk", (long long)max);
        else
            add(args, "0");
    } else if (max) {
        add(args, "-maxrate");
        addf(args, "%lldk", (long long)max);
        add(args, "-bufsize");
        addf(args, "%lldk", (long long)max * 2);
    }
}

static void add_preset(json_t *args, json_t *video, const vcodec *c)
{
    json_t *p = json_object_get(video, "preset");
    if (!p)
        return;
    add(args, kinds[c->k].presets ? "-preset" : kinds[c->k].preset_opt);
    if (json_is_string(p))
        add(args, json_string_value(p));
    else
        addf(args, "%lld", (long long)json_integer_value(p));
}

/* A fixed closed GOP of n frames without scene-cut keyframes. */
static void add_gop(json_t *args, const vcodec *c, int n)
{
    add(args, "-g");
    addf(args, "%d", n);
    add(args, "-keyint_min");
    addf(args, "%d", n);
    add(args, "-sc_threshold");
    add(args, "0");
    ADD_TEMPLATE(args, kinds[c->k].gop, n);
}

/* The mp4 track timescale FFmpeg picks for a constant frame rate: the
 * denominator of the encoder time base 1/fps, doubled until >= 10000 (as
 * movenc does). Only for n/1 and NTSC n*1000/1001 rates; 0 otherwise. */
static long mp4_timescale(double fps)
{
    long den;
    if (fabs(fps - round(fps)) < 1e-3)
        den = lround(fps);
    else if (fabs(fps * 1.001 - round(fps * 1.001)) < 1e-3)
        den = lround(fps * 1.001) * 1000;
    else
        return 0;
    while (den > 0 && den < 10000)
        den *= 2;
    return den;
}

static void add_output(json_t *args, json_t *video, const vcodec *c, const char *cont, double fps)
{
    const char *prof = str_of(video, "profile");
    if (c->k != K_VAAPI) {
        add(args, "-pix_fmt");
        add(args, pix_fmt(video, c));
    }
    if (prof) {
        add(args, "-profile:v");
        add(args, prof);
    }
    if (strcmp(cont, "mp4") != 0)
        return;
    if (strcmp(c->family, "hevc") == 0) {
        add(args, "-tag:v"); /* hvc1: what Apple players require for HEVC in mp4 */
        add(args, "hvc1");
    }
    long ts = mp4_timescale(fps);
    if (ts > 0) {
        add(args, "-video_track_timescale");
        addf(args, "%ld", ts);
    }
}

int we_profile_video_args(json_t *config, const we_source_info *src, json_t **args,
                          const char **ext, we_err *err)
{
    json_t *video = json_object_get(config, "video");
    const vcodec *c = vcodec_find(str_of(video, "codec"));
    if (!c)
        return we_err_set(err, WE_EINVAL, "profile: a ladder has no encoding of its own");
    int gop = we_profile_gop_frames(config, src->fps);
    if (gop < 0)
        return we_err_set(err, WE_EINVAL, "source: no usable frame rate (%g)", src->fps);
    json_t *a = json_array();
    static const char *const head[] = { "-an", "-sn", "-dn", "-map", "0:V:0", NULL };
    ADD_TEMPLATE(a, head, 0);
    add_filters(a, video, c, src);
    add(a, "-c:v");
    add(a, c->name);
    add_rate(a, video, c);
    add_preset(a, video, c);
    add_gop(a, c, gop);
    add_output(a, video, c, str_of(config, "container"), src->fps);
    *args = a;
    *ext = str_of(config, "container");
    return 0;
}

/* Where the stitch (-c copy into the profile's container) takes the audio
 * from: .m4a (the ipod muxer) holds AAC only, so other codecs in mp4 use
 * .mp4; webm and mkv take theirs. */
static const char *audio_ext(const char *cont, const char *codec)
{
    if (strcmp(cont, "mp4") == 0)
        return strcmp(codec, "aac") == 0 ? "m4a" : "mp4";
    return strcmp(cont, "webm") == 0 ? "webm" : "mka";
}

int we_profile_audio_args(json_t *config, json_t **args, const char **ext, we_err *err)
{
    json_t *audio = json_object_get(config, "audio");
    const char *cont = str_of(config, "container");
    if (we_profile_is_ladder(config) || !cont)
        return we_err_set(err, WE_EINVAL, "profile: a ladder has no encoding of its own");
    if (!json_is_object(audio))
        return we_err_set(err, WE_ENOENT, "profile: no audio (audio is null)");
    static const char *const head[] = { "-vn", "-sn", "-dn", "-map", "0:a:0", "-c:a", NULL };
    static const struct {
        const char *key, *opt, *unit;
    } opts[] = {
        { "bitrate_kbps", "-b:a", "k" },
        { "channels", "-ac", "" },
        { "sample_rate", "-ar", "" },
    };
    json_t *a = json_array();
    ADD_TEMPLATE(a, head, 0);
    add(a, str_of(audio, "codec"));
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        json_t *v = json_object_get(audio, opts[i].key);
        if (v) {
            add(a, opts[i].opt);
            addf(a, "%lld%s", (long long)json_integer_value(v), opts[i].unit);
        }
    }
    *args = a;
    *ext = audio_ext(cont, str_of(audio, "codec"));
    return 0;
}
