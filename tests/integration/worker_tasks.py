"""The worker's task runner alone against a real nats-server (no kernel).

Run by worker_tasks.sh: argv = NATS port, scratch dir; WE_SRC, WE_BIN and
WE_PLUGINS in the environment. The test plays the kernel through
tests/lib/nats_raw.py: it creates the WEBENCODE_WORK stream and, after the
worker has started, the dispatch-cpu durable (AckWait 3 s, so InProgress
matters), publishes dispatch messages with Nats-Msg-Id <task>.<attempt>,
and reads the worker's events through a durable of its own on
jobs.events.> (the stream is a work queue: only one consumer per filter,
which is why no kernel runs here), progress on jobs.progress.> and
heartbeats on workers.heartbeat.>. Media is generated with lavfi into the
storage root (a 6 s 320x240 H.264+AAC source, a 30 s 160x120 one for slow
-re runs, 64 KiB of random bytes).

Checks, in order:
  - the worker warns once "dispatch consumer not ready" until the durable
    exists, then binds with InProgress every AckWait/3;
  - probe: started then completed (attempt, worker_id, Msg-Ids), the probe
    object as the result, for fs://, file:/// and http:// inputs;
    dispatch-to-started latency is printed;
  - WORKER_SLOTS=2 with two video segments and the audio dispatched
    together: both segments start before either completes, the audio only
    after one has, never more than 2 at once (events and heartbeats); frame
    counts and sizes match the files; progress at most once a second per
    task with the contract's fields; the 6 s -re audio outlives AckWait
    without a redelivery (InProgress);
  - stitch of the segments (one key with a ' in it) and the audio:
    video+audio, 180 frames, sha256 and size as the file's, moov first;
  - failures: a corrupt input (probe and video) is failed WE-JOB-010 not
    retryable; params that do not fit the type, an unknown type and an
    unsupported input URL are failed WE-JOB-012; a bad key WE-STO-001;
  - garbage dispatch messages are Term'ed (gone from the stream), the worker
    lives on;
  - jobs.cancel mid-transcode: ffmpeg gone within 1 s, no completed/failed
    event, the message acked, another job's task unaffected; malformed
    cancels are logged and ignored;
  - the durable deleted under a running worker: it binds again when the
    durable is back and takes tasks;
  - SIGTERM with a task running: the task completes within the grace, the
    heartbeats say draining then offline, exit 0, the durable survives;
  - SIGTERM with WORKER_STOP_GRACE_S=1 and a long task: no event, ffmpeg
    gone, exit 0, the message nak'ed (delivered again at once).
Each worker's log is <dir>/worker-<id>.log (the harness scans it for
sanitizer reports); every line must be JSON.
"""
import functools
import hashlib
import http.server
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime

sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests/lib"))
from nats_raw import JsError, Nats  # noqa: E402

PORT, DIR = int(sys.argv[1]), sys.argv[2]
WE_BIN, WE_PLUGINS = os.environ["WE_BIN"], os.environ["WE_PLUGINS"]
STREAM = "WEBENCODE_WORK"
STORAGE = os.path.join(DIR, "storage")
X264 = ["-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30"]
FIELDS = {"task_id", "job_id", "attempt", "worker_id", "percent", "encoded_s", "speed"}


def log(msg):
    print(f"[worker_tasks] {msg}", file=sys.stderr, flush=True)


def check(cond, what, expected=None, got=None):
    if not cond:
        detail = "" if expected is None and got is None else f": expected {expected!r}, got {got!r}"
        raise AssertionError(f"{what}{detail}")


def sh(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def wait_until(pred, timeout, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def ts(event):
    return datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


# ---- media and plugins --------------------------------------------------------------

def make_media():
    os.makedirs(os.path.join(STORAGE, "in"), exist_ok=True)
    sh("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
       "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6",
       "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30",
       "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
       os.path.join(STORAGE, "in/src.mp4"))
    sh("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=15",
       "-t", "30", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
       os.path.join(STORAGE, "in/long.mp4"))
    # moov first: the test's HTTP server cannot serve ranges, so no seeking
    sh("ffmpeg", "-v", "error", "-y", "-i", os.path.join(STORAGE, "in/src.mp4"), "-c", "copy",
       "-movflags", "+faststart", os.path.join(STORAGE, "in/fast.mp4"))
    with open(os.path.join(STORAGE, "in/corrupt.mp4"), "wb") as f:
        f.write(os.urandom(65536))


def make_plugin_dir():
    pdir = os.path.join(DIR, "plugins")
    for pid in ("encoder-ffmpeg", "storage-fs"):
        os.makedirs(os.path.join(pdir, pid), exist_ok=True)
        for name in (pid, "plugin.toml"):
            dst = os.path.join(pdir, pid, name)
            with open(os.path.join(WE_PLUGINS, pid, name), "rb") as src, open(dst, "wb") as out:
                out.write(src.read())
            os.chmod(dst, 0o755)
    os.makedirs(os.path.join(DIR, "work"), exist_ok=True)
    return pdir


def frames(path):
    out = sh("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
    return int(out.strip())


def stream_types(path):
    out = sh("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", path)
    return sorted(out.split())


def top_boxes(path):
    boxes = []
    with open(path, "rb") as f:
        while True:
            head = f.read(8)
            if len(head) < 8:
                return boxes
            size, kind = struct.unpack(">I4s", head)
            boxes.append(kind.decode())
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0] - 8
            f.seek(size - 8, 1)


def pgrep(key):
    """pids of processes writing storage key (ffmpeg's command line has the path)."""
    r = subprocess.run(["pgrep", "-f", "--", os.path.join(STORAGE, key)], capture_output=True,
                       text=True)
    return r.stdout.split()


# ---- the worker --------------------------------------------------------------------

class Worker:
    def __init__(self, wid, plugin_dir, **env):
        self.wid = wid
        self.path = os.path.join(DIR, f"worker-{wid}.log")
        e = dict(os.environ, NATS_URL=f"nats://127.0.0.1:{PORT}", WORKER_ID=wid,
                 PLUGIN_DIR=plugin_dir, STORAGE_FS_ROOT=STORAGE,
                 ENCODER_WORK_DIR=os.path.join(DIR, "work"), WORKER_HEARTBEAT_MS="500",
                 LOG_LEVEL="debug")
        e.update(env)
        self.logf = open(self.path, "ab")
        self.proc = subprocess.Popen([os.path.join(WE_BIN, "worker")], env=e, cwd=DIR,
                                     stdout=self.logf, stderr=self.logf)
        self.pidfile = os.path.join(DIR, f"worker-{wid}.pid")
        with open(self.pidfile, "w") as f:
            f.write(str(self.proc.pid))

    def lines(self):
        out = []
        with open(self.path, "rb") as f:
            for raw in f:
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    out.append({"msg": "<not json>", "raw": raw.decode(errors="replace")})
        return out

    def logged(self, msg, **fields):
        return [ln for ln in self.lines() if ln.get("msg") == msg and
                all(ln.get(k) == v for k, v in fields.items())]

    def wait_log(self, msg, timeout=10, count=1, **fields):
        got = wait_until(lambda: len(self.logged(msg, **fields)) >= count, timeout)
        check(got, f"worker {self.wid} logs {msg!r} {fields} x{count}", count,
              len(self.logged(msg, **fields)))
        return self.logged(msg, **fields)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if self.alive():
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        return rc


# ---- the test's side of NATS ------------------------------------------------------------

class Bus:
    def __init__(self):
        self.nc = Nats(PORT, name="worker_tasks")
        self.nc.stream_create(STREAM, ["jobs.dispatch.>", "jobs.events.>"], retention="workqueue",
                              max_age_s=86400)
        self.nc.consumer_create(STREAM, "test-events", "jobs.events.>", ack_wait_s=30)
        self.progress = self.nc.subscribe("jobs.progress.>")
        self.beats = self.nc.subscribe("workers.heartbeat.>")
        self.events = []     # dicts with "_id" (Nats-Msg-Id), "_seq", "_at" (received)
        self.prog = []       # (received, dict)
        self.hb = []         # dicts
        self.sent = {}       # task_id -> publish time

    def dispatch_cpu(self):
        self.nc.consumer_create(STREAM, "dispatch-cpu", "jobs.dispatch.cpu", ack_wait_s=3,
                                max_deliver=20, max_ack_pending=10000)

    def dispatch(self, task_id, job_id, kind, params, attempt=1):
        body = {"task_id": task_id, "job_id": job_id, "attempt": attempt, "type": kind,
                "lease_s": 60, "params": params}
        self.sent[task_id] = time.time()
        self.nc.js_publish("jobs.dispatch.cpu", json.dumps(body), msg_id=f"{task_id}.{attempt}")

    def poll(self):
        for m in self.nc.pull(STREAM, "test-events", batch=64, expires_s=0.2):
            ev = m.json()
            ev["_id"], ev["_seq"], ev["_at"] = m.headers.get("Nats-Msg-Id"), m.meta()["stream_seq"], m.received
            self.events.append(ev)
            self.nc.ack(m)
        for m in self.progress.drain():
            self.prog.append((m.received, m.json()))
        for m in self.beats.drain():
            self.hb.append(m.json())

    def of(self, task_id, event=None):
        return [e for e in self.events if e["task_id"] == task_id and
                (event is None or e["event"] == event)]

    def wait_event(self, task_id, event, timeout=30):
        def found():
            self.poll()
            return self.of(task_id, event)
        got = wait_until(found, timeout, step=0)
        check(got, f"{event} event of {task_id} within {timeout} s")
        return got[0]

    def wait_end(self, task_id, timeout=30):
        """The completed or failed event of task_id."""
        def found():
            self.poll()
            return [e for e in self.of(task_id) if e["event"] in ("completed", "failed")]
        got = wait_until(found, timeout, step=0)
        check(got, f"final event of {task_id} within {timeout} s")
        return got[0]

    def quiet(self, secs):
        end = time.time() + secs
        while time.time() < end:
            self.poll()

    def dispatch_drained(self):
        ci = self.nc.consumer_info(STREAM, "dispatch-cpu")
        return ci["num_pending"] == 0 and ci["num_ack_pending"] == 0


# ---- the checks ----------------------------------------------------------------------------

def check_lifecycle(bus, task_id, wid, final="completed"):
    evs = bus.of(task_id)
    names = [e["event"] for e in sorted(evs, key=lambda e: e["_seq"])]
    check(names == ["started", final], f"{task_id}: events in order", ["started", final], names)
    for e in evs:
        # "started" names the worker: a handed-back task starts again elsewhere
        want = f"{task_id}.1.{e['event']}" + (f".{wid}" if e["event"] == "started" else "")
        check(e["_id"] == want, "Nats-Msg-Id", want, e["_id"])
        check(e["attempt"] == 1 and e["worker_id"] == wid, f"{task_id}: attempt/worker", 1, e)
        check(e["job_id"] and e["ts"].endswith("Z"), f"{task_id}: job_id/ts", None, e)
    return evs[-1] if names[-1] == final else None


def phase_startup(bus, pdir):
    w = Worker("wt-1", pdir, WORKER_SLOTS="2")
    w.wait_log("dispatch consumer not ready", 10, consumer="dispatch-cpu")
    time.sleep(4.5)  # two more binding attempts: still one warning
    check(len(w.logged("dispatch consumer not ready")) == 1, "'not ready' logged once", 1,
          len(w.logged("dispatch consumer not ready")))
    bus.dispatch_cpu()
    bound = w.wait_log("dispatch consumer bound", 5)[0]
    check(bound["in_progress_every_ms"] == 1000, "InProgress every AckWait/3", 1000, bound)
    return w


def phase_probe(bus, w):
    bus.dispatch("t-probe", "j1", "probe", {"input": "fs://in/src.mp4"})
    done = bus.wait_end("t-probe", 20)
    ev = check_lifecycle(bus, "t-probe", "wt-1")
    started = bus.of("t-probe", "started")[0]
    log(f"dispatch -> started event: {(started['_at'] - bus.sent['t-probe']) * 1000:.1f} ms "
        f"(worker ts {(ts(started) - bus.sent['t-probe']) * 1000:.1f} ms)")
    r = ev["result"]
    check(abs(r["duration_s"] - 6.0) < 0.1, "probe duration", 6.0, r["duration_s"])
    check(sorted(s["type"] for s in r["streams"]) == ["audio", "video"], "probe streams", None, r)
    check(len(r["keyframes_s"]) == 6 and r["frame_count"] == 180, "probe keyframes/frames", 6, r)
    check(done["event"] == "completed", "probe completed")
    # file:/// is used as the path it names; http(s):// goes to FFmpeg as it is
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=STORAGE))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bus.dispatch("t-probe-file", "j1", "probe",
                     {"input": "file://" + os.path.join(STORAGE, "in/src.mp4")})
        bus.dispatch("t-probe-http", "j1", "probe",
                     {"input": f"http://127.0.0.1:{server.server_port}/in/fast.mp4"})
        for t in ("t-probe-file", "t-probe-http"):
            bus.wait_end(t, 20)
            r = check_lifecycle(bus, t, "wt-1")["result"]
            check(r["frame_count"] == 180, f"{t}: probe result", 180, r)
    finally:
        server.shutdown()
        server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def seg_params(ss, key):
    return {"input": "fs://in/src.mp4", "output_key": key, "duration_s": 3.0,
            "input_args": ["-re", "-ss", str(ss), "-t", "3"], "args": X264}


SEG0, SEG1 = "jobs/j1/720p/seg_0000.mp4", "jobs/j1/720p/it's seg_0001.mp4"
AUDIO = "jobs/j1/audio.m4a"


def max_running(evs):
    points = sorted((ts(e), 1 if e["event"] == "started" else -1) for e in evs)
    level = peak = 0
    for _, d in points:
        level += d
        peak = max(peak, level)
    return peak


def check_progress(bus, task_id):
    mine = [(at, p) for at, p in bus.prog if p["task_id"] == task_id]
    check(len(mine) >= 2, f"{task_id}: progress messages", ">= 2", len(mine))
    for _, p in mine:
        check(set(p) == FIELDS, "progress fields", sorted(FIELDS), sorted(p))
        check(p["attempt"] == 1 and p["worker_id"] == "wt-1", "progress attempt/worker", 1, p)
    gaps = [b[0] - a[0] for a, b in zip(mine, mine[1:])]
    check(min(gaps) >= 0.8, f"{task_id}: progress at most once a second", ">= 0.8 s", gaps)
    pct = [p["percent"] for _, p in mine]
    check(pct == sorted(pct), f"{task_id}: percent never goes down", None, pct)
    return mine


def phase_slots(bus, w):
    bus.dispatch("t-v0", "j1", "video", seg_params(0, SEG0))
    bus.dispatch("t-v1", "j1", "video", seg_params(3, SEG1))
    bus.dispatch("t-audio", "j1", "audio", {
        "input": "fs://in/src.mp4", "output_key": AUDIO, "duration_s": 6.0,
        "input_args": ["-re"], "args": ["-vn", "-c:a", "aac", "-b:a", "96k"]})
    for t in ("t-v0", "t-v1", "t-audio"):
        check(bus.wait_end(t, 40)["event"] == "completed", f"{t} completed", "completed",
              bus.of(t))
    bus.quiet(1.0)
    v0, v1 = (check_lifecycle(bus, t, "wt-1") for t in ("t-v0", "t-v1"))
    check_lifecycle(bus, "t-audio", "wt-1")
    s = {t: ts(bus.of(t, "started")[0]) for t in ("t-v0", "t-v1", "t-audio")}
    c = {t: ts(bus.of(t, "completed")[0]) for t in ("t-v0", "t-v1", "t-audio")}
    check(max(s["t-v0"], s["t-v1"]) < min(c["t-v0"], c["t-v1"]),
          "both segments started before either completed", None, (s, c))
    check(s["t-audio"] >= min(c["t-v0"], c["t-v1"]) - 0.05,
          "the third task waits for a free slot", None, (s, c))
    evs = [e for t in ("t-v0", "t-v1", "t-audio") for e in bus.of(t)]
    check(max_running(evs) == 2, "two tasks at once, never more", 2, max_running(evs))
    running = [h["running"] for h in bus.hb if h.get("id") == "wt-1"]
    check(max(running) == 2, "heartbeats: running reaches 2 and no more", 2, running)
    for ev, key in ((v0, SEG0), (v1, SEG1)):
        path = os.path.join(STORAGE, key)
        r = ev["result"]
        check(r["output_key"] == key, "output_key", key, r)
        check(r["size_bytes"] == os.path.getsize(path), "size_bytes", os.path.getsize(path), r)
        check(frames(path) == 90 and r["frames"] == 90, f"{key}: 90 frames", 90,
              (frames(path), r["frames"]))
        check(set(r) == {"output_key", "size_bytes", "duration_s", "frames", "elapsed_s",
                         "speed"}, "video result fields", None, r)
    a = bus.of("t-audio", "completed")[0]["result"]
    check(stream_types(os.path.join(STORAGE, AUDIO)) == ["audio"], "audio output", ["audio"],
          stream_types(os.path.join(STORAGE, AUDIO)))
    check(abs(a["duration_s"] - 6.0) < 0.2, "audio duration", 6.0, a)
    p = check_progress(bus, "t-v0")
    log(f"progress sample: {json.dumps(p[0][1])}")
    check(len(bus.of("t-audio", "started")) == 1, "6 s audio under AckWait 3 s: one delivery")
    ci = bus.nc.consumer_info(STREAM, "dispatch-cpu")
    check(ci["num_redelivered"] == 0, "no redelivery (InProgress kept the tasks)", 0, ci)
    check(wait_until(bus.dispatch_drained, 3), "every dispatch message acked", None, ci)


def phase_stitch(bus, w):
    out = "jobs/j1/720p/output.mp4"
    bus.dispatch("t-stitch", "j1", "stitch", {"segment_keys": [SEG0, SEG1], "audio_key": AUDIO,
                                              "output_key": out, "faststart": True})
    bus.wait_end("t-stitch", 30)
    ev = check_lifecycle(bus, "t-stitch", "wt-1")
    r = ev["result"]
    log(f"stitch event: {json.dumps({k: v for k, v in ev.items() if not k.startswith('_')})}")
    path = os.path.join(STORAGE, out)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    check(set(r) == {"output_key", "storage_plugin", "size_bytes", "sha256", "duration_s", "frames"},
          "stitch result fields", None, r)
    check(r["storage_plugin"] == "storage-fs", "stitch names its storage plugin", "storage-fs", r)
    check(r["sha256"] == digest and r["size_bytes"] == os.path.getsize(path), "sha256/size",
          digest, r)
    check(stream_types(path) == ["audio", "video"], "stitched video+audio", None,
          stream_types(path))
    check(frames(path) == 180 and r["frames"] == 180, "stitched frames", 180, (frames(path), r))
    check(abs(r["duration_s"] - 6.0) < 0.2, "stitched duration", 6.0, r)
    boxes = top_boxes(path)
    check(boxes.index("moov") < boxes.index("mdat"), "faststart: moov before mdat", None, boxes)
    check(not [f for f in os.listdir(os.path.join(DIR, "work")) if f.startswith("we-concat")],
          "concat list removed")


def expect_failed(bus, task_id, code, retryable):
    bus.wait_end(task_id, 30)
    ev = check_lifecycle(bus, task_id, "wt-1", final="failed")
    check(ev is not None, f"{task_id}: failed", "failed", bus.of(task_id))
    e = ev["error"]
    check(e["code"] == code and e["retryable"] is retryable and e["message"],
          f"{task_id}: error", (code, retryable), e)
    check("result" not in ev, "failed has no result")
    return e


def phase_failures(bus, w):
    bus.dispatch("t-bad-probe", "j2", "probe", {"input": "fs://in/corrupt.mp4"})
    bus.dispatch("t-bad-video", "j2", "video", {
        "input": "fs://in/corrupt.mp4", "output_key": "jobs/j2/seg.mp4", "args": X264})
    expect_failed(bus, "t-bad-probe", "WE-JOB-010", False)
    expect_failed(bus, "t-bad-video", "WE-JOB-010", False)
    check(not os.path.exists(os.path.join(STORAGE, "jobs/j2/seg.mp4")), "no output left")
    bus.dispatch("t-no-key", "j3", "video", {"input": "fs://in/src.mp4", "args": X264})
    bus.dispatch("t-thumb", "j3", "thumbnail", {"input": "fs://in/src.mp4"})
    e = expect_failed(bus, "t-no-key", "WE-JOB-012", False)
    check("output_key" in e["message"], "names the field", "output_key", e)
    expect_failed(bus, "t-thumb", "WE-JOB-012", False)
    bus.dispatch("t-ftp", "j3", "probe", {"input": "ftp://example/x.mp4"})
    bus.dispatch("t-bad-key", "j3", "video", {"input": "fs://in/src.mp4",
                                              "output_key": "../escape.mp4", "args": X264})
    expect_failed(bus, "t-ftp", "WE-JOB-012", False)
    expect_failed(bus, "t-bad-key", "WE-STO-001", False)
    check(wait_until(bus.dispatch_drained, 3), "failed tasks acked")


def phase_garbage(bus, w):
    before = len(w.logged("dispatch message terminated"))
    bus.nc.js_publish("jobs.dispatch.cpu", b"not json!", msg_id="g1")
    bus.nc.js_publish("jobs.dispatch.cpu", b'{"task_id":"x"}', msg_id="g2")
    bus.nc.js_publish("jobs.dispatch.cpu", json.dumps(
        {"task_id": "t", "job_id": "a.b", "attempt": 1, "type": "probe", "params": {}}),
        msg_id="g3")
    w.wait_log("dispatch message terminated", 10, count=before + 3)
    check(wait_until(bus.dispatch_drained, 3), "garbage Term'ed: nothing pending",
          None, bus.nc.consumer_info(STREAM, "dispatch-cpu"))
    bus.quiet(0.5)
    check(bus.nc.stream_info(STREAM)["state"]["messages"] == 0, "garbage gone from the stream",
          0, bus.nc.stream_info(STREAM)["state"])
    check(w.alive(), "worker alive after garbage")
    bus.dispatch("t-after-garbage", "j4", "probe", {"input": "fs://in/src.mp4"})
    check(bus.wait_end("t-after-garbage", 20)["event"] == "completed", "still works")


def phase_cancel(bus, w):
    key = "jobs/j-cancel/seg.mp4"
    bus.dispatch("t-cancel", "j-cancel", "video", {
        "input": "fs://in/long.mp4", "output_key": key, "input_args": ["-re"], "args": X264})
    bus.dispatch("t-other", "j-other", "video", {
        "input": "fs://in/long.mp4", "output_key": "jobs/j-other/seg.mp4",
        "input_args": ["-re", "-t", "3"], "args": X264})
    bus.wait_event("t-cancel", "started", 10)
    check(wait_until(lambda: [p for _, p in bus.prog if p["task_id"] == "t-cancel"] or
                     bus.poll(), 5), "progress before the cancel")
    check(pgrep(key), "ffmpeg running before the cancel")
    for bad in (b"garbage", b'{"job_id":5}', b'{"job_id":"a.b"}'):
        bus.nc.publish("jobs.cancel", bad)
    t0 = time.time()
    bus.nc.publish("jobs.cancel", json.dumps({"job_id": "j-cancel"}))
    gone = wait_until(lambda: not pgrep(key), 3, step=0.02)
    took = time.time() - t0
    check(gone and took < 1.0, "ffmpeg gone within 1 s of jobs.cancel", "< 1.0 s", took)
    log(f"cancel: ffmpeg gone {took * 1000:.0f} ms after jobs.cancel")
    w.wait_log("task cancelled", 5, task_id="t-cancel", reason="job cancelled")
    w.wait_log("cancel message ignored", 5, count=3)
    check(bus.wait_end("t-other", 20)["event"] == "completed", "the other job's task completes")
    bus.quiet(1.0)
    names = [e["event"] for e in bus.of("t-cancel")]
    check(names == ["started"], "no completed/failed after a cancel", ["started"], names)
    check(wait_until(bus.dispatch_drained, 3), "cancelled task acked")
    check(not os.path.exists(os.path.join(STORAGE, key)), "partial output removed")
    check(w.alive(), "worker alive after cancels")


def phase_rebind(bus, w):
    bus.nc.consumer_delete(STREAM, "dispatch-cpu")
    lost = lambda: (w.logged("dispatch consumer lost; binding again") or  # noqa: E731
                    len(w.logged("dispatch consumer not ready")) > 1)
    check(wait_until(lost, 10), "worker notices the durable is gone")
    bus.dispatch_cpu()
    w.wait_log("dispatch consumer bound", 10, count=2)
    bus.dispatch("t-rebound", "j5", "probe", {"input": "fs://in/src.mp4"})
    check(bus.wait_end("t-rebound", 20)["event"] == "completed", "tasks after re-binding")


def phase_sigterm(bus, w):
    bus.dispatch("t-term", "j-term", "video", {
        "input": "fs://in/long.mp4", "output_key": "jobs/j-term/seg.mp4",
        "input_args": ["-re", "-t", "3"], "args": X264})
    bus.wait_event("t-term", "started", 10)
    t0 = time.time()
    rc = w.stop(signal.SIGTERM, 40)
    took = time.time() - t0
    check(rc == 0, "worker exit code after SIGTERM", 0, rc)
    check(took < 10, "exit once the task is done", "< 10 s", took)
    check(bus.wait_end("t-term", 5)["event"] == "completed", "the running task completed")
    w.wait_log("stopping: no new tasks; waiting for running ones", 1)
    bus.poll()
    mine = [h for h in bus.hb if h.get("id") == "wt-1"]
    check(any(h["draining"] and h["state"] == "online" for h in mine), "draining heartbeats",
          None, mine[-3:])
    check(mine[-1]["state"] == "offline", "offline heartbeat last", "offline", mine[-1])
    check(bus.nc.consumer_info(STREAM, "dispatch-cpu"), "the durable survives the worker")
    check(bus.dispatch_drained(), "task acked before exit")


def phase_nak(bus, pdir):
    w = Worker("wt-2", pdir, WORKER_SLOTS="1", WORKER_STOP_GRACE_S="1")
    w.wait_log("dispatch consumer bound", 10)
    key = "jobs/j-nak/seg.mp4"
    bus.dispatch("t-nak", "j-nak", "video", {
        "input": "fs://in/long.mp4", "output_key": key, "input_args": ["-re"], "args": X264})
    bus.wait_event("t-nak", "started", 10)
    check(pgrep(key), "ffmpeg running")
    t0 = time.time()
    rc = w.stop(signal.SIGTERM, 20)
    took = time.time() - t0
    check(rc == 0 and took < 5, "exit 0 soon after the grace", (0, "< 5 s"), (rc, took))
    w_lines = w.logged("task cancelled", task_id="t-nak", reason="worker stopping")
    check(w_lines, "logged as stopped by the shutdown")
    check(w.logged("stop grace over: cancelling running tasks"), "grace over logged")
    check(not pgrep(key), "no ffmpeg left")
    bus.quiet(1.0)
    names = [e["event"] for e in bus.of("t-nak")]
    check(names == ["started"], "no event for a task handed back", ["started"], names)
    msgs = bus.nc.pull(STREAM, "dispatch-cpu", batch=1, expires_s=1)
    check(msgs and msgs[0].json()["task_id"] == "t-nak", "nak'ed message available at once",
          "t-nak", [m.data for m in msgs])
    check(msgs[0].meta()["delivered"] == 2, "delivered a second time", 2, msgs[0].meta())
    bus.nc.term(msgs[0])
    return w


def main():
    make_media()
    pdir = make_plugin_dir()
    bus = Bus()
    workers = []
    try:
        w = phase_startup(bus, pdir)
        workers.append(w)
        for phase in (phase_probe, phase_slots, phase_stitch, phase_failures, phase_garbage,
                      phase_cancel, phase_rebind, phase_sigterm):
            log(f"{phase.__name__} ...")
            phase(bus, w)
        log("phase_nak ...")
        workers.append(phase_nak(bus, pdir))
        samples = {e["event"]: e for e in bus.events}
        for name in ("started", "completed", "failed"):
            log(f"event sample: {json.dumps({k: v for k, v in samples[name].items() if not k.startswith('_')})[:400]}")
        for wk in workers:
            bad = [ln for ln in wk.lines() if ln.get("msg") == "<not json>"]
            check(not bad, f"worker {wk.wid} log is JSON lines", [], bad[:3])
    finally:
        for wk in workers:
            if wk.alive():
                wk.stop(signal.SIGKILL, 5)
        bus.nc.close()
    log("all checks passed")


if __name__ == "__main__":
    main()
