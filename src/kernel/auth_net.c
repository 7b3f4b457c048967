/*
 * Who is asking, and how often: client addresses (the peer, or
 * X-Forwarded-For from a trusted proxy), address lists and CIDRs, CORS
 * origins, and the token buckets of the rate limiter.
 *
 * The buckets live in one fixed table (BUCKET_SLOTS, a short probe per
 * key; the stalest slot of the probe is reused), so memory stays bounded
 * whatever keys clients invent. One mutex guards it; MHD's pool threads
 * take it for a few hundred nanoseconds per request.
 */
#include "auth.h"

#include "we_config.h"
#include "we_log.h"
#include "we_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKET_SLOTS 4096
#define BUCKET_WAYS 16

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
int kn_rate_take(const char *key, long rate, long burst, bool peek)
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

void kn_rate_init(void)
{
    g_buckets = calloc(BUCKET_SLOTS, sizeof *g_buckets);
    WE_ASSERT(g_buckets != NULL);
}

void kn_rate_fini(void)
{
    free(g_buckets);
    g_buckets = NULL;
}
