/*
 * test-nohandshake: reads every request and answers none, until stdin
 * closes. The host must give up at its handshake deadline.
 */
#include "../rawproto.h"

int main(void)
{
    raw_check_cookie("test-nohandshake");
    json_t *req;
    while ((req = raw_read()) != NULL)
        json_decref(req);
    return 0;
}
