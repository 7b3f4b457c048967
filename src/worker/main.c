/*
 * bin/worker: registers with the kernel over NATS, keeps it informed, and
 * runs the tasks it dispatches.
 *
 * Start-up, all on the main thread: configuration (environment and .env),
 * capability detection (FFmpeg encoders and working GPUs), the encoder and
 * storage plugins, the optional /metrics endpoint (exporter.c), connection
 * with retry, a subscription to workers.control.<id>, the task runner
 * (runner.c: dispatch consumers, jobs.cancel), then a heartbeat on
 * workers.heartbeat.<id> right away and every WORKER_HEARTBEAT_MS. On SIGTERM
 * or SIGINT the runner takes no more tasks and the heartbeats go on, saying
 * "draining", while running tasks finish (at most WORKER_STOP_GRACE_S, then
 * they are cancelled and handed back); then one last heartbeat says "offline"
 * so the kernel deregisters the worker at once, and everything is closed and
 * freed.
 *
 * Threads: the main thread owns wk_worker; libnats threads run the control
 * and cancel handlers, the runner and task threads use the plugin host and
 * the connection; all of them read only its immutable parts and atomics
 * (worker.h).
 */
#include "control.h"
#include "exporter.h"
#include "heartbeat.h"
#include "runner.h"
#include "we_config.h"
#include "we_log.h"
#include "we_util.h"
#include "worker.h"

#include <stdlib.h>
#include <sys/stat.h>

static int load_config(wk_config *cfg)
{
    we_err err;
    if (we_env_load_default(&err) != 0 || wk_config_load(cfg, &err) != 0) {
        we_fatal("invalid configuration", WE_ERR(err.msg));
        return 2;
    }
    we_log_init("worker", (we_log_level)cfg->log_level);
    return 0;
}

static void log_start(const wk_config *cfg)
{
    char url[512];
    we_url_redact(cfg->nats_url, url, sizeof url);
    we_info("worker starting", WE_S("worker_id", cfg->id), WE_S("version", WE_VERSION),
            WE_S("nats_url", url), WE_I("slots", cfg->slots),
            WE_I("heartbeat_ms", cfg->heartbeat_ms), WE_I("stop_grace_s", cfg->stop_grace_s),
            WE_S("ffmpeg", cfg->ffmpeg), WE_S("plugin_dir", cfg->plugin_dir));
}

static void log_caps(const wk_caps *caps)
{
    json_t *a = wk_strlist_to_json(&caps->capabilities);
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    for (size_t i = 0; i < caps->rejected.n; i++)
        we_warn("hardware encoder not usable", WE_ERR(caps->rejected.v[i]));
    we_info("capabilities detected", WE_RAW("capabilities", text ? text : "[]"),
            WE_I("encoders", caps->encoders.n), WE_S("ffmpeg_version", caps->ffmpeg_version));
    free(text);
    json_decref(a);
}

/* Fills w->caps; a missing FFmpeg leaves "cpu" only. WE_ESTATE when stopped. */
static int detect_caps(wk_worker *w)
{
    we_err err;
    wk_caps_opts o = { .ffmpeg = w->cfg.ffmpeg,
                       .test = wk_ffmpeg_encode_test,
                       .test_ctx = (void *)w->cfg.ffmpeg };
    int rc = wk_caps_probe(&o, &w->caps, &err);
    if (rc == WE_ESTATE)
        return rc;
    if (rc != 0)
        we_warn("FFmpeg not usable; advertising cpu only", WE_ERR(err.msg),
                WE_S("ffmpeg", w->cfg.ffmpeg));
    log_caps(&w->caps);
    return 0;
}

/* One heartbeat; logs only when publishing starts or stops failing. */
static void beat(wk_worker *w, bool *failing)
{
    we_err err;
    int rc = wk_worker_publish(w, NULL, "online", &err);
    if (rc != 0 && !*failing)
        we_warn("heartbeat not sent", WE_ERR(err.msg), WE_S("worker_id", w->cfg.id));
    else if (rc == 0 && *failing)
        we_info("heartbeat sent again", WE_S("worker_id", w->cfg.id));
    *failing = rc != 0;
}

/* Starts the encoder and storage plugins of PLUGIN_DIR (none when it does
 * not exist). A plugin that fails does not stop the worker. */
static void start_plugins(wk_worker *w)
{
    struct stat st;
    if (stat(w->cfg.plugin_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        we_warn("PLUGIN_DIR is not a directory; running without plugins",
                WE_S("plugin_dir", w->cfg.plugin_dir));
        return;
    }
    we_err err;
    we_host_opts o = { .plugin_dir = w->cfg.plugin_dir,
                       .host_name = "worker",
                       .host_version = WE_VERSION,
                       .types = WE_PT_BIT(WE_PT_ENCODER) | WE_PT_BIT(WE_PT_STORAGE) };
    if (we_host_new(&o, &w->plugins, &err) != 0 || we_host_start(w->plugins, &err) != 0)
        we_error("plugins not started", WE_ERR(err.msg), WE_S("plugin_dir", w->cfg.plugin_dir));
}

/* The optional /metrics endpoint; the worker runs on without it. */
static void start_metrics(wk_worker *w)
{
    we_err err;
    if (wk_metrics_start(w, &err) != 0)
        we_error("metrics endpoint not started; running without it", WE_ERR(err.msg));
}

static void reload_plugins(wk_worker *w)
{
    we_err err;
    we_info("SIGHUP: reloading every plugin");
    if (w->plugins && we_host_reload(w->plugins, NULL, &err) != 0)
        we_warn("plugin reload incomplete", WE_ERR(err.msg));
}

static void heartbeat_loop(wk_worker *w)
{
    bool failing = false;
    int64_t next = we_now_mono_ms();
    while (!we_stopping()) {
        if (we_take_reload())
            reload_plugins(w);
        beat(w, &failing);
        next += w->cfg.heartbeat_ms;
        int64_t now = we_now_mono_ms();
        if (next < now) /* after a stall, keep the rhythm instead of bursting */
            next = now;
        we_sleep_ms_or_stop(next - now);
    }
}

/* Stopping: heartbeats (now "draining") go on while the runner lets the
 * running tasks finish, so the kernel does not take the worker for dead. */
static void drain_loop(wk_worker *w, wk_runner *r)
{
    bool failing = false;
    atomic_store(&w->draining, true);
    while (!wk_runner_wait(r, w->cfg.heartbeat_ms))
        beat(w, &failing);
}

/* Says "offline" and flushes it, so the kernel deregisters us at once. */
static void say_goodbye(wk_worker *w)
{
    we_err err;
    if (wk_worker_publish(w, NULL, "offline", &err) != 0)
        we_warn("offline heartbeat not sent", WE_ERR(err.msg), WE_S("worker_id", w->cfg.id));
    else if (we_nats_is_connected(&w->nats))
        natsConnection_FlushTimeout(w->nats.nc, 1000);
}

/* Connected: subscribe, run tasks and beat until stopped, let the tasks
 * finish, say goodbye. Exit code. */
static int serve(wk_worker *w, wk_runner **runner)
{
    we_err err;
    wk_metrics_set_nats(&w->nats);
    if (wk_control_subscribe(w, &err) != 0 || wk_runner_start(w, runner, &err) != 0) {
        we_error("worker cannot start", WE_ERR(err.msg), WE_S("worker_id", w->cfg.id));
        return 1;
    }
    we_info("worker online", WE_S("worker_id", w->cfg.id), WE_I("slots", w->cfg.slots));
    heartbeat_loop(w);
    drain_loop(w, *runner);
    wk_runner_stop(*runner);
    say_goodbye(w);
    return 0;
}

int main(void)
{
    wk_worker w = { 0 };
    wk_runner *runner = NULL;
    int code = 0;
    atomic_init(&w.running, 0);
    atomic_init(&w.draining, false);
    wk_caps_init(&w.caps);
    we_log_init("worker", WE_LOG_INFO);
    if (load_config(&w.cfg) != 0)
        return 2;
    we_signals_install();
    log_start(&w.cfg);
    w.cpu_count = wk_cpu_count();
    w.mem_total_mb = wk_mem_total_mb();
    if (detect_caps(&w) == 0 && !we_stopping())
        start_plugins(&w);
    start_metrics(&w);
    if (!we_stopping() &&
        we_nats_connect_retry(w.cfg.nats_url, &w.cfg.nats_tls, "worker", false, &w.nats) == 0)
        code = serve(&w, &runner);
    if (code != 0)
        we_request_stop(); /* a runner that started winds down at once: it has no tasks */
    wk_runner_stop(runner);
    wk_metrics_stop();
    we_nats_close(&w.nats);
    natsSubscription_Destroy(w.control);
    nats_CloseAndWait(1000); /* joins the library's threads: no callback runs after this */
    wk_runner_free(runner);
    we_host_free(w.plugins);
    wk_caps_fini(&w.caps);
    we_info("worker stopped", WE_S("worker_id", w.cfg.id), WE_I("exit_code", code));
    return code;
}
