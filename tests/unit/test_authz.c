/*
 * The SDK's auth.authorize policy (src/sdk/authz.c), which auth-basic and
 * auth-oidc both answer from: role names and their order, every role ×
 * action over the resources (how a route names its resource included), and
 * what unknown roles and actions get.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <webencode/authz.h>

#include <string.h>

static void test_roles(void **state)
{
    assert_int_equal(we_role_parse("viewer"), WE_ROLE_VIEWER);
    assert_int_equal(we_role_parse("operator"), WE_ROLE_OPERATOR);
    assert_int_equal(we_role_parse("admin"), WE_ROLE_ADMIN);
    assert_int_equal(we_role_parse("Admin"), WE_ROLE_INVALID);
    assert_int_equal(we_role_parse(""), WE_ROLE_INVALID);
    assert_int_equal(we_role_parse(NULL), WE_ROLE_INVALID);
    assert_true(WE_ROLE_VIEWER < WE_ROLE_OPERATOR && WE_ROLE_OPERATOR < WE_ROLE_ADMIN);
    assert_string_equal(we_role_name(WE_ROLE_OPERATOR), "operator");
    assert_string_equal(we_role_name(WE_ROLE_INVALID), "invalid");
    assert_string_equal(we_role_name((we_role)3), "invalid");
}

/* The specification: for each resource, the lowest role for read, write
 * and admin (V viewer, O operator, A admin). */
static const struct {
    const char *resource;
    const char need[4];
} spec[] = {
    {"jobs", "VOA"},
    {"streams", "VOA"},
    {"restreams", "VOA"},
    {"files", "VOA"},
    {"profiles", "VAA"},
    {"workers", "VAA"},
    {"plugins", "VAA"},
    {"webhooks", "VAA"},
    {"errors", "VAA"},
    {"notifications", "VAA"},
    {"system", "VAA"},
    {"health", "VAA"},
    {"events", "VAA"},
    {"metrics", "VAA"},
    {"users", "AAA"},
    {"audit", "AAA"},
    {"tokens", "AAA"},
    {"unheard-of", "AAA"},
    {"", "AAA"},
    {"/v1/jobs/123", "VOA"},
    {"jobs/123/cancel", "VOA"},
    {"/v1/users", "AAA"},
    {"v1/profiles/x", "VAA"},
    {"jobs?limit=5", "VOA"},
    {"//jobs", "VOA"},
    {"jobsx", "AAA"},
    {"v1", "AAA"},
};

static int level(char c)
{
    return c == 'V' ? 0 : c == 'O' ? 1 : 2;
}

static void test_table(void **state)
{
    const char *roles[] = {"viewer", "operator", "admin"};
    const char *actions[] = {"read", "write", "admin"};
    char reason[160];
    for (size_t s = 0; s < sizeof spec / sizeof spec[0]; s++)
        for (int r = 0; r < 3; r++)
            for (int a = 0; a < 3; a++) {
                bool want = r >= level(spec[s].need[a]);
                reason[0] = '\0';
                bool got =
                    we_authorize(roles[r], actions[a], spec[s].resource, reason, sizeof reason);
                if (got != want)
                    fail_msg("%s %s %s: expected %s, got %s (%s)", roles[r], actions[a],
                             spec[s].resource, want ? "allowed" : "denied",
                             got ? "allowed" : "denied", reason);
                assert_true(reason[0] != '\0');
            }
    assert_false(we_authorize("viewer", "read", NULL, reason, sizeof reason));
}

static void test_reasons(void **state)
{
    char reason[160];
    assert_true(we_authorize("operator", "write", "/v1/jobs/1", reason, sizeof reason));
    assert_string_equal(reason, "operator may write jobs");
    assert_false(we_authorize("viewer", "write", "jobs", reason, sizeof reason));
    assert_string_equal(reason, "write on jobs needs the operator role");
    assert_true(we_authorize("admin", "admin", "anything", reason, sizeof reason));
    assert_string_equal(reason, "admin may admin this resource");
    assert_false(we_authorize("operator", "read", "anything", reason, sizeof reason));
    assert_string_equal(reason, "read on an unlisted resource needs the admin role");
    char tiny[8]; /* a short buffer gets a cut, terminated sentence */
    assert_true(we_authorize("admin", "read", "users", tiny, sizeof tiny));
    assert_string_equal(tiny, "admin m");
}

static void test_unknowns(void **state)
{
    char reason[160];
    const char *bad_roles[] = {"root", "", "Admin", "superuser"};
    for (size_t i = 0; i < 4; i++) {
        assert_false(we_authorize(bad_roles[i], "read", "jobs", reason, sizeof reason));
        assert_string_equal(reason, "unknown role");
    }
    assert_false(we_authorize(NULL, "read", "jobs", reason, sizeof reason));
    assert_string_equal(reason, "unknown role");
    const char *bad_actions[] = {"delete", "", "READ", "execute"};
    for (size_t i = 0; i < 4; i++) {
        assert_false(we_authorize("admin", bad_actions[i], "jobs", reason, sizeof reason));
        assert_non_null(strstr(reason, "unknown action"));
    }
    assert_false(we_authorize("admin", NULL, "jobs", reason, sizeof reason));
    assert_string_equal(reason, "unknown action");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_unknowns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
