/*
 * The two documents auth-oidc fetches — the discovery document and the
 * JWKS — over libcurl, and the rule for which URLs it may fetch at all.
 *
 * A fetch is a plain GET with one easy handle of its own (fetches are rare:
 * at start, every jwks_refresh_s, and at most once per jwks_min_refresh_s
 * for an unknown kid), so calls on several threads share nothing here.
 * Bounded in every way a provider could abuse: no redirects, http and https
 * only, one timeout for the whole transfer, and a size cap enforced while
 * the body arrives (not only from Content-Length). TLS is verified with the
 * system's CA store; curl_global_init is done once by config.c at start.
 *
 * Plain http is allowed only to loopback addresses (the tests' providers)
 * unless allow_insecure_http says otherwise: keys fetched in clear text from
 * a network can be replaced by anyone on the path.
 */
#include "ao.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool loopback_host(const char *host)
{
    struct in_addr a4;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* Scheme and host of url, or -1 when curl cannot parse it or it carries
 * credentials. */
static int url_parts(const char *url, char **scheme, char **host)
{
    CURLU *u = curl_url();
    char *user = NULL;
    *scheme = *host = NULL;
    int rc = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
                     curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
                     curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
                     curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER
                 ? 0
                 : -1;
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

bool ao_url_allowed(const char *url, bool allow_insecure, char *why, size_t why_len)
{
    char *scheme, *host;
    bool ok = false;
    if (url_parts(url, &scheme, &host) < 0)
        snprintf(why, why_len, "not an http(s) URL without credentials");
    else if (strcmp(scheme, "https") == 0)
        ok = true;
    else if (strcmp(scheme, "http") != 0)
        snprintf(why, why_len, "scheme %s not allowed (https)", scheme);
    else if (!(ok = allow_insecure || loopback_host(host)))
        snprintf(why, why_len, "plain http to %s refused (https, or allow_insecure_http = true)",
                 host);
    curl_free(scheme);
    curl_free(host);
    return ok;
}

typedef struct sink {
    char *buf;
    size_t len, cap, max;
    bool too_big;
} sink;

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t add = size * n;
    if (add > s->max - s->len) {
        s->too_big = true;
        return 0; /* curl aborts the transfer */
    }
    if (s->len + add + 1 > s->cap) {
        size_t cap = (s->len + add + 1) * 2;
        char *grown = realloc(s->buf, cap < s->max + 1 ? cap : s->max + 1);
        if (!grown)
            return 0;
        s->buf = grown;
        s->cap = cap < s->max + 1 ? cap : s->max + 1;
    }
    memcpy(s->buf + s->len, data, add);
    s->len += add;
    s->buf[s->len] = '\0';
    return add;
}

/* libcurl calls it about once a second even while waiting to connect. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const atomic_bool *cancel = arg;
    return cancel && atomic_load(cancel); /* non-zero aborts the transfer */
}

static void set_options(CURL *c, const char *url, long timeout_ms, sink *s, char *errbuf,
                        struct curl_slist *headers, const atomic_bool *cancel)
{
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)cancel);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->max);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "webencode-auth-oidc/0.1");
}

int ao_http_get(const char *url, long timeout_ms, size_t max_bytes, const atomic_bool *cancel,
                char **body, size_t *len, char *err, size_t err_len)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    sink s = {.max = max_bytes};
    long status = 0;
    CURL *c = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (c && headers) {
        set_options(c, url, timeout_ms, &s, errbuf, headers, cancel);
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    if (rc == CURLE_OK && status == 200 && s.buf) {
        *body = s.buf;
        *len = s.len;
        return 0;
    }
    if (s.too_big || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf(err, err_len, "GET %s: larger than %zu bytes", url, max_bytes);
    else if (rc != CURLE_OK)
        snprintf(err, err_len, "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else
        snprintf(err, err_len, "GET %s: HTTP %ld", url, status);
    free(s.buf);
    return -1;
}
