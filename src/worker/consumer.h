/*
 * One dispatch consumer: the durable pull consumer dispatch-<cap> of
 * WEBENCODE_WORK that the kernel creates for a capability, as this worker
 * binds to it and fetches from it. Runner thread only.
 */
#ifndef WK_CONSUMER_H
#define WK_CONSUMER_H

#include "we_err.h"

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

#define WK_STREAM "WEBENCODE_WORK"

typedef struct wk_consumer {
    char cap[32];
    char subject[64];      /* jobs.dispatch.<cap> */
    char durable[64];      /* dispatch-<cap> */
    natsSubscription *sub; /* NULL until bound */
    int64_t keepalive_ms;  /* InProgress interval: the consumer's AckWait / 3 */
    int64_t bind_at_ms;    /* next binding attempt (monotonic) */
    bool warned;           /* "not ready" logged since the last binding */
    bool failing;          /* fetch errors logged since the last success */
} wk_consumer;

void wk_consumer_init(wk_consumer *c, const char *cap);

/* Binds c->sub to the existing durable; on failure logs "dispatch consumer
 * not ready" once and sets c->bind_at_ms 2 s ahead. */
void wk_consumer_bind(wk_consumer *c, jsCtx *js);

/* Fetches at most one message, waiting up to timeout_ms: 0 with *msg (the
 * caller's) or NULL when none came. WE_EIO when the fetch failed: the
 * caller should wait before the next. When the consumer looks gone, c is
 * unbound (to bind again in 2 s) and *lost is the old subscription, for the
 * caller to destroy once no task holds a message of it. */
int wk_consumer_fetch(wk_consumer *c, int64_t timeout_ms, natsMsg **msg, natsSubscription **lost);

#endif
