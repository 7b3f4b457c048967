/*
 * Unit tests of the kernel's pure parts: route matching (captures, 404 vs
 * 405 and the Allow list), the error envelope, heartbeat validation and the
 * configuration loader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http.h"
#include "kernel.h"
#include "workers.h"

#include <stdlib.h>
#include <string.h>

static enum MHD_Result h_a(kn_req *r)
{
    return MHD_YES;
}
static enum MHD_Result h_b(kn_req *r)
{
    return MHD_YES;
}

static const kn_route table[] = {
    { "GET", "/v1/things", h_a, KN_ANON },
    { "POST", "/v1/things", h_b, KN_ANON },
    { "GET", "/v1/things/{id}", h_a, KN_ANON },
    { "DELETE", "/v1/things/{id}", h_b, KN_ANON },
    { "POST", "/v1/things/{id}/parts/{part}", h_b, KN_ANON },
    { NULL, NULL, NULL, KN_ANON },
};

static const kn_route *match(const char *method, const char *path, char **params, int *n,
                             bool *mismatch, char *allow)
{
    return kn_route_match(table, method, path, params, n, mismatch, allow, 64);
}

static void free_params(char **p, int n)
{
    for (int i = 0; i < n; i++)
        free(p[i]);
}

static void test_route_exact_and_params(void **st)
{
    char *p[KN_MAX_PARAMS];
    int n = 0;
    bool mm;
    char allow[64];
    const kn_route *r = match("GET", "/v1/things", p, &n, &mm, allow);
    assert_non_null(r);
    assert_ptr_equal(r->fn, h_a);
    assert_int_equal(n, 0);
    r = match("POST", "/v1/things/abc/parts/7", p, &n, &mm, allow);
    assert_non_null(r);
    assert_int_equal(n, 2);
    assert_string_equal(p[0], "abc");
    assert_string_equal(p[1], "7");
    free_params(p, n);
}

static void test_route_not_found(void **st)
{
    char *p[KN_MAX_PARAMS];
    int n = 0;
    bool mm;
    char allow[64];
    assert_null(match("GET", "/v1/thing", p, &n, &mm, allow));
    assert_false(mm);
    assert_null(match("GET", "/v1/things/", p, &n, &mm, allow)); /* empty capture */
    assert_false(mm);
    assert_null(match("GET", "/v1/things/a/b", p, &n, &mm, allow));
    assert_null(match("GET", "/v1/thingsX", p, &n, &mm, allow));
    assert_null(match("GET", "", p, &n, &mm, allow));
}

static void test_route_method_not_allowed(void **st)
{
    char *p[KN_MAX_PARAMS];
    int n = 0;
    bool mm;
    char allow[64];
    assert_null(match("PUT", "/v1/things/x", p, &n, &mm, allow));
    assert_true(mm);
    assert_string_equal(allow, "GET, DELETE");
    assert_null(match("PATCH", "/v1/things", p, &n, &mm, allow));
    assert_string_equal(allow, "GET, POST");
}

static void test_real_routes_exist(void **st)
{
    char *p[KN_MAX_PARAMS];
    int n = 0;
    bool mm;
    char allow[64];
    static const char *const must[][2] = {
        { "GET", "/v1/health" }, { "GET", "/v1/system/health" }, { "GET", "/v1/workers" },
        { "GET", "/v1/workers/w1" }, { "GET", "/metrics" },
    };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        const kn_route *r = kn_route_match(kn_routes, must[i][0], must[i][1], p, &n, &mm, allow,
                                           sizeof allow);
        assert_non_null(r);
        free_params(p, n);
    }
}

static void test_error_envelope(void **st)
{
    json_t *e = kn_error_body("WE-SYS-002", "no route", json_pack("{s:i}", "x", 1), "rid123");
    json_t *err = json_object_get(e, "error");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "code")), "WE-SYS-002");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "no route");
    assert_string_equal(json_string_value(json_object_get(err, "request_id")), "rid123");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(err, "details"), "x")), 1);
    const char *ts = json_string_value(json_object_get(err, "timestamp"));
    assert_non_null(ts);
    assert_int_equal(ts[strlen(ts) - 1], 'Z');
    json_decref(e);
    e = kn_error_body("WE-SYS-001", "m", NULL, "r");
    assert_true(json_is_null(json_object_get(json_object_get(e, "error"), "details")));
    json_decref(e);
}

static const char *good_hb =
    "{\"id\":\"w-1\",\"hostname\":\"h\",\"version\":\"0.1.0\",\"slots\":2,\"running\":0,"
    "\"capabilities\":[\"cpu\"],\"encoders\":[\"libx264\",\"aac\"],\"draining\":false,"
    "\"state\":\"online\",\"interval_ms\":5000,\"ts\":\"2026-01-01T00:00:00.000Z\","
    "\"cpu_count\":2}";

static int parse(const char *doc, const char *subject_id, we_err *err)
{
    json_t *root = NULL;
    kn_heartbeat hb;
    int rc = kn_heartbeat_parse(doc, strlen(doc), subject_id, &root, &hb, err);
    json_decref(root);
    return rc;
}

static void test_heartbeat_valid(void **st)
{
    json_t *root = NULL;
    kn_heartbeat hb;
    we_err err;
    assert_int_equal(kn_heartbeat_parse(good_hb, strlen(good_hb), "w-1", &root, &hb, &err), 0);
    assert_string_equal(hb.id, "w-1");
    assert_int_equal(hb.slots, 2);
    assert_int_equal(json_array_size(hb.encoders), 2);
    assert_string_equal(hb.state, "online");
    json_decref(root);
}

/* Replaces the first occurrence of from with to in good_hb. */
static char *mutate(const char *from, const char *to)
{
    const char *at = strstr(good_hb, from);
    assert_non_null(at);
    size_t n = strlen(good_hb) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(at - good_hb), good_hb, to, at + strlen(from));
    return s;
}

static void test_heartbeat_invalid(void **st)
{
    static const char *const cases[][2] = {
        { "\"slots\":2", "\"slots\":\"2\"" },       { "\"slots\":2", "\"slots\":0" },
        { "\"running\":0", "\"running\":5" },       { "\"interval_ms\":5000", "\"interval_ms\":1" },
        { "[\"cpu\"]", "[1]" },                     { "[\"cpu\"]", "\"cpu\"" },
        { "\"state\":\"online\"", "\"state\":\"x\"" }, { "\"id\":\"w-1\"", "\"id\":\"w.1\"" },
        { "\"hostname\":\"h\",", "" },
    };
    we_err err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *doc = mutate(cases[i][0], cases[i][1]);
        int rc = parse(doc, "w-1", &err);
        if (rc != WE_EINVAL)
            fail_msg("case %zu accepted: %s", i, doc);
        free(doc);
    }
    assert_int_equal(parse(good_hb, "w-2", &err), WE_EINVAL); /* subject mismatch */
    assert_int_equal(parse("not json", "w-1", &err), WE_EINVAL);
    assert_int_equal(parse("[]", "w-1", &err), WE_EINVAL);
    assert_int_equal(parse("", "w-1", &err), WE_EINVAL);
}

static void test_worker_id(void **st)
{
    assert_true(kn_worker_id_valid("worker-gpu-01"));
    assert_true(kn_worker_id_valid("a_B-9"));
    assert_false(kn_worker_id_valid(""));
    assert_false(kn_worker_id_valid("a.b"));
    assert_false(kn_worker_id_valid("a b"));
    assert_false(kn_worker_id_valid("*"));
    assert_false(kn_worker_id_valid(">"));
    assert_false(kn_worker_id_valid(NULL));
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    assert_false(kn_worker_id_valid(long_id));
    long_id[64] = '\0';
    assert_true(kn_worker_id_valid(long_id));
}

static void test_config(void **st)
{
    kn_config cfg;
    we_err err;
    unsetenv("PORT");
    unsetenv("NATS_URL");
    unsetenv("DATABASE_URL");
    unsetenv("PLUGIN_DIR");
    assert_int_equal(kn_config_load(&cfg, &err), 0);
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.nats_url, "nats://localhost:4222");
    assert_string_equal(cfg.plugin_dir, "./plugins");
    setenv("PORT", "eighty", 1);
    assert_int_equal(kn_config_load(&cfg, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "PORT"));
    unsetenv("PORT");
    setenv("DATABASE_URL", "mysql://x", 1);
    assert_int_equal(kn_config_load(&cfg, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "DATABASE_URL"));
    unsetenv("DATABASE_URL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_exact_and_params),
        cmocka_unit_test(test_route_not_found),
        cmocka_unit_test(test_route_method_not_allowed),
        cmocka_unit_test(test_real_routes_exist),
        cmocka_unit_test(test_error_envelope),
        cmocka_unit_test(test_heartbeat_valid),
        cmocka_unit_test(test_heartbeat_invalid),
        cmocka_unit_test(test_worker_id),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
