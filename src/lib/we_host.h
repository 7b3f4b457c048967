/*
 * The plugin host, shared by the kernel and the worker: discovers plugins in
 * PLUGIN_DIR, starts each as a subprocess speaking docs/plugin-protocol.md on
 * its stdin/stdout, supervises it (handshake, health checks, restarts with
 * backoff, disabling after repeated crashes) and multiplexes concurrent calls
 * from any thread onto it.
 *
 *   we_host_opts o = { .plugin_dir = "./plugins", .host_name = "kernel",
 *                      .types = WE_PT_BIT(WE_PT_AUTH) | WE_PT_BIT(WE_PT_STORAGE) };
 *   we_host *h;
 *   if (we_host_new(&o, &h, &err) != 0 || we_host_start(h, &err) != 0) ...
 *   rc = we_host_call(h, "storage-fs", "storage.stat", params, 30000,
 *                     NULL, NULL, NULL, &result, &rerr, &err);
 *   we_host_free(h);
 *
 * Every function is thread-safe, except that we_host_free must not run
 * concurrently with any other call on the same host. JSON arguments are
 * borrowed; JSON results are new references the caller owns.
 */
#ifndef WE_HOST_H
#define WE_HOST_H

#include "we_err.h"
#include "we_manifest.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct we_host we_host;

/* docs/plugin-protocol.md §7. */
typedef enum we_pstate {
    WE_PS_STARTING = 0,
    WE_PS_HEALTHY,
    WE_PS_DEGRADED,
    WE_PS_FAILED,
    WE_PS_RESTARTING,
    WE_PS_DISABLED,
} we_pstate;
#define WE_PS_BIT(s) (1u << (unsigned)(s))

/* "starting" | "healthy" | "degraded" | "failed" | "restarting" | "disabled". */
const char *we_pstate_name(we_pstate s);

/* Per-plugin settings kept outside PLUGIN_DIR (the kernel's plugin_configs
 * table). Called with *config NULL and *enabled / *priority holding the
 * values from plugins.toml (or the defaults true / 0); sets *config to a new
 * reference when there is a stored configuration, and overwrites *enabled /
 * *priority when there is a stored row. Returns 0 or a negative WE_E* with
 * err. Called from the thread that called we_host_start / _reload / _register
 * / _enable / _set_config, never with a host lock held. */
typedef int (*we_host_overrides_fn)(void *arg, const char *id, json_t **config, bool *enabled,
                                    int *priority, we_err *err);

/* Zero / NULL members take the defaults in brackets. */
typedef struct we_host_opts {
    const char *plugin_dir;   /* PLUGIN_DIR; required */
    const char *host_name;    /* sent in the handshake ["webencode"] */
    const char *host_version; /* sent in the handshake [WE_VERSION] */
    unsigned types;           /* WE_PT_BIT mask of the pillars this host runs [all] */
    const int *api_versions;  /* protocol versions offered [{ WE_PLUGIN_API_VERSION }] */
    size_t n_api_versions;
    we_host_overrides_fn load_overrides; /* [none] */
    void *overrides_arg;
    int handshake_timeout_ms; /* [5000] */
    int health_interval_ms;   /* [10000] */
    int health_timeout_ms;    /* [2000] */
    int health_slow_ms;       /* an answer slower than this makes it degraded [1000] */
    int health_failures;      /* failed checks in a row that make it failed [3] */
    int restart_base_ms;      /* restart n waits min(base * 2^n, max) [500] */
    int restart_max_ms;       /* [30000] */
    int max_restarts;         /* restarts in a row before disabled [5] */
    int stable_ms;            /* healthy this long resets the restart count [60000] */
    int shutdown_timeout_ms;  /* wait for exit after `shutdown` before SIGKILL [5000] */
    int call_timeout_ms;      /* deadline of calls that pass timeout_ms <= 0 [30000] */
} we_host_opts;

/* The error of a failed call. code is the JSON-RPC code the plugin answered
 * (WE_RPC_* of webencode/plugin.h), WE_RPC_DEADLINE or WE_RPC_CANCELLED when
 * the host gave up, or 0 when the call never got an answer (unknown or
 * stopped plugin, crash, protocol violation). we_code is data.we_code, or one
 * of the WE_HOST_* codes below for failures the host detects. */
typedef struct we_rpc_error {
    int code;
    char we_code[32];
    bool retryable;
    char message[512];
} we_rpc_error;

#define WE_HOST_NOT_FOUND "WE-PLG-404"   /* no such plugin */
#define WE_HOST_UNAVAILABLE "WE-PLG-503" /* not running, or it died during the call */
#define WE_HOST_DEADLINE "WE-PLG-504"    /* deadline exceeded */
#define WE_HOST_CANCELLED "WE-PLG-499"   /* cancelled by the caller */
#define WE_HOST_REFUSED "WE-PLG-400"     /* the host refused to send it (see we_host_call) */

/* Called on the calling thread with each $/progress object (borrowed). */
typedef void (*we_host_progress_fn)(void *arg, json_t *progress);

/* Copies opts (the strings too). Returns 0 with *out, or WE_EINVAL. Starts
 * nothing. */
int we_host_new(const we_host_opts *opts, we_host **out, we_err *err);

/* Reads PLUGIN_DIR: every subdirectory with a plugin.toml whose type this
 * host runs becomes a plugin (a bad manifest is logged with its file:line and
 * skipped); PLUGIN_DIR/plugins.toml ([plugins.<id>] enabled, priority,
 * [plugins.<id>.config]) and load_overrides supply the settings. Starts the
 * supervisor, which starts every enabled plugin, and waits until each has
 * answered its handshake or failed. Fails (WE_EINVAL / WE_EIO) only for an
 * unreadable PLUGIN_DIR or a malformed plugins.toml; call once. */
int we_host_start(we_host *h, we_err *err);

/* Sends `shutdown` to every plugin, kills those still running after
 * min(shutdown_timeout_ms, 2 s), joins every thread and frees everything.
 * NULL is a no-op. No other call on h may be in progress or follow. */
void we_host_free(we_host *h);

/* Calls method on plugin id with params (borrowed; NULL means {}) and waits
 * up to timeout_ms (<= 0: call_timeout_ms). progress (may be NULL) gets each
 * $/progress notification on this thread. When *cancel (may be NULL) becomes
 * true the host sends $/cancel; the call then ends when the plugin answers
 * (normally WE_RPC_CANCELLED) or at the deadline, where it fails as
 * cancelled (WE_EIO, rerr->code WE_RPC_CANCELLED). Returns 0 with *result (a
 * new reference), or:
 *   WE_ENOENT   no such plugin;
 *   WE_EUNAVAIL the plugin is not healthy/degraded, or it died or broke the
 *               protocol during the call (rerr->retryable is true);
 *   WE_ETIMEOUT the deadline passed (or the plugin answered -32002);
 *   WE_EINVAL   the plugin answered -32600/-32601/-32602, or params are not
 *               an object / too large, or method is reserved;
 *   WE_EIO      the plugin answered another error (including -32800 after a
 *               cancel) — see rerr.
 * rerr (may be NULL) and err (may be NULL) describe every failure. */
int we_host_call(we_host *h, const char *id, const char *method, json_t *params, int timeout_ms,
                 we_host_progress_fn progress, void *progress_arg, const atomic_bool *cancel,
                 json_t **result, we_rpc_error *rerr, we_err *err);

/* The enabled healthy (or degraded) plugin of type with the highest
 * priority (healthy before degraded, then by id), into id_out. WE_ENOENT
 * when there is none. */
int we_host_pick(we_host *h, we_plugin_type type, char id_out[WE_PLUGIN_ID_MAX + 1], we_err *err);

/* Introspection for the API: a new array of objects / a new object (NULL when
 * id is unknown) with id, type, version, api_version, description, state,
 * enabled, priority, uptime_s, restarts (in a row), restarts_total,
 * last_error (string or null), capabilities (the manifest's merged with the
 * handshake's), methods, config (resolved, secrets masked, or null), pid (or
 * null). */
json_t *we_host_list(we_host *h);
json_t *we_host_get(we_host *h, const char *id);

/* Waits until plugin id is in one of the states of mask (WE_PS_BIT). 0, or
 * WE_ETIMEOUT / WE_ENOENT. */
int we_host_wait_state(we_host *h, const char *id, unsigned mask, int timeout_ms);

/* --- administration ---------------------------------------------------------
 * Each of these re-reads what it needs from disk and load_overrides on the
 * calling thread, hands the change to the supervisor and waits until the
 * plugin has settled (healthy, degraded, failed or disabled; at most
 * shutdown_timeout_ms + handshake_timeout_ms + 2 s). They return 0 when the
 * plugin ends healthy, degraded or (for disable) disabled, WE_EIO with the
 * plugin's last error otherwise, WE_ENOENT for an unknown id. */

/* Stops the plugin (shutdown, up to shutdown_timeout_ms, then SIGKILL) and
 * starts its (possibly replaced) executable with the manifest, plugins.toml
 * and overrides read again. A plugin that failed for good (incompatible API
 * version, rejected configuration) or was disabled after crashes gets a fresh
 * start. id NULL reloads every plugin and registers new directories (and
 * returns the first failure). */
int we_host_reload(we_host *h, const char *id, we_err *err);

/* Marks the plugin enabled and starts it if it is not running. */
int we_host_enable(we_host *h, const char *id, we_err *err);
/* Marks the plugin disabled and stops it; calls fail at once afterwards. */
int we_host_disable(we_host *h, const char *id, we_err *err);

/* Adds the plugin in PLUGIN_DIR/<id> placed there after start and starts it.
 * WE_EEXIST when it is known already, WE_ENOENT without a plugin.toml,
 * WE_EINVAL for a bad manifest or a type this host does not run. */
int we_host_register(we_host *h, const char *id, we_err *err);

/* Checks config (borrowed; an object of schema fields, null values meaning
 * unset) as the plugin's stored configuration: resolved together with
 * plugins.toml, the environment and defaults it must be complete and
 * well-typed. WE_EINVAL names the field. Changes nothing. */
int we_host_validate_config(we_host *h, const char *id, json_t *config, we_err *err);

/* Validates config as above, keeps it as the plugin's stored configuration
 * and reloads the plugin. Persisting it is the caller's job: a later reload
 * takes load_overrides' configuration again (without load_overrides this one
 * stays). */
int we_host_set_config(we_host *h, const char *id, json_t *config, we_err *err);

/* Changes the priority used by we_host_pick; no restart. */
int we_host_set_priority(we_host *h, const char *id, int priority, we_err *err);

#endif
