/*
 * Which network addresses the kernel may reach on a user's behalf (SSRF
 * policy, DESIGN §8): job sources over http(s) and webhook endpoints must
 * be public unless an operator allows private ones (SOURCE_ALLOW_PRIVATE,
 * WEBHOOK_ALLOW_PRIVATE). Pure functions plus one DNS lookup; any thread.
 */
#ifndef WE_NETPOLICY_H
#define WE_NETPOLICY_H

#include "we_err.h"

#include <stdbool.h>
#include <sys/socket.h>

/* True when sa must not be reached: loopback, unspecified, RFC 1918,
 * CGNAT, link-local (cloud metadata), benchmark, multicast, reserved and
 * broadcast IPv4; IPv6 loopback, unspecified, ULA, link/site-local and
 * multicast; IPv4-mapped, -compatible, NAT64 and 6to4 addresses judged by
 * the IPv4 they embed. Any other address family is refused too. */
bool we_net_addr_private(const struct sockaddr *sa);

/* The host of an http(s) URL's remainder after "scheme://" ("host[:port]/…",
 * "[v6]:port…") into host[]. Refuses credentials (user@), an empty or
 * over-long host, characters outside [A-Za-z0-9.-:] and a bad port. */
int we_net_url_host(const char *rest, char host[256], we_err *err);

/* Resolves host; WE_EINVAL when it does not resolve or when any address it
 * resolves to is private (we_net_addr_private). The refusal names
 * allow_var, the variable that would allow it. May block on DNS. */
int we_net_host_public(const char *host, const char *allow_var, we_err *err);

/* Like we_net_host_public, but an address inside one of allow_cidrs (a
 * comma/blank-separated CIDR list as include/webencode/netaddr.h reads it,
 * e.g. SOURCE_ALLOW_CIDRS; NULL or "" for none) passes although private.
 * A bad list is WE_EINVAL naming cidrs_var, which the refusal also names. */
int we_net_host_public_except(const char *host, const char *allow_cidrs, const char *cidrs_var,
                              const char *allow_var, we_err *err);

#endif
