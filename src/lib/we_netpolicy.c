/*
 * The SSRF address policy shared by job sources (api_jobs_source.c) and
 * webhooks (api_webhooks.c at creation, webhooks_send.c at every connect):
 * an address is refused when it is loopback, private, link-local,
 * multicast or reserved — in IPv4, in IPv6, or embedded in IPv6 (mapped,
 * compatible, NAT64, 6to4). Names are judged by every address they resolve
 * to, so a name with one public and one private address is refused. Job
 * sources may name internal networks that pass anyway (SOURCE_ALLOW_CIDRS,
 * parsed by include/webencode/netaddr.h, which encoder-ffmpeg's egress
 * proxy shares; test_egress checks both tables agree).
 * Design: tables of (network, mask) pairs, no state; safe on any thread.
 */
#include "we_netpolicy.h"

#include "webencode/netaddr.h" /* CIDR allow lists */

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool v4_private(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
    } nets[] = {
        { 0x00000000, 0xff000000 }, { 0x0a000000, 0xff000000 }, { 0x64400000, 0xffc00000 },
        { 0x7f000000, 0xff000000 }, { 0xa9fe0000, 0xffff0000 }, { 0xac100000, 0xfff00000 },
        { 0xc0000000, 0xffffff00 }, { 0xc0a80000, 0xffff0000 }, { 0xc6120000, 0xfffe0000 },
        { 0xe0000000, 0xe0000000 }, /* multicast, reserved and broadcast */
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if ((a & nets[i].mask) == nets[i].net)
            return true;
    return false;
}

static uint32_t v4_at(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Loopback, unspecified, ULA, link/site-local, multicast, and the IPv4
 * embeddings (mapped, compatible, NAT64, 6to4) judged by their IPv4. */
static bool v6_private(const uint8_t *b)
{
    static const uint8_t zero[12] = { 0 },
                         mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };
    if (!memcmp(b, zero, 12) || !memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
        return v4_private(v4_at(b + 12));
    if (b[0] == 0x20 && b[1] == 0x02)
        return v4_private(v4_at(b + 2));
    return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0x80)) || b[0] == 0xff;
}

bool we_net_addr_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_private(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return v6_private(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
    return true;
}

/* ":<1..65535>" or nothing, ending exactly at end. */
static bool port_ok(const char *p, const char *end)
{
    if (p == end)
        return true;
    size_t n = (size_t)(end - p - 1);
    if (*p != ':' || n < 1 || n > 5 || strspn(p + 1, "0123456789") < n)
        return false;
    long v = strtol(p + 1, NULL, 10);
    return v > 0 && v <= 65535;
}

int we_net_url_host(const char *rest, char host[256], we_err *err)
{
    const char *aend = rest + strcspn(rest, "/?#"), *h = rest, *hend;
    if (memchr(rest, '@', (size_t)(aend - rest)))
        return we_err_set(err, WE_EINVAL, "credentials in the URL are refused");
    if (*h == '[') {
        h++;
        hend = memchr(h, ']', (size_t)(aend - h));
        hend = hend ? hend : h; /* no ']': an empty host, refused below */
    } else {
        hend = memchr(h, ':', (size_t)(aend - h));
        hend = hend ? hend : aend;
    }
    size_t n = (size_t)(hend - h);
    if (n == 0 || n > 253 ||
        strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789.-:") < n ||
        !port_ok(hend + (*hend == ']'), aend))
        return we_err_set(err, WE_EINVAL, "expected http(s)://host[:port]/path");
    memcpy(host, h, n);
    host[n] = '\0';
    return 0;
}

int we_net_host_public_except(const char *host, const char *allow_cidrs, const char *cidrs_var,
                              const char *allow_var, we_err *err)
{
    we_ip_cidr cidrs[64];
    size_t ncidrs = 0;
    char why[160];
    if (we_ip_cidrs_parse(allow_cidrs, cidrs, 64, &ncidrs, why, sizeof why) != 0)
        return we_err_set(err, WE_EINVAL, "%s is invalid: %s",
                          cidrs_var ? cidrs_var : "the allow list", why);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int g = getaddrinfo(host, NULL, &hints, &ai);
    if (g != 0)
        return we_err_set(err, WE_EINVAL, "cannot resolve host %s: %s", host, gai_strerror(g));
    int rc = 0;
    for (struct addrinfo *a = ai; a && rc == 0; a = a->ai_next) {
        if (!we_net_addr_private(a->ai_addr) || we_ip_cidrs_match(cidrs, ncidrs, a->ai_addr))
            continue;
        char txt[INET6_ADDRSTRLEN] = "?";
        getnameinfo(a->ai_addr, a->ai_addrlen, txt, sizeof txt, NULL, 0, NI_NUMERICHOST);
        rc = we_err_set(err, WE_EINVAL,
                        "host %s resolves to a loopback, private, link-local or "
                        "reserved address (%s); set %s=true%s%s to allow it",
                        host, txt, allow_var, cidrs_var ? " or list it in " : "",
                        cidrs_var ? cidrs_var : "");
    }
    freeaddrinfo(ai);
    return rc;
}

int we_net_host_public(const char *host, const char *allow_var, we_err *err)
{
    return we_net_host_public_except(host, NULL, NULL, allow_var, err);
}
