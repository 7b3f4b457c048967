/*
 * libFuzzer target for request bodies: the nesting pre-check
 * (src/kernel/http.c, kn_json_depth), jansson as kn_body_object calls it,
 * the POST /v1/jobs body (src/kernel/api_jobs_spec.c, kn_job_spec_parse)
 * and profile configs (src/lib/we_profile.c, we_profile_validate and, for a
 * valid one, the FFmpeg arguments built from it). Any bytes must end in a
 * parsed document or a refusal, never a crash or a leak, and:
 *   - kn_json_depth never under-reports the nesting jansson accepts (it is
 *     what stops a deep body before the parser recurses into it);
 *   - every refusal message the kernel would send can be sent: its error
 *     envelope (kn_error_body) exists — a NULL one means no reply at all.
 *
 *   build: cmake -DWE_SANITIZE=ON with clang, target fuzz_json (links kernellib)
 *   ./build-asan/fuzz/fuzz_json -max_total_time=60 -dict=tests/fuzz/json.dict \
 *     tests/fuzz/corpus/json
 */
#include "api_jobs.h"
#include "http.h"
#include "we_log.h"
#include "we_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_json: %s failed at line %d\n", #c, __LINE__);                    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static size_t depth_of(json_t *j)
{
    size_t max = 0, d;
    const char *k;
    json_t *v;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v)
        {
            if ((d = depth_of(v)) > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_array(j)) {
        json_array_foreach(j, d, v)
        {
            size_t e = depth_of(v);
            if (e > max)
                max = e;
        }
        return max + 1;
    }
    return 0;
}

/* The refusal the kernel would send must exist. */
static void sendable(const char *code, const char *msg, const char *field)
{
    json_t *details = field && field[0] ? json_pack("{s:s}", "field", field) : NULL;
    json_t *body = kn_error_body(code, msg, details, "fuzz");
    if (!body)
        fprintf(stderr, "fuzz_json: no envelope for message \"%s\"\n", msg);
    CHECK(body != NULL);
    json_decref(body);
}

static void profile(json_t *config)
{
    we_err err;
    if (we_profile_validate(config, &err) != 0) {
        char msg[sizeof err.msg + 8];
        snprintf(msg, sizeof msg, "config.%s", err.msg); /* as api_profiles.c words it */
        sendable("WE-JOB-020", msg, NULL);
        return;
    }
    we_profile_capability(config);
    if (we_profile_is_ladder(config))
        return;
    we_profile_container(config);
    we_profile_faststart(config);
    we_profile_gop_frames(config, 29.97);
    static const we_source_info srcs[] = {
        {25.0, 1920, 1080, 60.0, true},
        {30000.0 / 1001, 0, 0, 0.5, false},
        {240.0, 7680, 4320, 36000.0, true},
        {1.0, 2, 2, 1.0, false},
    };
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        json_t *args = NULL;
        const char *ext = NULL;
        if (we_profile_video_args(config, &srcs[i], &args, &ext, &err) == 0) {
            CHECK(json_is_array(args) && ext != NULL);
            json_decref(args);
        }
    }
    json_t *args = NULL;
    const char *ext = NULL;
    if (we_profile_audio_args(config, &args, &ext, &err) == 0) {
        CHECK(json_is_array(args) && ext != NULL);
        json_decref(args);
    }
}

static void job_spec(json_t *doc)
{
    kn_job_spec s;
    char field[128];
    we_err err;
    if (kn_job_spec_parse(json_incref(doc), &s, field, &err) != 0) {
        CHECK(strlen(field) < sizeof field);
        sendable(KN_JOB_INVALID, err.msg, field);
    } else {
        CHECK(s.source_url && s.source_url[0] && json_is_array(s.profiles));
        CHECK(s.priority >= -100 && s.priority <= 100 && s.capability && s.capability[0]);
    }
    kn_job_spec_fini(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        we_log_init("fuzz", WE_LOG_FATAL);
        quiet = true;
    }
    size_t depth = kn_json_depth((const char *)data, size);
    json_error_t je;
    json_t *doc =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!doc) {
        char msg[300]; /* as kn_body_object words it */
        snprintf(msg, sizeof msg, "malformed JSON at line %d, column %d: %s", je.line, je.column,
                 je.text);
        sendable("WE-SYS-004", msg, NULL);
        return 0;
    }
    size_t real = depth_of(doc);
    if (depth < real)
        fprintf(stderr, "fuzz_json: kn_json_depth says %zu, jansson parsed %zu\n", depth, real);
    CHECK(depth >= real);
    if (json_is_object(doc)) {
        job_spec(doc);
        profile(doc);
        json_t *config = json_object_get(doc, "config"); /* a POST /v1/profiles body */
        if (config)
            profile(config);
    }
    json_decref(doc);
    return 0;
}
