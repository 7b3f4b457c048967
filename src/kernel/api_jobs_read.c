/*
 * The read side of /v1/jobs: one job, the filtered and keyset-paginated
 * list, and a job's tasks, log and outputs. PostgreSQL builds every JSON
 * document (json_build_object), so a job reads the same wherever it
 * appears and each request is one query; this file checks parameters, runs
 * the query and wraps the result. Times are RFC 3339 UTC with milliseconds.
 * Output download URLs come from the storage plugin that holds each file
 * (presigned when it can, else a file:// path on this machine).
 */
#include "api.h"
#include "api_jobs.h"
#include "we_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* A number from the probe document, or NULL. */
#define PROBE_NUM(path)                                                                            \
    "(SELECT v FROM jsonb_path_query_first(j.probe, '" path "') v"                                 \
    " WHERE jsonb_typeof(v) = 'number')"
#define COUNT_STATUS(s) "'" s "', count(*) FILTER (WHERE t.status = '" s "'), "

/* The job row j as the API shows it. */
#define JOB_JSON                                                                                   \
    "json_build_object('id', j.id, 'status', j.status, 'source_url', j.source_url,"               \
    " 'profiles', to_json(j.profiles), 'priority', j.priority, 'metadata', j.metadata,"           \
    " 'progress', round(j.progress::numeric, 2), 'eta_seconds', j.eta_seconds,"                  \
    " 'task_counts', (SELECT json_build_object(" COUNT_STATUS("pending")                          \
    COUNT_STATUS("dispatched") COUNT_STATUS("running") COUNT_STATUS("completed")                   \
    COUNT_STATUS("failed") COUNT_STATUS("cancelled") "'total', count(*))"                          \
    "   FROM tasks t WHERE t.job_id = j.id),"                                                      \
    " 'wait_reason', CASE WHEN j.status IN ('completed', 'failed', 'cancelled') THEN NULL"        \
    "   ELSE j.wait_reason END,"                                                                   \
    " 'error', CASE WHEN j.error_code IS NULL AND j.error_message IS NULL THEN NULL"              \
    "   ELSE json_build_object('code', j.error_code, 'message', j.error_message) END,"            \
    " 'retry_of', j.retry_of, 'created_at', " TS("j.created_at") ","                              \
    " 'started_at', " TS("j.started_at") ", 'finished_at', " TS("j.finished_at") ","              \
    " 'updated_at', " TS("j.updated_at") ","                                                       \
    " 'probe', CASE WHEN j.probe IS NULL THEN NULL ELSE json_build_object("                       \
    "   'duration_s', " PROBE_NUM("$.duration_s") ","                                              \
    "   'width', " PROBE_NUM("$.streams[*] ? (@.type == \"video\").width") ","                   \
    "   'height', " PROBE_NUM("$.streams[*] ? (@.type == \"video\").height") ","                 \
    "   'has_audio', jsonb_path_exists(j.probe, '$.streams[*] ? (@.type == \"audio\")')) END)"

static const char *const job_sql = "SELECT " JOB_JSON " FROM jobs j WHERE j.id = $1::uuid";

/* $1 statuses (comma-separated, validated), $2 ILIKE pattern, $3 profile,
 * $4/$5 created after/before, $6/$7 cursor, $8 limit. */
static const char *const list_sql =
    "WITH f AS MATERIALIZED (SELECT j.id, j.created_at FROM jobs j WHERE"
    "  ($1::text IS NULL OR j.status = ANY (string_to_array($1, ',')::job_status[]))"
    "  AND ($2::text IS NULL OR j.source_url ILIKE $2 ESCAPE '\\'"
    "       OR j.metadata::text ILIKE $2 ESCAPE '\\')"
    "  AND ($3::text IS NULL OR $3 = ANY (j.profiles))"
    "  AND ($4::timestamptz IS NULL OR j.created_at > $4::timestamptz)"
    "  AND ($5::timestamptz IS NULL OR j.created_at < $5::timestamptz)),"
    " page AS (SELECT f.id, f.created_at,"
    "  row_number() OVER (ORDER BY f.created_at DESC, f.id DESC) AS rn FROM f"
    "  WHERE $6::timestamptz IS NULL OR (f.created_at, f.id) < ($6::timestamptz, $7::uuid)"
    "  ORDER BY f.created_at DESC, f.id DESC LIMIT $8::int + 1)"
    " SELECT (SELECT count(*) FROM f),"
    "  (SELECT coalesce(json_agg(" JOB_JSON " ORDER BY p.rn), '[]')"
    "   FROM page p JOIN jobs j ON j.id = p.id WHERE p.rn <= $8::int),"
    "  (SELECT to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    "   FROM page p WHERE p.rn = $8::int AND EXISTS (SELECT 1 FROM page q WHERE q.rn > $8::int)),"
    "  (SELECT p.id FROM page p WHERE p.rn = $8::int)";

static const char *const tasks_sql =
    "SELECT (SELECT true FROM jobs WHERE id = $1::uuid),"
    " (SELECT coalesce(json_agg(json_build_object('id', t.id, 'type', t.type, 'status', t.status,"
    "   'profile', t.profile, 'seq', t.seq, 'start_sec', t.start_sec,"
    "   'duration_sec', t.duration_sec, 'capability', t.capability, 'worker_id', t.worker_id,"
    "   'attempt', t.attempt, 'max_attempts', t.max_attempts,"
    "   'progress', round(t.progress::numeric, 2), 'error', t.error,"
    "   'started_at', " TS("t.started_at") ", 'finished_at', " TS("t.finished_at") ")"
    "   ORDER BY t.type, t.seq, t.profile, t.created_at), '[]')"
    "  FROM tasks t WHERE t.job_id = $1::uuid)";

static const char *const logs_sql =
    "SELECT (SELECT true FROM jobs WHERE id = $1::uuid),"
    " (SELECT coalesce(json_agg(json_build_object('id', l.id, 'level', l.level,"
    "   'message', l.message, 'task_id', l.task_id, 'created_at', " TS("l.created_at") ")"
    "   ORDER BY l.id), '[]')"
    "  FROM (SELECT * FROM job_logs WHERE job_id = $1::uuid AND id > $2::bigint"
    "        ORDER BY id LIMIT $3::int) l)";

static const char *const outputs_sql =
    "SELECT (SELECT true FROM jobs WHERE id = $1::uuid),"
    " (SELECT coalesce(json_agg(json_build_object('profile', o.profile, 'kind', o.kind,"
    "   'storage_plugin', o.storage_plugin, 'key', o.storage_key, 'size_bytes', o.size_bytes,"
    "   'sha256', o.checksum_sha256, 'content_type', o.content_type)"
    "   ORDER BY o.profile, o.storage_key), '[]')"
    "  FROM job_outputs o WHERE o.job_id = $1::uuid)";

/* ---- helpers ------------------------------------------------------------- */

enum MHD_Result kn_job_not_found(kn_req *r)
{
    return kn_reply_error(r, 404, KN_JOB_NOT_FOUND, "no such job", NULL);
}

enum MHD_Result kn_job_invalid(kn_req *r, const char *field, const char *message)
{
    json_t *d = field && field[0] ? json_pack("{s:s}", "field", field) : NULL;
    return kn_reply_error(r, 422, KN_JOB_INVALID, message, d);
}

enum MHD_Result kn_job_bad_param(kn_req *r, const char *name, const char *message)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s: %s", name, message);
    return kn_reply_error(r, 400, KN_JOB_BAD_PARAM, msg, json_pack("{s:s}", "parameter", name));
}

/* Column col of the first row as JSON (new reference), NULL for none. */
static json_t *json_col(PGresult *res, int col)
{
    if (PQntuples(res) < 1 || PQgetisnull(res, 0, col))
        return NULL;
    return json_loads(PQgetvalue(res, 0, col), 0, NULL);
}

int kn_job_fetch(PGconn *c, const char *id, json_t **out, we_err *err)
{
    PGresult *res = NULL;
    int rc = we_pg_exec(c, job_sql, 1, &id, &res, err);
    if (rc != 0)
        return rc;
    *out = json_col(res, 0);
    PQclear(res);
    return 0;
}

/* ---- GET /v1/jobs/{id} ---------------------------------------------------- */

enum MHD_Result kn_api_jobs_get(kn_req *r)
{
    enum MHD_Result replied;
    PGresult *res = NULL;
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return kn_job_not_found(r);
    if (kn_api_query(r, job_sql, 1, &id, &res, &replied) != 0)
        return replied;
    json_t *job = json_col(res, 0);
    PQclear(res);
    return job ? kn_reply_json(r, 200, job) : kn_job_not_found(r);
}

/* ---- GET /v1/jobs ---------------------------------------------------------- */

typedef struct list_args {
    const char *status, *profile, *after, *before;
    char *pattern; /* heap: %q% with %, _ and \ escaped */
    char cur_ts[40], cur_id[37];
    bool has_cursor;
    long long limit;
} list_args;

/* A non-empty query value, or NULL. */
static const char *query_value(kn_req *r, const char *name)
{
    const char *v = kn_query(r, name);
    return v && v[0] ? v : NULL;
}

static bool statuses_valid(const char *s)
{
    static const char *const names[] = { "queued",    "processing", "stitching", "uploading",
                                         "completed", "failed",     "cancelled" };
    for (;;) {
        size_t n = strcspn(s, ","), i;
        for (i = 0; i < 7 && (strlen(names[i]) != n || strncmp(names[i], s, n) != 0); i++)
            ;
        if (i == 7)
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

static char *like_pattern(const char *q)
{
    char *out = malloc(strlen(q) * 2 + 3), *o = out;
    WE_ASSERT(out != NULL);
    *o++ = '%';
    for (; *q; q++) {
        if (*q == '%' || *q == '_' || *q == '\\')
            *o++ = '\\';
        *o++ = *q;
    }
    strcpy(o, "%");
    return out;
}

static const char *bad(const char **why, const char *name, const char *message)
{
    *why = message;
    return name;
}

/* The first bad parameter's name (and *why), or NULL when all are good. */
static const char *list_args_check(kn_req *r, list_args *a, const char *q, const char *cursor,
                                   const char **why)
{
    if (a->status && !statuses_valid(a->status))
        return bad(why, "status", "expected job statuses separated by commas (queued, "
                                  "processing, stitching, uploading, completed, failed, "
                                  "cancelled)");
    if (q && strlen(q) > 200)
        return bad(why, "q", "at most 200 characters");
    if (a->profile && strlen(a->profile) > 64)
        return bad(why, "profile", "at most 64 characters");
    if (a->after && !kn_job_time_valid(a->after))
        return bad(why, "created_after", "expected an RFC 3339 date-time");
    if (a->before && !kn_job_time_valid(a->before))
        return bad(why, "created_before", "expected an RFC 3339 date-time");
    if (!kn_job_query_int(r, "limit", 50, 1, 200, &a->limit))
        return bad(why, "limit", "expected an integer from 1 to 200");
    if (cursor && !(a->has_cursor = kn_job_cursor_decode(cursor, a->cur_ts, a->cur_id)))
        return bad(why, "cursor", "not a cursor returned by this API");
    return NULL;
}

/* Fills a from the query string; -1 after replying 400 naming the bad one. */
static int list_args_parse(kn_req *r, list_args *a, enum MHD_Result *replied)
{
    const char *q = query_value(r, "q"), *cursor = query_value(r, "cursor"), *why = NULL;
    memset(a, 0, sizeof *a);
    a->status = query_value(r, "status");
    a->profile = query_value(r, "profile");
    a->after = query_value(r, "created_after");
    a->before = query_value(r, "created_before");
    const char *name = list_args_check(r, a, q, cursor, &why);
    if (name) {
        *replied = kn_job_bad_param(r, name, why);
        return -1;
    }
    a->pattern = q ? like_pattern(q) : NULL;
    return 0;
}

static json_t *list_body(PGresult *res)
{
    json_t *items = json_col(res, 1);
    json_t *next = json_null();
    if (!PQgetisnull(res, 0, 2)) {
        char *c = kn_job_cursor_encode(PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
        next = json_string(c);
        free(c);
    }
    return json_pack("{s:o, s:o, s:I}", "items", items ? items : json_array(), "next_cursor",
                     next, "total", (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10));
}

enum MHD_Result kn_api_jobs_list(kn_req *r)
{
    enum MHD_Result replied;
    list_args a;
    PGresult *res = NULL;
    if (list_args_parse(r, &a, &replied) != 0)
        return replied;
    char limit[24];
    snprintf(limit, sizeof limit, "%lld", a.limit);
    const char *p[] = { a.status, a.pattern, a.profile, a.after, a.before,
                        a.has_cursor ? a.cur_ts : NULL, a.has_cursor ? a.cur_id : NULL, limit };
    int rc = kn_api_query(r, list_sql, 8, p, &res, &replied);
    free(a.pattern);
    if (rc != 0)
        return replied;
    json_t *body = list_body(res);
    PQclear(res);
    return kn_reply_json(r, 200, body);
}

/* ---- a job's tasks, log and outputs ------------------------------------------- */

/* Runs one of the (exists, items) queries for job {id}; -1 after replying
 * (404 included). *items is a new reference. */
static int job_items(kn_req *r, const char *sql, int n, const char *const *p, json_t **items,
                     enum MHD_Result *replied)
{
    PGresult *res = NULL;
    if (!kn_job_id_valid(p[0])) {
        *replied = kn_job_not_found(r);
        return -1;
    }
    if (kn_api_query(r, sql, n, p, &res, replied) != 0)
        return -1;
    bool exists = !PQgetisnull(res, 0, 0);
    *items = exists ? json_col(res, 1) : NULL;
    PQclear(res);
    if (!exists)
        *replied = kn_job_not_found(r);
    else if (!*items)
        *replied = kn_reply_internal(r, "job items query returned no JSON");
    return *items ? 0 : -1;
}

enum MHD_Result kn_api_jobs_tasks(kn_req *r)
{
    enum MHD_Result replied;
    json_t *items = NULL;
    const char *p[] = { kn_param(r, 0) };
    if (job_items(r, tasks_sql, 1, p, &items, &replied) != 0)
        return replied;
    return kn_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

enum MHD_Result kn_api_jobs_logs(kn_req *r)
{
    enum MHD_Result replied;
    json_t *items = NULL;
    long long after, limit;
    if (!kn_job_query_int(r, "after", 0, 0, INT64_MAX, &after))
        return kn_job_bad_param(r, "after", "expected a log id (a non-negative integer)");
    if (!kn_job_query_int(r, "limit", 100, 1, 1000, &limit))
        return kn_job_bad_param(r, "limit", "expected an integer from 1 to 1000");
    char a[24], l[24];
    snprintf(a, sizeof a, "%lld", after);
    snprintf(l, sizeof l, "%lld", limit);
    const char *p[] = { kn_param(r, 0), a, l };
    if (job_items(r, logs_sql, 3, p, &items, &replied) != 0)
        return replied;
    size_t n = json_array_size(items);
    json_t *last = n ? json_object_get(json_array_get(items, n - 1), "id") : NULL;
    json_t *next = last ? json_incref(last) : json_integer(after);
    return kn_reply_json(r, 200, json_pack("{s:o, s:o}", "items", items, "next_after", next));
}

/* Does plugin info (may be NULL) list method? */
static bool has_method(json_t *info, const char *method)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(info, "methods"), i, m) {
        if (json_is_string(m) && strcmp(json_string_value(m), method) == 0)
            return true;
    }
    return false;
}

/* The method that gives plugin id's download URLs, or NULL. */
static const char *url_method(kn_ctx *kn, const char *id)
{
    json_t *info = kn->plugins && id ? we_host_get(kn->plugins, id) : NULL;
    const char *m = has_method(info, "storage.presign_get")  ? "storage.presign_get"
                    : has_method(info, "storage.local_path") ? "storage.local_path"
                                                             : NULL;
    json_decref(info);
    return m;
}

/* A download URL for key from plugin id (new reference), JSON null when the
 * plugin is not here or cannot say. */
static json_t *output_url(kn_ctx *kn, const char *id, const char *key)
{
    const char *method = url_method(kn, id);
    if (!method)
        return json_null();
    bool presign = strcmp(method, "storage.presign_get") == 0;
    json_t *params = presign ? json_pack("{s:s, s:i}", "key", key, "expires_s", 3600)
                             : json_pack("{s:s}", "key", key);
    json_t *res = NULL, *url = NULL;
    we_err err;
    if (we_host_call(kn->plugins, id, method, params, 10000, NULL, NULL, NULL, &res, NULL,
                     &err) == 0) {
        const char *v = json_string_value(json_object_get(res, presign ? "url" : "path"));
        if (v)
            url = presign ? json_string(v) : json_sprintf("file://%s", v);
    } else {
        we_warn("no download URL for a job output", WE_S("plugin", id), WE_S("key", key),
                WE_ERR(err.msg));
    }
    json_decref(res);
    json_decref(params);
    return url ? url : json_null();
}

enum MHD_Result kn_api_jobs_outputs(kn_req *r)
{
    enum MHD_Result replied;
    json_t *items = NULL, *o;
    size_t i;
    const char *p[] = { kn_param(r, 0) };
    if (job_items(r, outputs_sql, 1, p, &items, &replied) != 0)
        return replied;
    json_array_foreach(items, i, o) {
        const char *plugin = json_string_value(json_object_get(o, "storage_plugin"));
        const char *key = json_string_value(json_object_get(o, "key"));
        json_object_set_new(o, "url", output_url(r->kn, plugin, key));
    }
    return kn_reply_json(r, 200, json_pack("{s:o}", "items", items));
}
