"""A minimal NATS client over a plain socket, for tests that must talk to a
real nats-server without a kernel (Debian has no Python NATS client).

It speaks the text protocol (INFO/CONNECT/PING/PONG, PUB/HPUB, SUB/UNSUB,
MSG/HMSG with headers) and does JetStream through its JSON API by
request/reply on $JS.API.*:

    from nats_raw import Nats, JsError
    nc = Nats(port)                                 # CONNECT with headers on
    nc.stream_create("WORK", ["jobs.>"], retention="workqueue")
    nc.consumer_create("WORK", "dispatch-cpu", "jobs.dispatch.cpu", ack_wait_s=3)
    ack = nc.js_publish("jobs.dispatch.cpu", b"{...}", msg_id="t1.1")   # the PubAck dict
    sub = nc.subscribe("jobs.progress.>")          # core subscription
    msg = sub.next(timeout=5)                      # Msg(subject, data, reply, headers) or None
    msgs = nc.pull("WORK", "events", batch=10, expires_s=1)   # pull consumer fetch
    nc.ack(msgs[0]); msgs[0].meta()                # {"stream", "consumer", "delivered", ...}
    nc.consumer_info("WORK", "dispatch-cpu")       # dict, or raises JsError
    nc.close()

Everything blocks with a timeout; one reader thread delivers messages to
per-subscription queues. Not a general client: no reconnect, no TLS, no
auth — loopback test servers only.
"""
import itertools
import json
import os
import queue
import socket
import threading
import time


class JsError(Exception):
    """A JetStream API error: .code (HTTP-like), .err_code (JetStream's), text."""

    def __init__(self, error):
        self.code = error.get("code")
        self.err_code = error.get("err_code")
        super().__init__(f"{self.code}/{self.err_code}: {error.get('description')}")


class Msg:
    def __init__(self, subject, data, reply=None, headers=None, status=None):
        self.subject = subject
        self.data = data
        self.reply = reply
        self.headers = headers or {}
        self.status = status          # "404", "408", … for JetStream status messages
        self.received = time.time()

    def json(self):
        return json.loads(self.data)

    def meta(self):
        """Delivery metadata of a JetStream message, from its $JS.ACK reply subject."""
        t = (self.reply or "").split(".")
        if len(t) < 9 or t[0] != "$JS" or t[1] != "ACK":
            return None
        if len(t) >= 12:                # $JS.ACK.<domain>.<hash>.<stream>.…
            t = t[:2] + t[4:]
        return {"stream": t[2], "consumer": t[3], "delivered": int(t[4]),
                "stream_seq": int(t[5]), "consumer_seq": int(t[6]),
                "pending": int(t[8])}


class Sub:
    def __init__(self, nc, sid, subject):
        self.nc, self.sid, self.subject = nc, sid, subject
        self.q = queue.Queue()

    def next(self, timeout=5.0):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self):
        """Every message queued now."""
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                return out

    def unsubscribe(self):
        self.nc._send(f"UNSUB {self.sid}\r\n".encode())
        self.nc._subs.pop(self.sid, None)


class Nats:
    def __init__(self, port, host="127.0.0.1", name="nats_raw", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self._wlock = threading.Lock()
        self._subs = {}
        self._sids = itertools.count(1)
        self._pongs = queue.Queue()
        self.errors = []
        self._buf = b""
        self._closed = False
        self.info = json.loads(self._read_line().split(b" ", 1)[1])
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "name": name, "lang": "python-raw", "version": "0"}
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.flush(timeout)
        self._inbox = "_INBOX." + os.urandom(8).hex()
        self._replies = {}
        self._reply_sub = self.subscribe(self._inbox + ".*", _reply=True)

    # ---- wire -------------------------------------------------------------------
    def _send(self, data):
        with self._wlock:
            self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self._buf += chunk

    def _read_line(self):
        while b"\r\n" not in self._buf:
            self._fill()
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _read_bytes(self, n):
        while len(self._buf) < n + 2:
            self._fill()
        data, self._buf = self._buf[:n], self._buf[n + 2:]
        return data

    @staticmethod
    def _parse_headers(raw):
        lines = raw.decode(errors="replace").split("\r\n")
        status = None
        first = lines[0].split(" ", 2)
        if len(first) > 1:
            status = first[1]
        headers = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                headers[k.strip()] = v.strip()
        return headers, status

    def _deliver(self, sid, msg):
        sub = self._subs.get(sid)
        if sub is not None:
            sub.q.put(msg)

    def _read_loop(self):
        try:
            while not self._closed:
                line = self._read_line()
                op = line.split(b" ", 1)[0].upper()
                if op == b"MSG":
                    a = line.decode().split()
                    subject, sid = a[1], int(a[2])
                    reply = a[3] if len(a) == 5 else None
                    self._deliver(sid, Msg(subject, self._read_bytes(int(a[-1])), reply))
                elif op == b"HMSG":
                    a = line.decode().split()
                    subject, sid = a[1], int(a[2])
                    reply = a[3] if len(a) == 6 else None
                    hlen, total = int(a[-2]), int(a[-1])
                    raw = self._read_bytes(total)
                    headers, status = self._parse_headers(raw[:hlen])
                    self._deliver(sid, Msg(subject, raw[hlen:], reply, headers, status))
                elif op == b"PING":
                    self._send(b"PONG\r\n")
                elif op == b"PONG":
                    self._pongs.put(True)
                elif op == b"-ERR":
                    self.errors.append(line.decode(errors="replace"))
        except (OSError, ConnectionError):
            pass

    # ---- core ---------------------------------------------------------------------
    def flush(self, timeout=5.0):
        self._send(b"PING\r\n")
        self._pongs.get(timeout=timeout)

    def subscribe(self, subject, queue_group=None, _reply=False):
        sid = next(self._sids)
        sub = Sub(self, sid, subject)
        self._subs[sid] = sub
        q = f" {queue_group}" if queue_group else ""
        self._send(f"SUB {subject}{q} {sid}\r\n".encode())
        if not _reply:
            self.flush()
        return sub

    def publish(self, subject, data=b"", reply=None, headers=None):
        if isinstance(data, str):
            data = data.encode()
        r = f" {reply}" if reply else ""
        if headers:
            h = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            hb = h.encode()
            self._send(f"HPUB {subject}{r} {len(hb)} {len(hb) + len(data)}\r\n".encode()
                       + hb + data + b"\r\n")
        else:
            self._send(f"PUB {subject}{r} {len(data)}\r\n".encode() + data + b"\r\n")

    def request(self, subject, data=b"", timeout=5.0, headers=None):
        token = os.urandom(6).hex()
        reply = f"{self._inbox}.{token}"
        sub = self._reply_sub
        self.publish(subject, data, reply=reply, headers=headers)
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = self._replies.pop(token, None) or sub.next(max(0.0, deadline - time.time()))
            if msg is None:
                break
            if msg.subject == reply:
                if msg.status == "503":
                    raise JsError({"code": 503, "description": f"no responders on {subject}"})
                return msg
            self._replies[msg.subject.rsplit(".", 1)[1]] = msg
        raise TimeoutError(f"no reply on {subject} within {timeout} s")

    def close(self):
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # ---- JetStream ------------------------------------------------------------------
    def js_api(self, api, body=None, timeout=5.0):
        data = json.dumps(body).encode() if body is not None else b""
        resp = self.request("$JS.API." + api, data, timeout).json()
        if "error" in resp:
            raise JsError(resp["error"])
        return resp

    def stream_create(self, name, subjects, retention="limits", storage="file",
                      max_age_s=0, duplicate_window_s=120):
        return self.js_api(f"STREAM.CREATE.{name}", {
            "name": name, "subjects": subjects, "retention": retention, "storage": storage,
            "max_age": int(max_age_s * 1e9), "duplicate_window": int(duplicate_window_s * 1e9),
            "num_replicas": 1})

    def stream_info(self, name):
        return self.js_api(f"STREAM.INFO.{name}")

    def consumer_create(self, stream, durable, filter_subject, ack_wait_s=30,
                        max_deliver=-1, max_ack_pending=1000):
        cfg = {"durable_name": durable, "ack_policy": "explicit", "deliver_policy": "all",
               "filter_subject": filter_subject, "ack_wait": int(ack_wait_s * 1e9),
               "max_deliver": max_deliver, "max_ack_pending": max_ack_pending}
        return self.js_api(f"CONSUMER.DURABLE.CREATE.{stream}.{durable}",
                           {"stream_name": stream, "config": cfg})

    def consumer_info(self, stream, durable):
        return self.js_api(f"CONSUMER.INFO.{stream}.{durable}")

    def consumer_delete(self, stream, durable):
        return self.js_api(f"CONSUMER.DELETE.{stream}.{durable}")

    def js_publish(self, subject, data, msg_id=None, timeout=5.0):
        """Publishes to a stream; returns the PubAck ({stream, seq, duplicate?})."""
        if isinstance(data, str):
            data = data.encode()
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        resp = self.request(subject, data, timeout, headers=headers).json()
        if "error" in resp:
            raise JsError(resp["error"])
        return resp

    def pull(self, stream, durable, batch=1, expires_s=1.0, no_wait=False):
        """One pull request: the user messages that came (status messages dropped)."""
        inbox = f"_INBOX.pull.{os.urandom(6).hex()}"
        sub = self.subscribe(inbox)
        body = {"batch": batch}
        if no_wait:
            body["no_wait"] = True
        else:
            body["expires"] = int(expires_s * 1e9)
        self.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}", json.dumps(body),
                     reply=inbox)
        out, deadline = [], time.time() + expires_s + 1.0
        while len(out) < batch and time.time() < deadline:
            m = sub.next(max(0.0, deadline - time.time()))
            if m is None or m.status:
                break
            out.append(m)
        sub.unsubscribe()
        return out

    def ack(self, msg, kind=b"+ACK"):
        self.publish(msg.reply, kind)

    def term(self, msg):
        self.ack(msg, b"+TERM")
