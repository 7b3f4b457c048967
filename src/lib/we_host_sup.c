/*
 * The supervisor: one thread per host that owns every plugin's lifecycle
 * (docs/plugin-protocol.md §7). It alone forks, reaps and joins, so the
 * parent-death signal of every plugin is tied to a thread that lives as long
 * as the host. It wakes every TICK_MS, or at once when kicked (a process
 * died, an administrator asked for a change), and for each plugin:
 *
 *   - notices an exit (waitid without reaping, or end-of-file on stdout
 *     once the lines before it are handled) and expires the host's own
 *     requests (handshake, health, shutdown) at their deadlines;
 *   - reaps a dead process: kills its process group, waits for it, joins its
 *     readers, fails the calls still in flight, and on an unexpected end
 *     moves failed -> restarting after min(base * 2^n, max), or to disabled
 *     after max_restarts restarts in a row without stable_ms of health;
 *   - applies a pending change (reload, enable, disable) once the process
 *     is gone, after asking it to shut down;
 *   - sends `health` every health_interval_ms.
 *
 * Handlers of the handshake and health answers run under h->mu on whichever
 * thread completed the request (the stdout reader, or this one at a
 * deadline); they only change state and mark a process dead, never block.
 * A process marked dead is killed and reaped here on the next pass.
 */
#include "we_host_int.h"
#include "we_log.h"
#include "we_util.h"

#include <webencode/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 50
#define STOP_ON_FREE_MS 2000
#define EXIT_GRACE_MS 500

static const char *const state_names[] = {"starting", "healthy",    "degraded",
                                          "failed",   "restarting", "disabled"};

const char *we_pstate_name(we_pstate s)
{
    return (unsigned)s <= WE_PS_DISABLED ? state_names[s] : "?";
}

static bool settled(we_pstate s)
{
    return s == WE_PS_HEALTHY || s == WE_PS_DEGRADED || s == WE_PS_FAILED || s == WE_PS_DISABLED;
}

void we__set_state(we_host *h, we__plugin *p, we_pstate s, const char *reason)
{
    if (p->state != s) {
        bool bad = s == WE_PS_FAILED || (s == WE_PS_DISABLED && p->enabled);
        we_log_at(bad ? WE_LOG_ERROR : WE_LOG_INFO, "plugin state changed", WE_S("plugin", p->id),
                  WE_S("from", state_names[p->state]), WE_S("to", state_names[s]),
                  WE_S("reason", reason), WE_KV_LAST);
        p->state = s;
    }
    if (s == WE_PS_FAILED || s == WE_PS_DEGRADED || (s == WE_PS_DISABLED && p->enabled))
        snprintf(p->last_error, sizeof p->last_error, "%s", reason);
    if (settled(s))
        p->settled_seq = p->applied_seq;
    pthread_cond_broadcast(&h->changed);
}

/* --- restarts ------------------------------------------------------------------ */

static void schedule_restart(we_host *h, we__plugin *p)
{
    if (p->hold || !p->enabled)
        return;
    char why[700];
    if (p->restarts >= h->o.max_restarts) {
        snprintf(why, sizeof why,
                 "disabled after %d restarts in a row without %d s of stable health; last error: "
                 "%s",
                 p->restarts, h->o.stable_ms / 1000, p->last_error);
        we__set_state(h, p, WE_PS_DISABLED, why);
        return;
    }
    int64_t delay = h->o.restart_base_ms;
    for (int i = 0; i < p->restarts && delay < h->o.restart_max_ms; i++)
        delay *= 2;
    if (delay > h->o.restart_max_ms)
        delay = h->o.restart_max_ms;
    p->restart_at = we__now() + delay;
    snprintf(why, sizeof why, "restart %d of %d in %lld ms", p->restarts + 1, h->o.max_restarts,
             (long long)delay);
    we__set_state(h, p, WE_PS_RESTARTING, why);
}

static bool offered(we_host *h, int api)
{
    for (size_t i = 0; i < h->o.n_api_versions; i++)
        if (h->api_versions[i] == api)
            return true;
    return false;
}

/* Logs the runbook's words, fails the plugin for good (until a reload). */
static void incompatible(we_host *h, we__plugin *p, int plugin_api, const char *detail)
{
    char why[600];
    if (detail && strncmp(detail, "Incompatible API version", 24) == 0) {
        snprintf(why, sizeof why, "%s", detail);
        sscanf(detail, "Incompatible API version: plugin speaks %d", &plugin_api);
    } else
        snprintf(why, sizeof why, "Incompatible API version: plugin speaks %d, host offers %s",
                 plugin_api, h->api_list);
    we_error("Incompatible API version", WE_S("plugin", p->id),
             WE_I("plugin_api_version", plugin_api), WE_RAW("host_api_versions", h->api_list),
             WE_ERR(why));
    p->hold = true;
    we__set_state(h, p, WE_PS_FAILED, why);
    if (p->proc)
        we__proc_fail(p->proc, "%s", why);
}

/* --- handshake and health answers ------------------------------------------------ */

static json_t *handshake_params(we_host *h, we__plugin *p)
{
    json_t *versions = json_array();
    for (size_t i = 0; i < h->o.n_api_versions; i++)
        json_array_append_new(versions, json_integer(h->api_versions[i]));
    json_t *config = p->config ? json_incref(p->config) : json_object();
    return json_pack("{s:o, s:s, s:s, s:s, s:o}", "api_versions", versions, "host", h->o.host_name,
                     "host_version", h->o.host_version, "plugin_id", p->id, "config", config);
}

/* Why the handshake result r does not fit p ("" when it does). */
static void check_handshake(we__plugin *p, json_t *r, char *why, size_t n)
{
    const char *id = json_string_value(json_object_get(r, "id"));
    const char *type = json_string_value(json_object_get(r, "type"));
    why[0] = '\0';
    if (!json_is_object(r))
        snprintf(why, n, "the handshake result is not an object");
    else if (!id || strcmp(id, p->id) != 0)
        snprintf(why, n, "handshake id '%s' differs from the manifest's '%s'", id ? id : "", p->id);
    else if (!type || strcmp(type, we_plugin_type_name(p->man->type)) != 0)
        snprintf(why, n, "handshake type '%s' differs from the manifest's '%s'", type ? type : "",
                 we_plugin_type_name(p->man->type));
}

static void handshake_ok(we_host *h, we__plugin *p, json_t *r)
{
    const char *version = json_string_value(json_object_get(r, "version"));
    json_t *methods = json_object_get(r, "methods"), *caps = json_object_get(r, "capabilities");
    free(p->hs_version);
    p->hs_version = we_strdup(version ? version : p->man->version);
    p->hs_api = (int)json_integer_value(json_object_get(r, "api_version"));
    json_decref(p->hs_methods);
    json_decref(p->hs_caps);
    p->hs_methods = json_is_array(methods) ? json_deep_copy(methods) : json_array();
    p->hs_caps = json_is_object(caps) ? json_deep_copy(caps) : json_object();
    int64_t now = we__now();
    p->up_since = now;
    p->health_fails = 0;
    p->next_health = now + h->o.health_interval_ms;
    char why[128];
    snprintf(why, sizeof why, "handshake answered (version %s)", p->hs_version);
    we__set_state(h, p, WE_PS_HEALTHY, why);
}

static void handshake_failed(we_host *h, we__plugin *p, we__call *c)
{
    char why[700];
    if (c->rerr.code == WE_RPC_INCOMPATIBLE) {
        incompatible(h, p, p->man->api_version, c->rerr.message);
        return;
    }
    if (c->rerr.code == WE_RPC_INVALID_PARAMS) {
        p->hold = true; /* the same configuration fails the same way */
        snprintf(why, sizeof why, "plugin rejected its configuration: %s", c->rerr.message);
    } else if (c->expired) {
        snprintf(why, sizeof why, "no handshake answer within %d ms", h->o.handshake_timeout_ms);
    } else {
        snprintf(why, sizeof why, "handshake failed: %s", c->rerr.message);
    }
    we__set_state(h, p, WE_PS_FAILED, why);
    we__proc_fail(p->proc, "%s", why);
}

void we__handshake_done(we_host *h, we__proc *pr, we__call *c)
{
    we__plugin *p = pr->p;
    if (pr->dead || pr->stopping || p->proc != pr)
        return; /* the reaper reports why */
    if (c->rc != 0) {
        handshake_failed(h, p, c);
        return;
    }
    json_t *api = json_object_get(c->result, "api_version");
    if (!json_is_integer(api) || !offered(h, (int)json_integer_value(api))) {
        incompatible(h, p, json_is_integer(api) ? (int)json_integer_value(api) : 0, NULL);
        return;
    }
    char why[300];
    check_handshake(p, c->result, why, sizeof why);
    if (why[0]) {
        we_error("plugin handshake mismatch", WE_S("plugin", p->id), WE_ERR(why));
        p->hold = true;
        we__set_state(h, p, WE_PS_FAILED, why);
        we__proc_fail(pr, "%s", why);
        return;
    }
    handshake_ok(h, p, c->result);
}

static void health_failed(we_host *h, we__plugin *p, we__call *c)
{
    char why[700];
    if (++p->health_fails >= h->o.health_failures) {
        snprintf(why, sizeof why, "%d health checks failed in a row; last: %s", p->health_fails,
                 c->rerr.message);
        we__set_state(h, p, WE_PS_FAILED, why);
        we__proc_fail(p->proc, "%s", why);
        return;
    }
    snprintf(why, sizeof why, "health check failed (%d of %d): %s", p->health_fails,
             h->o.health_failures, c->rerr.message);
    we__set_state(h, p, WE_PS_DEGRADED, why);
}

void we__health_done(we_host *h, we__proc *pr, we__call *c)
{
    we__plugin *p = pr->p;
    if (p->proc != pr)
        return;
    p->health_busy = false;
    if (pr->dead || pr->stopping)
        return;
    int64_t now = we__now(), took = now - c->sent_ms;
    p->next_health = now + h->o.health_interval_ms;
    if (c->rc != 0) {
        health_failed(h, p, c);
        return;
    }
    p->health_fails = 0;
    const char *status = json_string_value(json_object_get(c->result, "status"));
    const char *detail = json_string_value(json_object_get(c->result, "detail"));
    char why[600];
    if (status && strcmp(status, "degraded") == 0)
        snprintf(why, sizeof why, "plugin reports degraded: %s", detail ? detail : "no detail");
    else if (took > h->o.health_slow_ms)
        snprintf(why, sizeof why, "health check took %lld ms (over %d ms)", (long long)took,
                 h->o.health_slow_ms);
    else if (!status || strcmp(status, "ok") != 0)
        snprintf(why, sizeof why, "health status '%s' is not ok", status ? status : "");
    else
        why[0] = '\0';
    we__set_state(h, p, why[0] ? WE_PS_DEGRADED : WE_PS_HEALTHY, why[0] ? why : "health check ok");
}

/* --- starting and stopping --------------------------------------------------------- */

/* Starts p's process and sends the handshake (h->mu held, released while
 * forking). */
static void start(we_host *h, we__plugin *p, const char *reason)
{
    if (!offered(h, p->man->api_version)) {
        incompatible(h, p, p->man->api_version, NULL); /* as plugin.toml declares */
        return;
    }
    we__set_state(h, p, WE_PS_STARTING, reason);
    we__proc *pr = NULL;
    we_err err;
    pthread_mutex_unlock(&h->mu);
    int rc = we__spawn(h, p, &pr, &err);
    pthread_mutex_lock(&h->mu);
    if (rc != 0) {
        we__set_state(h, p, WE_PS_FAILED, err.msg);
        schedule_restart(h, p);
        return;
    }
    p->proc = pr;
    json_t *params = handshake_params(h, p);
    we__send_async(h, pr, WE__CALL_HANDSHAKE, "handshake", params, h->o.handshake_timeout_ms);
    json_decref(params);
}

/* Asks the process to exit: `shutdown`, then end-of-file on its stdin. */
static void begin_stop(we_host *h, we__proc *pr, int timeout_ms)
{
    pr->stopping = true;
    pr->stop_deadline = we__now() + timeout_ms;
    we__send_async(h, pr, WE__CALL_SHUTDOWN, "shutdown", NULL, timeout_ms);
    we__proc_close_input(pr);
}

void we__pending_free(we__pending *pd)
{
    if (!pd)
        return;
    we_manifest_free(pd->man);
    json_decref(pd->file_cfg);
    json_decref(pd->db_cfg);
    json_decref(pd->config);
    free(pd);
}

static void swap_json(json_t **dst, json_t **src)
{
    json_decref(*dst);
    *dst = *src;
    *src = NULL;
}

/* Takes the settings of a pending change (one whose manifest loaded). */
static void take_settings(we__plugin *p, we__pending *pd)
{
    if (pd->man) {
        we_manifest_free(p->man);
        p->man = pd->man;
        pd->man = NULL;
    }
    swap_json(&p->file_cfg, &pd->file_cfg);
    swap_json(&p->db_cfg, &pd->db_cfg);
    swap_json(&p->config, &pd->config);
    p->enabled = pd->enabled;
    p->priority = pd->priority;
}

/* Applies a pending change to a plugin that has no process. A change whose
 * manifest no longer loads (no_manifest) keeps the old settings and fails. */
static void apply(we_host *h, we__plugin *p)
{
    we__pending *pd = p->pending;
    p->pending = NULL;
    p->applied_seq = pd->seq;
    if (pd->stop_only) {
        p->enabled = false;
    } else {
        if (!pd->no_manifest)
            take_settings(p, pd);
        p->hold = false;
        p->restarts = p->health_fails = 0;
        p->last_error[0] = '\0';
    }
    if (!p->enabled) {
        we__set_state(h, p, WE_PS_DISABLED, "disabled by an administrator");
    } else if (pd->error[0]) {
        p->hold = true;
        we__set_state(h, p, WE_PS_FAILED, pd->error);
    } else {
        start(h, p, p->applied_seq > 1 ? "reloaded" : "started");
    }
    we__pending_free(pd);
}

/* --- the per-plugin pass ------------------------------------------------------------ */

static void reaped(we_host *h, we__plugin *p, we__proc *pr, int status)
{
    char st[80], why[700];
    we__exit_text(status, st, sizeof st);
    snprintf(why, sizeof why, "%s", pr->why[0] ? pr->why : st);
    if (pr->why[0] == '\0' || strcmp(pr->why, st) != 0)
        we_debug("plugin process ended", WE_S("plugin", p->id), WE_I("pid", pr->pid),
                 WE_S("status", st));
    we__calls_fail_all(pr, why);
    p->proc = NULL;
    p->up_since = 0;
    p->health_busy = false;
    bool expected = pr->stopping;
    we__proc_unref(pr);
    if (p->pending)
        we__kick(h); /* apply it on the next pass, without waiting a tick */
    if (expected)
        return;
    if (p->state != WE_PS_FAILED) {
        char reason[760];
        snprintf(reason, sizeof reason, "plugin %s", why);
        we__set_state(h, p, WE_PS_FAILED, reason);
    }
    schedule_restart(h, p);
}

static void reap(we_host *h, we__plugin *p, we__proc *pr)
{
    int status;
    pthread_mutex_unlock(&h->mu);
    we__proc_reap(pr, &status);
    pthread_mutex_lock(&h->mu);
    reaped(h, p, pr, status);
}

static void tick_running(we_host *h, we__plugin *p, we__proc *pr, int64_t now)
{
    if (!pr->exited && we__proc_exited(pr)) {
        pr->exited = true;
        pr->exited_ms = now;
    }
    we__calls_expire(pr, now);
    /* After an exit the reader first takes what the plugin wrote before it
     * (its end-of-file marks the process dead); a grandchild holding the
     * pipe open only delays the reap by EXIT_GRACE_MS. */
    bool drained = pr->dead || now - pr->exited_ms >= EXIT_GRACE_MS;
    if ((pr->exited && drained) || (pr->dead && !pr->stopping) ||
        (pr->stopping && now >= pr->stop_deadline)) {
        reap(h, p, pr);
        return;
    }
    if (pr->stopping)
        return;
    if (p->pending) {
        if (p->pending->stop_only)
            p->enabled = false;
        we__set_state(h, p, p->pending->stop_only ? WE_PS_DISABLED : WE_PS_RESTARTING,
                      p->pending->stop_only ? "disabled by an administrator" : "reload requested");
        begin_stop(h, pr, h->o.shutdown_timeout_ms);
        return;
    }
    if (p->restarts > 0 && p->up_since && now - p->up_since >= h->o.stable_ms)
        p->restarts = 0;
    if ((p->state == WE_PS_HEALTHY || p->state == WE_PS_DEGRADED) && !p->health_busy &&
        now >= p->next_health) {
        p->health_busy = true;
        we__send_async(h, pr, WE__CALL_HEALTH, "health", NULL, h->o.health_timeout_ms);
    }
}

static void tick(we_host *h, we__plugin *p)
{
    int64_t now = we__now();
    if (p->proc)
        tick_running(h, p, p->proc, now);
    else if (p->pending)
        apply(h, p);
    else if (p->state == WE_PS_RESTARTING && now >= p->restart_at) {
        p->restarts++;
        p->restarts_total++;
        start(h, p, "restarting after a failure");
    }
}

/* --- host shutdown ---------------------------------------------------------------------- */

static void stop_all(we_host *h)
{
    pthread_mutex_lock(&h->mu);
    int timeout =
        h->o.shutdown_timeout_ms < STOP_ON_FREE_MS ? h->o.shutdown_timeout_ms : STOP_ON_FREE_MS;
    int64_t deadline = we__now() + timeout;
    for (size_t i = 0; i < h->n_plugins; i++)
        if (h->plugins[i]->proc && !h->plugins[i]->proc->stopping)
            begin_stop(h, h->plugins[i]->proc, timeout);
    for (bool running = true; running && we__now() < deadline;) {
        running = false;
        for (size_t i = 0; i < h->n_plugins; i++)
            running = running || (h->plugins[i]->proc && !we__proc_exited(h->plugins[i]->proc));
        if (running)
            we__cond_wait_until(&h->kick, &h->mu, we__now() + 10);
    }
    for (size_t i = 0; i < h->n_plugins; i++)
        if (h->plugins[i]->proc)
            reap(h, h->plugins[i], h->plugins[i]->proc);
    pthread_mutex_unlock(&h->mu);
}

void *we__supervisor(void *arg)
{
    we_host *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        for (size_t i = 0; i < h->n_plugins && !h->stopping; i++)
            tick(h, h->plugins[i]);
        if (!h->kicked && !h->stopping)
            we__cond_wait_until(&h->kick, &h->mu, we__now() + TICK_MS);
        h->kicked = false;
    }
    pthread_mutex_unlock(&h->mu);
    stop_all(h);
    return NULL;
}
