/*
 * auth.authenticate and auth.authorize.
 *
 * authenticate takes {token}: a JWT access token, bare or "Bearer <jwt>".
 * The order is cheapest first, so that tokens meant for another auth
 * plugin cost nothing: the compact form and header (jwt.c, no network),
 * then the unverified iss (a token of another issuer never triggers a JWKS
 * fetch), then the key by kid and alg (one rate-limited refetch when the
 * kid is new), then the signature, and only then the claims (claims.c) and
 * the optional users row (db.c). Every refusal is WE-AUTH-001 "invalid
 * credentials" with the reason in the log, except an expired token
 * (WE-AUTH-002, so clients know to renew) and an unreachable provider or
 * database (WE-AUTH-503, retryable). Neither the token nor its claims are
 * ever logged; the kid and alg are.
 *
 * Runs on the SDK's pool threads; shared state is the provider's key cache
 * (reference-counted) and the database connection (behind its mutex).
 */
#include "ao.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_CANDIDATES 8

static int invalid(we_plugin_call *call, const char *level, const char *reason, const ao_jwt *jwt)
{
    json_t *fields = json_pack("{s:s}", "reason", reason);
    if (jwt && jwt->header)
        json_object_set_new(fields, "alg", json_string(ao_alg_name(jwt->alg)));
    if (jwt && jwt->kid)
        json_object_set_new(fields, "kid", json_string(jwt->kid));
    we_plugin_log(level, "authentication refused", fields);
    return we_plugin_fail(call, "WE-AUTH-001", false, "invalid credentials");
}

/* Keys that may have signed jwt into keys (with *ks, a reference the caller
 * drops), fetching the JWKS once more when none fit. Returns how many, or
 * -1 after failing the call. */
static int find_keys(we_plugin_call *call, ao_provider *p, const ao_jwt *jwt, ao_keyset **ks,
                     const ao_key **keys)
{
    *ks = ao_provider_keys(p);
    size_t n = ao_keyset_match(*ks, jwt->alg, jwt->kid, keys, MAX_CANDIDATES);
    if (n)
        return (int)n;
    ao_refetch r = ao_provider_refetch(p, *ks);
    if (r == AO_REFETCH_NEW_KEYS) {
        ao_keyset_unref(*ks);
        *ks = ao_provider_keys(p);
        n = ao_keyset_match(*ks, jwt->alg, jwt->kid, keys, MAX_CANDIDATES);
    }
    if (n)
        return (int)n;
    if (!*ks || !atomic_load(&p->up)) {
        we_plugin_log("info",
                      "cannot check a token: no key for it and the identity provider "
                      "is unreachable",
                      json_pack("{s:s?}", "kid", jwt->kid));
        return we_plugin_fail(call, "WE-AUTH-503", true, "identity provider unreachable");
    }
    return invalid(call, "info",
                   r == AO_REFETCH_LIMITED ? "unknown key id (JWKS refetch rate limited)"
                                           : "unknown key id",
                   jwt);
}

static int identify(we_plugin_call *call, ao_state *st, const ao_jwt *jwt, json_t **result)
{
    ao_identity id;
    const char *why;
    char user_id[37], expires[32];
    ao_verdict v = ao_claims_check(&st->rules, jwt->claims, (int64_t)time(NULL), &id, &why);
    if (v == AO_EXPIRED) {
        we_plugin_log("info", "authentication refused", json_pack("{s:s}", "reason", why));
        return we_plugin_fail(call, "WE-AUTH-002", false, "token expired");
    }
    if (v != AO_OK)
        return invalid(call, "info", why, jwt);
    if (!st->db.url) {
        ao_user_uuid(st->rules.issuer, id.sub, user_id);
    } else {
        int rc = ao_db_user(&st->db, call, &id, user_id);
        if (rc == AO_DB_REFUSED)
            return we_plugin_fail(call, "WE-AUTH-001", false, "invalid credentials");
        if (rc < 0)
            return -1;
    }
    ao_rfc3339(id.exp, expires);
    *result = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "user_id", user_id, "username", id.username,
                        "role", we_role_name(id.role), "expires_at", expires, "token_id", id.jti);
    return 0;
}

static int check_token(we_plugin_call *call, ao_state *st, const ao_jwt *jwt, json_t **result)
{
    ao_keyset *ks = NULL;
    const ao_key *keys[MAX_CANDIDATES];
    char why[200];
    if (!ao_claims_from_issuer(&st->rules, jwt->claims))
        return invalid(call, "debug", "issued by another issuer", jwt);
    int n = find_keys(call, &st->provider, jwt, &ks, keys);
    bool ok = n > 0 && ao_keys_verify(keys, (size_t)n, jwt, why, sizeof why);
    ao_keyset_unref(ks);
    if (n <= 0)
        return -1;
    if (!ok)
        return invalid(call, "info", why, jwt);
    return identify(call, st, jwt, result);
}

static int param_str(we_plugin_call *call, json_t *params, const char *field, bool required,
                     const char **out, size_t *len)
{
    json_t *v = json_object_get(params, field);
    *out = NULL;
    if (!v || json_is_null(v))
        return required ? we_plugin_fail_params(call, "%s: required", field) : 0;
    if (!json_is_string(v))
        return we_plugin_fail_params(call, "%s: must be a string", field);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

int ao_m_authenticate(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *token, *why;
    size_t len;
    ao_jwt jwt;
    if (param_str(call, params, "token", true, &token, &len) < 0)
        return -1;
    if (len > 7 && strncasecmp(token, "Bearer ", 7) == 0) {
        for (token += 7, len -= 7; len && *token == ' '; token++, len--)
            ;
    }
    if (ao_jwt_parse(token, len, &jwt, &why) < 0)
        return invalid(call, "debug", why, NULL);
    int rc = check_token(call, we_plugin_state(call), &jwt, result);
    ao_jwt_fini(&jwt);
    return rc;
}

int ao_m_authorize(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *role, *action, *resource;
    size_t len;
    char reason[160];
    if (param_str(call, params, "role", true, &role, &len) < 0 ||
        param_str(call, params, "action", true, &action, &len) < 0 ||
        param_str(call, params, "resource", false, &resource, &len) < 0)
        return -1;
    bool ok = we_authorize(role, action, resource ? resource : "", reason, sizeof reason);
    *result = json_pack("{s:b, s:s}", "allowed", ok, "reason", reason);
    return 0;
}
