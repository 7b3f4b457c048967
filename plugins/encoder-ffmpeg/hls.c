/*
 * encoder.package's FFmpeg options: one HLS packaging run that copies every
 * rendition's video (and the first rendition's audio, once) into segments
 * and writes a variant playlist per rendition plus the master playlist.
 *
 * Design: the renditions are inputs 0..n-1 of one ffmpeg, so the hls muxer
 * sees them all and writes the master itself (BANDWIDTH, RESOLUTION and the
 * audio group from the real streams). -var_stream_map gives each video
 * stream its own variant named after the rendition (the name is the
 * variant's directory: DIR/<name>/index.m3u8 and DIR/<name>/seg_NNNNN.ts),
 * and, when there is audio, one more audio-only variant "audio" in the
 * group "aud" that every video variant references, so the audio is stored
 * once. Names are held to profile-id characters, which the map syntax
 * (space, ',' and ':' are separators) and the %v path substitution take as
 * they are. Keyframes are the encoder's: the renditions were encoded with
 * the same GOP and segment boundaries, so -hls_time cuts them at the same
 * times.
 *
 * Threads: no state.
 */
#include "encoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 64

int enc_hls_name_check(const char *name, bool audio, char *err, size_t n)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > NAME_MAX_LEN ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len) {
        snprintf(err, n, "must be 1 to %d of [A-Za-z0-9._-]", NAME_MAX_LEN);
        return -1;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(err, n, "\"%s\" cannot be a directory name", name);
        return -1;
    }
    if (audio && strcmp(name, ENC_HLS_AUDIO_NAME) == 0) {
        snprintf(err, n, "\"%s\" is the audio rendition's name", ENC_HLS_AUDIO_NAME);
        return -1;
    }
    return 0;
}

char *enc_hls_stream_map(const enc_hls *h)
{
    size_t cap = 64;
    for (size_t i = 0; i < h->n; i++)
        cap += strlen(h->names[i]) + 40;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < h->n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%sv:%zu,%sname:%s", i ? " " : "", i,
                               h->audio ? "agroup:aud," : "", h->names[i]);
    if (h->audio)
        snprintf(s + at, cap - at, " a:0,agroup:aud,name:%s", ENC_HLS_AUDIO_NAME);
    return s;
}

static void push(json_t *a, const char *s)
{
    json_array_append_new(a, json_string(s));
}

/* A new string: dir + suffix. */
static char *join(const char *dir, const char *suffix)
{
    size_t n = strlen(dir) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", dir, suffix);
    return s;
}

static void push_maps(json_t *a, const enc_hls *h)
{
    char map[32];
    for (size_t i = 0; i < h->n; i++) {
        snprintf(map, sizeof map, "%zu:v", i);
        push(a, "-map");
        push(a, map);
    }
    if (h->audio) {
        push(a, "-map");
        push(a, "0:a");
    }
}

json_t *enc_hls_args(const enc_hls *h)
{
    char t[32];
    json_t *a = json_array();
    char *seg = join(h->dir, h->fmp4 ? "/%v/seg_%05d.m4s" : "/%v/seg_%05d.ts");
    char *map = enc_hls_stream_map(h);
    if (!a || !seg || !map) {
        json_decref(a);
        free(seg);
        free(map);
        return NULL;
    }
    snprintf(t, sizeof t, "%g", h->hls_time);
    push_maps(a, h);
    const char *fixed[] = {"-c", "copy", "-f", "hls", "-hls_time", t, "-hls_playlist_type", "vod"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        push(a, fixed[i]);
    if (h->fmp4) {
        push(a, "-hls_segment_type");
        push(a, "fmp4");
    }
    const char *rest[] = {"-hls_segment_filename", seg, "-master_pl_name", "master.m3u8",
                          "-var_stream_map",       map};
    for (size_t i = 0; i < sizeof rest / sizeof *rest; i++)
        push(a, rest[i]);
    free(seg);
    free(map);
    return a;
}

char *enc_hls_output(const enc_hls *h)
{
    return join(h->dir, "/%v/index.m3u8");
}

char *enc_hls_master(const enc_hls *h)
{
    return join(h->dir, "/master.m3u8");
}
