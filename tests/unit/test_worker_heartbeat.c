/*
 * The heartbeat JSON (exact field set and types, parsed back with jansson),
 * the host facts it carries, and control-message parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "control.h"
#include "heartbeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
    wk_strlist caps, encs;
    wk_hb hb;
} fixture;

static int hb_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    wk_strlist_init(&f->caps);
    wk_strlist_init(&f->encs);
    wk_strlist_add(&f->caps, "cpu");
    wk_strlist_add(&f->caps, "nvidia");
    wk_strlist_add(&f->encs, "libx264");
    wk_strlist_add(&f->encs, "aac");
    f->hb = (wk_hb){ .id = "wk-1",
                     .hostname = "host-a",
                     .version = "0.1.0",
                     .slots = 4,
                     .running = 1,
                     .capabilities = &f->caps,
                     .encoders = &f->encs,
                     .draining = false,
                     .state = "online",
                     .interval_ms = 5000,
                     .ts_ms = 1700000000123LL,
                     .cpu_count = 8,
                     .load1 = 0.75,
                     .mem_total_mb = 16000,
                     .ffmpeg_version = "5.1.9-0+deb12u1" };
    *state = f;
    return 0;
}

static int hb_teardown(void **state)
{
    fixture *f = *state;
    wk_strlist_fini(&f->caps);
    wk_strlist_fini(&f->encs);
    free(f);
    return 0;
}

static json_t *build(const wk_hb *hb)
{
    char *text = wk_heartbeat_json(hb);
    assert_non_null(text);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(o);
    return o;
}

static void test_fields(void **state)
{
    fixture *f = *state;
    json_t *o = build(&f->hb);
    const char *id, *host, *ver, *st, *ts, *ffv;
    int slots, running, draining, interval, cpus;
    double load;
    json_int_t mem;
    json_t *caps, *encs;
    json_error_t jerr;
    int rc =
        json_unpack_ex(o, &jerr, JSON_STRICT,
                       "{s:s, s:s, s:s, s:i, s:i, s:o, s:o, s:b, s:s, s:i, s:s, s:i, s:F, "
                       "s:I, s:s}",
                       "id", &id, "hostname", &host, "version", &ver, "slots", &slots, "running",
                       &running, "capabilities", &caps, "encoders", &encs, "draining", &draining,
                       "state", &st, "interval_ms", &interval, "ts", &ts, "cpu_count", &cpus,
                       "load1", &load, "mem_total_mb", &mem, "ffmpeg_version", &ffv);
    if (rc != 0)
        fail_msg("%s", jerr.text);
    assert_string_equal(id, "wk-1");
    assert_string_equal(host, "host-a");
    assert_string_equal(ver, "0.1.0");
    assert_int_equal(slots, 4);
    assert_int_equal(running, 1);
    assert_false(draining);
    assert_string_equal(st, "online");
    assert_int_equal(interval, 5000);
    assert_string_equal(ts, "2023-11-14T22:13:20.123Z");
    assert_int_equal(cpus, 8);
    assert_true(json_is_real(json_object_get(o, "load1")) && load == 0.75);
    assert_int_equal(mem, 16000);
    assert_string_equal(ffv, "5.1.9-0+deb12u1");
    assert_int_equal(json_array_size(caps), 2);
    assert_string_equal(json_string_value(json_array_get(caps, 1)), "nvidia");
    assert_int_equal(json_array_size(encs), 2);
    assert_string_equal(json_string_value(json_array_get(encs, 0)), "libx264");
    json_decref(o);
}

static void test_null_version_and_offline(void **state)
{
    fixture *f = *state;
    wk_strlist empty;
    wk_strlist_init(&empty);
    f->hb.ffmpeg_version = NULL;
    f->hb.state = "offline";
    f->hb.encoders = &empty;
    f->hb.load1 = 0;
    json_t *o = build(&f->hb);
    assert_true(json_is_null(json_object_get(o, "ffmpeg_version")));
    assert_string_equal(json_string_value(json_object_get(o, "state")), "offline");
    assert_int_equal(json_array_size(json_object_get(o, "encoders")), 0);
    assert_true(json_is_number(json_object_get(o, "load1")));
    assert_int_equal(json_object_size(o), 15);
    json_decref(o);
}

static void test_invalid_utf8(void **state)
{
    fixture *f = *state;
    f->hb.hostname = "bad\xff";
    assert_null(wk_heartbeat_json(&f->hb));
}

static void test_host_facts(void **state)
{
    char dir[] = "/tmp/wk_hb_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/loadavg", dir);
    FILE *fp = fopen(path, "w");
    fputs("1.25 0.50 0.10 1/200 12345\n", fp);
    fclose(fp);
    assert_true(wk_load1(dir) == 1.25);
    fp = fopen(path, "w");
    fputs("nan\n", fp);
    fclose(fp);
    assert_true(wk_load1(dir) == 0);
    unlink(path);
    assert_true(wk_load1(dir) == 0); /* unreadable */
    rmdir(dir);
    assert_true(wk_cpu_count() >= 1);
    assert_true(wk_mem_total_mb() > 0);
}

static void test_control_action(void **state)
{
    char a[16];
    we_err err = { "" };
    const char *ping = "{\"action\":\"ping\",\"extra\":1}";
    assert_int_equal(wk_control_action(ping, strlen(ping), a, sizeof a, &err), 0);
    assert_string_equal(a, "ping");
    assert_true(wk_control_known(a));
    assert_false(wk_control_known("explode"));
    static const char *const bad[] = {
        "",
        "not json{",
        "[1,2]",
        "{}",
        "{\"action\":5}",
        "{\"action\":null}",
        "\"ping\"",
        "{\"action\":\"a-very-long-action-name\"}",
        "{\"action\":\"ping\"",
        "\xff\xfe",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        assert_int_equal(wk_control_action(bad[i], strlen(bad[i]), a, sizeof a, &err), WE_EINVAL);
        assert_true(strlen(err.msg) > 0);
    }
    assert_int_equal(wk_control_action(NULL, 0, a, sizeof a, NULL), WE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fields, hb_setup, hb_teardown),
        cmocka_unit_test_setup_teardown(test_null_version_and_offline, hb_setup, hb_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, hb_setup, hb_teardown),
        cmocka_unit_test(test_host_facts),
        cmocka_unit_test(test_control_action),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
