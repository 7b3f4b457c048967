/*
 * encoder-ffmpeg's pure parts, compiled in from the plugin's sources (unit
 * tests link no plugin code): the `ffmpeg -encoders/-hwaccels/-version`
 * parsers, the -progress parser (blocks split across reads, out_time_us vs
 * out_time_ms, N/A values, monotonic capped percent, end), the stderr tail
 * ring, the exit classifier on real FFmpeg 5.1 messages, argument checks,
 * argv building (with stitch's second input), durations, path resolution,
 * encoder.stitch's concat list (FFmpeg's quoting; line breaks refused), and
 * encoder.package's HLS options (var_stream_map, argv with n inputs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../plugins/encoder-ffmpeg/args.c"
#include "../../plugins/encoder-ffmpeg/caps.c"
#include "../../plugins/encoder-ffmpeg/classify.c"
#include "../../plugins/encoder-ffmpeg/concat.c"
#include "../../plugins/encoder-ffmpeg/hls.c"
#include "../../plugins/encoder-ffmpeg/progress.c"

#include <signal.h>

/* ---- capability text ------------------------------------------------------ */

/* `ffmpeg -hide_banner -encoders` of Debian 12's ffmpeg 5.1.9, trimmed. */
static const char encoders_text[] =
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
    " V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC (codec h264)\n"
    " V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)\n"
    " A....D aac                  AAC (Advanced Audio Coding)\n"
    " S..... mov_text             3GPP Timed Text subtitle\n"
    "garbage line that is not a row\n"
    " V..... \n"
    " A....D libopus              libopus Opus (codec opus)";

static void test_encoders_parse(void **state)
{
    json_t *names = json_array();
    enc_encoders_parse(encoders_text, names);
    const char *want[] = {"a64multi", "libx264", "h264_nvenc", "aac", "mov_text", "libopus"};
    assert_int_equal(json_array_size(names), 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(json_string_value(json_array_get(names, i)), want[i]);
    json_array_clear(names);
    enc_encoders_parse("no separator\n V....D libx264 x\n", names); /* before "------": legend */
    assert_int_equal(json_array_size(names), 0);
    enc_encoders_parse("", names);
    assert_int_equal(json_array_size(names), 0);
    json_decref(names);
}

static void test_hwaccels_and_version(void **state)
{
    json_t *names = json_array();
    enc_hwaccels_parse("Hardware acceleration methods:\nvdpau\ncuda\n\nvaapi\n", names);
    assert_int_equal(json_array_size(names), 3);
    assert_string_equal(json_string_value(json_array_get(names, 2)), "vaapi");
    json_array_clear(names);
    enc_hwaccels_parse("Hardware acceleration methods:\n\n", names);
    assert_int_equal(json_array_size(names), 0);
    json_decref(names);

    char v[32];
    assert_int_equal(enc_version_parse("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026\n"
                                       "built with gcc 12\n",
                                       v, sizeof v),
                     0);
    assert_string_equal(v, "5.1.9-0+deb12u1");
    assert_int_equal(enc_version_parse("ffprobe version 5.1\n", v, sizeof v), -1);
    assert_int_equal(enc_version_parse("ffmpeg version \n", v, sizeof v), -1);
    assert_int_equal(enc_version_parse("ffmpeg version 5.1.9-0+deb12u1", v, 4), -1);
}

/* ---- -progress parser -------------------------------------------------------- */

static const char block1[] = "frame=30\nfps=29.97\nstream_0_0_q=28.0\nbitrate=N/A\n"
                             "total_size=48\nout_time_us=1000000\nout_time_ms=1000000\n"
                             "out_time=00:00:01.000000\ndup_frames=0\ndrop_frames=0\n"
                             "speed=1.5x\nprogress=continue\n";

static void test_progress_split_reads(void **state)
{
    enc_progress p;
    enc_progress_init(&p, 10.0);
    int blocks = 0;
    for (size_t i = 0; i < sizeof block1 - 1; i++) /* one byte per read */
        blocks += enc_progress_feed(&p, block1 + i, 1);
    assert_int_equal(blocks, 1);
    assert_int_equal(p.last.frame, 30);
    assert_true(p.last.fps > 29.96 && p.last.fps < 29.98);
    assert_true(p.last.speed == 1.5);
    assert_true(p.last.out_time_s == 1.0);
    assert_false(p.last.end);
    assert_true(p.percent > 9.99 && p.percent < 10.01);

    /* two blocks and a half in one read, the rest later */
    const char two[] = "frame=60\nout_time_us=2000000\nprogress=continue\n"
                       "frame=90\nout_time_us=3000000\nprogress=continue\nframe=12";
    assert_int_equal(enc_progress_feed(&p, two, sizeof two - 1), 2);
    assert_int_equal(p.last.frame, 90);
    assert_int_equal(enc_progress_feed(&p, "0\nprogress=end\n", 15), 1);
    assert_int_equal(p.last.frame, 120);
    assert_true(p.last.end);
    assert_int_equal(p.blocks, 4);
}

static void test_progress_out_time_keys(void **state)
{
    enc_progress p;
    enc_progress_init(&p, 100.0);
    /* only out_time_ms: FFmpeg 5.1 writes microseconds under that name */
    const char ms_only[] = "out_time_ms=2500000\nprogress=continue\n";
    enc_progress_feed(&p, ms_only, sizeof ms_only - 1);
    assert_true(p.last.out_time_s == 2.5);
    /* both: out_time_us wins whatever the order */
    const char both[] = "out_time_ms=9000000\nout_time_us=3000000\nprogress=continue\n";
    enc_progress_feed(&p, both, sizeof both - 1);
    assert_true(p.last.out_time_s == 3.0);
    /* only the clock form */
    const char clock[] = "out_time=00:01:02.500000\nprogress=continue\n";
    enc_progress_feed(&p, clock, sizeof clock - 1);
    assert_true(p.last.out_time_s == 62.5);
    /* CRLF line ends */
    const char crlf[] = "out_time_us=63000000\r\nframe=7\r\nprogress=continue\r\n";
    assert_int_equal(enc_progress_feed(&p, crlf, sizeof crlf - 1), 1);
    assert_true(p.last.out_time_s == 63.0);
    assert_int_equal(p.last.frame, 7);
}

static void test_progress_na_values(void **state)
{
    enc_progress p;
    enc_progress_init(&p, 10.0);
    const char first[] = "frame=0\nfps=0.00\nout_time_us=N/A\nout_time_ms=N/A\n"
                         "out_time=N/A\nspeed=N/A\nprogress=continue\n";
    enc_progress_feed(&p, first, sizeof first - 1);
    assert_int_equal(p.last.frame, 0);
    assert_true(p.last.speed < 0);      /* unknown */
    assert_true(p.last.out_time_s < 0); /* unknown */
    assert_true(p.percent == 0);
    const char second[] = "frame=15\nout_time_us=500000\nspeed=0.9x\nprogress=continue\n";
    enc_progress_feed(&p, second, sizeof second - 1);
    /* N/A again: the previous values stay */
    const char third[] = "frame=N/A\nout_time_us=N/A\nspeed=N/A\nfps=garbage\nprogress=continue\n";
    enc_progress_feed(&p, third, sizeof third - 1);
    assert_int_equal(p.last.frame, 15);
    assert_true(p.last.out_time_s == 0.5);
    assert_true(p.last.speed == 0.9);
    /* negative out_time (before the first frame) counts as 0 */
    const char neg[] = "out_time_us=-33333\nprogress=continue\n";
    enc_progress_feed(&p, neg, sizeof neg - 1);
    assert_true(p.last.out_time_s == 0);
}

static void test_progress_percent(void **state)
{
    enc_progress p;
    enc_progress_init(&p, 4.0);
    const char a[] = "out_time_us=2000000\nprogress=continue\n";
    const char back[] = "out_time_us=1000000\nprogress=continue\n"; /* goes back */
    const char over[] = "out_time_us=9000000\nprogress=continue\n"; /* past the end */
    const char end[] = "out_time_us=4000000\nprogress=end\n";
    enc_progress_feed(&p, a, sizeof a - 1);
    assert_true(p.percent == 50.0);
    enc_progress_feed(&p, back, sizeof back - 1);
    assert_true(p.percent == 50.0); /* never decreases */
    enc_progress_feed(&p, over, sizeof over - 1);
    assert_true(p.percent == 99.9); /* capped until ffmpeg exits 0 */
    enc_progress_feed(&p, end, sizeof end - 1);
    assert_true(p.percent == 99.9);
    assert_true(p.last.end);

    enc_progress_init(&p, -1); /* unknown duration: no percent, but the rest */
    enc_progress_feed(&p, a, sizeof a - 1);
    assert_true(p.percent == 0);
    assert_true(p.last.out_time_s == 2.0);
}

static void test_progress_garbage(void **state)
{
    enc_progress p;
    enc_progress_init(&p, 10.0);
    char longline[1000];
    memset(longline, 'x', sizeof longline);
    assert_int_equal(enc_progress_feed(&p, longline, sizeof longline), 0);
    /* the overlong line is dropped, the block still ends */
    const char rest[] = "=1\nno equals sign\n=\nframe=\nframe=-4\nframe=5\nprogress=continue\n";
    assert_int_equal(enc_progress_feed(&p, rest, sizeof rest - 1), 1);
    assert_int_equal(p.last.frame, 5);
    assert_int_equal(enc_progress_feed(&p, "", 0), 0);
    const char nul[] = "fra\0me=9\nprogress=continue\n";
    assert_int_equal(enc_progress_feed(&p, nul, sizeof nul - 1), 1);
    assert_int_equal(p.last.frame, 5);
}

/* ---- stderr tail -------------------------------------------------------------- */

static void test_tail_ring(void **state)
{
    static enc_tail t;
    static char out[ENC_TAIL_SIZE + 1];
    enc_tail_init(&t);
    enc_tail_add(&t, "one\ntwo\n", 8);
    enc_tail_text(&t, out);
    assert_string_equal(out, "one\ntwo\n");

    /* wrap: the partial first line goes */
    char line[100];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(line, sizeof line, "line %03d of the stderr of ffmpeg\n", i);
        enc_tail_add(&t, line, (size_t)n);
    }
    enc_tail_text(&t, out);
    assert_true(strlen(out) <= ENC_TAIL_SIZE);
    assert_true(strncmp(out, "line ", 5) == 0);
    assert_non_null(strstr(out, "line 199 of the stderr of ffmpeg\n"));
    assert_null(strstr(out, "line 000"));

    /* one chunk bigger than the ring */
    static char big[ENC_TAIL_SIZE * 2];
    memset(big, 'a', sizeof big);
    memcpy(big + sizeof big - 6, "\nlast\n", 6);
    enc_tail_init(&t);
    enc_tail_add(&t, big, sizeof big);
    enc_tail_text(&t, out);
    assert_string_equal(out, "last\n");
}

/* ---- classifier ---------------------------------------------------------------- */

typedef struct sample {
    const char *input;
    const char *stderr_text;
    const char *we_code;
    bool retryable;
    const char *in_reason; /* must appear in the reason */
} sample;

static const sample samples[] = {
    {"nope.mp4", "nope.mp4: No such file or directory\n", "WE-JOB-010", false,
     "nope.mp4: No such file or directory"},
    {"half.mp4",
     "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55f3b9715900] moov atom not found\n"
     "half.mp4: Invalid data found when processing input\n",
     "WE-JOB-010", false, "moov atom not found"},
    {"rnd.bin", "rnd.bin: Invalid data found when processing input\n", "WE-JOB-010", false,
     "Invalid data"},
    {"src.mp4", "Output file #0 does not contain any stream\n", "WE-JOB-010", false, "any stream"},
    {"src.mp4", "[h264 @ 0x1] corrupt decoded frame in stream 0\nConversion failed!\n",
     "WE-JOB-010", false, "corrupt decoded frame"},
    {"src.mp4", "[h264 @ 0x1] Could not find codec parameters for stream 0\n", "WE-JOB-010", false,
     "codec parameters"},
    {"src.mp4",
     "Stream map '0:s' matches no streams.\nTo ignore this, add a trailing '?' to the map.\n",
     "WE-JOB-010", false, "matches no streams"},
    {"src.mp4", "Unknown encoder 'nosuchenc'\n", "WE-JOB-012", false,
     "Unknown encoder 'nosuchenc'"},
    {"src.mp4", "Unrecognized option 'foo'.\nError splitting the argument list: Option not found\n",
     "WE-JOB-012", false, "Unrecognized option 'foo'"},
    {"src.mp4",
     "x264 [error]: invalid preset 'zzz'\n"
     "[libx264 @ 0x559c46631500] Error setting preset/tune zzz/(null).\n"
     "Error initializing output stream 0:0 -- Error while opening encoder for output stream "
     "#0:0 - maybe incorrect parameters such as bit_rate, rate, width or height\n"
     "[aac @ 0x559c4664f9c0] 2 frames left in the queue on closing\n",
     "WE-JOB-012", false, "Error setting preset"},
    {"src.mp4",
     "[AVFilterGraph @ 0x5] No such filter: 'nosuchfilter'\nError reinitializing filters!\n"
     "Failed to inject frame into filter network: Invalid argument\n",
     "WE-JOB-012", false, "No such filter"},
    {"src.mp4",
     "[NULL @ 0x5] Unable to find a suitable output format for 'o.zzz'\no.zzz: Invalid argument\n",
     "WE-JOB-012", false, "suitable output format"},
    {"src.mp4", "Unknown input format: 'foo'\n", "WE-JOB-012", false, "Unknown input format"},
    {"src.mp4", "[libx264 @ 0x5] Unable to parse option value \"abc\"\n", "WE-JOB-012", false,
     "abc"},
    /* a line naming another file is not an input error */
    {"src.mp4", "out/o.mp4: No space left on device\n", "WE-JOB-011", true, "No space left"},
    {"src.mp4", "av_interleaved_write_frame(): No space left on device\nConversion failed!\n",
     "WE-JOB-011", true, "No space left on device"},
    {"src.mp4", "", "WE-JOB-011", true, "no message on stderr"},
    {"src.mp4", "Conversion failed!\n", "WE-JOB-011", true, "no message on stderr"},
};

static void test_classify_table(void **state)
{
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        enc_verdict v;
        enc_classify(1 << 8, samples[i].stderr_text, samples[i].input, &v);
        if (strcmp(v.we_code, samples[i].we_code) != 0 || v.retryable != samples[i].retryable ||
            !strstr(v.reason, samples[i].in_reason))
            fail_msg("sample %zu: expected %s/%d with [%s], got %s/%d [%s]", i, samples[i].we_code,
                     samples[i].retryable, samples[i].in_reason, v.we_code, v.retryable, v.reason);
        assert_non_null(strstr(v.reason, "status 1"));
    }
}

static void test_classify_signals(void **state)
{
    enc_verdict v;
    /* a crash or the OOM killer: retry elsewhere, even with input-looking noise */
    enc_classify(SIGKILL, "[h264 @ 0x1] corrupt decoded frame\n", "src.mp4", &v);
    assert_string_equal(v.we_code, "WE-JOB-011");
    assert_true(v.retryable);
    assert_non_null(strstr(v.reason, "signal 9 (SIGKILL)"));
    enc_classify(SIGSEGV, NULL, "src.mp4", &v);
    assert_string_equal(v.we_code, "WE-JOB-011");
    assert_non_null(strstr(v.reason, "SIGSEGV"));
    /* the input named in a line only counts when it is this run's input */
    enc_classify(1 << 8, "src.mp4: Invalid argument\n", "src.mp4", &v);
    assert_string_equal(v.we_code, "WE-JOB-010");
    enc_classify(1 << 8, "src.mp4: Invalid argument\n", "other.mp4", &v);
    assert_string_equal(v.we_code, "WE-JOB-011");
    enc_classify(1 << 8, "src.mp4: Invalid argument\n", NULL, &v);
    assert_string_equal(v.we_code, "WE-JOB-011");
}

/* ---- arguments ------------------------------------------------------------------ */

static json_t *strings(const char *s, ...)
{
    json_t *a = json_array();
    va_list ap;
    va_start(ap, s);
    for (; s; s = va_arg(ap, const char *))
        json_array_append_new(a, json_string(s));
    va_end(ap);
    return a;
}

static void test_argv_build(void **state)
{
    json_t *in = strings("-ss", "12.0", "-t", "30.0", NULL);
    json_t *args = strings("-an", "-c:v", "libx264", NULL);
    enc_job j = {.ffmpeg = "/usr/bin/ffmpeg",
                 .input = "src.mp4",
                 .output = "/o/seg.mp4",
                 .input_args = in,
                 .args = args,
                 .overwrite = true};
    char **argv = enc_argv_build(&j);
    const char *want[] = {"/usr/bin/ffmpeg",
                          "-hide_banner",
                          "-nostdin",
                          "-nostats",
                          "-loglevel",
                          "warning",
                          "-progress",
                          "pipe:3",
                          "-stats_period",
                          "0.25",
                          "-y",
                          "-ss",
                          "12.0",
                          "-t",
                          "30.0",
                          "-i",
                          "src.mp4",
                          "-an",
                          "-c:v",
                          "libx264",
                          "/o/seg.mp4",
                          NULL};
    for (size_t i = 0; want[i]; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[sizeof want / sizeof *want - 1]);
    free(argv);

    j.input_args = j.args = NULL; /* both optional */
    j.overwrite = false;
    argv = enc_argv_build(&j);
    assert_string_equal(argv[10], "-n");
    assert_string_equal(argv[11], "-i");
    assert_string_equal(argv[13], "/o/seg.mp4");
    assert_null(argv[14]);
    free(argv);
    json_decref(in);
    json_decref(args);
}

/* encoder.stitch's command: the audio is a second -i right after the list. */
static void test_argv_build_input2(void **state)
{
    json_t *in = strings("-f", "concat", "-safe", "0", NULL);
    json_t *args = strings("-map", "0:v", "-map", "1:a", "-c", "copy", NULL);
    enc_job j = {.ffmpeg = "/usr/bin/ffmpeg",
                 .input = "/w/list.txt",
                 .input2 = "/s/audio.m4a",
                 .output = "/o/out.mp4",
                 .input_args = in,
                 .args = args,
                 .overwrite = true};
    char **argv = enc_argv_build(&j);
    const char *want[] = {"-y",   "-f",   "concat", "-safe", "0",          "-i",
                          "/w/list.txt", "-i", "/s/audio.m4a", "-map", "0:v", "-map",
                          "1:a",  "-c",   "copy",   "/o/out.mp4", NULL};
    for (size_t i = 0; want[i]; i++)
        assert_string_equal(argv[10 + i], want[i]);
    assert_null(argv[10 + sizeof want / sizeof *want - 1]);
    free(argv);
    json_decref(in);
    json_decref(args);
}

/* encoder.package: every rendition an input, one audio group shared. */
static void test_hls_stream_map(void **state)
{
    const char *names[] = {"720p-h264", "480p-h264", "360p"};
    enc_hls h = {.names = names, .n = 2, .audio = true, .hls_time = 6, .dir = "/o/L"};
    char *map = enc_hls_stream_map(&h);
    assert_string_equal(map, "v:0,agroup:aud,name:720p-h264 v:1,agroup:aud,name:480p-h264 "
                             "a:0,agroup:aud,name:audio");
    free(map);
    h.audio = false;
    h.n = 3;
    map = enc_hls_stream_map(&h);
    assert_string_equal(map, "v:0,name:720p-h264 v:1,name:480p-h264 v:2,name:360p");
    free(map);
    h.n = 1;
    map = enc_hls_stream_map(&h);
    assert_string_equal(map, "v:0,name:720p-h264");
    free(map);
}

static void test_hls_names(void **state)
{
    char why[128];
    assert_int_equal(enc_hls_name_check("720p-h264", true, why, sizeof why), 0);
    assert_int_equal(enc_hls_name_check("a.b_c", false, why, sizeof why), 0);
    assert_int_equal(enc_hls_name_check("audio", false, why, sizeof why), 0);
    assert_int_equal(enc_hls_name_check("audio", true, why, sizeof why), -1);
    assert_non_null(strstr(why, "audio rendition"));
    const char *bad[] = {"", "a b", "a,b", "a:b", "a/b", "%v", ".", "..", NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(enc_hls_name_check(bad[i], false, why, sizeof why), -1);
    char longname[66];
    memset(longname, 'x', 65);
    longname[65] = '\0';
    assert_int_equal(enc_hls_name_check(longname, false, why, sizeof why), -1);
    longname[64] = '\0';
    assert_int_equal(enc_hls_name_check(longname, false, why, sizeof why), 0);
}

static void test_hls_argv(void **state)
{
    const char *names[] = {"hi", "lo"};
    enc_hls h = {.names = names, .n = 2, .audio = true, .hls_time = 6, .dir = "/o/L"};
    json_t *args = enc_hls_args(&h), *more = strings("/s/lo.mp4", NULL);
    char *out = enc_hls_output(&h), *master = enc_hls_master(&h);
    assert_string_equal(out, "/o/L/%v/index.m3u8");
    assert_string_equal(master, "/o/L/master.m3u8");
    enc_job j = {.ffmpeg = "/usr/bin/ffmpeg",
                 .input = "/s/hi.mp4",
                 .inputs = more,
                 .output = out,
                 .result = master,
                 .args = args,
                 .overwrite = true};
    char **argv = enc_argv_build(&j);
    const char *want[] = {"-y", "-i", "/s/hi.mp4", "-i", "/s/lo.mp4", "-map", "0:v", "-map", "1:v",
                          "-map", "0:a", "-c", "copy", "-f", "hls", "-hls_time", "6",
                          "-hls_playlist_type", "vod", "-hls_segment_filename",
                          "/o/L/%v/seg_%05d.ts", "-master_pl_name", "master.m3u8",
                          "-var_stream_map",
                          "v:0,agroup:aud,name:hi v:1,agroup:aud,name:lo a:0,agroup:aud,name:audio",
                          "/o/L/%v/index.m3u8", NULL};
    for (size_t i = 0; want[i]; i++)
        assert_string_equal(argv[10 + i], want[i]);
    assert_null(argv[10 + sizeof want / sizeof *want - 1]);
    free(argv);
    json_decref(args);

    h.fmp4 = true; /* fMP4 segments, no audio, fractional target */
    h.audio = false;
    h.hls_time = 2.5;
    args = enc_hls_args(&h);
    const char *want2[] = {"-map", "0:v", "-map", "1:v", "-c", "copy", "-f", "hls", "-hls_time",
                           "2.5", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
                           "-hls_segment_filename", "/o/L/%v/seg_%05d.m4s", "-master_pl_name",
                           "master.m3u8", "-var_stream_map", "v:0,name:hi v:1,name:lo", NULL};
    assert_int_equal(json_array_size(args), sizeof want2 / sizeof *want2 - 1);
    for (size_t i = 0; want2[i]; i++)
        assert_string_equal(json_string_value(json_array_get(args, i)), want2[i]);
    json_decref(args);
    json_decref(more);
    free(out);
    free(master);
}

static void expect_quote(const char *path, const char *want)
{
    char *q = enc_concat_quote(path);
    assert_non_null(q);
    if (strcmp(q, want) != 0)
        fail_msg("quote of [%s]: expected [%s], got [%s]", path, want, q);
    free(q);
}

static void test_concat_quote(void **state)
{
    expect_quote("/a/seg_0001.mp4", "'/a/seg_0001.mp4'");
    expect_quote("/a/it's.mp4", "'/a/it'\\''s.mp4'");
    expect_quote("'", "''\\'''");
    expect_quote("''x", "''\\'''\\''x'");
    /* everything else is literal inside single quotes */
    expect_quote("/a b/c\\d\"#;$e", "'/a b/c\\d\"#;$e'");
    expect_quote("", "''");
}

static void test_concat_list(void **state)
{
    char err[128] = "";
    const char *paths[] = {"/s/seg_0000.mp4", "/s/it's here.mp4"};
    char *text = enc_concat_list(paths, 2, err, sizeof err);
    assert_non_null(text);
    assert_string_equal(text, "ffconcat version 1.0\n"
                              "file '/s/seg_0000.mp4'\n"
                              "file '/s/it'\\''s here.mp4'\n");
    free(text);

    const char *lf[] = {"/s/a.mp4", "/s/b\nfile '/etc/passwd'.mp4"};
    assert_null(enc_concat_list(lf, 2, err, sizeof err));
    assert_non_null(strstr(err, "segments[1]"));
    assert_non_null(strstr(err, "line break"));
    const char *cr[] = {"/s/a\r.mp4"};
    assert_null(enc_concat_list(cr, 1, err, sizeof err));
    assert_non_null(strstr(err, "segments[0]"));
    const char *empty[] = {""};
    assert_null(enc_concat_list(empty, 1, err, sizeof err));
    assert_non_null(strstr(err, "empty"));
    assert_null(enc_concat_list(paths, 0, err, sizeof err));
    assert_string_equal(err, "no segments");
}

static void expect_refused(json_t *arr, const char *in_msg)
{
    char err[256] = "";
    assert_int_equal(enc_args_check(arr, "args", err, sizeof err), -1);
    if (!strstr(err, in_msg))
        fail_msg("expected [%s] in [%s]", in_msg, err);
    json_decref(arr);
}

static void test_args_check(void **state)
{
    char err[256];
    json_t *ok = strings("-c:v", "libx264", "-vf", "scale=1280:720", NULL);
    assert_int_equal(enc_args_check(ok, "args", err, sizeof err), 0);
    assert_int_equal(enc_args_check(NULL, "args", err, sizeof err), 0);
    json_decref(ok);
    expect_refused(json_string("-an"), "args: must be an array");
    expect_refused(json_pack("[s, i]", "-an", 3), "args[1]: must be a string");
    expect_refused(json_pack("[s, n]", "-an"), "args[1]");
    expect_refused(json_pack("[s, o]", "-an", json_stringn("a\0b", 3)), "without NUL");
    expect_refused(strings("-an", "-i", "x.mp4", NULL), "args[1]: \"-i\" is not allowed");
    expect_refused(strings("-progress", "x", NULL), "-progress");
    expect_refused(strings("-y", NULL), "overwrite");
    expect_refused(strings("-n", NULL), "overwrite");
    json_t *many = json_array();
    for (int i = 0; i < 5000; i++)
        json_array_append_new(many, json_string("-an"));
    expect_refused(many, "at most 4096");
}

static void test_input_output_check(void **state)
{
    char err[256];
    assert_int_equal(enc_input_check("src.mp4", err, sizeof err), 0);
    assert_int_equal(enc_input_check("https://example.com/a.mp4", err, sizeof err), 0);
    assert_int_equal(enc_input_check("", err, sizeof err), -1);
    assert_int_equal(enc_input_check("-", err, sizeof err), -1);
    assert_non_null(strstr(err, "stdin"));
    assert_int_equal(enc_input_check("pipe:0", err, sizeof err), -1);
    assert_int_equal(enc_input_check("fd:0", err, sizeof err), -1);
    assert_int_equal(enc_input_check(NULL, err, sizeof err), -1);

    assert_int_equal(enc_output_check("/o/seg.mp4", err, sizeof err), 0);
    assert_int_equal(enc_output_check("file:///o/seg.mp4", err, sizeof err), 0);
    assert_int_equal(enc_output_check("-", err, sizeof err), -1);
    assert_int_equal(enc_output_check("pipe:1", err, sizeof err), -1);
    assert_non_null(strstr(err, "local file"));
    assert_int_equal(enc_output_check("rtmp://host/app/key", err, sizeof err), -1);
    assert_non_null(strstr(err, "URL"));
    assert_int_equal(enc_output_check("/o/", err, sizeof err), -1);
    assert_int_equal(enc_output_check("", err, sizeof err), -1);
}

static void test_resolve(void **state)
{
    struct {
        const char *dir, *path, *want;
    } cases[] = {
        {"/srv", "a/b.mp4", "/srv/a/b.mp4"},
        {"/srv/", "b.mp4", "/srv/b.mp4"},
        {"/work", "/abs/b.mp4", "/abs/b.mp4"},
        {"/srv", "file:b.mp4", "/srv/b.mp4"},
        {"/work", "file:///abs/b.mp4", "/abs/b.mp4"},
        {"/work", "https://h/b.mp4", "https://h/b.mp4"},
        {"/work", "concat:a.ts|b.ts", "concat:a.ts|b.ts"},
        {NULL, "b.mp4", "b.mp4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = enc_resolve(cases[i].dir, cases[i].path);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

/* The input's kind decides what FFmpeg may reach (source.c); the source's
 * options go last before the first -i; the caller may not set them. */
static void test_input_kind(void **state)
{
    static const struct {
        const char *url;
        enc_input_kind want;
    } cases[] = {
        {"src.mp4", ENC_INPUT_LOCAL},
        {"/abs/a:b.mp4", ENC_INPUT_LOCAL},
        {"out/a.mp4", ENC_INPUT_LOCAL},
        {"file:src.mp4", ENC_INPUT_LOCAL},
        {"file:///abs/src.mp4", ENC_INPUT_LOCAL},
        {"subfile.mp4", ENC_INPUT_LOCAL},
        {"http://h/a.mp4", ENC_INPUT_REMOTE},
        {"https://h:8443/a.mp4", ENC_INPUT_REMOTE},
        {"HTTP://h/a.mp4", ENC_INPUT_REFUSED},
        {"http:a.mp4", ENC_INPUT_REFUSED},
        {"concat:a.ts|b.ts", ENC_INPUT_REFUSED},
        {"subfile,,start,0,end,9,,:http://h/x", ENC_INPUT_REFUSED},
        {"gopher://h/x", ENC_INPUT_REFUSED},
        {"ftp://h/x", ENC_INPUT_REFUSED},
        {"data:video/mp4;base64,AA", ENC_INPUT_REFUSED},
        {"tcp://h:80", ENC_INPUT_REFUSED},
        {"hls+http://h/x.m3u8", ENC_INPUT_REFUSED},
        {"crypto+http://h/x", ENC_INPUT_REFUSED},
        {"async:http://h/x", ENC_INPUT_REFUSED},
        {"a:b.mp4", ENC_INPUT_REFUSED},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (enc_input_kind_of(cases[i].url) != cases[i].want)
            fail_msg("%s: expected kind %d, got %d", cases[i].url, cases[i].want,
                     enc_input_kind_of(cases[i].url));

    enc_source src = {.opts = {"-protocol_whitelist", ENC_REMOTE_PROTOCOLS, "-http_proxy",
                               "http://127.0.0.1:9", NULL}};
    json_t *in = strings("-ss", "5", NULL);
    enc_job j = {.ffmpeg = "/usr/bin/ffmpeg",
                 .input = "http://h/a.mp4",
                 .output = "/o/x.mp4",
                 .input_args = in,
                 .source = &src,
                 .overwrite = true};
    char **argv = enc_argv_build(&j);
    size_t n = 0;
    while (argv[n])
        n++;
    assert_string_equal(argv[n - 9], "-ss");
    assert_string_equal(argv[n - 7], "-protocol_whitelist");
    assert_string_equal(argv[n - 6], ENC_REMOTE_PROTOCOLS);
    assert_string_equal(argv[n - 5], "-http_proxy");
    assert_string_equal(argv[n - 4], "http://127.0.0.1:9");
    assert_string_equal(argv[n - 3], "-i");
    assert_string_equal(argv[n - 2], "http://h/a.mp4");
    free(argv);
    json_decref(in);
    expect_refused(strings("-http_proxy", "http://x", NULL), "egress policy");
    expect_refused(strings("-protocol_whitelist", "file,http,tcp", NULL), "egress policy");
    expect_refused(strings("-protocol_blacklist", "tls", NULL), "egress policy");
}

static void test_durations(void **state)
{
    struct {
        const char *s;
        double want;
    } cases[] = {
        {"90", 90}, {"1.5", 1.5},           {".5", 0.5},    {"500ms", 0.5}, {"250000us", 0.25},
        {"2s", 2},  {"01:02:03.5", 3723.5}, {"02:03", 123}, {"", -1},       {"abc", -1},
        {"-5", -1}, {"1:2:3:4", -1},        {"12x", -1},    {":30", -1},    {"1e400", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double got = enc_parse_duration(cases[i].s);
        if (got < cases[i].want - 1e-9 || got > cases[i].want + 1e-9)
            fail_msg("%s: expected %g, got %g", cases[i].s, cases[i].want, got);
    }
    assert_true(enc_parse_duration(NULL) == -1);

    json_t *in = strings("-ss", "12.0", "-t", "30.0", NULL), *none = json_array();
    json_t *out_t = strings("-c:v", "libx264", "-t", "10", NULL);
    json_t *ss_only = strings("-ss", "50", NULL), *to = strings("-ss", "10", "-to", "25", NULL);
    assert_true(enc_expected_duration(in, none, -1) == 30);
    assert_true(enc_expected_duration(in, none, 20) == 8);   /* input ends first */
    assert_true(enc_expected_duration(in, out_t, -1) == 10); /* output -t is shorter */
    assert_true(enc_expected_duration(none, none, 60) == 60);
    assert_true(enc_expected_duration(none, none, -1) <= 0); /* unknown */
    assert_true(enc_expected_duration(ss_only, none, 60) == 10);
    assert_true(enc_expected_duration(ss_only, none, 40) <= 0); /* seek past the end */
    assert_true(enc_expected_duration(to, none, 60) == 15);
    assert_string_equal(enc_args_value(in, "-t"), "30.0");
    assert_null(enc_args_value(in, "-vf"));
    json_t *dangling = strings("-t", NULL); /* an option without its value */
    assert_null(enc_args_value(dangling, "-t"));
    json_decref(dangling);
    json_decref(in);
    json_decref(none);
    json_decref(out_t);
    json_decref(ss_only);
    json_decref(to);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoders_parse),
        cmocka_unit_test(test_hwaccels_and_version),
        cmocka_unit_test(test_progress_split_reads),
        cmocka_unit_test(test_progress_out_time_keys),
        cmocka_unit_test(test_progress_na_values),
        cmocka_unit_test(test_progress_percent),
        cmocka_unit_test(test_progress_garbage),
        cmocka_unit_test(test_tail_ring),
        cmocka_unit_test(test_classify_table),
        cmocka_unit_test(test_classify_signals),
        cmocka_unit_test(test_argv_build),
        cmocka_unit_test(test_argv_build_input2),
        cmocka_unit_test(test_hls_stream_map),
        cmocka_unit_test(test_hls_names),
        cmocka_unit_test(test_hls_argv),
        cmocka_unit_test(test_concat_quote),
        cmocka_unit_test(test_concat_list),
        cmocka_unit_test(test_args_check),
        cmocka_unit_test(test_input_output_check),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_input_kind),
        cmocka_unit_test(test_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
