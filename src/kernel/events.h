/*
 * Domain events: what happened to a job, worker or stream, announced once,
 * by the kernel that made the change, after its transaction committed.
 *
 * An event is a JSON envelope
 *   {"id":<uuid>, "type":"job.completed", "time":<RFC 3339>,
 *    "resource":{"type":"job","id":…}, "user_id":<owner uuid or null>,
 *    "data":{…}}
 * kn_event_emit builds it and hands it, in this order, to
 *   1. core NATS `ui.events.<type>` — every kernel relays it to its SSE
 *      clients (sse.c);
 *   2. kn_webhooks_enqueue — deliveries for the webhooks subscribed to it
 *      (webhooks.c);
 *   3. kn_notify_event — notifications for the resource's owner (notify.c).
 *
 * Types: job.created, job.started, job.progress, job.completed, job.failed,
 * job.cancelled, worker.joined, worker.lost, worker.draining, worker.drained,
 * worker.undrained, stream.started,
 * stream.ended, stream.telemetry, recording.ready.
 */
#ifndef KN_EVENTS_H
#define KN_EVENTS_H

#include "kernel.h"

#include <jansson.h>

/* Announces an event. resource_type/resource_id name what it is about;
 * user_id is its owner (NULL: none); data is stolen (NULL: {}). Never fails
 * the caller: a consumer that cannot take it logs why. */
void kn_event_emit(kn_ctx *kn, const char *type, const char *resource_type,
                   const char *resource_id, const char *user_id, json_t *data);

/* Builds the envelope (new reference); exposed for tests. */
json_t *kn_event_new(const char *type, const char *resource_type, const char *resource_id,
                     const char *user_id, json_t *data);

/* Announces job event `type` (job.created, job.started, …) about job_id
 * with the job as data: id, status, profiles, progress, priority, metadata,
 * retry_of, outputs (count), error_code/error_message, times. Reads the job
 * on a pooled connection, so call it after the commit (events_job.c). */
void kn_event_job(kn_ctx *kn, const char *type, const char *job_id);

/* Consumers (each in its own file). ev is borrowed. */
void kn_webhooks_enqueue(kn_ctx *kn, json_t *ev);
void kn_notify_event(kn_ctx *kn, json_t *ev);

#endif
