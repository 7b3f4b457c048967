/*
 * Unit tests of the TOML-subset reader (src/lib/we_toml.c): every accepted
 * form, and for each refused one the "file:line: message" it gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "we_toml.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *parse_ok(const char *text)
{
    we_toml *t = NULL;
    we_err err = {""};
    int rc = we_toml_parse("t.toml", text, strlen(text), &t, &err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err.msg);
    json_t *root = json_incref(t->root);
    we_toml_free(t);
    return root;
}

/* Parses text expecting an error whose message contains want. */
static void parse_bad(const char *text, const char *want)
{
    we_toml *t = NULL;
    we_err err = {""};
    int rc = we_toml_parse("t.toml", text, strlen(text), &t, &err);
    if (rc != WE_EINVAL || !strstr(err.msg, want))
        fail_msg("for %s: want error containing '%s', got rc %d '%s'", text, want, rc, err.msg);
    assert_null(t);
}

static void test_scalars(void **st)
{
    json_t *r = parse_ok("# a comment\n"
                         "s = \"hello\"   # trailing comment\n"
                         "n = -42\n"
                         "p = +7\n"
                         "z = 0\n"
                         "big = 9223372036854775807\n"
                         "small = -9223372036854775808\n"
                         "yes = true\n"
                         "no = false\n"
                         "empty = \"\"\n"
                         "with-dash_and_underscore = 1\n");
    assert_string_equal(json_string_value(json_object_get(r, "s")), "hello");
    assert_int_equal(json_integer_value(json_object_get(r, "n")), -42);
    assert_int_equal(json_integer_value(json_object_get(r, "p")), 7);
    assert_int_equal(json_integer_value(json_object_get(r, "z")), 0);
    assert_true(json_integer_value(json_object_get(r, "big")) == INT64_MAX);
    assert_true(json_integer_value(json_object_get(r, "small")) == INT64_MIN);
    assert_true(json_is_true(json_object_get(r, "yes")));
    assert_true(json_is_false(json_object_get(r, "no")));
    assert_string_equal(json_string_value(json_object_get(r, "empty")), "");
    assert_non_null(json_object_get(r, "with-dash_and_underscore"));
    json_decref(r);
}

static void test_escapes(void **st)
{
    json_t *r = parse_ok("s = \"q\\\" b\\\\ n\\n t\\t r\\r e\\u00e9 euro\\u20AC # not a comment\"\n"
                         "raw = \"h\xc3\xa9llo \xf0\x9f\x8e\xac\"\n");
    assert_string_equal(json_string_value(json_object_get(r, "s")),
                        "q\" b\\ n\n t\t r\r e\xc3\xa9 euro\xe2\x82\xac # not a comment");
    assert_string_equal(json_string_value(json_object_get(r, "raw")),
                        "h\xc3\xa9llo \xf0\x9f\x8e\xac");
    json_decref(r);
}

static void test_tables_and_arrays(void **st)
{
    json_t *r = parse_ok("top = 1\r\n"
                         "[a]\n"
                         "x = [1, 2, 3]\n"
                         "[ a.b . c ]  # spaces allowed\n"
                         "y = [\"p\", \"q\",]\n"
                         "e = []\n"
                         "mixed = [true, 1, \"s\"]\n"
                         "[config_schema.root]\n"
                         "type = \"string\"\n");
    assert_int_equal(json_integer_value(json_object_get(r, "top")), 1);
    json_t *a = json_object_get(r, "a");
    assert_int_equal(json_array_size(json_object_get(a, "x")), 3);
    json_t *c = json_object_get(json_object_get(a, "b"), "c");
    assert_int_equal(json_array_size(json_object_get(c, "y")), 2);
    assert_int_equal(json_array_size(json_object_get(c, "e")), 0);
    assert_int_equal(json_array_size(json_object_get(c, "mixed")), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(r, "config_schema"), "root"), "type")),
                        "string");
    json_decref(r);
}

static void test_lines(void **st)
{
    const char *text = "id = \"x\"\n\n[config_schema.root]\ntype = \"string\"\n";
    we_toml *t = NULL;
    assert_int_equal(we_toml_parse("t.toml", text, strlen(text), &t, NULL), 0);
    assert_int_equal(we_toml_line(t, "id"), 1);
    assert_int_equal(we_toml_line(t, "config_schema.root"), 3);
    assert_int_equal(we_toml_line(t, "config_schema.root.type"), 4);
    assert_int_equal(we_toml_line(t, "nope"), 0);
    we_toml_free(t);
}

static void test_super_table_after_sub_table(void **st)
{
    json_t *r = parse_ok("[a.b]\nx = 1\n[a]\ny = 2\n");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "a"), "y")), 2);
    json_decref(r);
}

static void test_refused(void **st)
{
    parse_bad("x = 1\nx = 2\n", "t.toml:2: duplicate key 'x' (first at line 1)");
    parse_bad("[a]\n[a]\n", "t.toml:2: table [a] defined twice (first at line 1)");
    parse_bad("[a.b]\n[a]\nb = 1\n", "t.toml:3: duplicate key 'b'");
    parse_bad("a = 1\n[a.b]\n", "t.toml:2: 'a' is already a value");
    parse_bad("x = 1.5\n", "t.toml:1: floats are not supported");
    parse_bad("x = 1e5\n", "floats are not supported");
    parse_bad("x = inf\n", "floats are not supported");
    parse_bad("x = -nan\n", "floats are not supported");
    parse_bad("x = 1979-05-27\n", "dates and times are not supported");
    parse_bad("x = 1_000\n", "underscores");
    parse_bad("x = 0x10\n", "only decimal integers");
    parse_bad("x = 012\n", "leading zeros");
    parse_bad("x = 9223372036854775808\n", "out of range");
    parse_bad("x = -9223372036854775809\n", "out of range");
    parse_bad("x = 'lit'\n", "literal strings are not supported");
    parse_bad("x = \"\"\"multi\"\"\"\n", "multi-line strings are not supported");
    parse_bad("x = {a = 1}\n", "inline tables are not supported");
    parse_bad("[[arr]]\n", "arrays of tables are not supported");
    parse_bad("a.b = 1\n", "dotted keys are not supported");
    parse_bad("\"q\" = 1\n", "quoted keys are not supported");
    parse_bad("x = [[1], [2]]\n", "nested arrays are not supported");
    parse_bad("x = [1,\n2]\n", "t.toml:1: unterminated array");
    parse_bad("x = [1 2]\n", "expected ',' or ']'");
    parse_bad("x = \"abc\n", "unterminated string");
    parse_bad("x = \"a\\qb\"\n", "unsupported escape sequence \\q");
    parse_bad("x = \"\\u12\"\n", "\\u needs 4 hex digits");
    parse_bad("x = \"\\ud800\"\n", "not an allowed character");
    parse_bad("x = \"\\u0000\"\n", "not an allowed character");
    parse_bad("x = truex\n", "invalid value");
    parse_bad("x = yes\n", "invalid value");
    parse_bad("x =\n", "missing value");
    parse_bad("x = 1 2\n", "unexpected text after the value of 'x'");
    parse_bad("x 1\n", "expected '=' after key 'x'");
    parse_bad("= 1\n", "expected a key");
    parse_bad("[a\n", "expected ']'");
    parse_bad("[]\n", "expected a key");
    parse_bad("[a] x\n", "unexpected text after the table header");
    parse_bad("ok = 1\nx = \"bad \xff byte\"\n", "t.toml:2: invalid UTF-8");
    parse_bad("x = \"\xc0\xaf\"\n", "invalid UTF-8");     /* overlong */
    parse_bad("x = \"\xed\xa0\x80\"\n", "invalid UTF-8"); /* surrogate */
    parse_bad("x = \"a\x01\"\n", "control character 0x01");
    parse_bad("x = 1\r2\n", "control character 0x0d");
    parse_bad("# \x7f in a comment\n", "control character 0x7f");
}

static void test_nul_byte(void **st)
{
    const char text[] = "x = 1\ny = \"a\0b\"\n";
    we_toml *t = NULL;
    we_err err = {""};
    assert_int_equal(we_toml_parse("t.toml", text, sizeof text - 1, &t, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "t.toml:2: control character 0x00"));
}

static void test_empty_and_no_final_newline(void **st)
{
    json_t *r = parse_ok("");
    assert_int_equal(json_object_size(r), 0);
    json_decref(r);
    r = parse_ok("x = 1");
    assert_int_equal(json_integer_value(json_object_get(r, "x")), 1);
    json_decref(r);
}

static void test_load_file(void **st)
{
    char path[] = "/tmp/we_toml_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "a = 1\nb = oops\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    we_toml *t = NULL;
    we_err err = {""};
    assert_int_equal(we_toml_load(path, &t, &err), WE_EINVAL);
    char want[300];
    snprintf(want, sizeof want, "%s:2: invalid value", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    assert_int_equal(we_toml_load(path, &t, &err), WE_ENOENT);
    we_toml_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_tables_and_arrays),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_super_table_after_sub_table),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_empty_and_no_final_newline),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
