/*
 * The plugin host's public face: creating and freeing a host, introspection
 * and picking a plugin, plus the small helpers the host's files share.
 *
 * Files: we_host_admin.c discovers plugins and applies administrative
 * changes, we_host_sup.c is the supervisor thread and the state machine,
 * we_host_proc.c starts, reads, writes and reaps processes, we_host_rpc.c
 * speaks JSON-RPC and implements we_host_call. The locking rules are in
 * we_host_int.h. Introspection copies what it reports under h->mu.
 *
 * Threads: one supervisor per host (we_host_sup.c: every fork, reap,
 * restart, health check and administrative change); two readers per running
 * plugin (stdout: completes calls; stderr: re-logs); and the callers' own
 * threads, which block in we_host_call on a condition variable of their own
 * and run progress callbacks and load_overrides themselves.
 */
#include "we_host_int.h"
#include "we_log.h"
#include "we_util.h"

#include <webencode/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef WE_VERSION
#define WE_VERSION "0.0.0"
#endif

/* --- small helpers shared by the host's files -------------------------------------- */

int64_t we__now(void)
{
    return we_now_mono_ms();
}

void we__cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

void we__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};
    pthread_cond_timedwait(c, mu, &ts);
}

void we__kick(we_host *h)
{
    h->kicked = true;
    pthread_cond_signal(&h->kick);
}

we__plugin *we__find(we_host *h, const char *id)
{
    for (size_t i = 0; i < h->n_plugins; i++)
        if (strcmp(h->plugins[i]->id, id) == 0)
            return h->plugins[i];
    return NULL;
}

/* --- new / free ------------------------------------------------------------------------ */

static int opt_default(int v, int def)
{
    return v > 0 ? v : def;
}

static void opts_defaults(we_host_opts *o)
{
    o->handshake_timeout_ms = opt_default(o->handshake_timeout_ms, 5000);
    o->health_interval_ms = opt_default(o->health_interval_ms, 10000);
    o->health_timeout_ms = opt_default(o->health_timeout_ms, 2000);
    o->health_slow_ms = opt_default(o->health_slow_ms, 1000);
    o->health_failures = opt_default(o->health_failures, 3);
    o->restart_base_ms = opt_default(o->restart_base_ms, 500);
    o->restart_max_ms = opt_default(o->restart_max_ms, 30000);
    o->max_restarts = opt_default(o->max_restarts, 5);
    o->stable_ms = opt_default(o->stable_ms, 60000);
    o->shutdown_timeout_ms = opt_default(o->shutdown_timeout_ms, 5000);
    o->call_timeout_ms = opt_default(o->call_timeout_ms, 30000);
    if (o->types == 0)
        o->types = (1u << WE_PT_COUNT) - 1;
}

static void api_versions_copy(we_host *h, const we_host_opts *opts)
{
    static const int def = WE_PLUGIN_API_VERSION;
    const int *v = opts->api_versions && opts->n_api_versions ? opts->api_versions : &def;
    size_t n = opts->api_versions && opts->n_api_versions ? opts->n_api_versions : 1;
    h->api_versions = calloc(n, sizeof *h->api_versions);
    WE_ASSERT(h->api_versions != NULL);
    memcpy(h->api_versions, v, n * sizeof *v);
    h->o.api_versions = h->api_versions;
    h->o.n_api_versions = n;
    size_t off = (size_t)snprintf(h->api_list, sizeof h->api_list, "[");
    for (size_t i = 0; i < n && off < sizeof h->api_list; i++)
        off += (size_t)snprintf(h->api_list + off, sizeof h->api_list - off, "%s%d", i ? ", " : "",
                                v[i]);
    if (off < sizeof h->api_list)
        snprintf(h->api_list + off, sizeof h->api_list - off, "]");
}

int we_host_new(const we_host_opts *opts, we_host **out, we_err *err)
{
    if (!opts || !opts->plugin_dir || !opts->plugin_dir[0])
        return we_err_set(err, WE_EINVAL, "plugin host: plugin_dir is required");
    we_host *h = calloc(1, sizeof *h);
    WE_ASSERT(h != NULL);
    h->o = *opts;
    h->o.plugin_dir = we_strdup(opts->plugin_dir);
    h->o.host_name = we_strdup(opts->host_name ? opts->host_name : "webencode");
    h->o.host_version = we_strdup(opts->host_version ? opts->host_version : WE_VERSION);
    opts_defaults(&h->o);
    api_versions_copy(h, opts);
    pthread_mutex_init(&h->mu, NULL);
    we__cond_init(&h->kick);
    we__cond_init(&h->changed);
    *out = h;
    return 0;
}

static void plugin_free(we__plugin *p)
{
    free(p->id);
    free(p->dir);
    we_manifest_free(p->man);
    json_decref(p->file_cfg);
    json_decref(p->db_cfg);
    json_decref(p->config);
    free(p->hs_version);
    json_decref(p->hs_caps);
    json_decref(p->hs_methods);
    we__pending_free(p->pending);
    free(p);
}

void we_host_free(we_host *h)
{
    if (!h)
        return;
    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->stopping = true;
        we__kick(h);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->sup, NULL);
    }
    for (size_t i = 0; i < h->n_plugins; i++)
        plugin_free(h->plugins[i]);
    free(h->plugins);
    free(h->api_versions);
    free((char *)h->o.plugin_dir);
    free((char *)h->o.host_name);
    free((char *)h->o.host_version);
    pthread_cond_destroy(&h->kick);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* --- introspection ------------------------------------------------------------------------------
 */

static json_t *capabilities(const we__plugin *p)
{
    json_t *caps = json_deep_copy(p->man->capabilities);
    if (p->hs_caps)
        json_object_update(caps, p->hs_caps);
    return caps;
}

static json_t *describe(we__plugin *p, int64_t now)
{
    json_t *o = json_object();
    bool running = p->proc && p->up_since;
    json_object_set_new(o, "id", json_string(p->id));
    json_object_set_new(o, "type", json_string(we_plugin_type_name(p->man->type)));
    json_object_set_new(o, "version", json_string(running ? p->hs_version : p->man->version));
    json_object_set_new(o, "api_version", json_integer(running ? p->hs_api : p->man->api_version));
    json_object_set_new(o, "description", json_string(p->man->description));
    json_object_set_new(o, "state", json_string(we_pstate_name(p->state)));
    json_object_set_new(o, "enabled", json_boolean(p->enabled));
    json_object_set_new(o, "priority", json_integer(p->priority));
    json_object_set_new(o, "uptime_s", json_integer(running ? (now - p->up_since) / 1000 : 0));
    json_object_set_new(o, "restarts", json_integer(p->restarts));
    json_object_set_new(o, "restarts_total", json_integer(p->restarts_total));
    json_object_set_new(o, "last_error",
                        p->last_error[0] ? json_string(p->last_error) : json_null());
    json_object_set_new(o, "capabilities", capabilities(p));
    json_object_set_new(o, "methods", p->hs_methods ? json_deep_copy(p->hs_methods) : json_array());
    json_t *masked = we_manifest_mask_secrets(p->man, p->config);
    json_object_set_new(o, "config", masked ? masked : json_null());
    json_object_set_new(o, "pid", p->proc ? json_integer(p->proc->pid) : json_null());
    return o;
}

json_t *we_host_list(we_host *h)
{
    json_t *a = json_array();
    pthread_mutex_lock(&h->mu);
    int64_t now = we__now();
    for (size_t i = 0; i < h->n_plugins; i++)
        json_array_append_new(a, describe(h->plugins[i], now));
    pthread_mutex_unlock(&h->mu);
    return a;
}

json_t *we_host_get(we_host *h, const char *id)
{
    pthread_mutex_lock(&h->mu);
    we__plugin *p = we__find(h, id);
    json_t *o = p ? describe(p, we__now()) : NULL;
    pthread_mutex_unlock(&h->mu);
    return o;
}

/* True when a is a better pick than b (b may be NULL). */
static bool better(const we__plugin *a, const we__plugin *b)
{
    if (!b || a->priority != b->priority)
        return !b || a->priority > b->priority;
    if (a->state != b->state)
        return a->state == WE_PS_HEALTHY;
    return strcmp(a->id, b->id) < 0;
}

int we_host_pick(we_host *h, we_plugin_type type, char id_out[WE_PLUGIN_ID_MAX + 1], we_err *err)
{
    we__plugin *best = NULL;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n_plugins; i++) {
        we__plugin *p = h->plugins[i];
        bool up = p->state == WE_PS_HEALTHY || p->state == WE_PS_DEGRADED;
        if (p->man->type == type && p->enabled && up && better(p, best))
            best = p;
    }
    if (best)
        snprintf(id_out, WE_PLUGIN_ID_MAX + 1, "%s", best->id);
    pthread_mutex_unlock(&h->mu);
    if (!best)
        return we_err_set(err, WE_ENOENT, "no healthy %s plugin", we_plugin_type_name(type));
    return 0;
}

int we_host_wait_state(we_host *h, const char *id, unsigned mask, int timeout_ms)
{
    int64_t deadline = we__now() + timeout_ms;
    int rc = WE_ETIMEOUT;
    pthread_mutex_lock(&h->mu);
    we__plugin *p = we__find(h, id);
    while (p && we__now() < deadline) {
        if (mask & WE_PS_BIT(p->state)) {
            rc = 0;
            break;
        }
        we__cond_wait_until(&h->changed, &h->mu, deadline);
    }
    if (p && (mask & WE_PS_BIT(p->state)))
        rc = 0;
    pthread_mutex_unlock(&h->mu);
    return p ? rc : WE_ENOENT;
}
