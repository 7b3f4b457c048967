/*
 * /v1/auth/me, /v1/users and /v1/tokens: who am I, and the administration
 * of users and API tokens (admins only; the route table says so).
 *
 * The kernel stores no credentials itself: these handlers forward to the
 * first running auth plugin (highest priority) that manages users — one
 * with the auth.user_create method, normally auth-basic — and map its
 * answers onto HTTP. Only the fields each method takes are forwarded, so
 * a request cannot smuggle parameters to the plugin. Passwords and new
 * tokens pass through and are never logged; a new token is returned once,
 * by POST /v1/tokens. After any change this kernel forgets its cached token
 * resolutions (other kernels within AUTH_CACHE_TTL_S).
 */
#include "api.h"
#include "auth.h"
#include "we_log.h"

#include <string.h>

#define CALL_TIMEOUT_MS 10000

/* The id of the auth plugin that manages users, into id; false if none. */
static bool manager(kn_ctx *kn, char *id, size_t len)
{
    json_t *all = kn->plugins ? we_host_list(kn->plugins) : NULL, *p;
    size_t i;
    json_int_t best = 0;
    bool found = false;
    json_array_foreach(all, i, p) {
        const char *state = json_string_value(json_object_get(p, "state"));
        if (!state || (strcmp(state, "healthy") != 0 && strcmp(state, "degraded") != 0) ||
            !json_is_true(json_object_get(p, "enabled")))
            continue;
        size_t j;
        json_t *m;
        bool has = false;
        json_array_foreach(json_object_get(p, "methods"), j, m) has |=
            json_is_string(m) && strcmp(json_string_value(m), "auth.user_create") == 0;
        json_int_t prio = json_integer_value(json_object_get(p, "priority"));
        if (has && (!found || prio > best)) {
            snprintf(id, len, "%s", json_string_value(json_object_get(p, "id")));
            best = prio;
            found = true;
        }
    }
    json_decref(all);
    return found;
}

/* HTTP status for a plugin error code. */
static unsigned status_of(const char *we_code, int rpc_code)
{
    static const struct {
        const char *code;
        unsigned status;
    } map[] = { { "WE-AUTH-004", 409 }, { "WE-AUTH-404", 404 }, { "WE-AUTH-003", 422 },
                { "WE-AUTH-503", 503 }, { "WE-AUTH-500", 500 } };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(we_code, map[i].code) == 0)
            return map[i].status;
    return rpc_code == -32602 ? 422 : 502;
}

/* Calls method with params (stolen) on the managing plugin and replies:
 * its result with ok_status, or the mapped error. */
static enum MHD_Result forward(kn_req *r, const char *method, json_t *params, unsigned ok_status,
                               bool changes)
{
    char id[WE_PLUGIN_ID_MAX + 1];
    if (!manager(r->kn, id, sizeof id)) {
        json_decref(params);
        return kn_reply_error(r, 503, "WE-AUTH-005",
                              "no running auth plugin manages users (enable auth-basic)", NULL);
    }
    json_t *res = NULL;
    we_rpc_error rerr;
    memset(&rerr, 0, sizeof rerr);
    int rc = we_host_call(r->kn->plugins, id, method, params, CALL_TIMEOUT_MS, NULL, NULL, NULL,
                          &res, &rerr, NULL);
    json_decref(params); /* we_host_call borrows it */
    if (changes)
        kn_auth_cache_clear();
    if (rc == 0) {
        json_t *id_field = json_object_get(res, "token_id");
        if (!id_field)
            id_field = json_object_get(res, "user_id");
        if (json_is_string(id_field))
            snprintf(r->resource_id, sizeof r->resource_id, "%s", json_string_value(id_field));
        if (ok_status == 204) {
            json_decref(res);
            return kn_reply_text(r, 204, "application/json", "", 0);
        }
        return kn_reply_json(r, ok_status, res);
    }
    if (rc == WE_EINVAL && rerr.code == -32602)
        return kn_reply_error(r, 422, "WE-SYS-004", rerr.message, NULL);
    if (rc == WE_EIO && rerr.we_code[0] && strncmp(rerr.we_code, "WE-AUTH-", 8) == 0) {
        unsigned st = status_of(rerr.we_code, rerr.code);
        return kn_reply_error(r, st, st == 500 || st == 503 ? "WE-AUTH-005" : rerr.we_code,
                              rerr.message, NULL);
    }
    we_warn("auth plugin call failed", WE_S("plugin", id), WE_S("method", method),
            WE_S("error", rerr.message), WE_S("request_id", r->request_id));
    return kn_reply_error(r, 503, "WE-AUTH-005", "the auth plugin could not answer; retry later",
                          NULL);
}

/* Copies the named fields of body that are present into a new object;
 * refuses unknown fields, naming the first. */
static int pick(kn_req *r, json_t *body, const char *const *fields, json_t **out,
                enum MHD_Result *replied)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        bool known = false;
        for (const char *const *f = fields; *f && !known; f++)
            known = strcmp(*f, key) == 0;
        if (!known) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown field '%.100s'", key);
            *replied = kn_reply_error(r, 422, "WE-SYS-004", msg, json_pack("{s:s}", "field", key));
            return -1;
        }
    }
    *out = json_deep_copy(body);
    return 0;
}

static enum MHD_Result with_body(kn_req *r, const char *const *fields, const char *method,
                                 const char *id_field, unsigned ok_status)
{
    json_t *body, *params;
    enum MHD_Result replied;
    if (kn_body_object(r, &body, &replied) != 0)
        return replied;
    int rc = pick(r, body, fields, &params, &replied);
    json_decref(body);
    if (rc != 0)
        return replied;
    if (id_field)
        json_object_set_new(params, id_field, json_string(kn_param(r, 0)));
    return forward(r, method, params, ok_status, true);
}

enum MHD_Result kn_api_auth_me(kn_req *r)
{
    const kn_identity *w = &r->who;
    return kn_reply_json(r, 200,
                         json_pack("{s:s?, s:s, s:s, s:s, s:s?}", "user_id",
                                   w->user_id[0] ? w->user_id : NULL, "username", w->name, "role",
                                   kn_role_name(w->role), "via", w->via, "token_id",
                                   w->token_id[0] ? w->token_id : NULL));
}

enum MHD_Result kn_api_users_list(kn_req *r)
{
    return forward(r, "auth.user_list", json_object(), 200, false);
}

enum MHD_Result kn_api_users_create(kn_req *r)
{
    static const char *const fields[] = { "username", "password", "role", NULL };
    return with_body(r, fields, "auth.user_create", NULL, 201);
}

enum MHD_Result kn_api_users_update(kn_req *r)
{
    static const char *const fields[] = { "role", "disabled", NULL };
    return with_body(r, fields, "auth.user_update", "user_id", 200);
}

enum MHD_Result kn_api_users_password(kn_req *r)
{
    static const char *const fields[] = { "password", NULL };
    return with_body(r, fields, "auth.user_set_password", "user_id", 204);
}

enum MHD_Result kn_api_users_delete(kn_req *r)
{
    return forward(r, "auth.user_delete", json_pack("{s:s}", "user_id", kn_param(r, 0)), 204,
                   true);
}

enum MHD_Result kn_api_tokens_list(kn_req *r)
{
    const char *user = kn_query(r, "user_id");
    return forward(r, "auth.token_list", user ? json_pack("{s:s}", "user_id", user) : json_object(),
                   200, false);
}

enum MHD_Result kn_api_tokens_create(kn_req *r)
{
    static const char *const fields[] = { "user_id", "name", "role", "expires_in_s", NULL };
    return with_body(r, fields, "auth.token_create", NULL, 201);
}

enum MHD_Result kn_api_tokens_revoke(kn_req *r)
{
    return forward(r, "auth.token_revoke", json_pack("{s:s}", "token_id", kn_param(r, 0)), 204,
                   true);
}
