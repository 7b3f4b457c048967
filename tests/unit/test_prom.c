/*
 * we_prom: histogram exposition (cumulative buckets, le formatting, labels
 * kept), the lock-free histogram (bucket edges are inclusive like
 * Prometheus' le, negative and NaN count as 0, exact totals under
 * concurrent observation), plugin health and process series.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "we_prom.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void test_histogram_text(void **st)
{
    we_buf b;
    we_buf_init(&b);
    const double bounds[] = {0.005, 1, 2.5};
    const uint64_t cum[] = {1, 3, 3};
    const char *labels[] = {"route", "/v1/jobs/{id}", NULL};
    we_prom_histogram(&b, "x_seconds", labels, bounds, 3, cum, 4, 12.5);
    we_prom_histogram(&b, "y_seconds", NULL, bounds, 1, cum, 1, 0);
    assert_string_equal(b.data, "x_seconds_bucket{route=\"/v1/jobs/{id}\",le=\"0.005\"} 1\n"
                                "x_seconds_bucket{route=\"/v1/jobs/{id}\",le=\"1\"} 3\n"
                                "x_seconds_bucket{route=\"/v1/jobs/{id}\",le=\"2.5\"} 3\n"
                                "x_seconds_bucket{route=\"/v1/jobs/{id}\",le=\"+Inf\"} 4\n"
                                "x_seconds_sum{route=\"/v1/jobs/{id}\"} 12.5\n"
                                "x_seconds_count{route=\"/v1/jobs/{id}\"} 4\n"
                                "y_seconds_bucket{le=\"0.005\"} 1\n"
                                "y_seconds_bucket{le=\"+Inf\"} 1\n"
                                "y_seconds_sum 0\n"
                                "y_seconds_count 1\n");
    we_buf_fini(&b);
}

static void test_hist_observe(void **st)
{
    static we_prom_hist h; /* zero-initialised, as the API asks */
    const double bounds[] = {0.1, 1};
    we_prom_hist_observe(&h, bounds, 2, 0.1); /* le is inclusive */
    we_prom_hist_observe(&h, bounds, 2, 0.5);
    we_prom_hist_observe(&h, bounds, 2, 1.0);
    we_prom_hist_observe(&h, bounds, 2, 7.25);
    we_prom_hist_observe(&h, bounds, 2, -3); /* a clock step: counts as 0 */
    we_prom_hist_observe(&h, bounds, 2, NAN);
    assert_int_equal(we_prom_hist_count(&h), 6);
    we_buf b;
    we_buf_init(&b);
    we_prom_hist_write(&b, "t_seconds", (const char *[]){"code", "2xx", NULL}, &h, bounds, 2);
    assert_string_equal(b.data, "t_seconds_bucket{code=\"2xx\",le=\"0.1\"} 3\n"
                                "t_seconds_bucket{code=\"2xx\",le=\"1\"} 5\n"
                                "t_seconds_bucket{code=\"2xx\",le=\"+Inf\"} 6\n"
                                "t_seconds_sum{code=\"2xx\"} 8.85\n"
                                "t_seconds_count{code=\"2xx\"} 6\n");
    we_buf_fini(&b);
}

#define THREADS 4
#define PER_THREAD 100000
static we_prom_hist g_h;
static const double g_bounds[] = {0.001, 0.01};

static void *observer(void *arg)
{
    for (int i = 0; i < PER_THREAD; i++)
        we_prom_hist_observe(&g_h, g_bounds, 2, (i % 3) * 0.005); /* 0, 0.005, 0.01 */
    return arg;
}

static void test_hist_concurrent(void **st)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(we_prom_hist_count(&g_h), THREADS * PER_THREAD);
    /* 100000 = 33334 zeros + 33333 of 0.005 + 33333 of 0.01, per thread */
    assert_int_equal(atomic_load(&g_h.counts[0]), THREADS * 33334);
    assert_int_equal(atomic_load(&g_h.counts[1]), THREADS * 33333 * 2);
    assert_int_equal(atomic_load(&g_h.counts[2]), 0);
    assert_int_equal(atomic_load(&g_h.sum_micro), THREADS * 33333 * (5000 + 10000));
}

static void test_plugins(void **st)
{
    json_t *list = json_pack("[{s:s, s:s, s:s, s:i}, {s:s, s:s, s:s, s:i}]", "id", "storage-fs",
                             "type", "storage", "state", "healthy", "restarts_total", 0, "id",
                             "auth-x", "type", "auth", "state", "failed", "restarts_total", 3);
    we_buf b;
    we_buf_init(&b);
    we_prom_plugins(&b, list);
    assert_non_null(
        strstr(b.data, "\nwebencode_plugin_up{plugin=\"storage-fs\",type=\"storage\"} 1\n"));
    assert_non_null(strstr(b.data, "\nwebencode_plugin_up{plugin=\"auth-x\",type=\"auth\"} 0\n"));
    assert_non_null(
        strstr(b.data, "\nwebencode_plugin_state{plugin=\"auth-x\",state=\"failed\"} 1\n"));
    assert_non_null(
        strstr(b.data, "\nwebencode_plugin_state{plugin=\"auth-x\",state=\"healthy\"} 0\n"));
    assert_non_null(strstr(b.data, "\nwebencode_plugin_restarts_total{plugin=\"auth-x\"} 3\n"));
    size_t states = 0;
    for (const char *p = b.data; (p = strstr(p, "\nwebencode_plugin_state{")); p++)
        states++;
    assert_int_equal(states, 12); /* six states per plugin */
    we_buf_reset(&b);
    we_prom_plugins(&b, NULL); /* no plugin host: the families, no samples */
    assert_null(strstr(b.data, "\nwebencode_plugin_up{"));
    assert_non_null(strstr(b.data, "# TYPE webencode_plugin_restarts_total counter\n"));
    we_buf_fini(&b);
    json_decref(list);
}

static double sample(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? atof(p + strlen(key)) : -1;
}

static void test_process(void **st)
{
    we_buf b;
    we_buf_init(&b);
    we_prom_process(&b, 0); /* start time from /proc */
    assert_true(sample(b.data, "process_start_time_seconds") > 1.6e9);
    assert_true(sample(b.data, "process_resident_memory_bytes") > 0);
    assert_true(sample(b.data, "process_open_fds") >= 3);
    assert_true(sample(b.data, "process_cpu_seconds_total") >= 0);
    we_buf_reset(&b);
    we_prom_sample(&b, "a", NULL, 0.1);
    we_prom_sample(&b, "b", NULL, 1.0 / 3);
    we_prom_sample(&b, "c", NULL, 1e300);
    assert_string_equal(b.data, "a 0.1\nb 0.33333333333333331\nc 1e+300\n");
    we_buf_reset(&b);
    we_prom_process(&b, 1234.5);
    assert_true(sample(b.data, "process_start_time_seconds") == 1234.5);
    we_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_text),  cmocka_unit_test(test_hist_observe),
        cmocka_unit_test(test_hist_concurrent), cmocka_unit_test(test_plugins),
        cmocka_unit_test(test_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
