"""storage-fs through the plugin protocol (run by plugin_storage_fs.sh).

    plugin_storage_fs.py EXE H_DIR

Every storage method against a root in H_DIR; traversal and symbolic-link
escapes through every method, checking the filesystem that nothing was read,
created or changed outside the root; browse limits; concurrent puts of one
key; configuration (relative root, create_root, environment). Plugin stderr
goes to H_DIR/storage-fs-*.log so the harness sees sanitizer reports.
"""
import base64
import hashlib
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests/lib"))
from plugin_rpc import Plugin, RpcError, check, eq, fails  # noqa: E402

EXE, HDIR = sys.argv[1], sys.argv[2]
ROOT = os.path.join(HDIR, "root")
OUTSIDE = os.path.join(HDIR, "outside")
MEDIA = os.path.join(HDIR, "media")
WORK = os.path.join(HDIR, "work")  # source and destination files of the host
plugins = []


def log(msg):
    print(f"[plugin_storage_fs] {msg}", flush=True)


def start(config, env=None, cwd=None, handshake=True):
    p = Plugin(EXE, config=config, env=env, cwd=cwd, handshake=handshake,
               plugin_id="storage-fs")
    plugins.append(p)
    return p


def sha(data):
    return hashlib.sha256(data).hexdigest()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def snapshot(top):
    """Every path under top (not following links) with its size and mtime."""
    out = {}
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            full = os.path.join(d, name)
            st = os.lstat(full)
            out[full] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def outside_state():
    return snapshot(OUTSIDE) | snapshot(MEDIA)


def b64(data):
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------------

def test_handshake(p):
    hs = p.handshake
    eq("storage-fs", hs["id"], "handshake id")
    eq("storage", hs["type"], "handshake type")
    for m in ("storage.capabilities", "storage.stat", "storage.put", "storage.get",
              "storage.delete", "storage.list", "storage.browse", "storage.local_path",
              "storage.checksum"):
        check(m in hs["methods"], f"method {m} missing from handshake")
    eq({"local_paths": True, "browse": True, "presign": False}, hs["capabilities"],
       "handshake capabilities")
    caps = p.call("storage.capabilities")
    eq(os.path.realpath(ROOT), caps["root"], "capabilities root")
    eq([os.path.realpath(MEDIA)], caps["browse_roots"], "capabilities browse_roots")
    eq({"status": "ok"}, p.call("health"), "health")


def test_put_get_stat(p):
    r = p.call("storage.put", {"key": "a/b/hello.txt", "data_base64": b64(b"hello")})
    eq({"key": "a/b/hello.txt", "size_bytes": 5, "sha256": sha(b"hello")}, r, "inline put")
    eq(b"hello", read(f"{ROOT}/a/b/hello.txt"), "inline put content")
    eq(0o755, os.stat(f"{ROOT}/a/b").st_mode & 0o777, "created directory mode")
    big = os.urandom(3 * 1024 * 1024 + 17)
    write(f"{WORK}/big.bin", big)
    r = p.call("storage.put", {"key": "jobs/1/seg_0001.mp4", "source_path": f"{WORK}/big.bin"})
    eq(len(big), r["size_bytes"], "put size")
    eq(sha(big), r["sha256"], "put sha256")
    r = p.call("storage.get", {"key": "jobs/1/seg_0001.mp4", "dest_path": f"{WORK}/back.bin"})
    eq(len(big), r["size_bytes"], "get size")
    eq(sha(big), r["sha256"], "get sha256")
    eq(big, read(f"{WORK}/back.bin"), "get content")
    # get replaces an existing destination whole
    write(f"{WORK}/old.bin", b"x" * 10_000_000)
    p.call("storage.get", {"key": "a/b/hello.txt", "dest_path": f"{WORK}/old.bin"})
    eq(b"hello", read(f"{WORK}/old.bin"), "get over an existing file")
    eq({"key": "jobs/1/seg_0001.mp4", "sha256": sha(big), "size_bytes": len(big)},
       p.call("storage.checksum", {"key": "jobs/1/seg_0001.mp4"}), "checksum")
    st = p.call("storage.stat", {"key": "jobs/1/seg_0001.mp4"})
    eq(len(big), st["size_bytes"], "stat size")
    eq(False, st["is_dir"], "stat is_dir")
    check(st["modified"].endswith("Z") and "T" in st["modified"], f"RFC3339: {st['modified']}")
    eq(True, p.call("storage.stat", {"key": "jobs/1"})["is_dir"], "stat of a directory")
    r = p.call("storage.put", {"key": "vidéo/ünïcødé ✓.txt", "data_base64": b64(b"u")})
    eq(b"u", read(f"{ROOT}/vidéo/ünïcødé ✓.txt"), "unicode key")
    eq(0, p.call("storage.put", {"key": "empty", "data_base64": ""})["size_bytes"], "empty put")


def test_put_get_errors(p):
    fails(p, "storage.stat", {"key": "nope/x"}, "WE-STO-404")
    fails(p, "storage.stat", {"key": "a/b/hello.txt/x"}, "WE-STO-404")
    fails(p, "storage.get", {"key": "nope", "dest_path": f"{WORK}/n"}, "WE-STO-404")
    fails(p, "storage.checksum", {"key": "nope"}, "WE-STO-404")
    fails(p, "storage.get", {"key": "jobs", "dest_path": f"{WORK}/n"}, "WE-STO-409")
    fails(p, "storage.put", {"key": "jobs", "data_base64": ""}, "WE-STO-409")
    fails(p, "storage.put", {"key": "a/b/hello.txt/x", "data_base64": ""}, "WE-STO-409")
    fails(p, "storage.put", {"key": "k"}, code=-32602)
    fails(p, "storage.put", {"key": "k", "data_base64": "", "source_path": "/x"}, code=-32602)
    fails(p, "storage.put", {"key": "k", "data_base64": "!!!"}, code=-32602)
    fails(p, "storage.put", {"key": "k", "data_base64": "A" * (12 * 1024 * 1024)}, code=-32602)
    fails(p, "storage.put", {"key": "k", "source_path": "relative/file"}, code=-32602)
    fails(p, "storage.put", {"key": "k", "source_path": f"{WORK}/missing"}, code=-32602)
    fails(p, "storage.put", {"key": "k", "source_path": WORK}, code=-32602)
    fails(p, "storage.get", {"key": "a/b/hello.txt", "dest_path": "rel"}, code=-32602)
    fails(p, "storage.get", {"key": "a/b/hello.txt", "dest_path": f"{WORK}/no/dir/f"},
          code=-32602)
    fails(p, "storage.stat", {}, code=-32602)
    fails(p, "storage.stat", {"key": 7}, code=-32602)
    check(not os.path.exists(f"{ROOT}/k"), "a refused put left a file")


def test_list(p):
    keys = ["l/a-b", "l/a/x", "l/a/y/z", "l/a0", "l/b", "l/a.b", "l/A", "l/é"] + \
           [f"l/many/{i:03d}" for i in range(23)]
    for k in keys:
        p.call("storage.put", {"key": k, "data_base64": b64(k.encode())})
    want = sorted(keys, key=lambda k: k.encode())
    r = p.call("storage.list", {"prefix": "l/"})
    eq(want, [i["key"] for i in r["items"]], "list order")
    eq(None, r["next"], "list next at the end")
    eq(len(b"l/a/x"), next(i for i in r["items"] if i["key"] == "l/a/x")["size_bytes"],
       "list size")
    got, after, pages = [], None, 0
    while True:
        r = p.call("storage.list", {"prefix": "l/", "limit": 7, "after": after})
        check(len(r["items"]) <= 7, "page over the limit")
        got += [i["key"] for i in r["items"]]
        pages += 1
        if r["next"] is None:
            break
        after = r["next"]
    eq(want, got, "paginated list")
    eq(5, pages, "pages of 7 for 31 keys")
    eq(["l/a-b", "l/a.b", "l/a/x", "l/a/y/z", "l/a0"],
       [i["key"] for i in p.call("storage.list", {"prefix": "l/a"})["items"]], "partial prefix")
    eq(["l/a/y/z"], [i["key"] for i in p.call("storage.list", {"prefix": "l/a/y/"})["items"]],
       "directory prefix")
    eq([], p.call("storage.list", {"prefix": "nothing/here/"})["items"], "missing prefix")
    eq(["l/a0", "l/b"],
       [i["key"] for i in p.call("storage.list", {"prefix": "l/", "after": "l/a/y/z",
                                                   "limit": 2})["items"]], "after skips")
    everything = [i["key"] for i in p.call("storage.list", {"limit": 10000})["items"]]
    check("a/b/hello.txt" in everything and "l/b" in everything, "list without prefix")
    fails(p, "storage.list", {"limit": 0}, code=-32602)
    fails(p, "storage.list", {"limit": 10001}, code=-32602)
    fails(p, "storage.list", {"after": "../x"}, code=-32602)
    # in-progress writes and keys that cannot be keys are not listed
    write(f"{ROOT}/l/.we-tmp-123-1-abc", b"partial")
    write(f"{ROOT}/l/bad\\name", b"x")
    keys_now = [i["key"] for i in p.call("storage.list", {"prefix": "l/"})["items"]]
    eq(want, keys_now, "temp and invalid names hidden")
    os.unlink(f"{ROOT}/l/.we-tmp-123-1-abc")
    os.unlink(f"{ROOT}/l/bad\\name")


def test_delete(p):
    p.call("storage.put", {"key": "d/one", "data_base64": b64(b"1")})
    eq(True, p.call("storage.delete", {"key": "d/one"})["deleted"], "delete")
    eq(False, p.call("storage.delete", {"key": "d/one"})["deleted"], "delete again")
    eq(False, p.call("storage.delete", {"key": "never/there"})["deleted"], "delete missing")
    fails(p, "storage.delete", {"key": "l"}, "WE-STO-409")
    r = p.call("storage.delete", {"prefix": "l/many/"})
    eq(23, r["count"], "prefix delete count")
    check(not os.path.exists(f"{ROOT}/l/many"), "prefix delete left the directory")
    check(os.path.exists(f"{ROOT}/l/a0"), "prefix delete went too far")
    r = p.call("storage.delete", {"prefix": "l/a"})
    eq(5, r["count"], "partial prefix delete")
    eq(sorted(["A", "b", "é"]), sorted(os.listdir(f"{ROOT}/l")), "left after the deletes")
    eq(False, p.call("storage.delete", {"prefix": "l/a"})["deleted"], "prefix delete again")
    fails(p, "storage.delete", {"prefix": ""}, "WE-STO-001")
    fails(p, "storage.delete", {"prefix": "/"}, "WE-STO-001")
    fails(p, "storage.delete", {"key": "x", "prefix": "x"}, code=-32602)
    check(os.path.isdir(ROOT), "root survived")


def test_local_path(p):
    r = p.call("storage.local_path", {"key": "lp/x/out.mp4"})
    eq(os.path.realpath(ROOT) + "/lp/x/out.mp4", r["path"], "local_path")
    eq(False, r["exists"], "local_path of a new key")
    check(not os.path.exists(f"{ROOT}/lp"), "local_path created a directory unasked")
    r = p.call("storage.local_path", {"key": "lp/x/out.mp4", "create_parent": True})
    check(os.path.isdir(f"{ROOT}/lp/x"), "create_parent did not create the parent")
    write(r["path"], b"worker wrote this")
    eq(sha(b"worker wrote this"), p.call("storage.checksum", {"key": "lp/x/out.mp4"})["sha256"],
       "a file written at local_path is the key")


def test_browse(p):
    write(f"{MEDIA}/in/clip.mp4", b"m" * 100)
    r = p.call("storage.browse", {})
    eq(os.path.realpath(ROOT), r["path"], "browse default path")
    names = [e["name"] for e in r["entries"]]
    eq(sorted(names), names, "browse sorted")
    check("a" in names and "jobs" in names, f"browse root entries: {names}")
    r = p.call("storage.browse", {"path": f"{MEDIA}/in"})
    eq([{"name": "clip.mp4", "is_dir": False, "size_bytes": 100}],
       [{k: e[k] for k in ("name", "is_dir", "size_bytes")} for e in r["entries"]],
       "browse a browse root")
    eq(True, p.call("storage.browse", {"path": "a"})["entries"][0]["is_dir"], "relative path")
    write(f"{OUTSIDE}/secret.txt", b"s")
    os.makedirs(f"{MEDIA}x", exist_ok=True)  # a sibling whose name extends a browse root
    for path in (OUTSIDE, "/etc", "/", f"{MEDIA}/../outside", f"{ROOT}/..", "../outside",
                 f"{MEDIA}x"):
        fails(p, "storage.browse", {"path": path}, "WE-STO-403")
    os.symlink(OUTSIDE, f"{MEDIA}/escape")
    fails(p, "storage.browse", {"path": f"{MEDIA}/escape"}, "WE-STO-403")
    fails(p, "storage.browse", {"path": f"{MEDIA}/missing"}, "WE-STO-404")
    os.unlink(f"{MEDIA}/escape")


# "a\x00b" is not here: the SDK's JSON reader refuses a \u0000 in any string
# (a parse error), so such a key never reaches the plugin; the unit test
# checks the key rule itself.
BAD_KEYS = ["", "/abs", "/etc/passwd", "..", "../outside/x", "a/../../outside/x", "./a",
            "a/./b", ".", "a//b", "a/", "a\\b", "a\x01b", "a\x7fb",
            "x" * 1025, ".we-tmp-1", "a/.we-tmp-x/b"]


def test_traversal(p):
    top, before = sorted(os.listdir(HDIR)), outside_state()
    etc = snapshot("/etc") if os.path.isdir("/etc") else {}
    for key in BAD_KEYS:
        fails(p, "storage.stat", {"key": key}, "WE-STO-001")
        fails(p, "storage.checksum", {"key": key}, "WE-STO-001")
        fails(p, "storage.put", {"key": key, "data_base64": b64(b"pwned")}, "WE-STO-001")
        fails(p, "storage.put", {"key": key, "source_path": f"{WORK}/big.bin"}, "WE-STO-001")
        fails(p, "storage.get", {"key": key, "dest_path": f"{WORK}/t"}, "WE-STO-001")
        fails(p, "storage.delete", {"key": key}, "WE-STO-001")
        fails(p, "storage.local_path", {"key": key}, "WE-STO-001")
        fails(p, "storage.local_path", {"key": key, "create_parent": True}, "WE-STO-001")
    for prefix in ["/", "/etc/", "../", "../outside/", "a/../../", "a//", "./", "a\\b"]:
        fails(p, "storage.list", {"prefix": prefix}, "WE-STO-001")
        fails(p, "storage.delete", {"prefix": prefix}, "WE-STO-001")
    check(not os.path.exists(f"{WORK}/t"), "a refused get wrote its destination")
    eq(before, outside_state(), "files outside the root changed")
    eq(top, sorted(os.listdir(HDIR)), "something created next to the root")
    eq(etc, snapshot("/etc") if os.path.isdir("/etc") else {}, "/etc changed")
    check(not os.path.exists(f"{HDIR}/outside/x"), "traversal wrote outside")
    e = fails(p, "storage.stat", {"key": "a/../b"}, "WE-STO-001")
    check('".." segment' in e.message, f"the reason is named: {e.message}")


def test_symlinks(p):
    write(f"{OUTSIDE}/target.txt", b"outside data")
    os.symlink("/etc", f"{ROOT}/evil")
    os.symlink(OUTSIDE, f"{ROOT}/out")
    os.symlink(f"{OUTSIDE}/target.txt", f"{ROOT}/last")
    os.makedirs(f"{ROOT}/in")
    os.symlink(f"{ROOT}/a", f"{ROOT}/in/inner")  # inside the root: refused all the same
    before = snapshot(OUTSIDE)
    etc = snapshot("/etc")
    for key in ("evil/passwd", "evil/x", "out/target.txt", "out/new.txt", "last",
                "in/inner/b/hello.txt", "out/deeper/x"):
        fails(p, "storage.stat", {"key": key}, "WE-STO-001")
        fails(p, "storage.checksum", {"key": key}, "WE-STO-001")
        fails(p, "storage.get", {"key": key, "dest_path": f"{WORK}/s"}, "WE-STO-001")
        fails(p, "storage.put", {"key": key, "data_base64": b64(b"pwned")}, "WE-STO-001")
        fails(p, "storage.put", {"key": key, "source_path": f"{WORK}/big.bin"}, "WE-STO-001")
        fails(p, "storage.delete", {"key": key}, "WE-STO-001")
        fails(p, "storage.local_path", {"key": key}, "WE-STO-001")
        fails(p, "storage.local_path", {"key": key, "create_parent": True}, "WE-STO-001")
    for prefix in ("evil/", "out/", "in/inner/", "evil/pass"):
        fails(p, "storage.list", {"prefix": prefix}, "WE-STO-001")
        fails(p, "storage.delete", {"prefix": prefix}, "WE-STO-001")
    e = fails(p, "storage.stat", {"key": "evil/passwd"}, "WE-STO-001")
    check("escapes the storage root" in e.message, f"symlink message: {e.message}")
    check(not os.path.exists(f"{WORK}/s"), "a refused get wrote its destination")
    eq(before, snapshot(OUTSIDE), "something changed behind a symlink")
    eq(etc, snapshot("/etc"), "/etc changed")
    eq(b"outside data", read(f"{OUTSIDE}/target.txt"), "link target changed")
    check(os.path.islink(f"{ROOT}/last"), "the last-component link was replaced")
    # listing the root skips links, a prefix delete of the root does not follow them
    keys = [i["key"] for i in p.call("storage.list", {"limit": 10000})["items"]]
    check(not any(k.startswith(("evil", "out/", "last", "in/")) for k in keys),
          f"links listed: {keys}")
    p.call("storage.delete", {"prefix": "in/"})
    check(os.path.islink(f"{ROOT}/in/inner"), "prefix delete removed a link")
    check(os.path.exists(f"{ROOT}/a/b/hello.txt"), "prefix delete followed a link")
    for link in ("evil", "out", "last", "in/inner"):
        os.unlink(f"{ROOT}/{link}")


def test_concurrent_puts(p):
    blobs = [bytes([i]) * (2 * 1024 * 1024 + i) for i in range(8)]
    for i, b in enumerate(blobs):
        write(f"{WORK}/c{i}", b)
    errors = []

    def put(i):
        try:
            for _ in range(3):
                p.call("storage.put", {"key": "race/same.bin", "source_path": f"{WORK}/c{i}"},
                       timeout=60)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eq([], errors, "concurrent put errors")
    got = read(f"{ROOT}/race/same.bin")
    check(any(got == b for b in blobs), f"concurrent puts mixed the file ({len(got)} bytes)")
    eq(["same.bin"], os.listdir(f"{ROOT}/race"), "temporary files left behind")


def test_config():
    rel = start({"root": "rel/store"}, env={"WEBENCODE_HOST_CWD": HDIR})
    eq(os.path.realpath(f"{HDIR}/rel/store"), rel.call("storage.capabilities")["root"],
       "relative root against WEBENCODE_HOST_CWD")
    eq(0, rel.close(), "exit status")
    os.makedirs(f"{HDIR}/cwd")
    saved = os.environ.pop("WEBENCODE_HOST_CWD", None)
    rel = start({"root": "rel/store"}, cwd=f"{HDIR}/cwd")
    eq(os.path.realpath(f"{HDIR}/cwd/rel/store"), rel.call("storage.capabilities")["root"],
       "relative root against the plugin's cwd")
    eq(0, rel.close(), "exit status")
    env = start({}, env={"STORAGE_FS_ROOT": f"{HDIR}/from-env"})
    eq(os.path.realpath(f"{HDIR}/from-env"), env.call("storage.capabilities")["root"],
       "STORAGE_FS_ROOT")
    eq(0, env.close(), "exit status")
    if saved is not None:
        os.environ["WEBENCODE_HOST_CWD"] = saved
    for config, field in (({"root": f"{HDIR}/absent", "create_root": False}, "root"),
                          ({"root": 5}, "root"), ({"root": ""}, "root"),
                          ({"root": ROOT, "browse_roots": "relative/dir"}, "browse_roots"),
                          ({"root": ROOT, "create_root": "yes"}, "create_root")):
        bad = start(config, handshake=False)
        rid = bad.send("handshake", {"api_versions": [1], "host": "test", "host_version": "0",
                                     "plugin_id": "storage-fs", "config": config}, rid=0)
        _, err, _ = bad.wait(rid, timeout=10)
        check(err is not None and err["code"] == -32602, f"config {config} accepted: {err}")
        check(err["message"].startswith(field + ":"), f"{field} not named: {err['message']}")
        bad.close()
    check(not os.path.exists(f"{HDIR}/absent"), "create_root=false created the root")


def test_health(p):
    os.rename(ROOT, ROOT + ".moved")
    try:
        h = p.call("health")
        eq("degraded", h["status"], "health without a root")
    finally:
        os.rename(ROOT + ".moved", ROOT)
    eq("ok", p.call("health")["status"], "health with the root back")


def main():
    for d in (ROOT, OUTSIDE, MEDIA, WORK):
        os.makedirs(d, exist_ok=True)
    p = start({"root": ROOT, "browse_roots": f"{MEDIA}:{HDIR}/not-there"})
    tests = [test_handshake, test_put_get_stat, test_put_get_errors, test_list, test_delete,
             test_local_path, test_browse, test_traversal, test_symlinks, test_concurrent_puts,
             test_health]
    try:
        for t in tests:
            log(t.__name__)
            t(p)
        log("test_config")
        test_config()
        eq(0, p.close(), "plugin exit status")
    finally:
        for i, pl in enumerate(plugins):
            if pl.proc.poll() is None:
                pl.close()
            with open(os.path.join(HDIR, f"storage-fs-{i}.log"), "w") as f:
                f.write("\n".join(pl.stderr_lines()) + "\n")
            check(not pl.violations, f"protocol violations: {pl.violations}")
    log("all passed")


main()
