/*
 * The kernel's shared context: configuration, the database pool and the NATS
 * connection, handed to every subsystem. Fields are written during start-up
 * on the main thread; afterwards only the NATS pointer changes (set once by
 * the NATS thread when it first connects), and it is read through
 * kn_nats_get().
 */
#ifndef KN_KERNEL_H
#define KN_KERNEL_H

#include "we_host.h"
#include "we_nats.h"
#include "we_pg.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Security settings (auth.c reads them). */
typedef struct kn_security {
    bool dev_mode;               /* WEBENCODE_MODE=development */
    const char *dev_tokens;      /* WEBENCODE_DEV_TOKENS: role:token,… (dev mode only) */
    const char *bootstrap_token; /* WEBENCODE_BOOTSTRAP_ADMIN_TOKEN, or NULL */
    bool metrics_anonymous;      /* AUTH_ANONYMOUS_METRICS: /metrics without a token */
    long cache_ttl_s;            /* AUTH_CACHE_TTL_S: how long a resolved token is trusted */
    long rate_rps, rate_burst;   /* RATE_LIMIT_RPS / _BURST per token (0: off) */
    long ip_rps, ip_burst;       /* RATE_LIMIT_IP_RPS / _BURST per client IP, unauthenticated */
    const char *trusted_proxies; /* TRUSTED_PROXIES: addresses/CIDRs allowed to set XFF */
    const char *cors_origins;    /* CORS_ALLOWED_ORIGINS: exact origins, or "*" */
    long max_json_depth;         /* MAX_JSON_DEPTH */
} kn_security;

/* TLS settings (tls.c reads them; docs/tls.md). */
typedef struct kn_tls {
    const char *cert_file; /* TLS_CERT_FILE + TLS_KEY_FILE: HTTPS only on PORT */
    const char *key_file;  /* (both or neither) */
    we_nats_tls nats;      /* NATS_URL tls://, NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE, … */
} kn_tls;

/* Webhook delivery settings (webhooks.c reads them; README, docs/webhooks.md). */
typedef struct kn_webhook_cfg {
    bool allow_private; /* WEBHOOK_ALLOW_PRIVATE: endpoints on loopback/private addresses */
    long timeout_ms;    /* WEBHOOK_TIMEOUT_MS: one HTTP attempt */
    long retry_base_ms; /* WEBHOOK_RETRY_BASE_MS: first retry delay, doubling up to 1 h */
    long max_age_s;     /* WEBHOOK_MAX_AGE_S: retries stop this long after the event */
    long senders;       /* WEBHOOK_SENDERS: sender threads per kernel */
    long sweep_ms;      /* WEBHOOK_SWEEP_MS: how often lost deliveries are re-published */
} kn_webhook_cfg;

typedef struct kn_config {
    const char *nats_url;
    const char *database_url;
    const char *plugin_dir;
    const char *bind_addr;
    long port;
    long http_threads;
    long db_pool_size;
    long max_body_bytes;
    long stream_replicas;
    long plugin_health_ms;
    long segment_target_s; /* VOD segment length: target, minimum, maximum */
    long segment_min_s;
    long segment_max_s;
    long task_lease_s; /* a running task without news for this long is re-queued */
    long dispatch_ack_wait_s;  /* dispatch-<cap> consumers: redelivery after this */
    long dispatch_max_deliver; /* and at most this many deliveries (then: advisory) */
    long sse_keepalive_s;      /* SSE: a keepalive comment after this long idle */
    long sse_client_queue;     /* SSE: events queued per client before it is cut off */
    long sse_max_clients;      /* SSE: open event streams per kernel */
    int log_level;
    kn_security sec;
    kn_tls tls;
    kn_webhook_cfg hooks;
} kn_config;

typedef struct kn_ctx {
    kn_config cfg;
    we_pg_pool *db;
    we_host *plugins;   /* auth, storage, live and publisher plugins */
    int64_t started_ms; /* epoch ms */

    pthread_mutex_t nats_mu;
    we_nats nats;    /* guarded by nats_mu until nats_ready */
    bool nats_ready; /* connected once and streams ensured */
} kn_ctx;

/* The NATS connection once it exists, else NULL. Thread-safe. The returned
 * pointer stays valid until the kernel shuts down. */
we_nats *kn_nats_get(kn_ctx *kn);

/* Reads and validates the configuration; error names the variable. */
int kn_config_load(kn_config *cfg, we_err *err);

#endif
