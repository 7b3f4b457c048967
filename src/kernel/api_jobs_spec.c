/*
 * The body of POST /v1/jobs, checked field by field through a table of small
 * validators before anything touches the database or the network. Unknown
 * fields are refused (a typo such as "priorty" must not be silently
 * ignored); each refusal names its field. Whether the profiles exist and
 * whether the source may be read are decided later (api_jobs.c,
 * api_jobs_source.c). Runs on the request's thread; the spec owns its body.
 */
#include "api_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_URL 2048
#define MAX_PROFILES 16
#define MAX_WEBHOOKS 10
#define MAX_TARGETS 16
#define MAX_JSON_BYTES 16384

typedef int (*field_fn)(kn_job_spec *s, json_t *v, we_err *err);

typedef struct spec_field {
    const char *name;
    bool required;
    field_fn check;
} spec_field;

/* No control characters, no spaces: a URL is one token. */
static bool url_chars_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int check_source(kn_job_spec *s, json_t *v, we_err *err)
{
    const char *u = json_string_value(v);
    if (!u || !u[0])
        return we_err_set(err, WE_EINVAL, "source_url: expected a non-empty string");
    if (strlen(u) > MAX_URL || !url_chars_ok(u))
        return we_err_set(err, WE_EINVAL, "source_url: at most %d characters, no spaces or "
                                          "control characters", MAX_URL);
    s->source_url = u;
    return 0;
}

/* Syntax only; whether each exists is a database question. */
static int check_profiles(kn_job_spec *s, json_t *v, we_err *err)
{
    size_t n = json_array_size(v), i, k;
    if (!json_is_array(v) || n < 1 || n > MAX_PROFILES)
        return we_err_set(err, WE_EINVAL, "profiles: expected an array of 1 to %d profile ids",
                          MAX_PROFILES);
    for (i = 0; i < n; i++) {
        const char *p = json_string_value(json_array_get(v, i));
        if (!p || !p[0] || strlen(p) > 64)
            return we_err_set(err, WE_EINVAL, "profiles[%zu]: expected a profile id", i);
        for (k = 0; k < i; k++)
            if (strcmp(p, json_string_value(json_array_get(v, k))) == 0)
                return we_err_set(err, WE_EINVAL, "profiles: \"%s\" is listed twice", p);
    }
    s->profiles = v;
    return 0;
}

static int check_priority(kn_job_spec *s, json_t *v, we_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < -100 || json_integer_value(v) > 100)
        return we_err_set(err, WE_EINVAL, "priority: expected an integer from -100 to 100");
    s->priority = json_integer_value(v);
    return 0;
}

static size_t json_bytes(json_t *v)
{
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = d ? strlen(d) : 0;
    free(d);
    return n;
}

static int check_metadata(kn_job_spec *s, json_t *v, we_err *err)
{
    if (!json_is_object(v))
        return we_err_set(err, WE_EINVAL, "metadata: expected an object");
    if (json_bytes(v) > MAX_JSON_BYTES)
        return we_err_set(err, WE_EINVAL, "metadata: larger than %d bytes serialized",
                          MAX_JSON_BYTES);
    s->metadata = v;
    return 0;
}

static int check_targets(kn_job_spec *s, json_t *v, we_err *err)
{
    size_t i;
    json_t *t;
    if (!json_is_array(v) || json_array_size(v) > MAX_TARGETS)
        return we_err_set(err, WE_EINVAL, "publish_targets: expected an array of at most %d "
                                          "objects", MAX_TARGETS);
    json_array_foreach(v, i, t) {
        if (!json_is_object(t))
            return we_err_set(err, WE_EINVAL, "publish_targets[%zu]: expected an object", i);
    }
    if (json_bytes(v) > MAX_JSON_BYTES)
        return we_err_set(err, WE_EINVAL, "publish_targets: larger than %d bytes serialized",
                          MAX_JSON_BYTES);
    s->publish_targets = v;
    return 0;
}

/* http(s)://host...: delivery re-checks the address (DNS changes). */
static bool webhook_ok(const char *u)
{
    size_t skip = strncmp(u, "https://", 8) == 0 ? 8 : strncmp(u, "http://", 7) == 0 ? 7 : 0;
    return skip && strlen(u) <= MAX_URL && url_chars_ok(u) && u[skip] && u[skip] != '/' &&
           u[skip] != ':' && u[skip] != '?' && u[skip] != '#';
}

static int check_webhooks(kn_job_spec *s, json_t *v, we_err *err)
{
    size_t i;
    json_t *u;
    if (!json_is_array(v) || json_array_size(v) > MAX_WEBHOOKS)
        return we_err_set(err, WE_EINVAL, "webhook_urls: expected an array of at most %d URLs",
                          MAX_WEBHOOKS);
    json_array_foreach(v, i, u) {
        if (!json_is_string(u) || !webhook_ok(json_string_value(u)))
            return we_err_set(err, WE_EINVAL, "webhook_urls[%zu]: expected an http:// or "
                                              "https:// URL", i);
    }
    s->webhook_urls = v;
    return 0;
}

static int check_capability(kn_job_spec *s, json_t *v, we_err *err)
{
    const char *c = json_string_value(v);
    size_t n = c ? strlen(c) : 0;
    if (n < 1 || n > 64 || strspn(c, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_-") != n)
        return we_err_set(err, WE_EINVAL, "capability: expected 1 to 64 of [A-Za-z0-9_-]");
    s->capability = c;
    return 0;
}

static const spec_field fields[] = {
    { "source_url", true, check_source },
    { "profiles", true, check_profiles },
    { "priority", false, check_priority },
    { "metadata", false, check_metadata },
    { "publish_targets", false, check_targets },
    { "webhook_urls", false, check_webhooks },
    { "capability", false, check_capability },
    { NULL, false, NULL },
};

static bool known(const char *name)
{
    for (const spec_field *f = fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return true;
    return false;
}

/* Lists every unknown member in field[] (truncated to fit). */
static int check_unknown(json_t *doc, char field[128], we_err *err)
{
    const char *k;
    json_t *v;
    size_t len = 0;
    field[0] = '\0';
    json_object_foreach(doc, k, v) {
        if (known(k))
            continue;
        int n = snprintf(field + len, 128 - len, "%s%s", len ? ", " : "", k);
        len = n < 0 || (size_t)n >= 128 - len ? 127 : len + (size_t)n;
    }
    if (!field[0])
        return 0;
    return we_err_set(err, WE_EINVAL, "unknown field(s): %s", field);
}

int kn_job_spec_parse(json_t *doc, kn_job_spec *s, char field[128], we_err *err)
{
    memset(s, 0, sizeof *s);
    s->doc = doc;
    s->capability = "cpu";
    if (check_unknown(doc, field, err) != 0)
        return -1;
    for (const spec_field *f = fields; f->name; f++) {
        json_t *v = json_object_get(doc, f->name);
        snprintf(field, 128, "%s", f->name);
        if (!v && f->required) {
            we_err_set(err, WE_EINVAL, "%s: required", f->name);
            return -1;
        }
        if (v && f->check(s, v, err) != 0)
            return -1;
    }
    field[0] = '\0';
    return 0;
}

void kn_job_spec_fini(kn_job_spec *s)
{
    json_decref(s->doc);
    free(s->source_canon);
    memset(s, 0, sizeof *s);
}
