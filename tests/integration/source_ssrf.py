"""No SSRF through FFmpeg: encoder-ffmpeg's egress policy, driven over the
plugin protocol as the worker would.

Run by source_ssrf.sh: argv = plugin executable, scratch dir [, "valgrind"].

Servers (all in this process, ports picked by the kernel):
  origin    127.0.0.1, http and https (a self-signed EC certificate made
            here; FFmpeg 5.1 does not verify by default), with Range support:
            /video.mp4 (2 s H.264+AAC, moov at the end so reading it needs
            ranges), /redirect (302 to the recorder's /secret), /redirect-ok
            (302 to /video.mp4 on the origin), /list.m3u8 (an HLS playlist
            whose segment is on the recorder). Every request line it gets is
            kept, to check the proxy sent origin-form requests.
  recorder  127.0.0.2 (loopback, but not in the allowed CIDRs): appends
            every CONNECTION it accepts to recorder-hits.txt.

Checks:
  - no allowance: the origin itself (127.0.0.1) and localhost are refused;
  - source_allow_cidrs=127.0.0.1/32: probe over http, https (CONNECT) and an
    allowed redirect equals the local file's probe; a 1 s transcode over
    http and https has the local transcode's frame count; the redirect to
    the recorder, the recorder itself (http and https), the https
    redirect and an HLS playlist pointing at it fail WE-JOB-010, not
    retryable, naming 127.0.0.2 and the policy, and the transcode leaves no
    output; a local playlist with a remote segment fails (no network for
    local inputs); concat:, subfile, gopher:, ftp:, data:, tcp:, HTTP: and
    friends are refused before anything is opened (no ffmpeg child, no
    output); the recorder saw no connection; no fd or thread is left;
  - SOURCE_ALLOW_CIDRS from the environment works like the config field;
    bad values of both settings fail the handshake naming the field;
  - source_allow_private=true (config) and SOURCE_ALLOW_PRIVATE=true (env):
    localhost works, and the redirect now reaches the recorder — the
    recorder's check can fail.
With "valgrind": a short session (http and https probes, a refusal, a
transcode, a refused protocol) under valgrind; memory errors or definite
leaks fail it. Each plugin's stderr is saved as <dir>/ssrf-plugin-*.log.
"""
import http.server
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests/lib"))
from plugin_rpc import Plugin, RpcError, check  # noqa: E402

EXE, DIR = sys.argv[1], sys.argv[2]
X264 = ["-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15"]
plugins = []
origin_requests = []


def log(msg):
    print(f"[source_ssrf] {msg}", file=sys.stderr, flush=True)


def path(name):
    return os.path.join(DIR, name)


def sh(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


HITS = path("recorder-hits.txt")


# ---- media and certificate --------------------------------------------------------

def make_media():
    sh("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2",
       "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset",
       "ultrafast", "-g", "15", "-c:a", "aac", "-shortest", path("video.mp4"))
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", path("key.pem"), "-out", path("cert.pem"), "-days", "1",
       "-subj", "/CN=127.0.0.1")


def count_frames(name):
    out = sh("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
             "stream=nb_read_frames", "-of", "csv=p=0", path(name))
    return int(out.strip())


# ---- servers ----------------------------------------------------------------------

class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_HEAD(self):
        self.respond(head=True)

    def do_GET(self):
        self.respond(head=False)

    def reply(self, status, headers, body=b"", head=False):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    def respond(self, head):
        origin_requests.append(self.requestline)
        route = self.path.split("?")[0]
        if route == "/redirect":
            return self.reply(302, [("Location", f"http://127.0.0.2:{PORTS['rec']}/secret")],
                              head=head)
        if route == "/redirect-ok":
            return self.reply(302, [("Location", f"http://127.0.0.1:{PORTS['http']}/video.mp4")],
                              head=head)
        if route == "/list.m3u8":
            body = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
                    f"http://127.0.0.2:{PORTS['rec']}/seg.ts\n#EXT-X-ENDLIST\n").encode()
            return self.reply(200, [("Content-Type", "application/vnd.apple.mpegurl")], body, head)
        if route != "/video.mp4":
            return self.reply(404, [], head=head)
        with open(path("video.mp4"), "rb") as f:
            data = f.read()
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not m:
            return self.reply(200, [("Accept-Ranges", "bytes")], data, head)
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
        if start >= len(data):
            return self.reply(416, [("Content-Range", f"bytes */{len(data)}")], head=head)
        return self.reply(206, [("Accept-Ranges", "bytes"),
                                ("Content-Range", f"bytes {start}-{end}/{len(data)}")],
                          data[start:end + 1], head)


class Secret(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"secret")


class Recorder(http.server.ThreadingHTTPServer):
    def verify_request(self, request, client_address):
        with open(HITS, "a") as f:
            f.write(f"connection from {client_address}\n")
        return True


PORTS = {}


def start_servers():
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(path("cert.pem"), path("key.pem"))
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    rec = Recorder(("127.0.0.2", 0), Secret)
    PORTS.update(http=plain.server_address[1], https=tls.server_address[1],
                 rec=rec.server_address[1])
    for s in (plain, tls, rec):
        threading.Thread(target=s.serve_forever, daemon=True).start()


def url(kind, route="/video.mp4", host="127.0.0.1"):
    scheme = "https" if kind == "https" else "http"
    return f"{scheme}://{host}:{PORTS[kind]}{route}"


def hits():
    try:
        with open(HITS) as f:
            return f.read()
    except FileNotFoundError:
        return ""


# ---- plugin helpers ------------------------------------------------------------------

def start(config=None, env=None, exe=EXE, **kw):
    e = {"SOURCE_ALLOW_PRIVATE": "", "SOURCE_ALLOW_CIDRS": "",
         "LSAN_OPTIONS": f"suppressions={path('ssrf-lsan.supp')}"}
    e.update(env or {})
    p = Plugin(exe, config={"work_dir": DIR, **(config or {})}, plugin_id="encoder-ffmpeg", env=e,
               **kw)
    plugins.append(p)
    return p


def save_logs():
    time.sleep(0.2)
    for i, p in enumerate(plugins):
        with open(path(f"ssrf-plugin-{i}.log"), "w") as f:
            f.write("\n".join(p.stderr_lines()) + "\n")


def children(pid):
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return kids


def probe(p, u, timeout=60):
    return p.call("encoder.probe", {"url": u}, timeout=timeout)


def transcode(p, u, out, timeout=60):
    rid = p.send("encoder.transcode", {"input": u, "output": out, "input_args": ["-t", "1"],
                                       "args": X264})
    return p.wait(rid, timeout)


def refused(p, method, params, *contains, timeout=60):
    rid = p.send(method, params)
    _, err, _ = p.wait(rid, timeout)
    check(err is not None, f"{method} {params} should fail")
    data = err.get("data") or {}
    check(err["code"] == -32000 and data.get("we_code") == "WE-JOB-010",
          f"{method} {params}: WE-JOB-010", "WE-JOB-010", err)
    check(data.get("retryable") is False, f"{method} {params}: not retryable", False, err)
    for c in contains:
        check(c in err["message"], f"{method} {params}: message", c, err["message"])
    return err


def policy_refused(p, method, params, addr="127.0.0.2"):
    return refused(p, method, params, addr, "egress policy")


# ---- checks ----------------------------------------------------------------------

def test_no_allowance():
    p = start()
    for u in (url("http"), url("https"), url("http", host="localhost")):
        policy_refused(p, "encoder.probe", {"url": u}, "127.0.0.1")
    check(p.close() == 0, "clean exit")


def test_allowed(p, with_transcode=True):
    local = probe(p, "video.mp4")
    for u in (url("http"), url("https"), url("http", "/redirect-ok")):
        got = probe(p, u)
        check(got == local, f"probe of {u} equals the local file's", local, got)
    if not with_transcode:
        return
    _, err, prog = transcode(p, "video.mp4", "out/local.mp4")
    check(err is None, "local transcode", None, err)
    want = count_frames("out/local.mp4")
    check(want == 30, "local transcode frames", 30, want)
    for kind in ("http", "https"):
        _, err, prog = transcode(p, url(kind), f"out/{kind}.mp4")
        check(err is None and prog[-1]["percent"] == 100, f"transcode over {kind}", None, err)
        got = count_frames(f"out/{kind}.mp4")
        check(got == want, f"transcode over {kind}: frames", want, got)


def test_refused(p):
    for u in (url("http", "/redirect"), url("https", "/redirect"),
              url("rec", "/x", host="127.0.0.2"), f"https://127.0.0.2:{PORTS['rec']}/x",
              url("http", "/list.m3u8")):
        policy_refused(p, "encoder.probe", {"url": u})
    for i, u in enumerate((url("http", "/redirect"), url("https", "/redirect"))):
        rid = p.send("encoder.transcode", {"input": u, "output": f"out/refused-{i}.mp4",
                                           "input_args": ["-t", "1"], "args": X264})
        _, err, _ = p.wait(rid, 60)
        check(err and err["data"]["we_code"] == "WE-JOB-010" and not err["data"]["retryable"] and
              "127.0.0.2" in err["message"], f"transcode of {u} refused", "WE-JOB-010", err)
        check(not os.path.exists(path(f"out/refused-{i}.mp4")), "no output of a refused source")
    # a local playlist may not reach the network at all
    with open(path("local.m3u8"), "w") as f:
        f.write("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
                f"http://127.0.0.2:{PORTS['rec']}/seg.ts\n#EXT-X-ENDLIST\n")
    rid = p.send("encoder.probe", {"url": "local.m3u8"})
    _, err, _ = p.wait(rid, 30)
    check(err is not None, "a local playlist with a remote segment fails", None, err)


BAD_PROTOCOLS = [
    "concat:video.mp4|video.mp4", "subfile,,start,0,end,100,,:http://127.0.0.2:{rec}/x",
    "gopher://127.0.0.2:{rec}/x", "ftp://127.0.0.2:{rec}/x", "data:video/mp4;base64,AAAA",
    "tcp://127.0.0.2:{rec}", "HTTP://127.0.0.2:{rec}/x", "hls+http://127.0.0.2:{rec}/x.m3u8",
    "crypto+http://127.0.0.2:{rec}/x", "async:http://127.0.0.2:{rec}/x", "httpproxy://127.0.0.2:{rec}/x",
    "rtmp://127.0.0.2:{rec}/x",
]


def test_protocols(p):
    for tmpl in BAD_PROTOCOLS:
        u = tmpl.format(rec=PORTS["rec"])
        refused(p, "encoder.probe", {"url": u}, "protocol is not allowed", "nothing was opened")
        out = f"out/proto-{len(u)}.mp4"
        refused(p, "encoder.transcode", {"input": u, "output": out, "args": X264},
                "protocol is not allowed")
        check(not os.path.exists(path(out)), f"{u}: no output")
        check(children(p.proc.pid) == [], f"{u}: no ffmpeg started", [], children(p.proc.pid))


def test_config():
    p = start(env={"SOURCE_ALLOW_CIDRS": "127.0.0.1/32, ::1/128"})
    check(probe(p, url("http"))["frame_count"] > 0, "SOURCE_ALLOW_CIDRS from the environment")
    check(probe(p, url("http", host="localhost"))["frame_count"] > 0, "localhost allowed by CIDR")
    policy_refused(p, "encoder.probe", {"url": url("http", "/redirect")})
    check(p.close() == 0, "clean exit")
    for cfg, env, field in (({"source_allow_cidrs": "10.0.0.0/33"}, {}, "source_allow_cidrs"),
                            ({"source_allow_cidrs": "example.com"}, {}, "source_allow_cidrs"),
                            ({"source_allow_cidrs": 5}, {}, "source_allow_cidrs"),
                            ({}, {"SOURCE_ALLOW_CIDRS": "127.0.0.1/x"}, "source_allow_cidrs"),
                            ({"source_allow_private": "yes"}, {}, "source_allow_private"),
                            ({}, {"SOURCE_ALLOW_PRIVATE": "maybe"}, "source_allow_private")):
        p = start(cfg, env, handshake=False)
        try:
            p._call_id(0, "handshake", {"api_versions": [1], "config": {"work_dir": DIR, **cfg}}, 10)
            raise AssertionError(f"config {cfg} {env} accepted")
        except RpcError as e:
            check(e.code == -32602 and field in e.message, f"config {cfg} {env} refused", field,
                  str(e))
        p.close()


def test_allow_private():
    check(hits() == "", "the recorder saw no connection before allow_private", "", hits())
    p = start(env={"SOURCE_ALLOW_PRIVATE": "true"})
    check(probe(p, url("http", host="localhost"))["frame_count"] > 0, "SOURCE_ALLOW_PRIVATE=true")
    check(p.close() == 0, "clean exit")
    p = start({"source_allow_private": True})
    check(probe(p, url("https"))["frame_count"] > 0, "source_allow_private: https on loopback")
    rid = p.send("encoder.probe", {"url": url("http", "/redirect")})
    p.wait(rid, 30)  # the recorder answers "secret", not media: the probe fails, the hit counts
    check("connection" in hits(), "allow_private: the redirect reached the recorder", None, hits())
    check(p.close() == 0, "clean exit")


def fds_and_tasks(p):
    pid = p.proc.pid
    return sorted(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


# libavformat 5.1's httpproxy protocol (https through CONNECT) never frees
# the HTTP version string and cookie string its header parser allocates
# (its URLProtocol has no priv_data_class, so av_opt_free never runs):
# 5 bytes per tunnel, deep inside libavformat. Only those two are waived.
SUPPRESSIONS = """{
   ffmpeg-5.1-httpproxy-http_version
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:av_strndup
   obj:*/libavformat.so.59*
   obj:*/libavformat.so.59*
   obj:*/libavformat.so.59*
   obj:*/libavformat.so.59*
}
{
   ffmpeg-5.1-httpproxy-cookies
   Memcheck:Leak
   match-leak-kinds: definite
   fun:memalign
   fun:posix_memalign
   fun:av_malloc
   obj:*/libavformat.so.59*
   obj:*/libavformat.so.59*
   obj:*/libavformat.so.59*
   obj:*/libavformat.so.59*
}
"""


# The same leak for LeakSanitizer (sanitizer build): its fast unwinder stops
# at the allocator inside libavutil (no frame pointers), so the waiver is
# coarser — libav* allocations only, in this test only; the valgrind session
# and plugin_encoder_ffmpeg's ASan run keep the precise checks.
LSAN_SUPPRESSIONS = """leak:av_strndup
leak:av_malloc
"""


def valgrind_session():
    wrapper = path("vg-ssrf-encoder-ffmpeg")
    with open(path("ssrf-valgrind.supp"), "w") as f:
        f.write(SUPPRESSIONS)
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --quiet --error-exitcode=99 --leak-check=full "
                "--errors-for-leak-kinds=definite --show-leak-kinds=definite "
                f"--suppressions={path('ssrf-valgrind.supp')} "
                f"--log-file={path('ssrf-valgrind.log')} {EXE} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    t0 = time.monotonic()
    p = start({"source_allow_cidrs": "127.0.0.1/32"}, {"WE_VALGRIND": "1"}, exe=wrapper)
    for kind in ("http", "https"):
        check(probe(p, url(kind), timeout=90)["frame_count"] == 60, f"{kind} probe under valgrind")
    policy_refused(p, "encoder.probe", {"url": url("http", "/redirect")})
    _, err, _ = transcode(p, url("http"), "out/vg.mp4", timeout=90)
    check(err is None, "transcode under valgrind", None, err)
    refused(p, "encoder.probe", {"url": "concat:video.mp4|video.mp4"}, "protocol is not allowed")
    rc = p.close(timeout=60)
    vlog = open(path("ssrf-valgrind.log")).read()
    check(rc == 0, "valgrind exit status (99: memory errors or definite leaks)", 0, rc)
    check("definitely lost" not in vlog and "Invalid" not in vlog, "valgrind log", "", vlog)
    log(f"valgrind session clean in {time.monotonic() - t0:.1f}s")


def main():
    t0 = time.monotonic()
    os.makedirs(path("out"), exist_ok=True)
    with open(path("ssrf-lsan.supp"), "w") as f:
        f.write(LSAN_SUPPRESSIONS)
    make_media()
    start_servers()
    if len(sys.argv) > 3 and sys.argv[3] == "valgrind":
        return valgrind_session()
    test_no_allowance()
    p = start({"source_allow_cidrs": "127.0.0.1/32"})
    test_allowed(p)
    before = fds_and_tasks(p)
    test_refused(p)
    test_protocols(p)
    test_allowed(p, with_transcode=False)
    after = fds_and_tasks(p)
    check(after == before, "no fd or thread left by the calls", before, after)
    check(p.close() == 0, "clean exit")
    bad = [r for r in origin_requests if not re.match(r"(GET|HEAD) /", r)]
    check(bad == [], "the origin got origin-form requests only", [], bad)
    check(hits() == "", "the recorder saw no connection", "", hits())
    test_config()
    test_allow_private()
    log(f"all checks passed in {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report anything as a failure
        log(f"FAIL: {type(e).__name__}: {e}")
        save_logs()
        sys.exit(1)
    save_logs()
