/*
 * Standard base64 decoding (RFC 4648 §4) for storage.put's data_base64:
 * strict alphabet, padding optional, no whitespace, bounded output.
 */
#include "sfs.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int sfs_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t pad = 0;
    while (len > 0 && in[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad && (len + pad) % 4 != 0))
        return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
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
