/*
 * The kernel's NATS side: a thread that connects (retrying with the
 * runbook's "NATS Connection Failed"), creates or updates the JetStream
 * streams of DESIGN §5, and consumes worker heartbeats.
 */
#ifndef KN_BUS_H
#define KN_BUS_H

#include "kernel.h"

#include <nats/nats.h>

typedef struct kn_bus kn_bus;

int kn_bus_start(kn_ctx *kn, kn_bus **out, we_err *err);
/* Joins the thread (call after we_request_stop) and closes the connection. */
void kn_bus_stop(kn_bus *b);

/* One stream definition, exposed for tests and docs. */
typedef struct kn_stream_def {
    const char *name;
    jsRetentionPolicy retention;
    jsStorageType storage;
    int64_t max_age_s;
    const char *subjects[4];
} kn_stream_def;

extern const kn_stream_def kn_streams[];

/* Creates each stream and durable consumer, or updates it when it exists.
 * ack_wait_s / max_deliver configure the dispatch-<cap> durables.
 * *work_created tells whether WEBENCODE_WORK did not exist before. */
int kn_streams_ensure(jsCtx *js, int replicas, long ack_wait_s, long max_deliver,
                      bool *work_created, we_err *err);

#endif
