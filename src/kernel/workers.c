/*
 * Worker registry. Heartbeats arrive on workers.heartbeat.<id> (core NATS,
 * queue group "kernels", so one kernel applies each); the NATS thread
 * (bus.c) hands each message here. A heartbeat is validated field by field
 * — garbage from the bus is logged and dropped — then upserted. The log
 * says when a worker registers, comes back, or deregisters.
 */
#include "workers.h"
#include "audit.h"
#include "events.h"
#include "we_log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

bool kn_worker_id_valid(const char *id)
{
    size_t n = 0;
    if (!id)
        return false;
    for (; id[n]; n++)
        if (!isalnum((unsigned char)id[n]) && id[n] != '-' && id[n] != '_')
            return false;
    return n >= 1 && n <= 64;
}

static bool string_array(json_t *a, size_t max_items)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a) || json_array_size(a) > max_items)
        return false;
    json_array_foreach(a, i, v) if (!json_is_string(v) || json_string_length(v) > 64) return false;
    return true;
}

int kn_heartbeat_parse(const char *data, size_t len, const char *subject_id, json_t **root,
                       kn_heartbeat *hb, we_err *err)
{
    json_error_t je;
    memset(hb, 0, sizeof *hb);
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return we_err_set(err, WE_EINVAL, "heartbeat is not JSON: %s", je.text);
    int dr = 0;
    if (json_unpack_ex(doc, &je, 0, "{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s?b, s?s, s:I}", "id",
                       &hb->id, "hostname", &hb->hostname, "version", &hb->version, "slots",
                       &hb->slots, "running", &hb->running, "capabilities", &hb->capabilities,
                       "encoders", &hb->encoders, "draining", &dr, "state", &hb->state,
                       "interval_ms", &hb->interval_ms) != 0) {
        json_decref(doc);
        return we_err_set(err, WE_EINVAL, "heartbeat: %s", je.text);
    }
    hb->draining = dr != 0;
    const char *bad = NULL;
    if (!kn_worker_id_valid(hb->id) || strcmp(hb->id, subject_id) != 0)
        bad = "id (must match the subject and [A-Za-z0-9_-]{1,64})";
    else if (strlen(hb->hostname) > 255 || strlen(hb->version) > 64)
        bad = "hostname or version (too long)";
    else if (hb->slots < 1 || hb->slots > 1024 || hb->running < 0 || hb->running > hb->slots)
        bad = "slots/running (need 1 <= slots <= 1024, 0 <= running <= slots)";
    else if (hb->interval_ms < 100 || hb->interval_ms > 600000)
        bad = "interval_ms (need 100..600000)";
    else if (!string_array(hb->capabilities, 32) || !string_array(hb->encoders, 1024))
        bad = "capabilities/encoders (need arrays of short strings)";
    else if (hb->state && strcmp(hb->state, "online") != 0 && strcmp(hb->state, "offline") != 0)
        bad = "state (need online or offline)";
    if (bad) {
        json_decref(doc);
        return we_err_set(err, WE_EINVAL, "heartbeat: invalid %s", bad);
    }
    if (!hb->state)
        hb->state = "online";
    *root = doc;
    return 0;
}

/* Everything in the heartbeat that has no column of its own. */
static char *metadata_json(json_t *root)
{
    static const char *const columns[] = { "id",       "hostname",     "version",  "slots",
                                           "running",  "capabilities", "encoders", "draining",
                                           "state",    "interval_ms",  NULL };
    json_t *m = json_deep_copy(root);
    for (const char *const *c = columns; *c; c++)
        json_object_del(m, *c);
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return s;
}

static const char *const upsert_sql =
    "WITH prev AS ("
    "  SELECT status::text AS status, running,"
    "         last_seen >= now() - 3 * heartbeat_interval_ms * interval '1 millisecond' AS fresh"
    "  FROM workers WHERE id = $1 FOR UPDATE),"
    " up AS ("
    "  INSERT INTO workers (id, hostname, version, slots, running, capabilities, encoders,"
    "                       status, heartbeat_interval_ms, last_seen, metadata)"
    "  VALUES ($1, $2, $3, $4::int, $5::int,"
    "          ARRAY(SELECT jsonb_array_elements_text($6::jsonb)),"
    "          ARRAY(SELECT jsonb_array_elements_text($7::jsonb)),"
    "          $8::worker_status, $9::int, now(), $10::jsonb)"
    "  ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, version = EXCLUDED.version,"
    "   slots = EXCLUDED.slots, running = EXCLUDED.running,"
    "   capabilities = EXCLUDED.capabilities, encoders = EXCLUDED.encoders,"
    "   status = EXCLUDED.status, heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms,"
    "   last_seen = now(), metadata = EXCLUDED.metadata"
    "  RETURNING 1)"
    " SELECT (SELECT status FROM prev), (SELECT fresh FROM prev), (SELECT count(*) FROM up),"
    "  (SELECT running FROM prev)";

static void log_transition(const kn_heartbeat *hb, const char *prev, bool fresh, const char *caps)
{
    bool offline = strcmp(hb->state, "offline") == 0;
    if (offline) {
        if (!prev || strcmp(prev, "offline") != 0)
            we_info("worker deregistered", WE_S("worker_id", hb->id));
    } else if (!prev) {
        we_info("worker registered", WE_S("worker_id", hb->id), WE_S("hostname", hb->hostname),
                WE_S("version", hb->version), WE_I("slots", hb->slots), WE_RAW("capabilities", caps));
    } else if (strcmp(prev, "offline") == 0 || !fresh) {
        we_info("worker rejoined", WE_S("worker_id", hb->id), WE_RAW("capabilities", caps));
    }
}

/* Drain transitions as events (joins and losses are announced elsewhere):
 * worker.draining when it starts draining, worker.drained once a draining
 * worker runs nothing more, worker.undrained when it takes work again. The
 * upsert locked the row, so each transition is seen by one kernel once. */
static void emit_drain_events(kn_ctx *kn, const kn_heartbeat *hb, const char *status,
                              const char *prev, bool fresh, long prev_running)
{
    bool was_draining = prev && fresh && strcmp(prev, "draining") == 0;
    bool draining = strcmp(status, "draining") == 0;
    const char *types[3];
    int n = 0;
    if (draining && !was_draining)
        types[n++] = "worker.draining";
    if (draining && hb->running == 0 && (!was_draining || prev_running > 0))
        types[n++] = "worker.drained";
    if (was_draining && strcmp(status, "online") == 0)
        types[n++] = "worker.undrained";
    for (int i = 0; i < n; i++)
        kn_event_emit(kn, types[i], "worker", hb->id, NULL,
                      json_pack("{s:s, s:s, s:I, s:I}", "id", hb->id, "status",
                                draining ? "draining" : "healthy", "running", hb->running,
                                "slots", hb->slots));
}

int kn_heartbeat_apply(kn_ctx *kn, const kn_heartbeat *hb, json_t *root, we_err *err)
{
    char slots[24], running[24], interval[24];
    snprintf(slots, sizeof slots, "%lld", (long long)hb->slots);
    snprintf(running, sizeof running, "%lld", (long long)hb->running);
    snprintf(interval, sizeof interval, "%lld", (long long)hb->interval_ms);
    char *caps = json_dumps(hb->capabilities, JSON_COMPACT);
    char *encs = json_dumps(hb->encoders, JSON_COMPACT);
    char *meta = metadata_json(root);
    const char *status = strcmp(hb->state, "offline") == 0 ? "offline"
                         : hb->draining                   ? "draining"
                                                          : "online";
    const char *p[] = { hb->id, hb->hostname, hb->version, slots, running,
                        caps,   encs,         status,      interval, meta };
    PGresult *res = NULL;
    int rc = WE_EIO;
    PGconn *c = we_pg_acquire(kn->db, 2000, err);
    if (c) {
        rc = we_pg_exec(c, upsert_sql, 10, p, &res, err);
        we_pg_release(kn->db, c);
    }
    if (rc == 0) {
        const char *prev = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
        bool fresh = !PQgetisnull(res, 0, 1) && PQgetvalue(res, 0, 1)[0] == 't';
        log_transition(hb, prev, fresh, caps);
        kn_audit_worker_seen(kn, hb->id, hb->hostname, strcmp(hb->state, "offline") == 0,
                             prev, fresh);
        emit_drain_events(kn, hb, status, prev, fresh,
                          PQgetisnull(res, 0, 3) ? 0 : atol(PQgetvalue(res, 0, 3)));
        PQclear(res);
    }
    free(caps);
    free(encs);
    free(meta);
    return rc;
}
