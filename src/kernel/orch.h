/*
 * The orchestrator (docs/pipeline.md): applies worker events to jobs and
 * tasks, plans segments after a probe, dispatches tasks through the
 * transactional outbox, re-queues tasks whose lease expired, and cancels.
 * Everything here is safe with several kernels running: state lives in
 * PostgreSQL, guarded by row locks and conditional UPDATEs.
 */
#ifndef KN_ORCH_H
#define KN_ORCH_H

#include "kernel.h"

#include <jansson.h>

typedef struct kn_orch kn_orch;

/* Starts the dispatch/sweeper thread and the event consumers (they wait for
 * NATS on their own). */
int kn_orch_start(kn_ctx *kn, kn_orch **out, we_err *err);
void kn_orch_stop(kn_orch *o);

/* Inside the caller's transaction on c: writes the dispatch message of task
 * task_id for its current attempt into task_outbox (payload built from the
 * task row, docs/pipeline.md §2). The publisher sends it after commit.
 * Idempotent per (task, attempt). */
int kn_orch_enqueue_task_tx(PGconn *c, const char *task_id, we_err *err);

/* Cancels job_id: job and unfinished tasks -> cancelled (guarded: a terminal
 * job is left alone and WE_ESTATE returned), then publishes jobs.cancel so
 * workers kill their FFmpeg. `reason` goes to the job log. */
int kn_orch_cancel_job(kn_ctx *kn, const char *job_id, const char *reason, we_err *err);

/* Wakes this kernel's dispatcher after a commit that wrote outbox rows, so
 * a new task is published at once instead of at the next 200 ms round. */
void kn_orch_kick(void);

/* Appends a line to the job's log (job_logs); never fails the caller. */
void kn_job_log(PGconn *c, const char *job_id, const char *task_id, const char *level,
                const char *message);

#endif
