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
#define BUCKET_SLOTS 4096
#define BUCKET_WAYS 16
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

/* ---- configuration ------------------------------------------------------ */

static bool valid_cidr(const char *item)
{
    char buf[64];
    unsigned char addr[16];
    size_t n = strcspn(item, "/");
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, item, n);
    buf[n] = '\0';
    int fam = strchr(buf, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, buf, addr) != 1)
        return false;
    if (!item[n])
        return true;
    char *end;
    long bits = strtol(item + n + 1, &end, 10);
    return end != item + n + 1 && !*end && bits >= 0 && bits <= (fam == AF_INET ? 32 : 128);
}

/* Calls check on each comma-separated, space-trimmed item of list; returns
 * the first item check refuses (copied into bad), or false when all pass. */
static bool list_find_bad(const char *list, bool (*check)(const char *), char *bad, size_t bad_len)
{
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (n) {
            char item[256];
            snprintf(item, sizeof item, "%.*s", (int)(n < 255 ? n : 255), p);
            if (n > 255 || !check(item)) {
                snprintf(bad, bad_len, "%s", item);
                return true;
            }
        }
        p += strcspn(p, ",");
    }
    return false;
}

static bool valid_origin(const char *o)
{
    if (strcmp(o, "*") == 0)
        return true;
    if (strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0)
        return false;
    const char *host = strstr(o, "://") + 3;
    return *host && !strchr(host, '/');
}

static bool valid_dev_token(const char *item)
{
    const char *colon = strchr(item, ':');
    if (!colon)
        return false;
    char role[16];
    snprintf(role, sizeof role, "%.*s", (int)(colon - item < 15 ? colon - item : 15), item);
    return kn_role_parse(role) > 0 && strlen(colon + 1) >= 16;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

static int load_lists(kn_security *s, we_err *err)
{
    char bad[256];
    if (list_find_bad(s->trusted_proxies, valid_cidr, bad, sizeof bad))
        return we_err_set(err, WE_EINVAL, "TRUSTED_PROXIES: '%s' is not an IP address or CIDR",
                          bad);
    if (list_find_bad(s->cors_origins, valid_origin, bad, sizeof bad))
        return we_err_set(err, WE_EINVAL,
                          "CORS_ALLOWED_ORIGINS: '%s' is not an origin (scheme://host[:port]) "
                          "or *",
                          bad);
    if (s->dev_tokens && list_find_bad(s->dev_tokens, valid_dev_token, bad, sizeof bad))
        return we_err_set(err, WE_EINVAL,
                          "WEBENCODE_DEV_TOKENS: an entry is not role:token with a role of "
                          "viewer, operator or admin and a token of at least 16 characters");
    return 0;
}

int kn_security_load(kn_config *cfg, we_err *err)
{
    kn_security *s = &cfg->sec;
    const char *mode = we_cfg_str("WEBENCODE_MODE", "production");
    if (strcmp(mode, "production") != 0 && strcmp(mode, "development") != 0)
        return we_err_set(err, WE_EINVAL, "WEBENCODE_MODE must be production or development");
    s->dev_mode = strcmp(mode, "development") == 0;
    s->dev_tokens = nonempty(we_cfg_str("WEBENCODE_DEV_TOKENS", NULL));
    if (s->dev_tokens && !s->dev_mode)
        return we_err_set(err, WE_EINVAL,
                          "WEBENCODE_DEV_TOKENS is set but WEBENCODE_MODE is production: dev-mode "
                          "tokens are never accepted in production; unset WEBENCODE_DEV_TOKENS "
                          "(or set WEBENCODE_MODE=development on a development machine)");
    s->bootstrap_token = nonempty(we_cfg_str("WEBENCODE_BOOTSTRAP_ADMIN_TOKEN", NULL));
    if (s->bootstrap_token && strlen(s->bootstrap_token) < 32)
        return we_err_set(err, WE_EINVAL,
                          "WEBENCODE_BOOTSTRAP_ADMIN_TOKEN must be at least 32 characters");
    s->trusted_proxies = we_cfg_str("TRUSTED_PROXIES", "");
    s->cors_origins = we_cfg_str("CORS_ALLOWED_ORIGINS", "");
    int rc = we_cfg_bool("AUTH_ANONYMOUS_METRICS", true, &s->metrics_anonymous, err);
    if (!rc)
        rc = we_cfg_int("AUTH_CACHE_TTL_S", 10, 0, 3600, &s->cache_ttl_s, err);
    if (!rc)
        rc = we_cfg_int("RATE_LIMIT_RPS", 50, 0, 1000000, &s->rate_rps, err);
    if (!rc)
        rc = we_cfg_int("RATE_LIMIT_BURST", 100, 1, 1000000, &s->rate_burst, err);
    if (!rc)
        rc = we_cfg_int("RATE_LIMIT_IP_RPS", 5, 0, 1000000, &s->ip_rps, err);
    if (!rc)
        rc = we_cfg_int("RATE_LIMIT_IP_BURST", 20, 1, 1000000, &s->ip_burst, err);
    if (!rc)
        rc = we_cfg_int("MAX_JSON_DEPTH", 32, 2, 1000, &s->max_json_depth, err);
    return rc ? rc : load_lists(s, err);
}

/* ---- addresses ---------------------------------------------------------- */

static bool cidr_contains(const char *cidr, const char *ip)
{
    unsigned char net[16], addr[16];
    char buf[64];
    size_t n = strcspn(cidr, "/");
    if (n >= sizeof buf)
        return false;
    memcpy(buf, cidr, n);
    buf[n] = '\0';
    int fam = strchr(buf, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, buf, net) != 1 || inet_pton(fam, ip, addr) != 1)
        return false;
    int len = fam == AF_INET ? 4 : 16;
    int bits = cidr[n] ? atoi(cidr + n + 1) : len * 8;
    for (int i = 0; i < len && bits > 0; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
        if ((net[i] & mask) != (addr[i] & mask))
            return false;
    }
    return true;
}

bool kn_ip_in_list(const char *list, const char *ip)
{
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        char item[80];
        size_t m = n;
        while (m && p[m - 1] == ' ')
            m--;
        if (m && m < sizeof item) {
            memcpy(item, p, m);
            item[m] = '\0';
            if (cidr_contains(item, ip))
                return true;
        }
        p += n;
    }
    return false;
}

static bool valid_ip(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

bool kn_forwarded_client(const char *xff, const char *trusted, char *out, size_t out_len)
{
    size_t end = strlen(xff);
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        const char *b = xff + start, *e = xff + end;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        char ip[64];
        if (e - b <= 0 || (size_t)(e - b) >= sizeof ip)
            return false;
        memcpy(ip, b, (size_t)(e - b));
        ip[e - b] = '\0';
        if (!valid_ip(ip))
            return false; /* garbage: trust nothing further left */
        if (!kn_ip_in_list(trusted, ip)) {
            snprintf(out, out_len, "%s", ip);
            return true;
        }
        end = start ? start - 1 : 0;
    }
    return false;
}

void kn_auth_client_ip(kn_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(r->client_ip, sizeof r->client_ip, "unknown");
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client_ip,
                      sizeof r->client_ip);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client_ip,
                      sizeof r->client_ip);
    }
    const char *trusted = r->kn->cfg.sec.trusted_proxies;
    if (!*trusted || !kn_ip_in_list(trusted, r->client_ip))
        return;
    const char *xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For");
    char ip[48];
    if (xff && kn_forwarded_client(xff, trusted, ip, sizeof ip))
        snprintf(r->client_ip, sizeof r->client_ip, "%s", ip);
}

bool kn_cors_allowed(const kn_ctx *kn, const char *origin)
{
    const char *list = kn->cfg.sec.cors_origins;
    if (!origin || !*list)
        return false;
    size_t olen = strlen(origin);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m && p[m - 1] == ' ')
            m--;
        if ((m == 1 && *p == '*') || (m == olen && strncmp(p, origin, m) == 0))
            return true;
        p += n;
    }
    return false;
}

/* ---- rate limits -------------------------------------------------------- */

int kn_bucket_take(kn_bucket *b, double rate, double burst, int64_t now_ms)
{
    if (b->last_ms == 0) {
        b->tokens = burst;
        b->last_ms = now_ms;
    }
    double elapsed = (double)(now_ms - b->last_ms) / 1000.0;
    if (elapsed > 0) {
        b->tokens = b->tokens + elapsed * rate;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    int wait = (int)((1.0 - b->tokens) / rate + 0.999);
    return wait < 1 ? 1 : wait;
}

typedef struct bucket_slot {
    char key[72];
    kn_bucket b;
} bucket_slot;

static pthread_mutex_t g_bucket_mu = PTHREAD_MUTEX_INITIALIZER;
static bucket_slot *g_buckets;

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The bucket of key, or the stalest slot near it (reused); under the lock. */
static kn_bucket *bucket_of(const char *key)
{
    uint32_t h = fnv1a(key);
    bucket_slot *oldest = NULL;
    for (int i = 0; i < BUCKET_WAYS; i++) {
        bucket_slot *s = &g_buckets[(h + (uint32_t)i) % BUCKET_SLOTS];
        if (strcmp(s->key, key) == 0)
            return &s->b;
        if (!oldest || s->b.last_ms < oldest->b.last_ms)
            oldest = s;
    }
    snprintf(oldest->key, sizeof oldest->key, "%s", key);
    oldest->b = (kn_bucket){ 0, 0 };
    return &oldest->b;
}

/* peek: only tell whether a request could go, without taking a token. */
static int rate_take(const char *key, long rate, long burst, bool peek)
{
    if (rate <= 0 || !g_buckets)
        return 0;
    pthread_mutex_lock(&g_bucket_mu);
    kn_bucket *b = bucket_of(key);
    kn_bucket copy = *b;
    int wait = kn_bucket_take(peek ? &copy : b, (double)rate, (double)burst, we_now_mono_ms());
    pthread_mutex_unlock(&g_bucket_mu);
    return wait;
}

/* ---- token cache -------------------------------------------------------- */

/* Whether an enabled admin user exists (bootstrap token), and when checked. */
static pthread_mutex_t g_admin_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t g_admin_checked_ms;
static bool g_admin_exists = true;


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
    g_buckets = calloc(BUCKET_SLOTS, sizeof *g_buckets);
    WE_ASSERT(g_cache && g_buckets);
}

void kn_auth_fini(void)
{
    free(g_cache);
    free(g_buckets);
    g_cache = NULL;
    g_buckets = NULL;
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

/* Whether an enabled admin user exists, re-checked every few seconds.
 * Unknown (database down) counts as "exists": the bootstrap token fails
 * closed. */
static bool admin_exists(kn_ctx *kn)
{
    pthread_mutex_t *mu = &g_admin_mu;
    int64_t now = we_now_mono_ms();
    pthread_mutex_lock(mu);
    bool fresh = g_admin_checked_ms && now - g_admin_checked_ms < ADMIN_CHECK_MS;
    bool value = g_admin_exists;
    pthread_mutex_unlock(mu);
    if (fresh)
        return value;
    we_err err;
    value = true;
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
    pthread_mutex_lock(mu);
    g_admin_exists = value;
    g_admin_checked_ms = c ? now : 0;
    pthread_mutex_unlock(mu);
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
        int rc = we_host_call(kn->plugins, id, "auth.authenticate",
                              json_pack("{s:s}", "token", token), PLUGIN_TIMEOUT_MS, NULL, NULL,
                              NULL, &res, &rerr, NULL);
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
        if (admin_exists(kn))
            return A_INVALID;
        set_who(who, KN_ADMIN, NULL, "bootstrap", "bootstrap", NULL);
        return A_OK;
    }
    unsigned char hash[32];
    token_hash(token, hash);
    if (cache_get(hash, who))
        return A_OK;
    if ((*wait_s = rate_take(ip_key, s->ip_rps, s->ip_burst, true)) != 0)
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
    rate_take(key, r->kn->cfg.sec.ip_rps, r->kn->cfg.sec.ip_burst, false);
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
        wait = rate_take(key, s->ip_rps, s->ip_burst, true);
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
    if (!anonymous_ok && (wait = rate_take(r->who.limit_key, s->rate_rps, s->rate_burst, false)))
        return too_many(r, wait, replied);
    if (r->who.role < rt->role) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s %s needs the %s role; this token has %s", r->method,
                 rt->pattern, kn_role_name(rt->role), kn_role_name(r->who.role));
        return refuse(r, 403, "WE-AUTH-003", msg, replied);
    }
    return 0;
}
