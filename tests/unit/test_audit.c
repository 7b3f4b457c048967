/*
 * Unit tests of the operations side's pure parts: the audit action of a
 * route (by rule, and for every state-changing route of the real table),
 * the audit result of a status, CSV cells (RFC 4180 quoting, formula
 * neutralisation), and error occurrences parsed from log lines (source,
 * fingerprint, secrets kept out of the context).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "audit.h"
#include "errors.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

static const char *action_of(const char *method, const char *pattern)
{
    static char action[96], type[64];
    return kn_audit_action(method, pattern, action, sizeof action, type, sizeof type) ? action
                                                                                       : NULL;
}

static void test_action_rule(void **st)
{
    static const char *const cases[][3] = {
        { "POST", "/v1/jobs", "job.create" },
        { "DELETE", "/v1/jobs/{id}", "job.delete" },
        { "POST", "/v1/jobs/{id}/cancel", "job.cancel" },
        { "POST", "/v1/jobs/{id}/retry", "job.retry" },
        { "PUT", "/v1/plugins/{id}/config", "plugin.config" },
        { "POST", "/v1/workers/{id}/drain", "worker.drain" },
        { "PUT", "/v1/profiles/{id}", "profile.update" },
        { "PATCH", "/v1/users/{id}", "user.update" },
        { "PUT", "/v1/users/{id}/password", "user.password" },
        { "POST", "/v1/notifications/read-all", "notification.read_all" },
        { "POST", "/v1/notifications/{id}/read", "notification.read" },
        { "POST", "/v1/errors/{id}/resolve", "error.resolve" },
        { "POST", "/v1/streams/{id}/destinations", "stream.destination_create" },
        { "DELETE", "/v1/streams/{id}/destinations/{did}", "stream.destination_delete" },
        { "POST", "/v1/webhooks/{id}/deliveries/{did}/retry", "webhook.delivery_retry" },
        { "POST", "/v1/webhooks/{id}/test", "webhook.test" },
        { "POST", "/v1/files/upload-url", "file.upload_url" },
        { "POST", "/v1/tokens", "token.create" },
        { "DELETE", "/v1/tokens/{id}", "token.delete" },
        { "POST", "/v1/webhooks/{id}/deliveries", "webhook.delivery_create" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = action_of(cases[i][0], cases[i][1]);
        assert_non_null(got);
        if (strcmp(got, cases[i][2]) != 0)
            fail_msg("%s %s: expected %s, got %s", cases[i][0], cases[i][1], cases[i][2], got);
    }
    char action[96], type[64];
    assert_true(kn_audit_action("POST", "/v1/streams/{id}/destinations", action, sizeof action,
                                type, sizeof type));
    assert_string_equal(type, "stream");
}

static void test_action_not_audited(void **st)
{
    assert_null(action_of("GET", "/v1/jobs"));
    assert_null(action_of("HEAD", "/v1/jobs"));
    assert_null(action_of("OPTIONS", "/v1/jobs"));
    assert_null(action_of("POST", "/metrics"));
    assert_null(action_of("POST", "/v1/"));
    assert_null(action_of("POST", "/v1/{id}"));
    assert_null(action_of(NULL, "/v1/jobs"));
}

/* Every state-changing route of the real table has an action that is a
 * valid two-or-more-token NATS subject suffix. */
static void test_action_every_route(void **st)
{
    regex_t rx;
    assert_int_equal(0, regcomp(&rx, "^[a-z0-9]+\\.[a-z0-9_]+$", REG_EXTENDED | REG_NOSUB));
    int audited = 0;
    for (const kn_route *rt = kn_routes; rt->pattern; rt++) {
        if (strcmp(rt->method, "GET") == 0 || strncmp(rt->pattern, "/v1/", 4) != 0)
            continue;
        const char *a = action_of(rt->method, rt->pattern);
        if (!a || regexec(&rx, a, 0, NULL, 0) != 0)
            fail_msg("%s %s: bad action %s", rt->method, rt->pattern, a ? a : "(none)");
        audited++;
    }
    regfree(&rx);
    assert_true(audited >= 10);
}

static void test_result(void **st)
{
    assert_string_equal("success", kn_audit_result(200));
    assert_string_equal("success", kn_audit_result(204));
    assert_string_equal("denied", kn_audit_result(401));
    assert_string_equal("denied", kn_audit_result(403));
    assert_string_equal("failure", kn_audit_result(404));
    assert_string_equal("failure", kn_audit_result(422));
    assert_string_equal("failure", kn_audit_result(503));
    assert_string_equal("failure", kn_audit_result(0));
}

static char *cell(const char *s)
{
    we_buf b;
    we_buf_init(&b);
    kn_csv_cell(&b, s);
    return we_buf_steal(&b);
}

static void check_cell(const char *in, const char *want)
{
    char *got = cell(in);
    if (strcmp(got, want) != 0)
        fail_msg("cell [%s]: expected [%s], got [%s]", in ? in : "(null)", want, got);
    free(got);
}

static void test_csv_cell(void **st)
{
    check_cell(NULL, "");
    check_cell("", "");
    check_cell("plain", "plain");
    check_cell("a,b", "\"a,b\"");
    check_cell("say \"hi\"", "\"say \"\"hi\"\"\"");
    check_cell("two\nlines", "\"two\nlines\"");
    check_cell("cr\r", "\"cr\r\"");
    check_cell("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\"");
    check_cell("=1+2", "'=1+2");
    check_cell("+cmd", "'+cmd");
    check_cell("-2", "'-2");
    check_cell("@SUM(A1)", "'@SUM(A1)");
    check_cell("\tx", "'\tx");
    check_cell("a=b", "a=b");
    check_cell("{\"method\":\"POST\",\"status\":201}", "\"{\"\"method\"\":\"\"POST\"\",\"\"status\"\":201}\"");
}

static void test_error_parse(void **st)
{
    const char *line =
        "{\"time\":\"2026-11-28T20:00:00.123Z\",\"level\":\"error\",\"service\":\"kernel\","
        "\"msg\":\"request failed\",\"error\":\"boom\",\"request_id\":\"abc123\","
        "\"job_id\":\"0b7e3f52-7d0c-4c1e-9a51-5bb2a7f0a001\",\"token\":\"we_secret\","
        "\"Authorization\":\"Bearer x\",\"url\":\"nats://u:pw@host:4222\",\"code\":\"WE-SYS-001\"}";
    kn_error_occ o;
    assert_true(kn_error_occ_parse(line, strlen(line), NULL, &o));
    assert_string_equal("kernel", o.source);
    assert_string_equal("error", o.severity);
    assert_string_equal("request failed", o.message);
    assert_string_equal("WE-SYS-001", o.code);
    assert_string_equal("abc123", o.request_id);
    assert_string_equal("0b7e3f52-7d0c-4c1e-9a51-5bb2a7f0a001", o.job_id);
    assert_string_equal("2026-11-28T20:00:00.123Z", o.time);
    assert_int_equal(64, strlen(o.fingerprint));
    assert_string_equal("boom", json_string_value(json_object_get(o.context, "error")));
    assert_null(json_object_get(o.context, "token"));
    assert_null(json_object_get(o.context, "Authorization"));
    assert_null(json_object_get(o.context, "msg"));
    char *ctx = json_dumps(o.context, 0);
    assert_null(strstr(ctx, "pw@"));
    assert_null(strstr(ctx, "we_secret"));
    free(ctx);
    char fp[65];
    memcpy(fp, o.fingerprint, sizeof fp);
    kn_error_occ_fini(&o);

    /* same source, message and code, other details: same group */
    const char *again = "{\"level\":\"error\",\"service\":\"kernel\",\"msg\":\"request failed\","
                        "\"error\":\"other\",\"code\":\"WE-SYS-001\"}";
    assert_true(kn_error_occ_parse(again, strlen(again), NULL, &o));
    assert_string_equal(fp, o.fingerprint);
    assert_null(o.job_id);
    kn_error_occ_fini(&o);

    /* another code, or a plugin's line: another group */
    const char *plugin = "{\"level\":\"fatal\",\"service\":\"kernel\",\"msg\":\"request failed\","
                         "\"plugin\":\"storage-fs\",\"code\":\"WE-SYS-001\"}";
    assert_true(kn_error_occ_parse(plugin, strlen(plugin), NULL, &o));
    assert_string_equal("plugin:storage-fs", o.source);
    assert_string_equal("fatal", o.severity);
    assert_string_not_equal(fp, o.fingerprint);
    kn_error_occ_fini(&o);
    assert_true(kn_error_occ_parse(plugin, strlen(plugin), "jobs", &o));
    assert_string_equal("jobs", o.source);
    kn_error_occ_fini(&o);

    assert_false(kn_error_occ_parse("not json", 8, NULL, &o));
    assert_false(kn_error_occ_parse("{\"level\":\"error\"}", 17, NULL, &o));
}

static void test_error_secret_keys(void **st)
{
    assert_true(kn_error_key_secret("token"));
    assert_true(kn_error_key_secret("bootstrap_token"));
    assert_true(kn_error_key_secret("Password"));
    assert_true(kn_error_key_secret("webhook_secret"));
    assert_true(kn_error_key_secret("authorization"));
    assert_true(kn_error_key_secret("request_body"));
    assert_false(kn_error_key_secret("job_id"));
    assert_false(kn_error_key_secret("error"));
    assert_false(kn_error_key_secret("storage_key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_action_rule),       cmocka_unit_test(test_action_not_audited),
        cmocka_unit_test(test_action_every_route), cmocka_unit_test(test_result),
        cmocka_unit_test(test_csv_cell),          cmocka_unit_test(test_error_parse),
        cmocka_unit_test(test_error_secret_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
