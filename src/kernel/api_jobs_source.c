/*
 * Which sources a job may read (DESIGN §6 "Addressing media", §8). Workers
 * open the source with the job's privileges, so the kernel decides at
 * submission, by scheme:
 *   fs://<key>          a storage key: relative, no '.'/'..'/empty segment,
 *                       a conservative character set (no quotes, ';', '\');
 *   s3://<bucket>/<key> the same key rules, and a storage-s3 plugin to serve it;
 *   file:///abs         only under a directory of SOURCE_ALLOW_DIRS
 *                       (colon-separated, empty by default: refused). Both
 *                       sides go through realpath(), the file must be a
 *                       regular file, and the canonical path is what is
 *                       stored, so a symbolic link cannot lead out later;
 *   http(s)://host/…    no credentials; every address the host resolves to
 *                       must be public (no loopback, private, link-local,
 *                       multicast, or their IPv6 forms and IPv4 embeddings)
 *                       or inside SOURCE_ALLOW_CIDRS (comma list, e.g. an
 *                       internal media server), unless
 *                       SOURCE_ALLOW_PRIVATE=true. The worker's
 *                       encoder-ffmpeg applies the same policy to every
 *                       address it connects to (redirects included).
 * Refusals for file:// do not say whether the file exists (no oracle).
 * The variables are read per request (no kernel state); DNS may block.
 */
#include "api_jobs.h"
#include "we_config.h"
#include "we_netpolicy.h"
#include "we_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_KEY 1024

typedef int (*scheme_fn)(kn_ctx *kn, const char *url, const char *rest, char **canon,
                         we_err *err);

/* ---- keys ------------------------------------------------------------------ */

static bool key_char_ok(unsigned char c)
{
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("-_.~/+=@,:()[]", c);
}

static int key_check(const char *key, we_err *err)
{
    size_t n = strlen(key);
    if (n == 0 || n > MAX_KEY)
        return we_err_set(err, WE_EINVAL, "the key must have 1 to %d bytes", MAX_KEY);
    for (size_t i = 0; i < n; i++)
        if (!key_char_ok((unsigned char)key[i]))
            return we_err_set(err, WE_EINVAL, "the key may hold letters, digits, UTF-8 and "
                                              "\"-_.~/+=@,:()[]\" only");
    for (const char *seg = key;; seg++) {
        size_t len = strcspn(seg, "/");
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && !strncmp(seg, "..", 2)))
            return we_err_set(err, WE_EINVAL, "the key must be relative, without empty, '.' "
                                              "or '..' segments");
        seg += len;
        if (!*seg)
            return 0;
    }
}

static int scheme_fs(kn_ctx *kn, const char *url, const char *rest, char **canon, we_err *err)
{
    if (key_check(rest, err) != 0)
        return WE_EINVAL;
    *canon = we_strdup(url);
    return 0;
}

static bool bucket_ok(const char *b, size_t n)
{
    if (n < 3 || n > 63 || b[0] == '.' || b[0] == '-' || b[n - 1] == '.' || b[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789.-", b[i]))
            return false;
    return true;
}

static int scheme_s3(kn_ctx *kn, const char *url, const char *rest, char **canon, we_err *err)
{
    const char *slash = strchr(rest, '/');
    if (!slash || !bucket_ok(rest, (size_t)(slash - rest)))
        return we_err_set(err, WE_EINVAL, "expected s3://<bucket>/<key> with a bucket of 3 to "
                                          "63 of [a-z0-9.-]");
    if (key_check(slash + 1, err) != 0)
        return WE_EINVAL;
    json_t *p = kn->plugins ? we_host_get(kn->plugins, "storage-s3") : NULL;
    if (!p)
        return we_err_set(err, WE_EINVAL, "no storage plugin serves s3:// (storage-s3 is not "
                                          "installed)");
    json_decref(p);
    *canon = we_strdup(url);
    return 0;
}

/* ---- file:// ---------------------------------------------------------------- */

/* Is the canonical path `real` inside one of SOURCE_ALLOW_DIRS? */
static bool under_allowed_dir(const char *real)
{
    char *dirs = we_strdup(we_cfg_str("SOURCE_ALLOW_DIRS", "")), *save = NULL, dreal[PATH_MAX];
    bool ok = false;
    for (char *d = strtok_r(dirs, ":", &save); d && !ok; d = strtok_r(NULL, ":", &save)) {
        if (d[0] != '/' || !realpath(d, dreal))
            continue;
        size_t n = strlen(dreal);
        ok = (n == 1) || (strncmp(real, dreal, n) == 0 && real[n] == '/');
    }
    free(dirs);
    return ok;
}

static int scheme_file(kn_ctx *kn, const char *url, const char *rest, char **canon, we_err *err)
{
    char real[PATH_MAX];
    struct stat st;
    if (!we_cfg_str("SOURCE_ALLOW_DIRS", "")[0])
        return we_err_set(err, WE_EINVAL, "file:// sources are disabled on this server "
                                          "(SOURCE_ALLOW_DIRS is empty)");
    if (rest[0] != '/')
        return we_err_set(err, WE_EINVAL, "expected file:///<absolute path>");
    if (!realpath(rest, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode) ||
        !under_allowed_dir(real))
        return we_err_set(err, WE_EINVAL, "the path is not a regular file inside "
                                          "SOURCE_ALLOW_DIRS");
    size_t n = strlen(real) + 8;
    *canon = malloc(n);
    WE_ASSERT(*canon != NULL);
    snprintf(*canon, n, "file://%s", real);
    return 0;
}

/* ---- http(s):// --------------------------------------------------------------- */

/* The address checks live in src/lib/we_netpolicy.c (shared with webhooks). */
static int scheme_http(kn_ctx *kn, const char *url, const char *rest, char **canon, we_err *err)
{
    char host[256];
    bool allow_private = false;
    if (we_net_url_host(rest, host, err) != 0)
        return WE_EINVAL;
    we_cfg_bool("SOURCE_ALLOW_PRIVATE", false, &allow_private, NULL);
    if (!allow_private &&
        we_net_host_public_except(host, we_cfg_str("SOURCE_ALLOW_CIDRS", ""), "SOURCE_ALLOW_CIDRS",
                                  "SOURCE_ALLOW_PRIVATE", err) != 0)
        return WE_EINVAL;
    *canon = we_strdup(url);
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------ */

static const struct {
    const char *prefix;
    scheme_fn check;
} schemes[] = {
    { "fs://", scheme_fs },     { "s3://", scheme_s3 },       { "file://", scheme_file },
    { "http://", scheme_http }, { "https://", scheme_http },
};

int kn_job_source_check(kn_ctx *kn, const char *url, char **canon, we_err *err)
{
    *canon = NULL;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncmp(url, schemes[i].prefix, n) != 0)
            continue;
        we_err why;
        if (schemes[i].check(kn, url, url + n, canon, &why) == 0)
            return 0;
        return we_err_set(err, WE_EINVAL, "source_url refused (%.*s): %s", (int)n - 3,
                          schemes[i].prefix, why.msg);
    }
    return we_err_set(err, WE_EINVAL, "source_url: unsupported scheme; use fs://, s3://, "
                                      "file:// or http(s)://");
}
