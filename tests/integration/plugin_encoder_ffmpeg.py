"""encoder-ffmpeg through the plugin protocol, as the worker would call it.

Run by plugin_encoder_ffmpeg.sh: argv = plugin executable, scratch dir.
Media is generated here with lavfi (nothing committed): a 12 s 320x240 30 fps
H.264 + AAC MP4 with irregular keyframes, an MPEG-TS copy, 100 KB of random
bytes and an MP4 cut in half. Checks: handshake; capabilities; probe against
ffprobe (every keyframe PTS to 1e-6, duration, streams) for MP4 and TS;
corrupt inputs fail WE-JOB-010 and the plugin keeps serving; a keyframe-
aligned segment has the expected frame count and monotonic progress ending
at 100; a stitch of two segments (a ' in their names) and the audio has
their frames and both streams, bad stitch params are refused and a missing
segment is named; FFmpeg's reasons and codes for a missing input and an unknown
encoder; bad params; $/cancel and a deadline stop ffmpeg within 1 s and
remove the partial output; stdin EOF and a SIGKILLed plugin leave no ffmpeg
behind; a run by hand without the magic cookie exits 1 naming the plugin.
Each plugin's stderr is saved as <dir>/plugin-*.log (the harness scans logs
for sanitizer reports).

With a third argument "valgrind" the plugin runs under valgrind (through a
wrapper script, as Popen starts the executable itself) for a short session —
capabilities, probes (good and corrupt), a transcode, a stitch, an error, a cancel —
then stdin EOF; valgrind's exit status says whether memory errors or
definite leaks were found.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests/lib"))
from plugin_rpc import Plugin, RpcError, check  # noqa: E402

EXE, DIR = sys.argv[1], sys.argv[2]
X264 = ["-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30",
        "-sc_threshold", "0"]
plugins = []


def log(msg):
    print(f"[plugin_encoder_ffmpeg] {msg}", file=sys.stderr, flush=True)


def path(name):
    return os.path.join(DIR, name)


def sh(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def start(config=None, **kw):
    cfg = {"work_dir": DIR}
    cfg.update(config or {})
    p = Plugin(EXE, config=cfg, plugin_id="encoder-ffmpeg", **kw)
    plugins.append(p)
    return p


def save_logs():
    time.sleep(0.2)  # let the stderr reader see EOF
    for i, p in enumerate(plugins):
        with open(path(f"plugin-{i}.log"), "w") as f:
            f.write("\n".join(p.stderr_lines()) + "\n")


def expect_error(p, method, params, code, we_code=None, contains=None, **kw):
    rid = p.send(method, params, **kw)
    _, err, _ = p.wait(rid, 30)
    check(err is not None, f"{method} {params} should fail")
    check(err["code"] == code, f"{method} {params}: code", code, err)
    if we_code:
        check(err.get("data", {}).get("we_code") == we_code, f"{method}: we_code", we_code, err)
        check(err["data"].get("retryable") is False, f"{method}: retryable", False, err)
    if contains:
        check(contains in err["message"], f"{method}: message", contains, err["message"])
    return err


# ---- media -----------------------------------------------------------------------

def make_media():
    t = time.monotonic()
    sh("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=12",
       "-f", "lavfi", "-i", "sine=frequency=440:duration=12", "-c:v", "libx264", "-preset", "ultrafast",
       "-g", "45", "-force_key_frames", "0,0.4,2.2,5.1,8.3", "-c:a", "aac", "-shortest", path("src.mp4"))
    sh("ffmpeg", "-v", "error", "-y", "-i", path("src.mp4"), "-c", "copy", path("src.ts"))
    sh("ffmpeg", "-v", "error", "-y", "-i", path("src.mp4"), "-vn", "-c", "copy", path("audio.m4a"))
    # 100000 bytes: a .bin file whose size is a multiple of 128 is valid "bintext" to FFmpeg
    for name in ("rnd.bin", "rnd.dat"):
        with open(path(name), "wb") as f:
            f.write(os.urandom(100000))
    data = open(path("src.mp4"), "rb").read()
    with open(path("half.mp4"), "wb") as f:
        f.write(data[: len(data) // 2])
    log(f"media generated in {time.monotonic() - t:.1f}s")


def ffprobe_packets(name):
    """(pts_time, is_key) of every video packet, in file order."""
    out = sh("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_packets", "-show_entries",
             "packet=pts_time,flags", "-of", "csv=p=0", path(name))
    rows = [line.split(",") for line in out.splitlines() if line.strip()]
    return [(float(r[0]), "K" in r[1]) for r in rows]


def ffprobe_format(name):
    out = sh("ffprobe", "-v", "error", "-show_entries", "format=duration,start_time", "-of", "json",
             path(name))
    fmt = json.loads(out)["format"]
    return float(fmt["duration"]), float(fmt["start_time"])


def count_frames(name):
    out = sh("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
             "stream=nb_read_frames", "-of", "csv=p=0", path(name))
    return int(out.strip())


# ---- processes -------------------------------------------------------------------

def children(pid):
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return kids


def wait_child(p, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        kids = children(p.proc.pid)
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise AssertionError("ffmpeg child did not appear")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def gone_within(pid, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


def pgrep(name):
    """Processes whose command line holds this run's output path <DIR>/out/<name>."""
    pattern = re.escape(os.path.join(DIR, "out", name))
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return r.stdout.split()


def slow_transcode(p, out, **kw):
    """A transcode that runs at 1x (-re) so there is time to interrupt it."""
    return p.send("encoder.transcode", {"input": "src.mp4", "output": out,
                                        "input_args": ["-re"], "args": X264}, **kw)


# ---- tests -----------------------------------------------------------------------

def test_handshake_and_capabilities(p):
    hs = p.handshake
    check(hs["id"] == "encoder-ffmpeg", "handshake id", "encoder-ffmpeg", hs["id"])
    check(hs["type"] == "encoder", "handshake type", "encoder", hs["type"])
    check(hs["api_version"] == 1, "handshake api_version", 1, hs["api_version"])
    for m in ("encoder.capabilities", "encoder.probe", "encoder.transcode", "health"):
        check(m in hs["methods"], f"method {m} listed", m, hs["methods"])
    caps = p.call("encoder.capabilities")
    for enc in ("libx264", "aac"):
        check(enc in caps["encoders"], f"encoder {enc} listed")
    version = sh("ffmpeg", "-version").split()[2]
    check(caps["ffmpeg_version"] == version, "ffmpeg_version", version, caps["ffmpeg_version"])
    check(isinstance(caps["hwaccels"], list), "hwaccels is a list", None, caps["hwaccels"])
    check(p.call("health") == {"status": "ok"}, "health")


def check_probe(p, name, fmt_name):
    t = time.monotonic()
    r = p.call("encoder.probe", {"url": path(name)})
    took = time.monotonic() - t
    pk = ffprobe_packets(name)
    want = sorted(t for t, k in pk if k)
    got = r["keyframes_s"]
    check(len(got) == len(want), f"{name}: keyframe count", want, got)
    for a, b in zip(got, want):
        check(abs(a - b) <= 1e-6 + 1e-9, f"{name}: keyframe pts", want, got)
    check(r["frame_count"] == len(pk), f"{name}: frame_count", len(pk), r["frame_count"])
    dur, start_s = ffprobe_format(name)
    check(abs(r["duration_s"] - dur) < 0.05, f"{name}: duration", dur, r["duration_s"])
    check(abs(r["start_time_s"] - start_s) < 1e-3, f"{name}: start_time", start_s, r["start_time_s"])
    check(r["format"] == fmt_name, f"{name}: format", fmt_name, r["format"])
    check(r["size_bytes"] == os.path.getsize(path(name)), f"{name}: size_bytes")
    check(r["video_stream"] == 0, f"{name}: video_stream", 0, r["video_stream"])
    check(r["read_error"] is None, f"{name}: read_error", None, r["read_error"])
    v, a = r["streams"]
    got_v = (v["type"], v["codec"], v["width"], v["height"], round(v["fps"], 3))
    check(got_v == ("video", "h264", 320, 240, 30.0), f"{name}: video stream", None, v)
    got_a = (a["type"], a["codec"], a["sample_rate"], a["channels"])
    check(got_a == ("audio", "aac", 44100, 1), f"{name}: audio stream", None, a)
    check(len(got) >= 9, f"{name}: irregular keyframes (forced + GOP)", ">= 9", got)
    log(f"probe {name}: {len(got)} keyframes, {r['frame_count']} packets, {took * 1000:.0f} ms")
    return r


def test_probe_audio_only(p):
    r = p.call("encoder.probe", {"url": "audio.m4a"}, timeout=10)
    check(r["video_stream"] is None and r["keyframes_s"] == [] and r["frame_count"] == 0,
          "audio-only probe: no video", None, r)
    check(len(r["streams"]) == 1 and r["streams"][0]["type"] == "audio", "audio-only streams",
          None, r["streams"])
    check(abs(r["duration_s"] - 12.0) < 0.1, "audio-only duration", 12.0, r["duration_s"])


def test_probe_errors(p):
    for name in ("rnd.bin", "rnd.dat", "half.mp4", "does-not-exist.mp4"):
        err = expect_error(p, "encoder.probe", {"url": path(name)}, -32000, "WE-JOB-010",
                           "cannot ")
        log(f"probe {name}: {err['message']}")
    expect_error(p, "encoder.probe", {}, -32602, contains="url")
    expect_error(p, "encoder.probe", {"url": 7}, -32602, contains="url")
    expect_error(p, "encoder.probe", {"url": "pipe:0"}, -32602, contains="url")
    # still serving
    check(p.call("health") == {"status": "ok"}, "health after errors")
    check(p.call("encoder.probe", {"url": "src.mp4"})["frame_count"] == 360,
          "relative url resolves against work_dir")


def test_segment(p, probe):
    kf = probe["keyframes_s"]
    pk = ffprobe_packets("src.mp4")
    s, e = kf[2], kf[4]  # two GOPs, on source keyframes
    want_frames = sum(1 for t, _ in pk if s - 1e-6 <= t < e - 1e-6)
    rid = p.send("encoder.transcode", {
        "input": path("src.mp4"), "output": path("out/seg_0001.mp4"),
        "input_args": ["-re", "-ss", f"{s:.6f}", "-t", f"{e - s:.6f}"], "args": X264})
    res, err, prog = p.wait(rid, 30)
    check(err is None, "segment transcode", None, err)
    got = count_frames("out/seg_0001.mp4")
    check(got == want_frames, "segment frame count (ffprobe -count_frames)", want_frames, got)
    check(res["frames"] == want_frames, "result frames", want_frames, res["frames"])
    check(res["size_bytes"] == os.path.getsize(path("out/seg_0001.mp4")), "result size_bytes")
    check(abs(res["duration_s"] - (e - s)) < 0.1, "result duration", e - s, res["duration_s"])
    pct = [x["percent"] for x in prog]
    check(len(pct) >= 3, "several progress notifications", ">= 3", pct)
    check(all(a <= b for a, b in zip(pct, pct[1:])), "percent monotonic", None, pct)
    check(pct[-1] == 100, "last percent is 100", 100, pct)
    check(all(x <= 99.9 for x in pct[:-1]), "percent below 100 until the end", None, pct)
    check(all(k in prog[-1] for k in ("fps", "speed", "out_time_s", "frame")), "progress fields",
          None, prog[-1])
    log(f"segment {s:.3f}+{e - s:.3f}s: {got} frames, {len(pct)} progress notes, "
        f"{res['elapsed_s']:.2f}s")


def test_stitch(p):
    """encoder.stitch: two segments (one named with a ' and a space) and the
    audio joined without re-encoding; bad params; a missing segment named."""
    for i, (a, b) in enumerate(((0, 6), (6, 12))):
        p.call("encoder.transcode", {"input": "src.mp4", "output": f"out/st it's {i}.mp4",
                                     "input_args": ["-ss", str(a), "-t", str(b - a)],
                                     "args": X264}, timeout=60)
    segs = [path("out/st it's 0.mp4"), "out/st it's 1.mp4"]  # absolute and work_dir-relative
    rid = p.send("encoder.stitch", {"segments": segs, "audio": "audio.m4a",
                                    "output": "out/stitched.mp4", "faststart": True})
    res, err, prog = p.wait(rid, 60)
    check(err is None, "stitch", None, err)
    want = count_frames(segs[0]) + count_frames("out/st it's 1.mp4")
    check(res["frames"] == want == count_frames("out/stitched.mp4"), "stitched frames", want, res)
    check(res["size_bytes"] == os.path.getsize(path("out/stitched.mp4")), "stitch size_bytes")
    check(abs(res["duration_s"] - 12.0) < 0.2, "stitch duration", 12.0, res)
    check(prog and prog[-1]["percent"] == 100, "stitch progress ends at 100", 100, prog)
    types = sh("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
               path("out/stitched.mp4")).split()
    check(sorted(types) == ["audio", "video"], "stitched streams", None, types)
    check(not [f for f in os.listdir(DIR) if f.startswith("we-concat-")], "list file removed")
    expect_error(p, "encoder.stitch", {"segments": [], "output": "x.mp4"}, -32602)
    expect_error(p, "encoder.stitch", {"segments": ["http://h/a.mp4"], "output": "x.mp4"}, -32602)
    expect_error(p, "encoder.stitch", {"segments": ["a\nb.mp4"], "output": "x.mp4"}, -32602)
    expect_error(p, "encoder.stitch", {"segments": segs, "output": "x.mp4", "faststart": 1},
                 -32602)
    rid = p.send("encoder.stitch", {"segments": [segs[0], "out/nope.mp4"], "output": "x.mp4"})
    _, err, _ = p.wait(rid, 30)
    check(err and err["data"]["we_code"] == "WE-JOB-011" and "out/nope.mp4" in err["message"],
          "a missing segment is named", "WE-JOB-011", err)
    log(f"stitch: {res['frames']} frames, {res['duration_s']:.2f}s")


def test_transcode_errors(p):
    err = expect_error(p, "encoder.transcode", {"input": path("nope.mp4"), "output": path("x.mp4"),
                                                "args": X264},
                       -32000, "WE-JOB-010", "No such file or directory")
    log(f"missing input: {err['message']}")
    err = expect_error(p, "encoder.transcode", {"input": path("rnd.bin"), "output": path("x.mp4")},
                       -32000, "WE-JOB-010", "Invalid data found")
    err = expect_error(p, "encoder.transcode",
                       {"input": path("src.mp4"), "output": path("x.mp4"), "args": ["-c:v", "nosuchenc"]},
                       -32000, "WE-JOB-012", "Unknown encoder")
    log(f"bad encoder: {err['message']}")
    check(not os.path.exists(path("x.mp4")), "failed output removed")
    bad = [
        ({"output": "x.mp4"}, "input"),
        ({"input": "src.mp4"}, "output"),
        ({"input": "src.mp4", "output": "x.mp4", "args": "-an"}, "args"),
        ({"input": "src.mp4", "output": "x.mp4", "args": ["-an", 5]}, "args[1]"),
        ({"input": "src.mp4", "output": "x.mp4", "args": ["-i", "other.mp4"]}, "-i"),
        ({"input": "src.mp4", "output": "x.mp4", "input_args": {}}, "input_args"),
        ({"input": "src.mp4", "output": "x.mp4", "duration_s": "10"}, "duration_s"),
        ({"input": "src.mp4", "output": "x.mp4", "overwrite": 1}, "overwrite"),
        ({"input": "src.mp4", "output": "pipe:1"}, "output"),
        ({"input": "-", "output": "x.mp4"}, "input"),
    ]
    for params, field in bad:
        expect_error(p, "encoder.transcode", params, -32602, contains=field)
    open(path("exists.mp4"), "w").write("x")
    expect_error(p, "encoder.transcode", {"input": "src.mp4", "output": "exists.mp4",
                                          "overwrite": False}, -32000, "WE-JOB-012", "exists")
    check(open(path("exists.mp4")).read() == "x", "existing output untouched")


def test_cancel(p):
    out = "out/cancel-me-7f3a.mp4"
    rid = slow_transcode(p, out)
    pid = wait_child(p)
    time.sleep(1.0)
    check(alive(pid) and os.path.exists(path(out)), "ffmpeg running and writing")
    t = time.monotonic()
    p.cancel(rid)
    _, err, prog = p.wait(rid, 1.0)
    took = time.monotonic() - t
    check(err is not None and err["code"] == -32800, "cancel answers -32800", -32800, err)
    check(took < 1.0, "cancel answered within 1 s", "< 1.0", took)
    check(gone_within(pid, 1.0 - took), "ffmpeg gone within 1 s of $/cancel")
    check(not pgrep("cancel-me-7f3a"), "no ffmpeg left (pgrep)", [], pgrep("cancel-me-7f3a"))
    check(not os.path.exists(path(out)), "partial output removed")
    check(len(prog) >= 1, "progress before the cancel", ">= 1", prog)
    log(f"cancel: answered in {took * 1000:.0f} ms")


def test_deadline_and_concurrency(p):
    out = "out/deadline-4c1e.mp4"
    t = time.monotonic()
    rid = slow_transcode(p, out, deadline_ms=1500)
    pid = wait_child(p)
    # a probe is answered while the transcode runs
    t_probe = time.monotonic()
    p.call("encoder.probe", {"url": "src.mp4"}, timeout=5)
    check(time.monotonic() - t_probe < 1.0, "probe answered while a transcode runs")
    _, err, _ = p.wait(rid, 5)
    took = time.monotonic() - t
    check(err is not None and err["code"] == -32002, "deadline answers -32002", -32002, err)
    check(took < 2.5, "deadline honoured", "< 2.5", took)
    check(gone_within(pid, 1.0), "ffmpeg gone after the deadline")
    check(not os.path.exists(path(out)), "partial output removed after deadline")


def test_stdin_eof():
    p = start()
    out = "out/eof-9b2d.mp4"
    slow_transcode(p, out)
    pid = wait_child(p)
    time.sleep(0.5)
    t = time.monotonic()
    rc = p.close(timeout=2)
    took = time.monotonic() - t
    check(rc == 0, "exit status after stdin EOF", 0, rc)
    check(took < 2.0, "exit within 2 s of stdin EOF", "< 2.0", took)
    check(gone_within(pid, 0.5), "ffmpeg gone after stdin EOF")
    check(not pgrep("eof-9b2d"), "no orphan ffmpeg (pgrep)", [], pgrep("eof-9b2d"))
    log(f"stdin EOF: plugin exited in {took * 1000:.0f} ms")


def test_plugin_killed():
    p = start()
    slow_transcode(p, "out/killed-5e0c.mp4")
    pid = wait_child(p)
    os.kill(p.proc.pid, signal.SIGKILL)
    p.proc.wait(5)
    check(gone_within(pid, 1.0), "ffmpeg dies with its plugin (PR_SET_PDEATHSIG)")


def test_config_and_cookie():
    for cfg, field in (({"kill_grace_ms": 5000}, "kill_grace_ms"),
                       ({"kill_grace_ms": "x"}, "kill_grace_ms"),
                       ({"work_dir": path("src.mp4")}, "work_dir")):
        p = start(cfg, handshake=False)
        try:
            p._call_id(0, "handshake", {"api_versions": [1], "config": {"work_dir": DIR, **cfg}}, 10)
            raise AssertionError(f"config {cfg} accepted")
        except RpcError as e:
            check(e.code == -32602 and field in e.message, f"config {cfg} refused", field, str(e))
        p.close()
    p = start({"ffmpeg": "/nonexistent/ffmpeg"})
    h = p.call("health")
    check(h["status"] == "degraded", "health without ffmpeg", "degraded", h)
    expect_error_code = p.send("encoder.transcode", {"input": "src.mp4", "output": "y.mp4"})
    _, err, _ = p.wait(expect_error_code, 10)
    check(err and err["data"]["we_code"] == "WE-JOB-011" and err["data"]["retryable"],
          "transcode without ffmpeg: retryable WE-JOB-011", None, err)
    check(p.close() == 0, "clean exit")
    env = {k: v for k, v in os.environ.items() if k != "WEBENCODE_PLUGIN"}
    r = subprocess.run([EXE], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=5)
    check(r.returncode == 1, "exit status without the magic cookie", 1, r.returncode)
    check("encoder-ffmpeg" in r.stderr and "encoder" in r.stderr, "describes itself", None, r.stderr)


def valgrind_session():
    wrapper = path("vg-encoder-ffmpeg")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --quiet --error-exitcode=99 --leak-check=full "
                "--errors-for-leak-kinds=definite --show-leak-kinds=definite "
                f"--log-file={path('valgrind.log')} {EXE} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    t0 = time.monotonic()
    make_media()
    p = Plugin(wrapper, config={"work_dir": DIR}, plugin_id="encoder-ffmpeg",
               env={"WE_VALGRIND": "1"})
    plugins.append(p)
    p.call("encoder.capabilities", timeout=60)
    for name in ("src.mp4", "src.ts"):
        check(p.call("encoder.probe", {"url": name}, timeout=60)["frame_count"] == 360, name)
    for name in ("rnd.dat", "half.mp4"):
        expect_error(p, "encoder.probe", {"url": name}, -32000, "WE-JOB-010")
    rid = p.send("encoder.transcode", {"input": "src.mp4", "output": "out/vg.mp4",
                                       "input_args": ["-t", "2"], "args": X264})
    _, err, prog = p.wait(rid, 60)
    check(err is None and prog[-1]["percent"] == 100, "transcode under valgrind", None, err)
    res = p.call("encoder.stitch", {"segments": ["out/vg.mp4", "out/vg.mp4"], "audio": "audio.m4a",
                                    "output": "out/vg-stitch.mp4", "faststart": True}, timeout=60)
    check(res["frames"] == 2 * count_frames("out/vg.mp4"), "stitch under valgrind", None, res)
    expect_error(p, "encoder.transcode", {"input": "src.mp4", "output": "x.mp4",
                                          "args": ["-c:v", "nosuchenc"]}, -32000, "WE-JOB-012")
    rid = slow_transcode(p, "out/vg-cancel.mp4")
    time.sleep(1.5)
    p.cancel(rid)
    _, err, _ = p.wait(rid, 10)
    check(err is not None and err["code"] == -32800, "cancel under valgrind", -32800, err)
    rc = p.close(timeout=30)
    vlog = open(path("valgrind.log")).read()
    check(rc == 0, "valgrind exit status (99: memory errors or definite leaks)", 0, rc)
    check("definitely lost" not in vlog and "Invalid" not in vlog, "valgrind log", "", vlog)
    log(f"valgrind session clean in {time.monotonic() - t0:.1f}s")


def main():
    if len(sys.argv) > 3 and sys.argv[3] == "valgrind":
        return valgrind_session()
    t0 = time.monotonic()
    make_media()
    p = start()
    test_handshake_and_capabilities(p)
    fds = sorted(os.listdir(f"/proc/{p.proc.pid}/fd"))
    probe = check_probe(p, "src.mp4", "mov,mp4,m4a,3gp,3g2,mj2")
    check_probe(p, "src.ts", "mpegts")
    test_probe_audio_only(p)
    test_probe_errors(p)
    test_segment(p, probe)
    test_stitch(p)
    test_transcode_errors(p)
    test_cancel(p)
    test_deadline_and_concurrency(p)
    check(p.violations == [], "protocol violations", [], p.violations)
    fds_now = sorted(os.listdir(f"/proc/{p.proc.pid}/fd"))
    check(fds_now == fds, "no fd leaked by the calls", fds, fds_now)
    check(children(p.proc.pid) == [], "no child (zombie) left", [], children(p.proc.pid))
    rc = p.close()
    check(rc == 0, "exit status after the main run", 0, rc)
    test_stdin_eof()
    test_plugin_killed()
    test_config_and_cookie()
    log(f"all checks passed in {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report anything as a failure
        log(f"FAIL: {type(e).__name__}: {e}")
        save_logs()
        sys.exit(1)
    save_logs()
