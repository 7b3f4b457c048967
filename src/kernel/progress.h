/*
 * job.progress events: at most a few per second per job, whatever the rate
 * of the workers' progress reports.
 */
#ifndef KN_PROGRESS_H
#define KN_PROGRESS_H

#include "kernel.h"

#include <libpq-fe.h>

/* Minimum time between two job.progress events of one job (per kernel). */
#define KN_PROGRESS_EVENT_MS 500

/* res holds the rows the progress UPDATE returned: job id, status,
 * progress, eta_seconds, user_id. Emits job.progress for each job whose
 * last event is older than KN_PROGRESS_EVENT_MS. Call from one thread only
 * (the orchestrator's progress thread owns the throttle table). */
void kn_progress_emit(kn_ctx *kn, PGresult *res);

/* The throttle alone, for tests: true when job_id may emit at now_ms. */
bool kn_progress_due(const char *job_id, int64_t now_ms);

#endif
