/*
 * Kernel TLS configuration and the HTTPS options for libmicrohttpd.
 *
 * HTTPS is all or nothing on PORT: with TLS_CERT_FILE and TLS_KEY_FILE the
 * daemon speaks TLS only (a plain request gets a failed handshake), TLS 1.2
 * and 1.3 with GnuTLS's NORMAL cipher suites. The files are checked in
 * kn_tls_load (exit 2 on a bad one, like every configuration error) and read
 * again by kn_tls_https_init right before the daemon starts. Both run on the
 * main thread.
 */
#include "tls.h"
#include "we_log.h"
#include "we_tls.h"

#include <string.h>

#define KN_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

int kn_tls_load(kn_config *cfg, we_err *err)
{
    int rc = we_tls_cfg_pair("TLS_CERT_FILE", "TLS_KEY_FILE", &cfg->tls.cert_file,
                             &cfg->tls.key_file, err);
    if (!rc && cfg->tls.cert_file && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        rc = we_err_set(err, WE_EINVAL,
                        "TLS_CERT_FILE is set but libmicrohttpd was built without TLS support");
    if (!rc)
        rc = we_nats_tls_load(cfg->nats_url, &cfg->tls.nats, err);
    return rc;
}

int kn_tls_https_init(const kn_tls *t, kn_tls_https *h, we_err *err)
{
    memset(h, 0, sizeof *h);
    h->opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    if (!t->cert_file)
        return 0;
    int rc = we_tls_read_file("TLS_CERT_FILE", t->cert_file, &h->cert_pem, err);
    if (!rc)
        rc = we_tls_read_file("TLS_KEY_FILE", t->key_file, &h->key_pem, err);
    if (rc) {
        kn_tls_https_fini(h);
        return rc;
    }
    h->flags = MHD_USE_TLS;
    h->opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert_pem};
    h->opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem};
    h->opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)KN_TLS_PRIORITIES};
    h->opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    we_info("HTTPS enabled", WE_S("cert_file", t->cert_file), WE_S("protocols", "TLS 1.2, 1.3"));
    return 0;
}

void kn_tls_https_fini(kn_tls_https *h)
{
    we_tls_pem_free(h->key_pem);
    we_tls_pem_free(h->cert_pem);
    h->key_pem = NULL;
    h->cert_pem = NULL;
}
