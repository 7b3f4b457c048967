/*
 * Unit tests of the webhooks' pure parts: HMAC-SHA256 against RFC 4231,
 * the X-WebEncode-Signature value against one computed with Python's hmac
 * and `openssl dgst -hmac`, the retry backoff, the event names, and the
 * SSRF address policy shared with job sources (src/lib/we_netpolicy.c).
 */
/* clang-format off: cmocka needs these first, in this order */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "we_netpolicy.h"
#include "webhooks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static void test_hmac_rfc4231(void **st)
{
    char hex[65];
    /* RFC 4231 test case 2 */
    const char *data = "what do ya want for nothing?";
    kn_hmac_sha256_hex("Jefe", 4, data, strlen(data), hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* test case 1: key = 20 x 0x0b, data "Hi There" */
    unsigned char key[20];
    memset(key, 0x0b, sizeof key);
    kn_hmac_sha256_hex(key, sizeof key, "Hi There", 8, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void test_signature(void **st)
{
    char sig[72];
    const char *body = "{\"id\":\"e1\",\"type\":\"job.created\"}";
    /* python3: hmac.new(secret, b"1700000000." + body, sha256).hexdigest() */
    kn_webhook_sign("0123456789abcdef-secret", "1700000000", body, strlen(body), sig);
    assert_string_equal(sig,
                        "sha256=10f14f5e58574353062a1a6af5c161fd3e5009d9c9a910cb4f350c87e7a37ebd");
    /* another timestamp (a replay with a new time) signs differently */
    char other[72];
    kn_webhook_sign("0123456789abcdef-secret", "1700000001", body, strlen(body), other);
    assert_string_not_equal(sig, other);
}

static void test_backoff(void **st)
{
    const int64_t far = 1000000000;
    assert_int_equal(kn_webhook_retry_delay_ms(10000, 1, far), 10000);
    assert_int_equal(kn_webhook_retry_delay_ms(10000, 2, far), 20000);
    assert_int_equal(kn_webhook_retry_delay_ms(10000, 3, far), 40000);
    assert_int_equal(kn_webhook_retry_delay_ms(200, 4, far), 1600);
    /* capped at one hour, also for absurd attempt counts */
    assert_int_equal(kn_webhook_retry_delay_ms(10000, 12, far), 3600000);
    assert_int_equal(kn_webhook_retry_delay_ms(10000, 100000, far), 3600000);
    /* never past the delivery's expiry */
    assert_int_equal(kn_webhook_retry_delay_ms(10000, 5, 1234), 1234);
    assert_int_equal(kn_webhook_retry_delay_ms(10000, 5, -5), 0);
}

static void test_event_names(void **st)
{
    assert_true(kn_webhook_event_known("job.created"));
    assert_true(kn_webhook_event_known("job.completed"));
    assert_true(kn_webhook_event_known("worker.lost"));
    assert_true(kn_webhook_event_known("recording.ready"));
    assert_false(kn_webhook_event_known("job.progress")); /* SSE only */
    assert_false(kn_webhook_event_known("webhook.test"));
    assert_false(kn_webhook_event_known("*"));
    assert_false(kn_webhook_event_known("JOB.CREATED"));
    assert_false(kn_webhook_event_known(NULL));
}

static bool private4(const char *a)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    assert_int_equal(inet_pton(AF_INET, a, &sa.sin_addr), 1);
    return we_net_addr_private((struct sockaddr *)&sa);
}

static bool private6(const char *a)
{
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
    assert_int_equal(inet_pton(AF_INET6, a, &sa.sin6_addr), 1);
    return we_net_addr_private((struct sockaddr *)&sa);
}

static void test_addr_policy(void **st)
{
    static const char *const refused4[] = {
        "127.0.0.1",       "10.1.2.3",   "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "0.0.0.0",    "224.0.0.1",      "255.255.255.255",
        "198.18.0.1",      "192.0.0.8",  NULL
    };
    static const char *const public4[] = { "93.184.216.34", "8.8.8.8", "172.32.0.1",
                                           "100.128.0.1",   "1.1.1.1", NULL };
    static const char *const refused6[] = { "::1",
                                            "::",
                                            "fd00::1",
                                            "fc00::1",
                                            "fe80::1",
                                            "fec0::1",
                                            "ff02::1",
                                            "::ffff:127.0.0.1",
                                            "::ffff:10.0.0.1",
                                            "64:ff9b::a9fe:a9fe",
                                            "2002:c0a8:0101::1",
                                            "::127.0.0.1",
                                            NULL };
    static const char *const public6[] = { "2606:2800:220:1:248:1893:25c8:1946",
                                           "::ffff:93.184.216.34", "2002:5db8:d822::1", NULL };
    for (const char *const *a = refused4; *a; a++)
        assert_true(private4(*a));
    for (const char *const *a = public4; *a; a++)
        assert_false(private4(*a));
    for (const char *const *a = refused6; *a; a++)
        assert_true(private6(*a));
    for (const char *const *a = public6; *a; a++)
        assert_false(private6(*a));
    struct sockaddr un = { .sa_family = AF_UNIX };
    assert_true(we_net_addr_private(&un));
}

static void test_url_host(void **st)
{
    char host[256];
    we_err err;
    assert_int_equal(we_net_url_host("hooks.example.com/a?b=1", host, &err), 0);
    assert_string_equal(host, "hooks.example.com");
    assert_int_equal(we_net_url_host("hooks.example.com:8443/x", host, &err), 0);
    assert_string_equal(host, "hooks.example.com");
    assert_int_equal(we_net_url_host("[2001:db8::1]:8080/x", host, &err), 0);
    assert_string_equal(host, "2001:db8::1");
    assert_int_equal(we_net_url_host("127.0.0.1", host, &err), 0);
    assert_int_not_equal(we_net_url_host("user:pw@example.com/x", host, &err), 0);
    assert_non_null(strstr(err.msg, "credentials"));
    assert_int_not_equal(we_net_url_host("/x", host, &err), 0);
    assert_int_not_equal(we_net_url_host("example.com:0/x", host, &err), 0);
    assert_int_not_equal(we_net_url_host("example.com:65536/x", host, &err), 0);
    assert_int_not_equal(we_net_url_host("exa_mple.com/x", host, &err), 0);
    assert_int_not_equal(we_net_url_host("[::1/x", host, &err), 0);
}

static void test_host_public(void **st)
{
    we_err err;
    assert_int_not_equal(we_net_host_public("127.0.0.1", "WEBHOOK_ALLOW_PRIVATE", &err), 0);
    assert_non_null(strstr(err.msg, "WEBHOOK_ALLOW_PRIVATE=true"));
    assert_int_not_equal(we_net_host_public("localhost", "X", &err), 0);
    assert_int_not_equal(we_net_host_public("2130706433", "X", &err), 0); /* 127.0.0.1 */
    assert_int_not_equal(we_net_host_public("::ffff:169.254.169.254", "X", &err), 0);
    assert_int_equal(we_net_host_public("93.184.216.34", "X", &err), 0); /* numeric: no DNS */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231), cmocka_unit_test(test_signature),
        cmocka_unit_test(test_backoff),      cmocka_unit_test(test_event_names),
        cmocka_unit_test(test_addr_policy),  cmocka_unit_test(test_url_host),
        cmocka_unit_test(test_host_public),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
