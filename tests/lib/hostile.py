#!/usr/bin/env python3
"""Hostile requests against a running kernel (tests/integration/hostile.sh).

Sends several hundred requests built to break things — path traversal and
garbage in every {id}, bodies that are not JSON objects, nest too deep, are
too big, hold bad UTF-8, NULs or duplicate keys, injection strings (SQL,
shell, format, CRLF, HTML) in every string field of every body the API
takes, numbers for strings and strings for numbers, SSRF source URLs,
Content-Type lies, wrong methods and absurd query strings — and checks that
each gets a 4xx with a well-formed error envelope, that the kernel stays up,
that no shell payload ran, and that the database is unchanged: every table
but the bookkeeping ones (EXCLUDED below) has the same rows before and
after, except rows this script creates on purpose where a hostile string is
a legitimate value (job metadata, a profile's name, a token's name…) — those
must round-trip exactly and are excluded by id (then deleted).

The raw HTTP client below sends bytes as given (no URL or header
normalization), one connection per request, so an empty reply (the kernel
closing without answering) is seen as such.

Usage: hostile.py  (environment: WE_URL, WE_TOKEN, DATABASE_URL, WE_SRC, H_DIR)
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse

URL = os.environ["WE_URL"]
TOKEN = os.environ["WE_TOKEN"]
DB = os.environ["DATABASE_URL"]
SRC = os.environ["WE_SRC"]
H_DIR = os.environ["H_DIR"]
HOST, PORT = urllib.parse.urlsplit(URL).hostname, urllib.parse.urlsplit(URL).port
MAX_BODY = int(os.environ.get("MAX_BODY_BYTES", 1048576))
MAX_DEPTH = int(os.environ.get("MAX_JSON_DEPTH", 32))

# Tables left out of the comparison, and why:
EXCLUDED = {
    # every state-changing call is audited, refusals included (result
    # failure/denied): new rows here are the point, not a leak
    "audit_log": "records every refused call by design",
}
# error_events and notifications stay IN: a hostile request must not make
# the kernel log an error (errors.c copies every error-level line there).

MARK = "/tmp/we-pwned-%d" % os.getpid()  # what a shell payload would create
INJECTIONS = [
    "' OR 1=1--",
    "'; DROP TABLE jobs;--",
    "\"; DROP TABLE users; --",
    "$(touch %s)" % MARK,
    "`touch %s`" % MARK,
    ";touch %s;" % MARK,
    "|touch %s" % MARK,
    "%s%n%x%n%p%999999999s",
    "{{7*7}}${7*7}",
    "a\r\nX-Injected: 1\r\n\r\n<html>",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "\u202e\ufeff\u200b",
    "\U0001d54f\U0001f600 \u00e9",
    "x" * 5000,
]
# Values of the wrong type, as JSON text (1e400 and 2^64 are not even
# representable: jansson refuses them while parsing).
# null is not among them: an optional member that is null counts as absent
# (the auth plugin's and the plugin-config readers' convention), so null is
# tried on required members only (BodyRoute.required).
WRONG_TYPES_FOR_STRING = ["42", "-0", "1e400", "18446744073709551616", "true", "[]", "{}",
                          "[\"a\"]", "3.14"]
WRONG_TYPES_FOR_NUMBER = ["\"5\"", "\"1e3\"", "1e400", "18446744073709551616",
                          "-9223372036854775809", "true", "[]", "{}", "1.5", "-0.0",
                          "\"$(touch %s)\"" % MARK]
WRONG_TYPES_FOR_BOOL = ["\"true\"", "1", "0", "[]", "{}", "\"' OR 1=1--\""]

BAD_IDS = [
    "..%2F..%2Fetc%2Fpasswd", "..%2f..%2f..%2fetc%2fshadow", "%2e%2e", "..", ".", "%00",
    "x%00y", "a" * 4000, "%C3%A9%E2%82%AC%F0%9F%98%80", "%ff%fe%fd", "%c3", "%ed%a0%80",
    "'%3B%20DROP%20TABLE%20jobs%3B--", "1%20OR%201%3D1", "%24(touch%20" + urllib.parse.quote(MARK, safe="") + ")",
    "%25s%25n%25x", "%3Cscript%3E", "%0d%0aX-Injected:%201", "-1", "0",
    "99999999999999999999999", "null", "00000000-0000-0000-0000-000000000000",
    "00000000-0000-0000-0000-00000000000g", "{id}",
]

STATS = {"sent": 0, "failures": []}


# ---- a raw HTTP/1.1 client ---------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def send(method, target, body=None, headers=None, ctype="application/json", token=True,
         head_only=False, timeout=15):
    """One request on a fresh connection; None when no answer came back."""
    if isinstance(target, str):
        target = target.encode()
    if isinstance(method, str):
        method = method.encode()
    if isinstance(body, str):
        body = body.encode()
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: %s:%d" % (HOST.encode(), PORT),
             b"Connection: close"]
    if token:
        lines.append(b"Authorization: Bearer " + TOKEN.encode())
    if ctype is not None and body is not None:
        lines.append(b"Content-Type: " + (ctype.encode() if isinstance(ctype, str) else ctype))
    for k, v in (headers or []):
        lines.append((k.encode() if isinstance(k, str) else k) + b": " +
                     (v.encode() if isinstance(v, str) else v))
    if body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
    STATS["sent"] += 1
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    data = b""
    try:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (413) and closed before reading it all: read the answer
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                return None
            if not chunk:
                break
            data += chunk
            if head_only and b"\r\n\r\n" in data:
                break
    finally:
        s.close()
    if b"\r\n\r\n" not in data:
        return None
    head, _, rest = data.partition(b"\r\n\r\n")
    hl = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", hl[0])
    if not m:
        return None
    hdrs = {}
    for h in hl[1:]:
        k, _, v = h.partition(b":")
        hdrs.setdefault(k.strip().lower().decode("latin-1"), []).append(v.strip().decode("latin-1"))
    if "chunked" in ",".join(hdrs.get("transfer-encoding", [])).lower() and not head_only:
        out, buf = b"", rest
        while buf:
            size_s, _, buf = buf.partition(b"\r\n")
            size = int(size_s.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out, buf = out + buf[:size], buf[size + 2:]
        rest = out
    return Resp(int(m.group(1)), hdrs, rest)


def fail(what, msg):
    STATS["failures"].append("%s: %s" % (what, msg))
    if len(STATS["failures"]) <= 60:
        print("FAIL %s: %s" % (what, msg), file=sys.stderr, flush=True)


def envelope_ok(what, r):
    """The error envelope of DESIGN §8; False (after recording why) if not."""
    try:
        e = r.json()["error"]
        if not re.fullmatch(r"WE-[A-Z]+-\d{3}", e["code"]):
            raise ValueError("code %r" % e["code"])
        if not isinstance(e["message"], str) or not e["message"]:
            raise ValueError("message")
        if not isinstance(e.get("request_id"), str) or not isinstance(e.get("timestamp"), str):
            raise ValueError("request_id/timestamp")
    except Exception as ex:  # noqa: BLE001 - any shape problem is the finding
        fail(what, "%d without a well-formed error envelope (%s): %r" % (r.status, ex, r.body[:200]))
        return False
    ct = ",".join(r.headers.get("content-type", []))
    if not ct.startswith("application/json"):
        fail(what, "error envelope with Content-Type %r" % ct)
        return False
    for k in r.headers:
        if k.startswith("x-injected"):
            fail(what, "a header was injected")
    return True


def refused(what, method, target, body=None, expect=None, envelope=True, **kw):
    """Expects a 4xx (one of expect, when given) with the error envelope."""
    r = send(method, target, body, **kw)
    if r is None:
        fail(what, "no answer (connection closed without a response)")
        return None
    if r.status // 100 != 4 or (expect and r.status not in expect):
        fail(what, "status %d (wanted %s): %r" % (r.status, expect or "4xx", r.body[:300]))
        return r
    if envelope:
        envelope_ok(what, r)
    alive_every()
    return r


_last_alive = [0]


def alive_every(n=50):
    if STATS["sent"] - _last_alive[0] < n:
        return
    _last_alive[0] = STATS["sent"]
    r = send("GET", "/v1/health", token=False)
    if r is None or r.status != 200:
        fail("liveness", "GET /v1/health after %d requests: %s" % (STATS["sent"], r and r.status))
        print("\n".join(STATS["failures"]), file=sys.stderr)
        sys.exit(1)


def call(method, target, body=None, **kw):
    """A request the script needs to succeed (setup, round trips, cleanup)."""
    r = send(method, target, body, **kw)
    if r is None or r.status // 100 != 2:
        raise SystemExit("setup %s %s failed: %s %r" % (method, target, r and r.status,
                                                         r and r.body[:300]))
    return r.json() if r.body else None


# ---- the database ------------------------------------------------------------------------

def psql(sql):
    return subprocess.run(["psql", DB, "-qAtX", "-v", "ON_ERROR_STOP=1"], input=sql + ";\n",
                          check=True, capture_output=True, text=True).stdout


def snapshot(skip_ids=()):
    """Per table: row count and md5 of the ordered rows, without the rows
    whose id (or job_id, user_id, webhook_id, task_id) is in skip_ids."""
    cols = {}
    for line in psql("SELECT table_name, column_name FROM information_schema.columns "
                     "WHERE table_schema = 'public'").splitlines():
        t, c = line.split("|")
        cols.setdefault(t, set()).add(c)
    tables = [t for t in psql("SELECT table_name FROM information_schema.tables WHERE "
                              "table_schema = 'public' AND table_type = 'BASE TABLE' "
                              "ORDER BY 1").split() if t not in EXCLUDED]
    ids = "ARRAY[%s]::text[]" % ",".join("'%s'" % i for i in skip_ids) if skip_ids else None
    parts = []
    for t in tables:
        where = ""
        if ids:
            conds = ["(x.%s IS NULL OR x.%s::text <> ALL(%s))" % (c, c, ids)
                     for c in ("id", "job_id", "user_id", "webhook_id", "task_id")
                     if c in cols[t]]
            where = " WHERE " + " AND ".join(conds) if conds else ""
        parts.append("SELECT '%s', count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY "
                     "x::text), '')) FROM %s x%s" % (t, t, where))
    out = psql(" UNION ALL ".join(parts))
    return {line.split("|")[0]: line for line in out.splitlines()}


# ---- the route table ---------------------------------------------------------------------

def routes():
    text = open(os.path.join(SRC, "src/kernel/routes.c")).read()
    found = re.findall(r'\{ "([A-Z]+)", "([^"]+)", [a-z_]+,\s*(KN_[A-Z]+) \}', text)
    if len(found) < 40:
        raise SystemExit("route table not parsed: %d routes" % len(found))
    return found


# ---- bodies ------------------------------------------------------------------------------

def leaves(v, path=()):
    """(path, value) of every scalar in a JSON value."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield from leaves(x, path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from leaves(x, path + (i,))
    else:
        yield path, v


def with_value(doc, path, raw):
    """doc as JSON text with the value at path replaced by the JSON text raw."""
    marker = "\u0001HOSTILE\u0001"
    d = json.loads(json.dumps(doc))
    cur = d
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = marker
    return json.dumps(d).replace(json.dumps(marker), raw)


def get_path(doc, path):
    for p in path:
        doc = doc[p]
    return doc


CREATED = {"jobs": [], "profiles": [], "tokens": [], "webhooks": [], "users": []}
SEQ = [0]


def fresh(prefix):
    SEQ[0] += 1
    return "%s-%d" % (prefix, SEQ[0])


# ---- the scenario ------------------------------------------------------------------------

PROFILE_CONFIG = {"video": {"codec": "libx264", "width": 1280, "height": 720, "crf": 23,
                            "preset": "fast", "gop_s": 2.5, "pix_fmt": "yuv420p", "profile": "high"},
                  "audio": {"codec": "aac", "bitrate_kbps": 128, "channels": 2,
                            "sample_rate": 48000},
                  "container": "mp4", "faststart": True}
HOOK_URL = "https://93.184.216.34/hook"  # a public literal: no DNS needed
STORAGE_ROOT = os.environ.get("STORAGE_FS_ROOT", "/nonexistent")


def job_body():
    return {"source_url": "fs://in/hostile.mp4", "profiles": ["720p-h264"], "priority": 1,
            "metadata": {"title": "t", "n": 1}, "publish_targets": [{"platform": "youtube"}],
            "webhook_urls": [HOOK_URL], "capability": "cpu"}


def check_job(doc, sent):
    j = call("GET", "/v1/jobs/" + doc["id"])
    want = json.loads(sent)
    if "metadata" in want and j.get("metadata") != want["metadata"]:
        fail("job metadata round trip", "sent %r, shown %r" % (want["metadata"], j.get("metadata")))
    stored = json.loads(psql("SELECT publish_targets FROM jobs WHERE id = '%s'" % doc["id"]))
    if "publish_targets" in want and stored != want["publish_targets"]:
        fail("job publish_targets round trip", "sent %r, stored %r"
             % (want["publish_targets"], stored))
    if doc["id"] not in CREATED["jobs"]:
        CREATED["jobs"].append(doc["id"])


def check_profile(doc, sent):
    p = call("GET", "/v1/profiles/" + doc["id"])
    want = json.loads(sent)
    for k in ("name", "description"):
        if k in want and p.get(k) != want[k]:
            fail("profile %s round trip" % k, "sent %r, stored %r" % (want[k], p.get(k)))
    if doc["id"] not in CREATED["profiles"]:
        CREATED["profiles"].append(doc["id"])


def check_token(doc, sent):
    want = json.loads(sent)
    items = call("GET", "/v1/tokens?user_id=" + want["user_id"])["items"]
    mine = [t for t in items if t.get("token_id", t.get("id")) == doc.get("token_id")]
    if not mine or mine[0].get("name") != want["name"]:
        fail("token name round trip", "sent %r, listed %r" % (want["name"], mine))
    CREATED["tokens"].append(doc["token_id"])


def check_created(kind):
    def f(doc, sent):
        CREATED[kind].append(doc.get("id") or doc.get("user_id"))
    return f


class BodyRoute:
    """A route that takes a JSON object: its valid body, the leaves where a
    hostile string is a legitimate value (free), and what to do with a
    resource made that way."""

    def __init__(self, method, pattern, target, base, free=(), on_create=None, free_target=None,
                 required=(), fixed=()):
        self.method, self.pattern, self.target, self.base = method, pattern, target, base
        self.free, self.on_create = free, on_create
        self.required, self.fixed = required, fixed  # fixed: leaves left alone
        self.free_target = free_target or target

    def is_free(self, path):
        return any(path[:len(f)] == f for f in self.free)

    def send(self, what, body, path, ctype="application/json", headers=None):
        free = path is not None and self.is_free(path)
        target = self.free_target() if free and callable(self.free_target) else (
            self.free_target if free else self.target)
        if not free:
            return refused(what, self.method, target, body, ctype=ctype, headers=headers)
        r = send(self.method, target, body, ctype=ctype, headers=headers)
        if r is None:
            fail(what, "no answer")
        elif r.status // 100 == 2:
            if self.on_create:
                self.on_create(r.json() if r.body else {}, body)
        elif r.status // 100 == 4:
            envelope_ok(what, r)
        else:
            fail(what, "status %d: %r" % (r.status, r.body[:300]))
        alive_every()
        return r


def attack_body(rt):
    name = "%s %s" % (rt.method, rt.pattern)
    base = rt.base()
    # every leaf: injections into strings, wrong types everywhere
    for path, v in list(leaves(base)):
        if path in rt.fixed:
            continue
        if isinstance(v, str):
            values = [json.dumps(s) for s in INJECTIONS] + WRONG_TYPES_FOR_STRING
        elif isinstance(v, bool):
            values = WRONG_TYPES_FOR_BOOL + [json.dumps(s) for s in INJECTIONS[:4]]
        elif isinstance(v, float):  # a real: 1.5 is a fine one
            values = [x for x in WRONG_TYPES_FOR_NUMBER if x != "1.5"]
        else:
            values = WRONG_TYPES_FOR_NUMBER
        for raw in values:
            rt.send("%s %s=%s" % (name, "/".join(map(str, path)), raw[:40]),
                    with_value(rt.base(), path, raw), path)
    # whole members of another shape, unknown members named like attacks
    for k, v in base.items():
        shapes = {str: "\"x\"", bool: "true", int: "42", list: "[[[]]]", dict: "{}"}
        for t, raw in list(shapes.items()) + [(None, "[]")]:
            if t is not type(v) and not (raw == "[]" and isinstance(v, list)):
                rt.send("%s %s=%s" % (name, k, raw), with_value(rt.base(), (k,), raw), (k,))
    for k in rt.required:
        rt.send("%s %s=null" % (name, k), with_value(rt.base(), (k,), "null"), None)
        b = rt.base()
        del b[k]
        rt.send("%s without %s" % (name, k), json.dumps(b), None)
    for key in INJECTIONS[:6] + ["\u00e9" * 100, "k" * 300]:
        b = rt.base()
        b[key] = 1
        rt.send("%s unknown member %r" % (name, key[:30]), json.dumps(b), None)
    # not an object, not JSON, too deep, too big, bad bytes, duplicates, lies
    for raw in ("", "not json", "{", "{'a':1}", "<x/>", "\x00\x01", "{\"a\":1}garbage", "[1,2",
                "[]", "[{}]", "\"str\"", "42", "-0", "1e400", "null", "true",
                "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
                "{\"a\":" * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
                "[" * 100000):
        rt.send("%s body %r" % (name, raw[:20]), raw, None)
    valid = json.dumps(base)
    first = next(iter(base))
    deep = with_value(base, (first,), "[" * MAX_DEPTH + "]" * MAX_DEPTH)
    rt.send("%s member nested %d deep" % (name, MAX_DEPTH + 1), deep, None)
    rt.send("%s body over MAX_BODY_BYTES" % name,
            valid[:-1] + ", \"pad\": \"" + "x" * MAX_BODY + "\"}", None)
    for bad in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80",
                b"\\\xde\xa2"):
        rt.send("%s bad UTF-8 %r" % (name, bad), valid.encode().replace(b"{", b"{\"a\": \"" + bad + b"\", ", 1), None)
    for s in (leaf for leaf, v in leaves(base) if isinstance(v, str)):
        rt.send("%s NUL in %s" % (name, s), with_value(rt.base(), s, "\"a\\u0000b\""), None)
        rt.send("%s lone surrogate in %s" % (name, s), with_value(rt.base(), s, "\"\\ud800\""), None)
        break
    rt.send("%s raw NUL byte" % name, valid.encode().replace(b"{", b"{\"a\":\"\x00\",", 1), None)
    rt.send("%s duplicate key" % name, "{%s, %s}" % (valid[1:-1], valid[1:-1]), None)
    for ct in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
               "application/xml", "text/json", "application/jso", "*/*"):
        rt.send("%s Content-Type %s" % (name, ct), valid, None, ctype=ct)


def attack_ids(table):
    uuid0 = "00000000-0000-4000-8000-000000000000"
    for method, pattern, _role in table:
        if "{" not in pattern:
            continue
        for bad in BAD_IDS:
            target = re.sub(r"\{[a-z_]+\}", lambda m: bad, pattern)
            body = None
            if method in ("POST", "PUT", "PATCH"):
                body = json.dumps(ID_BODIES.get(pattern, {}))
            refused("%s %s id=%s" % (method, pattern, bad[:30]), method, target, body)
        # the first capture real-looking, the second hostile (and the other way round)
        if pattern.count("{") == 2:
            for bad in BAD_IDS[:8]:
                refused("%s %s second id=%s" % (method, pattern, bad[:30]), method,
                        pattern.replace("{id}", uuid0).replace("{delivery_id}", bad))


ID_BODIES = {}


def attack_methods(table):
    by_path = {}
    for method, pattern, _role in table:
        by_path.setdefault(pattern, set()).add(method)
    def routed(method, path):  # as kn_route_match: {x} is one non-empty segment
        return any(m == method and re.fullmatch(re.sub(r"\{[a-z_]+\}", "[^/]+", p), path)
                   for m, p, _ in table)
    for pattern, methods in by_path.items():
        target = re.sub(r"\{[a-z_]+\}", "00000000-0000-4000-8000-000000000000", pattern)
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "FOO", "OPTIONS"):
            if m in methods:
                continue
            body = "{}" if m in ("POST", "PUT", "PATCH") else None
            # /v1/notifications/read-all is also /v1/notifications/{id}: a 404 there
            expect = None if routed(m, target) else (403,) if m == "OPTIONS" else (405,)
            refused("%s %s (not routed)" % (m, pattern), m, target, body, expect=expect)


def attack_queries(victim_hook):
    limits = ["-1", "0", "1e9", "99999999999999999999", "abc", "", "%00", "1%3BDROP", "0x10",
              "%ff", "1.5", "+1%20"]
    cursors = ["garbage", "%ff%fe", "A" * 5000, "Jw", "MjAyNi0wMS0wMXwneA",
               "'%20OR%201%3D1--"]
    bad_text = ["%ff", "%c3%28", "%ed%a0%80", "x" * 300]
    lists = {
        "/v1/jobs": {"limit": limits, "cursor": cursors,
                     "status": ["%3Cscript%3E", "queued,%3Cx%3E", "%ff", "queued%01"],
                     "q": bad_text[:3] + ["x" * 201], "profile": bad_text,
                     "created_after": ["yesterday", "%ff", "2026-13-01T00:00:00Z"],
                     "created_before": ["1e9", "2026-01-01"]},
        "/v1/audit": {"limit": limits, "cursor": cursors, "user": bad_text[:3] + ["u" * 129],
                      "action": ["%3Cscript%3E", "job.%2A%2A", "%ff"],
                      "resource_type": bad_text[:3] + ["t" * 65],
                      "resource_id": bad_text[:3] + ["i" * 81],
                      "result": ["%3Cscript%3E", "%ff"], "since": ["now"], "until": ["%ff"],
                      "format": ["xml", "%ff"]},
        "/v1/errors": {"limit": limits, "cursor": cursors,
                       "severity": ["%3Cscript%3E", "error,%ff"],
                       "source": bad_text[:3] + ["s" * 129], "resolved": ["maybe", "%ff"],
                       "since": ["%27%20OR%201%3D1--"]},
        "/v1/notifications": {"limit": limits, "cursor": cursors, "unread": ["maybe", "%ff"]},
        "/v1/webhooks/%s/deliveries" % victim_hook: {"limit": limits, "cursor": cursors,
                                                     "status": ["%3Cscript%3E", "%ff"]},
        "/v1/profiles": {"system": ["maybe", "%ff", "1"]},
        "/v1/events": {"job_id": ["%ff", "'%20OR%201%3D1--", "x" * 300],
                       "stream_id": ["%3Cscript%3E"], "worker_id": ["..%2F..", "%ff"],
                       "types": ["%3Cscript%3E", "job.%ff"]},
    }
    for path, params in lists.items():
        for p, values in params.items():
            for v in values:
                refused("GET %s?%s=%s" % (path, p, v[:30]), "GET", "%s?%s=%s" % (path, p, v),
                        head_only=path == "/v1/events")
    # free-text filters: injections are searched for, as data
    for path, p in (("/v1/jobs", "q"), ("/v1/audit", "resource_id"), ("/v1/errors", "source")):
        for s in INJECTIONS[:9]:
            r = send("GET", "%s?%s=%s" % (path, p, urllib.parse.quote(s, safe="")))
            if r is None or r.status not in (200, 400):
                fail("GET %s?%s=%r" % (path, p, s[:20]), "status %s" % (r and r.status))
            elif r.status == 200:
                for item in r.json().get("items", []):  # only rows that hold it, as data
                    if s.lower() not in json.dumps(item, ensure_ascii=False).lower():
                        fail("GET %s?%s=%r" % (path, p, s[:20]), "matched %r" % item)


def attack_sources():
    ssrf = ["http://127.0.0.1/v.mp4", "http://[::1]/v.mp4", "http://169.254.169.254/latest/meta-data",
            "http://0x7f000001/", "http://2130706433/", "http://017700000001/", "http://127.1/",
            "http://0/", "http://localhost./x", "http://localhost/x", "http://10.0.0.1/",
            "http://192.168.1.1/", "http://172.16.0.1/", "http://100.64.0.1/",
            "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/", "http://[fe80::1]/", "http://[fd00::1]/",
            "http://user:pw@93.184.216.34/", "http://93.184.216.34@127.0.0.1/",
            "http://127.0.0.1:22/", "https://127.0.0.1:443/", "http://[::]/",
            "http://224.0.0.1/", "http://255.255.255.255/", "http://0.0.0.0:80/",
            "gopher://127.0.0.1:70/_x", "file:///etc/passwd", "file://localhost/etc/passwd",
            "ftp://93.184.216.34/x", "dict://127.0.0.1:11211/", "ldap://127.0.0.1/",
            "jar:http://127.0.0.1!/", "HTTP://127.0.0.1/", "fs://../../etc/passwd",
            "fs:///etc/passwd", "fs://a/../../etc/passwd", "fs://./x", "fs://a//b",
            "fs://a%2F..%2F..%2Fetc", "fs://a\\..\\b", "s3://bucket/../../etc/passwd",
            "s3://127.0.0.1/key", "file:///" + H_DIR + "/../../etc/passwd", "javascript:alert(1)",
            "data:text/plain,x", "//127.0.0.1/x", "http:/127.0.0.1/x", "http://127.0.0.1%2f@x/",
            "http://%31%32%37.0.0.1/", "http://127.0.0.1 /x", "http://exa mple.com/"]
    for s in ssrf:
        b = job_body()
        b["source_url"] = s
        r = refused("POST /v1/jobs source_url=%s" % s, "POST", "/v1/jobs", json.dumps(b),
                    expect=(422,))


def attack_headers():
    b = json.dumps(job_body())
    for k in ("' OR 1=1--", "$(touch %s)" % MARK, "%s%n%x"):
        r = send("POST", "/v1/jobs", b, headers=[("Idempotency-Key", k)])
        if r is None or r.status != 201:
            fail("Idempotency-Key %r" % k, "status %s" % (r and r.status))
            continue
        check_job(r.json(), b)
        again = send("POST", "/v1/jobs", b, headers=[("Idempotency-Key", k)])
        if again is None or again.status // 100 != 2 or again.json()["id"] != r.json()["id"]:
            fail("Idempotency-Key %r repeated" % k, "did not return the same job")
    for k in (b"\xff\xfe", b"", b"k" * 300, b"a\x01b", b"caf\xc3\xa9"):
        refused("Idempotency-Key %r" % k[:20], "POST", "/v1/jobs", b,
                headers=[("Idempotency-Key", k)], expect=(400,))
    for rid in (b"<script>", b"a" * 100, b"x'; DROP", b"\xff", b"%0d%0aX-Injected: 1"):
        r = send("GET", "/v1/jobs/nope", headers=[("X-Request-Id", rid)])
        got = r and r.headers.get("x-request-id", [""])[0]
        if r is None or not re.fullmatch(r"[A-Za-z0-9_-]{1,39}", got or ""):
            fail("X-Request-Id %r" % rid[:20], "echoed %r" % got)
        elif r:
            envelope_ok("X-Request-Id %r" % rid[:20], r)
    # a path with an encoded CRLF: the reply's headers stay the kernel's
    refused("CRLF in path", "GET", "/v1/nothing%0d%0aX-Injected:%201", expect=(404,))
    refused("bad UTF-8 in an unrouted path", "GET", "/v1/nothing/%ff%fe", expect=(404,))
    for pre in ("/v1/", "/v1/x"):  # the 404 message quotes 200 bytes: one cut is mid-character
        refused("long UTF-8 in an unrouted path", "GET", pre + "%C3%A9" * 150, expect=(404,))
    refused("raw bytes in path", "GET", b"/v1/jobs/\xff\xfe", expect=(400, 404))
    r = send("GET", "/v1/jobs/" + "a" * 100000)
    if r is not None and r.status // 100 != 4:
        fail("100 kB URL", "status %d" % r.status)


def main():
    if os.path.exists(MARK):
        os.unlink(MARK)
    table = routes()
    # resources the hostile requests aim at, made before the snapshot
    call("POST", "/v1/profiles", json.dumps({"id": "hostile-victim", "name": "Victim",
                                             "config": PROFILE_CONFIG}))
    victim_user = call("POST", "/v1/users", json.dumps(
        {"username": "hostile-victim", "password": "correct-horse-battery-staple",
         "role": "operator"}))["user_id"]
    victim_hook = call("POST", "/v1/webhooks", json.dumps(
        {"url": HOOK_URL, "events": ["job.completed"], "secret": "victim-secret-0123456789"}))["id"]
    before = snapshot()

    scratch = {}

    def once(key, make):
        def target():
            if key not in scratch:
                scratch[key] = make()
            return scratch[key]
        return target

    def make_profile():
        pid = fresh("hostile-scratch")
        call("POST", "/v1/profiles", json.dumps({"id": pid, "name": "S", "config": PROFILE_CONFIG}))
        CREATED["profiles"].append(pid)
        return "/v1/profiles/" + pid

    def make_user():
        uid = call("POST", "/v1/users", json.dumps(
            {"username": fresh("hostile-scratch"), "password": "correct-horse-battery-staple",
             "role": "viewer"}))["user_id"]
        CREATED["users"].append(uid)
        return "/v1/users/%s/password" % uid

    def make_hook():
        hid = call("POST", "/v1/webhooks", json.dumps({"url": HOOK_URL, "events": ["job.failed"]}))["id"]
        CREATED["webhooks"].append(hid)
        return "/v1/webhooks/" + hid

    scratch_profile, scratch_user = once("p", make_profile), once("u", make_user)
    scratch_hook = once("h", make_hook)

    hook_body = lambda: {"url": HOOK_URL, "events": ["job.completed", "job.failed"],  # noqa: E731
                         "secret": "s3cret-0123456789abcdef", "active": True}
    body_routes = [
        BodyRoute("POST", "/v1/jobs", "/v1/jobs", job_body,
                  free=(("metadata",), ("publish_targets",)), on_create=check_job,
                  required=("source_url", "profiles")),
        BodyRoute("POST", "/v1/profiles", "/v1/profiles",
                  lambda: {"id": fresh("hostile-p"), "name": "n", "description": "d",
                           "config": PROFILE_CONFIG},
                  free=(("name",), ("description",)), on_create=check_profile,
                  required=("id", "name")),
        BodyRoute("PUT", "/v1/profiles/{id}", "/v1/profiles/hostile-victim",
                  lambda: {"name": "n2", "description": "d2", "config": PROFILE_CONFIG},
                  free=(("name",), ("description",)), on_create=check_profile,
                  free_target=scratch_profile),
        BodyRoute("POST", "/v1/users", "/v1/users",
                  lambda: {"username": fresh("hostile-u"), "password": "correct-horse-battery-x",
                           "role": "viewer"},
                  free=(("password",),), on_create=check_created("users"),
                  required=("username", "password")),
        BodyRoute("PATCH", "/v1/users/{id}", "/v1/users/" + victim_user,
                  lambda: {"role": "viewer", "disabled": False}),
        BodyRoute("PUT", "/v1/users/{id}/password", "/v1/users/%s/password" % victim_user,
                  lambda: {"password": "another-horse-battery-staple"},
                  free=(("password",),), free_target=scratch_user, required=("password",)),
        BodyRoute("POST", "/v1/tokens", "/v1/tokens",
                  lambda: {"user_id": victim_user, "name": "t", "role": "viewer",
                           "expires_in_s": 3600},
                  free=(("name",),), on_create=check_token, required=("user_id",)),
        BodyRoute("POST", "/v1/webhooks", "/v1/webhooks", hook_body,
                  free=(("secret",),), on_create=check_created("webhooks"),
                  required=("url", "events")),
        BodyRoute("PUT", "/v1/webhooks/{id}", "/v1/webhooks/" + victim_hook, hook_body,
                  free=(("secret",),), free_target=scratch_hook),
        BodyRoute("POST", "/v1/plugins", "/v1/plugins", lambda: {"id": "storage-fs"},
                  required=("id",)),
        # storage-fs's root is an admin-chosen path by design (any string is a
        # legitimate value, and a change restarts the plugin): the bodies here
        # all carry a bad create_root, so each must be refused as a whole.
        BodyRoute("PUT", "/v1/plugins/{id}/config", "/v1/plugins/storage-fs/config",
                  lambda: {"config": {"root": STORAGE_ROOT, "browse_roots": "",
                                      "create_root": "yes"}},
                  fixed=(("config", "create_root"),), required=("config",)),
    ]
    ID_BODIES.update({rt.pattern: rt.base() for rt in body_routes})
    ID_BODIES["/v1/plugins/{id}/config"] = {"config": {"create_root": True}}
    ID_BODIES["/v1/profiles/{id}"] = {"name": "n"}
    # every route that takes a body must be covered here, or named as one that takes none
    no_body = {"/v1/workers/{id}/drain", "/v1/workers/{id}/undrain", "/v1/plugins/{id}/enable",
               "/v1/plugins/{id}/disable", "/v1/plugins/{id}/reload", "/v1/jobs/{id}/cancel",
               "/v1/jobs/{id}/retry", "/v1/errors/{id}/resolve", "/v1/notifications/read-all",
               "/v1/notifications/{id}/read",
               "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", "/v1/webhooks/{id}/test"}
    covered = {(rt.method, rt.pattern) for rt in body_routes}
    for method, pattern, _ in table:
        if method in ("POST", "PUT", "PATCH") and (method, pattern) not in covered \
                and pattern not in no_body:
            fail("coverage", "%s %s takes a body but has no hostile bodies here" % (method, pattern))

    t0 = time.time()
    for rt in body_routes:
        attack_body(rt)
    print("bodies: %d requests (%.1f s)" % (STATS["sent"], time.time() - t0), file=sys.stderr)
    attack_ids(table)
    print("ids: %d requests" % STATS["sent"], file=sys.stderr)
    attack_methods(table)
    attack_queries(victim_hook)
    attack_sources()
    attack_headers()
    print("all: %d requests (%.1f s)" % (STATS["sent"], time.time() - t0), file=sys.stderr)

    alive_every(0)
    if os.path.exists(MARK):
        fail("shell", "%s exists: a shell payload ran" % MARK)
    plug = call("GET", "/v1/plugins/storage-fs")
    if plug.get("state") not in ("healthy", "starting"):
        fail("storage-fs", "state %r after the hostile config bodies" % plug.get("state"))

    # the resources made on purpose, then the rest of the database
    ids = set(i for v in CREATED.values() for i in v if i)
    if CREATED["jobs"]:
        ids |= set(psql("SELECT id FROM tasks WHERE job_id::text = ANY(ARRAY[%s])"
                        % ",".join("'%s'" % j for j in CREATED["jobs"])).split())
    for j in CREATED["jobs"]:
        call("DELETE", "/v1/jobs/" + j)
    for t in CREATED["tokens"]:
        call("DELETE", "/v1/tokens/" + t)
    for h in CREATED["webhooks"]:
        call("DELETE", "/v1/webhooks/" + h)
    for p in CREATED["profiles"]:
        call("DELETE", "/v1/profiles/" + p)
    for u in CREATED["users"]:
        call("DELETE", "/v1/users/" + u)
    time.sleep(0.5)  # the error tracker writes in batches
    after = snapshot(ids)
    for t in sorted(set(before) | set(after)):
        if before.get(t) != after.get(t):
            fail("database", "table %s changed: %s -> %s" % (t, before.get(t), after.get(t)))
    legit = {k: len(v) for k, v in CREATED.items()}
    print("hostile requests sent: %d; made on purpose (round-tripped, then deleted): %s"
          % (STATS["sent"], legit))
    if STATS["failures"]:
        print("%d failures" % len(STATS["failures"]), file=sys.stderr)
        for f in STATS["failures"][60:]:
            print("FAIL " + f, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
