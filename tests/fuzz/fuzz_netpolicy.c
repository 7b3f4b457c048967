/*
 * libFuzzer target for the small strings the kernel takes from requests
 * and judges without a database: X-Forwarded-For against TRUSTED_PROXIES
 * (src/kernel/auth_net.c, kn_forwarded_client, kn_ip_in_list), the job source
 * policy (src/kernel/api_jobs_source.c, kn_job_source_check, with
 * src/lib/we_netpolicy.c), and the jobs list's query strings
 * (src/kernel/api_jobs_query.c: ids, times, cursors). Input: up to three
 * lines A, B, C (a NUL ends a line early):
 *   kn_forwarded_client(xff=A, trusted=B), kn_ip_in_list(B, A), kn_ip_in_list(B, C);
 *   kn_job_source_check(A) and (C); kn_job_cursor_decode / time / id of A and C.
 * The source check runs without a kn_ctx database or plugin host. http(s)
 * sources are only checked when the host is a numeric address (no DNS in
 * a fuzzer); then a private address must be refused. file:// is allowed
 * under one temporary directory holding one file, so the realpath branch
 * runs; anything it accepts must lie inside that directory.
 *
 *   build: cmake -DWE_SANITIZE=ON with clang, target fuzz_netpolicy (links kernellib)
 *   ./build-asan/fuzz/fuzz_netpolicy -max_total_time=60 -dict=tests/fuzz/netpolicy.dict \
 *     tests/fuzz/corpus/netpolicy
 */
#include "api_jobs.h"
#include "auth.h"
#include "we_log.h"
#include "we_netpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_netpolicy: %s failed at line %d\n", #c, __LINE__);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char g_dir[64]; /* SOURCE_ALLOW_DIRS, made once */

static void cleanup(void)
{
    char f[96];
    snprintf(f, sizeof f, "%s/a.mp4", g_dir);
    unlink(f);
    rmdir(g_dir);
}

static void setup(void)
{
    we_log_init("fuzz", WE_LOG_FATAL);
    snprintf(g_dir, sizeof g_dir, "/tmp/we-fuzz-np-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
    char f[96];
    snprintf(f, sizeof f, "%s/a.mp4", g_dir);
    FILE *fp = fopen(f, "w");
    CHECK(fp != NULL);
    fclose(fp);
    atexit(cleanup);
    setenv("SOURCE_ALLOW_DIRS", g_dir, 1);
    unsetenv("SOURCE_ALLOW_PRIVATE");
}

/* Whether host is an address literal glibc takes without DNS, and if so
 * whether it is private. */
static bool numeric_host(const char *host, bool *private_addr)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    if (inet_aton(host, &v4.sin_addr) == 1 && !strchr(host, ':')) {
        *private_addr = we_net_addr_private((struct sockaddr *)&v4);
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
        *private_addr = we_net_addr_private((struct sockaddr *)&v6);
        return true;
    }
    return false;
}

static void source(const char *url)
{
    static kn_ctx kn; /* no database, no plugins: s3:// is refused */
    char host[256], *canon = NULL;
    we_err err;
    bool http = !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8), priv = false;
    if (http) {
        const char *rest = url + (url[4] == 's' ? 8 : 7);
        if (we_net_url_host(rest, host, &err) != 0) {
            CHECK(kn_job_source_check(&kn, url, &canon, &err) != 0 && canon == NULL);
            return;
        }
        CHECK(strlen(host) >= 1 && strlen(host) <= 253);
        if (!numeric_host(host, &priv))
            return; /* would need DNS */
    }
    int rc = kn_job_source_check(&kn, url, &canon, &err);
    if (rc != 0) {
        CHECK(canon == NULL && err.msg[0]);
        return;
    }
    CHECK(canon != NULL);
    CHECK(!(http && priv)); /* SSRF: a private literal got through */
    CHECK(strncmp(url, "s3://", 5) != 0);
    if (!strncmp(canon, "file://", 7)) {
        size_t n = strlen(g_dir);
        CHECK(strncmp(canon + 7, g_dir, n) == 0 && canon[7 + n] == '/');
    } else {
        CHECK(strcmp(canon, url) == 0);
    }
    if (!strncmp(url, "fs://", 5))
        CHECK(!strstr(url, "/../") && strncmp(url + 5, "../", 3) && url[5] != '/');
    free(canon);
}

static void query(const char *s)
{
    char ts[40], id[37];
    kn_job_id_valid(s);
    kn_job_time_valid(s);
    if (!kn_job_cursor_decode(s, ts, id))
        return;
    CHECK(kn_job_time_valid(ts) && kn_job_id_valid(id));
    char *again = kn_job_cursor_encode(ts, id);
    char ts2[40], id2[37];
    CHECK(kn_job_cursor_decode(again, ts2, id2));
    CHECK(!strcmp(ts, ts2) && !strcmp(id, id2));
    free(again);
}

static void proxies(const char *xff, const char *trusted, const char *ip)
{
    char out[48];
    memset(out, 'x', sizeof out);
    if (kn_forwarded_client(xff, trusted, out, sizeof out)) {
        CHECK(memchr(out, '\0', sizeof out) != NULL && out[0]);
        CHECK(!kn_ip_in_list(trusted, out)); /* never a trusted proxy itself */
    }
    kn_ip_in_list(trusted, xff);
    kn_ip_in_list(trusted, ip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > 8192)
        return 0;
    char *buf = malloc(size + 1), *line[3] = {"", "", ""};
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *p = buf;
    for (int i = 0; i < 3 && p; i++) {
        line[i] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = '\0';
    }
    proxies(line[0], line[1], line[2]);
    source(line[0]);
    source(line[2]);
    query(line[0]);
    query(line[2]);
    free(buf);
    return 0;
}
