/*
 * What this worker can do: the FFmpeg encoders it has and the hardware
 * capabilities (cpu, nvidia, intel, amd, vaapi) that really work here.
 * Detected once at start on the main thread; read-only afterwards.
 */
#ifndef WK_CAPS_H
#define WK_CAPS_H

#include "strlist.h"
#include "we_buf.h"
#include "we_err.h"

#include <stdbool.h>

/* Runs a 1-frame test encode with encoder, on render_node (a /dev/dri path)
 * for VAAPI encoders and NULL otherwise. Returns true when it worked; may put
 * the reason for a failure into why. */
typedef bool (*wk_encode_test_fn)(void *ctx, const char *encoder, const char *render_node,
                                  we_buf *why);

typedef struct wk_caps_opts {
    const char *ffmpeg;   /* program to run, default "ffmpeg" */
    const char *dev_root; /* default "/dev" */
    const char *sys_root; /* default "/sys" */
    /* NULL: trust device files + listed encoders without a test encode */
    wk_encode_test_fn test;
    void *test_ctx;
} wk_caps_opts;

typedef struct wk_caps {
    wk_strlist capabilities; /* "cpu" first, then the hardware that works */
    wk_strlist encoders;     /* software encoders + hardware ones that passed */
    wk_strlist rejected;     /* "<encoder>: <reason>" for hardware encoders that failed */
    char *ffmpeg_version;    /* NULL when FFmpeg could not be run */
} wk_caps;

void wk_caps_init(wk_caps *c);
void wk_caps_fini(wk_caps *c);

/* Names of the video and audio encoders in the text of `ffmpeg -encoders`
 * (subtitle encoders, headers and malformed lines are skipped), appended to
 * out in listed order without duplicates. */
void wk_encoders_parse(const char *text, wk_strlist *out);

/* The version from the text of `ffmpeg -version` ("ffmpeg version 5.1.9-0+deb12u1
 * Copyright ..." -> "5.1.9-0+deb12u1") into buf. WE_ENOENT when there is none. */
int wk_ffmpeg_version_parse(const char *text, char *buf, size_t n);

/* Capabilities and usable encoders from the listed encoder names and the
 * device tree under o->dev_root / o->sys_root, running o->test for every
 * hardware encoder whose device exists. Appends to out (initialised). */
void wk_caps_detect(const wk_caps_opts *o, const wk_strlist *listed, wk_caps *out);

/* The whole detection: runs `ffmpeg -encoders` and `ffmpeg -version`, then
 * wk_caps_detect. When FFmpeg cannot be run, out still holds "cpu" and an
 * error is returned for the caller to log. WE_ESTATE on a stop request. */
int wk_caps_probe(const wk_caps_opts *o, wk_caps *out, we_err *err);

/* The real test encode: `ffmpeg -f lavfi -i color=... -frames:v 1 -c:v enc -f null -`,
 * with a VAAPI upload when render_node is set. ctx is the ffmpeg program name. */
bool wk_ffmpeg_encode_test(void *ctx, const char *encoder, const char *render_node, we_buf *why);

#endif
