/*
 * Storage key rules (docs/plugin-protocol.md §6), as pure functions.
 *
 * A key is a relative path of '/'-separated segments: non-empty, at most
 * SFS_KEY_MAX bytes of valid UTF-8, no NUL, no backslash, no control
 * character (C0, DEL, C1), not absolute, no empty, "." or ".." segment, and
 * no segment starting with SFS_TMP_PREFIX (the names of in-progress writes).
 * Lengths are explicit so a NUL inside a JSON string ("a\u0000b") is seen.
 *
 * These checks are lexical; resolve.c adds the filesystem rule (no symbolic
 * link anywhere on the path).
 */
#include "sfs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool refuse(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool refuse(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && why_len)
        vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return false;
}

/* Decodes one UTF-8 sequence: its length, or 0 when invalid (overlong,
 * surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3
               : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t c = len == 1 ? p[0] : (uint32_t)(p[0] & (0x7F >> len));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static bool is_control(uint32_t c)
{
    return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F);
}

bool sfs_utf8_valid(const char *s, size_t len)
{
    uint32_t c;
    for (size_t i = 0, n; i < len; i += n)
        if ((n = utf8_next((const unsigned char *)s + i, len - i, &c)) == 0)
            return false;
    return true;
}

/* Character rules over the whole key. */
static bool chars_valid(const char *key, size_t len, char *why, size_t why_len)
{
    uint32_t c;
    for (size_t i = 0, n; i < len; i += n) {
        n = utf8_next((const unsigned char *)key + i, len - i, &c);
        if (n == 0)
            return refuse(why, why_len, "is not valid UTF-8 (byte %zu)", i);
        if (c == 0)
            return refuse(why, why_len, "contains a NUL byte");
        if (c == '\\')
            return refuse(why, why_len, "contains a backslash");
        if (is_control(c))
            return refuse(why, why_len, "contains control character U+%04X", (unsigned)c);
    }
    return true;
}

static bool segment_valid(const char *seg, size_t len, char *why, size_t why_len)
{
    if (len == 0)
        return refuse(why, why_len, "has an empty segment");
    if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
        return refuse(why, why_len, "has a \"%.*s\" segment", (int)len, seg);
    if (len >= strlen(SFS_TMP_PREFIX) && memcmp(seg, SFS_TMP_PREFIX, strlen(SFS_TMP_PREFIX)) == 0)
        return refuse(why, why_len, "has a segment starting with \"%s\" (reserved)",
                      SFS_TMP_PREFIX);
    return true;
}

bool sfs_key_valid(const char *key, size_t len, char *why, size_t why_len)
{
    if (len == 0)
        return refuse(why, why_len, "is empty");
    if (len > SFS_KEY_MAX)
        return refuse(why, why_len, "is longer than %d bytes", SFS_KEY_MAX);
    if (!chars_valid(key, len, why, why_len))
        return false;
    if (key[0] == '/')
        return refuse(why, why_len, "is absolute (starts with /)");
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && key[i] != '/')
            continue;
        if (!segment_valid(key + start, i - start, why, why_len))
            return false;
        start = i + 1;
    }
    return true;
}

bool sfs_prefix_valid(const char *prefix, size_t len, bool allow_empty, char *why, size_t why_len)
{
    if (len == 0)
        return allow_empty ? true : refuse(why, why_len, "is empty");
    if (prefix[len - 1] == '/')
        len--;
    if (len == 0)
        return refuse(why, why_len, "is absolute (starts with /)");
    return sfs_key_valid(prefix, len, why, why_len);
}

bool sfs_segment_valid(const char *name, size_t len)
{
    return len > 0 && len <= SFS_KEY_MAX && memchr(name, '/', len) == NULL &&
           chars_valid(name, len, NULL, 0) && segment_valid(name, len, NULL, 0);
}

void sfs_display(const char *s, size_t len, char *out, size_t out_len)
{
    size_t o = 0, i = 0;
    if (out_len < 8) {
        if (out_len)
            out[0] = '\0';
        return;
    }
    while (i < len) {
        char piece[8];
        uint32_t c;
        size_t n = utf8_next((const unsigned char *)s + i, len - i, &c), plen = n;
        if (n == 0 || is_control(c)) {
            plen = (size_t)snprintf(piece, sizeof piece, "\\x%02X", (unsigned char)s[i]);
            n = 1;
        } else {
            memcpy(piece, s + i, n);
        }
        if (o + plen + 4 > out_len) /* keep room for "…" and the NUL */
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += n;
    }
    if (i < len) {
        memcpy(out + o, "\xE2\x80\xA6", 3); /* … */
        o += 3;
    }
    out[o] = '\0';
}
