/*
 * Start-up checks of certificate and key files with OpenSSL's libcrypto (the
 * kernel serves HTTPS through GnuTLS and libnats loads its own copies: this
 * file only makes sure that what they will load is there and sound, so that
 * a mistake stops the binary at once with the variable's name rather than
 * surfacing later as a handshake failure).
 *
 * Key files are read with open/read, not stdio, so that no library buffer
 * keeps a copy, and every buffer that held one is wiped before it is freed.
 * OpenSSL's per-thread error queue is cleared after each check, so stale
 * entries never reach libnats' error reporting. Runs on the main thread.
 */
#include "we_tls.h"
#include "we_config.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WE_TLS_MAX_FILE (1L << 20)

void we_tls_pem_free(char *pem)
{
    if (!pem)
        return;
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
}

static int read_all(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int we_tls_read_file(const char *var, const char *path, char **out, we_err *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return we_err_set(err, WE_EINVAL, "%s=%s cannot be read: %s", var, path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > WE_TLS_MAX_FILE) {
        close(fd);
        return we_err_set(err, WE_EINVAL, "%s=%s is not a regular file of at most 1 MiB", var,
                          path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    WE_ASSERT(buf != NULL);
    int rc = read_all(fd, buf, n);
    int read_errno = errno;
    close(fd);
    if (rc != 0) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        return we_err_set(err, WE_EINVAL, "%s=%s cannot be read: %s", var, path,
                          strerror(read_errno ? read_errno : EIO));
    }
    if (memchr(buf, '\0', n)) { /* PEM is text; a NUL would also defeat the wipe */
        OPENSSL_cleanse(buf, n);
        free(buf);
        return we_err_set(err, WE_EINVAL, "%s=%s is not a PEM file", var, path);
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* Reading PEM objects until none is left ends with PEM_R_NO_START_LINE;
 * any other error means a malformed block. Clears the queue. */
static bool pem_clean_end(void)
{
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    return e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
}

/* Parses every certificate in pem; *leaf (when asked) gets the first. */
static int check_certs(const char *var, const char *path, const char *pem, X509 **leaf, we_err *err)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    WE_ASSERT(b != NULL);
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (n++ == 0 && leaf)
            *leaf = x;
        else
            X509_free(x);
    }
    bool clean = pem_clean_end();
    BIO_free(b);
    if (n > 0 && clean)
        return 0;
    if (leaf && n > 0) {
        X509_free(*leaf);
        *leaf = NULL;
    }
    if (clean)
        return we_err_set(err, WE_EINVAL, "%s=%s holds no PEM certificate", var, path);
    return we_err_set(err, WE_EINVAL, "%s=%s: certificate %d is malformed", var, path, n + 1);
}

/* Keys are used unattended, so a passphrase is never asked for. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

static int check_key(const char *var, const char *path, const char *pem, EVP_PKEY **key,
                     we_err *err)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    WE_ASSERT(b != NULL);
    *key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    ERR_clear_error();
    if (*key)
        return 0;
    if (strstr(pem, "ENCRYPTED"))
        return we_err_set(err, WE_EINVAL,
                          "%s=%s is an encrypted private key; use an unencrypted one and "
                          "protect it with file permissions",
                          var, path);
    return we_err_set(err, WE_EINVAL, "%s=%s holds no valid PEM private key", var, path);
}

static int check_pair(const char *cert_var, const char *cert_path, const char *key_var,
                      const char *key_path, we_err *err)
{
    char *cert_pem = NULL, *key_pem = NULL;
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    int rc = we_tls_read_file(cert_var, cert_path, &cert_pem, err);
    if (!rc)
        rc = check_certs(cert_var, cert_path, cert_pem, &leaf, err);
    if (!rc)
        rc = we_tls_read_file(key_var, key_path, &key_pem, err);
    if (!rc)
        rc = check_key(key_var, key_path, key_pem, &key, err);
    if (!rc && X509_check_private_key(leaf, key) != 1)
        rc = we_err_set(err, WE_EINVAL, "%s=%s does not belong to the certificate in %s=%s",
                        key_var, key_path, cert_var, cert_path);
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(leaf);
    we_tls_pem_free(key_pem);
    we_tls_pem_free(cert_pem);
    return rc;
}

int we_tls_cfg_pair(const char *cert_var, const char *key_var, const char **cert, const char **key,
                    we_err *err)
{
    const char *c = we_cfg_str(cert_var, NULL);
    const char *k = we_cfg_str(key_var, NULL);
    *cert = NULL;
    *key = NULL;
    if (!c && !k)
        return 0;
    if (!c || !k)
        return we_err_set(err, WE_EINVAL, "%s and %s must be set together (only %s is set)",
                          cert_var, key_var, c ? cert_var : key_var);
    int rc = check_pair(cert_var, c, key_var, k, err);
    if (rc == 0) {
        *cert = c;
        *key = k;
    }
    return rc;
}

int we_tls_cfg_ca(const char *var, const char **path, we_err *err)
{
    const char *p = we_cfg_str(var, NULL);
    char *pem = NULL;
    *path = NULL;
    if (!p)
        return 0;
    int rc = we_tls_read_file(var, p, &pem, err);
    if (!rc)
        rc = check_certs(var, p, pem, NULL, err);
    we_tls_pem_free(pem);
    if (rc == 0)
        *path = p;
    return rc;
}
