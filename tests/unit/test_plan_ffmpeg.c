/*
 * The planner and the profile's FFmpeg options against real FFmpeg: the
 * only unit test here that runs programs (ffmpeg, ffprobe; about 10 s).
 *
 * For a generated 24 s 640x360 30 fps source (x264, keyframes every 2 s,
 * AAC), once as MP4 (start time 0) and once remuxed to MPEG-TS (video
 * starting at 1.4667 s, audio a little earlier), it plans 8 s segments from
 * ffprobe's keyframe list, encodes each with we_plan_input_args +
 * we_profile_video_args of the seeded 480p-h264 profile, encodes the audio
 * once with we_profile_audio_args, stitches with the concat demuxer and
 * -c copy, and compares with a single pass of the same options: the same
 * frame count (the source's), keyframes at the same timestamps, a constant
 * PTS step, durations within one frame. Everything lives in a mkdtemp
 * directory that is removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "we_plan.h"
#include "we_profile.h"

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The config of 480p-h264 in pkg/db/migrations/0005_profiles.up.sql. */
static const char *const profile_480p =
    "{\"video\": {\"codec\": \"libx264\", \"width\": 854, \"height\": 480, \"upscale\": false,"
    " \"crf\": 23, \"maxrate_kbps\": 2500, \"preset\": \"veryfast\", \"gop_s\": 2,"
    " \"pix_fmt\": \"yuv420p\", \"profile\": \"high\"},"
    " \"audio\": {\"codec\": \"aac\", \"bitrate_kbps\": 128, \"channels\": 2, \"sample_rate\": "
    "48000},"
    " \"container\": \"mp4\", \"faststart\": true, \"capability\": \"cpu\", \"packaging\": "
    "\"none\"}";

static char dir[64];

static void path(char *buf, size_t n, const char *name)
{
    int len = snprintf(buf, n, "%s/%s", dir, name);
    assert_true(len > 0 && (size_t)len < n);
}

/* Runs argv (a JSON array of strings, stolen); stdout into *out when out is
 * not NULL (malloc'ed), stderr into dir/cmd.log. Fails the test on a
 * non-zero exit, showing the log. */
static void run(json_t *argv, char **out)
{
    size_t n = json_array_size(argv), i;
    char **av = calloc(n + 1, sizeof *av), log[128];
    int fds[2];
    path(log, sizeof log, "cmd.log");
    for (i = 0; i < n; i++)
        av[i] = (char *)json_string_value(json_array_get(argv, i));
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int err = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644), nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(fds[1], 1);
        dup2(err, 2);
        close(fds[0]);
        execvp(av[0], av);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = read(fds[0], buf + len, cap - len - 1)) > 0)
        if ((len += (size_t)got) + 1 == cap)
            buf = realloc(buf, cap *= 2);
    buf[len] = '\0';
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char cmd[2048] = "", text[4096] = "";
        for (i = 0; i < n; i++)
            strncat(cmd, av[i], sizeof cmd - strlen(cmd) - 2), strcat(cmd, " ");
        FILE *f = fopen(log, "r");
        if (f) {
            text[fread(text, 1, sizeof text - 1, f)] = '\0';
            fclose(f);
        }
        fail_msg("command failed (status %d): %s\n%s", st, cmd, text);
    }
    free(av);
    json_decref(argv);
    if (out)
        *out = buf;
    else
        free(buf);
}

/* "key=value" lines: the value of key as a number (a/b for rates). */
static double kv(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, n) == 0 && p[n] == '=') {
            double a = strtod(p + n + 1, NULL), b = 1;
            const char *slash = strchr(p + n + 1, '/'), *nl = strchr(p, '\n');
            if (slash && (!nl || slash < nl))
                b = strtod(slash + 1, NULL);
            return b != 0 ? a / b : NAN;
        }
    }
    fail_msg("ffprobe gave no %s in:\n%s", key, text);
    return NAN;
}

static char *probe(const char *file, const char *entries, bool count)
{
    char *out = NULL;
    json_t *a = json_pack("[s,s,s,s,s,s,s,s]", "ffprobe", "-v", "error", "-select_streams", "v:0",
                          "-show_entries", entries, "-of");
    json_array_append_new(a, json_string(strstr(entries, "packet") ? "csv=p=0" : "default=nw=1"));
    if (count)
        json_array_append_new(a, json_string("-count_frames"));
    json_array_append_new(a, json_string(file));
    run(a, &out);
    return out;
}

typedef struct packets {
    long pts[4096];
    bool key[4096];
    size_t n;
} packets;

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Video packets of file, by PTS: "pts,flags" lines (flags "K_" for keys). */
static void read_packets(const char *file, packets *pk)
{
    char *text = probe(file, "packet=pts,flags", false), *save = NULL;
    long keys[4096];
    size_t nkeys = 0;
    pk->n = 0;
    for (char *line = strtok_r(text, "\n", &save); line && pk->n < 4096;
         line = strtok_r(NULL, "\n", &save)) {
        pk->pts[pk->n] = strtol(line, NULL, 10);
        if (strchr(line, 'K'))
            keys[nkeys++] = pk->pts[pk->n];
        pk->n++;
    }
    free(text);
    qsort(pk->pts, pk->n, sizeof pk->pts[0], cmp_long);
    for (size_t i = 0; i < pk->n; i++)
        pk->key[i] = bsearch(&pk->pts[i], keys, nkeys, sizeof keys[0], cmp_long) != NULL;
}

typedef struct source {
    double kf[256];
    size_t nkf;
    double video_start, format_start, duration, fps;
    long frames;
} source;

static void read_source(const char *file, source *s)
{
    char *text = probe(file, "packet=pts_time,flags", false), *save = NULL;
    s->nkf = 0;
    for (char *line = strtok_r(text, "\n", &save); line && s->nkf < 256;
         line = strtok_r(NULL, "\n", &save))
        if (strchr(line, 'K'))
            s->kf[s->nkf++] = strtod(line, NULL);
    free(text);
    text = probe(file, "stream=start_time,duration,r_frame_rate,nb_read_frames", true);
    s->fps = kv(text, "r_frame_rate");
    s->video_start = kv(text, "start_time");
    s->duration = kv(text, "duration");
    s->frames = lround(kv(text, "nb_read_frames"));
    free(text);
    /* where ffmpeg's input -ss counts from: the earliest stream */
    text = probe(file, "format=start_time", false);
    s->format_start = kv(text, "start_time");
    free(text);
}

static void generate(const char *mp4, const char *ts)
{
    run(json_pack("[s,s,s,s, s,s,s,s, s,s,s,s, s,s,s,s, s,s,s,s, s,s,s,s, s,s,s,s, s,s]", "ffmpeg",
                  "-v", "error", "-y", "-f", "lavfi", "-i",
                  "testsrc2=size=640x360:rate=30:duration=24", "-f", "lavfi", "-i",
                  "sine=frequency=1000:sample_rate=48000:duration=24", "-c:v", "libx264", "-preset",
                  "veryfast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt",
                  "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", mp4),
        NULL);
    run(json_pack("[s,s,s,s,s,s,s,s,s,s,s]", "ffmpeg", "-v", "error", "-y", "-i", mp4, "-c", "copy",
                  "-f", "mpegts", ts),
        NULL);
}

/* ffmpeg -v error -y [input args] -i src [output args] out */
static void encode(json_t *in_args, const char *src, json_t *out_args, const char *out)
{
    json_t *a = json_pack("[s,s,s,s]", "ffmpeg", "-v", "error", "-y");
    if (in_args)
        json_array_extend(a, in_args);
    json_array_append_new(a, json_string("-i"));
    json_array_append_new(a, json_string(src));
    json_array_extend(a, out_args);
    json_array_append_new(a, json_string(out));
    run(a, NULL);
}

/* Encodes src in segments, stitches them with the audio into out. */
static void segmented(json_t *config, const source *s, const char *src, const char *out)
{
    we_source_info info = { s->fps, 640, 360, s->duration, true };
    we_plan_opts o = { 8.0, 2.0, 20.0, 0 };
    we_segment *seg = NULL;
    size_t n = 0;
    we_err err = { "" };
    json_t *vargs = NULL, *aargs = NULL, *in = NULL;
    const char *vext = NULL, *aext = NULL;
    char list[128], seg_path[128], audio[128];
    assert_int_equal(we_profile_video_args(config, &info, &vargs, &vext, &err), 0);
    assert_int_equal(we_profile_audio_args(config, &aargs, &aext, &err), 0);
    int rc = we_plan_segments(s->kf, s->nkf, s->video_start, s->duration, s->fps,
                              we_profile_gop_frames(config, s->fps), &o, &seg, &n, &err);
    if (rc != 0)
        fail_msg("plan: %s", err.msg);
    assert_int_equal(n, 3);
    path(list, sizeof list, "list.txt");
    FILE *f = fopen(list, "w");
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "seg_%04zu.%s", i, vext);
        path(seg_path, sizeof seg_path, name);
        assert_int_equal(
            we_plan_input_args(&seg[i], i + 1 == n, s->video_start - s->format_start, &in, &err),
            0);
        encode(in, src, vargs, seg_path);
        json_decref(in);
        fprintf(f, "file '%s'\n", seg_path);
        source one;
        read_source(seg_path, &one);
        assert_int_equal(one.frames, lround(seg[i].duration_s * s->fps));
    }
    fclose(f);
    snprintf(seg_path, sizeof seg_path, "audio.%s", aext);
    path(audio, sizeof audio, seg_path);
    encode(NULL, src, aargs, audio);
    run(json_pack("[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s]", "ffmpeg", "-v", "error", "-y",
                  "-f", "concat", "-safe", "0", "-i", list, "-i", audio, "-map", "0:v", "-map",
                  "1:a", "-c", "copy", "-movflags", "+faststart", out),
        NULL);
    free(seg);
    json_decref(vargs);
    json_decref(aargs);
}

static void compare(const char *stitched, const char *single, const source *s)
{
    static packets a, b;
    source x, y;
    read_source(stitched, &x);
    read_source(single, &y);
    assert_int_equal(x.frames, s->frames);
    assert_int_equal(y.frames, s->frames);
    assert_true(fabs(x.duration - y.duration) < 1.0 / s->fps);
    read_packets(stitched, &a);
    read_packets(single, &b);
    assert_int_equal(a.n, b.n);
    size_t keys = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (a.pts[i] != b.pts[i] || a.key[i] != b.key[i])
            fail_msg("frame %zu: pts %ld%s vs single pass %ld%s", i, a.pts[i],
                     a.key[i] ? " (key)" : "", b.pts[i], b.key[i] ? " (key)" : "");
        if (i > 1 && a.pts[i] - a.pts[i - 1] != a.pts[1] - a.pts[0])
            fail_msg("PTS step %ld at frame %zu, %ld at the start", a.pts[i] - a.pts[i - 1], i,
                     a.pts[1] - a.pts[0]);
        keys += a.key[i];
    }
    assert_int_equal(keys, 12); /* every 2 s of 24 s */
    char *text = NULL;
    run(json_pack("[s,s,s,s,s,s,s,s,s,s]", "ffprobe", "-v", "error", "-select_streams", "a",
                  "-show_entries", "stream=codec_name", "-of", "csv=p=0", stitched),
        &text);
    assert_string_equal(text, "aac\n");
    free(text);
}

static void check_source(const char *name, double want_start)
{
    json_t *config = json_loads(profile_480p, 0, NULL), *vargs = NULL;
    char src[128], out[128], single[128];
    const char *ext = NULL;
    source s;
    we_err err = { "" };
    path(src, sizeof src, name);
    path(out, sizeof out, "stitched.mp4");
    path(single, sizeof single, "single.mp4");
    read_source(src, &s);
    assert_true(fabs(s.video_start - want_start) < 0.01);
    assert_int_equal(s.frames, 720);
    assert_int_equal(s.nkf, 12);
    segmented(config, &s, src, out);
    we_source_info info = { s.fps, 640, 360, s.duration, true };
    assert_int_equal(we_profile_video_args(config, &info, &vargs, &ext, &err), 0);
    encode(NULL, src, vargs, single);
    compare(out, single, &s);
    json_decref(vargs);
    json_decref(config);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static int setup(void **st)
{
    char mp4[128], ts[128];
    snprintf(dir, sizeof dir, "/tmp/we-plan-ffmpeg.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    path(mp4, sizeof mp4, "src.mp4");
    path(ts, sizeof ts, "src.ts");
    generate(mp4, ts);
    return 0;
}

static int teardown(void **st)
{
    return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_mp4_source(void **st)
{
    check_source("src.mp4", 0.0);
}

static void test_mpegts_source(void **st)
{
    check_source("src.ts", 1.466667); /* the TS muxer's default delay */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mp4_source),
        cmocka_unit_test(test_mpegts_source),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
