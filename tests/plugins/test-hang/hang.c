/*
 * test-hang: a plugin whose method test.hang sleeps forever, ignoring both
 * $/cancel and its deadline. The host must give up at the deadline on its
 * own; the SDK exits without waiting for the method when stdin closes.
 */
#include <webencode/plugin.h>

#include <unistd.h>

static int hang(we_plugin_call *call, json_t *params, json_t **result)
{
    (void)call;
    (void)params;
    (void)result;
    for (volatile int forever = 1; forever;)
        sleep(1);
    return 0;
}

static const we_plugin_method methods[] = {{"test.hang", hang}, {NULL, NULL}};

static const we_plugin_def def = {
    .id = "test-hang",
    .type = "encoder",
    .version = "0.1.0",
    .description = "test plugin: hangs",
    .methods = methods,
};

int main(int argc, char **argv)
{
    return we_plugin_serve(&def, argc, argv);
}
