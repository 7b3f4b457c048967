/*
 * The worker's task messages (src/worker/task.c): dispatch envelopes that
 * must be Term'ed versus params that make a failed event, every task type's
 * params shape, the event and progress JSON with their subjects and message
 * ids (docs/pipeline.md §2–3), and jobs.cancel parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "task.h"

#include <stdlib.h>
#include <string.h>

static int parse(const char *text, wk_task *t, we_err *err)
{
    return wk_task_parse(text, strlen(text), t, err);
}

static void expect_garbage(const char *text, const char *in_msg)
{
    wk_task t;
    we_err err = {""};
    assert_int_equal(parse(text, &t, &err), WE_EINVAL);
    if (!strstr(err.msg, in_msg))
        fail_msg("[%s]: expected [%s] in [%s]", text, in_msg, err.msg);
    assert_null(t.params);
}

static void test_envelope_good(void **state)
{
    wk_task t;
    we_err err = {""};
    assert_int_equal(parse("{\"task_id\":\"6f1c-a\",\"job_id\":\"J_1\",\"attempt\":2,"
                           "\"type\":\"video\",\"lease_s\":90,\"params\":{\"x\":1},\"extra\":0}",
                           &t, &err),
                     0);
    assert_string_equal(t.task_id, "6f1c-a");
    assert_string_equal(t.job_id, "J_1");
    assert_int_equal(t.attempt, 2);
    assert_int_equal(t.lease_s, 90);
    assert_int_equal(t.type, WK_TASK_VIDEO);
    assert_string_equal(t.type_name, "video");
    assert_int_equal(json_integer_value(json_object_get(t.params, "x")), 1);
    wk_task_fini(&t);
    assert_null(t.params);
    /* lease_s is optional; an unknown type parses (and fails the check) */
    assert_int_equal(parse("{\"task_id\":\"t\",\"job_id\":\"j\",\"attempt\":1,"
                           "\"type\":\"thumbnail\",\"params\":{}}",
                           &t, &err),
                     0);
    assert_int_equal(t.lease_s, WK_TASK_LEASE_S);
    assert_int_equal(t.type, WK_TASK_UNKNOWN);
    assert_int_equal(wk_task_check(&t, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "\"thumbnail\" is not one this worker runs"));
    wk_task_fini(&t);
}

static void test_envelope_garbage(void **state)
{
    expect_garbage("", "not JSON");
    expect_garbage("not json!", "not JSON");
    expect_garbage("[1,2]", "not a JSON object");
    expect_garbage("{\"task_id\":\"t\"}", "job_id must be a string");
    expect_garbage("{\"task_id\":\"t\",\"job_id\":\"j\",\"attempt\":\"1\",\"type\":\"probe\","
                   "\"params\":{}}",
                   "attempt");
    expect_garbage("{\"task_id\":\"t\",\"job_id\":\"j\",\"attempt\":0,\"type\":\"probe\","
                   "\"params\":{}}",
                   "attempt must be an integer from 1");
    expect_garbage("{\"task_id\":\"t\",\"job_id\":\"j\",\"attempt\":1,\"type\":\"probe\","
                   "\"params\":[]}",
                   "params must be an object");
    expect_garbage("{\"task_id\":\"t\",\"job_id\":\"j\",\"attempt\":1,\"type\":7,\"params\":{}}",
                   "type");
    expect_garbage("{\"task_id\":\"t\",\"job_id\":\"j\",\"attempt\":1,\"type\":\"probe\","
                   "\"params\":{},\"lease_s\":0}",
                   "lease_s");
    /* ids become subject tokens: a dot, a wildcard or a space would split them */
    expect_garbage("{\"task_id\":\"t\",\"job_id\":\"j.>\",\"attempt\":1,\"type\":\"probe\","
                   "\"params\":{}}",
                   "job_id \"j.>\" is not");
    expect_garbage("{\"task_id\":\"a b\",\"job_id\":\"j\",\"attempt\":1,\"type\":\"probe\","
                   "\"params\":{}}",
                   "task_id");
    expect_garbage("{\"task_id\":\"t\",\"task_id\":\"u\",\"job_id\":\"j\",\"attempt\":1,"
                   "\"type\":\"probe\",\"params\":{}}",
                   "duplicate");
}

/* params of type given as JSON: 0 when they fit, else the error's text. */
static int check(const char *type, const char *params, we_err *err)
{
    wk_task t;
    char text[1024];
    snprintf(text, sizeof text,
             "{\"task_id\":\"t\",\"job_id\":\"j\",\"attempt\":1,\"type\":\"%s\",\"params\":%s}",
             type, params);
    assert_int_equal(parse(text, &t, err), 0);
    int rc = wk_task_check(&t, err);
    wk_task_fini(&t);
    return rc;
}

static void expect_params(const char *type, const char *params, const char *in_msg)
{
    we_err err = {""};
    int rc = check(type, params, &err);
    if (!in_msg && rc != 0)
        fail_msg("%s %s: unexpected error %s", type, params, err.msg);
    if (in_msg && (rc != WE_EINVAL || !strstr(err.msg, in_msg)))
        fail_msg("%s %s: expected [%s] in [%s]", type, params, in_msg, err.msg);
}

static void test_params(void **state)
{
    expect_params("probe", "{\"input\":\"fs://in/x.mp4\"}", NULL);
    expect_params("probe", "{}", "params.input must be a non-empty string");
    expect_params("probe", "{\"input\":\"\"}", "params.input");
    expect_params("video",
                  "{\"input\":\"fs://a\",\"output_key\":\"jobs/J/p/seg_0000.mp4\","
                  "\"input_args\":[\"-ss\",\"0\"],\"args\":[\"-an\"],\"duration_s\":30.0}",
                  NULL);
    expect_params("audio",
                  "{\"input\":\"fs://a\",\"output_key\":\"k\",\"args\":[],\"input_args\":null,"
                  "\"duration_s\":null}",
                  NULL);
    expect_params("video", "{\"input\":\"fs://a\",\"args\":[]}", "params.output_key");
    expect_params("video", "{\"input\":\"fs://a\",\"output_key\":\"k\"}", "params.args");
    expect_params("video", "{\"input\":\"fs://a\",\"output_key\":\"k\",\"args\":[\"-an\",3]}",
                  "an array of strings");
    expect_params("video", "{\"input\":\"a\",\"output_key\":\"k\",\"args\":[],\"duration_s\":-1}",
                  "a number >= 0 or null");
    expect_params("stitch",
                  "{\"segment_keys\":[\"a\",\"b\"],\"audio_key\":null,\"output_key\":\"o\","
                  "\"faststart\":true}",
                  NULL);
    expect_params("stitch", "{\"segment_keys\":[\"a\"],\"output_key\":\"o\"}", NULL);
    expect_params("stitch", "{\"segment_keys\":[],\"output_key\":\"o\"}",
                  "a non-empty array of strings");
    expect_params("stitch", "{\"segment_keys\":[\"a\"],\"output_key\":\"o\",\"audio_key\":1}",
                  "params.audio_key");
    expect_params("stitch", "{\"segment_keys\":[\"a\"],\"output_key\":\"o\",\"faststart\":1}",
                  "a boolean");
}

/* package: a ladder's renditions to HLS (the kernel's maybe_package shape) */
static void test_params_package(void **state)
{
    expect_params(
        "package",
        "{\"renditions\":[{\"name\":\"720p-h264\",\"key\":\"jobs/J/L.720p-h264/output.mp4\","
        "\"bandwidth\":900000},{\"name\":\"480p-h264\",\"key\":\"k2\"}],"
        "\"output_prefix\":\"jobs/J/L/\",\"hls_time\":6,\"segment_type\":\"mpegts\","
        "\"audio\":true}",
        NULL);
    expect_params("package",
                  "{\"renditions\":[{\"name\":\"a\",\"key\":\"k\"}],"
                  "\"output_prefix\":\"p/\",\"hls_time\":null,\"audio\":null}",
                  NULL);
    expect_params("package", "{\"output_prefix\":\"p/\"}", "params.renditions must be 1 to 16");
    expect_params("package", "{\"renditions\":[],\"output_prefix\":\"p/\"}", "params.renditions");
    expect_params("package", "{\"renditions\":[{\"name\":\"a\"}],\"output_prefix\":\"p/\"}",
                  "params.renditions");
    expect_params("package",
                  "{\"renditions\":[{\"name\":\"a\",\"key\":\"\"}],"
                  "\"output_prefix\":\"p/\"}",
                  "params.renditions");
    expect_params("package", "{\"renditions\":[\"k\"],\"output_prefix\":\"p/\"}",
                  "params.renditions");
    expect_params("package", "{\"renditions\":[{\"name\":\"a\",\"key\":\"k\"}]}",
                  "params.output_prefix");
    expect_params("package",
                  "{\"renditions\":[{\"name\":\"a\",\"key\":\"k\"}],"
                  "\"output_prefix\":\"p/\",\"hls_time\":-6}",
                  "params.hls_time");
    expect_params("package",
                  "{\"renditions\":[{\"name\":\"a\",\"key\":\"k\"}],"
                  "\"output_prefix\":\"p/\",\"audio\":\"yes\"}",
                  "params.audio must be a boolean");
}

static wk_task sample(void)
{
    wk_task t;
    assert_int_equal(parse("{\"task_id\":\"t-1\",\"job_id\":\"j-9\",\"attempt\":3,"
                           "\"type\":\"stitch\",\"params\":{}}",
                           &t, NULL),
                     0);
    return t;
}

static void test_events(void **state)
{
    wk_task t = sample();
    char buf[256];
    wk_task_subject(&t, "events", buf, sizeof buf);
    assert_string_equal(buf, "jobs.events.j-9");
    wk_task_subject(&t, "progress", buf, sizeof buf);
    assert_string_equal(buf, "jobs.progress.j-9");
    wk_task_msg_id(&t, "completed", buf, sizeof buf);
    assert_string_equal(buf, "t-1.3.completed");

    char *text = wk_event_json(&t, "w1", "started", 1795896000000LL, NULL, NULL);
    assert_string_equal(text, "{\"task_id\":\"t-1\",\"job_id\":\"j-9\",\"attempt\":3,"
                              "\"worker_id\":\"w1\",\"event\":\"started\","
                              "\"ts\":\"2026-11-28T20:00:00.000Z\"}");
    free(text);
    json_t *result = json_pack("{s:s, s:i}", "output_key", "k", "size_bytes", 5);
    text = wk_event_json(&t, "w1", "completed", 1795896000000LL, result, NULL);
    json_t *o = json_loads(text, 0, NULL);
    assert_true(json_equal(json_object_get(o, "result"), result));
    assert_null(json_object_get(o, "error"));
    json_decref(o);
    json_decref(result);
    free(text);
    wk_task_error e = {"WE-JOB-010", "moov atom not found", false};
    text = wk_event_json(&t, "w1", "failed", 1795896000000LL, NULL, &e);
    assert_non_null(strstr(text, "\"event\":\"failed\""));
    assert_non_null(strstr(text, "\"error\":{\"code\":\"WE-JOB-010\","
                                 "\"message\":\"moov atom not found\",\"retryable\":false}"));
    free(text);
    wk_task_fini(&t);
}

static void test_progress(void **state)
{
    wk_task t = sample();
    wk_progress p = {42.04999, 12.5, 2.0 / 3};
    char *text = wk_progress_json(&t, "w1", &p);
    json_t *o = json_loads(text, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "task_id")), "t-1");
    assert_string_equal(json_string_value(json_object_get(o, "job_id")), "j-9");
    assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 3);
    assert_string_equal(json_string_value(json_object_get(o, "worker_id")), "w1");
    assert_float_equal(json_real_value(json_object_get(o, "percent")), 42.05, 1e-9);
    assert_float_equal(json_real_value(json_object_get(o, "encoded_s")), 12.5, 1e-9);
    assert_float_equal(json_real_value(json_object_get(o, "speed")), 0.667, 1e-9);
    assert_int_equal(json_object_size(o), 7);
    json_decref(o);
    free(text);
    wk_task_fini(&t);
}

static void test_cancel(void **state)
{
    char id[WK_ID_MAX + 1];
    we_err err = {""};
    assert_int_equal(wk_cancel_parse("{\"job_id\":\"j-9\"}", 16, id, &err), 0);
    assert_string_equal(id, "j-9");
    assert_int_equal(wk_cancel_parse("garbage", 7, id, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "not JSON"));
    assert_int_equal(wk_cancel_parse("{\"job_id\":5}", 12, id, &err), WE_EINVAL);
    assert_int_equal(wk_cancel_parse("{\"job_id\":\"a.*\"}", 16, id, &err), WE_EINVAL);
    assert_non_null(strstr(err.msg, "cancel message: job_id"));
    assert_int_equal(wk_cancel_parse(NULL, 0, id, &err), WE_EINVAL);
}

static void expect_fixed(const char *in, const char *want)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", in);
    wk_utf8_fix(buf);
    assert_string_equal(buf, want);
}

/* Error messages are cut to fit buffers; the event must stay valid JSON. */
static void test_utf8(void **state)
{
    expect_fixed("plain", "plain");
    expect_fixed("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xac",
                 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xac");
    expect_fixed("cut \xe2\x82", "cut ??"); /* a character split by the cut */
    expect_fixed("\xc3", "?");
    expect_fixed("\xff\xfe x", "?? x");
    expect_fixed("\xc0\x80", "??");           /* overlong NUL */
    expect_fixed("\xed\xa0\x80", "???");      /* a surrogate */
    expect_fixed("\xf4\x90\x80\x80", "????"); /* above U+10FFFF */
    wk_task t = sample();
    wk_task_error e = {"WE-JOB-011", "ffmpeg: caf\xc3", true};
    char *text = wk_event_json(&t, "w1", "failed", 0, NULL, &e);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"message\":\"ffmpeg: caf?\""));
    free(text);
    wk_task_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_good), cmocka_unit_test(test_envelope_garbage),
        cmocka_unit_test(test_params),        cmocka_unit_test(test_events),
        cmocka_unit_test(test_progress),      cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_utf8),          cmocka_unit_test(test_params_package),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
