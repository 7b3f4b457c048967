/*
 * Unit tests of encoding profiles (src/lib/we_profile.c): the seeded
 * presets validate, each kind of bad config is refused with a message that
 * names the field, and the FFmpeg options each encoder family expands to
 * (scaling without upscaling, rate control, fixed closed GOP in frames,
 * pixel format, hvc1 tag, mp4 timescale), the audio options and the file
 * extensions the stitch relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "we_profile.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* The configs of pkg/db/migrations/0005_profiles.up.sql, verbatim. */
static const char *const seeds[] = {
    "{\"video\": {\"codec\": \"libx264\", \"width\": 1920, \"height\": 1080, \"upscale\": false,"
    " \"crf\": 21, \"maxrate_kbps\": 8000, \"preset\": \"veryfast\", \"gop_s\": 2,"
    " \"pix_fmt\": \"yuv420p\", \"profile\": \"high\"},"
    " \"audio\": {\"codec\": \"aac\", \"bitrate_kbps\": 128, \"channels\": 2, \"sample_rate\": "
    "48000},"
    " \"container\": \"mp4\", \"faststart\": true, \"capability\": \"cpu\", \"packaging\": "
    "\"none\"}",
    "{\"video\": {\"codec\": \"libx264\", \"width\": 1280, \"height\": 720, \"upscale\": false,"
    " \"crf\": 22, \"maxrate_kbps\": 5000, \"preset\": \"veryfast\", \"gop_s\": 2,"
    " \"pix_fmt\": \"yuv420p\", \"profile\": \"high\"},"
    " \"audio\": {\"codec\": \"aac\", \"bitrate_kbps\": 128, \"channels\": 2, \"sample_rate\": "
    "48000},"
    " \"container\": \"mp4\", \"faststart\": true, \"capability\": \"cpu\", \"packaging\": "
    "\"none\"}",
    "{\"video\": {\"codec\": \"libx264\", \"width\": 854, \"height\": 480, \"upscale\": false,"
    " \"crf\": 23, \"maxrate_kbps\": 2500, \"preset\": \"veryfast\", \"gop_s\": 2,"
    " \"pix_fmt\": \"yuv420p\", \"profile\": \"high\"},"
    " \"audio\": {\"codec\": \"aac\", \"bitrate_kbps\": 128, \"channels\": 2, \"sample_rate\": "
    "48000},"
    " \"container\": \"mp4\", \"faststart\": true, \"capability\": \"cpu\", \"packaging\": "
    "\"none\"}",
    "{\"video\": {\"codec\": \"libx265\", \"width\": 1920, \"height\": 1080, \"upscale\": false,"
    " \"crf\": 24, \"maxrate_kbps\": 6000, \"preset\": \"veryfast\", \"gop_s\": 2,"
    " \"pix_fmt\": \"yuv420p\", \"profile\": \"main\"},"
    " \"audio\": {\"codec\": \"aac\", \"bitrate_kbps\": 128, \"channels\": 2, \"sample_rate\": "
    "48000},"
    " \"container\": \"mp4\", \"faststart\": true, \"capability\": \"cpu\", \"packaging\": "
    "\"none\"}",
    "{\"video\": {\"codec\": \"libvpx-vp9\", \"width\": 1280, \"height\": 720, \"upscale\": false,"
    " \"crf\": 32, \"preset\": 5, \"gop_s\": 2, \"pix_fmt\": \"yuv420p\"},"
    " \"audio\": {\"codec\": \"libopus\", \"bitrate_kbps\": 96, \"channels\": 2,"
    " \"sample_rate\": 48000},"
    " \"container\": \"webm\", \"faststart\": false, \"capability\": \"cpu\", \"packaging\": "
    "\"none\"}",
    "{\"video\": {\"codec\": \"libsvtav1\", \"width\": 1920, \"height\": 1080, \"upscale\": false,"
    " \"crf\": 32, \"preset\": 8, \"gop_s\": 2, \"pix_fmt\": \"yuv420p\"},"
    " \"audio\": {\"codec\": \"aac\", \"bitrate_kbps\": 128, \"channels\": 2, \"sample_rate\": "
    "48000},"
    " \"container\": \"mp4\", \"faststart\": true, \"capability\": \"cpu\", \"packaging\": "
    "\"none\"}",
    "{\"packaging\": \"hls\", \"renditions\": [\"1080p-h264\", \"720p-h264\", \"480p-h264\"]}",
};
enum { S1080_H264, S720_H264, S480_H264, S1080_HEVC, S720_VP9, S1080_AV1, SLADDER, NSEEDS };

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test JSON (%s): %s", je.text, text);
    return j;
}

/* The args array as one space-separated string (static buffer). */
static const char *joined(json_t *args)
{
    static char buf[2048];
    size_t i, len = 0;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(args, i, v) len +=
        (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? " " : "", json_string_value(v));
    return buf;
}

static void expect_valid(const char *text)
{
    json_t *c = parse(text);
    we_err err = { "" };
    int rc = we_profile_validate(c, &err);
    if (rc != 0)
        fail_msg("refused (%s): %s", err.msg, text);
    json_decref(c);
}

static void expect_refused(const char *text, const char *msg)
{
    json_t *c = parse(text);
    we_err err = { "" };
    int rc = we_profile_validate(c, &err);
    if (rc != WE_EINVAL || strstr(err.msg, msg) == NULL)
        fail_msg("%s\n  expected WE_EINVAL with [%s]\n  got %d [%s]", text, msg, rc, err.msg);
    json_decref(c);
}

/* video args of config text for src, compared with want (and ext). */
static void expect_video(const char *text, we_source_info src, const char *ext, const char *want)
{
    json_t *c = parse(text), *args = NULL;
    we_err err = { "" };
    const char *got_ext = NULL;
    expect_valid(text);
    if (we_profile_video_args(c, &src, &args, &got_ext, &err) != 0)
        fail_msg("video args: %s", err.msg);
    assert_string_equal(joined(args), want);
    assert_string_equal(got_ext, ext);
    json_decref(args);
    json_decref(c);
}

static void expect_audio(const char *text, int rc_want, const char *ext, const char *want)
{
    json_t *c = parse(text), *args = NULL;
    we_err err = { "" };
    const char *got_ext = NULL;
    int rc = we_profile_audio_args(c, &args, &got_ext, &err);
    assert_int_equal(rc, rc_want);
    if (rc == 0) {
        assert_string_equal(joined(args), want);
        assert_string_equal(got_ext, ext);
    }
    json_decref(args);
    json_decref(c);
}

static const we_source_info src1080 = { 30.0, 1920, 1080, 60.0, true };

static void test_seeds_valid(void **st)
{
    for (int i = 0; i < NSEEDS; i++)
        expect_valid(seeds[i]);
    json_t *ladder = parse(seeds[SLADDER]), *h264 = parse(seeds[S720_H264]);
    assert_true(we_profile_is_ladder(ladder));
    assert_false(we_profile_is_ladder(h264));
    assert_null(we_profile_container(ladder));
    assert_string_equal(we_profile_container(h264), "mp4");
    assert_true(we_profile_faststart(h264));
    assert_false(we_profile_faststart(ladder));
    assert_string_equal(we_profile_capability(ladder), "cpu");
    json_decref(ladder);
    json_decref(h264);
}

#define V(x) "{\"video\": {" x "}, \"audio\": null, \"container\": \"mp4\"}"
#define X264(x) V("\"codec\": \"libx264\", \"crf\": 23" x)

static void test_refused(void **st)
{
    static const char *const cases[][2] = {
        { "[]", "config: expected an object" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": null, \"container\": "
          "\"mp4\", \"colour\": 1}",
          "colour: unknown key" },
        { X264(", \"crf2\": 1"), "video.crf2: unknown key" },
        { V("\"codec\": \"x264\", \"crf\": 23"), "video.codec: expected one of libx264, libx265" },
        { V("\"crf\": 23"), "video.codec: expected one of" },
        { X264(", \"width\": 1280"), "video.height: required together with width" },
        { X264(", \"width\": 1281, \"height\": 720"),
          "video.width: expected an even integer from 16 to 7680" },
        { X264(", \"width\": 1280, \"height\": 4322"),
          "video.height: expected an even integer from 16 to 4320" },
        { X264(", \"width\": 8, \"height\": 720"), "video.width: expected an even integer" },
        { X264(", \"width\": \"1280\", \"height\": 720"), "video.width: expected an even integer" },
        { X264(", \"upscale\": 1"), "video.upscale: expected true or false" },
        { V("\"codec\": \"libx264\", \"crf\": 52"), "video.crf: expected an integer from 0 to 51" },
        { V("\"codec\": \"libx264\", \"crf\": 23.5"),
          "video.crf: expected an integer from 0 to 51" },
        { V("\"codec\": \"libx265\", \"crf\": -1"), "video.crf: expected an integer from 0 to 51" },
        { "{\"video\": {\"codec\": \"libvpx-vp9\", \"crf\": 64}, \"audio\": null, \"container\": "
          "\"webm\"}",
          "video.crf: expected an integer from 0 to 63" },
        { V("\"codec\": \"libx264\""), "give exactly one of video.crf and video.bitrate_kbps" },
        { X264(", \"bitrate_kbps\": 2000"), "give exactly one of" },
        { V("\"codec\": \"libx264\", \"bitrate_kbps\": 49"),
          "video.bitrate_kbps: expected an integer from 50 to 200000" },
        { V("\"codec\": \"libx264\", \"bitrate_kbps\": 200001"),
          "video.bitrate_kbps: expected an integer from 50 to 200000" },
        { V("\"codec\": \"libx264\", \"bitrate_kbps\": 3000, \"maxrate_kbps\": 2000"),
          "video.maxrate_kbps: must not be below video.bitrate_kbps (3000)" },
        { X264(", \"preset\": \"turbo\""), "video.preset: expected one of ultrafast, superfast" },
        { X264(", \"preset\": 5"), "video.preset: expected one of" },
        { V("\"codec\": \"libsvtav1\", \"crf\": 30, \"preset\": 14"),
          "video.preset: expected an integer from 0 to 13 for libsvtav1" },
        { V("\"codec\": \"libsvtav1\", \"crf\": 30, \"preset\": \"fast\""),
          "video.preset: expected an integer from 0 to 13" },
        { V("\"codec\": \"h264_vaapi\", \"crf\": 30, \"preset\": \"fast\""),
          "video.preset: h264_vaapi takes no preset" },
        { X264(", \"gop_s\": 0.4"), "video.gop_s: expected a number of seconds from 0.5 to 20" },
        { X264(", \"gop_s\": 21"), "video.gop_s: expected a number of seconds" },
        { X264(", \"gop_s\": \"2\""), "video.gop_s: expected a number of seconds" },
        { X264(", \"pix_fmt\": \"rgb24\""), "video.pix_fmt: expected one of yuv420p" },
        { V("\"codec\": \"libsvtav1\", \"crf\": 30, \"pix_fmt\": \"yuv444p\""),
          "video.pix_fmt: expected one of yuv420p or yuv420p10le for libsvtav1" },
        { X264(", \"profile\": \"main10\""), "video.profile: expected one of baseline, main" },
        { V("\"codec\": \"libsvtav1\", \"crf\": 30, \"profile\": \"main\""),
          "video.profile: libsvtav1 takes no profile" },
        { "{\"video\": 5, \"audio\": null, \"container\": \"mp4\"}", "video: expected an object" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"container\": \"mp4\"}",
          "audio: required (an object, or null for no audio)" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": 1, \"container\": "
          "\"mp4\"}",
          "audio: expected an object, or null" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\": \"flac\"},"
          " \"container\": \"mp4\"}",
          "audio.codec: expected one of aac, libopus, libmp3lame or copy" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\": \"aac\","
          " \"bitrate_kbps\": 1000}, \"container\": \"mp4\"}",
          "audio.bitrate_kbps: expected an integer from 6 to 512" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\": "
          "\"libmp3lame\","
          " \"channels\": 6}, \"container\": \"mp4\"}",
          "audio.channels: expected an integer from 1 to 2" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\": \"aac\","
          " \"sample_rate\": 44000}, \"container\": \"mp4\"}",
          "audio.sample_rate: expected one of 8000, 11025" },
        { "{\"video\": {\"codec\": \"libvpx-vp9\", \"crf\": 23}, \"audio\": {\"codec\": "
          "\"libopus\","
          " \"sample_rate\": 44100}, \"container\": \"webm\"}",
          "audio.sample_rate: expected one of 8000, 12000, 16000, 24000 or 48000 for libopus" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\": \"copy\","
          " \"bitrate_kbps\": 128}, \"container\": \"mkv\"}",
          "audio.bitrate_kbps: unknown key" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\": \"aac\","
          " \"lang\": \"en\"}, \"container\": \"mkv\"}",
          "audio.lang: unknown key" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": null}",
          "container: expected one of mp4, webm or mkv" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": null, \"container\": "
          "\"avi\"}",
          "container: expected one of mp4, webm or mkv" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": null, \"container\": "
          "\"webm\"}",
          "video.codec: container webm needs a VP9 or AV1 encoder" },
        { "{\"video\": {\"codec\": \"libvpx-vp9\", \"crf\": 23}, \"audio\": {\"codec\": \"aac\"},"
          " \"container\": \"webm\"}",
          "audio.codec: container webm needs libopus" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\": \"libopus\"},"
          " \"container\": \"mp4\"}",
          "audio.codec: libopus needs container webm or mkv" },
        { "{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": null, \"container\": "
          "\"mkv\", \"faststart\": true}",
          "faststart: only for container mp4" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i][0], cases[i][1]);
}

static void test_refused_top(void **st)
{
    expect_refused("{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": null, "
                   "\"container\": \"mp4\", \"faststart\": \"yes\"}",
                   "faststart: expected true or false");
    expect_refused("{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": null, "
                   "\"container\": \"mp4\", \"packaging\": \"smooth\"}",
                   "packaging: expected one of none, hls or dash");
    expect_refused("{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": null, "
                   "\"container\": \"mp4\", \"capability\": \"nvidia\"}",
                   "capability: libx264 runs on workers with capability cpu");
    expect_refused("{\"video\": {\"codec\": \"h264_nvenc\", \"crf\": 23}, \"audio\": null, "
                   "\"container\": \"mp4\", \"capability\": \"gpu\"}",
                   "capability: expected one of cpu, nvidia, intel, amd or vaapi");
    expect_valid("{\"video\": {\"codec\": \"h264_vaapi\", \"crf\": 23}, \"audio\": null, "
                 "\"container\": \"mp4\", \"capability\": \"amd\"}");
    /* ladders */
    expect_refused("{\"packaging\": \"hls\", \"renditions\": []}",
                   "renditions: expected an array of 1 to 16 profile ids");
    expect_refused("{\"packaging\": \"hls\", \"renditions\": \"720p\"}",
                   "renditions: expected an array");
    expect_refused("{\"packaging\": \"hls\", \"renditions\": [\"a\", \"../x\"]}",
                   "renditions[1]: expected a profile id");
    expect_refused("{\"packaging\": \"hls\", \"renditions\": [\"a\", \"b\", \"a\"]}",
                   "renditions[2]: a is listed twice");
    expect_refused("{\"renditions\": [\"a\"]}", "packaging: a ladder needs hls or dash");
    expect_refused("{\"packaging\": \"none\", \"renditions\": [\"a\"]}",
                   "packaging: a ladder needs hls or dash");
    expect_refused("{\"packaging\": \"dash\", \"renditions\": [\"a\"], \"container\": \"mp4\"}",
                   "container: not allowed in a ladder");
    expect_refused("{\"packaging\": \"dash\", \"renditions\": [\"a\"], \"x\": 1}",
                   "x: unknown key");
    expect_valid("{\"packaging\": \"dash\", \"renditions\": [\"a\"]}");
}

static void test_ids(void **st)
{
    assert_true(we_profile_id_valid("720p-h264"));
    assert_true(we_profile_id_valid("A.b_c-9"));
    assert_false(we_profile_id_valid(NULL));
    assert_false(we_profile_id_valid(""));
    assert_false(we_profile_id_valid("-x"));
    assert_false(we_profile_id_valid(".."));
    assert_false(we_profile_id_valid("a/b"));
    assert_false(we_profile_id_valid("a b"));
    char id[70];
    memset(id, 'a', sizeof id);
    id[64] = '\0';
    assert_true(we_profile_id_valid(id));
    id[64] = 'a';
    id[65] = '\0';
    assert_false(we_profile_id_valid(id));
}

static void test_video_h264(void **st)
{
    expect_video(
        seeds[S720_H264], src1080, "mp4",
        "-an -sn -dn -map 0:V:0 -vf scale=w=1280:h=720:force_original_aspect_ratio=decrease"
        ":force_divisible_by=2 -c:v libx264 -crf 22 -maxrate 5000k -bufsize 10000k -preset "
        "veryfast -g 60 -keyint_min 60 -sc_threshold 0 -flags +cgop -pix_fmt yuv420p "
        "-profile:v high -video_track_timescale 15360");
    /* a smaller source keeps its size; NTSC rate: GOP 60, timescale 30000 */
    we_source_info small = { 30000.0 / 1001.0, 640, 360, 10.0, false };
    expect_video(seeds[S720_H264], small, "mp4",
                 "-an -sn -dn -map 0:V:0 -c:v libx264 -crf 22 -maxrate 5000k -bufsize 10000k "
                 "-preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -flags +cgop -pix_fmt "
                 "yuv420p -profile:v high -video_track_timescale 30000");
}

static void test_video_scaling(void **st)
{
    const char *up = X264(", \"width\": 1280, \"height\": 720, \"upscale\": true");
    we_source_info small = { 25.0, 640, 360, 10.0, false };
    expect_video(
        up, small, "mp4",
        "-an -sn -dn -map 0:V:0 -vf scale=w=1280:h=720:force_original_aspect_ratio=decrease"
        ":force_divisible_by=2 -c:v libx264 -crf 23 -g 50 -keyint_min 50 -sc_threshold 0 "
        "-flags +cgop -pix_fmt yuv420p -video_track_timescale 12800");
    /* larger in one dimension only: scaled down */
    we_source_info tall = { 24.0, 1000, 1000, 10.0, false };
    expect_video(
        X264(", \"width\": 1280, \"height\": 720"), tall, "mp4",
        "-an -sn -dn -map 0:V:0 -vf scale=w=1280:h=720:force_original_aspect_ratio=decrease"
        ":force_divisible_by=2 -c:v libx264 -crf 23 -g 48 -keyint_min 48 -sc_threshold 0 "
        "-flags +cgop -pix_fmt yuv420p -video_track_timescale 12288");
    we_source_info unknown = { 24.0, 0, 0, 10.0, false };
    expect_video(X264(", \"width\": 1280, \"height\": 720"), unknown, "mp4",
                 "-an -sn -dn -map 0:V:0 -vf scale=w='min(1280,iw)':h='min(720,ih)'"
                 ":force_original_aspect_ratio=decrease:force_divisible_by=2 -c:v libx264 -crf 23 "
                 "-g 48 -keyint_min 48 -sc_threshold 0 -flags +cgop -pix_fmt yuv420p "
                 "-video_track_timescale 12288");
    we_source_info odd = { 12.5, 641, 361, 10.0, false };
    expect_video(X264(", \"gop_s\": 0.5"), odd, "mp4",
                 "-an -sn -dn -map 0:V:0 -vf scale=w=trunc(iw/2)*2:h=trunc(ih/2)*2 -c:v libx264 "
                 "-crf 23 -g 6 -keyint_min 6 -sc_threshold 0 -flags +cgop -pix_fmt yuv420p");
}

static void test_video_families(void **st)
{
    expect_video(seeds[S1080_HEVC], src1080, "mp4",
                 "-an -sn -dn -map 0:V:0 -c:v libx265 -crf 24 -maxrate 6000k -bufsize 12000k "
                 "-preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -x265-params "
                 "keyint=60:min-keyint=60:scenecut=0:open-gop=0 -pix_fmt yuv420p -profile:v main "
                 "-tag:v hvc1 -video_track_timescale 15360");
    expect_video(
        seeds[S720_VP9], src1080, "webm",
        "-an -sn -dn -map 0:V:0 -vf scale=w=1280:h=720:force_original_aspect_ratio=decrease"
        ":force_divisible_by=2 -c:v libvpx-vp9 -crf 32 -b:v 0 -cpu-used 5 -g 60 "
        "-keyint_min 60 -sc_threshold 0 -row-mt 1 -pix_fmt yuv420p");
    expect_video(seeds[S1080_AV1], src1080, "mp4",
                 "-an -sn -dn -map 0:V:0 -c:v libsvtav1 -crf 32 -preset 8 -g 60 -keyint_min 60 "
                 "-sc_threshold 0 -pix_fmt yuv420p -video_track_timescale 15360");
    expect_video("{\"video\": {\"codec\": \"libaom-av1\", \"crf\": 30, \"maxrate_kbps\": 3000},"
                 " \"audio\": null, \"container\": \"mkv\"}",
                 src1080, "mkv",
                 "-an -sn -dn -map 0:V:0 -c:v libaom-av1 -crf 30 -b:v 3000k -g 60 -keyint_min 60 "
                 "-sc_threshold 0 -row-mt 1 -pix_fmt yuv420p");
}

static void test_video_gpu(void **st)
{
    const char *nv = "{\"video\": {\"codec\": \"hevc_nvenc\", \"crf\": 28, \"preset\": \"p5\"},"
                     " \"audio\": null, \"container\": \"mp4\"}";
    expect_video(nv, src1080, "mp4",
                 "-an -sn -dn -map 0:V:0 -c:v hevc_nvenc -rc vbr -cq 28 -b:v 0 -preset p5 -g 60 "
                 "-keyint_min 60 -sc_threshold 0 -forced-idr 1 -no-scenecut 1 -pix_fmt yuv420p "
                 "-tag:v hvc1 -video_track_timescale 15360");
    json_t *c = parse(nv);
    assert_string_equal(we_profile_capability(c), "nvidia");
    json_decref(c);
    expect_video(
        "{\"video\": {\"codec\": \"h264_nvenc\", \"bitrate_kbps\": 4000,"
        " \"maxrate_kbps\": 6000}, \"audio\": null, \"container\": \"mkv\"}",
        src1080, "mkv",
        "-an -sn -dn -map 0:V:0 -c:v h264_nvenc -rc vbr -b:v 4000k -maxrate 6000k "
        "-bufsize 12000k -g 60 -keyint_min 60 -sc_threshold 0 -forced-idr 1 -no-scenecut 1 "
        "-pix_fmt yuv420p");
    expect_video("{\"video\": {\"codec\": \"h264_qsv\", \"crf\": 25, \"preset\": \"fast\"},"
                 " \"audio\": null, \"container\": \"mkv\"}",
                 src1080, "mkv",
                 "-an -sn -dn -map 0:V:0 -c:v h264_qsv -global_quality 25 -preset fast -g 60 "
                 "-keyint_min 60 -sc_threshold 0 -idr_interval 0 -pix_fmt nv12");
    const char *va = "{\"video\": {\"codec\": \"h264_vaapi\", \"crf\": 25, \"width\": 1280,"
                     " \"height\": 720}, \"audio\": null, \"container\": \"mkv\"}";
    expect_video(
        va, src1080, "mkv",
        "-an -sn -dn -map 0:V:0 -vf scale=w=1280:h=720:force_original_aspect_ratio=decrease"
        ":force_divisible_by=2,format=nv12,hwupload -c:v h264_vaapi -rc_mode CQP -qp 25 "
        "-g 60 -keyint_min 60 -sc_threshold 0 -idr_interval 0");
    c = parse(va);
    assert_string_equal(we_profile_capability(c), "vaapi");
    json_decref(c);
    we_source_info small = { 30.0, 640, 360, 10.0, false };
    expect_video("{\"video\": {\"codec\": \"hevc_vaapi\", \"bitrate_kbps\": 900,"
                 " \"pix_fmt\": \"p010le\"}, \"audio\": null, \"container\": \"mkv\"}",
                 small, "mkv",
                 "-an -sn -dn -map 0:V:0 -vf format=p010le,hwupload -c:v hevc_vaapi -rc_mode VBR "
                 "-b:v 900k -g 60 -keyint_min 60 -sc_threshold 0 -idr_interval 0");
}

static void test_video_errors(void **st)
{
    json_t *ladder = parse(seeds[SLADDER]), *h264 = parse(seeds[S720_H264]), *args = NULL;
    we_err err = { "" };
    const char *ext = NULL;
    assert_int_equal(we_profile_video_args(ladder, &src1080, &args, &ext, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "ladder"));
    we_source_info nofps = { 0, 1920, 1080, 10.0, false };
    assert_int_equal(we_profile_video_args(h264, &nofps, &args, &ext, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "frame rate"));
    assert_null(args);
    json_decref(ladder);
    json_decref(h264);
}

static void test_gop_frames(void **st)
{
    json_t *c = parse(seeds[S720_H264]), *g = parse(X264(", \"gop_s\": 0.5"));
    json_t *ladder = parse(seeds[SLADDER]);
    assert_int_equal(we_profile_gop_frames(c, 30.0), 60);
    assert_int_equal(we_profile_gop_frames(c, 30000.0 / 1001.0), 60);
    assert_int_equal(we_profile_gop_frames(c, 25.0), 50);
    assert_int_equal(we_profile_gop_frames(c, 23.976), 48);
    assert_int_equal(we_profile_gop_frames(g, 30.0), 15);
    assert_int_equal(we_profile_gop_frames(g, 1.0), 1); /* never 0 */
    assert_int_equal(we_profile_gop_frames(c, 0), WE_EINVAL);
    assert_int_equal(we_profile_gop_frames(c, -30), WE_EINVAL);
    assert_int_equal(we_profile_gop_frames(ladder, 30), WE_EINVAL);
    json_decref(c);
    json_decref(g);
    json_decref(ladder);
}

static void test_audio(void **st)
{
    expect_audio(seeds[S720_H264], 0, "m4a",
                 "-vn -sn -dn -map 0:a:0 -c:a aac -b:a 128k -ac 2 -ar 48000");
    expect_audio(seeds[S720_VP9], 0, "webm",
                 "-vn -sn -dn -map 0:a:0 -c:a libopus -b:a 96k -ac 2 -ar 48000");
    expect_audio("{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\":"
                 " \"libmp3lame\"}, \"container\": \"mp4\"}",
                 0, "mp4", "-vn -sn -dn -map 0:a:0 -c:a libmp3lame");
    expect_audio("{\"video\": {\"codec\": \"libx264\", \"crf\": 23}, \"audio\": {\"codec\":"
                 " \"copy\"}, \"container\": \"mkv\"}",
                 0, "mka", "-vn -sn -dn -map 0:a:0 -c:a copy");
    expect_audio(X264(""), WE_ENOENT, NULL, NULL);
    expect_audio(seeds[SLADDER], WE_EINVAL, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds_valid),    cmocka_unit_test(test_refused),
        cmocka_unit_test(test_refused_top),    cmocka_unit_test(test_ids),
        cmocka_unit_test(test_video_h264),     cmocka_unit_test(test_video_scaling),
        cmocka_unit_test(test_video_families), cmocka_unit_test(test_video_gpu),
        cmocka_unit_test(test_video_errors),   cmocka_unit_test(test_gop_frames),
        cmocka_unit_test(test_audio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
