/*
 * test-crashcall: answers its handshake and health checks like any plugin,
 * then abort()s inside test.work, 50 ms into the call.
 */
#include <webencode/plugin.h>

#include <stdlib.h>
#include <time.h>

static int work(we_plugin_call *call, json_t *params, json_t **result)
{
    (void)call;
    (void)params;
    (void)result;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    abort();
}

static const we_plugin_method methods[] = {{"test.work", work}, {NULL, NULL}};

static const we_plugin_def def = {
    .id = "test-crashcall",
    .type = "storage",
    .version = "0.1.0",
    .description = "test plugin: crashes mid-call",
    .methods = methods,
};

int main(int argc, char **argv)
{
    return we_plugin_serve(&def, argc, argv);
}
