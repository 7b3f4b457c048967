/*
 * Key sets: the issuer's JWKS turned into cjose keys, and signature checks
 * with them.
 *
 * A key set is built once from one JWKS document and never changed; the
 * provider swaps in a new one when it fetches again. Calls take a reference
 * while they verify, so a set being replaced stays alive until its last
 * user is done (the count is atomic; cjose's own retain/release is not, so
 * it is not used across threads). Verification only reads a key, which
 * OpenSSL allows from several threads at once.
 *
 * Which keys count: "use" absent or "sig"; kty RSA with a modulus of at
 * least 2048 bits, or EC on P-256 or P-384. Symmetric ("oct") keys never
 * count — a JWKS is public, and an HMAC key in it would let anyone sign.
 * A token's alg must fit the key: RS256/PS256 need RSA, ES256 P-256, ES384
 * P-384, and a key that names its own alg is used for that alg only.
 */
#include "ao.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RSA_MIN_BITS 2048

static void key_fini(ao_key *k)
{
    cjose_jwk_release(k->jwk);
    free(k->kid);
    free(k->alg);
}

/* Whether j is a signature key of a type we use; why says why not. */
static bool key_kind_ok(json_t *j, char *why, size_t why_len)
{
    const char *use = json_string_value(json_object_get(j, "use"));
    const char *kty = json_string_value(json_object_get(j, "kty"));
    if ((use && strcmp(use, "sig") != 0) || !kty || (strcmp(kty, "RSA") && strcmp(kty, "EC"))) {
        snprintf(why, why_len, "not an RSA or EC signature key");
        return false;
    }
    return true;
}

/* Checks an imported key's size and curve; why says what is wrong. */
static bool key_strength_ok(ao_key *k, char *why, size_t why_len)
{
    cjose_err err;
    k->kty = cjose_jwk_get_kty(k->jwk, &err);
    k->crv = k->kty == CJOSE_JWK_KTY_EC ? cjose_jwk_EC_get_curve(k->jwk, &err) : 0;
    if (k->kty == CJOSE_JWK_KTY_RSA && cjose_jwk_get_keysize(k->jwk, &err) < RSA_MIN_BITS)
        snprintf(why, why_len, "RSA key shorter than %d bits", RSA_MIN_BITS);
    else if (k->kty == CJOSE_JWK_KTY_EC && k->crv != CJOSE_JWK_EC_P_256 &&
             k->crv != CJOSE_JWK_EC_P_384)
        snprintf(why, why_len, "EC curve other than P-256 or P-384");
    else
        return true;
    return false;
}

/* Imports one JWK into k: 1 when usable, 0 when skipped (why says why). */
static int key_import(json_t *j, ao_key *k, char *why, size_t why_len)
{
    cjose_err err = {0};
    if (!key_kind_ok(j, why, why_len))
        return 0;
    char *text = json_dumps(j, JSON_COMPACT);
    k->jwk = text ? cjose_jwk_import(text, strlen(text), &err) : NULL;
    free(text);
    if (!k->jwk) {
        snprintf(why, why_len, "cjose: %s", err.message ? err.message : "out of memory");
        return 0;
    }
    if (!key_strength_ok(k, why, why_len)) {
        cjose_jwk_release(k->jwk);
        k->jwk = NULL;
        return 0;
    }
    const char *kid = json_string_value(json_object_get(j, "kid"));
    const char *alg = json_string_value(json_object_get(j, "alg"));
    k->kid = kid ? strdup(kid) : NULL;
    k->alg = alg ? strdup(alg) : NULL;
    return 1;
}

static ao_keyset *keyset_new(size_t cap)
{
    ao_keyset *ks = calloc(1, sizeof *ks + cap * sizeof ks->keys[0]);
    if (ks)
        atomic_init(&ks->refs, 1);
    return ks;
}

int ao_keyset_parse(const char *text, size_t len, ao_keyset **out, char *why, size_t why_len)
{
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *keys = json_object_get(doc, "keys");
    size_t n = json_array_size(keys);
    ao_keyset *ks =
        json_is_array(keys) ? keyset_new(n < AO_JWKS_MAX_KEYS ? n : AO_JWKS_MAX_KEYS) : NULL;
    char skipped[160] = "";
    for (size_t i = 0; ks && i < n && i < AO_JWKS_MAX_KEYS; i++)
        ks->n +=
            (size_t)key_import(json_array_get(keys, i), &ks->keys[ks->n], skipped, sizeof skipped);
    json_decref(doc);
    if (ks && ks->n > 0) {
        *out = ks;
        return 0;
    }
    if (!ks)
        snprintf(why, why_len, "not a JWKS document (an object with a keys array)");
    else
        snprintf(why, why_len, "no usable signature key in the JWKS%s%s", skipped[0] ? ": " : "",
                 skipped);
    ao_keyset_unref(ks);
    return -1;
}

ao_keyset *ao_keyset_ref(ao_keyset *ks)
{
    if (ks)
        atomic_fetch_add(&ks->refs, 1);
    return ks;
}

void ao_keyset_unref(ao_keyset *ks)
{
    if (!ks || atomic_fetch_sub(&ks->refs, 1) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++)
        key_fini(&ks->keys[i]);
    free(ks);
}

static bool key_fits(const ao_key *k, ao_alg alg)
{
    if (k->alg && strcmp(k->alg, ao_alg_name(alg)) != 0)
        return false;
    switch (alg) {
    case AO_ALG_RS256:
    case AO_ALG_PS256:
        return k->kty == CJOSE_JWK_KTY_RSA;
    case AO_ALG_ES256:
        return k->kty == CJOSE_JWK_KTY_EC && k->crv == CJOSE_JWK_EC_P_256;
    case AO_ALG_ES384:
        return k->kty == CJOSE_JWK_KTY_EC && k->crv == CJOSE_JWK_EC_P_384;
    default:
        return false;
    }
}

size_t ao_keyset_match(const ao_keyset *ks, ao_alg alg, const char *kid, const ao_key **out,
                       size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; ks && i < ks->n && n < cap; i++) {
        const ao_key *k = &ks->keys[i];
        if ((!kid || (k->kid && strcmp(k->kid, kid) == 0)) && key_fits(k, alg))
            out[n++] = k;
    }
    return n;
}

bool ao_keys_verify(const ao_key *const *keys, size_t n, const ao_jwt *jwt, char *why,
                    size_t why_len)
{
    cjose_err err = {0};
    cjose_jws_t *jws = cjose_jws_import(jwt->compact, jwt->len, &err);
    bool ok = false;
    for (size_t i = 0; jws && i < n && !ok; i++)
        ok = cjose_jws_verify(jws, keys[i]->jwk, &err);
    if (!ok)
        snprintf(why, why_len, "bad signature (%s)", err.message ? err.message : "no key");
    cjose_jws_release(jws);
    return ok;
}
