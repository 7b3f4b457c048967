/*
 * Unit tests of the pure parts of the kernel's request security: roles,
 * address lists and CIDRs, X-Forwarded-For from trusted proxies, the token
 * bucket, the JSON depth scan, and the settings loader's refusals (dev
 * tokens in production, a short bootstrap token, malformed lists).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth.h"
#include "kernel.h"

#include <stdlib.h>
#include <string.h>

static void roles(void **state)
{
    assert_int_equal(kn_role_parse("viewer"), KN_VIEWER);
    assert_int_equal(kn_role_parse("operator"), KN_OPERATOR);
    assert_int_equal(kn_role_parse("admin"), KN_ADMIN);
    assert_int_equal(kn_role_parse("anonymous"), -1);
    assert_int_equal(kn_role_parse("Admin"), -1);
    assert_int_equal(kn_role_parse(""), -1);
    assert_int_equal(kn_role_parse(NULL), -1);
    assert_string_equal(kn_role_name(KN_OPERATOR), "operator");
    assert_true(KN_VIEWER < KN_OPERATOR && KN_OPERATOR < KN_ADMIN);
}

static void ip_lists(void **state)
{
    assert_true(kn_ip_in_list("127.0.0.1", "127.0.0.1"));
    assert_false(kn_ip_in_list("127.0.0.1", "127.0.0.2"));
    assert_true(kn_ip_in_list("10.0.0.0/8, 192.168.1.0/24", "10.200.3.4"));
    assert_true(kn_ip_in_list("10.0.0.0/8, 192.168.1.0/24", "192.168.1.77"));
    assert_false(kn_ip_in_list("10.0.0.0/8, 192.168.1.0/24", "192.168.2.1"));
    assert_true(kn_ip_in_list("172.16.0.0/12", "172.31.255.255"));
    assert_false(kn_ip_in_list("172.16.0.0/12", "172.32.0.0"));
    assert_true(kn_ip_in_list("0.0.0.0/0", "8.8.8.8"));
    assert_true(kn_ip_in_list("::1", "::1"));
    assert_true(kn_ip_in_list("fd00::/8", "fd12:3456::1"));
    assert_false(kn_ip_in_list("fd00::/8", "fe80::1"));
    assert_false(kn_ip_in_list("10.0.0.0/8", "::ffff:10.0.0.1")); /* other family */
    assert_false(kn_ip_in_list("", "127.0.0.1"));
    assert_false(kn_ip_in_list("garbage, ,", "127.0.0.1"));
    assert_false(kn_ip_in_list("127.0.0.1", "not-an-ip"));
}

static void forwarded(void **state)
{
    char ip[48];
    const char *trusted = "10.0.0.1, 10.0.0.2";
    assert_true(kn_forwarded_client("203.0.113.7", trusted, ip, sizeof ip));
    assert_string_equal(ip, "203.0.113.7");
    /* the right-most entry that is not a proxy: a client cannot push
     * itself past the proxies by sending its own header */
    assert_true(kn_forwarded_client("1.1.1.1, 203.0.113.7, 10.0.0.2", trusted, ip, sizeof ip));
    assert_string_equal(ip, "203.0.113.7");
    assert_true(kn_forwarded_client(" 2001:db8::5 ", trusted, ip, sizeof ip));
    assert_string_equal(ip, "2001:db8::5");
    assert_false(kn_forwarded_client("10.0.0.1, 10.0.0.2", trusted, ip, sizeof ip));
    assert_false(kn_forwarded_client("", trusted, ip, sizeof ip));
    assert_false(kn_forwarded_client("evil, 10.0.0.1", trusted, ip, sizeof ip));
    assert_false(kn_forwarded_client("1.2.3.4, , 10.0.0.1", trusted, ip, sizeof ip));
    char big[300];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(kn_forwarded_client(big, trusted, ip, sizeof ip));
}

static void bucket(void **state)
{
    kn_bucket b = { 0, 0 };
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(kn_bucket_take(&b, 1.0, 3.0, t), 0);
    int wait = kn_bucket_take(&b, 1.0, 3.0, t);
    assert_int_equal(wait, 1);
    assert_int_equal(kn_bucket_take(&b, 1.0, 3.0, t + 500), 1); /* half a token */
    assert_int_equal(kn_bucket_take(&b, 1.0, 3.0, t + 1001), 0);
    /* refills to the burst, not beyond */
    t += 3600 * 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(kn_bucket_take(&b, 1.0, 3.0, t), 0);
    assert_true(kn_bucket_take(&b, 1.0, 3.0, t) > 0);
    /* a slow rate says how long to wait */
    kn_bucket s = { 0, 0 };
    assert_int_equal(kn_bucket_take(&s, 0.1, 1.0, t), 0);
    assert_int_equal(kn_bucket_take(&s, 0.1, 1.0, t), 10);
}

static void json_depth(void **state)
{
    assert_int_equal(kn_json_depth("{}", 2), 1);
    assert_int_equal(kn_json_depth("{\"a\":[1,{\"b\":[]}]}", 18), 4);
    const char *s = "{\"a\":\"[[[[{{{{\\\"[[[[\"}";
    assert_int_equal(kn_json_depth(s, strlen(s)), 1); /* brackets inside strings */
    char deep[2001];
    for (int i = 0; i < 1000; i++) {
        deep[i] = '[';
        deep[1999 - i] = ']';
    }
    deep[2000] = '\0';
    assert_int_equal(kn_json_depth(deep, 2000), 1000);
    assert_int_equal(kn_json_depth("]]]}}}", 6), 0);
    assert_int_equal(kn_json_depth("", 0), 0);
}

static int load_with(const char *const *env, kn_config *cfg, we_err *err)
{
    static const char *const names[] = { "WEBENCODE_MODE", "WEBENCODE_DEV_TOKENS",
                                         "WEBENCODE_BOOTSTRAP_ADMIN_TOKEN", "TRUSTED_PROXIES",
                                         "CORS_ALLOWED_ORIGINS", NULL };
    for (int i = 0; names[i]; i++)
        unsetenv(names[i]);
    for (int i = 0; env[i]; i += 2)
        setenv(env[i], env[i + 1], 1);
    memset(cfg, 0, sizeof *cfg);
    return kn_security_load(cfg, err);
}

static void settings(void **state)
{
    kn_config cfg;
    we_err err;
    const char *const ok[] = { NULL };
    assert_int_equal(load_with(ok, &cfg, &err), 0);
    assert_false(cfg.sec.dev_mode);
    assert_null(cfg.sec.bootstrap_token);
    assert_true(cfg.sec.metrics_anonymous);

    const char *const dev_prod[] = { "WEBENCODE_DEV_TOKENS", "admin:0123456789abcdef", NULL };
    assert_int_not_equal(load_with(dev_prod, &cfg, &err), 0);
    assert_non_null(strstr(err.msg, "production"));
    assert_null(strstr(err.msg, "0123456789abcdef"));

    const char *const dev_ok[] = { "WEBENCODE_MODE", "development", "WEBENCODE_DEV_TOKENS",
                                   "admin:0123456789abcdef,viewer:fedcba9876543210", NULL };
    assert_int_equal(load_with(dev_ok, &cfg, &err), 0);
    assert_true(cfg.sec.dev_mode);

    const char *const dev_bad[] = { "WEBENCODE_MODE", "development", "WEBENCODE_DEV_TOKENS",
                                    "root:0123456789abcdef", NULL };
    assert_int_not_equal(load_with(dev_bad, &cfg, &err), 0);
    const char *const dev_short[] = { "WEBENCODE_MODE", "development", "WEBENCODE_DEV_TOKENS",
                                      "admin:short", NULL };
    assert_int_not_equal(load_with(dev_short, &cfg, &err), 0);
    const char *const mode_bad[] = { "WEBENCODE_MODE", "prod", NULL };
    assert_int_not_equal(load_with(mode_bad, &cfg, &err), 0);

    const char *const boot_short[] = { "WEBENCODE_BOOTSTRAP_ADMIN_TOKEN", "too-short", NULL };
    assert_int_not_equal(load_with(boot_short, &cfg, &err), 0);
    assert_non_null(strstr(err.msg, "32"));
    const char *const proxies_bad[] = { "TRUSTED_PROXIES", "10.0.0.0/33", NULL };
    assert_int_not_equal(load_with(proxies_bad, &cfg, &err), 0);
    assert_non_null(strstr(err.msg, "TRUSTED_PROXIES"));
    const char *const proxies_ok[] = { "TRUSTED_PROXIES", "10.0.0.0/8, ::1, 192.168.0.1", NULL };
    assert_int_equal(load_with(proxies_ok, &cfg, &err), 0);
    const char *const cors_bad[] = { "CORS_ALLOWED_ORIGINS", "https://a.example/path", NULL };
    assert_int_not_equal(load_with(cors_bad, &cfg, &err), 0);
    const char *const cors_ok[] = { "CORS_ALLOWED_ORIGINS", "https://a.example, http://b:8080",
                                    NULL };
    assert_int_equal(load_with(cors_ok, &cfg, &err), 0);
    kn_ctx kn;
    memset(&kn, 0, sizeof kn);
    kn.cfg = cfg;
    assert_true(kn_cors_allowed(&kn, "https://a.example"));
    assert_true(kn_cors_allowed(&kn, "http://b:8080"));
    assert_false(kn_cors_allowed(&kn, "https://a.example.evil"));
    assert_false(kn_cors_allowed(&kn, "https://a.exampl"));
    assert_false(kn_cors_allowed(&kn, NULL));
    const char *const none[] = { NULL };
    assert_int_equal(load_with(none, &cfg, &err), 0);
    kn.cfg = cfg;
    assert_false(kn_cors_allowed(&kn, "https://a.example"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roles),     cmocka_unit_test(ip_lists),   cmocka_unit_test(forwarded),
        cmocka_unit_test(bucket),    cmocka_unit_test(json_depth), cmocka_unit_test(settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
