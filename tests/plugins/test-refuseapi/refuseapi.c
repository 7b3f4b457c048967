/*
 * test-refuseapi: a plugin that speaks API version 2 answers the handshake
 * with error -32001 and exits, as the protocol says (§5).
 */
#include "../rawproto.h"

int main(void)
{
    raw_check_cookie("test-refuseapi");
    json_t *req = raw_read();
    if (req && strcmp(raw_method(req), "handshake") == 0)
        raw_error(req, -32001, "Incompatible API version: plugin speaks 2, host offers [1]");
    json_decref(req);
    return 1;
}
