/*
 * bin/kernel: REST API, orchestrator and plugin host (DESIGN §2).
 *
 * Start-up, on the main thread: configuration, logger, database pool and the
 * schema check (refuse to run on a schema older than this build's
 * migrations), then the NATS thread (bus.c, which retries on its own) and the
 * HTTP server. The main thread then waits for SIGTERM/SIGINT; shutdown stops
 * accepting connections, lets requests in flight finish, stops the NATS
 * thread and frees everything.
 */
#include "audit.h"
#include "bus.h"
#include "errors.h"
#include "http.h"
#include "kernel.h"
#include "orch.h"
#include "plugins.h"
#include "sse.h"
#include "we_config.h"
#include "we_log.h"
#include "we_util.h"
#include "webhooks.h"

#include <stdio.h>
#include <stdlib.h>

/* Waits for PostgreSQL (retrying with backoff) and checks the schema.
 * Returns 0, 1 to exit with an error, or -1 when stopped while waiting. */
static int check_schema(kn_ctx *kn)
{
    for (int attempt = 0;; attempt++) {
        we_err err;
        PGconn *c = we_pg_acquire(kn->db, 5000, &err);
        int64_t version = -1;
        bool dirty = false;
        int rc = c ? we_pg_schema_version(c, &version, &dirty, &err) : WE_EIO;
        if (c)
            we_pg_release(kn->db, c);
        if (rc == 0 && (dirty || version < WE_SCHEMA_VERSION)) {
            we_fatal("database schema is behind this kernel; run migrate up",
                     WE_I("schema_version", version), WE_B("dirty", dirty),
                     WE_I("required_version", WE_SCHEMA_VERSION),
                     WE_S("command", "migrate -path pkg/db/migrations -database $DATABASE_URL up"));
            return 1;
        }
        if (rc == 0) {
            if (version > WE_SCHEMA_VERSION)
                we_warn("database schema is newer than this kernel",
                        WE_I("schema_version", version), WE_I("built_for", WE_SCHEMA_VERSION));
            return 0;
        }
        int64_t wait = we_backoff_ms(attempt, 500, 30000);
        we_error("Database Connection Failed", WE_ERR(err.msg), WE_I("retry_in_ms", wait));
        if (we_sleep_ms_or_stop(wait))
            return -1;
    }
}

static int run(kn_ctx *kn)
{
    we_err err;
    kn_bus *bus = NULL;
    kn_http *http = NULL;
    kn_orch *orch = NULL;
    kn_webhooks *hooks = NULL;
    int rc = check_schema(kn);
    if (rc != 0)
        return rc > 0 ? 1 : 0;
    kn_errors_start(kn); /* before the plugins: their start-up errors are tracked */
    kn_audit_start(kn);
    if (kn_plugins_start(kn, &err) != 0 || kn_bus_start(kn, &bus, &err) != 0 ||
        kn_orch_start(kn, &orch, &err) != 0 || kn_webhooks_start(kn, &hooks, &err) != 0 ||
        kn_http_start(kn, &http, &err) != 0) {
        we_fatal("kernel failed to start", WE_ERR(err.msg));
        we_request_stop();
        kn_webhooks_stop(hooks);
        kn_orch_stop(orch);
        kn_bus_stop(bus);
        kn_plugins_stop(kn);
        kn_audit_stop();
        kn_errors_stop();
        return 1;
    }
    kn_sse_start(kn);
    we_info("kernel started", WE_S("addr", kn->cfg.bind_addr), WE_I("port", kn->cfg.port),
            WE_S("version", WE_VERSION), WE_I("schema_version", WE_SCHEMA_VERSION));
    while (!we_sleep_ms_or_stop(200)) {
        if (we_take_reload() && kn->plugins) {
            we_info("SIGHUP: reloading every plugin");
            if (we_host_reload(kn->plugins, NULL, &err) != 0)
                we_warn("plugin reload incomplete", WE_ERR(err.msg));
        }
    }
    we_info("kernel stopping: finishing requests in flight");
    kn_http_stop(http, 10000);
    kn_audit_stop(); /* NATS is still up: the last records are published */
    kn_webhooks_stop(hooks);
    kn_orch_stop(orch);
    kn_bus_stop(bus);
    kn_plugins_stop(kn);
    kn_errors_stop();
    we_info("kernel stopped");
    return 0;
}

int main(void)
{
    we_err err;
    kn_ctx kn = { 0 };
    we_log_init("kernel", WE_LOG_INFO);
    if (we_env_load_default(&err) != 0 || kn_config_load(&kn.cfg, &err) != 0) {
        we_fatal("invalid configuration", WE_ERR(err.msg));
        return 2;
    }
    we_log_init("kernel", (we_log_level)kn.cfg.log_level);
    we_signals_install();
    nats_Open(-1);
    pthread_mutex_init(&kn.nats_mu, NULL);
    kn.started_ms = we_now_ms();
    if (we_pg_pool_new(kn.cfg.database_url, "webencode-kernel", (int)kn.cfg.db_pool_size, &kn.db,
                       &err) != 0) {
        we_fatal("invalid configuration", WE_ERR(err.msg));
        return 2;
    }
    int rc = run(&kn);
    we_pg_pool_free(kn.db);
    pthread_mutex_destroy(&kn.nats_mu);
    nats_CloseAndWait(2000);
    return rc;
}
