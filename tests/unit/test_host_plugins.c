/*
 * Process tests of the plugin host (src/lib/we_host*.c) against the test
 * plugins of tests/plugins/ (built into ${build}/test-plugins, or the
 * directory named by WE_TEST_PLUGINS): the well-behaved test-echo and one
 * deliberately broken plugin per failure the host must survive. Each test
 * builds its own PLUGIN_DIR under /tmp (symbolic links to the built
 * plugins, or copies where the test replaces files) and its own host with
 * short timers, and captures the log to check the lines the host must write.
 * WE_TEST_VERBOSE=1 echoes the captured log to stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "we_host.h"
#include "we_log.h"
#include "we_util.h"

#include <webencode/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --- the test plugins and PLUGIN_DIRs ------------------------------------------ */

static char g_plugins[1024]; /* the built test plugins */

static bool find_plugins(void)
{
    const char *env = getenv("WE_TEST_PLUGINS");
    if (env && *env) {
        snprintf(g_plugins, sizeof g_plugins, "%s", env);
    } else {
        char exe[900];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            return false;
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0'; /* ${build}/tests */
        snprintf(g_plugins, sizeof g_plugins, "%s/../test-plugins", exe);
    }
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/test-echo/test-echo", g_plugins);
    return access(probe, X_OK) == 0;
}

static char *new_dir(void)
{
    char *dir = we_strdup("/tmp/we_host_test_XXXXXX");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp: %s", strerror(errno));
    return dir;
}

/* Links the built plugin `name` into dir. */
static void link_plugin(const char *dir, const char *name)
{
    char from[2400], to[2400];
    snprintf(from, sizeof from, "%s/%s", g_plugins, name);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    if (symlink(from, to) != 0)
        fail_msg("symlink %s: %s", to, strerror(errno));
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        fail_msg("copy %s -> %s: %s", from, to, strerror(errno));
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    chmod(to, mode);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[2400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *plugin_dir(const char *first, ...)
{
    char *dir = new_dir();
    va_list ap;
    va_start(ap, first);
    for (const char *n = first; n; n = va_arg(ap, const char *))
        link_plugin(dir, n);
    va_end(ap);
    return dir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_dir(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* --- the log ------------------------------------------------------------------- */

static struct {
    int fds[2];
    pthread_t thr;
    pthread_mutex_t mu;
    char *text;
    size_t len;
    bool verbose;
} g_log = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *log_reader(void *arg)
{
    (void)arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(g_log.fds[0], buf, sizeof buf)) > 0) {
        pthread_mutex_lock(&g_log.mu);
        g_log.text = realloc(g_log.text, g_log.len + (size_t)n + 1);
        memcpy(g_log.text + g_log.len, buf, (size_t)n);
        g_log.len += (size_t)n;
        g_log.text[g_log.len] = '\0';
        pthread_mutex_unlock(&g_log.mu);
        if (g_log.verbose)
            fwrite(buf, 1, (size_t)n, stderr);
    }
    return NULL;
}

static int log_start(void **st)
{
    (void)st;
    g_log.verbose = getenv("WE_TEST_VERBOSE") != NULL;
    if (pipe2(g_log.fds, O_CLOEXEC) != 0)
        return -1;
    g_log.len = 0;
    pthread_create(&g_log.thr, NULL, log_reader, NULL);
    we_log_set_fd(g_log.fds[1]);
    return 0;
}

static int log_stop(void **st)
{
    (void)st;
    we_log_set_fd(-1);
    close(g_log.fds[1]);
    pthread_join(g_log.thr, NULL);
    close(g_log.fds[0]);
    free(g_log.text);
    g_log.text = NULL;
    g_log.len = 0;
    return 0;
}

/* Waits up to ms for a log line containing every one of the NULL-terminated
 * strings; returns that line (static buffer) or NULL. */
static const char *log_wait(int ms, const char *first, ...)
{
    static char line[8192];
    int64_t end = we_now_mono_ms() + ms;
    do {
        pthread_mutex_lock(&g_log.mu);
        for (char *s = g_log.text; s && *s;) {
            char *nl = strchr(s, '\n');
            size_t n = nl ? (size_t)(nl - s) : strlen(s);
            snprintf(line, sizeof line, "%.*s", (int)n, s);
            bool all = true;
            va_list ap;
            va_start(ap, first);
            for (const char *w = first; w && all; w = va_arg(ap, const char *))
                all = strstr(line, w) != NULL;
            va_end(ap);
            if (all) {
                pthread_mutex_unlock(&g_log.mu);
                return line;
            }
            s = nl ? nl + 1 : s + n;
        }
        pthread_mutex_unlock(&g_log.mu);
        usleep(20000);
    } while (we_now_mono_ms() < end);
    return NULL;
}

/* --- hosts ------------------------------------------------------------------------ */

static we_host_opts fast_opts(const char *dir)
{
    return (we_host_opts){
        .plugin_dir = dir,
        .host_name = "test",
        .handshake_timeout_ms = 2000,
        .health_interval_ms = 100,
        .health_timeout_ms = 500,
        .health_slow_ms = 1000,
        .restart_base_ms = 20,
        .restart_max_ms = 200,
        .shutdown_timeout_ms = 1000,
    };
}

static we_host *host_start(const we_host_opts *o)
{
    we_host *h = NULL;
    we_err err = {""};
    if (we_host_new(o, &h, &err) != 0 || we_host_start(h, &err) != 0)
        fail_msg("host: %s", err.msg);
    return h;
}

static json_t *info(we_host *h, const char *id)
{
    json_t *o = we_host_get(h, id);
    if (!o)
        fail_msg("no plugin %s", id);
    return o;
}

static const char *state_of(we_host *h, const char *id)
{
    static char s[32];
    json_t *o = info(h, id);
    snprintf(s, sizeof s, "%s", json_string_value(json_object_get(o, "state")));
    json_decref(o);
    return s;
}

static json_int_t int_of(we_host *h, const char *id, const char *key)
{
    json_t *o = info(h, id);
    json_int_t v = json_integer_value(json_object_get(o, key));
    json_decref(o);
    return v;
}

static const char *last_error(we_host *h, const char *id)
{
    static char s[1024];
    json_t *o = info(h, id);
    const char *e = json_string_value(json_object_get(o, "last_error"));
    snprintf(s, sizeof s, "%s", e ? e : "(null)");
    json_decref(o);
    return s;
}

static void expect_state(we_host *h, const char *id, unsigned mask, int ms)
{
    if (we_host_wait_state(h, id, mask, ms) != 0)
        fail_msg("plugin %s is %s (last error: %s)", id, state_of(h, id), last_error(h, id));
}

#define UP (WE_PS_BIT(WE_PS_HEALTHY))

static void expect_contains(const char *s, const char *want)
{
    if (!s || !strstr(s, want))
        fail_msg("'%s' does not contain '%s'", s ? s : "(null)", want);
}

/* A call expected to succeed; returns its result. */
static json_t *call_ok(we_host *h, const char *id, const char *method, const char *params)
{
    json_t *p = params ? json_loads(params, 0, NULL) : NULL, *r = NULL;
    we_rpc_error rerr;
    we_err err = {""};
    int rc = we_host_call(h, id, method, p, 5000, NULL, NULL, NULL, &r, &rerr, &err);
    json_decref(p);
    if (rc != 0)
        fail_msg("%s %s: rc %d: %s", id, method, rc, err.msg);
    return r;
}

static int call_rc(we_host *h, const char *id, const char *method, const char *params,
                   int timeout_ms, we_rpc_error *rerr)
{
    json_t *p = params ? json_loads(params, 0, NULL) : NULL, *r = NULL;
    int rc = we_host_call(h, id, method, p, timeout_ms, NULL, NULL, NULL, &r, rerr, NULL);
    json_decref(p);
    json_decref(r);
    return rc;
}

/* --- tests --------------------------------------------------------------------------- */

static void test_echo(void **st)
{
    char *dir = plugin_dir("test-echo", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);

    json_t *r = call_ok(h, "test-echo", "test.echo", "{\"a\":1,\"s\":\"x\\u00e9\"}");
    json_t *want = json_loads("{\"a\":1,\"s\":\"x\\u00e9\"}", 0, NULL);
    assert_true(json_equal(r, want));
    json_decref(r);
    json_decref(want);

    json_t *o2 = info(h, "test-echo");
    assert_string_equal(json_string_value(json_object_get(o2, "type")), "storage");
    assert_string_equal(json_string_value(json_object_get(o2, "version")), "0.1.0");
    assert_int_equal(json_integer_value(json_object_get(o2, "api_version")), 1);
    assert_true(json_is_true(json_object_get(o2, "enabled")));
    assert_true(json_integer_value(json_object_get(o2, "pid")) > 0);
    assert_int_equal(json_integer_value(json_object_get(o2, "restarts")), 0);
    assert_true(json_is_null(json_object_get(o2, "last_error")));
    json_t *caps = json_object_get(o2, "capabilities");
    assert_string_equal(json_string_value(json_object_get(caps, "from_manifest")), "yes");
    assert_int_equal(json_integer_value(json_object_get(caps, "from_handshake")), 1);
    bool found = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(o2, "methods"), i, m) found =
        found || strcmp(json_string_value(m), "test.echo") == 0;
    assert_true(found);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o2, "config"), "greeting")), "hello");
    json_decref(o2);

    json_t *all = we_host_list(h);
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);
    assert_null(we_host_get(h, "nope"));

    we_rpc_error rerr;
    assert_int_equal(call_rc(h, "nope", "x.y", NULL, 1000, &rerr), WE_ENOENT);
    assert_string_equal(rerr.we_code, WE_HOST_NOT_FOUND);
    assert_int_equal(call_rc(h, "test-echo", "test.nope", NULL, 1000, &rerr), WE_EINVAL);
    assert_int_equal(rerr.code, WE_RPC_METHOD_NOT_FOUND);
    assert_int_equal(call_rc(h, "test-echo", "handshake", NULL, 1000, &rerr), WE_EINVAL);
    assert_int_equal(call_rc(h, "test-echo", "test.echo", "[1]", 1000, &rerr), WE_EINVAL);
    r = call_ok(h, "test-echo", "health", NULL);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "ok");
    json_decref(r);

    char id[WE_PLUGIN_ID_MAX + 1];
    assert_int_equal(we_host_pick(h, WE_PT_STORAGE, id, NULL), 0);
    assert_string_equal(id, "test-echo");
    assert_int_equal(we_host_pick(h, WE_PT_AUTH, id, NULL), WE_ENOENT);
    we_host_free(h);
    we_host_free(NULL);
    rm_dir(dir);
}

typedef struct worker_arg {
    we_host *h;
    int tid;
    atomic_int *bad;
} worker_arg;

static void *echo_worker(void *arg)
{
    worker_arg *a = arg;
    for (int i = 0; i < 50; i++) {
        json_t *p = json_pack("{s:i, s:i, s:s}", "t", a->tid, "i", i, "pad", "0123456789abcdef"),
               *r = NULL;
        int rc =
            we_host_call(a->h, "test-echo", "test.echo", p, 5000, NULL, NULL, NULL, &r, NULL, NULL);
        if (rc != 0 || !json_equal(p, r))
            atomic_fetch_add(a->bad, 1);
        json_decref(p);
        json_decref(r);
    }
    return NULL;
}

static void test_concurrent_calls(void **st)
{
    char *dir = plugin_dir("test-echo", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);
    atomic_int bad = 0;
    pthread_t t[8];
    worker_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (worker_arg){h, i, &bad};
        pthread_create(&t[i], NULL, echo_worker, &args[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&bad), 0);
    assert_string_equal(state_of(h, "test-echo"), "healthy");
    we_host_free(h);
    rm_dir(dir);
}

static void test_deadline(void **st)
{
    char *dir = plugin_dir("test-echo", "test-hang", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);
    expect_state(h, "test-hang", UP, 3000);
    we_rpc_error rerr;
    int64_t t0 = we_now_mono_ms();
    assert_int_equal(call_rc(h, "test-echo", "test.sleep", "{\"ms\":5000}", 300, &rerr),
                     WE_ETIMEOUT);
    int64_t took = we_now_mono_ms() - t0;
    assert_true(took >= 290 && took < 1000);
    assert_int_equal(rerr.code, WE_RPC_DEADLINE);
    assert_true(rerr.retryable);
    expect_contains(rerr.message, "deadline exceeded");

    t0 = we_now_mono_ms();
    assert_int_equal(call_rc(h, "test-hang", "test.hang", NULL, 300, &rerr), WE_ETIMEOUT);
    took = we_now_mono_ms() - t0;
    assert_true(took >= 290 && took < 1000);
    usleep(400 * 1000); /* late answers are dropped, health checks keep passing */
    assert_string_equal(state_of(h, "test-echo"), "healthy");
    assert_string_equal(state_of(h, "test-hang"), "healthy");
    json_decref(call_ok(h, "test-echo", "test.echo", NULL));
    assert_int_equal(int_of(h, "test-echo", "restarts_total"), 0);
    we_host_free(h);
    rm_dir(dir);
}

typedef struct cancel_arg {
    atomic_bool *flag;
    int after_ms;
} cancel_arg;

static void *canceller(void *arg)
{
    cancel_arg *a = arg;
    usleep((useconds_t)a->after_ms * 1000);
    atomic_store(a->flag, true);
    return NULL;
}

static void count_progress(void *arg, json_t *progress)
{
    if (json_is_object(progress) && json_object_get(progress, "slept_ms"))
        (*(int *)arg)++;
}

static int cancelled_call(we_host *h, const char *id, const char *method, const char *params,
                          int timeout, int cancel_after, int *progress, we_rpc_error *rerr,
                          int64_t *took)
{
    atomic_bool flag = false;
    cancel_arg ca = {&flag, cancel_after};
    pthread_t t;
    pthread_create(&t, NULL, canceller, &ca);
    json_t *p = json_loads(params, 0, NULL), *r = NULL;
    int64_t t0 = we_now_mono_ms();
    int rc =
        we_host_call(h, id, method, p, timeout, count_progress, progress, &flag, &r, rerr, NULL);
    *took = we_now_mono_ms() - t0;
    pthread_join(t, NULL);
    json_decref(p);
    json_decref(r);
    return rc;
}

static void test_cancel(void **st)
{
    char *dir = plugin_dir("test-echo", "test-hang", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);
    expect_state(h, "test-hang", UP, 3000);
    we_rpc_error rerr;
    int progress = 0;
    int64_t took;
    int rc = cancelled_call(h, "test-echo", "test.sleep", "{\"ms\":10000}", 8000, 300, &progress,
                            &rerr, &took);
    assert_int_equal(rc, WE_EIO);
    assert_int_equal(rerr.code, WE_RPC_CANCELLED);
    assert_true(took < 1300); /* cancelled at 300 ms, ended within 1 s */
    assert_true(progress >= 2);

    /* a plugin that ignores $/cancel: the call still ends at its deadline */
    rc = cancelled_call(h, "test-hang", "test.hang", "{}", 1000, 100, &progress, &rerr, &took);
    assert_int_equal(rc, WE_EIO);
    assert_int_equal(rerr.code, WE_RPC_CANCELLED);
    assert_true(took >= 990 && took < 1500);
    assert_string_equal(state_of(h, "test-echo"), "healthy");
    we_host_free(h);
    rm_dir(dir);
}

typedef struct sleeper {
    we_host *h;
    int rc;
    we_rpc_error rerr;
    const char *params;
} sleeper;

static void *sleep_call(void *arg)
{
    sleeper *s = arg;
    s->rc = call_rc(s->h, "test-echo", "test.sleep", s->params, 10000, &s->rerr);
    return NULL;
}

static void test_crash_fails_only_calls_in_flight(void **st)
{
    char *dir = plugin_dir("test-echo", "test-crashcall", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);
    expect_state(h, "test-crashcall", UP, 3000);

    /* another plugin crashing does not touch calls to test-echo */
    sleeper s[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        s[i] = (sleeper){.h = h, .params = "{\"ms\":800}"};
        pthread_create(&t[i], NULL, sleep_call, &s[i]);
    }
    usleep(100 * 1000);
    we_rpc_error rerr;
    assert_int_equal(call_rc(h, "test-crashcall", "test.work", NULL, 5000, &rerr), WE_EUNAVAIL);
    assert_true(rerr.retryable);
    assert_string_equal(rerr.we_code, WE_HOST_UNAVAILABLE);
    expect_contains(rerr.message, "killed by signal 6 (SIGABRT)");
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(s[i].rc, 0);
    }
    expect_state(h, "test-crashcall", UP, 3000);
    assert_int_equal(int_of(h, "test-crashcall", "restarts_total"), 1);

    /* test-echo crashing fails its own calls in flight, retryable */
    for (int i = 0; i < 3; i++) {
        s[i] = (sleeper){.h = h, .params = "{\"ms\":5000}"};
        pthread_create(&t[i], NULL, sleep_call, &s[i]);
    }
    usleep(100 * 1000);
    int64_t t0 = we_now_mono_ms();
    assert_int_equal(call_rc(h, "test-echo", "test.crash", NULL, 5000, &rerr), WE_EUNAVAIL);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(s[i].rc, WE_EUNAVAIL);
        assert_true(s[i].rerr.retryable);
        expect_contains(s[i].rerr.message, "during the call");
    }
    assert_true(we_now_mono_ms() - t0 < 1000);
    expect_state(h, "test-echo", UP, 3000);
    json_decref(call_ok(h, "test-echo", "test.echo", NULL));
    assert_int_equal(int_of(h, "test-echo", "restarts_total"), 1);
    assert_non_null(log_wait(1000, "\"plugin state changed\"", "\"plugin\":\"test-echo\"",
                             "\"to\":\"failed\"", "SIGABRT", NULL));
    we_host_free(h);
    rm_dir(dir);
}

static void test_crash_at_start(void **st)
{
    char *dir = plugin_dir("test-crashstart", "test-echo", NULL);
    we_host_opts o = fast_opts(dir);
    int64_t t0 = we_now_mono_ms();
    we_host *h = host_start(&o);
    expect_state(h, "test-crashstart", WE_PS_BIT(WE_PS_DISABLED), 5000);
    /* 20 + 40 + 80 + 160 + 200 ms of backoff between the 6 starts */
    assert_true(we_now_mono_ms() - t0 >= 500);
    assert_int_equal(int_of(h, "test-crashstart", "restarts"), 5);
    assert_int_equal(int_of(h, "test-crashstart", "restarts_total"), 5);
    expect_contains(last_error(h, "test-crashstart"), "disabled after 5 restarts in a row");
    expect_contains(last_error(h, "test-crashstart"), "exited with status 3");
    assert_non_null(log_wait(500, "\"msg\":\"crashing on purpose\"",
                             "\"plugin\":\"test-crashstart\"", "\"level\":\"error\"", NULL));
    assert_non_null(log_wait(500, "\"to\":\"disabled\"", "\"level\":\"error\"", NULL));
    assert_non_null(log_wait(500, "\"to\":\"restarting\"", "restart 5 of 5 in 200 ms", NULL));
    we_rpc_error rerr;
    assert_int_equal(call_rc(h, "test-crashstart", "x.y", NULL, 1000, &rerr), WE_EUNAVAIL);
    expect_contains(rerr.message, "is disabled");
    assert_string_equal(state_of(h, "test-echo"), "healthy"); /* the host is fine */
    we_host_free(h);
    rm_dir(dir);
}

static void test_incompatible_api_version(void **st)
{
    char *dir = plugin_dir("test-badapi", "test-refuseapi", "test-echo", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-badapi", WE_PS_BIT(WE_PS_FAILED), 3000);
    expect_state(h, "test-refuseapi", WE_PS_BIT(WE_PS_FAILED), 3000);
    usleep(400 * 1000); /* not restarted */
    assert_string_equal(state_of(h, "test-badapi"), "failed");
    assert_string_equal(state_of(h, "test-refuseapi"), "failed");
    assert_int_equal(int_of(h, "test-badapi", "restarts_total"), 0);
    assert_int_equal(int_of(h, "test-refuseapi", "restarts_total"), 0);
    expect_contains(last_error(h, "test-badapi"),
                    "Incompatible API version: plugin speaks 99, host offers [1]");
    expect_contains(last_error(h, "test-refuseapi"),
                    "Incompatible API version: plugin speaks 2, host offers [1]");
    assert_non_null(log_wait(500, "\"level\":\"error\"", "\"msg\":\"Incompatible API version\"",
                             "\"plugin\":\"test-badapi\"", "plugin speaks 99, host offers [1]",
                             NULL));
    assert_non_null(log_wait(500, "\"msg\":\"Incompatible API version\"",
                             "\"plugin\":\"test-refuseapi\"", "plugin speaks 2", NULL));
    json_t *o2 = info(h, "test-badapi");
    assert_true(json_is_null(json_object_get(o2, "pid")));
    json_decref(o2);
    we_err err = {""};
    assert_int_equal(we_host_reload(h, "test-badapi", &err), WE_EIO); /* tried again */
    expect_contains(err.msg, "Incompatible API version");
    assert_string_equal(state_of(h, "test-echo"), "healthy");
    we_host_free(h);
    rm_dir(dir);
}

static void test_no_handshake(void **st)
{
    char *dir = plugin_dir("test-nohandshake", NULL);
    we_host_opts o = fast_opts(dir);
    o.handshake_timeout_ms = 300;
    we_host *h = host_start(&o);
    assert_non_null(log_wait(1000, "\"to\":\"failed\"", "no handshake answer within 300 ms", NULL));
    expect_contains(last_error(h, "test-nohandshake"), "no handshake answer within 300 ms");
    usleep(500 * 1000);
    assert_true(int_of(h, "test-nohandshake", "restarts_total") >= 1);
    we_host_free(h);
    rm_dir(dir);
}

static void test_protocol_violations(void **st)
{
    char *dir = plugin_dir("test-garbage", "test-garbage-handshake", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-garbage", UP, 3000);
    assert_non_null(log_wait(1000, "\"msg\":\"plugin protocol violation\"",
                             "\"plugin\":\"test-garbage-handshake\"", "not JSON", NULL));
    expect_contains(last_error(h, "test-garbage-handshake"), "protocol violation");

    static const struct {
        const char *method, *why;
    } cases[] = {
        {"test.garbage", "a line that is not JSON"},
        {"test.oversize", "a message longer than 16 MiB"},
        {"test.unknown_id", "a response to unknown id 123456"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_decref(call_ok(h, "test-garbage", "test.ok", NULL));
        we_rpc_error rerr;
        assert_int_equal(call_rc(h, "test-garbage", cases[i].method, NULL, 5000, &rerr),
                         WE_EUNAVAIL);
        assert_true(rerr.retryable);
        expect_contains(rerr.message, cases[i].why);
        expect_state(h, "test-garbage", UP, 3000);
        assert_non_null(log_wait(500, "\"msg\":\"plugin protocol violation\"",
                                 "\"plugin\":\"test-garbage\"", cases[i].why, NULL));
    }
    assert_int_equal(int_of(h, "test-garbage", "restarts_total"), 3);
    we_host_free(h);
    rm_dir(dir);
}

static void set_health(we_host *h, const char *mode)
{
    char params[64];
    snprintf(params, sizeof params, "{\"mode\":\"%s\"}", mode);
    json_decref(call_ok(h, "test-echo", "test.set_health", params));
}

static void test_health_states(void **st)
{
    char *dir = plugin_dir("test-echo", NULL);
    we_host_opts o = fast_opts(dir);
    o.health_slow_ms = 200; /* "slow" answers after 300 ms */
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);

    set_health(h, "degraded");
    expect_state(h, "test-echo", WE_PS_BIT(WE_PS_DEGRADED), 2000);
    expect_contains(last_error(h, "test-echo"), "told to be degraded");
    char id[WE_PLUGIN_ID_MAX + 1];
    assert_int_equal(we_host_pick(h, WE_PT_STORAGE, id, NULL), 0); /* degraded still serves */
    json_decref(call_ok(h, "test-echo", "test.echo", NULL));
    set_health(h, "ok");
    expect_state(h, "test-echo", UP, 2000);

    set_health(h, "slow");
    expect_state(h, "test-echo", WE_PS_BIT(WE_PS_DEGRADED), 2000);
    expect_contains(last_error(h, "test-echo"), "health check took");
    set_health(h, "ok");
    expect_state(h, "test-echo", UP, 2000);

    set_health(h, "hang");
    expect_state(h, "test-echo", WE_PS_BIT(WE_PS_FAILED) | WE_PS_BIT(WE_PS_RESTARTING), 5000);
    expect_contains(last_error(h, "test-echo"), "3 health checks failed in a row");
    expect_state(h, "test-echo", UP, 3000); /* a fresh process is healthy again */
    assert_int_equal(int_of(h, "test-echo", "restarts_total"), 1);
    we_host_free(h);
    rm_dir(dir);
}

static void copy_plugin(const char *dir, const char *name, const char *as)
{
    char d[1200], from[2400], to[2400];
    snprintf(d, sizeof d, "%s/%s", dir, as);
    mkdir(d, 0755);
    snprintf(from, sizeof from, "%s/%s/plugin.toml", g_plugins, name);
    snprintf(to, sizeof to, "%s/plugin.toml", d);
    copy_file(from, to, 0644);
    snprintf(from, sizeof from, "%s/%s/%s", g_plugins, name, name);
    snprintf(to, sizeof to, "%s/%s.new", d, as);
    copy_file(from, to, 0755);
    char final[2400];
    snprintf(final, sizeof final, "%s/%s", d, as);
    assert_int_equal(rename(to, final), 0); /* a running binary is replaced, not rewritten */
}

static void test_reload_replaced_binary(void **st)
{
    char *dir = new_dir();
    copy_plugin(dir, "test-echo", "test-echo");
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);
    json_t *before = info(h, "test-echo");
    assert_string_equal(json_string_value(json_object_get(before, "version")), "0.1.0");

    char from[2400], to[2400], final[2400];
    snprintf(from, sizeof from, "%s/test-echo-v2/test-echo-v2", g_plugins);
    snprintf(to, sizeof to, "%s/test-echo/test-echo.new", dir);
    snprintf(final, sizeof final, "%s/test-echo/test-echo", dir);
    copy_file(from, to, 0755);
    assert_int_equal(rename(to, final), 0);
    we_err err = {""};
    if (we_host_reload(h, "test-echo", &err) != 0)
        fail_msg("reload: %s", err.msg);
    json_t *after = info(h, "test-echo");
    assert_string_equal(json_string_value(json_object_get(after, "version")), "2.0.0");
    assert_string_equal(json_string_value(json_object_get(after, "state")), "healthy");
    assert_true(json_integer_value(json_object_get(after, "pid")) !=
                json_integer_value(json_object_get(before, "pid")));
    assert_int_equal(json_integer_value(json_object_get(after, "restarts_total")), 0);
    json_decref(before);
    json_decref(after);
    assert_non_null(
        log_wait(500, "\"from\":\"healthy\"", "\"to\":\"restarting\"", "reload requested", NULL));
    json_decref(call_ok(h, "test-echo", "test.echo", NULL));
    assert_int_equal(we_host_reload(h, NULL, &err), 0);
    assert_int_equal(we_host_reload(h, "nope", &err), WE_ENOENT);
    we_host_free(h);
    rm_dir(dir);
}

static void test_disable_enable(void **st)
{
    char *dir = plugin_dir("test-echo", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);
    we_err err = {""};
    assert_int_equal(we_host_disable(h, "test-echo", &err), 0);
    json_t *o2 = info(h, "test-echo");
    assert_string_equal(json_string_value(json_object_get(o2, "state")), "disabled");
    assert_true(json_is_false(json_object_get(o2, "enabled")));
    assert_true(json_is_null(json_object_get(o2, "pid")));
    json_decref(o2);
    we_rpc_error rerr;
    assert_int_equal(call_rc(h, "test-echo", "test.echo", NULL, 1000, &rerr), WE_EUNAVAIL);
    expect_contains(rerr.message, "plugin test-echo is disabled");
    char id[WE_PLUGIN_ID_MAX + 1];
    assert_int_equal(we_host_pick(h, WE_PT_STORAGE, id, NULL), WE_ENOENT);
    assert_int_equal(we_host_enable(h, "test-echo", &err), 0);
    assert_string_equal(state_of(h, "test-echo"), "healthy");
    json_decref(call_ok(h, "test-echo", "test.echo", NULL));
    assert_int_equal(we_host_enable(h, "test-echo", &err), 0); /* already running */
    assert_int_equal(we_host_disable(h, "nope", &err), WE_ENOENT);
    we_host_free(h);
    rm_dir(dir);
}

static void test_register(void **st)
{
    char *dir = new_dir();
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    json_t *all = we_host_list(h);
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
    link_plugin(dir, "test-echo");
    we_err err = {""};
    if (we_host_register(h, "test-echo", &err) != 0)
        fail_msg("register: %s", err.msg);
    assert_string_equal(state_of(h, "test-echo"), "healthy");
    json_decref(call_ok(h, "test-echo", "test.echo", NULL));
    assert_int_equal(we_host_register(h, "test-echo", &err), WE_EEXIST);
    assert_int_equal(we_host_register(h, "nope", &err), WE_ENOENT);
    assert_int_equal(we_host_register(h, "Bad!", &err), WE_EINVAL);
    char sub[2400];
    snprintf(sub, sizeof sub, "%s/broken", dir);
    mkdir(sub, 0755);
    write_file(sub, "plugin.toml", "id = \"broken\"\ntype = \"nope\"\n");
    assert_int_equal(we_host_register(h, "broken", &err), WE_EINVAL);
    expect_contains(err.msg, "broken/plugin.toml:2: type must be one of");
    we_host_free(h);
    rm_dir(dir);
}

static void test_bad_manifest_skipped(void **st)
{
    char *dir = plugin_dir("test-echo", NULL);
    char sub[2400];
    snprintf(sub, sizeof sub, "%s/broken", dir);
    mkdir(sub, 0755);
    write_file(sub, "plugin.toml", "id = \"broken\"\ntype = \"storage\"\nversion = 1\n");
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    json_t *all = we_host_list(h);
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);
    assert_non_null(log_wait(500, "\"level\":\"error\"", "\"msg\":\"plugin manifest invalid\"",
                             "broken/plugin.toml:3: 'version' must be a string", NULL));
    assert_string_equal(state_of(h, "test-echo"), "healthy");
    we_host_free(h);
    rm_dir(dir);
}

static atomic_int g_overrides_calls;

static int overrides(void *arg, const char *id, json_t **config, bool *enabled, int *priority,
                     we_err *err)
{
    (void)arg;
    atomic_fetch_add(&g_overrides_calls, 1);
    if (strcmp(id, "test-echo") == 0)
        *config = json_pack("{s:s}", "token", "s3cret");
    if (strcmp(id, "test-crashcall") == 0)
        *priority = 9;
    return 0;
}

static void test_config(void **st)
{
    char *dir = plugin_dir("test-echo", "test-crashcall", NULL);
    write_file(dir, "plugins.toml",
               "[plugins.test-echo]\npriority = 5\n[plugins.test-echo.config]\n"
               "greeting = \"from file\"\n[plugins.test-crashcall]\npriority = 1\n"
               "[plugins.not-here]\nenabled = false\n");
    setenv("TEST_ECHO_COUNT", "7", 1);
    we_host_opts o = fast_opts(dir);
    o.load_overrides = overrides;
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);
    assert_true(atomic_load(&g_overrides_calls) >= 2);

    json_t *c = call_ok(h, "test-echo", "test.config", NULL);
    json_t *want = json_loads("{\"greeting\":\"from file\",\"count\":7,\"token\":\"s3cret\","
                              "\"flags\":[\"a\",\"b\"]}",
                              0, NULL);
    assert_true(json_equal(c, want));
    json_decref(c);
    json_decref(want);
    json_t *o2 = info(h, "test-echo");
    assert_int_equal(json_integer_value(json_object_get(o2, "priority")), 5);
    json_t *shown = json_object_get(o2, "config");
    assert_string_equal(json_string_value(json_object_get(shown, "token")), "********");
    assert_string_equal(json_string_value(json_object_get(shown, "greeting")), "from file");
    json_decref(o2);
    /* the stored priority (9) wins over plugins.toml's (1) */
    char id[WE_PLUGIN_ID_MAX + 1];
    assert_int_equal(we_host_pick(h, WE_PT_STORAGE, id, NULL), 0);
    assert_string_equal(id, "test-crashcall");
    assert_int_equal(we_host_set_priority(h, "test-echo", 10, NULL), 0);
    assert_int_equal(we_host_pick(h, WE_PT_STORAGE, id, NULL), 0);
    assert_string_equal(id, "test-echo");
    assert_non_null(
        log_wait(500, "plugins.toml names a plugin that was not found", "not-here", NULL));

    we_err err = {""};
    json_t *bad = json_pack("{s:s}", "count", "x");
    assert_int_equal(we_host_validate_config(h, "test-echo", bad, &err), WE_EINVAL);
    expect_contains(err.msg, "'count' must be of type integer");
    assert_int_equal(we_host_set_config(h, "test-echo", bad, &err), WE_EINVAL);
    json_decref(bad);
    bad = json_pack("{s:i}", "nope", 1);
    assert_int_equal(we_host_validate_config(h, "test-echo", bad, &err), WE_EINVAL);
    expect_contains(err.msg, "unknown config field 'nope'");
    json_decref(bad);

    json_t *cfg = json_pack("{s:s, s:s}", "greeting", "from db", "token", "t2");
    int64_t pid = int_of(h, "test-echo", "pid");
    if (we_host_set_config(h, "test-echo", cfg, &err) != 0)
        fail_msg("set_config: %s", err.msg);
    json_decref(cfg);
    assert_true(int_of(h, "test-echo", "pid") != pid);
    c = call_ok(h, "test-echo", "test.config", NULL);
    assert_string_equal(json_string_value(json_object_get(c, "greeting")), "from db");
    assert_string_equal(json_string_value(json_object_get(c, "token")), "t2");
    json_decref(c);
    unsetenv("TEST_ECHO_COUNT");
    we_host_free(h);
    rm_dir(dir);
}

static void test_bad_plugins_toml(void **st)
{
    char *dir = plugin_dir("test-echo", NULL);
    write_file(dir, "plugins.toml", "[plugins.test-echo]\nenabled = \"yes\"\n");
    we_host_opts o = fast_opts(dir);
    we_host *h = NULL;
    we_err err = {""};
    assert_int_equal(we_host_new(&o, &h, &err), 0);
    assert_int_equal(we_host_start(h, &err), WE_EINVAL);
    expect_contains(err.msg, "plugins.toml:2: enabled must be true or false");
    we_host_free(h);

    write_file(dir, "plugins.toml", "[plugins.test-echo]\nenabled = false\n");
    h = host_start(&o);
    assert_string_equal(state_of(h, "test-echo"), "disabled");
    we_host_free(h);
    rm_dir(dir);
}

static void test_type_filter(void **st)
{
    char *dir = plugin_dir("test-echo", "test-hang", NULL);
    we_host_opts o = fast_opts(dir);
    o.types = WE_PT_BIT(WE_PT_ENCODER);
    we_host *h = host_start(&o);
    json_t *all = we_host_list(h);
    assert_int_equal(json_array_size(all), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "id")),
                        "test-hang");
    json_decref(all);
    we_err err = {""};
    assert_int_equal(we_host_register(h, "test-echo", &err), WE_EINVAL);
    expect_contains(err.msg, "which this host does not run");
    we_host_free(h);
    rm_dir(dir);
}

static void test_stderr_relogged(void **st)
{
    char *dir = plugin_dir("test-echo", NULL);
    we_host_opts o = fast_opts(dir);
    we_host *h = host_start(&o);
    expect_state(h, "test-echo", UP, 3000);
    json_decref(call_ok(h, "test-echo", "test.log", NULL));
    const char *line = log_wait(1000, "\"msg\":\"hello from the plugin\"", NULL);
    assert_non_null(line);
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "plugin")), "test-echo");
    assert_int_equal(json_integer_value(json_object_get(j, "answer")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "colour")), "blue");
    json_decref(j);
    line = log_wait(1000, "\"msg\":\"a plain text line\"", NULL);
    assert_non_null(line);
    j = json_loads(line, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "plugin")), "test-echo");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    json_decref(j);
    we_host_free(h);
    rm_dir(dir);
}

/* A host in a child process killed with SIGKILL leaves no plugin behind. */
static void test_no_orphans(void **st)
{
    char *dir = plugin_dir("test-echo", NULL);
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* orphans come to us, so we can reap them */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        we_log_set_fd(open("/dev/null", O_WRONLY));
        we_host_opts o = fast_opts(dir);
        we_host *h = NULL;
        if (we_host_new(&o, &h, NULL) != 0 || we_host_start(h, NULL) != 0)
            _exit(2);
        json_t *i = we_host_get(h, "test-echo");
        int pid = (int)json_integer_value(json_object_get(i, "pid"));
        if (write(fds[1], &pid, sizeof pid) != (ssize_t)sizeof pid)
            _exit(3);
        for (;;)
            pause();
    }
    close(fds[1]);
    int plugin = 0;
    assert_int_equal(read(fds[0], &plugin, sizeof plugin), (ssize_t)sizeof plugin);
    close(fds[0]);
    assert_true(plugin > 0);
    assert_int_equal(kill(plugin, 0), 0);
    kill(child, SIGKILL);
    assert_int_equal(waitpid(child, NULL, 0), child);
    int64_t t0 = we_now_mono_ms();
    bool gone = false;
    while (!gone && we_now_mono_ms() - t0 < 2000) {
        gone = waitpid(plugin, NULL, WNOHANG) == plugin || (kill(plugin, 0) != 0 && errno == ESRCH);
        if (!gone)
            usleep(20000);
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    if (!gone) {
        kill(plugin, SIGKILL);
        fail_msg("plugin %d still running 2 s after its host was killed", plugin);
    }
    rm_dir(dir);
}

int main(void)
{
    if (!find_plugins()) {
        fprintf(stderr, "test plugins not found in %s (build them, or set WE_TEST_PLUGINS)\n",
                g_plugins);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, log_start, log_stop)
    const struct CMUnitTest tests[] = {
        T(test_echo),
        T(test_concurrent_calls),
        T(test_deadline),
        T(test_cancel),
        T(test_crash_fails_only_calls_in_flight),
        T(test_crash_at_start),
        T(test_incompatible_api_version),
        T(test_no_handshake),
        T(test_protocol_violations),
        T(test_health_states),
        T(test_reload_replaced_binary),
        T(test_disable_enable),
        T(test_register),
        T(test_bad_manifest_skipped),
        T(test_config),
        T(test_bad_plugins_toml),
        T(test_type_filter),
        T(test_stderr_relogged),
        T(test_no_orphans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
