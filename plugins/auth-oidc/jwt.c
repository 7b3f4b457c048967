/*
 * The compact JWT serialization (RFC 7515 §7.1, RFC 7519), read before any
 * key is looked at.
 *
 * Everything a token can be refused for without a key is refused here,
 * cheaply and without the network, because the kernel offers every bearer
 * token to every auth plugin in turn: an auth-basic API token ("we_…")
 * fails on its first character that is not a JWT's. The checks: three
 * base64url segments (no padding, nothing else), at most AO_TOKEN_MAX
 * bytes; header and claims JSON objects with no duplicate member (a
 * duplicate could be read one way here and another way by a different
 * parser); alg one of RS256, PS256, ES256, ES384 — never "none" nor an HMAC
 * (with a public key as the secret, the classic confusion attack); no crit
 * (we implement no extension a token could require); a typ, when present,
 * of JWT or at+jwt (RFC 9068); a kid, when present, a short string; an
 * ECDSA signature of exactly the curve's size (R || S).
 *
 * Header fields that point at keys (jku, x5u, jwk, x5c) are ignored: keys
 * come only from the issuer's JWKS. Pure: no SDK call but base64
 * (webencode/base64.h), no allocation kept on failure.
 */
#include "ao.h"

#include <webencode/base64.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const alg_names[AO_ALG_COUNT] = {"RS256", "PS256", "ES256", "ES384"};

const char *ao_alg_name(ao_alg alg)
{
    return (unsigned)alg < AO_ALG_COUNT ? alg_names[alg] : "?";
}

/* JWS segments are base64url without padding (RFC 7515 §2). */
#define JWS_B64 (WE_B64_URL | WE_B64_NOPAD)

/* A segment decoded and read as a JSON object, or NULL. */
static json_t *segment_object(const char *s, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    size_t n;
    json_t *v = NULL;
    if (buf && we_b64_decode(s, len, JWS_B64, buf, len, &n) == 0)
        v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static int alg_parse(json_t *header, ao_alg *out)
{
    const char *s = json_string_value(json_object_get(header, "alg"));
    for (int i = 0; s && i < AO_ALG_COUNT; i++)
        if (strcmp(s, alg_names[i]) == 0) {
            *out = (ao_alg)i;
            return 0;
        }
    return -1;
}

static bool typ_ok(json_t *header)
{
    json_t *t = json_object_get(header, "typ");
    if (!t)
        return true;
    const char *s = json_string_value(t);
    return s && (strcasecmp(s, "JWT") == 0 || strcasecmp(s, "at+jwt") == 0 ||
                 strcasecmp(s, "application/at+jwt") == 0);
}

/* The checks on the header once it is an object; *why on failure. */
static int header_check(ao_jwt *j, const char **why)
{
    json_t *kid = json_object_get(j->header, "kid");
    if (alg_parse(j->header, &j->alg) < 0)
        *why = "algorithm not accepted (RS256, PS256, ES256, ES384 only)";
    else if (json_object_get(j->header, "crit"))
        *why = "critical header extension not supported";
    else if (json_object_get(j->header, "enc") || json_object_get(j->header, "zip"))
        *why = "an encrypted or compressed token";
    else if (!typ_ok(j->header))
        *why = "typ is neither JWT nor at+jwt";
    else if (kid && (!json_is_string(kid) || json_string_length(kid) == 0 ||
                     json_string_length(kid) > AO_KID_MAX ||
                     strlen(json_string_value(kid)) != json_string_length(kid)))
        *why = "malformed kid";
    else {
        j->kid = kid ? json_string_value(kid) : NULL;
        return 0;
    }
    return -1;
}

/* ECDSA signatures are R || S of the curve's size (RFC 7518 §3.4). RSA
 * signature sizes depend on the key and are checked by the verifier. */
static bool signature_size_ok(ao_alg alg, const char *sig, size_t len)
{
    size_t want = alg == AO_ALG_ES256 ? 64 : alg == AO_ALG_ES384 ? 96 : 0;
    uint8_t buf[1024]; /* RSA up to 8192 bits */
    size_t n;
    if (we_b64_decode(sig, len, JWS_B64, buf, sizeof buf, &n) < 0 || n == 0)
        return false;
    return want == 0 || n == want;
}

/* Splits at the two dots; -1 unless there are exactly two. */
static int split(const char *t, size_t len, size_t dot[2])
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (t[i] == '.') {
            if (n == 2)
                return -1;
            dot[n++] = i;
        }
    return n == 2 ? 0 : -1;
}

int ao_jwt_parse(const char *token, size_t len, ao_jwt *out, const char **why)
{
    size_t dot[2];
    memset(out, 0, sizeof *out);
    *why = NULL;
    if (len == 0 || len > AO_TOKEN_MAX || split(token, len, dot) < 0) {
        *why = "not a JWT (three base64url segments)";
        return -1;
    }
    out->compact = token;
    out->len = len;
    out->header = segment_object(token, dot[0]);
    out->claims = segment_object(token + dot[0] + 1, dot[1] - dot[0] - 1);
    if (!out->header || !out->claims)
        *why = "not a JWT (header and claims must be JSON objects)";
    else if (header_check(out, why) == 0 &&
             !signature_size_ok(out->alg, token + dot[1] + 1, len - dot[1] - 1))
        *why = "malformed signature";
    if (*why) {
        ao_jwt_fini(out);
        return -1;
    }
    return 0;
}

void ao_jwt_fini(ao_jwt *j)
{
    json_decref(j->header);
    json_decref(j->claims);
    memset(j, 0, sizeof *j);
}
