/*
 * auth.user_create, user_delete, user_list, user_set_password, user_update.
 *
 * Usernames are 3..64 of [A-Za-z0-9._@-]; passwords at least 12 characters
 * (at most 1024 bytes). Passwords are hashed (hash.c) before the database
 * lock is taken and never leave this process in any other form; results
 * never carry hashes. Deleting a user deletes their tokens (ON DELETE
 * CASCADE in the schema).
 */
#include "ab.h"

#include <stdio.h>
#include <string.h>

static const char SQL_CREATE[] =
    "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3::user_role) "
    "RETURNING id, username, role, " AB_TS(created_at);
static const char SQL_DELETE[] = "DELETE FROM users WHERE id = $1::uuid RETURNING id";
static const char SQL_LIST[] =
    "SELECT id, username, role, disabled, " AB_TS(created_at) ", " AB_TS(last_login_at)
    " FROM users ORDER BY username";
static const char SQL_SET_PASSWORD[] =
    "UPDATE users SET password_hash = $2 WHERE id = $1::uuid RETURNING id";
static const char SQL_UPDATE[] =
    "UPDATE users SET role = coalesce($2::user_role, role), "
    "disabled = coalesce($3::boolean, disabled) WHERE id = $1::uuid "
    "RETURNING id, username, role, disabled, " AB_TS(created_at) ", " AB_TS(last_login_at);

/* id, username, role, disabled, created_at, last_login_at */
static json_t *user_json(const PGresult *r, int row)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o}", "user_id", PQgetvalue(r, row, 0),
                     "username", PQgetvalue(r, row, 1), "role", PQgetvalue(r, row, 2),
                     "disabled", ab_col_bool(r, row, 3), "created_at", ab_col_str(r, row, 4),
                     "last_login_at", ab_col_str(r, row, 5));
}

/* The password param, checked and hashed into out. */
static int password_hash(we_plugin_call *call, json_t *params, char out[AB_HASH_MAX])
{
    const ab_state *st = we_plugin_state(call);
    const char *pw;
    size_t len;
    char why[96];
    if (ab_param_str(call, params, "password", true, &pw, &len) < 0)
        return -1;
    if (!ab_password_valid(pw, len, why, sizeof why))
        return we_plugin_fail_params(call, "password: %s", why);
    if (ab_hash_password(pw, len, st->hash_ln, out) < 0)
        return we_plugin_fail(call, "WE-AUTH-500", false, "password hashing failed");
    return 0;
}

int ab_m_user_create(we_plugin_call *call, json_t *params, json_t **result)
{
    ab_state *st = we_plugin_state(call);
    const char *name;
    size_t len;
    we_role role;
    char why[96], hash[AB_HASH_MAX];
    PGresult *r;
    if (ab_param_str(call, params, "username", true, &name, &len) < 0 ||
        ab_param_role(call, params, "role", &role) < 0)
        return -1;
    if (!ab_username_valid(name, len, why, sizeof why))
        return we_plugin_fail_params(call, "username: %s", why);
    if (password_hash(call, params, hash) < 0)
        return -1;
    const char *p[] = { name, hash, we_role_name(role == WE_ROLE_INVALID ? WE_ROLE_VIEWER : role) };
    int rc = ab_db_exec(&st->db, call, SQL_CREATE, 3, p, &r);
    if (rc == AB_DB_CONFLICT)
        return we_plugin_fail(call, "WE-AUTH-004", false, "user exists: %s", name);
    if (rc < 0)
        return -1;
    *result = json_pack("{s:s, s:s, s:s, s:s}", "user_id", PQgetvalue(r, 0, 0), "username",
                        PQgetvalue(r, 0, 1), "role", PQgetvalue(r, 0, 2), "created_at",
                        PQgetvalue(r, 0, 3));
    PQclear(r);
    we_plugin_log("info", "user created", json_pack("{s:s}", "username", name));
    return 0;
}

/* Runs a statement keyed by user_id that returns the row or nothing. */
static int by_user_id(we_plugin_call *call, const char *sql, int n, const char *const *p,
                      PGresult **r)
{
    ab_state *st = we_plugin_state(call);
    if (ab_db_exec(&st->db, call, sql, n, p, r) != 0)
        return -1;
    if (PQntuples(*r) == 1)
        return 0;
    PQclear(*r);
    return ab_fail_not_found(call, "user", p[0]);
}

int ab_m_user_delete(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *id;
    PGresult *r;
    if (ab_param_uuid(call, params, "user_id", true, &id) < 0 ||
        by_user_id(call, SQL_DELETE, 1, &id, &r) < 0)
        return -1;
    PQclear(r);
    *result = json_pack("{s:s, s:b}", "user_id", id, "deleted", 1);
    return 0;
}

int ab_m_user_list(we_plugin_call *call, json_t *params, json_t **result)
{
    ab_state *st = we_plugin_state(call);
    PGresult *r;
    if (ab_db_exec(&st->db, call, SQL_LIST, 0, NULL, &r) != 0)
        return -1;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(items, user_json(r, i));
    PQclear(r);
    *result = json_pack("{s:o}", "items", items);
    return 0;
}

int ab_m_user_set_password(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *id;
    char hash[AB_HASH_MAX];
    PGresult *r;
    if (ab_param_uuid(call, params, "user_id", true, &id) < 0 ||
        password_hash(call, params, hash) < 0)
        return -1;
    const char *p[] = { id, hash };
    if (by_user_id(call, SQL_SET_PASSWORD, 2, p, &r) < 0)
        return -1;
    PQclear(r);
    *result = json_pack("{s:s, s:b}", "user_id", id, "updated", 1);
    return 0;
}

/* {user_id, role?, disabled?}: changes what is given, returns the user. */
int ab_m_user_update(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *id;
    we_role role;
    PGresult *r;
    json_t *disabled = json_object_get(params, "disabled");
    if (ab_param_uuid(call, params, "user_id", true, &id) < 0 ||
        ab_param_role(call, params, "role", &role) < 0)
        return -1;
    if (disabled && !json_is_null(disabled) && !json_is_boolean(disabled))
        return we_plugin_fail_params(call, "disabled: must be a boolean");
    const char *p[] = { id, role == WE_ROLE_INVALID ? NULL : we_role_name(role),
                        json_is_boolean(disabled) ? (json_is_true(disabled) ? "true" : "false")
                                                  : NULL };
    if (by_user_id(call, SQL_UPDATE, 3, p, &r) < 0)
        return -1;
    *result = user_json(r, 0);
    PQclear(r);
    return 0;
}
