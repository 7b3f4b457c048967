-- 0005 profiles: the system presets (is_system = true; the API refuses to
-- change or delete them). Custom profiles are created through
-- POST /v1/profiles.
--
-- profiles.config is validated by the kernel (src/lib/we_profile.c, which
-- documents the shape in we_profile.h); unknown keys are refused. A single
-- encoding:
--   {"video": {"codec": "libx264",         libx264 libx265 libvpx-vp9 libsvtav1
--                                          libaom-av1 h264_nvenc hevc_nvenc
--                                          h264_qsv hevc_qsv h264_vaapi hevc_vaapi
--              "width": 1280, "height": 720,   a box, aspect ratio kept; even
--              "upscale": false,           a smaller source keeps its size
--              "crf": 23 | "bitrate_kbps": 2500,   exactly one
--              "maxrate_kbps": 5000,       optional cap, bufsize = 2 x maxrate
--              "preset": "veryfast",       a name (x264/x265/NVENC/QSV) or an
--                                          integer (libsvtav1, libvpx, libaom)
--              "gop_s": 2,                 keyframe every gop_s x fps frames,
--                                          closed GOP, no scene-cut keyframes
--              "pix_fmt": "yuv420p", "profile": "high"},   optional
--    "audio": {"codec": "aac", "bitrate_kbps": 128, "channels": 2,
--              "sample_rate": 48000} or null for no audio,
--    "container": "mp4" | "webm" | "mkv",  webm: VP9/AV1 + Opus only
--    "faststart": true,                    mp4 only
--    "capability": "cpu",                  the worker capability it needs
--    "packaging": "none" | "hls" | "dash"}
-- A ladder (several renditions packaged together; the planner encodes each
-- rendition and packages them with aligned keyframes):
--   {"packaging": "hls" | "dash", "renditions": ["1080p-h264", ...]}
--
-- The H.264 presets are capped CRF (quality first, maxrate for players on
-- slow links); every preset uses a 2 s GOP so renditions of one title have
-- keyframes at the same times.

INSERT INTO profiles (id, name, description, is_system, config) VALUES
('1080p-h264', '1080p H.264',
 'H.264 High up to 1920x1080, CRF 21 capped at 8 Mb/s, AAC 128k stereo, MP4 with faststart',
 true,
 '{"video": {"codec": "libx264", "width": 1920, "height": 1080, "upscale": false,
             "crf": 21, "maxrate_kbps": 8000, "preset": "veryfast", "gop_s": 2,
             "pix_fmt": "yuv420p", "profile": "high"},
   "audio": {"codec": "aac", "bitrate_kbps": 128, "channels": 2, "sample_rate": 48000},
   "container": "mp4", "faststart": true, "capability": "cpu", "packaging": "none"}'),
('720p-h264', '720p H.264',
 'H.264 High up to 1280x720, CRF 22 capped at 5 Mb/s, AAC 128k stereo, MP4 with faststart',
 true,
 '{"video": {"codec": "libx264", "width": 1280, "height": 720, "upscale": false,
             "crf": 22, "maxrate_kbps": 5000, "preset": "veryfast", "gop_s": 2,
             "pix_fmt": "yuv420p", "profile": "high"},
   "audio": {"codec": "aac", "bitrate_kbps": 128, "channels": 2, "sample_rate": 48000},
   "container": "mp4", "faststart": true, "capability": "cpu", "packaging": "none"}'),
('480p-h264', '480p H.264',
 'H.264 High up to 854x480, CRF 23 capped at 2.5 Mb/s, AAC 128k stereo, MP4 with faststart',
 true,
 '{"video": {"codec": "libx264", "width": 854, "height": 480, "upscale": false,
             "crf": 23, "maxrate_kbps": 2500, "preset": "veryfast", "gop_s": 2,
             "pix_fmt": "yuv420p", "profile": "high"},
   "audio": {"codec": "aac", "bitrate_kbps": 128, "channels": 2, "sample_rate": 48000},
   "container": "mp4", "faststart": true, "capability": "cpu", "packaging": "none"}'),
('1080p-hevc', '1080p HEVC',
 'HEVC Main up to 1920x1080, CRF 24 capped at 6 Mb/s, AAC 128k stereo, MP4 (hvc1) with faststart',
 true,
 '{"video": {"codec": "libx265", "width": 1920, "height": 1080, "upscale": false,
             "crf": 24, "maxrate_kbps": 6000, "preset": "veryfast", "gop_s": 2,
             "pix_fmt": "yuv420p", "profile": "main"},
   "audio": {"codec": "aac", "bitrate_kbps": 128, "channels": 2, "sample_rate": 48000},
   "container": "mp4", "faststart": true, "capability": "cpu", "packaging": "none"}'),
('720p-vp9', '720p VP9',
 'VP9 up to 1280x720, constant quality CRF 32, Opus 96k stereo, WebM',
 true,
 '{"video": {"codec": "libvpx-vp9", "width": 1280, "height": 720, "upscale": false,
             "crf": 32, "preset": 5, "gop_s": 2, "pix_fmt": "yuv420p"},
   "audio": {"codec": "libopus", "bitrate_kbps": 96, "channels": 2, "sample_rate": 48000},
   "container": "webm", "faststart": false, "capability": "cpu", "packaging": "none"}'),
('1080p-av1', '1080p AV1',
 'AV1 (SVT-AV1 preset 8) up to 1920x1080, CRF 32, AAC 128k stereo, MP4 with faststart',
 true,
 '{"video": {"codec": "libsvtav1", "width": 1920, "height": 1080, "upscale": false,
             "crf": 32, "preset": 8, "gop_s": 2, "pix_fmt": "yuv420p"},
   "audio": {"codec": "aac", "bitrate_kbps": 128, "channels": 2, "sample_rate": 48000},
   "container": "mp4", "faststart": true, "capability": "cpu", "packaging": "none"}'),
('hls-ladder', 'HLS ladder 1080p/720p/480p',
 'Adaptive HLS of the 1080p, 720p and 480p H.264 presets, keyframes aligned',
 true,
 '{"packaging": "hls", "renditions": ["1080p-h264", "720p-h264", "480p-h264"]}');
