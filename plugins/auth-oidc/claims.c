/*
 * What a verified token says: the claim checks of RFC 7519 §4.1 / RFC 9068
 * and the mapping from claims to a WebEncode identity.
 *
 * Times: nbf and iat may be up to leeway_s in the future (clocks differ), a
 * token is expired from exp + leeway_s on. A token not yet valid is
 * "invalid" (WE-AUTH-001); only an expired one is WE-AUTH-002, which tells a
 * client to get a new token.
 *
 * Roles: the role claim is found by name, or by a dotted path through
 * nested objects (Keycloak's realm_access.roles); its value is a string or
 * an array of strings. Each value counts through role_map first, then as a
 * role name itself; the highest role wins, unknown values are ignored, and
 * a token with no known role gets default_role or is refused.
 *
 * The username is "oidc:" + the username claim (preferred_username unless
 * configured), or + sub when that claim is absent or unusable, so OIDC
 * identities can never collide with auth-basic's usernames (which admit no
 * ':'). Pure: no SDK call, no network.
 */
#include "ao.h"

#include <assert.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PATH_MAX_LEN 256
#define ROLE_VALUES_MAX 256 /* array members looked at in a role claim */
#define SUB_MAX 255
#define NUMERIC_DATE_MAX ((int64_t)1 << 40) /* year 36812: beyond, not a time */

json_t *ao_claim_get(json_t *claims, const char *path)
{
    char buf[PATH_MAX_LEN];
    json_t *v = json_object_get(claims, path);
    if (v || strlen(path) >= sizeof buf)
        return v;
    snprintf(buf, sizeof buf, "%s", path);
    v = claims;
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg && v;
         seg = strtok_r(NULL, ".", &save))
        v = json_object_get(v, seg); /* NULL for a non-object: the path ends */
    return v == claims ? NULL : v;
}

static we_role role_of_string(const ao_rules *r, const char *s)
{
    for (size_t i = 0; i < r->n_role_map; i++)
        if (strcmp(r->role_map[i].value, s) == 0)
            return r->role_map[i].role;
    return we_role_parse(s);
}

we_role ao_role_of(const ao_rules *r, json_t *value)
{
    we_role best = WE_ROLE_INVALID;
    if (json_is_string(value))
        return role_of_string(r, json_string_value(value));
    for (size_t i = 0; json_is_array(value) && i < json_array_size(value) && i < ROLE_VALUES_MAX;
         i++) {
        const char *s = json_string_value(json_array_get(value, i));
        we_role role = s ? role_of_string(r, s) : WE_ROLE_INVALID;
        if (role > best)
            best = role;
    }
    return best;
}

/* ---- role_map ------------------------------------------------------------ */

static char *trimmed(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return strndup(s, len);
}

static int map_add(ao_role_rule **map, size_t *n, char *value, const char *role, char *err,
                   size_t err_len)
{
    ao_role_rule *grown = realloc(*map, (*n + 1) * sizeof **map);
    we_role r = we_role_parse(role);
    if (!value || !*value || r == WE_ROLE_INVALID || !grown) {
        if (grown)
            *map = grown;
        snprintf(err, err_len,
                 "role_map: \"%s\" must map a claim value to viewer, operator or admin",
                 value ? value : "?");
        free(value);
        return -1;
    }
    *map = grown;
    (*map)[(*n)++] = (ao_role_rule){value, r};
    return 0;
}

/* {"value": "role", ...} */
static int map_from_json(json_t *obj, ao_role_rule **map, size_t *n, char *err, size_t err_len)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        json_t *v = json_object_iter_value(it);
        const char *role = json_is_string(v) ? json_string_value(v) : "";
        if (map_add(map, n, strdup(json_object_iter_key(it)), role, err, err_len) < 0)
            return -1;
    }
    return 0;
}

/* value=role,value=role (the last '=' of an item splits it) */
static int map_from_list(const char *text, ao_role_rule **map, size_t *n, char *err, size_t err_len)
{
    for (const char *s = text; *s;) {
        size_t len = strcspn(s, ",");
        char *item = trimmed(s, len), *eq = item ? strrchr(item, '=') : NULL;
        int rc = 0;
        if (item && *item) {
            char *role = eq ? trimmed(eq + 1, strlen(eq + 1)) : NULL;
            if (eq)
                *eq = '\0';
            rc = map_add(map, n, eq ? trimmed(item, strlen(item)) : strdup(item), role ? role : "",
                         err, err_len);
            free(role);
        }
        free(item);
        if (rc < 0)
            return -1;
        s += len + (s[len] == ',');
    }
    return 0;
}

int ao_role_map_parse(const char *text, ao_role_rule **out, size_t *n, char *err, size_t err_len)
{
    int rc;
    *out = NULL;
    *n = 0;
    if (text[strspn(text, " \t")] == '{') {
        json_t *obj = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        rc = json_is_object(obj) ? map_from_json(obj, out, n, err, err_len) : -1;
        if (!json_is_object(obj))
            snprintf(err, err_len, "role_map: not a JSON object of claim value to role");
        json_decref(obj);
    } else {
        rc = map_from_list(text, out, n, err, err_len);
    }
    if (rc < 0) {
        ao_role_map_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void ao_role_map_free(ao_role_rule *map, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(map[i].value);
    free(map);
}

/* ---- the checks ---------------------------------------------------------- */

bool ao_claims_from_issuer(const ao_rules *r, json_t *claims)
{
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    return iss && strcmp(iss, r->issuer) == 0;
}

static bool audience_ok(const ao_rules *r, json_t *aud)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), r->audience) == 0;
    for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud); i++) {
        const char *s = json_string_value(json_array_get(aud, i));
        if (s && strcmp(s, r->audience) == 0)
            return true;
    }
    return false;
}

/* A NumericDate claim: 1 with *t, 0 when absent, -1 when malformed. */
static int numeric_date(json_t *claims, const char *name, int64_t *t)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(d >= 0 && d < (double)NUMERIC_DATE_MAX))
        return -1;
    *t = (int64_t)d;
    return 1;
}

/* nbf, iat and exp; AO_OK or a verdict with *why. */
static ao_verdict times_check(const ao_rules *r, json_t *claims, int64_t now, int64_t *exp,
                              const char **why)
{
    int64_t nbf = 0, iat = 0;
    int has_nbf = numeric_date(claims, "nbf", &nbf), has_iat = numeric_date(claims, "iat", &iat);
    int has_exp = numeric_date(claims, "exp", exp);
    if (has_nbf < 0 || has_iat < 0 || has_exp < 0)
        *why = "malformed nbf, iat or exp";
    else if (has_exp == 0)
        *why = "no exp";
    else if (has_nbf && nbf > now + r->leeway_s)
        *why = "not yet valid (nbf)";
    else if (has_iat && iat > now + r->leeway_s)
        *why = "issued in the future (iat)";
    else if (now >= *exp + r->leeway_s) {
        *why = "expired";
        return AO_EXPIRED;
    } else
        return AO_OK;
    return AO_INVALID;
}

/* Usable as a users.username after the prefix: printable, no surrounding
 * space, short enough. */
static bool name_usable(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > AO_USERNAME_MAX - strlen(AO_USERNAME_PREFIX) || s[0] == ' ' ||
        s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool string_claim_ok(json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= max &&
           strlen(json_string_value(v)) == json_string_length(v);
}

/* sub, role and username into *id; AO_OK or AO_INVALID with *why. */
static ao_verdict identity(const ao_rules *r, json_t *claims, ao_identity *id, const char **why)
{
    json_t *sub = json_object_get(claims, "sub"), *role = ao_claim_get(claims, r->role_claim);
    json_t *user = ao_claim_get(claims, r->username_claim), *jti = json_object_get(claims, "jti");
    if (!string_claim_ok(sub, SUB_MAX)) {
        *why = "no usable sub";
        return AO_INVALID;
    }
    id->sub = json_string_value(sub);
    id->role = role ? ao_role_of(r, role) : WE_ROLE_INVALID;
    if (id->role == WE_ROLE_INVALID)
        id->role = r->default_role;
    const char *name = json_string_value(user);
    if (!name_usable(name))
        name = id->sub;
    if (id->role == WE_ROLE_INVALID || !name_usable(name)) {
        *why =
            id->role == WE_ROLE_INVALID ? "no known role in the role claim" : "no usable username";
        return AO_INVALID;
    }
    snprintf(id->username, sizeof id->username, "%s%s", AO_USERNAME_PREFIX, name);
    id->jti = string_claim_ok(jti, 256) ? json_string_value(jti) : NULL;
    return AO_OK;
}

ao_verdict ao_claims_check(const ao_rules *r, json_t *claims, int64_t now, ao_identity *id,
                           const char **why)
{
    memset(id, 0, sizeof *id);
    if (!ao_claims_from_issuer(r, claims)) {
        *why = "wrong issuer";
        return AO_INVALID;
    }
    if (!audience_ok(r, json_object_get(claims, "aud"))) {
        *why = "wrong audience";
        return AO_INVALID;
    }
    ao_verdict v = times_check(r, claims, now, &id->exp, why);
    return v == AO_OK ? identity(r, claims, id, why) : v;
}

/* ---- ids and times ------------------------------------------------------- */

void ao_user_uuid(const char *iss, const char *sub, char out[37])
{
    /* RFC 4122 appendix C: NameSpace_URL */
    static const uint8_t ns[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, ns, sizeof ns) == 1 &&
              EVP_DigestUpdate(ctx, iss, strlen(iss)) == 1 && EVP_DigestUpdate(ctx, "#", 1) == 1 &&
              EVP_DigestUpdate(ctx, sub, strlen(sub)) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
    EVP_MD_CTX_free(ctx);
    assert(ok && md_len >= 16);               /* SHA-1 is always there */
    md[6] = (uint8_t)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (uint8_t)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        p += sprintf(p, "%02x", md[i]);
    }
}

void ao_rfc3339(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ao_rules_fini(ao_rules *r)
{
    free(r->issuer);
    free(r->audience);
    free(r->role_claim);
    free(r->username_claim);
    ao_role_map_free(r->role_map, r->n_role_map);
    memset(r, 0, sizeof *r);
}
