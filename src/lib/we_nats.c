/*
 * NATS connect/retry. libnats owns reconnection once a connection exists
 * (unlimited attempts, 0.5 s apart with jitter); its callbacks run on library
 * threads and only log here. The retry loop for the first connection runs on
 * the caller's thread and wakes on a stop request.
 *
 * TLS (we_nats_tls) is applied to the options of every attempt, so
 * reconnections use it too: libnats then verifies the server's chain against
 * NATS_TLS_CA_FILE and, since it does not by default, the host name of
 * NATS_URL against the certificate.
 */
#include "we_nats.h"
#include "we_log.h"
#include "we_tls.h"
#include "we_util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* libnats 3.4's exit handler frees OpenSSL's list of compression methods,
 * and OpenSSL's own exit handler (OPENSSL_cleanup) frees it again whenever it
 * runs after libnats', which it does when anything (config checks, libpq,
 * a token hash) used OpenSSL before nats_Open: a double free at exit once a
 * TLS connection to NATS was made. So OpenSSL is told, before main and hence
 * before its first use, not to register that handler; the process exit
 * reclaims its memory. */
__attribute__((constructor)) static void we__openssl_no_atexit(void)
{
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}

void we_url_redact(const char *url, char *buf, size_t n)
{
    const char *scheme = strstr(url, "://");
    const char *start = scheme ? scheme + 3 : url;
    const char *slash = strchr(start, '/');
    const char *at = strchr(start, '@');
    if (at && (!slash || at < slash))
        snprintf(buf, n, "%.*s***%s", (int)(start - url), url, at);
    else
        snprintf(buf, n, "%s", url);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    if (natsConnection_IsClosed(nc))
        return; /* our own close at shutdown, not an outage */
    we_warn("NATS disconnected; reconnecting", WE_S("name", (const char *)closure));
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    we_info("NATS reconnected", WE_S("name", (const char *)closure));
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    we_warn("NATS asynchronous error", WE_ERR(natsStatus_GetText(s)),
            WE_S("name", (const char *)closure));
}

/* The host of a one-server URL (no user info, port or brackets); "" for a
 * list of servers, whose names may differ. */
static void url_host(const char *url, char *buf, size_t n)
{
    buf[0] = '\0';
    if (strchr(url, ','))
        return;
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t end = strcspn(p, "/?#");
    for (size_t i = end; i > 0; i--) {
        if (p[i - 1] == '@') {
            p += i;
            end -= i;
            break;
        }
    }
    size_t len = strcspn(p, ":/?#");
    if (*p == '[') {
        const char *rb = memchr(p, ']', end);
        if (!rb)
            return;
        p++;
        len = (size_t)(rb - p);
    }
    snprintf(buf, n, "%.*s", (int)(len < end ? len : end), p);
}

int we_nats_tls_load(const char *url, we_nats_tls *out, we_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = we_tls_cfg_ca("NATS_TLS_CA_FILE", &out->ca_file, err);
    if (!rc)
        rc = we_tls_cfg_pair("NATS_TLS_CERT_FILE", "NATS_TLS_KEY_FILE", &out->cert_file,
                             &out->key_file, err);
    if (rc)
        return rc;
    out->secure = strncasecmp(url, "tls://", 6) == 0 || out->ca_file || out->cert_file;
    if (out->secure)
        url_host(url, out->hostname, sizeof out->hostname);
    return 0;
}

static natsStatus apply_tls(natsOptions *o, const we_nats_tls *t)
{
    if (!t || !t->secure)
        return NATS_OK;
    natsStatus s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && t->ca_file)
        s = natsOptions_LoadCATrustedCertificates(o, t->ca_file);
    if (s == NATS_OK && t->cert_file)
        s = natsOptions_LoadCertificatesChain(o, t->cert_file, t->key_file);
    if (s == NATS_OK && t->hostname[0])
        s = natsOptions_SetExpectedHostname(o, t->hostname);
    return s;
}

static natsStatus make_options(const char *url, const we_nats_tls *tls, const char *name,
                               natsOptions **out)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = apply_tls(o, tls);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 500);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(o, 250, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, 5000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, 2);
    /* closure must outlive the connection: name is a string literal or
     * long-lived config string at every call site */
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, (void *)name);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, (void *)name);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, (void *)name);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}

static int check_jetstream(we_nats *n, we_err *err)
{
    jsErrCode jerr = 0;
    jsAccountInfo *ai = NULL;
    natsStatus s = natsConnection_JetStream(&n->js, n->nc, NULL);
    if (s == NATS_OK)
        s = js_GetAccountInfo(&ai, n->js, NULL, &jerr);
    jsAccountInfo_Destroy(ai);
    if (s == NATS_OK)
        return 0;
    if (s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT || jerr == JSNotEnabledErr ||
        jerr == JSNotEnabledForAccountErr)
        return we_err_set(err, WE_EIO,
                          "JetStream is not enabled on the NATS server: run nats-server -js (%s)",
                          natsStatus_GetText(s));
    return we_err_set(err, WE_EIO, "JetStream account info failed: %s (code %d)",
                      natsStatus_GetText(s), (int)jerr);
}

int we_nats_connect(const char *url, const we_nats_tls *tls, const char *name, bool need_js,
                    we_nats *out, we_err *err)
{
    natsOptions *o = NULL;
    we_nats n = { 0 };
    natsStatus s = make_options(url, tls, name, &o);
    if (s == NATS_OK)
        s = natsConnection_Connect(&n.nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        const char *last = nats_GetLastError(NULL);
        return we_err_set(err, WE_EIO, "%s%s%s", natsStatus_GetText(s), last ? ": " : "",
                          last ? last : "");
    }
    if (need_js) {
        int rc = check_jetstream(&n, err);
        if (rc != 0) {
            we_nats_close(&n);
            return rc;
        }
    }
    *out = n;
    return 0;
}

int we_nats_connect_retry(const char *url, const we_nats_tls *tls, const char *name, bool need_js,
                          we_nats *out)
{
    char safe[512];
    we_url_redact(url, safe, sizeof safe);
    for (int attempt = 0;; attempt++) {
        we_err err;
        if (we_nats_connect(url, tls, name, need_js, out, &err) == 0) {
            we_info("NATS connected", WE_S("url", safe), WE_B("jetstream", need_js),
                    WE_B("tls", tls && tls->secure));
            return 0;
        }
        int64_t wait = we_backoff_ms(attempt, 500, 30000);
        bool tls_failed = strstr(err.msg, "SSL") != NULL;
        we_error("NATS Connection Failed", WE_ERR(err.msg), WE_S("url", safe),
                 WE_S("advice", tls_failed
                                    ? "check NATS_TLS_CA_FILE (the CA of the server's "
                                      "certificate), the host name in NATS_URL and "
                                      "NATS_TLS_CERT_FILE/NATS_TLS_KEY_FILE"
                                    : "ensure nats-server runs with JetStream (nats-server -js) "
                                      "and is reachable; check firewall rules"),
                 WE_I("retry_in_ms", wait), WE_I("attempt", attempt + 1));
        if (we_sleep_ms_or_stop(wait))
            return WE_ESTATE;
    }
}

void we_nats_close(we_nats *n)
{
    if (n->js)
        jsCtx_Destroy(n->js);
    if (n->nc) {
        natsConnection_Close(n->nc);
        natsConnection_Destroy(n->nc);
    }
    n->js = NULL;
    n->nc = NULL;
}

bool we_nats_is_connected(const we_nats *n)
{
    return n->nc && natsConnection_Status(n->nc) == NATS_CONN_STATUS_CONNECTED;
}

int we_nats_rtt_us(const we_nats *n, int64_t *rtt_us, we_err *err)
{
    int64_t rtt_ns = 0;
    if (!n->nc)
        return we_err_set(err, WE_EIO, "not connected");
    natsStatus s = natsConnection_GetRTT(n->nc, &rtt_ns);
    if (s != NATS_OK)
        return we_err_set(err, WE_EIO, "%s", natsStatus_GetText(s));
    *rtt_us = rtt_ns / 1000;
    return 0;
}

int we_nats_js_rtt_us(const we_nats *n, int64_t *rtt_us, we_err *err)
{
    if (!n->js)
        return we_err_set(err, WE_EIO, "JetStream context not available");
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 1000;
    jsErrCode jerr = 0;
    jsAccountInfo *ai = NULL;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    natsStatus s = js_GetAccountInfo(&ai, n->js, &o, &jerr);
    clock_gettime(CLOCK_MONOTONIC, &b);
    jsAccountInfo_Destroy(ai);
    if (s != NATS_OK)
        return we_err_set(err, WE_EIO, "%s (code %d)", natsStatus_GetText(s), (int)jerr);
    *rtt_us = (b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000;
    return 0;
}
