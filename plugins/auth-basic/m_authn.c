/*
 * auth.authenticate and auth.authorize.
 *
 * authenticate takes {token} — an API token, bare or as "Bearer <token>",
 * or "Basic <base64 user:password>" — or {username, password}. Every
 * failure a caller could learn from (unknown user or token, wrong password,
 * revoked token, disabled user) is the same WE-AUTH-001 "invalid
 * credentials"; the reason goes to the log only. An expired token is
 * WE-AUTH-002 so clients can tell the user to renew it.
 *
 * Timing: a password login for a username that does not exist still runs
 * one scrypt (against the dummy hash made at init), and a disabled user's
 * password is still verified before refusing, so the time taken does not say
 * whether a username exists. Tokens are looked up by their SHA-256: a
 * timing difference in the index lookup leaks bits of a hash of a 256-bit
 * random value, which is worthless.
 *
 * last_used_at / last_login_at are written at most once a minute per token
 * or user, so a busy API client does not turn every request into a write.
 * A token's effective role is the lower of its own and its user's current
 * role (a user demoted after creating a token takes the token down too).
 */
#include "ab.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MINUTE_AGO "now() - interval '1 minute'"

static const char SQL_TOKEN[] =
    "SELECT t.id, u.id, u.username, t.role, u.role, u.disabled, t.revoked_at IS NOT NULL, "
    "t.expires_at IS NOT NULL AND t.expires_at <= now(), " AB_TS(t.expires_at) ", "
    "t.last_used_at IS NULL OR t.last_used_at < " MINUTE_AGO " "
    "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1";
enum { T_ID, T_USER, T_NAME, T_ROLE, T_UROLE, T_DISABLED, T_REVOKED, T_EXPIRED, T_EXPIRES, T_STALE };

static const char SQL_TOUCH_TOKEN[] =
    "UPDATE api_tokens SET last_used_at = now() WHERE id = $1 "
    "AND (last_used_at IS NULL OR last_used_at < " MINUTE_AGO ")";

static const char SQL_USER[] =
    "SELECT id, username, role, disabled, password_hash, "
    "last_login_at IS NULL OR last_login_at < " MINUTE_AGO " FROM users WHERE username = $1";
enum { U_ID, U_NAME, U_ROLE, U_DISABLED, U_HASH, U_STALE };

static const char SQL_TOUCH_USER[] = "UPDATE users SET last_login_at = now() WHERE id = $1";
/* Only if the hash is still the one we verified: never undo a new password. */
static const char SQL_REHASH[] =
    "UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3";

static int invalid(we_plugin_call *call, const char *level, const char *reason)
{
    we_plugin_log(level, "authentication refused", json_pack("{s:s}", "reason", reason));
    return we_plugin_fail(call, "WE-AUTH-001", false, "invalid credentials");
}

/* Best effort: a failed bookkeeping write does not fail the login. */
static void exec_quiet(ab_state *st, const char *sql, int n, const char *const *params)
{
    PGresult *r = NULL;
    if (ab_db_exec(&st->db, NULL, sql, n, params, &r) == 0)
        PQclear(r);
}

static int token_result(we_plugin_call *call, ab_state *st, PGresult *r, json_t **result)
{
    if (PQntuples(r) != 1)
        return invalid(call, "info", "unknown token");
    if (ab_col_bool(r, 0, T_REVOKED))
        return invalid(call, "info", "revoked token");
    if (ab_col_bool(r, 0, T_DISABLED))
        return invalid(call, "info", "disabled user");
    if (ab_col_bool(r, 0, T_EXPIRED))
        return we_plugin_fail(call, "WE-AUTH-002", false, "token expired");
    we_role role = we_role_parse(PQgetvalue(r, 0, T_ROLE));
    we_role user_role = we_role_parse(PQgetvalue(r, 0, T_UROLE));
    const char *id = PQgetvalue(r, 0, T_ID);
    if (ab_col_bool(r, 0, T_STALE))
        exec_quiet(st, SQL_TOUCH_TOKEN, 1, &id);
    *result = json_pack("{s:s, s:s, s:s, s:o, s:s}", "user_id", PQgetvalue(r, 0, T_USER),
                        "username", PQgetvalue(r, 0, T_NAME), "role",
                        we_role_name(role < user_role ? role : user_role), "expires_at",
                        ab_col_str(r, 0, T_EXPIRES), "token_id", id);
    return 0;
}

static int by_token(we_plugin_call *call, ab_state *st, const char *token, size_t len,
                    json_t **result)
{
    size_t plen = strlen(st->token_prefix);
    char hash[65];
    const char *params[] = { hash };
    PGresult *r;
    if (len < plen + 16 || len > 256 || memcmp(token, st->token_prefix, plen) != 0)
        return invalid(call, "debug", "not a token of this plugin");
    ab_token_hash(token, len, hash);
    if (ab_db_exec(&st->db, call, SQL_TOKEN, 1, params, &r) != 0)
        return -1;
    int rc = token_result(call, st, r, result);
    PQclear(r);
    return rc;
}

static void rehash(ab_state *st, const char *user_id, const char *pw, size_t pw_len,
                   const char *old)
{
    char fresh[AB_HASH_MAX];
    if (ab_hash_password(pw, pw_len, st->hash_ln, fresh) < 0)
        return;
    const char *params[] = { user_id, fresh, old };
    exec_quiet(st, SQL_REHASH, 3, params);
}

/* After verification: match is ab_verify_password's answer. */
static int password_result(we_plugin_call *call, ab_state *st, PGresult *r, int match,
                           const char *pw, size_t pw_len, json_t **result)
{
    bool found = PQntuples(r) == 1 && !PQgetisnull(r, 0, U_HASH);
    if (found && match < 0)
        we_plugin_log("warn", "stored password hash is malformed",
                      json_pack("{s:s}", "user_id", PQgetvalue(r, 0, U_ID)));
    if (!found || match != 1)
        return invalid(call, "info", found ? "wrong password" : "unknown user");
    if (ab_col_bool(r, 0, U_DISABLED))
        return invalid(call, "info", "disabled user");
    const char *id = PQgetvalue(r, 0, U_ID), *stored = PQgetvalue(r, 0, U_HASH);
    if (ab_col_bool(r, 0, U_STALE))
        exec_quiet(st, SQL_TOUCH_USER, 1, &id);
    if (ab_hash_outdated(stored, st->hash_ln))
        rehash(st, id, pw, pw_len, stored);
    *result = json_pack("{s:s, s:s, s:s, s:n, s:n}", "user_id", id, "username",
                        PQgetvalue(r, 0, U_NAME), "role", PQgetvalue(r, 0, U_ROLE),
                        "expires_at", "token_id");
    return 0;
}

static int by_password(we_plugin_call *call, ab_state *st, const char *user, size_t ulen,
                       const char *pw, size_t pw_len, json_t **result)
{
    const char *params[] = { user };
    PGresult *r;
    if (ulen == 0 || ulen > 128 || strlen(user) != ulen)
        return invalid(call, "info", "malformed username");
    if (ab_db_exec(&st->db, call, SQL_USER, 1, params, &r) != 0)
        return -1;
    bool found = PQntuples(r) == 1 && !PQgetisnull(r, 0, U_HASH);
    /* always one scrypt, whether or not the user exists */
    int match = ab_verify_password(pw, pw_len, found ? PQgetvalue(r, 0, U_HASH) : st->dummy_hash);
    int rc = password_result(call, st, r, found ? match : 0, pw, pw_len, result);
    PQclear(r);
    return rc;
}

/* "Basic <base64(user:password)>" (RFC 7617). */
static int by_basic(we_plugin_call *call, ab_state *st, const char *b64, size_t len,
                    json_t **result)
{
    uint8_t buf[1400];
    size_t n;
    if (we_b64_decode(b64, len, 0, buf, sizeof buf - 1, &n) < 0)
        return invalid(call, "info", "malformed Basic credentials");
    buf[n] = '\0';
    char *user = (char *)buf, *colon = memchr(buf, ':', n);
    int rc;
    if (colon) {
        *colon = '\0'; /* both halves become C strings */
        rc = by_password(call, st, user, (size_t)(colon - user), colon + 1,
                         n - (size_t)(colon - user) - 1, result);
    } else {
        rc = invalid(call, "info", "malformed Basic credentials");
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

/* Whether s starts with scheme (case-insensitive) and a space; skips them. */
static bool scheme(const char **s, size_t *len, const char *name)
{
    size_t n = strlen(name);
    if (*len <= n || strncasecmp(*s, name, n) != 0 || (*s)[n] != ' ')
        return false;
    for (n++; n < *len && (*s)[n] == ' '; n++)
        ;
    *s += n;
    *len -= n;
    return true;
}

int ab_m_authenticate(we_plugin_call *call, json_t *params, json_t **result)
{
    ab_state *st = we_plugin_state(call);
    const char *token, *user, *pw;
    size_t tlen = 0, ulen = 0, plen = 0;
    if (ab_param_str(call, params, "token", false, &token, &tlen) < 0 ||
        ab_param_str(call, params, "username", false, &user, &ulen) < 0 ||
        ab_param_str(call, params, "password", false, &pw, &plen) < 0)
        return -1;
    if (token && scheme(&token, &tlen, "Basic"))
        return by_basic(call, st, token, tlen, result);
    if (token) {
        scheme(&token, &tlen, "Bearer");
        return by_token(call, st, token, tlen, result);
    }
    if (user && pw)
        return by_password(call, st, user, ulen, pw, plen, result);
    return we_plugin_fail_params(call, "token, or username and password: required");
}

int ab_m_authorize(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *role, *action, *resource;
    char reason[160];
    if (ab_param_str(call, params, "role", true, &role, NULL) < 0 ||
        ab_param_str(call, params, "action", true, &action, NULL) < 0 ||
        ab_param_str(call, params, "resource", false, &resource, NULL) < 0)
        return -1;
    bool ok = we_authorize(role, action, resource ? resource : "", reason, sizeof reason);
    *result = json_pack("{s:b, s:s}", "allowed", ok, "reason", reason);
    return 0;
}
