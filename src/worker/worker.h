/*
 * The running worker: configuration, capabilities and the NATS connection,
 * owned by the main thread. cfg, caps, cpu_count and mem_total_mb are
 * written before the connection exists and only read afterwards; the
 * counters that will change while running (running tasks, draining) are
 * atomics, so NATS callback threads may read the whole struct.
 */
#ifndef WK_WORKER_H
#define WK_WORKER_H

#include "caps.h"
#include "config.h"
#include "we_host.h"
#include "we_nats.h"

#include <stdatomic.h>

typedef struct wk_worker {
    wk_config cfg;
    wk_caps caps;
    int cpu_count;
    int64_t mem_total_mb;
    atomic_int running;
    atomic_bool draining;
    we_nats nats;
    natsSubscription *control; /* workers.control.<id> */
    we_host *plugins;          /* encoder and storage plugins; NULL without PLUGIN_DIR */
} wk_worker;

/* The heartbeat JSON of w right now, with "state": state; free() it. NULL on
 * failure (invalid UTF-8 in a string, out of memory). Any thread. */
char *wk_worker_heartbeat(wk_worker *w, const char *state);

/* Publishes the heartbeat on subject (workers.heartbeat.<id> when NULL).
 * Any thread; the connection is thread-safe. */
int wk_worker_publish(wk_worker *w, const char *subject, const char *state, we_err *err);

#endif
