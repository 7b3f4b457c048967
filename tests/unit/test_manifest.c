/*
 * Unit tests of plugin manifests (src/lib/we_manifest.c): a valid
 * plugin.toml, each kind of refused one with the line it names, the
 * configuration's order of precedence (stored > plugins.toml > environment >
 * default), its type checks, and secret masking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "we_manifest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const good = "id = \"storage-fs\"                 # equals the directory name\n"
                                "type = \"storage\"\n"
                                "version = \"0.1.0\"\n"
                                "api_version = 1\n"
                                "description = \"Files under a local or shared directory\"\n"
                                "\n"
                                "[capabilities]\n"
                                "local_paths = true\n"
                                "\n"
                                "[config_schema.root]\n"
                                "type = \"string\"\n"
                                "required = true\n"
                                "default = \"./var/storage\"\n"
                                "env = \"WE_TEST_STORAGE_ROOT\"\n"
                                "description = \"Directory that holds every key\"\n"
                                "secret = false\n"
                                "\n"
                                "[config_schema.max_mb]\n"
                                "type = \"integer\"\n"
                                "env = \"WE_TEST_MAX_MB\"\n"
                                "\n"
                                "[config_schema.fsync]\n"
                                "type = \"boolean\"\n"
                                "env = \"WE_TEST_FSYNC\"\n"
                                "default = false\n"
                                "\n"
                                "[config_schema.tags]\n"
                                "type = \"array\"\n"
                                "env = \"WE_TEST_TAGS\"\n"
                                "\n"
                                "[config_schema.password]\n"
                                "type = \"string\"\n"
                                "secret = true\n";

static we_manifest *load_good(void)
{
    we_manifest *m = NULL;
    we_err err = {""};
    int rc = we_manifest_parse("plugin.toml", good, strlen(good), "storage-fs", &m, &err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err.msg);
    return m;
}

static void test_valid(void **st)
{
    we_manifest *m = load_good();
    assert_string_equal(m->id, "storage-fs");
    assert_int_equal(m->type, WE_PT_STORAGE);
    assert_string_equal(m->version, "0.1.0");
    assert_int_equal(m->api_version, 1);
    assert_string_equal(m->executable, "storage-fs");
    assert_true(json_is_true(json_object_get(m->capabilities, "local_paths")));
    assert_int_equal(m->n_fields, 5);
    const we_manifest_field *f = we_manifest_field_find(m, "root");
    assert_non_null(f);
    assert_int_equal(f->type, WE_FT_STRING);
    assert_true(f->required);
    assert_false(f->secret);
    assert_string_equal(f->env, "WE_TEST_STORAGE_ROOT");
    assert_string_equal(json_string_value(f->def), "./var/storage");
    assert_true(we_manifest_field_find(m, "password")->secret);
    assert_null(we_manifest_field_find(m, "nope"));
    we_manifest_free(m);
    we_manifest_free(NULL);
}

static void test_minimal(void **st)
{
    const char *t = "id = \"a\"\ntype = \"encoder\"\nversion = \"1\"\napi_version = 1\n"
                    "executable = \"run-me\"\n";
    we_manifest *m = NULL;
    assert_int_equal(we_manifest_parse("p", t, strlen(t), NULL, &m, NULL), 0);
    assert_string_equal(m->executable, "run-me");
    assert_string_equal(m->description, "");
    assert_int_equal(json_object_size(m->capabilities), 0);
    assert_int_equal(m->n_fields, 0);
    we_manifest_free(m);
}

/* Replaces the line that starts with `from` in the good manifest. */
static char *with_line(const char *from, const char *to)
{
    const char *at = strstr(good, from);
    assert_non_null(at);
    const char *eol = strchr(at, '\n');
    size_t n = strlen(good) + strlen(to) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(at - good), good, to, eol);
    return s;
}

static void bad(const char *from, const char *to, const char *want)
{
    char *text = with_line(from, to);
    we_manifest *m = NULL;
    we_err err = {""};
    int rc = we_manifest_parse("plugin.toml", text, strlen(text), "storage-fs", &m, &err);
    if (rc != WE_EINVAL || !strstr(err.msg, want))
        fail_msg("for '%s': want '%s', got rc %d '%s'", to, want, rc, err.msg);
    assert_null(m);
    free(text);
}

static void test_refused(void **st)
{
    bad("id =", "id = \"other\"",
        "plugin.toml:1: id 'other' differs from its directory name 'storage-fs'");
    bad("id =", "id = \"Bad_Id\"", "plugin.toml:1: id 'Bad_Id' must match");
    bad("id =", "id = \"-x\"", "must match");
    bad("id =", "id = 5", "plugin.toml:1: 'id' must be a string");
    bad("id =", "# no id", "plugin.toml: missing key 'id'");
    bad("type =", "type = \"transcoder\"", "plugin.toml:2: type must be one of");
    bad("version =", "version = \"\"", "plugin.toml:3: version must not be empty");
    bad("api_version =", "api_version = \"1\"", "plugin.toml:4: api_version must be a positive");
    bad("api_version =", "api_version = 0", "api_version must be a positive");
    bad("api_version =", "api_version = 1.0", "plugin.toml:4: floats are not supported");
    bad("description =", "name = \"x\"", "plugin.toml:5: unknown key 'name'");
    bad("description =", "executable = \"../x\"", "plugin.toml:5: executable must be a plain file");
    bad("description =", "executable = \"\"", "executable must be a plain file");
    bad("description =", "capabilities = 1", "plugin.toml:7: 'capabilities' is already a value");
    bad("type = \"string\"", "type = \"float\"",
        "plugin.toml:11: 'config_schema.root.type' must be one of");
    bad("required = true", "required = \"yes\"",
        "plugin.toml:12: 'config_schema.root.required' must be true or false");
    bad("default = \"./var", "default = 5",
        "plugin.toml:13: 'config_schema.root.default' must be of type string");
    bad("env = \"WE_TEST_STORAGE_ROOT\"", "env = \"1BAD\"",
        "plugin.toml:14: 'config_schema.root.env' must be an environment");
    bad("secret = false", "hidden = false",
        "plugin.toml:16: unknown key 'config_schema.root.hidden'");
    bad("default = false", "default = \"no\"", "must be of type boolean");
    bad("[config_schema.tags]", "[config_schema]\nx = 1\n[config_schema.tags]",
        "'config_schema.x' must be a table");
    bad("type = \"array\"", "# no type", "missing key 'config_schema.tags.type'");
}

static void test_load_dir(void **st)
{
    char dir[] = "/tmp/we_manifest_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[300], path[400];
    snprintf(sub, sizeof sub, "%s/storage-fs", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(path, sizeof path, "%s/plugin.toml", sub);
    we_manifest *m = NULL;
    we_err err = {""};
    assert_int_equal(we_manifest_load(sub, &m, &err), WE_ENOENT);
    FILE *f = fopen(path, "w");
    fputs(good, f);
    fclose(f);
    assert_int_equal(we_manifest_load(sub, &m, &err), 0);
    we_manifest_free(m);
    char renamed[300];
    snprintf(renamed, sizeof renamed, "%s/other/", dir);
    assert_int_equal(rename(sub, renamed), 0);
    assert_int_equal(we_manifest_load(renamed, &m, &err), WE_EINVAL);
    assert_non_null(
        strstr(err.msg, "plugin.toml:1: id 'storage-fs' differs from its directory name 'other'"));
    snprintf(path, sizeof path, "%s/other/plugin.toml", dir);
    unlink(path);
    rmdir(renamed);
    rmdir(dir);
}

static json_t *resolve(we_manifest *m, const char *db, const char *file, we_err *err, int *rc)
{
    json_t *d = db ? json_loads(db, 0, NULL) : NULL, *f = file ? json_loads(file, 0, NULL) : NULL;
    json_t *out = NULL;
    *rc = we_manifest_resolve_config(m, d, f, &out, err);
    json_decref(d);
    json_decref(f);
    return out;
}

static void clear_env(void)
{
    unsetenv("WE_TEST_STORAGE_ROOT");
    unsetenv("WE_TEST_MAX_MB");
    unsetenv("WE_TEST_FSYNC");
    unsetenv("WE_TEST_TAGS");
}

static void test_precedence(void **st)
{
    we_manifest *m = load_good();
    we_err err = {""};
    int rc;
    clear_env();
    json_t *c = resolve(m, NULL, NULL, &err, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(json_string_value(json_object_get(c, "root")), "./var/storage");
    assert_true(json_is_false(json_object_get(c, "fsync")));
    assert_null(json_object_get(c, "max_mb")); /* no value anywhere: absent */
    json_decref(c);

    setenv("WE_TEST_STORAGE_ROOT", "/env", 1);
    c = resolve(m, NULL, NULL, &err, &rc);
    assert_string_equal(json_string_value(json_object_get(c, "root")), "/env");
    json_decref(c);

    c = resolve(m, NULL, "{\"root\":\"/file\"}", &err, &rc);
    assert_string_equal(json_string_value(json_object_get(c, "root")), "/file");
    json_decref(c);

    c = resolve(m, "{\"root\":\"/db\"}", "{\"root\":\"/file\"}", &err, &rc);
    assert_string_equal(json_string_value(json_object_get(c, "root")), "/db");
    json_decref(c);

    /* null means unset: the next source wins */
    c = resolve(m, "{\"root\":null}", "{\"root\":\"/file\"}", &err, &rc);
    assert_string_equal(json_string_value(json_object_get(c, "root")), "/file");
    json_decref(c);
    clear_env();
    we_manifest_free(m);
}

static void test_env_types(void **st)
{
    we_manifest *m = load_good();
    we_err err = {""};
    int rc;
    setenv("WE_TEST_MAX_MB", "-12", 1);
    setenv("WE_TEST_FSYNC", "Yes", 1);
    setenv("WE_TEST_TAGS", " a, b ,c", 1);
    json_t *c = resolve(m, NULL, NULL, &err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_integer_value(json_object_get(c, "max_mb")), -12);
    assert_true(json_is_true(json_object_get(c, "fsync")));
    json_t *tags = json_object_get(c, "tags");
    assert_int_equal(json_array_size(tags), 3);
    assert_string_equal(json_string_value(json_array_get(tags, 1)), "b");
    json_decref(c);

    setenv("WE_TEST_MAX_MB", "12x", 1);
    assert_null(resolve(m, NULL, NULL, &err, &rc));
    assert_int_equal(rc, WE_EINVAL);
    assert_string_equal(err.msg, "WE_TEST_MAX_MB (config field 'max_mb') is not a valid integer");
    setenv("WE_TEST_MAX_MB", "1", 1);
    setenv("WE_TEST_FSYNC", "maybe", 1);
    assert_null(resolve(m, NULL, NULL, &err, &rc));
    assert_non_null(strstr(err.msg, "WE_TEST_FSYNC (config field 'fsync') is not a valid boolean"));
    clear_env();
    we_manifest_free(m);
}

static void test_refused_config(void **st)
{
    we_manifest *m = load_good();
    we_err err = {""};
    int rc;
    clear_env();
    assert_null(resolve(m, "{\"rot\":\"/x\"}", NULL, &err, &rc));
    assert_int_equal(rc, WE_EINVAL);
    assert_string_equal(err.msg, "config: unknown config field 'rot' for plugin storage-fs");
    assert_null(resolve(m, NULL, "{\"max_mb\":\"10\"}", &err, &rc));
    assert_string_equal(err.msg, "plugins.toml: config field 'max_mb' must be of type integer");
    assert_null(resolve(m, "{\"fsync\":1}", NULL, &err, &rc));
    assert_non_null(strstr(err.msg, "'fsync' must be of type boolean"));
    assert_null(resolve(m, "{\"tags\":\"a\"}", NULL, &err, &rc));
    assert_non_null(strstr(err.msg, "'tags' must be of type array"));
    assert_null(resolve(m, "[1]", NULL, &err, &rc));
    assert_non_null(strstr(err.msg, "must be an object"));
    we_manifest_free(m);

    const char *t =
        "id = \"a\"\ntype = \"auth\"\nversion = \"1\"\napi_version = 1\n"
        "[config_schema.key]\ntype = \"string\"\nrequired = true\nenv = \"WE_TEST_KEY\"\n";
    assert_int_equal(we_manifest_parse("p", t, strlen(t), NULL, &m, NULL), 0);
    unsetenv("WE_TEST_KEY");
    assert_null(resolve(m, NULL, NULL, &err, &rc));
    assert_string_equal(err.msg, "config field 'key' is required (or set WE_TEST_KEY)");
    we_manifest_free(m);
}

static void test_mask(void **st)
{
    we_manifest *m = load_good();
    json_t *cfg = json_pack("{s:s, s:s}", "root", "/r", "password", "hunter2");
    json_t *masked = we_manifest_mask_secrets(m, cfg);
    assert_string_equal(json_string_value(json_object_get(masked, "password")), "********");
    assert_string_equal(json_string_value(json_object_get(masked, "root")), "/r");
    assert_string_equal(json_string_value(json_object_get(cfg, "password")), "hunter2");
    json_decref(masked);
    json_object_del(cfg, "password");
    masked = we_manifest_mask_secrets(m, cfg);
    assert_null(json_object_get(masked, "password")); /* unset stays unset */
    json_decref(masked);
    json_decref(cfg);
    assert_null(we_manifest_mask_secrets(m, NULL));
    we_manifest_free(m);
}

static void test_names(void **st)
{
    we_plugin_type t;
    assert_int_equal(we_plugin_type_parse("publisher", &t), 0);
    assert_int_equal(t, WE_PT_PUBLISHER);
    assert_int_equal(we_plugin_type_parse("x", &t), WE_EINVAL);
    assert_string_equal(we_plugin_type_name(WE_PT_LIVE), "live");
    assert_true(we_plugin_id_valid("a"));
    assert_true(we_plugin_id_valid("0-storage-fs"));
    assert_false(we_plugin_id_valid(""));
    assert_false(we_plugin_id_valid("a_b"));
    char longid[80];
    memset(longid, 'a', sizeof longid);
    longid[63] = '\0';
    assert_true(we_plugin_id_valid(longid));
    longid[63] = 'a';
    longid[64] = '\0';
    assert_false(we_plugin_id_valid(longid));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),          cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_refused),        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_precedence),     cmocka_unit_test(test_env_types),
        cmocka_unit_test(test_refused_config), cmocka_unit_test(test_mask),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
