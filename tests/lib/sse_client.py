#!/usr/bin/env python3
"""A strict Server-Sent Events client for the kernel's GET /v1/events, for
tests and bench/sse.sh (Debian has no Python SSE client, and a test must see
framing errors a lenient one would hide).

It speaks HTTP/1.1 over a plain socket, checks the response head
(200, text/event-stream, Cache-Control: no-store, X-Accel-Buffering: no),
decodes the chunked body and parses the stream strictly: every line is a
comment (":…"), "retry: <ms>", "id: …", "event: …" or "data: …"; every event
has exactly one id, event and data line; data is a JSON envelope whose id
and type equal the id and event lines. Anything else is a protocol error
(exit status 3).

Modes (each prints one JSON summary line on stdout):

  collect URL  [--until TYPE] [--count N] [--timeout S] [--out FILE] [--ready FILE]
      one client; writes each event as a JSON line to FILE, touches the
      ready file once the stream is open, stops after N events of TYPE
      (default: at the end of the stream or the timeout).
  many URL --clients N --expect ID[,ID…] [--ready FILE] [--progress FILE]
       [--hold FILE] [--timeout S]
      N clients on one selector loop (raise ulimit -n first); touches the
      ready file when all are open, then waits until each received the events
      with these ids (an envelope's data.sent_at, epoch seconds, gives the
      delivery latency); the progress file says how many ids every client
      has. Summary: clients, opened, received (by every client), and per id
      the latency p50/p99/max in ms.
  stall URL [--ready FILE] [--go FILE] [--timeout S]
      one client with a tiny receive buffer that reads nothing until FILE
      exists, then reads to the end. Summary: events, last event type, how
      the stream ended.

The token comes from $WE_TOKEN (Authorization: Bearer), unless --no-token.
"""
import argparse
import json
import os
import selectors
import socket
import sys
import time
import urllib.parse


class ProtocolError(Exception):
    pass


class Chunked:
    """Incremental decoder of a chunked HTTP body."""

    def __init__(self):
        self.buf = b""
        self.need = None  # bytes left in the current chunk (+2 for its CRLF)
        self.done = False

    def feed(self, data):
        self.buf += data
        out = []
        while not self.done:
            if self.need is None:
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                size = self.buf[:i].split(b";", 1)[0].strip()
                try:
                    n = int(size, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line {self.buf[:i]!r}")
                self.buf = self.buf[i + 2:]
                if n == 0:
                    self.done = True  # trailers (none expected) are ignored
                    break
                self.need = n
            if len(self.buf) < self.need + 2:
                break
            if self.buf[self.need:self.need + 2] != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            out.append(self.buf[:self.need])
            self.buf = self.buf[self.need + 2:]
            self.need = None
        return b"".join(out)


class Parser:
    """Strict SSE parser: feed(text bytes) returns complete events."""

    def __init__(self):
        self.buf = b""
        self.fields = {}
        self.comments = 0
        self.retry = None

    def feed(self, data):
        self.buf += data
        events = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                return events
            line, self.buf = self.buf[:i], self.buf[i + 1:]
            if b"\r" in line:
                raise ProtocolError(f"CR in line {line!r}")
            ev = self._line(line.decode("utf-8"))
            if ev:
                events.append(ev)

    def _line(self, line):
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, sep, value = line.partition(": ")
        if not sep or name not in ("id", "event", "data", "retry"):
            raise ProtocolError(f"unexpected line {line!r}")
        if name == "retry":
            if not value.isdigit() or self.fields:
                raise ProtocolError(f"bad retry line {line!r}")
            self.retry = int(value)
            return None
        if name in self.fields:
            raise ProtocolError(f"two {name} lines in one event")
        self.fields[name] = value
        return None

    def _dispatch(self):
        f, self.fields = self.fields, {}
        if not f:
            return None  # the blank line after retry
        if f.get("event") == "overflow" and "id" not in f:
            return {"id": None, "event": "overflow", "data": json.loads(f["data"])}
        if set(f) != {"id", "event", "data"}:
            raise ProtocolError(f"incomplete event {f}")
        env = json.loads(f["data"])
        if env.get("id") != f["id"] or env.get("type") != f["event"]:
            raise ProtocolError(f"id/event lines disagree with the envelope: {f}")
        return {"id": f["id"], "event": f["event"], "data": env}


def request_bytes(url, token):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    head = [f"GET {path} HTTP/1.1", f"Host: {u.netloc}", "Accept: text/event-stream"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode(), (u.hostname, u.port)


class Stream:
    """One SSE connection; drive it with on_readable() or run_blocking()."""

    def __init__(self, url, token, rcvbuf=None):
        req, addr = request_bytes(url, token)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(addr)
        self.sock.sendall(req)
        self.head = None
        self.raw = b""
        self.chunks = Chunked()
        self.parser = Parser()
        self.ended = None  # "clean" (terminal chunk), "eof" (closed mid-stream), "reset"
        self.opened = False  # head checked and retry hint seen

    def _check_head(self, head):
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        hdr = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdr[k.strip().lower()] = v.strip()
        self.status, self.headers = int(status[1]), hdr
        if self.status != 200:
            return
        want = {"content-type": "text/event-stream", "cache-control": "no-store",
                "x-accel-buffering": "no", "transfer-encoding": "chunked"}
        for k, v in want.items():
            if hdr.get(k, "").lower() != v:
                raise ProtocolError(f"header {k}: expected {v!r}, got {hdr.get(k)!r}")

    def feed(self, data):
        """Bytes from the socket; returns new events."""
        if self.head is not None and self.status != 200:
            self.body += data
            return []
        if self.head is None:
            self.raw += data
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return []
            self.head, data = self.raw[:i], self.raw[i + 4:]
            self._check_head(self.head)
            if self.status != 200:
                self.body = data
                return []
        events = self.parser.feed(self.chunks.feed(data))
        if self.parser.retry is not None:
            self.opened = True
        if self.chunks.done:
            self.ended = "clean"
        return events

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.ended = "reset"
            return []
        if not data:
            if self.ended is None:
                self.ended = "eof"
            return []
        return self.feed(data)

    def close(self):
        self.sock.close()


def summary(**kw):
    print(json.dumps(kw), flush=True)


def touch(path):
    if path:
        with open(path, "w"):
            pass


def mode_collect(a, token):
    s = Stream(a.url, token)
    out = open(a.out, "w") if a.out else None
    deadline = time.time() + a.timeout
    n_until, events, ready = 0, 0, False
    s.sock.settimeout(0.5)
    while s.ended is None and time.time() < deadline:
        try:
            evs = s.on_readable()
        except socket.timeout:
            evs = []
        if s.head is not None and s.status != 200:
            summary(status=s.status, body=s.body.decode(errors="replace"))
            return 0
        if s.opened and not ready:
            ready = True
            touch(a.ready)
        for ev in evs:
            events += 1
            if out:
                out.write(json.dumps(ev) + "\n")
                out.flush()
            if a.until and ev["event"] == a.until:
                n_until += 1
        if a.until and n_until >= a.count:
            break
        if a.comments:  # progress for tests that wait on keepalives
            with open(a.comments, "w") as f:
                f.write(str(s.parser.comments))
    summary(status=s.status, events=events, keepalives=s.parser.comments, ended=s.ended,
            timed_out=time.time() >= deadline, retry=s.parser.retry)
    s.close()
    return 0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else None


def mode_many(a, token):
    sel = selectors.DefaultSelector()
    streams = []
    for _ in range(a.clients):
        s = Stream(a.url, token)
        s.sock.setblocking(False)
        sel.register(s.sock, selectors.EVENT_READ, s)
        streams.append(s)
    ids = a.expect.split(",")
    got = {i: {} for i in ids}  # id -> stream -> latency (s)
    deadline = time.time() + a.timeout
    ready, done = False, 0
    while time.time() < deadline and done < len(ids):
        ready_keys = sel.select(timeout=0.2)
        now = time.time()  # when the data was there, before this loop's parsing delays it
        for key, _ in ready_keys:
            s = key.data
            for ev in s.on_readable():
                if ev["id"] in got and s not in got[ev["id"]]:
                    got[ev["id"]][s] = now - float(ev["data"]["data"].get("sent_at", now))
            if s.ended:
                sel.unregister(s.sock)
        if not ready and all(s.opened for s in streams):
            ready = True
            touch(a.ready)
        while done < len(ids) and len(got[ids[done]]) == len(streams):
            done += 1
            if a.progress:  # how many of the ids every client has
                with open(a.progress + ".tmp", "w") as f:
                    f.write(str(done))
                os.replace(a.progress + ".tmp", a.progress)
    rounds = []
    for i in ids:
        lat = [v * 1000.0 for v in got[i].values()]
        rounds.append({"id": i, "received": len(lat),
                       "min_ms": round(min(lat), 2) if lat else None,
                       "p50_ms": round(percentile(lat, 50), 2) if lat else None,
                       "p99_ms": round(percentile(lat, 99), 2) if lat else None,
                       "max_ms": round(max(lat), 2) if lat else None})
    bad = [s for s in streams if s.head is not None and s.status != 200]
    refused = {}
    for s in bad:
        code = json.loads(s.body or b"{}").get("error", {}).get("code")
        refused[f"{s.status} {code}"] = refused.get(f"{s.status} {code}", 0) + 1
    summary(clients=len(streams), opened=sum(s.opened for s in streams),
            received=min(r["received"] for r in rounds), non_200=len(bad), refused=refused,
            ended=sum(1 for s in streams if s.ended), rounds=rounds)
    if a.hold:  # keep the sockets open until told (bench: RSS while connected)
        while not os.path.exists(a.hold):
            time.sleep(0.1)
    for s in streams:
        s.close()
    return 0


def mode_stall(a, token):
    s = Stream(a.url, token, rcvbuf=4096)
    deadline = time.time() + a.timeout
    while not s.opened and s.ended is None and time.time() < deadline:
        s.on_readable()  # the head and the retry hint: the kernel has registered us
    touch(a.ready)
    while not os.path.exists(a.go) and time.time() < deadline:
        time.sleep(0.05)
    s.sock.settimeout(5)
    events, last = 0, None
    while s.ended is None and time.time() < deadline:
        try:
            evs = s.on_readable()
        except socket.timeout:
            break
        for ev in evs:
            events += 1
            last = ev["event"]
    summary(status=s.status, events=events, last=last, ended=s.ended)
    s.close()
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["collect", "many", "stall"])
    p.add_argument("url")
    p.add_argument("--until")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--out")
    p.add_argument("--ready")
    p.add_argument("--comments", help="collect: file kept holding the keepalive count")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--expect")
    p.add_argument("--go")
    p.add_argument("--hold", help="many: keep sockets open until this file exists")
    p.add_argument("--progress", help="many: file kept holding how many ids all clients have")
    p.add_argument("--no-token", action="store_true")
    a = p.parse_args()
    token = None if a.no_token else os.environ.get("WE_TOKEN")
    try:
        return {"collect": mode_collect, "many": mode_many, "stall": mode_stall}[a.mode](a, token)
    except ProtocolError as e:
        summary(protocol_error=str(e))
        return 3


if __name__ == "__main__":
    sys.exit(main())
