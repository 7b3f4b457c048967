/*
 * The worker's configuration, read once from the environment (and .env) at
 * start on the main thread; immutable afterwards, so any thread may read it.
 */
#ifndef WK_CONFIG_H
#define WK_CONFIG_H

#include "we_err.h"
#include "we_nats.h"

#include <stdbool.h>

#define WK_ID_MAX 64

typedef struct wk_config {
    const char *nats_url;   /* NATS_URL, default nats://localhost:4222 */
    we_nats_tls nats_tls;   /* tls:// NATS_URL, NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE, … */
    char id[WK_ID_MAX + 1]; /* WORKER_ID, default the host name */
    char hostname[256];
    int slots;              /* WORKER_SLOTS, 1..64 */
    int heartbeat_ms;       /* WORKER_HEARTBEAT_MS, 100..60000 */
    int stop_grace_s;       /* WORKER_STOP_GRACE_S, 0..3600: running tasks' time to finish on SIGTERM */
    const char *ffmpeg;     /* FFMPEG_PATH, default "ffmpeg" */
    const char *plugin_dir; /* PLUGIN_DIR, default ./plugins */
    int log_level;          /* LOG_LEVEL as a we_log_level */
    const char *metrics_addr; /* WORKER_METRICS_ADDR, IPv4, default 127.0.0.1 */
    int metrics_port;         /* WORKER_METRICS_PORT, 0..65535; 0 (default): no /metrics */
} wk_config;

/* Whether id can be a worker id: 1 to 64 of [A-Za-z0-9_-], so that it is one
 * NATS subject token. */
bool wk_id_valid(const char *id);

/* Fills c from the environment. Strings point into the environment, which is
 * not modified after start. The error names the variable. */
int wk_config_load(wk_config *c, we_err *err);

#endif
