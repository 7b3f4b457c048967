/*
 * The authorization table of auth.authorize (include/webencode/authz.h):
 * for each resource the lowest role that may read it and the lowest that
 * may write it, and the one function that answers from it. Both auth
 * plugins call it, so their answers cannot drift apart.
 *
 * Pure: no state, no allocation; safe on any thread.
 */
#include "webencode/authz.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const role_names[] = {"viewer", "operator", "admin"};

we_role we_role_parse(const char *s)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, role_names[i]) == 0)
            return (we_role)i;
    return WE_ROLE_INVALID;
}

const char *we_role_name(we_role r)
{
    return r >= WE_ROLE_VIEWER && r <= WE_ROLE_ADMIN ? role_names[r] : "invalid";
}

typedef struct resource_rule {
    const char *name;
    we_role read, write;
} resource_rule;

static const resource_rule rules[] = {
    {"jobs", WE_ROLE_VIEWER, WE_ROLE_OPERATOR},
    {"streams", WE_ROLE_VIEWER, WE_ROLE_OPERATOR},
    {"restreams", WE_ROLE_VIEWER, WE_ROLE_OPERATOR},
    {"files", WE_ROLE_VIEWER, WE_ROLE_OPERATOR},
    {"profiles", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"workers", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"plugins", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"webhooks", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"errors", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"notifications", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"system", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"health", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"events", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"metrics", WE_ROLE_VIEWER, WE_ROLE_ADMIN},
    {"users", WE_ROLE_ADMIN, WE_ROLE_ADMIN},
    {"tokens", WE_ROLE_ADMIN, WE_ROLE_ADMIN},
    {"audit", WE_ROLE_ADMIN, WE_ROLE_ADMIN},
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
static we_role needed(const char *action, const resource_rule *rule)
{
    if (strcmp(action, "admin") == 0)
        return WE_ROLE_ADMIN;
    if (strcmp(action, "read") == 0)
        return rule ? rule->read : WE_ROLE_ADMIN;
    if (strcmp(action, "write") == 0)
        return rule ? rule->write : WE_ROLE_ADMIN;
    return WE_ROLE_INVALID;
}

bool we_authorize(const char *role, const char *action, const char *resource, char *reason,
                  size_t reason_len)
{
    char name[64];
    we_role r = we_role_parse(role);
    if (r == WE_ROLE_INVALID)
        return answer(false, reason, reason_len, "unknown role");
    if (!action)
        return answer(false, reason, reason_len, "unknown action");
    resource_name(resource, name, sizeof name);
    const resource_rule *rule = find_rule(name);
    we_role need = needed(action, rule);
    if (need == WE_ROLE_INVALID)
        return answer(false, reason, reason_len, "unknown action (read, write or admin)");
    if (r >= need)
        return answer(true, reason, reason_len, "%s may %s %s", we_role_name(r), action,
                      rule ? rule->name : "this resource");
    return answer(false, reason, reason_len, "%s on %s needs the %s role", action,
                  rule ? rule->name : "an unlisted resource", we_role_name(need));
}
