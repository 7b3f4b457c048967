/*
 * /v1/errors: the tracked errors (errors.c writes them), most recently seen
 * first, filtered by severity, source, resolved and since (last seen at or
 * after), keyset-paginated on (last_seen, id); one by id; and resolve, which
 * closes the group — the next occurrence of the same fingerprint opens a
 * new one. Admin only (routes.c). PostgreSQL renders the documents; a
 * handler checks its parameters and runs one statement.
 */
#include "api.h"
#include "api_jobs.h"
#include "api_ops.h"
#include "audit.h"

#include <stdio.h>
#include <string.h>

#define ERROR_JSON                                                                                 \
    "json_build_object('id', e.id, 'source', e.source, 'severity', e.severity,"                  \
    " 'message', e.message, 'context', e.context, 'request_id', e.request_id,"                    \
    " 'job_id', e.job_id, 'fingerprint', e.fingerprint, 'count', e.count,"                        \
    " 'resolved', e.resolved, 'first_seen', " KN_AUDIT_TS("e.first_seen") ","                    \
    " 'last_seen', " KN_AUDIT_TS("e.last_seen") ")"

static const char *const list_sql =
    "SELECT " ERROR_JSON "::text,"
    " to_char(e.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), e.id"
    " FROM error_events e WHERE"
    " ($1::text IS NULL OR e.severity = ANY (string_to_array($1, ',')::error_severity[]))"
    " AND ($2::text IS NULL OR e.source = $2)"
    " AND ($3::boolean IS NULL OR e.resolved = $3::boolean)"
    " AND ($4::timestamptz IS NULL OR e.last_seen >= $4::timestamptz)"
    " AND ($5::timestamptz IS NULL OR (e.last_seen, e.id) < ($5::timestamptz, $6::uuid))"
    " ORDER BY e.last_seen DESC, e.id DESC LIMIT $7::int";

static const char *const get_sql = "SELECT " ERROR_JSON "::text FROM error_events e"
                                   " WHERE e.id = $1::uuid";

static const char *const resolve_sql =
    "WITH e AS (UPDATE error_events SET resolved = true WHERE id = $1::uuid RETURNING *)"
    " SELECT " ERROR_JSON "::text FROM e";

static bool severities_valid(const char *s)
{
    static const char *const names[] = { "warning", "error", "critical", "fatal" };
    for (;;) {
        size_t n = strcspn(s, ","), i;
        for (i = 0; i < 4 && (strlen(names[i]) != n || strncmp(names[i], s, n) != 0); i++)
            ;
        if (i == 4)
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

static const char *value(kn_req *r, const char *name)
{
    const char *v = kn_query(r, name);
    return v && v[0] ? v : NULL;
}

enum MHD_Result kn_api_errors_list(kn_req *r)
{
    const char *sev = value(r, "severity"), *source = value(r, "source");
    const char *resolved = value(r, "resolved"), *since = value(r, "since");
    const char *cursor = value(r, "cursor");
    char ts[40] = "", id[37] = "", lim[24];
    long long limit;
    if (sev && !severities_valid(sev))
        return kn_ops_bad_param(r, "severity", "expected warning, error, critical or fatal, "
                                               "separated by commas");
    if (source && strlen(source) > 128)
        return kn_ops_bad_param(r, "source", "at most 128 characters");
    if (resolved && strcmp(resolved, "true") != 0 && strcmp(resolved, "false") != 0)
        return kn_ops_bad_param(r, "resolved", "expected true or false");
    if (since && !kn_job_time_valid(since))
        return kn_ops_bad_param(r, "since", "expected an RFC 3339 date-time");
    if (!kn_job_query_int(r, "limit", 50, 1, 200, &limit))
        return kn_ops_bad_param(r, "limit", "expected an integer from 1 to 200");
    if (cursor && !kn_job_cursor_decode(cursor, ts, id))
        return kn_ops_bad_param(r, "cursor", "not a cursor returned by this API");
    snprintf(lim, sizeof lim, "%lld", limit + 1);
    const char *p[] = { sev, source, resolved, since, cursor ? ts : NULL, cursor ? id : NULL, lim };
    enum MHD_Result replied;
    PGresult *res = NULL;
    if (kn_api_query(r, list_sql, 7, p, &res, &replied) != 0)
        return replied;
    replied = kn_ops_reply_page(r, res, limit, 1, 2, NULL);
    PQclear(res);
    return replied;
}

/* Runs sql for error {id} and replies with its one row, or 404. */
static enum MHD_Result one(kn_req *r, const char *sql)
{
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return kn_ops_not_found(r, "error");
    enum MHD_Result replied;
    PGresult *res = NULL;
    if (kn_api_query(r, sql, 1, &id, &res, &replied) != 0)
        return replied;
    replied = PQntuples(res) == 1
                  ? kn_reply_text(r, 200, "application/json", PQgetvalue(res, 0, 0),
                                  strlen(PQgetvalue(res, 0, 0)))
                  : kn_ops_not_found(r, "error");
    PQclear(res);
    return replied;
}

enum MHD_Result kn_api_errors_get(kn_req *r)
{
    return one(r, get_sql);
}

enum MHD_Result kn_api_errors_resolve(kn_req *r)
{
    return one(r, resolve_sql);
}
