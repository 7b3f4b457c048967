/*
 * test-echo: the well-behaved plugin of the host's tests, written with the
 * SDK. Methods: test.echo (returns its params), test.sleep {ms} (sleeps in
 * 10 ms steps, sends progress every 50 ms, honours cancel and the deadline),
 * test.crash (abort()s mid-call), test.config (the configuration it got),
 * test.log (writes a JSON log line and a plain text line to stderr),
 * test.set_health {mode: ok|degraded|slow|hang} (what the next health checks
 * do; slow sleeps 300 ms, hang 3 s).
 *
 * test-echo-v2 compiles this file with another ECHO_VERSION.
 */
#include <webencode/plugin.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef ECHO_VERSION
#define ECHO_VERSION "0.1.0"
#endif

enum { H_OK, H_DEGRADED, H_SLOW, H_HANG };
static atomic_int health_mode;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int echo(we_plugin_call *call, json_t *params, json_t **result)
{
    (void)call;
    *result = json_deep_copy(params);
    return 0;
}

static int do_sleep(we_plugin_call *call, json_t *params, json_t **result)
{
    json_int_t ms = json_integer_value(json_object_get(params, "ms"));
    for (json_int_t t = 0; t < ms; t += 10) {
        if (we_plugin_cancelled(call))
            return we_plugin_fail_code(call, WE_RPC_CANCELLED, "cancelled after %lld ms",
                                       (long long)t);
        if (t % 50 == 0)
            we_plugin_progress(call, json_pack("{s:I, s:f}", "slept_ms", t, "percent",
                                               100.0 * (double)t / (double)ms));
        sleep_ms(10);
    }
    *result = json_pack("{s:I}", "slept_ms", ms);
    return 0;
}

static int crash(we_plugin_call *call, json_t *params, json_t **result)
{
    (void)call;
    (void)params;
    (void)result;
    sleep_ms(20);
    abort();
}

static int config(we_plugin_call *call, json_t *params, json_t **result)
{
    (void)params;
    *result = json_deep_copy(we_plugin_state(call));
    return 0;
}

static int log_lines(we_plugin_call *call, json_t *params, json_t **result)
{
    (void)call;
    (void)params;
    we_plugin_log("warn", "hello from the plugin",
                  json_pack("{s:i, s:s}", "answer", 42, "colour", "blue"));
    fprintf(stderr, "a plain text line\n");
    fflush(stderr);
    *result = json_object();
    return 0;
}

static int set_health(we_plugin_call *call, json_t *params, json_t **result)
{
    static const char *const modes[] = {"ok", "degraded", "slow", "hang"};
    const char *m = json_string_value(json_object_get(params, "mode"));
    for (int i = 0; m && i < 4; i++) {
        if (strcmp(m, modes[i]) == 0) {
            atomic_store(&health_mode, i);
            *result = json_object();
            return 0;
        }
    }
    return we_plugin_fail_params(call, "mode must be ok, degraded, slow or hang");
}

static bool health(void *state, const char **detail)
{
    (void)state;
    switch (atomic_load(&health_mode)) {
    case H_DEGRADED:
        *detail = "told to be degraded";
        return false;
    case H_SLOW:
        sleep_ms(300);
        return true;
    case H_HANG:
        sleep_ms(3000);
        return true;
    default:
        return true;
    }
}

static int init(json_t *cfg, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    *state = json_deep_copy(cfg);
    return 0;
}

static void fini(void *state)
{
    json_decref(state);
}

static const we_plugin_method methods[] = {
    {"test.echo", echo},
    {"test.sleep", do_sleep},
    {"test.crash", crash},
    {"test.config", config},
    {"test.log", log_lines},
    {"test.set_health", set_health},
    {NULL, NULL},
};

static const we_plugin_def def = {
    .id = "test-echo",
    .type = "storage",
    .version = ECHO_VERSION,
    .description = "test plugin: echo",
    .methods = methods,
    .init = init,
    .fini = fini,
    .health = health,
    .capabilities_json = "{\"echo\":true,\"from_handshake\":1}",
    .max_concurrency = 16,
};

int main(int argc, char **argv)
{
    return we_plugin_serve(&def, argc, argv);
}
