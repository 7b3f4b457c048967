/*
 * Worker capability detection: the `ffmpeg -encoders` parser on a trimmed
 * real capture, the version parser, hardware rules against fake /dev and
 * /sys trees with an injected test encode, and the real FFmpeg when it is
 * installed (skipped otherwise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "caps.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* `ffmpeg -hide_banner -encoders` of Debian 12's ffmpeg 5.1.9, trimmed. */
static const char sample[] =
    "Encoders:\n"
    " V..... = Video\n"
    " A..... = Audio\n"
    " S..... = Subtitle\n"
    " .F.... = Frame-level multithreading\n"
    " ..S... = Slice-level multithreading\n"
    " ...X.. = Codec is experimental\n"
    " ....B. = Supports draw_horiz_band\n"
    " .....D = Supports direct rendering method 1\n"
    " ------\n"
    " V....D a64multi             Multicolor charset for Commodore 64 (codec a64_multi)\n"
    " V....D libaom-av1           libaom AV1 (codec av1)\n"
    " V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)\n"
    " V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)\n"
    " V..... h264_qsv             H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (Intel Quick Sync "
    "Video acceleration) (codec h264)\n"
    " V..... h264_v4l2m2m         V4L2 mem2mem H.264 encoder wrapper (codec h264)\n"
    " V....D h264_vaapi           H.264/AVC (VAAPI) (codec h264)\n"
    " V....D hevc_nvenc           NVIDIA NVENC hevc encoder (codec hevc)\n"
    " VFS... mjpeg                MJPEG (Motion JPEG)\n"
    " V..X.D avui                 Avid Meridien Uncompressed\n"
    " A..... aac                  AAC (Advanced Audio Coding)\n"
    " A....D flac                 FLAC (Free Lossless Audio Codec)\n"
    " A..... libopus              libopus Opus (codec opus)\n"
    " S..... mov_text             3GPP Timed Text subtitle\n"
    " S..... srt                  SubRip subtitle (codec subrip)\n"
    " S..... webvtt               WebVTT subtitle\n";

static const char *const sample_names[] = {
    "a64multi",   "libaom-av1", "libx264", "h264_nvenc", "h264_qsv", "h264_v4l2m2m", "h264_vaapi",
    "hevc_nvenc", "mjpeg",      "avui",    "aac",        "flac",     "libopus",
};

static void assert_list(const wk_strlist *l, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < l->n; i++)
        assert_string_equal(l->v[i], want[i]);
    assert_int_equal(l->n, n);
}

/* --- parsing ---------------------------------------------------------------- */

static void test_parse_sample(void **state)
{
    wk_strlist l;
    wk_strlist_init(&l);
    wk_encoders_parse(sample, &l);
    assert_list(&l, sample_names, sizeof sample_names / sizeof sample_names[0]);
    assert_false(wk_strlist_has(&l, "srt"));
    assert_false(wk_strlist_has(&l, "webvtt"));
    assert_false(wk_strlist_has(&l, "="));
    wk_strlist_fini(&l);
}

static void test_parse_garbage(void **state)
{
    static const char *const inputs[] = {
        "",
        "\n\n\n",
        "garbage",
        "Encoders:\n ------\n",
        " V....D\n",
        " V....D    \n",
        " X....D libx264 bad type\n",
        " V.... libx264 short flags\n",
        " V....d libx264 lower\n",
        " V....D lib*264 bad name\n",
        " V....D =\n",
        "\x01\x02\xff\xfe V....D\n",
        "ffmpeg: error while loading shared libraries: libx264.so.164\n",
    };
    wk_strlist l;
    wk_strlist_init(&l);
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        wk_encoders_parse(inputs[i], &l);
    wk_encoders_parse(NULL, &l);
    assert_int_equal(l.n, 0);
    wk_strlist_fini(&l);
}

static void test_parse_edges(void **state)
{
    const char *text = " V....D libx264  x\r\n V....D libx264 again\n\tA..... aac";
    wk_strlist l;
    wk_strlist_init(&l);
    wk_encoders_parse(text, &l); /* CRLF, a duplicate, a tab, no final newline */
    static const char *const want[] = { "libx264", "aac" };
    assert_list(&l, want, 2);
    wk_strlist_fini(&l);
}

static void test_parse_long_lines(void **state)
{
    size_t big = 200000;
    char *text = malloc(3 * big);
    assert_non_null(text);
    /* a valid entry with a huge description, then a huge name, then a normal entry */
    int n = sprintf(text, " V....D libx265 ");
    memset(text + n, 'd', big);
    n += (int)big;
    n += sprintf(text + n, "\n V....D ");
    memset(text + n, 'x', big);
    n += (int)big;
    sprintf(text + n, " long name\n A..... aac AAC\n");
    wk_strlist l;
    wk_strlist_init(&l);
    wk_encoders_parse(text, &l);
    static const char *const want[] = { "libx265", "aac" };
    assert_list(&l, want, 2);
    wk_strlist_fini(&l);
    free(text);
}

static void test_version_parse(void **state)
{
    char v[64];
    assert_int_equal(wk_ffmpeg_version_parse("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) "
                                             "2000-2026 the FFmpeg developers\nbuilt with gcc\n",
                                             v, sizeof v),
                     0);
    assert_string_equal(v, "5.1.9-0+deb12u1");
    assert_int_equal(wk_ffmpeg_version_parse("ffmpeg version n6.1.1", v, sizeof v), 0);
    assert_string_equal(v, "n6.1.1");
    assert_int_equal(wk_ffmpeg_version_parse("", v, sizeof v), WE_ENOENT);
    assert_int_equal(wk_ffmpeg_version_parse("ffmpeg version \n5.1", v, sizeof v), WE_ENOENT);
    assert_int_equal(wk_ffmpeg_version_parse("sh: ffmpeg: not found\n", v, sizeof v), WE_ENOENT);
    assert_int_equal(wk_ffmpeg_version_parse("ffmpeg version \"x\"", v, sizeof v), WE_ENOENT);
    assert_int_equal(wk_ffmpeg_version_parse("ffmpeg version 5.1", v, 3), WE_ENOENT);
}

/* --- fake device trees ------------------------------------------------------- */

typedef struct fake {
    char root[64];
    char dev[128];
    char sys[128];
    wk_strlist listed;
    wk_caps caps;
    /* the injected test encode: records calls, fails for names in fail[] */
    char calls[16][160];
    int n_calls;
    const char *fail[4];
} fake;

static bool fake_test(void *ctx, const char *encoder, const char *node, we_buf *why)
{
    fake *f = ctx;
    if (f->n_calls < 16)
        snprintf(f->calls[f->n_calls++], sizeof f->calls[0], "%s@%s", encoder,
                 node ? node + strlen(f->dev) : "-");
    for (int i = 0; i < 4 && f->fail[i]; i++) {
        if (strstr(f->calls[f->n_calls - 1], f->fail[i]) == f->calls[f->n_calls - 1]) {
            we_buf_adds(why, "No capable devices found");
            return false;
        }
    }
    return true;
}

/* Creates root/rel (and its parent directories) holding content. */
static void put(const char *root, const char *rel, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = strchr(path + strlen(root) + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
}

static void render_node(fake *f, const char *name, const char *vendor)
{
    char rel[128];
    snprintf(rel, sizeof rel, "dri/%s", name);
    put(f->dev, rel, "");
    if (vendor) {
        snprintf(rel, sizeof rel, "class/drm/%s/device/vendor", name);
        put(f->sys, rel, vendor);
    }
}

static int fake_setup(void **state)
{
    fake *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/wk_caps_XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->dev, sizeof f->dev, "%s/dev", f->root);
    snprintf(f->sys, sizeof f->sys, "%s/sys", f->root);
    mkdir(f->dev, 0755);
    mkdir(f->sys, 0755);
    wk_strlist_init(&f->listed);
    wk_encoders_parse(sample, &f->listed);
    wk_caps_init(&f->caps);
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int fake_teardown(void **state)
{
    fake *f = *state;
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    wk_strlist_fini(&f->listed);
    wk_caps_fini(&f->caps);
    free(f);
    return 0;
}

static void detect(fake *f, bool with_test)
{
    wk_caps_opts o = {
        .dev_root = f->dev, .sys_root = f->sys, .test = with_test ? fake_test : NULL, .test_ctx = f
    };
    wk_caps_detect(&o, &f->listed, &f->caps);
}

static const char *const software[] = { "a64multi", "libaom-av1", "libx264", "mjpeg",
                                        "avui",     "aac",        "flac",    "libopus" };

static void test_no_devices(void **state)
{
    fake *f = *state;
    detect(f, true);
    static const char *const cpu[] = { "cpu" };
    assert_list(&f->caps.capabilities, cpu, 1);
    assert_list(&f->caps.encoders, software, sizeof software / sizeof software[0]);
    assert_int_equal(f->n_calls, 0); /* nothing to test without devices */
}

static void test_nvidia_without_nvenc(void **state)
{
    fake *f = *state;
    put(f->dev, "nvidiactl", "");
    put(f->dev, "nvidia0", "");
    wk_strlist_fini(&f->listed);
    wk_encoders_parse(" V....D libx264 x\n", &f->listed);
    detect(f, true);
    assert_false(wk_strlist_has(&f->caps.capabilities, "nvidia"));
    assert_int_equal(f->n_calls, 0);
}

static void test_nvidia_half_device(void **state)
{
    fake *f = *state;
    put(f->dev, "nvidiactl", "");
    detect(f, true);
    assert_false(wk_strlist_has(&f->caps.capabilities, "nvidia"));
    assert_false(wk_strlist_has(&f->caps.encoders, "h264_nvenc"));
    assert_int_equal(f->n_calls, 0);
}

static void test_nvidia_test_passes(void **state)
{
    fake *f = *state;
    put(f->dev, "nvidiactl", "");
    put(f->dev, "nvidia0", "");
    detect(f, true);
    static const char *const caps[] = { "cpu", "nvidia" };
    assert_list(&f->caps.capabilities, caps, 2);
    assert_true(wk_strlist_has(&f->caps.encoders, "h264_nvenc"));
    assert_true(wk_strlist_has(&f->caps.encoders, "hevc_nvenc"));
    assert_false(wk_strlist_has(&f->caps.encoders, "h264_qsv"));
    assert_int_equal(f->n_calls, 2);
    assert_string_equal(f->calls[0], "h264_nvenc@-");
    assert_string_equal(f->calls[1], "hevc_nvenc@-");
}

static void test_nvidia_test_fails(void **state)
{
    fake *f = *state;
    put(f->dev, "nvidiactl", "");
    put(f->dev, "nvidia0", "");
    f->fail[0] = "h264_nvenc";
    f->fail[1] = "hevc_nvenc";
    detect(f, true);
    static const char *const cpu[] = { "cpu" };
    assert_list(&f->caps.capabilities, cpu, 1);
    assert_list(&f->caps.encoders, software, sizeof software / sizeof software[0]);
    assert_int_equal(f->caps.rejected.n, 2);
    assert_string_equal(f->caps.rejected.v[0], "h264_nvenc: No capable devices found");
}

static void test_intel_candidate(void **state)
{
    fake *f = *state;
    render_node(f, "renderD128", "0x8086\n");
    detect(f, false); /* test encode disabled: devices + encoders decide */
    static const char *const caps[] = { "cpu", "intel", "vaapi" };
    assert_list(&f->caps.capabilities, caps, 3);
    assert_true(wk_strlist_has(&f->caps.encoders, "h264_qsv"));
    assert_false(wk_strlist_has(&f->caps.encoders, "h264_nvenc"));
    assert_false(wk_strlist_has(&f->caps.encoders, "h264_v4l2m2m"));
}

static void test_intel_without_qsv(void **state)
{
    fake *f = *state;
    render_node(f, "renderD128", "0x8086\n");
    wk_strlist_fini(&f->listed);
    wk_encoders_parse(" V....D libx264 x\n V....D hevc_vaapi x\n", &f->listed);
    detect(f, true);
    static const char *const cpu[] = { "cpu" };
    assert_list(&f->caps.capabilities, cpu, 1); /* vaapi asks for h264_vaapi */
    assert_true(wk_strlist_has(&f->caps.encoders, "hevc_vaapi"));
    assert_int_equal(f->n_calls, 1);
    assert_string_equal(f->calls[0], "hevc_vaapi@/dri/renderD128");
}

static void test_amd_amf(void **state)
{
    fake *f = *state;
    render_node(f, "renderD128", "0x1002\n");
    wk_strlist_fini(&f->listed);
    wk_encoders_parse(" V....D h264_amf x\n", &f->listed);
    detect(f, true);
    static const char *const caps[] = { "cpu", "amd" };
    assert_list(&f->caps.capabilities, caps, 2);
    assert_string_equal(f->calls[0], "h264_amf@-");
}

/* Two render nodes: VAAPI fails on the first (NVIDIA), works on the AMD one;
 * each (encoder, node) is tried once. */
static void test_vaapi_second_node(void **state)
{
    fake *f = *state;
    render_node(f, "renderD129", "0x1002\n");
    render_node(f, "renderD128", "0x10de\n");
    f->fail[0] = "h264_vaapi@/dri/renderD128";
    detect(f, true);
    static const char *const caps[] = { "cpu", "amd", "vaapi" };
    assert_list(&f->caps.capabilities, caps, 3);
    assert_int_equal(f->n_calls, 2);
    assert_string_equal(f->calls[0], "h264_vaapi@/dri/renderD128");
    assert_string_equal(f->calls[1], "h264_vaapi@/dri/renderD129");
    assert_int_equal(f->caps.rejected.n, 1);
}

static void test_vaapi_unknown_vendor(void **state)
{
    fake *f = *state;
    render_node(f, "renderD128", NULL); /* no /sys entry: vendor unknown */
    detect(f, true);
    static const char *const caps[] = { "cpu", "vaapi" };
    assert_list(&f->caps.capabilities, caps, 2);
    assert_false(wk_strlist_has(&f->caps.encoders, "h264_qsv"));
}

static void test_vaapi_fails(void **state)
{
    fake *f = *state;
    render_node(f, "renderD128", "0x1002\n");
    f->fail[0] = "h264_vaapi";
    detect(f, true);
    static const char *const cpu[] = { "cpu" };
    assert_list(&f->caps.capabilities, cpu, 1); /* AMD node but neither AMF nor VAAPI */
    assert_false(wk_strlist_has(&f->caps.encoders, "h264_vaapi"));
    assert_int_equal(f->n_calls, 1);
}

/* --- running FFmpeg ------------------------------------------------------------ */

static void test_probe_missing_ffmpeg(void **state)
{
    fake *f = *state;
    we_err err = { "" };
    wk_caps_opts o = { .ffmpeg = "/nonexistent/ffmpeg", .dev_root = f->dev, .sys_root = f->sys };
    assert_int_equal(wk_caps_probe(&o, &f->caps, &err), WE_ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/ffmpeg"));
    static const char *const cpu[] = { "cpu" };
    assert_list(&f->caps.capabilities, cpu, 1);
    assert_int_equal(f->caps.encoders.n, 0);
    assert_null(f->caps.ffmpeg_version);
}

/* A stand-in ffmpeg (shell script) that prints the sample. */
static void test_probe_fake_ffmpeg(void **state)
{
    fake *f = *state;
    char script[256], body[4096];
    snprintf(script, sizeof script, "%s/ffmpeg", f->root);
    snprintf(body, sizeof body,
             "#!/bin/sh\ncase \"$2\" in\n-version) echo 'ffmpeg version 9.9-test Copyright';;\n"
             "-encoders) cat <<'X'\n%sX\n;;\n*) exit 1;;\nesac\n",
             sample);
    put(f->root, "ffmpeg", body);
    chmod(script, 0755);
    wk_caps_opts o = { .ffmpeg = script, .dev_root = f->dev, .sys_root = f->sys };
    assert_int_equal(wk_caps_probe(&o, &f->caps, NULL), 0);
    assert_string_equal(f->caps.ffmpeg_version, "9.9-test");
    assert_list(&f->caps.encoders, software, sizeof software / sizeof software[0]);
}

static bool have_ffmpeg(void)
{
    return system("ffmpeg -hide_banner -version >/dev/null 2>&1") == 0;
}

static void test_real_ffmpeg(void **state)
{
    fake *f = *state;
    if (!have_ffmpeg())
        skip();
    wk_caps_opts o = {
        .ffmpeg = "ffmpeg", .dev_root = f->dev, .sys_root = f->sys, .test = wk_ffmpeg_encode_test
    };
    assert_int_equal(wk_caps_probe(&o, &f->caps, NULL), 0);
    assert_true(wk_strlist_has(&f->caps.encoders, "mpeg4"));
    assert_false(wk_strlist_has(&f->caps.encoders, "h264_nvenc"));
    assert_non_null(f->caps.ffmpeg_version);
    we_buf why;
    we_buf_init(&why);
    assert_true(wk_ffmpeg_encode_test(NULL, "mpeg4", NULL, &why));
    assert_int_equal(why.len, 0);
    /* no such encoder: fails with FFmpeg's own words */
    assert_false(wk_ffmpeg_encode_test(NULL, "no_such_encoder", NULL, &why));
    assert_non_null(why.data);
    assert_non_null(strstr(why.data, "no_such_encoder"));
    we_buf_fini(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sample),
        cmocka_unit_test(test_parse_garbage),
        cmocka_unit_test(test_parse_edges),
        cmocka_unit_test(test_parse_long_lines),
        cmocka_unit_test(test_version_parse),
        cmocka_unit_test_setup_teardown(test_no_devices, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_nvidia_without_nvenc, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_nvidia_half_device, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_nvidia_test_passes, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_nvidia_test_fails, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_intel_candidate, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_intel_without_qsv, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_amd_amf, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_vaapi_second_node, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_vaapi_unknown_vendor, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_vaapi_fails, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_probe_missing_ffmpeg, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_probe_fake_ffmpeg, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_real_ffmpeg, fake_setup, fake_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
