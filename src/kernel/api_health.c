/*
 * GET /v1/health (liveness: answers while the process serves HTTP, touches
 * nothing else) and GET /v1/system/health (readiness: database, NATS and
 * JetStream each checked with a round trip and its latency; 503 while any
 * is down). Runs on HTTP pool threads.
 */
#include "api.h"
#include "we_util.h"

#include <time.h>

enum MHD_Result kn_api_health(kn_req *r)
{
    static const char body[] = "{\"status\":\"ok\",\"service\":\"kernel\",\"version\":\"" WE_VERSION
                               "\"}";
    return kn_reply_text(r, 200, "application/json", body, sizeof body - 1);
}

static double elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static json_t *check_result(int rc, double ms, const we_err *err)
{
    if (rc == 0)
        return json_pack("{s:s, s:f}", "status", "up", "latency_ms", ms);
    return json_pack("{s:s, s:f, s:s}", "status", "down", "latency_ms", ms, "error", err->msg);
}

static json_t *check_database(kn_ctx *kn, bool *up)
{
    we_err err = { "" };
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = WE_EIO;
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    if (c) {
        rc = we_pg_exec(c, "SELECT 1", 0, NULL, NULL, &err);
        we_pg_release(kn->db, c);
    }
    *up = rc == 0;
    return check_result(rc, elapsed_ms(&t0), &err);
}

static json_t *check_nats(kn_ctx *kn, bool js, bool *up)
{
    we_err err = { "" };
    int64_t us = 0;
    int rc;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    we_nats *n = kn_nats_get(kn);
    if (!n)
        rc = we_err_set(&err, WE_EIO, "not connected yet");
    else if (!we_nats_is_connected(n))
        rc = we_err_set(&err, WE_EIO, "disconnected; reconnecting");
    else
        rc = js ? we_nats_js_rtt_us(n, &us, &err) : we_nats_rtt_us(n, &us, &err);
    *up = rc == 0;
    return check_result(rc, rc == 0 ? (double)us / 1000.0 : elapsed_ms(&t0), &err);
}

enum MHD_Result kn_api_system_health(kn_req *r)
{
    bool db_up, nats_up, js_up;
    json_t *db = check_database(r->kn, &db_up);
    json_t *nats = check_nats(r->kn, false, &nats_up);
    json_t *js = check_nats(r->kn, true, &js_up);
    bool ok = db_up && nats_up && js_up;
    int64_t uptime = (we_now_ms() - r->kn->started_ms) / 1000;
    json_t *body = json_pack("{s:s, s:s, s:I, s:{s:o, s:o, s:o}}", "status", ok ? "ok" : "degraded",
                             "version", WE_VERSION, "uptime_seconds", (json_int_t)uptime, "checks",
                             "database", db, "nats", nats, "jetstream", js);
    return kn_reply_json(r, ok ? 200 : 503, body);
}
