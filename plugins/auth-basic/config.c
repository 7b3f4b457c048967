/*
 * auth-basic configuration and health: the handshake's config object
 * checked into an ab_state (owned by the SDK until fini).
 *
 * database_url (required, secret; else DATABASE_URL), hash_cost (log2 of
 * scrypt's N for new password hashes, AB_LN_MIN..AB_LN_MAX, default 15 =
 * 32 MiB and ~0.1 s per hash), token_prefix (default "we_"). A database
 * that is down at start does not fail the handshake: the plugin starts
 * degraded and connects when it can. Init also computes the dummy hash that
 * unknown usernames are verified against, so a login for a user who does
 * not exist costs the same scrypt as one who does.
 */
#include "ab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cfg_string(json_t *cfg, const char *field, const char *env, const char *dflt,
                      const char **out, char *err, size_t err_len)
{
    json_t *v = json_object_get(cfg, field);
    if (v && !json_is_null(v) &&
        (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))) {
        snprintf(err, err_len, "%s: must be a string", field);
        return -1;
    }
    *out = json_is_string(v) ? json_string_value(v) : env && getenv(env) ? getenv(env) : dflt;
    return 0;
}

static int cfg_cost(json_t *cfg, unsigned *out, char *err, size_t err_len)
{
    json_t *v = json_object_get(cfg, "hash_cost");
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : AB_LN_DEFAULT;
    if ((v && !json_is_null(v) && !json_is_integer(v)) || n < AB_LN_MIN || n > AB_LN_MAX) {
        snprintf(err, err_len, "hash_cost: must be an integer in %d..%d (log2 of scrypt's N)",
                 AB_LN_MIN, AB_LN_MAX);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

static int cfg_read(ab_state *st, json_t *config, const char **url, char *err, size_t err_len)
{
    const char *prefix;
    if (cfg_string(config, "database_url", "DATABASE_URL", NULL, url, err, err_len) < 0 ||
        cfg_string(config, "token_prefix", NULL, "we_", &prefix, err, err_len) < 0 ||
        cfg_cost(config, &st->hash_ln, err, err_len) < 0)
        return -1;
    if (!*url || !**url) {
        snprintf(err, err_len, "database_url: required (or set DATABASE_URL)");
        return -1;
    }
    if (!ab_token_prefix_valid(prefix)) {
        snprintf(err, err_len, "token_prefix: must be 1 to 10 of [A-Za-z0-9_]");
        return -1;
    }
    snprintf(st->token_prefix, sizeof st->token_prefix, "%s", prefix);
    return 0;
}

int ab_init(json_t *config, void **state, char *err, size_t err_len)
{
    static const char dummy_pw[] = "no user has this password";
    const char *url;
    ab_state *st = calloc(1, sizeof *st);
    if (!st || cfg_read(st, config, &url, err, err_len) < 0)
        goto fail;
    /* the password is irrelevant: only the cost of verifying against it counts */
    if (ab_hash_password(dummy_pw, sizeof dummy_pw - 1, st->hash_ln, st->dummy_hash) < 0) {
        snprintf(err, err_len, "hash_cost: scrypt failed with these parameters");
        goto fail;
    }
    if (ab_db_init(&st->db, url, err, err_len) < 0)
        goto fail;
    *state = st;
    return 0;
fail:
    free(st);
    return -1;
}

void ab_fini(void *state)
{
    ab_state *st = state;
    if (!st)
        return;
    ab_db_fini(&st->db);
    free(st);
}

/* On the SDK's main thread: reads a flag the db monitor keeps, never blocks. */
bool ab_health(void *state, const char **detail)
{
    const ab_state *st = state;
    if (st && atomic_load(&st->db.up))
        return true;
    *detail = "database unreachable";
    return false;
}
