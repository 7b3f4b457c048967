/*
 * Running one task through the hosted plugins: storage keys become local
 * paths (storage.local_path), the encoder does the work (encoder.probe,
 * encoder.transcode, encoder.stitch, encoder.package), a stitched output
 * and a master playlist get their checksum (storage.checksum). Knows nothing of NATS; runs on the task's thread.
 */
#ifndef WK_EXEC_H
#define WK_EXEC_H

#include "task.h"
#include "we_host.h"

#include <stdatomic.h>

typedef enum wk_outcome {
    WK_OUT_COMPLETED = 0,
    WK_OUT_FAILED,
    WK_OUT_CANCELLED, /* *cancel was set: no event is owed */
} wk_outcome;

typedef struct wk_exec {
    we_host *host;
    const wk_task *task;
    const atomic_bool *cancel;    /* set from another thread to stop the task */
    we_host_progress_fn progress; /* each $/progress of the encoder; may be NULL */
    void *progress_arg;
} wk_exec;

/* Runs x->task to its end. Completed: *result (new reference) is the event's
 * result (pipeline.md §3). Failed: *e says why, with the plugin's we_code
 * and retryable flag (WE-JOB-012 for params that do not fit the type,
 * WE-PLG-503 when no encoder or storage plugin is up). Cancelled: nothing. */
wk_outcome wk_exec_run(const wk_exec *x, json_t **result, wk_task_error *e);

#endif
