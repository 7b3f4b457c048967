/*
 * Dispatch messages in, events and progress out (docs/pipeline.md §2–3).
 *
 * Two levels of "bad": a message without a usable envelope (task_id, job_id,
 * attempt, type, params) names no task, so nobody could be told about it —
 * the runner Terms it. A message with a good envelope but params that do
 * not fit its type is the kernel's bug on a real task — the runner reports
 * it as a failed event (WE-JOB-012, not retryable) so the job fails at once
 * instead of waiting for a lease. Each type's params are a row of the field
 * table below. Ids become NATS subject tokens and message-id parts, so they
 * are held to [A-Za-z0-9_-]{1,64} (wk_id_valid).
 *
 * Threads: no state; jansson objects live only inside a call or in the
 * caller's wk_task.
 */
#include "task.h"
#include "we_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- params shapes ------------------------------------------------------------ */

typedef enum field_kind { F_STR, F_STRS, F_STRS1, F_NUM, F_BOOL, F_RENDS } field_kind;

typedef struct field_spec {
    const char *name;
    field_kind kind; /* F_STRS1: a non-empty array of strings; F_RENDS: 1 to 16
                        objects each with a "name" and a "key" string */
    bool required;   /* optional fields may also be null */
} field_spec;

static const field_spec probe_fields[] = {{"input", F_STR, true}, {NULL, F_STR, false}};
static const field_spec transcode_fields[] = {
    {"input", F_STR, true},        {"output_key", F_STR, true},  {"args", F_STRS, true},
    {"input_args", F_STRS, false}, {"duration_s", F_NUM, false}, {NULL, F_STR, false},
};
static const field_spec stitch_fields[] = {
    {"segment_keys", F_STRS1, true}, {"audio_key", F_STR, false}, {"output_key", F_STR, true},
    {"faststart", F_BOOL, false},    {NULL, F_STR, false},
};
static const field_spec package_fields[] = {
    {"renditions", F_RENDS, true},  {"output_prefix", F_STR, true}, {"hls_time", F_NUM, false},
    {"segment_type", F_STR, false}, {"audio", F_BOOL, false},       {NULL, F_STR, false},
};

static const struct {
    const char *name;
    wk_task_type type;
    const field_spec *fields;
} types[] = {
    {"probe", WK_TASK_PROBE, probe_fields},       {"video", WK_TASK_VIDEO, transcode_fields},
    {"audio", WK_TASK_AUDIO, transcode_fields},   {"stitch", WK_TASK_STITCH, stitch_fields},
    {"package", WK_TASK_PACKAGE, package_fields},
};
#define N_TYPES (sizeof types / sizeof types[0])

static bool good_string(json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0 &&
           strlen(json_string_value(v)) == json_string_length(v);
}

static bool good_strings(json_t *v, bool nonempty)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v) || (nonempty && json_array_size(v) == 0))
        return false;
    json_array_foreach(v, i, s) if (!good_string(s)) return false;
    return true;
}

static bool good_renditions(json_t *v)
{
    size_t i;
    json_t *r;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 16)
        return false;
    json_array_foreach(v, i, r)
    {
        if (!json_is_object(r) || !good_string(json_object_get(r, "name")) ||
            !good_string(json_object_get(r, "key")))
            return false;
    }
    return true;
}

static bool field_ok(const field_spec *f, json_t *v)
{
    if (!v || json_is_null(v))
        return !f->required;
    switch (f->kind) {
    case F_STR:
        return good_string(v);
    case F_STRS:
    case F_STRS1:
        return good_strings(v, f->kind == F_STRS1);
    case F_NUM:
        return json_is_number(v) && json_number_value(v) >= 0;
    case F_BOOL:
        return json_is_boolean(v);
    case F_RENDS:
        return good_renditions(v);
    }
    return false;
}

static const char *kind_text(field_kind k)
{
    static const char *const text[] = {"a non-empty string",
                                       "an array of strings",
                                       "a non-empty array of strings",
                                       "a number >= 0",
                                       "a boolean",
                                       "1 to 16 objects with a \"name\" and a \"key\" string"};
    return text[k];
}

int wk_task_check(const wk_task *t, we_err *err)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        if (types[i].type != t->type)
            continue;
        for (const field_spec *f = types[i].fields; f->name; f++)
            if (!field_ok(f, json_object_get(t->params, f->name)))
                return we_err_set(err, WE_EINVAL, "%s task: params.%s must be %s%s", t->type_name,
                                  f->name, kind_text(f->kind), f->required ? "" : " or null");
        return 0;
    }
    return we_err_set(err, WE_EINVAL, "task type \"%s\" is not one this worker runs", t->type_name);
}

/* ---- UTF-8 -------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (n > 1 && (s[1] < lo || s[1] > hi))
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

void wk_utf8_fix(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        size_t n = utf8_seq(p);
        if (n == 0)
            *p++ = '?';
        else
            p += n;
    }
}

/* ---- the envelope ---------------------------------------------------------------- */

static int copy_id(const char *what, const char *field, const char *v, char *out, we_err *err)
{
    if (!wk_id_valid(v))
        return we_err_set(err, WE_EINVAL, "%s: %s \"%.80s\" is not 1 to 64 of [A-Za-z0-9_-]", what,
                          field, v);
    snprintf(out, WK_ID_MAX + 1, "%s", v);
    return 0;
}

static void set_type(wk_task *t, const char *name)
{
    snprintf(t->type_name, sizeof t->type_name, "%s", name);
    wk_utf8_fix(t->type_name); /* the cut may split a character */
    t->type = WK_TASK_UNKNOWN;
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(types[i].name, name) == 0)
            t->type = types[i].type;
}

static int need_string(json_t *root, const char *name, const char **out, we_err *err)
{
    *out = json_string_value(json_object_get(root, name));
    if (!*out)
        return we_err_set(err, WE_EINVAL, "dispatch message: %s must be a string", name);
    return 0;
}

/* An integer field in [min, max]; def when absent and def >= min. */
static int need_int(json_t *root, const char *name, json_int_t min, json_int_t max, json_int_t def,
                    int *out, we_err *err)
{
    json_t *v = json_object_get(root, name);
    json_int_t n = v ? json_integer_value(v) : def;
    if ((v && !json_is_integer(v)) || n < min || n > max)
        return we_err_set(err, WE_EINVAL,
                          "dispatch message: %s must be an integer from %lld to %lld", name,
                          (long long)min, (long long)max);
    *out = (int)n;
    return 0;
}

static int unpack(json_t *root, wk_task *t, we_err *err)
{
    const char *task_id = NULL, *job_id = NULL, *type = NULL;
    json_t *params = json_object_get(root, "params");
    if (!json_is_object(root))
        return we_err_set(err, WE_EINVAL, "dispatch message: not a JSON object");
    int rc = need_string(root, "task_id", &task_id, err);
    if (rc == 0)
        rc = copy_id("dispatch message", "task_id", task_id, t->task_id, err);
    if (rc == 0 && (rc = need_string(root, "job_id", &job_id, err)) == 0)
        rc = copy_id("dispatch message", "job_id", job_id, t->job_id, err);
    if (rc == 0)
        rc = need_int(root, "attempt", 1, 1000000, 0, &t->attempt, err);
    if (rc == 0)
        rc = need_int(root, "lease_s", 1, 86400, WK_TASK_LEASE_S, &t->lease_s, err);
    if (rc == 0)
        rc = need_string(root, "type", &type, err);
    if (rc == 0 && !json_is_object(params))
        rc = we_err_set(err, WE_EINVAL, "dispatch message: params must be an object");
    if (rc != 0)
        return rc;
    set_type(t, type);
    t->params = json_incref(params);
    return 0;
}

int wk_task_parse(const char *data, size_t len, wk_task *t, we_err *err)
{
    json_error_t jerr;
    memset(t, 0, sizeof *t);
    json_t *root = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return we_err_set(err, WE_EINVAL, "dispatch message is not JSON: %s", jerr.text);
    int rc = unpack(root, t, err);
    json_decref(root);
    return rc;
}

void wk_task_fini(wk_task *t)
{
    json_decref(t->params);
    t->params = NULL;
}

/* ---- what the worker says about a task --------------------------------------------- */

void wk_task_subject(const wk_task *t, const char *kind, char *buf, size_t n)
{
    snprintf(buf, n, "jobs.%s.%s", kind, t->job_id);
}

void wk_task_msg_id(const wk_task *t, const char *event, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%d.%s", t->task_id, t->attempt, event);
}

static json_t *error_json(const wk_task_error *e)
{
    wk_task_error safe = *e; /* messages are cut to fit: never invalid JSON text */
    wk_utf8_fix(safe.code);
    wk_utf8_fix(safe.message);
    return json_pack("{s:s, s:s, s:b}", "code", safe.code, "message", safe.message, "retryable",
                     safe.retryable);
}

char *wk_event_json(const wk_task *t, const char *worker_id, const char *event, int64_t epoch_ms,
                    json_t *result, const wk_task_error *e)
{
    char ts[40];
    we_time_rfc3339(ts, sizeof ts, epoch_ms);
    json_t *o =
        json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "task_id", t->task_id, "job_id", t->job_id,
                  "attempt", t->attempt, "worker_id", worker_id, "event", event, "ts", ts);
    if (o && result)
        json_object_set(o, "result", result);
    if (o && e)
        json_object_set_new(o, "error", error_json(e));
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(o);
    return text;
}

/* n rounded to 3 decimals: progress is for people and dashboards */
static double round3(double n)
{
    return (double)(int64_t)(n * 1000 + (n < 0 ? -0.5 : 0.5)) / 1000;
}

char *wk_progress_json(const wk_task *t, const char *worker_id, const wk_progress *p)
{
    json_t *o =
        json_pack("{s:s, s:s, s:i, s:s, s:f, s:f, s:f}", "task_id", t->task_id, "job_id", t->job_id,
                  "attempt", t->attempt, "worker_id", worker_id, "percent", round3(p->percent),
                  "encoded_s", round3(p->encoded_s), "speed", round3(p->speed));
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(o);
    return text;
}

int wk_cancel_parse(const char *data, size_t len, char job_id[WK_ID_MAX + 1], we_err *err)
{
    json_error_t jerr;
    const char *id = NULL;
    json_t *root = json_loadb(data ? data : "", len, 0, &jerr);
    if (!root)
        return we_err_set(err, WE_EINVAL, "cancel message is not JSON: %s", jerr.text);
    int rc = 0;
    if (json_unpack_ex(root, &jerr, 0, "{s:s}", "job_id", &id) != 0)
        rc = we_err_set(err, WE_EINVAL, "cancel message: %s", jerr.text);
    else
        rc = copy_id("cancel message", "job_id", id, job_id, err);
    json_decref(root);
    return rc;
}
