/*
 * Checks of the small strings the jobs API takes from URLs — ids, times,
 * integers, the list cursor — done in C before they reach SQL, so a bad one
 * is a 400/404 naming it rather than a database error. The cursor is
 * base64url (no padding) of "<created_at>|<id>" for keyset pagination; it is
 * opaque to clients and validated like any other input when it comes back.
 * Pure functions, any thread.
 */
#include "api_jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool kn_job_id_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}

/* n digits at s, within [lo, hi]. */
static bool digits(const char *s, int n, int lo, int hi)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi;
}

/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
bool kn_job_time_valid(const char *s)
{
    if (!s || strlen(s) < 20 || strlen(s) > 35)
        return false;
    if (!digits(s, 4, 1, 9999) || s[4] != '-' || !digits(s + 5, 2, 1, 12) || s[7] != '-' ||
        !digits(s + 8, 2, 1, 31) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, 0, 23) ||
        s[13] != ':' || !digits(s + 14, 2, 0, 59) || s[16] != ':' || !digits(s + 17, 2, 0, 60))
        return false;
    const char *z = s + 19;
    if (*z == '.') {
        size_t f = strspn(z + 1, "0123456789");
        if (f < 1 || f > 9)
            return false;
        z += 1 + f;
    }
    if ((*z == 'Z' || *z == 'z') && !z[1])
        return true;
    return (*z == '+' || *z == '-') && digits(z + 1, 2, 0, 23) && z[3] == ':' &&
           digits(z + 4, 2, 0, 59) && !z[6];
}

char *kn_job_cursor_encode(const char *created_at, const char *id)
{
    char raw[80];
    int n = snprintf(raw, sizeof raw, "%s|%s", created_at, id);
    WE_ASSERT(n > 0 && (size_t)n < sizeof raw);
    char *out = malloc((size_t)n * 4 / 3 + 4), *o = out;
    WE_ASSERT(out != NULL);
    for (int i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)raw[i] << 16;
        v |= i + 1 < n ? (uint32_t)(unsigned char)raw[i + 1] << 8 : 0;
        v |= i + 2 < n ? (unsigned char)raw[i + 2] : 0;
        int chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
        for (int k = 0; k < chars; k++)
            *o++ = b64[(v >> (18 - 6 * k)) & 63];
    }
    *o = '\0';
    return out;
}

/* Decodes base64url without padding into out (at most cap - 1 bytes + NUL). */
static bool b64_decode(const char *s, char *out, size_t cap)
{
    size_t len = strlen(s), o = 0;
    if (len % 4 == 1 || len / 4 * 3 + 3 >= cap)
        return false;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = strchr(b64, s[i]);
        if (!p)
            return false;
        acc = acc << 6 | (uint32_t)(p - b64);
        if (i % 4 == 3 || i == len - 1) {
            int got = (int)(i % 4) + 1; /* 2, 3 or 4 chars -> 1, 2 or 3 bytes */
            acc <<= 6 * (4 - got);
            for (int k = 0; k < got - 1; k++)
                out[o++] = (char)(acc >> (16 - 8 * k));
            acc = 0;
        }
    }
    out[o] = '\0';
    return strlen(out) == o;
}

bool kn_job_cursor_decode(const char *cursor, char ts[40], char id[37])
{
    char raw[96];
    if (!cursor || !b64_decode(cursor, raw, sizeof raw))
        return false;
    char *bar = strchr(raw, '|');
    if (!bar || (size_t)(bar - raw) >= 40)
        return false;
    *bar = '\0';
    if (!kn_job_time_valid(raw) || !kn_job_id_valid(bar + 1))
        return false;
    snprintf(ts, 40, "%s", raw);
    snprintf(id, 37, "%s", bar + 1);
    return true;
}

bool kn_job_query_int(kn_req *r, const char *name, long long def, long long min, long long max,
                      long long *out)
{
    const char *v = kn_query(r, name);
    char *end = NULL;
    if (!v) {
        *out = def;
        return true;
    }
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!v[0] || *end || errno || x < min || x > max)
        return false;
    *out = x;
    return true;
}
