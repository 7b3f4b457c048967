/*
 * GET /v1/events: Server-Sent Events relayed from ui.events.> (DESIGN §5).
 */
#ifndef KN_SSE_H
#define KN_SSE_H

#include "http.h"

/* Ends every open event stream (http.c calls it when the kernel stops, so
 * the graceful wait for requests in flight does not wait on them). */
void kn_sse_close_all(void);

#endif
