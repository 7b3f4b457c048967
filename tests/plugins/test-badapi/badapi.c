/*
 * test-badapi: answers the handshake with api_version 99, a version no host
 * offers, then behaves. The host must refuse it with "Incompatible API
 * version" and not restart it.
 */
#include "../rawproto.h"

int main(void)
{
    raw_check_cookie("test-badapi");
    json_t *req;
    while ((req = raw_read()) != NULL) {
        if (strcmp(raw_method(req), "handshake") == 0)
            raw_result(req, raw_handshake("test-badapi", "storage", 99));
        else if (!raw_standard(req))
            raw_error(req, -32601, "method not found");
        json_decref(req);
    }
    return 0;
}
