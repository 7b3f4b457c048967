/*
 * Roles, the authorization table and the input rules of auth-basic.
 *
 * Roles are ordered viewer < operator < admin (the user_role enum of
 * migration 0001 is declared in that order). auth.authorize answers from one
 * table: for each resource (the first path segment of the API route), the
 * lowest role that may read it and the lowest that may write it. Viewers
 * read; operators also write jobs, streams, restreams and files (uploads
 * for jobs); admins do everything, and alone may read users and audit.
 * Action "admin" needs admin whatever the resource. A resource not in the
 * table is admin-only: new routes are closed until someone opens them here.
 */
#include "ab.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const role_names[] = { "viewer", "operator", "admin" };

ab_role ab_role_parse(const char *s)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, role_names[i]) == 0)
            return (ab_role)i;
    return AB_ROLE_INVALID;
}

const char *ab_role_name(ab_role r)
{
    return r >= AB_ROLE_VIEWER && r <= AB_ROLE_ADMIN ? role_names[r] : "invalid";
}

typedef struct resource_rule {
    const char *name;
    ab_role read, write;
} resource_rule;

static const resource_rule rules[] = {
    { "jobs", AB_ROLE_VIEWER, AB_ROLE_OPERATOR },
    { "streams", AB_ROLE_VIEWER, AB_ROLE_OPERATOR },
    { "restreams", AB_ROLE_VIEWER, AB_ROLE_OPERATOR },
    { "files", AB_ROLE_VIEWER, AB_ROLE_OPERATOR },
    { "profiles", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "workers", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "plugins", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "webhooks", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "errors", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "notifications", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "system", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "health", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "events", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "metrics", AB_ROLE_VIEWER, AB_ROLE_ADMIN },
    { "users", AB_ROLE_ADMIN, AB_ROLE_ADMIN },
    { "tokens", AB_ROLE_ADMIN, AB_ROLE_ADMIN },
    { "audit", AB_ROLE_ADMIN, AB_ROLE_ADMIN },
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
static ab_role needed(const char *action, const resource_rule *rule)
{
    if (strcmp(action, "admin") == 0)
        return AB_ROLE_ADMIN;
    if (strcmp(action, "read") == 0)
        return rule ? rule->read : AB_ROLE_ADMIN;
    if (strcmp(action, "write") == 0)
        return rule ? rule->write : AB_ROLE_ADMIN;
    return AB_ROLE_INVALID;
}

bool ab_authorize(const char *role, const char *action, const char *resource, char *reason,
                  size_t reason_len)
{
    char name[64];
    ab_role r = ab_role_parse(role);
    if (r == AB_ROLE_INVALID)
        return answer(false, reason, reason_len, "unknown role");
    if (!action)
        return answer(false, reason, reason_len, "unknown action");
    resource_name(resource, name, sizeof name);
    const resource_rule *rule = find_rule(name);
    ab_role need = needed(action, rule);
    if (need == AB_ROLE_INVALID)
        return answer(false, reason, reason_len, "unknown action (read, write or admin)");
    if (r >= need)
        return answer(true, reason, reason_len, "%s may %s %s", ab_role_name(r), action,
                      rule ? rule->name : "this resource");
    return answer(false, reason, reason_len, "%s on %s needs the %s role", action,
                  rule ? rule->name : "an unlisted resource", ab_role_name(need));
}

static bool refuse(char *why, size_t why_len, const char *msg)
{
    snprintf(why, why_len, "%s", msg);
    return false;
}

/* ASCII only, whatever the locale. */
static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool ab_username_valid(const char *s, size_t len, char *why, size_t why_len)
{
    if (len < 3 || len > 64)
        return refuse(why, why_len, "must be 3 to 64 characters");
    for (size_t i = 0; i < len; i++)
        if (!alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '@' && s[i] != '-')
            return refuse(why, why_len, "may contain only letters, digits and . _ @ -");
    return true;
}

/* Length in characters (UTF-8 code points), so "ééééééééééé" is 11, not 22. */
bool ab_password_valid(const char *s, size_t len, char *why, size_t why_len)
{
    size_t chars = 0;
    if (len > 1024)
        return refuse(why, why_len, "must be at most 1024 bytes");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0')
            return refuse(why, why_len, "must not contain NUL");
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    }
    if (chars < 12)
        return refuse(why, why_len, "must be at least 12 characters");
    return true;
}

bool ab_uuid_valid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = alnum(s[i]) && isxdigit((unsigned char)s[i]);
        if (dash ? s[i] != '-' : !hex)
            return false;
    }
    return s[36] == '\0';
}

bool ab_token_prefix_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '_')
            return false;
    return true;
}
