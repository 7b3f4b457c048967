/*
 * The two ways API handlers read PostgreSQL: a result set, or one JSON
 * document that PostgreSQL built (json_agg / row_to_json). Each takes a
 * pooled connection for the one statement and gives it back.
 */
#include "api.h"

#include <stdio.h>

int kn_api_query(kn_req *r, const char *sql, int n, const char *const *p, PGresult **out,
                 enum MHD_Result *replied)
{
    we_err err;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    if (!c) {
        *replied = kn_reply_db_error(r, WE_EUNAVAIL, err.msg);
        return -1;
    }
    int rc = we_pg_exec(c, sql, n, p, out, &err);
    we_pg_release(r->kn->db, c);
    if (rc != 0)
        *replied = kn_reply_db_error(r, rc, err.msg);
    return rc == 0 ? 0 : -1;
}

int kn_api_json(kn_req *r, const char *sql, int n, const char *const *p, json_t **out,
                we_err *err)
{
    *out = NULL;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, err);
    if (!c)
        return WE_EUNAVAIL;
    PGresult *res = NULL;
    int rc = we_pg_exec(c, sql, n, p, &res, err);
    we_pg_release(r->kn->db, c);
    if (rc == 0 && PQntuples(res) >= 1 && !PQgetisnull(res, 0, 0))
        *out = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
    PQclear(res);
    return rc;
}

enum MHD_Result kn_api_reply_list(kn_req *r, const char *sql, int n, const char *const *p,
                                  const char *what)
{
    we_err err;
    json_t *items = NULL;
    int rc = kn_api_json(r, sql, n, p, &items, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    if (!json_is_array(items)) {
        json_decref(items);
        char cause[96];
        snprintf(cause, sizeof cause, "%s list query returned no JSON array", what);
        return kn_reply_internal(r, cause);
    }
    return kn_reply_json(
        r, 200,
        json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items));
}
