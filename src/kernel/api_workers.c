/*
 * GET /v1/workers and GET /v1/workers/{id}. Health is derived when read:
 * a worker is healthy while its last heartbeat is younger than three of its
 * own heartbeat intervals and it has not deregistered, so every kernel
 * computes the same answer from the database alone. PostgreSQL builds the
 * JSON documents; this file only wraps them. Drain and undrain go to the
 * worker over workers.control.<id> (request/reply) and its answering
 * heartbeat is applied before the response.
 */
#include "api.h"
#include "we_log.h"
#include "workers.h"

#include <string.h>

/* Runs sql, whose one row and column is a JSON document, into *out (NULL
 * when there is no row). Returns 0, or -1 after queuing an error reply whose
 * MHD result is in *replied. */
static int query_json(kn_req *r, const char *sql, int n, const char *const *p, json_t **out,
                      enum MHD_Result *replied)
{
    we_err err;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    if (!c) {
        *replied = kn_reply_db_error(r, WE_EUNAVAIL, err.msg);
        return -1;
    }
    PGresult *res = NULL;
    int rc = we_pg_exec(c, sql, n, p, &res, &err);
    we_pg_release(r->kn->db, c);
    if (rc != 0) {
        *replied = kn_reply_db_error(r, rc, err.msg);
        return -1;
    }
    *out = NULL;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        *out = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    return 0;
}

enum MHD_Result kn_api_workers_list(kn_req *r)
{
    enum MHD_Result replied;
    json_t *items = NULL;
    const char *sql = "SELECT coalesce(json_agg(w ORDER BY w.id), '[]') FROM (" KN_WORKER_SELECT
                      ") w";
    if (query_json(r, sql, 0, NULL, &items, &replied) != 0)
        return replied;
    if (!items)
        return kn_reply_internal(r, "worker list query returned no JSON");
    size_t healthy = 0, i;
    json_t *w;
    json_array_foreach(items, i, w) healthy += json_is_true(json_object_get(w, "healthy"));
    return kn_reply_json(r, 200,
                         json_pack("{s:o, s:I, s:I}", "items", items, "total",
                                   (json_int_t)json_array_size(items), "healthy",
                                   (json_int_t)healthy));
}

enum MHD_Result kn_api_workers_get(kn_req *r)
{
    enum MHD_Result replied;
    const char *id = kn_param(r, 0);
    if (!kn_worker_id_valid(id))
        return kn_reply_error(r, 404, "WE-WRK-001", "no such worker", NULL);
    json_t *w = NULL;
    const char *sql = "SELECT row_to_json(w) FROM (" KN_WORKER_SELECT " WHERE id = $1) w";
    if (query_json(r, sql, 1, &id, &w, &replied) != 0)
        return replied;
    if (!w)
        return kn_reply_error(r, 404, "WE-WRK-001", "no such worker", NULL);
    return kn_reply_json(r, 200, w);
}

/* ---- drain / undrain ------------------------------------------------------ */

/* Sends {"action": action} to workers.control.<id> and waits for the
 * worker's heartbeat reply, which is applied at once so the answer (and
 * every kernel) already shows the new state. */
static int control_worker(kn_req *r, const char *id, const char *action, we_err *err)
{
    we_nats *n = kn_nats_get(r->kn);
    if (!n || !we_nats_is_connected(n))
        return we_err_set(err, WE_EUNAVAIL, "NATS is not connected");
    char subject[128], body[64];
    snprintf(subject, sizeof subject, "workers.control.%s", id);
    snprintf(body, sizeof body, "{\"action\":\"%s\"}", action);
    natsMsg *reply = NULL;
    if (natsConnection_RequestString(&reply, n->nc, subject, body, 3000) != NATS_OK)
        return we_err_set(err, WE_ESTATE, "worker %s did not answer (not connected?)", id);
    json_t *root = NULL;
    kn_heartbeat hb;
    int rc = kn_heartbeat_parse(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), id,
                                &root, &hb, err);
    if (rc == 0)
        rc = kn_heartbeat_apply(r->kn, &hb, root, err);
    json_decref(root);
    natsMsg_Destroy(reply);
    return rc;
}

static enum MHD_Result drain_action(kn_req *r, const char *action)
{
    enum MHD_Result replied;
    const char *id = kn_param(r, 0);
    json_t *w = NULL;
    const char *sql = "SELECT row_to_json(w) FROM (" KN_WORKER_SELECT " WHERE id = $1) w";
    if (!kn_worker_id_valid(id))
        return kn_reply_error(r, 404, "WE-WRK-001", "no such worker", NULL);
    if (query_json(r, sql, 1, &id, &w, &replied) != 0)
        return replied;
    if (!w)
        return kn_reply_error(r, 404, "WE-WRK-001", "no such worker", NULL);
    json_decref(w);
    we_err err;
    int rc = control_worker(r, id, action, &err);
    if (rc == WE_ESTATE)
        return kn_reply_error(r, 409, "WE-WRK-002", err.msg, NULL);
    if (rc != 0)
        return kn_reply_db_error(r, rc == WE_EIO ? WE_EUNAVAIL : rc, err.msg);
    we_info(strcmp(action, "drain") == 0 ? "worker drain requested" : "worker undrain requested",
            WE_S("worker_id", id), WE_S("request_id", r->request_id));
    if (query_json(r, sql, 1, &id, &w, &replied) != 0)
        return replied;
    return kn_reply_json(r, 200, w);
}

enum MHD_Result kn_api_workers_drain(kn_req *r)
{
    return drain_action(r, "drain");
}

enum MHD_Result kn_api_workers_undrain(kn_req *r)
{
    return drain_action(r, "undrain");
}
