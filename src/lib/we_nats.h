/*
 * NATS connection shared by the kernel and the worker: connect with the
 * runbook's error ("NATS Connection Failed", and `nats-server -js` advice
 * when JetStream is missing), retry with backoff, reconnect forever.
 */
#ifndef WE_NATS_H
#define WE_NATS_H

#include "we_err.h"

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct we_nats {
    natsConnection *nc;
    jsCtx *js; /* NULL unless JetStream was asked for */
} we_nats;

/* TLS for the NATS connection, the same for the kernel and the worker. */
typedef struct we_nats_tls {
    bool secure;           /* a tls:// URL or any file below: TLS is required */
    const char *ca_file;   /* NATS_TLS_CA_FILE: CAs trusted for the server, or NULL */
    const char *cert_file; /* NATS_TLS_CERT_FILE + NATS_TLS_KEY_FILE: client certificate */
    const char *key_file;
    char hostname[256]; /* checked against the server's certificate; "" when NATS_URL
                         * lists several servers (then only the chain is verified) */
} we_nats_tls;

/* Fills *out from NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE
 * (checked: readable PEM, key matching certificate) and the scheme and host
 * of url. Errors name the variable and the file. Paths point into the
 * environment. */
int we_nats_tls_load(const char *url, we_nats_tls *out, we_err *err);

/* One attempt; tls may be NULL (plain, unless the server demands TLS). On
 * success *out owns the connection (we_nats_close). */
int we_nats_connect(const char *url, const we_nats_tls *tls, const char *name, bool need_js,
                    we_nats *out, we_err *err);

/* Attempts until success or a stop request, logging each failure as
 * "NATS Connection Failed" with the reason and advice; backoff 0.5 s doubling
 * to 30 s. Returns 0, or WE_ESTATE when stopped first. */
int we_nats_connect_retry(const char *url, const we_nats_tls *tls, const char *name, bool need_js,
                          we_nats *out);

/* Closes and frees; a zeroed we_nats is fine. */
void we_nats_close(we_nats *n);

bool we_nats_is_connected(const we_nats *n);
/* Round trip to the server (PING/PONG), in microseconds. */
int we_nats_rtt_us(const we_nats *n, int64_t *rtt_us, we_err *err);
/* A JetStream API round trip (account info), in microseconds. */
int we_nats_js_rtt_us(const we_nats *n, int64_t *rtt_us, we_err *err);

/* Copies url into buf with any user:password@ replaced by "***@". */
void we_url_redact(const char *url, char *buf, size_t n);

#endif
