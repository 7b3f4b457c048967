/*
 * The worker registry: heartbeats in, rows in `workers` out.
 */
#ifndef KN_WORKERS_H
#define KN_WORKERS_H

#include "kernel.h"

#include <jansson.h>
#include <stdbool.h>

/* SELECT list of one worker as the API shows it. Health: not deregistered
 * and a heartbeat within 3 intervals. Append a WHERE clause as needed. */
#define KN_WORKER_SELECT                                                                           \
    "SELECT id, hostname, version, "                                                               \
    " CASE WHEN status = 'offline' THEN 'offline'"                                                 \
    "      WHEN last_seen < now() - 3 * heartbeat_interval_ms * interval '1 millisecond'"          \
    "           THEN 'unhealthy'"                                                                  \
    "      WHEN status = 'draining' THEN 'draining' ELSE 'healthy' END AS status,"                 \
    " (status <> 'offline' AND last_seen >= now() - 3 * heartbeat_interval_ms"                     \
    "   * interval '1 millisecond') AS healthy,"                                                   \
    " status = 'draining' AS draining, slots, running, capabilities, encoders,"                    \
    " heartbeat_interval_ms, first_seen, last_seen,"                                               \
    " round(extract(epoch FROM now() - last_seen)::numeric, 3) AS seconds_since_heartbeat,"       \
    " metadata FROM workers"

/* [A-Za-z0-9_-]{1,64}: a worker id is a NATS subject token. */
bool kn_worker_id_valid(const char *id);

/* A validated heartbeat. Strings point into the json_t it was parsed from. */
typedef struct kn_heartbeat {
    const char *id;
    const char *hostname;
    const char *version;
    const char *state; /* "online" | "offline" */
    json_int_t slots;
    json_int_t running;
    json_int_t interval_ms;
    bool draining;
    json_t *capabilities; /* array of strings */
    json_t *encoders;     /* array of strings */
} kn_heartbeat;

/* Parses and validates a heartbeat sent on workers.heartbeat.<subject_id>.
 * *root receives the document (json_decref it). Error names the bad field. */
int kn_heartbeat_parse(const char *data, size_t len, const char *subject_id, json_t **root,
                       kn_heartbeat *hb, we_err *err);

/* Applies a heartbeat to the database (upsert); logs registrations,
 * returns and deregistrations. */
int kn_heartbeat_apply(kn_ctx *kn, const kn_heartbeat *hb, json_t *root, we_err *err);

#endif
