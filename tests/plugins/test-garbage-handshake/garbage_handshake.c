/*
 * test-garbage-handshake: answers the handshake with a line that is not
 * JSON, then waits for stdin to close.
 */
#include "../rawproto.h"

int main(void)
{
    raw_check_cookie("test-garbage-handshake");
    json_t *req;
    while ((req = raw_read()) != NULL) {
        printf("Hello! I am not a JSON-RPC message.\n");
        fflush(stdout);
        json_decref(req);
    }
    return 0;
}
