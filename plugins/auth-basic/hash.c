/*
 * Password and token hashing (OpenSSL 3).
 *
 * Passwords: scrypt (EVP_PBE_scrypt) with N = 2^ln, r = 8, p = 1, a 16-byte
 * salt from RAND_bytes and a 32-byte key, stored self-describing as
 *     $scrypt$ln=15,r=8,p=1$<base64 salt>$<base64 key>
 * so the cost can rise later: verification reads the parameters from the
 * stored string, and ab_hash_outdated() tells the caller to rehash after a
 * successful login. A stored string is parsed strictly and its parameters
 * bounded (AB_SCRYPT_MAXMEM), so a corrupt row cannot make us allocate
 * gigabytes; the salt is 16..64 bytes and the key exactly 32. The final comparison is CRYPTO_memcmp (constant time).
 *
 * API tokens are 256 random bits, so a single fast SHA-256 is the right
 * hash for them: there is nothing to brute-force, and a slow hash would
 * only make every API request slow. (Passwords are low-entropy; that is
 * why they get scrypt.)
 */
#include "ab.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t scrypt_mem(unsigned ln, unsigned r, unsigned p)
{
    return (uint64_t)128 * r * (((uint64_t)1 << ln) + p + 2);
}

static int derive(const char *pw, size_t pw_len, const ab_scrypt *s, uint8_t *key)
{
    if (scrypt_mem(s->ln, s->r, s->p) > AB_SCRYPT_MAXMEM)
        return -1;
    return EVP_PBE_scrypt(pw, pw_len, s->salt, s->salt_len, (uint64_t)1 << s->ln, s->r, s->p,
                          AB_SCRYPT_MAXMEM, key, s->key_len) == 1
               ? 0
               : -1;
}

static void format(const ab_scrypt *s, char out[AB_HASH_MAX])
{
    char salt[90], key[90];
    we_b64_encode(s->salt, s->salt_len, 0, salt);
    we_b64_encode(s->key, s->key_len, 0, key);
    snprintf(out, AB_HASH_MAX, "$scrypt$ln=%u,r=%u,p=%u$%s$%s", s->ln, s->r, s->p, salt, key);
}

int ab_hash_password_salt(const char *pw, size_t pw_len, unsigned ln, const uint8_t *salt,
                          size_t salt_len, char out[AB_HASH_MAX])
{
    ab_scrypt s = { .ln = ln, .r = AB_SCRYPT_R, .p = AB_SCRYPT_P, .salt_len = salt_len,
                    .key_len = AB_KEY_LEN };
    if (salt_len > sizeof s.salt || ln < 1 || ln > 24)
        return -1;
    memcpy(s.salt, salt, salt_len);
    int rc = derive(pw, pw_len, &s, s.key);
    if (rc == 0)
        format(&s, out);
    OPENSSL_cleanse(s.key, sizeof s.key);
    return rc;
}

int ab_hash_password(const char *pw, size_t pw_len, unsigned ln, char out[AB_HASH_MAX])
{
    uint8_t salt[AB_SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return -1;
    return ab_hash_password_salt(pw, pw_len, ln, salt, sizeof salt, out);
}

/* "name=<decimal in lo..hi>": the rest of s, or NULL. */
static const char *param(const char *s, const char *name, unsigned lo, unsigned hi, unsigned *out)
{
    size_t n = strlen(name);
    unsigned long v = 0;
    if (strncmp(s, name, n) != 0 || s[n] != '=' || !isdigit((unsigned char)s[n + 1]))
        return NULL;
    for (s += n + 1; isdigit((unsigned char)*s) && v <= hi; s++)
        v = v * 10 + (unsigned long)(*s - '0');
    if (v < lo || v > hi)
        return NULL;
    *out = (unsigned)v;
    return s;
}

/* One base64 field ending at end (or the string's end): rest, or NULL. */
static const char *field(const char *s, char end, uint8_t *buf, size_t lo, size_t hi, size_t *len)
{
    const char *stop = end ? strchr(s, end) : s + strlen(s);
    if (!stop || we_b64_decode(s, (size_t)(stop - s), 0, buf, hi, len) < 0 || *len < lo)
        return NULL;
    return end ? stop + 1 : stop;
}

int ab_hash_parse(const char *stored, ab_scrypt *s)
{
    const char *p = stored;
    if (!p || strncmp(p, "$scrypt$", 8) != 0)
        return -1;
    if (!(p = param(p + 8, "ln", 1, 24, &s->ln)) || *p++ != ',' ||
        !(p = param(p, "r", 1, 64, &s->r)) || *p++ != ',' ||
        !(p = param(p, "p", 1, 16, &s->p)) || *p++ != '$')
        return -1;
    if (!(p = field(p, '$', s->salt, AB_SALT_LEN, sizeof s->salt, &s->salt_len)) ||
        !(p = field(p, '\0', s->key, AB_KEY_LEN, sizeof s->key, &s->key_len)) || *p != '\0' ||
        s->key_len != AB_KEY_LEN) /* scrypt keys share prefixes: a cut key would verify */
        return -1;
    return scrypt_mem(s->ln, s->r, s->p) <= AB_SCRYPT_MAXMEM ? 0 : -1;
}

int ab_verify_password(const char *pw, size_t pw_len, const char *stored)
{
    ab_scrypt s;
    uint8_t key[64];
    if (ab_hash_parse(stored, &s) < 0 || derive(pw, pw_len, &s, key) < 0)
        return -1;
    int match = CRYPTO_memcmp(key, s.key, s.key_len) == 0;
    OPENSSL_cleanse(key, sizeof key);
    return match;
}

bool ab_hash_outdated(const char *stored, unsigned ln)
{
    ab_scrypt s;
    return ab_hash_parse(stored, &s) < 0 || s.ln != ln || s.r != AB_SCRYPT_R ||
           s.p != AB_SCRYPT_P || s.salt_len != AB_SALT_LEN || s.key_len != AB_KEY_LEN;
}

void ab_token_hash(const char *token, size_t len, char out[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_Digest(token, len, md, &mdlen, EVP_sha256(), NULL);
    for (size_t i = 0; i < sizeof md; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}
