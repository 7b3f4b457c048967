/*
 * GET /v1/audit: the audit log, newest first, filtered by user (id or actor
 * name), action (exact, or a prefix ending in "." such as "job."),
 * resource, result and time, with keyset pagination (the cursor is the last
 * row's created_at and id). `?format=csv` or `Accept: text/csv` exports the
 * same rows as CSV (RFC 4180, CRLF, a header row, formula-looking cells
 * neutralised with a leading ') as an attachment; its next page's cursor is
 * in the X-Next-Cursor header. Admin only (routes.c).
 *
 * PostgreSQL renders each record (KN_AUDIT_JSON, the document also
 * published on audit.>); this file checks parameters, runs one query and
 * concatenates. Handlers run on MHD's threads and share nothing but the
 * pool.
 */
#include "api.h"
#include "api_jobs.h"
#include "api_ops.h"
#include "audit.h"
#include "we_log.h"
#include "we_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JSON_LIMIT_MAX 500
#define CSV_LIMIT_MAX 10000

static const char *const list_sql =
    "SELECT " KN_AUDIT_JSON("a") "::text,"
    " to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), a.id"
    " FROM audit_log a WHERE ($1::uuid IS NULL OR a.user_id = $1::uuid)"
    " AND ($2::text IS NULL OR a.actor = $2)"
    " AND ($3::text IS NULL OR a.action = $3)"
    " AND ($4::text IS NULL OR left(a.action, length($4)) = $4)"
    " AND ($5::text IS NULL OR a.resource_type = $5)"
    " AND ($6::text IS NULL OR a.resource_id = $6)"
    " AND ($7::text IS NULL OR a.result = $7)"
    " AND ($8::timestamptz IS NULL OR a.created_at >= $8::timestamptz)"
    " AND ($9::timestamptz IS NULL OR a.created_at < $9::timestamptz)"
    " AND ($10::timestamptz IS NULL OR (a.created_at, a.id) < ($10::timestamptz, $11::uuid))"
    " ORDER BY a.created_at DESC, a.id DESC LIMIT $12::int";

/* The CSV columns, in order: keys of the JSON document. */
static const char *const csv_columns[] = { "id",          "created_at",    "actor",
                                           "user_id",     "action",        "resource_type",
                                           "resource_id", "result",        "client_ip",
                                           "user_agent",  "request_id",    "details" };
#define NCOLS (sizeof csv_columns / sizeof csv_columns[0])

void kn_csv_cell(we_buf *b, const char *s)
{
    if (!s || !s[0])
        return;
    bool formula = strchr("=+-@\t\r", s[0]) != NULL;
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        we_buf_addc(b, '"');
    if (formula)
        we_buf_addc(b, '\'');
    for (; *s; s++) {
        if (*s == '"')
            we_buf_addc(b, '"');
        we_buf_addc(b, *s);
    }
    if (quote)
        we_buf_addc(b, '"');
}

/* ---- parameters -------------------------------------------------------------- */

typedef struct audit_args {
    const char *p[12]; /* the query's parameters */
    char action_prefix[100];
    char limit_s[24];
    char cur_ts[40], cur_id[37];
    long long limit;
    bool csv;
} audit_args;

static const char *value(kn_req *r, const char *name)
{
    const char *v = kn_query(r, name);
    return v && v[0] ? v : NULL;
}

/* [a-z0-9_.-]{1,96}, optionally ending in ".*". */
static bool action_valid(const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && strcmp(s + n - 2, ".*") == 0)
        n--;
    return n > 0 && n <= 96 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static const char *bad(const char **why, const char *name, const char *message)
{
    *why = message;
    return name;
}

static bool wants_csv(kn_req *r, const char *format, bool *bad)
{
    *bad = format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0;
    if (format)
        return strcmp(format, "csv") == 0;
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    return accept && strcasestr(accept, "text/csv") != NULL;
}

/* Splits the action filter: exact, or a prefix ("job." / "job.*"). */
static void set_action(audit_args *a, const char *action)
{
    size_t n = strlen(action);
    if (n >= 2 && strcmp(action + n - 2, ".*") == 0)
        n--;
    if (action[n - 1] == '.') {
        snprintf(a->action_prefix, sizeof a->action_prefix, "%.*s", (int)n, action);
        a->p[3] = a->action_prefix;
    } else {
        a->p[2] = action;
    }
}

/* The first bad parameter's name, with *why; NULL when all are good. */
static const char *check(kn_req *r, audit_args *a, const char **why)
{
    const char *user = value(r, "user"), *action = value(r, "action");
    const char *result = value(r, "result"), *cursor = value(r, "cursor");
    bool bad_format;
    a->csv = wants_csv(r, value(r, "format"), &bad_format);
    long long max = a->csv ? CSV_LIMIT_MAX : JSON_LIMIT_MAX;
    if (bad_format)
        return bad(why, "format", "expected json or csv");
    if (user && strlen(user) > 128)
        return bad(why, "user", "at most 128 characters");
    a->p[kn_job_id_valid(user) ? 0 : 1] = user;
    if (action && !action_valid(action))
        return bad(why, "action", "expected an action (job.create) or a prefix (job. or job.*)");
    if (action)
        set_action(a, action);
    if ((a->p[4] = value(r, "resource_type")) && strlen(a->p[4]) > 64)
        return bad(why, "resource_type", "at most 64 characters");
    if ((a->p[5] = value(r, "resource_id")) && strlen(a->p[5]) > 80)
        return bad(why, "resource_id", "at most 80 characters");
    if (result && strcmp(result, "success") && strcmp(result, "failure") && strcmp(result, "denied"))
        return bad(why, "result", "expected success, failure or denied");
    a->p[6] = result;
    if ((a->p[7] = value(r, "since")) && !kn_job_time_valid(a->p[7]))
        return bad(why, "since", "expected an RFC 3339 date-time");
    if ((a->p[8] = value(r, "until")) && !kn_job_time_valid(a->p[8]))
        return bad(why, "until", "expected an RFC 3339 date-time");
    if (!kn_job_query_int(r, "limit", a->csv ? 1000 : 100, 1, max, &a->limit))
        return bad(why, "limit", a->csv ? "expected an integer from 1 to 10000 (csv)"
                                         : "expected an integer from 1 to 500");
    if (cursor && !kn_job_cursor_decode(cursor, a->cur_ts, a->cur_id))
        return bad(why, "cursor", "not a cursor returned by this API");
    if (cursor) {
        a->p[9] = a->cur_ts;
        a->p[10] = a->cur_id;
    }
    snprintf(a->limit_s, sizeof a->limit_s, "%lld", a->limit + 1);
    a->p[11] = a->limit_s;
    return NULL;
}

/* ---- replies ------------------------------------------------------------------- */

/* One CSV line from a record document. */
static void csv_line(we_buf *b, const char *doc)
{
    json_t *j = json_loads(doc, 0, NULL);
    for (size_t c = 0; c < NCOLS; c++) {
        json_t *v = json_object_get(j, csv_columns[c]);
        char *text = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : NULL;
        if (c)
            we_buf_addc(b, ',');
        kn_csv_cell(b, text ? text : json_string_value(v));
        free(text);
    }
    we_buf_adds(b, "\r\n");
    json_decref(j);
}

/* Queues the CSV body with the headers kn_reply_text cannot add
 * (Content-Disposition, X-Next-Cursor). */
static enum MHD_Result queue_csv(kn_req *r, we_buf *b, const char *next)
{
    char disp[96], ts[40];
    we_time_rfc3339(ts, sizeof ts, we_now_ms());
    ts[19] = '\0';
    for (char *p = ts; *p; p++)
        *p = *p == ':' ? '-' : *p;
    snprintf(disp, sizeof disp, "attachment; filename=\"audit-%sZ.csv\"", ts);
    size_t len = b->len;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, we_buf_steal(b), MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
    if (next)
        MHD_add_response_header(resp, "X-Next-Cursor", next);
    return kn_reply_response(r, 200, resp, "text/csv; charset=utf-8");
}

static enum MHD_Result reply_csv(kn_req *r, PGresult *res, int rows, const char *next)
{
    we_buf b;
    we_buf_init(&b);
    for (size_t c = 0; c < NCOLS; c++)
        we_buf_printf(&b, "%s%s", c ? "," : "", csv_columns[c]);
    we_buf_adds(&b, "\r\n");
    for (int i = 0; i < rows; i++)
        csv_line(&b, PQgetvalue(res, i, 0));
    enum MHD_Result ret = queue_csv(r, &b, next);
    we_buf_fini(&b);
    return ret;
}

enum MHD_Result kn_api_audit_list(kn_req *r)
{
    audit_args a;
    memset(&a, 0, sizeof a);
    const char *why = NULL, *name = check(r, &a, &why);
    if (name)
        return kn_ops_bad_param(r, name, why);
    enum MHD_Result replied;
    PGresult *res = NULL;
    if (kn_api_query(r, list_sql, 12, a.p, &res, &replied) != 0)
        return replied;
    if (a.csv) {
        int rows = PQntuples(res) > a.limit ? (int)a.limit : PQntuples(res);
        char *next = kn_ops_next_cursor(res, a.limit, 1, 2);
        replied = reply_csv(r, res, rows, next);
        free(next);
    } else {
        replied = kn_ops_reply_page(r, res, a.limit, 1, 2, NULL);
    }
    PQclear(res);
    return replied;
}
