/*
 * wk_proc_run: exit codes, output capture and its cap, stderr merging, a
 * missing program, and the deadline (the child is killed and reaped).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proc.h"
#include "we_util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int run(const char *script, const wk_proc_opts *o, we_buf *out, int *code, we_err *err)
{
    char *argv[] = { "sh", "-c", (char *)script, NULL };
    return wk_proc_run(argv, o, out, code, err);
}

static void test_exit_code_and_output(void **state)
{
    wk_proc_opts o = { .timeout_ms = 5000, .max_out = 1024 };
    we_buf out;
    int code = -7;
    we_buf_init(&out);
    assert_int_equal(run("echo hello; echo noise >&2; exit 3", &o, &out, &code, NULL), 0);
    assert_int_equal(code, 3);
    assert_string_equal(out.data, "hello\n");
    we_buf_fini(&out);
}

static void test_with_stderr(void **state)
{
    wk_proc_opts o = { .timeout_ms = 5000, .max_out = 1024, .with_stderr = true };
    we_buf out;
    int code = -7;
    we_buf_init(&out);
    assert_int_equal(run("echo out; echo err >&2", &o, &out, &code, NULL), 0);
    assert_int_equal(code, 0);
    assert_string_equal(out.data, "out\nerr\n");
    we_buf_fini(&out);
}

/* Output beyond max_out is read (the child never blocks) and dropped. */
static void test_output_cap(void **state)
{
    wk_proc_opts o = { .timeout_ms = 5000, .max_out = 1000 };
    we_buf out;
    int code = -7;
    we_buf_init(&out);
    assert_int_equal(run("head -c 300000 /dev/zero | tr '\\0' x", &o, &out, &code, NULL), 0);
    assert_int_equal(code, 0);
    assert_int_equal(out.len, 1000);
    we_buf_fini(&out);
}

static void test_missing_program(void **state)
{
    char *argv[] = { "/nonexistent/program", NULL };
    wk_proc_opts o = { .timeout_ms = 1000, .max_out = 10 };
    we_err err = { "" };
    int code = -7;
    assert_int_equal(wk_proc_run(argv, &o, NULL, &code, &err), WE_ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/program"));
    assert_int_equal(code, -7);
}

static void test_timeout_kills(void **state)
{
    wk_proc_opts o = { .timeout_ms = 200, .max_out = 10 };
    we_err err = { "" };
    int code = -7;
    int64_t t0 = we_now_mono_ms();
    /* the shell's child holds the pipe too: the group kill must reach it */
    assert_int_equal(run("sleep 10; echo late", &o, NULL, &code, &err), WE_ETIMEOUT);
    int64_t took = we_now_mono_ms() - t0;
    assert_in_range(took, 150, 2000);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* nothing left to reap */
}

static void test_killed_by_signal(void **state)
{
    wk_proc_opts o = { .timeout_ms = 5000, .max_out = 10 };
    int code = -7;
    assert_int_equal(run("kill -9 $$", &o, NULL, &code, NULL), 0);
    assert_int_equal(code, -1);
}

/* The worker ignores SIGPIPE; its children must not inherit that. */
static void test_sigpipe_default(void **state)
{
    wk_proc_opts o = { .timeout_ms = 5000, .max_out = 4096 };
    we_buf out;
    int code = -7;
    signal(SIGPIPE, SIG_IGN);
    we_buf_init(&out);
    assert_int_equal(run("grep SigIgn /proc/self/status", &o, &out, &code, NULL), 0);
    assert_int_equal(code, 0);
    unsigned long long ign = strtoull(strchr(out.data, ':') + 1, NULL, 16);
    assert_int_equal(ign & (1ULL << (SIGPIPE - 1)), 0);
    we_buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_code_and_output), cmocka_unit_test(test_with_stderr),
        cmocka_unit_test(test_output_cap),           cmocka_unit_test(test_missing_program),
        cmocka_unit_test(test_timeout_kills),        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_sigpipe_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
