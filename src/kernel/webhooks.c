/*
 * Webhooks, the producing side: configuration (WEBHOOK_*), the event names
 * a webhook may subscribe to, the signature (HMAC-SHA256 over
 * "<timestamp>.<body>"), the retry backoff, the URL address policy, the
 * job-scoped webhooks a job's webhook_urls become, and kn_webhooks_enqueue,
 * which kn_event_emit calls after every domain event.
 *
 * Enqueueing is one INSERT … SELECT: a webhook_deliveries row per active
 * webhook subscribed to the event (a job-scoped one only for its own job's
 * events; ON CONFLICT (webhook_id, event_id) DO NOTHING, so an event queued
 * twice is delivered once), then one JetStream message {"delivery_id"} per
 * row on webhooks.deliver with Nats-Msg-Id "<delivery>.<attempts>". A
 * failed publish is not an error: the row is due, and the sweeper
 * (webhooks_send.c) publishes what is overdue.
 * Events are emitted after their transaction committed, so a crash
 * between the commit and this INSERT loses that event's deliveries; the
 * events themselves are never rolled back.
 * Any thread; the only state is the database and the NATS connection.
 */
#include "webhooks.h"
#include "events.h"
#include "we_config.h"
#include "we_log.h"
#include "we_netpolicy.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const kn_webhook_events[] = {
    "job.created",
    "job.started",
    "job.completed",
    "job.failed",
    "job.cancelled",
    "worker.joined",
    "worker.lost",
    "stream.started",
    "stream.ended",
    "recording.ready",
    NULL,
};

bool kn_webhook_event_known(const char *name)
{
    for (const char *const *e = kn_webhook_events; name && *e; e++)
        if (strcmp(*e, name) == 0)
            return true;
    return false;
}

int kn_webhooks_config_load(kn_config *cfg, we_err *err)
{
    kn_webhook_cfg *h = &cfg->hooks;
    int rc = we_cfg_bool("WEBHOOK_ALLOW_PRIVATE", false, &h->allow_private, err);
    if (!rc)
        rc = we_cfg_int("WEBHOOK_TIMEOUT_MS", 10000, 100, 120000, &h->timeout_ms, err);
    if (!rc)
        rc = we_cfg_int("WEBHOOK_RETRY_BASE_MS", 10000, 10, 3600000, &h->retry_base_ms, err);
    if (!rc) /* the stream keeps a message 2 days: retries fit inside */
        rc = we_cfg_int("WEBHOOK_MAX_AGE_S", 86400, 1, 172800, &h->max_age_s, err);
    if (!rc)
        rc = we_cfg_int("WEBHOOK_SENDERS", 4, 1, 64, &h->senders, err);
    if (!rc)
        rc = we_cfg_int("WEBHOOK_SWEEP_MS", 30000, 100, 3600000, &h->sweep_ms, err);
    return rc;
}

/* ---- signing and backoff ------------------------------------------------------ */

void kn_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    WE_ASSERT(HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &mdlen) != NULL);
    WE_ASSERT(mdlen == 32);
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

void kn_webhook_sign(const char *secret, const char *timestamp, const char *body, size_t len,
                     char out[72])
{
    size_t tn = strlen(timestamp);
    char *msg = malloc(tn + 1 + len + 1);
    WE_ASSERT(msg != NULL);
    memcpy(msg, timestamp, tn);
    msg[tn] = '.';
    memcpy(msg + tn + 1, body, len);
    memcpy(out, "sha256=", 7);
    kn_hmac_sha256_hex(secret, strlen(secret), msg, tn + 1 + len, out + 7);
    free(msg);
}

int64_t kn_webhook_retry_delay_ms(long base_ms, int attempts, int64_t remaining_ms)
{
    int64_t d = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < attempts && d < KN_WEBHOOK_MAX_RETRY_MS; i++)
        d *= 2;
    if (d > KN_WEBHOOK_MAX_RETRY_MS)
        d = KN_WEBHOOK_MAX_RETRY_MS;
    if (d > remaining_ms)
        d = remaining_ms;
    return d < 0 ? 0 : d;
}

/* ---- endpoints ------------------------------------------------------------------- */

#define URL_MAX 2048

static bool url_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

int kn_webhook_url_check(kn_ctx *kn, const char *url, we_err *err)
{
    const char *rest = NULL;
    char host[256];
    we_err why;
    if (url && !strncmp(url, "http://", 7))
        rest = url + 7;
    else if (url && !strncmp(url, "https://", 8))
        rest = url + 8;
    if (!rest || strlen(url) > URL_MAX || !url_printable(url))
        return we_err_set(err, WE_EINVAL,
                          "expected an http:// or https:// URL of at most %d characters, "
                          "without spaces or control characters",
                          URL_MAX);
    if (we_net_url_host(rest, host, &why) != 0 ||
        (!kn->cfg.hooks.allow_private &&
         we_net_host_public(host, "WEBHOOK_ALLOW_PRIVATE", &why) != 0))
        return we_err_set(err, WE_EINVAL, "%s", why.msg);
    return 0;
}

/* The job's owner as in jobs.user_id; the URLs in the order given. */
static const char *const add_for_job_sql =
    "INSERT INTO webhooks (job_id, user_id, url, secret, events)"
    " SELECT j.id, j.user_id, u.url, $3, ARRAY['job.created', 'job.started', 'job.completed',"
    "  'job.failed', 'job.cancelled'] FROM jobs j,"
    "  jsonb_array_elements_text($2::jsonb) WITH ORDINALITY u(url, n)"
    " WHERE j.id = $1::uuid ORDER BY u.n";

int kn_webhooks_add_for_job(PGconn *c, const char *job_id, json_t *urls, const char *secret,
                            we_err *err)
{
    char *list = json_dumps(urls, JSON_COMPACT);
    if (!list)
        return we_err_set(err, WE_ENOMEM, "job %s: webhook_urls not serialized", job_id);
    const char *p[] = { job_id, list, secret };
    int rc = we_pg_exec(c, add_for_job_sql, 3, p, NULL, err);
    free(list);
    return rc;
}

/* ---- enqueueing ------------------------------------------------------------------ */

/* One row per active webhook that lists the event or "*"; a job-scoped
 * one only when the event is about its job. */
static const char *const insert_sql =
    "INSERT INTO webhook_deliveries (webhook_id, event_id, event, payload, next_attempt_at)"
    " SELECT w.id, $1::uuid, $2, $3::jsonb, now() FROM webhooks w"
    " WHERE w.active AND w.events && ARRAY[$2, '*'] AND (w.job_id IS NULL"
    "  OR ($3::jsonb #>> '{resource,type}' = 'job'"
    "      AND w.job_id::text = $3::jsonb #>> '{resource,id}'))"
    " ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING id::text, attempts";

/* The same for one webhook, whatever it subscribes to (the test ping). */
static const char *const insert_one_sql =
    "INSERT INTO webhook_deliveries (webhook_id, event_id, event, payload, next_attempt_at)"
    " SELECT w.id, $1::uuid, $2, $3::jsonb, now() FROM webhooks w WHERE w.id = $4::uuid"
    " ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING id::text, attempts";

int kn_webhooks_publish(kn_ctx *kn, const char *delivery_id, const char *msg_id, we_err *err)
{
    we_nats *n = kn_nats_get(kn);
    if (!n || !n->js || !we_nats_is_connected(n))
        return we_err_set(err, WE_EUNAVAIL, "NATS is not connected");
    char body[80];
    int len = snprintf(body, sizeof body, "{\"delivery_id\":\"%s\"}", delivery_id);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = 2000;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&ack, n->js, KN_WEBHOOKS_SUBJECT, body, len, &po, &jerr);
    jsPubAck_Destroy(ack);
    if (s != NATS_OK)
        return we_err_set(err, WE_EUNAVAIL, "publish delivery %s: %s (code %d)", delivery_id,
                          natsStatus_GetText(s), (int)jerr);
    return 0;
}

/* Publishes every (id, attempts) row of res; failures wait for the sweeper. */
static void publish_rows(kn_ctx *kn, PGresult *res, const char *event)
{
    for (int i = 0; i < PQntuples(res); i++) {
        we_err err;
        char msgid[64];
        const char *id = PQgetvalue(res, i, 0);
        snprintf(msgid, sizeof msgid, "%s.%s", id, PQgetvalue(res, i, 1));
        if (kn_webhooks_publish(kn, id, msgid, &err) != 0)
            we_warn("webhook delivery queued, not yet published (the sweeper retries)",
                    WE_S("delivery_id", id), WE_S("event", event), WE_ERR(err.msg));
    }
}

/* Runs sql (insert_sql or insert_one_sql) for ev on c and publishes what
 * it inserted. *rows gets the result (PQclear it) when rows is not NULL. */
static int enqueue_on(kn_ctx *kn, PGconn *c, const char *sql, const char *webhook_id, json_t *ev,
                      PGresult **rows, we_err *err)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *id = json_string_value(json_object_get(ev, "id"));
    if (!type || !id)
        return we_err_set(err, WE_EINVAL, "event envelope without id or type");
    char *payload = json_dumps(ev, JSON_COMPACT);
    const char *p[] = { id, type, payload, webhook_id };
    PGresult *res = NULL;
    int rc = we_pg_exec(c, sql, webhook_id ? 4 : 3, p, &res, err);
    free(payload);
    if (rc != 0)
        return rc;
    publish_rows(kn, res, type);
    if (rows)
        *rows = res;
    else
        PQclear(res);
    return 0;
}

void kn_webhooks_enqueue(kn_ctx *kn, json_t *ev)
{
    we_err err;
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!kn || !kn->db || !kn_webhook_event_known(type))
        return; /* job.progress and friends are for SSE only */
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    int rc = c ? enqueue_on(kn, c, insert_sql, NULL, ev, NULL, &err) : WE_EUNAVAIL;
    we_pg_release(kn->db, c);
    if (rc != 0)
        we_error("webhook deliveries not queued", WE_S("event", type),
                 WE_S("event_id", json_string_value(json_object_get(ev, "id"))), WE_ERR(err.msg));
}

int kn_webhooks_enqueue_to(kn_ctx *kn, PGconn *c, const char *webhook_id, json_t *ev,
                           char out_id[37], we_err *err)
{
    PGresult *res = NULL;
    int rc = enqueue_on(kn, c, insert_one_sql, webhook_id, ev, &res, err);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 1)
        snprintf(out_id, 37, "%s", PQgetvalue(res, 0, 0));
    else
        rc = we_err_set(err, WE_ENOENT, "no such webhook");
    PQclear(res);
    return rc;
}
