/*
 * encoder-ffmpeg: the plugin's internal interfaces (not part of the SDK).
 *
 * The pure parts — capability text parsers (caps.c), the -progress parser
 * (progress.c), the stderr tail and exit classifier (classify.c), argument
 * validation and argv building (args.c), the concat list (concat.c), the
 * HLS packaging options (hls.c) —
 * depend only on libc and jansson, so tests/unit/test_encoder_ffmpeg.c
 * includes their .c files directly; the egress proxy (egress.c, egress.h)
 * needs only libc and pthreads and has tests/unit/test_egress.c. The rest
 * (spawn.c, run.c, probe.c, source.c, transcode.c, stitch.c, package.c,
 * capabilities.c, main.c) talks to processes, libavformat and the SDK.
 */
#ifndef ENCODER_FFMPEG_H
#define ENCODER_FFMPEG_H

#include "egress.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The build links no libm: these stand in for fmin/fmax. */
static inline double enc_min(double a, double b)
{
    return a < b ? a : b;
}

static inline double enc_max(double a, double b)
{
    return a > b ? a : b;
}

/* ---- plugin state (main.c) ---------------------------------------------- */

typedef struct enc_state {
    char *ffmpeg;      /* as configured ("ffmpeg" or a path) */
    char *ffmpeg_path; /* resolved absolute path, NULL when not found */
    char *work_dir;    /* ffmpeg's cwd; relative paths resolve against it */
    int kill_grace_ms; /* SIGTERM → SIGKILL delay on cancel, 0..1000 */
    pthread_mutex_t caps_mu;
    json_t *caps; /* encoder.capabilities result, cached; NULL until first call */
    enc_egress_policy policy; /* where remote inputs may connect (source.c) */
} enc_state;

/* ---- capability text (caps.c) ------------------------------------------- */

/* Appends to names (a JSON array) every encoder name of `ffmpeg -encoders`
 * output, in order. Lines before the " ------" separator are ignored. */
void enc_encoders_parse(const char *text, json_t *names);
/* Appends every method of `ffmpeg -hwaccels` output. */
void enc_hwaccels_parse(const char *text, json_t *names);
/* The version word of `ffmpeg -version` ("5.1.9-0+deb12u1") into buf; 0, or
 * -1 when the text does not start with "ffmpeg version ". */
int enc_version_parse(const char *text, char *buf, size_t n);

/* ---- -progress key=value blocks (progress.c) ------------------------------ */

typedef struct enc_progress_snap {
    int64_t frame;     /* -1 until known */
    double fps;        /* -1 until known */
    double speed;      /* -1 until known (ffmpeg says N/A early on) */
    double out_time_s; /* -1 until known */
    bool end;          /* this block said progress=end */
} enc_progress_snap;

typedef struct enc_progress {
    char line[256]; /* the unfinished line across reads */
    size_t len;
    bool skipping;          /* the current line overflowed: drop it */
    enc_progress_snap cur;  /* the block being read */
    enc_progress_snap last; /* the last complete block */
    int blocks;             /* complete blocks so far */
    double duration_s;      /* expected output duration; <= 0 unknown */
    double percent;         /* monotonic, capped at 99.9 */
} enc_progress;

void enc_progress_init(enc_progress *p, double duration_s);
/* Feeds bytes read from the progress pipe; returns how many blocks this
 * chunk completed (p->last holds the newest, p->percent its percent). */
int enc_progress_feed(enc_progress *p, const char *data, size_t n);

/* ---- stderr tail and exit classification (classify.c) --------------------- */

#define ENC_TAIL_SIZE 4096

typedef struct enc_tail {
    char buf[ENC_TAIL_SIZE];
    size_t start, len; /* ring: len bytes from start */
    bool wrapped;      /* bytes were dropped: the first line is partial */
} enc_tail;

void enc_tail_init(enc_tail *t);
void enc_tail_add(enc_tail *t, const char *data, size_t n);
/* The kept text, NUL-terminated, without a partial first line: out must hold
 * ENC_TAIL_SIZE + 1 bytes. */
void enc_tail_text(const enc_tail *t, char *out);

typedef struct enc_verdict {
    const char *we_code; /* "WE-JOB-010" | "WE-JOB-011" | "WE-JOB-012" */
    bool retryable;
    char reason[640]; /* FFmpeg's words, for the error message */
} enc_verdict;

/* Classifies a failed ffmpeg run: status as from waitpid (not a zero exit,
 * not a kill the plugin sent), the stderr tail and the input name (lines
 * "<input>: …" are errors opening the input). */
void enc_classify(int status, const char *tail, const char *input, enc_verdict *v);

/* ---- where an input may reach (args.c, source.c) ---------------------------- */

/* FFmpeg protocols a local input may use (HLS AES keys are crypto+file) … */
#define ENC_LOCAL_PROTOCOLS "file,crypto"
/* … and a remote one: http over the egress proxy, https as tls over
 * httpproxy (CONNECT), both over tcp to the proxy; never file. */
#define ENC_REMOTE_PROTOCOLS "http,https,tcp,tls,httpproxy,crypto"

typedef enum enc_input_kind {
    ENC_INPUT_LOCAL,   /* a path, or file: */
    ENC_INPUT_REMOTE,  /* http:// or https:// */
    ENC_INPUT_REFUSED, /* any other FFmpeg protocol (concat:, subfile, ftp:, data:, …) */
} enc_input_kind;

/* What url is to FFmpeg, by its protocol prefix. */
enc_input_kind enc_input_kind_of(const char *url);

/* One call's input: for a remote one, the call's own egress proxy. */
typedef struct enc_source {
    bool remote;
    enc_egress *egress;  /* remote: the call's proxy, else NULL */
    const char *opts[5]; /* ffmpeg input options the plugin owns, NULL-terminated:
                            -protocol_whitelist W [-http_proxy URL] */
} enc_source;

/* ---- arguments (args.c) ---------------------------------------------------- */

typedef struct enc_job {
    const char *ffmpeg; /* argv[0] */
    const char *input;  /* after -i */
    const char *input2; /* a second -i, or NULL */
    json_t *inputs;     /* more -i after those (array of strings, borrowed), or NULL */
    const char *output; /* last */
    const char *result; /* the file that must exist after a zero exit and is
                           deleted after a failed run; NULL: output */
    json_t *input_args; /* array of strings or NULL (borrowed) */
    json_t *args;       /* array of strings or NULL (borrowed) */
    const enc_source *source; /* the first input's policy (its opts go right
                                 before its -i), or NULL */
    bool overwrite;
} enc_job;

/* Checks that arr (a field named field) is NULL or an array of at most 4096
 * strings without NUL bytes and without the options the plugin owns (-i,
 * -progress, -http_proxy, -protocol_whitelist, …). 0, or -1 with a message
 * naming the element in err. */
int enc_args_check(json_t *arr, const char *field, char *err, size_t n);
/* 0 when path is usable as the output file; -1 and why in err. */
int enc_output_check(const char *path, char *err, size_t n);
/* 0 when url is usable as an input; -1 and why in err. */
int enc_input_check(const char *url, char *err, size_t n);
/* path made absolute against dir when it is a relative local path (a
 * "file:" prefix dropped); URLs with another protocol unchanged. New string. */
char *enc_resolve(const char *dir, const char *path);
/* True for a URL read over the network (scheme:// other than file://). */
bool enc_is_remote(const char *url);
/* A NULL-terminated argv (new array; the strings are borrowed from j). */
char **enc_argv_build(const enc_job *j);
/* Parses an FFmpeg duration ("90", "1.5", "01:02:03.5", "500ms"); seconds,
 * or -1 when it is not one. */
double enc_parse_duration(const char *s);
/* The value following the last `opt` in arr, or NULL. */
const char *enc_args_value(json_t *arr, const char *opt);
/* Expected output duration from -ss/-t/-to in the arguments and the input's
 * duration (<= 0 unknown); <= 0 when it cannot be told. */
double enc_expected_duration(json_t *input_args, json_t *args, double input_s);

/* ---- concat demuxer list (concat.c) ----------------------------------------- */

/* path in single quotes as the concat demuxer reads it, each ' written as
 * '\'' (new string; NULL when out of memory). */
char *enc_concat_quote(const char *path);
/* "ffconcat version 1.0\n" and a "file '<path>'\n" line per path (new
 * string), or NULL with why in err: no paths, an empty path, or one holding
 * CR/LF (the demuxer reads lines), or out of memory. */
char *enc_concat_list(const char *const *paths, size_t n, char *err, size_t errn);

/* ---- HLS packaging (hls.c) -------------------------------------------------- */

#define ENC_HLS_MAX_VARIANTS 16
#define ENC_HLS_AUDIO_NAME "audio" /* the audio rendition's directory */

typedef struct enc_hls {
    const char *const *names; /* one per video input, in input order */
    size_t n;
    bool audio;      /* map the first input's audio as one shared group */
    double hls_time; /* target segment length, seconds */
    bool fmp4;       /* fMP4 segments (.m4s + init) instead of MPEG-TS */
    const char *dir; /* the output directory (absolute, no '%') */
} enc_hls;

/* 0 when name can be a variant's name (and directory): 1 to 64 of
 * [A-Za-z0-9._-], not "." or "..", not "audio" when audio is mapped;
 * -1 and why in err. */
int enc_hls_name_check(const char *name, bool audio, char *err, size_t n);
/* -var_stream_map's value: "v:0,agroup:aud,name:N0 v:1,... a:0,agroup:aud,
 * name:audio", or "v:0,name:N0 v:1,name:N1" without audio (new string). */
char *enc_hls_stream_map(const enc_hls *h);
/* The output options (new array): -map i:v per input [-map 0:a] -c copy
 * -f hls -hls_time T -hls_playlist_type vod [-hls_segment_type fmp4]
 * -hls_segment_filename DIR/%v/seg_%05d.ts|m4s -master_pl_name master.m3u8
 * -var_stream_map MAP; NULL when out of memory. */
json_t *enc_hls_args(const enc_hls *h);
/* "DIR/%v/index.m3u8", the muxer's output pattern, and "DIR/master.m3u8"
 * (new strings). */
char *enc_hls_output(const enc_hls *h);
char *enc_hls_master(const enc_hls *h);

/* ---- processes (spawn.c) --------------------------------------------------- */

typedef struct enc_child {
    pid_t pid;
    int out_fd;  /* read end of the child's stdout, or -1 */
    int err_fd;  /* read end of the child's stderr, or -1 */
    int prog_fd; /* read end of the child's fd 3, or -1 */
} enc_child;

/* Starts argv[0] (an absolute path) in its own process group with cwd dir,
 * stdin from /dev/null, and pipes for stdout/stderr/fd 3 as asked (the
 * others go to /dev/null). The child is killed if this thread exits.
 * 0, or an errno value. */
int enc_spawn(char *const argv[], const char *dir, bool want_out, bool want_err, bool want_fd3,
              enc_child *c);
/* Closes whatever pipe ends remain open. */
void enc_child_close(enc_child *c);
/* Runs argv to completion capturing stdout (up to cap bytes, NUL-terminated
 * new string in *out); gives up after timeout_ms, killing the group.
 * Returns the exit status (>= 0) or -1. */
int enc_run_capture(char *const argv[], const char *dir, size_t cap, int timeout_ms, char **out);
int64_t enc_mono_ms(void);

/* ---- one ffmpeg run under a call (run.c) ------------------------------------ */

struct we_plugin_call;

typedef struct enc_run_stats {
    int64_t size_bytes; /* of the output */
    int64_t frames;     /* ffmpeg's last frame= */
    double out_time_s;  /* ffmpeg's last out_time */
    double elapsed_s, speed;
} enc_run_stats;

/* Creates path's parent directories; refuses an existing path unless
 * overwrite. 0, or -1 after failing the call. */
int enc_prepare_output(struct we_plugin_call *call, const char *path, bool overwrite);
/* Runs job (job->ffmpeg the resolved program) in work_dir, sending $/progress
 * against expected_s (<= 0 unknown) and obeying cancellation. 0 with *out
 * when ffmpeg exited 0 and left a non-empty output (job->result when set:
 * *out describes that file); otherwise it is deleted and the call failed (what names it: "transcode cancelled; …"),
 * returning -1. */
int enc_run(struct we_plugin_call *call, const enc_job *job, double expected_s, const char *what,
            enc_run_stats *out);

/* ---- the input's egress (source.c) ------------------------------------------- */

/* Sets up src for url: local inputs get ENC_LOCAL_PROTOCOLS; remote ones
 * ENC_REMOTE_PROTOCOLS and a proxy of their own under the state's policy;
 * other protocols fail the call (WE-JOB-010, before anything is opened).
 * 0, or -1 after failing the call. enc_source_close releases it. */
int enc_source_open(struct we_plugin_call *call, const char *url, enc_source *src);
void enc_source_close(enc_source *src);
/* When src's proxy refused a destination: fails the call (WE-JOB-010, not
 * retryable) naming the address and the settings that would allow it,
 * with detail (FFmpeg's words) appended, and returns -1; else 0. src may be
 * NULL. */
int enc_source_refused(struct we_plugin_call *call, const enc_source *src, const char *detail);
/* The process-wide proxy that the http_proxy environment variable names,
 * for opens that do not pass the call's proxy on (a demuxer opening a
 * nested URL by itself): started by main() before any thread, with
 * no_proxy unset, so libavformat in this process and every ffmpeg child
 * use it; its policy is set at init. 0 or an errno value. */
int enc_egress_global_start(void);
void enc_egress_global_policy(const enc_egress_policy *policy);
void enc_egress_global_stop(void);

/* ---- methods --------------------------------------------------------------- */

int enc_method_capabilities(struct we_plugin_call *call, json_t *params, json_t **result);
int enc_method_probe(struct we_plugin_call *call, json_t *params, json_t **result);
int enc_method_transcode(struct we_plugin_call *call, json_t *params, json_t **result);
int enc_method_stitch(struct we_plugin_call *call, json_t *params, json_t **result);
int enc_method_package(struct we_plugin_call *call, json_t *params, json_t **result);
/* The string param name into *out; -1 after failing the call when it is
 * missing, not a string, or holds a NUL (transcode.c). */
int enc_param_string(struct we_plugin_call *call, json_t *params, const char *name,
                     const char **out);
/* encoder.probe's result for url (resolved) into *result; -1 after failing
 * the call (probe.c). src: url's source (enc_source_open), or NULL for a
 * local file of the plugin's own. */
int enc_probe_url(struct we_plugin_call *call, const char *url, const enc_source *src,
                  json_t **result);
/* Input duration in seconds by opening it with libavformat (no packet scan);
 * -1 when unknown. Used for percent when the caller gave no duration. src
 * as for enc_probe_url. */
double enc_probe_duration(struct we_plugin_call *call, const char *url, const enc_source *src);
/* The last libav* error logged on this thread ("" if none since the last
 * enc_av_clear()): FFmpeg's detail behind a bare AVERROR (main.c). */
const char *enc_av_last(void);
void enc_av_clear(void);

#endif
