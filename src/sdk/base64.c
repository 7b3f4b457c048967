/*
 * Base64 and base64url without padding on output, strict on input
 * (include/webencode/base64.h). Decoding works a group of four characters
 * at a time; the output size is checked before anything is written.
 *
 * Pure: no state, no allocation; safe on any thread.
 */
#include "webencode/base64.h"

#include <stdbool.h>

static const char STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t we_b64_encode(const uint8_t *in, size_t len, unsigned flags, char *out)
{
    const char *a = flags & WE_B64_URL ? URL : STD;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        size_t chars = len - i >= 3 ? 4 : len - i + 1;
        for (size_t k = 0; k < chars; k++)
            out[o++] = a[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = '\0';
    return o;
}

static int value_of(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    return c == (url ? '_' : '/') ? 63 : -1;
}

int we_b64_decode(const char *in, size_t len, unsigned flags, uint8_t *out, size_t cap,
                  size_t *out_len)
{
    bool url = flags & WE_B64_URL;
    size_t pad = 0, o = 0;
    while (!(flags & WE_B64_NOPAD) && len > 0 && in[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad && (len + pad) % 4 != 0))
        return -1;
    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
        return -1;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value_of((unsigned char)in[i], url);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3 || i + 1 == len) {
            size_t got = i % 4 + 1; /* sextets in this group */
            acc <<= 6 * (4 - got);
            for (size_t k = 0; k + 1 < got; k++)
                out[o++] = (uint8_t)(acc >> (16 - 8 * k));
            acc = 0;
        }
    }
    *out_len = o;
    return 0;
}
