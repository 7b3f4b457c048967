/*
 * A few lines of the plugin protocol spoken by hand, for the deliberately
 * broken test plugins that must misbehave in ways the SDK never would.
 * Header-only (tests/plugins/<name>/ directories build their own *.c only);
 * single-threaded; exits when stdin closes.
 */
#ifndef TEST_RAWPROTO_H
#define TEST_RAWPROTO_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Exits 1 with a description unless started by a host (protocol §2). */
static inline void raw_check_cookie(const char *what)
{
    const char *v = getenv("WEBENCODE_PLUGIN");
    if (!v || strcmp(v, "webencode-plugin-protocol") != 0) {
        fprintf(stderr, "%s: a broken test plugin for the WebEncode host\n", what);
        exit(1);
    }
}

/* The next request from stdin (a new reference), or NULL at end-of-file. */
static inline json_t *raw_read(void)
{
    static char *line;
    static size_t cap;
    for (;;) {
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            free(line);
            line = NULL;
            return NULL;
        }
        json_t *m = json_loadb(line, (size_t)n, 0, NULL);
        if (json_is_object(m))
            return m;
        json_decref(m);
    }
}

static inline void raw_send(json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
}

static inline void raw_result(json_t *req, json_t *result)
{
    raw_send(json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", json_object_get(req, "id"),
                       "result", result));
}

static inline void raw_error(json_t *req, int code, const char *msg)
{
    raw_send(json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                       json_object_get(req, "id"), "error", "code", code, "message", msg));
}

static inline const char *raw_method(json_t *req)
{
    const char *m = json_string_value(json_object_get(req, "method"));
    return m ? m : "";
}

/* The handshake result a plugin of this id and type sends. */
static inline json_t *raw_handshake(const char *id, const char *type, int api_version)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:[s,s,s], s:{}}", "id", id, "type", type, "version",
                     "0.0.1", "api_version", api_version, "methods", "handshake", "health",
                     "shutdown", "capabilities");
}

/* Answers health and shutdown like a plugin should; false for other methods. */
static inline int raw_standard(json_t *req)
{
    if (strcmp(raw_method(req), "health") == 0) {
        raw_result(req, json_pack("{s:s}", "status", "ok"));
        return 1;
    }
    if (strcmp(raw_method(req), "shutdown") == 0) {
        raw_result(req, json_object());
        json_decref(req);
        exit(0);
    }
    return 0;
}

#endif
