/*
 * Webhooks (DESIGN §5, §8; docs/webhooks.md): endpoints registered over
 * /v1/webhooks receive the domain events they subscribe to as signed HTTP
 * POSTs. Each (webhook, event) is one webhook_deliveries row; its id
 * travels through the WEBENCODE_WEBHOOKS work queue (`webhooks.deliver`),
 * read by sender threads in every kernel through the shared durable
 * "webhooks", and failures come back with NakWithDelay on an exponential
 * backoff until WEBHOOK_MAX_AGE_S.
 *
 * webhooks.c: configuration, event names, signing, backoff, enqueueing;
 * webhooks_send.c: sender threads and the sweeper; api_webhooks.c: the API.
 */
#ifndef KN_WEBHOOKS_H
#define KN_WEBHOOKS_H

#include "kernel.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_WEBHOOKS_STREAM "WEBENCODE_WEBHOOKS"
#define KN_WEBHOOKS_SUBJECT "webhooks.deliver"
#define KN_WEBHOOKS_DURABLE "webhooks"
#define KN_WEBHOOK_SECRET_MASK "********"
#define KN_WEBHOOK_MAX_RETRY_MS 3600000LL /* the backoff's cap: 1 h */

/* Error codes of the webhooks API (WE-SYS family; docs/webhooks.md). */
#define KN_HOOK_NOT_FOUND "WE-SYS-030"     /* 404: no such webhook */
#define KN_HOOK_INVALID "WE-SYS-031"       /* 422: a body field; details.field names it */
#define KN_DELIVERY_NOT_FOUND "WE-SYS-032" /* 404: no such delivery of this webhook */
#define KN_DELIVERY_BUSY "WE-SYS-033"      /* 409: the delivery is being sent right now */

/* Reads WEBHOOK_* into cfg->hooks; the error names the variable. */
int kn_webhooks_config_load(kn_config *cfg, we_err *err);

/* The event names a webhook may subscribe to, NULL-terminated ("*" is
 * accepted too and means all of them). webhook.test is sent only by
 * POST /v1/webhooks/{id}/test. */
extern const char *const kn_webhook_events[];
bool kn_webhook_event_known(const char *name);

/* The address policy of a webhook URL, at creation: http(s), at most 2048
 * printable characters, no credentials, and unless WEBHOOK_ALLOW_PRIVATE
 * only public addresses. WE_EINVAL with the reason in err (no field name:
 * the caller prefixes its own). May block on DNS. */
int kn_webhook_url_check(kn_ctx *kn, const char *url, we_err *err);

/* Job-scoped webhooks (docs/webhooks.md "Per-job endpoints"): one row per
 * URL of urls (a JSON array of strings) with job_id = job, the job's owner,
 * secret, and the job.* events, on c (inside the job's transaction). The
 * secret is the caller's; it is never logged. */
#define KN_WEBHOOK_SECRET_HEX 65 /* 32 random bytes in hex, and the NUL */
int kn_webhooks_add_for_job(PGconn *c, const char *job_id, json_t *urls, const char *secret,
                            we_err *err);

/* Lowercase hex HMAC-SHA256(key, data) into out[65]. */
void kn_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len, char out[65]);
/* The X-WebEncode-Signature value, "sha256=" + hex HMAC-SHA256(secret,
 * timestamp "." body), into out[72]. */
void kn_webhook_sign(const char *secret, const char *timestamp, const char *body, size_t len,
                     char out[72]);

/* The delay before the next attempt after `attempts` (>= 1) failed ones:
 * base·2^(attempts-1), at most 1 h and at most remaining_ms (the time left
 * before the delivery expires; the last attempt happens at expiry). */
int64_t kn_webhook_retry_delay_ms(long base_ms, int attempts, int64_t remaining_ms);

/* Publishes {"delivery_id":…} on webhooks.deliver with Nats-Msg-Id msg_id.
 * WE_EUNAVAIL when NATS is not connected (the sweeper publishes later). */
int kn_webhooks_publish(kn_ctx *kn, const char *delivery_id, const char *msg_id, we_err *err);

/* Inserts a delivery of envelope ev to webhook webhook_id on c (whatever it
 * subscribes to: the test ping) and publishes it. out_id[37] gets the
 * delivery id. WE_ENOENT when there is no such webhook. */
int kn_webhooks_enqueue_to(kn_ctx *kn, PGconn *c, const char *webhook_id, json_t *ev,
                           char out_id[37], we_err *err);

/* The sender threads and the sweeper (webhooks_send.c). They wait for NATS
 * on their own and stop with the kernel (we_stopping()). */
typedef struct kn_webhooks kn_webhooks;
int kn_webhooks_start(kn_ctx *kn, kn_webhooks **out, we_err *err);
void kn_webhooks_stop(kn_webhooks *w);

#endif
