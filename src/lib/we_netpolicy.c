/*
 * The SSRF address policy shared by job sources (api_jobs_source.c) and
 * webhooks (api_webhooks.c at creation, webhooks_send.c at every connect):
 * an address is refused when it is loopback, private, link-local,
 * multicast or reserved — in IPv4, in IPv6, or embedded in IPv6 (mapped,
 * compatible, NAT64, 6to4). Names are judged by every address they resolve
 * to, so a name with one public and one private address is refused. Job
 * sources may name internal networks that pass anyway (SOURCE_ALLOW_CIDRS).
 * The address table and the CIDR lists are include/webencode/netaddr.h's,
 * which encoder-ffmpeg's egress proxy shares.
 * Design: no state; safe on any thread.
 */
#include "we_netpolicy.h"

#include "webencode/netaddr.h" /* the address table, CIDR allow lists */

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* The table is netaddr.h's, so the kernel and encoder-ffmpeg's egress
 * proxy cannot disagree about an address. */
bool we_net_addr_private(const struct sockaddr *sa)
{
    return we_ip_private(sa);
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
