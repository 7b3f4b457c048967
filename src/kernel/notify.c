/*
 * What the operations side takes from domain events (kn_event_emit calls
 * kn_notify_event with each one, after its transaction committed):
 *  - notifications: a job that completed, failed or was cancelled notifies
 *    its owner (events with a user_id; the bootstrap admin and dev tokens
 *    own nothing), with a title, a message, the job's link and a level; a
 *    lost worker notifies the admin users (at most NOTIFY_ADMINS_MAX);
 *  - error tracking: a failed job is an occurrence in error_events
 *    (source "jobs", grouped by the job's error code, with its job_id).
 * One INSERT on the caller's thread, with a short wait for a connection:
 * the caller just committed, so the database is up; when it is not, the
 * notification is dropped with a warning (the job's state is not).
 */
#include "errors.h"
#include "events.h"
#include "api_jobs.h"
#include "we_log.h"

#include <stdio.h>
#include <string.h>

#define NOTIFY_ADMINS_MAX "100"
#define MESSAGE_MAX 500

/* The notification of each job end. */
static const struct job_end {
    const char *type, *title, *level, *verb;
} job_ends[] = {
    { "job.completed", "Job completed", "success", "completed" },
    { "job.failed", "Job failed", "error", "failed" },
    { "job.cancelled", "Job cancelled", "warning", "was cancelled" },
};

static const char *const owner_sql =
    "INSERT INTO notifications (user_id, title, message, link, level)"
    " SELECT u.id, $2, $3, $4, $5 FROM users u WHERE u.id = $1::uuid";

static const char *const admins_sql =
    "INSERT INTO notifications (user_id, title, message, link, level)"
    " SELECT u.id, $1, $2, $3, $4 FROM (SELECT id FROM users WHERE role = 'admin'"
    " AND NOT disabled ORDER BY created_at LIMIT " NOTIFY_ADMINS_MAX ") u";

/* Copies at most MESSAGE_MAX bytes of s, cut at a UTF-8 character boundary. */
static void cut(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    while (n > 0 && n < strlen(s) && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The failure's code and message from an event's data, whichever shape it
 * has: {"error":{"code","message"}}, {"error":"…"} or {"error_code",
 * "error_message"}. */
static void job_error(json_t *data, const char **code, const char **message)
{
    json_t *e = json_object_get(data, "error");
    *code = json_string_value(json_object_get(e, "code"));
    *message = json_string_value(json_object_get(e, "message"));
    if (!*code)
        *code = json_string_value(json_object_get(data, "error_code"));
    if (!*message)
        *message = json_is_string(e) ? json_string_value(e)
                                     : json_string_value(json_object_get(data, "error_message"));
}

static void insert(kn_ctx *kn, const char *sql, int n, const char *const *p, const char *what)
{
    we_err err;
    PGconn *c = we_pg_acquire(kn->db, 1000, &err);
    int rc = c ? we_pg_exec(c, sql, n, p, NULL, &err) : WE_EUNAVAIL;
    we_pg_release(kn->db, c);
    if (rc != 0)
        we_warn("notification not stored", WE_S("event", what), WE_ERR(err.msg));
}

static void notify_job(kn_ctx *kn, const struct job_end *k, const char *job_id,
                       const char *user_id, json_t *data)
{
    const char *code, *why;
    job_error(data, &code, &why);
    char msg[MESSAGE_MAX + 1], text[MESSAGE_MAX + 1], link[64];
    bool has_why = why && why[0];
    snprintf(text, sizeof text, "Job %.8s %s%s%s", job_id, k->verb, has_why ? ": " : ".",
             has_why ? why : "");
    cut(msg, sizeof msg, text);
    snprintf(link, sizeof link, "/v1/jobs/%s", job_id);
    const char *p[] = { user_id, k->title, msg, link, k->level };
    insert(kn, owner_sql, 5, p, k->type);
}

static void notify_worker_lost(kn_ctx *kn, const char *worker_id)
{
    char msg[200], link[120];
    snprintf(msg, sizeof msg, "Worker %.64s stopped sending heartbeats; its tasks are retried "
                              "elsewhere.", worker_id);
    snprintf(link, sizeof link, "/v1/workers/%.64s", worker_id);
    const char *p[] = { "Worker lost", msg, link, "warning" };
    insert(kn, admins_sql, 4, p, "worker.lost");
}

/* A failed job, for error tracking: grouped by its error code. */
static void track_failed_job(const char *job_id, json_t *data)
{
    const char *code, *why;
    job_error(data, &code, &why);
    kn_errors_record("jobs", "error", "job failed", code,
                     json_pack("{s:s, s:s?, s:s?}", "job_id", job_id, "error", why, "code", code),
                     NULL, job_id);
}

void kn_notify_event(kn_ctx *kn, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *id = json_string_value(json_object_get(json_object_get(ev, "resource"), "id"));
    const char *user = json_string_value(json_object_get(ev, "user_id"));
    json_t *data = json_object_get(ev, "data");
    if (!type || !id)
        return;
    if (strcmp(type, "worker.lost") == 0) {
        notify_worker_lost(kn, id);
        return;
    }
    for (size_t i = 0; i < sizeof job_ends / sizeof job_ends[0]; i++) {
        if (strcmp(type, job_ends[i].type) != 0 || !kn_job_id_valid(id))
            continue;
        if (strcmp(type, "job.failed") == 0)
            track_failed_job(id, data);
        if (kn_job_id_valid(user))
            notify_job(kn, &job_ends[i], id, user, data);
    }
}
