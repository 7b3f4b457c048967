/*
 * libFuzzer target for request routing (src/kernel/http.c, kn_route_match)
 * over the kernel's real route table (routes.c): any method and path bytes
 * must give a route whose pattern the path really matches (each {capture}
 * one non-empty segment, at most KN_MAX_PARAMS, heap copies the caller
 * frees), or NULL — with an Allow list of real methods when only the method
 * was wrong. The error envelope built for the 404/405 reply (as dispatch()
 * words it) must exist for any bytes: a path is percent-decoded by MHD, so
 * it may hold anything, and a NULL envelope means no reply at all.
 * Input: "<method>\n<path>" (a NUL ends either early, as in a C string).
 *
 *   build: cmake -DWE_SANITIZE=ON with clang, target fuzz_route (links kernellib)
 *   ./build-asan/fuzz/fuzz_route -max_total_time=60 -dict=tests/fuzz/route.dict \
 *     tests/fuzz/corpus/route
 */
#include "http.h"
#include "we_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_route: %s failed at line %d\n", #c, __LINE__);                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Rebuilds the path from the pattern and the captures: it must be the path. */
static void check_captures(const kn_route *rt, const char *path, char **params, int n)
{
    char rebuilt[8192];
    size_t o = 0;
    int k = 0;
    for (const char *p = rt->pattern; *p;) {
        if (*p == '{') {
            CHECK(k < n);
            CHECK(params[k][0] && !strchr(params[k], '/'));
            size_t len = strlen(params[k]);
            CHECK(o + len < sizeof rebuilt);
            memcpy(rebuilt + o, params[k++], len);
            o += len;
            p = strchr(p, '}') + 1;
        } else {
            CHECK(o + 1 < sizeof rebuilt);
            rebuilt[o++] = *p++;
        }
    }
    rebuilt[o] = '\0';
    CHECK(k == n);
    CHECK(strcmp(rebuilt, path) == 0);
}

/* What dispatch() sends for an unmatched request must be sendable. */
static void check_envelope(const char *method, const char *path, bool mismatch, const char *allow)
{
    char msg[320];
    json_t *details = NULL;
    if (mismatch) {
        snprintf(msg, sizeof msg, "method %.16s is not allowed on %.200s (allowed: %.60s)", method,
                 path, allow);
        details = json_pack("{s:s}", "allow", allow);
        CHECK(details != NULL);
    } else {
        snprintf(msg, sizeof msg, "no route for %.16s %.200s", method, path);
    }
    json_t *body = kn_error_body(mismatch ? "WE-SYS-003" : "WE-SYS-002", msg, details, "fuzz");
    /* NULL here means no reply at all: MHD closes the connection */
    CHECK(body != NULL);
    CHECK(json_is_object(json_object_get(body, "error")));
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        we_log_init("fuzz", WE_LOG_FATAL);
        quiet = true;
    }
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *nl = memchr(buf, '\n', size);
    const char *method = nl ? buf : "GET", *path = nl ? nl + 1 : buf;
    if (nl)
        *nl = '\0';

    char *params[KN_MAX_PARAMS];
    int n = -1;
    bool mismatch = true;
    char allow[64];
    memset(params, 0xA5, sizeof params); /* garbage: nothing may be read unless set */
    const kn_route *rt =
        kn_route_match(kn_routes, method, path, params, &n, &mismatch, allow, sizeof allow);
    if (rt) {
        CHECK(strcmp(rt->method, method) == 0); /* mismatch only means something for NULL */
        CHECK(n >= 0 && n <= KN_MAX_PARAMS);
        check_captures(rt, path, params, n);
        for (int i = 0; i < n; i++)
            free(params[i]);
    } else {
        CHECK(strlen(allow) < sizeof allow);
        CHECK(mismatch == (allow[0] != '\0'));
        /* every method in Allow has a route for this path */
        char list[64], *save = NULL;
        snprintf(list, sizeof list, "%s", allow);
        for (char *m = strtok_r(list, ", ", &save); m; m = strtok_r(NULL, ", ", &save)) {
            char *p2[KN_MAX_PARAMS];
            int n2 = 0;
            bool mm;
            char al[64];
            const kn_route *r2 = kn_route_match(kn_routes, m, path, p2, &n2, &mm, al, sizeof al);
            CHECK(r2 != NULL);
            for (int i = 0; i < n2; i++)
                free(p2[i]);
        }
        check_envelope(method, path, mismatch, allow);
    }
    free(buf);
    return 0;
}
