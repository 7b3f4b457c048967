/*
 * Planning a job once its probe is in (DESIGN §6.3): segments cut only at
 * source keyframes (src/lib/we_plan.c; one segment when a single healthy
 * worker can take the job), one video task per (profile, segment) with the
 * profile's FFmpeg options (src/lib/we_profile.c), and one audio task per
 * distinct audio encoding — normally one for the whole title — that every
 * profile sharing it stitches in. An HLS ladder expands into its renditions:
 * video tasks under the task profile "<ladder>.<rendition>" (so outputs go
 * to jobs/<job>/<ladder>.<rendition>/), every rendition on the same segment
 * boundaries, which needs the same keyframe interval (else WE-JOB-020); the
 * package task comes after their stitches (orch_apply.c). Runs inside the
 * event's transaction with the job row locked.
 */
#include "orch_int.h"
#include "we_log.h"

#if __has_include("we_plan.h") && __has_include("we_profile.h")
#include "we_plan.h"
#include "we_profile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct plan_ctx {
    kn_ctx *kn;
    PGconn *c;
    const char *job_id;
    const char *input;
    json_t *probe;
    we_source_info src;
    double start_s;
    json_t *keyframes;
    int segments_made, audio_made;
    we_err *err;
} plan_ctx;

/* Fails the job for a reason the source or profile carries (no retry). */
static int fail_plan(plan_ctx *p, const char *code, const char *msg)
{
    const char *q[] = { p->job_id, code, msg };
    we_warn("job cannot be planned", WE_S("job_id", p->job_id), WE_ERR(msg));
    kn_job_log(p->c, p->job_id, NULL, "error", msg);
    return we_pg_exec(p->c, "UPDATE jobs SET status = 'failed', error_code = $2,"
                            " error_message = $3, finished_at = now() WHERE id = $1::uuid",
                      3, q, NULL, p->err);
}

static double rate_of(const char *s)
{
    int num = 0, den = 1;
    if (s && sscanf(s, "%d/%d", &num, &den) == 2 && den > 0)
        return (double)num / den;
    return s ? atof(s) : 0;
}

/* Reads fps, size, duration, audio presence, keyframes from the probe. */
static bool read_probe(plan_ctx *p)
{
    json_t *streams = json_object_get(p->probe, "streams"), *st;
    size_t i;
    bool video = false;
    p->src.duration_s = json_number_value(json_object_get(p->probe, "duration_s"));
    p->start_s = json_number_value(json_object_get(p->probe, "start_time_s"));
    p->keyframes = json_object_get(p->probe, "keyframes_s");
    json_array_foreach(streams, i, st)
    {
        const char *type = json_string_value(json_object_get(st, "type"));
        if (type && !strcmp(type, "audio"))
            p->src.has_audio = true;
        if (type && !strcmp(type, "video") && !video) {
            video = true;
            json_t *fps = json_object_get(st, "fps");
            p->src.fps = json_is_number(fps) ? json_number_value(fps)
                                              : rate_of(json_string_value(fps));
            p->src.width = (int)json_integer_value(json_object_get(st, "width"));
            p->src.height = (int)json_integer_value(json_object_get(st, "height"));
        }
    }
    return video && p->src.fps > 0 && p->src.duration_s > 0;
}

/* Healthy workers that advertise cap (decides whether to split at all). */
static int capable_workers(plan_ctx *p, const char *cap)
{
    PGresult *r = NULL;
    const char *q[] = { cap };
    int n = 0;
    if (we_pg_exec(p->c, "SELECT count(*) FROM workers WHERE status = 'online'"
                         " AND last_seen >= now() - 3 * heartbeat_interval_ms"
                         " * interval '1 millisecond' AND $1 = ANY(capabilities)",
                   1, q, &r, NULL) == 0) {
        n = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    return n;
}

static int insert_task(plan_ctx *p, const char *type, const char *profile, int seq, double start,
                       double dur, const char *cap, json_t *params)
{
    char sq[16], st[32], du[32];
    snprintf(sq, sizeof sq, "%d", seq);
    snprintf(st, sizeof st, "%.6f", start);
    snprintf(du, sizeof du, "%.6f", dur);
    char *pj = json_dumps(params, JSON_COMPACT);
    const char *q[] = { p->job_id, type, profile, sq, st, du, cap, pj };
    PGresult *r = NULL;
    int rc = we_pg_exec(p->c, "INSERT INTO tasks (job_id, type, status, profile, seq, start_sec,"
                              " duration_sec, capability, params, attempt, max_attempts)"
                              " VALUES ($1::uuid, $2::task_type, 'pending', $3, $4::int,"
                              " $5::double precision, $6::double precision, $7, $8::jsonb, 1, 3)"
                              " ON CONFLICT DO NOTHING RETURNING id::text",
                        8, q, &r, p->err);
    free(pj);
    if (rc == 0 && PQntuples(r) == 1)
        rc = kn_orch_enqueue_task_tx(p->c, PQgetvalue(r, 0, 0), p->err);
    PQclear(r);
    return rc;
}

/* Segment boundaries for a profile's GOP (one list per ladder: every
 * rendition is cut at the same times). */
typedef struct seg_plan {
    we_segment *segs;
    size_t n;
    double first; /* the first video frame's time (we_plan.h) */
} seg_plan;

static int plan_segments(plan_ctx *p, json_t *config, seg_plan *sp)
{
    size_t nkf = json_array_size(p->keyframes);
    double *kf = calloc(nkf + 1, sizeof *kf);
    if (!kf)
        return we_err_set(p->err, WE_ENOMEM, "out of memory");
    for (size_t i = 0; i < nkf; i++)
        kf[i] = json_number_value(json_array_get(p->keyframes, i));
    we_plan_opts o = { .target_s = (double)p->kn->cfg.segment_target_s,
                       .min_s = (double)p->kn->cfg.segment_min_s,
                       .max_s = (double)p->kn->cfg.segment_max_s,
                       .max_segments =
                           capable_workers(p, we_profile_capability(config)) <= 1 ? 1 : 0 };
    /* times relative to the first video frame; -ss counts from the
     * container start, which may be earlier (we_plan.h) */
    sp->first = nkf ? kf[0] : p->start_s;
    int rc = we_plan_segments(kf, nkf, sp->first, p->src.duration_s, p->src.fps,
                              we_profile_gop_frames(config, p->src.fps), &o, &sp->segs, &sp->n,
                              p->err);
    free(kf);
    return rc;
}

/* One video task per segment of sp for profile (a task profile: a profile
 * id, or "<ladder>.<rendition>"); extra (may be NULL) joins each params. */
static int emit_video(plan_ctx *p, const char *profile, json_t *config, const seg_plan *sp,
                      json_t *extra)
{
    json_t *args = NULL;
    const char *ext = "mp4";
    if (we_profile_video_args(config, &p->src, &args, &ext, p->err) != 0)
        return fail_plan(p, "WE-JOB-020", p->err->msg) == 0 ? 1 : -1;
    const char *cap = we_profile_capability(config);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sp->n; i++) {
        char key[320];
        json_t *input_args = NULL;
        snprintf(key, sizeof key, "jobs/%s/%s/seg_%04zu.%s", p->job_id, profile, i, ext);
        rc = we_plan_input_args(&sp->segs[i], i + 1 == sp->n, sp->first - p->start_s, &input_args,
                                p->err);
        if (rc != 0)
            break;
        json_t *params = json_pack("{s:s, s:s, s:o, s:O, s:f}", "input", p->input, "output_key",
                                   key, "input_args", input_args, "args", args, "duration_s",
                                   sp->segs[i].duration_s);
        if (params && extra)
            json_object_update(params, extra);
        rc = insert_task(p, "video", profile, (int)i, sp->segs[i].start_s, sp->segs[i].duration_s,
                         cap, params);
        json_decref(params);
        p->segments_made++;
    }
    json_decref(args);
    return rc;
}

static int plan_profile_video(plan_ctx *p, const char *profile, json_t *config)
{
    seg_plan sp = { 0 };
    int rc = plan_segments(p, config, &sp);
    if (rc == 0)
        rc = emit_video(p, profile, config, &sp, NULL);
    free(sp.segs);
    return rc;
}

/* One audio task per distinct audio encoding; "for_profiles" lists who
 * stitches it in. groups maps the args' JSON text -> array of profiles. */
static int plan_audio(plan_ctx *p, json_t *groups)
{
    const char *argtext;
    json_t *g;
    int seq = 0, rc = 0;
    json_object_foreach(groups, argtext, g)
    {
        json_t *args = json_array_get(g, 0), *profiles = json_array_get(g, 1);
        const char *ext = json_string_value(json_array_get(g, 2));
        char key[256];
        snprintf(key, sizeof key, "jobs/%s/audio_%d.%s", p->job_id, seq, ext);
        json_t *params = json_pack("{s:s, s:s, s:O, s:f, s:O}", "input", p->input, "output_key",
                                   key, "args", args, "duration_s", p->src.duration_s,
                                   "for_profiles", profiles);
        rc = insert_task(p, "audio", NULL, seq++, 0, p->src.duration_s, "cpu", params);
        json_decref(params);
        p->audio_made++;
        if (rc != 0)
            break;
    }
    return rc;
}

static int add_audio_group(plan_ctx *p, json_t *groups, const char *profile, json_t *config)
{
    json_t *args = NULL;
    const char *ext = "m4a";
    if (!p->src.has_audio || json_is_null(json_object_get(config, "audio")) ||
        !json_object_get(config, "audio"))
        return 0;
    if (we_profile_audio_args(config, &args, &ext, p->err) != 0)
        return fail_plan(p, "WE-JOB-020", p->err->msg) == 0 ? 1 : -1;
    char *key = json_dumps(args, JSON_COMPACT);
    json_t *g = json_object_get(groups, key);
    if (!g) {
        g = json_pack("[O, [], s]", args, ext);
        json_object_set_new(groups, key, g);
    }
    json_array_append_new(json_array_get(g, 1), json_string(profile));
    free(key);
    json_decref(args);
    return 0;
}

static PGresult *job_profiles(plan_ctx *p)
{
    PGresult *r = NULL;
    const char *q[] = { p->job_id };
    if (we_pg_exec(p->c, "SELECT pr.id, pr.config::text, j.source_url FROM jobs j"
                         " JOIN LATERAL unnest(j.profiles) WITH ORDINALITY AS u(id, ord) ON true"
                         " JOIN profiles pr ON pr.id = u.id WHERE j.id = $1::uuid ORDER BY u.ord",
                   1, q, &r, p->err) != 0)
        return NULL;
    return r;
}

/* A ladder's renditions (id, config text) in ladder order; a rendition
 * that no longer exists comes back with a NULL config. */
static PGresult *ladder_renditions(plan_ctx *p, const char *ladder)
{
    PGresult *r = NULL;
    const char *q[] = { ladder };
    if (we_pg_exec(p->c, "SELECT u.id, pr.config::text FROM profiles l"
                         " CROSS JOIN LATERAL jsonb_array_elements_text(l.config->'renditions')"
                         "  WITH ORDINALITY AS u(id, ord)"
                         " LEFT JOIN profiles pr ON pr.id = u.id WHERE l.id = $1 ORDER BY u.ord",
                   1, q, &r, p->err) != 0)
        return NULL;
    return r;
}

/* Loads the renditions' configs into configs (a new array, ladder order)
 * and checks they can share one segment plan: same keyframe interval. 0,
 * 1 when the job failed for it, or < 0. */
static int load_renditions(plan_ctx *p, const char *ladder, PGresult *r, json_t *configs)
{
    char msg[400];
    int gop0 = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *config = PQgetisnull(r, i, 1) ? NULL : json_loads(PQgetvalue(r, i, 1), 0, NULL);
        if (!config || we_profile_is_ladder(config)) {
            json_decref(config);
            snprintf(msg, sizeof msg, "ladder %s: rendition %s is not an encoding profile",
                     ladder, PQgetvalue(r, i, 0));
            return fail_plan(p, "WE-JOB-020", msg) == 0 ? 1 : -1;
        }
        json_array_append_new(configs, config);
        int gop = we_profile_gop_frames(config, p->src.fps);
        if (i > 0 && gop != gop0) {
            snprintf(msg, sizeof msg,
                     "ladder %s: renditions %s and %s have different keyframe intervals (gop_s);"
                     " HLS switching needs aligned keyframes",
                     ladder, PQgetvalue(r, 0, 0), PQgetvalue(r, i, 0));
            return fail_plan(p, "WE-JOB-020", msg) == 0 ? 1 : -1;
        }
        gop0 = i == 0 ? gop : gop0;
    }
    return 0;
}

/* Video tasks per (rendition, segment) under the task profile
 * "<ladder>.<rendition>", all on one segment plan (the first rendition's),
 * and each rendition in the audio groups. The video params carry "ladder"
 * and "rendition" (its index) for the package step (orch_apply.c). */
static int plan_renditions(plan_ctx *p, const char *ladder, PGresult *r, json_t *configs,
                           json_t *groups)
{
    seg_plan sp = { 0 };
    int rc = plan_segments(p, json_array_get(configs, 0), &sp);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        char profile[160];
        json_t *config = json_array_get(configs, (size_t)i);
        snprintf(profile, sizeof profile, "%s.%s", ladder, PQgetvalue(r, i, 0));
        json_t *extra = json_pack("{s:s, s:i}", "ladder", ladder, "rendition", i);
        rc = emit_video(p, profile, config, &sp, extra);
        json_decref(extra);
        if (rc == 0)
            rc = add_audio_group(p, groups, profile, config);
    }
    free(sp.segs);
    return rc;
}

static int plan_ladder(plan_ctx *p, const char *ladder, json_t *config, json_t *groups)
{
    const char *packaging = json_string_value(json_object_get(config, "packaging"));
    if (!packaging || strcmp(packaging, "hls") != 0)
        return fail_plan(p, "WE-JOB-024", "DASH packaging is not implemented yet; use an HLS"
                                          " ladder (\"packaging\": \"hls\")") == 0
                   ? 1
                   : -1;
    PGresult *r = ladder_renditions(p, ladder);
    if (!r)
        return WE_EIO;
    json_t *configs = json_array();
    int rc = PQntuples(r) == 0 ? (fail_plan(p, "WE-JOB-020", "the ladder has no renditions") == 0
                                      ? 1
                                      : -1)
                               : load_renditions(p, ladder, r, configs);
    if (rc == 0)
        rc = plan_renditions(p, ladder, r, configs, groups);
    json_decref(configs);
    PQclear(r);
    return rc;
}

static int plan_all(plan_ctx *p, PGresult *r)
{
    int rc = 0;
    json_t *groups = json_object();
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        json_t *config = json_loads(PQgetvalue(r, i, 1), 0, NULL);
        const char *id = PQgetvalue(r, i, 0);
        p->input = PQgetvalue(r, i, 2);
        if (we_profile_is_ladder(config))
            rc = plan_ladder(p, id, config, groups);
        else {
            rc = plan_profile_video(p, id, config);
            if (rc == 0)
                rc = add_audio_group(p, groups, id, config);
        }
        json_decref(config);
    }
    if (rc == 0)
        rc = plan_audio(p, groups);
    json_decref(groups);
    return rc > 0 ? 0 : rc;
}

int kn_plan_job_tx(kn_ctx *kn, PGconn *c, const char *job_id, json_t *probe, we_err *err)
{
    plan_ctx p = { .kn = kn, .c = c, .job_id = job_id, .probe = probe, .err = err };
    char *pj = json_dumps(probe, JSON_COMPACT);
    char dur[32];
    const char *q[] = { job_id, pj, dur };
    if (!read_probe(&p)) {
        free(pj);
        return fail_plan(&p, "WE-JOB-010", "the source has no decodable video stream");
    }
    snprintf(dur, sizeof dur, "%.6f", p.src.duration_s);
    int rc = we_pg_exec(c, "UPDATE jobs SET probe = $2::jsonb, total_seconds = $3::double precision"
                           " WHERE id = $1::uuid",
                        3, q, NULL, err);
    free(pj);
    PGresult *r = rc == 0 ? job_profiles(&p) : NULL;
    if (rc == 0 && !r)
        rc = WE_EIO;
    if (rc == 0)
        rc = plan_all(&p, r);
    PQclear(r);
    if (rc == 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "planned %d video segment tasks and %d audio tasks",
                 p.segments_made, p.audio_made);
        kn_job_log(c, job_id, NULL, "info", msg);
        we_info("job planned", WE_S("job_id", job_id), WE_I("video_tasks", p.segments_made),
                WE_I("audio_tasks", p.audio_made), WE_D("duration_s", p.src.duration_s));
    }
    return rc;
}
#else
/* TEMPORARY until src/lib/we_plan.c and we_profile.c land. */
int kn_plan_job_tx(kn_ctx *kn, PGconn *c, const char *job_id, json_t *probe, we_err *err)
{
    return we_err_set(err, WE_EIO, "planner not built yet");
}
#endif
