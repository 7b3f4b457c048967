/*
 * WebEncode plugin SDK — the one public header a plugin includes.
 *
 * A plugin is a table of methods and a main() that calls we_plugin_serve():
 *
 *   static int stat(we_plugin_call *c, json_t *params, json_t **result) { ... }
 *   static const we_plugin_method methods[] = { { "storage.stat", stat }, { NULL, NULL } };
 *   static const we_plugin_def def = { .id = "storage-fs", .type = "storage",
 *                                      .version = "0.1.0", .methods = methods };
 *   int main(int argc, char **argv) { return we_plugin_serve(&def, argc, argv); }
 *
 * The SDK speaks the protocol of docs/plugin-protocol.md on stdin/stdout: it
 * answers handshake/health/shutdown itself, runs each call on a thread of a
 * small pool (so several calls proceed at once), serialises the replies,
 * delivers $/cancel to the call, and exits when stdin closes. Run without the
 * magic cookie it prints what it is and exits 1.
 *
 * JSON values are jansson's (json_t); ownership follows jansson: params are
 * borrowed, *result is a new reference the SDK takes.
 */
#ifndef WEBENCODE_PLUGIN_H
#define WEBENCODE_PLUGIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The protocol version this SDK speaks (the runbook's "pkg/api version").
 * Kernel, worker and plugins built from one tree agree on it. */
#define WE_PLUGIN_API_VERSION 1

/* The magic cookie the host sets in the plugin's environment. */
#define WE_PLUGIN_MAGIC_ENV "WEBENCODE_PLUGIN"
#define WE_PLUGIN_MAGIC_VALUE "webencode-plugin-protocol"

/* JSON-RPC error codes (docs/plugin-protocol.md §4.1). */
enum {
    WE_RPC_PARSE_ERROR = -32700,
    WE_RPC_INVALID_REQUEST = -32600,
    WE_RPC_METHOD_NOT_FOUND = -32601,
    WE_RPC_INVALID_PARAMS = -32602,
    WE_RPC_INTERNAL = -32603,
    WE_RPC_FAILED = -32000,
    WE_RPC_INCOMPATIBLE = -32001,
    WE_RPC_DEADLINE = -32002,
    WE_RPC_CANCELLED = -32800,
};

/* Maximum size of one protocol message (a line), bytes. */
#define WE_PLUGIN_MAX_MESSAGE (16 * 1024 * 1024)

typedef struct we_plugin_call we_plugin_call;

/* A method: returns 0 with *result set (a JSON object; NULL means {}), or
 * -1 after we_plugin_fail() / we_plugin_fail_params(). Runs on a pool
 * thread; it should poll we_plugin_cancelled() during long work. */
typedef int (*we_plugin_method_fn)(we_plugin_call *call, json_t *params, json_t **result);

typedef struct we_plugin_method {
    const char *name; /* e.g. "storage.stat" */
    we_plugin_method_fn fn;
} we_plugin_method;

typedef struct we_plugin_def {
    const char *id;          /* must equal plugin.toml's id */
    const char *type;        /* auth | storage | encoder | live | publisher */
    const char *version;     /* the plugin's version */
    const char *description; /* one line, printed when run by hand */
    const we_plugin_method *methods; /* ends with { NULL, NULL } */
    /* Called once after a successful handshake with the host's config
     * object (borrowed). Return 0, or -1 with a message in err (which makes
     * the handshake fail with -32602 naming it). *state is passed to calls. */
    int (*init)(json_t *config, void **state, char *err, size_t err_len);
    /* Called at exit with the state from init (may be NULL). */
    void (*fini)(void *state);
    /* Optional health check: fills *detail (static string) and returns true
     * when healthy; NULL means always healthy. */
    bool (*health)(void *state, const char **detail);
    /* Capabilities reported in the handshake (a JSON object text), or NULL. */
    const char *capabilities_json;
    int max_concurrency; /* calls run at once; 0 means 4 */
    int api_version;     /* 0 means WE_PLUGIN_API_VERSION; tests override it */
} we_plugin_def;

/* Runs the plugin until stdin closes or the host asks it to shut down.
 * Returns the process exit status for main() to return. */
int we_plugin_serve(const we_plugin_def *def, int argc, char **argv);

/* --- inside a method ------------------------------------------------------ */

/* The state returned by def->init. */
void *we_plugin_state(const we_plugin_call *call);
/* True once the host cancelled this call, its deadline passed, or the
 * plugin is shutting down. */
bool we_plugin_cancelled(const we_plugin_call *call);
/* Milliseconds left before the call's deadline; INT64_MAX when it has none. */
int64_t we_plugin_remaining_ms(const we_plugin_call *call);
/* Sends a $/progress notification for this call; steals progress (an
 * object). Thread-safe. */
void we_plugin_progress(we_plugin_call *call, json_t *progress);
/* Sets the call's error (code WE_RPC_FAILED, with data.we_code and
 * data.retryable) and returns -1, so methods can `return we_plugin_fail(…)`. */
int we_plugin_fail(we_plugin_call *call, const char *we_code, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* -32602 invalid params, naming the field. Returns -1. */
int we_plugin_fail_params(we_plugin_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Any other code (e.g. WE_RPC_CANCELLED). Returns -1. */
int we_plugin_fail_code(we_plugin_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One JSON log line on stderr: level is "debug" | "info" | "warn" | "error";
 * fields is NULL or an object whose members are added (stolen). */
void we_plugin_log(const char *level, const char *msg, json_t *fields);

#ifdef __cplusplus
}
#endif

#endif
