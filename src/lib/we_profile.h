/*
 * Encoding profiles: validation of a profile's config and the FFmpeg output
 * options it stands for. Pure functions, no I/O; the kernel validates with
 * them on POST/PUT /v1/profiles and builds task params with them when it
 * plans a job.
 *
 * A config is one of two shapes (pkg/db/migrations/0005_profiles.up.sql
 * seeds examples of both):
 *
 * A single encoding:
 *   {"video": {"codec": "libx264",            required, see below
 *              "width": 1280, "height": 720,  optional, both or neither; even,
 *                                             16..7680 x 16..4320; a box the
 *                                             picture fits in, aspect kept
 *              "upscale": false,              default false: a smaller source
 *                                             keeps its size
 *              "crf": 23 | "bitrate_kbps": 2500,   exactly one (50..200000 kbps;
 *                                             crf 0..51 for H.264/HEVC encoders,
 *                                             0..63 for VP9/AV1)
 *              "maxrate_kbps": 5000,          optional cap (bufsize = 2 x)
 *              "preset": "veryfast",          optional; a name for x264/x265
 *                                             (ultrafast..placebo), NVENC (p1..p7)
 *                                             and QSV (veryfast..veryslow); an
 *                                             integer for libsvtav1 (0..13),
 *                                             libaom-av1 and libvpx-vp9
 *                                             (cpu-used 0..8); none for VAAPI
 *              "gop_s": 2,                    keyframe interval, 0.5..20 s,
 *                                             default 2
 *              "pix_fmt": "yuv420p",          optional, default yuv420p (nv12
 *                                             for QSV/VAAPI)
 *              "profile": "high"},            optional, H.264/HEVC encoders only
 *    "audio": {"codec": "aac",                aac | libopus | libmp3lame | copy
 *              "bitrate_kbps": 128,           6..512 (not with copy)
 *              "channels": 2,                 1..8 (1..2 for mp3)
 *              "sample_rate": 48000}          8000..96000 from the usual rates;
 *             or null for no audio,           the key is required
 *    "container": "mp4" | "webm" | "mkv",     required; webm takes VP9/AV1 and
 *                                             Opus only, mp4 no Opus
 *    "faststart": true,                       optional, mp4 only
 *    "capability": "cpu",                     optional: the worker capability
 *                                             the encoder needs (derived from
 *                                             the codec: cpu, nvidia for NVENC,
 *                                             intel for QSV, vaapi/intel/amd
 *                                             for VAAPI)
 *    "packaging": "none" | "hls" | "dash"}    optional, default none
 *
 * A ladder (several renditions packaged together):
 *   {"packaging": "hls" | "dash", "renditions": ["1080p-h264", "720p-h264"]}
 *   renditions are 1..16 distinct profile ids; the kernel checks they exist.
 *   A ladder has no video/audio/container of its own.
 *
 * Unknown keys are refused everywhere. Ownership: no function here keeps or
 * steals the config; args arrays are new references for the caller.
 */
#ifndef WE_PROFILE_H
#define WE_PROFILE_H

#include "we_err.h"

#include <jansson.h>
#include <stdbool.h>

/* What the probe said about the source's video (and audio). width/height 0
 * when unknown. */
typedef struct we_source_info {
    double fps;
    int width, height;
    double duration_s;
    bool has_audio;
} we_source_info;

/* A profile id: [A-Za-z0-9][A-Za-z0-9._-]{0,63}, as the profiles table's
 * CHECK (it becomes a path segment of every output). */
bool we_profile_id_valid(const char *id);

/* 0 when config is a valid profile config, else WE_EINVAL with a message
 * naming the field, e.g. "video.crf: expected an integer from 0 to 51". */
int we_profile_validate(json_t *config, we_err *err);

/* True for a ladder config (it has "renditions"); such a profile has no
 * encoding of its own. config must be valid. */
bool we_profile_is_ladder(json_t *config);

/* The FFmpeg output options that encode one video-only segment of the
 * source (they follow `-i`): stream selection, scaling, codec, rate
 * control, preset, a fixed closed GOP of we_profile_gop_frames() frames
 * with no scene-cut keyframes, pixel format and, for mp4, the track
 * timescale a single pass would get. *args: a new array of strings; *ext:
 * the segment's file extension ("mp4", "webm", "mkv"), static. config must
 * be valid; WE_EINVAL for a ladder or a source without a frame rate. */
int we_profile_video_args(json_t *config, const we_source_info *src, json_t **args,
                          const char **ext, we_err *err);

/* The FFmpeg output options that encode the whole title's audio once, for
 * the stitch to mux with -c copy. *ext (static): "m4a" for AAC in mp4,
 * "mp4" for other audio in mp4, "webm" for webm, "mka" for mkv.
 * WE_ENOENT when the profile has no audio (audio null), WE_EINVAL for a
 * ladder. */
int we_profile_audio_args(json_t *config, json_t **args, const char **ext, we_err *err);

/* The worker capability that runs the profile's encoder ("cpu" for a
 * ladder); a static string or the config's own (valid while config is). */
const char *we_profile_capability(json_t *config);

/* The output container ("mp4", "webm", "mkv"; NULL for a ladder) and
 * whether the stitch should move the index to the front. */
const char *we_profile_container(json_t *config);
bool we_profile_faststart(json_t *config);

/* Keyframe interval in frames: round(gop_s x fps), at least 1; WE_EINVAL
 * when fps is not a positive number or config is a ladder. */
int we_profile_gop_frames(json_t *config, double fps);

#endif
