/*
 * Roles and the authorization table of auth-oidc: the same table and
 * semantics as auth-basic's (plugins/auth-basic/policy.c), so the kernel's
 * auth chain answers alike whichever plugin identified the caller. Plugins
 * share no code but the SDK, hence the copy; keep the two in step.
 *
 * Roles are ordered viewer < operator < admin. For each resource (the first
 * path segment of the API route) the lowest role that may read it and the
 * lowest that may write it; action "admin" needs admin; a resource not in
 * the table is admin-only; an unknown role or action is denied.
 */
#include "ao.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const role_names[] = {"viewer", "operator", "admin"};

ao_role ao_role_parse(const char *s)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, role_names[i]) == 0)
            return (ao_role)i;
    return AO_ROLE_INVALID;
}

const char *ao_role_name(ao_role r)
{
    return r >= AO_ROLE_VIEWER && r <= AO_ROLE_ADMIN ? role_names[r] : "invalid";
}

typedef struct resource_rule {
    const char *name;
    ao_role read, write;
} resource_rule;

static const resource_rule rules[] = {
    {"jobs", AO_ROLE_VIEWER, AO_ROLE_OPERATOR},
    {"streams", AO_ROLE_VIEWER, AO_ROLE_OPERATOR},
    {"restreams", AO_ROLE_VIEWER, AO_ROLE_OPERATOR},
    {"files", AO_ROLE_VIEWER, AO_ROLE_OPERATOR},
    {"profiles", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"workers", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"plugins", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"webhooks", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"errors", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"notifications", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"system", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"health", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"events", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"metrics", AO_ROLE_VIEWER, AO_ROLE_ADMIN},
    {"users", AO_ROLE_ADMIN, AO_ROLE_ADMIN},
    {"tokens", AO_ROLE_ADMIN, AO_ROLE_ADMIN},
    {"audit", AO_ROLE_ADMIN, AO_ROLE_ADMIN},
};

/* "jobs", "jobs/1", "/jobs/1", "/v1/jobs/1" → "jobs" (into out). */
static void resource_name(const char *resource, char *out, size_t out_len)
{
    const char *s = resource ? resource : "";
    while (*s == '/')
        s++;
    if (strncmp(s, "v1/", 3) == 0)
        s += 3;
    size_t n = strcspn(s, "/?");
    snprintf(out, out_len, "%.*s", (int)(n < out_len ? n : out_len - 1), s);
}

static const resource_rule *find_rule(const char *name)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (strcmp(rules[i].name, name) == 0)
            return &rules[i];
    return NULL;
}

static bool answer(bool allowed, char *reason, size_t reason_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool answer(bool allowed, char *reason, size_t reason_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, reason_len, fmt, ap);
    va_end(ap);
    return allowed;
}

/* The lowest role that may do action on the resource, or INVALID. */
static ao_role needed(const char *action, const resource_rule *rule)
{
    if (strcmp(action, "admin") == 0)
        return AO_ROLE_ADMIN;
    if (strcmp(action, "read") == 0)
        return rule ? rule->read : AO_ROLE_ADMIN;
    if (strcmp(action, "write") == 0)
        return rule ? rule->write : AO_ROLE_ADMIN;
    return AO_ROLE_INVALID;
}

bool ao_authorize(const char *role, const char *action, const char *resource, char *reason,
                  size_t reason_len)
{
    char name[64];
    ao_role r = ao_role_parse(role);
    if (r == AO_ROLE_INVALID)
        return answer(false, reason, reason_len, "unknown role");
    if (!action)
        return answer(false, reason, reason_len, "unknown action");
    resource_name(resource, name, sizeof name);
    const resource_rule *rule = find_rule(name);
    ao_role need = needed(action, rule);
    if (need == AO_ROLE_INVALID)
        return answer(false, reason, reason_len, "unknown action (read, write or admin)");
    if (r >= need)
        return answer(true, reason, reason_len, "%s may %s %s", ao_role_name(r), action,
                      rule ? rule->name : "this resource");
    return answer(false, reason, reason_len, "%s on %s needs the %s role", action,
                  rule ? rule->name : "an unlisted resource", ao_role_name(need));
}
