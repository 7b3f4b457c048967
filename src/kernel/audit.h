/*
 * The audit trail (DESIGN §9): every state-changing API request and system
 * event, with who, what, on which resource, the result and the client IP.
 */
#ifndef KN_AUDIT_H
#define KN_AUDIT_H

#include "http.h"

/* Records a finished request (http.c calls it for every routed request
 * whose method is not GET/HEAD/OPTIONS, and for refused ones). */
void kn_audit_request(kn_req *r);

#endif
