/*
 * The audit trail: who did what to which resource, with what result, from
 * where (DESIGN §9).
 *
 * Design: audit_log is the source of truth and the outbox; the 90-day
 * WEBENCODE_EVENTS stream is fed from it. A finished request is inserted
 * synchronously by kn_audit_request on the MHD thread — after the response
 * went out, so the client does not wait for it — and its id is queued for
 * the audit thread, which publishes the row to `audit.<type>.<verb>` with
 * Nats-Msg-Id = the row's id and then sets published_at. Nothing is lost
 * when NATS is down: unpublished rows stay in the table and the thread's
 * sweeper publishes them (every 3 s, rows older than 3 s, SKIP LOCKED so
 * several kernels share the work; a duplicate within the stream's 2-minute
 * window is dropped by the id). When the database refuses the synchronous
 * insert, the whole record goes to the queue and the thread retries it.
 * System events (kn_audit_system) always go through the queue, so callers
 * on the NATS, plugin-host or logger threads never wait for the database.
 * The queue is bounded (AUDIT_QUEUE_MAX); a full queue drops the record
 * with an error log and a counter. Only records still queued when a kernel
 * is killed can be lost.
 *
 * The thread also detects lost workers (no heartbeat for three intervals,
 * not deregistered): one kernel at a time (a transaction-scoped advisory
 * lock) inserts a `worker.lost` record, once per silence — the audit log
 * itself remembers which silences were reported.
 *
 * State: the queue (g_q, a we_queue) is shared by every thread; the rest belongs to
 * the audit thread.
 */
#include "audit.h"
#include "we_queue.h"
#include "api_jobs.h"
#include "events.h"
#include "we_log.h"
#include "we_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUDIT_QUEUE_MAX 4096
#define AUDIT_UA_MAX 256
#define AUDIT_PATH_MAX 512
#define PUBLISH_BATCH 200
#define SWEEP_MS 3000
#define LOST_CHECK_MS 2000
/* pg_try_advisory_xact_lock key of the lost-worker detector ("weaudlst"). */
#define LOST_LOCK_KEY "8603772345476657012"

/* ---- pure helpers ------------------------------------------------------------ */

/* The singular of a collection name: deliveries -> delivery, jobs -> job;
 * "ss"/"us" endings stay. Into out (at least n + 1 bytes). */
static void singular(const char *s, size_t n, char *out)
{
    memcpy(out, s, n);
    out[n] = '\0';
    if (n > 3 && strcmp(out + n - 3, "ies") == 0)
        strcpy(out + n - 3, "y");
    else if (n > 1 && out[n - 1] == 's' && out[n - 2] != 's' && out[n - 2] != 'u')
        out[n - 1] = '\0';
}

static const char *method_verb(const char *method)
{
    if (strcmp(method, "POST") == 0)
        return "create";
    if (strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
        return "update";
    if (strcmp(method, "DELETE") == 0)
        return "delete";
    return NULL;
}

/* Appends the verb part of the path after the type segment: each nested
 * collection (a literal followed by a {param}) in the singular, then the
 * final literal as the verb, or the method's verb. */
static void verb_of(const char *rest, const char *mverb, we_buf *v)
{
    char word[64];
    while (*rest) {
        size_t n = strcspn(rest, "/");
        const char *next = rest[n] ? rest + n + 1 : rest + n;
        bool param = rest[0] == '{', last = !*next, before_param = !last && next[0] == '{';
        if (!param && n < sizeof word) {
            singular(rest, n, word);
            bool plural = strlen(word) != n;
            if (before_param || (last && plural))
                we_buf_printf(v, "%s_", word);
            else if (last)
                we_buf_printf(v, "%.*s", (int)n, rest);
        }
        if (last && (param || before_param || (!param && strlen(word) != n)))
            we_buf_adds(v, mverb);
        rest = next;
    }
}

bool kn_audit_action(const char *method, const char *pattern, char *action, size_t action_len,
                     char *type, size_t type_len)
{
    const char *mverb = method ? method_verb(method) : NULL;
    if (!mverb || !pattern || strncmp(pattern, "/v1/", 4) != 0 || pattern[4] == '{' ||
        !pattern[4])
        return false;
    const char *seg = pattern + 4;
    size_t n = strcspn(seg, "/");
    char t[64];
    if (n >= sizeof t)
        return false;
    singular(seg, n, t);
    we_buf v;
    we_buf_init(&v);
    if (!seg[n] || !seg[n + 1])
        we_buf_adds(&v, mverb);
    else
        verb_of(seg + n + 1, mverb, &v);
    int w = snprintf(action, action_len, "%s.%s", t, v.data);
    we_buf_fini(&v);
    for (char *p = action; *p; p++)
        *p = *p == '-' ? '_' : (char)tolower((unsigned char)*p);
    snprintf(type, type_len, "%s", t);
    return w > 0 && (size_t)w < action_len;
}

const char *kn_audit_result(int status)
{
    if (status == 401 || status == 403)
        return "denied";
    return status >= 100 && status < 400 ? "success" : "failure";
}

/* Copies src into dst (cap bytes) keeping printable ASCII; anything else
 * becomes '?', so the text is valid UTF-8 for PostgreSQL and JSON. */
static void clean_copy(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; src && *src && o + 1 < cap; src++)
        dst[o++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[o] = '\0';
}

/* ---- records and the queue ----------------------------------------------------- */

typedef struct audit_rec {
    we_qnode node; /* first: the queue's link */
    bool stored; /* the row exists; only publishing is left */
    char id[37];
    char time[40];
    char user_id[40];
    char actor[136];
    char action[96];
    char resource_type[64];
    char resource_id[80];
    char result[8];
    char client_ip[48];
    char user_agent[AUDIT_UA_MAX + 1];
    char request_id[40];
    char *details; /* JSON object text, heap */
} audit_rec;

static we_queue g_q = WE_QUEUE_INIT(AUDIT_QUEUE_MAX); /* open while records can be written */
static bool g_running;                                /* the thread exists (start/stop thread) */
static atomic_ulong g_dropped;                        /* unstored records dropped, queue full */
static pthread_t g_thread;
static kn_ctx *g_kn;

static void rec_free(audit_rec *a)
{
    if (a) {
        free(a->details);
        free(a);
    }
}

/* Queues a for the audit thread. Never waits for more than the mutex:
 * drops the record when the queue is full. */
static void enqueue(audit_rec *a)
{
    int rc = we_queue_push(&g_q, &a->node);
    if (rc == -1 && !a->stored) {
        /* only unstored records are lost; a stored one waits for the sweeper */
        unsigned long dropped = atomic_fetch_add(&g_dropped, 1) + 1;
        if (dropped == 1 || dropped % 100 == 0)
            we_error("audit record dropped: queue full", WE_S("action", a->action),
                     WE_I("dropped_total", (long long)dropped));
    }
    if (rc != 1)
        rec_free(a); /* closed (not started, or stopped: nothing would write it) or full */
}

/* Takes the whole queue. */
static audit_rec *take_all(void)
{
    return (audit_rec *)we_queue_take(&g_q, 0);
}

static audit_rec *rec_new(const char *action, const char *type, const char *id)
{
    audit_rec *a = calloc(1, sizeof *a);
    WE_ASSERT(a != NULL);
    we_uuid4(a->id);
    we_time_rfc3339(a->time, sizeof a->time, we_now_ms());
    clean_copy(a->action, sizeof a->action, action);
    clean_copy(a->resource_type, sizeof a->resource_type, type);
    clean_copy(a->resource_id, sizeof a->resource_id, id);
    return a;
}

/* ---- the database side ------------------------------------------------------------ */

static const char *const insert_sql =
    "INSERT INTO audit_log (id, created_at, user_id, actor, action, resource_type, resource_id,"
    " result, client_ip, user_agent, request_id, details) VALUES ($1::uuid, $2::timestamptz,"
    " $3::uuid, $4, $5, $6, $7, $8, $9::inet, $10, $11, $12::jsonb) ON CONFLICT (id) DO NOTHING";

static const char *nz(const char *s)
{
    return s && s[0] ? s : NULL;
}

/* A failure worth retrying (the database is away), not one of the record. */
static bool transient(int rc)
{
    return rc == WE_EUNAVAIL || rc == WE_ETIMEOUT || rc == WE_EIO;
}

static int rec_insert(PGconn *c, const audit_rec *a, we_err *err)
{
    const char *p[] = { a->id,         a->time,          nz(a->user_id),     a->actor,
                        a->action,     nz(a->resource_type), nz(a->resource_id), a->result,
                        nz(a->client_ip), nz(a->user_agent), nz(a->request_id), a->details };
    return we_pg_exec(c, insert_sql, 12, p, NULL, err);
}

/* The record as published: the same document GET /v1/audit returns. */
static const char *const unpublished_sql =
    "SELECT a.id, a.action, " KN_AUDIT_JSON("a") " FROM audit_log a WHERE a.published_at IS NULL"
    " AND (CASE WHEN $1::uuid[] IS NULL THEN a.created_at < now() - interval '3 seconds'"
    "      ELSE a.id = ANY ($1::uuid[]) END)"
    " ORDER BY a.created_at LIMIT 200 FOR UPDATE SKIP LOCKED" /* PUBLISH_BATCH */;

/* audit.<action>, every character outside [A-Za-z0-9_-.] replaced. */
static void subject_of(const char *action, char *out, size_t cap)
{
    int n = snprintf(out, cap, "audit.%s", action[0] ? action : "unknown");
    for (char *p = out + 6; n > 0 && *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            *p = '_';
}

static bool publish_row(jsCtx *js, PGresult *r, int i)
{
    char subject[128];
    subject_of(PQgetvalue(r, i, 1), subject, sizeof subject);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = PQgetvalue(r, i, 0);
    po.MaxWait = 2000;
    jsErrCode jerr = 0;
    jsPubAck *ack = NULL;
    const char *data = PQgetvalue(r, i, 2);
    natsStatus s = js_Publish(&ack, js, subject, data, (int)strlen(data), &po, &jerr);
    jsPubAck_Destroy(ack);
    return s == NATS_OK;
}

/* Publishes unpublished rows — ids (a "{…}" uuid[] literal), or when ids is
 * NULL those older than 3 s — and marks them. Returns how many were
 * published, or -1 when the database or NATS failed. */
static int publish_batch(kn_ctx *kn, const char *ids)
{
    we_nats *n = kn_nats_get(kn);
    if (!n || !n->js || !we_nats_is_connected(n))
        return -1;
    we_err err;
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    if (!c)
        return -1;
    PGresult *r = NULL;
    we_buf done;
    we_buf_init(&done);
    we_buf_addc(&done, '{');
    int sent = 0, rc = we_pg_exec(c, "BEGIN", 0, NULL, NULL, &err);
    if (rc == 0)
        rc = we_pg_exec(c, unpublished_sql, 1, &ids, &r, &err);
    bool nats_ok = true;
    for (int i = 0; rc == 0 && i < PQntuples(r) && (nats_ok = publish_row(n->js, r, i)); i++)
        we_buf_printf(&done, "%s%s", sent++ ? "," : "", PQgetvalue(r, i, 0));
    we_buf_addc(&done, '}');
    const char *p[] = { done.data };
    if (rc == 0 && sent > 0)
        rc = we_pg_exec(c, "UPDATE audit_log SET published_at = now() WHERE id = ANY ($1::uuid[])",
                        1, p, NULL, &err);
    PQclear(r);
    we_pg_exec(c, rc == 0 ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, NULL);
    we_pg_release(kn->db, c);
    we_buf_fini(&done);
    if (rc != 0)
        we_warn("audit publish round failed", WE_ERR(err.msg));
    return rc == 0 && nats_ok ? sent : -1;
}

/* ---- recording ------------------------------------------------------------------- */

static void fill_request(audit_rec *a, kn_req *r)
{
    const kn_identity *w = &r->who;
    if (kn_job_id_valid(w->user_id)) /* the column is a uuid; other ids go to details */
        snprintf(a->user_id, sizeof a->user_id, "%s", w->user_id);
    clean_copy(a->actor, sizeof a->actor, w->name[0] ? w->name : "anonymous");
    snprintf(a->result, sizeof a->result, "%s", kn_audit_result(r->status));
    unsigned char addr[16];
    if (inet_pton(AF_INET, r->client_ip, addr) == 1 || inet_pton(AF_INET6, r->client_ip, addr) == 1)
        snprintf(a->client_ip, sizeof a->client_ip, "%s", r->client_ip);
    clean_copy(a->user_agent, sizeof a->user_agent,
               MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "User-Agent"));
    clean_copy(a->request_id, sizeof a->request_id, r->request_id);
    char path[AUDIT_PATH_MAX + 1];
    clean_copy(path, sizeof path, r->url);
    json_t *d = json_pack("{s:s, s:s, s:i, s:s}", "method", r->method, "path", path, "status",
                          r->status, "role", kn_role_name(w->role));
    if (d && w->via[0])
        json_object_set_new(d, "via", json_string(w->via));
    if (d && w->user_id[0] && !a->user_id[0]) {
        char subject[sizeof w->user_id];
        clean_copy(subject, sizeof subject, w->user_id);
        json_object_set_new(d, "subject", json_string(subject));
    }
    if (d && w->token_id[0])
        json_object_set_new(d, "token_id", json_string(w->token_id));
    if (d && r->resource_id[0] && r->nparams > 0) { /* e.g. the new job of a retry */
        char created[80];
        clean_copy(created, sizeof created, r->resource_id);
        json_object_set_new(d, "created_id", json_string(created));
    }
    a->details = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!a->details)
        a->details = we_strdup("{}");
}

void kn_audit_request(kn_req *r)
{
    char action[96], type[64];
    if (!r->route || !kn_audit_action(r->method, r->route->pattern, action, sizeof action, type,
                                      sizeof type))
        return;
    const char *rid = r->nparams > 0 ? r->params[0] : r->resource_id;
    audit_rec *a = rec_new(action, type, rid);
    fill_request(a, r);
    we_err err;
    PGconn *c = we_pg_acquire(r->kn->db, 500, &err);
    int rc = c ? rec_insert(c, a, &err) : WE_EUNAVAIL;
    we_pg_release(r->kn->db, c);
    a->stored = rc == 0;
    if (rc != 0 && !transient(rc)) {
        we_error("audit record refused by the database", WE_ERR(err.msg),
                 WE_S("action", a->action), WE_S("request_id", a->request_id));
        rec_free(a);
        return;
    }
    if (rc != 0)
        we_warn("audit record not stored yet; queued for retry", WE_ERR(err.msg),
                WE_S("action", a->action), WE_S("request_id", a->request_id));
    enqueue(a);
}

void kn_audit_system(kn_ctx *kn, const char *action, const char *resource_type,
                     const char *resource_id, json_t *details)
{
    (void)kn;
    audit_rec *a = rec_new(action, resource_type, resource_id);
    snprintf(a->actor, sizeof a->actor, "system");
    snprintf(a->result, sizeof a->result, "success");
    a->details = json_is_object(details) ? json_dumps(details, JSON_COMPACT) : NULL;
    if (!a->details)
        a->details = we_strdup("{}");
    json_decref(details);
    enqueue(a);
}

void kn_audit_worker_seen(kn_ctx *kn, const char *id, const char *hostname, bool offline,
                          const char *prev, bool fresh)
{
    bool was_offline = prev && strcmp(prev, "offline") == 0;
    const char *action = offline ? (was_offline ? NULL : "worker.left")
                                 : (!prev || was_offline || !fresh ? "worker.joined" : NULL);
    if (!action)
        return;
    json_t *d = json_pack("{s:s, s:s, s:b}", "id", id, "hostname", hostname, "rejoined",
                          prev != NULL);
    kn_audit_system(kn, action, "worker", id, json_incref(d));
    if (!offline)
        kn_event_emit(kn, action, "worker", id, NULL, json_incref(d));
    json_decref(d);
}

/* ---- the audit thread --------------------------------------------------------- */

/* Puts list (in order) back at the front of the queue. */
static void requeue_front(audit_rec *list)
{
    we_queue_unshift(&g_q, list ? &list->node : NULL);
}

/* Publishes the ids collected in *ids ("{a,b"), then starts a new list. */
static void flush_ids(kn_ctx *kn, we_buf *ids, int *n)
{
    if (*n > 0) {
        we_buf_addc(ids, '}');
        publish_batch(kn, ids->data);
    }
    we_buf_reset(ids);
    we_buf_addc(ids, '{');
    *n = 0;
}

/* Stores the unstored records of list and publishes them all. Records the
 * database refused go back to the queue, in order; returns false then. */
static bool process(kn_ctx *kn, audit_rec *list)
{
    we_err err = { "" };
    we_buf ids;
    we_buf_init(&ids);
    we_buf_addc(&ids, '{');
    PGconn *c = NULL;
    int n = 0;
    while (list) {
        audit_rec *a = list;
        if (!a->stored && !c)
            c = we_pg_acquire(kn->db, 2000, &err);
        int rc = a->stored ? 0 : c ? rec_insert(c, a, &err) : WE_EUNAVAIL;
        if (rc != 0 && transient(rc))
            break;
        list = (audit_rec *)a->node.next;
        if (rc != 0) {
            we_error("audit record refused by the database", WE_ERR(err.msg),
                     WE_S("action", a->action));
            rec_free(a);
            continue;
        }
        we_buf_printf(&ids, "%s%s", n++ ? "," : "", a->id);
        rec_free(a);
        if (n == PUBLISH_BATCH) { /* one pooled connection at a time */
            we_pg_release(kn->db, c);
            c = NULL;
            flush_ids(kn, &ids, &n);
        }
    }
    we_pg_release(kn->db, c);
    flush_ids(kn, &ids, &n);
    we_buf_fini(&ids);
    if (list)
        we_warn("audit records wait for the database", WE_ERR(err.msg));
    requeue_front(list);
    return list == NULL;
}

/* Workers silent for three heartbeat intervals and not deregistered, not
 * yet reported since their last heartbeat: one kernel at a time records
 * them (the advisory lock ends with the transaction). */
static const char *const lost_sql =
    "INSERT INTO audit_log (actor, action, resource_type, resource_id, result, details)"
    " SELECT 'system', 'worker.lost', 'worker', w.id, 'success', jsonb_build_object("
    "  'hostname', w.hostname, 'last_seen', " KN_AUDIT_TS("w.last_seen") ","
    "  'seconds_since_heartbeat', round(extract(epoch FROM now() - w.last_seen)::numeric, 1))"
    " FROM workers w WHERE w.status <> 'offline'"
    "  AND w.last_seen < now() - 3 * w.heartbeat_interval_ms * interval '1 millisecond'"
    "  AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.resource_type = 'worker'"
    "   AND a.resource_id = w.id AND a.action = 'worker.lost' AND a.created_at >= w.last_seen)"
    " ORDER BY w.id LIMIT 50 RETURNING id, resource_id, details->>'hostname'";

static void detect_lost_workers(kn_ctx *kn)
{
    we_err err;
    PGresult *r = NULL, *got = NULL;
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    if (!c)
        return;
    int rc = we_pg_exec(c, "BEGIN", 0, NULL, NULL, &err);
    if (rc == 0)
        rc = we_pg_exec(c, "SELECT pg_try_advisory_xact_lock(" LOST_LOCK_KEY ")", 0, NULL, &got,
                        &err);
    if (rc == 0 && PQgetvalue(got, 0, 0)[0] == 't')
        rc = we_pg_exec(c, lost_sql, 0, NULL, &r, &err);
    we_pg_exec(c, rc == 0 ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, NULL);
    we_pg_release(kn->db, c);
    for (int i = 0; rc == 0 && r && i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 1), *host = PQgetvalue(r, i, 2);
        we_warn("worker lost: no heartbeat for three intervals", WE_S("worker_id", id),
                WE_S("hostname", host));
        kn_event_emit(kn, "worker.lost", "worker", id, NULL,
                      json_pack("{s:s, s:s}", "id", id, "hostname", host));
        audit_rec *a = rec_new("worker.lost", "worker", PQgetvalue(r, i, 1));
        snprintf(a->id, sizeof a->id, "%s", PQgetvalue(r, i, 0));
        a->stored = true;
        enqueue(a);
    }
    if (rc != 0)
        we_warn("lost-worker check failed", WE_ERR(err.msg));
    PQclear(got);
    PQclear(r);
}

static void *audit_main(void *arg)
{
    kn_ctx *kn = arg;
    int64_t next_sweep = 0, next_lost = we_now_mono_ms() + LOST_CHECK_MS, retry_at = 0;
    for (;;) {
        int64_t now = we_now_mono_ms();
        bool backoff = retry_at > now; /* the database is down: records wait */
        if (we_queue_wait(&g_q, backoff ? (int)(retry_at - now) : 1000, backoff))
            break;
        now = we_now_mono_ms();
        if (now >= retry_at)
            retry_at = process(kn, take_all()) ? 0 : now + 1000;
        if (now >= next_sweep) {
            while (publish_batch(kn, NULL) == PUBLISH_BATCH && !we_stopping())
                ;
            next_sweep = now + SWEEP_MS;
        }
        if (now >= next_lost) {
            detect_lost_workers(kn);
            next_lost = now + LOST_CHECK_MS;
        }
    }
    return NULL;
}

void kn_audit_start(kn_ctx *kn)
{
    g_kn = kn;
    we_queue_open(&g_q);
    WE_ASSERT(pthread_create(&g_thread, NULL, audit_main, kn) == 0);
    g_running = true;
}

void kn_audit_stop(void)
{
    if (!g_running)
        return;
    we_queue_stop(&g_q);
    pthread_join(g_thread, NULL);
    g_running = false;
    /* last chance for what requests finishing meanwhile queued; the rows
     * stored but unpublished are the next start's (or another kernel's) */
    audit_rec *left = take_all();
    bool ok = !left || process(g_kn, left);
    we_queue_close(&g_q);
    int lost = 0;
    for (audit_rec *a = take_all(), *next; a; a = next) {
        next = (audit_rec *)a->node.next;
        lost += !a->stored;
        rec_free(a);
    }
    if (!ok && lost > 0)
        we_error("audit records lost at shutdown: the database is unavailable",
                 WE_I("records", lost));
}
