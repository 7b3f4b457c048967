/*
 * kn_event_job: the job.* domain events (job.created, job.started,
 * job.completed, job.failed, job.cancelled) with the job as their data,
 * read in one query after the transaction that changed the job committed.
 * Callers — api_jobs.c (created), orch_apply.c (started, completed,
 * failed), orch.c (cancelled) — call it once per transition they made, so
 * with several kernels the kernel that made a change announces it.
 * Any thread; a database error drops the event with a log line.
 */
#include "events.h"
#include "we_log.h"

#include <string.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* clang-format off */
static const char *const job_sql =
    "SELECT j.user_id::text, json_build_object('id', j.id, 'status', j.status,"
    " 'profiles', to_json(j.profiles), 'progress', round(j.progress::numeric, 2),"
    " 'priority', j.priority, 'metadata', j.metadata, 'retry_of', j.retry_of,"
    " 'outputs', (SELECT count(*) FROM job_outputs o WHERE o.job_id = j.id),"
    " 'error_code', j.error_code, 'error_message', j.error_message,"
    " 'created_at', " TS("j.created_at") ", 'started_at', " TS("j.started_at") ","
    " 'finished_at', " TS("j.finished_at") ")::text FROM jobs j WHERE j.id = $1::uuid";
/* clang-format on */

void kn_event_job(kn_ctx *kn, const char *type, const char *job_id)
{
    we_err err;
    PGresult *r = NULL;
    PGconn *c = we_pg_acquire(kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, job_sql, 1, &job_id, &r, &err) : WE_EUNAVAIL;
    we_pg_release(kn->db, c);
    if (rc != 0 || PQntuples(r) != 1) {
        we_warn("job event dropped", WE_S("event", type), WE_S("job_id", job_id),
                WE_ERR(rc != 0 ? err.msg : "no such job"));
        PQclear(r);
        return;
    }
    json_t *data = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
    const char *user = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
    kn_event_emit(kn, type, "job", job_id, user, data);
    PQclear(r);
}
