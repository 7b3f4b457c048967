/*
 * Applying worker events (docs/pipeline.md §3-4). One transaction per event:
 * the job row is locked first (so events of one job apply one at a time,
 * whatever kernel receives them), (task, attempt, event) is recorded in
 * task_events_applied — a duplicate stops there — and the task changes only
 * when its attempt matches and its status allows the transition. Terminal
 * jobs never change. The next steps (plan after the probe, the stitch task
 * once a profile's segments and the audio are done, outputs after the
 * stitches, a ladder's package task once all its renditions are stitched,
 * the playlist output after it, completion) happen in the same transaction.
 */
#include "api_jobs.h"
#include "events.h"
#include "orch_int.h"
#include "we_manifest.h"
#include "we_log.h"
#include "we_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing --------------------------------------------------------------- */

int kn_event_parse(const char *data, size_t len, kn_event *ev, we_err *err)
{
    json_error_t je;
    memset(ev, 0, sizeof *ev);
    ev->doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    json_int_t attempt = 0;
    json_t *error = NULL;
    int retry = 0;
    if (!ev->doc || json_unpack_ex(ev->doc, &je, 0, "{s:s, s:s, s:I, s:s, s?s, s?o, s?o}",
                                   "task_id", &ev->task_id, "job_id", &ev->job_id, "attempt",
                                   &attempt, "event", &ev->event, "worker_id", &ev->worker_id,
                                   "result", &ev->result, "error", &error) != 0) {
        kn_event_fini(ev);
        return we_err_set(err, WE_EINVAL, "event: %s", je.text);
    }
    ev->attempt = (int)attempt;
    if (error && json_unpack(error, "{s?s, s?s, s?b}", "code", &ev->err_code, "message",
                             &ev->err_msg, "retryable", &retry) != 0) {
        kn_event_fini(ev);
        return we_err_set(err, WE_EINVAL, "event: malformed error object");
    }
    ev->retryable = retry != 0;
    const char *e = ev->event;
    bool known = !strcmp(e, "started") || !strcmp(e, "completed") || !strcmp(e, "failed");
    if (!kn_job_id_valid(ev->task_id) || !kn_job_id_valid(ev->job_id) || attempt < 1 || attempt > 1000 ||
        !known || (!strcmp(e, "completed") && !json_is_object(ev->result))) {
        kn_event_fini(ev);
        return we_err_set(err, WE_EINVAL, "event: invalid ids, attempt, event or result");
    }
    return 0;
}

void kn_event_fini(kn_event *ev)
{
    json_decref(ev->doc);
    ev->doc = NULL;
}

/* ---- the transaction --------------------------------------------------------- */

typedef struct task_row {
    char type[16], status[16], profile[160]; /* profile: "<ladder>.<rendition>" too */
    int attempt, max_attempts;
    double duration;
} task_row;

typedef struct apply_ctx {
    kn_ctx *kn;
    PGconn *c;
    const kn_event *ev;
    task_row t;
    bool cancel_job;
    char status_before[16]; /* the job's, when locked: job.* events on change */
    we_err *err;
} apply_ctx;

/* Locks the job; 1 when it is terminal (nothing to do), 0, or < 0. */
static int lock_job(apply_ctx *a)
{
    PGresult *r = NULL;
    const char *p[] = { a->ev->job_id };
    int rc = we_pg_exec(a->c, "SELECT status FROM jobs WHERE id = $1::uuid FOR UPDATE", 1, p, &r,
                        a->err);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1)
        snprintf(a->status_before, sizeof a->status_before, "%s", PQgetvalue(r, 0, 0));
    int terminal = PQntuples(r) == 0 || strstr("completed failed cancelled", PQgetvalue(r, 0, 0));
    PQclear(r);
    return terminal;
}

/* 1 when (task, attempt, event) was already applied. */
static int first_time(apply_ctx *a)
{
    char att[16];
    snprintf(att, sizeof att, "%d", a->ev->attempt);
    /* "started" is per worker: a handed-back task starts again elsewhere */
    char event[160];
    if (strcmp(a->ev->event, "started") == 0 && a->ev->worker_id)
        snprintf(event, sizeof event, "started:%s", a->ev->worker_id);
    else
        snprintf(event, sizeof event, "%s", a->ev->event);
    const char *p[] = { a->ev->task_id, att, event };
    PGresult *r = NULL;
    int rc = we_pg_exec(a->c, "INSERT INTO task_events_applied (task_id, attempt, event)"
                              " SELECT id, $2::int, $3 FROM tasks WHERE id = $1::uuid"
                              " ON CONFLICT DO NOTHING RETURNING 1",
                        3, p, &r, a->err);
    if (rc != 0)
        return rc;
    int dup = PQntuples(r) == 0;
    PQclear(r);
    return dup;
}

static int load_task(apply_ctx *a)
{
    PGresult *r = NULL;
    const char *p[] = { a->ev->task_id, a->ev->job_id };
    int rc = we_pg_exec(a->c, "SELECT type, status, coalesce(profile, ''), attempt, max_attempts,"
                              " coalesce(duration_sec, 0) FROM tasks"
                              " WHERE id = $1::uuid AND job_id = $2::uuid",
                        2, p, &r, a->err);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return we_err_set(a->err, WE_ENOENT, "no such task in this job");
    }
    snprintf(a->t.type, sizeof a->t.type, "%s", PQgetvalue(r, 0, 0));
    snprintf(a->t.status, sizeof a->t.status, "%s", PQgetvalue(r, 0, 1));
    snprintf(a->t.profile, sizeof a->t.profile, "%s", PQgetvalue(r, 0, 2));
    a->t.attempt = atoi(PQgetvalue(r, 0, 3));
    a->t.max_attempts = atoi(PQgetvalue(r, 0, 4));
    a->t.duration = atof(PQgetvalue(r, 0, 5));
    PQclear(r);
    return 0;
}

static int on_started(apply_ctx *a)
{
    const char *p[] = { a->ev->task_id, a->ev->worker_id ? a->ev->worker_id : "unknown",
                        kn_lease_s() };
    const char *j[] = { a->ev->job_id };
    int rc = we_pg_exec(a->c, "UPDATE tasks SET status = 'running', worker_id = $2,"
                              " started_at = now(),"
                              " lease_expires_at = now() + $3::int * interval '1 second'"
                              " WHERE id = $1::uuid AND (status IN ('pending', 'dispatched')"
                              "  OR (status = 'running' AND worker_id IS DISTINCT FROM $2))",
                        3, p, NULL, a->err);
    if (rc == 0)
        rc = we_pg_exec(a->c, "UPDATE jobs SET status = 'processing', wait_reason = NULL,"
                              " started_at = coalesce(started_at, now())"
                              " WHERE id = $1::uuid AND status = 'queued'",
                        1, j, NULL, a->err);
    return rc;
}

/* ---- completion and the next steps ------------------------------------------------ */

/* Creates the stitch task of every profile whose video segments (and the
 * audio, if the job has one) are all completed. Exactly once per profile:
 * the unique (job, type, profile, seq) index makes a second insert a no-op. */
static int maybe_stitch(apply_ctx *a)
{
    PGresult *r = NULL;
    const char *p[] = { a->ev->job_id };
    int rc = we_pg_exec(
        a->c,
        "WITH ready AS (SELECT v.profile FROM tasks v WHERE v.job_id = $1::uuid AND v.type = 'video'"
        "  GROUP BY v.profile HAVING bool_and(v.status = 'completed')"
        "  AND NOT EXISTS (SELECT 1 FROM tasks au WHERE au.job_id = $1::uuid AND au.type = 'audio'"
        "  AND au.params->'for_profiles' ? v.profile AND au.status <> 'completed')),"
        " ins AS (INSERT INTO tasks (job_id, type, status, profile, seq, capability, params,"
        "  attempt, max_attempts)"
        "  SELECT $1::uuid, 'stitch', 'pending', rd.profile, 0, 'cpu',"
        "   json_build_object('segment_keys', (SELECT json_agg(v.output_key ORDER BY v.seq)"
        "    FROM tasks v WHERE v.job_id = $1::uuid AND v.type = 'video'"
        "    AND v.profile = rd.profile),"
        "    'audio_key', (SELECT au.output_key FROM tasks au WHERE au.job_id = $1::uuid"
        "    AND au.type = 'audio' AND au.params->'for_profiles' ? rd.profile LIMIT 1),"
        "    'output_key', 'jobs/' || $1 || '/' || rd.profile || '/output.' ||"
        "    coalesce((SELECT substring(v.output_key FROM '\\.([a-z0-9]+)$') FROM tasks v"
        "    WHERE v.job_id = $1::uuid AND v.type = 'video' AND v.profile = rd.profile LIMIT 1),"
        "    'mp4'), 'faststart', true)::jsonb, 1, 3"
        "  FROM ready rd ON CONFLICT DO NOTHING RETURNING id)"
        " SELECT id::text FROM ins",
        1, p, &r, a->err);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = kn_orch_enqueue_task_tx(a->c, PQgetvalue(r, i, 0), a->err);
    if (rc == 0 && PQntuples(r) > 0)
        rc = we_pg_exec(a->c, "UPDATE jobs SET status = 'stitching' WHERE id = $1::uuid"
                              " AND status IN ('queued', 'processing')",
                        1, p, NULL, a->err);
    PQclear(r);
    return rc;
}

/* Creates the package task of every HLS ladder of the job whose rendition
 * stitches are all completed (the renditions are the video tasks whose
 * params name the ladder, in their "rendition" order; a rendition without a
 * stitch task yet is not ready). Exactly once per ladder, as maybe_stitch.
 * bandwidth is the stitched file's average bit rate, for information; the
 * muxer measures its own for the playlist. */
static int maybe_package(apply_ctx *a)
{
    PGresult *r = NULL;
    const char *p[] = { a->ev->job_id };
    int rc = we_pg_exec(
        a->c,
        "WITH rend AS (SELECT v.params->>'ladder' AS ladder, v.profile,"
        "  min((v.params->>'rendition')::int) AS ord FROM tasks v WHERE v.job_id = $1::uuid"
        "  AND v.type = 'video' AND v.params ? 'ladder' GROUP BY 1, 2),"
        " ready AS (SELECT rd.ladder FROM rend rd LEFT JOIN tasks s ON s.job_id = $1::uuid"
        "  AND s.type = 'stitch' AND s.profile = rd.profile GROUP BY rd.ladder"
        "  HAVING bool_and(coalesce(s.status = 'completed', false))),"
        " ins AS (INSERT INTO tasks (job_id, type, status, profile, seq, capability, params,"
        "  attempt, max_attempts)"
        "  SELECT $1::uuid, 'package', 'pending', l.ladder, 0, 'cpu', jsonb_build_object("
        "   'renditions', (SELECT jsonb_agg(jsonb_build_object("
        "     'name', substr(rd.profile, length(l.ladder) + 2), 'key', s.output_key,"
        "     'bandwidth', coalesce(round((s.result->>'size_bytes')::numeric * 8"
        "      / nullif((s.result->>'duration_s')::numeric, 0)), 0)) ORDER BY rd.ord)"
        "    FROM rend rd JOIN tasks s ON s.job_id = $1::uuid AND s.type = 'stitch'"
        "    AND s.profile = rd.profile WHERE rd.ladder = l.ladder),"
        "   'output_prefix', 'jobs/' || $1 || '/' || l.ladder || '/', 'hls_time', 6,"
        "   'segment_type', 'mpegts',"
        "   'audio', coalesce((SELECT s.params->>'audio_key' IS NOT NULL FROM rend rd"
        "    JOIN tasks s ON s.job_id = $1::uuid AND s.type = 'stitch' AND s.profile = rd.profile"
        "    WHERE rd.ladder = l.ladder ORDER BY rd.ord LIMIT 1), false)), 1, 3"
        "  FROM ready l ON CONFLICT DO NOTHING RETURNING id)"
        " SELECT id::text FROM ins",
        1, p, &r, a->err);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = kn_orch_enqueue_task_tx(a->c, PQgetvalue(r, i, 0), a->err);
    PQclear(r);
    return rc;
}

/* Records a task's output (kind "video" for a stitch, "playlist" for a
 * package) under the task's profile. */
static int record_output(apply_ctx *a, const char *kind)
{
    const char *key = json_string_value(json_object_get(a->ev->result, "output_key"));
    const char *sha = json_string_value(json_object_get(a->ev->result, "sha256"));
    /* the storage plugin the worker wrote through: outputs are read back,
     * presigned and deleted through the same one */
    const char *sto = json_string_value(json_object_get(a->ev->result, "storage_plugin"));
    if (!sto || !we_plugin_id_valid(sto))
        return we_err_set(a->err, WE_EINVAL, "%s result without a valid storage_plugin", kind);
    json_int_t size = json_integer_value(json_object_get(a->ev->result, "size_bytes"));
    char sz[24];
    snprintf(sz, sizeof sz, "%lld", (long long)size);
    const char *p[] = { a->ev->job_id, a->t.profile, key ? key : "", sz, sha ? sha : "", kind, sto };
    int rc = we_pg_exec(a->c, "UPDATE jobs SET status = 'uploading' WHERE id = $1::uuid"
                              " AND status IN ('processing', 'stitching')",
                        1, p, NULL, a->err);
    if (rc == 0)
        rc = we_pg_exec(a->c, "INSERT INTO job_outputs (job_id, profile, kind, storage_plugin,"
                              " storage_key, size_bytes, checksum_sha256, content_type)"
                              " VALUES ($1::uuid, $2, $6, $7, $3, $4::bigint, $5,"
                              " CASE WHEN $3 LIKE '%.m3u8' THEN 'application/vnd.apple.mpegurl'"
                              " WHEN $3 LIKE '%.webm' THEN 'video/webm' ELSE 'video/mp4' END)"
                              " ON CONFLICT (job_id, storage_key) DO NOTHING",
                        7, p, NULL, a->err);
    if (rc == 0)
        kn_job_log(a->c, a->ev->job_id, a->ev->task_id, "info", "output stored");
    return rc;
}

/* Completes the job when every entry of jobs.profiles has an output whose
 * profile is that entry: a profile's stitched file, a ladder's playlist
 * (its renditions' files are "<ladder>.<rendition>" and do not count). */
static int maybe_complete(apply_ctx *a)
{
    const char *p[] = { a->ev->job_id };
    return we_pg_exec(a->c, "UPDATE jobs SET status = 'completed', progress = 100,"
                            " eta_seconds = 0, finished_at = now(), wait_reason = NULL"
                            " WHERE id = $1::uuid AND status = 'uploading'"
                            " AND NOT EXISTS (SELECT 1 FROM unnest(profiles) pr WHERE NOT EXISTS"
                            "  (SELECT 1 FROM job_outputs o WHERE o.job_id = $1::uuid"
                            "   AND o.profile = pr))",
                      1, p, NULL, a->err);
}

/* A stitch: its output, the package task when it was a ladder's last
 * rendition, and completion. */
static int on_stitched(apply_ctx *a)
{
    int rc = record_output(a, "video");
    if (rc == 0)
        rc = maybe_package(a);
    return rc == 0 ? maybe_complete(a) : rc;
}

static int on_packaged(apply_ctx *a)
{
    int rc = record_output(a, "playlist");
    return rc == 0 ? maybe_complete(a) : rc;
}

static int on_completed(apply_ctx *a)
{
    char *res = json_dumps(a->ev->result, JSON_COMPACT);
    const char *key = json_string_value(json_object_get(a->ev->result, "output_key"));
    const char *p[] = { a->ev->task_id, res, key, a->ev->worker_id };
    int rc = we_pg_exec(a->c, "UPDATE tasks SET status = 'completed', result = $2::jsonb,"
                              " progress = 100, encoded_seconds = coalesce(duration_sec, 0),"
                              " output_key = coalesce($3, output_key), finished_at = now(),"
                              /* the started event may come second (kernels apply in parallel) */
                              " started_at = coalesce(started_at, now()),"
                              " worker_id = coalesce(worker_id, $4), lease_expires_at = NULL"
                              " WHERE id = $1::uuid AND status IN ('pending', 'dispatched', 'running')",
                        4, p, NULL, a->err);
    free(res);
    if (rc != 0)
        return rc;
    if (!strcmp(a->t.type, "probe"))
        return kn_plan_job_tx(a->kn, a->c, a->ev->job_id, a->ev->result, a->err);
    if (!strcmp(a->t.type, "video") || !strcmp(a->t.type, "audio"))
        return maybe_stitch(a);
    if (!strcmp(a->t.type, "stitch"))
        return on_stitched(a);
    if (!strcmp(a->t.type, "package"))
        return on_packaged(a);
    return 0;
}

/* ---- failure ----------------------------------------------------------------- */

static int retry_task(apply_ctx *a)
{
    char backoff[24];
    int64_t ms = 5000LL << (a->t.attempt < 6 ? a->t.attempt : 6);
    if (ms > 300000)
        ms = 300000;
    snprintf(backoff, sizeof backoff, "%lld", (long long)ms);
    const char *p[] = { a->ev->task_id, backoff, a->ev->err_msg ? a->ev->err_msg : "failed" };
    int rc = we_pg_exec(a->c, "UPDATE tasks SET status = 'pending', attempt = attempt + 1,"
                              " not_before = now() + $2::bigint * interval '1 millisecond',"
                              " worker_id = NULL, started_at = NULL, finished_at = NULL,"
                              " lease_expires_at = NULL, progress = 0, encoded_seconds = 0,"
                              " error = $3 WHERE id = $1::uuid",
                        3, p, NULL, a->err);
    if (rc == 0)
        rc = kn_orch_enqueue_task_tx(a->c, a->ev->task_id, a->err);
    if (rc == 0)
        kn_job_log(a->c, a->ev->job_id, a->ev->task_id, "warn", p[2]);
    return rc;
}

static int fail_job(apply_ctx *a)
{
    const char *msg = a->ev->err_msg && *a->ev->err_msg ? a->ev->err_msg : "task failed";
    const char *code = a->ev->err_code ? a->ev->err_code : "WE-JOB-011";
    const char *p[] = { a->ev->task_id, msg };
    const char *j[] = { a->ev->job_id, msg, code };
    int rc = we_pg_exec(a->c, "UPDATE tasks SET status = 'failed', error = $2,"
                              " finished_at = now(), lease_expires_at = NULL WHERE id = $1::uuid",
                        2, p, NULL, a->err);
    if (rc == 0)
        rc = we_pg_exec(a->c, "UPDATE jobs SET status = 'failed', error_code = $3,"
                              " error_message = $2, finished_at = now(), wait_reason = NULL"
                              " WHERE id = $1::uuid",
                        3, j, NULL, a->err);
    if (rc == 0)
        rc = we_pg_exec(a->c, "UPDATE tasks SET status = 'cancelled', finished_at = now(),"
                              " lease_expires_at = NULL WHERE job_id = $1::uuid"
                              " AND status IN ('pending', 'dispatched', 'running')",
                        1, j, NULL, a->err);
    if (rc == 0) {
        kn_job_log(a->c, a->ev->job_id, a->ev->task_id, "error", msg);
        a->cancel_job = true;
        we_warn("job failed", WE_S("job_id", a->ev->job_id), WE_S("task_id", a->ev->task_id),
                WE_S("code", code), WE_ERR(msg));
    }
    return rc;
}

static int on_failed(apply_ctx *a)
{
    if (strcmp(a->t.status, "completed") == 0 || strcmp(a->t.status, "cancelled") == 0)
        return 0;
    if (a->ev->retryable && a->t.attempt < a->t.max_attempts)
        return retry_task(a);
    return fail_job(a);
}

static int apply_tx(apply_ctx *a)
{
    int rc = lock_job(a);
    if (rc != 0)
        return rc < 0 ? rc : 0; /* terminal or gone: the event changes nothing */
    rc = first_time(a);
    if (rc != 0)
        return rc < 0 ? rc : 0; /* duplicate */
    rc = load_task(a);
    if (rc != 0 || a->t.attempt != a->ev->attempt)
        return rc == WE_ENOENT ? 0 : rc; /* stale attempt: ignored */
    const char *e = a->ev->event;
    if (!strcmp(e, "started"))
        return on_started(a);
    if (!strcmp(e, "completed"))
        return on_completed(a);
    return on_failed(a); /* failed, lease_expired */
}

/* The job's status at the end of the transaction into out (cap bytes). */
static int status_after(apply_ctx *a, char *out, size_t cap)
{
    PGresult *r = NULL;
    const char *p[] = { a->ev->job_id };
    int rc = we_pg_exec(a->c, "SELECT status FROM jobs WHERE id = $1::uuid", 1, p, &r, a->err);
    if (rc == 0 && PQntuples(r) == 1)
        snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/* The job.* events of a committed change from before to after (exactly
 * once: only the transaction that changed the locked row sees it). */
static void announce(kn_ctx *kn, const char *job, const char *before, const char *after)
{
    if (!before[0] || !after[0] || strcmp(before, after) == 0)
        return;
    if (strcmp(before, "queued") == 0 && strcmp(after, "failed") && strcmp(after, "cancelled"))
        kn_event_job(kn, "job.started", job);
    if (strcmp(after, "completed") == 0 || strcmp(after, "failed") == 0 ||
        strcmp(after, "cancelled") == 0) {
        char type[24];
        snprintf(type, sizeof type, "job.%s", after);
        kn_event_job(kn, type, job);
    }
}

int kn_event_apply(kn_ctx *kn, const kn_event *ev, bool *cancel_job, we_err *err)
{
    char after[16] = "";
    apply_ctx a = { .kn = kn, .ev = ev, .err = err };
    a.c = we_pg_acquire(kn->db, 5000, err);
    if (!a.c)
        return WE_EUNAVAIL;
    int rc = we_pg_exec(a.c, "BEGIN", 0, NULL, NULL, err);
    if (rc == 0)
        rc = apply_tx(&a);
    if (rc == 0)
        rc = status_after(&a, after, sizeof after);
    if (rc == 0)
        rc = we_pg_exec(a.c, "COMMIT", 0, NULL, NULL, err);
    else
        we_pg_exec(a.c, "ROLLBACK", 0, NULL, NULL, NULL);
    we_pg_release(kn->db, a.c);
    *cancel_job = rc == 0 && a.cancel_job;
    if (rc == 0) {
        kn_orch_kick();
        announce(kn, ev->job_id, a.status_before, after);
    }
    return rc;
}
