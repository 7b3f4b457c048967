/*
 * auth-oidc pure parts: the compact-JWT reader (what is refused before any
 * key: alg none / HMAC, crit, typ, duplicates, padding, sizes), claim lookup
 * by name and dotted path, role mapping (role_map in both forms, highest
 * role wins, default_role), the claim checks at their time boundaries (exp,
 * nbf, iat with leeway), usernames, the name-based user UUID against a known
 * vector, and RFC 3339 times. The plugin's .c files are included directly
 * (they hold no main()); base64url and the authorization table are the
 * SDK's, tested by test_base64 and test_authz.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../plugins/auth-oidc/claims.c"
#include "../../plugins/auth-oidc/jwt.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISS "https://idp.example.com/realms/we"
#define NOW 1800000000

static void b64url(const char *in, char *out)
{
    we_b64_encode((const uint8_t *)in, strlen(in), WE_B64_URL, out);
}

/* header.claims.sig with sig_len bytes of signature ('A' * 4/3). */
static char *token(const char *header, const char *claims, size_t sig_chars)
{
    static char buf[8192];
    char h[2048], c[4096];
    b64url(header, h);
    b64url(claims, c);
    int n = snprintf(buf, sizeof buf, "%s.%s.", h, c);
    memset(buf + n, 'A', sig_chars);
    buf[n + (int)sig_chars] = '\0';
    return buf;
}

static int parse(const char *t, const char **why)
{
    ao_jwt j;
    int rc = ao_jwt_parse(t, strlen(t), &j, why);
    if (rc == 0)
        ao_jwt_fini(&j);
    return rc;
}

static void test_jwt_accepted(void **state)
{
    const char *why;
    ao_jwt j;
    char *t =
        token("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}", "{\"sub\":\"a\"}", 342);
    assert_int_equal(ao_jwt_parse(t, strlen(t), &j, &why), 0);
    assert_int_equal(j.alg, AO_ALG_RS256);
    assert_string_equal(j.kid, "k1");
    assert_string_equal(json_string_value(json_object_get(j.claims, "sub")), "a");
    ao_jwt_fini(&j);
    t = token("{\"alg\":\"ES256\"}", "{}", 86); /* 64 bytes */
    assert_int_equal(ao_jwt_parse(t, strlen(t), &j, &why), 0);
    assert_int_equal(j.alg, AO_ALG_ES256);
    assert_null(j.kid);
    ao_jwt_fini(&j);
    assert_int_equal(parse(token("{\"alg\":\"ES384\",\"typ\":\"JWT\"}", "{}", 128), &why), 0);
    assert_int_equal(
        parse(token("{\"alg\":\"PS256\",\"typ\":\"application/at+jwt\"}", "{}", 342), &why), 0);
}

static void test_jwt_refused(void **state)
{
    const char *why;
    const char *headers[] = {
        "{\"alg\":\"none\"}",
        "{\"alg\":\"HS256\"}",
        "{\"alg\":\"RS512\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":256}",
        "{\"alg\":\"RS256\",\"crit\":[\"x\"]}",
        "{\"alg\":\"RS256\",\"typ\":\"JWE\"}",
        "{\"alg\":\"RS256\",\"enc\":\"A128GCM\"}",
        "{\"alg\":\"RS256\",\"kid\":7}",
        "{\"alg\":\"RS256\",\"kid\":\"\"}",
        "{\"alg\":\"RS256\",\"alg\":\"RS256\"}",
        "[\"alg\",\"RS256\"]",
        "not json",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        why = NULL;
        assert_int_equal(parse(token(headers[i], "{}", 342), &why), -1);
        assert_non_null(why);
    }
    char kid[400];
    snprintf(kid, sizeof kid, "{\"alg\":\"RS256\",\"kid\":\"%0300d\"}", 0);
    assert_int_equal(parse(token(kid, "{}", 342), &why), -1);
    /* claims: an object without duplicates */
    assert_int_equal(parse(token("{\"alg\":\"RS256\"}", "[1]", 342), &why), -1);
    assert_int_equal(parse(token("{\"alg\":\"RS256\"}", "{\"a\":1,\"a\":2}", 342), &why), -1);
    /* ECDSA signatures of the wrong size; an empty signature */
    assert_int_equal(parse(token("{\"alg\":\"ES256\"}", "{}", 87), &why), -1);
    assert_string_equal(why, "malformed signature");
    assert_int_equal(parse(token("{\"alg\":\"ES384\"}", "{}", 86), &why), -1);
    assert_int_equal(parse(token("{\"alg\":\"RS256\"}", "{}", 0), &why), -1);
    /* '=' padding, which JWS forbids (RFC 7515 §2): the signature, the claims */
    char padded[256];
    const char *es = token("{\"alg\":\"ES256\"}", "{}", 86);
    assert_int_equal(parse(es, &why), 0);
    snprintf(padded, sizeof padded, "%s==", es);
    assert_int_equal(parse(padded, &why), -1);
    const char *sig = strrchr(es, '.');
    snprintf(padded, sizeof padded, "%.*s=%s", (int)(sig - es), es, sig);
    assert_int_equal(parse(padded, &why), -1);
    /* shapes that are not a JWT at all */
    const char *junk[] = {"",
                          "we_0123456789abcdef0123456789abcdef",
                          "a.b",
                          "a.b.c.d",
                          "..",
                          "eyJ.eyJ.",
                          "Basic dXNlcjpwdw=="};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        assert_int_equal(parse(junk[i], &why), -1);
    char *big = malloc(AO_TOKEN_MAX + 2);
    memset(big, 'A', AO_TOKEN_MAX + 1);
    big[10] = big[20] = '.';
    big[AO_TOKEN_MAX + 1] = '\0';
    assert_int_equal(parse(big, &why), -1);
    free(big);
}

static json_t *js(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

static void test_claim_get(void **state)
{
    json_t *c = js("{\"https://we.example/roles\":[\"admin\"],\"realm_access\":{\"roles\":"
                   "[\"operator\"]},\"a\":{\"b\":{\"c\":\"deep\"}},\"s\":\"x\"}");
    assert_true(json_is_array(ao_claim_get(c, "https://we.example/roles")));
    assert_string_equal(json_string_value(json_array_get(ao_claim_get(c, "realm_access.roles"), 0)),
                        "operator");
    assert_string_equal(json_string_value(ao_claim_get(c, "a.b.c")), "deep");
    assert_null(ao_claim_get(c, "a.x.c"));
    assert_null(ao_claim_get(c, "s.t")); /* through a string */
    assert_null(ao_claim_get(c, "missing"));
    assert_null(ao_claim_get(c, ""));
    assert_null(ao_claim_get(c, "."));
    json_decref(c);
}

static ao_rules rules_with(const char *role_map, we_role dflt)
{
    char err[160];
    ao_rules r = {.issuer = strdup(ISS),
                  .audience = strdup("webencode"),
                  .role_claim = strdup("role"),
                  .username_claim = strdup("preferred_username"),
                  .default_role = dflt,
                  .leeway_s = 60};
    assert_int_equal(ao_role_map_parse(role_map, &r.role_map, &r.n_role_map, err, sizeof err), 0);
    return r;
}

static void test_roles(void **state)
{
    ao_rules r = rules_with("webencode-admins=admin, ops = operator", WE_ROLE_INVALID);
    json_t *v = js("[\"other\",\"ops\",\"viewer\"]");
    assert_int_equal(ao_role_of(&r, v), WE_ROLE_OPERATOR);
    json_decref(v);
    v = js("[\"ops\",\"webencode-admins\",3,null]");
    assert_int_equal(ao_role_of(&r, v), WE_ROLE_ADMIN);
    json_decref(v);
    v = js("\"viewer\"");
    assert_int_equal(ao_role_of(&r, v), WE_ROLE_VIEWER);
    json_decref(v);
    v = js("[\"superuser\",\"Admin\"]"); /* unknown values, case matters */
    assert_int_equal(ao_role_of(&r, v), WE_ROLE_INVALID);
    json_decref(v);
    v = js("{\"role\":\"admin\"}");
    assert_int_equal(ao_role_of(&r, v), WE_ROLE_INVALID);
    json_decref(v);
    ao_rules_fini(&r);
    /* the map wins over the role names: "admin" may be demoted */
    r = rules_with("{\"admin\": \"viewer\"}", WE_ROLE_INVALID);
    v = js("\"admin\"");
    assert_int_equal(ao_role_of(&r, v), WE_ROLE_VIEWER);
    json_decref(v);
    ao_rules_fini(&r);
}

static void test_role_map_parse(void **state)
{
    ao_role_rule *m;
    size_t n;
    char err[160];
    assert_int_equal(ao_role_map_parse("", &m, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ao_role_map_parse(" a=viewer ,, cn=x,ou=y=admin", &m, &n, err, sizeof err),
                     -1);
    assert_int_equal(ao_role_map_parse("cn=admins=admin,b = operator", &m, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].value, "cn=admins"); /* the last '=' splits */
    assert_int_equal(m[0].role, WE_ROLE_ADMIN);
    assert_string_equal(m[1].value, "b");
    ao_role_map_free(m, n);
    assert_int_equal(ao_role_map_parse("{\"cn=a,ou=b\":\"operator\"}", &m, &n, err, sizeof err), 0);
    assert_string_equal(m[0].value, "cn=a,ou=b"); /* JSON for values with commas */
    ao_role_map_free(m, n);
    const char *bad[] = {"a=root", "a", "=admin", "a=", "{\"a\":1}", "{\"a\":\"x\",\"a\":\"y\"}",
                         "[1]",    "{"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(ao_role_map_parse(bad[i], &m, &n, err, sizeof err), -1);
        assert_null(m);
        assert_true(strncmp(err, "role_map:", 9) == 0);
    }
}

/* Claims with the given extra members (JSON text without braces). */
static ao_verdict check_with(const ao_rules *r, const char *extra, int64_t now, ao_identity *id,
                             const char **why)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"iss\":\"" ISS "\",\"aud\":\"webencode\",\"sub\":\"u1\",\"role\":\"operator\","
             "\"exp\":%d%s%s}",
             NOW, extra[0] ? "," : "", extra);
    json_t *c = js(text);
    ao_verdict v = ao_claims_check(r, c, now, id, why);
    if (v == AO_OK) /* the identity borrows from the claims: copy what tests read */
        id->sub = id->jti = NULL;
    json_decref(c);
    return v;
}

static void test_times(void **state)
{
    ao_rules r = rules_with("", WE_ROLE_INVALID);
    ao_identity id;
    const char *why;
    assert_int_equal(check_with(&r, "", NOW + 59, &id, &why), AO_OK); /* leeway 60 */
    assert_int_equal(id.exp, NOW);
    assert_int_equal(check_with(&r, "", NOW + 60, &id, &why), AO_EXPIRED);
    assert_string_equal(why, "expired");
    assert_int_equal(check_with(&r, "\"nbf\":1800000100", NOW + 40, &id, &why), AO_OK);
    assert_int_equal(check_with(&r, "\"nbf\":1800000100", NOW + 39, &id, &why), AO_INVALID);
    assert_int_equal(check_with(&r, "\"iat\":1800000100", NOW + 39, &id, &why), AO_INVALID);
    assert_int_equal(check_with(&r, "\"iat\":1800000100", NOW + 40, &id, &why), AO_OK);
    r.leeway_s = 0;
    assert_int_equal(check_with(&r, "", NOW, &id, &why), AO_EXPIRED);
    assert_int_equal(check_with(&r, "", NOW - 1, &id, &why), AO_OK);
    ao_rules_fini(&r);
    r = rules_with("", WE_ROLE_INVALID);
    /* exp missing, not a number, negative, absurd; a real number is fine */
    const char *bad[] = {"{\"iss\":\"" ISS
                         "\",\"aud\":\"webencode\",\"sub\":\"u\",\"role\":\"admin\"}",
                         "\"exp\":\"soon\"", "\"nbf\":-5", "\"iat\":1e300"};
    json_t *c = js(bad[0]);
    assert_int_equal(ao_claims_check(&r, c, NOW, &id, &why), AO_INVALID);
    assert_string_equal(why, "no exp");
    json_decref(c);
    /* a duplicate "exp" would be refused by the parser; here a later one overrides */
    for (size_t i = 1; i < 4; i++)
        assert_int_equal(check_with(&r, bad[i], NOW - 100, &id, &why), AO_INVALID);
    c = js("{\"iss\":\"" ISS "\",\"aud\":\"webencode\",\"sub\":\"u\",\"role\":\"admin\","
           "\"exp\":1800000000.75}");
    assert_int_equal(ao_claims_check(&r, c, NOW - 100, &id, &why), AO_OK);
    json_decref(c);
    ao_rules_fini(&r);
}

static void test_identity(void **state)
{
    ao_rules r = rules_with("", WE_ROLE_INVALID);
    ao_identity id;
    const char *why;
    assert_int_equal(check_with(&r, "\"preferred_username\":\"olga\"", NOW - 100, &id, &why),
                     AO_OK);
    assert_string_equal(id.username, "oidc:olga");
    assert_int_equal(id.role, WE_ROLE_OPERATOR);
    assert_int_equal(check_with(&r, "", NOW - 100, &id, &why), AO_OK);
    assert_string_equal(id.username, "oidc:u1"); /* sub when the claim is absent */
    const char *unusable[] = {"\"preferred_username\":\" olga\"",
                              "\"preferred_username\":\"ol\\nga\"", "\"preferred_username\":\"\"",
                              "\"preferred_username\":7"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(check_with(&r, unusable[i], NOW - 100, &id, &why), AO_OK);
        assert_string_equal(id.username, "oidc:u1");
    }
    char long_name[300];
    snprintf(long_name, sizeof long_name, "\"preferred_username\":\"%0200d\"", 0);
    assert_int_equal(check_with(&r, long_name, NOW - 100, &id, &why), AO_OK);
    assert_string_equal(id.username, "oidc:u1");
    /* wrong iss, aud; no sub; no role */
    json_t *c = js("{\"iss\":\"" ISS "/\",\"aud\":\"webencode\",\"sub\":\"u\",\"role\":\"admin\","
                   "\"exp\":1800000000}");
    assert_int_equal(ao_claims_check(&r, c, NOW - 100, &id, &why), AO_INVALID);
    assert_string_equal(why, "wrong issuer");
    json_decref(c);
    assert_int_equal(check_with(&r, "\"aud\":[\"a\",\"webencode\"]", NOW - 100, &id, &why), AO_OK);
    assert_int_equal(check_with(&r, "\"aud\":[\"a\",\"b\"]", NOW - 100, &id, &why), AO_INVALID);
    assert_string_equal(why, "wrong audience");
    assert_int_equal(check_with(&r, "\"sub\":\"\"", NOW - 100, &id, &why), AO_INVALID);
    assert_int_equal(check_with(&r, "\"role\":\"root\"", NOW - 100, &id, &why), AO_INVALID);
    assert_string_equal(why, "no known role in the role claim");
    r.default_role = WE_ROLE_VIEWER;
    assert_int_equal(check_with(&r, "\"role\":\"root\"", NOW - 100, &id, &why), AO_OK);
    assert_int_equal(id.role, WE_ROLE_VIEWER);
    ao_rules_fini(&r);
}

static void test_uuid_and_time(void **state)
{
    char u[37], v[37], t[32];
    ao_user_uuid(ISS, "alice", u);
    /* Python: uuid.uuid5(uuid.NAMESPACE_URL, ISS + "#alice") */
    assert_string_equal(u, "ac526dd8-52f8-5fc5-b22d-b872c204c3ea");
    ao_user_uuid(ISS, "bob", v);
    assert_string_not_equal(u, v);
    ao_rfc3339(0, t);
    assert_string_equal(t, "1970-01-01T00:00:00Z");
    ao_rfc3339(1795908832, t);
    assert_string_equal(t, "2026-11-28T23:33:52Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_accepted),   cmocka_unit_test(test_jwt_refused),
        cmocka_unit_test(test_claim_get),      cmocka_unit_test(test_roles),
        cmocka_unit_test(test_role_map_parse), cmocka_unit_test(test_times),
        cmocka_unit_test(test_identity),       cmocka_unit_test(test_uuid_and_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
