/*
 * Helpers of the operations APIs (audit, errors, notifications): parameter
 * and not-found replies, one pooled query, and the page envelope
 * {"items":[…],"next_cursor":…} built by concatenating the JSON documents
 * PostgreSQL rendered. The cursor is the jobs API's (api_jobs_query.c):
 * base64url of "<timestamp with microseconds>|<uuid>". Any thread.
 */
#include "api_ops.h"
#include "api_jobs.h"

#include <stdio.h>
#include <stdlib.h>

enum MHD_Result kn_ops_bad_param(kn_req *r, const char *name, const char *why)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s: %s", name, why);
    return kn_reply_error(r, 400, "WE-SYS-004", msg, json_pack("{s:s}", "parameter", name));
}

enum MHD_Result kn_ops_not_found(kn_req *r, const char *what)
{
    char msg[96];
    snprintf(msg, sizeof msg, "no such %s", what);
    return kn_reply_error(r, 404, "WE-SYS-020", msg, NULL);
}

char *kn_ops_next_cursor(PGresult *res, long long limit, int ts_col, int id_col)
{
    if (PQntuples(res) <= limit)
        return NULL;
    int last = (int)limit - 1;
    return kn_job_cursor_encode(PQgetvalue(res, last, ts_col), PQgetvalue(res, last, id_col));
}

enum MHD_Result kn_ops_reply_page(kn_req *r, PGresult *res, long long limit, int ts_col,
                                  int id_col, const char *extra)
{
    int rows = PQntuples(res) > limit ? (int)limit : PQntuples(res);
    char *next = kn_ops_next_cursor(res, limit, ts_col, id_col);
    we_buf b;
    we_buf_init(&b);
    we_buf_adds(&b, "{\"items\":[");
    for (int i = 0; i < rows; i++) {
        if (i)
            we_buf_addc(&b, ',');
        we_buf_adds(&b, PQgetvalue(res, i, 0));
    }
    we_buf_adds(&b, "],\"next_cursor\":");
    if (next)
        we_buf_add_json_str(&b, next);
    else
        we_buf_adds(&b, "null");
    if (extra)
        we_buf_adds(&b, extra);
    we_buf_addc(&b, '}');
    enum MHD_Result ret = kn_reply_text(r, 200, "application/json", b.data, b.len);
    we_buf_fini(&b);
    free(next);
    return ret;
}
