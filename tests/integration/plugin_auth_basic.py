"""auth-basic through the plugin protocol (run by plugin_auth_basic.sh).

    plugin_auth_basic.py EXE H_DIR PGCTL

DATABASE_URL names a migrated database; PGCTL is a script taking "stop" or
"start" for that server. Users of each role, password and token logins,
expiry, revocation, role caps, disabled users, the tables and the plugin's
stderr free of secrets, configuration errors, and PostgreSQL going away and
coming back (health degraded meanwhile, calls working again after). Plugin
stderr goes to H_DIR/auth-basic-*.log so the harness sees sanitizer reports.
"""
import base64
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests/lib"))
from plugin_rpc import Plugin, RpcError, check, eq, fails  # noqa: E402

EXE, HDIR, PGCTL = sys.argv[1], sys.argv[2], sys.argv[3]
PLAIN_URL = os.environ["DATABASE_URL"]
# Trust authentication ignores the password, so a URL with one still works
# and gives the "never log database_url" check something to look for.
DB_PASSWORD = "Pg-Secret-9f3c1e"
URL = PLAIN_URL.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
PASSWORDS = {"root-admin": "admin password 1!", "ops": "operator pass 22",
             "viewer1": "viewer password 333"}
TOKENS = []  # every token handed out, to look for them where they must not be
plugins = []


def log(msg):
    print(f"[plugin_auth_basic] {msg}", flush=True)


def start(config=None, handshake=True):
    p = Plugin(EXE, config=config if config is not None else {"database_url": URL},
               handshake=handshake, plugin_id="auth-basic")
    plugins.append(p)
    return p


def psql(sql):
    return subprocess.run(["psql", PLAIN_URL, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout


def pgctl(action):
    subprocess.run(["bash", PGCTL, action], check=True)


def login(p, user, password=None):
    return p.call("auth.authenticate", {"username": user,
                                        "password": password or PASSWORDS[user]})


def token(p, user_id, **kw):
    r = p.call("auth.token_create", {"user_id": user_id, "name": kw.pop("name", "t"), **kw})
    TOKENS.append(r["token"])
    return r


# ---------------------------------------------------------------------------

def test_handshake(p):
    for m in ("auth.authenticate", "auth.authorize", "auth.user_create", "auth.user_delete",
              "auth.user_list", "auth.user_set_password", "auth.user_update",
              "auth.token_create", "auth.token_revoke", "auth.token_list"):
        check(m in p.handshake["methods"], f"{m} missing")
    eq("auth", p.handshake["type"], "type")
    eq({"status": "ok"}, p.call("health"), "health")


def test_users(p, ids):
    for name, role in (("root-admin", "admin"), ("ops", "operator"), ("viewer1", "viewer")):
        r = p.call("auth.user_create", {"username": name, "password": PASSWORDS[name],
                                        "role": role})
        eq((name, role), (r["username"], r["role"]), "created user")
        ids[name] = r["user_id"]
    r = p.call("auth.user_create", {"username": "default.role@x", "password": "x" * 12})
    eq("viewer", r["role"], "default role")
    ids["default.role@x"] = r["user_id"]
    fails(p, "auth.user_create", {"username": "ops", "password": "another pass 1"}, "WE-AUTH-004")
    e = fails(p, "auth.user_create", {"username": "weak", "password": "short"}, code=-32602)
    check(e.message.startswith("password:"), f"weak password message: {e.message}")
    fails(p, "auth.user_create", {"username": "weak", "password": "elevenchars"}, code=-32602)
    e = fails(p, "auth.user_create", {"username": "a b", "password": "long enough pw"},
              code=-32602)
    check(e.message.startswith("username:"), f"username message: {e.message}")
    fails(p, "auth.user_create", {"username": "ab", "password": "long enough pw"}, code=-32602)
    fails(p, "auth.user_create", {"username": "x" * 65, "password": "long enough pw"},
          code=-32602)
    fails(p, "auth.user_create", {"username": "bob", "password": "long enough pw",
                                  "role": "root"}, code=-32602)
    fails(p, "auth.user_create", {"username": "bob", "password": 12}, code=-32602)
    check("weak" not in psql("SELECT username FROM users"), "a refused user was stored")
    items = p.call("auth.user_list")["items"]
    eq(sorted(ids), sorted(u["username"] for u in items), "user_list")
    for u in items:
        eq({"user_id", "username", "role", "disabled", "created_at", "last_login_at"},
           set(u), "user_list fields")
    check("$scrypt$" not in json.dumps(items), "user_list shows hashes")


def test_passwords(p, ids):
    r = login(p, "root-admin")
    eq({"user_id": ids["root-admin"], "username": "root-admin", "role": "admin",
        "expires_at": None, "token_id": None}, r, "password login")
    eq("operator", login(p, "ops")["role"], "operator login")
    eq("viewer", login(p, "viewer1")["role"], "viewer login")
    fails(p, "auth.authenticate", {"username": "ops", "password": "operator pass 23"},
          "WE-AUTH-001")
    fails(p, "auth.authenticate", {"username": "ops", "password": ""}, "WE-AUTH-001")
    fails(p, "auth.authenticate", {"username": "nobody", "password": "operator pass 22"},
          "WE-AUTH-001")
    fails(p, "auth.authenticate", {"username": "", "password": "x"}, "WE-AUTH-001")
    basic = base64.b64encode(b"ops:" + PASSWORDS["ops"].encode()).decode()
    eq("ops", p.call("auth.authenticate", {"token": "Basic " + basic})["username"], "Basic")
    bad = base64.b64encode(b"ops:wrong password!").decode()
    fails(p, "auth.authenticate", {"token": "Basic " + bad}, "WE-AUTH-001")
    fails(p, "auth.authenticate", {"token": "Basic !!!"}, "WE-AUTH-001")
    fails(p, "auth.authenticate", {}, code=-32602)
    check(psql(f"SELECT last_login_at IS NOT NULL FROM users WHERE id = '{ids['ops']}'")
          .strip() == "t", "last_login_at not set")


def timed(fn):
    t = time.monotonic()
    try:
        fn()
    except RpcError:
        pass
    return time.monotonic() - t


def test_timing(p):
    # Interleaved samples, so load on a shared machine hits both alike. The
    # property: an unknown username still costs one scrypt. Without the dummy
    # hash it would answer ~100x faster; a factor of 5 leaves room for noise.
    known, unknown = [], []
    for _ in range(7):
        known.append(timed(lambda: login(p, "ops", "wrong password 1")))
        unknown.append(timed(lambda: login(p, "no-such-user", "wrong password 1")))
    k, u = sorted(known)[3], sorted(unknown)[3]
    log(f"login time (median of 7): known user {k * 1000:.1f} ms, unknown user {u * 1000:.1f} ms")
    check(u > k * 0.2, "an unknown username answers much faster than a known one")


def test_tokens(p, ids):
    fails(p, "auth.token_create", {"user_id": ids["ops"], "name": "t", "role": "admin"},
          "WE-AUTH-003")
    r = token(p, ids["ops"], name="ci")
    eq("operator", r["role"], "token role defaults to the user's")
    check(r["token"].startswith("we_") and len(r["token"]) == 46, f"token shape {r['token']}")
    eq(r["token"][:8], r["prefix"], "display prefix")
    eq(None, r["expires_at"], "no expiry")
    a = p.call("auth.authenticate", {"token": r["token"]})
    eq({"user_id": ids["ops"], "username": "ops", "role": "operator", "expires_at": None,
        "token_id": r["token_id"]}, a, "token login")
    eq(a, p.call("auth.authenticate", {"token": "Bearer " + r["token"]}), "Bearer token")
    eq(a, p.call("auth.authenticate", {"token": "bearer  " + r["token"]}), "bearer, 2 spaces")
    low = token(p, ids["ops"], name="read-only", role="viewer")
    eq("viewer", p.call("auth.authenticate", {"token": low["token"]})["role"], "viewer token")
    fails(p, "auth.authenticate", {"token": r["token"][:-1] + ("A" if r["token"][-1] != "A"
                                                               else "B")}, "WE-AUTH-001")
    fails(p, "auth.authenticate", {"token": "we_short"}, "WE-AUTH-001")
    fails(p, "auth.authenticate", {"token": "eyJhbGciOi.not.ours"}, "WE-AUTH-001")
    fails(p, "auth.token_create", {"user_id": ids["ops"], "name": ""}, code=-32602)
    fails(p, "auth.token_create", {"user_id": "not-a-uuid", "name": "x"}, code=-32602)
    fails(p, "auth.token_create", {"user_id": ids["ops"], "name": "x", "expires_in_s": 0},
          code=-32602)
    fails(p, "auth.token_create", {"user_id": "00000000-0000-0000-0000-000000000000",
                                   "name": "x"}, "WE-AUTH-404")
    items = p.call("auth.token_list", {"user_id": ids["ops"]})["items"]
    eq(2, len(items), "token_list for a user")
    for t in items:
        check("token" not in t and "token_hash" not in t, f"token_list leaks: {t}")
    dump = json.dumps(p.call("auth.token_list")["items"])
    check(r["token"] not in dump and low["token"] not in dump, "token_list shows tokens")
    # last_used_at: set on first use, not rewritten within the minute
    used = psql(f"SELECT last_used_at FROM api_tokens WHERE id = '{r['token_id']}'").strip()
    check(used != "", "last_used_at not set")
    p.call("auth.authenticate", {"token": r["token"]})
    eq(used, psql(f"SELECT last_used_at FROM api_tokens WHERE id = '{r['token_id']}'").strip(),
       "last_used_at rewritten within a minute")
    return r


def test_expiry_and_revocation(p, ids, ops_token):
    short = token(p, ids["viewer1"], name="short", expires_in_s=1)
    check(short["expires_at"] is not None, "expires_at missing")
    eq("viewer", p.call("auth.authenticate", {"token": short["token"]})["role"], "fresh token")
    time.sleep(2)
    fails(p, "auth.authenticate", {"token": short["token"]}, "WE-AUTH-002")
    r = p.call("auth.token_revoke", {"token_id": ops_token["token_id"]})
    eq(True, r["revoked"], "revoke")
    fails(p, "auth.authenticate", {"token": ops_token["token"]}, "WE-AUTH-001")
    eq(True, p.call("auth.token_revoke", {"token_id": ops_token["token_id"]})["revoked"],
       "revoke again")
    fails(p, "auth.token_revoke", {"token_id": "00000000-0000-0000-0000-000000000000"},
          "WE-AUTH-404")
    # a revoked token that has also expired is still just invalid
    psql(f"UPDATE api_tokens SET revoked_at = now() WHERE id = '{short['token_id']}'")
    fails(p, "auth.authenticate", {"token": short["token"]}, "WE-AUTH-001")


def test_role_cap_and_disable(p, ids):
    t = token(p, ids["root-admin"], name="admin-token")
    eq("admin", p.call("auth.authenticate", {"token": t["token"]})["role"], "admin token")
    eq("operator", p.call("auth.user_update", {"user_id": ids["root-admin"],
                                               "role": "operator"})["role"], "demote")
    eq("operator", p.call("auth.authenticate", {"token": t["token"]})["role"],
       "token capped at the user's new role")
    p.call("auth.user_update", {"user_id": ids["root-admin"], "role": "admin"})
    eq(True, p.call("auth.user_update", {"user_id": ids["viewer1"], "disabled": True})
       ["disabled"], "disable")
    fails(p, "auth.authenticate", {"username": "viewer1",
                                   "password": PASSWORDS["viewer1"]}, "WE-AUTH-001")
    v = psql(f"SELECT count(*) FROM api_tokens WHERE user_id = '{ids['viewer1']}'").strip()
    check(v == "1", f"viewer tokens: {v}")
    fails(p, "auth.token_create", {"user_id": ids["viewer1"], "name": "x"}, "WE-AUTH-003")
    p.call("auth.user_update", {"user_id": ids["viewer1"], "disabled": False})
    eq("viewer", login(p, "viewer1")["role"], "enabled again")
    fails(p, "auth.user_update", {"user_id": ids["viewer1"], "role": "boss"}, code=-32602)
    fails(p, "auth.user_update", {"user_id": "00000000-0000-0000-0000-000000000000"},
          "WE-AUTH-404")


def test_set_password_and_delete(p, ids):
    fresh = "a brand new password"
    p.call("auth.user_set_password", {"user_id": ids["viewer1"], "password": fresh})
    fails(p, "auth.authenticate", {"username": "viewer1", "password": PASSWORDS["viewer1"]},
          "WE-AUTH-001")
    PASSWORDS["viewer1 (new)"] = fresh
    eq("viewer1", login(p, "viewer1", fresh)["username"], "new password")
    fails(p, "auth.user_set_password", {"user_id": ids["viewer1"], "password": "short"},
          code=-32602)
    t = token(p, ids["default.role@x"], name="doomed")
    eq(True, p.call("auth.user_delete", {"user_id": ids["default.role@x"]})["deleted"],
       "delete")
    eq("0", psql(f"SELECT count(*) FROM api_tokens WHERE user_id = "
                 f"'{ids['default.role@x']}'").strip(), "tokens cascade")
    fails(p, "auth.authenticate", {"token": t["token"]}, "WE-AUTH-001")
    fails(p, "auth.user_delete", {"user_id": ids["default.role@x"]}, "WE-AUTH-404")
    fails(p, "auth.user_delete", {"user_id": "x'; DROP TABLE users; --"}, code=-32602)
    check(psql("SELECT count(*) FROM users").strip() == "3", "users table damaged")


def test_authorize(p):
    for role, action, resource, allowed in (
            ("viewer", "read", "jobs", True), ("viewer", "write", "jobs", False),
            ("operator", "write", "/v1/jobs/1", True), ("operator", "write", "profiles", False),
            ("operator", "admin", "jobs", False), ("admin", "write", "users", True),
            ("viewer", "read", "audit", False), ("ghost", "read", "jobs", False),
            ("admin", "delete", "jobs", False)):
        r = p.call("auth.authorize", {"role": role, "action": action, "resource": resource})
        eq(allowed, r["allowed"], f"authorize {role} {action} {resource} ({r['reason']})")
        check(r["reason"], "authorize reason empty")


def test_no_secrets_in_tables():
    dump = psql("COPY users TO STDOUT") + psql("COPY api_tokens TO STDOUT")
    for pw in PASSWORDS.values():
        check(pw not in dump, "a plaintext password is in the tables")
    for t in TOKENS:
        check(t not in dump and t[len("we_"):] not in dump, "a plaintext token is in the tables")
    check(dump.count("$scrypt$ln=15,r=8,p=1$") >= 3, "passwords not stored as scrypt hashes")


def wait_for(fn, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if fn():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout}s")


def test_pg_restart(p):
    pgctl("stop")
    try:
        wait_for(lambda: p.call("health")["status"] == "degraded", 10, "health not degraded")
        eq("database unreachable", p.call("health").get("detail"), "health detail")
        e = fails(p, "auth.authenticate", {"username": "ops", "password": PASSWORDS["ops"]},
                  "WE-AUTH-503")
        eq(True, e.data.get("retryable"), "database down is retryable")
        late = start()  # a plugin started while the database is down still starts
        eq("degraded", late.call("health")["status"], "started without a database")
    finally:
        pgctl("start")
    eq("operator", login(p, "ops")["role"], "first call after the database came back")
    wait_for(lambda: p.call("health")["status"] == "ok", 10, "health not ok again")
    wait_for(lambda: late.call("health")["status"] == "ok", 10, "late plugin not ok")
    eq("viewer", login(late, "viewer1", PASSWORDS["viewer1 (new)"])["role"], "late plugin")
    eq(0, late.close(), "late plugin exit status")
    # a restart the monitor does not see: the next call reconnects and retries
    pgctl("stop")
    pgctl("start")
    eq("operator", login(p, "ops")["role"], "call right after a quick restart")


def test_config():
    saved = os.environ.pop("DATABASE_URL")
    try:
        cases = (({}, "database_url"), ({"database_url": "postgres://[bad"}, "database_url"),
                 ({"database_url": URL, "hash_cost": 5}, "hash_cost"),
                 ({"database_url": URL, "hash_cost": "15"}, "hash_cost"),
                 ({"database_url": URL, "token_prefix": "bad-"}, "token_prefix"))
        for config, field in cases:
            bad = start(config, handshake=False)
            rid = bad.send("handshake", {"api_versions": [1], "host": "test", "host_version": "0",
                                         "plugin_id": "auth-basic", "config": config}, rid=0)
            _, err, _ = bad.wait(rid, timeout=15)
            check(err is not None and err["code"] == -32602, f"config {config} accepted: {err}")
            check(err["message"].startswith(field + ":"), f"{field} not named: {err['message']}")
            check("[bad" not in err["message"] and DB_PASSWORD not in err["message"],
                  "the connection string is echoed")
            bad.close()
    finally:
        os.environ["DATABASE_URL"] = saved
    env_only = start({})  # DATABASE_URL from the environment
    eq("ok", env_only.call("health")["status"], "database_url from DATABASE_URL")
    eq(0, env_only.close(), "exit status")


def test_no_secrets_in_logs():
    text = "\n".join(line for p in plugins for line in p.stderr_lines())
    for pw in PASSWORDS.values():
        check(pw not in text, "a password is in the plugin's stderr")
    for t in TOKENS:
        check(t not in text, "a token is in the plugin's stderr")
    check(DB_PASSWORD not in text and URL not in text and PLAIN_URL not in text,
          "database_url is in the plugin's stderr")
    check("$scrypt$" not in text, "a password hash is in the plugin's stderr")
    for line in text.splitlines():
        check(line.startswith("{"), f"stderr line is not JSON: {line}")


def main():
    p = start({"database_url": URL})
    ids = {}
    try:
        for name, fn, args in (("handshake", test_handshake, (p,)),
                               ("users", test_users, (p, ids)),
                               ("passwords", test_passwords, (p, ids)),
                               ("timing", test_timing, (p,))):
            log(name)
            fn(*args)
        log("tokens")
        ops_token = test_tokens(p, ids)
        for name, fn, args in (("expiry and revocation", test_expiry_and_revocation,
                                (p, ids, ops_token)),
                               ("role cap and disable", test_role_cap_and_disable, (p, ids)),
                               ("set password and delete", test_set_password_and_delete,
                                (p, ids)),
                               ("authorize", test_authorize, (p,)),
                               ("no secrets in tables", test_no_secrets_in_tables, ()),
                               ("PostgreSQL restart", test_pg_restart, (p,)),
                               ("config", test_config, ())):
            log(name)
            fn(*args)
        eq(0, p.close(), "plugin exit status")
        log("no secrets in logs")
        test_no_secrets_in_logs()
    finally:
        for i, pl in enumerate(plugins):
            if pl.proc.poll() is None:
                pl.close()
            with open(os.path.join(HDIR, f"auth-basic-{i}.log"), "w") as f:
                f.write("\n".join(pl.stderr_lines()) + "\n")
        for pl in plugins:
            check(not pl.violations, f"protocol violations: {pl.violations}")
    log("all passed")


main()
