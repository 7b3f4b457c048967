/*
 * The write side of /v1/jobs (DESIGN §6, docs/pipeline.md): submit, cancel,
 * retry and delete. The read side is api_jobs_read.c.
 *
 * Submitting validates the body (api_jobs_spec.c), then the source
 * (api_jobs_source.c, which may resolve DNS, so no database connection is
 * held meanwhile), then that every profile exists, and writes the job, its
 * probe task, the task's dispatch message (the orchestrator's outbox) and a
 * log line in one transaction: either all of it exists or none. An
 * Idempotency-Key makes a repeated submission answer 200 with the job the
 * first one created; two racing submissions meet at the unique index and
 * the loser re-reads the winner's job. A job with webhook_urls gets one
 * job-scoped webhook per URL in the same transaction, all signed with one
 * new secret that only the 201 shows (docs/webhooks.md "Per-job
 * endpoints"); the URLs pass the /v1/webhooks address policy first, with
 * no connection held (DNS). Retry is a new submission made from
 * the old job's row, linked by retry_of. Cancel belongs to the orchestrator.
 * Delete removes the job's stored files through the storage plugins first
 * and the row (with its tasks, outputs and log) only when that worked, so a
 * failure leaves everything in place to try again.
 */
#include "api.h"
#include "api_jobs.h"
#include "events.h"
#include "orch.h"
#include "we_log.h"
#include "we_util.h"
#include "webhooks.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_USER "'00000000-0000-0000-0000-000000000000'::uuid"

/* A job belongs to the caller's user when that user is in the users table
 * (auth-basic, or auth-oidc with a database); bootstrap, dev-mode and
 * external identities without a row submit as the NULL user. */
#define JOB_USER(p) "(SELECT u.id FROM users u WHERE u.id = nullif(" p ", '')::uuid)"

/* Idempotency keys are scoped per user like uq_jobs_idempotency. */
static const char *const by_key_sql =
    "SELECT id FROM jobs WHERE COALESCE(user_id, " NO_USER ") = COALESCE(" JOB_USER("$2")
    ", " NO_USER ") AND idempotency_key = $1";

static const char *const unknown_profile_sql =
    "SELECT x.p FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS x(p, n)"
    " WHERE NOT EXISTS (SELECT 1 FROM profiles WHERE id = x.p) ORDER BY x.n LIMIT 1";

static const char *const insert_job_sql =
    "INSERT INTO jobs (source_url, profiles, priority, metadata, publish_targets, webhook_urls,"
    " idempotency_key, retry_of, user_id) VALUES ($1,"
    " ARRAY(SELECT e FROM jsonb_array_elements_text($2::jsonb) WITH ORDINALITY x(e, n) ORDER BY n),"
    " $3::int, coalesce($4::jsonb, '{}'), coalesce($5::jsonb, '[]'),"
    " ARRAY(SELECT e FROM jsonb_array_elements_text(coalesce($6::jsonb, '[]'))"
    "       WITH ORDINALITY x(e, n) ORDER BY n), $7, $8::uuid, " JOB_USER("$9") ") RETURNING id";

static const char *const insert_probe_sql =
    "INSERT INTO tasks (job_id, type, capability, params, attempt, max_attempts)"
    " VALUES ($1::uuid, 'probe', $2, jsonb_build_object('input', $3::text), 1, 3) RETURNING id";

/* What a retry copies: the old job as a POST body, and whether it ended. */
static const char *const retry_source_sql =
    "SELECT json_build_object('source_url', j.source_url, 'profiles', to_json(j.profiles),"
    " 'priority', j.priority, 'metadata', j.metadata, 'publish_targets', j.publish_targets,"
    " 'webhook_urls', to_json(j.webhook_urls), 'capability', coalesce((SELECT t.capability"
    "  FROM tasks t WHERE t.job_id = j.id AND t.type = 'probe' ORDER BY t.seq LIMIT 1), 'cpu')),"
    " j.status IN ('completed', 'failed', 'cancelled') FROM jobs j WHERE j.id = $1::uuid";

/* What a delete needs: whether the job ended, and the plugins holding its outputs. */
static const char *const delete_source_sql =
    "SELECT j.status IN ('completed', 'failed', 'cancelled'), coalesce((SELECT"
    " json_agg(DISTINCT o.storage_plugin) FROM job_outputs o WHERE o.job_id = j.id), '[]')"
    " FROM jobs j WHERE j.id = $1::uuid";

/* ---- helpers ------------------------------------------------------------------ */

/* COMMIT when rc is 0, else ROLLBACK. A COMMIT that the server answers with
 * ROLLBACK (an earlier statement failed) is a failure too. */
static int tx_end(PGconn *c, int rc, we_err *err)
{
    PGresult *res = NULL;
    if (rc != 0) {
        we_pg_exec(c, "ROLLBACK", 0, NULL, NULL, NULL);
        return rc;
    }
    rc = we_pg_exec(c, "COMMIT", 0, NULL, &res, err);
    if (rc == 0 && strcmp(PQcmdStatus(res), "COMMIT") != 0)
        rc = we_err_set(err, WE_EIO, "database: the transaction was rolled back");
    PQclear(res);
    return rc;
}

/* The first column of the first row into out (cap bytes); 0, or 1 when no
 * row. */
static int first_value(PGconn *c, const char *sql, int n, const char *const *p, char *out,
                       size_t cap, we_err *err)
{
    PGresult *res = NULL;
    int rc = we_pg_exec(c, sql, n, p, &res, err);
    if (rc != 0)
        return rc;
    rc = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? 0 : 1;
    if (rc == 0)
        snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/* Replies status with job id read on c (404 when it is gone). */
static enum MHD_Result reply_job_on(kn_req *r, PGconn *c, const char *id, unsigned status)
{
    we_err err;
    json_t *job = NULL;
    int rc = kn_job_fetch(c, id, &job, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    return job ? kn_reply_json(r, status, job) : kn_job_not_found(r);
}

/* 201 with the new job, and its webhook secret when it has endpoints:
 * this response is the only place the secret is shown. */
static enum MHD_Result reply_created(kn_req *r, PGconn *c, const char *id, const char *secret)
{
    we_err err;
    json_t *job = NULL;
    int rc = kn_job_fetch(c, id, &job, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    if (!job)
        return kn_job_not_found(r);
    if (secret)
        json_object_set_new(job, "webhook_secret", json_string(secret));
    return kn_reply_json(r, 201, job);
}

static enum MHD_Result reply_job(kn_req *r, const char *id, unsigned status)
{
    we_err err;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    if (!c)
        return kn_reply_db_error(r, WE_EUNAVAIL, err.msg);
    enum MHD_Result ret = reply_job_on(r, c, id, status);
    we_pg_release(r->kn->db, c);
    return ret;
}

/* ---- submit ------------------------------------------------------------------ */

/* The Idempotency-Key header into s (1..255 printable ASCII); -1 after
 * replying 400. */
static int idem_key(kn_req *r, kn_job_spec *s, enum MHD_Result *replied)
{
    const char *k = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key");
    size_t n = k ? strlen(k) : 0, i;
    for (i = 0; i < n && k[i] >= 0x20 && k[i] < 0x7f; i++)
        ;
    if (k && (n < 1 || n > 255 || i < n)) {
        *replied = kn_job_bad_param(r, "Idempotency-Key", "expected 1 to 255 printable ASCII "
                                                          "characters");
        return -1;
    }
    s->idem_key = k;
    return 0;
}

/* 422 WE-JOB-003 when a profile of s does not exist; -1 after replying. */
static int check_profiles(kn_req *r, PGconn *c, const char *profiles, enum MHD_Result *replied)
{
    we_err err;
    char missing[80], msg[160];
    int rc = first_value(c, unknown_profile_sql, 1, &profiles, missing, sizeof missing, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        *replied = kn_reply_db_error(r, rc, err.msg);
        return -1;
    }
    snprintf(msg, sizeof msg, "profiles: unknown profile \"%s\"", missing);
    *replied = kn_reply_error(r, 422, KN_JOB_PROFILE, msg,
                              json_pack("{s:s, s:s}", "field", "profiles", "profile", missing));
    return -1;
}

static char *dump_or_null(json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT) : NULL;
}

static void log_submitted(PGconn *c, const char *id, const char *retry_of)
{
    char msg[96];
    if (!retry_of) {
        kn_job_log(c, id, NULL, "info", "job submitted");
        return;
    }
    snprintf(msg, sizeof msg, "job submitted as a retry of job %s", retry_of);
    kn_job_log(c, id, NULL, "info", msg);
    snprintf(msg, sizeof msg, "job retried as job %s", id);
    kn_job_log(c, retry_of, NULL, "info", msg);
}

/* Inside a transaction: the job row, its probe task, the task's outbox row,
 * its webhooks (when secret is not NULL) and the first log line. WE_EEXIST
 * when the idempotency key is taken. */
static int insert_job_tx(PGconn *c, const kn_job_spec *s, const char *profiles,
                         const char *secret, char id[37], we_err *err)
{
    char prio[24], task[37];
    char *meta = dump_or_null(s->metadata), *targets = dump_or_null(s->publish_targets);
    char *hooks = dump_or_null(s->webhook_urls);
    snprintf(prio, sizeof prio, "%lld", (long long)s->priority);
    const char *pj[] = { s->source_canon, profiles, prio, meta, targets, hooks, s->idem_key,
                         s->retry_of, s->user_id };
    int rc = first_value(c, insert_job_sql, 9, pj, id, 37, err);
    const char *pt[] = { id, s->capability, s->source_canon };
    if (rc == 0)
        rc = first_value(c, insert_probe_sql, 3, pt, task, sizeof task, err);
    if (rc == 0)
        rc = kn_orch_enqueue_task_tx(c, task, err);
    if (rc == 0 && secret)
        rc = kn_webhooks_add_for_job(c, id, s->webhook_urls, secret, err);
    if (rc == 0)
        log_submitted(c, id, s->retry_of);
    free(meta);
    free(targets);
    free(hooks);
    return rc == 1 ? WE_EIO : rc;
}

/* After the checks: the transaction, then 201 with the new job (and the
 * webhook secret, NULL when it has no webhook_urls), or 200 with the one
 * that took the idempotency key first. */
static enum MHD_Result insert_checked(kn_req *r, PGconn *c, const kn_job_spec *s,
                                      const char *profiles, const char *secret)
{
    we_err err;
    char id[37];
    int rc = we_pg_exec(c, "BEGIN", 0, NULL, NULL, &err);
    if (rc == 0)
        rc = tx_end(c, insert_job_tx(c, s, profiles, secret, id, &err), &err);
    if (rc == WE_EEXIST && s->idem_key) {
        const char *pk[] = { s->idem_key, s->user_id };
        rc = first_value(c, by_key_sql, 2, pk, id, sizeof id, &err);
        if (rc == 0)
            return reply_job_on(r, c, id, 200);
    }
    if (rc != 0)
        return kn_reply_db_error(r, rc == 1 ? WE_EIO : rc, err.msg);
    we_info("job submitted", WE_S("job_id", id), WE_S("request_id", r->request_id));
    snprintf(r->resource_id, sizeof r->resource_id, "%s", id); /* for the audit */
    enum MHD_Result ret = reply_created(r, c, id, secret);
    kn_event_job(r->kn, "job.created", id); /* a retry's new job too */
    kn_orch_kick(); /* the probe waits in the outbox; after job.created, so it comes first */
    return ret;
}

static enum MHD_Result insert_job(kn_req *r, PGconn *c, const kn_job_spec *s)
{
    enum MHD_Result replied;
    char secret[KN_WEBHOOK_SECRET_HEX] = "";
    bool hooks = json_array_size(s->webhook_urls) > 0;
    char *profiles = json_dumps(s->profiles, JSON_COMPACT);
    if (hooks) /* one secret for all of the job's endpoints */
        we_random_hex(secret, (KN_WEBHOOK_SECRET_HEX - 1) / 2);
    if (check_profiles(r, c, profiles, &replied) == 0)
        replied = insert_checked(r, c, s, profiles, hooks ? secret : NULL);
    free(profiles);
    OPENSSL_cleanse(secret, sizeof secret);
    return replied;
}

/* The job that already holds s's idempotency key: 1 after replying 200 with
 * it, 0 when there is none, -1 after replying an error. */
static int find_by_key(kn_req *r, const kn_job_spec *s, enum MHD_Result *replied)
{
    we_err err;
    char id[37];
    if (!s->idem_key)
        return 0;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    const char *pk[] = { s->idem_key, s->user_id };
    int rc = c ? first_value(c, by_key_sql, 2, pk, id, sizeof id, &err) : WE_EUNAVAIL;
    if (rc == 0)
        *replied = reply_job_on(r, c, id, 200);
    else if (rc != 1)
        *replied = kn_reply_db_error(r, rc, err.msg);
    we_pg_release(r->kn->db, c);
    return rc == 1 ? 0 : rc == 0 ? 1 : -1;
}

/* Each of s's webhook_urls against the /v1/webhooks address policy (may
 * resolve DNS); -1 after replying 422 naming webhook_urls[i]. */
static int check_hooks(kn_req *r, const kn_job_spec *s, enum MHD_Result *replied)
{
    we_err err;
    char field[48], msg[sizeof field + 2 + sizeof err.msg];
    size_t i;
    json_t *u;
    json_array_foreach(s->webhook_urls, i, u) {
        if (kn_webhook_url_check(r->kn, json_string_value(u), &err) == 0)
            continue;
        snprintf(field, sizeof field, "webhook_urls[%zu]", i);
        snprintf(msg, sizeof msg, "%s: %s", field, err.msg);
        *replied = kn_job_invalid(r, field, msg);
        return -1;
    }
    return 0;
}

/* Everything after the body checks, for submissions and retries. */
static enum MHD_Result submit(kn_req *r, kn_job_spec *s)
{
    enum MHD_Result replied;
    we_err err;
    s->user_id = r->who.user_id;
    if (find_by_key(r, s, &replied) != 0)
        return replied;
    if (kn_job_source_check(r->kn, s->source_url, &s->source_canon, &err) != 0)
        return kn_job_invalid(r, "source_url", err.msg);
    if (check_hooks(r, s, &replied) != 0)
        return replied;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    if (!c)
        return kn_reply_db_error(r, WE_EUNAVAIL, err.msg);
    replied = insert_job(r, c, s);
    we_pg_release(r->kn->db, c);
    return replied;
}

enum MHD_Result kn_api_jobs_create(kn_req *r)
{
    enum MHD_Result replied;
    json_t *body = NULL;
    kn_job_spec s;
    char field[128];
    we_err err;
    if (kn_body_object(r, &body, &replied) != 0)
        return replied;
    if (kn_job_spec_parse(body, &s, field, &err) != 0)
        replied = kn_job_invalid(r, field, err.msg);
    else if (idem_key(r, &s, &replied) == 0)
        replied = submit(r, &s);
    kn_job_spec_fini(&s);
    return replied;
}

/* ---- cancel ------------------------------------------------------------------- */

/* 409 naming the job's final status (404 when it is gone). */
static enum MHD_Result already_final(kn_req *r, const char *id)
{
    we_err err;
    char status[32], msg[64];
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? first_value(c, "SELECT status FROM jobs WHERE id = $1::uuid", 1, &id, status,
                             sizeof status, &err)
               : WE_EUNAVAIL;
    we_pg_release(r->kn->db, c);
    if (rc == 1)
        return kn_job_not_found(r);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    snprintf(msg, sizeof msg, "job is already %s", status);
    return kn_reply_error(r, 409, KN_JOB_TERMINAL, msg, json_pack("{s:s}", "status", status));
}

/* Cancels job id unless it ended; 0, or -1 after replying. */
static int cancel(kn_req *r, const char *id, const char *reason, bool final_ok,
                  enum MHD_Result *replied)
{
    we_err err;
    int rc = kn_orch_cancel_job(r->kn, id, reason, &err);
    if (rc == 0 || (rc == WE_ESTATE && final_ok))
        return 0;
    if (rc == WE_ENOENT)
        *replied = kn_job_not_found(r);
    else if (rc == WE_ESTATE)
        *replied = already_final(r, id);
    else
        *replied = kn_reply_db_error(r, rc, err.msg);
    return -1;
}

enum MHD_Result kn_api_jobs_cancel(kn_req *r)
{
    enum MHD_Result replied;
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return kn_job_not_found(r);
    if (cancel(r, id, "job cancelled by API request", false, &replied) != 0)
        return replied;
    return reply_job(r, id, 200);
}

/* ---- retry -------------------------------------------------------------------- */

/* Reads job id as a submission into s (retry_of set) and whether it ended.
 * -1 after replying (404, 422 when the old job no longer passes the checks). */
static int load_retry(kn_req *r, const char *id, kn_job_spec *s, bool *final,
                      enum MHD_Result *replied)
{
    we_err err;
    char field[128];
    PGresult *res = NULL;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, retry_source_sql, 1, &id, &res, &err) : WE_EUNAVAIL;
    we_pg_release(r->kn->db, c);
    if (rc != 0) {
        *replied = kn_reply_db_error(r, rc, err.msg);
        return -1;
    }
    json_t *doc = PQntuples(res) ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    *final = PQntuples(res) && PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (!doc) {
        *replied = kn_job_not_found(r);
        return -1;
    }
    if (kn_job_spec_parse(doc, s, field, &err) != 0) {
        *replied = kn_job_invalid(r, field, err.msg);
        return -1;
    }
    s->retry_of = id;
    return 0;
}

enum MHD_Result kn_api_jobs_retry(kn_req *r)
{
    enum MHD_Result replied;
    kn_job_spec s = { 0 };
    bool final = false;
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return kn_job_not_found(r);
    if (load_retry(r, id, &s, &final, &replied) == 0 &&
        (final || cancel(r, id, "job cancelled: retried as a new job", true, &replied) == 0))
        replied = submit(r, &s);
    kn_job_spec_fini(&s);
    return replied;
}

/* ---- delete -------------------------------------------------------------------- */

/* The default storage plugin into id: 1, 0 when the kernel has none, -1
 * when storage plugins are enabled but none is healthy (files would stay). */
static int default_storage(kn_ctx *kn, char id[WE_PLUGIN_ID_MAX + 1])
{
    if (!kn->plugins)
        return 0;
    if (we_host_pick(kn->plugins, WE_PT_STORAGE, id, NULL) == 0)
        return 1;
    json_t *all = we_host_list(kn->plugins), *p;
    size_t i;
    int rc = 0;
    json_array_foreach(all, i, p) {
        const char *type = json_string_value(json_object_get(p, "type"));
        if (type && !strcmp(type, "storage") && json_is_true(json_object_get(p, "enabled")))
            rc = -1;
    }
    json_decref(all);
    return rc;
}

/* storage.delete {prefix: jobs/<id>/} on plugin; 0, or -1 after replying 502. */
static int purge_one(kn_req *r, const char *plugin, const char *job, enum MHD_Result *replied)
{
    we_err err;
    json_t *res = NULL;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "jobs/%s/", job);
    json_t *params = json_pack("{s:s}", "prefix", prefix);
    int rc = r->kn->plugins ? we_host_call(r->kn->plugins, plugin, "storage.delete", params,
                                           60000, NULL, NULL, NULL, &res, NULL, &err)
                            : we_err_set(&err, WE_ENOENT, "the kernel runs no plugins");
    json_decref(params);
    json_decref(res);
    if (rc == 0)
        return 0;
    we_warn("job files not deleted", WE_S("job_id", job), WE_S("plugin", plugin),
            WE_ERR(err.msg), WE_S("request_id", r->request_id));
    *replied = kn_reply_error(r, 502, "WE-STO-500",
                              "the job's stored files could not be deleted; the job is kept",
                              json_pack("{s:s, s:s}", "plugin", plugin, "reason", err.msg));
    return -1;
}

/* Deletes the job's files from the default storage and from every plugin
 * that holds one of its outputs (plugins: JSON array of ids). */
static int purge(kn_req *r, const char *job, json_t *plugins, enum MHD_Result *replied)
{
    char def[WE_PLUGIN_ID_MAX + 1];
    size_t i;
    json_t *p;
    int d = default_storage(r->kn, def);
    if (d < 0) {
        *replied = kn_reply_error(r, 502, "WE-STO-500", "no storage plugin is healthy; the job "
                                                        "is kept", NULL);
        return -1;
    }
    if (d == 1 && purge_one(r, def, job, replied) != 0)
        return -1;
    json_array_foreach(plugins, i, p) {
        const char *id = json_string_value(p);
        if (id && (d != 1 || strcmp(id, def) != 0) && purge_one(r, id, job, replied) != 0)
            return -1;
    }
    return 0;
}

/* Reads what delete needs: -1 after replying (404 included). */
static int load_delete(kn_req *r, const char *id, bool *final, json_t **plugins,
                       enum MHD_Result *replied)
{
    we_err err;
    PGresult *res = NULL;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, delete_source_sql, 1, &id, &res, &err) : WE_EUNAVAIL;
    we_pg_release(r->kn->db, c);
    if (rc != 0) {
        *replied = kn_reply_db_error(r, rc, err.msg);
        return -1;
    }
    *plugins = PQntuples(res) ? json_loads(PQgetvalue(res, 0, 1), 0, NULL) : NULL;
    *final = PQntuples(res) && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!*plugins)
        *replied = kn_job_not_found(r);
    return *plugins ? 0 : -1;
}

/* DELETE the row (cascading to tasks, outbox, outputs, log). */
static enum MHD_Result delete_row(kn_req *r, const char *id)
{
    we_err err;
    char gone[37];
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? first_value(c, "DELETE FROM jobs WHERE id = $1::uuid RETURNING id", 1, &id,
                             gone, sizeof gone, &err)
               : WE_EUNAVAIL;
    we_pg_release(r->kn->db, c);
    if (rc == 1)
        return kn_job_not_found(r);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    we_info("job deleted", WE_S("job_id", id), WE_S("request_id", r->request_id));
    return kn_reply_text(r, 204, "application/json", "", 0);
}

enum MHD_Result kn_api_jobs_delete(kn_req *r)
{
    enum MHD_Result replied;
    json_t *plugins = NULL;
    bool final = false;
    const char *id = kn_param(r, 0);
    if (!kn_job_id_valid(id))
        return kn_job_not_found(r);
    if (load_delete(r, id, &final, &plugins, &replied) == 0 &&
        (final || cancel(r, id, "job cancelled: deleted", true, &replied) == 0) &&
        purge(r, id, plugins, &replied) == 0)
        replied = delete_row(r, id);
    json_decref(plugins);
    return replied;
}
