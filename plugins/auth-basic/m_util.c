/*
 * Small helpers shared by the auth-basic methods: reading typed params with
 * errors that name the field, and turning result columns into JSON.
 */
#include "ab.h"

#include <string.h>

int ab_param_str(we_plugin_call *call, json_t *params, const char *field, bool required,
                 const char **out, size_t *len)
{
    json_t *v = json_object_get(params, field);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return we_plugin_fail_params(call, "%s: required", field);
        return 0;
    }
    if (!json_is_string(v))
        return we_plugin_fail_params(call, "%s: must be a string", field);
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    else if (strlen(*out) != json_string_length(v))
        return we_plugin_fail_params(call, "%s: must not contain NUL", field);
    return 0;
}

int ab_param_uuid(we_plugin_call *call, json_t *params, const char *field, bool required,
                  const char **out)
{
    if (ab_param_str(call, params, field, required, out, NULL) < 0)
        return -1;
    if (*out && !ab_uuid_valid(*out))
        return we_plugin_fail_params(call, "%s: must be a UUID", field);
    return 0;
}

int ab_param_role(we_plugin_call *call, json_t *params, const char *field, we_role *out)
{
    const char *s;
    *out = WE_ROLE_INVALID;
    if (ab_param_str(call, params, field, false, &s, NULL) < 0)
        return -1;
    if (s && (*out = we_role_parse(s)) == WE_ROLE_INVALID)
        return we_plugin_fail_params(call, "%s: must be viewer, operator or admin", field);
    return 0;
}

json_t *ab_col_str(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    return json_string(PQgetvalue(r, row, col));
}

bool ab_col_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

int ab_fail_not_found(we_plugin_call *call, const char *what, const char *id)
{
    return we_plugin_fail(call, "WE-AUTH-404", false, "%s not found: %s", what, id);
}
