/*
 * Error tracking. The kernel installs a we_log sink: every error- or
 * fatal-level line the kernel logs (its own, and its plugins' lines that
 * the host re-logs with plugin=<id>) is copied into a bounded queue — the
 * sink never blocks on anything but the queue's mutex, and drops the line
 * with a counter when the queue is full. The tracker thread parses each
 * line into an occurrence (source, message, error code, context from the
 * log fields with secrets removed, request_id, job_id), sums occurrences
 * of one fingerprint in the batch, and upserts them in one transaction:
 * one open row per fingerprint, count incremented, last_seen and the
 * latest context updated. When the database is down the batch waits in
 * the queue. Lines logged on the tracker thread itself are ignored, so a
 * failure to record an error cannot feed itself; the thread logs its own
 * trouble at warn level.
 *
 * The tracker also turns the plugin host's "plugin state changed" records
 * (to failed, or disabled after crashes) into plugin.failed /
 * plugin.disabled system audit events: the host has no state-change
 * callback, and these records are how it reports them.
 *
 * State: the queue (g_q, a we_queue) is shared; parsing and the database belong to
 * the tracker thread.
 */
#include "errors.h"
#include "we_queue.h"
#include "audit.h"
#include "api_jobs.h"
#include "we_buf.h"
#include "we_log.h"
#include "we_util.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define QUEUE_MAX 1024
#define BATCH_MAX 256
#define LINE_MAX_BYTES 65536
#define VALUE_MAX 1000

/* ---- parsing (pure) -------------------------------------------------------------- */

bool kn_error_key_secret(const char *key)
{
    static const char *const words[] = { "token",  "passw",      "secret",      "authoriz",
                                         "cookie", "api_key",    "apikey",      "private_key",
                                         "credential", "body",   "signature" };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(key, words[i]))
            return true;
    return false;
}

/* A context value: long strings cut, bearer tokens and URL credentials
 * masked. New reference. */
static json_t *context_value(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return json_incref(v);
    if (strncasecmp(s, "bearer ", 7) == 0 || strncasecmp(s, "basic ", 6) == 0)
        return json_string("***");
    char buf[VALUE_MAX + 8];
    if (strstr(s, "://") && strchr(s, '@')) {
        we_url_redact(s, buf, sizeof buf);
        return json_string(buf);
    }
    if (strlen(s) <= VALUE_MAX)
        return json_incref(v);
    snprintf(buf, sizeof buf, "%.*s…", VALUE_MAX, s);
    return json_string(buf);
}

static void fingerprint(const char *source, const char *message, const char *code, char out[65])
{
    we_buf b;
    we_buf_init(&b);
    we_buf_printf(&b, "%s%c%s%c%s", source, 0x1f, message, 0x1f, code ? code : "");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    WE_ASSERT(EVP_Digest(b.data, b.len, md, &n, EVP_sha256(), NULL) == 1 && n == 32);
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    we_buf_fini(&b);
}

static char *dup_str(json_t *v)
{
    return json_is_string(v) ? we_strdup(json_string_value(v)) : NULL;
}

/* The error code among the fields, if any. */
static char *code_of(json_t *j)
{
    static const char *const keys[] = { "code", "we_code", "error_code" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (json_is_string(json_object_get(j, keys[i])))
            return dup_str(json_object_get(j, keys[i]));
    return NULL;
}

static json_t *context_of(json_t *j)
{
    static const char *const skip[] = { "time", "level", "msg" };
    json_t *ctx = json_object(), *v;
    const char *key;
    json_object_foreach(j, key, v)
    {
        bool skipped = kn_error_key_secret(key);
        for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
            skipped = skipped || strcmp(key, skip[i]) == 0;
        if (!skipped)
            json_object_set_new(ctx, key, context_value(v));
    }
    return ctx;
}

bool kn_error_occ_parse(const char *line, size_t len, const char *source_override,
                        kn_error_occ *o)
{
    memset(o, 0, sizeof *o);
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "msg"));
    if (!json_is_object(j) || !msg || !msg[0]) {
        json_decref(j);
        return false;
    }
    const char *plugin = json_string_value(json_object_get(j, "plugin"));
    const char *level = json_string_value(json_object_get(j, "level"));
    char src[96];
    if (source_override && source_override[0])
        snprintf(src, sizeof src, "%s", source_override);
    else if (plugin && plugin[0])
        snprintf(src, sizeof src, "plugin:%.80s", plugin);
    else if (json_is_string(json_object_get(j, "service")))
        snprintf(src, sizeof src, "%.80s", json_string_value(json_object_get(j, "service")));
    else
        snprintf(src, sizeof src, "kernel");
    o->source = we_strdup(src);
    o->severity = we_strdup(level && strcmp(level, "fatal") == 0 ? "fatal" : "error");
    o->message = we_strdup(msg);
    o->code = code_of(j);
    o->request_id = dup_str(json_object_get(j, "request_id"));
    const char *job = json_string_value(json_object_get(j, "job_id"));
    o->job_id = kn_job_id_valid(job) ? we_strdup(job) : NULL;
    const char *t = json_string_value(json_object_get(j, "time"));
    o->time = kn_job_time_valid(t) ? we_strdup(t) : NULL;
    o->context = context_of(j);
    fingerprint(o->source, o->message, o->code, o->fingerprint);
    json_decref(j);
    return true;
}

void kn_error_occ_fini(kn_error_occ *o)
{
    free(o->source);
    free(o->severity);
    free(o->message);
    free(o->code);
    free(o->request_id);
    free(o->job_id);
    free(o->time);
    json_decref(o->context);
    memset(o, 0, sizeof *o);
}

/* ---- the queue ---------------------------------------------------------------------- */

typedef struct err_item {
    we_qnode node; /* first: the queue's link */
    bool side_effects_done; /* audit derived already (the item is a retry) */
    char source[96];
    size_t len;
    char line[]; /* NUL-terminated */
} err_item;

static we_queue g_q = WE_QUEUE_INIT(QUEUE_MAX); /* open while the tracker runs */
static bool g_running;                           /* the thread exists (start/stop thread) */
static pthread_t g_thread;
static kn_ctx *g_kn;
static _Thread_local bool tl_tracker; /* set on the tracker thread */

static void push(const char *line, size_t len, const char *source)
{
    if (len > LINE_MAX_BYTES)
        return;
    err_item *it = malloc(sizeof *it + len + 1);
    WE_ASSERT(it != NULL);
    it->side_effects_done = false;
    snprintf(it->source, sizeof it->source, "%s", source ? source : "");
    memcpy(it->line, line, len);
    it->line[len] = '\0';
    it->len = len;
    if (we_queue_push(&g_q, &it->node) != 1)
        free(it); /* not running, or full (counted, reported by the tracker) */
}

static void sink(we_log_level level, const char *line, size_t len)
{
    (void)level;
    if (!tl_tracker)
        push(line, len, NULL);
}

void kn_errors_record(const char *source, const char *severity, const char *message,
                      const char *code, json_t *context, const char *request_id,
                      const char *job_id)
{
    json_t *j = json_is_object(context) ? context : json_object();
    if (j != context)
        json_decref(context);
    char t[40];
    we_time_rfc3339(t, sizeof t, we_now_ms());
    json_object_set_new(j, "time", json_string(t));
    json_object_set_new(j, "level", json_string(severity && strcmp(severity, "fatal") == 0
                                                    ? "fatal" : "error"));
    json_object_set_new(j, "msg", json_string(message));
    if (code)
        json_object_set_new(j, "code", json_string(code));
    if (request_id)
        json_object_set_new(j, "request_id", json_string(request_id));
    if (job_id)
        json_object_set_new(j, "job_id", json_string(job_id));
    char *line = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (line)
        push(line, strlen(line), source);
    free(line);
}

/* Takes up to BATCH_MAX items, in order. */
static err_item *take_batch(void)
{
    return (err_item *)we_queue_take(&g_q, BATCH_MAX);
}

static void requeue_front(err_item *list)
{
    we_queue_unshift(&g_q, list ? &list->node : NULL);
}

static void free_list(err_item *list)
{
    for (err_item *next; list; list = next) {
        next = (err_item *)list->node.next;
        free(list);
    }
}

/* ---- the database side ------------------------------------------------------------- */

static const char *const upsert_sql =
    "INSERT INTO error_events AS e (source, severity, message, context, request_id, job_id,"
    " fingerprint, count, first_seen, last_seen) VALUES ($1, $2::error_severity, $3, $4::jsonb,"
    " $5, $6::uuid, $7, $8::int, coalesce($9::timestamptz, now()),"
    " greatest(coalesce($10::timestamptz, now()), coalesce($9::timestamptz, now())))"
    " ON CONFLICT (fingerprint) WHERE NOT resolved DO UPDATE SET"
    " count = least(e.count::bigint + EXCLUDED.count, 2147483647)::int,"
    " last_seen = greatest(e.last_seen, EXCLUDED.last_seen),"
    " severity = greatest(e.severity, EXCLUDED.severity), context = EXCLUDED.context,"
    " request_id = EXCLUDED.request_id, job_id = EXCLUDED.job_id";

/* Occurrences of one fingerprint in a batch: the latest one, counted. */
typedef struct agg {
    kn_error_occ occ;
    char *first_time;
    int count;
} agg;

static int upsert(PGconn *c, const agg *a, we_err *err)
{
    char count[16];
    snprintf(count, sizeof count, "%d", a->count);
    char *ctx = json_dumps(a->occ.context, JSON_COMPACT);
    const char *p[] = { a->occ.source,     a->occ.severity, a->occ.message, ctx,
                        a->occ.request_id, a->occ.job_id,   a->occ.fingerprint, count,
                        a->first_time,     a->occ.time };
    int rc = we_pg_exec(c, upsert_sql, 10, p, NULL, err);
    free(ctx);
    return rc;
}

/* Host records of a plugin that failed or was disabled after crashes
 * become system audit events. */
static void derive_audit(kn_ctx *kn, const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "msg"));
    const char *plugin = json_string_value(json_object_get(j, "plugin"));
    const char *to = json_string_value(json_object_get(j, "to"));
    if (msg && plugin && to && strcmp(msg, "plugin state changed") == 0 &&
        (strcmp(to, "failed") == 0 || strcmp(to, "disabled") == 0)) {
        char action[32];
        snprintf(action, sizeof action, "plugin.%s", to);
        kn_audit_system(kn, action, "plugin", plugin,
                        json_pack("{s:O?, s:s, s:O?}", "from", json_object_get(j, "from"), "to",
                                  to, "reason", json_object_get(j, "reason")));
    }
    json_decref(j);
}

/* Parses the batch and sums it by fingerprint into aggs (n of them). */
static int aggregate(kn_ctx *kn, err_item *list, agg *aggs)
{
    int n = 0;
    for (err_item *it = list; it; it = (err_item *)it->node.next) {
        if (!it->side_effects_done)
            derive_audit(kn, it->line, it->len);
        it->side_effects_done = true;
        kn_error_occ o;
        if (!kn_error_occ_parse(it->line, it->len, it->source, &o))
            continue;
        int i = 0;
        while (i < n && strcmp(aggs[i].occ.fingerprint, o.fingerprint) != 0)
            i++;
        if (i == n) {
            aggs[n].first_time = o.time ? we_strdup(o.time) : NULL;
            aggs[n++].count = 0;
        } else {
            kn_error_occ_fini(&aggs[i].occ);
        }
        aggs[i].occ = o;
        aggs[i].count++;
    }
    return n;
}

/* Upserts aggs[0..n) in one transaction. */
static int write_batch(kn_ctx *kn, const agg *aggs, int n, we_err *err)
{
    PGconn *c = we_pg_acquire(kn->db, 2000, err);
    if (!c)
        return WE_EUNAVAIL;
    int rc = we_pg_exec(c, "BEGIN", 0, NULL, NULL, err);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = upsert(c, &aggs[i], err);
    if (rc == 0)
        rc = we_pg_exec(c, "COMMIT", 0, NULL, NULL, err);
    else
        we_pg_exec(c, "ROLLBACK", 0, NULL, NULL, NULL);
    we_pg_release(kn->db, c);
    return rc;
}

static bool transient(int rc)
{
    return rc == WE_EUNAVAIL || rc == WE_ETIMEOUT || rc == WE_EIO;
}

/* After the database refused a batch: each group on its own, dropping the
 * ones it refuses (a transient failure still returns, for a retry). */
static int write_each(kn_ctx *kn, const agg *aggs, int n, we_err *err)
{
    PGconn *c = we_pg_acquire(kn->db, 2000, err);
    int rc = c ? 0 : WE_EUNAVAIL;
    for (int i = 0; c && i < n; i++) {
        rc = upsert(c, &aggs[i], err);
        if (rc != 0 && transient(rc))
            break;
        if (rc != 0)
            we_warn("error event refused by the database", WE_ERR(err->msg),
                    WE_S("message", aggs[i].occ.message));
        rc = 0;
    }
    we_pg_release(kn->db, c);
    return rc;
}

/* Writes one batch; false (the batch back in the queue) when the database
 * failed. */
static bool process(kn_ctx *kn, err_item *list)
{
    static agg aggs[BATCH_MAX]; /* the tracker thread's alone */
    we_err err = { "" };
    int n = aggregate(kn, list, aggs);
    int rc = n ? write_batch(kn, aggs, n, &err) : 0;
    if (rc != 0 && !transient(rc))
        rc = write_each(kn, aggs, n, &err);
    for (int i = 0; i < n; i++) {
        kn_error_occ_fini(&aggs[i].occ);
        free(aggs[i].first_time);
    }
    if (rc != 0) {
        we_warn("error events wait for the database", WE_ERR(err.msg), WE_I("events", n));
        requeue_front(list);
        return false;
    }
    free_list(list);
    return true;
}

/* ---- the tracker thread ------------------------------------------------------------- */

static void report_drops(void)
{
    unsigned long dropped = we_queue_take_dropped(&g_q);
    if (dropped)
        we_warn("error events dropped: the tracker's queue was full",
                WE_I("dropped", (long long)dropped));
}

static void *tracker_main(void *arg)
{
    kn_ctx *kn = arg;
    tl_tracker = true;
    int64_t retry_at = 0;
    for (;;) {
        int64_t now = we_now_mono_ms();
        bool backoff = retry_at > now;
        if (we_queue_wait(&g_q, backoff ? (int)(retry_at - now) : 1000, backoff))
            break;
        if (we_now_mono_ms() < retry_at)
            continue;
        retry_at = 0;
        err_item *batch;
        while (retry_at == 0 && (batch = take_batch()) != NULL)
            if (!process(kn, batch))
                retry_at = we_now_mono_ms() + 1000;
        report_drops();
    }
    return NULL;
}

void kn_errors_start(kn_ctx *kn)
{
    g_kn = kn;
    we_queue_open(&g_q);
    g_running = true;
    WE_ASSERT(pthread_create(&g_thread, NULL, tracker_main, kn) == 0);
    we_log_set_sink(sink);
}

void kn_errors_stop(void)
{
    if (!g_running)
        return;
    we_queue_stop(&g_q);
    we_log_set_sink(NULL);
    pthread_join(g_thread, NULL);
    tl_tracker = true; /* this thread now drains: its own warnings stay out */
    err_item *batch;
    while ((batch = take_batch()) != NULL && process(g_kn, batch))
        ;
    we_queue_close(&g_q);
    g_running = false;
    free_list((err_item *)we_queue_take(&g_q, 0));
    tl_tracker = false;
}
