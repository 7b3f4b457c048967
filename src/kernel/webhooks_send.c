/*
 * Webhook delivery: WEBHOOK_SENDERS sender threads and one sweeper thread
 * per kernel (docs/webhooks.md).
 *
 * Senders pull the shared durable "webhooks" on WEBENCODE_WEBHOOKS (one
 * message = one delivery id) and, per message, in one transaction that
 * locks the delivery row, decide what to do with it:
 *   - gone, succeeded or failed: ack (nothing to send);
 *   - being sent by another sender (status delivering, recently): ack — a
 *     duplicate message; the holder acks or naks its own;
 *   - pending but not yet due: NakWithDelay until it is;
 *   - a first attempt while an older first attempt to the same webhook is
 *     still due or in flight: NakWithDelay 250 ms, so first attempts go out
 *     in event order (retries may overtake);
 *   - the webhook was disabled: failed, ack;
 *   - else claim it (status delivering) and POST it with libcurl: the event
 *     envelope as the body, signed (X-WebEncode-Signature), no redirects,
 *     WEBHOOK_TIMEOUT_MS, and every address curl connects to checked
 *     against the SSRF policy (CURLOPT_OPENSOCKETFUNCTION: a name that
 *     resolves to a private address at send time is refused even if it was
 *     public at creation — DNS rebinding).
 * 2xx: succeeded, ack. Otherwise the attempt is recorded and the message is
 * Nak'ed with the backoff delay, or, once the delivery is older than
 * WEBHOOK_MAX_AGE_S, failed and acked. If recording fails the message is
 * left unacked: JetStream redelivers it after AckWait and the row, still
 * "delivering" but stale, is claimed again (at least once).
 *
 * The sweeper re-publishes deliveries whose message was lost (pending and
 * overdue, or stuck "delivering" longer than AckWait): NATS down when they
 * were queued, a stream purged, a kernel killed between claim and ack.
 * Rows are taken with FOR UPDATE SKIP LOCKED, so kernels share the work.
 *
 * Threads: each sender owns its subscription and its curl handle; the
 * sweeper owns nothing. All shared state is in PostgreSQL and JetStream.
 */
#include "we_log.h"
#include "we_netpolicy.h"
#include "we_util.h"
#include "webhooks.h"

#include <curl/curl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define STALE_EXTRA_MS 15000    /* a claim older than timeout + this is abandoned */
#define ACK_WAIT_EXTRA_MS 30000 /* AckWait = timeout + this */
#define ORDER_WAIT_MS 250       /* a first attempt waiting for an older one */
#define DUE_SLACK_MS 500        /* a message this early is sent anyway */
#define RESP_CAP 65536          /* response bytes read before giving up on the body */
#define ERR_MAX 500             /* last_error length */

struct kn_webhooks {
    kn_ctx *kn;
    int n;
    pthread_t *senders;
    pthread_t sweeper;
    bool sweeper_started;
};

typedef struct sender {
    kn_ctx *kn;
    CURL *curl;
    natsSubscription *sub;
    int idle; /* empty fetches since the consumer was last checked */
} sender;

/* One delivery being sent: what the claim read, and what happened. */
typedef struct delivery {
    char id[37], webhook_id[37], event[64], event_id[37];
    char *payload, *url, *secret; /* heap */
    int attempts;                 /* before this one */
    int64_t age_ms;               /* since the delivery was created */
    long status;                  /* HTTP status, 0 when none */
    bool refused, aborted;
    char refused_addr[64];
    size_t resp_len;
    char resp[201];
    char error[ERR_MAX + 1];
} delivery;

static void delivery_fini(delivery *d)
{
    free(d->payload);
    free(d->url);
    if (d->secret)
        memset(d->secret, 0, strlen(d->secret));
    free(d->secret);
}

static int64_t ack_wait_ms(const kn_ctx *kn)
{
    return kn->cfg.hooks.timeout_ms + ACK_WAIT_EXTRA_MS;
}

static int64_t stale_ms(const kn_ctx *kn)
{
    return kn->cfg.hooks.timeout_ms + STALE_EXTRA_MS;
}

/* ---- the consumer ------------------------------------------------------------------ */

static int ensure_consumer(kn_ctx *kn, jsCtx *js, we_err *err)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = KN_WEBHOOKS_DURABLE;
    cc.FilterSubject = KN_WEBHOOKS_SUBJECT;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = ack_wait_ms(kn) * 1000000LL; /* ns (deps.md) */
    cc.MaxDeliver = -1;                       /* retries end by age, not by count */
    cc.MaxAckPending = 100000;                /* deliveries waiting out a backoff count */
    cc.Replicas = (int)kn->cfg.stream_replicas;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, js, KN_WEBHOOKS_STREAM, &cc, NULL, &jerr);
    if (s != NATS_OK && (jerr == JSConsumerNameExistErr || jerr == JSConsumerExistingActiveErr ||
                         jerr == 10148 /* consumer already exists (2.9+) */))
        s = js_UpdateConsumer(&ci, js, KN_WEBHOOKS_STREAM, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
        return we_err_set(err, WE_EIO, "consumer %s: %s (code %d)", KN_WEBHOOKS_DURABLE,
                          natsStatus_GetText(s), (int)jerr);
    return 0;
}

static void unbind(sender *s)
{
    if (s->sub) {
        natsSubscription_Unsubscribe(s->sub);
        natsSubscription_Destroy(s->sub);
        s->sub = NULL;
    }
}

static int bind_consumer(sender *s, we_nats *n)
{
    we_err err;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = KN_WEBHOOKS_STREAM;
    so.Consumer = KN_WEBHOOKS_DURABLE;
    jsErrCode jerr = 0;
    if (ensure_consumer(s->kn, n->js, &err) != 0) {
        we_warn("webhook consumer not ready", WE_ERR(err.msg));
        return -1;
    }
    if (js_PullSubscribe(&s->sub, n->js, KN_WEBHOOKS_SUBJECT, KN_WEBHOOKS_DURABLE, NULL, &so,
                         &jerr) != NATS_OK) {
        s->sub = NULL;
        return -1;
    }
    s->idle = 0;
    return 0;
}

/* After ~30 s without messages: is the consumer still there? (A NATS
 * server restarted with an empty store has none; bus.c re-creates the
 * stream, this re-creates the consumer.) */
static void check_consumer(sender *s, we_nats *n)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (++s->idle < 30)
        return;
    s->idle = 0;
    if (js_GetConsumerInfo(&ci, n->js, KN_WEBHOOKS_STREAM, KN_WEBHOOKS_DURABLE, NULL, &jerr) !=
        NATS_OK)
        unbind(s);
    jsConsumerInfo_Destroy(ci);
}

/* ---- claiming ------------------------------------------------------------------------ */

typedef enum claim_kind { CLAIMED, DROP, LATER, RETRY_DB } claim_kind;

/* The row, its webhook and whether an older first attempt to the same
 * webhook is due or in flight, locked. */
static const char *const claim_sql =
    "SELECT d.status::text, d.attempts, d.webhook_id::text, d.event, d.event_id::text,"
    " d.payload::text, w.url, w.secret, w.active,"
    " ceil(extract(epoch FROM coalesce(d.next_attempt_at, now()) - now()) * 1000)::bigint,"
    " (extract(epoch FROM now() - d.updated_at) * 1000)::bigint,"
    " (extract(epoch FROM now() - d.created_at) * 1000)::bigint,"
    " d.attempts = 0 AND EXISTS (SELECT 1 FROM webhook_deliveries o"
    "  WHERE o.webhook_id = d.webhook_id AND (o.created_at, o.id) < (d.created_at, d.id)"
    "  AND o.attempts = 0 AND (o.status = 'delivering' OR (o.status = 'pending'"
    "  AND coalesce(o.next_attempt_at, now()) <= now())))"
    " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
    " WHERE d.id = $1::uuid FOR UPDATE OF d";

static char *dup_col(PGresult *r, int col)
{
    return we_strdup(PQgetvalue(r, 0, col));
}

/* Reads the claim row into d; decides. *later_ms for LATER. */
static claim_kind decide(sender *s, PGresult *r, delivery *d, int64_t *later_ms)
{
    const char *st = PQgetvalue(r, 0, 0);
    int64_t due_in = atoll(PQgetvalue(r, 0, 9)), since_update = atoll(PQgetvalue(r, 0, 10));
    bool blocked = PQgetvalue(r, 0, 12)[0] == 't';
    if (!strcmp(st, "succeeded") || !strcmp(st, "failed"))
        return DROP;
    if (!strcmp(st, "delivering") && since_update < stale_ms(s->kn))
        return DROP; /* another sender holds it */
    if (!strcmp(st, "pending") && due_in > DUE_SLACK_MS) {
        *later_ms = due_in;
        return LATER;
    }
    if (blocked) {
        *later_ms = ORDER_WAIT_MS;
        return LATER;
    }
    d->attempts = atoi(PQgetvalue(r, 0, 1));
    snprintf(d->webhook_id, sizeof d->webhook_id, "%s", PQgetvalue(r, 0, 2));
    snprintf(d->event, sizeof d->event, "%s", PQgetvalue(r, 0, 3));
    snprintf(d->event_id, sizeof d->event_id, "%s", PQgetvalue(r, 0, 4));
    d->payload = dup_col(r, 5);
    d->url = dup_col(r, 6);
    d->secret = dup_col(r, 7);
    d->age_ms = atoll(PQgetvalue(r, 0, 11));
    return CLAIMED;
}

static int claim_tx(sender *s, PGconn *c, delivery *d, claim_kind *kind, int64_t *later_ms,
                    we_err *err)
{
    PGresult *r = NULL;
    const char *p[] = { d->id };
    int rc = we_pg_exec(c, claim_sql, 1, p, &r, err);
    if (rc != 0)
        return rc;
    *kind = PQntuples(r) == 1 ? decide(s, r, d, later_ms) : DROP;
    bool active = PQntuples(r) == 1 && PQgetvalue(r, 0, 8)[0] == 't';
    PQclear(r);
    if (*kind == CLAIMED && !active) {
        *kind = DROP;
        return we_pg_exec(c,
                          "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at"
                          " = NULL, last_error = 'the webhook is disabled' WHERE id = $1::uuid",
                          1, p, NULL, err);
    }
    if (*kind == CLAIMED)
        rc =
            we_pg_exec(c, "UPDATE webhook_deliveries SET status = 'delivering' WHERE id = $1::uuid",
                       1, p, NULL, err);
    return rc;
}

static claim_kind claim(sender *s, delivery *d, int64_t *later_ms)
{
    we_err err;
    claim_kind kind = RETRY_DB;
    PGconn *c = we_pg_acquire(s->kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, "BEGIN", 0, NULL, NULL, &err) : WE_EUNAVAIL;
    if (rc == 0)
        rc = claim_tx(s, c, d, &kind, later_ms, &err);
    if (c && rc == 0)
        rc = we_pg_exec(c, "COMMIT", 0, NULL, NULL, &err);
    else if (c)
        we_pg_exec(c, "ROLLBACK", 0, NULL, NULL, NULL);
    we_pg_release(s->kn->db, c);
    if (rc != 0) {
        we_warn("webhook delivery not claimed; retrying", WE_S("delivery_id", d->id),
                WE_ERR(err.msg));
        return RETRY_DB;
    }
    return kind;
}

/* ---- sending ----------------------------------------------------------------------------- */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    delivery *d = clientp;
    (void)purpose;
    if (!we_net_addr_private(&a->addr))
        return socket(a->family, a->socktype, a->protocol);
    if (!d->refused) /* name the first refused address (curl may try several) */
        getnameinfo(&a->addr, a->addrlen, d->refused_addr, sizeof d->refused_addr, NULL, 0,
                    NI_NUMERICHOST);
    d->refused = true;
    return CURL_SOCKET_BAD;
}

static curl_socket_t open_socket_any(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)clientp;
    (void)purpose;
    return socket(a->family, a->socktype, a->protocol);
}

/* Keeps the first 200 bytes for the error message; stops after RESP_CAP. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    delivery *d = userdata;
    size_t n = size * nmemb, keep = sizeof d->resp - 1;
    if (d->resp_len < keep) {
        size_t k = n < keep - d->resp_len ? n : keep - d->resp_len;
        memcpy(d->resp + d->resp_len, ptr, k);
        d->resp[d->resp_len + k] = '\0';
    }
    d->resp_len += n;
    return d->resp_len > RESP_CAP ? 0 : n;
}

static int on_progress(void *clientp, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    delivery *d = clientp;
    (void)dt, (void)dn, (void)ut, (void)un;
    d->aborted = we_stopping();
    return d->aborted ? 1 : 0;
}

/* The body: the stored envelope with its members in their usual order. */
static char *body_of(const char *payload)
{
    static const char *const order[] = {
        "id", "type", "time", "resource", "user_id", "data", NULL
    };
    json_t *src = json_loads(payload, 0, NULL), *out = json_object();
    const char *key;
    json_t *v;
    for (const char *const *k = order; src && *k; k++)
        if ((v = json_object_get(src, *k)))
            json_object_set(out, *k, v);
    json_object_foreach(src, key, v)
    {
        if (!json_object_get(out, key))
            json_object_set(out, key, v);
    }
    char *s = json_dumps(out, JSON_COMPACT);
    json_decref(src);
    json_decref(out);
    return s ? s : we_strdup(payload);
}

static struct curl_slist *headers_of(const delivery *d, const char *body)
{
    char ts[24], sig[72], h[160];
    struct curl_slist *l = NULL;
    snprintf(ts, sizeof ts, "%lld", (long long)(we_now_ms() / 1000));
    kn_webhook_sign(d->secret, ts, body, strlen(body), sig);
    l = curl_slist_append(l, "Content-Type: application/json");
    l = curl_slist_append(l, "User-Agent: WebEncode-Webhooks/" WE_VERSION);
    l = curl_slist_append(l, "Expect:"); /* no 100-continue round trip */
    snprintf(h, sizeof h, "X-WebEncode-Event: %s", d->event);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "X-WebEncode-Delivery: %s", d->id);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "X-WebEncode-Event-Id: %s", d->event_id);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "X-WebEncode-Timestamp: %s", ts);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "X-WebEncode-Signature: %s", sig);
    return curl_slist_append(l, h);
}

static void setup_curl(sender *s, delivery *d, const char *body, struct curl_slist *hdrs,
                       char *errbuf)
{
    CURL *c = s->curl;
    long t = s->kn->cfg.hooks.timeout_ms;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* the address check must see the endpoint */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, t < 5000 ? t : 5000L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION,
                     s->kn->cfg.hooks.allow_private ? open_socket_any : open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, d);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
}

/* Printable ASCII only, so a receiver's reply cannot break the log or the API. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = ' ';
}

static void describe_failure(delivery *d, CURLcode cc, const char *errbuf)
{
    if (d->refused)
        snprintf(d->error, sizeof d->error,
                 "refused: the endpoint resolves to a loopback, "
                 "private, link-local or reserved address (%s); set WEBHOOK_ALLOW_PRIVATE=true "
                 "to allow it",
                 d->refused_addr);
    else if (d->status)
        snprintf(d->error, sizeof d->error, "HTTP %ld%s%s", d->status, d->resp[0] ? ": " : "",
                 d->resp);
    else
        snprintf(d->error, sizeof d->error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
    printable(d->error);
}

/* POSTs d; true when the endpoint answered 2xx. */
static bool send_one(sender *s, delivery *d)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    char *body = body_of(d->payload);
    struct curl_slist *hdrs = headers_of(d, body);
    setup_curl(s, d, body, hdrs, errbuf);
    CURLcode cc = curl_easy_perform(s->curl);
    curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, NULL); /* errbuf is on this stack */
    bool capped = cc == CURLE_WRITE_ERROR && d->resp_len > RESP_CAP;
    if (cc == CURLE_OK || capped)
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &d->status);
    bool ok = d->status >= 200 && d->status < 300;
    if (!ok)
        describe_failure(d, cc, errbuf);
    curl_slist_free_all(hdrs);
    free(body);
    return ok;
}

/* ---- recording ------------------------------------------------------------------------------ */

static const char *const succeeded_sql =
    "WITH d AS (UPDATE webhook_deliveries SET status = 'succeeded', attempts = attempts + 1,"
    " last_status_code = $2::int, delivered_at = now(), next_attempt_at = NULL"
    " WHERE id = $1::uuid AND status = 'delivering' RETURNING webhook_id)"
    " UPDATE webhooks w SET last_delivery_at = now() FROM d WHERE w.id = d.webhook_id";

static const char *const failed_sql =
    "WITH d AS (UPDATE webhook_deliveries SET status = $4::webhook_delivery_status,"
    " attempts = attempts + 1, last_status_code = $2::int, last_error = $3,"
    " next_attempt_at = CASE WHEN $4 = 'pending' THEN now() + $5::bigint * interval '1 millisecond'"
    " END WHERE id = $1::uuid AND status = 'delivering' RETURNING webhook_id, status)"
    " UPDATE webhooks w SET failure_count = failure_count + 1 FROM d"
    " WHERE w.id = d.webhook_id AND d.status = 'failed'";

static int record(kn_ctx *kn, const char *sql, int n, const char *const *p, we_err *err)
{
    PGconn *c = we_pg_acquire(kn->db, 5000, err);
    int rc = c ? we_pg_exec(c, sql, n, p, NULL, err) : WE_EUNAVAIL;
    we_pg_release(kn->db, c);
    return rc;
}

/* Records the attempt and settles the message. */
static void settle(sender *s, delivery *d, bool ok, int64_t elapsed_ms, natsMsg *m)
{
    we_err err;
    char code[16], delay[24];
    const kn_webhook_cfg *h = &s->kn->cfg.hooks;
    snprintf(code, sizeof code, "%ld", d->status);
    int64_t remaining = h->max_age_s * 1000 - d->age_ms - elapsed_ms;
    int64_t wait = kn_webhook_retry_delay_ms(h->retry_base_ms, d->attempts + 1, remaining);
    bool give_up = !ok && remaining <= 0;
    snprintf(delay, sizeof delay, "%lld", (long long)wait);
    const char *p[] = { d->id, d->status ? code : NULL, d->error, give_up ? "failed" : "pending",
                        delay };
    int rc = ok ? record(s->kn, succeeded_sql, 2, p, &err) : record(s->kn, failed_sql, 5, p, &err);
    if (rc != 0) { /* unacked: redelivered after AckWait, then claimed again */
        we_error("webhook attempt not recorded", WE_S("delivery_id", d->id), WE_ERR(err.msg));
        return;
    }
    if (ok || give_up)
        natsMsg_AckSync(m, NULL, NULL);
    else
        natsMsg_NakWithDelay(m, wait, NULL);
    if (ok)
        we_info("webhook delivered", WE_S("delivery_id", d->id), WE_S("webhook_id", d->webhook_id),
                WE_S("event", d->event), WE_I("status", d->status),
                WE_I("attempt", d->attempts + 1));
    else
        we_log_at(give_up ? WE_LOG_WARN : WE_LOG_INFO,
                  give_up ? "webhook delivery failed for good" : "webhook attempt failed",
                  WE_S("delivery_id", d->id), WE_S("webhook_id", d->webhook_id),
                  WE_S("event", d->event), WE_I("attempt", d->attempts + 1), WE_ERR(d->error),
                  WE_I("retry_in_ms", give_up ? -1 : wait), WE_KV_LAST);
}

/* Stopped mid-send: the attempt does not count; another kernel takes it. */
static void release(sender *s, delivery *d, natsMsg *m)
{
    const char *p[] = { d->id };
    record(s->kn,
           "UPDATE webhook_deliveries SET status = 'pending' WHERE id = $1::uuid"
           " AND status = 'delivering'",
           1, p, NULL);
    natsMsg_Nak(m, NULL);
}

static void handle(sender *s, natsMsg *m)
{
    delivery d = { 0 };
    int64_t later = 0;
    json_t *doc = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    const char *id = json_string_value(json_object_get(doc, "delivery_id"));
    if (!id || strlen(id) != 36 || strspn(id, "0123456789abcdef-") != 36) {
        we_warn("webhook message without a delivery id dropped");
        natsMsg_Term(m, NULL);
        json_decref(doc);
        return;
    }
    snprintf(d.id, sizeof d.id, "%s", id);
    json_decref(doc);
    claim_kind k = claim(s, &d, &later);
    if (k == CLAIMED) {
        int64_t t0 = we_now_mono_ms();
        bool ok = send_one(s, &d);
        if (d.aborted)
            release(s, &d, m);
        else
            settle(s, &d, ok, we_now_mono_ms() - t0, m);
    } else if (k == DROP) {
        natsMsg_AckSync(m, NULL, NULL);
    } else {
        natsMsg_NakWithDelay(m, k == LATER ? later : 2000, NULL);
    }
    delivery_fini(&d); /* also what a claim read before finding the webhook disabled */
}

static void *sender_main(void *arg)
{
    sender *s = arg;
    while (!we_stopping()) {
        we_nats *n = kn_nats_get(s->kn);
        if (!n || !n->js || (!s->sub && bind_consumer(s, n) != 0)) {
            we_sleep_ms_or_stop(1000);
            continue;
        }
        natsMsgList list = { 0 };
        natsStatus st = natsSubscription_Fetch(&list, s->sub, 1, 1000, NULL);
        for (int i = 0; st == NATS_OK && i < list.Count; i++)
            handle(s, list.Msgs[i]);
        natsMsgList_Destroy(&list);
        if (st == NATS_TIMEOUT) {
            check_consumer(s, n);
        } else if (st != NATS_OK) {
            unbind(s);
            we_sleep_ms_or_stop(500);
        }
    }
    unbind(s);
    curl_easy_cleanup(s->curl);
    free(s);
    return NULL;
}

/* ---- the sweeper --------------------------------------------------------------------------------
 */

/* Deliveries whose message must be lost: pending and overdue by $1 ms, or
 * claimed longer ago than AckWait + $1 ms. They become pending and due. */
static const char *const sweep_sql =
    "WITH lost AS (SELECT id FROM webhook_deliveries"
    "  WHERE (status = 'pending' AND next_attempt_at < now() - $1::int * interval '1 millisecond')"
    "  OR (status = 'delivering' AND updated_at < now() - ($1::int + $2::int)"
    "  * interval '1 millisecond') ORDER BY next_attempt_at LIMIT 200 FOR UPDATE SKIP LOCKED)"
    " UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now() FROM lost"
    " WHERE d.id = lost.id RETURNING d.id::text";

static void sweep(kn_ctx *kn)
{
    we_err err;
    char grace[24], wait[24];
    PGresult *r = NULL;
    snprintf(grace, sizeof grace, "%ld", 2 * kn->cfg.hooks.sweep_ms);
    snprintf(wait, sizeof wait, "%lld", (long long)ack_wait_ms(kn));
    const char *p[] = { grace, wait };
    if (!kn_nats_get(kn))
        return; /* nothing could be published */
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, sweep_sql, 2, p, &r, &err) : WE_EUNAVAIL;
    we_pg_release(kn->db, c);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        char msgid[80];
        const char *id = PQgetvalue(r, i, 0);
        snprintf(msgid, sizeof msgid, "%s.s%lld", id, (long long)we_now_ms());
        we_info("webhook delivery re-published", WE_S("delivery_id", id));
        if (kn_webhooks_publish(kn, id, msgid, &err) != 0)
            break; /* NATS went away: they are due, the next sweep retries */
    }
    PQclear(r);
    if (rc != 0)
        we_warn("webhook sweep failed", WE_ERR(err.msg));
}

static void *sweeper_main(void *arg)
{
    kn_webhooks *w = arg;
    while (!we_sleep_ms_or_stop(w->kn->cfg.hooks.sweep_ms))
        sweep(w->kn);
    return NULL;
}

/* ---- start and stop
 * ---------------------------------------------------------------------------------- */

int kn_webhooks_start(kn_ctx *kn, kn_webhooks **out, we_err *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return we_err_set(err, WE_EIO, "libcurl failed to initialize");
    kn_webhooks *w = calloc(1, sizeof *w);
    WE_ASSERT(w != NULL);
    w->kn = kn;
    w->senders = calloc((size_t)kn->cfg.hooks.senders, sizeof *w->senders);
    WE_ASSERT(w->senders != NULL);
    *out = w;
    for (; w->n < kn->cfg.hooks.senders; w->n++) {
        sender *s = calloc(1, sizeof *s);
        WE_ASSERT(s != NULL);
        s->kn = kn;
        s->curl = curl_easy_init();
        WE_ASSERT(s->curl != NULL);
        if (pthread_create(&w->senders[w->n], NULL, sender_main, s) != 0) {
            curl_easy_cleanup(s->curl);
            free(s);
            return we_err_set(err, WE_EIO, "cannot start the webhook sender threads");
        }
    }
    if (pthread_create(&w->sweeper, NULL, sweeper_main, w) != 0)
        return we_err_set(err, WE_EIO, "cannot start the webhook sweeper thread");
    w->sweeper_started = true;
    return 0;
}

void kn_webhooks_stop(kn_webhooks *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        pthread_join(w->senders[i], NULL);
    if (w->sweeper_started)
        pthread_join(w->sweeper, NULL);
    free(w->senders);
    free(w);
    curl_global_cleanup();
}
