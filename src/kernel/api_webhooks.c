/*
 * /v1/webhooks (DESIGN §8, docs/webhooks.md): register, list, read, change
 * and delete webhook endpoints; list a webhook's deliveries (keyset
 * pagination, newest first, filter by status); redeliver one; send a
 * webhook.test ping. Admin only (routes.c).
 *
 * Validation names the field (422 WE-SYS-031): url is http(s), at most
 * 2048 printable characters, no credentials, and — unless
 * WEBHOOK_ALLOW_PRIVATE=true — its host must resolve to public addresses
 * only (src/lib/we_netpolicy.c; the sender checks again at every connect);
 * events is a non-empty list of known event names or "*"; secret, when
 * given, has 16 to 256 printable characters, else 32 random bytes in hex
 * are generated. The secret is write-only: only the creation response
 * shows it; every other response shows "********", and a PUT without a
 * secret or with "********" keeps the stored one. It is never logged.
 * The URL policy is kn_webhook_url_check (webhooks.c), which a job's
 * webhook_urls pass too; the webhooks those make (api_jobs.c) are listed
 * here with their job_id (null for the others).
 *
 * PostgreSQL builds the JSON documents; handlers run on MHD's threads and
 * share nothing but the pool and the NATS connection.
 */
#include "api.h"
#include "api_jobs.h" /* kn_job_id_valid and the keyset cursor */
#include "events.h"
#include "we_log.h"
#include "we_netpolicy.h"
#include "we_util.h"
#include "webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define EVENTS_MAX 32
#define SECRET_MIN 16
#define SECRET_MAX 256

/* clang-format off */
#define HOOK_JSON                                                                                  \
    "json_build_object('id', w.id, 'url', w.url, 'events', to_json(w.events),"                     \
    " 'active', w.active, 'secret', '" KN_WEBHOOK_SECRET_MASK "',"                                 \
    " 'failure_count', w.failure_count, 'last_delivery_at', " TS("w.last_delivery_at") ","         \
    " 'created_by', w.user_id, 'job_id', w.job_id, 'created_at', " TS("w.created_at") ","         \
    " 'updated_at', " TS("w.updated_at") ")"

#define DELIVERY_JSON                                                                              \
    "json_build_object('id', d.id, 'webhook_id', d.webhook_id, 'event_id', d.event_id,"            \
    " 'event', d.event, 'status', d.status, 'attempts', d.attempts,"                               \
    " 'last_status_code', d.last_status_code, 'last_error', d.last_error,"                         \
    " 'next_attempt_at', CASE WHEN d.status = 'pending' THEN " TS("d.next_attempt_at") " END,"     \
    " 'delivered_at', " TS("d.delivered_at") ", 'created_at', " TS("d.created_at") ","             \
    " 'updated_at', " TS("d.updated_at") ", 'payload', d.payload)"
/* clang-format on */

static const char *const list_sql =
    "SELECT coalesce(json_agg(" HOOK_JSON " ORDER BY w.created_at, w.id), '[]') FROM webhooks w";
static const char *const get_sql = "SELECT " HOOK_JSON " FROM webhooks w WHERE w.id = $1::uuid";
static const char *const insert_sql =
    "WITH w AS (INSERT INTO webhooks (user_id, url, secret, events, active)"
    " VALUES ($1::uuid, $2, $3, ARRAY(SELECT jsonb_array_elements_text($4::jsonb)),"
    " coalesce($5::boolean, true)) RETURNING *) SELECT " HOOK_JSON " FROM w";
static const char *const update_sql =
    "WITH w AS (UPDATE webhooks SET url = coalesce($2, url), secret = coalesce($3, secret),"
    " events = CASE WHEN $4::jsonb IS NULL THEN events"
    "  ELSE ARRAY(SELECT jsonb_array_elements_text($4::jsonb)) END,"
    " active = coalesce($5::boolean, active) WHERE id = $1::uuid RETURNING *)"
    " SELECT " HOOK_JSON " FROM w";
static const char *const delete_sql =
    "DELETE FROM webhooks WHERE id = $1::uuid RETURNING to_json(true)";

/* $1 webhook, $2 statuses (comma-separated, validated), $3/$4 cursor, $5 limit. */
static const char *const deliveries_sql =
    "WITH f AS MATERIALIZED (SELECT d.id, d.created_at FROM webhook_deliveries d"
    "  WHERE d.webhook_id = $1::uuid AND ($2::text IS NULL"
    "  OR d.status = ANY (string_to_array($2, ',')::webhook_delivery_status[]))),"
    " page AS (SELECT f.id, f.created_at,"
    "  row_number() OVER (ORDER BY f.created_at DESC, f.id DESC) AS rn FROM f"
    "  WHERE $3::timestamptz IS NULL OR (f.created_at, f.id) < ($3::timestamptz, $4::uuid)"
    "  ORDER BY f.created_at DESC, f.id DESC LIMIT $5::int + 1)"
    " SELECT (SELECT true FROM webhooks WHERE id = $1::uuid), (SELECT count(*) FROM f),"
    "  (SELECT coalesce(json_agg(" DELIVERY_JSON " ORDER BY p.rn), '[]')"
    "   FROM page p JOIN webhook_deliveries d ON d.id = p.id WHERE p.rn <= $5::int),"
    "  (SELECT to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    "   FROM page p WHERE p.rn = $5::int AND EXISTS (SELECT 1 FROM page q WHERE q.rn > $5::int)),"
    "  (SELECT p.id FROM page p WHERE p.rn = $5::int)";

/* Back to pending and due, unless a sender holds it right now. */
static const char *const redeliver_sql =
    "WITH cur AS (SELECT id, status FROM webhook_deliveries"
    "  WHERE id = $2::uuid AND webhook_id = $1::uuid FOR UPDATE),"
    " up AS (UPDATE webhook_deliveries d SET status = 'pending', delivered_at = NULL,"
    "  next_attempt_at = now() FROM cur WHERE d.id = cur.id AND cur.status <> 'delivering'"
    "  RETURNING d.*)"
    " SELECT cur.status::text, (SELECT " DELIVERY_JSON " FROM up d) FROM cur";
static const char *const delivery_sql =
    "SELECT " DELIVERY_JSON " FROM webhook_deliveries d WHERE d.id = $1::uuid";

/* ---- helpers ------------------------------------------------------------------------ */

static enum MHD_Result not_found(kn_req *r)
{
    return kn_reply_error(r, 404, KN_HOOK_NOT_FOUND, "no such webhook", NULL);
}

/* 422 for "<field>: <problem>"; details.field names the field. */
static enum MHD_Result invalid(kn_req *r, const char *msg)
{
    json_t *d = json_pack("{s:s%}", "field", msg, strcspn(msg, ":"));
    return kn_reply_error(r, 422, KN_HOOK_INVALID, msg, d);
}

static enum MHD_Result bad_param(kn_req *r, const char *name, const char *why)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s: %s", name, why);
    return kn_reply_error(r, 400, "WE-SYS-004", msg, json_pack("{s:s}", "parameter", name));
}

/* ---- request bodies ----------------------------------------------------------------- */

typedef struct hook_body {
    const char *url;    /* NULL: absent */
    json_t *events;     /* borrowed; NULL: absent */
    const char *secret; /* NULL: absent, or the mask (keep the stored one) */
    const char *active; /* "true", "false" or NULL */
} hook_body;

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static int check_url(kn_ctx *kn, json_t *v, we_err *err)
{
    we_err why;
    if (kn_webhook_url_check(kn, json_string_value(v), &why) != 0)
        return we_err_set(err, WE_EINVAL, "url: %s", why.msg);
    return 0;
}

static int check_events(json_t *v, we_err *err)
{
    size_t i, j;
    json_t *e;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > EVENTS_MAX)
        return we_err_set(err, WE_EINVAL,
                          "events: expected a list of 1 to %d event names (or "
                          "\"*\" for all)",
                          EVENTS_MAX);
    json_array_foreach(v, i, e)
    {
        const char *name = json_string_value(e);
        if (!name || (strcmp(name, "*") && !kn_webhook_event_known(name)))
            return we_err_set(err, WE_EINVAL,
                              "events[%zu]: unknown event; expected \"*\" or one "
                              "of job.created, job.started, job.completed, "
                              "job.failed, job.cancelled, worker.joined, "
                              "worker.lost, stream.started, stream.ended, "
                              "recording.ready",
                              i);
        for (j = 0; j < i; j++)
            if (json_equal(e, json_array_get(v, j)))
                return we_err_set(err, WE_EINVAL, "events[%zu]: listed twice", i);
    }
    return 0;
}

static int check_secret(json_t *v, bool create, we_err *err)
{
    const char *s = json_string_value(v);
    if (s && !create && !strcmp(s, KN_WEBHOOK_SECRET_MASK))
        return 0;
    if (!s || strlen(s) < SECRET_MIN || strlen(s) > SECRET_MAX || !printable(s))
        return we_err_set(err, WE_EINVAL,
                          "secret: expected %d to %d printable characters "
                          "without spaces",
                          SECRET_MIN, SECRET_MAX);
    return 0;
}

static int check_fields(json_t *body, bool create, we_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "url") && strcmp(key, "events") && strcmp(key, "secret") &&
            strcmp(key, "active"))
            return we_err_set(err, WE_EINVAL,
                              "%s: unknown field (expected url, events, secret, "
                              "active)",
                              key);
    }
    if (create && !json_object_get(body, "url"))
        return we_err_set(err, WE_EINVAL, "url: required");
    if (create && !json_object_get(body, "events"))
        return we_err_set(err, WE_EINVAL, "events: required");
    if (!create && json_object_size(body) == 0)
        return we_err_set(err, WE_EINVAL,
                          "body: expected at least one of url, events, secret, "
                          "active");
    return 0;
}

/* Validates a POST (create) or PUT body into b. */
static int parse_body(kn_ctx *kn, json_t *body, bool create, hook_body *b, we_err *err)
{
    json_t *url = json_object_get(body, "url"), *events = json_object_get(body, "events");
    json_t *secret = json_object_get(body, "secret"), *active = json_object_get(body, "active");
    memset(b, 0, sizeof *b);
    int rc = check_fields(body, create, err);
    if (rc == 0 && url)
        rc = check_url(kn, url, err);
    if (rc == 0 && events)
        rc = check_events(events, err);
    if (rc == 0 && secret)
        rc = check_secret(secret, create, err);
    if (rc == 0 && active && !json_is_boolean(active))
        rc = we_err_set(err, WE_EINVAL, "active: expected true or false");
    if (rc != 0)
        return rc;
    b->url = json_string_value(url);
    b->events = events;
    b->secret = json_string_value(secret);
    if (b->secret && !strcmp(b->secret, KN_WEBHOOK_SECRET_MASK))
        b->secret = NULL;
    b->active = active ? (json_is_true(active) ? "true" : "false") : NULL;
    return 0;
}

/* The body, validated; -1 after replying. */
static int read_body(kn_req *r, bool create, json_t **body, hook_body *b, enum MHD_Result *replied)
{
    we_err err;
    if (kn_body_object(r, body, replied) != 0)
        return -1;
    if (parse_body(r->kn, *body, create, b, &err) == 0)
        return 0;
    *replied = invalid(r, err.msg);
    json_decref(*body);
    *body = NULL;
    return -1;
}

/* The URL's host, for logs (the path and query may carry tokens). */
static void host_of(const char *url, char host[256])
{
    const char *rest = strstr(url, "://");
    if (!rest || we_net_url_host(rest + 3, host, NULL) != 0)
        snprintf(host, 256, "?");
}

/* ---- handlers ---------------------------------------------------------------------------- */

enum MHD_Result kn_api_webhooks_list(kn_req *r)
{
    return kn_api_reply_list(r, list_sql, 0, NULL, "webhook");
}

enum MHD_Result kn_api_webhooks_get(kn_req *r)
{
    we_err err;
    json_t *w = NULL;
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return not_found(r);
    int rc = kn_api_json(r, get_sql, 1, &id, &w, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    return w ? kn_reply_json(r, 200, w) : not_found(r);
}

enum MHD_Result kn_api_webhooks_create(kn_req *r)
{
    enum MHD_Result replied;
    we_err err;
    json_t *body = NULL, *w = NULL;
    hook_body b;
    char generated[2 * 32 + 1], host[256];
    if (read_body(r, true, &body, &b, &replied) != 0)
        return replied;
    if (!b.secret)
        we_random_hex(generated, 32);
    const char *secret = b.secret ? b.secret : generated;
    char *events = json_dumps(b.events, JSON_COMPACT);
    const char *p[] = { r->who.user_id[0] ? r->who.user_id : NULL, b.url, secret, events,
                        b.active };
    int rc = kn_api_json(r, insert_sql, 5, p, &w, &err);
    free(events);
    if (rc != 0 || !w) {
        replied = rc != 0 ? kn_reply_db_error(r, rc, err.msg)
                          : kn_reply_internal(r, "webhook insert returned no row");
    } else {
        const char *id = json_string_value(json_object_get(w, "id"));
        snprintf(r->resource_id, sizeof r->resource_id, "%s", id ? id : "");
        host_of(b.url, host);
        we_info("webhook created", WE_S("webhook_id", r->resource_id), WE_S("host", host),
                WE_S("request_id", r->request_id));
        json_object_set_new(w, "secret", json_string(secret)); /* shown this once */
        replied = kn_reply_json(r, 201, w);
    }
    memset(generated, 0, sizeof generated);
    json_decref(body);
    return replied;
}

enum MHD_Result kn_api_webhooks_update(kn_req *r)
{
    enum MHD_Result replied;
    we_err err;
    json_t *body = NULL, *w = NULL;
    hook_body b;
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return not_found(r);
    if (read_body(r, false, &body, &b, &replied) != 0)
        return replied;
    char *events = b.events ? json_dumps(b.events, JSON_COMPACT) : NULL;
    const char *p[] = { id, b.url, b.secret, events, b.active };
    int rc = kn_api_json(r, update_sql, 5, p, &w, &err);
    free(events);
    json_decref(body);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    if (!w)
        return not_found(r);
    we_info("webhook changed", WE_S("webhook_id", id), WE_B("secret_changed", b.secret != NULL),
            WE_S("request_id", r->request_id));
    return kn_reply_json(r, 200, w);
}

enum MHD_Result kn_api_webhooks_delete(kn_req *r)
{
    we_err err;
    json_t *gone = NULL;
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return not_found(r);
    int rc = kn_api_json(r, delete_sql, 1, &id, &gone, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    if (!gone)
        return not_found(r);
    json_decref(gone);
    we_info("webhook deleted", WE_S("webhook_id", id), WE_S("request_id", r->request_id));
    return kn_reply_text(r, 204, "application/json", "", 0);
}

/* ---- deliveries -------------------------------------------------------------------------------
 */

static bool statuses_valid(const char *s)
{
    static const char *const names[] = { "pending", "delivering", "succeeded", "failed", NULL };
    for (;;) {
        size_t n = strcspn(s, ","), i;
        for (i = 0; names[i] && (strlen(names[i]) != n || strncmp(names[i], s, n) != 0); i++)
            ;
        if (!names[i])
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

static json_t *deliveries_body(PGresult *res)
{
    json_t *items = json_loads(PQgetvalue(res, 0, 2), 0, NULL), *next = json_null();
    if (!PQgetisnull(res, 0, 3)) {
        char *c = kn_job_cursor_encode(PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
        next = json_string(c);
        free(c);
    }
    return json_pack("{s:o, s:o, s:I}", "items", items ? items : json_array(), "next_cursor", next,
                     "total", (json_int_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10));
}

enum MHD_Result kn_api_webhooks_deliveries(kn_req *r)
{
    we_err err;
    long long limit;
    char ts[40], cid[37], lim[24];
    const char *id = kn_param(r, 0), *status = kn_query(r, "status"),
               *cursor = kn_query(r, "cursor");
    status = status && status[0] ? status : NULL;
    cursor = cursor && cursor[0] ? cursor : NULL;
    if (!kn_job_id_valid(id))
        return not_found(r);
    if (status && !statuses_valid(status))
        return bad_param(r, "status",
                         "expected delivery statuses separated by commas (pending, "
                         "delivering, succeeded, failed)");
    if (!kn_job_query_int(r, "limit", 50, 1, 200, &limit))
        return bad_param(r, "limit", "expected an integer from 1 to 200");
    if (cursor && !kn_job_cursor_decode(cursor, ts, cid))
        return bad_param(r, "cursor", "not a cursor returned by this API");
    snprintf(lim, sizeof lim, "%lld", limit);
    const char *p[] = { id, status, cursor ? ts : NULL, cursor ? cid : NULL, lim };
    PGresult *res = NULL;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, deliveries_sql, 5, p, &res, &err) : WE_EUNAVAIL;
    we_pg_release(r->kn->db, c);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    enum MHD_Result replied =
        PQgetisnull(res, 0, 0) ? not_found(r) : kn_reply_json(r, 200, deliveries_body(res));
    PQclear(res);
    return replied;
}

enum MHD_Result kn_api_webhooks_redeliver(kn_req *r)
{
    we_err err;
    PGresult *res = NULL;
    const char *hook = kn_param(r, 0), *id = kn_param(r, 1);
    if (!kn_job_id_valid(hook) || !kn_job_id_valid(id))
        return kn_reply_error(r, 404, KN_DELIVERY_NOT_FOUND, "no such delivery of this webhook",
                              NULL);
    const char *p[] = { hook, id };
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, redeliver_sql, 2, p, &res, &err) : WE_EUNAVAIL;
    we_pg_release(r->kn->db, c);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    enum MHD_Result replied;
    if (PQntuples(res) == 0) {
        replied =
            kn_reply_error(r, 404, KN_DELIVERY_NOT_FOUND, "no such delivery of this webhook", NULL);
    } else if (PQgetisnull(res, 0, 1)) {
        replied = kn_reply_error(r, 409, KN_DELIVERY_BUSY,
                                 "the delivery is being sent right now; "
                                 "retry when it finished",
                                 json_pack("{s:s}", "status", "delivering"));
    } else {
        char msgid[80];
        snprintf(msgid, sizeof msgid, "%s.m%lld", id, (long long)we_now_ms());
        if (kn_webhooks_publish(r->kn, id, msgid, &err) != 0)
            we_warn("redelivery queued, not yet published (the sweeper retries)",
                    WE_S("delivery_id", id), WE_ERR(err.msg));
        we_info("webhook delivery re-queued", WE_S("delivery_id", id), WE_S("webhook_id", hook),
                WE_S("request_id", r->request_id));
        replied = kn_reply_json(r, 202, json_loads(PQgetvalue(res, 0, 1), 0, NULL));
    }
    PQclear(res);
    return replied;
}

enum MHD_Result kn_api_webhooks_test(kn_req *r)
{
    we_err err;
    char did[37];
    json_t *d = NULL;
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return not_found(r);
    json_t *ev = kn_event_new("webhook.test", "webhook", id, NULL,
                              json_pack("{s:s}", "message", "a test delivery from WebEncode"));
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? kn_webhooks_enqueue_to(r->kn, c, id, ev, did, &err) : WE_EUNAVAIL;
    const char *p[] = { did };
    we_pg_release(r->kn->db, c);
    json_decref(ev);
    if (rc == WE_ENOENT)
        return not_found(r);
    if (rc == 0)
        rc = kn_api_json(r, delivery_sql, 1, p, &d, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    return d ? kn_reply_json(r, 202, d) : kn_reply_internal(r, "test delivery vanished");
}
