/*
 * Worker configuration: WORKER_ID validation (it becomes a NATS subject
 * token) and the environment getters' ranges and error messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"

#include <stdlib.h>
#include <string.h>

static const char *const vars[] = { "NATS_URL",     "WORKER_ID",
                                    "WORKER_SLOTS", "WORKER_HEARTBEAT_MS",
                                    "FFMPEG_PATH",  "PLUGIN_DIR",
                                    "LOG_LEVEL",    "WORKER_STOP_GRACE_S" };

static int clear_env(void **state)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    return 0;
}

static void test_id_valid(void **state)
{
    static const char *const good[] = { "a", "worker-gpu-01", "W_1", "0", "-", "_x-Y_9" };
    static const char *const bad[] = { "",   "a.b",  "a b",  "*", ">",   "a*",
                                       "a>", "wk.>", "a\tb", "é", "a/b", "a\nb" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(wk_id_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(wk_id_valid(bad[i]));
    char id[66];
    memset(id, 'a', 65);
    id[65] = '\0';
    assert_false(wk_id_valid(id)); /* 65 */
    id[64] = '\0';
    assert_true(wk_id_valid(id)); /* 64 */
}

static void test_defaults(void **state)
{
    wk_config c;
    we_err err = { "" };
    setenv("WORKER_ID", "w1", 1); /* the host name of a test machine may be anything */
    assert_int_equal(wk_config_load(&c, &err), 0);
    assert_string_equal(c.nats_url, "nats://localhost:4222");
    assert_string_equal(c.id, "w1");
    assert_int_equal(c.slots, 1);
    assert_int_equal(c.heartbeat_ms, 5000);
    assert_int_equal(c.stop_grace_s, 30);
    assert_string_equal(c.ffmpeg, "ffmpeg");
    assert_string_equal(c.plugin_dir, "./plugins");
    assert_int_equal(c.log_level, 1); /* info */
    assert_true(c.hostname[0] != '\0');
}

static void test_values(void **state)
{
    wk_config c;
    setenv("NATS_URL", "tls://nats.example:4443", 1);
    setenv("WORKER_ID", "worker-gpu-01", 1);
    setenv("WORKER_SLOTS", "64", 1);
    setenv("WORKER_HEARTBEAT_MS", "100", 1);
    setenv("WORKER_STOP_GRACE_S", "0", 1);
    setenv("FFMPEG_PATH", "/opt/ff/bin/ffmpeg", 1);
    setenv("LOG_LEVEL", "debug", 1);
    assert_int_equal(wk_config_load(&c, NULL), 0);
    assert_string_equal(c.nats_url, "tls://nats.example:4443");
    assert_string_equal(c.id, "worker-gpu-01");
    assert_int_equal(c.slots, 64);
    assert_int_equal(c.heartbeat_ms, 100);
    assert_int_equal(c.stop_grace_s, 0);
    assert_string_equal(c.ffmpeg, "/opt/ff/bin/ffmpeg");
    assert_int_equal(c.log_level, 0);
}

/* Each bad value fails with an error that names its variable. */
static void test_errors_name_the_variable(void **state)
{
    static const struct {
        const char *var, *value;
    } cases[] = {
        { "WORKER_ID", "gpu.01" },
        { "WORKER_ID", "a b" },
        { "WORKER_ID", ">" },
        { "WORKER_SLOTS", "0" },
        { "WORKER_SLOTS", "65" },
        { "WORKER_SLOTS", "two" },
        { "WORKER_HEARTBEAT_MS", "99" },
        { "WORKER_HEARTBEAT_MS", "60001" },
        { "WORKER_STOP_GRACE_S", "-1" },
        { "WORKER_STOP_GRACE_S", "3601" },
        { "WORKER_STOP_GRACE_S", "soon" },
        { "NATS_URL", "http://localhost:4222" },
        { "LOG_LEVEL", "loud" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wk_config c;
        we_err err = { "" };
        clear_env(NULL);
        setenv("WORKER_ID", "w1", 1);
        setenv(cases[i].var, cases[i].value, 1);
        assert_int_equal(wk_config_load(&c, &err), WE_EINVAL);
        assert_non_null(strstr(err.msg, cases[i].var));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_values, clear_env),
        cmocka_unit_test_setup(test_errors_name_the_variable, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
