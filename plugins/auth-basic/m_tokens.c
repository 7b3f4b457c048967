/*
 * auth.token_create, token_revoke, token_list.
 *
 * A token is token_prefix + base64url(32 bytes from RAND_bytes), e.g.
 * "we_" + 43 characters. It is returned once, by token_create; the table
 * keeps its SHA-256 (hex) and a display prefix (token_prefix plus five
 * characters) so people can tell their tokens apart. A token's role
 * defaults to its user's and may not exceed it (WE-AUTH-003); expiry is
 * optional (expires_in_s, at most ten years). Revocation is idempotent.
 */
#include "ab.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define MAX_EXPIRES_S (10LL * 366 * 24 * 3600)

static const char SQL_USER_ROLE[] = "SELECT role, disabled FROM users WHERE id = $1::uuid";
static const char SQL_CREATE[] =
    "INSERT INTO api_tokens (user_id, name, token_hash, prefix, role, expires_at) "
    "VALUES ($1::uuid, $2, $3, $4, $5::user_role, "
    "CASE WHEN $6::bigint IS NULL THEN NULL ELSE now() + $6::bigint * interval '1 second' END) "
    "RETURNING id, " AB_TS(expires_at) ", " AB_TS(created_at);
static const char SQL_REVOKE[] =
    "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1::uuid "
    "RETURNING id, " AB_TS(revoked_at);
static const char SQL_LIST[] =
    "SELECT id, user_id, name, prefix, role, " AB_TS(expires_at) ", " AB_TS(last_used_at) ", "
    AB_TS(revoked_at) ", " AB_TS(created_at) " FROM api_tokens "
    "WHERE $1::uuid IS NULL OR user_id = $1::uuid ORDER BY created_at, id";

typedef struct token_req {
    const char *user_id, *name;
    we_role role;
    char expires[24]; /* decimal seconds, or "" */
} token_req;

static int read_expiry(we_plugin_call *call, json_t *params, token_req *q)
{
    json_t *v = json_object_get(params, "expires_in_s");
    q->expires[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > MAX_EXPIRES_S)
        return we_plugin_fail_params(call, "expires_in_s: must be an integer in 1..%lld",
                                     MAX_EXPIRES_S);
    snprintf(q->expires, sizeof q->expires, "%lld", (long long)json_integer_value(v));
    return 0;
}

static int read_request(we_plugin_call *call, json_t *params, token_req *q)
{
    size_t len;
    if (ab_param_uuid(call, params, "user_id", true, &q->user_id) < 0 ||
        ab_param_str(call, params, "name", true, &q->name, &len) < 0 ||
        ab_param_role(call, params, "role", &q->role) < 0 || read_expiry(call, params, q) < 0)
        return -1;
    if (len < 1 || len > 128 || strlen(q->name) != len)
        return we_plugin_fail_params(call, "name: must be 1 to 128 characters");
    return 0;
}

/* The user's role caps the token's; fills q->role when not given. */
static int check_role(we_plugin_call *call, ab_state *st, token_req *q)
{
    PGresult *r;
    if (ab_db_exec(&st->db, call, SQL_USER_ROLE, 1, &q->user_id, &r) != 0)
        return -1;
    int rc = 0;
    we_role user_role = PQntuples(r) == 1 ? we_role_parse(PQgetvalue(r, 0, 0)) : WE_ROLE_INVALID;
    if (PQntuples(r) != 1)
        rc = ab_fail_not_found(call, "user", q->user_id);
    else if (ab_col_bool(r, 0, 1))
        rc = we_plugin_fail(call, "WE-AUTH-003", false, "user is disabled: %s", q->user_id);
    else if (q->role > user_role)
        rc = we_plugin_fail(call, "WE-AUTH-003", false,
                            "role: %s exceeds the user's role %s", we_role_name(q->role),
                            we_role_name(user_role));
    else if (q->role == WE_ROLE_INVALID)
        q->role = user_role;
    PQclear(r);
    return rc;
}

/* token_prefix + base64url of 32 random bytes. */
static int new_token(const ab_state *st, char *out, size_t out_len)
{
    uint8_t raw[32];
    char body[48];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    we_b64_encode(raw, sizeof raw, WE_B64_URL, body);
    snprintf(out, out_len, "%s%s", st->token_prefix, body);
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(body, sizeof body);
    return 0;
}

static int insert_token(we_plugin_call *call, ab_state *st, const token_req *q,
                        const char *token, json_t **result)
{
    char hash[65], prefix[17];
    PGresult *r;
    ab_token_hash(token, strlen(token), hash);
    snprintf(prefix, sizeof prefix, "%.*s", (int)strlen(st->token_prefix) + 5, token);
    const char *p[] = { q->user_id, q->name, hash, prefix, we_role_name(q->role),
                        q->expires[0] ? q->expires : NULL };
    int rc = ab_db_exec(&st->db, call, SQL_CREATE, 6, p, &r);
    if (rc == AB_DB_CONFLICT) /* a hash collision, or a user deleted meanwhile */
        return we_plugin_fail(call, "WE-AUTH-500", true, "token could not be stored; try again");
    if (rc < 0)
        return -1;
    *result = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "token_id",
                        PQgetvalue(r, 0, 0), "token", token, "prefix", prefix, "name", q->name,
                        "user_id", q->user_id, "role", we_role_name(q->role), "expires_at",
                        ab_col_str(r, 0, 1), "created_at", PQgetvalue(r, 0, 2));
    PQclear(r);
    return 0;
}

int ab_m_token_create(we_plugin_call *call, json_t *params, json_t **result)
{
    ab_state *st = we_plugin_state(call);
    token_req q;
    char token[64];
    if (read_request(call, params, &q) < 0 || check_role(call, st, &q) < 0)
        return -1;
    if (new_token(st, token, sizeof token) < 0)
        return we_plugin_fail(call, "WE-AUTH-500", true, "no random bytes for a token");
    int rc = insert_token(call, st, &q, token, result);
    OPENSSL_cleanse(token, sizeof token);
    if (rc == 0)
        we_plugin_log("info", "token created",
                      json_pack("{s:s, s:s}", "user_id", q.user_id, "role", we_role_name(q.role)));
    return rc;
}

int ab_m_token_revoke(we_plugin_call *call, json_t *params, json_t **result)
{
    ab_state *st = we_plugin_state(call);
    const char *id;
    PGresult *r;
    if (ab_param_uuid(call, params, "token_id", true, &id) < 0 ||
        ab_db_exec(&st->db, call, SQL_REVOKE, 1, &id, &r) != 0)
        return -1;
    int rc = PQntuples(r) == 1 ? 0 : ab_fail_not_found(call, "token", id);
    if (rc == 0)
        *result = json_pack("{s:s, s:b, s:s}", "token_id", id, "revoked", 1, "revoked_at",
                            PQgetvalue(r, 0, 1));
    PQclear(r);
    return rc;
}

static json_t *token_json(const PGresult *r, int i)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "token_id",
                     PQgetvalue(r, i, 0), "user_id", PQgetvalue(r, i, 1), "name",
                     PQgetvalue(r, i, 2), "prefix", PQgetvalue(r, i, 3), "role",
                     PQgetvalue(r, i, 4), "expires_at", ab_col_str(r, i, 5), "last_used_at",
                     ab_col_str(r, i, 6), "revoked_at", ab_col_str(r, i, 7), "created_at",
                     PQgetvalue(r, i, 8));
}

int ab_m_token_list(we_plugin_call *call, json_t *params, json_t **result)
{
    ab_state *st = we_plugin_state(call);
    const char *user_id;
    PGresult *r;
    if (ab_param_uuid(call, params, "user_id", false, &user_id) < 0 ||
        ab_db_exec(&st->db, call, SQL_LIST, 1, &user_id, &r) != 0)
        return -1;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(items, token_json(r, i));
    PQclear(r);
    *result = json_pack("{s:o}", "items", items);
    return 0;
}
