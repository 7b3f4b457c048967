/*
 * Authentication and authorization of API requests (DESIGN §8).
 */
#include "http.h"

#include <string.h>

static const char *const role_names[] = { "anonymous", "viewer", "operator", "admin" };

const char *kn_role_name(kn_role role)
{
    return role >= KN_ANON && role <= KN_ADMIN ? role_names[role] : "unknown";
}

int kn_role_parse(const char *s)
{
    for (int i = KN_VIEWER; i <= KN_ADMIN; i++)
        if (s && strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}
