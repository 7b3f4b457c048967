/*
 * Which IP addresses count as internal, and CIDR allow lists: the address
 * half of the SSRF policy (DESIGN §8), header-only so that the kernel's
 * submission check (src/lib/we_netpolicy.c) and plugins that connect on a
 * job's behalf (encoder-ffmpeg's egress proxy) judge an address the same
 * way without plugins linking src/lib.
 *
 * Internal ("private" below): IPv4 0/8, 10/8, 100.64/10 (CGNAT), 127/8,
 * 169.254/16 (link-local, cloud metadata), 172.16/12, 192.0.0/24,
 * 192.168/16, 198.18/15 (benchmark), 224/3 (multicast, reserved,
 * broadcast); IPv6 ::/128, ::1, fc00::/7 (ULA), fe80::/9 (link- and
 * site-local), ff00::/8 (multicast); and the IPv4 embedded in IPv4-mapped
 * (::ffff:a.b.c.d), -compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4
 * (2002::/16) addresses, judged as that IPv4. Any other family is internal.
 *
 * A CIDR list ("10.0.0.0/8, fd00::/8 127.0.0.1") is separated by commas
 * and/or blanks; an entry without "/bits" is one host. An IPv4-mapped IPv6
 * address matches the IPv4 entries.
 *
 * Pure functions, no state: safe on any thread.
 */
#ifndef WEBENCODE_NETADDR_H
#define WEBENCODE_NETADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

typedef struct we_ip_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network, host bits cleared; 4 bytes for AF_INET */
    unsigned bits;    /* prefix length: 0..32 or 0..128 */
} we_ip_cidr;

static inline uint32_t we__ip_v4_at(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline bool we__ip_v4_private(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
    } nets[] = {
        {0x00000000, 0xff000000}, {0x0a000000, 0xff000000}, {0x64400000, 0xffc00000},
        {0x7f000000, 0xff000000}, {0xa9fe0000, 0xffff0000}, {0xac100000, 0xfff00000},
        {0xc0000000, 0xffffff00}, {0xc0a80000, 0xffff0000}, {0xc6120000, 0xfffe0000},
        {0xe0000000, 0xe0000000}, /* multicast, reserved and broadcast */
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if ((a & nets[i].mask) == nets[i].net)
            return true;
    return false;
}

static inline bool we__ip_v6_private(const uint8_t *b)
{
    static const uint8_t zero[12] = {0}, mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (!memcmp(b, zero, 12) || !memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
        return we__ip_v4_private(we__ip_v4_at(b + 12));
    if (b[0] == 0x20 && b[1] == 0x02)
        return we__ip_v4_private(we__ip_v4_at(b + 2));
    return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0x80)) || b[0] == 0xff;
}

/* True when sa is an internal address (see the top), or not IPv4/IPv6. */
static inline bool we_ip_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return we__ip_v4_private(
            ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return we__ip_v6_private(
            ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
    return true;
}

/* sa's family and address bytes, an IPv4-mapped IPv6 address as IPv4;
 * AF_UNSPEC for other families. */
static inline int we__ip_bytes(const struct sockaddr *sa, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family != AF_INET6)
        return AF_UNSPEC;
    const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    if (!memcmp(b, mapped, 12)) {
        memcpy(out, b + 12, 4);
        return AF_INET;
    }
    memcpy(out, b, 16);
    return AF_INET6;
}

static inline bool we__ip_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    return rest == 0 || ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* Parses one entry, s[0..n): "a.b.c.d[/bits]" or "v6[/bits]". 0, or -1
 * when it is not one (bad address, bits out of range, extra characters). */
static inline int we_ip_cidr_parse(const char *s, size_t n, we_ip_cidr *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        size_t d = strlen(slash + 1);
        if (d < 1 || d > 3 || strspn(slash + 1, "0123456789") != d)
            return -1;
        bits = 0;
        for (const char *p = slash + 1; *p; p++)
            bits = bits * 10 + (*p - '0');
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, out->addr) == 1)
        out->family = AF_INET6;
    else
        return -1;
    long max = out->family == AF_INET ? 32 : 128;
    if (bits > max)
        return -1;
    out->bits = (unsigned)(bits < 0 ? max : bits);
    for (unsigned i = out->bits; i < (unsigned)max; i++) /* clear the host bits */
        out->addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return 0;
}

static inline bool we_ip_cidr_match(const we_ip_cidr *c, const struct sockaddr *sa)
{
    uint8_t b[16];
    return we__ip_bytes(sa, b) == c->family && we__ip_prefix_eq(b, c->addr, c->bits);
}

/* Parses a list into out[0..max), the count in *n. 0, or -1 with the bad
 * entry (or "more than N entries") in err. NULL or "" is an empty list. */
static inline int we_ip_cidrs_parse(const char *list, we_ip_cidr *out, size_t max, size_t *n,
                                    char *err, size_t errn)
{
    static const char sep[] = ", \t\r\n";
    *n = 0;
    for (const char *p = list ? list + strspn(list, sep) : ""; *p; p += strspn(p, sep)) {
        size_t len = strcspn(p, sep);
        if (*n == max) {
            snprintf(err, errn, "more than %zu entries", max);
            return -1;
        }
        if (we_ip_cidr_parse(p, len, &out[*n]) != 0) {
            snprintf(err, errn, "\"%.*s\" is not an address or CIDR (a.b.c.d/bits, v6/bits)",
                     (int)(len > 64 ? 64 : len), p);
            return -1;
        }
        ++*n;
        p += len;
    }
    return 0;
}

static inline bool we_ip_cidrs_match(const we_ip_cidr *c, size_t n, const struct sockaddr *sa)
{
    for (size_t i = 0; i < n; i++)
        if (we_ip_cidr_match(&c[i], sa))
            return true;
    return false;
}

#endif
