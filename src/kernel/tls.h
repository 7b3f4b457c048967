/*
 * TLS settings of the kernel (docs/tls.md): HTTPS from TLS_CERT_FILE and
 * TLS_KEY_FILE, and the NATS connection's NATS_TLS_* files. PostgreSQL TLS
 * needs nothing here: libpq reads sslmode, sslrootcert, sslcert and sslkey
 * from DATABASE_URL.
 */
#ifndef KN_TLS_H
#define KN_TLS_H

#include "kernel.h"

#include <microhttpd.h>

/* Reads and checks the TLS variables into cfg->tls; the error names the
 * variable and the file. Called by kn_config_load. */
int kn_tls_load(kn_config *cfg, we_err *err);

/* What MHD_start_daemon needs for HTTPS: extra flags and an option array
 * (MHD_OPTION_ARRAY) that point at the PEM buffers held here. */
typedef struct kn_tls_https {
    unsigned flags; /* MHD_USE_TLS, or 0 without HTTPS */
    char *cert_pem;
    char *key_pem;
    struct MHD_OptionItem opts[4];
} kn_tls_https;

/* Without TLS_CERT_FILE, flags 0 and an empty option array. With it, reads
 * the files again (they were checked at start-up) and fills the options. */
int kn_tls_https_init(const kn_tls *t, kn_tls_https *h, we_err *err);
/* Wipes and frees the PEM buffers. Call once MHD_start_daemon returned:
 * libmicrohttpd hands them to GnuTLS, which copies them, at start. */
void kn_tls_https_fini(kn_tls_https *h);

#endif
