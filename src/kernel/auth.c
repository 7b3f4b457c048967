/*
 * Authentication and authorization of API requests (DESIGN §8).
 *
 * Every route names the least role it needs (routes.c); http.c calls
 * kn_auth_request before the handler. A bearer token is tried, in order:
 *   1. dev-mode tokens (WEBENCODE_DEV_TOKENS), only in development mode —
 *      the kernel refuses to start with them in production mode;
 *   2. the bootstrap admin token (WEBENCODE_BOOTSTRAP_ADMIN_TOKEN), only
 *      while no enabled admin user exists, so the operator can create the
 *      real ones;
 *   3. the token cache: SHA-256 of the token → the identity a plugin
 *      returned, for AUTH_CACHE_TTL_S (never past the token's own expiry);
 *   4. the auth plugin chain: every running auth plugin with
 *      auth.authenticate, highest priority first. The first to accept wins;
 *      WE-AUTH-002 (expired) ends the search; WE-AUTH-001 moves on. When no
 *      plugin accepts and one could not answer, the reply is 503 (retry),
 *      not 401: the token may be that plugin's.
 * Tokens are compared in constant time and never logged; the cache keeps
 * only their hash.
 *
 * Rate limits are token buckets: per resolved token (RATE_LIMIT_RPS) and,
 * for requests that fail authentication, per client IP (RATE_LIMIT_IP_RPS),
 * so guessing tokens is slow while a busy valid client is not held back by
 * others behind the same address. The client IP is the peer address; only
 * a peer listed in TRUSTED_PROXIES may name another one in X-Forwarded-For.
 *
 * State (cache, buckets, the admin-exists flag) is shared by MHD's pool
 * threads under one mutex each; plugin calls and database queries run
 * outside the locks.
 */
#include "auth.h"

#include "we_config.h"
#include "we_log.h"
#include "we_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_SLOTS 1024
#define CACHE_WAYS 4
#define ADMIN_CHECK_MS 3000
#define PLUGIN_TIMEOUT_MS 5000
#define TOKEN_MAX 8192

static const char *const role_names[] = { "anonymous", "viewer", "operator", "admin" };

const char *kn_role_name(kn_role role)
{
    return role >= KN_ANON && role <= KN_ADMIN ? role_names[role] : "unknown";
}

int kn_role_parse(const char *s)
{
    for (int i = KN_VIEWER; i <= KN_ADMIN; i++)
        if (s && strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}

/* ---- token cache -------------------------------------------------------- */

/* Whether an enabled admin user exists (bootstrap token), and when checked. */
static pthread_mutex_t g_admin_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t g_admin_checked_ms;
static bool g_admin_exists = true; /* last known answer, when g_admin_checked_ms != 0 */


typedef struct cache_slot {
    unsigned char hash[32];
    kn_identity who;
    int64_t until_ms; /* 0: empty */
} cache_slot;

static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cache_slot *g_cache;

static void token_hash(const char *token, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(token, strlen(token), out, &n, EVP_sha256(), NULL);
}

static size_t cache_index(const unsigned char hash[32])
{
    return ((size_t)hash[0] << 8 | hash[1]) % (CACHE_SLOTS / CACHE_WAYS) * CACHE_WAYS;
}

static bool cache_get(const unsigned char hash[32], kn_identity *who)
{
    bool hit = false;
    int64_t now = we_now_mono_ms();
    pthread_mutex_lock(&g_cache_mu);
    cache_slot *set = &g_cache[cache_index(hash)];
    for (int i = 0; i < CACHE_WAYS && !hit; i++)
        if (set[i].until_ms > now && CRYPTO_memcmp(set[i].hash, hash, 32) == 0) {
            *who = set[i].who;
            hit = true;
        }
    pthread_mutex_unlock(&g_cache_mu);
    return hit;
}

static void cache_put(const unsigned char hash[32], const kn_identity *who, int64_t until_ms)
{
    pthread_mutex_lock(&g_cache_mu);
    cache_slot *set = &g_cache[cache_index(hash)], *victim = &set[0];
    for (int i = 0; i < CACHE_WAYS; i++)
        if (set[i].until_ms < victim->until_ms)
            victim = &set[i];
    memcpy(victim->hash, hash, 32);
    victim->who = *who;
    victim->until_ms = until_ms;
    pthread_mutex_unlock(&g_cache_mu);
}

void kn_auth_cache_clear(void)
{
    pthread_mutex_lock(&g_admin_mu);
    g_admin_checked_ms = 0;
    pthread_mutex_unlock(&g_admin_mu);
    if (!g_cache)
        return;
    pthread_mutex_lock(&g_cache_mu);
    memset(g_cache, 0, CACHE_SLOTS * sizeof *g_cache);
    pthread_mutex_unlock(&g_cache_mu);
}

void kn_auth_init(kn_ctx *kn)
{
    (void)kn;
    g_cache = calloc(CACHE_SLOTS, sizeof *g_cache);
    WE_ASSERT(g_cache != NULL);
    kn_rate_init();
}

void kn_auth_fini(void)
{
    free(g_cache);
    g_cache = NULL;
    kn_rate_fini();
}

/* ---- resolving a token -------------------------------------------------- */

enum { A_OK, A_INVALID, A_EXPIRED, A_UNAVAILABLE };

static bool secret_eq(const char *a, const char *b)
{
    unsigned char ha[32], hb[32];
    token_hash(a, ha);
    token_hash(b, hb);
    return CRYPTO_memcmp(ha, hb, 32) == 0;
}

static void set_who(kn_identity *who, kn_role role, const char *user_id, const char *name,
                    const char *via, const char *token_id)
{
    memset(who, 0, sizeof *who);
    who->role = role;
    snprintf(who->user_id, sizeof who->user_id, "%s", user_id ? user_id : "");
    snprintf(who->name, sizeof who->name, "%s", name ? name : "");
    snprintf(who->via, sizeof who->via, "%s", via);
    snprintf(who->token_id, sizeof who->token_id, "%s", token_id ? token_id : "");
}

static bool dev_token(const kn_security *s, const char *token, kn_identity *who)
{
    const char *p = s->dev_tokens;
    bool found = false;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        const char *colon = memchr(p, ':', n);
        if (colon) {
            char role[16], tok[512];
            snprintf(role, sizeof role, "%.*s", (int)(colon - p < 15 ? colon - p : 15), p);
            snprintf(tok, sizeof tok, "%.*s", (int)(p + n - colon - 1), colon + 1);
            if (kn_role_parse(role) > 0 && secret_eq(tok, token) && !found) {
                char name[32];
                snprintf(name, sizeof name, "dev:%s", role);
                set_who(who, (kn_role)kn_role_parse(role), NULL, name, "dev", NULL);
                found = true;
            }
        }
        p += n;
    }
    return found;
}

/* Whether an enabled admin user exists (1) or not (0), re-checked every few
 * seconds. While the database cannot say, the last answer stands; -1 when
 * there is none yet: the bootstrap token then answers 503, neither accepted
 * nor called invalid. */
static int admin_exists(kn_ctx *kn)
{
    int64_t now = we_now_mono_ms();
    pthread_mutex_lock(&g_admin_mu);
    bool fresh = g_admin_checked_ms && now - g_admin_checked_ms < ADMIN_CHECK_MS;
    int value = g_admin_exists;
    pthread_mutex_unlock(&g_admin_mu);
    if (fresh)
        return value;
    we_err err;
    value = -1;
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    if (c) {
        PGresult *res = NULL;
        if (we_pg_exec(c,
                       "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled)",
                       0, NULL, &res, &err) == 0)
            value = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        we_pg_release(kn->db, c);
    }
    pthread_mutex_lock(&g_admin_mu);
    if (value >= 0) {
        g_admin_exists = value;
        g_admin_checked_ms = now;
    } else if (g_admin_checked_ms) {
        value = g_admin_exists; /* the database is down: the last answer stands */
    }
    pthread_mutex_unlock(&g_admin_mu);
    return value;
}

/* "2026-11-28T10:00:00Z" (fraction and offset allowed) to epoch ms; 0 when
 * absent or unreadable. */
static int64_t parse_time_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!p)
        return 0;
    int64_t t = (int64_t)timegm(&tm) * 1000;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    if ((*p == '+' || *p == '-') && strlen(p) >= 6) {
        int64_t off = (atoi(p + 1) * 60 + atoi(p + 4)) * 60000;
        t += *p == '+' ? -off : off;
    }
    return t;
}

/* The auth plugins that can authenticate, highest priority first. */
static json_t *auth_chain(kn_ctx *kn)
{
    json_t *all = kn->plugins ? we_host_list(kn->plugins) : NULL, *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p) {
        const char *state = json_string_value(json_object_get(p, "state"));
        bool running = state && (!strcmp(state, "healthy") || !strcmp(state, "degraded"));
        bool has = false;
        size_t j;
        json_t *m;
        json_array_foreach(json_object_get(p, "methods"), j, m) has |=
            json_is_string(m) && !strcmp(json_string_value(m), "auth.authenticate");
        if (running && has && json_is_true(json_object_get(p, "enabled")) &&
            !strcmp(json_string_value(json_object_get(p, "type")) ?: "", "auth"))
            json_array_append(out, p);
    }
    json_decref(all);
    /* insertion sort by priority, descending; the list is short */
    for (i = 1; i < json_array_size(out); i++)
        for (size_t k = i; k > 0; k--) {
            json_int_t a = json_integer_value(json_object_get(json_array_get(out, k - 1), "priority"));
            json_int_t b = json_integer_value(json_object_get(json_array_get(out, k), "priority"));
            if (a >= b)
                break;
            json_t *tmp = json_incref(json_array_get(out, k));
            json_array_set(out, k, json_array_get(out, k - 1));
            json_array_set_new(out, k - 1, tmp);
        }
    return out;
}

static int from_plugin(const char *id, json_t *res, kn_identity *who, int64_t *expires_ms)
{
    int role = kn_role_parse(json_string_value(json_object_get(res, "role")));
    if (role <= 0) {
        we_warn("auth plugin returned no valid role", WE_S("plugin", id));
        return A_INVALID;
    }
    set_who(who, (kn_role)role, json_string_value(json_object_get(res, "user_id")),
            json_string_value(json_object_get(res, "username")), id,
            json_string_value(json_object_get(res, "token_id")));
    *expires_ms = parse_time_ms(json_string_value(json_object_get(res, "expires_at")));
    return A_OK;
}

static int ask_plugins(kn_ctx *kn, const char *token, kn_identity *who, int64_t *expires_ms)
{
    json_t *chain = auth_chain(kn), *p;
    size_t i;
    bool unavailable = false;
    int outcome = A_INVALID;
    json_array_foreach(chain, i, p) {
        const char *id = json_string_value(json_object_get(p, "id"));
        json_t *res = NULL;
        we_rpc_error rerr;
        memset(&rerr, 0, sizeof rerr);
        json_t *params = json_pack("{s:s}", "token", token);
        int rc = we_host_call(kn->plugins, id, "auth.authenticate", params, PLUGIN_TIMEOUT_MS,
                              NULL, NULL, NULL, &res, &rerr, NULL);
        json_decref(params); /* borrowed by the call */
        if (rc == 0)
            outcome = from_plugin(id, res, who, expires_ms);
        else if (rc == WE_EIO && !strcmp(rerr.we_code, "WE-AUTH-002"))
            outcome = A_EXPIRED;
        else if (rc == WE_EIO && !strncmp(rerr.we_code, "WE-AUTH-00", 10))
            outcome = A_INVALID;
        else {
            we_warn("auth plugin could not answer", WE_S("plugin", id),
                    WE_S("error", rerr.message));
            unavailable = true;
        }
        json_decref(res);
        if (outcome == A_OK || outcome == A_EXPIRED)
            break;
    }
    json_decref(chain);
    return outcome == A_INVALID && unavailable ? A_UNAVAILABLE : outcome;
}

/* Resolves token into *who. ip_key names the client's bucket: when only
 * the plugins could tell and that bucket is empty, *wait_s is set and the
 * plugins are not asked (guessing is throttled; known tokens never are). */
static int resolve(kn_ctx *kn, const char *token, const char *ip_key, kn_identity *who,
                   int *wait_s)
{
    const kn_security *s = &kn->cfg.sec;
    if (s->dev_mode && s->dev_tokens && dev_token(s, token, who))
        return A_OK;
    if (s->bootstrap_token && secret_eq(token, s->bootstrap_token)) {
        int admin = admin_exists(kn);
        if (admin != 0)
            return admin > 0 ? A_INVALID : A_UNAVAILABLE;
        set_who(who, KN_ADMIN, NULL, "bootstrap", "bootstrap", NULL);
        return A_OK;
    }
    unsigned char hash[32];
    token_hash(token, hash);
    if (cache_get(hash, who))
        return A_OK;
    if ((*wait_s = kn_rate_take(ip_key, s->ip_rps, s->ip_burst, true)) != 0)
        return A_INVALID;
    int64_t expires_ms = 0;
    int rc = ask_plugins(kn, token, who, &expires_ms);
    if (rc == A_OK && s->cache_ttl_s > 0) {
        int64_t now = we_now_ms(), until = now + s->cache_ttl_s * 1000;
        if (expires_ms && expires_ms < until)
            until = expires_ms;
        if (until > now)
            cache_put(hash, who, we_now_mono_ms() + (until - now));
    }
    return rc;
}

/* ---- the check ---------------------------------------------------------- */

/* The credential of the request (into buf), or NULL: the token of
 * "Bearer <token>", or the whole "Basic <base64>" value (auth plugins that
 * keep passwords accept it, so an admin can sign in to create a token).
 * Control characters, spaces inside and non-ASCII bytes make it invalid. */
static const char *bearer(kn_req *r, char *buf, size_t len)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    size_t skip;
    if (h && strncasecmp(h, "Basic ", 6) == 0)
        skip = 6;
    else if (h && strncasecmp(h, "Bearer ", 7) == 0)
        skip = 7;
    else
        return NULL;
    const char *t = h + skip;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && t[n - 1] == ' ')
        n--;
    if (n == 0 || n + 6 >= len)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return NULL;
    if (skip == 6) {
        snprintf(buf, len, "Basic %.*s", (int)n, t);
        return buf;
    }
    memcpy(buf, t, n);
    buf[n] = '\0';
    return buf;
}

static int refuse(kn_req *r, unsigned status, const char *code, const char *msg,
                  enum MHD_Result *replied)
{
    *replied = kn_reply_error(r, status, code, msg, NULL);
    return -1;
}

static int too_many(kn_req *r, int wait_s, enum MHD_Result *replied)
{
    snprintf(r->retry_after, sizeof r->retry_after, "%d", wait_s);
    char msg[96];
    snprintf(msg, sizeof msg, "too many requests; retry in %d s", wait_s);
    return refuse(r, 429, "WE-SYS-005", msg, replied);
}

static int unauthenticated(kn_req *r, int outcome, enum MHD_Result *replied)
{
    char key[72];
    snprintf(key, sizeof key, "ip:%s", r->client_ip);
    kn_rate_take(key, r->kn->cfg.sec.ip_rps, r->kn->cfg.sec.ip_burst, false);
    r->www_authenticate = true;
    if (outcome == A_EXPIRED)
        return refuse(r, 401, "WE-AUTH-002", "the token has expired", replied);
    if (outcome == A_UNAVAILABLE)
        return refuse(r, 503, "WE-AUTH-005", "authentication is unavailable; retry later",
                      replied);
    return refuse(r, 401, "WE-AUTH-001",
                  outcome < 0 ? "authentication required: send Authorization: Bearer <token>"
                              : "invalid token",
                  replied);
}

int kn_auth_request(kn_req *r, const kn_route *rt, enum MHD_Result *replied)
{
    const kn_security *s = &r->kn->cfg.sec;
    bool anonymous_ok = rt->role == KN_ANON &&
                        (s->metrics_anonymous || strcmp(rt->pattern, "/metrics") != 0);
    char buf[TOKEN_MAX];
    const char *token = bearer(r, buf, sizeof buf);
    if (anonymous_ok && !token)
        return 0;
    char key[72];
    snprintf(key, sizeof key, "ip:%s", r->client_ip);
    int wait = 0;
    if (!token) {
        wait = kn_rate_take(key, s->ip_rps, s->ip_burst, true);
        return wait ? too_many(r, wait, replied) : unauthenticated(r, -1, replied);
    }
    unsigned char hash[32];
    token_hash(token, hash);
    int outcome = resolve(r->kn, token, key, &r->who, &wait);
    OPENSSL_cleanse(buf, sizeof buf);
    if (wait && !anonymous_ok)
        return too_many(r, wait, replied);
    if (outcome != A_OK) {
        memset(&r->who, 0, sizeof r->who);
        return anonymous_ok ? 0 : unauthenticated(r, outcome, replied);
    }
    snprintf(r->who.limit_key, sizeof r->who.limit_key, "tok:%02x%02x%02x%02x%02x%02x%02x%02x",
             hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7]);
    if (!anonymous_ok && (wait = kn_rate_take(r->who.limit_key, s->rate_rps, s->rate_burst, false)))
        return too_many(r, wait, replied);
    if (r->who.role < rt->role) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s %s needs the %s role; this token has %s", r->method,
                 rt->pattern, kn_role_name(rt->role), kn_role_name(r->who.role));
        return refuse(r, 403, "WE-AUTH-003", msg, replied);
    }
    return 0;
}
