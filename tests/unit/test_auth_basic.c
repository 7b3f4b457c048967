/*
 * auth-basic pure parts: the scrypt hash format (round trip, wrong
 * password, per-hash salts, malformed and out-of-bounds stored strings,
 * outdated parameters), token hashing and input rules. The plugin's .c
 * files are included directly (they hold no main()); base64 and the
 * authorization table are the SDK's, tested by test_base64 and test_authz.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../plugins/auth-basic/hash.c"
#include "../../plugins/auth-basic/policy.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PW "correct horse battery staple"
#define FAST_LN 10 /* N = 1024: the format is the same, the test is quick */

static void test_hash_round_trip(void **state)
{
    char h[AB_HASH_MAX];
    assert_int_equal(ab_hash_password(PW, strlen(PW), FAST_LN, h), 0);
    assert_true(strncmp(h, "$scrypt$ln=10,r=8,p=1$", 22) == 0);
    assert_int_equal(ab_verify_password(PW, strlen(PW), h), 1);
    ab_scrypt s;
    assert_int_equal(ab_hash_parse(h, &s), 0);
    assert_int_equal(s.ln, 10);
    assert_int_equal(s.r, 8);
    assert_int_equal(s.p, 1);
    assert_int_equal(s.salt_len, AB_SALT_LEN);
    assert_int_equal(s.key_len, AB_KEY_LEN);
    assert_null(strstr(h, PW));
}

/* The production cost: the format holds, and the hash verifies. */
static void test_hash_default_cost(void **state)
{
    char h[AB_HASH_MAX];
    assert_int_equal(ab_hash_password(PW, strlen(PW), AB_LN_DEFAULT, h), 0);
    assert_true(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
    assert_int_equal(strlen(h), 22 + 22 + 1 + 43);
    assert_int_equal(ab_verify_password(PW, strlen(PW), h), 1);
    assert_false(ab_hash_outdated(h, AB_LN_DEFAULT));
    assert_true(ab_hash_outdated(h, 16));
}

static void test_wrong_password(void **state)
{
    char h[AB_HASH_MAX];
    assert_int_equal(ab_hash_password(PW, strlen(PW), FAST_LN, h), 0);
    assert_int_equal(ab_verify_password("correct horse battery stapl", 27, h), 0);
    assert_int_equal(ab_verify_password("Correct horse battery staple", 28, h), 0);
    assert_int_equal(ab_verify_password("", 0, h), 0);
    /* the length is explicit: a NUL inside the password counts */
    assert_int_equal(ab_verify_password(PW "\0x", strlen(PW) + 2, h), 0);
}

static void test_salts_differ(void **state)
{
    char a[AB_HASH_MAX], b[AB_HASH_MAX];
    assert_int_equal(ab_hash_password(PW, strlen(PW), FAST_LN, a), 0);
    assert_int_equal(ab_hash_password(PW, strlen(PW), FAST_LN, b), 0);
    assert_string_not_equal(a, b);
    ab_scrypt sa, sb;
    assert_int_equal(ab_hash_parse(a, &sa), 0);
    assert_int_equal(ab_hash_parse(b, &sb), 0);
    assert_memory_not_equal(sa.salt, sb.salt, AB_SALT_LEN);
    assert_memory_not_equal(sa.key, sb.key, AB_KEY_LEN);
    assert_int_equal(ab_verify_password(PW, strlen(PW), a), 1);
    assert_int_equal(ab_verify_password(PW, strlen(PW), b), 1);
}

/* A fixed salt gives a fixed hash: the encoding is stable across builds. */
static void test_known_salt(void **state)
{
    const uint8_t salt[16] = "0123456789abcdef";
    char a[AB_HASH_MAX], b[AB_HASH_MAX];
    assert_int_equal(ab_hash_password_salt(PW, strlen(PW), FAST_LN, salt, 16, a), 0);
    assert_int_equal(ab_hash_password_salt(PW, strlen(PW), FAST_LN, salt, 16, b), 0);
    assert_string_equal(a, b);
    assert_true(strncmp(a, "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$", 45) == 0);
}

static void test_malformed_hashes(void **state)
{
    char good[AB_HASH_MAX], buf[AB_HASH_MAX + 8];
    assert_int_equal(ab_hash_password(PW, strlen(PW), FAST_LN, good), 0);
    const char *tail = strchr(good + 22, '$'); /* "$<key>" */
    const char *bad[] = {
        "", "plain text", PW, "$scrypt$", "$scrypt$ln=10,r=8,p=1$", "$scrypt$ln=10,r=8,p=1$$",
        "$bcrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=10,r=8$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=0,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=25,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=20,r=64,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=10,r=0,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=10,r=8,p=0$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=99999999999999999999,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=-1,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=10,r=8,p=1$c2FsdA$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", /* short salt */
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$c2hvcnQ",                     /* short key */
        "$scrypt$ln=10,r=8,p=1$MDEy!zQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY$",
        " $scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ab_scrypt s;
        if (ab_hash_parse(bad[i], &s) != -1 || ab_verify_password(PW, strlen(PW), bad[i]) != -1)
            fail_msg("accepted malformed hash #%zu: %s", i, bad[i]);
    }
    assert_int_equal(ab_verify_password(PW, strlen(PW), NULL), -1);
    /* a truncated or extended valid hash */
    snprintf(buf, sizeof buf, "%.*s", (int)strlen(good) - 1, good);
    assert_int_equal(ab_verify_password(PW, strlen(PW), buf), -1);
    snprintf(buf, sizeof buf, "%.*s", (int)strlen(good) - 4, good);
    assert_int_equal(ab_verify_password(PW, strlen(PW), buf), -1);
    snprintf(buf, sizeof buf, "%s!", good);
    assert_int_equal(ab_verify_password(PW, strlen(PW), buf), -1);
    assert_non_null(tail);
}

static void test_token_hash(void **state)
{
    char hex[65];
    ab_token_hash("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_input_rules(void **state)
{
    char why[96];
    assert_true(ab_username_valid("alice", 5, why, sizeof why));
    assert_true(ab_username_valid("a.b_c-d@example.org", 19, why, sizeof why));
    assert_false(ab_username_valid("ab", 2, why, sizeof why));
    assert_false(ab_username_valid("a b", 3, why, sizeof why));
    assert_false(ab_username_valid("al\0ce", 5, why, sizeof why));
    assert_false(ab_username_valid("alicé", 6, why, sizeof why));
    assert_false(ab_username_valid("al/ce", 5, why, sizeof why));
    char long_name[66];
    memset(long_name, 'x', sizeof long_name);
    assert_true(ab_username_valid(long_name, 64, why, sizeof why));
    assert_false(ab_username_valid(long_name, 65, why, sizeof why));
    assert_true(ab_password_valid("twelve chars", 12, why, sizeof why));
    assert_false(ab_password_valid("eleven char", 11, why, sizeof why));
    assert_non_null(strstr(why, "12"));
    assert_false(ab_password_valid("ééééééééééé", 22, why, sizeof why)); /* 11 characters */
    assert_true(ab_password_valid("éééééééééééé", 24, why, sizeof why));
    assert_false(ab_password_valid("twelve\0chars", 12, why, sizeof why));
    assert_true(ab_uuid_valid("123e4567-e89b-12d3-a456-426614174000"));
    assert_false(ab_uuid_valid("123e4567-e89b-12d3-a456-42661417400"));
    assert_false(ab_uuid_valid("123e4567-e89b-12d3-a456-4266141740000"));
    assert_false(ab_uuid_valid("123e4567xe89b-12d3-a456-426614174000"));
    assert_false(ab_uuid_valid("'; DROP TABLE users; --"));
    assert_true(ab_token_prefix_valid("we_"));
    assert_false(ab_token_prefix_valid(""));
    assert_false(ab_token_prefix_valid("we-"));
    assert_false(ab_token_prefix_valid("abcdefghijk"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_round_trip),  cmocka_unit_test(test_hash_default_cost),
        cmocka_unit_test(test_wrong_password),   cmocka_unit_test(test_salts_differ),
        cmocka_unit_test(test_known_salt),       cmocka_unit_test(test_malformed_hashes),
        cmocka_unit_test(test_token_hash),       cmocka_unit_test(test_input_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
