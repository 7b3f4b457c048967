/* Temporary: handlers not written yet answer 501 (removed as each lands). */
#include "api.h"
#include "orch.h"
#define STUB(fn)                                                                                   \
    __attribute__((weak)) enum MHD_Result fn(kn_req *r)                                            \
    {                                                                                              \
        return kn_reply_error(r, 501, "WE-SYS-009", "not implemented yet", NULL);                  \
    }
