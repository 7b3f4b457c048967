/*
 * Kernel configuration from the environment / .env, with the runbook's names
 * and defaults. Runs once on the main thread before anything else.
 */
#include "auth.h"
#include "kernel.h"
#include "tls.h"
#include "webhooks.h"
#include "we_config.h"

int kn_config_load(kn_config *cfg, we_err *err)
{
    static const char *const nats_schemes[] = { "nats", "tls", NULL };
    static const char *const pg_schemes[] = { "postgres", "postgresql", NULL };
    int rc = 0;
    cfg->plugin_dir = we_cfg_str("PLUGIN_DIR", "./plugins");
    cfg->bind_addr = we_cfg_str("BIND_ADDR", "0.0.0.0");
    if (!rc)
        rc = we_cfg_url("NATS_URL", "nats://localhost:4222", nats_schemes, &cfg->nats_url, err);
    if (!rc)
        rc = we_cfg_url("DATABASE_URL", "postgres://postgres@localhost:5432/webencode",
                        pg_schemes, &cfg->database_url, err);
    if (!rc)
        rc = we_cfg_int("PORT", 8080, 1, 65535, &cfg->port, err);
    if (!rc)
        rc = we_cfg_int("HTTP_THREADS", 4, 1, 256, &cfg->http_threads, err);
    if (!rc)
        rc = we_cfg_int("DB_POOL_SIZE", 8, 1, 1000, &cfg->db_pool_size, err);
    if (!rc)
        rc = we_cfg_int("MAX_BODY_BYTES", 1 << 20, 1024, 1L << 30, &cfg->max_body_bytes, err);
    if (!rc)
        rc = we_cfg_int("STREAM_REPLICAS", 1, 1, 5, &cfg->stream_replicas, err);
    if (!rc)
        rc = we_cfg_int("PLUGIN_HEALTH_INTERVAL_MS", 10000, 100, 3600000, &cfg->plugin_health_ms,
                        err);
    if (!rc)
        rc = we_cfg_int("SEGMENT_TARGET_S", 45, 1, 3600, &cfg->segment_target_s, err);
    if (!rc)
        rc = we_cfg_int("SEGMENT_MIN_S", 10, 1, 3600, &cfg->segment_min_s, err);
    if (!rc)
        rc = we_cfg_int("SEGMENT_MAX_S", 120, 1, 3600, &cfg->segment_max_s, err);
    if (!rc)
        rc = we_cfg_int("TASK_LEASE_S", 60, 2, 86400, &cfg->task_lease_s, err);
    if (!rc)
        rc = we_cfg_int("DISPATCH_ACK_WAIT_S", 60, 1, 3600, &cfg->dispatch_ack_wait_s, err);
    if (!rc)
        rc = we_cfg_int("DISPATCH_MAX_DELIVER", 20, 1, 1000, &cfg->dispatch_max_deliver, err);
    if (!rc)
        rc = we_cfg_int("SSE_KEEPALIVE_S", 15, 1, 3600, &cfg->sse_keepalive_s, err);
    if (!rc)
        rc = we_cfg_int("SSE_CLIENT_QUEUE", 256, 1, 65536, &cfg->sse_client_queue, err);
    if (!rc)
        rc = we_cfg_int("SSE_MAX_CLIENTS", 10000, 1, 1000000, &cfg->sse_max_clients, err);
    if (!rc && !(cfg->segment_min_s <= cfg->segment_target_s &&
                 cfg->segment_target_s <= cfg->segment_max_s))
        rc = we_err_set(err, WE_EINVAL, "SEGMENT_MIN_S <= SEGMENT_TARGET_S <= SEGMENT_MAX_S "
                                        "does not hold");
    if (!rc)
        rc = we_cfg_log_level(&cfg->log_level, err);
    if (!rc)
        rc = kn_security_load(cfg, err);
    if (!rc)
        rc = kn_tls_load(cfg, err);
    if (!rc)
        rc = kn_webhooks_config_load(cfg, err);
    return rc;
}
