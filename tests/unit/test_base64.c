/*
 * The SDK's base64 (src/sdk/base64.c), which auth-basic (hashes, tokens,
 * Basic credentials), auth-oidc (JWT segments) and storage-fs
 * (data_base64) use: both alphabets, unpadded output, optional or refused
 * padding, strictness about characters and lengths, and the output cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <webencode/base64.h>

#include <string.h>

static void test_encode(void **state)
{
    const uint8_t raw[] = {0xfb, 0xff, 0xbf, 0x00, 0x10};
    char out[16];
    assert_int_equal(we_b64_encode(raw, 5, 0, out), 7);
    assert_string_equal(out, "+/+/ABA");
    assert_int_equal(we_b64_encode(raw, 5, WE_B64_URL, out), 7);
    assert_string_equal(out, "-_-_ABA");
    assert_int_equal(we_b64_encode((const uint8_t *)"hello", 5, 0, out), 7);
    assert_string_equal(out, "aGVsbG8");
    assert_int_equal(we_b64_encode((const uint8_t *)"user:pass", 9, 0, out), 12);
    assert_string_equal(out, "dXNlcjpwYXNz");
    assert_int_equal(we_b64_encode(raw, 0, 0, out), 0);
    assert_string_equal(out, "");
}

static void test_decode_std(void **state)
{
    uint8_t out[32];
    size_t n;
    assert_int_equal(we_b64_decode("aGVsbG8=", 8, 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(we_b64_decode("aGVsbG8", 7, 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(we_b64_decode("dXNlcjpwYXNz", 12, 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 9);
    assert_memory_equal(out, "user:pass", 9);
    assert_int_equal(we_b64_decode("YQ==", 4, 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(we_b64_decode("", 0, 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(we_b64_decode("+/+/", 4, 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(we_b64_decode("a", 1, 0, out, sizeof out, &n), -1);
    assert_int_equal(we_b64_decode("Y", 1, 0, out, sizeof out, &n), -1);
    assert_int_equal(we_b64_decode("aGVs bG8=", 9, 0, out, sizeof out, &n), -1);
    assert_int_equal(we_b64_decode("aGVsbG8-", 8, 0, out, sizeof out, &n), -1); /* url alphabet */
    assert_int_equal(we_b64_decode("-_-_ABA", 7, 0, out, sizeof out, &n), -1);
    assert_int_equal(we_b64_decode("aGVsbG8==", 9, 0, out, sizeof out, &n), -1);
    assert_int_equal(we_b64_decode("aGVsbG8=", 8, 0, out, 4, &n), -1); /* over cap */
    assert_int_equal(we_b64_decode("dXNlcjpwYXNz", 12, 0, out, 8, &n), -1);
}

static void test_decode_url(void **state)
{
    const uint8_t raw[] = {0xfb, 0xff, 0xbf, 0x00, 0x10};
    uint8_t out[16];
    size_t n;
    assert_int_equal(we_b64_decode("-_-_ABA", 7, WE_B64_URL, out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, raw, 5);
    assert_int_equal(we_b64_decode("-_-_ABA=", 8, WE_B64_URL, out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(we_b64_decode("a+b/", 4, WE_B64_URL, out, sizeof out, &n), -1);
}

/* JWS (RFC 7515 §2): base64url with padding refused. */
static void test_decode_unpadded(void **state)
{
    const unsigned jws = WE_B64_URL | WE_B64_NOPAD;
    uint8_t out[16];
    size_t n;
    assert_int_equal(we_b64_decode("aGVsbG8", 7, jws, out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(we_b64_decode("-_8", 3, jws, out, sizeof out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(we_b64_decode("aGVsbG8=", 8, jws, out, sizeof out, &n), -1); /* padding */
    assert_int_equal(we_b64_decode("YQ==", 4, jws, out, sizeof out, &n), -1);
    assert_int_equal(we_b64_decode("a+b/", 4, jws, out, sizeof out, &n), -1);  /* std alphabet */
    assert_int_equal(we_b64_decode("abcde", 5, jws, out, sizeof out, &n), -1); /* length 4k+1 */
    assert_int_equal(we_b64_decode("aGVsbG8", 7, jws, out, 4, &n), -1);        /* cap */
    assert_int_equal(we_b64_decode("aGVsbG8", 7, jws, out, 5, &n), 0);         /* exactly cap */
    assert_int_equal(we_b64_decode("", 0, jws, out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
}

/* Every length round-trips through both alphabets. */
static void test_round_trip(void **state)
{
    uint8_t raw[64], back[64];
    char text[90];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 37 + 11);
    for (unsigned flags = 0; flags <= WE_B64_URL; flags++)
        for (size_t len = 0; len <= sizeof raw; len++) {
            size_t t = we_b64_encode(raw, len, flags, text), n = 0;
            assert_int_equal(t, strlen(text));
            assert_int_equal(we_b64_decode(text, t, flags | WE_B64_NOPAD, back, len, &n), 0);
            assert_int_equal(n, len);
            assert_memory_equal(back, raw, len);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),     cmocka_unit_test(test_decode_std),
        cmocka_unit_test(test_decode_url), cmocka_unit_test(test_decode_unpadded),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
