/*
 * /v1/notifications: the caller's own notifications (notify.c writes them),
 * newest first with keyset pagination and ?unread=true, the unread count,
 * mark one or all read, delete one. Every statement is scoped to the
 * caller's user id, so another user's notification is simply not found
 * (404), and a caller without a user id (the bootstrap admin, dev tokens)
 * has none. Expired notifications are not shown.
 */
#include "api.h"
#include "api_jobs.h"
#include "api_ops.h"
#include "audit.h"

#include <stdio.h>
#include <string.h>

#define NOTIFICATION_JSON                                                                          \
    "json_build_object('id', n.id, 'title', n.title, 'message', n.message, 'link', n.link,"       \
    " 'level', n.level, 'read', n.read_at IS NOT NULL,"                                           \
    " 'read_at', " KN_AUDIT_TS("n.read_at") ", 'created_at', " KN_AUDIT_TS("n.created_at") ")"
#define VISIBLE "(n.expires_at IS NULL OR n.expires_at > now())"

static const char *const list_sql =
    "SELECT " NOTIFICATION_JSON "::text,"
    " to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), n.id,"
    " (SELECT count(*) FROM notifications n WHERE n.user_id = $1::uuid AND n.read_at IS NULL"
    "  AND " VISIBLE ")"
    " FROM notifications n WHERE n.user_id = $1::uuid AND " VISIBLE
    " AND ($2::boolean IS NOT TRUE OR n.read_at IS NULL)"
    " AND ($3::timestamptz IS NULL OR (n.created_at, n.id) < ($3::timestamptz, $4::uuid))"
    " ORDER BY n.created_at DESC, n.id DESC LIMIT $5::int";

static const char *const unread_sql =
    "SELECT count(*) FROM notifications n WHERE n.user_id = $1::uuid AND n.read_at IS NULL"
    " AND " VISIBLE;

static const char *const read_sql =
    "WITH n AS (UPDATE notifications n SET read_at = coalesce(read_at, now())"
    " WHERE n.id = $1::uuid AND n.user_id = $2::uuid AND " VISIBLE " RETURNING n.*)"
    " SELECT " NOTIFICATION_JSON "::text FROM n";

static const char *const read_all_sql =
    "UPDATE notifications n SET read_at = now() WHERE n.user_id = $1::uuid"
    " AND n.read_at IS NULL AND " VISIBLE;

static const char *const delete_sql =
    "DELETE FROM notifications n WHERE n.id = $1::uuid AND n.user_id = $2::uuid RETURNING n.id";

/* The caller's user id, or NULL: such a caller owns no notification. */
static const char *caller(kn_req *r)
{
    return kn_job_id_valid(r->who.user_id) ? r->who.user_id : NULL;
}

/* The unread count when the page has no row to carry it. */
static int unread_count(kn_req *r, PGresult *page, char *out, size_t n, enum MHD_Result *replied)
{
    if (PQntuples(page) > 0) {
        snprintf(out, n, "%s", PQgetvalue(page, 0, 3));
        return 0;
    }
    snprintf(out, n, "0");
    const char *user = caller(r);
    PGresult *res = NULL;
    if (!user)
        return 0;
    if (kn_api_query(r, unread_sql, 1, &user, &res, replied) != 0)
        return -1;
    snprintf(out, n, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

enum MHD_Result kn_api_notifications_list(kn_req *r)
{
    const char *unread = kn_query(r, "unread"), *cursor = kn_query(r, "cursor");
    char ts[40] = "", id[37] = "", lim[24], count[24], extra[48];
    long long limit;
    if (unread && strcmp(unread, "true") != 0 && strcmp(unread, "false") != 0)
        return kn_ops_bad_param(r, "unread", "expected true or false");
    if (!kn_job_query_int(r, "limit", 50, 1, 200, &limit))
        return kn_ops_bad_param(r, "limit", "expected an integer from 1 to 200");
    if (cursor && !kn_job_cursor_decode(cursor, ts, id))
        return kn_ops_bad_param(r, "cursor", "not a cursor returned by this API");
    snprintf(lim, sizeof lim, "%lld", limit + 1);
    const char *p[] = { caller(r), unread, cursor ? ts : NULL, cursor ? id : NULL, lim };
    enum MHD_Result replied;
    PGresult *res = NULL;
    if (kn_api_query(r, list_sql, 5, p, &res, &replied) != 0)
        return replied;
    if (unread_count(r, res, count, sizeof count, &replied) == 0) {
        snprintf(extra, sizeof extra, ",\"unread_count\":%s", count);
        replied = kn_ops_reply_page(r, res, limit, 1, 2, extra);
    }
    PQclear(res);
    return replied;
}

/* Runs sql ($1 notification id, $2 the caller) for the caller's own
 * notification {id}; *res NULL (after replying 404) when it is not theirs. */
static int own(kn_req *r, const char *sql, PGresult **res, enum MHD_Result *replied)
{
    const char *id = kn_param(r, 0), *user = caller(r);
    *res = NULL;
    if (!kn_job_id_valid(id) || !user) {
        *replied = kn_ops_not_found(r, "notification");
        return -1;
    }
    const char *p[] = { id, user };
    if (kn_api_query(r, sql, 2, p, res, replied) != 0)
        return -1;
    if (PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        *replied = kn_ops_not_found(r, "notification");
        return -1;
    }
    return 0;
}

enum MHD_Result kn_api_notifications_read(kn_req *r)
{
    enum MHD_Result replied;
    PGresult *res = NULL;
    if (own(r, read_sql, &res, &replied) != 0)
        return replied;
    replied = kn_reply_text(r, 200, "application/json", PQgetvalue(res, 0, 0),
                            strlen(PQgetvalue(res, 0, 0)));
    PQclear(res);
    return replied;
}

enum MHD_Result kn_api_notifications_delete(kn_req *r)
{
    enum MHD_Result replied;
    PGresult *res = NULL;
    if (own(r, delete_sql, &res, &replied) != 0)
        return replied;
    PQclear(res);
    return kn_reply_text(r, 204, "application/json", "", 0);
}

enum MHD_Result kn_api_notifications_read_all(kn_req *r)
{
    const char *user = caller(r);
    char body[48] = "{\"updated\":0}";
    if (user) {
        enum MHD_Result replied;
        PGresult *res = NULL;
        if (kn_api_query(r, read_all_sql, 1, &user, &res, &replied) != 0)
            return replied;
        snprintf(body, sizeof body, "{\"updated\":%s}", PQcmdTuples(res));
        PQclear(res);
    }
    return kn_reply_text(r, 200, "application/json", body, strlen(body));
}
