/*
 * NATS thread. Owns the connection set-up and the heartbeat subscription:
 * it connects (retrying with backoff until stop), ensures the JetStream
 * streams, publishes the connection for other threads (kn_nats_get), then
 * loops on the synchronous heartbeat subscription, applying each message to
 * the database. libnats reconnects by itself; after a reconnect the streams
 * are ensured again (a NATS server restarted with an empty store has none).
 * Handling heartbeats on this thread, not in a libnats callback, keeps all
 * database work off library threads.
 */
#include "bus.h"
#include "orch.h"
#include "we_log.h"
#include "we_util.h"
#include "workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_S (24 * 3600)

const kn_stream_def kn_streams[] = {
    { "WEBENCODE_WORK", js_WorkQueuePolicy, js_FileStorage, DAY_S,
      { "jobs.dispatch.>", "jobs.events.>", NULL } },
    { "WEBENCODE_EVENTS", js_LimitsPolicy, js_FileStorage, 90 * DAY_S, { "audit.>", NULL } },
    { "WEBENCODE_LIVE", js_LimitsPolicy, js_MemoryStorage, 10,
      { "live.telemetry.>", "live.lifecycle.>", NULL } },
    { "WEBENCODE_WEBHOOKS", js_WorkQueuePolicy, js_FileStorage, 2 * DAY_S,
      { "webhooks.deliver", NULL } },
    { NULL, 0, 0, 0, { NULL } },
};

struct kn_bus {
    kn_ctx *kn;
    pthread_t thread;
    natsSubscription *hb_sub;
    uint64_t reconnects; /* last seen count: streams are re-ensured when it grows */
};

static int ensure_one(jsCtx *js, const kn_stream_def *d, int replicas, bool *created,
                      we_err *err)
{
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    int n = 0;
    while (d->subjects[n])
        n++;
    cfg.Name = d->name;
    cfg.Subjects = (const char **)d->subjects;
    cfg.SubjectsLen = n;
    cfg.Retention = d->retention;
    cfg.Storage = d->storage;
    cfg.MaxAge = d->max_age_s * 1000000000LL;
    cfg.Duplicates = 120 * 1000000000LL; /* Nats-Msg-Id dedupe window, DESIGN §5 */
    if (cfg.Duplicates > cfg.MaxAge)
        cfg.Duplicates = cfg.MaxAge;
    cfg.Replicas = replicas;
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    *created = s == NATS_OK;
    if (s != NATS_OK && jerr == JSStreamNameExistErr)
        s = js_UpdateStream(&si, js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
        return we_err_set(err, WE_EIO, "stream %s: %s (code %d)", d->name,
                          nats_GetLastError(NULL) ? nats_GetLastError(NULL)
                                                  : natsStatus_GetText(s),
                          (int)jerr);
    return 0;
}

/* The durable pull consumers of docs/pipeline.md: dispatch-<cap> shared by
 * every worker with that capability, kernel-events shared by all kernels. */
static const char *const dispatch_caps[] = { "cpu", "nvidia", "intel", "amd", "vaapi", NULL };

static int ensure_consumer(jsCtx *js, const char *durable, const char *filter, int64_t ack_wait_s,
                           int64_t max_deliver, int replicas, we_err *err)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.FilterSubject = filter;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = ack_wait_s * 1000000000LL;
    cc.MaxDeliver = max_deliver;
    cc.MaxAckPending = 10000;
    cc.Replicas = replicas;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, js, "WEBENCODE_WORK", &cc, NULL, &jerr);
    if (s != NATS_OK && (jerr == JSConsumerNameExistErr || jerr == JSConsumerExistingActiveErr ||
                         jerr == 10148 /* consumer already exists (2.9+) */))
        s = js_UpdateConsumer(&ci, js, "WEBENCODE_WORK", &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
        return we_err_set(err, WE_EIO, "consumer %s: %s (code %d)", durable,
                          nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s),
                          (int)jerr);
    return 0;
}

int kn_streams_ensure(jsCtx *js, int replicas, long ack_wait_s, long max_deliver,
                      bool *work_created, we_err *err)
{
    *work_created = false;
    for (const kn_stream_def *d = kn_streams; d->name; d++) {
        bool created = false;
        int rc = ensure_one(js, d, replicas, &created, err);
        if (rc != 0)
            return rc;
        if (created && strcmp(d->name, "WEBENCODE_WORK") == 0)
            *work_created = true;
    }
    char durable[64], filter[64];
    for (const char *const *c = dispatch_caps; *c; c++) {
        snprintf(durable, sizeof durable, "dispatch-%s", *c);
        snprintf(filter, sizeof filter, "jobs.dispatch.%s", *c);
        int rc = ensure_consumer(js, durable, filter, ack_wait_s, max_deliver, replicas, err);
        if (rc != 0)
            return rc;
    }
    return ensure_consumer(js, "kernel-events", "jobs.events.>", 30, -1, replicas, err);
}

we_nats *kn_nats_get(kn_ctx *kn)
{
    pthread_mutex_lock(&kn->nats_mu);
    we_nats *n = kn->nats_ready ? &kn->nats : NULL;
    pthread_mutex_unlock(&kn->nats_mu);
    return n;
}

/* The connection's reconnect count; it grows after each reconnect. */
static uint64_t reconnects(natsConnection *nc)
{
    natsStatistics *st = NULL;
    uint64_t n = 0;
    if (natsStatistics_Create(&st) == NATS_OK && natsConnection_GetStats(nc, st) == NATS_OK)
        natsStatistics_GetCounts(st, NULL, NULL, NULL, NULL, &n);
    natsStatistics_Destroy(st);
    return n;
}

/* WEBENCODE_WORK was just created, so it holds no message: when it existed
 * before (NATS restarted with a clean data directory, runbook "NATS Cluster
 * Failure"), the dispatches of tasks still waiting for a worker are gone.
 * Putting them back to pending with their outbox rows unpublished makes the
 * publisher send them again,
 * same attempt, same Nats-Msg-Id; a worker that still runs one of them just
 * finishes it, and its events apply once (by task and attempt). */
static void redispatch_waiting(kn_bus *b)
{
    we_err err;
    PGconn *c = we_pg_acquire(b->kn->db, 5000, &err);
    PGresult *res = NULL;
    int rc = c ? we_pg_exec(c,
                            "WITH t AS (UPDATE tasks SET status = 'pending'"
                            "  WHERE status = 'dispatched' RETURNING id, attempt)"
                            " UPDATE task_outbox o SET published_at = NULL FROM t"
                            " WHERE t.id = o.task_id AND t.attempt = o.attempt",
                            0, NULL, &res, &err)
               : WE_EUNAVAIL;
    if (rc == 0 && atoi(PQcmdTuples(res)) > 0) {
        we_warn("work stream was empty: dispatching waiting tasks again",
                WE_I("tasks", atoi(PQcmdTuples(res))));
        kn_orch_kick();
    } else if (rc != 0) {
        we_error("cannot re-dispatch waiting tasks; the lease sweeper will", WE_ERR(err.msg));
    }
    PQclear(res);
    if (c)
        we_pg_release(b->kn->db, c);
}

/* Ensures the streams, retrying until it works or the kernel stops. */
static void ensure_streams_retry(kn_bus *b, we_nats *n)
{
    for (int attempt = 0; !we_stopping(); attempt++) {
        we_err err;
        const kn_config *c = &b->kn->cfg;
        bool work_created = false;
        if (kn_streams_ensure(n->js, (int)c->stream_replicas, c->dispatch_ack_wait_s,
                              c->dispatch_max_deliver, &work_created, &err) == 0) {
            we_info("JetStream streams ready", WE_I("replicas", b->kn->cfg.stream_replicas));
            if (work_created)
                redispatch_waiting(b);
            return;
        }
        int64_t wait = we_backoff_ms(attempt, 500, 30000);
        we_error("JetStream stream setup failed", WE_ERR(err.msg), WE_I("retry_in_ms", wait));
        we_sleep_ms_or_stop(wait);
    }
}

static void handle_heartbeat(kn_bus *b, natsMsg *m)
{
    const char *subj = natsMsg_GetSubject(m);
    const char *id = subj + strlen("workers.heartbeat.");
    json_t *root = NULL;
    kn_heartbeat hb;
    we_err err;
    if (kn_heartbeat_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), id, &root, &hb,
                           &err) != 0) {
        we_warn("heartbeat rejected", WE_ERR(err.msg), WE_S("subject", subj));
        return;
    }
    if (kn_heartbeat_apply(b->kn, &hb, root, &err) != 0)
        we_error("heartbeat not recorded", WE_ERR(err.msg), WE_S("worker_id", hb.id));
    json_decref(root);
}

static int connect_and_subscribe(kn_bus *b, we_nats *n)
{
    if (we_nats_connect_retry(b->kn->cfg.nats_url, &b->kn->cfg.tls.nats, "kernel", true, n) != 0)
        return -1;
    ensure_streams_retry(b, n);
    natsStatus s = natsConnection_QueueSubscribeSync(&b->hb_sub, n->nc, "workers.heartbeat.*",
                                                     "kernels");
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(b->hb_sub, 65536, 64 * 1024 * 1024);
    if (s != NATS_OK) {
        we_error("heartbeat subscription failed", WE_ERR(natsStatus_GetText(s)));
        return -1;
    }
    return 0;
}

static void *bus_main(void *arg)
{
    kn_bus *b = arg;
    we_nats n = { 0 };
    if (connect_and_subscribe(b, &n) != 0) {
        we_nats_close(&n);
        return NULL;
    }
    pthread_mutex_lock(&b->kn->nats_mu);
    b->kn->nats = n;
    b->kn->nats_ready = true;
    pthread_mutex_unlock(&b->kn->nats_mu);
    int64_t next_check = 0;
    while (!we_stopping()) {
        if (we_now_mono_ms() >= next_check) {
            uint64_t r = reconnects(n.nc);
            if (r != b->reconnects && we_nats_is_connected(&n)) {
                b->reconnects = r;
                ensure_streams_retry(b, &n);
            }
            next_check = we_now_mono_ms() + 1000;
        }
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, b->hb_sub, 250);
        if (s == NATS_OK) {
            handle_heartbeat(b, m);
            natsMsg_Destroy(m);
        } else if (s != NATS_TIMEOUT && s != NATS_CONNECTION_DISCONNECTED) {
            we_sleep_ms_or_stop(100);
        }
    }
    return NULL;
}

int kn_bus_start(kn_ctx *kn, kn_bus **out, we_err *err)
{
    kn_bus *b = calloc(1, sizeof *b);
    WE_ASSERT(b != NULL);
    b->kn = kn;
    if (pthread_create(&b->thread, NULL, bus_main, b) != 0) {
        free(b);
        return we_err_set(err, WE_EIO, "cannot start the NATS thread");
    }
    *out = b;
    return 0;
}

void kn_bus_stop(kn_bus *b)
{
    if (!b)
        return;
    pthread_join(b->thread, NULL);
    if (b->hb_sub) {
        natsSubscription_Unsubscribe(b->hb_sub);
        natsSubscription_Destroy(b->hb_sub);
    }
    pthread_mutex_lock(&b->kn->nats_mu);
    b->kn->nats_ready = false;
    we_nats_close(&b->kn->nats);
    pthread_mutex_unlock(&b->kn->nats_mu);
    free(b);
}
