/*
 * storage-fs pure parts: the key rules (a table of good and bad keys, with
 * explicit lengths so an embedded NUL counts), prefixes, directory-entry
 * names, the message-safe display of keys, and SHA-256 against the FIPS
 * 180-2 vectors. The plugin's .c files are included directly (they hold no
 * main()); base64 is the SDK's, tested by test_base64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../plugins/storage-fs/keys.c"
#include "../../plugins/storage-fs/sha256.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_case {
    const char *key;
    size_t len; /* 0: strlen(key) */
    const char *why; /* NULL: valid; else a word the reason must contain */
} key_case;

#define K(s) { s, sizeof(s) - 1, NULL }
#define BAD(s, why) { s, sizeof(s) - 1, why }

static const key_case key_cases[] = {
    K("a"),
    K("jobs/123/720p/seg_0001.mp4"),
    K("a.b/c-d_e f"),
    K(".hidden"),
    K("a/.hidden/..x/x.."),
    K("...") /* three dots is a name, not a traversal */,
    K("vidéo/ünïcødé ✓.mp4"),
    K("日本語/ファイル"),
    K("emoji/\xF0\x9F\x8E\xAC.mp4"),
    BAD("", "empty"),
    BAD("/abs", "absolute"),
    BAD("/", "absolute"),
    BAD("..", "\"..\""),
    BAD("../x", "\"..\""),
    BAD("a/../b", "\"..\""),
    BAD("a/..", "\"..\""),
    BAD(".", "\".\""),
    BAD("./a", "\".\""),
    BAD("a/./b", "\".\""),
    BAD("a//b", "empty segment"),
    BAD("a/", "empty segment"),
    BAD("a\\b", "backslash"),
    BAD("..\\x", "backslash"),
    BAD("a\0b", "NUL"),
    BAD("a\0", "NUL"),
    BAD("a\x01" "b", "control"),
    BAD("a\nb", "control"),
    BAD("a\tb", "control"),
    BAD("a\x7f", "control"),
    BAD("a\xC2\x85" "b", "control"), /* U+0085, a C1 control */
    BAD("a\xff", "UTF-8"),
    BAD("a\xC3", "UTF-8"),              /* truncated */
    BAD("\xC0\xAF", "UTF-8"),           /* overlong '/' */
    BAD("\xE0\x80\xAF", "UTF-8"),       /* overlong '/' */
    BAD("\xED\xA0\x80", "UTF-8"),       /* a surrogate */
    BAD("\xF4\x90\x80\x80", "UTF-8"),   /* beyond U+10FFFF */
    BAD(".we-tmp-123", "reserved"),
    BAD("a/.we-tmp-x/b", "reserved"),
};

static void test_key_table(void **state)
{
    for (size_t i = 0; i < sizeof key_cases / sizeof key_cases[0]; i++) {
        const key_case *c = &key_cases[i];
        char why[128] = "";
        bool ok = sfs_key_valid(c->key, c->len, why, sizeof why);
        if (ok != (c->why == NULL) || (c->why && !strstr(why, c->why))) {
            char shown[200];
            sfs_display(c->key, c->len, shown, sizeof shown);
            fail_msg("key \"%s\": expected %s (%s), got %s (%s)", shown,
                     c->why ? "invalid" : "valid", c->why ? c->why : "", ok ? "valid" : "invalid",
                     why);
        }
    }
}

static void test_key_length(void **state)
{
    char buf[SFS_KEY_MAX + 2];
    memset(buf, 'x', sizeof buf);
    assert_true(sfs_key_valid(buf, SFS_KEY_MAX, NULL, 0));
    char why[64];
    assert_false(sfs_key_valid(buf, SFS_KEY_MAX + 1, why, sizeof why));
    assert_non_null(strstr(why, "1024"));
    /* a 1024-byte key of 2-byte characters is still fine */
    for (size_t i = 0; i + 1 < SFS_KEY_MAX; i += 2)
        memcpy(buf + i, "\xC3\xA9", 2);
    assert_true(sfs_key_valid(buf, SFS_KEY_MAX, NULL, 0));
}

static void test_prefixes(void **state)
{
    char why[128];
    assert_true(sfs_prefix_valid("", 0, true, why, sizeof why));
    assert_false(sfs_prefix_valid("", 0, false, why, sizeof why));
    assert_true(sfs_prefix_valid("jobs/", 5, false, why, sizeof why));
    assert_true(sfs_prefix_valid("jobs/1/seg_", 11, false, why, sizeof why));
    assert_false(sfs_prefix_valid("/", 1, true, why, sizeof why));
    assert_false(sfs_prefix_valid("../", 3, true, why, sizeof why));
    assert_false(sfs_prefix_valid("a//", 3, true, why, sizeof why));
    assert_false(sfs_prefix_valid("a/../", 5, true, why, sizeof why));
    assert_false(sfs_prefix_valid("/etc/", 5, true, why, sizeof why));
}

static void test_segments(void **state)
{
    assert_true(sfs_segment_valid("seg_0001.mp4", 12));
    assert_false(sfs_segment_valid(".", 1));
    assert_false(sfs_segment_valid("..", 2));
    assert_false(sfs_segment_valid("", 0));
    assert_false(sfs_segment_valid("a/b", 3));
    assert_false(sfs_segment_valid(".we-tmp-1-2-3", 13));
    assert_false(sfs_segment_valid("bad\xff", 4));
    assert_false(sfs_segment_valid("a\\b", 3));
}

static void test_display(void **state)
{
    char out[32];
    sfs_display("a\0b\x01\xff", 5, out, sizeof out);
    assert_string_equal(out, "a\\x00b\\x01\\xFF");
    assert_true(sfs_utf8_valid(out, strlen(out)));
    sfs_display("vidéo", 6, out, sizeof out);
    assert_string_equal(out, "vidéo");
    char longkey[100];
    memset(longkey, 'k', sizeof longkey);
    sfs_display(longkey, sizeof longkey, out, sizeof out);
    assert_true(strlen(out) < sizeof out);
    assert_non_null(strstr(out, "\xE2\x80\xA6"));
    /* a multibyte character is never cut in half */
    char wide[60];
    for (size_t i = 0; i < sizeof wide; i += 3)
        memcpy(wide + i, "\xE2\x9C\x93", 3);
    sfs_display(wide, sizeof wide, out, sizeof out);
    assert_true(sfs_utf8_valid(out, strlen(out)));
}

static void sha_hex(const void *data, size_t len, char out[65])
{
    sfs_sha256 s;
    sfs_sha256_init(&s);
    sfs_sha256_update(&s, data, len);
    sfs_sha256_hex(&s, out);
}

static void test_sha256_vectors(void **state)
{
    char hex[65];
    sha_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* One million 'a's, fed in uneven pieces: exercises block boundaries. */
static void test_sha256_streaming(void **state)
{
    static char a[1000000];
    memset(a, 'a', sizeof a);
    sfs_sha256 s;
    char hex[65];
    sfs_sha256_init(&s);
    for (size_t off = 0, step = 1; off < sizeof a; off += step, step = step * 3 % 1021 + 1)
        sfs_sha256_update(&s, a + off, off + step > sizeof a ? sizeof a - off : step);
    sfs_sha256_hex(&s, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    for (size_t n = 54; n < 66; n++) { /* the padding edge around 56 bytes */
        char one[65], pieces[65];
        sha_hex(a, n, one);
        sfs_sha256_init(&s);
        sfs_sha256_update(&s, a, n / 2);
        sfs_sha256_update(&s, a + n / 2, n - n / 2);
        sfs_sha256_hex(&s, pieces);
        assert_string_equal(one, pieces);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_table),      cmocka_unit_test(test_key_length),
        cmocka_unit_test(test_prefixes),       cmocka_unit_test(test_segments),
        cmocka_unit_test(test_display),        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_streaming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
