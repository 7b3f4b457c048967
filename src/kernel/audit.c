/*
 * Audit trail: not implemented yet (issue 6).
 */
#include "audit.h"

void kn_audit_request(kn_req *r)
{
    (void)r;
}
