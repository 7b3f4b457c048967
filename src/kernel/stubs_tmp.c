/* Temporary: handlers not written yet answer 501 (removed as each lands). */
#include "api.h"
#include "orch.h"
#define STUB(fn)                                                                                   \
    __attribute__((weak)) enum MHD_Result fn(kn_req *r)                                            \
    {                                                                                              \
        return kn_reply_error(r, 501, "WE-SYS-009", "not implemented yet", NULL);                  \
    }
STUB(kn_api_jobs_create)
STUB(kn_api_jobs_list)
STUB(kn_api_jobs_get)
STUB(kn_api_jobs_delete)
STUB(kn_api_jobs_tasks)
STUB(kn_api_jobs_logs)
STUB(kn_api_jobs_outputs)
STUB(kn_api_jobs_cancel)
STUB(kn_api_jobs_retry)
STUB(kn_api_profiles_list)
STUB(kn_api_profiles_create)
STUB(kn_api_profiles_get)
STUB(kn_api_profiles_update)
STUB(kn_api_profiles_delete)
