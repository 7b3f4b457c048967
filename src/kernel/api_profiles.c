/*
 * /v1/profiles: list, read, create, change and delete encoding profiles.
 * The system presets (seeded by migration 0005, is_system) are read-only;
 * custom profiles are validated with we_profile_validate (strict: unknown
 * keys refused, the message names the field) and, for a ladder, against the
 * profiles its renditions name. A profile that unfinished jobs or a ladder
 * still use cannot be deleted. Errors: WE-JOB-003 unknown profile (404),
 * WE-JOB-020 invalid (422), WE-JOB-021 system profile (409), WE-JOB-022
 * exists (409), WE-JOB-023 in use (409).
 *
 * Every guard that matters under concurrency lives in the one SQL statement
 * that writes (UPDATE/DELETE ... WHERE NOT is_system AND ...); when such a
 * statement changes nothing, a second query finds out why, for the reply.
 * PostgreSQL builds the JSON documents. Handlers run on MHD's threads and
 * share nothing but the pool.
 */
#include "api.h"
#include "we_log.h"
#include "we_profile.h"

#include <string.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define PROFILE_COLS                                                                               \
    "id, name, description, is_system AS system, config, " TS("created_at") " AS created_at, " TS( \
        "updated_at") " AS updated_at"
#define UNFINISHED "'queued', 'processing', 'stitching', 'uploading'"
#define NAME_MAX_LEN 128
#define DESCRIPTION_MAX_LEN 2000

static const char *const sql_list =
    "SELECT coalesce(json_agg(p ORDER BY p.system DESC, p.id), '[]') FROM (SELECT " PROFILE_COLS
    " FROM profiles WHERE $1::boolean IS NULL OR is_system = $1::boolean) p";
static const char *const sql_get =
    "SELECT row_to_json(p) FROM (SELECT " PROFILE_COLS " FROM profiles WHERE id = $1) p";
static const char *const sql_insert =
    "WITH p AS (INSERT INTO profiles (id, name, description, config)"
    " VALUES ($1, $2, coalesce($3, ''), $4::jsonb) RETURNING " PROFILE_COLS ")"
    " SELECT row_to_json(p) FROM p";
static const char *const sql_update =
    "WITH p AS (UPDATE profiles SET name = coalesce($2, name),"
    " description = coalesce($3, description), config = coalesce($4::jsonb, config)"
    " WHERE id = $1 AND NOT is_system RETURNING " PROFILE_COLS ")"
    " SELECT row_to_json(p) FROM p";
static const char *const sql_delete =
    "DELETE FROM profiles WHERE id = $1 AND NOT is_system"
    " AND NOT EXISTS (SELECT 1 FROM jobs WHERE $1 = ANY(profiles) AND status IN (" UNFINISHED "))"
    " AND NOT EXISTS (SELECT 1 FROM profiles l WHERE l.config->'renditions' ? $1)"
    " RETURNING json_build_object('id', id)";
/* Why a guarded UPDATE/DELETE of profile $1 changed nothing. */
static const char *const sql_why =
    "SELECT json_build_object('system', is_system,"
    " 'jobs', (SELECT count(*) FROM jobs WHERE $1 = ANY(profiles) AND status IN (" UNFINISHED ")),"
    " 'ladder', (SELECT min(l.id) FROM profiles l WHERE l.config->'renditions' ? $1))"
    " FROM profiles WHERE id = $1";
/* The first rendition ($1, a JSON array) that is unknown, a ladder, or the
 * ladder ($2) itself. */
static const char *const sql_renditions =
    "SELECT json_build_object('index', u.i - 1, 'id', u.r, 'known', p.id IS NOT NULL)"
    " FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS u(r, i)"
    " LEFT JOIN profiles p ON p.id = u.r"
    " WHERE p.id IS NULL OR p.config ? 'renditions' OR u.r = $2 ORDER BY u.i LIMIT 1";
/* A ladder that lists $1 (which then may not become a ladder itself). */
static const char *const sql_listed_by =
    "SELECT to_json(min(id)) FROM profiles WHERE config->'renditions' ? $1 AND id <> $1";

static enum MHD_Result unknown(kn_req *r, const char *id)
{
    char msg[128];
    snprintf(msg, sizeof msg, "unknown profile %s", we_profile_id_valid(id) ? id : "");
    return kn_reply_error(r, 404, "WE-JOB-003", msg, NULL);
}

/* 422 WE-JOB-020 for "<field>: <problem>"; details name the field. */
static enum MHD_Result invalid(kn_req *r, const char *msg)
{
    size_t n = strcspn(msg, ":");
    json_t *d = json_pack("{s:s%}", "field", msg, n);
    return kn_reply_error(r, 422, "WE-JOB-020", msg, d);
}

/* ---- request bodies ------------------------------------------------------------ */

typedef struct prof_body {
    const char *id, *name, *description; /* borrowed from the body */
    json_t *config;                      /* borrowed; NULL when absent */
} prof_body;

static int check_text(json_t *body, const char *key, size_t max, bool required, we_err *err)
{
    json_t *v = json_object_get(body, key);
    if (!v && !required)
        return 0;
    size_t n = json_string_length(v);
    bool blank_ok = strcmp(key, "description") == 0;
    if (!json_is_string(v) || n > max || (n == 0 && !blank_ok))
        return we_err_set(err, WE_EINVAL, "%s: expected a string of %d to %zu characters", key,
                          blank_ok ? 0 : 1, max);
    return 0;
}

/* Fields of a POST (create) or PUT body, checked; config validated. */
static int parse_body(json_t *body, bool create, prof_body *b, we_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "description") && strcmp(key, "config") &&
            (!create || strcmp(key, "id")))
            return we_err_set(err, WE_EINVAL, "%s: unknown field", key);
    }
    b->id = json_string_value(json_object_get(body, "id"));
    b->name = json_string_value(json_object_get(body, "name"));
    b->description = json_string_value(json_object_get(body, "description"));
    b->config = json_object_get(body, "config");
    if (create && !we_profile_id_valid(b->id))
        return we_err_set(err, WE_EINVAL, "id: expected [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    int rc = check_text(body, "name", NAME_MAX_LEN, create, err);
    if (rc == 0)
        rc = check_text(body, "description", DESCRIPTION_MAX_LEN, false, err);
    if (rc == 0 && !create && !b->name && !b->description && !b->config)
        rc = we_err_set(err, WE_EINVAL, "body: expected at least one of name, description, config");
    if (rc == 0 && (create || b->config) && !json_is_object(b->config))
        rc = we_err_set(err, WE_EINVAL, "config: expected an object");
    if (rc == 0 && b->config && we_profile_validate(b->config, err) != 0) {
        char inner[sizeof err->msg];
        snprintf(inner, sizeof inner, "%s", err->msg);
        rc = we_err_set(err, WE_EINVAL, "config.%s", inner);
    }
    return rc;
}

/* A ladder's renditions must be existing, non-ladder profiles other than
 * itself, and a profile some ladder lists may not become a ladder. 0 when
 * fine; else -1 with the reply queued in *replied. */
static int check_ladder(kn_req *r, const char *id, json_t *config, enum MHD_Result *replied)
{
    we_err err;
    json_t *bad = NULL;
    char *list = json_dumps(json_object_get(config, "renditions"), JSON_COMPACT);
    const char *p[2] = { list, id };
    int rc = kn_api_json(r, sql_renditions, 2, p, &bad, &err);
    free(list);
    if (rc == 0 && !bad)
        rc = kn_api_json(r, sql_listed_by, 1, &id, &bad, &err);
    if (rc != 0) {
        *replied = kn_reply_db_error(r, rc, err.msg);
        return -1;
    }
    if (!bad)
        return 0;
    char msg[256];
    if (json_is_string(bad))
        snprintf(msg, sizeof msg,
                 "config.renditions: %s is a rendition of ladder %s, so it "
                 "cannot be a ladder",
                 id, json_string_value(bad));
    else
        snprintf(msg, sizeof msg, "config.renditions[%lld]: %s%s%s",
                 (long long)json_integer_value(json_object_get(bad, "index")),
                 json_is_true(json_object_get(bad, "known")) ? "" : "unknown profile ",
                 json_string_value(json_object_get(bad, "id")),
                 json_is_true(json_object_get(bad, "known")) ? " is a ladder itself" : "");
    json_decref(bad);
    *replied = invalid(r, msg);
    return -1;
}

/* Parses and validates the body (and a ladder's renditions). 0, or -1 with
 * the reply queued. *body: the parsed body (json_decref it) on success. */
static int read_body(kn_req *r, bool create, const char *id, json_t **body, prof_body *b,
                     enum MHD_Result *replied)
{
    we_err err;
    if (kn_body_object(r, body, replied) != 0)
        return -1;
    int rc = parse_body(*body, create, b, &err);
    if (rc != 0)
        *replied = invalid(r, err.msg);
    else if (b->config && we_profile_is_ladder(b->config))
        rc = check_ladder(r, create ? b->id : id, b->config, replied);
    if (rc != 0) {
        json_decref(*body);
        *body = NULL;
        return -1;
    }
    return 0;
}

/* ---- handlers ------------------------------------------------------------------------ */

enum MHD_Result kn_api_profiles_list(kn_req *r)
{
    const char *sys = kn_query(r, "system");
    if (sys && strcmp(sys, "true") != 0 && strcmp(sys, "false") != 0)
        return kn_reply_error(r, 400, "WE-SYS-004", "system: expected true or false", NULL);
    return kn_api_reply_list(r, sql_list, 1, &sys, "profile");
}

enum MHD_Result kn_api_profiles_get(kn_req *r)
{
    we_err err;
    json_t *p = NULL;
    const char *id = kn_param(r, 0);
    if (!we_profile_id_valid(id))
        return unknown(r, id);
    int rc = kn_api_json(r, sql_get, 1, &id, &p, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    return p ? kn_reply_json(r, 200, p) : unknown(r, id);
}

enum MHD_Result kn_api_profiles_create(kn_req *r)
{
    enum MHD_Result replied;
    we_err err;
    json_t *body = NULL, *p = NULL;
    prof_body b;
    if (read_body(r, true, NULL, &body, &b, &replied) != 0)
        return replied;
    char *config = json_dumps(b.config, JSON_COMPACT);
    const char *params[4] = { b.id, b.name, b.description, config };
    int rc = kn_api_json(r, sql_insert, 4, params, &p, &err);
    free(config);
    if (rc == 0) {
        we_info("profile created", WE_S("profile", b.id), WE_S("request_id", r->request_id));
        snprintf(r->resource_id, sizeof r->resource_id, "%s", b.id); /* for the audit */
    }
    if (rc == WE_EEXIST) {
        char msg[128];
        snprintf(msg, sizeof msg, "profile %s exists", b.id);
        replied = kn_reply_error(r, 409, "WE-JOB-022", msg, NULL);
    } else if (rc != 0) {
        replied = kn_reply_db_error(r, rc, err.msg);
    } else {
        replied = p ? kn_reply_json(r, 201, p) : kn_reply_internal(r, "insert returned no row");
    }
    json_decref(body);
    return replied;
}

/* The reply for a guarded UPDATE/DELETE of id that changed nothing: the
 * profile is gone, a system one, or (deleting) still in use. */
static enum MHD_Result refused(kn_req *r, const char *id, bool deleting)
{
    we_err err;
    json_t *why = NULL;
    char msg[200];
    int rc = kn_api_json(r, sql_why, 1, &id, &why, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    if (!why)
        return unknown(r, id);
    json_int_t jobs = json_integer_value(json_object_get(why, "jobs"));
    const char *ladder = json_string_value(json_object_get(why, "ladder"));
    bool system = json_is_true(json_object_get(why, "system")) || !deleting;
    if (system)
        snprintf(msg, sizeof msg, "profile %s is a system profile and read-only", id);
    else if (jobs > 0)
        snprintf(msg, sizeof msg, "profile %s is used by %lld unfinished job(s)", id,
                 (long long)jobs);
    else
        snprintf(msg, sizeof msg, "profile %s is a rendition of ladder %s", id,
                 ladder ? ladder : "(one that changed meanwhile; retry)");
    json_decref(why);
    return kn_reply_error(r, 409, system ? "WE-JOB-021" : "WE-JOB-023", msg, NULL);
}

enum MHD_Result kn_api_profiles_update(kn_req *r)
{
    enum MHD_Result replied;
    we_err err;
    json_t *body = NULL, *p = NULL;
    prof_body b;
    const char *id = kn_param(r, 0);
    if (!we_profile_id_valid(id))
        return unknown(r, id);
    if (read_body(r, false, id, &body, &b, &replied) != 0)
        return replied;
    char *config = b.config ? json_dumps(b.config, JSON_COMPACT) : NULL;
    const char *params[4] = { id, b.name, b.description, config };
    int rc = kn_api_json(r, sql_update, 4, params, &p, &err);
    free(config);
    json_decref(body);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    if (!p)
        return refused(r, id, false);
    we_info("profile changed", WE_S("profile", id), WE_S("request_id", r->request_id));
    return kn_reply_json(r, 200, p);
}

enum MHD_Result kn_api_profiles_delete(kn_req *r)
{
    we_err err;
    json_t *gone = NULL;
    const char *id = kn_param(r, 0);
    if (!we_profile_id_valid(id))
        return unknown(r, id);
    int rc = kn_api_json(r, sql_delete, 1, &id, &gone, &err);
    if (rc != 0)
        return kn_reply_db_error(r, rc, err.msg);
    if (!gone)
        return refused(r, id, true);
    json_decref(gone);
    we_info("profile deleted", WE_S("profile", id), WE_S("request_id", r->request_id));
    return kn_reply_text(r, 204, "application/json", "", 0);
}
