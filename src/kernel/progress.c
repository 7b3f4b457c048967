/*
 * job.progress events, throttled per job. Workers report progress several
 * times a second per task; the orchestrator's progress thread applies every
 * report to the database and hands the job's new totals here, which turn
 * into a job.progress event (kn_event_emit: SSE on every kernel, webhooks,
 * notifications) only when the job's previous one is at least
 * KN_PROGRESS_EVENT_MS old. Dropped intermediate values are harmless: each
 * event carries the job's absolute progress, and the terminal job.* event
 * follows. The throttle table is direct-mapped by a hash of the job id and
 * owned by the progress thread (no lock); two busy jobs sharing a slot only
 * emit a little more often.
 */
#include "progress.h"
#include "events.h"
#include "we_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 1024

static struct {
    char job_id[40];
    int64_t last_ms;
} g_slots[SLOTS];

static unsigned slot_of(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % SLOTS;
}

bool kn_progress_due(const char *job_id, int64_t now_ms)
{
    unsigned i = slot_of(job_id);
    if (strcmp(g_slots[i].job_id, job_id) == 0 &&
        now_ms - g_slots[i].last_ms < KN_PROGRESS_EVENT_MS)
        return false;
    snprintf(g_slots[i].job_id, sizeof g_slots[i].job_id, "%s", job_id);
    g_slots[i].last_ms = now_ms;
    return true;
}

static json_t *value_or_null(PGresult *res, int row, int col, bool integer)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    const char *v = PQgetvalue(res, row, col);
    if (integer)
        return json_integer(strtoll(v, NULL, 10));
    return json_real(round(strtod(v, NULL) * 100.0) / 100.0);
}

void kn_progress_emit(kn_ctx *kn, PGresult *res)
{
    int64_t now = we_now_mono_ms();
    for (int i = 0; res && i < PQntuples(res) && PQnfields(res) >= 5; i++) {
        const char *id = PQgetvalue(res, i, 0);
        if (!kn_progress_due(id, now))
            continue;
        json_t *data =
            json_pack("{s:s, s:s, s:o, s:o}", "id", id, "status", PQgetvalue(res, i, 1), "progress",
                      value_or_null(res, i, 2, false), "eta_s", value_or_null(res, i, 3, true));
        kn_event_emit(kn, "job.progress", "job", id,
                      PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4), data);
    }
}
