/*
 * encoder-ffmpeg's egress proxy (egress.c): the one way a job's input
 * reaches the network. See egress.c for the design.
 *
 * Depends on libc, pthreads and include/webencode/netaddr.h only (no SDK,
 * no jansson), so tests/unit/test_egress.c compiles egress.c in and runs a
 * proxy in-process.
 */
#ifndef ENCODER_EGRESS_H
#define ENCODER_EGRESS_H

#include "webencode/netaddr.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ENC_EGRESS_MAX_CIDRS 64
#define ENC_EGRESS_MAX_HEAD 16384 /* bytes of one request's header block */
#define ENC_EGRESS_MAX_CONN 32    /* concurrent connections per proxy */

/* Which addresses the proxy may connect to: public ones, plus internal ones
 * when allow_private, or when inside one of cidrs. */
typedef struct enc_egress_policy {
    bool allow_private;
    size_t ncidrs;
    we_ip_cidr cidrs[ENC_EGRESS_MAX_CIDRS];
} enc_egress_policy;

/* Fills p from the configuration values; 0, or -1 with why in err (a bad
 * CIDR list entry). */
int enc_egress_policy_parse(bool allow_private, const char *cidrs, enc_egress_policy *p, char *err,
                            size_t n);
bool enc_egress_allowed(const enc_egress_policy *p, const struct sockaddr *sa);

/* ---- one request's header block ------------------------------------------- */

typedef struct enc_egress_req {
    bool connect;    /* CONNECT host:port, else an absolute-form http:// request */
    char method[16]; /* GET, HEAD or CONNECT */
    char host[256];  /* without brackets */
    int port;        /* 1..65535 (80 when an http:// URL names none) */
    size_t path_off; /* absolute-form: where the URL's path (and query) */
    size_t path_len; /* starts in the buffer, and its length (may be 0) */
    int minor;       /* HTTP/1.<minor> */
    size_t head_len; /* bytes up to and including the blank line */
} enc_egress_req;

/* Parses the header block at the start of buf[0..len). 1 with *r when it is
 * complete and acceptable; 0 when more bytes are needed (and len is under
 * ENC_EGRESS_MAX_HEAD); otherwise a negative HTTP status to answer with
 * (-400 malformed or not CONNECT / http://, -405 a method other than GET
 * and HEAD, -431 too large) and why in err. Never puts credentials or the
 * path in err. */
int enc_egress_parse(const char *buf, size_t len, enc_egress_req *r, char *err, size_t n);

/* The request rewritten for the origin server into out[0..cap): origin-
 * form request line, the client's headers minus Proxy-* ones. Its length,
 * or 0 when it does not fit. */
size_t enc_egress_rewrite(const char *buf, const enc_egress_req *r, char *out, size_t cap);

/* ---- the proxy -------------------------------------------------------------- */

/* Where refusals and failures are reported (any proxy thread): level
 * "warn"/"info", a message, the requested host and port, and the address
 * the decision was about ("" when none). Never credentials or paths. */
typedef void (*enc_egress_log_fn)(void *ud, const char *level, const char *msg, const char *host,
                                  int port, const char *addr);

typedef struct enc_egress enc_egress;

/* Starts a proxy on 127.0.0.1:<ephemeral> with a copy of policy; log may
 * be NULL. 0 with *out, or an errno value. */
int enc_egress_start(const enc_egress_policy *policy, enc_egress_log_fn log, void *ud,
                     enc_egress **out);
/* "http://127.0.0.1:<port>" (owned by e, valid until enc_egress_stop). */
const char *enc_egress_url(const enc_egress *e);
/* Replaces the policy for connections that start from now on. */
void enc_egress_set_policy(enc_egress *e, const enc_egress_policy *policy);
/* True when the proxy refused a destination; the first refusal's words
 * ("host X resolves to A, an internal address …") into buf. */
bool enc_egress_refusal(enc_egress *e, char *buf, size_t n);
/* Closes the listener, cuts every connection and joins every thread.
 * NULL is a no-op. */
void enc_egress_stop(enc_egress *e);

#endif
