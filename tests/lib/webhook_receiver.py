#!/usr/bin/python3
"""A webhook endpoint for the tests: verifies WebEncode's signatures and
records every request.

Listens on 127.0.0.1 (a free port, written to --port-file), accepts POSTs on
any path and appends one JSON line per request to --out:
  {"t": receive time (epoch s), "path", "event", "delivery", "event_id",
   "timestamp", "sig_ok", "fresh", "answered", "body"}
The signature is checked as docs/webhooks.md tells receivers to:
  X-WebEncode-Signature == "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body))
compared in constant time, and the timestamp must be within --tolerance
seconds of now (replay protection). A request that fails either check is
answered 401 (and recorded). Otherwise the answer is 500 for the first
--fail-first N requests, then --status (default 200).
With --secret-file instead of --secret, the secret is read from that file at
every request (a per-job webhook's secret is known only once the job exists,
after the URL); while the file is empty the answer is 503 and nothing is
recorded.

Usage: webhook_receiver.py (--secret S | --secret-file F) --out FILE --port-file FILE
                           [--fail-first N] [--status CODE] [--tolerance S]
"""
import argparse
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret, headers, body, tolerance):
    ts = headers.get("X-WebEncode-Timestamp", "")
    sig = headers.get("X-WebEncode-Signature", "")
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    sig_ok = hmac.compare_digest(sig, "sha256=" + mac)
    fresh = ts.isdigit() and abs(time.time() - int(ts)) <= tolerance
    return sig_ok, fresh


def read_secret(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def main():
    ap = argparse.ArgumentParser()
    key = ap.add_mutually_exclusive_group(required=True)
    key.add_argument("--secret")
    key.add_argument("--secret-file")
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--tolerance", type=int, default=300)
    args = ap.parse_args()
    lock = threading.Lock()
    state = {"seen": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            secret = args.secret if args.secret is not None else read_secret(args.secret_file)
            if not secret:
                self.answer(503)
                return
            sig_ok, fresh = verify(secret, self.headers, body, args.tolerance)
            with lock:
                if not (sig_ok and fresh):
                    code = 401
                else:
                    state["seen"] += 1
                    code = 500 if state["seen"] <= args.fail_first else args.status
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                rec = {"t": time.time(), "path": self.path,
                       "event": self.headers.get("X-WebEncode-Event"),
                       "delivery": self.headers.get("X-WebEncode-Delivery"),
                       "event_id": self.headers.get("X-WebEncode-Event-Id"),
                       "timestamp": self.headers.get("X-WebEncode-Timestamp"),
                       "user_agent": self.headers.get("User-Agent"),
                       "content_type": self.headers.get("Content-Type"),
                       "sig_ok": sig_ok, "fresh": fresh, "answered": code, "body": parsed}
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
            self.answer(code)

        def answer(self, code):
            reply = json.dumps({"status": code}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, fmt, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
