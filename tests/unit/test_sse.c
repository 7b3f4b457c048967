/*
 * Unit tests of the event stream's pure parts: query filters (parsing,
 * rejection with the parameter named, matching by resource, data and type
 * prefix), the SSE framing of an envelope, and the per-job throttle of
 * job.progress events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "events.h"
#include "progress.h"
#include "sse.h"

#include <stdlib.h>
#include <string.h>

#define JOB "0b7e8f1c-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
#define JOB2 "1b7e8f1c-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
#define STREAM "2b7e8f1c-3a4d-4e5f-8a9b-0c1d2e3f4a5b"

static int parse(const char *job, const char *stream, const char *worker, const char *types,
                 kn_sse_filter *f, const char **bad)
{
    char why[200];
    *bad = NULL;
    return kn_sse_filter_parse(job, stream, worker, types, f, bad, why, sizeof why);
}

static void test_filter_parse_ok(void **state)
{
    kn_sse_filter f;
    const char *bad;
    assert_int_equal(0, parse(NULL, NULL, NULL, NULL, &f, &bad));
    assert_int_equal(0, f.ntypes);
    assert_int_equal(0, parse("0B7E8F1C-3A4D-4E5F-8A9B-0C1D2E3F4A5B", STREAM, "w-1_a",
                              "job.*, worker.lost,*", &f, &bad));
    assert_string_equal(JOB, f.job_id); /* lower-cased */
    assert_string_equal("w-1_a", f.worker_id);
    assert_int_equal(3, f.ntypes);
    assert_string_equal("job.*", kn_sse_filter_type(&f, 0));
    assert_string_equal("worker.lost", kn_sse_filter_type(&f, 1));
    assert_string_equal("*", kn_sse_filter_type(&f, 2));
}

static void test_filter_parse_bad(void **state)
{
    kn_sse_filter f;
    const char *bad;
    assert_int_equal(-1, parse("not-a-uuid", NULL, NULL, NULL, &f, &bad));
    assert_string_equal("job_id", bad);
    assert_int_equal(-1, parse("", NULL, NULL, NULL, &f, &bad));
    assert_string_equal("job_id", bad);
    assert_int_equal(-1, parse(NULL, JOB "0", NULL, NULL, &f, &bad));
    assert_string_equal("stream_id", bad);
    assert_int_equal(-1, parse(NULL, NULL, "bad.id", NULL, &f, &bad));
    assert_string_equal("worker_id", bad);
    char long_types[400];
    memset(long_types, 'a', sizeof long_types - 1);
    long_types[sizeof long_types - 1] = '\0';
    for (int i = 50; i < 350; i += 50)
        long_types[i] = ','; /* 7 entries, 393 characters */
    const char *bad_types[] = { "", "job.*,", ",job.created", "job.*x", "Job.created",
                                "job created", "job.\n", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q",
                                long_types };
    for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++) {
        assert_int_equal(-1, parse(NULL, NULL, NULL, bad_types[i], &f, &bad));
        assert_string_equal("types", bad);
    }
}

static json_t *envelope(const char *type, const char *rtype, const char *rid, json_t *data)
{
    return kn_event_new(type, rtype, rid, NULL, data);
}

static bool passes(const kn_sse_filter *f, json_t *ev)
{
    kn_sse_meta m;
    kn_sse_meta_of(ev, &m);
    bool ok = kn_sse_filter_match(f, &m);
    json_decref(ev);
    return ok;
}

static void test_filter_match(void **state)
{
    kn_sse_filter f;
    const char *bad;
    assert_int_equal(0, parse(JOB, NULL, NULL, NULL, &f, &bad));
    assert_true(passes(&f, envelope("job.progress", "job", JOB, NULL)));
    assert_false(passes(&f, envelope("job.progress", "job", JOB2, NULL)));
    assert_false(passes(&f, envelope("worker.lost", "worker", "w1", NULL)));
    /* an event about something else that names the job in its data */
    assert_true(
        passes(&f, envelope("task.failed", "task", "t1", json_pack("{s:s}", "job_id", JOB))));
    /* a worker id that happens to equal the job id is not the job */
    assert_false(passes(&f, envelope("worker.lost", "worker", JOB, NULL)));

    assert_int_equal(0, parse(NULL, NULL, NULL, "job.*,worker.lost", &f, &bad));
    assert_true(passes(&f, envelope("job.completed", "job", JOB, NULL)));
    assert_true(passes(&f, envelope("worker.lost", "worker", "w1", NULL)));
    assert_false(passes(&f, envelope("worker.joined", "worker", "w1", NULL)));
    assert_false(passes(&f, envelope("jobs.x", "job", JOB, NULL))); /* "job." is the prefix */

    assert_int_equal(0, parse(NULL, STREAM, NULL, "stream.telemetry", &f, &bad));
    assert_true(passes(&f, envelope("stream.telemetry", "stream", STREAM, NULL)));
    assert_false(passes(&f, envelope("stream.ended", "stream", STREAM, NULL)));
    assert_false(passes(&f, envelope("stream.telemetry", "stream", JOB, NULL)));

    assert_int_equal(0, parse(JOB, NULL, NULL, "job.completed", &f, &bad)); /* both must hold */
    assert_false(passes(&f, envelope("job.progress", "job", JOB, NULL)));
    assert_true(passes(&f, envelope("job.completed", "job", JOB, NULL)));
}

static void test_format(void **state)
{
    json_t *ev = envelope("job.progress", "job", JOB,
                          json_pack("{s:s, s:f}", "note", "line1\nline2", "progress", 12.5));
    size_t len = 0;
    char *s = kn_sse_format(ev, NULL, 0, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    const char *id = json_string_value(json_object_get(ev, "id"));
    char head[128];
    snprintf(head, sizeof head, "id: %s\nevent: job.progress\ndata: {", id);
    assert_memory_equal(head, s, strlen(head));
    /* exactly three lines, then the blank line: the payload's newline is escaped */
    const char *data = strstr(s, "\ndata: ") + 7;
    assert_null(memchr(data, '\n', len - (size_t)(data - s) - 2));
    assert_string_equal("\n\n", s + len - 2);
    json_t *back = json_loadb(data, len - (size_t)(data - s) - 2, 0, NULL);
    assert_true(json_equal(back, ev));
    json_decref(back);
    free(s);
    /* an id or type that could break the framing is refused */
    json_object_set_new(ev, "type", json_string("job.x\ndata: forged"));
    assert_null(kn_sse_format(ev, NULL, 0, &len));
    json_object_set_new(ev, "type", json_string("job.progress"));
    json_object_del(ev, "id");
    assert_null(kn_sse_format(ev, NULL, 0, &len));
    json_decref(ev);
}

/* The publisher's JSON is relayed byte for byte (5.42 stays 5.42), unless
 * it spans lines. */
static void test_format_verbatim(void **state)
{
    const char *raw = "{\"id\":\"e1\",\"type\":\"job.progress\",\"data\":{\"progress\":5.42}}";
    json_t *ev = json_loads(raw, 0, NULL);
    size_t len;
    char *s = kn_sse_format(ev, raw, strlen(raw), &len);
    char want[200];
    snprintf(want, sizeof want, "id: e1\nevent: job.progress\ndata: %s\n\n", raw);
    assert_string_equal(want, s);
    free(s);
    const char *pretty = "{\n \"id\": \"e1\",\r\n \"type\": \"job.progress\"}";
    s = kn_sse_format(ev, pretty, strlen(pretty), &len);
    assert_non_null(s);
    assert_null(strstr(s, "\r"));
    assert_string_equal("\n\n", s + len - 2);
    const char *data = strstr(s, "\ndata: ") + 7;
    assert_null(memchr(data, '\n', len - (size_t)(data - s) - 2));
    free(s);
    json_decref(ev);
}

static void test_progress_throttle(void **state)
{
    assert_true(kn_progress_due(JOB, 1000));
    assert_false(kn_progress_due(JOB, 1000 + KN_PROGRESS_EVENT_MS - 1));
    assert_true(kn_progress_due(JOB2, 1001)); /* per job */
    assert_true(kn_progress_due(JOB, 1000 + KN_PROGRESS_EVENT_MS));
    assert_false(kn_progress_due(JOB, 1000 + KN_PROGRESS_EVENT_MS + 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_parse_ok),
        cmocka_unit_test(test_filter_parse_bad),
        cmocka_unit_test(test_filter_match),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_verbatim),
        cmocka_unit_test(test_progress_throttle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
