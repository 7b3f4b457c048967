/*
 * TLS configuration checks (we_tls, we_nats_tls_load, kn_tls_load): both or
 * neither of a cert/key pair, unreadable and malformed files, a key of
 * another certificate, encrypted keys, CA bundles, the NATS host name taken
 * from NATS_URL; every error names the variable and the file and never the
 * key. Certificates are made here with libcrypto in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tls.h"
#include "we_nats.h"
#include "we_tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char path_cert[128], path_key[128], path_key2[128], path_enc[128], path_garbage[128],
    path_chain[128];

static const char *const vars[] = {"TLS_CERT_FILE",      "TLS_KEY_FILE",      "NATS_TLS_CA_FILE",
                                   "NATS_TLS_CERT_FILE", "NATS_TLS_KEY_FILE", "NATS_URL"};

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    return x;
}

static void write_cert(const char *path, X509 *a, X509 *b)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, a);
    if (b)
        PEM_write_X509(f, b);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k, const char *pass)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (pass)
        PEM_write_PrivateKey(f, k, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)pass);
    else
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static int make_files(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/we-test-tls.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path_cert, sizeof path_cert, "%s/cert.pem", dir);
    snprintf(path_key, sizeof path_key, "%s/key.pem", dir);
    snprintf(path_key2, sizeof path_key2, "%s/other.key", dir);
    snprintf(path_enc, sizeof path_enc, "%s/enc.key", dir);
    snprintf(path_garbage, sizeof path_garbage, "%s/garbage.pem", dir);
    snprintf(path_chain, sizeof path_chain, "%s/chain.pem", dir);
    EVP_PKEY *k1 = new_key(), *k2 = new_key();
    X509 *c1 = self_signed(k1, "one"), *c2 = self_signed(k2, "two");
    write_cert(path_cert, c1, NULL);
    write_cert(path_chain, c1, c2);
    write_key(path_key, k1, NULL);
    write_key(path_key2, k2, NULL);
    write_key(path_enc, k1, "secret");
    FILE *f = fopen(path_garbage, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    X509_free(c1);
    X509_free(c2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    return 0;
}

static int remove_files(void **state)
{
    const char *files[] = {path_cert, path_key, path_key2, path_enc, path_garbage, path_chain};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(dir);
    return 0;
}

static int clear_env(void **state)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    return 0;
}

/* Runs we_tls_cfg_pair on TLS_CERT_FILE/TLS_KEY_FILE; cert or key NULL: unset. */
static int pair(const char *cert, const char *key, we_err *err)
{
    const char *c = "x", *k = "x";
    clear_env(NULL);
    if (cert)
        setenv("TLS_CERT_FILE", cert, 1);
    if (key)
        setenv("TLS_KEY_FILE", key, 1);
    err->msg[0] = '\0';
    int rc = we_tls_cfg_pair("TLS_CERT_FILE", "TLS_KEY_FILE", &c, &k, err);
    if (rc == 0 && cert)
        assert_string_equal(c, cert);
    if (rc != 0) {
        assert_null(c);
        assert_null(k);
    }
    return rc;
}

static void test_pair_neither_or_both(void **state)
{
    we_err err;
    const char *c = "x", *k = "x";
    assert_int_equal(we_tls_cfg_pair("TLS_CERT_FILE", "TLS_KEY_FILE", &c, &k, &err), 0);
    assert_null(c);
    assert_null(k);
    assert_int_equal(pair(path_cert, path_key, &err), 0);
    assert_int_equal(pair(path_chain, path_key, &err), 0); /* leaf first, then more */
    assert_int_equal(pair(path_cert, NULL, &err), WE_EINVAL);
    assert_string_equal(err.msg, "TLS_CERT_FILE and TLS_KEY_FILE must be set together (only "
                                 "TLS_CERT_FILE is set)");
    assert_int_equal(pair(NULL, path_key, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "(only TLS_KEY_FILE is set)"));
}

static void test_pair_bad_files(void **state)
{
    we_err err;
    char want[512];
    assert_int_equal(pair("/nonexistent/c.pem", path_key, &err), WE_EINVAL);
    assert_string_equal(
        err.msg, "TLS_CERT_FILE=/nonexistent/c.pem cannot be read: No such file or directory");
    assert_int_equal(pair(path_cert, dir, &err), WE_EINVAL); /* a directory */
    snprintf(want, sizeof want, "TLS_KEY_FILE=%s is not a regular file of at most 1 MiB", dir);
    assert_string_equal(err.msg, want);
    assert_int_equal(pair(path_key, path_key, &err), WE_EINVAL); /* a key as certificate */
    snprintf(want, sizeof want, "TLS_CERT_FILE=%s holds no PEM certificate", path_key);
    assert_string_equal(err.msg, want);
    assert_int_equal(pair(path_garbage, path_key, &err), WE_EINVAL);
    snprintf(want, sizeof want, "TLS_CERT_FILE=%s: certificate 1 is malformed", path_garbage);
    assert_string_equal(err.msg, want);
    assert_int_equal(pair(path_cert, path_cert, &err), WE_EINVAL); /* a certificate as key */
    snprintf(want, sizeof want, "TLS_KEY_FILE=%s holds no valid PEM private key", path_cert);
    assert_string_equal(err.msg, want);
    assert_int_equal(pair(path_cert, path_key2, &err), WE_EINVAL);
    snprintf(want, sizeof want,
             "TLS_KEY_FILE=%s does not belong to the certificate in "
             "TLS_CERT_FILE=%s",
             path_key2, path_cert);
    assert_string_equal(err.msg, want);
    assert_int_equal(pair(path_cert, path_enc, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "is an encrypted private key"));
    assert_null(strstr(err.msg, "BEGIN")); /* never the file's contents */
}

static void test_ca(void **state)
{
    we_err err;
    const char *p = "x";
    assert_int_equal(we_tls_cfg_ca("NATS_TLS_CA_FILE", &p, &err), 0);
    assert_null(p);
    setenv("NATS_TLS_CA_FILE", path_chain, 1);
    assert_int_equal(we_tls_cfg_ca("NATS_TLS_CA_FILE", &p, &err), 0);
    assert_string_equal(p, path_chain);
    setenv("NATS_TLS_CA_FILE", path_key, 1);
    assert_int_equal(we_tls_cfg_ca("NATS_TLS_CA_FILE", &p, &err), WE_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err.msg, "NATS_TLS_CA_FILE="));
    assert_non_null(strstr(err.msg, "holds no PEM certificate"));
}

static void test_read_file(void **state)
{
    we_err err;
    char *pem = NULL;
    assert_int_equal(we_tls_read_file("TLS_CERT_FILE", path_cert, &pem, &err), 0);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----"));
    we_tls_pem_free(pem);
    we_tls_pem_free(NULL);
}

static void nats_tls(const char *url, we_nats_tls *t)
{
    we_err err;
    assert_int_equal(we_nats_tls_load(url, t, &err), 0);
}

static void test_nats_tls(void **state)
{
    we_nats_tls t;
    nats_tls("nats://127.0.0.1:4222", &t);
    assert_false(t.secure);
    assert_null(t.ca_file);
    nats_tls("tls://nats.example:4443", &t);
    assert_true(t.secure);
    assert_string_equal(t.hostname, "nats.example");
    nats_tls("TLS://user:p@ss@10.0.0.7:4222/", &t);
    assert_true(t.secure);
    assert_string_equal(t.hostname, "10.0.0.7");
    nats_tls("tls://[::1]:4222", &t);
    assert_string_equal(t.hostname, "::1");
    nats_tls("tls://a.example:4222,tls://b.example:4222", &t);
    assert_true(t.secure);
    assert_string_equal(t.hostname, ""); /* names differ: chain only */
    setenv("NATS_TLS_CA_FILE", path_cert, 1);
    nats_tls("nats://localhost:4222", &t); /* a CA file alone asks for TLS */
    assert_true(t.secure);
    assert_string_equal(t.ca_file, path_cert);
    assert_string_equal(t.hostname, "localhost");
    setenv("NATS_TLS_CERT_FILE", path_cert, 1);
    setenv("NATS_TLS_KEY_FILE", path_key, 1);
    nats_tls("tls://localhost:4222", &t);
    assert_string_equal(t.cert_file, path_cert);
    assert_string_equal(t.key_file, path_key);
    we_err err;
    setenv("NATS_TLS_KEY_FILE", path_key2, 1);
    assert_int_equal(we_nats_tls_load("tls://localhost:4222", &t, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "NATS_TLS_KEY_FILE="));
    assert_non_null(strstr(err.msg, "does not belong to the certificate in NATS_TLS_CERT_FILE="));
}

static void test_kernel_https_options(void **state)
{
    kn_config cfg;
    we_err err;
    kn_tls_https h;
    memset(&cfg, 0, sizeof cfg);
    cfg.nats_url = "nats://localhost:4222";
    assert_int_equal(kn_tls_load(&cfg, &err), 0);
    assert_int_equal(kn_tls_https_init(&cfg.tls, &h, &err), 0);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.opts[0].option, MHD_OPTION_END);
    kn_tls_https_fini(&h);

    setenv("TLS_CERT_FILE", path_cert, 1);
    setenv("TLS_KEY_FILE", path_key, 1);
    assert_int_equal(kn_tls_load(&cfg, &err), 0);
    assert_int_equal(kn_tls_https_init(&cfg.tls, &h, &err), 0);
    assert_int_equal(h.flags, MHD_USE_TLS);
    assert_int_equal(h.opts[0].option, MHD_OPTION_HTTPS_MEM_CERT);
    assert_non_null(strstr(h.opts[0].ptr_value, "BEGIN CERTIFICATE"));
    assert_int_equal(h.opts[1].option, MHD_OPTION_HTTPS_MEM_KEY);
    assert_non_null(strstr(h.opts[1].ptr_value, "PRIVATE KEY"));
    assert_int_equal(h.opts[3].option, MHD_OPTION_END);
    kn_tls_https_fini(&h);
    assert_null(h.key_pem);

    unsetenv("TLS_KEY_FILE");
    assert_int_equal(kn_tls_load(&cfg, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "TLS_CERT_FILE and TLS_KEY_FILE must be set together"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pair_neither_or_both, clear_env),
        cmocka_unit_test_setup(test_pair_bad_files, clear_env),
        cmocka_unit_test_setup(test_ca, clear_env),
        cmocka_unit_test_setup(test_read_file, clear_env),
        cmocka_unit_test_setup(test_nats_tls, clear_env),
        cmocka_unit_test_setup(test_kernel_https_options, clear_env),
    };
    return cmocka_run_group_tests(tests, make_files, remove_files);
}
