/*
 * test-garbage: a correct handshake and health, then protocol violations on
 * request: test.garbage prints a line that is not JSON, test.oversize a line
 * longer than 16 MiB, test.unknown_id a response to an id never sent,
 * test.ok answers normally.
 */
#include "../rawproto.h"

static void oversize(void)
{
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 16 * 16 + 8; i++)
        fwrite(chunk, 1, sizeof chunk, stdout);
    printf("\n");
    fflush(stdout);
}

static void misbehave(json_t *req)
{
    const char *m = raw_method(req);
    if (strcmp(m, "test.garbage") == 0) {
        printf("this is not JSON\n");
        fflush(stdout);
    } else if (strcmp(m, "test.oversize") == 0) {
        oversize();
    } else if (strcmp(m, "test.unknown_id") == 0) {
        raw_send(json_pack("{s:s, s:i, s:{}}", "jsonrpc", "2.0", "id", 123456, "result"));
    } else if (strcmp(m, "test.ok") == 0) {
        raw_result(req, json_pack("{s:b}", "ok", 1));
    } else {
        raw_error(req, -32601, "method not found");
    }
}

int main(void)
{
    raw_check_cookie("test-garbage");
    json_t *req;
    while ((req = raw_read()) != NULL) {
        if (strcmp(raw_method(req), "handshake") == 0)
            raw_result(req, raw_handshake("test-garbage", "publisher", 1));
        else if (!raw_standard(req))
            misbehave(req);
        json_decref(req);
    }
    return 0;
}
