/*
 * The identity provider as auth-oidc sees it: discovery, the cached key set
 * and the thread that keeps it fresh.
 *
 * Discovery (<issuer>/.well-known/openid-configuration) gives jwks_uri; its
 * "issuer" must equal the configured issuer_url exactly (OpenID Connect
 * Discovery §4.3), or a document served elsewhere could name keys for our
 * issuer. The JWKS becomes an immutable ao_keyset, swapped in whole.
 *
 * Who fetches: a refresher thread (the "monitor") fetches at start, every
 * refresh_ms while the provider answers, and with backoff (1 s doubling to
 * min(refresh_ms, 30 s)) while it does not — that is what `health` reports.
 * A call whose token names a key we do not have asks for one more fetch
 * (ao_provider_refetch), granted at most once per min_refresh_ms counted from
 * the last fetch of anyone, so a flood of tokens with made-up key ids costs
 * the provider one request per interval. A failed JWKS fetch forgets
 * jwks_uri, so the next attempt runs discovery again.
 *
 * Threads: fetch_mu serialises fetches (and guards last_fetch_ms); mu guards
 * the keys pointer and jwks_uri for the short moments they are read or
 * swapped; `up` is atomic for `health`, which runs on the SDK's main thread
 * and must not block. Old key sets live on while a call holds a reference.
 */
#include "ao.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define DISCOVERY_MAX_BYTES (256 * 1024)
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000

int64_t ao_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records reachability; logs transitions only. */
static void set_up(ao_provider *p, bool up, const char *err)
{
    if (atomic_exchange(&p->up, up) == up)
        return;
    if (up)
        we_plugin_log("info", "identity provider reachable",
                      json_pack("{s:s}", "issuer", p->issuer));
    else
        we_plugin_log("warn", "identity provider unreachable; cached keys stay in use",
                      json_pack("{s:s, s:s}", "issuer", p->issuer, "error", err));
}

/* jwks_uri from the discovery document: 0 with *uri (free()), or -1. */
static int discover(ao_provider *p, char **uri, char *err, size_t err_len)
{
    char *body = NULL, why[160];
    size_t len;
    if (ao_http_get(p->discovery_url, p->timeout_ms, DISCOVERY_MAX_BYTES, &p->cancel, &body, &len,
                    err, err_len) < 0)
        return -1;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *iss = json_string_value(json_object_get(doc, "issuer"));
    const char *jwks = json_string_value(json_object_get(doc, "jwks_uri"));
    int rc = -1;
    if (!iss || !jwks)
        snprintf(err, err_len, "%s: not a discovery document (issuer, jwks_uri)", p->discovery_url);
    else if (strcmp(iss, p->issuer) != 0)
        snprintf(err, err_len, "discovery names issuer \"%.200s\", not the configured \"%s\"", iss,
                 p->issuer);
    else if (!ao_url_allowed(jwks, p->allow_insecure, why, sizeof why))
        snprintf(err, err_len, "jwks_uri %.200s: %s", jwks, why);
    else
        rc = (*uri = strdup(jwks)) ? 0 : -1;
    json_decref(doc);
    free(body);
    return rc;
}

static int fetch_keys(ao_provider *p, const char *uri, ao_keyset **ks, char *err, size_t err_len)
{
    char *body = NULL, why[200];
    size_t len;
    if (ao_http_get(uri, p->timeout_ms, AO_JWKS_MAX_BYTES, &p->cancel, &body, &len, err, err_len) <
        0)
        return -1;
    int rc = ao_keyset_parse(body, len, ks, why, sizeof why);
    if (rc < 0)
        snprintf(err, err_len, "%s: %s", uri, why);
    free(body);
    return rc;
}

static json_t *kids_of(const ao_keyset *ks)
{
    json_t *a = json_array();
    for (size_t i = 0; i < ks->n; i++)
        json_array_append_new(a, ks->keys[i].kid ? json_string(ks->keys[i].kid) : json_null());
    return a;
}

/* Swaps in ks (stealing it) and uri; logs the new key ids. */
static void install(ao_provider *p, ao_keyset *ks, char *uri)
{
    pthread_mutex_lock(&p->mu);
    ao_keyset *old = p->keys;
    char *old_uri = p->jwks_uri;
    p->keys = ks;
    p->jwks_uri = uri;
    pthread_mutex_unlock(&p->mu);
    ao_keyset_unref(old);
    if (old_uri != uri)
        free(old_uri);
    atomic_store(&p->ready, true);
    we_plugin_log("debug", "JWKS fetched", json_pack("{s:o}", "kids", kids_of(ks)));
}

/* With fetch_mu held: discovery when needed, then the JWKS. 0 or -1. */
static int fetch_locked(ao_provider *p)
{
    char err[400] = "", *uri = NULL;
    ao_keyset *ks = NULL;
    p->last_fetch_ms = ao_mono_ms();
    pthread_mutex_lock(&p->mu);
    if (p->jwks_uri)
        uri = strdup(p->jwks_uri);
    pthread_mutex_unlock(&p->mu);
    if ((!uri && discover(p, &uri, err, sizeof err) < 0) ||
        fetch_keys(p, uri, &ks, err, sizeof err) < 0) {
        free(uri);
        pthread_mutex_lock(&p->mu);
        free(p->jwks_uri); /* rediscover next time: the JWKS may have moved */
        p->jwks_uri = NULL;
        pthread_mutex_unlock(&p->mu);
        set_up(p, false, err[0] ? err : "out of memory");
        return -1;
    }
    install(p, ks, uri);
    set_up(p, true, NULL);
    return 0;
}

ao_keyset *ao_provider_keys(ao_provider *p)
{
    pthread_mutex_lock(&p->mu);
    ao_keyset *ks = ao_keyset_ref(p->keys);
    pthread_mutex_unlock(&p->mu);
    return ks;
}

static bool keys_are(ao_provider *p, const ao_keyset *ks)
{
    pthread_mutex_lock(&p->mu);
    bool same = p->keys == ks;
    pthread_mutex_unlock(&p->mu);
    return same;
}

ao_refetch ao_provider_refetch(ao_provider *p, const ao_keyset *seen)
{
    ao_refetch r;
    pthread_mutex_lock(&p->fetch_mu);
    if (!keys_are(p, seen))
        r = AO_REFETCH_NEW_KEYS; /* someone fetched while we waited for the lock */
    else if (p->last_fetch_ms && ao_mono_ms() - p->last_fetch_ms < p->min_refresh_ms)
        r = AO_REFETCH_LIMITED;
    else
        r = fetch_locked(p) == 0 ? AO_REFETCH_NEW_KEYS : AO_REFETCH_FAILED;
    pthread_mutex_unlock(&p->fetch_mu);
    return r;
}

/* One turn of the monitor: fetches when due; returns ms until the next. */
static int64_t monitor_turn(ao_provider *p, int64_t *retry_ms)
{
    pthread_mutex_lock(&p->fetch_mu); /* keys only change under it: read without mu */
    int64_t period = atomic_load(&p->up) && p->keys ? p->refresh_ms : *retry_ms;
    int64_t since = ao_mono_ms() - p->last_fetch_ms;
    bool due = p->last_fetch_ms == 0 || since >= period;
    bool ok = due ? fetch_locked(p) == 0 : true;
    pthread_mutex_unlock(&p->fetch_mu);
    if (!due)
        return period - since;
    if (ok) {
        *retry_ms = RETRY_MIN_MS;
        return p->refresh_ms;
    }
    int64_t wait = *retry_ms, cap = p->refresh_ms < RETRY_MAX_MS ? p->refresh_ms : RETRY_MAX_MS;
    *retry_ms = *retry_ms * 2 < cap ? *retry_ms * 2 : cap;
    return wait;
}

static void *monitor_main(void *arg)
{
    ao_provider *p = arg;
    int64_t retry_ms = RETRY_MIN_MS;
    pthread_mutex_lock(&p->stop_mu);
    while (!p->stopping) {
        pthread_mutex_unlock(&p->stop_mu);
        int64_t wait_ms = monitor_turn(p, &retry_ms);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->stop_mu);
        while (!p->stopping &&
               pthread_cond_timedwait(&p->stop_cv, &p->stop_mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&p->stop_mu);
    return NULL;
}

static char *discovery_url(const char *issuer)
{
    size_t n = strlen(issuer);
    if (n && issuer[n - 1] == '/') /* "https://tenant.auth0.com/" */
        n--;
    char *url = malloc(n + sizeof DISCOVERY_PATH);
    if (url)
        snprintf(url, n + sizeof DISCOVERY_PATH, "%.*s%s", (int)n, issuer, DISCOVERY_PATH);
    return url;
}

static void sync_init(ao_provider *p)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->fetch_mu, NULL);
    pthread_mutex_init(&p->stop_mu, NULL);
}

int ao_provider_init(ao_provider *p, const ao_provider_cfg *cfg, char *err, size_t err_len)
{
    memset(p, 0, sizeof *p);
    p->issuer = strdup(cfg->issuer);
    p->discovery_url = discovery_url(cfg->issuer);
    if (!p->issuer || !p->discovery_url) {
        free(p->issuer);
        free(p->discovery_url);
        snprintf(err, err_len, "issuer_url: out of memory");
        return -1;
    }
    p->allow_insecure = cfg->allow_insecure;
    p->timeout_ms = cfg->timeout_ms;
    p->min_refresh_ms = cfg->min_refresh_ms;
    p->refresh_ms = cfg->refresh_ms;
    atomic_init(&p->up, true); /* so that a first failure is logged */
    atomic_init(&p->ready, false);
    atomic_init(&p->cancel, false);
    sync_init(p);
    p->monitor_running = pthread_create(&p->monitor, NULL, monitor_main, p) == 0;
    return 0;
}

/* A no-op on a provider whose init failed (issuer NULL). */
void ao_provider_fini(ao_provider *p)
{
    if (!p->issuer)
        return;
    atomic_store(&p->cancel, true);
    if (p->monitor_running) {
        pthread_mutex_lock(&p->stop_mu);
        p->stopping = true;
        pthread_cond_signal(&p->stop_cv);
        pthread_mutex_unlock(&p->stop_mu);
        pthread_join(p->monitor, NULL);
    }
    ao_keyset_unref(p->keys);
    free(p->jwks_uri);
    free(p->issuer);
    free(p->discovery_url);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->fetch_mu);
    pthread_mutex_destroy(&p->stop_mu);
    pthread_cond_destroy(&p->stop_cv);
    memset(p, 0, sizeof *p);
}
