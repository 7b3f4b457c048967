/*
 * Certificate and key files named by configuration (TLS_CERT_FILE,
 * NATS_TLS_CA_FILE, …): checked once at start-up with OpenSSL, so that a
 * missing, unreadable or malformed file, or a key that does not belong to its
 * certificate, stops the binary with an error that names the variable and the
 * file. Errors never quote a file's contents.
 */
#ifndef WE_TLS_H
#define WE_TLS_H

#include "we_err.h"

#include <stddef.h>

/* Reads the pair cert_var/key_var: both set, or neither (then *cert and *key
 * are NULL). With both, the certificate file must hold one certificate or a
 * chain (leaf first), and the key file an unencrypted PEM private key that
 * belongs to the leaf. The paths point into the environment. */
int we_tls_cfg_pair(const char *cert_var, const char *key_var, const char **cert, const char **key,
                    we_err *err);

/* Reads an optional CA bundle: var unset gives *path = NULL; set, the file
 * must hold at least one PEM certificate and nothing malformed. */
int we_tls_cfg_ca(const char *var, const char **path, we_err *err);

/* Reads a whole file (at most 1 MiB) into a NUL-terminated heap buffer that
 * the caller owns and frees with we_tls_pem_free. var names it in errors. */
int we_tls_read_file(const char *var, const char *path, char **out, we_err *err);

/* Wipes and frees a buffer from we_tls_read_file; NULL is a no-op. */
void we_tls_pem_free(char *pem);

#endif
