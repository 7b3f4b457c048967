"""A test-side driver for plugins: starts a plugin executable with the magic
cookie, does the handshake, and makes calls exactly as docs/plugin-protocol.md
says, so plugin tests need no kernel.

    from plugin_rpc import Plugin, RpcError
    p = Plugin("plugins/storage-fs/storage-fs", config={"root": "/tmp/x"})
    p.handshake                     # the handshake result
    p.call("storage.stat", {"key": "a.mp4"})          # result, or raises RpcError
    rid = p.send("encoder.transcode", {...}, deadline_ms=60000)
    p.cancel(rid)
    result, error, progress = p.wait(rid, timeout=30) # progress: list of objects
    p.close()                       # closes stdin; returns the exit status
    p.stderr_lines()                # what the plugin logged
"""
import json
import os
import queue
import subprocess
import threading
import time

MAGIC_ENV = "WEBENCODE_PLUGIN"
MAGIC_VALUE = "webencode-plugin-protocol"


class RpcError(Exception):
    def __init__(self, error):
        self.code = error.get("code")
        self.message = error.get("message", "")
        self.data = error.get("data") or {}
        super().__init__(f"{self.code}: {self.message} {self.data}")


class Plugin:
    def __init__(self, exe, config=None, api_versions=(1,), env=None, cwd=None,
                 handshake=True, plugin_id=None):
        e = dict(os.environ)
        e[MAGIC_ENV] = MAGIC_VALUE
        e.update(env or {})
        self.proc = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=e,
                                     cwd=cwd or os.path.dirname(os.path.abspath(exe)))
        self._next = 1
        self._lock = threading.Lock()
        self._pending = {}      # id -> Queue of messages
        self._stderr = []
        self.violations = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.handshake = None
        if handshake:
            params = {"api_versions": list(api_versions), "host": "test", "host_version": "0",
                      "plugin_id": plugin_id or os.path.basename(exe), "config": config or {}}
            self.handshake = self._call_id(0, "handshake", params, timeout=10)

    def _read_stdout(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                self.violations.append(line)
                continue
            if msg.get("method") == "$/progress":
                rid = msg["params"]["id"]
            else:
                rid = msg.get("id")
            q = self._pending.get(rid)
            if q is None:
                self.violations.append(line)
            else:
                q.put(msg)

    def _read_stderr(self):
        for line in self.proc.stderr:
            self._stderr.append(line.decode("utf-8", "replace").rstrip("\n"))

    def stderr_lines(self):
        return list(self._stderr)

    def _write(self, msg):
        msg["jsonrpc"] = "2.0"
        data = (json.dumps(msg) + "\n").encode()
        with self._lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def send(self, method, params=None, deadline_ms=None, rid=None):
        with self._lock:
            if rid is None:
                rid = self._next
                self._next += 1
            self._pending[rid] = queue.Queue()
        msg = {"id": rid, "method": method, "params": params if params is not None else {}}
        if deadline_ms is not None:
            msg["meta"] = {"deadline_ms": deadline_ms}
        self._write(msg)
        return rid

    def cancel(self, rid):
        self._write({"method": "$/cancel", "params": {"id": rid}})

    def wait(self, rid, timeout=30):
        q = self._pending[rid]
        progress = []
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to request {rid} within {timeout}s")
            try:
                msg = q.get(timeout=left)
            except queue.Empty:
                continue
            if msg.get("method") == "$/progress":
                progress.append(msg["params"]["progress"])
                continue
            del self._pending[rid]
            return msg.get("result"), msg.get("error"), progress

    def _call_id(self, rid, method, params, timeout):
        self.send(method, params, rid=rid)
        result, error, _ = self.wait(rid, timeout)
        if error:
            raise RpcError(error)
        return result

    def call(self, method, params=None, timeout=30, deadline_ms=None):
        rid = self.send(method, params, deadline_ms=deadline_ms)
        result, error, _ = self.wait(rid, timeout)
        if error:
            raise RpcError(error)
        return result

    def close(self, timeout=5):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


# --- assertions shared by the plugin tests -----------------------------------

def check(cond, what, expected=None, got=None):
    if not cond:
        detail = "" if expected is None and got is None else f": expected {expected!r}, got {got!r}"
        raise AssertionError(f"{what}{detail}")


def eq(expected, actual, what):
    check(expected == actual, f"{what}: expected {expected!r}, got {actual!r}")


def fails(p, method, params, we_code=None, code=-32000):
    """Calls method and asserts it fails with code (and we_code); returns the error."""
    try:
        r = p.call(method, params)
    except RpcError as e:
        eq(code, e.code, f"{method} {params!r} error code ({e.message})")
        if we_code:
            eq(we_code, e.data.get("we_code"), f"{method} {params!r} we_code ({e.message})")
        return e
    raise AssertionError(f"{method} {params!r} succeeded: {r!r}")
