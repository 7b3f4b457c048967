/*
 * Internals shared by the orchestrator's files (orch.c: threads, publisher,
 * sweepers; orch_apply.c: event application; orch_plan.c: planning after a
 * probe). Not for other kernel files.
 */
#ifndef KN_ORCH_INT_H
#define KN_ORCH_INT_H

#include "orch.h"

#include <jansson.h>
#include <stdbool.h>

/* One worker event (docs/pipeline.md §3), parsed. Strings point into doc. */
typedef struct kn_event {
    json_t *doc;
    const char *task_id;
    const char *job_id;
    const char *worker_id;
    const char *event; /* started | completed | failed | lease_expired */
    int attempt;
    json_t *result;        /* completed */
    const char *err_code;  /* failed */
    const char *err_msg;   /* failed */
    bool retryable;        /* failed */
} kn_event;

/* Parses and validates an event message; *ev owns the document
 * (kn_event_fini). Error names the bad field. */
int kn_event_parse(const char *data, size_t len, kn_event *ev, we_err *err);
void kn_event_fini(kn_event *ev);

/* Applies ev in one transaction (job row locked, idempotent by
 * (task, attempt, event)). *cancel_job is set when the job failed and its
 * other tasks must be cancelled on the workers. WE_EUNAVAIL when the
 * database is unreachable (redeliver later). */
int kn_event_apply(kn_ctx *kn, const kn_event *ev, bool *cancel_job, we_err *err);

/* After the probe of job_id completed (inside the transaction on c, job row
 * locked): stores the probe and creates the video and audio tasks with their
 * outbox rows. A source without video fails the job (WE_EINVAL with the
 * reason in err). */
int kn_plan_job_tx(kn_ctx *kn, PGconn *c, const char *job_id, json_t *probe, we_err *err);

/* TASK_LEASE_S as text, for SQL parameters (set once at start). */
const char *kn_lease_s(void);

/* Publishes {"job_id":…} on jobs.cancel (core NATS). */
void kn_publish_cancel(kn_ctx *kn, const char *job_id);

/* Runs sql with params inside the caller's transaction; returns the number
 * of rows affected / returned through *rows (may be NULL). */
int kn_tx_exec(PGconn *c, const char *sql, int n, const char *const *p, PGresult **out,
               we_err *err);

#endif
