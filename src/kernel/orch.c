/*
 * The orchestrator's threads (docs/pipeline.md):
 *  - "dispatch": every 200 ms publishes due outbox rows to JetStream
 *    (Nats-Msg-Id <task>.<attempt>; row locks with SKIP LOCKED so several
 *    kernels share the work), every 2 s treats expired leases as retryable
 *    failures and refreshes the jobs' wait reasons;
 *  - "events": pulls the kernel-events durable (shared by all kernels) and
 *    applies each event, acking only after its transaction committed (a
 *    database outage Naks it for redelivery);
 *  - "progress": the jobs.progress.* queue subscription, lossy by design.
 * Each thread owns its subscription; all state is in PostgreSQL.
 */
#include "events.h"
#include "orch_int.h"
#include "progress.h"
#include "we_log.h"
#include "we_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char g_lease[24] = "60";
static pthread_mutex_t g_kick_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_kick_cv = PTHREAD_COND_INITIALIZER;
static bool g_kicked;

void kn_orch_kick(void)
{
    pthread_mutex_lock(&g_kick_mu);
    g_kicked = true;
    pthread_cond_signal(&g_kick_cv);
    pthread_mutex_unlock(&g_kick_mu);
}

/* Sleeps up to ms or until kicked (a stop request is seen within ms). */
static void wait_kick(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&g_kick_mu);
    if (!g_kicked)
        pthread_cond_timedwait(&g_kick_cv, &g_kick_mu, &ts);
    g_kicked = false;
    pthread_mutex_unlock(&g_kick_mu);
}

const char *kn_lease_s(void)
{
    return g_lease;
}

struct kn_orch {
    kn_ctx *kn;
    pthread_t dispatch, events, progress;
};

int kn_tx_exec(PGconn *c, const char *sql, int n, const char *const *p, PGresult **out,
               we_err *err)
{
    return we_pg_exec(c, sql, n, p, out, err);
}

void kn_job_log(PGconn *c, const char *job_id, const char *task_id, const char *level,
                const char *message)
{
    const char *p[] = { job_id, task_id, level, message };
    we_pg_exec(c, "INSERT INTO job_logs (job_id, task_id, level, message)"
                  " VALUES ($1, $2::uuid, $3, $4)", 4, p, NULL, NULL);
}

int kn_orch_enqueue_task_tx(PGconn *c, const char *task_id, we_err *err)
{
    const char *p[] = { task_id, kn_lease_s() };
    return we_pg_exec(
        c,
        "INSERT INTO task_outbox (task_id, attempt, subject, payload)"
        " SELECT id, attempt, 'jobs.dispatch.' || capability,"
        "  json_build_object('task_id', id, 'job_id', job_id, 'attempt', attempt, 'type', type,"
        "                    'lease_s', $2::int, 'params', params)"
        " FROM tasks WHERE id = $1 ON CONFLICT (task_id, attempt) DO NOTHING",
        2, p, NULL, err);
}

void kn_publish_cancel(kn_ctx *kn, const char *job_id)
{
    we_nats *n = kn_nats_get(kn);
    char body[128];
    snprintf(body, sizeof body, "{\"job_id\":\"%s\"}", job_id);
    if (!n || natsConnection_PublishString(n->nc, "jobs.cancel", body) != NATS_OK)
        we_warn("jobs.cancel not published; workers stop at their next event",
                WE_S("job_id", job_id));
    else
        natsConnection_FlushTimeout(n->nc, 1000);
}

/* ---- cancel ------------------------------------------------------------- */

static int cancel_tx(PGconn *c, const char *job_id, const char *reason, we_err *err)
{
    PGresult *r = NULL;
    const char *p[] = { job_id };
    int rc = we_pg_exec(c, "UPDATE jobs SET status = 'cancelled', finished_at = now(),"
                           " wait_reason = NULL WHERE id = $1::uuid"
                           " AND status NOT IN ('completed', 'failed', 'cancelled') RETURNING id",
                        1, p, &r, err);
    if (rc != 0)
        return rc;
    int n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        rc = we_pg_exec(c, "SELECT status FROM jobs WHERE id = $1::uuid", 1, p, &r, err);
        if (rc != 0)
            return rc;
        rc = PQntuples(r) == 0 ? we_err_set(err, WE_ENOENT, "no such job")
                               : we_err_set(err, WE_ESTATE, "job is already %s",
                                            PQgetvalue(r, 0, 0));
        PQclear(r);
        return rc;
    }
    rc = we_pg_exec(c, "UPDATE tasks SET status = 'cancelled', finished_at = now(),"
                       " lease_expires_at = NULL WHERE job_id = $1::uuid"
                       " AND status IN ('pending', 'dispatched', 'running')",
                    1, p, NULL, err);
    if (rc == 0)
        kn_job_log(c, job_id, NULL, "info", reason);
    return rc;
}

int kn_orch_cancel_job(kn_ctx *kn, const char *job_id, const char *reason, we_err *err)
{
    PGconn *c = we_pg_acquire(kn->db, 5000, err);
    if (!c)
        return WE_EUNAVAIL;
    int rc = we_pg_exec(c, "BEGIN", 0, NULL, NULL, err);
    if (rc == 0)
        rc = cancel_tx(c, job_id, reason, err);
    we_pg_exec(c, rc == 0 ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, rc == 0 ? err : NULL);
    we_pg_release(kn->db, c);
    if (rc == 0) {
        we_info("job cancelled", WE_S("job_id", job_id), WE_S("reason", reason));
        kn_publish_cancel(kn, job_id);
        kn_event_job(kn, "job.cancelled", job_id);
    }
    return rc;
}

/* ---- dispatch: the outbox publisher ---------------------------------------- */

static const char *const due_sql =
    "SELECT o.id, o.subject, o.payload::text, o.task_id, o.attempt FROM task_outbox o"
    " JOIN tasks t ON t.id = o.task_id JOIN jobs j ON j.id = t.job_id"
    " WHERE o.published_at IS NULL AND t.status = 'pending' AND t.attempt = o.attempt"
    " AND (t.not_before IS NULL OR t.not_before <= now())"
    " AND j.status NOT IN ('completed', 'failed', 'cancelled')"
    " ORDER BY j.priority DESC, o.id LIMIT 32 FOR UPDATE OF o, t SKIP LOCKED";

static int publish_one(jsCtx *js, PGresult *r, int i, we_err *err)
{
    char msgid[80];
    snprintf(msgid, sizeof msgid, "%s.%s", PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msgid;
    po.MaxWait = 5000;
    jsErrCode jerr = 0;
    jsPubAck *ack = NULL;
    const char *data = PQgetvalue(r, i, 2);
    natsStatus s = js_Publish(&ack, js, PQgetvalue(r, i, 1), data, (int)strlen(data), &po, &jerr);
    jsPubAck_Destroy(ack);
    if (s != NATS_OK)
        return we_err_set(err, WE_EUNAVAIL, "publish %s: %s", msgid, natsStatus_GetText(s));
    return 0;
}

static int mark_published(PGconn *c, PGresult *r, int i, we_err *err)
{
    const char *p[] = { PQgetvalue(r, i, 0) };
    const char *t[] = { PQgetvalue(r, i, 3), PQgetvalue(r, i, 4) };
    int rc = we_pg_exec(c, "UPDATE task_outbox SET published_at = now(),"
                           " publish_attempts = publish_attempts + 1 WHERE id = $1",
                        1, p, NULL, err);
    if (rc == 0)
        rc = we_pg_exec(c, "UPDATE tasks SET status = 'dispatched' WHERE id = $1::uuid"
                           " AND attempt = $2::int AND status = 'pending'",
                        2, t, NULL, err);
    return rc;
}

/* Publishes one batch; returns how many rows were sent, or < 0. */
static int publish_due(kn_ctx *kn, jsCtx *js)
{
    we_err err;
    PGresult *r = NULL;
    int sent = 0;
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    if (!c)
        return -1;
    int rc = we_pg_exec(c, "BEGIN", 0, NULL, NULL, &err);
    if (rc == 0)
        rc = we_pg_exec(c, due_sql, 0, NULL, &r, &err);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        if (publish_one(js, r, i, &err) != 0)
            break; /* NATS down: the rest stays for the next round */
        rc = mark_published(c, r, i, &err);
        sent += rc == 0;
    }
    PQclear(r);
    we_pg_exec(c, rc == 0 ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, NULL);
    we_pg_release(kn->db, c);
    if (rc != 0)
        we_warn("dispatch round failed", WE_ERR(err.msg));
    return rc == 0 ? sent : -1;
}

/* ---- sweepers ------------------------------------------------------------ */

/* Expired leases become retryable failures, through the normal event path
 * (event "lease_expired", so a late real event of the attempt still dedups). */
static void sweep_leases(kn_ctx *kn)
{
    we_err err;
    PGresult *r = NULL;
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    if (!c)
        return;
    int rc = we_pg_exec(c, "SELECT id, job_id, attempt, coalesce(worker_id, '') FROM tasks"
                           " WHERE status = 'running' AND lease_expires_at < now() LIMIT 50",
                        0, NULL, &r, &err);
    we_pg_release(kn->db, c);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        kn_event ev = { .task_id = PQgetvalue(r, i, 0),
                        .job_id = PQgetvalue(r, i, 1),
                        .attempt = atoi(PQgetvalue(r, i, 2)),
                        .worker_id = PQgetvalue(r, i, 3),
                        .event = "lease_expired",
                        .err_code = "WE-WRK-002",
                        .err_msg = "the worker stopped reporting (lease expired)",
                        .retryable = true };
        bool cancel = false;
        we_warn("task lease expired; re-queuing", WE_S("task_id", ev.task_id),
                WE_S("job_id", ev.job_id), WE_S("worker_id", ev.worker_id));
        if (kn_event_apply(kn, &ev, &cancel, &err) == 0 && cancel)
            kn_publish_cancel(kn, ev.job_id);
    }
    PQclear(r);
}

/* Sets or clears jobs.wait_reason: a job waits when one of its pending or
 * dispatched tasks needs a capability no healthy worker advertises. */
static const char *const wait_sql =
    "WITH caps AS (SELECT DISTINCT unnest(capabilities) AS cap FROM workers"
    "  WHERE status = 'online' AND last_seen >= now() - 3 * heartbeat_interval_ms"
    "  * interval '1 millisecond'),"
    " need AS (SELECT DISTINCT ON (t.job_id) t.job_id, t.capability FROM tasks t"
    "  JOIN jobs j ON j.id = t.job_id WHERE j.status IN ('queued', 'processing', 'stitching')"
    "  AND t.status IN ('pending', 'dispatched') AND t.capability NOT IN (SELECT cap FROM caps)"
    "  ORDER BY t.job_id, t.capability),"
    " setw AS (UPDATE jobs j SET wait_reason = 'no healthy worker with capability '"
    "  || n.capability FROM need n WHERE j.id = n.job_id AND j.wait_reason IS DISTINCT FROM"
    "  'no healthy worker with capability ' || n.capability RETURNING j.id, j.wait_reason),"
    " clr AS (UPDATE jobs SET wait_reason = NULL WHERE wait_reason IS NOT NULL"
    "  AND id NOT IN (SELECT job_id FROM need) RETURNING id)"
    " SELECT id::text, wait_reason FROM setw";

static void sweep_wait_reasons(kn_ctx *kn)
{
    we_err err;
    PGresult *r = NULL;
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    if (!c)
        return;
    if (we_pg_exec(c, wait_sql, 0, NULL, &r, &err) == 0) {
        for (int i = 0; i < PQntuples(r); i++) {
            we_warn("job waiting for a capability", WE_S("job_id", PQgetvalue(r, i, 0)),
                    WE_S("reason", PQgetvalue(r, i, 1)));
            kn_job_log(c, PQgetvalue(r, i, 0), NULL, "warn", PQgetvalue(r, i, 1));
        }
        PQclear(r);
    }
    we_pg_release(kn->db, c);
}

static void *dispatch_main(void *arg)
{
    kn_orch *o = arg;
    int64_t next_sweep = 0;
    while (!we_stopping()) {
        we_nats *n = kn_nats_get(o->kn);
        int sent = n && n->js && we_nats_is_connected(n) ? publish_due(o->kn, n->js) : 0;
        if (we_now_mono_ms() >= next_sweep) {
            sweep_leases(o->kn);
            sweep_wait_reasons(o->kn);
            next_sweep = we_now_mono_ms() + 2000;
        }
        if (sent < 32)
            wait_kick(200);
    }
    return NULL;
}

/* ---- events and progress --------------------------------------------------- */

static void handle_event(kn_orch *o, natsMsg *m)
{
    kn_event ev;
    we_err err;
    bool cancel = false;
    if (kn_event_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &ev, &err) != 0) {
        we_warn("event rejected", WE_ERR(err.msg), WE_S("subject", natsMsg_GetSubject(m)));
        natsMsg_Term(m, NULL);
        return;
    }
    int rc = kn_event_apply(o->kn, &ev, &cancel, &err);
    if (rc == WE_EUNAVAIL || rc == WE_ETIMEOUT) {
        natsMsg_NakWithDelay(m, 1000, NULL);
    } else {
        if (rc != 0)
            we_error("event not applied", WE_ERR(err.msg), WE_S("task_id", ev.task_id),
                     WE_S("event", ev.event));
        natsMsg_AckSync(m, NULL, NULL);
        if (cancel)
            kn_publish_cancel(o->kn, ev.job_id);
    }
    kn_event_fini(&ev);
}

static natsSubscription *bind_events(we_nats *n)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "WEBENCODE_WORK";
    so.Consumer = "kernel-events";
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    if (js_PullSubscribe(&sub, n->js, "jobs.events.>", "kernel-events", NULL, &so, &jerr) !=
        NATS_OK)
        return NULL;
    return sub;
}

static void *events_main(void *arg)
{
    kn_orch *o = arg;
    natsSubscription *sub = NULL;
    while (!we_stopping()) {
        we_nats *n = kn_nats_get(o->kn);
        if (!sub && n && n->js)
            sub = bind_events(n);
        if (!sub) {
            we_sleep_ms_or_stop(500);
            continue;
        }
        natsMsgList list = { 0 };
        natsStatus s = natsSubscription_Fetch(&list, sub, 32, 1000, NULL);
        for (int i = 0; s == NATS_OK && i < list.Count; i++)
            handle_event(o, list.Msgs[i]);
        natsMsgList_Destroy(&list);
        if (s != NATS_OK && s != NATS_TIMEOUT)
            we_sleep_ms_or_stop(200);
    }
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    return NULL;
}

static const char *const progress_sql =
    "WITH t AS (UPDATE tasks SET progress = least(greatest($3::real, progress), 100),"
    "  encoded_seconds = least(greatest($4::double precision, encoded_seconds),"
    "  coalesce(duration_sec, $4::double precision)),"
    "  lease_expires_at = now() + $5::int * interval '1 second'"
    "  WHERE id = $1::uuid AND attempt = $2::int AND status = 'running' RETURNING job_id)"
    " UPDATE jobs j SET encoded_seconds = s.done, progress = least(99,"
    "  100 * s.done / nullif(s.total, 0)),"
    "  eta_seconds = CASE WHEN s.done > 0 AND j.started_at IS NOT NULL THEN"
    "  ceil((s.total - s.done) / (s.done / greatest(extract(epoch FROM now() - j.started_at),"
    "  0.001)))::int END"
    " FROM (SELECT job_id, sum(CASE WHEN status = 'completed' THEN duration_sec"
    "  ELSE encoded_seconds END) AS done, sum(duration_sec) AS total FROM tasks"
    "  WHERE job_id = (SELECT job_id FROM t) AND type IN ('video', 'audio') GROUP BY job_id) s"
    " WHERE j.id = s.job_id AND j.status IN ('processing', 'stitching')"
    " RETURNING j.id, j.status, j.progress, j.eta_seconds, j.user_id"; /* for job.progress */

static void handle_progress(kn_orch *o, natsMsg *m)
{
    json_error_t je;
    json_t *d = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &je);
    const char *task = NULL;
    json_int_t attempt = 0;
    double pct = 0, enc = 0;
    if (!d || json_unpack(d, "{s:s, s:I, s:F, s?F}", "task_id", &task, "attempt", &attempt,
                          "percent", &pct, "encoded_s", &enc) != 0 ||
        strlen(task) != 36) {
        json_decref(d);
        return; /* lossy channel: garbage is dropped silently (debug) */
    }
    char a[24], p[32], e[32];
    snprintf(a, sizeof a, "%lld", (long long)attempt);
    snprintf(p, sizeof p, "%.3f", pct < 0 ? 0 : pct > 100 ? 100 : pct);
    snprintf(e, sizeof e, "%.3f", enc < 0 ? 0 : enc);
    const char *params[] = { task, a, p, e, kn_lease_s() };
    we_err err;
    PGconn *c = we_pg_acquire(o->kn->db, 1000, &err);
    if (c) {
        PGresult *res = NULL;
        if (we_pg_exec(c, progress_sql, 5, params, &res, &err) != 0)
            we_debug("progress not applied", WE_ERR(err.msg));
        we_pg_release(o->kn->db, c);
        kn_progress_emit(o->kn, res); /* throttled per job */
        PQclear(res);
    }
    json_decref(d);
}

/* A dispatch message delivered DISPATCH_MAX_DELIVER times without an ack
 * (a task that kills or wedges every worker that takes it): JetStream stops
 * redelivering and announces it; the task fails for good, and the message
 * leaves the work queue (WorkQueue streams keep unacked messages). */
static void handle_max_deliveries(kn_orch *o, natsMsg *adv)
{
    json_t *d = json_loadb(natsMsg_GetData(adv), (size_t)natsMsg_GetDataLength(adv), 0, NULL);
    const char *consumer = json_string_value(json_object_get(d, "consumer"));
    json_int_t seq = json_integer_value(json_object_get(d, "stream_seq"));
    json_int_t n = json_integer_value(json_object_get(d, "deliveries"));
    we_nats *nats = kn_nats_get(o->kn);
    natsMsg *m = NULL;
    if (!consumer || strncmp(consumer, "dispatch-", 9) != 0 || seq <= 0 || !nats ||
        js_GetMsg(&m, nats->js, "WEBENCODE_WORK", (uint64_t)seq, NULL, NULL) != NATS_OK) {
        json_decref(d);
        return;
    }
    kn_event ev;
    we_err err;
    char msg[160];
    snprintf(msg, sizeof msg, "the task was delivered %lld times without a result", (long long)n);
    json_t *body = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    json_int_t attempt = json_integer_value(json_object_get(body, "attempt"));
    memset(&ev, 0, sizeof ev);
    ev.task_id = json_string_value(json_object_get(body, "task_id"));
    ev.job_id = json_string_value(json_object_get(body, "job_id"));
    ev.attempt = (int)attempt;
    ev.event = "max_deliveries";
    ev.err_code = "WE-WRK-003";
    ev.err_msg = msg;
    bool cancel = false;
    if (ev.task_id && ev.job_id) {
        we_error("dispatch message exhausted its deliveries", WE_S("task_id", ev.task_id),
                 WE_S("job_id", ev.job_id), WE_I("deliveries", n), WE_S("consumer", consumer));
        if (kn_event_apply(o->kn, &ev, &cancel, &err) == 0 && cancel)
            kn_publish_cancel(o->kn, ev.job_id);
    }
    js_DeleteMsg(nats->js, "WEBENCODE_WORK", (uint64_t)seq, NULL, NULL);
    json_decref(body);
    natsMsg_Destroy(m);
    json_decref(d);
}

static void progress_loop(kn_orch *o, natsSubscription *sub, natsSubscription *adv)
{
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, sub, 200) == NATS_OK) {
        handle_progress(o, m);
        natsMsg_Destroy(m);
    }
    if (natsSubscription_NextMsg(&m, adv, 0) == NATS_OK) {
        handle_max_deliveries(o, m);
        natsMsg_Destroy(m);
    }
}

static void unsubscribe(natsSubscription *s)
{
    if (s) {
        natsSubscription_Unsubscribe(s);
        natsSubscription_Destroy(s);
    }
}

static void *progress_main(void *arg)
{
    kn_orch *o = arg;
    natsSubscription *sub = NULL, *adv = NULL;
    while (!we_stopping()) {
        we_nats *n = kn_nats_get(o->kn);
        if (!sub && n &&
            (natsConnection_QueueSubscribeSync(&sub, n->nc, "jobs.progress.*", "kernels") !=
                 NATS_OK ||
             natsConnection_QueueSubscribeSync(
                 &adv, n->nc, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.WEBENCODE_WORK.*",
                 "kernels") != NATS_OK)) {
            unsubscribe(sub);
            sub = NULL;
        }
        if (!sub || !adv) {
            we_sleep_ms_or_stop(500);
            continue;
        }
        progress_loop(o, sub, adv);
    }
    unsubscribe(sub);
    unsubscribe(adv);
    return NULL;
}

int kn_orch_start(kn_ctx *kn, kn_orch **out, we_err *err)
{
    kn_orch *o = calloc(1, sizeof *o);
    WE_ASSERT(o != NULL);
    o->kn = kn;
    snprintf(g_lease, sizeof g_lease, "%ld", kn->cfg.task_lease_s);
    if (pthread_create(&o->dispatch, NULL, dispatch_main, o) != 0 ||
        pthread_create(&o->events, NULL, events_main, o) != 0 ||
        pthread_create(&o->progress, NULL, progress_main, o) != 0)
        WE_ASSERT(!"cannot start orchestrator threads");
    *out = o;
    return 0;
}

void kn_orch_stop(kn_orch *o)
{
    if (!o)
        return;
    pthread_join(o->dispatch, NULL);
    pthread_join(o->events, NULL);
    pthread_join(o->progress, NULL);
    free(o);
}
