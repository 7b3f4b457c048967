/*
 * encoder.probe: duration, streams and every video keyframe's PTS of a
 * source, with libavformat reading packets only.
 *
 * Design (reference/deps.md §5): no decoding. avformat_open_input reads the
 * header; every stream but the first video stream is set to AVDISCARD_ALL so
 * the demuxer skips their data; an av_read_frame loop counts the video
 * packets and keeps pkt->pts × time_base of each AV_PKT_FLAG_KEY packet (dts
 * when pts is missing) — the same numbers as ffprobe's packet pts_time, at
 * about twice its speed. Only the keyframe list is kept, never the packets.
 * avformat_find_stream_info is NOT called for containers whose header says
 * it all (MP4/MOV/MKV): it decodes frames. It is called only when the header
 * pass leaves the video stream without codec parameters (no dimensions, or no
 * codec at all) or finds no stream — MPEG-TS and raw elementary streams,
 * whose parameters live in the packets. The packets it reads stay buffered
 * inside libavformat and come out of av_read_frame, so the scan still sees
 * every packet from the start.
 *
 * Cancellation: an AVIOInterruptCB asks we_plugin_cancelled(), so a blocked
 * network read aborts with AVERROR_EXIT; the loop also checks every 256
 * packets. Errors opening or reading the input are bad input (WE-JOB-010,
 * not retryable) unless the input is remote and the error looks like a
 * network hiccup, or memory ran out (WE-JOB-011, retryable); a destination
 * the egress proxy refused is WE-JOB-010 and says so.
 *
 * Egress (source.c): the open gets "protocol_whitelist" (no network for a
 * local file) and, for a remote input, "http_proxy" naming the call's
 * proxy; libavformat passes both on to redirects and nested opens.
 *
 * Threads: runs on an SDK pool thread; each call has its own context.
 */
#include "encoder.h"

#include "webencode/plugin.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <stdlib.h>
#include <string.h>

#define CANCEL_CHECK_EVERY 256

typedef struct scan {
    double *kf; /* keyframe PTS, seconds */
    size_t n, cap;
    int64_t packets; /* video packets */
    int64_t read;    /* packets of any stream */
    char error[192]; /* a read error that ended the scan early, or "" */
} scan;

static int interrupt_cb(void *opaque)
{
    return we_plugin_cancelled(opaque);
}

/* Network trouble may pass; everything else is the input's fault. A local
 * file's EIO is not retried: demuxers use it for "gave up on these bytes"
 * (random data opens as the extension-guessed "bin" demuxer, then fails
 * to read with EIO). */
static bool av_error_retryable(int err, bool remote)
{
    static const int transient[] = {EIO,          ETIMEDOUT,   ECONNREFUSED, ECONNRESET,
                                    EHOSTUNREACH, ENETUNREACH, EAGAIN};
    if (err == AVERROR(ENOMEM))
        return true;
    for (size_t i = 0; remote && i < sizeof transient / sizeof *transient; i++)
        if (err == AVERROR(transient[i]))
            return true;
    return remote && err == AVERROR_HTTP_SERVER_ERROR;
}

static int fail_av(we_plugin_call *call, const char *url, const enc_source *src, const char *what,
                   int err)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    if (err == AVERROR_EXIT || we_plugin_cancelled(call))
        return we_plugin_fail_code(call, WE_RPC_CANCELLED, "probe cancelled");
    av_strerror(err, msg, sizeof msg);
    if (enc_source_refused(call, src, msg) < 0)
        return -1;
    bool retry = av_error_retryable(err, enc_is_remote(url));
    const char *detail = enc_av_last();
    return we_plugin_fail(call, retry ? "WE-JOB-011" : "WE-JOB-010", retry, "%s: %s%s%s%s", what,
                          msg, detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

static int open_input(we_plugin_call *call, const char *url, const enc_source *src,
                      AVFormatContext **out)
{
    AVDictionary *opts = NULL;
    AVFormatContext *f = avformat_alloc_context();
    bool remote = src && src->remote;
    if (!f || av_dict_set(&opts, "protocol_whitelist",
                          remote ? ENC_REMOTE_PROTOCOLS : ENC_LOCAL_PROTOCOLS, 0) < 0 ||
        (remote && av_dict_set(&opts, "http_proxy", enc_egress_url(src->egress), 0) < 0)) {
        avformat_free_context(f);
        av_dict_free(&opts);
        return AVERROR(ENOMEM);
    }
    f->interrupt_callback.callback = interrupt_cb;
    f->interrupt_callback.opaque = call;
    int rc = avformat_open_input(&f, url, NULL, &opts); /* frees f on failure */
    av_dict_free(&opts);
    *out = rc < 0 ? NULL : f;
    return rc;
}

/* The first real video stream (cover art is not one), or -1. */
static int first_video(const AVFormatContext *f)
{
    for (unsigned i = 0; i < f->nb_streams; i++) {
        const AVStream *st = f->streams[i];
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
            !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            return (int)i;
    }
    return -1;
}

/* True when the header pass left what probe reports unknown (see top). */
static bool needs_stream_info(const AVFormatContext *f)
{
    if (f->nb_streams == 0)
        return true;
    for (unsigned i = 0; i < f->nb_streams; i++)
        if (f->streams[i]->codecpar->codec_id == AV_CODEC_ID_NONE)
            return true;
    int vi = first_video(f);
    return vi >= 0 &&
           (f->streams[vi]->codecpar->width <= 0 || f->streams[vi]->codecpar->height <= 0);
}

static int push_keyframe(scan *s, double t)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *nk = realloc(s->kf, cap * sizeof *nk);
        if (!nk)
            return AVERROR(ENOMEM);
        s->kf = nk;
        s->cap = cap;
    }
    s->kf[s->n++] = t;
    return 0;
}

static int on_packet(const AVPacket *pkt, const AVStream *st, scan *s)
{
    s->packets++;
    if (!(pkt->flags & AV_PKT_FLAG_KEY))
        return 0;
    int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    return ts == AV_NOPTS_VALUE ? 0 : push_keyframe(s, (double)ts * av_q2d(st->time_base));
}

/* Reads every packet; 0 at end of file, else an AVERROR. */
static int scan_packets(we_plugin_call *call, AVFormatContext *f, int vi, scan *s)
{
    AVPacket *pkt = av_packet_alloc();
    int rc = pkt ? 0 : AVERROR(ENOMEM);
    for (int64_t n = 1; rc == 0; n++) {
        if (n % CANCEL_CHECK_EVERY == 0 && we_plugin_cancelled(call)) {
            rc = AVERROR_EXIT;
            break;
        }
        rc = av_read_frame(f, pkt);
        s->read += rc == 0;
        if (rc == 0 && pkt->stream_index == vi)
            rc = on_packet(pkt, f->streams[vi], s);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    return rc == AVERROR_EOF ? 0 : rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- result ------------------------------------------------------------------ */

static json_t *seconds_or_null(int64_t ts, AVRational tb)
{
    return ts == AV_NOPTS_VALUE ? json_null() : json_real((double)ts * av_q2d(tb));
}

static json_t *positive_or_null(int64_t v)
{
    return v > 0 ? json_integer(v) : json_null();
}

static const char *type_name(enum AVMediaType t)
{
    switch (t) {
    case AVMEDIA_TYPE_VIDEO:
        return "video";
    case AVMEDIA_TYPE_AUDIO:
        return "audio";
    case AVMEDIA_TYPE_SUBTITLE:
        return "subtitle";
    default:
        return "data";
    }
}

static json_t *fps_json(const AVStream *st)
{
    AVRational r =
        st->avg_frame_rate.num && st->avg_frame_rate.den ? st->avg_frame_rate : st->r_frame_rate;
    return r.num > 0 && r.den > 0 ? json_real(av_q2d(r)) : json_null();
}

static json_t *stream_json(const AVStream *st)
{
    const AVCodecParameters *cp = st->codecpar;
    bool video = cp->codec_type == AVMEDIA_TYPE_VIDEO, audio = cp->codec_type == AVMEDIA_TYPE_AUDIO;
    char tb[48];
    snprintf(tb, sizeof tb, "%d/%d", st->time_base.num, st->time_base.den);
    return json_pack("{s:i, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o}", "index", st->index,
                     "type", type_name(cp->codec_type), "codec", avcodec_get_name(cp->codec_id),
                     "width", video ? positive_or_null(cp->width) : json_null(), "height",
                     video ? positive_or_null(cp->height) : json_null(), "fps",
                     video ? fps_json(st) : json_null(), "time_base", tb, "sample_rate",
                     audio ? positive_or_null(cp->sample_rate) : json_null(), "channels",
                     audio ? positive_or_null(cp->ch_layout.nb_channels) : json_null(), "bit_rate",
                     positive_or_null(cp->bit_rate), "duration_s",
                     seconds_or_null(st->duration, st->time_base));
}

/* Container duration, else the longest stream's; seconds or -1. */
static double duration_s(const AVFormatContext *f)
{
    if (f->duration != AV_NOPTS_VALUE && f->duration > 0)
        return (double)f->duration / AV_TIME_BASE;
    double best = -1;
    for (unsigned i = 0; i < f->nb_streams; i++) {
        const AVStream *st = f->streams[i];
        if (st->duration != AV_NOPTS_VALUE)
            best = enc_max(best, (double)st->duration * av_q2d(st->time_base));
    }
    return best;
}

static json_t *start_json(const AVFormatContext *f)
{
    if (f->start_time != AV_NOPTS_VALUE)
        return json_real((double)f->start_time / AV_TIME_BASE);
    int vi = first_video(f);
    return vi < 0 ? json_null()
                  : seconds_or_null(f->streams[vi]->start_time, f->streams[vi]->time_base);
}

static json_t *result_json(AVFormatContext *f, int vi, const scan *s)
{
    int64_t size = f->pb ? avio_size(f->pb) : -1;
    double dur = duration_s(f);
    int64_t br = f->bit_rate;
    if (br <= 0 && size > 0 && dur > 0)
        br = (int64_t)((double)size * 8 / dur);
    json_t *streams = json_array(), *kf = json_array();
    for (unsigned i = 0; i < f->nb_streams; i++)
        json_array_append_new(streams, stream_json(f->streams[i]));
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(kf, json_real(s->kf[i]));
    return json_pack("{s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o}", "duration_s",
                     dur >= 0 ? json_real(dur) : json_null(), "start_time_s", start_json(f),
                     "format", f->iformat->name, "bit_rate", positive_or_null(br), "size_bytes",
                     size >= 0 ? json_integer(size) : json_null(), "streams", streams,
                     "video_stream", vi >= 0 ? json_integer(vi) : json_null(), "keyframes_s", kf,
                     "frame_count", (json_int_t)s->packets, "read_error",
                     s->error[0] ? json_string(s->error) : json_null());
}

/* ---- the method ---------------------------------------------------------- */

/* Like ffmpeg and ffprobe, a read error after some packets ends the input
 * (reported as read_error) — unless nothing was read, the call was
 * cancelled, or a network read failed and a retry may get the whole file. */
static bool read_error_is_eof(we_plugin_call *call, const char *url, int err, scan *s)
{
    if (s->read == 0 || err == AVERROR_EXIT || we_plugin_cancelled(call) ||
        av_error_retryable(err, enc_is_remote(url)))
        return false;
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(err, msg, sizeof msg);
    snprintf(s->error, sizeof s->error, "%s after %lld packets", msg, (long long)s->read);
    return true;
}

static void discard_all_but(AVFormatContext *f, int vi)
{
    for (unsigned i = 0; i < f->nb_streams; i++)
        f->streams[i]->discard = (int)i == vi ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
}

int enc_probe_url(we_plugin_call *call, const char *url, const enc_source *src, json_t **result)
{
    AVFormatContext *f = NULL;
    scan s = {0};
    enc_av_clear();
    int rc = open_input(call, url, src, &f);
    if (rc < 0) {
        rc = fail_av(call, url, src, "cannot open input", rc);
        goto done;
    }
    if (needs_stream_info(f) && (rc = avformat_find_stream_info(f, NULL)) < 0) {
        rc = fail_av(call, url, src, "cannot read stream parameters", rc);
        goto done;
    }
    int vi = first_video(f);
    discard_all_but(f, vi);
    /* no video: nothing to scan (every packet would be skipped) */
    if (vi >= 0 && (rc = scan_packets(call, f, vi, &s)) < 0 &&
        !read_error_is_eof(call, url, rc, &s)) {
        rc = fail_av(call, url, src, "cannot read input", rc);
        goto done;
    }
    if (s.n > 1) /* qsort(NULL, 0, …) is undefined */
        qsort(s.kf, s.n, sizeof *s.kf, cmp_double);
    *result = result_json(f, vi, &s);
    rc = *result ? 0 : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
done:
    avformat_close_input(&f);
    free(s.kf);
    return rc;
}

/* The url param, checked, its source opened into *src (classified as
 * given, before resolving) and resolved against work_dir; NULL after
 * failing. */
static char *url_param(we_plugin_call *call, json_t *params, const char *field, enc_source *src)
{
    json_t *v = json_object_get(params, field);
    const char *s = json_string_value(v);
    char why[256];
    if (!v) {
        we_plugin_fail_params(call, "%s: missing (a string is required)", field);
        return NULL;
    }
    if (!s || strlen(s) != json_string_length(v)) {
        we_plugin_fail_params(call, "%s: must be a string (without NUL bytes)", field);
        return NULL;
    }
    if (enc_input_check(s, why, sizeof why) < 0) {
        we_plugin_fail_params(call, "%s: %s", field, why);
        return NULL;
    }
    if (enc_source_open(call, s, src) < 0)
        return NULL;
    enc_state *st = we_plugin_state(call);
    char *url = enc_resolve(st->work_dir, s);
    if (!url)
        we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
    return url;
}

int enc_method_probe(we_plugin_call *call, json_t *params, json_t **result)
{
    enc_source src = {0};
    char *url = url_param(call, params, "url", &src);
    int rc = url ? enc_probe_url(call, url, &src, result) : -1;
    enc_source_close(&src);
    free(url);
    return rc;
}

double enc_probe_duration(we_plugin_call *call, const char *url, const enc_source *src)
{
    AVFormatContext *f = NULL;
    double d = -1;
    if (open_input(call, url, src, &f) < 0)
        return -1;
    d = duration_s(f);
    if (d <= 0 && avformat_find_stream_info(f, NULL) >= 0)
        d = duration_s(f);
    avformat_close_input(&f);
    return d;
}
