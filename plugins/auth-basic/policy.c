/*
 * The input rules of auth-basic: usernames, passwords, UUIDs and the token
 * prefix. Roles and the auth.authorize table are the SDK's
 * (include/webencode/authz.h), shared with auth-oidc.
 */
#include "ab.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

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
