/*
 * Server-Sent Events: not implemented yet (issue 6).
 */
#include "sse.h"

void kn_sse_close_all(void)
{
}
