"""auth-oidc through the plugin protocol (run by plugin_auth_oidc.sh).

    plugin_auth_oidc.py EXE H_DIR PEERS [valgrind]

OIDC_PORTS holds three free loopback ports: provider 1, provider 2 (same
keys, another issuer), and one where nothing listens. DATABASE_URL names a
migrated database. Providers are tests/peers/oidc.mjs (oidc-provider), each
recorded as H_DIR/<name>.pid so the harness stops them; they log to
H_DIR/<name>.log and append one line per GET /jwks to H_DIR/<name>-jwks.hits.
Plugin stderr goes to H_DIR/auth-oidc-*.log so the harness sees sanitizer
reports. With "valgrind" a short session runs under valgrind instead.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests/lib"))
from plugin_rpc import Plugin, RpcError, check, eq, fails  # noqa: E402

EXE, HDIR, PEERS = sys.argv[1], sys.argv[2], sys.argv[3]
VALGRIND = len(sys.argv) > 4 and sys.argv[4] == "valgrind"
PORT1, PORT2, PORT_DEAD = (int(p) for p in os.environ["OIDC_PORTS"].split(","))
DB_PASSWORD = "Pg-Secret-0idc"
DB_URL = os.environ.pop("DATABASE_URL").replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
for k in [k for k in os.environ if k.startswith("OIDC_")]:
    del os.environ[k]  # every plugin gets its settings from its config unless a test says so

CLIENT_ID = "webencode"
CLIENT_SECRET = "wE-oidc-client-secret-" + secrets.token_hex(8)
CLIENTS = [
    {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "claims": {}},
    {"client_id": "ops", "claims": {"role": "operator", "preferred_username": "olga"}},
    {"client_id": "adm", "claims": {"role": "admin", "preferred_username": "ada"}},
    {"client_id": "grp", "claims": {"groups": ["webencode-ops", "other", "webencode-admins"],
                                    "preferred_username": "gus"}},
    {"client_id": "realm", "claims": {"realm_access": {"roles": ["offline_access", "operator"]}}},
    {"client_id": "nobody", "claims": {"preferred_username": "nina"}},
    {"client_id": "weird", "claims": {"role": "superuser", "preferred_username": "wendy"}},
]
for c in CLIENTS[1:]:
    c["client_secret"] = f"{c['client_id']}-secret-" + secrets.token_hex(6)
RESOURCES = {
    "urn:we:rs": {"audience": CLIENT_ID, "alg": "RS256"},
    "urn:we:es": {"audience": CLIENT_ID, "alg": "ES256"},
    "urn:we:short": {"audience": CLIENT_ID, "alg": "RS256", "ttl": 1},
    "urn:other": {"audience": "other-api", "alg": "RS256"},
}
TOKENS = []   # every token handed out, to look for them where they must not be
plugins = []


T0 = time.monotonic()


def log(msg):
    print(f"[plugin_auth_oidc {time.monotonic() - T0:5.1f}s] {msg}", flush=True)


def path(name):
    return os.path.join(HDIR, name)


def wait_for(fn, timeout, what):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            if fn():
                return
        except (RpcError, OSError, AssertionError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout}s (last error: {last})")


# --- JWT helpers --------------------------------------------------------------

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def parts(token):
    h, p, s = token.split(".")
    return json.loads(unb64u(h)), json.loads(unb64u(p)), s


def compact(header, claims, sig=b""):
    return f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(claims).encode())}.{b64u(sig)}"


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def user_uuid(issuer, sub):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{issuer}#{sub}"))


# --- providers ----------------------------------------------------------------

def make_keys(*labels):
    keys = {label: path(f"keys-{label}.json") for label in labels}
    args = [a for label in labels for a in (keys[label], label)]
    subprocess.run(["node", os.path.join(PEERS, "oidc.mjs"), "keys", *args], check=True)
    return keys


class Provider:
    def __init__(self, name, port, keys, wait=True):
        self.name, self.port = name, port
        self.issuer = f"http://127.0.0.1:{port}"
        self.hits_file = path(f"{name}-jwks.hits")
        self.proc = None
        self.start(keys, wait)

    def start(self, keys, wait=True):
        cfg = {"port": self.port, "keys": keys, "hits": self.hits_file, "clients": CLIENTS,
               "resources": RESOURCES}
        cfg_path = path(f"{self.name}.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        with open(path(f"{self.name}.log"), "a") as out:
            self.proc = subprocess.Popen(["node", os.path.join(PEERS, "oidc.mjs"), "serve",
                                          cfg_path], stdout=out, stderr=subprocess.STDOUT,
                                         cwd=PEERS)
        with open(path(f"{self.name}.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")
        if wait:
            self.wait_ready()

    def wait_ready(self):
        wait_for(lambda: self.get("/.well-known/openid-configuration")["issuer"] == self.issuer,
                 20, f"{self.name} did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        os.unlink(path(f"{self.name}.pid"))

    def get(self, p):
        with urllib.request.urlopen(self.issuer + p, timeout=5) as r:
            return json.load(r)

    def post(self, p, body, headers):
        req = urllib.request.Request(self.issuer + p, data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def jwks_hits(self):
        try:
            with open(self.hits_file) as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def token(self, client_id, resource):
        secret = next(c["client_secret"] for c in CLIENTS if c["client_id"] == client_id)
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "api",
                                       "resource": resource}).encode()
        t = self.post("/token", body, {"Authorization": "Basic " + basic,
                                       "Content-Type": "application/x-www-form-urlencoded"})
        TOKENS.append(t["access_token"])
        return t["access_token"]

    def mint(self, claims, kid, alg=None, header=None):
        body = json.dumps({"claims": claims, "kid": kid, "alg": alg, "header": header or {}})
        t = self.post("/test/mint", body.encode(), {"Content-Type": "application/json"})["token"]
        TOKENS.append(t)
        return t

    def claims(self, **kw):
        now = int(time.time())
        c = {"iss": self.issuer, "aud": CLIENT_ID, "sub": "minted", "role": "operator",
             "iat": now, "exp": now + 300, "jti": secrets.token_hex(8)}
        c.update(kw)
        return {k: v for k, v in c.items() if v is not None}


# --- plugin helpers -----------------------------------------------------------

def start(config, handshake=True, exe=EXE, env=None):
    p = Plugin(exe, config=config, handshake=handshake, plugin_id="auth-oidc", env=env)
    plugins.append(p)
    return p


def config_for(provider, **kw):
    c = {"issuer_url": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
         "jwks_min_refresh_s": 1}
    c.update(kw)
    return c


def healthy(p, timeout=15):
    wait_for(lambda: p.call("health")["status"] == "ok", timeout, "health not ok")


def auth(p, token, timeout=30):
    return p.call("auth.authenticate", {"token": token}, timeout=timeout)


def refused(p, token, we_code="WE-AUTH-001"):
    try:
        r = auth(p, token)
    except RpcError as e:
        eq(-32000, e.code, f"error code ({e.message})")
        eq(we_code, e.data.get("we_code"), f"we_code ({e.message})")
        return e
    raise AssertionError(f"token accepted: {r!r}")


def tamper_signature(token):
    h, p, s = token.split(".")
    mid = len(s) // 2
    return f"{h}.{p}.{s[:mid]}{'A' if s[mid] != 'A' else 'B'}{s[mid + 1:]}"


# --- checks -------------------------------------------------------------------

def test_handshake(p):
    for m in ("auth.authenticate", "auth.authorize"):
        check(m in p.handshake["methods"], f"{m} missing")
    eq("auth", p.handshake["type"], "type")
    eq(True, p.handshake["capabilities"].get("bearer_jwt"), "capabilities")
    healthy(p)


def test_valid(p, p1):
    t = p1.token("ops", "urn:we:rs")
    h, c, _ = parts(t)
    eq(("RS256", "at+jwt"), (h["alg"], h["typ"]), "RS256 token header")
    eq({"user_id": user_uuid(p1.issuer, "ops"), "username": "oidc:olga", "role": "operator",
        "expires_at": rfc3339(c["exp"]), "token_id": c["jti"]}, auth(p, t), "RS256 token")
    eq("operator", auth(p, "Bearer " + t)["role"], "Bearer prefix")
    eq("operator", auth(p, "bearer  " + t)["role"], "bearer, two spaces")
    t = p1.token("adm", "urn:we:es")
    eq("ES256", parts(t)[0]["alg"], "ES256 token header")
    r = auth(p, t)
    eq(("admin", "oidc:ada", user_uuid(p1.issuer, "adm")), (r["role"], r["username"],
                                                           r["user_id"]), "ES256 token")
    r = auth(p, p1.mint(p1.claims(jti=None), "A-rsa"))
    eq(None, r["token_id"], "token_id without jti")


def test_refused(p, p1, p2):
    rs, es = p1.token("ops", "urn:we:rs"), p1.token("adm", "urn:we:es")
    refused(p, tamper_signature(rs))
    refused(p, tamper_signature(es))
    h, c, s = rs.split(".")
    forged = json.loads(unb64u(c))
    forged["role"] = "admin"
    refused(p, f"{h}.{b64u(json.dumps(forged).encode())}.{s}")
    refused(p, p1.token("ops", "urn:other"))                 # wrong audience
    refused(p, p2.token("ops", "urn:we:rs"))                 # same keys, another issuer
    now = int(time.time())
    refused(p, p1.mint(p1.claims(exp=now - 120), "A-rsa"), "WE-AUTH-002")
    refused(p, p1.mint(p1.claims(exp=now - 120), "A-ec"), "WE-AUTH-002")
    eq("operator", auth(p, p1.mint(p1.claims(exp=now - 30), "A-rsa"))["role"], "exp in leeway")
    refused(p, p1.mint(p1.claims(nbf=now + 300), "A-rsa"))
    eq("operator", auth(p, p1.mint(p1.claims(nbf=now + 30), "A-rsa"))["role"], "nbf in leeway")
    refused(p, p1.mint(p1.claims(iat=now + 300), "A-rsa"))
    refused(p, p1.mint(p1.claims(exp=None), "A-rsa"))       # no exp
    refused(p, p1.mint(p1.claims(exp="tomorrow"), "A-rsa"))
    refused(p, p1.mint(p1.claims(sub=None), "A-rsa"))
    refused(p, p1.mint(p1.claims(aud=["x", "y"]), "A-rsa"))
    eq("operator", auth(p, p1.mint(p1.claims(aud=["x", CLIENT_ID]), "A-rsa"))["role"], "aud array")
    # an expired token with a bad signature is invalid, not expired
    refused(p, tamper_signature(p1.mint(p1.claims(exp=now - 120), "A-rsa")))
    good = p1.claims(role="admin")
    refused(p, compact({"alg": "none", "typ": "JWT"}, good))
    refused(p, compact({"alg": "none", "typ": "JWT", "kid": "A-rsa"}, good, b"x"))
    hs_input = f"{b64u(json.dumps({'alg': 'HS256', 'kid': 'A-rsa'}).encode())}." \
               f"{b64u(json.dumps(good).encode())}"
    hs_sig = hmac.new(CLIENT_SECRET.encode(), hs_input.encode(), hashlib.sha256).digest()
    refused(p, f"{hs_input}.{b64u(hs_sig)}")                 # HMAC with the client secret
    refused(p, p1.mint(good, "A-rsa", alg="ES256"))         # RSA key, ES256 header
    refused(p, p1.mint(good, "A-rsa", alg="PS256"))         # the key says RS256 only
    refused(p, p1.mint(good, "A-rsa", header={"crit": ["exp"]}))
    refused(p, p1.mint(good, "A-rsa", header={"typ": "JWE"}))
    refused(p, p1.mint(good, "nope-rsa"))                     # unknown kid, unknown key
    for junk in ("we_" + "x" * 43, "Basic b3BzOnB3", "", "a.b.c", "a.b", "..", "x" * 20000,
                 "Bearer ", rs + "." + "e30", rs.replace(".", "=.", 1)):
        refused(p, junk)
    fails(p, "auth.authenticate", {}, code=-32602)
    fails(p, "auth.authenticate", {"token": 12}, code=-32602)


def test_roles(p, p1):
    refused(p, p1.token("nobody", "urn:we:rs"))              # no role claim
    refused(p, p1.token("weird", "urn:we:rs"))               # "superuser" is no role
    realm = start(config_for(p1, role_claim="realm_access.roles"))
    healthy(realm)
    r = auth(realm, p1.token("realm", "urn:we:rs"))
    eq(("operator", "oidc:realm"), (r["role"], r["username"]), "dotted path, sub as username")
    for role_map in ("webencode-ops=operator, webencode-admins = admin",
                     '{"webencode-ops": "operator", "webencode-admins": "admin"}'):
        grp = start(config_for(p1, role_claim="groups", role_map=role_map))
        healthy(grp)
        r = auth(grp, p1.token("grp", "urn:we:rs"))
        eq(("admin", "oidc:gus"), (r["role"], r["username"]), f"groups via role_map {role_map}")
        refused(grp, p1.token("ops", "urn:we:rs"))           # no groups claim
    dflt = start(config_for(p1, default_role="viewer", username_claim="client_id"))
    healthy(dflt)
    r = auth(dflt, p1.token("nobody", "urn:we:rs"))
    eq(("viewer", "oidc:nobody"), (r["role"], r["username"]), "default_role, username_claim")
    eq("viewer", auth(dflt, p1.token("weird", "urn:we:rs"))["role"], "unknown role → default")
    eq("admin", auth(dflt, p1.token("adm", "urn:we:rs"))["role"], "known role wins")
    aud = start(config_for(p1, audience="other-api"))
    healthy(aud)
    eq("operator", auth(aud, p1.token("ops", "urn:other"))["role"], "configured audience")
    refused(aud, p1.token("ops", "urn:we:rs"))


def test_real_expiry(p1):
    strict = start(config_for(p1, leeway_s=0))
    healthy(strict)
    t = p1.token("ops", "urn:we:short")                      # accessTokenTTL 1 s
    exp = parts(t)[1]["exp"]
    while time.time() < exp:          # leeway 0: expired from exp on
        time.sleep(0.2)
    refused(strict, t, "WE-AUTH-002")


def test_no_network_for_strangers(p, p1, p2):
    before = p1.jwks_hits()
    for junk in ("we_" + "y" * 43, "Basic b3BzOnB3"):
        refused(p, junk)
    refused(p, p2.mint(p2.claims(), "nope-rsa"))              # another issuer, unknown kid
    eq(before, p1.jwks_hits(), "JWKS requests for tokens that are not ours")
    dead = start(config_for(p1, issuer_url=f"http://127.0.0.1:{PORT_DEAD}", http_timeout_ms=300))
    h = dead.call("health")
    eq(("degraded", "no keys from the identity provider yet"), (h["status"], h.get("detail")),
       "health with the provider down from the start")
    refused(dead, "we_" + "z" * 43)                           # not a JWT: no network, no 503
    refused(dead, p1.token("ops", "urn:we:rs"))              # another issuer: no network
    claims = p1.claims(iss=f"http://127.0.0.1:{PORT_DEAD}")
    e = refused(dead, p1.mint(claims, "A-rsa"), "WE-AUTH-503")
    eq(True, e.data.get("retryable"), "provider unreachable is retryable")


def test_rotation(p, p1, keys):
    old_rs, old_es = p1.token("ops", "urn:we:rs"), p1.token("adm", "urn:we:es")
    eq("operator", auth(p, old_rs)["role"], "before rotation")
    p1.stop()
    p1.start([keys["B"], keys["A"]])                          # new keys sign, old still published
    new_rs, new_es = p1.token("ops", "urn:we:rs"), p1.token("adm", "urn:we:es")
    eq(("B-rsa", "B-ec"), (parts(new_rs)[0]["kid"], parts(new_es)[0]["kid"]), "new kids")
    wait_for(lambda: auth(p, new_rs)["role"] == "operator", 10, "new RS256 key not picked up")
    eq("admin", auth(p, new_es)["role"], "new ES256 key")
    eq("operator", auth(p, old_rs)["role"], "old key still published")
    eq("admin", auth(p, old_es)["role"], "old EC key still published")
    p1.stop()
    p1.start([keys["B"]])                                     # old keys withdrawn
    # the cache keeps A until a refetch; an unknown kid causes one (rate limited)
    def withdrawn():
        refused(p, p1.mint(p1.claims(), "unknown-kid-" + secrets.token_hex(4)))
        refused(p, old_rs)
        return True
    wait_for(withdrawn, 10, "withdrawn key still accepted")
    eq("operator", auth(p, new_rs)["role"], "new key after withdrawal")
    return new_rs


def test_rate_limit(p2):
    flood = start(config_for(p2, jwks_min_refresh_s=2))
    healthy(flood)
    eq("operator", auth(flood, p2.token("ops", "urn:we:rs"))["role"], "provider 2 token")
    tokens = [p2.mint(p2.claims(), f"flood-{i}") for i in range(100)]
    time.sleep(2.2)                                           # the first unknown kid may refetch
    before = p2.jwks_hits()
    t0 = time.monotonic()
    ids = [flood.send("auth.authenticate", {"token": t}) for t in tokens]
    for rid in ids:
        _, err, _ = flood.wait(rid, 30)
        check(err and err["data"]["we_code"] == "WE-AUTH-001", f"flood token: {err}")
    elapsed = time.monotonic() - t0
    fetched = p2.jwks_hits() - before
    log(f"100 unknown-kid tokens in {elapsed:.2f}s caused {fetched} JWKS request(s) "
        f"(jwks_min_refresh_s=2)")
    check(1 <= fetched <= 1 + int(elapsed / 2),
          f"JWKS requests during the flood: {fetched} in {elapsed:.2f}s")


def test_provider_down(p1, keys, token):
    watch = start(config_for(p1, jwks_refresh_s=1))
    healthy(watch)
    eq("operator", auth(watch, token)["role"], "before the outage")
    p1.stop()
    late = None
    try:
        wait_for(lambda: watch.call("health").get("detail") == "identity provider unreachable",
                 15, "health not degraded with the provider down")
        eq("degraded", watch.call("health")["status"], "health status")
        eq("operator", auth(watch, token)["role"], "cached keys while the provider is down")
        unknown = compact({"alg": "RS256", "kid": "rotated-" + secrets.token_hex(3)},
                          p1.claims(), b"s" * 256)
        e = refused(watch, unknown, "WE-AUTH-503")
        eq(True, e.data.get("retryable"), "unknown kid while down is retryable")
        late = start(config_for(p1))                          # started while the provider is down
        eq("degraded", late.call("health")["status"], "started without the provider")
        refused(late, token, "WE-AUTH-503")
    finally:
        p1.start([keys["B"]])
    healthy(watch)
    healthy(late, 20)
    eq("operator", auth(late, token)["role"], "late plugin once the provider is back")


def psql(sql):
    url = DB_URL.replace(f":{DB_PASSWORD}@", "@")
    return subprocess.run(["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_database(p1):
    db = start(config_for(p1, database_url=DB_URL))
    healthy(db)
    r = auth(db, p1.token("ops", "urn:we:rs"))
    row = psql("SELECT id, role, password_hash IS NULL, last_login_at IS NOT NULL "
               "FROM users WHERE username = 'oidc:olga'")
    eq(f"{r['user_id']}|operator|t|t", row, "users row of an OIDC user")
    eq(r["user_id"], auth(db, p1.token("ops", "urn:we:rs"))["user_id"], "same row next time")
    a = auth(db, p1.token("adm", "urn:we:es"))
    check(a["user_id"] != r["user_id"], "two users, one row")
    eq("admin", psql(f"SELECT role FROM users WHERE id = '{a['user_id']}'"), "admin row")
    psql("UPDATE users SET role = 'viewer' WHERE username = 'oidc:olga'")
    eq("operator", auth(db, p1.token("ops", "urn:we:rs"))["role"], "role from the token")
    eq("operator", psql("SELECT role FROM users WHERE username = 'oidc:olga'"),
       "the row follows the token's role")
    psql("UPDATE users SET disabled = true WHERE username = 'oidc:olga'")
    refused(db, p1.token("ops", "urn:we:rs"))
    psql("UPDATE users SET disabled = false WHERE username = 'oidc:olga'")
    psql("INSERT INTO users (username, password_hash, role) "
         "VALUES ('oidc:gus', '$scrypt$ln=15,r=8,p=1$x$y', 'viewer')")
    grp = start(config_for(p1, database_url=DB_URL, role_claim="groups",
                           role_map="webencode-admins=admin"))
    healthy(grp)
    refused(grp, p1.token("grp", "urn:we:rs"))              # a password user is not taken over
    eq("viewer", psql("SELECT role FROM users WHERE username = 'oidc:gus'"), "untouched")
    eq("3", psql("SELECT count(*) FROM users"), "users rows")


def handshake_error(config, env=None):
    bad = start(config, handshake=False, env=env)
    rid = bad.send("handshake", {"api_versions": [1], "host": "test", "host_version": "0",
                                 "plugin_id": "auth-oidc", "config": config}, rid=0)
    _, err, _ = bad.wait(rid, timeout=15)
    bad.close()
    return err


def test_config(p1):
    base = config_for(p1)
    cases = (({}, "issuer_url"), ({**base, "issuer_url": "http://idp.example.com"}, "issuer_url"),
             ({**base, "issuer_url": "ftp://127.0.0.1/x"}, "issuer_url"),
             ({**base, "issuer_url": p1.issuer + "?x=1"}, "issuer_url"),
             ({**base, "issuer_url": "https://u:pw@idp.example.com"}, "issuer_url"),
             ({**base, "client_id": ""}, "client_id"),
             ({**base, "role_map": "a=root"}, "role_map"), ({**base, "role_map": "{"}, "role_map"),
             ({**base, "default_role": "boss"}, "default_role"),
             ({**base, "leeway_s": -1}, "leeway_s"), ({**base, "jwks_min_refresh_s": 0},
                                                      "jwks_min_refresh_s"),
             ({**base, "http_timeout_ms": "5"}, "http_timeout_ms"),
             ({**base, "allow_insecure_http": "yes"}, "allow_insecure_http"),
             ({**base, "role_claim": ""}, "role_claim"),
             ({**base, "database_url": "postgres://[bad"}, "database_url"))
    for config, field in cases:
        err = handshake_error(config)
        check(err is not None and err["code"] == -32602, f"config {config} accepted: {err}")
        check(err["message"].startswith(field + ":"), f"{field} not named: {err['message']}")
        check(CLIENT_SECRET not in err["message"] and "[bad" not in err["message"],
              "a secret is echoed")
    err = handshake_error({}, env={"OIDC_ISSUER_URL": p1.issuer, "OIDC_CLIENT_ID": CLIENT_ID,
                                   "OIDC_LEEWAY_S": "soon"})
    check(err["message"].startswith("leeway_s:"), f"env value not checked: {err}")
    insecure = start({**base, "issuer_url": "http://192.0.2.1:9", "allow_insecure_http": True,
                      "http_timeout_ms": 200})
    eq("degraded", insecure.call("health")["status"], "insecure issuer allowed, unreachable")
    env_only = start({}, env={"OIDC_ISSUER_URL": p1.issuer, "OIDC_CLIENT_ID": CLIENT_ID,
                              "OIDC_CLIENT_SECRET": CLIENT_SECRET,
                              "OIDC_JWKS_MIN_REFRESH_S": "1"})
    healthy(env_only)
    eq("operator", auth(env_only, p1.token("ops", "urn:we:rs"))["role"], "config from env")
    other = start(config_for(p1, issuer_url=f"http://localhost:{p1.port}"))
    wait_for(lambda: any("discovery names issuer" in line for line in other.stderr_lines()),
             10, "discovery issuer mismatch not logged")
    eq("degraded", other.call("health")["status"], "issuer mismatch keeps health degraded")


def test_authorize(p):
    for role, action, resource, allowed in (
            ("viewer", "read", "jobs", True), ("viewer", "write", "jobs", False),
            ("operator", "write", "/v1/jobs/1", True), ("operator", "write", "profiles", False),
            ("operator", "admin", "jobs", False), ("admin", "write", "users", True),
            ("viewer", "read", "audit", False), ("ghost", "read", "jobs", False),
            ("admin", "delete", "jobs", False), ("admin", "read", "unlisted", True),
            ("operator", "read", "unlisted", False)):
        r = p.call("auth.authorize", {"role": role, "action": action, "resource": resource})
        eq(allowed, r["allowed"], f"authorize {role} {action} {resource} ({r['reason']})")
        check(r["reason"], "authorize reason empty")
    fails(p, "auth.authorize", {"role": "admin"}, code=-32602)


def test_concurrency(p, p1, rs):
    es = p1.token("adm", "urn:we:es")
    ids = [(p.send("auth.authenticate", {"token": t}), role)
           for t, role in [(rs, "operator"), (es, "admin")] * 20]
    for rid, role in ids:
        res, err, _ = p.wait(rid, 30)
        check(err is None and res["role"] == role, f"concurrent call: {res} {err}")


def test_no_secrets_in_logs():
    text = "\n".join(line for p in plugins for line in p.stderr_lines())
    check(CLIENT_SECRET not in text, "the client secret is in the plugin's stderr")
    for t in TOKENS:
        check(t not in text and t.split(".")[2] not in text, "a token is in the plugin's stderr")
    check(DB_PASSWORD not in text, "database_url is in the plugin's stderr")
    for line in text.splitlines():
        check(line.startswith("{"), f"stderr line is not JSON: {line}")


def save_logs(prefix="auth-oidc"):
    for i, pl in enumerate(plugins):
        if pl.proc.poll() is None:
            pl.close(timeout=30)
        with open(path(f"{prefix}-{i}.log"), "w") as f:
            f.write("\n".join(pl.stderr_lines()) + "\n")
    for pl in plugins:
        check(not pl.violations, f"protocol violations: {pl.violations}")


def main():
    t0 = time.monotonic()
    keys = make_keys("A", "B")
    p1 = Provider("oidc-1", PORT1, [keys["A"]], wait=False)
    p2 = Provider("oidc-2", PORT2, [keys["A"]], wait=False)
    p1.wait_ready()
    p2.wait_ready()
    p = start(config_for(p1))
    try:
        log("handshake")
        test_handshake(p)
        steps = (("valid tokens", test_valid, (p, p1)),
                 ("refused tokens", test_refused, (p, p1, p2)),
                 ("roles", test_roles, (p, p1)),
                 ("real expiry", test_real_expiry, (p1,)),
                 ("no network for strangers", test_no_network_for_strangers, (p, p1, p2)),
                 ("authorize", test_authorize, (p,)),
                 ("unknown-kid rate limit", test_rate_limit, (p2,)))
        for name, fn, args in steps:
            log(name)
            fn(*args)
        log("key rotation")
        token = test_rotation(p, p1, keys)
        for name, fn, args in (("concurrency", test_concurrency, (p, p1, token)),
                               ("provider down", test_provider_down, (p1, keys, token)),
                               ("database", test_database, (p1,)),
                               ("config", test_config, (p1,))):
            log(name)
            fn(*args)
        eq(0, p.close(timeout=30), "plugin exit status")
        log("no secrets in logs")
        test_no_secrets_in_logs()
    finally:
        save_logs()
        for provider in (p1, p2):
            if provider.proc.poll() is None:
                provider.stop()
    log(f"all passed in {time.monotonic() - t0:.1f}s")


def valgrind_session():
    wrapper = path("vg-auth-oidc")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --quiet --error-exitcode=99 --leak-check=full "
                "--errors-for-leak-kinds=definite --show-leak-kinds=definite "
                f"--log-file={path('valgrind.log')} {EXE} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    t0 = time.monotonic()
    keys = {"A": path("keys-A.json")}
    p1 = Provider("oidc-vg", PORT1, [keys["A"]])
    p = start(config_for(p1, database_url=DB_URL), exe=wrapper)
    try:
        healthy(p, 60)
        eq("operator", auth(p, p1.token("ops", "urn:we:rs"), 60)["role"], "RS256 under valgrind")
        eq("admin", auth(p, p1.token("adm", "urn:we:es"), 60)["role"], "ES256 under valgrind")
        refused(p, tamper_signature(p1.token("ops", "urn:we:rs")))
        refused(p, p1.mint(p1.claims(exp=int(time.time()) - 120), "A-rsa"), "WE-AUTH-002")
        refused(p, "we_" + "v" * 43)
        time.sleep(1.1)
        refused(p, p1.mint(p1.claims(), "unknown-kid"))      # a refetch
        p.call("auth.authorize", {"role": "viewer", "action": "read", "resource": "jobs"})
        rc = p.close(timeout=60)
        vlog = open(path("valgrind.log")).read()
        eq(0, rc, "valgrind exit status (99: memory errors or definite leaks)")
        check("definitely lost" not in vlog and "Invalid" not in vlog, f"valgrind log: {vlog}")
    finally:
        save_logs("auth-oidc-vg")
        p1.stop()
    log(f"valgrind session clean in {time.monotonic() - t0:.1f}s")


if VALGRIND:
    valgrind_session()
else:
    main()
