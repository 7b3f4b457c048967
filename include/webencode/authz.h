/*
 * WebEncode plugin SDK — roles and the authorization table of
 * auth.authorize, shared by the auth plugins (auth-basic, auth-oidc) so the
 * kernel's auth chain answers alike whichever plugin identified the caller.
 *
 * Roles are ordered viewer < operator < admin (the user_role enum of
 * migration 0001 is declared in that order). One table gives, for each
 * resource (the first path segment of the API route), the lowest role that
 * may read it and the lowest that may write it. Viewers read; operators
 * also write jobs, streams, restreams and files (uploads for jobs); admins
 * do everything, and alone may read users, tokens and audit. Action "admin"
 * needs admin whatever the resource. A resource not in the table is
 * admin-only: new routes are closed until someone opens them in
 * src/sdk/authz.c. An unknown role or action is denied.
 *
 * Pure functions, no state: safe on any thread.
 */
#ifndef WEBENCODE_AUTHZ_H
#define WEBENCODE_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum we_role {
    WE_ROLE_INVALID = -1,
    WE_ROLE_VIEWER = 0,
    WE_ROLE_OPERATOR = 1,
    WE_ROLE_ADMIN = 2,
} we_role;

/* "viewer", "operator" or "admin" (exactly; NULL allowed), else
 * WE_ROLE_INVALID. */
we_role we_role_parse(const char *s);
/* The role's name (a static string); "invalid" for anything else. */
const char *we_role_name(we_role r);

/* Whether role may do action ("read" | "write" | "admin") on resource
 * ("jobs", "jobs/123", "/v1/jobs/123": the first segment counts; NULL is
 * ""). reason (reason_len bytes, caller's) gets one sentence either way:
 * "unknown role", "unknown action…", "<role> may <action> <resource>" or
 * "<action> on <resource> needs the <role> role". */
bool we_authorize(const char *role, const char *action, const char *resource, char *reason,
                  size_t reason_len);

#ifdef __cplusplus
}
#endif

#endif
