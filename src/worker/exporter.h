/*
 * The worker's Prometheus exporter: an optional HTTP endpoint (libmicrohttpd,
 * one internal thread) answering GET /metrics with the text of
 * wk_metrics_render, and the observations the task threads report.
 *
 *   wk_metrics_start(&w, &err);        // after plugins, before NATS; a no-op
 *                                      // when WORKER_METRICS_PORT is 0
 *   wk_metrics_set_nats(&w.nats);      // once connected
 *   ... wk_metrics_progress / wk_metrics_task_end from task threads ...
 *   wk_metrics_stop();                 // before the connection and plugins go
 *
 * One endpoint per process; the observations are process-wide too.
 */
#ifndef WK_EXPORTER_H
#define WK_EXPORTER_H

#include "we_buf.h"
#include "worker.h"

typedef enum wk_result {
    WK_RESULT_COMPLETED = 0,
    WK_RESULT_FAILED,
    WK_RESULT_CANCELLED, /* the job was cancelled, or the worker stopped and handed it back */
    WK_RESULT_COUNT
} wk_result;

/* The encoder's latest speed (x realtime) for the task in slot. Any thread. */
void wk_metrics_progress(int slot, double speed);
/* The task in slot ended with result; forgets its speed. Any thread. */
void wk_metrics_task_end(int slot, wk_result result);

/* Starts serving GET /metrics on WORKER_METRICS_ADDR:WORKER_METRICS_PORT
 * when the port is not 0; w must outlive wk_metrics_stop. WE_EIO when the
 * port cannot be bound (the caller logs it and goes on without metrics). */
int wk_metrics_start(wk_worker *w, we_err *err);
/* The NATS connection to report on (borrowed), once it exists. */
void wk_metrics_set_nats(const we_nats *n);
/* Stops the endpoint; a no-op when it was not started. */
void wk_metrics_stop(void);

/* Appends the exposition text for w to b (the endpoint's body). Any thread. */
void wk_metrics_render(wk_worker *w, we_buf *b);

/* Processes below pid (children, grandchildren, …) whose command name is
 * name (cut to 15 bytes, as the kernel keeps it), read from proc_root
 * (NULL: /proc). For tests. */
int wk_metrics_count_descendants(const char *proc_root, int pid, const char *name);

#endif
