/*
 * The task runner: takes dispatch messages from the durable consumers
 * dispatch-<capability> of WEBENCODE_WORK (one per capability the worker
 * advertises), runs each on its own thread through the plugins, reports
 * lifecycle events and progress, obeys jobs.cancel, and on a stop request
 * lets running tasks finish within WORKER_STOP_GRACE_S (docs/pipeline.md).
 *
 *   wk_runner *r;
 *   wk_runner_start(w, &r, &err);     // after NATS is connected
 *   ... until we_stopping() ...
 *   while (!wk_runner_wait(r, 1000)) heartbeat();
 *   wk_runner_stop(r);                // before the connection is closed
 *   ... close NATS, nats_CloseAndWait() ...
 *   wk_runner_free(r);                // no libnats callback can run now
 */
#ifndef WK_RUNNER_H
#define WK_RUNNER_H

#include "worker.h"

typedef struct wk_runner wk_runner;

/* Creates the JetStream context (w->nats.js, if missing), subscribes to
 * jobs.cancel and starts the runner thread, which binds the consumers as
 * they appear. w must outlive the runner. */
int wk_runner_start(wk_worker *w, wk_runner **out, we_err *err);

/* Waits up to ms; true once the runner has finished, which it does after a
 * stop request (we_stopping) when every task has ended. */
bool wk_runner_wait(wk_runner *r, int64_t ms);

/* After a stop request: joins the runner thread (waiting for the tasks) and
 * drops the subscriptions. NULL is a no-op. */
void wk_runner_stop(wk_runner *r);

/* Frees r; call after nats_CloseAndWait. NULL is a no-op. */
void wk_runner_free(wk_runner *r);

#endif
