/*
 * The kernel's security settings (DESIGN §8), read once at start by
 * kn_config_load: mode and dev-mode tokens, the bootstrap admin token, the
 * token cache lifetime, rate limits, trusted proxies, CORS origins and the
 * JSON depth limit. Each refusal names the variable and never echoes a
 * token.
 */
#include "auth.h"

#include "we_config.h"
#include "we_log.h"
#include "we_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------ */

bool kn_cidr_valid(const char *item)
{
    char buf[64];
    unsigned char addr[16];
    size_t n = strcspn(item, "/");
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, item, n);
    buf[n] = '\0';
    int fam = strchr(buf, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, buf, addr) != 1)
        return false;
    if (!item[n])
        return true;
    char *end;
    long bits = strtol(item + n + 1, &end, 10);
    return end != item + n + 1 && !*end && bits >= 0 && bits <= (fam == AF_INET ? 32 : 128);
}

/* Calls check on each comma-separated, space-trimmed item of list; returns
 * the first item check refuses (copied into bad), or false when all pass. */
static bool list_find_bad(const char *list, bool (*check)(const char *), char *bad, size_t bad_len)
{
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (n) {
            char item[256];
            snprintf(item, sizeof item, "%.*s", (int)(n < 255 ? n : 255), p);
            if (n > 255 || !check(item)) {
                snprintf(bad, bad_len, "%s", item);
                return true;
            }
        }
        p += strcspn(p, ",");
    }
    return false;
}

static bool valid_origin(const char *o)
{
    if (strcmp(o, "*") == 0)
        return true;
    if (strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0)
        return false;
    const char *host = strstr(o, "://") + 3;
    return *host && !strchr(host, '/');
}

static bool valid_dev_token(const char *item)
{
    const char *colon = strchr(item, ':');
    if (!colon)
        return false;
    char role[16];
    snprintf(role, sizeof role, "%.*s", (int)(colon - item < 15 ? colon - item : 15), item);
    return kn_role_parse(role) > 0 && strlen(colon + 1) >= 16;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

static int load_lists(kn_security *s, we_err *err)
{
    char bad[256];
    if (list_find_bad(s->trusted_proxies, kn_cidr_valid, bad, sizeof bad))
        return we_err_set(err, WE_EINVAL, "TRUSTED_PROXIES: '%s' is not an IP address or CIDR",
                          bad);
    if (list_find_bad(s->cors_origins, valid_origin, bad, sizeof bad))
        return we_err_set(err, WE_EINVAL,
                          "CORS_ALLOWED_ORIGINS: '%s' is not an origin (scheme://host[:port]) "
                          "or *",
                          bad);
    if (s->dev_tokens && list_find_bad(s->dev_tokens, valid_dev_token, bad, sizeof bad))
        return we_err_set(err, WE_EINVAL,
                          "WEBENCODE_DEV_TOKENS: an entry is not role:token with a role of "
                          "viewer, operator or admin and a token of at least 16 characters");
    return 0;
}

int kn_security_load(kn_config *cfg, we_err *err)
{
    kn_security *s = &cfg->sec;
    const char *mode = we_cfg_str("WEBENCODE_MODE", "production");
    if (strcmp(mode, "production") != 0 && strcmp(mode, "development") != 0)
        return we_err_set(err, WE_EINVAL, "WEBENCODE_MODE must be production or development");
    s->dev_mode = strcmp(mode, "development") == 0;
    s->dev_tokens = nonempty(we_cfg_str("WEBENCODE_DEV_TOKENS", NULL));
    if (s->dev_tokens && !s->dev_mode)
        return we_err_set(err, WE_EINVAL,
                          "WEBENCODE_DEV_TOKENS is set but WEBENCODE_MODE is production: dev-mode "
                          "tokens are never accepted in production; unset WEBENCODE_DEV_TOKENS "
                          "(or set WEBENCODE_MODE=development on a development machine)");
    s->bootstrap_token = nonempty(we_cfg_str("WEBENCODE_BOOTSTRAP_ADMIN_TOKEN", NULL));
    if (s->bootstrap_token && strlen(s->bootstrap_token) < 32)
        return we_err_set(err, WE_EINVAL,
                          "WEBENCODE_BOOTSTRAP_ADMIN_TOKEN must be at least 32 characters");
    s->trusted_proxies = we_cfg_str("TRUSTED_PROXIES", "");
    s->cors_origins = we_cfg_str("CORS_ALLOWED_ORIGINS", "");
    int rc = we_cfg_bool("AUTH_ANONYMOUS_METRICS", true, &s->metrics_anonymous, err);
    if (!rc)
        rc = we_cfg_int("AUTH_CACHE_TTL_S", 10, 0, 3600, &s->cache_ttl_s, err);
    if (!rc)
        rc = we_cfg_int("RATE_LIMIT_RPS", 50, 0, 1000000, &s->rate_rps, err);
    if (!rc)
        rc = we_cfg_int("RATE_LIMIT_BURST", 100, 1, 1000000, &s->rate_burst, err);
    if (!rc)
        rc = we_cfg_int("RATE_LIMIT_IP_RPS", 5, 0, 1000000, &s->ip_rps, err);
    if (!rc)
        rc = we_cfg_int("RATE_LIMIT_IP_BURST", 20, 1, 1000000, &s->ip_burst, err);
    if (!rc)
        rc = we_cfg_int("MAX_JSON_DEPTH", 32, 2, 1000, &s->max_json_depth, err);
    return rc ? rc : load_lists(s, err);
}

