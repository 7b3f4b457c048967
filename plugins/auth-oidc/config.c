/*
 * auth-oidc configuration and health: the handshake's config object (each
 * field falling back to its environment variable, as plugin.toml names
 * them) checked into an ao_state, owned by the SDK until fini.
 *
 * The runbook's three variables: OIDC_ISSUER_URL (required; https, or http
 * to a loopback host unless allow_insecure_http), OIDC_CLIENT_ID (required;
 * the expected audience unless `audience` is set) and OIDC_CLIENT_SECRET
 * (accepted and never used, logged nor kept: access tokens are verified
 * with the issuer's public keys; it is reserved for introspecting opaque
 * tokens). A provider that is down at start does not fail the handshake:
 * the plugin starts degraded and fetches its keys when it can.
 *
 * Health runs on the SDK's main thread: it reads atomic flags, never blocks.
 */
#include "ao.h"

#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct cfg_in {
    const char *issuer, *client_id, *client_secret, *audience, *role_claim, *role_map,
        *default_role, *username_claim, *database_url;
    int64_t leeway_s, min_refresh_s, refresh_s, timeout_ms;
    bool allow_insecure;
} cfg_in;

typedef struct str_field {
    const char *name, *env, *dflt;
    size_t off;
} str_field;

static const str_field str_fields[] = {
    {"issuer_url", "OIDC_ISSUER_URL", "", offsetof(cfg_in, issuer)},
    {"client_id", "OIDC_CLIENT_ID", "", offsetof(cfg_in, client_id)},
    {"client_secret", "OIDC_CLIENT_SECRET", "", offsetof(cfg_in, client_secret)},
    {"audience", "OIDC_AUDIENCE", "", offsetof(cfg_in, audience)},
    {"role_claim", "OIDC_ROLE_CLAIM", "role", offsetof(cfg_in, role_claim)},
    {"role_map", "OIDC_ROLE_MAP", "", offsetof(cfg_in, role_map)},
    {"default_role", "OIDC_DEFAULT_ROLE", "", offsetof(cfg_in, default_role)},
    {"username_claim", "OIDC_USERNAME_CLAIM", "preferred_username",
     offsetof(cfg_in, username_claim)},
    {"database_url", "DATABASE_URL", "", offsetof(cfg_in, database_url)},
};

typedef struct int_field {
    const char *name, *env;
    int64_t dflt, min, max;
    size_t off;
} int_field;

static const int_field int_fields[] = {
    {"leeway_s", "OIDC_LEEWAY_S", 60, 0, 600, offsetof(cfg_in, leeway_s)},
    {"jwks_min_refresh_s", "OIDC_JWKS_MIN_REFRESH_S", 30, 1, 3600, offsetof(cfg_in, min_refresh_s)},
    {"jwks_refresh_s", "OIDC_JWKS_REFRESH_S", 300, 1, 86400, offsetof(cfg_in, refresh_s)},
    {"http_timeout_ms", "OIDC_HTTP_TIMEOUT_MS", 5000, 100, 60000, offsetof(cfg_in, timeout_ms)},
};

static int read_str(json_t *cfg, const str_field *f, cfg_in *in, char *err, size_t err_len)
{
    json_t *v = json_object_get(cfg, f->name);
    const char *env = getenv(f->env);
    if (v && !json_is_null(v) &&
        (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))) {
        snprintf(err, err_len, "%s: must be a string", f->name);
        return -1;
    }
    *(const char **)((char *)in + f->off) = json_is_string(v) ? json_string_value(v)
                                            : env             ? env
                                                              : f->dflt;
    return 0;
}

static int read_int(json_t *cfg, const int_field *f, cfg_in *in, char *err, size_t err_len)
{
    json_t *v = json_object_get(cfg, f->name);
    const char *env = getenv(f->env);
    long long n = f->dflt;
    char *end = NULL;
    bool ok = true;
    if (v && !json_is_null(v)) {
        ok = json_is_integer(v);
        n = ok ? json_integer_value(v) : n;
    } else if (env && *env) {
        errno = 0;
        n = strtoll(env, &end, 10);
        ok = errno == 0 && *end == '\0';
    }
    if (!ok || n < f->min || n > f->max) {
        snprintf(err, err_len, "%s: must be an integer in %lld..%lld", f->name, (long long)f->min,
                 (long long)f->max);
        return -1;
    }
    *(int64_t *)((char *)in + f->off) = n;
    return 0;
}

static int read_bool(json_t *cfg, const char *name, const char *env_name, bool *out, char *err,
                     size_t err_len)
{
    json_t *v = json_object_get(cfg, name);
    const char *env = getenv(env_name);
    *out = false;
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v))
            goto bad;
        *out = json_is_true(v);
    } else if (env && *env) {
        bool t = !strcasecmp(env, "true") || !strcmp(env, "1") || !strcasecmp(env, "yes");
        if (!t && strcasecmp(env, "false") && strcmp(env, "0") && strcasecmp(env, "no"))
            goto bad;
        *out = t;
    }
    return 0;
bad:
    snprintf(err, err_len, "%s: must be a boolean", name);
    return -1;
}

static int read_all(json_t *config, cfg_in *in, char *err, size_t err_len)
{
    for (size_t i = 0; i < sizeof str_fields / sizeof str_fields[0]; i++)
        if (read_str(config, &str_fields[i], in, err, err_len) < 0)
            return -1;
    for (size_t i = 0; i < sizeof int_fields / sizeof int_fields[0]; i++)
        if (read_int(config, &int_fields[i], in, err, err_len) < 0)
            return -1;
    return read_bool(config, "allow_insecure_http", "OIDC_ALLOW_INSECURE_HTTP", &in->allow_insecure,
                     err, err_len);
}

static int fail(char *err, size_t err_len, const char *msg)
{
    snprintf(err, err_len, "%s", msg);
    return -1;
}

static int check_issuer(const cfg_in *in, char *err, size_t err_len)
{
    char why[160];
    if (!*in->issuer)
        return fail(err, err_len, "issuer_url: required (or set OIDC_ISSUER_URL)");
    if (strlen(in->issuer) > 1024 || strpbrk(in->issuer, "?#"))
        return fail(err, err_len, "issuer_url: at most 1024 bytes, no query or fragment");
    if (!ao_url_allowed(in->issuer, in->allow_insecure, why, sizeof why)) {
        snprintf(err, err_len, "issuer_url: %s", why);
        return -1;
    }
    return 0;
}

static int build_rules(const cfg_in *in, ao_rules *r, char *err, size_t err_len)
{
    if (!*in->client_id)
        return fail(err, err_len, "client_id: required (or set OIDC_CLIENT_ID)");
    if (!*in->role_claim || !*in->username_claim)
        return fail(err, err_len,
                    !*in->role_claim ? "role_claim: must not be empty"
                                     : "username_claim: must not be empty");
    r->default_role = *in->default_role ? we_role_parse(in->default_role) : WE_ROLE_INVALID;
    if (*in->default_role && r->default_role == WE_ROLE_INVALID)
        return fail(err, err_len, "default_role: must be viewer, operator, admin or empty");
    if (ao_role_map_parse(in->role_map, &r->role_map, &r->n_role_map, err, err_len) < 0)
        return -1;
    r->issuer = strdup(in->issuer);
    r->audience = strdup(*in->audience ? in->audience : in->client_id);
    r->role_claim = strdup(in->role_claim);
    r->username_claim = strdup(in->username_claim);
    r->leeway_s = in->leeway_s;
    if (!r->issuer || !r->audience || !r->role_claim || !r->username_claim)
        return fail(err, err_len, "issuer_url: out of memory");
    return 0;
}

static int start(ao_state *st, const cfg_in *in, char *err, size_t err_len)
{
    ao_provider_cfg pc = {.issuer = in->issuer,
                          .allow_insecure = in->allow_insecure,
                          .timeout_ms = (long)in->timeout_ms,
                          .min_refresh_ms = in->min_refresh_s * 1000,
                          .refresh_ms = in->refresh_s * 1000};
    if (*in->database_url && ao_db_init(&st->db, in->database_url, err, err_len) < 0)
        return -1;
    return ao_provider_init(&st->provider, &pc, err, err_len);
}

int ao_init(json_t *config, void **state, char *err, size_t err_len)
{
    cfg_in in;
    ao_state *st = calloc(1, sizeof *st);
    if (!st)
        return fail(err, err_len, "issuer_url: out of memory");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(st);
        return fail(err, err_len, "issuer_url: libcurl failed to initialise");
    }
    if (read_all(config, &in, err, err_len) < 0 || check_issuer(&in, err, err_len) < 0 ||
        build_rules(&in, &st->rules, err, err_len) < 0 || start(st, &in, err, err_len) < 0) {
        ao_fini(st);
        return -1;
    }
    *state = st;
    return 0;
}

void ao_fini(void *state)
{
    ao_state *st = state;
    if (!st)
        return;
    ao_provider_fini(&st->provider);
    ao_db_fini(&st->db);
    ao_rules_fini(&st->rules);
    free(st);
    curl_global_cleanup();
}

bool ao_health(void *state, const char **detail)
{
    ao_state *st = state;
    if (!st || !atomic_load(&st->provider.ready))
        *detail = "no keys from the identity provider yet";
    else if (!atomic_load(&st->provider.up))
        *detail = "identity provider unreachable";
    else if (st->db.url && !atomic_load(&st->db.up))
        *detail = "database unreachable";
    else
        return true;
    return false;
}
