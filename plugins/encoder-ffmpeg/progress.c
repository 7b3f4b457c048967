/*
 * Parser for FFmpeg's `-progress` output: blocks of key=value lines, each
 * block ended by `progress=continue` or `progress=end`.
 *
 * Design: bytes arrive in arbitrary chunks from a pipe, so an unfinished line
 * is carried over to the next feed; a line longer than the buffer is dropped
 * (no key we read is that long). Keys read: frame, fps, speed ("1.23x"),
 * out_time_us, out_time_ms and out_time. In FFmpeg 5.1 out_time_ms is
 * microseconds too (mislabelled upstream), so both are taken as µs, the
 * _us one winning. "N/A" (and other unparsable values) keep the previous
 * value. Percent is out_time / expected duration, never decreasing and
 * capped at 99.9: only a zero exit of ffmpeg makes it 100, and that is the
 * caller's call, not the parser's.
 *
 * Threads: an enc_progress belongs to the one call that feeds it.
 */
#include "encoder.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PERCENT_CAP 99.9

static void snap_reset(enc_progress_snap *s)
{
    s->frame = -1;
    s->fps = -1;
    s->speed = -1;
    s->out_time_s = -1;
    s->end = false;
}

void enc_progress_init(enc_progress *p, double duration_s)
{
    memset(p, 0, sizeof *p);
    snap_reset(&p->cur);
    snap_reset(&p->last);
    p->duration_s = duration_s;
}

/* A finite number filling all of s (a trailing 'x' allowed for speed). */
static bool parse_num(const char *s, bool allow_x, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v))
        return false;
    if (allow_x && *end == 'x')
        end++;
    if (*end)
        return false;
    *out = v;
    return true;
}

/* "HH:MM:SS.micro" → seconds. */
static bool clock_seconds(const char *s, double *out)
{
    double v = enc_parse_duration(s);
    if (v < 0 || !strchr(s, ':'))
        return false;
    *out = v;
    return true;
}

static void block_done(enc_progress *p, bool end)
{
    enc_progress_snap *c = &p->cur;
    c->end = end;
    /* a value missing from this block (N/A) keeps the last one */
    if (c->frame < 0)
        c->frame = p->last.frame;
    if (c->fps < 0)
        c->fps = p->last.fps;
    if (c->speed < 0)
        c->speed = p->last.speed;
    if (c->out_time_s < 0)
        c->out_time_s = p->last.out_time_s;
    p->last = *c;
    p->blocks++;
    if (p->duration_s > 0 && c->out_time_s >= 0) {
        double pct = enc_min(c->out_time_s / p->duration_s * 100.0, PERCENT_CAP);
        if (pct > p->percent)
            p->percent = pct;
    }
    snap_reset(&p->cur);
}

/* One complete line; returns 1 when it ended a block. */
static int on_line(enc_progress *p, char *line)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return 0;
    *eq = '\0';
    const char *k = line, *v = eq + 1;
    double d;
    if (strcmp(k, "progress") == 0) {
        block_done(p, strcmp(v, "end") == 0);
        return 1;
    }
    if (strcmp(k, "frame") == 0 && parse_num(v, false, &d) && d >= 0)
        p->cur.frame = (int64_t)d;
    else if (strcmp(k, "fps") == 0 && parse_num(v, false, &d) && d >= 0)
        p->cur.fps = d;
    else if (strcmp(k, "speed") == 0 && parse_num(v, true, &d) && d >= 0)
        p->cur.speed = d;
    else if (strcmp(k, "out_time_us") == 0 && parse_num(v, false, &d))
        p->cur.out_time_s = enc_max(d / 1e6, 0);
    else if (strcmp(k, "out_time_ms") == 0 && parse_num(v, false, &d) && p->cur.out_time_s < 0)
        p->cur.out_time_s = enc_max(d / 1e6, 0); /* µs despite the name */
    else if (strcmp(k, "out_time") == 0 && p->cur.out_time_s < 0 && clock_seconds(v, &d))
        p->cur.out_time_s = d;
    return 0;
}

static int take_line(enc_progress *p)
{
    int done = 0;
    if (!p->skipping) {
        if (p->len > 0 && p->line[p->len - 1] == '\r')
            p->len--;
        p->line[p->len] = '\0';
        done = on_line(p, p->line);
    }
    p->len = 0;
    p->skipping = false;
    return done;
}

int enc_progress_feed(enc_progress *p, const char *data, size_t n)
{
    int blocks = 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            blocks += take_line(p);
        } else if (p->len + 1 < sizeof p->line) {
            p->line[p->len++] = data[i];
        } else {
            p->skipping = true;
        }
    }
    return blocks;
}
