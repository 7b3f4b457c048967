/*
 * Unit tests of src/lib: buffers and JSON escaping, the logger's line
 * format, .env parsing and the config getters, backoff, URL redaction and
 * the Prometheus writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "we_buf.h"
#include "we_config.h"
#include "we_log.h"
#include "we_nats.h"
#include "we_prom.h"
#include "we_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *json_escape(const char *s)
{
    we_buf b;
    we_buf_init(&b);
    we_buf_add_json_str(&b, s);
    return we_buf_steal(&b);
}

static void test_json_escape(void **st)
{
    char *s = json_escape("a\"b\\c\n\t\x01");
    assert_string_equal(s, "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    free(s);
    /* invalid UTF-8 (lone continuation, truncated, overlong) becomes U+FFFD */
    s = json_escape("x\x80y\xc3z\xc0\xaf");
    assert_string_equal(s, "\"x\\ufffdy\\ufffdz\\ufffd\\ufffd\"");
    free(s);
    s = json_escape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x8e\xac");
    assert_string_equal(s, "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x8e\xac\"");
    json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    json_decref(j);
    free(s);
}

static void test_buf_growth(void **st)
{
    we_buf b;
    we_buf_init(&b);
    for (int i = 0; i < 10000; i++)
        we_buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, strlen(b.data));
    assert_true(strncmp(b.data, "0,1,2,", 6) == 0);
    we_buf_fini(&b);
}

/* Captures log output through a pipe. */
static char *capture_log(void (*emit)(void))
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    we_log_set_fd(fds[1]);
    emit();
    we_log_set_fd(-1);
    close(fds[1]);
    char *out = calloc(1, 65536);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], out + n, 65535 - n)) > 0)
        n += (size_t)r;
    close(fds[0]);
    return out;
}

static void emit_lines(void)
{
    we_info("hello \"world\"", WE_S("job_id", "j1"), WE_I("n", 42), WE_D("ratio", 0.5),
            WE_B("ok", true), WE_ERR("bad\nthing"), WE_RAW("caps", "[\"cpu\"]"));
    we_debug("hidden at info level");
    we_warn("second", WE_S("nul", NULL));
}

static void test_log_format(void **st)
{
    we_log_init("unit", WE_LOG_INFO);
    char *out = capture_log(emit_lines);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "service")), "unit");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "hello \"world\"");
    assert_string_equal(json_string_value(json_object_get(j, "error")), "bad\nthing");
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 42);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_true(json_is_array(json_object_get(j, "caps")));
    const char *t = json_string_value(json_object_get(j, "time"));
    assert_non_null(t);
    assert_int_equal(strlen(t), 24); /* 2026-11-28T20:41:51.123Z */
    assert_int_equal(t[23], 'Z');
    json_decref(j);
    /* the debug line is filtered; the warn line is the second and last */
    char *second = nl + 1;
    assert_non_null(strstr(second, "\"level\":\"warn\""));
    assert_non_null(strstr(second, "\"nul\":null"));
    assert_null(strstr(second, "hidden"));
    assert_int_equal(strchr(second, '\n')[1], '\0');
    free(out);
}

static void test_log_level_parse(void **st)
{
    we_log_level l;
    assert_int_equal(we_log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, WE_LOG_DEBUG);
    assert_int_equal(we_log_level_parse("warning", &l), 0);
    assert_int_equal(l, WE_LOG_WARN);
    assert_int_equal(we_log_level_parse("verbose", &l), -1);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_env_file(void **st)
{
    char path[] = "/tmp/we-envXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "# comment\n\nWE_T_A=1\nexport WE_T_B = \"two words\" \nWE_T_C='x#y'\n"
                     "WE_T_D=plain # trailing comment\nWE_T_KEEP=file\n");
    setenv("WE_T_KEEP", "env", 1);
    we_err err;
    assert_int_equal(we_env_load_file(path, &err), 0);
    assert_string_equal(getenv("WE_T_A"), "1");
    assert_string_equal(getenv("WE_T_B"), "two words");
    assert_string_equal(getenv("WE_T_C"), "x#y");
    assert_string_equal(getenv("WE_T_D"), "plain");
    assert_string_equal(getenv("WE_T_KEEP"), "env"); /* the environment wins */
    write_file(path, "GOOD=1\nthis is not an assignment\n");
    assert_int_equal(we_env_load_file(path, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, ":2:"));
    write_file(path, "1BAD=1\n");
    assert_int_equal(we_env_load_file(path, &err), WE_EINVAL);
    write_file(path, "Q=\"unterminated\n");
    assert_int_equal(we_env_load_file(path, &err), WE_EINVAL);
    unlink(path);
    assert_int_equal(we_env_load_file("/nonexistent/.env", &err), 0);
}

static void test_cfg_getters(void **st)
{
    we_err err;
    long n;
    bool b;
    const char *s;
    static const char *const schemes[] = { "nats", "tls", NULL };
    setenv("WE_T_PORT", "8080", 1);
    assert_int_equal(we_cfg_int("WE_T_PORT", 1, 1, 65535, &n, &err), 0);
    assert_int_equal(n, 8080);
    setenv("WE_T_PORT", "80x", 1);
    assert_int_equal(we_cfg_int("WE_T_PORT", 1, 1, 65535, &n, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "WE_T_PORT"));
    setenv("WE_T_PORT", "70000", 1);
    assert_int_equal(we_cfg_int("WE_T_PORT", 1, 1, 65535, &n, &err), WE_EINVAL);
    unsetenv("WE_T_PORT");
    assert_int_equal(we_cfg_int("WE_T_PORT", 7, 1, 65535, &n, &err), 0);
    assert_int_equal(n, 7);
    setenv("WE_T_B", "yes", 1);
    assert_int_equal(we_cfg_bool("WE_T_B", false, &b, &err), 0);
    assert_true(b);
    setenv("WE_T_B", "maybe", 1);
    assert_int_equal(we_cfg_bool("WE_T_B", false, &b, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "WE_T_B"));
    setenv("WE_T_URL", "http://user:secret@x", 1);
    assert_int_equal(we_cfg_url("WE_T_URL", "nats://a", schemes, &s, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "WE_T_URL"));
    assert_null(strstr(err.msg, "secret")); /* never echo URLs */
    setenv("WE_T_URL", "tls://nats.example:4222", 1);
    assert_int_equal(we_cfg_url("WE_T_URL", "nats://a", schemes, &s, &err), 0);
    setenv("LOG_LEVEL", "loud", 1);
    int lvl;
    assert_int_equal(we_cfg_log_level(&lvl, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "LOG_LEVEL"));
    unsetenv("LOG_LEVEL");
}

static void test_backoff(void **st)
{
    for (int a = 0; a < 20; a++) {
        int64_t base = 500, cap = 30000, d = we_backoff_ms(a, base, cap);
        int64_t ideal = base << (a < 10 ? a : 10);
        if (ideal > cap)
            ideal = cap;
        assert_true(d >= ideal * 8 / 10 - 1);
        assert_true(d <= ideal * 12 / 10 + 1);
    }
}

static void test_redact(void **st)
{
    char buf[128];
    we_url_redact("nats://user:pw@host:4222", buf, sizeof buf);
    assert_string_equal(buf, "nats://***@host:4222");
    we_url_redact("nats://host:4222/x@y", buf, sizeof buf);
    assert_string_equal(buf, "nats://host:4222/x@y");
}

static void test_uuid(void **st)
{
    char a[37], b[37];
    we_uuid4(a);
    we_uuid4(b);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4');
    assert_string_not_equal(a, b);
}

static void test_prom(void **st)
{
    we_buf b;
    we_buf_init(&b);
    we_prom_family(&b, "x_total", "counter", "Help with \\ and\nnewline.");
    const char *labels[] = { "status", "a\"b\\c\nd", NULL };
    we_prom_sample(&b, "x_total", labels, 3);
    we_prom_sample(&b, "x_total", NULL, 0.25);
    assert_string_equal(b.data, "# HELP x_total Help with \\\\ and\\nnewline.\n"
                                "# TYPE x_total counter\n"
                                "x_total{status=\"a\\\"b\\\\c\\nd\"} 3\n"
                                "x_total 0.25\n");
    we_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escape), cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_log_format),  cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_env_file),    cmocka_unit_test(test_cfg_getters),
        cmocka_unit_test(test_backoff),     cmocka_unit_test(test_redact),
        cmocka_unit_test(test_uuid),        cmocka_unit_test(test_prom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
