/*
 * The worker's exporter: FFmpeg processes counted below a pid in a fake
 * /proc (grandchildren too, not strangers, command names with spaces and
 * parentheses), WORKER_METRICS_PORT / _ADDR, the rendered series following
 * task observations, and the HTTP endpoint answering GET /metrics (404
 * elsewhere) on a real port, and failing cleanly on a busy one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "exporter.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void fake_proc(const char *root, int pid, const char *comm, int ppid)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%d", root, pid);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/%d/stat", root, pid);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%d (%s) S %d 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 1000 0 0\n", pid, comm,
            ppid);
    fclose(f);
}

static void test_count_descendants(void **st)
{
    char root[] = "/tmp/we-proc.XXXXXX";
    assert_non_null(mkdtemp(root));
    fake_proc(root, 1, "init", 0);
    fake_proc(root, 100, "worker", 1);
    fake_proc(root, 200, "encoder-ffmpeg", 100);
    fake_proc(root, 300, "ffmpeg", 200);    /* grandchild: counted */
    fake_proc(root, 303, "ffmpeg", 300);    /* below it: counted */
    fake_proc(root, 301, "ffmpeg", 1);      /* someone else's */
    fake_proc(root, 302, "ffmpeg) x", 200); /* a name with ')' and a space */
    fake_proc(root, 304, "ffmpeg-wrapper", 100);
    fake_proc(root, 305, "ffprobe", 100);
    assert_int_equal(wk_metrics_count_descendants(root, 100, "ffmpeg"), 2);
    assert_int_equal(wk_metrics_count_descendants(root, 200, "ffmpeg"), 2);
    assert_int_equal(wk_metrics_count_descendants(root, 300, "ffmpeg"), 1);
    assert_int_equal(wk_metrics_count_descendants(root, 1, "ffmpeg"), 3);
    assert_int_equal(wk_metrics_count_descendants(root, 100, "ffmpeg) x"), 1);
    assert_int_equal(wk_metrics_count_descendants(root, 100, "nothing"), 0);
    assert_int_equal(wk_metrics_count_descendants("/nonexistent", 100, "ffmpeg"), 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static wk_worker g_w;

static int setup(void **st)
{
    memset(&g_w, 0, sizeof g_w);
    wk_caps_init(&g_w.caps);
    wk_strlist_add(&g_w.caps.capabilities, "cpu");
    snprintf(g_w.cfg.id, sizeof g_w.cfg.id, "w-test");
    g_w.cfg.slots = 2;
    g_w.cfg.ffmpeg = "/usr/bin/ffmpeg";
    g_w.cfg.metrics_addr = "127.0.0.1";
    g_w.cpu_count = 2;
    atomic_init(&g_w.running, 1);
    atomic_init(&g_w.draining, false);
    return 0;
}

static int teardown(void **st)
{
    wk_caps_fini(&g_w.caps);
    return 0;
}

static void test_render(void **st)
{
    we_buf b;
    we_buf_init(&b);
    wk_metrics_progress(1, 2.5);
    wk_metrics_task_end(0, WK_RESULT_COMPLETED);
    wk_metrics_render(&g_w, &b);
    assert_non_null(strstr(b.data, "\nwebencode_worker_slots 2\n"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_tasks_running 1\n"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_tasks_total{result=\"completed\"} 1\n"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_tasks_total{result=\"failed\"} 0\n"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_encode_speed{slot=\"1\"} 2.5\n"));
    assert_null(strstr(b.data, "webencode_worker_encode_speed{slot=\"0\"}"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_draining 0\n"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_capability{capability=\"cpu\"} 1\n"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_nats_connected 0\n"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_ffmpeg_processes 0\n"));
    assert_non_null(strstr(b.data, "webencode_worker_info{worker_id=\"w-test\""));
    assert_non_null(strstr(b.data, "\nprocess_start_time_seconds "));
    we_buf_reset(&b);
    wk_metrics_task_end(1, WK_RESULT_FAILED); /* the slot's speed goes with its task */
    wk_metrics_task_end(7, WK_RESULT_CANCELLED);
    wk_metrics_progress(99, 1.0); /* out of range: ignored */
    wk_metrics_render(&g_w, &b);
    assert_null(strstr(b.data, "webencode_worker_encode_speed{"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_tasks_total{result=\"failed\"} 1\n"));
    assert_non_null(strstr(b.data, "\nwebencode_worker_tasks_total{result=\"cancelled\"} 1\n"));
    we_buf_fini(&b);
}

/* One HTTP/1.0 request over a socket; the response into buf. */
static void http_get(int port, const char *req, char *buf, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd, buf + got, n - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
}

/* A free port: bind to 0 and let it go. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_endpoint(void **st)
{
    static char buf[65536];
    we_err err = {""};
    g_w.cfg.metrics_port = 0;
    assert_int_equal(wk_metrics_start(&g_w, &err), 0); /* off: nothing to do */
    wk_metrics_stop();
    g_w.cfg.metrics_port = free_port();
    assert_int_equal(wk_metrics_start(&g_w, &err), 0);
    http_get(g_w.cfg.metrics_port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof buf);
    assert_non_null(strstr(buf, " 200 OK\r\n"));
    assert_non_null(strstr(buf, "text/plain; version=0.0.4"));
    assert_non_null(strstr(buf, "\nwebencode_worker_slots 2\n"));
    http_get(g_w.cfg.metrics_port, "GET /other HTTP/1.0\r\n\r\n", buf, sizeof buf);
    assert_non_null(strstr(buf, " 404 Not Found\r\n"));
    /* a second endpoint on the same port cannot bind: an error, not a crash */
    wk_worker other = g_w;
    int port = g_w.cfg.metrics_port;
    wk_metrics_stop();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* past our TIME_WAITs */
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(wk_metrics_start(&other, &err), WE_EIO);
    assert_non_null(strstr(err.msg, "port in use"));
    close(fd);
    wk_metrics_stop();
}

/* WORKER_METRICS_PORT / _ADDR: off and loopback by default, checked. */
static void test_config(void **st)
{
    wk_config c;
    we_err err = {""};
    setenv("WORKER_ID", "w1", 1);
    unsetenv("WORKER_METRICS_PORT");
    unsetenv("WORKER_METRICS_ADDR");
    assert_int_equal(wk_config_load(&c, &err), 0);
    assert_int_equal(c.metrics_port, 0);
    assert_string_equal(c.metrics_addr, "127.0.0.1");
    setenv("WORKER_METRICS_PORT", "9101", 1);
    setenv("WORKER_METRICS_ADDR", "0.0.0.0", 1);
    assert_int_equal(wk_config_load(&c, &err), 0);
    assert_int_equal(c.metrics_port, 9101);
    assert_string_equal(c.metrics_addr, "0.0.0.0");
    setenv("WORKER_METRICS_PORT", "65536", 1);
    assert_int_equal(wk_config_load(&c, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "WORKER_METRICS_PORT"));
    setenv("WORKER_METRICS_PORT", "9101", 1);
    setenv("WORKER_METRICS_ADDR", "localhost", 1);
    assert_int_equal(wk_config_load(&c, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "WORKER_METRICS_ADDR"));
    unsetenv("WORKER_METRICS_PORT");
    unsetenv("WORKER_METRICS_ADDR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_descendants),
        cmocka_unit_test(test_config),
        cmocka_unit_test_setup_teardown(test_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoint, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
