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
    int log_level;
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
