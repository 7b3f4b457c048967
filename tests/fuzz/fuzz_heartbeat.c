/*
 * libFuzzer target for worker heartbeats (src/kernel/workers.c,
 * kn_heartbeat_parse): the bytes a worker — or anything else that can
 * publish on workers.heartbeat.<id> — sends. Any input must be refused with
 * a reason or give a heartbeat whose every field is within the bounds the
 * upsert relies on; never a crash or a leak. Input: "<subject id>\n<payload>"
 * (without a newline the subject id is "w1").
 *
 *   build: cmake -DWE_SANITIZE=ON with clang, target fuzz_heartbeat (links kernellib)
 *   ./build-asan/fuzz/fuzz_heartbeat -max_total_time=60 -dict=tests/fuzz/json.dict \
 *     tests/fuzz/corpus/heartbeat
 */
#include "we_log.h"
#include "workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_heartbeat: %s failed at line %d\n", #c, __LINE__);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_strings(json_t *a, size_t max_items)
{
    size_t i;
    json_t *v;
    CHECK(json_is_array(a) && json_array_size(a) <= max_items);
    json_array_foreach(a, i, v) CHECK(json_is_string(v));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        we_log_init("fuzz", WE_LOG_FATAL);
        quiet = true;
    }
    const char *nl = memchr(data, '\n', size);
    char subject[80] = "w1";
    const char *payload = (const char *)data;
    size_t len = size;
    if (nl && (size_t)(nl - (const char *)data) < sizeof subject) {
        memcpy(subject, data, (size_t)(nl - (const char *)data));
        subject[nl - (const char *)data] = '\0';
        payload = nl + 1;
        len = size - (size_t)(payload - (const char *)data);
    }
    json_t *root = NULL;
    kn_heartbeat hb;
    we_err err;
    if (kn_heartbeat_parse(payload, len, subject, &root, &hb, &err) != 0) {
        CHECK(root == NULL && err.msg[0]);
        return 0;
    }
    CHECK(json_is_object(root));
    CHECK(strcmp(hb.id, subject) == 0 && kn_worker_id_valid(hb.id));
    CHECK(strlen(hb.hostname) <= 255 && strlen(hb.version) <= 64);
    CHECK(hb.slots >= 1 && hb.slots <= 1024 && hb.running >= 0 && hb.running <= hb.slots);
    CHECK(hb.interval_ms >= 100 && hb.interval_ms <= 600000);
    CHECK(!strcmp(hb.state, "online") || !strcmp(hb.state, "offline"));
    check_strings(hb.capabilities, 32);
    check_strings(hb.encoders, 1024);
    json_decref(root);
    return 0;
}
