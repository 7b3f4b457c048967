/*
 * Who may call what (DESIGN §8): tokens resolved by the auth plugin chain,
 * the bootstrap admin token, dev-mode tokens, roles checked against the
 * route table, per-token / per-IP rate limits, trusted proxies and CORS.
 */
#ifndef KN_AUTH_H
#define KN_AUTH_H

#include "http.h"

/* Reads the security settings into cfg->sec (called by kn_config_load).
 * Refuses dev-mode tokens outside development mode, a bootstrap token
 * shorter than 32 characters, and malformed proxy or origin lists. */
int kn_security_load(kn_config *cfg, we_err *err);

/* Sets up the token cache and rate limiter; kn_auth_fini frees them. */
void kn_auth_init(kn_ctx *kn);
void kn_auth_fini(void);

/* Fills r->client_ip (the peer, or X-Forwarded-For when the peer is a
 * trusted proxy). */
void kn_auth_client_ip(kn_req *r);

/* Resolves the caller of r for route rt, checks the role and the rate
 * limits. Returns 0 when the handler may run (r->who filled in), or -1
 * after queuing the refusal (401 WE-AUTH-001/002, 403 WE-AUTH-003, 429
 * WE-SYS-005, 503 WE-AUTH-005) with MHD's result in *replied. */
int kn_auth_request(kn_req *r, const kn_route *rt, enum MHD_Result *replied);

/* Forgets cached token resolutions (after a token is revoked or a user
 * changed through this kernel; other kernels forget within AUTH_CACHE_TTL_S). */
void kn_auth_cache_clear(void);

/* Whether origin may call the API from a browser (CORS_ALLOWED_ORIGINS). */
bool kn_cors_allowed(const kn_ctx *kn, const char *origin);

/* --- shared by auth*.c ------------------------------------------------------ */

/* Takes a token from key's bucket (rate per second, burst; rate <= 0: no
 * limit). peek: only tell. Returns 0, or the seconds to wait. */
int kn_rate_take(const char *key, long rate, long burst, bool peek);
void kn_rate_init(void);
void kn_rate_fini(void);
/* Whether item is an IPv4/IPv6 address or CIDR. */
bool kn_cidr_valid(const char *item);

/* --- exposed for unit tests ---------------------------------------------- */

/* Whether ip (text) lies in the comma-separated list of addresses and CIDRs. */
bool kn_ip_in_list(const char *list, const char *ip);

/* The client address from an X-Forwarded-For value sent by a trusted
 * proxy: the right-most entry that is not itself a trusted proxy. Returns
 * false when there is none usable. */
bool kn_forwarded_client(const char *xff, const char *trusted, char *out, size_t out_len);

/* A token bucket: rate per second, burst. Returns 0 when a request may go,
 * else the seconds to wait (>= 1). */
typedef struct kn_bucket {
    double tokens;
    int64_t last_ms;
} kn_bucket;
int kn_bucket_take(kn_bucket *b, double rate, double burst, int64_t now_ms);

#endif
