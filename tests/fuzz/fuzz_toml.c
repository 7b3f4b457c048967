/*
 * libFuzzer target for the TOML-subset reader and manifest validation
 * (src/lib/we_toml.c, src/lib/we_manifest.c): any bytes must give a document
 * or an error naming a line, never a crash or a leak. A document that is a
 * valid manifest also goes through configuration resolution (with its own
 * `config` table, if any, as the stored configuration) and secret masking.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc/lib -Iinclude \
 *     tests/fuzz/fuzz_toml.c src/lib/we_toml.c src/lib/we_manifest.c src/lib/we_err.c \
 *     src/lib/we_log.c src/lib/we_buf.c src/lib/we_util.c $(pkg-config --cflags --libs jansson) \
 *     -o fuzz_toml
 *   ./fuzz_toml -max_total_time=60 tests/fuzz/corpus/toml
 */
#include "we_manifest.h"
#include "we_toml.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void resolve(const we_manifest *m, json_t *db)
{
    json_t *cfg = NULL;
    if (we_manifest_resolve_config(m, db, NULL, &cfg, NULL) == 0) {
        json_t *masked = we_manifest_mask_secrets(m, cfg);
        json_decref(masked);
        json_decref(cfg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    we_toml *t = NULL;
    we_err err;
    if (we_toml_parse("fuzz.toml", (const char *)data, size, &t, &err) == 0) {
        we_toml_line(t, "config_schema.x.type");
        we_toml_free(t);
    }
    we_manifest *m = NULL;
    if (we_manifest_parse("fuzz.toml", (const char *)data, size, NULL, &m, &err) == 0) {
        resolve(m, NULL);
        we_manifest_free(m);
    }
    /* a manifest followed by a [config] table: the table is the stored config */
    const uint8_t *split = memmem(data, size, "\n[config]\n", 10);
    we_toml *cfg = NULL;
    if (split && we_toml_parse("fuzz.toml", (const char *)split + 10,
                               size - (size_t)(split + 10 - data), &cfg, &err) == 0) {
        if (we_manifest_parse("fuzz.toml", (const char *)data, (size_t)(split - data), NULL, &m,
                              &err) == 0) {
            resolve(m, cfg->root);
            we_manifest_free(m);
        }
        we_toml_free(cfg);
    }
    return 0;
}
